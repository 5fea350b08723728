//! The viewer driven like a user, without a GPU or a display (egui_kittest): open, wheel-zoom,
//! drag, keys, minimap, corrupt tiles, bad files, the label behind its button; remote slides
//! under a slow link and a failing one (a range server written here).
#![cfg(feature = "gui")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::synth;
use egui::{Event, Modifiers, MouseWheelUnit, Pos2, Vec2};
use egui_kittest::kittest::{NodeT, Queryable};
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
    // The tool bar stays, switched off, so the slide area does not jump between the tabs.
    assert!(h.get_by_label("Rectangle").accesskit_node().is_disabled(), "the tools are off on a failed slide");
    h.state_mut().active = 0;
    wait_until(&mut h, "the first slide again", settled);
    h.step();
    assert!(!h.get_by_label("Rectangle").accesskit_node().is_disabled(), "the tools are on again");
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
    // The section is at the side panel's foot: scroll to it first.
    h.get_by_label("Show label").scroll_to_me();
    for _ in 0..5 {
        h.step();
    }
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

/// A small slide with a known objective (Aperio `AppMag`) and pixel size.
fn small_svs(dir: &Path, name: &str, objective: f64, mpp: f64) -> PathBuf {
    let opts = SynthOptions {
        width: 4000,
        height: 3000,
        layout: Layout::Svs,
        objective_power: objective,
        mpp,
        seed: 3,
        ..Default::default()
    };
    synth(dir, name, &opts)
}

/// `path` written relative to the current folder (through `..` up to the root).
fn relative_to_cwd(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|e| panic!("{e}"));
    let up = cwd.components().count().saturating_sub(1);
    let mut rel = PathBuf::new();
    for _ in 0..up {
        rel.push("..");
    }
    rel.join(path.strip_prefix("/").unwrap_or(path))
}

#[test]
fn open_recent_stores_absolute_paths_of_slides_that_opened_and_drops_missing_files() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = small_svs(tmp.path(), "good.svs", 20.0, 0.5);
    let canonical = std::fs::canonicalize(&good).unwrap_or_else(|e| panic!("{e}"));
    let relative = relative_to_cwd(&good);
    assert!(relative.is_relative() && relative.exists(), "{}", relative.display());
    let mut h = harness(&relative);
    assert!(h.state().recent.is_empty(), "not remembered before it has opened");
    wait_until(&mut h, "open", |app| app.active_view().is_some());
    h.step();
    assert_eq!(h.state().recent, vec![canonical.clone()], "the canonical path, once");
    assert!(h.state().recent[0].is_absolute());
    // The same slide again by its absolute path: still one entry.
    let ctx = h.ctx.clone();
    h.state_mut().open(canonical.clone(), &ctx);
    wait_until(&mut h, "second open", |app| app.tabs.iter().all(|t| t.view().is_some()));
    h.step();
    assert_eq!(h.state().recent, vec![canonical.clone()]);

    // A file that is not a slide fails to open and is not remembered.
    let bad = tmp.path().join("corrupt.svs");
    std::fs::write(&bad, b"not a slide").unwrap_or_else(|e| panic!("{e}"));
    h.state_mut().open(bad.clone(), &ctx);
    wait_until(&mut h, "the failure", |app| {
        app.tabs.iter().any(|t| matches!(t.state, wsiview::viewer::app::TabState::Failed(_)))
    });
    h.step();
    assert_eq!(h.state().recent, vec![canonical.clone()], "a slide that failed is not in Open recent");

    // Remembered entries whose file is gone are dropped at start, with a note.
    let gone = tmp.path().join("gone.svs");
    let persisted =
        wsiview::viewer::app::Persisted { recent: vec![gone.clone(), canonical.clone()], ..Default::default() };
    h.state_mut().restore(persisted);
    wait_until(&mut h, "the missing entry to go", |app| app.recent == vec![canonical.clone()]);
    h.step();
    let note = h.state().recent_note.as_ref().map(|m| m.text.clone()).unwrap_or_default();
    assert!(note.contains("gone.svs") && note.contains("missing"), "{note}");
    assert!(h.query_by_label_contains("Removed from Open recent").is_some(), "the note is shown");
}

fn double_click_node(h: &mut Harness<'static, ViewerApp>, label: &str) {
    let p = h.get_by_label(label).rect().center();
    h.hover_at(p);
    // Past egui's double-click time since the last click, or this would count as a triple click.
    for _ in 0..30 {
        h.step();
    }
    for _ in 0..2 {
        h.event(Event::PointerButton {
            pos: p,
            button: egui::PointerButton::Primary,
            pressed: true,
            modifiers: Modifiers::NONE,
        });
        h.step();
        h.event(Event::PointerButton {
            pos: p,
            button: egui::PointerButton::Primary,
            pressed: false,
            modifiers: Modifiers::NONE,
        });
        h.step();
    }
}

