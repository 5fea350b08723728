//! Decoders for the compressions found in slide tiles, producing RGBA8 directly.
//!
//! JPEG goes through zune-jpeg (pure Rust, SIMD), which decoded slide tiles about twice as fast as
//! jpeg-decoder here (see BENCHMARKS.md); Deflate through flate2, LZW through weezl.

use std::io::Read;
use std::sync::Arc;

use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Compressions the engine decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed samples (TIFF 1, DICOM native pixel data).
    None,
    /// LZW (TIFF 6.0 section 13), MSB-first codes as libtiff writes them.
    Lzw,
    /// Baseline JPEG (TIFF 7, TIFF Technical Note 2; DICOM 1.2.840.10008.1.2.4.50), tables shared
    /// through JPEGTables or in each tile.
    Jpeg,
    /// zlib Deflate (TIFF 8 and 32946).
    Deflate,
    /// A raw JPEG 2000 codestream (Aperio 33003/33005, DICOM JPEG 2000 frames).
    Jpeg2000,
}

impl Compression {
    /// Map a TIFF compression code; `None` when not supported.
    pub fn from_tiff(code: u16) -> Option<Self> {
        match code {
            1 => Some(Compression::None),
            5 => Some(Compression::Lzw),
            7 => Some(Compression::Jpeg),
            8 | 32946 => Some(Compression::Deflate),
            // Aperio: 33003 holds Y, Cb, Cr without the colour transform, 33005 RGB with it.
            33003 | 33005 => Some(Compression::Jpeg2000),
            _ => None,
        }
    }

    /// Human name for messages ("JPEG 2000", "LZW", …).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lzw => "LZW",
            Compression::Jpeg => "JPEG",
            Compression::Deflate => "Deflate",
            Compression::Jpeg2000 => "JPEG 2000",
        }
    }
}

/// Colour model of the stored samples (TIFF Photometric, reduced to what we decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Photometric {
    /// Grey, 0 is white (TIFF 0): inverted on decode.
    WhiteIsZero,
    /// Grey, 0 is black (TIFF 1).
    BlackIsZero,
    /// Red, green, blue samples (TIFF 2).
    Rgb,
    /// Only inside JPEG or JPEG 2000 data: JPEG's decoder converts to RGB; for JPEG 2000 it
    /// means components Y, Cb, Cr stored without the codestream's colour transform (Aperio 33003),
    /// which wsiview converts (full-range BT.601, as OpenSlide does).
    YCbCr,
}

/// Everything needed to turn one stored chunk (tile or strip) into RGBA pixels.
#[derive(Clone, Debug)]
pub struct ChunkFormat {
    /// How the chunk is compressed.
    pub compression: Compression,
    /// What its samples mean.
    pub photometric: Photometric,
    /// 1 (grey), 3 (RGB) or 4 (RGB + extra sample).
    pub samples: u16,
    /// TIFF Predictor 2 (horizontal differencing) for LZW/Deflate.
    pub horizontal_predictor: bool,
    /// The shared JPEG quantisation/Huffman tables (TIFF tag 347), SOI…EOI.
    pub jpeg_tables: Option<Arc<[u8]>>,
    /// Bits per sample of uncompressed, LZW and Deflate data: 8 or 16. 16-bit samples become
    /// 8-bit as libtiff's RGBA interface (hence OpenSlide) makes them: grey takes the high byte,
    /// colour and alpha `(v + 128) / 257`. Signed 8-bit samples are taken as their bits, as there.
    pub bits: u8,
    /// Byte order of 16-bit samples (the file's).
    pub big_endian: bool,
    /// PlanarConfiguration 2: each sample of a chunk is stored as its own chunk (a plane); see
    /// [`decode_planes`].
    pub planar: bool,
}

impl ChunkFormat {
    /// 8-bit, interleaved: what most slides store.
    pub fn simple(compression: Compression, photometric: Photometric, samples: u16) -> Self {
        ChunkFormat {
            compression,
            photometric,
            samples,
            horizontal_predictor: false,
            jpeg_tables: None,
            bits: 8,
            big_endian: false,
            planar: false,
        }
    }

    fn bytes_per_sample(&self) -> usize {
        if self.bits == 16 {
            2
        } else {
            1
        }
    }
}

