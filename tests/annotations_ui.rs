//! Annotation tools driven like a user with egui_kittest: draw with every tool, edit, move,
//! delete, duplicate, lock, undo and redo; autosave and restore on reopening.
#![cfg(feature = "gui")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::synth;
use egui::{Key, Modifiers, Pos2, Vec2};
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use wsiview::annotations::store::sidecar_path;
use wsiview::annotations::{Geometry, ObjectKind, Point};
use wsiview::synth::SynthOptions;
use wsiview::viewer::annotate::Tool;
use wsiview::viewer::slide_view::SlideView;
use wsiview::viewer::ViewerApp;

type H = Harness<'static, ViewerApp>;

fn harness(path: &Path) -> H {
    let mut h = common::viewer(path, [1200.0, 800.0], 64 << 20);
    wait_until(&mut h, "the slide to open", |app| app.active_view().is_some());
    h.step();
    h.step();
    h
}

fn wait_until(h: &mut H, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    assert!(common::step_until(h, 20, done), "timed out waiting for {what}");
}

/// Drag through `path` with the primary button held.
fn drag_through(h: &mut H, path: &[Pos2]) {
    h.hover_at(path[0]);
    h.step();
    h.drag_at(path[0]);
    h.step();
    for w in path.windows(2) {
        for i in 1..=5 {
            h.hover_at(w[0] + (w[1] - w[0]) * (i as f32 / 5.0));
            h.step();
        }
    }
    h.drop_at(path[path.len() - 1]);
    h.step();
}

fn slide(dir: &Path) -> PathBuf {
    let opts = SynthOptions { width: 4000, height: 3000, mpp: 0.5, seed: 9, ..Default::default() };
    synth(dir, "annotate.tif", &opts)
}

fn view(h: &H) -> &SlideView {
    h.state().active_view().unwrap_or_else(|| panic!("no view"))
}

/// A screen point at a fraction of the view rectangle.
fn at(h: &H, fx: f32, fy: f32) -> Pos2 {
    let r = view(h).view_rect();
    Pos2::new(r.x as f32 + r.width as f32 * fx, r.y as f32 + r.height as f32 * fy)
}

fn level0(h: &H, p: Pos2) -> Point {
    view(h).projection().to_level0(p)
}

fn drag(h: &mut H, from: Pos2, to: Pos2) {
    h.hover_at(from);
    h.step();
    h.drag_at(from);
    h.step();
    for i in 1..=6 {
        h.hover_at(from + (to - from) * (i as f32 / 6.0));
        h.step();
    }
    h.drop_at(to);
    h.step();
    h.step();
}

fn drag_f(h: &mut H, a: (f32, f32), b: (f32, f32)) {
    let (p, q) = (at(h, a.0, a.1), at(h, b.0, b.1));
    drag(h, p, q);
}

fn click_f(h: &mut H, a: (f32, f32)) {
    let p = at(h, a.0, a.1);
    click(h, p);
}

fn click(h: &mut H, p: Pos2) {
    h.hover_at(p);
    h.step();
    h.drag_at(p);
    h.step();
    h.event(egui::Event::PointerButton {
        pos: p,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.step();
    // Past egui's double-click time, so the next click is a new one.
    for _ in 0..20 {
        h.step();
    }
}

fn double_click(h: &mut H, p: Pos2) {
    h.hover_at(p);
    for _ in 0..2 {
        h.drag_at(p);
        h.step();
        h.event(egui::Event::PointerButton {
            pos: p,
            button: egui::PointerButton::Primary,
            pressed: false,
            modifiers: Modifiers::NONE,
        });
        h.step();
    }
    h.step();
}

fn key(h: &mut H, k: Key) {
    h.key_press(k);
    h.step();
}

fn ctrl(h: &mut H, k: Key) {
    h.key_press_modifiers(Modifiers::COMMAND, k);
    h.step();
}

fn geometries(h: &H) -> Vec<Geometry> {
    view(h).annotations.doc.annotations().iter().map(|a| a.geometry.clone()).collect()
}

fn close(a: Point, b: Point) -> bool {
    (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6
}

fn undo_redo_round_trip(h: &mut H) {
    let after = geometries(h);
    ctrl(h, Key::Z);
    assert_ne!(geometries(h), after, "undo changes the document back");
    ctrl(h, Key::Y);
    assert_eq!(geometries(h), after, "redo restores it");
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.step();
    assert_eq!(geometries(h), after, "nothing left to redo");
}

#[test]
fn rectangle_and_ellipse_by_dragging_exactly_where_the_pointer_went() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    h.get_by_label("Rectangle").click();
    h.step();
    assert_eq!(view(&h).annotations.tool, Tool::Rectangle);
    let (a, b) = (at(&h, 0.3, 0.3), at(&h, 0.5, 0.6));
    let (la, lb) = (level0(&h, a), level0(&h, b));
    drag(&mut h, a, b);
    match geometries(&h).as_slice() {
        [Geometry::Rectangle { x, y, width, height }] => {
            assert!(
                close([*x, *y], la) && close([x + width, y + height], lb),
                "{x} {y} {width} {height} vs {la:?} {lb:?}"
            )
        }
        other => panic!("expected one rectangle, got {other:?}"),
    }
    undo_redo_round_trip(&mut h);
    // Drawing past the slide's corner stops at the slide's edge.
    let outside = view(&h).projection().to_screen([-30.0, -20.0]);
    let inside = at(&h, 0.2, 0.2);
    drag(&mut h, outside, inside);
    match geometries(&h).last() {
        Some(Geometry::Rectangle { x, y, .. }) => assert_eq!([*x, *y], [0.0, 0.0]),
        other => panic!("expected a rectangle, got {other:?}"),
    }
    ctrl(&mut h, Key::Z);

    key(&mut h, Key::E);
    assert_eq!(view(&h).annotations.tool, Tool::Ellipse);
    // Dragged up and left: the box is normalised.
    let (a, b) = (at(&h, 0.8, 0.8), at(&h, 0.6, 0.7));
    let (la, lb) = (level0(&h, a), level0(&h, b));
    drag(&mut h, a, b);
    match geometries(&h).last() {
        Some(Geometry::Ellipse { cx, cy, rx, ry }) => {
            assert!(close([*cx, *cy], [(la[0] + lb[0]) / 2.0, (la[1] + lb[1]) / 2.0]));
            assert!(close([*rx, *ry], [(la[0] - lb[0]) / 2.0, (la[1] - lb[1]) / 2.0]));
        }
        other => panic!("expected an ellipse, got {other:?}"),
    }
    assert_eq!(geometries(&h).len(), 2);
    undo_redo_round_trip(&mut h);
}

#[test]
fn polygon_by_clicks_closes_on_double_click_and_polyline_on_enter() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::P);
    let pts = [at(&h, 0.2, 0.2), at(&h, 0.4, 0.25), at(&h, 0.35, 0.5)];
    let expected: Vec<Point> = pts.iter().map(|p| level0(&h, *p)).collect();
    click(&mut h, pts[0]);
    click(&mut h, pts[1]);
    assert!(view(&h).annotations.is_drawing());
    assert!(geometries(&h).is_empty(), "nothing is added until the polygon closes");
    double_click(&mut h, pts[2]);
    match geometries(&h).as_slice() {
        [Geometry::Polygon(p)] => {
            assert_eq!(p.exterior.len(), 3, "{:?}", p.exterior);
            assert!(p.exterior.iter().zip(&expected).all(|(a, b)| close(*a, *b)));
        }
        other => panic!("expected a polygon, got {other:?}"),
    }
    undo_redo_round_trip(&mut h);

    // Backspace removes the last vertex while drawing; Escape cancels.
    key(&mut h, Key::L);
    click_f(&mut h, (0.6, 0.2));
    click_f(&mut h, (0.7, 0.3));
    click_f(&mut h, (0.9, 0.9));
    key(&mut h, Key::Backspace);
    key(&mut h, Key::Enter);
    match geometries(&h).last() {
        Some(Geometry::Polyline { points }) => assert_eq!(points.len(), 2),
        other => panic!("expected a polyline, got {other:?}"),
    }
    click_f(&mut h, (0.1, 0.8));
    key(&mut h, Key::Escape);
    key(&mut h, Key::Enter);
    assert_eq!(geometries(&h).len(), 2, "a cancelled line adds nothing");
}

