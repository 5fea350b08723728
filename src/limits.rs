//! Size caps for untrusted input, in one value.
//!
//! Every count and length read from a file (a tag's byte count, a tile size, a frame count, a
//! folder's entries) is checked against a cap before anything is allocated or looped over, so a
//! corrupt or hostile file fails with [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge) or
//! [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) instead of exhausting memory or time. The
//! defaults are far above what any real scanner writes; a caller that reads files from an
//! untrusted upload may lower them, as `tiff::decoder::Limits` of the image-tiff crate allows.
//!
//! How the caps reach the readers: a [`TiffReader`](crate::tiff::TiffReader) carries its own
//! ([`TiffReader::with_limits`](crate::tiff::TiffReader::with_limits)); opening a slide with
//! [`open_source_with_limits`](crate::slide::open_source_with_limits) or
//! [`Slide::open_with_limits`](crate::slide::Slide::open_with_limits) hands them to every format
//! reader (TIFF-based formats, NDPI, DICOM) and to the [`Slide`](crate::slide::Slide) for region
//! sizes. The plain `open` functions use [`Limits::DEFAULT`]. Reports, category maps and
//! annotation files are small documents read whole: `report` and `annotations` read their caps
//! from [`Limits::DEFAULT`].

#![warn(missing_docs)]

/// Caps on what a file may ask the reader to allocate or walk. Units are in each field's name or
/// doc: bytes, pixels (width × height) or a count. `Copy`, so each reader keeps its own.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    // --- TIFF container (src/tiff) ---
    /// Most entries one TIFF IFD may declare (count). Real IFDs hold a few dozen; thousands means
    /// a corrupt or hostile file. Default 4096.
    pub ifd_entries: u64,
    /// Most IFDs read in one chain, SubIFDs included (count); bounds a runaway or looping chain.
    /// Default 10,000 (a slide has levels + associated images, a few dozen at most).
    pub ifds: usize,
    /// Largest tag value read into memory (bytes): an OME-XML description or a tile offset table.
    /// Default 512 MiB.
    pub tag_bytes: u64,

    // --- images and tiles, every format ---
    /// Largest image edge (pixels across or down) of a level. TIFF allows 2^32 − 1 and DICOM
    /// 2^32 − 1; no scanner makes more than a few hundred thousand. Default 2^24.
    pub image_edge: u64,
    /// Largest tile (or DICOM frame) edge, pixels. Real slides use 240–1024. Default 16,384.
    pub tile_edge: u64,
    /// Largest tile (or DICOM frame) area, pixels; bounds the memory one tile decode takes
    /// (4 bytes a pixel as RGBA8, so 64 MiB by default). A strip or tile of an associated image may
    /// be 4× this. Default 2^24.
    pub tile_pixels: u64,
    /// Largest compressed tile (TIFF tile or strip, DICOM frame or fragment) read, bytes.
    /// Default 64 MiB.
    pub tile_bytes: u64,
    /// Most tiles in one level's tile table: pieces and level tiles of a placed level (Ventana,
    /// Leica), entries of Ventana's joint table, frames of one DICOM instance (count). Each costs
    /// 8–16 bytes of memory. Default 2^22.
    pub level_tiles: u64,
    /// Largest associated image (label, macro, thumbnail) decoded whole, pixels. Default 10^8
    /// (400 MB as RGBA8).
    pub associated_pixels: u64,
    /// Largest region [`Slide::read_region`](crate::slide::Slide::read_region) assembles, and
    /// the largest level a thumbnail is composed from, pixels. Default 10^8 (400 MB as RGBA8).
    pub region_pixels: u64,

    // --- vendor metadata ---
    /// Most nodes of a vendor XML description (Philips, Leica, Ventana); bounds parse time and
    /// memory (roxmltree's `nodes_limit`). Default 2,000,000.
    pub xml_nodes: u32,
    /// Largest base64 text decoded from Philips XML (an embedded label or macro JPEG), bytes.
    /// Default 64 MiB.
    pub base64_bytes: usize,

    // --- Hamamatsu NDPI ---
    /// Largest JPEG header (tables and markers before the scan) of an NDPI level, bytes.
    /// Default 1 MiB.
    pub ndpi_jpeg_header_bytes: u64,
    /// Most JPEG restart intervals of one NDPI level (count; the offset table is 8 bytes each in
    /// memory). Default 2^25.
    pub ndpi_restart_intervals: u64,
    /// Largest NDPI level JPEG without restart markers, decoded whole into one tile, pixels
    /// (128 MiB as RGBA8 by default). Default 2^25.
    pub ndpi_whole_jpeg_pixels: u64,
    /// Largest compressed data one NDPI tile may need (a block of restart intervals, or a whole
    /// level or macro JPEG), bytes. Default 256 MiB.
    pub ndpi_strip_bytes: u64,

    // --- DICOM ---
    /// Most folder entries looked at when searching for the other instances of a DICOM series
    /// (count). Default 4096.
    pub dicom_scan_entries: usize,
    /// Most bytes of a DICOM data set before PixelData (per-frame functional groups of a large
    /// sparse level are the bulk); more is refused rather than read. Default 64 MiB.
    pub dicom_header_bytes: u64,
    /// Most bytes of the DICOM file meta group (PS3.10 §7.1). Default 64 KiB.
    pub dicom_meta_bytes: u64,
    /// Deepest nesting of DICOM sequences walked (count); bounds recursion. Default 16.
    pub dicom_sequence_depth: u32,
    /// Most `dicom.*` properties one top-level attribute (a sequence) may expand to (count).
    /// Default 256.
    pub dicom_properties_per_attribute: usize,

    // --- reports and annotations (read by src/report and src/annotations) ---
    /// Largest report file read whole for consolidation, bytes (a report is a few kilobytes).
    /// Default 16 MiB.
    pub report_bytes: u64,
    /// Largest category map file read, bytes (a map has tens of entries). Default 1 MiB.
    pub category_map_bytes: u64,
    /// Largest annotation file read (QuPath GeoJSON or ASAP XML), bytes: far above a slide's
    /// million detections (about 300 MB of GeoJSON). Default 1 GiB.
    pub annotation_file_bytes: u64,
    /// Largest absolute coordinate accepted in an annotation file, level-0 pixels; larger values
    /// (or NaN/infinity) are refused. Default 10^8.
    pub annotation_coordinate: f64,
    /// Most annotations drawn on one picture of an HTML report (count); beyond it the smallest are
    /// left out (and counted), so the page stays quick to open. Default 5000.
    pub report_drawn: usize,
}