fn browser_ready(app: &ViewerApp) -> bool {
    app.file_browser.as_ref().is_some_and(|b| !b.is_listing())
}

#[test]
fn file_open_without_a_desktop_picker_uses_the_built_in_browser() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = small_svs(tmp.path(), "first.svs", 20.0, 0.5);
    let sub = tmp.path().join("cases");
    std::fs::create_dir(&sub).unwrap_or_else(|e| panic!("{e}"));
    let second = small_svs(&sub, "second.svs", 20.0, 0.5);
    std::fs::write(sub.join("notes.txt"), b"x").unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&first);
    wait_until(&mut h, "open", |app| app.active_view().is_some());
    h.state_mut().file_dialog = wsiview::viewer::file_browser::FileDialogMode::Builtin;
    h.get_by_label("File").click();
    h.step();
    h.step();
    h.get_by_label("Open…").click();
    h.step();
    wait_until(&mut h, "the built-in browser's listing", browser_ready);
    h.step();
    assert!(h.query_by_label_contains("Built-in file browser").is_some(), "it says why it is shown");
    // It starts in the active slide's folder: sub-folders and slides.
    assert!(h.query_by_label("cases/").is_some());
    assert_eq!(h.query_all_by_label("first.svs").count(), 2, "the tab and the browser's entry");

    // Type a folder and press Enter.
    let field = h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Folder");
    field.focus();
    h.step();
    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::A);
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Folder").type_text(&sub.to_string_lossy());
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    wait_until(&mut h, "the typed folder", |app| {
        browser_ready(app)
            && app.file_browser.as_ref().is_some_and(|b| b.entries.iter().any(|e| e.name == "second.svs"))
    });
    h.step();
    assert!(h.query_by_label("second.svs").is_some());
    assert!(h.query_by_label("notes.txt").is_none(), "only slides are listed");

    // Up, then into the folder by double-click, then pick the slide and press Enter.
    h.get_by_label("Up").click();
    h.step();
    wait_until(&mut h, "the parent folder", |app| {
        browser_ready(app) && app.file_browser.as_ref().is_some_and(|b| b.entries.iter().any(|e| e.name == "cases"))
    });
    h.step();
    double_click_node(&mut h, "cases/");
    wait_until(&mut h, "the sub-folder", |app| {
        browser_ready(app)
            && app.file_browser.as_ref().is_some_and(|b| b.entries.iter().any(|e| e.name == "second.svs"))
    });
    h.step();
    h.get_by_label("second.svs").click();
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    wait_until(&mut h, "the picked slide to open", |app| {
        app.tabs.len() == 2 && app.active_view().is_some() && app.file_browser.is_none()
    });
    let opened = std::fs::canonicalize(&h.state().tabs[1].path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(opened, std::fs::canonicalize(&second).unwrap_or_else(|e| panic!("{e}")));
}

#[test]
fn ten_tabs_fit_and_the_magnification_buttons_stay_whole() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let one = small_svs(tmp.path(), "one.svs", 40.0, 0.25);
    let mut names = Vec::new();
    for i in 0..10 {
        let name = format!("a-rather-long-slide-name-{i}.svs");
        std::fs::copy(&one, tmp.path().join(&name)).unwrap_or_else(|e| panic!("{e}"));
        names.push(name);
    }
    let mut h = common::viewer(&tmp.path().join(&names[0]), [1000.0, 700.0], 64 << 20);
    let ctx = h.ctx.clone();
    for name in &names[1..] {
        h.state_mut().open(tmp.path().join(name), &ctx);
    }
    wait_until(&mut h, "ten slides", |app| app.tabs.len() == 10 && app.tabs.iter().all(|t| t.view().is_some()));
    h.step();
    h.step();
    let inside = |r: egui::Rect| r.min.x >= 0.0 && r.max.x <= 1000.0 && r.min.y >= 0.0 && r.max.y <= 700.0;
    for name in &names {
        let r = h.get_by_label(name).rect();
        assert!(inside(r) && r.width() >= 20.0, "tab {name} at {r:?}");
    }
    for m in ["1×", "5×", "10×", "20×", "40×"] {
        // (The side panel's Objective row also reads "40×".)
        let r = h.get_by_role_and_label(egui::accesskit::Role::Button, m).rect();
        assert!(inside(r), "the {m} button at {r:?}");
    }
    // The full name shows on hover.
    h.get_by_label(&names[9]).hover();
    for _ in 0..60 {
        h.step();
    }
    assert!(h.query_by_label(&tmp.path().join(&names[9]).display().to_string()).is_some());
}

