//! zune-jpeg (the engine's decoder) against libjpeg-turbo (turbojpeg crate) on the same slide tiles,
//! bytes already in memory, to RGBA. Needs Debian's libturbojpeg0-dev:
//!   TURBOJPEG_SOURCE=pkg-config cargo bench --features turbojpeg --bench jpeg_decoders [-- SLIDE]
//! Without SLIDE it uses a generated 20000×15000 JPEG Q85 pyramid (the compare-openslide slide).

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use wsiview::slide::{RawTile, TiffSlide};
use wsiview::synth::{generate, SynthOptions};
use wsiview::tiles::codec::decode_chunk;

fn slide_path() -> PathBuf {
    if let Some(arg) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        return PathBuf::from(arg);
    }
    let path = std::env::temp_dir().join("wsiview-bench-20000x15000.tif");
    if !path.exists() {
        let opts = SynthOptions { width: 20000, height: 15000, ..Default::default() };
        if let Err(e) = generate(&path, &opts) {
            panic!("generate {}: {e}", path.display());
        }
    }
    path
}

fn turbo_decode(tile: &RawTile) -> usize {
    // libjpeg-turbo takes the tables and the tile as one stream, as libtiff hands them over.
    let mut stream = Vec::with_capacity(tile.data.len() + 1024);
    match tile.format.jpeg_tables.as_deref() {
        Some(t) if t.len() > 4 => {
            stream.extend_from_slice(&t[..t.len() - 2]);
            stream.extend_from_slice(&tile.data[2..]);
        }
        _ => stream.extend_from_slice(&tile.data),
    }
    match turbojpeg::decompress(&stream, turbojpeg::PixelFormat::RGBA) {
        Ok(img) => img.pixels.len(),
        Err(e) => panic!("turbojpeg: {e}"),
    }
}

fn zune_decode(tile: &RawTile) -> usize {
    match decode_chunk(&tile.format, &tile.data, tile.width, tile.height) {
        Ok(px) => px.len(),
        Err(e) => panic!("zune: {e}"),
    }
}

fn rate(tiles: &[RawTile], parallel: bool, f: fn(&RawTile) -> usize) -> f64 {
    let mut best = 0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let n: usize = if parallel { tiles.par_iter().map(f).sum() } else { tiles.iter().map(f).sum() };
        assert!(n > 0);
        best = best.max(tiles.len() as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let path = slide_path();
    let slide = TiffSlide::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let level0 = &wsiview::SlideSource::levels(&slide)[0];
    let (tw, th) = (u64::from(level0.tile_width), u64::from(level0.tile_height));
    let (c0, r0) = ((level0.width / 2).saturating_sub(2048) / tw, (level0.height / 2).saturating_sub(2048) / th);
    let mut tiles = Vec::new();
    for r in r0..(r0 + 4096 / th).min(level0.height.div_ceil(th)) {
        for c in c0..(c0 + 4096 / tw).min(level0.width.div_ceil(tw)) {
            if let Ok(Some(t)) = slide.read_raw_tile(0, c, r) {
                tiles.push(t);
            }
        }
    }
    let bytes: usize = tiles.iter().map(|t| t.data.len()).sum();
    println!("{}: {} tiles of {tw}×{th}, mean {} bytes", path.display(), tiles.len(), bytes / tiles.len().max(1));
    let cores = rayon::current_num_threads();
    for (name, f) in [("zune-jpeg", zune_decode as fn(&RawTile) -> usize), ("libjpeg-turbo", turbo_decode)] {
        println!(
            "{name:>14}: {:>8.0} tiles/s on 1 core, {:>8.0} tiles/s on {cores} cores",
            rate(&tiles, false, f),
            rate(&tiles, true, f)
        );
    }
}
