//! Where pixels come from: the [`SlideSource`] trait, the formats table ([`format`]: one file per
//! vendor format) and the TIFF tile engine most formats share ([`TiffSlide`]), plus [`Slide`],
//! the handle callers use (cache, regions, thumbnails).

pub(crate) mod format;
mod handle;
pub mod number;
mod tiff_slide;
pub mod vendor;

use std::collections::BTreeMap;
use std::path::Path;

pub use handle::{Slide, MAX_REGION_PIXELS};
pub use tiff_slide::{associated_ifds, AssociatedIfd, RawTile, TiffSlide};

use crate::error::Result;
use crate::limits::Limits;
use crate::tiles::codec::Compression;

/// One pyramid level.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LevelInfo {
    pub width: u64,
    pub height: u64,
    /// Level-0 pixels per pixel of this level (the mean of the x and y ratios, as OpenSlide reports).
    pub downsample: f64,
    pub tile_width: u32,
    pub tile_height: u32,
    pub compression: Compression,
}

impl LevelInfo {
    pub fn tiles_across(&self) -> u64 {
        self.width.div_ceil(u64::from(self.tile_width.max(1)))
    }
    pub fn tiles_down(&self) -> u64 {
        self.height.div_ceil(u64::from(self.tile_height.max(1)))
    }
}

/// Slide-wide facts: vendor, physical pixel size, objective, and every property read from the file.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SlideProperties {
    /// "aperio", "ome-tiff" or "generic-tiff".
    pub vendor: String,
    /// Microns per level-0 pixel, when the file says.
    pub mpp_x: Option<f64>,
    pub mpp_y: Option<f64>,
    /// Scanner objective magnification (e.g. 20, 40), when the file says.
    pub objective_power: Option<f64>,
    /// Raw ImageDescription of the first IFD.
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
    /// Short format name: "aperio-svs", "ome-tiff", "generic-tiff".
    fn format_name(&self) -> &'static str;
    fn levels(&self) -> &[LevelInfo];
    fn properties(&self) -> &SlideProperties;
    /// Names of associated images ("thumbnail", "label", "macro").
    fn associated_names(&self) -> Vec<String>;
    fn read_associated(&self, name: &str) -> Result<image::RgbaImage>;
    /// Decode one tile without caching.
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
