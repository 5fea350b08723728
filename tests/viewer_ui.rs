//! The viewer driven like a user, without a GPU or a display (egui_kittest): open, wheel-zoom,
//! drag, keys, minimap, corrupt tiles, bad files, the label behind its button.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::synth;
use egui::{Event, Modifiers, MouseWheelUnit, Pos2, Vec2};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use wsiview::synth::{Layout, SynthCompression, SynthOptions};
use wsiview::viewer::ViewerApp;

fn harness(path: &Path) -> Harness<'static, ViewerApp> {
    common::viewer(path, [1200.0, 800.0], 256 << 20)
}

/// Step frames (tiles arrive from worker threads) until `done`, or fail after 20 s.
fn wait_until(h: &mut Harness<'static, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    assert!(common::step_until(h, 20, done), "timed out waiting for {what}");
}

fn settled(app: &ViewerApp) -> bool {
    app.active_view().is_some_and(|v| v.is_complete())
}

fn slide(dir: &Path, layout: Layout) -> PathBuf {
    let opts = SynthOptions { width: 12000, height: 9000, layout, seed: 5, ..Default::default() };
    synth(dir, "ui.tif", &opts)
}

fn wheel(h: &Harness<'static, ViewerApp>, at: Pos2, lines: f32) {
    h.hover_at(at);
    h.event(Event::MouseWheel {
        unit: MouseWheelUnit::Line,
        delta: Vec2::new(0.0, lines),
        modifiers: Modifiers::NONE,
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
    });
}

#[test]
fn opens_fitted_and_wheel_zooms_about_the_cursor() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path(), Layout::Chain));
    wait_until(&mut h, "the slide to open and load", settled);
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    let fit = v.fit_zoom();
    assert!((v.camera.zoom / fit - 1.0).abs() < 1e-6, "opens fitted: {} vs {fit}", v.camera.zoom);
    assert_eq!(v.camera.center, [6000.0, 4500.0]);
    // The drawn level is the most detailed one not finer than the screen: ds ≤ 1/zoom < next ds.
    let levels = v.slide.levels();
    let l = v.stats.level;
    assert!(
        levels[l].downsample <= 1.0 / fit && levels.get(l + 1).is_none_or(|n| n.downsample > 1.0 / fit),
        "level {l}"
    );
    assert!(l > 0, "a fitted 12000-px slide is not drawn from level 0");

    // Let the side panel settle (its thumbnail arrives from a worker and may widen it).
    let mut view = v.view_rect();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        h.step();
        let now = h.state().active_view().map(|v| v.view_rect()).unwrap_or(view);
        if now == view && h.query_by_label("thumbnail").is_some() {
            break;
        }
        view = now;
    }
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    let at = Pos2::new((view.x + view.width * 0.3) as f32, (view.y + view.height * 0.4) as f32);
    let before = v.camera.screen_to_level0([f64::from(at.x), f64::from(at.y)], &view);
    wheel(&h, at, 3.0);
    wait_until(&mut h, "the zoom animation", |app| app.active_view().is_some_and(|v| !v.is_animating()));
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    let expected = fit * 1.25f64.powi(3);
    assert!((v.camera.zoom / expected - 1.0).abs() < 1e-6, "zoom {} expected {expected}", v.camera.zoom);
    assert_eq!(v.view_rect(), view, "the slide area kept its place");
    let after = v.camera.screen_to_level0([f64::from(at.x), f64::from(at.y)], &view);
    // The point under the cursor stays under it, to well within a screen pixel.
    let tolerance = 0.25 / v.camera.zoom;
    assert!(
        (before[0] - after[0]).abs() < tolerance && (before[1] - after[1]).abs() < tolerance,
        "{before:?} moved to {after:?}"
    );
    // The new level's tiles are requested and arrive.
    wait_until(&mut h, "tiles at the new level", settled);
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!(v.stats.level < l, "a finer level after zooming in");
}

#[test]
fn drag_pans_and_zero_fits_again() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path(), Layout::Chain));
    wait_until(&mut h, "open", settled);
    h.key_press(egui::Key::Plus);
    h.key_press(egui::Key::Plus);
    wait_until(&mut h, "zoom in", |app| {
        app.active_view().is_some_and(|v| !v.is_animating() && v.camera.zoom > v.fit_zoom() * 2.0)
    });
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    let (zoom, center) = (v.camera.zoom, v.camera.center);
    let view = v.view_rect();
    let from = Pos2::new((view.x + view.width / 2.0) as f32, (view.y + view.height / 2.0) as f32);
    let to = from + Vec2::new(-120.0, 80.0);
    h.hover_at(from);
    h.step();
    h.drag_at(from);
    h.step();
    for i in 1..=4 {
        h.hover_at(from + (to - from) * (i as f32 / 4.0));
        h.step();
    }
    h.drop_at(to);
    h.step();
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    let moved = [v.camera.center[0] - center[0], v.camera.center[1] - center[1]];
    assert!(
        (moved[0] - 120.0 / zoom).abs() < 1.0 && (moved[1] + 80.0 / zoom).abs() < 1.0,
        "moved {moved:?} at zoom {zoom}"
    );

    h.key_press(egui::Key::ArrowRight);
    h.step();
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!(v.camera.center[0] > center[0] + 120.0 / zoom, "the right arrow pans right");

    h.key_press(egui::Key::Num0);
    wait_until(&mut h, "fit", |app| app.active_view().is_some_and(|v| !v.is_animating()));
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!((v.camera.zoom / v.fit_zoom() - 1.0).abs() < 1e-6);
    assert_eq!(v.camera.center, [6000.0, 4500.0]);
}

