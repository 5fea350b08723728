//! Load time and memory of a detection layer of 1,000,000 QuPath cells (12-gon outlines with
//! 12-gon nuclei, a class and 5 measurements each) over a 100,000 × 80,000 px slide, then query
//! and count timings. Not a criterion bench (one load takes seconds): run it with
//! `cargo bench --bench detections_load`, or under `/usr/bin/time -v` for the peak RSS.
//!
//! The file is generated once to /var/tmp/wsiview-cells-1m.geojson (about 1 GB); set
//! WSIVIEW_CELLS_FILE and WSIVIEW_CELLS to use another path or count.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use wsiview::annotations::detections::{write_synthetic_cells, DetectionLayer};

const SLIDE: [f64; 2] = [100_000.0, 80_000.0];

fn status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).map(|l| l[key.len()..].trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let n: usize = std::env::var("WSIVIEW_CELLS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let path = PathBuf::from(
        std::env::var("WSIVIEW_CELLS_FILE").unwrap_or_else(|_| "/var/tmp/wsiview-cells-1m.geojson".into()),
    );
    if !path.exists() {
        let t = Instant::now();
        write_synthetic_cells(&path, n, SLIDE[0], SLIDE[1], 42).expect("write the synthetic cells");
        println!("generated {} cells in {} ms", n, t.elapsed().as_millis());
    }
    let size = std::fs::metadata(&path).expect("the cells file").len();
    println!("file: {} ({:.1} MB)", path.display(), size as f64 / 1e6);

    let cancel = AtomicBool::new(false);
    let t = Instant::now();
    let (layer, report) = DetectionLayer::load(&path, |_, _| {}, &cancel).expect("load");
    let load = t.elapsed();
    println!("load: {} ms, {:.0} MB/s", load.as_millis(), size as f64 / 1e6 / load.as_secs_f64());
    println!("report: {}", report.summary());
    println!(
        "objects: {}, classes: {}, measurements: {}, layer heap: {:.1} MB ({:.0} bytes an object)",
        layer.len(),
        layer.classes().len(),
        layer.measurement_names().len(),
        layer.heap_bytes() as f64 / 1e6,
        layer.heap_bytes() as f64 / layer.len().max(1) as f64
    );
    println!("process RSS after load: {}, peak: {}", status("VmRSS:"), status("VmHWM:"));

    // Views of 8,000 × 5,000 px (a 1600 × 1000 screen at 1/5 of level 0) centred on objects,
    // so that they fall on tissue.
    let mut out = Vec::new();
    let (mut total, mut most, mut found) = (std::time::Duration::ZERO, std::time::Duration::ZERO, 0usize);
    let views = 50;
    for k in 0..views {
        let c = layer.centroid(k * layer.len().max(1) / views);
        let area = [c[0] - 4000.0, c[1] - 2500.0, c[0] + 4000.0, c[1] + 2500.0];
        let t = Instant::now();
        layer.query_into(area, &mut out);
        let e = t.elapsed();
        total += e;
        most = most.max(e);
        found += out.len();
    }
    println!(
        "query 8000 × 5000 px views: mean {:.2} ms, max {:.2} ms, {} objects a view on average",
        total.as_secs_f64() * 1e3 / views as f64,
        most.as_secs_f64() * 1e3,
        found / views
    );
    let c = layer.centroid(layer.len() / 2);
    let wide = [c[0] - 20_000.0, c[1] - 12_500.0, c[0] + 20_000.0, c[1] + 12_500.0];
    let t = Instant::now();
    let n_wide = layer.query(wide).count();
    println!("query 40000 × 25000 px: {:.1} ms, {} objects", t.elapsed().as_secs_f64() * 1e3, n_wide);
    let t = Instant::now();
    let counts = layer.count_by_class([0.0, 0.0, SLIDE[0], SLIDE[1]]);
    println!("count_by_class whole slide: {:.1} ms, {:?}", t.elapsed().as_secs_f64() * 1e3, counts);
    let polygon: Vec<[f64; 2]> = (0..2000)
        .map(|k| {
            let t = k as f64 / 2000.0 * std::f64::consts::TAU;
            let r = 10_000.0 * (1.0 + 0.1 * (t * 17.0).sin());
            [c[0] + r * t.cos(), c[1] + r * t.sin()]
        })
        .collect();
    let t = Instant::now();
    let counts = layer.count_by_class_in_polygon(&polygon);
    println!(
        "count_by_class_in_polygon (2000 vertices, r 10000 px): {:.1} ms, {} objects",
        t.elapsed().as_secs_f64() * 1e3,
        counts.iter().sum::<u64>()
    );
    let out_path = path.with_extension("export.geojson");
    let t = Instant::now();
    layer.write_geojson(&out_path, |i| i % 2 == 0).expect("export");
    println!(
        "write_geojson of half the objects: {} ms, {:.1} MB",
        t.elapsed().as_millis(),
        std::fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    let _ = std::fs::remove_file(&out_path);
    println!("process peak RSS: {}", status("VmHWM:"));
}
