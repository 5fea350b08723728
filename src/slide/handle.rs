//! [`Slide`]: a slide source plus the shared tile cache. Regions and thumbnails are assembled here
//! from tiles decoded in parallel on rayon's pool.

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::{open_source_with_limits, LevelInfo, SlideProperties, SlideSource, TilePixels};
use crate::error::{ErrorKind, Result, SlideError};
use crate::limits::Limits;
use crate::tiles::{TileCache, TileKey};

/// Largest region [`Slide::read_region`] assembles by default (pixels; 400 MB of RGBA8):
/// [`Limits::region_pixels`] of [`Limits::DEFAULT`].
pub const MAX_REGION_PIXELS: u64 = Limits::DEFAULT.region_pixels;

/// Default decoded-tile budget (bytes of RGBA8) when a slide is opened with its own cache.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// An open slide: its [`SlideSource`] plus a decoded-tile cache (its own, or shared with other
/// slides). Reads tiles through the cache, assembles regions and thumbnails from tiles decoded in
/// parallel. `Send + Sync`: share it behind an `Arc` between threads.
pub struct Slide {
    source: Arc<dyn SlideSource>,
    cache: Arc<TileCache>,
    cache_id: u64,
    /// Tiles decoded (cache misses) since the slide was opened.
    decoded: std::sync::atomic::AtomicU64,
    /// Caps on regions and thumbnails ([`Limits::region_pixels`]).
    limits: Limits,
}

