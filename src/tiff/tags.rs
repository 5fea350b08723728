//! TIFF tag numbers and field types used by the slide readers (TIFF 6.0, BigTIFF, Adobe/OME
//! extensions). Vendor-private tags (NDPI's, Philips's) live with their format's reader.

/// NewSubfileType (TIFF 6.0 section 8): bit 0 marks a reduced-resolution image (a pyramid level or
/// a thumbnail), bit 2 a transparency mask.
pub const NEW_SUBFILE_TYPE: u16 = 254;
/// ImageWidth (TIFF 6.0 section 3): pixels across.
pub const IMAGE_WIDTH: u16 = 256;
/// ImageLength (TIFF 6.0 section 3): pixels down.
pub const IMAGE_LENGTH: u16 = 257;
/// BitsPerSample (TIFF 6.0 section 3): bits of each sample; wsiview decodes 8 and 16.
pub const BITS_PER_SAMPLE: u16 = 258;
/// Compression (TIFF 6.0 section 3; codes in [`compression_name`]).
pub const COMPRESSION: u16 = 259;
/// PhotometricInterpretation (TIFF 6.0 section 3): 0 WhiteIsZero, 1 BlackIsZero, 2 RGB, 6 YCbCr.
pub const PHOTOMETRIC: u16 = 262;
/// ImageDescription (TIFF 6.0 section 8): ASCII; where Aperio, Philips, Leica and OME keep their
/// metadata.
pub const IMAGE_DESCRIPTION: u16 = 270;
/// Make (TIFF 6.0 section 8): the scanner's manufacturer.
pub const MAKE: u16 = 271;
/// Model (TIFF 6.0 section 8): the scanner's model.
pub const MODEL: u16 = 272;
/// StripOffsets (TIFF 6.0 section 3): file offset of each strip.
pub const STRIP_OFFSETS: u16 = 273;
/// SamplesPerPixel (TIFF 6.0 section 3): 1 (grey), 3 (RGB/YCbCr) or 4 (with alpha).
pub const SAMPLES_PER_PIXEL: u16 = 277;
/// RowsPerStrip (TIFF 6.0 section 3): rows in each strip but the last.
pub const ROWS_PER_STRIP: u16 = 278;
/// StripByteCounts (TIFF 6.0 section 3): compressed bytes of each strip.
pub const STRIP_BYTE_COUNTS: u16 = 279;
/// XResolution (TIFF 6.0 section 3): pixels per ResolutionUnit across (a RATIONAL).
pub const X_RESOLUTION: u16 = 282;
/// YResolution (TIFF 6.0 section 3): pixels per ResolutionUnit down (a RATIONAL).
pub const Y_RESOLUTION: u16 = 283;
/// PlanarConfiguration (TIFF 6.0 section 8): 1 chunky (samples interleaved), 2 planar (one plane
/// per sample).
pub const PLANAR_CONFIGURATION: u16 = 284;
/// ResolutionUnit (TIFF 6.0 section 3): 1 none, 2 inch, 3 centimetre.
pub const RESOLUTION_UNIT: u16 = 296;
/// Software (TIFF 6.0 section 8): the writing program; Philips TIFF is detected by it.
pub const SOFTWARE: u16 = 305;
/// DateTime (TIFF 6.0 section 8): `YYYY:MM:DD HH:MM:SS`.
pub const DATE_TIME: u16 = 306;
/// Predictor (TIFF 6.0 section 14): 1 none, 2 horizontal differencing (LZW and Deflate data).
pub const PREDICTOR: u16 = 317;
/// TileWidth (TIFF 6.0 section 15): pixels across a tile (a multiple of 16).
pub const TILE_WIDTH: u16 = 322;
/// TileLength (TIFF 6.0 section 15): pixels down a tile (a multiple of 16).
pub const TILE_LENGTH: u16 = 323;
/// TileOffsets (TIFF 6.0 section 15): file offset of each tile, row-major (per plane when planar).
pub const TILE_OFFSETS: u16 = 324;
/// TileByteCounts (TIFF 6.0 section 15): compressed bytes of each tile; 0 for a tile never written.
pub const TILE_BYTE_COUNTS: u16 = 325;
/// SubIFDs (Adobe TIFF Technical Note 1): offsets of child IFDs; OME-TIFF and tifffile keep pyramid
/// levels here.
pub const SUB_IFDS: u16 = 330;
/// ExtraSamples (TIFF 6.0 section 18): what samples past the colour ones mean (alpha).
pub const EXTRA_SAMPLES: u16 = 338;
/// SampleFormat (TIFF 6.0 section 19): 1 unsigned integer, 2 signed, 3 IEEE float.
pub const SAMPLE_FORMAT: u16 = 339;
/// JPEGTables (TIFF Technical Note 2): quantisation and Huffman tables shared by every tile of an
/// IFD, an abbreviated JPEG stream.
pub const JPEG_TABLES: u16 = 347;
/// XMP packet (Adobe XMP specification); Ventana BIF keeps its iScan and EncodeInfo XML here.
pub const XMP: u16 = 700;
/// YCbCrSubsampling (TIFF 6.0 section 21): chroma subsampling (2, 2 by default).
pub const YCBCR_SUBSAMPLING: u16 = 530;
/// ImageDepth (SGI extension): planes of a volume; Aperio and others write 1.
pub const IMAGE_DEPTH: u16 = 32997;

