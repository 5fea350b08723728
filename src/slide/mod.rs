//! Where pixels come from: the [`SlideSource`] trait, the formats table (`format`: one file per
//! vendor format, in the order OpenSlide tries them) and the TIFF tile engine most formats share
//! ([`TiffSlide`]), plus [`Slide`], the handle callers use (cache, regions, thumbnails).
//!
//! Coordinates: levels are numbered from 0 (full resolution); a tile is addressed by its column
//! and row in its level's tile grid; regions take their corner in level-0 pixels and their size in
//! pixels of the level read, as OpenSlide's `read_region` does. Pixels come out as RGBA8,
//! row-major. Physical sizes are in µm per level-0 pixel.
//!
//! Dependencies: `slide` owns file formats and builds on [`crate::tiff`] (the container),
//! [`crate::tiles`] (codecs, the tile cache), [`crate::error`] and [`crate::limits`]. It must not
//! import the viewer, reports or annotations: those sit on top of it.

#![warn(missing_docs)]

pub(crate) mod format;
mod handle;
pub mod number;
mod tiff_slide;
pub mod vendor;

use std::collections::BTreeMap;
use std::path::Path;

pub use handle::{Slide, DEFAULT_CACHE_BYTES, MAX_REGION_PIXELS};
pub use tiff_slide::{associated_ifds, AssociatedIfd, RawTile, TiffSlide};

use crate::error::Result;
use crate::limits::Limits;
use crate::tiles::codec::Compression;

/// File name endings of slides, for the pickers' filters and the case list (`.ome.tif` ends in
/// `.tif`; Philips TIFF in `.tiff`; `.dcm` files are instances of a DICOM series; DICOM
/// instances often have no ending: open one through "All files").
pub const SLIDE_EXTENSIONS: &[&str] = &["svs", "tif", "tiff", "btf", "tf8", "ndpi", "scn", "bif", "dcm"];

/// Whether a file name looks like a slide by its ending ([`SLIDE_EXTENSIONS`]).
pub fn is_slide_name(name: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SLIDE_EXTENSIONS.iter().any(|s| s.eq_ignore_ascii_case(e)))
}

/// Threads reading a remote slide at once (`bench URL`'s default, the viewer's pool when it opens
/// a URL): range requests wait on the network far more than they decode, so more requests in
/// flight than there are cores pay (measured in BENCHMARKS.md, issue 14).
pub const REMOTE_READ_THREADS: usize = 16;

/// One pyramid level.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LevelInfo {
    /// Pixels across this level.
    pub width: u64,
    /// Pixels down this level.
    pub height: u64,
    /// Level-0 pixels per pixel of this level (the mean of the x and y ratios, as OpenSlide reports).
    pub downsample: f64,
    /// Pixels across a tile; edge tiles are this wide too (the part past the level is padding).
    pub tile_width: u32,
    /// Pixels down a tile.
    pub tile_height: u32,
    /// How the level's tiles are stored.
    pub compression: Compression,
}

impl LevelInfo {
    /// Columns of the level's tile grid (edge tiles included).
    pub fn tiles_across(&self) -> u64 {
        self.width.div_ceil(u64::from(self.tile_width.max(1)))
    }
    /// Rows of the level's tile grid (edge tiles included).
    pub fn tiles_down(&self) -> u64 {
        self.height.div_ceil(u64::from(self.tile_height.max(1)))
    }
}

/// Slide-wide facts: vendor, physical pixel size, objective, and every property read from the file.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SlideProperties {
    /// OpenSlide's `openslide.vendor`: "aperio", "philips", "leica", "ventana", "hamamatsu",
    /// "dicom", "ome-tiff" or "generic-tiff".
    pub vendor: String,
    /// Microns per level-0 pixel across, when the file says.
    pub mpp_x: Option<f64>,
    /// Microns per level-0 pixel down, when the file says.
    pub mpp_y: Option<f64>,
    /// Scanner objective magnification (e.g. 20, 40), when the file says.
    pub objective_power: Option<f64>,
    /// Raw ImageDescription of the first IFD (TIFF-based formats; `None` for DICOM).
    pub description: Option<String>,
    /// Named properties, OpenSlide-style keys ("tiff.Software", "aperio.MPP", …).
    pub values: BTreeMap<String, String>,
}

pub use crate::tiles::TilePixels;