#[test]
fn presets_beyond_the_scan_say_digital_zoom() {
    let hover = |h: &mut Harness<'static, ViewerApp>, label: &str| {
        h.get_by_role_and_label(egui::accesskit::Role::Button, label).hover();
        // egui shows a tooltip once the pointer has rested a moment.
        for _ in 0..60 {
            h.step();
        }
    };
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&small_svs(tmp.path(), "twenty.svs", 20.0, 0.5));
    wait_until(&mut h, "open", settled);
    h.step();
    assert!(h.query_by_label_contains("digital zoom").is_none());
    hover(&mut h, "40×");
    assert!(
        h.query_by_label_contains("digital zoom: the slide was scanned at 20×").is_some(),
        "the 40× button's tooltip says it is digital zoom"
    );
    hover(&mut h, "20×");
    assert!(h.query_by_label_contains("Magnification 20× (key 4)").is_some());
    assert!(h.query_by_label_contains("digital zoom").is_none(), "20× on a 20× scan is not");
    h.hover_at(Pos2::new(600.0, 400.0));
    h.key_press(egui::Key::Num5);
    wait_until(&mut h, "40×", |app| app.active_view().is_some_and(|v| !v.is_animating()));
    h.step();
    let m = h.state().active_view().and_then(|v| v.magnification()).unwrap_or(0.0);
    assert!((m - 40.0).abs() < 1e-6, "{m}");
    assert!(h.query_by_label("40× (digital zoom, scan 20×)").is_some(), "the status bar says so");
    h.key_press(egui::Key::Num4);
    wait_until(&mut h, "20×", |app| app.active_view().is_some_and(|v| !v.is_animating()));
    h.step();
    assert!(h.query_by_label_contains("(digital zoom").is_none());
}

#[test]
fn help_lists_every_tool_and_navigation_key() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&small_svs(tmp.path(), "help.svs", 20.0, 0.5));
    wait_until(&mut h, "open", |app| app.active_view().is_some());
    h.step();
    let mut keys: Vec<String> =
        wsiview::viewer::annotate::Tool::ALL.iter().map(|t| t.key().name().to_string()).collect();
    for k in ["Left", "Right", "Up", "Down", "Plus", "Minus", "0", "1", "2", "3", "4", "5"] {
        keys.push(k.to_string());
    }
    for k in ["Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Y", "Ctrl+D", "Ctrl+K", "Delete", "Enter", "Escape"] {
        keys.push(k.to_string());
    }
    // Some of these read elsewhere too (the number of levels): count them before and after.
    let before: Vec<usize> = keys.iter().map(|k| h.query_all_by_label(k).count()).collect();
    h.get_by_label("Help").click();
    h.step();
    h.step();
    h.get_by_label("Keyboard shortcuts").click();
    h.step();
    h.step();
    for (k, before) in keys.iter().zip(before) {
        assert!(h.query_all_by_label(k).count() > before, "the help lists {k}");
    }
    assert!(h.query_by_label_contains("Ruler tool").is_some());
}

// ---------------------------------------------------------------------------------------------
// Remote slides: a range server written here, slow or failing on request.

/// Serves the bundled sample slide with HTTP range requests, one thread per connection, each
/// reply after `delay` (a slow link); while `down` is set every request gets a 503.
struct RangeServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

fn range_server(delay: Duration) -> RangeServer {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-slides/sample.svs");
    let body = Arc::new(std::fs::read(sample).unwrap_or_else(|e| panic!("{e}")));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let (requests, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let (counter, failing) = (requests.clone(), down.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (body, counter, failing) = (body.clone(), counter.clone(), failing.clone());
            std::thread::spawn(move || {
                // Errors are the client hanging up; nothing to do.
                let _ = answer_range(stream, &body, delay, &counter, &failing);
            });
        }
    });
    RangeServer { port, requests, down }
}