/// Field types (TIFF 6.0 section 2, BigTIFF additions).
pub mod types {
    /// 8-bit unsigned integer.
    pub const BYTE: u16 = 1;
    /// 8-bit bytes of 7-bit ASCII, NUL-terminated.
    pub const ASCII: u16 = 2;
    /// 16-bit unsigned integer.
    pub const SHORT: u16 = 3;
    /// 32-bit unsigned integer.
    pub const LONG: u16 = 4;
    /// Two LONGs: numerator, denominator.
    pub const RATIONAL: u16 = 5;
    /// 8-bit signed integer.
    pub const SBYTE: u16 = 6;
    /// 8-bit bytes of any meaning.
    pub const UNDEFINED: u16 = 7;
    /// 16-bit signed integer.
    pub const SSHORT: u16 = 8;
    /// 32-bit signed integer.
    pub const SLONG: u16 = 9;
    /// Two SLONGs: numerator, denominator.
    pub const SRATIONAL: u16 = 10;
    /// IEEE 754 single precision.
    pub const FLOAT: u16 = 11;
    /// IEEE 754 double precision.
    pub const DOUBLE: u16 = 12;
    /// 32-bit offset of an IFD (Adobe TIFF Technical Note 1).
    pub const IFD: u16 = 13;
    /// 64-bit unsigned integer (BigTIFF).
    pub const LONG8: u16 = 16;
    /// 64-bit signed integer (BigTIFF).
    pub const SLONG8: u16 = 17;
    /// 64-bit offset of an IFD (BigTIFF).
    pub const IFD8: u16 = 18;

    /// Size in bytes of one value of a field type; `None` for unknown types.
    pub fn size(field_type: u16) -> Option<u64> {
        Some(match field_type {
            BYTE | ASCII | SBYTE | UNDEFINED => 1,
            SHORT | SSHORT => 2,
            LONG | SLONG | FLOAT | IFD => 4,
            RATIONAL | SRATIONAL | DOUBLE | LONG8 | SLONG8 | IFD8 => 8,
            _ => return None,
        })
    }
}

/// Human name of a TIFF compression code, for messages.
pub fn compression_name(code: u16) -> &'static str {
    match code {
        1 => "none",
        2 => "CCITT Group 3 1-D",
        3 => "CCITT Group 3 fax",
        4 => "CCITT Group 4 fax",
        5 => "LZW",
        6 => "old-style JPEG",
        7 => "JPEG",
        8 | 32946 => "Deflate",
        32773 => "PackBits",
        33003 => "Aperio JPEG 2000 YCbCr",
        33005 => "Aperio JPEG 2000 RGB",
        34712 => "JPEG 2000",
        34887 => "LERC",
        34925 => "LZMA",
        50000 => "Zstandard",
        50001 | 34927 => "WebP",
        50002 => "JPEG XL",
        _ => "unknown compression",
    }
}