#[test]
fn freehand_ruler_and_points() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::F);
    let path = [at(&h, 0.2, 0.2), at(&h, 0.4, 0.2), at(&h, 0.4, 0.4), at(&h, 0.2, 0.4)];
    drag_through(&mut h, &path);
    let (lo, hi) = (level0(&h, path[0]), level0(&h, path[2]));
    match geometries(&h).as_slice() {
        [Geometry::Polygon(p)] => {
            assert!(p.exterior.len() >= 10, "{} vertices", p.exterior.len());
            assert!(p
                .exterior
                .iter()
                .all(|v| v[0] >= lo[0] - 1e-6 && v[0] <= hi[0] + 1e-6 && v[1] >= lo[1] - 1e-6 && v[1] <= hi[1] + 1e-6));
        }
        other => panic!("expected a freehand polygon, got {other:?}"),
    }
    undo_redo_round_trip(&mut h);

    key(&mut h, Key::M);
    let (a, b) = (at(&h, 0.5, 0.5), at(&h, 0.8, 0.9));
    let (la, lb) = (level0(&h, a), level0(&h, b));
    drag(&mut h, a, b);
    let ruler = view(&h).annotations.doc.annotations().last().cloned().unwrap_or_else(|| panic!("no ruler"));
    assert_eq!(ruler.name, "Ruler");
    let length = ruler.geometry.measure(view(&h).annotations.pixel_size).length.unwrap_or_default();
    let expected = ((lb[0] - la[0]) * 0.5).hypot((lb[1] - la[1]) * 0.5);
    assert!((length - expected).abs() < 1e-6, "{length} µm vs {expected}");

    key(&mut h, Key::D);
    for (x, y) in [(0.1, 0.1), (0.15, 0.1), (0.1, 0.15)] {
        let p = at(&h, x, y);
        click(&mut h, p);
    }
    match geometries(&h).last() {
        Some(Geometry::Points { points }) => assert_eq!(points.len(), 3, "one point set gets every click"),
        other => panic!("expected points, got {other:?}"),
    }
    undo_redo_round_trip(&mut h);
    assert_eq!(geometries(&h).len(), 3);
}

#[test]
fn select_move_reshape_duplicate_lock_delete() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::R);
    drag_f(&mut h, (0.3, 0.3), (0.5, 0.5));
    key(&mut h, Key::V);
    let before = geometries(&h)[0].bounds();
    // Move: drag the body.
    let (from, to) = (at(&h, 0.4, 0.4), at(&h, 0.45, 0.35));
    let d = [level0(&h, to)[0] - level0(&h, from)[0], level0(&h, to)[1] - level0(&h, from)[1]];
    let camera = view(&h).camera;
    drag(&mut h, from, to);
    assert_eq!(view(&h).camera, camera, "moving a shape does not pan");
    let moved = geometries(&h)[0].bounds();
    assert!(close([moved[0], moved[1]], [before[0] + d[0], before[1] + d[1]]), "{moved:?} {before:?} {d:?}");
    assert_eq!(view(&h).annotations.doc.len(), 1);
    undo_redo_round_trip(&mut h);

    // Reshape: drag the bottom-right handle.
    let corner = view(&h).projection().to_screen([moved[2], moved[3]]);
    let target = corner + Vec2::new(40.0, 30.0);
    let expected = level0(&h, target);
    drag(&mut h, corner, target);
    let b = geometries(&h)[0].bounds();
    assert!(close([b[2], b[3]], expected) && close([b[0], b[1]], [moved[0], moved[1]]), "{b:?}");

    // Duplicate, lock, and a locked shape resists deletion and moving.
    ctrl(&mut h, Key::D);
    assert_eq!(view(&h).annotations.doc.len(), 2);
    ctrl(&mut h, Key::K);
    let selected = view(&h).annotations.selected.unwrap_or_else(|| panic!("the copy is selected"));
    assert!(view(&h).annotations.doc.get(selected).is_some_and(|a| a.locked));
    key(&mut h, Key::Delete);
    assert_eq!(view(&h).annotations.doc.len(), 2, "locked shapes are not deleted");
    ctrl(&mut h, Key::K);
    key(&mut h, Key::Delete);
    assert_eq!(view(&h).annotations.doc.len(), 1);
    ctrl(&mut h, Key::Z);
    assert_eq!(view(&h).annotations.doc.len(), 2, "undo brings it back");
}

