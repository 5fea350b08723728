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
    let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| SlideError::new(path, ErrorKind::Io(std::io::Error::other(e))))?;
    pool.install(|| run_in_pool(path, threads))
}

fn run_in_pool(path: &Path, threads: usize) -> Result<BenchResult> {
    let remote = path.to_str().is_some_and(crate::remote::is_url);
    let (requests_before, bytes_before) = crate::remote::totals();
    let mut opens = Vec::new();
    for _ in 0..9 {
        let (secs, slide) = time(|| open_any(path));
        slide?;
        opens.push(secs * 1e3);
    }
    let source: Arc<dyn SlideSource> = open_any(path)?;
    let level0 = source.levels()[0].clone();
    let (tw, th) = (u64::from(level0.tile_width), u64::from(level0.tile_height));
    let x0 = (level0.width / 2).saturating_sub(2048) / tw * tw;
    let y0 = (level0.height / 2).saturating_sub(2048) / th * th;
    let cols = (x0 / tw)..((x0 + 4096).min(level0.width).div_ceil(tw));
    let rows = (y0 / th)..((y0 + 4096).min(level0.height).div_ceil(th));
    let window: Vec<(u64, u64)> = rows.flat_map(|r| cols.clone().map(move |c| (c, r))).collect();
    // One untimed decode loads level 0's tile table, which OpenSlide reads at open.
    source.decode_tile(0, window[0].0, window[0].1)?;
    let mut passes = Vec::new();
    for _ in 0..3 {
        let (secs, decoded) = time(|| {
            window
                .par_iter()
                .map(|&(c, r)| source.decode_tile(0, c, r).map(|t| t.rgba.len()))
                .collect::<Result<Vec<_>>>()
        });
        decoded?;
        passes.push(secs);
    }
    let tiles_per_s = window.len() as f64 / median(passes);

    let slide = Slide::from_source(source.clone(), Arc::new(TileCache::new(512 << 20)));
    let vx = (level0.width as i64 / 2 - 960).max(0);
    let vy = (level0.height as i64 / 2 - 540).max(0);
    let mut viewport = Vec::new();
    for _ in 0..5 {
        slide.cache().clear();
        let (secs, region) = time(|| slide.read_region(0, vx, vy, 1920, 1080));
        region?;
        viewport.push(secs * 1e3);
    }
    let mut thumbnails = Vec::new();
    for _ in 0..3 {
        slide.cache().clear();
        let (secs, thumb) = time(|| slide.thumbnail(1024));
        thumb?;
        thumbnails.push(secs * 1e3);
    }
    let (requests_after, bytes_after) = crate::remote::totals();
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
    })
}