impl Limits {
    /// The caps every `open` without explicit limits uses (values in each field's doc).
    pub const DEFAULT: Limits = Limits {
        ifd_entries: 4096,
        ifds: 10_000,
        tag_bytes: 512 << 20,
        image_edge: 1 << 24,
        tile_edge: 16_384,
        tile_pixels: 1 << 24,
        tile_bytes: 64 << 20,
        level_tiles: 1 << 22,
        associated_pixels: 100_000_000,
        region_pixels: 100_000_000,
        xml_nodes: 2_000_000,
        base64_bytes: 64 << 20,
        ndpi_jpeg_header_bytes: 1 << 20,
        ndpi_restart_intervals: 1 << 25,
        ndpi_whole_jpeg_pixels: 1 << 25,
        ndpi_strip_bytes: 256 << 20,
        dicom_scan_entries: 4096,
        dicom_header_bytes: 64 << 20,
        dicom_meta_bytes: 64 << 10,
        dicom_sequence_depth: 16,
        dicom_properties_per_attribute: 256,
        report_bytes: 16 << 20,
        category_map_bytes: 1 << 20,
        annotation_file_bytes: 1 << 30,
        annotation_coordinate: 1e8,
        report_drawn: 5_000,
    };
}

impl Default for Limits {
    /// [`Limits::DEFAULT`].
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;
    use crate::error::ErrorKind;
    use crate::slide::{open_source_with_limits, Slide};
    use crate::synth::{generate, SynthCompression, SynthOptions};
    use crate::tiles::TileCache;
    use std::sync::Arc;

    #[test]
    fn lowered_limits_reach_the_readers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("small.tif");
        let opts = SynthOptions {
            width: 1024,
            height: 768,
            tile: 256,
            compression: SynthCompression::Lzw,
            ..Default::default()
        };
        generate(&path, &opts).expect("synthetic slide");

        // The defaults open it and read a 512×512 region.
        let slide =
            Slide::open_with_limits(&path, Arc::new(TileCache::new(1 << 24)), Limits::default()).expect("opens");
        assert!(slide.read_region(0, 0, 0, 512, 512).is_ok());

        // Tiles wider than the cap: refused at open, by the TIFF tile engine.
        let small_tiles = Limits { tile_edge: 128, ..Limits::DEFAULT };
        let err = open_source_with_limits(&path, &small_tiles).err().expect("256-pixel tiles refused");
        assert!(matches!(err.kind, ErrorKind::Unsupported { .. }), "{err}");

        // Fewer IFD entries than the file's IFDs hold: refused by the TIFF reader.
        let few_entries = Limits { ifd_entries: 4, ..Limits::DEFAULT };
        assert!(open_source_with_limits(&path, &few_entries).is_err());

        // A region over the cap.
        let small_regions = Limits { region_pixels: 100 * 100, ..Limits::DEFAULT };
        let slide = Slide::open_with_limits(&path, Arc::new(TileCache::new(1 << 24)), small_regions).expect("opens");
        let err = slide.read_region(0, 0, 0, 512, 512).expect_err("over the region cap");
        assert!(matches!(err.kind, ErrorKind::TooLarge(_)), "{err}");
        assert!(slide.read_region(0, 0, 0, 100, 100).is_ok());
    }
}
