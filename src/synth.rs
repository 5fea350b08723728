//! Synthetic H&E-looking pyramidal slides, written with our own TIFF writer: glass background,
//! pink fibrous stroma, purple nuclei clustered in "tumour" islands. The picture is a function of
//! level-0 coordinates, so every level is rendered directly (no level needs another in memory)
//! and a slide of any size is written in one streaming pass.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::tiff::tags;
use crate::tiff::writer::{TiffWriter, Value};
use crate::tiff::ByteOrder;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthCompression {
    Jpeg,
    Deflate,
    Lzw,
    None,
}

/// Where the pyramid's reduced levels go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Successive IFDs in the main chain (libvips `tiffsave --pyramid`).
    Chain,
    /// SubIFDs of the first IFD (libvips `--subifd`).
    Subifd,
    /// Aperio SVS: level 0, thumbnail, reduced levels (÷4), label, macro; RGB JPEG like Aperio's.
    Svs,
    /// OME-TIFF: SubIFD pyramid with OME-XML carrying the physical pixel size.
    Ome,
}

#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub width: u64,
    pub height: u64,
    pub tile: u32,
    pub compression: SynthCompression,
    pub jpeg_quality: u8,
    pub bigtiff: bool,
    pub byte_order: ByteOrder,
    pub layout: Layout,
    pub mpp: f64,
    pub objective_power: f64,
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            width: 8192,
            height: 6144,
            tile: 256,
            compression: SynthCompression::Jpeg,
            jpeg_quality: 85,
            bigtiff: false,
            byte_order: ByteOrder::Little,
            layout: Layout::Chain,
            mpp: 0.25,
            objective_power: 40.0,
            seed: 1,
        }
    }
}

/// What was written.
#[derive(Debug, serde::Serialize)]
pub struct SynthReport {
    pub path: PathBuf,
    pub levels: Vec<(u64, u64)>,
    pub tiles: u64,
    pub bytes: u64,
}

// ---------- the picture ----------

fn hash(x: i64, y: i64, seed: u64) -> u64 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ seed;
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth value noise in [0, 1] with features about `scale` level-0 pixels across.
fn value_noise(x: f64, y: f64, scale: f64, seed: u64) -> f64 {
    let (fx, fy) = (x / scale, y / scale);
    let (ix, iy) = (fx.floor() as i64, fy.floor() as i64);
    let (tx, ty) = (fx - ix as f64, fy - iy as f64);
    let s = |t: f64| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (s(tx), s(ty));
    let v = |dx, dy| unit(hash(ix + dx, iy + dy, seed));
    let top = v(0, 0) + (v(1, 0) - v(0, 0)) * sx;
    let bottom = v(0, 1) + (v(1, 1) - v(0, 1)) * sx;
    top + (bottom - top) * sy
}

fn fbm(x: f64, y: f64, scale: f64, seed: u64) -> f64 {
    0.55 * value_noise(x, y, scale, seed)
        + 0.3 * value_noise(x, y, scale / 2.3, seed ^ 0x51)
        + 0.15 * value_noise(x, y, scale / 5.1, seed ^ 0xA7)
}

/// Level-0 size of a nucleus grid cell; nuclei are 5–9 px in radius (≈ 2.5–4.5 µm at 0.5 mpp).
const CELL: f64 = 26.0;

struct Picture {
    width: f64,
    height: f64,
    seed: u64,
}

/// Slowly varying fields at one level-0 point: tissue opacity, stroma tone, nucleus density.
#[derive(Clone, Copy, Default)]
struct Fields {
    tissue: f64,
    tone: f64,
    density: f64,
}

impl Picture {
    fn fields(&self, x: f64, y: f64) -> Fields {
        let size = self.width.min(self.height).max(64.0);
        // Tissue: a few large blobs, fading out towards the slide's border.
        let t = fbm(x, y, size / 2.5, self.seed);
        let (u, v) = (x / self.width - 0.5, y / self.height - 0.5);
        let border = 1.0 - (u * u + v * v).sqrt() * 1.3;
        let tissue = smoothstep(0.5, 0.56, t * 0.7 + border * 0.45);
        let tone = fbm(x, y, 180.0, self.seed ^ 0x77);
        let density = smoothstep(0.45, 0.75, fbm(x, y, size / 8.0, self.seed ^ 0x1234)) * 0.85 + 0.12;
        Fields { tissue, tone, density }
    }
}