#[test]
fn polygon_vertices_can_be_edited() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::P);
    let pts = [at(&h, 0.2, 0.2), at(&h, 0.5, 0.2), at(&h, 0.3, 0.6)];
    for p in &pts[..2] {
        click(&mut h, *p);
    }
    click(&mut h, pts[2]);
    key(&mut h, Key::Enter);
    key(&mut h, Key::V);
    let target = pts[1] + Vec2::new(30.0, -20.0);
    let expected = level0(&h, target);
    drag(&mut h, pts[1], target);
    match geometries(&h).as_slice() {
        [Geometry::Polygon(p)] => {
            assert!(close(p.exterior[1], expected), "{:?} vs {expected:?}", p.exterior[1]);
            assert!(close(p.exterior[0], level0(&h, pts[0])), "other vertices stay");
        }
        other => panic!("expected a polygon, got {other:?}"),
    }
    undo_redo_round_trip(&mut h);
}

#[test]
fn new_annotations_take_the_chosen_class_and_autosave_restores_them() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let mut h = harness(&path);
    let tumor = h.state().classes[0].clone();
    h.state_mut().active_view_mut().unwrap_or_else(|| panic!("no view")).annotations.new_class = Some(tumor.clone());
    key(&mut h, Key::R);
    drag_f(&mut h, (0.3, 0.3), (0.5, 0.5));
    let drawn = view(&h).annotations.doc.annotations()[0].clone();
    assert_eq!(drawn.class.as_deref(), Some(tumor.name.as_str()));
    // The sidecar appears within 2 seconds of the change.
    let sidecar = sidecar_path(&path);
    let start = Instant::now();
    while !sidecar.exists() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    assert!(sidecar.exists(), "autosaved within 2 s");
    drop(h);
    let h = harness(&path);
    let restored = view(&h).annotations.doc.annotations().to_vec();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].geometry, drawn.geometry);
    assert_eq!(restored[0].class, drawn.class);
    assert_eq!(restored[0].uuid, drawn.uuid);
}

#[test]
fn measurement_table_lists_and_sorts() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::R);
    drag_f(&mut h, (0.1, 0.1), (0.2, 0.2));
    drag_f(&mut h, (0.3, 0.3), (0.6, 0.6));
    h.get_by_label("Measurements").click();
    h.step();
    h.step();
    assert!(h.query_by_label_contains("Area µm²").is_some(), "areas are in µm² on a slide with mpp");
    assert!(h.query_by_label("Copy CSV").is_some());
    h.get_by_label("Area µm²").click();
    h.step();
    h.step();
    h.get_by_label("Area µm² ^").click();
    h.step();
    h.step();
    assert!(h.query_by_label("Area µm² v").is_some(), "the second click sorts descending");
    // Largest first: the second rectangle heads the table; the class totals count both.
    let tab = h.state().active_tab().unwrap_or_else(|| panic!("no tab"));
    let rows = tab.table.rows();
    assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), vec![2, 1]);
    assert!(rows[0].measurement.area > rows[1].measurement.area);
    assert!(h.query_by_label("Total area µm²").is_some());
}

/// Select annotation `index` by clicking at `grab` (a point on it), then drag its vertex `vertex`
/// by `by`: the vertex lands where the pointer did; undo and redo round-trip the edit.
fn edit_vertex(h: &mut H, index: usize, grab: Point, vertex: usize, by: Vec2) {
    key(h, Key::V);
    let id = view(h).annotations.doc.annotations()[index].id;
    let p = view(h).projection().to_screen(grab);
    click(h, p);
    assert_eq!(view(h).annotations.selected, Some(id), "a click on annotation {index} selects it");
    let geometry = |h: &H| view(h).annotations.doc.get(id).map(|a| a.geometry.clone());
    let before = geometry(h).unwrap_or_else(|| panic!("annotation {index} is gone"));
    let from = view(h).projection().to_screen(before.vertices()[vertex]);
    let to = from + by;
    let expected = level0(h, to);
    drag(h, from, to);
    let after = geometry(h).unwrap_or_else(|| panic!("annotation {index} is gone"));
    assert_eq!(after.vertices().len(), before.vertices().len(), "{after:?}");
    assert!(
        close(after.vertices()[vertex], expected),
        "vertex {vertex}: {:?} vs {expected:?}",
        after.vertices()[vertex]
    );
    undo_redo_round_trip(h);
}

