//! Decoded tiles: the codecs that produce them and the shared cache that keeps them.

pub mod cache;
pub mod codec;

pub use cache::{TileCache, TileKey};