/// Why a chunk or an image could not be decoded. Displayed as one line (the short reason that
/// [`crate::ErrorKind::CorruptTile`] and [`crate::ErrorKind::CorruptAssociated`] carry); the
/// caller adds which tile of which file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The compressed stream is damaged or not supported: the codec ("JPEG", "JPEG 2000",
    /// "Deflate", "LZW") and its decoder's message, on one line.
    #[error("{codec}: {message}")]
    Codec {
        /// The codec's name.
        codec: &'static str,
        /// What its decoder said.
        message: String,
    },
    /// The data does not fit the chunk it is for: too few bytes, samples or planes, a sample
    /// layout that has no RGBA reading.
    #[error("{0}")]
    Shape(String),
    /// A whole image whose header claims more pixels than the caller's cap (or none).
    #[error("{what} of {width}×{height} pixels")]
    TooLarge {
        /// The kind of image ("JPEG").
        what: &'static str,
        /// Pixels across, as its header says.
        width: u64,
        /// Pixels down, as its header says.
        height: u64,
    },
}

impl From<DecodeError> for String {
    fn from(e: DecodeError) -> String {
        e.to_string()
    }
}

/// A codec's message as one line (zune-jpeg's can span lines).
fn codec(codec: &'static str, message: impl std::fmt::Display) -> DecodeError {
    DecodeError::Codec { codec, message: message.to_string().split_whitespace().collect::<Vec<_>>().join(" ") }
}

fn shape(message: String) -> DecodeError {
    DecodeError::Shape(message)
}

/// Decode one chunk of `width`×`height` pixels into RGBA8 (row-major, `width*4` bytes a row).
/// Errors: [`DecodeError`]; the caller adds which tile of which file.
pub fn decode_chunk(format: &ChunkFormat, data: &[u8], width: u32, height: u32) -> Result<Vec<u8>, DecodeError> {
    match format.compression {
        Compression::Jpeg => return decode_jpeg(format, data, width, height),
        Compression::Jpeg2000 => return decode_j2k(format, data, width, height),
        _ => {}
    }
    let raw = decode_samples(format, data, width, height)?;
    samples_to_rgba(format, &to_8bit(format, raw), width, height)
}

/// A chunk stored as separate planes (PlanarConfiguration 2): `planes[s]` holds sample `s` of
/// every pixel (`None`: a plane never written, read as zeros). Each plane is decoded as a
/// one-sample chunk, then the samples are interleaved.
pub fn decode_planes(
    format: &ChunkFormat,
    planes: &[Option<Vec<u8>>],
    width: u32,
    height: u32,
) -> Result<Vec<u8>, DecodeError> {
    if matches!(format.compression, Compression::Jpeg | Compression::Jpeg2000) {
        return Err(shape(format!("{} with separate planes", format.compression.name())));
    }
    let spp = format.samples as usize;
    if planes.len() != spp {
        return Err(shape(format!("{} planes where {spp} are needed", planes.len())));
    }
    let bps = format.bytes_per_sample();
    let plane_len = width as usize * height as usize * bps;
    let one = ChunkFormat { samples: 1, planar: false, ..format.clone() };
    let mut raw = vec![0u8; plane_len * spp];
    for (s, plane) in planes.iter().enumerate() {
        let Some(data) = plane else { continue };
        let samples = decode_samples(&one, data, width, height)?;
        for (i, value) in samples.chunks_exact(bps).enumerate() {
            raw[(i * spp + s) * bps..][..bps].copy_from_slice(value);
        }
    }
    samples_to_rgba(format, &to_8bit(format, raw), width, height)
}

/// 16-bit samples (in the file's byte order) to 8 bits as libtiff's RGBA interface does; 8-bit
/// data unchanged.
fn to_8bit(format: &ChunkFormat, raw: Vec<u8>) -> Vec<u8> {
    if format.bits != 16 {
        return raw;
    }
    let grey = format.samples == 1;
    raw.chunks_exact(2)
        .map(|b| {
            let v = if format.big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) };
            if grey {
                (v >> 8) as u8
            } else {
                ((u32::from(v) + 128) / 257) as u8
            }
        })
        .collect()
}

