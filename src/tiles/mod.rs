//! Decoded tiles: the codecs that turn stored chunks into RGBA8 ([`codec`]), the byte-budgeted
//! cache shared by every slide and thread ([`cache`]), and the scheduler that loads tiles off the
//! caller's thread in priority order ([`scheduler`]). A tile here is pixels and a key (level,
//! column, row); what file it came from is not known.
//!
//! Dependencies: `tiles` imports nothing of [`crate::slide`] (slides import tiles, not the other
//! way round) nor the viewer; its errors are its own ([`codec::DecodeError`]) or the loader's.

#![warn(missing_docs)]

pub mod cache;
pub mod codec;
pub mod scheduler;

pub use cache::{TileCache, TileKey};

/// Decoded pixels of one tile: RGBA8, row-major, `width * 4` bytes a row; the full tile grid cell
/// (edge tiles include the padding past the image).
#[derive(Clone, Debug)]
pub struct TilePixels {
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}
pub use scheduler::{TileId, TileRequest, TileResult, TileScheduler};
