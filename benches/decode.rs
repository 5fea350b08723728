//! Tile decode throughput on a generated slide: one tile at a time (single core) and a batch in
//! parallel, per compression. `cargo bench --bench decode`.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;
use wsiview::slide::{open_source, SlideSource};
use wsiview::synth::{generate, SynthCompression, SynthOptions};

fn slide(compression: SynthCompression) -> Arc<dyn SlideSource> {
    let dir = std::env::temp_dir().join("wsiview-bench");
    let _ = std::fs::create_dir_all(&dir);
    let path: PathBuf = dir.join(format!("bench-{compression:?}.tif"));
    if !path.exists() {
        let opts = SynthOptions { width: 4096, height: 4096, compression, ..Default::default() };
        if let Err(e) = generate(&path, &opts) {
            panic!("cannot generate {}: {e}", path.display());
        }
    }
    match open_source(&path) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn decode(c: &mut Criterion) {
    for compression in [SynthCompression::Jpeg, SynthCompression::Deflate, SynthCompression::Lzw] {
        let source = slide(compression);
        let tiles: Vec<(u64, u64)> = (4..12).flat_map(|r| (4..12).map(move |c| (c, r))).collect();
        let mut group = c.benchmark_group(format!("{compression:?}"));
        group.throughput(Throughput::Elements(tiles.len() as u64));
        group.bench_function("one_core", |b| {
            b.iter(|| {
                tiles.iter().map(|&(c, r)| source.decode_tile(0, c, r).map_or(0, |t| t.rgba.len())).sum::<usize>()
            })
        });
        group.bench_function("all_cores", |b| {
            b.iter(|| {
                tiles.par_iter().map(|&(c, r)| source.decode_tile(0, c, r).map_or(0, |t| t.rgba.len())).sum::<usize>()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