#[test]
fn every_tool_draws_then_edits_with_undo_and_redo() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    // Ellipse: drag a box, then resize it by its bottom-right handle.
    key(&mut h, Key::E);
    drag_f(&mut h, (0.1, 0.1), (0.25, 0.2));
    undo_redo_round_trip(&mut h);
    let centre = geometries(&h)[0].bounds();
    edit_vertex(&mut h, 0, [(centre[0] + centre[2]) / 2.0, (centre[1] + centre[3]) / 2.0], 2, Vec2::new(25.0, 15.0));
    assert!(matches!(geometries(&h)[0], Geometry::Ellipse { .. }), "an ellipse stays an ellipse");

    // Polyline: three clicks and Enter, then move its middle vertex.
    key(&mut h, Key::L);
    for f in [(0.4, 0.1), (0.5, 0.2), (0.6, 0.1)] {
        click_f(&mut h, f);
    }
    key(&mut h, Key::Enter);
    assert!(matches!(geometries(&h).last(), Some(Geometry::Polyline { points }) if points.len() == 3));
    undo_redo_round_trip(&mut h);
    let middle = geometries(&h)[1].vertices()[1];
    edit_vertex(&mut h, 1, middle, 1, Vec2::new(0.0, 40.0));

    // Ruler: drag, then lengthen it from its end.
    key(&mut h, Key::M);
    drag_f(&mut h, (0.1, 0.5), (0.3, 0.5));
    assert!(matches!(geometries(&h).last(), Some(Geometry::Polyline { points }) if points.len() == 2));
    undo_redo_round_trip(&mut h);
    let end = geometries(&h)[2].vertices()[1];
    let before = view(&h).annotations.doc.annotations()[2].geometry.measure(view(&h).annotations.pixel_size);
    edit_vertex(&mut h, 2, end, 1, Vec2::new(60.0, 0.0));
    let after = view(&h).annotations.doc.annotations()[2].geometry.measure(view(&h).annotations.pixel_size);
    assert!(after.length > before.length, "{after:?} vs {before:?}");

    // Freehand: drag a loop, then pull one of its vertices out.
    key(&mut h, Key::F);
    let path = [at(&h, 0.5, 0.5), at(&h, 0.7, 0.5), at(&h, 0.7, 0.7), at(&h, 0.5, 0.7)];
    drag_through(&mut h, &path);
    assert!(matches!(geometries(&h).last(), Some(Geometry::Polygon(_))));
    undo_redo_round_trip(&mut h);
    let first = geometries(&h)[3].vertices()[0];
    edit_vertex(&mut h, 3, first, 0, Vec2::new(-30.0, -30.0));

    // Points: two clicks make one set; drag one point.
    key(&mut h, Key::D);
    click_f(&mut h, (0.85, 0.85));
    click_f(&mut h, (0.9, 0.85));
    assert!(matches!(geometries(&h).last(), Some(Geometry::Points { points }) if points.len() == 2));
    let point = geometries(&h)[4].vertices()[1];
    edit_vertex(&mut h, 4, point, 1, Vec2::new(-20.0, -40.0));
    assert_eq!(geometries(&h).len(), 5);

    // Every change above can be undone, back to an empty slide, and redone.
    let everything = geometries(&h);
    let mut steps = 0;
    while view(&h).annotations.doc.can_undo() {
        ctrl(&mut h, Key::Z);
        steps += 1;
    }
    assert!(geometries(&h).is_empty(), "{steps} undos");
    for _ in 0..steps {
        ctrl(&mut h, Key::Y);
    }
    assert_eq!(geometries(&h), everything);
}

#[test]
fn duplicate_and_lock_are_undone_and_redone() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::R);
    drag_f(&mut h, (0.3, 0.3), (0.5, 0.5));
    ctrl(&mut h, Key::D);
    assert_eq!(view(&h).annotations.doc.len(), 2);
    ctrl(&mut h, Key::Z);
    assert_eq!(view(&h).annotations.doc.len(), 1, "undo removes the copy");
    ctrl(&mut h, Key::Y);
    assert_eq!(view(&h).annotations.doc.len(), 2, "redo brings it back");
    let locked = |h: &H| view(h).annotations.doc.annotations().iter().filter(|a| a.locked).count();
    key(&mut h, Key::V);
    click_f(&mut h, (0.4, 0.4));
    assert!(view(&h).annotations.selected.is_some(), "a click selects");
    ctrl(&mut h, Key::K);
    assert_eq!(locked(&h), 1);
    ctrl(&mut h, Key::Z);
    assert_eq!(locked(&h), 0, "undo unlocks");
    ctrl(&mut h, Key::Y);
    assert_eq!(locked(&h), 1, "redo locks again");
}

#[test]
fn a_failed_import_leaves_the_slides_annotations_alone() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::R);
    drag_f(&mut h, (0.3, 0.3), (0.5, 0.5));
    let before = geometries(&h);
    let import = |h: &mut H, file: &Path| {
        h.state_mut().annotation_message = None;
        let ctx = h.ctx.clone();
        h.state_mut().import_annotations_from(file.to_path_buf(), &ctx);
        wait_until(h, "the import to finish", |app| app.annotation_message.is_some());
        h.state().annotation_message.as_ref().map(|m| (m.text.clone(), m.is_problem())).unwrap_or_default()
    };
    for (name, text) in [
        ("notjson.geojson", "this is not JSON"),
        ("wrongtype.geojson", r#"{"type": "Topology", "objects": {}}"#),
        ("features.geojson", r#"{"type": "FeatureCollection", "features": 42}"#),
    ] {
        let file = tmp.path().join(name);
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        let (message, problem) = import(&mut h, &file);
        assert!(problem && message.contains(name), "the message names the file: {message}");
        assert_eq!(geometries(&h), before, "{name}: nothing changed");
        assert!(h.query_by_label_contains(name).is_some(), "the message is shown");
    }
    // A file with one good and one bad feature: the good one comes in, the bad one is counted.
    let mixed = tmp.path().join("mixed.geojson");
    std::fs::write(
        &mixed,
        r#"[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [10, 20]}, "properties": {}},
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": "x"}, "properties": {}}]"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (message, problem) = import(&mut h, &mixed);
    assert!(problem && message.contains("1 skipped"), "{message}");
    assert_eq!(geometries(&h).len(), 2);
    ctrl(&mut h, Key::Z);
    assert_eq!(geometries(&h), before, "the import is one undo step");
}

#[test]
fn a_table_row_fits_a_small_object_in_view() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::R);
    drag_f(&mut h, (0.40, 0.40), (0.46, 0.45));
    key(&mut h, Key::Escape);
    let fit_zoom = view(&h).camera.zoom;
    let b = geometries(&h)[0].bounds();
    h.get_by_label("Measurements").click();
    h.step();
    h.step();
    // Click the first row (the "#" cell, beside its number) of the table, below the totals.
    let cell = h
        .query_all_by_label("1")
        .map(|n| n.rect())
        .max_by(|a, b| a.min.y.total_cmp(&b.min.y))
        .unwrap_or_else(|| panic!("no row"));
    click(&mut h, cell.left_center() + Vec2::new(cell.width() + 12.0, 0.0));
    let v = view(&h);
    let r = v.view_rect();
    let (w, ht) = ((b[2] - b[0]) * v.camera.zoom, (b[3] - b[1]) * v.camera.zoom);
    let fill = (w / r.width).max(ht / r.height);
    assert!(v.camera.zoom > fit_zoom * 4.0, "zoomed in: {} vs {fit_zoom}", v.camera.zoom);
    assert!(fill > 0.6 && fill <= 1.0, "the rectangle fills {fill:.2} of the view");
    let [cx, cy] = v.camera.center;
    assert!((cx - (b[0] + b[2]) / 2.0).abs() < 1.0 && (cy - (b[1] + b[3]) / 2.0).abs() < 1.0, "centred");
}