#[test]
fn minimap_click_moves_the_view_and_requests_centre_first() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path(), Layout::Chain));
    wait_until(&mut h, "open", settled);
    h.key_press(egui::Key::Num5); // 40×: level 0 (the slide is 0.25 µm per pixel)
    wait_until(&mut h, "zoom to 40×", |app| app.active_view().is_some_and(|v| !v.is_animating()));
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!((v.magnification().unwrap_or(0.0) - 40.0).abs() < 1e-6);
    let map = v.minimap_rect().unwrap_or_else(|| panic!("no minimap"));
    let target = map.min + Vec2::new(map.width() * 0.25, map.height() * 0.75);
    h.hover_at(target);
    h.step();
    h.drag_at(target);
    h.step();
    h.drop_at(target);
    h.step();
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    let [cx, cy] = v.camera.center;
    assert!((cx - 3000.0).abs() < 12000.0 / map.width() as f64 * 2.0, "centre x {cx}");
    assert!((cy - 6750.0).abs() < 9000.0 / map.height() as f64 * 2.0, "centre y {cy}");
    // Right after the jump nothing there is loaded: level-0 tiles are asked for, the one under the
    // centre first.
    assert_eq!(v.stats.level, 0);
    let first = v.stats.wanted.iter().find(|t| t.level == 0).copied().unwrap_or_else(|| panic!("no level-0 request"));
    assert_eq!((first.col, first.row), ((cx / 256.0) as u64, (cy / 256.0) as u64));
    wait_until(&mut h, "the new place to load", settled);
}

#[test]
fn corrupt_tile_is_a_counted_gap() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts =
        SynthOptions { width: 2048, height: 2048, compression: SynthCompression::Jpeg, seed: 2, ..Default::default() };
    let path = synth(tmp.path(), "bad.tif", &opts);
    // Overwrite the start of level-0 tile (3,3)'s JPEG data, found through the engine's raw access.
    let slide = wsiview::slide::TiffSlide::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let raw = slide.read_raw_tile(0, 3, 3).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("tile"));
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let at =
        bytes.windows(raw.data.len()).position(|w| w == raw.data.as_slice()).unwrap_or_else(|| panic!("tile bytes"));
    bytes[at + 2..at + 40].fill(0x5A);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));

    let mut h = harness(&path);
    wait_until(&mut h, "open", settled);
    if let Some(v) = h.state_mut().active_view_mut() {
        v.look_at([3.5 * 256.0, 3.5 * 256.0], Some(1.0));
    }
    wait_until(&mut h, "level 0 around the bad tile", settled);
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert_eq!(v.stats.level, 0);
    assert_eq!(v.stats.failed, 1, "one hatched gap");
    assert!(v.stats.exact + 1 == v.stats.visible && v.stats.visible > 4, "the rest drew");
    let reason = v.failed_tiles().values().next().cloned().unwrap_or_default();
    assert!(reason.contains("tile 3,3 of level 0"), "{reason}");
    // The status bar is laid out before the slide in a frame: one more frame shows the new count.
    h.step();
    assert!(h.query_by_label_contains("1 corrupt tiles").is_some(), "the status bar counts it");
}

#[test]
fn a_bad_file_shows_an_error_and_others_stay_open() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = slide(tmp.path(), Layout::Chain);
    let bad = tmp.path().join("notes.tif");
    std::fs::write(&bad, b"not a slide at all").unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&good);
    wait_until(&mut h, "open", settled);
    let ctx = h.ctx.clone();
    h.state_mut().open(bad.clone(), &ctx);
    wait_until(&mut h, "the error", |app| {
        app.tabs.len() == 2 && matches!(app.tabs[1].state, wsiview::viewer::app::TabState::Failed(_))
    });
    h.step();
    assert!(h.query_by_label_contains("Cannot open this slide").is_some());
    assert!(h.query_by_label_contains("not a TIFF file").is_some());
    h.state_mut().active = 0;
    wait_until(&mut h, "the first slide again", settled);
}

#[test]
fn label_stays_hidden_until_asked_for() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path(), Layout::Svs));
    wait_until(&mut h, "open", settled);
    h.step();
    assert!(h.query_by_label("thumbnail").is_some(), "the thumbnail is listed");
    assert!(h.query_by_label("label").is_none(), "the label is not shown");
    assert!(h.query_by_label("macro").is_none(), "the macro is not shown");
    h.get_by_label("Show label").click();
    h.step();
    wait_until(&mut h, "the label", |_| true);
    h.step();
    assert!(h.query_by_label("label").is_some() && h.query_by_label("macro").is_some());
    assert!(h.query_by_label("Hide label").is_some());
}

fn idle(app: &ViewerApp) -> bool {
    app.active_view().is_some_and(|v| {
        let s = v.scheduler_stats();
        v.is_complete() && s.queued == 0 && s.in_flight == 0
    })
}

#[test]
fn display_adjustments_remake_tiles_without_decoding() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path(), Layout::Chain));
    wait_until(&mut h, "open and prefetch", idle);
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    let (decoded, loaded) = (v.slide.tiles_decoded(), v.tiles_loaded);
    assert!(decoded > 0);
    if let Some(v) = h.state_mut().active_view_mut() {
        v.set_adjustments(wsiview::viewer::camera::Adjustments { brightness: 0.2, contrast: 1.3, gamma: 0.8 });
    }
    h.step();
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!(!v.is_complete(), "tiles made before the change no longer count as done");
    wait_until(&mut h, "the adjusted tiles", idle);
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!(v.tiles_loaded >= loaded + v.stats.visible as u64, "visible tiles were remade");
    assert_eq!(v.slide.tiles_decoded(), decoded, "from the decoded-tile cache, not the file");
}
