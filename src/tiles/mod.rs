//! Decoded tiles: the codecs that produce them and the shared cache that keeps them.

pub mod cache;
pub mod codec;
pub mod scheduler;

pub use cache::{TileCache, TileKey};
pub use scheduler::{TileId, TileRequest, TileResult, TileScheduler};