fn answer_range(
    stream: TcpStream,
    body: &[u8],
    delay: Duration,
    requests: &AtomicUsize,
    down: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            let (a, b) = v.trim().split_once('-').unwrap_or(("0", "0"));
            range = Some((a.parse::<usize>().unwrap_or(0), b.parse::<usize>().unwrap_or(0)));
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(delay);
    let mut out = stream;
    if down.load(Ordering::SeqCst) {
        write!(out, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return out.flush();
    }
    let (start, end) = range.unwrap_or((0, body.len() - 1));
    let end = end.min(body.len() - 1);
    write!(
        out,
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{}\r\nContent-Length: {}\r\n\
         ETag: \"sample-1\"\r\nConnection: close\r\n\r\n",
        body.len(),
        end + 1 - start
    )?;
    out.write_all(&body[start..=end])?;
    out.flush()
}

/// A window with no slide open yet.
fn empty_window(size: [f32; 2]) -> Harness<'static, ViewerApp> {
    common::isolate_app_data();
    egui_kittest::Harness::builder()
        .with_size(size)
        .with_step_dt(1.0 / 60.0)
        .build_ui_state(|ui, app: &mut ViewerApp| app.ui(ui), ViewerApp::new(256 << 20))
}

#[test]
fn a_remote_slide_under_a_slow_link_shows_the_coarse_level_first_and_the_window_stays_responsive() {
    let delay = Duration::from_millis(150);
    let server = range_server(delay);
    let port = server.port;
    // Credentials and a presigned query: needed for the requests, never shown or remembered.
    let url = format!("http://reader:s3cret@127.0.0.1:{port}/slides/sample.svs?X-Amz-Signature=SECRET");
    let shown = format!("http://127.0.0.1:{port}/slides/sample.svs");
    let mut h = empty_window([1000.0, 700.0]);
    h.step();
    h.get_by_label("File").click();
    h.step();
    h.step();
    h.get_by_label("Open URL…").click();
    h.step();
    h.step();
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, "URL").type_text(&url);
    h.step();
    assert!(h.query_by_label_contains("Not encrypted").is_some(), "the dialog warns about plain http");
    h.key_press(egui::Key::Enter);

    // Step like the window's event loop while the slide opens and streams, timing each frame.
    let mut slowest = Duration::ZERO;
    let (mut frames, mut saw_opening, mut coarse_before_own, mut coarse_under_level0) = (0, false, false, false);
    let mut zoomed = false;
    let start = Instant::now();
    let done = loop {
        assert!(start.elapsed() < Duration::from_secs(90), "timed out: the remote slide did not finish loading");
        let t = Instant::now();
        h.step();
        slowest = slowest.max(t.elapsed());
        frames += 1;
        let app = h.state();
        let Some(v) = app.active_view() else {
            if !saw_opening && h.query_by_label_contains(&format!("Opening {shown}…")).is_some() {
                saw_opening = true;
                assert!(h.query_by_label_contains("SECRET").is_none() && h.query_by_label_contains("s3cret").is_none());
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let s = &v.stats;
        // The view's own level is still streaming while the coarser one already fills its place.
        if s.coarse > 0 && s.exact < s.visible {
            if s.level == 0 {
                coarse_under_level0 = true;
            } else {
                coarse_before_own = true;
            }
        }
        if !zoomed && v.is_complete() {
            // The fitted view is done: go to full resolution near a corner, where nothing is
            // loaded (the viewer prefetches the centre of the next finer level).
            let center = [1100.0, 800.0];
            if let Some(v) = h.state_mut().active_view_mut() {
                v.look_at(center, Some(1.0));
            }
            zoomed = true;
        } else if zoomed && v.stats.level == 0 && v.is_complete() {
            break v.stats.clone();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(saw_opening, "the opening state names the redacted URL");
    assert!(coarse_before_own, "the coarse level is drawn while the fitted level streams");
    assert!(coarse_under_level0, "the coarse level is drawn while level-0 tiles stream");
    assert_eq!(done.exact, done.visible, "level 0 completes");
    assert_eq!(done.failed, 0);
    // The window never waited on a request: every frame took less than one request's delay.
    assert!(slowest < delay, "a frame took {slowest:?} (each request takes {delay:?})");
    assert!(frames > 20, "{frames} frames");
    assert!(server.requests.load(Ordering::SeqCst) > 5);

    // Shown and remembered by the redacted URL only.
    h.step();
    assert_eq!(h.state().tabs[0].path, PathBuf::from(&shown));
    assert!(h.query_by_label_contains("Not encrypted").is_some(), "the status bar warns about plain http");
    assert_eq!(h.state().recent, vec![PathBuf::from(&shown)]);
    let saved = serde_json::to_string(&h.state().persisted().recent).unwrap_or_default();
    assert!(saved.contains(&shown) && !saved.contains("SECRET") && !saved.contains("s3cret"), "{saved}");
}

#[test]
fn a_tile_that_fails_to_load_is_a_marked_gap_and_is_fetched_again_back_in_view() {
    let server = range_server(Duration::from_millis(5));
    let url = format!("http://127.0.0.1:{}/sample.svs", server.port);
    let mut h = empty_window([900.0, 560.0]);
    let ctx = h.ctx.clone();
    h.state_mut().open(PathBuf::from(&url), &ctx);
    wait_until(&mut h, "the remote slide", settled);

    // The network goes: full resolution somewhere not loaded yet fails, tile by tile.
    server.down.store(true, Ordering::SeqCst);
    let here = [1500.0, 1500.0];
    if let Some(v) = h.state_mut().active_view_mut() {
        v.look_at(here, Some(1.0));
    }
    assert!(
        common::step_until(&mut h, 60, |app| app.active_view().is_some_and(|v| v.stats.level == 0 && settled(app))),
        "the failed tiles to settle"
    );
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!(v.stats.failed > 0, "failed tiles are drawn as gaps");
    let reason = v.failed_tiles().values().next().cloned().unwrap_or_default();
    assert!(reason.contains("503"), "the reason is kept: {reason}");
    h.step();
    assert!(h.query_by_label_contains("tiles failed: ").is_some(), "the status bar says why");
    for _ in 0..5 {
        let t = Instant::now();
        h.step();
        assert!(t.elapsed() < Duration::from_millis(150), "the window stays responsive with the network down");
    }

    // The network is back; the failed tiles leave the view, and are fetched again on return.
    server.down.store(false, Ordering::SeqCst);
    if let Some(v) = h.state_mut().active_view_mut() {
        v.look_at([7000.0, 5000.0], Some(1.0));
    }
    wait_until(&mut h, "the far corner", |app| app.active_view().is_some_and(|v| v.stats.level == 0) && settled(app));
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!(v.failed_tiles().is_empty(), "failures out of view are forgotten: {:?}", v.failed_tiles().keys());
    let before = server.requests.load(Ordering::SeqCst);
    if let Some(v) = h.state_mut().active_view_mut() {
        v.look_at(here, Some(1.0));
    }
    wait_until(&mut h, "the failed place again", |app| {
        app.active_view().is_some_and(|v| v.stats.level == 0 && v.stats.exact == v.stats.visible) && settled(app)
    });
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert_eq!(v.stats.failed, 0, "no gap left");
    assert!(server.requests.load(Ordering::SeqCst) > before, "the tiles were fetched again");
}

#[test]
fn open_recent_keeps_urls_redacted_and_never_drops_them_as_missing_files() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = std::fs::canonicalize(small_svs(tmp.path(), "local.svs", 20.0, 0.5)).unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&good);
    wait_until(&mut h, "open", |app| app.active_view().is_some());
    // An entry saved with a query string (an older version) is redacted on restore; a URL is
    // never checked on disk (it is no file) and stays; the missing file goes.
    let signed = PathBuf::from("https://user:pw@slides.example/case/a.svs?X-Amz-Signature=SECRET");
    let gone = tmp.path().join("gone.svs");
    let persisted = wsiview::viewer::app::Persisted { recent: vec![signed, gone, good.clone()], ..Default::default() };
    h.state_mut().restore(persisted);
    let redacted = PathBuf::from("https://slides.example/case/a.svs");
    wait_until(&mut h, "the missing entry to go", |app| app.recent.len() == 2);
    assert_eq!(h.state().recent, vec![redacted, good]);
    h.get_by_label("File").click();
    h.step();
    h.step();
    h.get_by_label("Open recent").hover();
    h.step();
    h.step();
    assert!(h.query_by_label("https://slides.example/case/a.svs").is_some(), "listed by its redacted URL");
    assert!(h.query_by_label_contains("SECRET").is_none());
}

/// Two slides side by side (View > Layout): an H&E at 0.25 µm/px, 12000 × 9000, and an
/// immunostain at 0.5 µm/px, 6000 × 4500, both open.
fn two_slides_side_by_side(dir: &Path) -> Harness<'static, ViewerApp> {
    let fine = SynthOptions { width: 12000, height: 9000, mpp: 0.25, seed: 5, ..Default::default() };
    let coarse = SynthOptions { width: 6000, height: 4500, mpp: 0.5, seed: 6, ..Default::default() };
    let a = synth(dir, "he.tif", &fine);
    let b = synth(dir, "ihc.tif", &coarse);
    let mut h = harness(&a);
    let ctx = h.ctx.clone();
    h.state_mut().open(b, &ctx);
    wait_until(&mut h, "both slides open", |app| app.tabs.iter().all(|t| t.view().is_some()));
    h.state_mut().layout = wsiview::viewer::grid::Layout::Two;
    h
}