/// Uncompressed samples of a chunk (any bit depth), the predictor undone.
fn decode_samples(format: &ChunkFormat, data: &[u8], width: u32, height: u32) -> Result<Vec<u8>, DecodeError> {
    let expected = width as usize * height as usize * format.samples as usize * format.bytes_per_sample();
    match format.compression {
        Compression::Jpeg | Compression::Jpeg2000 => {
            Err(shape(format!("{} data is not a sample array", format.compression.name())))
        }
        Compression::None => {
            if data.len() < expected {
                return Err(shape(format!("{} bytes of pixel data where {expected} are needed", data.len())));
            }
            Ok(data[..expected].to_vec())
        }
        Compression::Deflate => {
            let mut raw = Vec::with_capacity(expected);
            // `take` bounds the output: a hostile stream cannot inflate past the tile's size.
            flate2::read::ZlibDecoder::new(data)
                .take(expected as u64)
                .read_to_end(&mut raw)
                .map_err(|e| codec("Deflate", e))?;
            finish_raw(format, raw, width)
        }
        Compression::Lzw => {
            let mut raw = Vec::with_capacity(expected);
            let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let result = decoder.into_vec(&mut raw).decode(data);
            if let Err(e) = result.status {
                // Many writers omit the end code or pad; keep what decoded if it is complete.
                if raw.len() < expected {
                    return Err(codec("LZW", e));
                }
            }
            raw.truncate(expected);
            finish_raw(format, raw, width)
        }
    }
}

fn finish_raw(format: &ChunkFormat, mut raw: Vec<u8>, width: u32) -> Result<Vec<u8>, DecodeError> {
    if format.horizontal_predictor {
        if format.bits == 16 {
            undo_horizontal_predictor_16(&mut raw, width as usize, format.samples as usize, format.big_endian);
        } else {
            undo_horizontal_predictor(&mut raw, width as usize, format.samples as usize);
        }
    }
    Ok(raw)
}

/// Predictor 2 on 16-bit samples: each sample is the wrapping sum of the difference and the
/// same sample of the pixel before (TIFF 6.0, section 14).
fn undo_horizontal_predictor_16(raw: &mut [u8], width: usize, samples: usize, big_endian: bool) {
    let row_len = width * samples * 2;
    if row_len == 0 {
        return;
    }
    let read = |b: &[u8]| if big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) };
    for row in raw.chunks_mut(row_len) {
        let n = row.len() / 2;
        for i in samples..n {
            let v = read(&row[i * 2..]).wrapping_add(read(&row[(i - samples) * 2..]));
            let bytes = if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
            row[i * 2..i * 2 + 2].copy_from_slice(&bytes);
        }
    }
}

fn undo_horizontal_predictor(raw: &mut [u8], width: usize, samples: usize) {
    let row_len = width * samples;
    if row_len == 0 {
        return;
    }
    for row in raw.chunks_mut(row_len) {
        for i in samples..row.len() {
            row[i] = row[i].wrapping_add(row[i - samples]);
        }
    }
}

/// Expand interleaved 8-bit samples to RGBA.
fn samples_to_rgba(format: &ChunkFormat, raw: &[u8], width: u32, height: u32) -> Result<Vec<u8>, DecodeError> {
    let pixels = width as usize * height as usize;
    let spp = format.samples as usize;
    if raw.len() < pixels * spp {
        return Err(shape(format!(
            "{} bytes of pixel data where {} are needed for {width}×{height}×{spp}",
            raw.len(),
            pixels * spp
        )));
    }
    let raw = &raw[..pixels * spp];
    let mut out = vec![0u8; pixels * 4];
    match spp {
        1 => {
            let invert = format.photometric == Photometric::WhiteIsZero;
            for (o, &g) in out.chunks_exact_mut(4).zip(raw) {
                let g = if invert { 255 - g } else { g };
                o.copy_from_slice(&[g, g, g, 255]);
            }
        }
        3 => {
            for (o, s) in out.chunks_exact_mut(4).zip(raw.chunks_exact(3)) {
                o.copy_from_slice(&[s[0], s[1], s[2], 255]);
            }
        }
        4 => out.copy_from_slice(raw),
        n => return Err(shape(format!("{n} samples per pixel"))),
    }
    Ok(out)
}

/// Splice the shared tables in front of the tile's own stream: tables without their EOI, then the
/// tile without its SOI — one valid JPEG, as libtiff's JPEG codec reads it (and a complete
/// interchange stream, as a DICOM frame must be).
pub fn with_tables(tables: Option<&[u8]>, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err(codec("JPEG", "data does not start with an SOI marker"));
    }
    match tables {
        Some(t) if t.len() >= 4 && t.ends_with(&[0xFF, 0xD9]) => {
            let mut joined = Vec::with_capacity(t.len() + data.len());
            joined.extend_from_slice(&t[..t.len() - 2]);
            joined.extend_from_slice(&data[2..]);
            Ok(joined)
        }
        _ => Ok(data.to_vec()),
    }
}