#[test]
fn rulers_are_measurements_with_their_length_on_the_slide() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    let tumor = h.state().classes[0].clone();
    h.state_mut().active_view_mut().unwrap_or_else(|| panic!("no view")).annotations.new_class = Some(tumor);
    key(&mut h, Key::R);
    drag_f(&mut h, (0.1, 0.1), (0.2, 0.2));
    key(&mut h, Key::M);
    drag_f(&mut h, (0.4, 0.5), (0.7, 0.5));
    let ruler = view(&h).annotations.doc.annotations()[1].clone();
    assert!(ruler.is_ruler() && ruler.class.is_none(), "a ruler takes no class: {:?}", ruler.class);
    // Deselected, the finished ruler keeps its length label on the slide.
    key(&mut h, Key::Escape);
    h.step();
    assert!(view(&h).annotations.selected.is_none());
    let length = ruler.geometry.measure(view(&h).annotations.pixel_size).length.unwrap_or_default();
    let expected = wsiview::viewer::annotate::group_thousands(length);
    let labels = view(&h).annotations.ruler_labels().to_vec();
    assert!(
        labels.len() == 1 && labels[0].1.contains(&expected) && labels[0].1.contains("µm"),
        "{labels:?} ({expected} µm)"
    );
    // The measurement table: Tumor counts the rectangle only; the ruler has its own row.
    h.get_by_label("Measurements").click();
    h.step();
    h.step();
    assert!(h.query_by_label("Rulers").is_some(), "a Rulers row");
    assert!(h.query_by_label("(ruler)").is_some(), "the ruler's row names no class");
    let tab = h.state().active_tab().unwrap_or_else(|| panic!("no tab"));
    let rows = tab.table.rows();
    let totals = wsiview::annotations::table::class_totals(rows);
    assert_eq!(totals.iter().map(|t| (t.class.clone(), t.count)).collect::<Vec<_>>(), vec![(Some("Tumor".into()), 1)]);
}

#[test]
fn deleting_a_class_in_use_asks_first() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    let tumor = h.state().classes[0].clone();
    h.state_mut().active_view_mut().unwrap_or_else(|| panic!("no view")).annotations.new_class = Some(tumor.clone());
    key(&mut h, Key::R);
    drag_f(&mut h, (0.1, 0.1), (0.2, 0.2));
    drag_f(&mut h, (0.3, 0.3), (0.4, 0.4));
    key(&mut h, Key::Escape);
    // Let the side panel settle (the thumbnail arrives from a worker), then open the class list.
    wait_until(&mut h, "the thumbnail", |app| app.active_view().is_some_and(|v| v.is_complete()));
    for _ in 0..30 {
        h.step();
    }
    h.get_by_label("Classes").click();
    for _ in 0..30 {
        h.step();
    }
    let remove = |h: &mut H, row: usize| {
        let x = h.query_all_by_label("x").nth(row).unwrap_or_else(|| panic!("no remove button {row}"));
        x.click();
        h.step();
        h.step();
    };
    let count = h.state().classes.len();
    remove(&mut h, 0);
    assert_eq!(h.state().classes.len(), count, "not removed before the answer");
    assert!(
        h.query_by_label_contains("Delete class \"Tumor\"? 2 annotations on this slide use it").is_some(),
        "the question says how many"
    );
    h.get_by_label("Keep class").click();
    h.step();
    h.step();
    assert!(h.state().classes.iter().any(|c| c.name == "Tumor"), "cancel keeps it");
    assert!(h.query_by_label_contains("Delete class").is_none());
    remove(&mut h, 0);
    h.get_by_label("Delete class").click();
    h.step();
    h.step();
    assert!(!h.state().classes.iter().any(|c| c.name == "Tumor"), "confirmed, it goes");
    assert_eq!(view(&h).annotations.doc.len(), 2, "its annotations stay");
    // A class nothing uses goes at once.
    let unused = h.state().classes[0].name.clone();
    remove(&mut h, 0);
    assert!(!h.state().classes.iter().any(|c| c.name == unused));
}

/// Detections, cells and tiles from QuPath are drawn and selected but, like locked annotations,
/// not moved, reshaped or deleted until "Convert to annotation" makes them ordinary annotations.
#[test]
fn cells_are_locked_until_converted_to_annotations() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::R);
    drag_f(&mut h, (0.3, 0.3), (0.5, 0.5));
    key(&mut h, Key::V);
    // Make the rectangle a cell with a nucleus, as an import of QuPath's cells would.
    {
        let layer = &mut h.state_mut().active_view_mut().unwrap_or_else(|| panic!("no view")).annotations;
        let mut a = layer.doc.annotations()[0].as_ref().clone();
        let b = a.geometry.bounds();
        let (w, hh) = ((b[2] - b[0]) / 4.0, (b[3] - b[1]) / 4.0);
        a.nucleus = Some(Geometry::Rectangle { x: b[0] + w, y: b[1] + hh, width: 2.0 * w, height: 2.0 * hh });
        a.kind = ObjectKind::Cell;
        assert!(layer.doc.update(a));
    }
    h.step();
    let before = geometries(&h)[0].bounds();
    drag_f(&mut h, (0.4, 0.4), (0.45, 0.35));
    assert_eq!(geometries(&h)[0].bounds(), before, "a cell is not moved");
    assert!(view(&h).annotations.selected.is_some(), "but it is selected");
    key(&mut h, Key::Delete);
    assert_eq!(view(&h).annotations.doc.len(), 1, "nor deleted");
    // The side panel offers the conversion; after it, the shape moves like any annotation.
    h.get_by_label("Convert to annotation").click();
    h.step();
    h.step();
    let a = view(&h).annotations.doc.annotations()[0].clone();
    assert_eq!((a.kind, a.nucleus.is_none()), (ObjectKind::Annotation, true));
    drag_f(&mut h, (0.4, 0.4), (0.45, 0.35));
    assert_ne!(geometries(&h)[0].bounds(), before, "now it moves");
}