/// A source of slide pixels. The TIFF reader implements it; a remote source (HTTP range requests,
/// DICOMweb) can too, without callers changing. Implementations must be safe to call from many
/// threads at once: [`Slide`] decodes tiles in parallel.
pub trait SlideSource: Send + Sync {
    /// The file (or URL) the source reads, for messages.
    fn path(&self) -> &Path;
    /// Short format name: "aperio-svs", "philips-tiff", "leica-scn", "ventana-bif", "ome-tiff",
    /// "hamamatsu-ndpi", "dicom", "generic-tiff".
    fn format_name(&self) -> &'static str;
    /// The pyramid levels, level 0 (full resolution) first, each narrower than the one before.
    fn levels(&self) -> &[LevelInfo];
    /// Slide-wide facts and properties.
    fn properties(&self) -> &SlideProperties;
    /// Names of associated images ("thumbnail", "label", "macro").
    fn associated_names(&self) -> Vec<String>;
    /// Decode an associated image whole; [`ErrorKind::NoSuchAssociated`](crate::ErrorKind::NoSuchAssociated)
    /// for an unknown name, [`ErrorKind::CorruptAssociated`](crate::ErrorKind::CorruptAssociated)
    /// or [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge) when it cannot be decoded.
    fn read_associated(&self, name: &str) -> Result<image::RgbaImage>;
    /// Decode one tile without caching: the whole grid cell, `tile_width`×`tile_height` RGBA8,
    /// transparent where nothing is stored (sparse tiles, padding past the level). Errors:
    /// [`ErrorKind::NoSuchLevel`](crate::ErrorKind::NoSuchLevel),
    /// [`ErrorKind::NoSuchTile`](crate::ErrorKind::NoSuchTile),
    /// [`ErrorKind::CorruptTile`](crate::ErrorKind::CorruptTile),
    /// [`ErrorKind::TileTable`](crate::ErrorKind::TileTable).
    fn decode_tile(&self, level: usize, col: u64, row: u64) -> Result<TilePixels>;
    /// Decode one tile at about 1/2^`reduce` of its size, for a view that shows it smaller
    /// (thumbnails): the tile's cell is `ceil(tile_width / 2^k)` pixels wide for the `k` actually
    /// applied, which the returned size says. Sources whose codec can skip the finest detail
    /// (JPEG 2000 resolution levels) override this; the default decodes the whole tile.
    fn decode_tile_reduced(&self, level: usize, col: u64, row: u64, reduce: u8) -> Result<TilePixels> {
        let _ = reduce;
        self.decode_tile(level, col, row)
    }
}

/// Open a slide (a file, or a folder for formats that take one) with the reader of the first
/// format that recognises it (the table in `slide/format/mod.rs`: Aperio, Philips, Leica,
/// Ventana, OME-TIFF, NDPI, DICOM, generic TIFF), with [`Limits::DEFAULT`].
///
/// Errors: [`ErrorKind::Io`](crate::ErrorKind::Io) when the file cannot be read,
/// [`ErrorKind::NotTiff`](crate::ErrorKind::NotTiff) or
/// [`ErrorKind::Empty`](crate::ErrorKind::Empty) when no format recognises it, and the format's
/// own errors (invalid, unsupported, too large) when it cannot be laid out.
pub fn open_source(path: &Path) -> Result<std::sync::Arc<dyn SlideSource>> {
    format::open(path, &Limits::DEFAULT)
}

/// [`open_source`] with caps of the caller's choosing (for files from an untrusted upload, say):
/// every size read from the file is checked against `limits`, at open and at every tile read.
pub fn open_source_with_limits(path: &Path, limits: &Limits) -> Result<std::sync::Arc<dyn SlideSource>> {
    format::open(path, limits)
}

/// The instance files of the DICOM series at `path` (one of its files, or its folder) as
/// `(SOPInstanceUID, path)`, sorted by SOPInstanceUID: every DICOM file beside it with the
/// series' SeriesInstanceUID, whatever its SOP class; and that UID. For a folder the series is
/// the one [`open_source`] shows. Errors as opening (a folder over
/// [`Limits::dicom_scan_entries`] entries is [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge)).
pub fn dicom_series_files(path: &Path, limits: &Limits) -> Result<(String, Vec<(String, std::path::PathBuf)>)> {
    format::series_files(path, None, limits)
}

/// Open a slide named by a SLIDE argument: a DICOMweb series URL
/// (`…/studies/{StudyInstanceUID}/series/{SeriesInstanceUID}`) is read by WADO-RS (series
/// metadata once, frames in batches); another `http://` or `https://` URL is read with range
/// requests ([`crate::remote::HttpSource`]) and named by its [`redact`](crate::remote::redact)ed
/// URL in [`SlideSource::path`] and in errors; anything else is a local path as in
/// [`open_source_with_limits`]. Every format reads remotely, but one that reads sibling files
/// (a DICOM series in a folder) sees only the one object.
pub fn open_location(location: &str, limits: &Limits) -> Result<std::sync::Arc<dyn SlideSource>> {
    if !crate::remote::is_url(location) {
        return format::open(Path::new(location), limits);
    }
    if crate::remote::dicomweb::is_series_url(location) {
        return format::open_series_url(location, limits);
    }
    let shown = crate::remote::redact(location);
    let err = |kind| crate::SlideError::new(&shown, kind);
    let source = crate::remote::HttpSource::open(location).map_err(|e| err(crate::ErrorKind::Io(e.into())))?;
    // The DICOM reader gathers a series from the instance's folder, which a URL does not have.
    let mut head = [0u8; 132];
    if crate::tiff::ByteSource::read_exact_at(&source, 0, &mut head).is_ok() && &head[128..] == b"DICM" {
        return Err(err(crate::ErrorKind::UnsupportedDicom(
            "a DICOM file at a URL is one instance of a series: open the series by its DICOMweb URL \
             (…/studies/{StudyInstanceUID}/series/{SeriesInstanceUID}) or its folder"
                .into(),
        )));
    }
    format::open_bytes(Path::new(&shown), std::sync::Arc::new(source), limits)
}