/// zune-jpeg's messages can span lines; ours are one line.
fn jpeg_error(e: impl std::fmt::Display) -> DecodeError {
    codec("JPEG", e)
}

fn decode_jpeg(format: &ChunkFormat, data: &[u8], width: u32, height: u32) -> Result<Vec<u8>, DecodeError> {
    let stream = with_tables(format.jpeg_tables.as_deref(), data)?;
    // The frame may not claim more than the tile: a forged SOF must not make the decoder allocate
    // gigabytes. (Some writers pad to whole MCUs, hence the 16-pixel slack.)
    let options = DecoderOptions::default()
        .set_max_width(width as usize + 16)
        .set_max_height(height as usize + 16)
        .set_strict_mode(true);
    // Output options must be set when the decoder is made (zune-jpeg picks its converter while
    // reading headers; changing them later yields mis-strided pixels).
    let (out_space, channels) = if format.samples == 1 {
        (ColorSpace::Luma, 1)
    } else if format.photometric == Photometric::Rgb {
        // Aperio and others store RGB samples in JPEG without the colour transform; Photometric
        // RGB says so. If the decoder would take the components for YCbCr, ask for YCbCr out: no
        // conversion, and the "YCbCr" samples are the RGB ones.
        let mut probe = JpegDecoder::new_with_options(ZCursor::new(&stream[..]), options);
        probe.decode_headers().map_err(jpeg_error)?;
        match probe.input_colorspace() {
            Some(ColorSpace::YCbCr) => (ColorSpace::YCbCr, 3),
            Some(ColorSpace::Luma) => (ColorSpace::Luma, 1),
            // zune-jpeg has no RGB→RGBA path; take RGB and widen below.
            _ => (ColorSpace::RGB, 3),
        }
    } else {
        (ColorSpace::RGBA, 4)
    };
    let mut decoder =
        JpegDecoder::new_with_options(ZCursor::new(&stream[..]), options.jpeg_set_out_colorspace(out_space));
    let pixels = decoder.decode().map_err(jpeg_error)?;
    let info = decoder.info().ok_or_else(|| codec("JPEG", "no image information"))?;
    let (jw, jh) = (u32::from(info.width), u32::from(info.height));
    if pixels.len() < jw as usize * jh as usize * channels {
        return Err(codec("JPEG", "decoder returned too few pixels"));
    }
    let rgba = match channels {
        4 => pixels,
        3 => pixels.chunks_exact(3).flat_map(|s| [s[0], s[1], s[2], 255]).collect(),
        _ => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
    };
    if (jw, jh) == (width, height) {
        return Ok(rgba);
    }
    // A JPEG smaller or larger than the tile grid cell: place it at the top left, pad transparent.
    let mut out = vec![0u8; width as usize * height as usize * 4];
    let copy_w = jw.min(width) as usize * 4;
    for y in 0..jh.min(height) as usize {
        let src = &rgba[y * jw as usize * 4..][..copy_w];
        out[y * width as usize * 4..][..copy_w].copy_from_slice(src);
    }
    Ok(out)
}

/// A whole JPEG file (an associated image kept as a JPEG, e.g. Philips's base64 label) as RGBA;
/// refused before decoding when its frame claims more than `max_pixels`.
pub fn decode_jpeg_image(data: &[u8], max_pixels: u64) -> Result<image::RgbaImage, DecodeError> {
    let mut probe = JpegDecoder::new(ZCursor::new(data));
    probe.decode_headers().map_err(jpeg_error)?;
    let (w, h) = probe.dimensions().ok_or_else(|| codec("JPEG", "no frame header"))?;
    if w == 0 || h == 0 || (w as u64) * (h as u64) > max_pixels {
        return Err(DecodeError::TooLarge { what: "JPEG", width: w as u64, height: h as u64 });
    }
    let format = ChunkFormat::simple(Compression::Jpeg, Photometric::YCbCr, 3);
    let rgba = decode_jpeg(&format, data, w as u32, h as u32)?;
    image::RgbaImage::from_raw(w as u32, h as u32, rgba).ok_or_else(|| codec("JPEG", "wrong pixel count"))
}

/// The image size and per-component subsampling from a JPEG 2000 codestream's SIZ marker
/// (ISO/IEC 15444-1 A.5.1), read before decoding so that a forged size is refused cheaply.
struct J2kSize {
    width: u32,
    height: u32,
    /// (XRsiz, YRsiz) of each component.
    subsampling: Vec<(u8, u8)>,
}