impl Slide {
    /// Open a slide with its own cache of [`DEFAULT_CACHE_BYTES`] and [`Limits::DEFAULT`]; the
    /// errors are [`super::open_source`]'s.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, Arc::new(TileCache::new(DEFAULT_CACHE_BYTES)))
    }

    /// Open a slide that shares `cache` with other slides (the viewer's tabs).
    pub fn open_with_cache(path: &Path, cache: Arc<TileCache>) -> Result<Self> {
        Self::open_with_limits(path, cache, Limits::DEFAULT)
    }

    /// Open a slide with caps of the caller's choosing: the format reader checks what it reads
    /// against `limits` ([`super::open_source_with_limits`]), and regions and thumbnails are
    /// bounded by [`Limits::region_pixels`].
    pub fn open_with_limits(path: &Path, cache: Arc<TileCache>, limits: Limits) -> Result<Self> {
        Ok(Self::from_source(open_source_with_limits(path, &limits)?, cache).with_limits(limits))
    }

    /// Open a slide named by a path or an `http(s)://` URL ([`super::open_location`]), with its
    /// own cache of [`DEFAULT_CACHE_BYTES`] and `limits`.
    pub fn open_location(location: &str, limits: Limits) -> Result<Self> {
        let source = super::open_location(location, &limits)?;
        Ok(Self::from_source(source, Arc::new(TileCache::new(DEFAULT_CACHE_BYTES))).with_limits(limits))
    }

    /// Wrap an already open source (a test double, a remote source), with [`Limits::DEFAULT`].
    pub fn from_source(source: Arc<dyn SlideSource>, cache: Arc<TileCache>) -> Self {
        let cache_id = cache.register_slide();
        Slide { source, cache, cache_id, decoded: std::sync::atomic::AtomicU64::new(0), limits: Limits::DEFAULT }
    }

    /// The same slide with other caps for regions and thumbnails ([`Limits::region_pixels`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The caps regions and thumbnails are checked against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The format reader underneath (tiles without the cache, for benchmarks and tools).
    pub fn source(&self) -> &Arc<dyn SlideSource> {
        &self.source
    }

    /// The decoded-tile cache this slide reads through (possibly shared).
    pub fn cache(&self) -> &Arc<TileCache> {
        &self.cache
    }

    /// The file (or folder) the slide was opened from.
    pub fn path(&self) -> &Path {
        self.source.path()
    }

    /// Short format name ([`SlideSource::format_name`]).
    pub fn format_name(&self) -> &'static str {
        self.source.format_name()
    }

    /// The pyramid levels, level 0 (full resolution) first, each coarser than the one before.
    pub fn levels(&self) -> &[LevelInfo] {
        self.source.levels()
    }

    /// One level; [`ErrorKind::NoSuchLevel`] past the last.
    pub fn level(&self, level: usize) -> Result<&LevelInfo> {
        let count = self.levels().len();
        self.levels().get(level).ok_or_else(|| self.err(ErrorKind::NoSuchLevel { level, count }))
    }

    /// Slide-wide facts and properties ([`SlideProperties`]).
    pub fn properties(&self) -> &SlideProperties {
        self.source.properties()
    }

    /// Names of the associated images ("label", "macro", "thumbnail", …).
    pub fn associated_names(&self) -> Vec<String> {
        self.source.associated_names()
    }

    /// Decode an associated image whole (not cached); [`ErrorKind::NoSuchAssociated`] for an
    /// unknown name, [`ErrorKind::CorruptAssociated`] when it cannot be decoded.
    pub fn read_associated(&self, name: &str) -> Result<image::RgbaImage> {
        self.source.read_associated(name)
    }

    fn err(&self, kind: ErrorKind) -> SlideError {
        SlideError::new(self.path(), kind)
    }

    /// The level to read for a wanted downsample: the most detailed level whose downsample does not
    /// exceed it (OpenSlide's `get_best_level_for_downsample`).
    pub fn best_level_for_downsample(&self, downsample: f64) -> usize {
        let levels = self.levels();
        if downsample.is_nan() || downsample < levels.first().map_or(1.0, |l| l.downsample) {
            return 0;
        }
        levels.iter().rposition(|l| l.downsample <= downsample * (1.0 + 1e-9)).unwrap_or(0)
    }

    fn key(&self, level: usize, col: u64, row: u64) -> TileKey {
        TileKey { slide: self.cache_id, level: level as u32, col, row }
    }

    /// One decoded tile (column `col`, row `row` of `level`'s tile grid), from the cache or decoded
    /// now (and cached). Errors: [`ErrorKind::NoSuchLevel`], [`ErrorKind::NoSuchTile`],
    /// [`ErrorKind::CorruptTile`].
    pub fn read_tile(&self, level: usize, col: u64, row: u64) -> Result<Arc<TilePixels>> {
        let key = self.key(level, col, row);
        if let Some(tile) = self.cache.get(&key) {
            return Ok(tile);
        }
        let tile = Arc::new(self.source.decode_tile(level, col, row)?);
        self.decoded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.cache.insert(key, tile.clone());
        Ok(tile)
    }

    /// How many tiles this slide has decoded (cache misses) since it was opened.
    pub fn tiles_decoded(&self) -> u64 {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Fetch many tiles, decoding the missing ones in parallel. Results are in request order.
    pub fn read_tiles(&self, level: usize, tiles: &[(u64, u64)]) -> Vec<Result<Arc<TilePixels>>> {
        tiles.par_iter().map(|&(col, row)| self.read_tile(level, col, row)).collect()
    }

    /// Read a region as RGBA8, OpenSlide's `read_region`: (x, y) is the top-left corner in
    /// level-0 pixels, (width, height) the size in pixels of `level`; pixels outside the slide are
    /// transparent (0,0,0,0). More than [`Limits::region_pixels`] is [`ErrorKind::TooLarge`]; a
    /// tile that cannot be decoded fails the whole region.
    pub fn read_region(&self, level: usize, x: i64, y: i64, width: u32, height: u32) -> Result<image::RgbaImage> {
        let info = self.level(level)?.clone();
        let max = self.limits.region_pixels;
        if u64::from(width) * u64::from(height) > max {
            return Err(self.err(ErrorKind::TooLarge(format!("a {width}×{height} region (the limit is {max} pixels)"))));
        }
        let mut out = image::RgbaImage::new(width, height);
        if width == 0 || height == 0 {
            return Ok(out);
        }
        // Level coordinates of the region's corner, to the nearest pixel: OpenSlide paints at the
        // fractional position (cairo), which is that pixel within a fraction of its neighbours.
        let lx = (x as f64 / info.downsample).round() as i64;
        let ly = (y as f64 / info.downsample).round() as i64;
        let (tw, th) = (i64::from(info.tile_width), i64::from(info.tile_height));
        let x0 = lx.max(0);
        let y0 = ly.max(0);
        let x1 = lx.saturating_add(i64::from(width)).min(info.width as i64);
        let y1 = ly.saturating_add(i64::from(height)).min(info.height as i64);
        if x0 >= x1 || y0 >= y1 {
            return Ok(out);
        }
        let wanted: Vec<(u64, u64)> = (y0 / th..=(y1 - 1) / th)
            .flat_map(|row| (x0 / tw..=(x1 - 1) / tw).map(move |col| (col as u64, row as u64)))
            .collect();
        let tiles = self.read_tiles(level, &wanted);
        let out_w = i64::from(width);
        let buf: &mut [u8] = &mut out;
        for (&(col, row), tile) in wanted.iter().zip(tiles) {
            let tile = tile?;
            let (tx, ty) = (col as i64 * tw, row as i64 * th);
            // Intersection of the tile, the region and the level, in level coordinates.
            let ix0 = tx.max(x0);
            let ix1 = (tx + i64::from(tile.width)).min(x1);
            let iy0 = ty.max(y0);
            let iy1 = (ty + i64::from(tile.height)).min(y1);
            if ix0 >= ix1 || iy0 >= iy1 {
                continue;
            }
            let run = ((ix1 - ix0) * 4) as usize;
            for yy in iy0..iy1 {
                let src = (((yy - ty) * i64::from(tile.width) + (ix0 - tx)) * 4) as usize;
                let dst = (((yy - ly) * out_w + (ix0 - lx)) * 4) as usize;
                buf[dst..dst + run].copy_from_slice(&tile.rgba[src..src + run]);
            }
        }
        Ok(out)
    }

    /// A thumbnail of the whole slide fitting in `max_size`×`max_size`, from the coarsest level
    /// that still has enough pixels (aspect ratio kept). [`ErrorKind::TooLarge`] when that level
    /// has more than [`Limits::region_pixels`].
    pub fn thumbnail(&self, max_size: u32) -> Result<image::RgbaImage> {
        let l0 = self.level(0)?.clone();
        let max_size = max_size.max(1);
        let scale = (l0.width.max(l0.height) as f64 / f64::from(max_size)).max(1.0);
        let level = self.best_level_for_downsample(scale);
        let info = self.level(level)?.clone();
        if info.width * info.height > self.limits.region_pixels {
            return Err(self.err(ErrorKind::TooLarge(format!(
                "a thumbnail needs level {level} whole ({}×{}); the slide has no coarser level",
                info.width, info.height
            ))));
        }
        let tw = ((l0.width as f64 / scale).round() as u32).clamp(1, max_size);
        let th = ((l0.height as f64 / scale).round() as u32).clamp(1, max_size);
        // Tiles shown at half their size or less: decode them reduced where the codec can
        // (JPEG 2000 skips resolution levels), at no less than the thumbnail's size.
        let reduce = (scale / info.downsample).log2().floor().clamp(0.0, 6.0) as u8;
        let whole = if reduce > 0 && info.compression == crate::tiles::codec::Compression::Jpeg2000 {
            self.whole_level_reduced(level, &info, reduce)?
        } else {
            self.read_region(level, 0, 0, info.width as u32, info.height as u32)?
        };
        Ok(image::imageops::resize(&whole, tw, th, image::imageops::FilterType::Triangle))
    }

    /// A whole level assembled from tiles decoded at 1/2^`reduce` (not cached): about
    /// `width / 2^reduce` × `height / 2^reduce` pixels.
    fn whole_level_reduced(&self, level: usize, info: &LevelInfo, reduce: u8) -> Result<image::RgbaImage> {
        let k = 1u64 << reduce;
        let (cw, ch) = (u64::from(info.tile_width).div_ceil(k), u64::from(info.tile_height).div_ceil(k));
        let (w, h) = (info.width.div_ceil(k), info.height.div_ceil(k));
        let wanted: Vec<(u64, u64)> =
            (0..info.tiles_down()).flat_map(|r| (0..info.tiles_across()).map(move |c| (c, r))).collect();
        let tiles: Vec<Result<TilePixels>> =
            wanted.par_iter().map(|&(c, r)| self.source.decode_tile_reduced(level, c, r, reduce)).collect();
        let mut out = image::RgbaImage::new(w as u32, h as u32);
        for (&(c, r), tile) in wanted.iter().zip(tiles) {
            let tile = tile?;
            if u64::from(tile.width) != cw || u64::from(tile.height) != ch {
                // The codec could not reduce this far: read the level whole instead.
                let whole = self.read_region(level, 0, 0, info.width as u32, info.height as u32)?;
                return Ok(image::imageops::resize(&whole, w as u32, h as u32, image::imageops::FilterType::Triangle));
            }
            let tile = image::RgbaImage::from_raw(tile.width, tile.height, tile.rgba)
                .ok_or_else(|| self.err(ErrorKind::CorruptTile { level, col: c, row: r, reason: "size".into() }))?;
            image::imageops::replace(&mut out, &tile, (c * cw) as i64, (r * ch) as i64);
        }
        Ok(out)
    }
}