/// Tab `i`'s camera and view rectangle.
fn cell(app: &ViewerApp, i: usize) -> (wsiview::viewer::camera::Camera, wsiview::viewer::camera::ViewRect) {
    app.tabs[i].view().map(|v| (v.camera, v.view_rect())).unwrap_or_else(|| panic!("tab {i}"))
}

/// View > Layout with synchronised navigation: two slides scanned at 0.25 and 0.5 µm/px side by
/// side; moving the active one moves the other the same distance in µm and to the same µm per
/// screen point; a press in the other cell makes it the one that leads; with Sync off nothing
/// follows.
#[test]
fn side_by_side_slides_move_together_in_micrometres() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = two_slides_side_by_side(tmp.path());
    h.state_mut().active = 0;
    for _ in 0..5 {
        h.step();
    }
    let (c0, r0) = cell(h.state(), 0);
    let (_, r1) = cell(h.state(), 1);
    assert!(r0.x + r0.width <= r1.x && (r0.width - r1.width).abs() < 1.0, "two cells side by side: {r0:?} {r1:?}");
    // Turning the active slide (still fitted to its cell) turns the other as much, and back.
    h.key_press(egui::Key::CloseBracket);
    h.step();
    h.step();
    let turned = (cell(h.state(), 0).0.rotation, cell(h.state(), 1).0.rotation);
    assert_eq!(turned, (std::f64::consts::FRAC_PI_2, std::f64::consts::FRAC_PI_2));
    h.key_press(egui::Key::OpenBracket);
    h.step();
    h.step();
    assert_eq!((cell(h.state(), 0).0.rotation, cell(h.state(), 1).0.rotation), (0.0, 0.0));

    // Move the active slide 400 level-0 px (100 µm) right and zoom it to 1 point per px.
    if let Some(v) = h.state_mut().tabs[0].view_mut() {
        v.look_at([c0.center[0] + 400.0, c0.center[1]], Some(1.0));
    }
    let (before1, _) = cell(h.state(), 1);
    h.step();
    h.step();
    let (after1, _) = cell(h.state(), 1);
    assert!(
        (after1.center[0] - before1.center[0] - 200.0).abs() < 1e-6,
        "200 px at 0.5 µm/px: {before1:?} → {after1:?}"
    );
    assert_eq!(after1.center[1], before1.center[1]);
    assert!((0.25 / 1.0 - 0.5 / after1.zoom).abs() < 1e-9, "same µm per point: zoom {}", after1.zoom);

    // A drag in the right-hand cell makes it the active slide, and the left one follows it.
    let from = Pos2::new((r1.x + r1.width / 2.0) as f32, (r1.y + r1.height / 2.0) as f32);
    let (left_before, _) = cell(h.state(), 0);
    h.drag_at(from);
    h.step();
    h.hover_at(from + Vec2::new(-50.0, 0.0));
    h.step();
    h.hover_at(from + Vec2::new(-100.0, 0.0));
    h.step();
    h.drop_at(from + Vec2::new(-100.0, 0.0));
    h.step();
    h.step();
    assert_eq!(h.state().active, 1, "the pressed cell is active");
    let (right, _) = cell(h.state(), 1);
    let (left, _) = cell(h.state(), 0);
    let moved_right_um = (right.center[0] - after1.center[0]) * 0.5;
    let moved_left_um = (left.center[0] - left_before.center[0]) * 0.25;
    assert!(moved_right_um > 10.0, "the drag panned the right slide: {moved_right_um} µm");
    assert!((moved_left_um - moved_right_um).abs() < 1e-6, "left {moved_left_um} µm, right {moved_right_um} µm");

    // Sync off: the other slide stays.
    h.state_mut().sync_navigation = false;
    let (still, _) = cell(h.state(), 0);
    if let Some(v) = h.state_mut().tabs[1].view_mut() {
        v.look_at([1000.0, 1000.0], None);
    }
    h.step();
    h.step();
    assert_eq!(cell(h.state(), 0).0, still);
}

