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

/// Keep this test process's app data (settings, fallback reports and autosaves, the publish
/// queue) in a scratch folder of its own under the target folder, so that what a user or an
/// earlier run left in ~/.local/share/wsiview is never read. Not when XDG_DATA_HOME names a
/// folder: CI's run sets one, and tests that run a second process give it one.
#[allow(dead_code)]
pub fn isolate_app_data() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("XDG_DATA_HOME").is_some_and(|v| !v.is_empty()) {
            return;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("app-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        wsiview::files::set_app_data_dir(dir.join("wsiview"));
    });
}

#[cfg(feature = "gui")]
/// A viewer window without a display (egui_kittest) that opens `slide`, 60 frames a second (so
/// two clicks two frames apart make a double-click; kittest's default step is a quarter second).
pub fn viewer(
    slide: &Path,
    size: [f32; 2],
    cache_bytes: u64,
) -> egui_kittest::Harness<'static, wsiview::viewer::ViewerApp> {
    use wsiview::viewer::ViewerApp;
    isolate_app_data();
    let app = ViewerApp::new(cache_bytes);
    let mut h = egui_kittest::Harness::builder()
        .with_size(size)
        .with_step_dt(1.0 / 60.0)
        .build_ui_state(|ui, app: &mut ViewerApp| app.ui(ui), app);
    let ctx = h.ctx.clone();
    h.state_mut().open(slide.to_path_buf(), &ctx);
    h
}

#[cfg(feature = "gui")]
/// Press and release the primary button at `p` (a click, stepping a frame after each).
pub fn click_at(h: &mut egui_kittest::Harness<'static, wsiview::viewer::ViewerApp>, p: egui::Pos2) {
    h.hover_at(p);
    h.step();
    h.drag_at(p);
    h.step();
    h.drop_at(p);
    h.step();
}

#[cfg(feature = "gui")]
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

/// Check a slide of `../shared/fixtures/vendors/` against what OpenSlide 4.0.1 reports for it
/// (`expected.json`): vendor, levels, downsamples, mpp, objective power, associated images
/// (listed and decoded to their size), bounds, and the three reference regions (the same
/// transparent pixels; RGB of the opaque pixels within a mean absolute difference of 3, the tolerance the
/// fixtures' README gives for another JPEG / JPEG 2000 decoder). Returns the slide, or `None`
/// when the fixtures are absent.
pub fn check_vendor_fixture(name: &str) -> Option<wsiview::Slide> {
    let dir = fixtures()?.join("vendors");
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("expected.json")).unwrap_or_else(|e| panic!("expected.json: {e}")),
    )
    .unwrap_or_else(|e| panic!("expected.json: {e}"));
    let want = &expected["slides"][name];
    assert!(want.is_object(), "{name} is not in expected.json");
    let path = dir.join(want["path"].as_str().unwrap_or(name));
    let slide = wsiview::Slide::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let p = slide.properties();
    assert_eq!(p.vendor, want["vendor"].as_str().unwrap_or_default(), "{name}: vendor");
    let dims: Vec<[u64; 2]> = slide.levels().iter().map(|l| [l.width, l.height]).collect();
    let want_dims: Vec<[u64; 2]> = serde_json::from_value(want["level_dimensions"].clone()).unwrap_or_default();
    assert_eq!(dims, want_dims, "{name}: level dimensions");
    let want_ds: Vec<f64> = serde_json::from_value(want["level_downsamples"].clone()).unwrap_or_default();
    for (level, (got, want)) in slide.levels().iter().map(|l| l.downsample).zip(want_ds).enumerate() {
        assert!((got - want).abs() < 1e-6 * want, "{name}: level {level} downsample {got}, OpenSlide {want}");
    }
    let close = |got: Option<f64>, want: &serde_json::Value, what: &str| match want.as_f64() {
        Some(w) => {
            assert!(got.is_some_and(|g| (g - w).abs() < 1e-9 * w.max(1.0)), "{name}: {what} {got:?}, OpenSlide {w}")
        }
        None => assert_eq!(got, None, "{name}: {what}"),
    };
    close(p.mpp_x, &want["mpp_x"], "mpp-x");
    close(p.mpp_y, &want["mpp_y"], "mpp-y");
    close(p.objective_power, &want["objective_power"], "objective power");
    let mut names = slide.associated_names();
    names.sort();
    let want_assoc = want["associated_images"].as_object().cloned().unwrap_or_default();
    let mut want_names: Vec<String> = want_assoc.keys().cloned().collect();
    want_names.sort();
    assert_eq!(names, want_names, "{name}: associated images");
    for (assoc, size) in &want_assoc {
        let image = slide.read_associated(assoc).unwrap_or_else(|e| panic!("{e}"));
        let want_size: [u32; 2] = serde_json::from_value(size.clone()).unwrap_or_default();
        assert_eq!([image.width(), image.height()], want_size, "{name}: associated image {assoc}");
    }
    if let Some(bounds) = want.get("bounds") {
        for key in ["x", "y", "width", "height"] {
            assert_eq!(
                p.values.get(&format!("openslide.bounds-{key}")).map(String::as_str),
                Some(bounds[key].to_string().as_str()),
                "{name}: openslide.bounds-{key}"
            );
        }
    }
    for region in want["regions"].as_array().cloned().unwrap_or_default() {
        let n = |k: &str| region[k].as_i64().unwrap_or_default();
        let got = slide
            .read_region(n("level") as usize, n("x"), n("y"), n("w") as u32, n("h") as u32)
            .unwrap_or_else(|e| panic!("{e}"));
        let png = dir.join(region["png"].as_str().unwrap_or_default());
        let reference = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display())).to_rgba8();
        assert_eq!(got.dimensions(), reference.dimensions());
        let (mut sum, mut opaque, mut alpha_wrong) = (0u64, 0u64, 0u64);
        for (a, b) in got.pixels().zip(reference.pixels()) {
            // OpenSlide paints at fractional positions, so a pixel at a tile corner may come out
            // 254 opaque; transparent (0) or not is what must agree.
            if (a[3] == 0) != (b[3] == 0) {
                alpha_wrong += 1;
            } else if a[3] != 0 {
                opaque += 1;
                sum += (0..3).map(|c| u64::from(a[c].abs_diff(b[c]))).sum::<u64>();
            }
        }
        let mad = sum as f64 / (3 * opaque.max(1)) as f64;
        let at = format!("{name}: region level {} at {},{}", n("level"), n("x"), n("y"));
        assert_eq!(alpha_wrong, 0, "{at}: {alpha_wrong} pixels differ in transparency from OpenSlide's");
        assert!(mad <= 3.0, "{at}: mean absolute difference {mad:.2} from OpenSlide's pixels");
        eprintln!("{at}: mean absolute difference {mad:.2} over {opaque} opaque pixels");
    }
    Some(slide)
}
