//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use wsiview::synth::{generate, SynthOptions};

/// `../shared/fixtures` beside the project, if present.
pub fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent (third-party fixtures live there)", dir.display());
        None
    }
}

/// Generate a synthetic slide in `dir`, failing the test with the reason if generation fails.
pub fn synth(dir: &Path, name: &str, opts: &SynthOptions) -> PathBuf {
    let path = dir.join(name);
    if let Err(e) = generate(&path, opts) {
        panic!("generate {}: {e}", path.display());
    }
    path
}

/// Decode the first IFD of a TIFF with the independent `tiff` crate: (width, height, RGBA8).
pub fn tiff_crate_rgba(path: &Path) -> (u32, u32, Vec<u8>) {
    use tiff::decoder::{Decoder, DecodingResult, Limits};
    use tiff::ColorType;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dec = Decoder::new(std::io::BufReader::new(file))
        .unwrap_or_else(|e| panic!("tiff crate: {}: {e}", path.display()))
        .with_limits(Limits::unlimited());
    let (w, h) = dec.dimensions().unwrap_or_else(|e| panic!("{e}"));
    let colortype = dec.colortype().unwrap_or_else(|e| panic!("{e}"));
    let data = match dec.read_image().unwrap_or_else(|e| panic!("tiff crate decode {}: {e}", path.display())) {
        DecodingResult::U8(v) => v,
        _ => panic!("{}: not 8-bit", path.display()),
    };
    let rgba = match colortype {
        ColorType::Gray(8) => data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        ColorType::RGB(8) => data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        // The tiff crate hands JPEG YCbCr back unconverted; convert with the JFIF equations.
        ColorType::YCbCr(8) => data
            .chunks_exact(3)
            .flat_map(|p| {
                let (y, cb, cr) = (f64::from(p[0]), f64::from(p[1]) - 128.0, f64::from(p[2]) - 128.0);
                let c = |v: f64| v.round().clamp(0.0, 255.0) as u8;
                [c(y + 1.402 * cr), c(y - 0.344136 * cb - 0.714136 * cr), c(y + 1.772 * cb), 255]
            })
            .collect(),
        ColorType::RGBA(8) => data,
        other => panic!("{}: unexpected colour type {other:?}", path.display()),
    };
    (w, h, rgba)
}

/// Largest absolute difference and mean absolute difference of two equally sized RGBA buffers.
pub fn diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len(), "buffers differ in size");
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += u64::from(d);
    }
    (max, sum as f64 / a.len().max(1) as f64)
}

/// A viewer window without a display (egui_kittest) that opens `slide`, 60 frames a second (so
/// two clicks two frames apart make a double-click; kittest's default step is a quarter second).
pub fn viewer(
    slide: &Path,
    size: [f32; 2],
    cache_bytes: u64,
) -> egui_kittest::Harness<'static, wsiview::viewer::ViewerApp> {
    use wsiview::viewer::ViewerApp;
    let app = ViewerApp::new(cache_bytes, std::time::Instant::now());
    let mut h = egui_kittest::Harness::builder()
        .with_size(size)
        .with_step_dt(1.0 / 60.0)
        .build_ui_state(|ui, app: &mut ViewerApp| app.ui(ui), app);
    let ctx = h.ctx.clone();
    h.state_mut().open(slide.to_path_buf(), &ctx);
    h
}

/// Step frames (workers answer in the background) until `done`; false after `seconds`.
pub fn step_until(
    h: &mut egui_kittest::Harness<'static, wsiview::viewer::ViewerApp>,
    seconds: u64,
    done: impl Fn(&wsiview::viewer::ViewerApp) -> bool,
) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(seconds) {
        h.step();
        if done(h.state()) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}