/// Step until the side panel stops moving: `label`'s node keeps its place for five frames
/// (panels size themselves to their content over the first frames).
fn settle_side_panel(h: &mut H, label: &str) {
    let start = Instant::now();
    let (mut last, mut same) = (None, 0);
    while same < 5 {
        assert!(start.elapsed() < Duration::from_secs(20), "{label} keeps moving");
        h.step();
        let now = h.query_by_label(label).and_then(|n| n.accesskit_node().bounding_box());
        same = if now.is_some() && now == last { same + 1 } else { 0 };
        last = now;
    }
}

/// A click with Alt held.
fn alt_click(h: &mut H, p: Pos2) {
    h.event(egui::Event::ModifiersChanged(Modifiers::ALT));
    click(h, p);
    h.event(egui::Event::ModifiersChanged(Modifiers::NONE));
    h.step();
}

fn near(a: Point, b: Point, tolerance: f64) -> bool {
    (a[0] - b[0]).hypot(a[1] - b[1]) <= tolerance
}

fn area_px2(g: &Geometry) -> f64 {
    g.measure(None).area.unwrap_or(0.0)
}

#[test]
fn a_click_on_an_edge_adds_a_vertex_and_alt_click_removes_it() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::P);
    let pts = [at(&h, 0.2, 0.2), at(&h, 0.6, 0.2), at(&h, 0.4, 0.6)];
    for p in pts {
        click(&mut h, p);
    }
    key(&mut h, Key::Enter);
    key(&mut h, Key::V);
    let mid = pts[0] + (pts[1] - pts[0]) * 0.5;
    let expected = level0(&h, mid);
    click(&mut h, mid);
    match geometries(&h).as_slice() {
        [Geometry::Polygon(p)] => {
            assert_eq!(p.exterior.len(), 4, "{:?}", p.exterior);
            assert!(
                near(p.exterior[1], expected, 1.0),
                "on the edge where clicked: {:?} vs {expected:?}",
                p.exterior[1]
            );
        }
        other => panic!("expected a polygon, got {other:?}"),
    }
    // Dragging the new vertex reshapes there; Alt+click removes it; undo brings it back.
    alt_click(&mut h, mid);
    assert!(matches!(geometries(&h).as_slice(), [Geometry::Polygon(p)] if p.exterior.len() == 3));
    ctrl(&mut h, Key::Z);
    assert!(matches!(geometries(&h).as_slice(), [Geometry::Polygon(p)] if p.exterior.len() == 4));
    ctrl(&mut h, Key::Y);
    // A triangle keeps three vertices.
    alt_click(&mut h, pts[2]);
    assert!(matches!(geometries(&h).as_slice(), [Geometry::Polygon(p)] if p.exterior.len() == 3));
}

#[test]
fn renaming_a_class_renames_its_objects_in_one_undo_step() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = common::viewer(&slide(tmp.path()), [1300.0, 1200.0], 64 << 20);
    wait_until(&mut h, "the slide to open", |app| app.active_view().is_some());
    h.step();
    let class_of = |h: &H| -> Vec<Option<String>> {
        view(h).annotations.doc.annotations().iter().map(|a| a.class.clone()).collect()
    };
    if let Some(v) = h.state_mut().active_view_mut() {
        let shape = |x: f64, class: &str| {
            let mut a =
                wsiview::annotations::Annotation::new(Geometry::Rectangle { x, y: 100.0, width: 50.0, height: 50.0 });
            a.class = Some(class.to_string());
            a
        };
        v.annotations.doc.add_all(vec![shape(100.0, "Tumor"), shape(300.0, "Stroma"), shape(500.0, "Tumor")]);
    }
    settle_side_panel(&mut h, "Classes");
    h.get_by_label("Classes").click();
    // The section opens with an animation (fixed frame time here: 30 frames is half a second).
    for _ in 0..30 {
        h.step();
    }
    fn name_field<'a>(h: &'a H) -> egui_kittest::Node<'a> {
        h.get_all_by_value("Tumor")
            .find(|n| n.accesskit_node().role() == egui::accesskit::Role::TextInput)
            .unwrap_or_else(|| panic!("no class name field"))
    }
    name_field(&h).click();
    h.step();
    assert!(name_field(&h).accesskit_node().is_focused(), "the class name field has the keyboard");
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.step();
    name_field(&h).type_text("Carcinoma");
    h.step();
    assert_eq!(class_of(&h)[0].as_deref(), Some("Tumor"), "nothing renamed while typing");
    h.key_press(Key::Enter);
    h.step();
    h.step();
    let renamed = vec![Some("Carcinoma".to_string()), Some("Stroma".to_string()), Some("Carcinoma".to_string())];
    assert_eq!(class_of(&h), renamed);
    assert!(
        h.state().classes.iter().any(|c| c.name == "Carcinoma") && !h.state().classes.iter().any(|c| c.name == "Tumor")
    );
    // One undo step brings both back.
    h.get_by_label("Undo").click();
    h.step();
    assert_eq!(class_of(&h), vec![Some("Tumor".to_string()), Some("Stroma".to_string()), Some("Tumor".to_string())]);
}

#[test]
fn the_brush_paints_and_erases_areas_of_the_expected_size() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    key(&mut h, Key::B);
    if let Some(v) = h.state_mut().active_view_mut() {
        v.annotations.brush_radius = 12.0;
    }
    // A 240-point horizontal stroke of a 12-point brush: 240 × 24 and a disc, in screen points.
    let (a, b) = (at(&h, 0.3, 0.5), at(&h, 0.3, 0.5) + Vec2::new(240.0, 0.0));
    drag(&mut h, a, b);
    let zoom = view(&h).camera.zoom;
    let painted = match geometries(&h).as_slice() {
        [g @ Geometry::Polygon(_)] => g.clone(),
        other => panic!("expected one painted area, got {other:?}"),
    };
    let expected = (240.0 * 24.0 + std::f64::consts::PI * 144.0) / (zoom * zoom);
    assert!((area_px2(&painted) / expected - 1.0).abs() < 0.03, "{} px² vs {expected}", area_px2(&painted));
    // Alt+drag across the middle erases a band 24 points wide: two pieces stay.
    let mid = a + Vec2::new(120.0, 0.0);
    h.event(egui::Event::ModifiersChanged(Modifiers::ALT));
    drag(&mut h, mid + Vec2::new(0.0, -60.0), mid + Vec2::new(0.0, 60.0));
    h.event(egui::Event::ModifiersChanged(Modifiers::NONE));
    h.step();
    let cut = match geometries(&h).as_slice() {
        [g @ Geometry::MultiPolygon { polygons }] if polygons.len() == 2 => g.clone(),
        other => panic!("expected two pieces, got {other:?}"),
    };
    let removed = area_px2(&painted) - area_px2(&cut);
    let band = 24.0 * 24.0 / (zoom * zoom);
    assert!((removed / band - 1.0).abs() < 0.05, "removed {removed} px² vs {band}");
    // Each stroke is one undo step.
    ctrl(&mut h, Key::Z);
    assert_eq!(geometries(&h), vec![painted]);
}

