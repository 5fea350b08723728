//! Hamamatsu NDPI: classic TIFF in NDPI layout (64-bit offsets through high halves stored after
//! each IFD, see [`TiffReader::ndpi`]), detected by tag 65420 (FileFormat) in IFD 0. Every IFD is
//! one baseline JPEG in one strip. IFDs with SourceLens (65421) > 0 on focal plane (65424) 0 are
//! the levels, SourceLens −1 is the macro, −2 (the map) is ignored.
//!
//! A level's JPEG is read in pieces, never whole: it is coded in restart intervals, and each
//! interval decodes on its own (the DC predictors restart). OpenSlide takes one interval as a tile
//! (MCU width × restart interval by MCU height); wsiview shows callers bigger tiles, blocks of
//! intervals, each decoded as one small JPEG made from the strip's header (SOF size patched,
//! DRI kept) and the block's intervals in raster order with their restart markers renumbered
//! 0–7. Where each interval starts comes from tag 65426 (McuStarts, offsets within the strip; high
//! halves in 65432), checked against the restart markers around it on every read; when the tag is
//! missing or wrong, the strip is scanned for the markers once. A JPEG without restart markers is
//! one tile, decoded whole (and then its own size, not the TIFF's, is the level's); one too large
//! to decode whole is refused.
//!
//! As OpenSlide, every stored level whose interval size divides by 2, 4 and 8 also gives levels
//! of 1/2, 1/4 and 1/8 its size (OpenSlide decodes them with libjpeg's DCT scaling; wsiview
//! decodes at full size and averages s×s pixels); of levels of one width, the one from the later
//! (smaller) stored level is kept. mpp from X/YResolution of IFD 0, objective from SourceLens.
//! Reference: OpenSlide's Hamamatsu format notes and `openslide-vendor-hamamatsu.c`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::{Format, Opener, Probe};
use crate::error::{ErrorKind, Result, SlideError};
use crate::slide::tiff_slide::{describe, read_tiff_properties, resolution_mpp, standard_properties};
use crate::slide::{LevelInfo, SlideProperties, SlideSource, TilePixels};
use crate::tiff::reader::NDPI_FORMAT_TAG;
use crate::tiff::tags::{self, types};
use crate::tiff::{Ifd, TiffReader};
use crate::tiles::codec::{decode_chunk, decode_jpeg_image, ChunkFormat, Compression, Photometric};
use crate::tiles::{TileCache, TileKey};

pub(super) const FORMAT: Format = Format { name: "hamamatsu-ndpi", detect, open: Opener::Other(open) };

const SOURCE_LENS: u16 = 65421;
const X_OFFSET: u16 = 65422;
const Y_OFFSET: u16 = 65423;
const FOCAL_PLANE: u16 = 65424;
const MCU_STARTS: u16 = 65426;
const REFERENCE: u16 = 65427;
const MCU_STARTS_HIGH: u16 = 65432;
const PROPERTY_MAP: u16 = 65449;

/// Bytes read at first for a level's JPEG header; more (up to
/// [`Limits::ndpi_jpeg_header_bytes`](crate::Limits::ndpi_jpeg_header_bytes)) if needed.
const HEADER_PROBE_BYTES: u64 = 64 << 10;
/// Bytes read at a time when scanning a strip for restart markers.
const SCAN_CHUNK: u64 = 1 << 20;
/// Callers' tiles of a stored level are blocks of intervals about this many pixels on a side
/// (in the stored level's pixels; `BLOCK_EDGE·s` for a 1/s level, so its tiles are about as big).
/// Measured with `wsiview bench` on 256×8-interval NDPI (1080p level-0 read, 2 cores): blocks of
/// 256×256 read in 15–18 ms, 512×512 in 22–27 ms (more decoded outside the view), single
/// intervals 23 ms (a JPEG set up per 256×8 pixels).
const BLOCK_EDGE: u64 = 256;
/// Decoded whole JPEGs kept for the levels made from them.
const WHOLE_CACHE_BYTES: u64 = 64 << 20;

fn detect(probe: &Probe) -> bool {
    probe.has_tag(NDPI_FORMAT_TAG)
}

/// A signed integer tag (SLONG or SSHORT, or an unsigned type), if present and readable.
fn signed(reader: &TiffReader, ifd: &Ifd, tag: u16) -> Option<i64> {
    let e = ifd.get(tag)?;
    match e.field_type {
        types::SLONG | types::SSHORT | types::SBYTE => {
            let b = reader.entry_bytes(e).ok()?;
            let o = reader.order;
            Some(match e.field_type {
                types::SLONG => i64::from(o.u32([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]) as i32),
                types::SSHORT => i64::from(o.u16([*b.first()?, *b.get(1)?]) as i16),
                _ => i64::from(*b.first()? as i8),
            })
        }
        _ => reader.entry_u64(e).ok().and_then(|v| i64::try_from(v).ok()),
    }
}

/// SourceLens as the file stores it (a FLOAT), if present.
fn source_lens(reader: &TiffReader, ifd: &Ifd) -> Option<f32> {
    reader.get_f64(ifd, SOURCE_LENS).ok().flatten().map(|v| v as f32)
}