#[test]
fn align_here_puts_the_clicked_features_together_and_sync_keeps_them() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = two_slides_side_by_side(tmp.path());
    for _ in 0..5 {
        h.step();
    }
    let view = cell;
    h.get_by_label("Align here").click();
    h.step();
    assert!(h.state().aligning.is_some());
    // Click a feature in each cell (different places of each cell).
    let (c0, r0) = view(h.state(), 0);
    let (c1, r1) = view(h.state(), 1);
    let at0 = Pos2::new((r0.x + r0.width * 0.3) as f32, (r0.y + r0.height * 0.4) as f32);
    let at1 = Pos2::new((r1.x + r1.width * 0.7) as f32, (r1.y + r1.height * 0.6) as f32);
    let p0 = c0.screen_to_level0([f64::from(at0.x), f64::from(at0.y)], &r0);
    let p1 = c1.screen_to_level0([f64::from(at1.x), f64::from(at1.y)], &r1);
    common::click_at(&mut h, at0);
    h.step();
    assert!(h.state().aligning.as_ref().is_some_and(|p| p.len() == 1), "one slide marked");
    assert_eq!(view(h.state(), 0).0, c0, "a click while aligning does not move the slide");
    common::click_at(&mut h, at1);
    h.step();
    h.step();
    assert!(h.state().aligning.is_none(), "done once every slide is marked");
    assert_eq!(h.state().active, 0, "the first slide marked is the reference");
    // Where each mark is drawn in its cell, from the cell's top-left corner.
    let marks = |app: &ViewerApp| {
        let ((c0, r0), (c1, r1)) = (view(app, 0), view(app, 1));
        let (s0, s1) = (c0.level0_to_screen(p0, &r0), c1.level0_to_screen(p1, &r1));
        ([s0[0] - r0.x, s0[1] - r0.y], [s1[0] - r1.x, s1[1] - r1.y])
    };
    let (m0, m1) = marks(h.state());
    assert!(
        (m0[0] - m1[0]).abs() < 0.5 && (m0[1] - m1[1]).abs() < 0.5,
        "the marks lie at the same place of each cell: {m0:?} {m1:?}"
    );
    let ((c0, _), (c1, _)) = (view(h.state(), 0), view(h.state(), 1));
    assert!((0.25 / c0.zoom - 0.5 / c1.zoom).abs() < 1e-9, "the same µm per point");

    // Synchronised navigation keeps them together: zoom and pan the reference.
    if let Some(v) = h.state_mut().tabs[0].view_mut() {
        v.look_at([p0[0] + 100.0, p0[1] - 40.0], Some(c0.zoom * 2.0));
    }
    h.step();
    h.step();
    let (m0, m1) = marks(h.state());
    assert!((m0[0] - m1[0]).abs() < 0.5 && (m0[1] - m1[1]).abs() < 0.5, "still together after a move: {m0:?} {m1:?}");
}