fn j2k_size(data: &[u8]) -> Result<J2kSize, DecodeError> {
    if data.len() < 6 || data[..4] != [0xFF, 0x4F, 0xFF, 0x51] {
        return Err(codec("JPEG 2000", "the data does not start with SOC and SIZ markers"));
    }
    let be32 = |at: usize| data.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let be16 = |at: usize| data.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let short = || codec("JPEG 2000", "the SIZ marker is cut short");
    // After SOC (2) and the SIZ marker (2): Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, (tile fields), Csiz.
    let (xsiz, ysiz) = (be32(8).ok_or_else(short)?, be32(12).ok_or_else(short)?);
    let (xo, yo) = (be32(16).ok_or_else(short)?, be32(20).ok_or_else(short)?);
    let components = be16(40).ok_or_else(short)? as usize;
    let mut subsampling = Vec::with_capacity(components.min(16));
    for c in 0..components.min(16) {
        let at = 42 + c * 3;
        let s = data.get(at..at + 3).ok_or_else(short)?;
        subsampling.push((s[1], s[2]));
    }
    Ok(J2kSize { width: xsiz.saturating_sub(xo), height: ysiz.saturating_sub(yo), subsampling })
}

fn decode_j2k(format: &ChunkFormat, data: &[u8], width: u32, height: u32) -> Result<Vec<u8>, DecodeError> {
    decode_j2k_reduced(format, data, width, height, 0).map(|(_, _, rgba)| rgba)
}

/// Decode a JPEG 2000 chunk of `width`×`height` at 1/2^`reduce` of its size, skipping the
/// finest resolution levels (fewer levels are decoded, not the image scaled afterwards):
/// (width, height, RGBA) of the result, at least 1×1. `reduce` is capped by the codestream's
/// number of decomposition levels, so the size returned may be larger than asked.
pub fn decode_j2k_reduced(
    format: &ChunkFormat,
    data: &[u8],
    width: u32,
    height: u32,
    reduce: u8,
) -> Result<(u32, u32, Vec<u8>), DecodeError> {
    use hayro_jpeg2000::{DecodeSettings, DecoderContext, Image};
    let size = j2k_size(data)?;
    if size.width == 0 || size.height == 0 || size.width > width + 16 || size.height > height + 16 {
        return Err(codec(
            "JPEG 2000",
            format!("a {}×{} codestream in a {width}×{height} tile", size.width, size.height),
        ));
    }
    let reduce = u32::from(reduce.min(16));
    let target = (reduce > 0).then(|| ((size.width >> reduce).max(1), (size.height >> reduce).max(1)));
    let settings = DecodeSettings { resolve_palette_indices: false, strict: false, target_resolution: target };
    let image = Image::new(data, &settings).map_err(|e| codec("JPEG 2000", e))?;
    let (jw, jh) = (image.width() as usize, image.height() as usize);
    // The part of the tile cell the codestream covers, at the decoded scale.
    let scale = size.width as usize / jw.max(1);
    let (out_w, out_h) = ((width as usize).div_ceil(scale.max(1)), (height as usize).div_ceil(scale.max(1)));
    let mut context = DecoderContext::default();
    let decoded = image.decode(&mut context).map_err(|e| codec("JPEG 2000", e))?;
    let components = decoded.components();
    if components.is_empty() || components.iter().any(|c| c.samples().len() < jw * jh) {
        return Err(codec("JPEG 2000", "the decoder returned too few samples"));
    }
    // hayro converts Y, Cb, Cr itself only when the chroma is subsampled; otherwise a 33003
    // codestream comes out as its raw components and is converted here.
    let subsampled = matches!(size.subsampling.as_slice(), [y, cb, cr] if cb == cr && cb != y);
    let colour = components.len() >= 3;
    let convert = format.photometric == Photometric::YCbCr && colour && !subsampled;
    let to_u8 = |c: &hayro_jpeg2000::ComponentData| {
        let max = ((1u32 << c.bit_depth().clamp(1, 16)) - 1) as f32;
        let k = 255.0 / max;
        move |v: f32| (v * k).round().clamp(0.0, 255.0) as u8
    };
    let first = components[0].samples();
    let (second, third) = if colour { (components[1].samples(), components[2].samples()) } else { (first, first) };
    let (f0, f1, f2) = (
        to_u8(&components[0]),
        to_u8(&components[if colour { 1 } else { 0 }]),
        to_u8(&components[if colour { 2 } else { 0 }]),
    );
    let mut out = vec![0u8; out_w * out_h * 4];
    for y in 0..jh.min(out_h) {
        let row = y * jw;
        let dst = &mut out[y * out_w * 4..][..jw.min(out_w) * 4];
        for (x, px) in dst.chunks_exact_mut(4).enumerate() {
            let i = row + x;
            let (a, b, c) = (f0(first[i]), f1(second[i]), f2(third[i]));
            px.copy_from_slice(&if convert { ycbcr_to_rgba(a, b, c) } else { [a, b, c, 255] });
        }
    }
    Ok((out_w as u32, out_h as u32, out))
}