/// What a level's JPEG header says, and the header itself ready to head a block's JPEG.
#[derive(Debug)]
struct JpegHeader {
    /// SOI and every segment a decoder needs up to and including SOS (APPn other than JFIF and
    /// Adobe, and comments, left out).
    bytes: Vec<u8>,
    /// Where the SOF's height field is in `bytes` (the width follows).
    sof_at: usize,
    width: u16,
    height: u16,
    components: u8,
    /// MCU size in pixels.
    mcu_w: u64,
    mcu_h: u64,
    restart_interval: u16,
    /// Offset within the strip where the entropy-coded data begin.
    scan_start: u64,
}

/// Parse a JPEG header from the first bytes of a strip. `Ok(None)`: the bytes end before the
/// scan starts (read more).
fn parse_header(data: &[u8]) -> std::result::Result<Option<JpegHeader>, String> {
    if data.len() < 2 || data[..2] != [0xFF, 0xD8] {
        return Err("the strip does not start with a JPEG SOI marker".into());
    }
    let mut out = vec![0xFF, 0xD8];
    let mut pos = 2usize;
    let mut sof: Option<(usize, u16, u16, u8, u64, u64)> = None;
    let mut restart_interval = 0u16;
    for _ in 0..10_000 {
        // A marker: 0xFF, any fill 0xFF bytes, then the code.
        match data.get(pos) {
            None => return Ok(None),
            Some(0xFF) => {}
            Some(b) => return Err(format!("JPEG header: byte {b:#04X} at {pos} where a marker should be")),
        }
        while data.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&code) = data.get(pos + 1) else { return Ok(None) };
        pos += 2;
        if code == 0x01 || (0xD0..=0xD7).contains(&code) {
            continue;
        }
        if code == 0xD8 || code == 0xD9 {
            return Err(format!("JPEG header: marker FF{code:02X} before the scan"));
        }
        let Some(len) = data.get(pos..pos + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
            return Ok(None);
        };
        if len < 2 {
            return Err(format!("JPEG header: segment FF{code:02X} of length {len}"));
        }
        let Some(segment) = data.get(pos + 2..pos + len) else { return Ok(None) };
        let keep = match code {
            0xC0 | 0xC1 => {
                if segment.len() < 6 {
                    return Err("JPEG header: SOF segment too short".into());
                }
                let (height, width, n) = (
                    u16::from_be_bytes([segment[1], segment[2]]),
                    u16::from_be_bytes([segment[3], segment[4]]),
                    segment[5],
                );
                if segment[0] != 8 {
                    return Err(format!("JPEG with {}-bit samples (8 are supported)", segment[0]));
                }
                if !(n == 1 || n == 3) || segment.len() < 6 + 3 * usize::from(n) {
                    return Err(format!("JPEG with {n} components (1 or 3 are supported)"));
                }
                let (mut max_h, mut max_v) = (1u64, 1u64);
                for c in segment[6..6 + 3 * usize::from(n)].chunks_exact(3) {
                    let (h, v) = (u64::from(c[1] >> 4), u64::from(c[1] & 15));
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                        return Err(format!("JPEG sampling factors {h}×{v}"));
                    }
                    max_h = max_h.max(h);
                    max_v = max_v.max(v);
                }
                if n == 1 {
                    (max_h, max_v) = (1, 1);
                }
                sof = Some((out.len() + 5, height, width, n, 8 * max_h, 8 * max_v));
                true
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(format!("JPEG coding FF{code:02X} (only baseline Huffman JPEG is supported)"))
            }
            0xDD => {
                if segment.len() < 2 {
                    return Err("JPEG header: DRI segment too short".into());
                }
                restart_interval = u16::from_be_bytes([segment[0], segment[1]]);
                true
            }
            0xDA => {
                let Some((sof_at, height, width, components, mcu_w, mcu_h)) = sof else {
                    return Err("JPEG header: scan before the frame header (SOF)".into());
                };
                out.extend_from_slice(&[0xFF, code]);
                out.extend_from_slice(&data[pos..pos + len]);
                return Ok(Some(JpegHeader {
                    bytes: out,
                    sof_at,
                    width,
                    height,
                    components,
                    mcu_w,
                    mcu_h,
                    restart_interval,
                    scan_start: (pos + len) as u64,
                }));
            }
            0xE0 | 0xEE | 0xC4 | 0xDB => true,
            _ => false,
        };
        if keep {
            out.extend_from_slice(&[0xFF, code]);
            out.extend_from_slice(&data[pos..pos + len]);
        }
        pos += len;
    }
    Err("JPEG header: too many segments".into())
}

/// How a stored level's JPEG is cut into tiles.
#[derive(Debug)]
enum Layout {
    /// Restart intervals of `iv_w`×`iv_h` pixels, `across`×`down` of them in the JPEG; the level's
    /// grid (OpenSlide's tiles) is `grid_across`×`grid_down` of them.
    Intervals { iv_w: u64, iv_h: u64, across: u64, down: u64, grid_across: u64, grid_down: u64 },
    /// No restart markers: the JPEG is one tile of its own size.
    Whole { w: u64, h: u64 },
}