fn smoothstep(a: f64, b: f64, x: f64) -> f64 {
    let t = ((x - a) / (b - a)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

const GLASS: [f64; 3] = [243.0, 241.0, 245.0];
const STROMA: [f64; 3] = [233.0, 160.0, 196.0];
const NUCLEUS: [f64; 3] = [88.0, 52.0, 138.0];

/// Render `w`×`h` RGB pixels of a level with downsample `ds`, whose top-left level pixel is (lx, ly).
fn render(p: &Picture, ds: f64, lx: u64, ly: u64, w: u32, h: u32) -> Vec<u8> {
    let (w, h) = (w as usize, h as usize);
    // Smooth fields on a coarse grid, interpolated per pixel: most of the cost saved.
    const STEP: usize = 16;
    let gw = w / STEP + 2;
    let gh = h / STEP + 2;
    let mut grid = vec![Fields::default(); gw * gh];
    for gy in 0..gh {
        for gx in 0..gw {
            let x0 = ((lx + (gx * STEP) as u64) as f64 + 0.5) * ds;
            let y0 = ((ly + (gy * STEP) as u64) as f64 + 0.5) * ds;
            grid[gy * gw + gx] = p.fields(x0, y0);
        }
    }
    let draw_nuclei = ds <= 4.0;
    let fibre_amp = (2.0 / ds).min(1.0);
    let mut rgb = vec![0u8; w * h * 3];
    for y in 0..h {
        let (gy, fy) = (y / STEP, (y % STEP) as f64 / STEP as f64);
        let y0 = (ly as f64 + y as f64 + 0.5) * ds;
        for x in 0..w {
            let (gx, fx) = (x / STEP, (x % STEP) as f64 / STEP as f64);
            let a = grid[gy * gw + gx];
            let b = grid[gy * gw + gx + 1];
            let c = grid[(gy + 1) * gw + gx];
            let d = grid[(gy + 1) * gw + gx + 1];
            let lerp = |f: fn(&Fields) -> f64| {
                let top = f(&a) + (f(&b) - f(&a)) * fx;
                let bottom = f(&c) + (f(&d) - f(&c)) * fx;
                top + (bottom - top) * fy
            };
            let tissue = lerp(|f| f.tissue);
            let tone = lerp(|f| f.tone);
            let x0 = (lx as f64 + x as f64 + 0.5) * ds;
            let fibre = ((x0 * 0.8 + y0 * 0.35) * 0.09 + tone * 14.0).sin() * fibre_amp;
            let shade = 1.0 - 0.07 * fibre - 0.12 * (tone - 0.5);
            let mut px = [0f64; 3];
            for i in 0..3 {
                let stroma = (STROMA[i] * shade).min(255.0);
                px[i] = GLASS[i] + (stroma - GLASS[i]) * tissue;
            }
            if !draw_nuclei {
                // Nuclei smaller than a pixel: their average colour tints the stroma.
                let cover = lerp(|f| f.density) * tissue * 0.22;
                for i in 0..3 {
                    px[i] += (NUCLEUS[i] - px[i]) * cover;
                }
            }
            let o = (y * w + x) * 3;
            let grain = (hash(x0 as i64, y0 as i64, p.seed) & 7) as f64 - 3.5;
            for i in 0..3 {
                rgb[o + i] = (px[i] + grain).clamp(0.0, 255.0) as u8;
            }
        }
    }
    if draw_nuclei {
        draw_nuclei_into(p, ds, lx, ly, w, h, &mut rgb);
    }
    rgb
}

fn draw_nuclei_into(p: &Picture, ds: f64, lx: u64, ly: u64, w: usize, h: usize, rgb: &mut [u8]) {
    let margin = 12.0;
    let (x_min, y_min) = (lx as f64 * ds - margin, ly as f64 * ds - margin);
    let (x_max, y_max) = ((lx as f64 + w as f64) * ds + margin, (ly as f64 + h as f64) * ds + margin);
    for cy in (y_min / CELL).floor() as i64..=(y_max / CELL).floor() as i64 {
        for cx in (x_min / CELL).floor() as i64..=(x_max / CELL).floor() as i64 {
            // Independent draws for this cell (shifts of one hash would be correlated).
            let r = |k: u64| unit(hash(cx, cy, p.seed ^ k.wrapping_mul(0x9E37_79B9)));
            let centre_x = (cx as f64 + 0.1 + 0.8 * r(1)) * CELL;
            let centre_y = (cy as f64 + 0.1 + 0.8 * r(2)) * CELL;
            let f = p.fields(centre_x, centre_y);
            if r(3) > f.density * f.tissue {
                continue;
            }
            // Crowded areas ("tumour") have large round nuclei; sparse stroma has small spindle ones.
            let crowd = smoothstep(0.35, 0.8, f.density);
            let rx = 4.0 + 3.0 * r(4) + 3.0 * crowd;
            let ry = rx * (0.35 + 0.35 * crowd + 0.3 * r(5));
            let angle = r(6) * std::f64::consts::PI;
            let darkness = 0.7 + 0.3 * r(7);
            let (sin, cos) = angle.sin_cos();
            // Bounding box in level pixels.
            let reach = rx.max(ry) + 1.0;
            let px0 = (((centre_x - reach) / ds).floor() as i64 - lx as i64).max(0);
            let px1 = (((centre_x + reach) / ds).ceil() as i64 - lx as i64).min(w as i64 - 1);
            let py0 = (((centre_y - reach) / ds).floor() as i64 - ly as i64).max(0);
            let py1 = (((centre_y + reach) / ds).ceil() as i64 - ly as i64).min(h as i64 - 1);
            for py in py0..=py1 {
                for pxx in px0..=px1 {
                    let x0 = (lx as f64 + pxx as f64 + 0.5) * ds - centre_x;
                    let y0 = (ly as f64 + py as f64 + 0.5) * ds - centre_y;
                    let (u, v) = ((x0 * cos + y0 * sin) / rx, (-x0 * sin + y0 * cos) / ry);
                    let dist = (u * u + v * v).sqrt();
                    // Soft edge about one level pixel wide; chromatin speckle inside.
                    let edge_width = ds / rx.min(ry);
                    let alpha = smoothstep(1.0 + edge_width, 1.0 - edge_width, dist) * darkness;
                    if alpha <= 0.0 {
                        continue;
                    }
                    let speckle = 1.0 + 0.12 * (unit(hash(pxx + lx as i64, py + ly as i64, 9)) - 0.5) + 0.15 * dist;
                    let o = (py as usize * w + pxx as usize) * 3;
                    for i in 0..3 {
                        let target = (NUCLEUS[i] * speckle).min(255.0);
                        let cur = f64::from(rgb[o + i]);
                        rgb[o + i] = (cur + (target - cur) * alpha).clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }
}

// ---------- encoding ----------

/// Split a complete JPEG into the TIFF JPEGTables (SOI, DQT, DHT, EOI) and the abbreviated tile
/// stream (SOI, SOF, SOS, data, EOI), dropping APPn segments, as libtiff writes JPEG-in-TIFF.
fn split_jpeg(full: &[u8]) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let bad = || io::Error::other("JPEG encoder output has an unexpected structure");
    let mut tables = vec![0xFF, 0xD8];
    let mut tile = vec![0xFF, 0xD8];
    let mut i = 2;
    loop {
        if i + 4 > full.len() || full[i] != 0xFF {
            return Err(bad());
        }
        let marker = full[i + 1];
        let len = usize::from(u16::from_be_bytes([full[i + 2], full[i + 3]]));
        let segment = full.get(i..i + 2 + len).ok_or_else(bad)?;
        match marker {
            0xDB | 0xC4 => tables.extend_from_slice(segment),
            0xE0..=0xEF | 0xFE => {}
            0xDA => {
                tile.extend_from_slice(&full[i..]);
                break;
            }
            _ => tile.extend_from_slice(segment),
        }
        i += 2 + len;
    }
    tables.extend_from_slice(&[0xFF, 0xD9]);
    Ok((tables, tile))
}

/// An encoded chunk and, for JPEG, the tables it shares with its siblings.
type EncodedChunk = (Vec<u8>, Option<Vec<u8>>);

/// Encodes tiles of one image; for JPEG, remembers the shared tables.
struct TileEncoder {
    compression: SynthCompression,
    quality: u8,
    /// RGB samples stored in JPEG without the colour transform (Aperio style).
    jpeg_rgb: bool,
}

impl TileEncoder {
    fn encode(&self, rgb: &[u8], w: u32, h: u32) -> io::Result<EncodedChunk> {
        match self.compression {
            SynthCompression::Jpeg => {
                let mut full = Vec::new();
                let mut enc = jpeg_encoder::Encoder::new(&mut full, self.quality);
                let color = if self.jpeg_rgb {
                    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1);
                    // Declared "YCbCr" so the encoder stores the RGB samples untransformed.
                    jpeg_encoder::ColorType::Ycbcr
                } else {
                    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
                    jpeg_encoder::ColorType::Rgb
                };
                enc.encode(rgb, w as u16, h as u16, color).map_err(io::Error::other)?;
                let (tables, tile) = split_jpeg(&full)?;
                Ok((tile, Some(tables)))
            }
            SynthCompression::Deflate => {
                use std::io::Write;
                let mut diff = rgb.to_vec();
                apply_horizontal_predictor(&mut diff, w as usize);
                let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
                enc.write_all(&diff)?;
                Ok((enc.finish()?, None))
            }
            SynthCompression::Lzw => {
                let mut diff = rgb.to_vec();
                apply_horizontal_predictor(&mut diff, w as usize);
                let mut enc = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
                Ok((enc.encode(&diff).map_err(io::Error::other)?, None))
            }
            SynthCompression::None => Ok((rgb.to_vec(), None)),
        }
    }

    fn tiff_code(&self) -> u16 {
        match self.compression {
            SynthCompression::Jpeg => 7,
            SynthCompression::Deflate => 8,
            SynthCompression::Lzw => 5,
            SynthCompression::None => 1,
        }
    }
}

fn apply_horizontal_predictor(rgb: &mut [u8], width: usize) {
    for row in rgb.chunks_mut(width * 3) {
        for i in (3..row.len()).rev() {
            row[i] = row[i].wrapping_sub(row[i - 3]);
        }
    }
}

/// Common tags describing the pixels of an image written by `encoder`.
fn pixel_tags(encoder: &TileEncoder, width: u64, height: u64, tables: Option<Vec<u8>>) -> Vec<(u16, Value)> {
    let photometric = if encoder.compression == SynthCompression::Jpeg && !encoder.jpeg_rgb { 6 } else { 2 };
    let mut t = vec![
        (tags::IMAGE_WIDTH, Value::Long(vec![width as u32])),
        (tags::IMAGE_LENGTH, Value::Long(vec![height as u32])),
        (tags::BITS_PER_SAMPLE, Value::Short(vec![8, 8, 8])),
        (tags::COMPRESSION, Value::Short(vec![encoder.tiff_code()])),
        (tags::PHOTOMETRIC, Value::Short(vec![photometric])),
        (tags::SAMPLES_PER_PIXEL, Value::Short(vec![3])),
        (tags::PLANAR_CONFIGURATION, Value::Short(vec![1])),
    ];
    if photometric == 6 {
        t.push((tags::YCBCR_SUBSAMPLING, Value::Short(vec![2, 2])));
    }
    if matches!(encoder.compression, SynthCompression::Deflate | SynthCompression::Lzw) {
        t.push((tags::PREDICTOR, Value::Short(vec![2])));
    }
    if let Some(tables) = tables {
        t.push((tags::JPEG_TABLES, Value::Undefined(tables)));
    }
    t
}

/// Render, encode and write every tile of one level; returns the tags of its IFD.
fn write_level<W: io::Write + io::Seek>(
    out: &mut TiffWriter<W>,
    picture: &Picture,
    encoder: &TileEncoder,
    width: u64,
    height: u64,
    tile: u32,
    downsample: f64,
) -> io::Result<(Vec<(u16, Value)>, u64)> {
    let across = width.div_ceil(u64::from(tile));
    let down = height.div_ceil(u64::from(tile));
    let mut offsets = Vec::with_capacity((across * down) as usize);
    let mut counts = Vec::with_capacity((across * down) as usize);
    let mut tables: Option<Vec<u8>> = None;
    let all: Vec<(u64, u64)> = (0..down).flat_map(|r| (0..across).map(move |c| (c, r))).collect();
    // Batches bound memory; inside a batch tiles render and encode in parallel.
    for batch in all.chunks(512) {
        let encoded: Vec<io::Result<EncodedChunk>> = batch
            .par_iter()
            .map(|&(c, r)| {
                let rgb = render(picture, downsample, c * u64::from(tile), r * u64::from(tile), tile, tile);
                encoder.encode(&rgb, tile, tile)
            })
            .collect();
        for result in encoded {
            let (bytes, t) = result?;
            if tables.is_none() {
                tables = t;
            }
            counts.push(bytes.len() as u64);
            offsets.push(out.write_block(&bytes)?);
        }
    }
    let mut ifd = pixel_tags(encoder, width, height, tables);
    ifd.push((tags::TILE_WIDTH, Value::Long(vec![tile])));
    ifd.push((tags::TILE_LENGTH, Value::Long(vec![tile])));
    ifd.push((tags::TILE_OFFSETS, Value::Offsets(offsets)));
    ifd.push((tags::TILE_BYTE_COUNTS, Value::Offsets(counts)));
    Ok((ifd, across * down))
}

/// A whole small image written as strips of 16 rows (associated images).
fn write_stripped<W: io::Write + io::Seek>(
    out: &mut TiffWriter<W>,
    encoder: &TileEncoder,
    rgb: &[u8],
    width: u32,
    height: u32,
) -> io::Result<Vec<(u16, Value)>> {
    let rows = 16u32;
    let mut offsets = Vec::new();
    let mut counts = Vec::new();
    let mut tables = None;
    for y in (0..height).step_by(rows as usize) {
        let n = rows.min(height - y);
        let strip = &rgb[(y * width * 3) as usize..((y + n) * width * 3) as usize];
        let (bytes, t) = encoder.encode(strip, width, n)?;
        tables = tables.or(t);
        counts.push(bytes.len() as u64);
        offsets.push(out.write_block(&bytes)?);
    }
    let mut ifd = pixel_tags(encoder, u64::from(width), u64::from(height), tables);
    ifd.push((tags::ROWS_PER_STRIP, Value::Long(vec![rows])));
    ifd.push((tags::STRIP_OFFSETS, Value::Offsets(offsets)));
    ifd.push((tags::STRIP_BYTE_COUNTS, Value::Offsets(counts)));
    Ok(ifd)
}

/// A label: white card with a barcode and dark "text" blocks (stands in for patient details).
fn render_label(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut rgb = vec![250u8; (w * h * 3) as usize];
    for y in 0..h {
        for x in 0..w {
            let bar = y < h / 3 && x > w / 10 && x < w * 9 / 10 && hash(i64::from(x / 3), 0, seed) & 1 == 0;
            let text = y > h / 2
                && y < h * 9 / 10
                && (y - h / 2) % 14 < 9
                && x > w / 10
                && x < w * 8 / 10
                && !hash(i64::from(x / 7), i64::from(y / 14), seed).is_multiple_of(5);
            if bar || text {
                let o = ((y * w + x) * 3) as usize;
                rgb[o..o + 3].copy_from_slice(&[20, 20, 30]);
            }
        }
    }
    rgb
}

/// Write a synthetic slide to `path` (atomically: a temporary file in the same folder, renamed).
pub fn generate(path: &Path, opts: &SynthOptions) -> io::Result<SynthReport> {
    if opts.width == 0 || opts.height == 0 || opts.width > 1 << 22 || opts.height > 1 << 22 {
        return Err(io::Error::other(format!("size {}×{} out of range (1 to 4194304)", opts.width, opts.height)));
    }
    if !(16..=4096).contains(&opts.tile) || !opts.tile.is_multiple_of(16) {
        return Err(io::Error::other(format!("tile size {} must be a multiple of 16 from 16 to 4096", opts.tile)));
    }
    let file_name = path.file_name().ok_or_else(|| io::Error::other("output path has no file name"))?;
    let tmp = path.with_file_name(format!(".{}.partial", file_name.to_string_lossy()));
    let result = write_slide(&tmp, opts);
    match result {
        Ok(mut report) => {
            fs::File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, path)?;
            report.path = path.to_path_buf();
            Ok(report)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Level sizes: level 0, then each `factor` times smaller, until a level fits in one tile (at most
/// 16 levels).
fn pyramid_dims(opts: &SynthOptions, factor: u64) -> Vec<(u64, u64)> {
    let mut dims = vec![(opts.width, opts.height)];
    while let Some(&(w, h)) = dims.last() {
        if w.max(h) <= u64::from(opts.tile) || dims.len() >= 16 {
            break;
        }
        let ds = factor.pow(dims.len() as u32);
        dims.push((opts.width.div_ceil(ds), opts.height.div_ceil(ds)));
    }
    dims
}

fn write_slide(path: &Path, opts: &SynthOptions) -> io::Result<SynthReport> {
    let mut out = TiffWriter::create(path, opts.byte_order, opts.bigtiff)?;
    let picture = Arc::new(Picture { width: opts.width as f64, height: opts.height as f64, seed: opts.seed });
    let svs = opts.layout == Layout::Svs;
    let encoder = TileEncoder { compression: opts.compression, quality: opts.jpeg_quality, jpeg_rgb: svs };
    let factor: u64 = if svs { 4 } else { 2 };
    let dims = pyramid_dims(opts, factor);
    let mut level_ifds = Vec::new();
    let mut tiles = 0;
    for (i, &(w, h)) in dims.iter().enumerate() {
        let ds = if i == 0 { 1.0 } else { (factor.pow(i as u32)) as f64 };
        let (mut ifd, n) = write_level(&mut out, &picture, &encoder, w, h, opts.tile, ds)?;
        tiles += n;
        ifd.push((tags::NEW_SUBFILE_TYPE, Value::Long(vec![u32::from(i > 0)])));
        level_ifds.push(ifd);
    }
    let px_per_cm = (1e7 / opts.mpp).round() as u32;
    let resolution = [
        (tags::X_RESOLUTION, Value::Rational(vec![(px_per_cm, 1000)])),
        (tags::Y_RESOLUTION, Value::Rational(vec![(px_per_cm, 1000)])),
        (tags::RESOLUTION_UNIT, Value::Short(vec![3])),
    ];
    let software = (tags::SOFTWARE, Value::Ascii(format!("wsiview {} synthetic slide", env!("CARGO_PKG_VERSION"))));
    let mut levels = level_ifds.into_iter();
    let mut first = levels.next().ok_or_else(|| io::Error::other("no levels"))?;
    first.extend(resolution.iter().cloned());
    first.push(software);
    match opts.layout {
        Layout::Chain => {
            out.write_chained_ifd(first)?;
            for ifd in levels {
                out.write_chained_ifd(ifd)?;
            }
        }
        Layout::Subifd | Layout::Ome => {
            let subs = levels.map(|ifd| out.write_detached_ifd(ifd)).collect::<io::Result<Vec<u64>>>()?;
            if !subs.is_empty() {
                first.push((tags::SUB_IFDS, Value::Ifd(subs)));
            }
            if opts.layout == Layout::Ome {
                first.push((tags::IMAGE_DESCRIPTION, Value::Ascii(ome_xml(opts))));
            }
            out.write_chained_ifd(first)?;
        }
        Layout::Svs => {
            let (w, h) = (opts.width, opts.height);
            let description = |what: &str| {
                format!(
                    "Aperio Image Library v12.0.15 (wsiview synthetic)\r\n{w}x{h} [0,0 {w}x{h}] ({t}x{t}) {what}|AppMag = {mag}|MPP = {mpp:.4}|Filename = SYNTHETIC-{seed}|User = 00000000-0000-0000-0000-000000000000|Date = 11/25/26|Time = 09:30:00",
                    t = opts.tile,
                    mag = opts.objective_power,
                    mpp = opts.mpp,
                    seed = opts.seed
                )
            };
            first.push((tags::IMAGE_DESCRIPTION, Value::Ascii(description("JPEG/RGB Q=85"))));
            out.write_chained_ifd(first)?;
            // Thumbnail (IFD 1): stripped, as Aperio writes it.
            let scale = (w.max(h) as f64 / 768.0).max(1.0);
            let (thw, thh) = (((w as f64 / scale) as u32).max(1), ((h as f64 / scale) as u32).max(1));
            let thumb_rgb = render(&picture, w as f64 / f64::from(thw), 0, 0, thw, thh);
            let jpeg = TileEncoder { compression: SynthCompression::Jpeg, quality: 90, jpeg_rgb: false };
            let mut thumb = write_stripped(&mut out, &jpeg, &thumb_rgb, thw, thh)?;
            thumb.push((tags::IMAGE_DESCRIPTION, Value::Ascii(description(&format!("-> {thw}x{thh} - ")))));
            out.write_chained_ifd(thumb)?;
            for ifd in levels {
                out.write_chained_ifd(ifd)?;
            }
            let lzw = TileEncoder { compression: SynthCompression::Lzw, quality: 0, jpeg_rgb: false };
            let (lw, lh) = (387, 463);
            let mut label = write_stripped(&mut out, &lzw, &render_label(lw, lh, opts.seed), lw, lh)?;
            label.push((tags::NEW_SUBFILE_TYPE, Value::Long(vec![1])));
            label.push((
                tags::IMAGE_DESCRIPTION,
                Value::Ascii(format!("Aperio Image Library v12.0.15\r\nlabel {lw}x{lh}")),
            ));
            out.write_chained_ifd(label)?;
            let (mw, mh) = (1280u32, 431u32);
            let mut macro_rgb = render(&picture, w as f64 / 900.0, 0, 0, mw, mh);
            let label_rgb = render_label(380, mh, opts.seed);
            for y in 0..mh as usize {
                let dst = (y * mw as usize + 900) * 3;
                macro_rgb[dst..dst + 380 * 3].copy_from_slice(&label_rgb[y * 380 * 3..(y + 1) * 380 * 3]);
            }
            let mut macro_ifd = write_stripped(&mut out, &jpeg, &macro_rgb, mw, mh)?;
            macro_ifd.push((tags::NEW_SUBFILE_TYPE, Value::Long(vec![9])));
            macro_ifd.push((
                tags::IMAGE_DESCRIPTION,
                Value::Ascii(format!("Aperio Image Library v12.0.15\r\nmacro {mw}x{mh}")),
            ));
            out.write_chained_ifd(macro_ifd)?;
        }
    }
    let file = out.finish()?;
    let bytes = file.get_ref().metadata()?.len();
    Ok(SynthReport { path: path.to_path_buf(), levels: dims, tiles, bytes })
}

/// An extra image of a multi-image OME-TIFF ([`generate_ome_multi`]): a macro, a label or any
/// other picture, stored in the main IFD chain beside the slide.
#[derive(Clone, Debug)]
pub struct OmeExtraImage {
    /// The OME `Image` `Name` ("macro image", "Label", "overview"…).
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Tiled (256² JPEG tiles) or stripped (one JPEG strip).
    pub tiled: bool,
}

/// An OME-TIFF with several Images, as Bio-Formats and tifffile write them: each Image one IFD of
/// the main chain (its `TiffData IFD` in the OME-XML), the scan at main-chain position `slide_at`
/// with its pyramid in SubIFDs, the others (`extras`, in order around it) single images. The
/// OME-XML (in IFD 0) gives the scan `opts.mpp` µm pixels and every extra 20 µm pixels.
pub fn generate_ome_multi(
    path: &Path,
    opts: &SynthOptions,
    extras: &[OmeExtraImage],
    slide_at: usize,
) -> io::Result<SynthReport> {
    let mut out = TiffWriter::create(path, opts.byte_order, opts.bigtiff)?;
    let picture = Picture { width: opts.width as f64, height: opts.height as f64, seed: opts.seed };
    let encoder = TileEncoder { compression: SynthCompression::Jpeg, quality: opts.jpeg_quality, jpeg_rgb: false };
    let dims = pyramid_dims(opts, 2);
    let mut tiles = 0;
    let mut levels = Vec::new();
    for (i, &(w, h)) in dims.iter().enumerate() {
        let (ifd, n) = write_level(&mut out, &picture, &encoder, w, h, opts.tile, 2f64.powi(i as i32))?;
        tiles += n;
        levels.push(ifd);
    }
    let mut levels = levels.into_iter();
    let mut slide = levels.next().ok_or_else(|| io::Error::other("no levels"))?;
    let subs = levels.map(|ifd| out.write_detached_ifd(ifd)).collect::<io::Result<Vec<u64>>>()?;
    if !subs.is_empty() {
        slide.push((tags::SUB_IFDS, Value::Ifd(subs)));
    }
    // The main chain in file order: the extras with the scan at `slide_at`.
    let slide_at = slide_at.min(extras.len());
    let mut chain: Vec<Vec<(u16, Value)>> = Vec::new();
    let mut images_xml = String::new();
    for position in 0..=extras.len() {
        let (name, w, h, mpp) = if position == slide_at {
            chain.push(std::mem::take(&mut slide));
            ("slide scan".to_string(), opts.width, opts.height, opts.mpp)
        } else {
            let extra = &extras[if position < slide_at { position } else { position - 1 }];
            let (w, h) = (extra.width.max(1), extra.height.max(1));
            let ds = opts.width as f64 / f64::from(w);
            let ifd = if extra.tiled {
                write_level(&mut out, &picture, &encoder, u64::from(w), u64::from(h), 256, ds)?.0
            } else {
                write_stripped(&mut out, &encoder, &render(&picture, ds, 0, 0, w, h), w, h)?
            };
            chain.push(ifd);
            (extra.name.clone(), u64::from(w), u64::from(h), 20.0)
        };
        images_xml += &ome_image_xml(position, &name, w, h, mpp);
    }
    let xml = ome_document(opts, &images_xml);
    for (i, mut ifd) in chain.into_iter().enumerate() {
        if i == 0 {
            ifd.push((tags::IMAGE_DESCRIPTION, Value::Ascii(xml.clone())));
        }
        out.write_chained_ifd(ifd)?;
    }
    let file = out.finish()?;
    let bytes = file.get_ref().metadata()?.len();
    Ok(SynthReport { path: path.to_path_buf(), levels: dims, tiles, bytes })
}

fn ome_xml(opts: &SynthOptions) -> String {
    ome_document(opts, &ome_image_xml(0, "synthetic", opts.width, opts.height, opts.mpp))
}

/// One OME `Image` whose pixels are main-chain IFD `position`.
fn ome_image_xml(position: usize, name: &str, w: u64, h: u64, mpp: f64) -> String {
    format!(
        r#"  <Image ID="Image:{position}" Name="{name}">
    <Pixels ID="Pixels:{position}" DimensionOrder="XYCZT" Type="uint8" SizeX="{w}" SizeY="{h}" SizeC="3" SizeZ="1" SizeT="1"
            PhysicalSizeX="{mpp}" PhysicalSizeXUnit="µm" PhysicalSizeY="{mpp}" PhysicalSizeYUnit="µm" Interleaved="true">
      <Channel ID="Channel:{position}:0" SamplesPerPixel="3"/>
      <TiffData IFD="{position}" PlaneCount="1"/>
    </Pixels>
  </Image>
"#
    )
}

/// The OME-XML document around `images`, with the objective.
fn ome_document(opts: &SynthOptions, images: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" Creator="wsiview {version}">
  <Instrument ID="Instrument:0"><Objective ID="Objective:0" NominalMagnification="{mag}"/></Instrument>
{images}</OME>"#,
        version = env!("CARGO_PKG_VERSION"),
        mag = opts.objective_power,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_jpeg_keeps_a_decodable_stream() {
        let rgb = render(&Picture { width: 1000.0, height: 1000.0, seed: 3 }, 1.0, 400, 400, 64, 64);
        let enc = TileEncoder { compression: SynthCompression::Jpeg, quality: 90, jpeg_rgb: false };
        let (tile, tables) = enc.encode(&rgb, 64, 64).expect("encodes");
        let tables = tables.expect("jpeg has tables");
        assert!(tables.starts_with(&[0xFF, 0xD8]) && tables.ends_with(&[0xFF, 0xD9]));
        assert!(tables.windows(2).any(|w| w == [0xFF, 0xDB]), "tables hold a DQT");
        assert!(!tile.windows(2).any(|w| w == [0xFF, 0xDB]), "tile holds no DQT");
    }

    #[test]
    fn picture_has_tissue_and_glass() {
        let p = Picture { width: 20000.0, height: 15000.0, seed: 1 };
        let rgb = render(&p, 64.0, 0, 0, 313, 235);
        let pink = rgb.chunks_exact(3).filter(|c| c[1] < 200).count();
        let glass = rgb.chunks_exact(3).filter(|c| c[1] > 230).count();
        assert!(pink > 313 * 235 / 10, "tissue covers some of the slide ({pink})");
        assert!(glass > 313 * 235 / 10, "glass covers some of the slide ({glass})");
    }
}