fn near(a: [f64; 2], b: [f64; 2]) -> bool {
    (a[0] - b[0]).hypot(a[1] - b[1]) < 1e-6
}

#[test]
fn a_turned_view_puts_points_where_expected_and_measures_the_same() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = SynthOptions { width: 12000, height: 9000, mpp: 0.25, seed: 5, ..Default::default() };
    let mut h = harness(&synth(tmp.path(), "turn.tif", &opts));
    wait_until(&mut h, "the slide", |app| app.active_view().is_some());
    h.step();
    if let Some(v) = h.state_mut().active_view_mut() {
        v.look_at([6000.0, 4500.0], Some(0.5));
    }
    h.step();
    h.key_press(egui::Key::CloseBracket);
    h.step();
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    assert!((v.camera.rotation - std::f64::consts::FRAC_PI_2).abs() < 1e-12, "{}", v.camera.rotation);
    assert_eq!(v.camera.center, [6000.0, 4500.0], "turned about the centre");
    // 100 px right of the centre is drawn 50 points below it; 100 px below, 50 points left.
    let r = v.view_rect();
    let c = [r.x + r.width / 2.0, r.y + r.height / 2.0];
    let right = v.camera.level0_to_screen([6100.0, 4500.0], &r);
    let below = v.camera.level0_to_screen([6000.0, 4600.0], &r);
    assert!((right[0] - c[0]).abs() < 1e-6 && (right[1] - c[1] - 50.0).abs() < 1e-6, "{right:?}");
    assert!((below[0] - c[0] + 50.0).abs() < 1e-6 && (below[1] - c[1]).abs() < 1e-6, "{below:?}");
    assert!(h.query_by_label_contains("Rotated 90°").is_some(), "the angle is shown");
    // A ruler dragged 200 points across the turned view measures 400 px = 100 µm.
    h.key_press(egui::Key::M);
    h.step();
    let from = Pos2::new(c[0] as f32 - 100.0, c[1] as f32 + 30.0);
    h.drag_at(from);
    h.step();
    for i in 1..=4 {
        h.hover_at(from + Vec2::new(50.0 * i as f32, 0.0));
        h.step();
    }
    h.drop_at(from + Vec2::new(200.0, 0.0));
    h.step();
    let v = h.state().active_view().unwrap_or_else(|| panic!("no view"));
    let ruler =
        v.annotations.doc.annotations().last().map(|a| a.geometry.clone()).unwrap_or_else(|| panic!("no ruler"));
    let length = ruler.measure(v.annotations.pixel_size).length.unwrap_or(0.0);
    assert!((length - 100.0).abs() < 0.01, "{length} µm");
    // Turned a quarter clockwise, the slide's top points right: the ruler runs up the slide,
    // from 60 px right of and 200 px below the centre.
    let pts = ruler.vertices();
    assert!(near(pts[0], [6060.0, 4700.0]) && near(pts[1], [6060.0, 4300.0]), "{pts:?}");
    // Fine steps, the badge resets; 4 quarter turns are none.
    h.key_press(egui::Key::V);
    h.key_press(egui::Key::Period);
    h.step();
    let degrees = h.state().active_view().map(|v| v.rotation_degrees()).unwrap_or_default();
    assert!((degrees - 95.0).abs() < 1e-9, "{degrees}");
    h.get_by_label("Rotated 95° · reset").click();
    h.step();
    assert_eq!(h.state().active_view().map(|v| v.camera.rotation), Some(0.0));
    for _ in 0..4 {
        h.key_press(egui::Key::OpenBracket);
        h.step();
    }
    assert_eq!(h.state().active_view().map(|v| v.camera.rotation), Some(0.0));
}