/// One level IFD: its strip and JPEG.
struct Stored {
    ifd_index: usize,
    /// The level's size: the TIFF's (the JPEG's own when it has no restart markers).
    width: u64,
    height: u64,
    strip_offset: u64,
    strip_len: u64,
    header: JpegHeader,
    layout: Layout,
    /// Interval starts within the strip from McuStarts (unchecked; empty when absent or of the
    /// wrong length).
    tag_starts: Vec<u64>,
    /// Set once a tag start failed its check: use the scanned starts from then on.
    tag_failed: AtomicBool,
    /// Interval starts found by scanning the strip for restart markers (on first need).
    scanned: OnceLock<std::result::Result<Vec<u64>, String>>,
}

/// One level as callers see it: a stored level at 1/`scale`.
struct Level {
    stored: usize,
    scale: u64,
    /// A caller's tile is `block_cols`×`block_rows` intervals of the stored level.
    block_cols: u64,
    block_rows: u64,
    info: LevelInfo,
}

pub struct NdpiSlide {
    path: PathBuf,
    reader: TiffReader,
    stored: Vec<Stored>,
    levels: Vec<Level>,
    /// `levels`' facts, for [`SlideSource::levels`].
    infos: Vec<LevelInfo>,
    properties: SlideProperties,
    /// The macro's IFD: (strip offset, strip length).
    macro_strip: Option<(u64, u64)>,
    whole_cache: TileCache,
}

fn open(probe: &Probe) -> Result<Arc<dyn SlideSource>> {
    let path = probe.path;
    let err = |kind| SlideError::new(path, kind);
    let Some((first, _)) = probe.tiff else {
        return Err(err(ErrorKind::Invalid("an NDPI file must be a TIFF".into())));
    };
    let reader = TiffReader::with_limits(first.source().clone(), *first.limits()).map_err(err)?;
    Ok(Arc::new(NdpiSlide::open(path, reader)?))
}

/// The one strip of an IFD: (offset, byte count).
fn single_strip(reader: &TiffReader, ifd: &Ifd, index: usize) -> std::result::Result<(u64, u64), ErrorKind> {
    let get = |tag| {
        let e = ifd.get(tag).ok_or_else(|| ErrorKind::Invalid(format!("IFD {index}: tag {tag} is missing")))?;
        if e.count != 1 {
            return Err(ErrorKind::Unsupported {
                ifd: index,
                what: format!("{} strips (an NDPI image is one strip)", e.count),
            });
        }
        reader.entry_u64(e)
    };
    let (offset, len) = (get(tags::STRIP_OFFSETS)?, get(tags::STRIP_BYTE_COUNTS)?);
    let end = offset.checked_add(len).filter(|&e| e <= reader.file_len());
    if len == 0 || end.is_none() {
        return Err(ErrorKind::Truncated {
            what: format!("the JPEG strip of IFD {index}"),
            start: offset,
            end: offset.saturating_add(len),
            file_len: reader.file_len(),
        });
    }
    Ok((offset, len))
}

impl NdpiSlide {
    fn open(path: &Path, reader: TiffReader) -> Result<Self> {
        let err = |kind| SlideError::new(path, kind);
        let chain = reader.read_chain(reader.first_ifd, &mut Default::default()).map_err(err)?;
        let first = chain.first().ok_or_else(|| err(ErrorKind::Invalid("no IFDs".into())))?;
        let mut properties = SlideProperties { vendor: "hamamatsu".into(), ..Default::default() };
        read_tiff_properties(&reader, first, &mut properties.values);
        let values = &mut properties.values;
        if let Some(lens) = source_lens(&reader, first) {
            values.insert("hamamatsu.SourceLens".into(), format!("{lens}"));
        }
        for (tag, name) in [(X_OFFSET, "XOffsetFromSlideCentre"), (Y_OFFSET, "YOffsetFromSlideCentre")] {
            if let Some(v) = signed(&reader, first, tag) {
                values.insert(format!("hamamatsu.{name}"), v.to_string());
            }
        }
        if let Ok(Some(reference)) = reader.get_string(first, REFERENCE) {
            values.insert("hamamatsu.Reference".into(), reference);
        }
        if let Ok(Some(map)) = reader.get_string(first, PROPERTY_MAP) {
            for line in map.split(['\r', '\n']) {
                if let Some((key, value)) = line.split_once('=') {
                    if !key.is_empty() && !value.is_empty() {
                        values.insert(format!("hamamatsu.{key}"), value.to_string());
                    }
                }
            }
        }
        let (mpp_x, mpp_y) = resolution_mpp(values);
        properties.mpp_x = mpp_x;
        properties.mpp_y = mpp_y;

        let mut stored = Vec::new();
        let mut macro_strip = None;
        for (index, ifd) in chain.into_iter().enumerate() {
            let Some(lens) = source_lens(&reader, &ifd) else { continue };
            if lens == -1.0 && macro_strip.is_none() {
                // An unreadable macro strip is reported when the macro is read.
                macro_strip = Some(single_strip(&reader, &ifd, index).unwrap_or((0, 0)));
                continue;
            }
            if lens <= 0.0 || signed(&reader, &ifd, FOCAL_PLANE).unwrap_or(0) != 0 {
                continue;
            }
            if properties.objective_power.is_none() {
                properties.objective_power = Some(f64::from(lens));
            }
            let image = describe(&reader, index, ifd).map_err(err)?;
            if image.compression_code != 7 {
                return Err(err(ErrorKind::UnsupportedCompression {
                    ifd: index,
                    value: image.compression_code,
                    name: tags::compression_name(image.compression_code),
                }));
            }
            let level = Stored::read(&reader, index, &image.ifd, image.width, image.height).map_err(err)?;
            if let Some(prev) = stored.last() {
                let prev: &Stored = prev;
                if level.width >= prev.width {
                    return Err(err(ErrorKind::Invalid(format!(
                        "IFD {index}: level width {} is not smaller than the previous level's {}",
                        level.width, prev.width
                    ))));
                }
            }
            stored.push(level);
        }
        if stored.is_empty() {
            return Err(err(ErrorKind::NoLevels("no NDPI image with a SourceLens above 0 on focal plane 0".into())));
        }
        let levels = plan_levels(&stored);
        let infos: Vec<LevelInfo> = levels.iter().map(|l| l.info.clone()).collect();
        standard_properties(&mut properties, &infos);
        Ok(NdpiSlide {
            path: path.to_path_buf(),
            reader,
            stored,
            levels,
            infos,
            properties,
            macro_strip,
            whole_cache: TileCache::new(WHOLE_CACHE_BYTES),
        })
    }