#[test]
fn a_counting_field_counts_the_points_inside_and_moves_as_a_whole() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut h = common::viewer(&slide(tmp.path()), [1300.0, 1300.0], 64 << 20);
    wait_until(&mut h, "the slide to open", |app| app.active_view().is_some());
    h.step();
    h.step();
    // 1 mm² circle at 0.5 µm/px: radius 564.19 µm = 1128.4 px, in the view's centre.
    settle_side_panel(&mut h, "Place counting field");
    h.get_by_label("Area").click();
    h.step();
    h.get_by_label("Place counting field").click();
    h.step();
    let centre = view(&h).camera.center;
    let field = view(&h).annotations.doc.annotations().last().map(|a| a.geometry.clone());
    match field {
        Some(Geometry::Ellipse { cx, cy, rx, ry }) => {
            assert_eq!([cx, cy], centre);
            assert!((rx - 1128.38).abs() < 0.01 && (ry - rx).abs() < 1e-9, "{rx} {ry}");
        }
        other => panic!("expected a circle, got {other:?}"),
    }
    // Points: three inside, three outside (a click on the slide gives it the keyboard back).
    let corner = at(&h, 0.02, 0.02);
    click(&mut h, corner);
    key(&mut h, Key::D);
    let offsets = [[0.0, 0.0], [300.0, 200.0], [-500.0, 700.0], [1200.0, 0.0], [0.0, -1140.0], [1500.0, 0.0]];
    for d in offsets {
        let p = view(&h).projection().to_screen([centre[0] + d[0], centre[1] + d[1]]);
        click(&mut h, p);
    }
    assert!(h.query_all_by_value("Count 3").next().is_some(), "three points inside");
    assert!(h.query_all_by_value("Area 1.000 mm²").next().is_some());
    assert!(h.query_all_by_value("3.00 per mm²").next().is_some());
    // Move the field 600 px right by dragging inside it.
    key(&mut h, Key::V);
    let grab = view(&h).projection().to_screen([centre[0] - 200.0, centre[1] - 400.0]);
    let to = view(&h).projection().to_screen([centre[0] + 400.0, centre[1] - 400.0]);
    drag(&mut h, grab, to);
    let moved =
        view(&h).annotations.doc.annotations().iter().find(|a| a.name == "Counting field").map(|a| a.geometry.bounds());
    let b = moved.unwrap_or_else(|| panic!("no field"));
    assert!(((b[0] + b[2]) / 2.0 - centre[0] - 600.0).abs() < 2.0, "moved as a whole: {b:?}");
    // Now inside: (0,0) at 600 px, (300,200) at 361, (1200,0) at 600, (1500,0) at 900; out:
    // (-500,700) at 1304, (0,-1140) at 1288.
    h.step();
    assert!(h.query_all_by_value("Count 4").next().is_some(), "recounted after the move");
}

/// Scroll the side panel to the node with `label` (of `role`, when given), then click it.
fn panel_click(h: &mut H, role: Option<egui::accesskit::Role>, label: &str) {
    fn find<'a>(h: &'a H, role: Option<egui::accesskit::Role>, label: &'a str) -> egui_kittest::Node<'a> {
        match role {
            Some(role) => h.get_by_role_and_label(role, label),
            None => h.get_by_label(label),
        }
    }
    find(h, role, label).scroll_to_me();
    for _ in 0..5 {
        h.step();
    }
    find(h, role, label).click();
    h.step();
    h.step();
}

fn overlay(h: &H) -> &wsiview::viewer::detection_overlay::DetectionOverlay {
    view(h).detections.as_ref().unwrap_or_else(|| panic!("no detection layer"))
}

/// Objects per class of `layer` whose centroid is inside `inside` (counted here, one by one).
fn brute_counts(layer: &wsiview::annotations::detections::DetectionLayer, inside: impl Fn(Point) -> bool) -> Vec<u64> {
    let mut counts = vec![0u64; layer.classes().len()];
    for i in 0..layer.len() {
        if inside(layer.centroid(i)) {
            counts[usize::from(layer.class_index(i))] += 1;
        }
    }
    counts
}

