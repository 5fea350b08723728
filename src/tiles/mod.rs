//! Decoded tiles: the codecs that produce them and the shared cache that keeps them.

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