    fn err(&self, kind: ErrorKind) -> SlideError {
        SlideError::new(&self.path, kind)
    }
}

/// The levels callers see: each stored level and its 1/2, 1/4, 1/8 (where its interval size
/// divides), one per width, a later stored level's winning; largest first.
fn plan_levels(stored: &[Stored]) -> Vec<Level> {
    let mut by_width: BTreeMap<u64, Level> = BTreeMap::new();
    let (w0, h0) = (stored[0].width as f64, stored[0].height as f64);
    for (i, s) in stored.iter().enumerate() {
        let (unit_w, unit_h) = match s.layout {
            Layout::Intervals { iv_w, iv_h, .. } => (iv_w, iv_h),
            Layout::Whole { w, h } => (w, h),
        };
        for scale in [1u64, 2, 4, 8] {
            if unit_w % scale != 0 || unit_h % scale != 0 {
                break;
            }
            let (width, height) = (s.width.div_ceil(scale), s.height.div_ceil(scale));
            let (block_cols, block_rows, tile_w, tile_h) = match s.layout {
                Layout::Intervals { iv_w, iv_h, across, down, .. } => {
                    let edge = BLOCK_EDGE * scale;
                    let cols = (edge / iv_w).clamp(1, across);
                    let rows = (edge / iv_h).clamp(1, down);
                    (cols, rows, cols * iv_w / scale, rows * iv_h / scale)
                }
                Layout::Whole { w, h } => (1, 1, w.div_ceil(scale), h.div_ceil(scale)),
            };
            let downsample = (w0 / width as f64 + h0 / height as f64) / 2.0;
            let info = LevelInfo {
                width,
                height,
                downsample,
                tile_width: tile_w as u32,
                tile_height: tile_h as u32,
                compression: Compression::Jpeg,
            };
            by_width.insert(width, Level { stored: i, scale, block_cols, block_rows, info });
        }
    }
    by_width.into_values().rev().collect()
}