/// Full-range BT.601 (JFIF) Y, Cb, Cr to RGB, as OpenSlide converts Aperio 33003 tiles.
fn ycbcr_to_rgba(y: u8, cb: u8, cr: u8) -> [u8; 4] {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [clamp(y + 1.402 * cr), clamp(y - 0.34414 * cb - 0.71414 * cr), clamp(y + 1.772 * cb), 255]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictor_undoes_differences() {
        let mut row = vec![10, 20, 30, 1, 1, 1, 2, 2, 2];
        undo_horizontal_predictor(&mut row, 3, 3);
        assert_eq!(row, vec![10, 20, 30, 11, 21, 31, 13, 23, 33]);
    }

    #[test]
    fn deflate_round_trip_grey() {
        use std::io::Write;
        let pixels: Vec<u8> = (0..64u8).collect();
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&pixels).unwrap_or_default();
        let data = enc.finish().unwrap_or_default();
        let format = ChunkFormat::simple(Compression::Deflate, Photometric::BlackIsZero, 1);
        let rgba = decode_chunk(&format, &data, 8, 8).expect("decodes");
        assert_eq!(&rgba[4 * 9..4 * 10], &[9, 9, 9, 255]);
    }

    #[test]
    fn short_data_is_an_error_not_a_panic() {
        let format = ChunkFormat::simple(Compression::None, Photometric::Rgb, 3);
        assert!(decode_chunk(&format, &[1, 2, 3], 4, 4).is_err());
        let jpeg = ChunkFormat { compression: Compression::Jpeg, ..format };
        assert!(decode_chunk(&jpeg, &[0xFF, 0xD8, 0xFF, 0x00, 0x12], 4, 4).is_err());
    }

    #[test]
    fn sixteen_bit_and_separate_planes_as_libtiff_makes_them_8_bit() {
        // Two RGB pixels, 16-bit big-endian: 0xFFFF, 0x8080, 0x0000 and 0x0101, 0x7F7F, 0x80FF.
        let mut format = ChunkFormat::simple(Compression::None, Photometric::Rgb, 3);
        format.bits = 16;
        format.big_endian = true;
        let data = [0xFF, 0xFF, 0x80, 0x80, 0, 0, 0x01, 0x01, 0x7F, 0x7F, 0x80, 0xFF];
        let rgba = decode_chunk(&format, &data, 2, 1).expect("decodes");
        assert_eq!(rgba, vec![255, 128, 0, 255, 1, 127, 128, 255]);
        // Grey takes the high byte; little-endian here.
        let mut grey = ChunkFormat::simple(Compression::None, Photometric::BlackIsZero, 1);
        grey.bits = 16;
        assert_eq!(
            decode_chunk(&grey, &[0xFF, 0x80, 0x00, 0x01], 2, 1).expect("grey"),
            vec![128, 128, 128, 255, 1, 1, 1, 255]
        );
        // The same two pixels as three planes, each Deflate with the 16-bit predictor.
        let planes: Vec<Option<Vec<u8>>> = (0..3)
            .map(|s| {
                let (a, b) = (
                    u16::from_be_bytes([data[s * 2], data[s * 2 + 1]]),
                    u16::from_be_bytes([data[6 + s * 2], data[7 + s * 2]]),
                );
                let diff = b.wrapping_sub(a);
                let mut raw = a.to_be_bytes().to_vec();
                raw.extend_from_slice(&diff.to_be_bytes());
                use std::io::Write;
                let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&raw).unwrap_or_default();
                Some(enc.finish().unwrap_or_default())
            })
            .collect();
        let planar =
            ChunkFormat { compression: Compression::Deflate, horizontal_predictor: true, planar: true, ..format };
        assert_eq!(decode_planes(&planar, &planes, 2, 1).expect("planes"), vec![255, 128, 0, 255, 1, 127, 128, 255]);
        assert!(decode_planes(&planar, &planes[..2], 2, 1).is_err(), "a plane short");
    }
}
