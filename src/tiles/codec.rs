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
    None,
    Lzw,
    Jpeg,
    Deflate,
}

impl Compression {
    /// Map a TIFF compression code; `None` when not supported.
    pub fn from_tiff(code: u16) -> Option<Self> {
        match code {
            1 => Some(Compression::None),
            5 => Some(Compression::Lzw),
            7 => Some(Compression::Jpeg),
            8 | 32946 => Some(Compression::Deflate),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lzw => "LZW",
            Compression::Jpeg => "JPEG",
            Compression::Deflate => "Deflate",
        }
    }
}

/// Colour model of the stored samples (TIFF Photometric, reduced to what we decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Photometric {
    WhiteIsZero,
    BlackIsZero,
    Rgb,
    /// Only inside JPEG data (the JPEG decoder converts to RGB).
    YCbCr,
}

/// Everything needed to turn one stored chunk (tile or strip) into RGBA pixels.
#[derive(Clone, Debug)]
pub struct ChunkFormat {
    pub compression: Compression,
    pub photometric: Photometric,
    /// 1 (grey), 3 (RGB) or 4 (RGB + extra sample).
    pub samples: u16,
    /// TIFF Predictor 2 (horizontal differencing) for LZW/Deflate.
    pub horizontal_predictor: bool,
    /// The shared JPEG quantisation/Huffman tables (TIFF tag 347), SOI…EOI.
    pub jpeg_tables: Option<Arc<[u8]>>,
}

/// Decode one chunk of `width`×`height` pixels into RGBA8 (row-major, `width*4` bytes a row).
/// Errors are short reasons; the caller adds which tile of which file.
pub fn decode_chunk(format: &ChunkFormat, data: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    match format.compression {
        Compression::Jpeg => decode_jpeg(format, data, width, height),
        Compression::None => samples_to_rgba(format, data, width, height),
        Compression::Deflate => {
            let expected = width as usize * height as usize * format.samples as usize;
            let mut raw = Vec::with_capacity(expected);
            // `take` bounds the output: a hostile stream cannot inflate past the tile's size.
            flate2::read::ZlibDecoder::new(data)
                .take(expected as u64)
                .read_to_end(&mut raw)
                .map_err(|e| format!("Deflate: {e}"))?;
            finish_raw(format, raw, width, height)
        }
        Compression::Lzw => {
            let expected = width as usize * height as usize * format.samples as usize;
            let mut raw = Vec::with_capacity(expected);
            let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let result = decoder.into_vec(&mut raw).decode(data);
            if let Err(e) = result.status {
                // Many writers omit the end code or pad; keep what decoded if it is complete.
                if raw.len() < expected {
                    return Err(format!("LZW: {e}"));
                }
            }
            raw.truncate(expected);
            finish_raw(format, raw, width, height)
        }
    }
}

fn finish_raw(format: &ChunkFormat, mut raw: Vec<u8>, width: u32, height: u32) -> Result<Vec<u8>, String> {
    if format.horizontal_predictor {
        undo_horizontal_predictor(&mut raw, width as usize, format.samples as usize);
    }
    samples_to_rgba(format, &raw, width, height)
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
fn samples_to_rgba(format: &ChunkFormat, raw: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let pixels = width as usize * height as usize;
    let spp = format.samples as usize;
    if raw.len() < pixels * spp {
        return Err(format!(
            "{} bytes of pixel data where {} are needed for {width}×{height}×{spp}",
            raw.len(),
            pixels * spp
        ));
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
        n => return Err(format!("{n} samples per pixel")),
    }
    Ok(out)
}

/// Splice the shared tables in front of the tile's own stream: tables without their EOI, then the
/// tile without its SOI — one valid JPEG, as libtiff's JPEG codec reads it.
fn with_tables(tables: Option<&[u8]>, data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err("JPEG: data does not start with an SOI marker".into());
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
fn jpeg_error(e: impl std::fmt::Display) -> String {
    format!("JPEG: {}", e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))
}

fn decode_jpeg(format: &ChunkFormat, data: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
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
    let info = decoder.info().ok_or("JPEG: no image information")?;
    let (jw, jh) = (u32::from(info.width), u32::from(info.height));
    if pixels.len() < jw as usize * jh as usize * channels {
        return Err("JPEG: decoder returned too few pixels".into());
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
        let format = ChunkFormat {
            compression: Compression::Deflate,
            photometric: Photometric::BlackIsZero,
            samples: 1,
            horizontal_predictor: false,
            jpeg_tables: None,
        };
        let rgba = decode_chunk(&format, &data, 8, 8).expect("decodes");
        assert_eq!(&rgba[4 * 9..4 * 10], &[9, 9, 9, 255]);
    }

    #[test]
    fn short_data_is_an_error_not_a_panic() {
        let format = ChunkFormat {
            compression: Compression::None,
            photometric: Photometric::Rgb,
            samples: 3,
            horizontal_predictor: false,
            jpeg_tables: None,
        };
        assert!(decode_chunk(&format, &[1, 2, 3], 4, 4).is_err());
        let jpeg = ChunkFormat { compression: Compression::Jpeg, ..format };
        assert!(decode_chunk(&jpeg, &[0xFF, 0xD8, 0xFF, 0x00, 0x12], 4, 4).is_err());
    }
}