impl Stored {
    /// Read a level IFD's strip header and work out its tiles.
    fn read(
        reader: &TiffReader,
        index: usize,
        ifd: &Ifd,
        tiff_w: u64,
        tiff_h: u64,
    ) -> std::result::Result<Self, ErrorKind> {
        let (strip_offset, strip_len) = single_strip(reader, ifd, index)?;
        let limits = reader.limits();
        let max_header = limits.ndpi_jpeg_header_bytes;
        let bad = |what: String| ErrorKind::Invalid(format!("IFD {index}: {what}"));
        let mut want = strip_len.min(HEADER_PROBE_BYTES);
        let header = loop {
            let head = reader.read_bytes(strip_offset, want, &format!("the JPEG header of IFD {index}"))?;
            match parse_header(&head).map_err(&bad)? {
                Some(h) => break h,
                None if want < strip_len.min(max_header) => want = strip_len.min(max_header),
                None => return Err(bad(format!("no JPEG scan within the first {want} bytes of the strip"))),
            }
        };
        let (width, height, layout) = if header.restart_interval == 0 {
            // One tile: the JPEG's own size wins over the TIFF's.
            let (w, h) = (u64::from(header.width), u64::from(header.height));
            if w == 0 || h == 0 {
                return Err(bad(format!("a {w}×{h} JPEG")));
            }
            if w * h > limits.ndpi_whole_jpeg_pixels {
                return Err(bad(format!(
                    "a {w}×{h} JPEG without restart markers is too large to decode whole \
                     (the limit is {} pixels)",
                    limits.ndpi_whole_jpeg_pixels
                )));
            }
            (w, h, Layout::Whole { w, h })
        } else {
            if tiff_w == 0 || tiff_h == 0 {
                return Err(bad(format!("image size {tiff_w}×{tiff_h}")));
            }
            let ri = u64::from(header.restart_interval);
            // From the TIFF size: the SOF's 16-bit size cannot hold the largest levels.
            let mcus_per_row = tiff_w.div_ceil(header.mcu_w);
            let mcu_rows = tiff_h.div_ceil(header.mcu_h);
            if ri > mcus_per_row || mcus_per_row % ri != 0 {
                return Err(bad(format!(
                    "restart interval {ri} does not divide the {mcus_per_row} MCUs of a row into whole tiles"
                )));
            }
            let (across, down) = (mcus_per_row / ri, mcu_rows);
            if across.saturating_mul(down) > limits.ndpi_restart_intervals {
                let max = limits.ndpi_restart_intervals;
                return Err(bad(format!("{across}×{down} restart intervals (the limit is {max})")));
            }
            let (iv_w, iv_h) = (header.mcu_w * ri, header.mcu_h);
            // OpenSlide's tile grid: whole intervals inside the TIFF size.
            let (grid_across, grid_down) = ((tiff_w / iv_w).min(across), (tiff_h / iv_h).min(down));
            (tiff_w, tiff_h, Layout::Intervals { iv_w, iv_h, across, down, grid_across, grid_down })
        };
        let tag_starts = match (&layout, ifd.get(MCU_STARTS)) {
            (Layout::Intervals { across, down, .. }, Some(e)) if e.count == across * down => {
                let mut starts = reader.entry_u64s(e).unwrap_or_default();
                if let Some(high) = ifd.get(MCU_STARTS_HIGH).filter(|h| h.count == e.count) {
                    match reader.entry_u64s(high) {
                        Ok(high) => starts.iter_mut().zip(high).for_each(|(s, h)| *s |= h << 32),
                        Err(_) => starts.clear(),
                    }
                }
                starts
            }
            _ => Vec::new(),
        };
        Ok(Stored {
            ifd_index: index,
            width,
            height,
            strip_offset,
            strip_len,
            header,
            layout,
            tag_starts,
            tag_failed: AtomicBool::new(false),
            scanned: OnceLock::new(),
        })
    }

    fn intervals(&self) -> u64 {
        match self.layout {
            Layout::Intervals { across, down, .. } => across * down,
            Layout::Whole { .. } => 1,
        }
    }

    /// The bytes of interval `k` within the strip, without the restart marker (or EOI) after it.
    fn interval_range(&self, starts: &[u64], k: u64) -> Option<std::ops::Range<u64>> {
        let start = *starts.get(k as usize)?;
        let end = if k + 1 < self.intervals() { starts.get(k as usize + 1)?.checked_sub(2)? } else { self.strip_len };
        (start <= end && end <= self.strip_len).then_some(start..end)
    }

    /// Scan the strip for restart markers: the start of every interval found, in order.
    fn scan(&self, reader: &TiffReader) -> std::result::Result<Vec<u64>, String> {
        let n = self.intervals();
        let mut starts = vec![self.header.scan_start];
        let mut at = self.header.scan_start;
        let mut prev_ff = false;
        while at < self.strip_len && (starts.len() as u64) < n {
            let len = SCAN_CHUNK.min(self.strip_len - at);
            let chunk = reader.read_bytes(self.strip_offset + at, len, "the JPEG strip").map_err(|e| e.to_string())?;
            for (i, &b) in chunk.iter().enumerate() {
                if prev_ff && (0xD0..=0xD7).contains(&b) {
                    starts.push(at + i as u64 + 1);
                    if starts.len() as u64 == n {
                        break;
                    }
                } else if prev_ff && b == 0xD9 {
                    return Ok(starts);
                }
                prev_ff = b == 0xFF;
            }
            at += len;
        }
        Ok(starts)
    }

    /// The scanned interval starts (scanning on first need).
    fn scanned_starts(&self, reader: &TiffReader) -> std::result::Result<&[u64], String> {
        match self.scanned.get_or_init(|| self.scan(reader)) {
            Ok(starts) => Ok(starts),
            Err(e) => Err(format!("scanning the strip for restart markers: {e}")),
        }
    }
}