#[test]
fn export_view_writes_the_cells_as_on_screen_with_names_and_scale_bars() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = two_slides_side_by_side(tmp.path());
    let ctx = h.ctx.clone();
    h.state_mut().active = 0;
    if let Some(v) = h.state_mut().tabs[0].view_mut() {
        v.look_at([6000.0, 4500.0], Some(0.8));
    }
    for _ in 0..4 {
        h.step();
    }
    let (c0, r0) = cell(h.state(), 0);
    let (_, r1) = cell(h.state(), 1);
    let out = tmp.path().join("grid.png");
    h.state_mut().export_view_to(out.clone(), true, &ctx);
    wait_until(&mut h, "the export", |app| !app.is_exporting_view());
    let message = h.state().export_message.clone().unwrap_or_default();
    assert!(message.text.starts_with("Exported the view"), "{message:?}");
    let png = image::open(&out).unwrap_or_else(|e| panic!("{e}")).to_rgb8();
    // The picture spans both cells (1 pixel per point here).
    let width = (r1.x + r1.width - r0.x).round() as u32;
    assert_eq!((png.width(), png.height()), (width, r0.height.round() as u32));
    // The middle of the first cell is the slide's pixel there (level 0 at zoom 0.8 … the view
    // draws level 0 until 1:2): compare with a region read directly.
    let slide = h.state().tabs[0].view().map(|v| v.slide.clone()).unwrap_or_else(|| panic!("no slide"));
    let (mx, my) = ((r0.width / 2.0) as u32, (r0.height / 2.0) as u32);
    let p = c0.screen_to_level0([r0.x + f64::from(mx) + 0.5, r0.y + f64::from(my) + 0.5], &r0);
    let region =
        slide.read_region(0, p[0].floor() as i64 - 2, p[1].floor() as i64 - 2, 5, 5).unwrap_or_else(|e| panic!("{e}"));
    let got = png.get_pixel(mx, my).0;
    let near = region.pixels().any(|q| (0..3).all(|k| (i16::from(q.0[k]) - i16::from(got[k])).abs() <= 12));
    assert!(near, "exported {got:?} is not the slide's pixel near {p:?}");
    // A white scale bar at the bottom left of each cell, as long as the view's.
    let (_, bar_points, _) =
        wsiview::viewer::camera::scale_bar(0.25 / c0.zoom, 150.0).unwrap_or_else(|| panic!("no bar"));
    for cell_x in [0.0, r1.x - r0.x] {
        let y = (r0.height - 18.0).round() as u32;
        let x0 = (cell_x + 16.0).round() as u32;
        let white = (x0..png.width()).take_while(|&x| png.get_pixel(x, y).0.iter().all(|&c| c > 240)).count();
        if cell_x == 0.0 {
            assert!((white as f64 - bar_points).abs() <= 2.0, "bar of {white} px, expected {bar_points}");
        } else {
            assert!(white > 20, "the second cell's scale bar: {white} px");
        }
    }
    // The names are written top left: white text on a dark box.
    let text_pixels = (8..120u32)
        .flat_map(|x| (8..26u32).map(move |y| (x, y)))
        .filter(|&(x, y)| png.get_pixel(x, y).0.iter().all(|&c| c > 200))
        .count();
    assert!(text_pixels > 20, "the slide's name is written: {text_pixels} bright pixels");
}
