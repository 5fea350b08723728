//! `wsiview bench`: the same work as the OpenSlide and cuCIM baselines in `../shared/peers/`, so
//! the figures compare directly: open time, cold tile throughput over the 4096×4096 level-0 window
//! at the slide's centre, a cold 1920×1080 level-0 read, and a cold 1,024-pixel thumbnail.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::error::{ErrorKind, Result, SlideError};
use crate::slide::{open_source, Slide, SlideSource};
use crate::tiles::TileCache;

#[derive(Debug, serde::Serialize)]
pub struct BenchResult {
    pub reader: String,
    pub slide: String,
    pub threads: usize,
    pub open_ms: f64,
    pub tiles: usize,
    pub tiles_per_s: f64,
    pub viewport_1080p_level0_ms: f64,
    /// A 1,024-pixel thumbnail of the whole slide from a cold cache (`Slide::thumbnail`; OpenSlide's
    /// `get_thumbnail((1024, 1024))` is the peer), median of 3.
    pub thumbnail_1024_ms: f64,
    /// For a URL: HTTP requests sent and body bytes received over the whole run (the opens
    /// included; the block cache is shared, so passes after the first read no new bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_fetched: Option<u64>,
    /// The stored (compressed) bytes of the window's tiles: what one pass of the tiles/s
    /// measure reads (TIFF-based slides; absent for others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile_bytes: Option<u64>,
    /// For a URL: requests and body bytes of one cold pass over the window (a fresh source
    /// whose level-0 tile table is loaded), against `tile_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_bytes_fetched: Option<u64>,
    /// The stored bytes of the tiles under the 1920×1080 level-0 read, and for a URL the
    /// requests and body bytes of one cold such read (as the window's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewport_tile_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewport_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewport_bytes_fetched: Option<u64>,
}

/// A slide by path, or by URL ([`crate::slide::open_location`]) when `path` is one.
fn open_any(path: &Path) -> Result<Arc<dyn SlideSource>> {
    match path.to_str() {
        Some(text) if crate::remote::is_url(text) => crate::slide::open_location(text, &crate::Limits::DEFAULT),
        _ => open_source(path),
    }
}

fn median(v: Vec<f64>) -> f64 {
    crate::stats::median(&crate::stats::sorted(&v)).unwrap_or(f64::NAN)
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed().as_secs_f64(), out)
}

pub fn run(path: &Path, threads: usize) -> Result<BenchResult> {
    let remote = path.to_str().is_some_and(crate::remote::is_url);
    let threads = match threads {
        0 if remote => crate::slide::REMOTE_READ_THREADS,
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| SlideError::new(path, ErrorKind::Io(std::io::Error::other(e))))?;
    pool.install(|| run_in_pool(path, threads, remote))
}

/// Requests and body bytes sent and received by the process while `f` runs.
fn fetched<T>(f: impl FnOnce() -> T) -> ((u64, u64), T) {
    let (requests, bytes) = crate::remote::totals();
    let out = f();
    let (requests_after, bytes_after) = crate::remote::totals();
    ((requests_after - requests, bytes_after - bytes), out)
}

/// The level-0 tiles under the `width`×`height` rectangle at (`x`, `y`), row by row.
fn tiles_under(level0: &crate::slide::LevelInfo, x: u64, y: u64, width: u64, height: u64) -> Vec<(u64, u64)> {
    let (tw, th) = (u64::from(level0.tile_width), u64::from(level0.tile_height));
    let cols = (x / tw)..((x + width).min(level0.width).div_ceil(tw));
    let rows = (y / th)..((y + height).min(level0.height).div_ceil(th));
    rows.flat_map(|r| cols.clone().map(move |c| (c, r))).collect()
}

/// The stored bytes of level-0 `tiles`, read through a TIFF reader of its own (so, for a URL,
/// outside the figures measured); `None` for a slide that is not TIFF-based.
fn stored_bytes(path: &Path, remote: bool, tiles: &[(u64, u64)]) -> Option<u64> {
    let slide = if remote {
        let url = path.to_str()?;
        let source = crate::remote::HttpSource::open(url).ok()?;
        let reader = crate::tiff::TiffReader::new(Arc::new(source)).ok()?;
        crate::slide::TiffSlide::from_reader(Path::new(&crate::remote::redact(url)), reader).ok()?
    } else {
        crate::slide::TiffSlide::open(path).ok()?
    };
    let sizes: Option<Vec<u64>> = tiles
        .par_iter()
        .map(|&(c, r)| slide.read_raw_tile(0, c, r).ok().map(|t| t.map_or(0, |t| t.data.len() as u64)))
        .collect();
    sizes.map(|s| s.iter().sum())
}

