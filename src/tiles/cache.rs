//! A byte-budgeted cache of decoded tiles, shared by every thread and every open slide.
//! quick_cache's sharded S3-FIFO keeps hot tiles better than plain LRU under scans (a pan sweeps
//! many tiles once) and lets readers proceed without a global lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::TilePixels;

/// Which tile: the slide's cache id, the level, the column and the row.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct TileKey {
    /// The slide's id in this cache ([`TileCache::register_slide`]), so slides can share it.
    pub slide: u64,
    /// Pyramid level (0 = full resolution).
    pub level: u32,
    /// Column in the level's tile grid.
    pub col: u64,
    /// Row in the level's tile grid.
    pub row: u64,
}

#[derive(Clone)]
struct ByteWeighter;

impl Weighter<TileKey, Arc<TilePixels>> for ByteWeighter {
    fn weight(&self, _key: &TileKey, tile: &Arc<TilePixels>) -> u64 {
        // Per-entry overhead counted so that a budget holds even for tiny tiles.
        tile.rgba.len() as u64 + 96
    }
}

/// Decoded tiles under a byte budget (RGBA bytes plus 96 bytes a tile), evicting by S3-FIFO.
/// Thread-safe through `&self`; values are `Arc`s, so a tile handed out stays valid after eviction.
pub struct TileCache {
    tiles: Cache<TileKey, Arc<TilePixels>, ByteWeighter>,
    budget_bytes: u64,
    next_slide_id: AtomicU64,
}

impl TileCache {
    /// A cache that holds at most `budget_bytes` of decoded pixels.
    pub fn new(budget_bytes: u64) -> Self {
        let typical_tile = 256 * 256 * 4 + 96;
        let items = (budget_bytes / typical_tile).max(16) as usize;
        TileCache {
            tiles: Cache::with_weighter(items, budget_bytes.max(1), ByteWeighter),
            budget_bytes,
            next_slide_id: AtomicU64::new(1),
        }
    }

    /// A fresh id for a slide that will share this cache.
    pub fn register_slide(&self) -> u64 {
        self.next_slide_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The tile, if cached.
    pub fn get(&self, key: &TileKey) -> Option<Arc<TilePixels>> {
        self.tiles.get(key)
    }

    /// Cache a tile (replacing any under the same key), evicting others to stay in budget.
    pub fn insert(&self, key: TileKey, tile: Arc<TilePixels>) {
        self.tiles.insert(key, tile);
    }

    /// Drop every tile, of every slide.
    pub fn clear(&self) {
        self.tiles.clear();
    }

    /// Bytes currently held (decoded pixels plus per-entry overhead).
    pub fn used_bytes(&self) -> u64 {
        self.tiles.weight()
    }

    /// The budget given at creation, bytes.
    pub fn budget_bytes(&self) -> u64 {
        self.budget_bytes
    }

    /// Tiles held.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    /// Whether no tile is held.
    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respects_byte_budget() {
        let cache = TileCache::new(10 * (64 * 64 * 4 + 96));
        for i in 0..100 {
            let tile = Arc::new(TilePixels { width: 64, height: 64, rgba: vec![0; 64 * 64 * 4] });
            cache.insert(TileKey { slide: 1, level: 0, col: i, row: 0 }, tile);
        }
        assert!(cache.used_bytes() <= cache.budget_bytes(), "{} > {}", cache.used_bytes(), cache.budget_bytes());
        assert!(cache.len() <= 10 && !cache.is_empty());
    }
}