/// Average `s`×`s` pixels (fewer at the right and bottom edges) of a `w`×`h` RGBA image.
fn reduce(rgba: Vec<u8>, w: u64, h: u64, s: u64) -> Vec<u8> {
    if s == 1 {
        return rgba;
    }
    let (ow, oh) = (w.div_ceil(s), h.div_ceil(s));
    let mut out = vec![0u8; (ow * oh * 4) as usize];
    let w = w as usize;
    for oy in 0..oh as usize {
        let y0 = oy * s as usize;
        let y1 = (y0 + s as usize).min(h as usize);
        for ox in 0..ow as usize {
            let x0 = ox * s as usize;
            let x1 = (x0 + s as usize).min(w);
            let mut sum = [0u32; 4];
            for y in y0..y1 {
                for px in rgba[(y * w + x0) * 4..(y * w + x1) * 4].chunks_exact(4) {
                    for c in 0..4 {
                        sum[c] += u32::from(px[c]);
                    }
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            let o = &mut out[(oy * ow as usize + ox) * 4..][..4];
            for c in 0..4 {
                o[c] = ((sum[c] + n / 2) / n) as u8;
            }
        }
    }
    out
}

/// Copy a `w`×`h` RGBA image into the top-left corner of a `tw`×`th` one (clipped).
fn place(rgba: Vec<u8>, w: u64, h: u64, tw: u64, th: u64) -> Vec<u8> {
    if (w, h) == (tw, th) {
        return rgba;
    }
    let mut out = vec![0u8; (tw * th * 4) as usize];
    let run = (w.min(tw) * 4) as usize;
    for y in 0..h.min(th) as usize {
        out[y * tw as usize * 4..][..run].copy_from_slice(&rgba[y * w as usize * 4..][..run]);
    }
    out
}

impl NdpiSlide {
    fn chunk_format(s: &Stored) -> ChunkFormat {
        if s.header.components == 1 {
            ChunkFormat::simple(Compression::Jpeg, Photometric::BlackIsZero, 1)
        } else {
            ChunkFormat::simple(Compression::Jpeg, Photometric::YCbCr, 3)
        }
    }

    /// A stored level's whole JPEG (no restart markers), decoded; cached for the levels made from it.
    fn decode_whole(&self, si: usize, s: &Stored) -> std::result::Result<Arc<TilePixels>, String> {
        let key = TileKey { slide: 0, level: si as u32, col: 0, row: 0 };
        if let Some(t) = self.whole_cache.get(&key) {
            return Ok(t);
        }
        let Layout::Whole { w, h } = s.layout else { return Err("not a whole JPEG".into()) };
        if s.strip_len > self.reader.limits().ndpi_strip_bytes {
            return Err(format!("a strip of {} bytes is larger than any real level JPEG", s.strip_len));
        }
        let data = self.reader.read_data(s.strip_offset, s.strip_len, "the JPEG strip").map_err(|e| e.to_string())?;
        let rgba = decode_chunk(&Self::chunk_format(s), &data, w as u32, h as u32)?;
        let tile = Arc::new(TilePixels { width: w as u32, height: h as u32, rgba });
        self.whole_cache.insert(key, tile.clone());
        Ok(tile)
    }

    /// A block of intervals of a stored level (columns `cols`, rows `rows` of its interval grid)
    /// decoded as one JPEG: RGBA of the block's size. The McuStarts table is used while the
    /// restart markers around every interval it places agree with it; else the scanned starts.
    fn decode_block(
        &self,
        s: &Stored,
        cols: std::ops::Range<u64>,
        rows: std::ops::Range<u64>,
    ) -> std::result::Result<Vec<u8>, String> {
        let Layout::Intervals { iv_w, iv_h, .. } = s.layout else { return Err("not in intervals".into()) };
        let (bw, bh) = ((cols.end - cols.start) * iv_w, (rows.end - rows.start) * iv_h);
        if bw > u64::from(u16::MAX) || bh > u64::from(u16::MAX) {
            return Err(format!("a {bw}×{bh} block"));
        }
        let mut jpeg = None;
        if !s.tag_starts.is_empty() && !s.tag_failed.load(Ordering::Relaxed) {
            jpeg = self.block_jpeg(s, &s.tag_starts, &cols, &rows, bw, bh, true)?;
            if jpeg.is_none() {
                s.tag_failed.store(true, Ordering::Relaxed);
            }
        }
        let jpeg = match jpeg {
            Some(j) => j,
            None => {
                let starts = s.scanned_starts(&self.reader)?;
                self.block_jpeg(s, starts, &cols, &rows, bw, bh, false)?
                    .ok_or("the restart markers do not match the scan")?
            }
        };
        Ok(decode_chunk(&Self::chunk_format(s), &jpeg, bw as u32, bh as u32)?)
    }

    /// The JPEG of a block: the level's header with the block's size, its intervals in raster
    /// order, restart markers renumbered, EOI. With `check`, `Ok(None)` when `starts` misplaces an
    /// interval (the markers around it are not where and what they should be); without, the
    /// starts are the scanned ones, and an interval missing from them is an error.
    #[allow(clippy::too_many_arguments)]
    fn block_jpeg(
        &self,
        s: &Stored,
        starts: &[u64],
        cols: &std::ops::Range<u64>,
        rows: &std::ops::Range<u64>,
        bw: u64,
        bh: u64,
        check: bool,
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        let Layout::Intervals { across, .. } = s.layout else { return Err("not in intervals".into()) };
        let n = s.intervals();
        let mut pieces = Vec::with_capacity((rows.end - rows.start) as usize);
        let mut total = 0u64;
        for r in rows.clone() {
            let (k0, k1) = (r * across + cols.start, r * across + cols.end);
            let (Some(first), Some(last)) = (s.interval_range(starts, k0), s.interval_range(starts, k1 - 1)) else {
                if check {
                    return Ok(None);
                }
                let k = (k0..k1).find(|&k| s.interval_range(starts, k).is_none()).unwrap_or(k0);
                return Err(format!(
                    "restart interval {k} was not found in the strip (cut short, or its markers damaged)"
                ));
            };
            if first.start > last.end {
                return if check { Ok(None) } else { Err(format!("restart intervals {k0}..{k1} out of order")) };
            }
            // Read the markers before and after the row's intervals too, to check them.
            let lo = first.start.saturating_sub(2);
            let hi = (last.end + 2).min(s.strip_len);
            total += hi - lo;
            let max = self.reader.limits().ndpi_strip_bytes;
            if total > max {
                return Err(format!("more than {max} bytes of JPEG data for one tile"));
            }
            let bytes =
                self.reader.read_data(s.strip_offset + lo, hi - lo, "the JPEG strip").map_err(|e| e.to_string())?;
            let mut ranges = Vec::with_capacity((k1 - k0) as usize);
            for k in k0..k1 {
                let Some(range) = s.interval_range(starts, k) else {
                    return if check { Ok(None) } else { Err(format!("restart interval {k} was not found")) };
                };
                if range.start < first.start || range.end > last.end {
                    return if check { Ok(None) } else { Err(format!("restart interval {k} out of order")) };
                }
                if check {
                    let marker = |pos: u64, m: u64| {
                        let at = (pos - lo) as usize;
                        bytes.get(at..at + 2) == Some(&[0xFF, 0xD0 + (m % 8) as u8][..])
                    };
                    let before = if k == 0 {
                        range.start == s.header.scan_start
                    } else {
                        range.start >= 2 && marker(range.start - 2, k - 1)
                    };
                    if !before || (k + 1 < n && !marker(range.end, k)) {
                        return Ok(None);
                    }
                }
                ranges.push((range.start - lo) as usize..(range.end - lo) as usize);
            }
            pieces.push((bytes, ranges));
        }
        let mut jpeg = Vec::with_capacity(s.header.bytes.len() + total as usize + 2);
        jpeg.extend_from_slice(&s.header.bytes);
        let at = s.header.sof_at;
        jpeg[at..at + 2].copy_from_slice(&(bh as u16).to_be_bytes());
        jpeg[at + 2..at + 4].copy_from_slice(&(bw as u16).to_be_bytes());
        let mut j = 0u64;
        for (bytes, ranges) in &pieces {
            for range in ranges {
                if j > 0 {
                    jpeg.extend_from_slice(&[0xFF, 0xD0 + ((j - 1) % 8) as u8]);
                }
                let mut piece = &bytes[range.clone()];
                // The strip's last interval ends at EOI.
                if piece.ends_with(&[0xFF, 0xD9]) {
                    piece = &piece[..piece.len() - 2];
                }
                jpeg.extend_from_slice(piece);
                j += 1;
            }
        }
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        Ok(Some(jpeg))
    }

    fn tile_pixels(&self, l: &Level, col: u64, row: u64) -> std::result::Result<TilePixels, String> {
        let s = &self.stored[l.stored];
        let (tw, th) = (u64::from(l.info.tile_width), u64::from(l.info.tile_height));
        let (w, h, rgba) = match s.layout {
            Layout::Whole { w, h } => {
                let whole = self.decode_whole(l.stored, s)?;
                (w, h, whole.rgba.clone())
            }
            Layout::Intervals { iv_w, iv_h, grid_across, grid_down, .. } => {
                let (c0, r0) = (col * l.block_cols, row * l.block_rows);
                if c0 >= grid_across || r0 >= grid_down {
                    // Past OpenSlide's grid of whole intervals: nothing there.
                    return Ok(TilePixels {
                        width: tw as u32,
                        height: th as u32,
                        rgba: vec![0; (tw * th * 4) as usize],
                    });
                }
                let (c1, r1) = ((c0 + l.block_cols).min(grid_across), (r0 + l.block_rows).min(grid_down));
                let rgba = self.decode_block(s, c0..c1, r0..r1)?;
                ((c1 - c0) * iv_w, (r1 - r0) * iv_h, rgba)
            }
        };
        let small = reduce(rgba, w, h, l.scale);
        let rgba = place(small, w.div_ceil(l.scale), h.div_ceil(l.scale), tw, th);
        Ok(TilePixels { width: tw as u32, height: th as u32, rgba })
    }
}

impl SlideSource for NdpiSlide {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format_name(&self) -> &'static str {
        FORMAT.name
    }

    fn levels(&self) -> &[LevelInfo] {
        // Kept apart from `self.levels` so that callers get a slice.
        self.infos.as_slice()
    }

    fn properties(&self) -> &SlideProperties {
        &self.properties
    }

    fn associated_names(&self) -> Vec<String> {
        self.macro_strip.iter().map(|_| "macro".to_string()).collect()
    }

    fn read_associated(&self, name: &str) -> Result<image::RgbaImage> {
        let Some((offset, len)) = self.macro_strip.filter(|_| name == "macro") else {
            return Err(self.err(ErrorKind::no_such_associated(name, &self.associated_names())));
        };
        let bad = |reason: String| self.err(ErrorKind::CorruptAssociated { name: name.into(), reason });
        if len == 0 {
            return Err(bad("its strip is missing or lies outside the file".into()));
        }
        if len > self.reader.limits().ndpi_strip_bytes {
            return Err(bad(format!("a strip of {len} bytes")));
        }
        let data = self.reader.read_bytes(offset, len, "the macro's JPEG strip").map_err(|e| bad(e.to_string()))?;
        decode_jpeg_image(&data, self.reader.limits().associated_pixels).map_err(|e| bad(e.into()))
    }

    fn decode_tile(&self, level: usize, col: u64, row: u64) -> Result<TilePixels> {
        let l = self
            .levels
            .get(level)
            .ok_or_else(|| self.err(ErrorKind::NoSuchLevel { level, count: self.levels.len() }))?;
        let (cols, rows) = (l.info.tiles_across(), l.info.tiles_down());
        if col >= cols || row >= rows {
            return Err(self.err(ErrorKind::NoSuchTile { level, col, row, cols, rows }));
        }
        self.tile_pixels(l, col, row).map_err(|reason| {
            let ifd = self.stored[l.stored].ifd_index;
            self.err(ErrorKind::CorruptTile { level, col, row, reason: format!("IFD {ifd}: {reason}") })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG header: SOI, DQT stub, SOF0 (w×h, the components' sampling), DRI, APP1 (dropped),
    /// SOS.
    fn header(w: u16, h: u16, sampling: &[u8], dri: u16) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xDB, 0, 3, 0];
        let n = sampling.len() as u8;
        j.extend_from_slice(&[0xFF, 0xC0, 0, 8 + 3 * n, 8]);
        j.extend_from_slice(&h.to_be_bytes());
        j.extend_from_slice(&w.to_be_bytes());
        j.push(n);
        for (i, &s) in sampling.iter().enumerate() {
            j.extend_from_slice(&[i as u8 + 1, s, 0]);
        }
        j.extend_from_slice(&[0xFF, 0xDD, 0, 4]);
        j.extend_from_slice(&dri.to_be_bytes());
        j.extend_from_slice(&[0xFF, 0xE1, 0, 4, b'x', b'y']);
        j.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
        j
    }

    #[test]
    fn header_gives_mcu_restart_interval_and_scan_start() {
        let j = header(3072, 2304, &[0x21, 0x11, 0x11], 16);
        let h = parse_header(&j).expect("parses").expect("complete");
        assert_eq!((h.width, h.height, h.components), (3072, 2304, 3));
        assert_eq!((h.mcu_w, h.mcu_h, h.restart_interval), (16, 8, 16));
        assert_eq!(h.scan_start, j.len() as u64);
        // The APP1 segment is left out; the SOF's size is where `sof_at` says.
        assert_eq!(h.bytes.len(), j.len() - 6);
        assert_eq!(&h.bytes[h.sof_at..h.sof_at + 4], &[0x09, 0x00, 0x0C, 0x00]);
        let h = parse_header(&header(64, 64, &[0x22, 0x11, 0x11], 0)).expect("parses").expect("complete");
        assert_eq!((h.mcu_w, h.mcu_h, h.restart_interval), (16, 16, 0));
        // Cut anywhere before the scan: more bytes are needed, no error and no panic.
        for cut in 2..j.len() {
            assert!(matches!(parse_header(&j[..cut]), Ok(None)), "cut at {cut}");
        }
    }

    #[test]
    fn header_refuses_what_cannot_be_read_in_intervals() {
        let mut progressive = header(64, 64, &[0x11, 0x11, 0x11], 4);
        progressive[8] = 0xC2;
        assert!(parse_header(&progressive).is_err_and(|e| e.contains("baseline")));
        assert!(parse_header(&header(64, 64, &[0x11, 0x11], 4)).is_err_and(|e| e.contains("2 components")));
        assert!(parse_header(&header(64, 64, &[0x51, 0x11, 0x11], 4)).is_err_and(|e| e.contains("sampling")));
        assert!(parse_header(b"\xFF\xD8\x00").is_err());
        assert!(parse_header(b"GIF89a").is_err());
        let mut eoi = header(64, 64, &[0x11, 0x11, 0x11], 4);
        eoi.splice(2..2, [0xFF, 0xD9]);
        assert!(parse_header(&eoi).is_err());
    }

    #[test]
    fn reduce_averages_blocks_and_edges() {
        // 3×1 RGBA: values 0, 10, 20 (alpha 255); halved: (0+10)/2 = 5, 20 alone.
        let px = |v: u8| [v, v, v, 255];
        let rgba: Vec<u8> = [0u8, 10, 20].into_iter().flat_map(px).collect();
        assert_eq!(reduce(rgba.clone(), 3, 1, 2), [px(5), px(20)].concat());
        assert_eq!(reduce(rgba.clone(), 3, 1, 4), px(10).to_vec());
        assert_eq!(reduce(rgba.clone(), 3, 1, 1), rgba);
        assert_eq!(place(px(7).to_vec(), 1, 1, 2, 1), [px(7), [0; 4]].concat());
    }
}