#[test]
fn a_detection_layer_loads_draws_counts_by_class_and_colours_by_a_measurement() {
    use wsiview::annotations::detections::ColorBy;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cells = tmp.path().join("cells.geojson");
    wsiview::annotations::detections::write_synthetic_cells(&cells, 20_000, 4000.0, 3000.0, 7)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut h = common::viewer(&slide(tmp.path()), [1300.0, 1000.0], 64 << 20);
    wait_until(&mut h, "the slide to open", |app| app.active_view().is_some());
    h.step();
    let ctx = h.ctx.clone();
    h.state_mut().import_detections_from(&cells, &ctx);
    let settled = |app: &ViewerApp| {
        app.active_view().and_then(|v| v.detections.as_ref()).is_some_and(|d| d.is_settled() && d.counts.is_some())
    };
    wait_until(&mut h, "the detections to load and be drawn", settled);
    let layer = overlay(&h).layer().unwrap_or_else(|| panic!("not loaded")).clone();
    assert_eq!(layer.len(), 20_000);
    assert!(overlay(&h).load_ms.is_some());
    settle_side_panel(&mut h, "Remove layer");
    assert!(
        h.query_all_by_value("20,000 objects from cells.geojson").next().is_some()
            || h.query_by_label_contains("20,000 objects from cells.geojson").is_some()
    );

    // The whole slide is in the fitted view: every object counted, by class, as in the file.
    let all = brute_counts(&layer, |_| true);
    let counts = overlay(&h).counts.clone().unwrap_or_default();
    assert_eq!(counts.view, all);
    assert!(h.query_all_by_value("20,000").next().is_some(), "the All row");

    // Zoomed in on part of it: the view's count is what lies inside the view.
    let target = [1400.0, 1100.0];
    if let Some(v) = h.state_mut().active_view_mut() {
        v.look_at(target, Some(1.5));
    }
    h.step();
    wait_until(&mut h, "the zoomed view to be drawn and counted", |app| {
        settled(app)
            && app.active_view().is_some_and(|v| {
                let d = v.detections.as_ref();
                let r = v.projection();
                let (a, b) = (
                    r.to_level0(Pos2::new(r.view.x as f32, r.view.y as f32)),
                    r.to_level0(Pos2::new((r.view.x + r.view.width) as f32, (r.view.y + r.view.height) as f32)),
                );
                let inside = |p: Point| p[0] >= a[0] && p[0] <= b[0] && p[1] >= a[1] && p[1] <= b[1];
                d.and_then(|d| d.counts.as_ref())
                    .is_some_and(|c| d.and_then(|d| d.layer()).is_some_and(|l| c.view == brute_counts(l, inside)))
            })
    });
    let in_view: u64 = overlay(&h).counts.as_ref().map_or(0, |c| c.view.iter().sum());
    assert!(in_view > 0 && in_view < 20_000, "{in_view} in view");

    // Turned 30°: the view's count is what lies inside the turned view.
    if let Some(v) = h.state_mut().active_view_mut() {
        v.set_rotation(30f64.to_radians());
    }
    h.step();
    wait_until(&mut h, "the turned view to be drawn and counted", |app| {
        settled(app)
            && app.active_view().is_some_and(|v| {
                let r = v.projection();
                let (x0, y0, x1, y1) = (r.view.x, r.view.y, r.view.x + r.view.width, r.view.y + r.view.height);
                let quad =
                    [[x0, y0], [x1, y0], [x1, y1], [x0, y1]].map(|[x, y]| r.to_level0(Pos2::new(x as f32, y as f32)));
                let inside = |p: Point| {
                    (0..4).all(|k| {
                        let (a, b) = (quad[k], quad[(k + 1) % 4]);
                        (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0.0
                    })
                };
                let d = v.detections.as_ref();
                d.and_then(|d| d.counts.as_ref())
                    .is_some_and(|c| d.and_then(|d| d.layer()).is_some_and(|l| c.view == brute_counts(l, inside)))
            })
    });
    if let Some(v) = h.state_mut().active_view_mut() {
        v.set_rotation(0.0);
    }
    wait_until(&mut h, "the unturned view again", settled);

    // A rectangle drawn and selected: the region's count is what lies inside it.
    key(&mut h, Key::R);
    drag_f(&mut h, (0.3, 0.3), (0.6, 0.7));
    let rect = geometries(&h).last().map(Geometry::bounds).unwrap_or_else(|| panic!("no rectangle"));
    assert!(view(&h).annotations.selected.is_some(), "the new rectangle is selected");
    let expected = brute_counts(&layer, |p| p[0] >= rect[0] && p[0] <= rect[2] && p[1] >= rect[1] && p[1] <= rect[3]);
    wait_until(&mut h, "the region count", |app| {
        app.active_view()
            .and_then(|v| v.detections.as_ref())
            .and_then(|d| d.counts.as_ref())
            .is_some_and(|c| c.region.as_ref() == Some(&expected))
    });
    assert!(expected.iter().sum::<u64>() > 0);

    // Hide a class with its check box in the panel.
    let tumor = layer.classes().iter().position(|c| c.name == "Tumor").unwrap_or_else(|| panic!("no Tumor"));
    settle_side_panel(&mut h, "Remove layer");
    panel_click(&mut h, Some(egui::accesskit::Role::CheckBox), "Tumor");
    assert!(!overlay(&h).style.class_visible[tumor], "Tumor hidden");
    assert!(!overlay(&h).is_settled(), "redrawn without it");
    wait_until(&mut h, "the redraw", settled);

    // Colour by a measurement: the range starts as the layer's, and the legend names it.
    panel_click(&mut h, None, "Colour by");
    h.get_by_label("DAB: Mean").click();
    h.step();
    h.step();
    let column = layer.measurement_column("DAB: Mean").unwrap_or_else(|| panic!("no column"));
    let [lo, hi] = layer.measurement_range(column).unwrap_or_else(|| panic!("no range"));
    match overlay(&h).style.color_by {
        ColorBy::Measurement { column: c, lo: l, hi: u, .. } => assert_eq!((c, l, u), (column, lo, hi)),
        other => panic!("still {other:?}"),
    }
    assert!(h.query_all_by_value("Legend: DAB: Mean").next().is_some(), "the legend");
    wait_until(&mut h, "the redraw in the measurement's colours", settled);

    // Remove the layer.
    panel_click(&mut h, None, "Remove layer");
    assert!(view(&h).detections.is_none());
}

#[test]
fn a_detection_file_that_cannot_be_read_says_why_and_the_slide_keeps_working() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = tmp.path().join("broken.geojson");
    std::fs::write(&bad, r#"{"type": "FeatureCollection", "features": 42}"#).unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&slide(tmp.path()));
    let ctx = h.ctx.clone();
    h.state_mut().import_detections_from(&bad, &ctx);
    wait_until(&mut h, "the load to end", |app| {
        app.active_view().and_then(|v| v.detections.as_ref()).is_some_and(|d| d.progress().is_none())
    });
    let message = view(&h).detections.as_ref().and_then(|d| d.failed()).unwrap_or_default().to_string();
    assert!(message.contains("broken.geojson"), "the message names the file: {message}");
    h.step();
    settle_side_panel(&mut h, "Dismiss");
    panel_click(&mut h, None, "Dismiss");
    assert!(view(&h).detections.is_none());
    // The slide still draws annotations (a click on it gives it the keyboard back).
    click_f(&mut h, (0.9, 0.9));
    key(&mut h, Key::R);
    drag_f(&mut h, (0.3, 0.3), (0.5, 0.5));
    assert_eq!(geometries(&h).len(), 1);
}