fn run_in_pool(path: &Path, threads: usize, remote: bool) -> Result<BenchResult> {
    let (requests_before, bytes_before) = crate::remote::totals();
    let mut opens = Vec::new();
    for _ in 0..9 {
        let (secs, slide) = time(|| open_any(path));
        slide?;
        opens.push(secs * 1e3);
    }
    // One untimed decode of the first tile loads level 0's tile table, which OpenSlide reads at
    // open (the first tile lies outside the window and the viewport).
    let opened = || -> Result<Arc<dyn SlideSource>> {
        let source = open_any(path)?;
        source.decode_tile(0, 0, 0)?;
        Ok(source)
    };
    let source = opened()?;
    // A local pass is cold without a tile cache (the file's pages stay cached, as for the
    // peers). A remote source keeps the blocks it fetched, so each remote pass opens a fresh one.
    let cold = || if remote { opened() } else { Ok(source.clone()) };
    let level0 = source.levels()[0].clone();
    let (tw, th) = (u64::from(level0.tile_width), u64::from(level0.tile_height));
    let x0 = (level0.width / 2).saturating_sub(2048) / tw * tw;
    let y0 = (level0.height / 2).saturating_sub(2048) / th * th;
    let window = tiles_under(&level0, x0, y0, 4096, 4096);
    let mut passes = Vec::new();
    let mut window_fetched = None;
    for _ in 0..3 {
        let pass_source = cold()?;
        let (counts, (secs, decoded)) = fetched(|| {
            time(|| {
                window
                    .par_iter()
                    .map(|&(c, r)| pass_source.decode_tile(0, c, r).map(|t| t.rgba.len()))
                    .collect::<Result<Vec<_>>>()
            })
        });
        decoded?;
        passes.push(secs);
        window_fetched.get_or_insert(counts);
    }
    let tiles_per_s = window.len() as f64 / median(passes);

    let vx = (level0.width as i64 / 2 - 960).max(0);
    let vy = (level0.height as i64 / 2 - 540).max(0);
    let mut viewport = Vec::new();
    let mut viewport_fetched = None;
    for _ in 0..5 {
        let slide = Slide::from_source(cold()?, Arc::new(TileCache::new(512 << 20)));
        let (counts, (secs, region)) = fetched(|| time(|| slide.read_region(0, vx, vy, 1920, 1080)));
        region?;
        viewport.push(secs * 1e3);
        viewport_fetched.get_or_insert(counts);
    }
    let mut thumbnails = Vec::new();
    let local = Slide::from_source(source.clone(), Arc::new(TileCache::new(512 << 20)));
    for _ in 0..3 {
        let fresh;
        let slide = if remote {
            fresh = Slide::from_source(open_any(path)?, Arc::new(TileCache::new(512 << 20)));
            &fresh
        } else {
            local.cache().clear();
            &local
        };
        let (secs, thumb) = time(|| slide.thumbnail(1024));
        thumb?;
        thumbnails.push(secs * 1e3);
    }
    let (requests_after, bytes_after) = crate::remote::totals();
    let viewport_tiles = tiles_under(&level0, vx as u64, vy as u64, 1920, 1080);
    let remote_only = |v: Option<(u64, u64)>, pick: fn((u64, u64)) -> u64| v.filter(|_| remote).map(pick);
    Ok(BenchResult {
        reader: format!("wsiview {} (zune-jpeg)", env!("CARGO_PKG_VERSION")),
        slide: source.path().display().to_string(),
        threads,
        open_ms: (median(opens) * 1000.0).round() / 1000.0,
        tiles: window.len(),
        tiles_per_s: (tiles_per_s * 10.0).round() / 10.0,
        viewport_1080p_level0_ms: (median(viewport) * 10.0).round() / 10.0,
        thumbnail_1024_ms: (median(thumbnails) * 10.0).round() / 10.0,
        requests: remote.then(|| requests_after - requests_before),
        bytes_fetched: remote.then(|| bytes_after - bytes_before),
        tile_bytes: stored_bytes(path, remote, &window),
        window_requests: remote_only(window_fetched, |c| c.0),
        window_bytes_fetched: remote_only(window_fetched, |c| c.1),
        viewport_tile_bytes: stored_bytes(path, remote, &viewport_tiles),
        viewport_requests: remote_only(viewport_fetched, |c| c.0),
        viewport_bytes_fetched: remote_only(viewport_fetched, |c| c.1),
    })
}
