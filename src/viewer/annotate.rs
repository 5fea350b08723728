//! The annotation layer of a slide view: drawing tools, selection and editing, painting above the
//! tiles, and handing each change to the autosaver. The document itself (src/annotations) knows
//! nothing of egui; this file turns pointer and key events into document edits.

use egui::{Color32, Pos2, Rect, Shape, Stroke, Vec2};

use super::camera::{Camera, ViewRect};
use crate::annotations::model::{halo_for, RULER_NAME, UNCLASSIFIED_COLOR};
use crate::annotations::store::Autosaver;
use crate::annotations::{
    Annotation, AnnotationClass, AnnotationId, Document, Geometry, ObjectKind, PixelSize, Point, Polygon,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Select,
    Points,
    Rectangle,
    Ellipse,
    Polygon,
    Freehand,
    Polyline,
    Ruler,
    Brush,
}

impl Tool {
    pub const ALL: [Tool; 9] = [
        Tool::Select,
        Tool::Points,
        Tool::Rectangle,
        Tool::Ellipse,
        Tool::Polygon,
        Tool::Freehand,
        Tool::Polyline,
        Tool::Ruler,
        Tool::Brush,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Tool::Select => "Select",
            Tool::Points => "Points",
            Tool::Rectangle => "Rectangle",
            Tool::Ellipse => "Ellipse",
            Tool::Polygon => "Polygon",
            Tool::Freehand => "Freehand",
            Tool::Polyline => "Polyline",
            Tool::Ruler => "Ruler",
            Tool::Brush => "Brush",
        }
    }

    pub const fn key(self) -> egui::Key {
        match self {
            Tool::Select => egui::Key::V,
            Tool::Points => egui::Key::D,
            Tool::Rectangle => egui::Key::R,
            Tool::Ellipse => egui::Key::E,
            Tool::Polygon => egui::Key::P,
            Tool::Freehand => egui::Key::F,
            Tool::Polyline => egui::Key::L,
            Tool::Ruler => egui::Key::M,
            Tool::Brush => egui::Key::B,
        }
    }

    pub const fn help(self) -> &'static str {
        match self {
            Tool::Select => {
                "Click to select, drag to move; drag a handle to reshape; click an edge of the selection to add a \
                 vertex, Alt+click a vertex to remove it; drag empty space to pan"
            }
            Tool::Brush => {
                "Drag to paint an area (into the selected area, else a new one); Alt+drag or Erase to erase; \
                 the brush size is in screen points"
            }
            Tool::Points => "Click to add points (cells) to the selected point set, or start a new one",
            Tool::Rectangle => "Drag from corner to corner",
            Tool::Ellipse => "Drag the bounding box",
            Tool::Polygon => "Click vertices; double-click or Enter closes, Backspace removes the last, Esc cancels",
            Tool::Freehand => "Drag around the region",
            Tool::Polyline => "Click vertices; double-click or Enter finishes",
            Tool::Ruler => {
                "Drag to measure; the ruler and its length stay on the slide (a measurement, not in class totals)"
            }
        }
    }

    /// "Rectangle (R) — drag from corner to corner", for tooltips.
    pub fn tooltip(self) -> String {
        format!("{} ({}) — {}", self.label(), self.key().name(), self.help())
    }
}

/// A shape being drawn, in level-0 pixels.
#[derive(Clone, Debug)]
enum Drawing {
    Box {
        start: Point,
        end: Point,
        ellipse: bool,
    },
    Clicked {
        points: Vec<Point>,
        closed: bool,
    },
    Freehand {
        points: Vec<Point>,
    },
    Ruler {
        start: Point,
        end: Point,
    },
    /// A brush stroke: where the brush went, its radius in level-0 px, and whether it erases.
    Brush {
        points: Vec<Point>,
        radius: f64,
        erase: bool,
    },
}

/// A drag changing the selected annotation: the preview is drawn; the document changes once, on
/// release, so one drag is one undo step.
#[derive(Clone, Debug)]
struct Reshape {
    id: AnnotationId,
    original: Geometry,
    preview: Geometry,
    grab: Point,
    vertex: Option<usize>,
    /// How far the whole shape has been moved (when no vertex is dragged).
    delta: [f64; 2],
}

/// Screen ↔ level-0 for one frame.
#[derive(Clone, Copy)]
pub struct Projection {
    pub camera: Camera,
    pub view: ViewRect,
}

impl Projection {
    pub fn to_screen(&self, p: Point) -> Pos2 {
        let s = self.camera.level0_to_screen(p, &self.view);
        Pos2::new(s[0] as f32, s[1] as f32)
    }

    pub fn to_level0(&self, p: Pos2) -> Point {
        self.camera.screen_to_level0([f64::from(p.x), f64::from(p.y)], &self.view)
    }

    /// Level-0 pixels in `points` screen points.
    fn level0_len(&self, points: f64) -> f64 {
        points / self.camera.zoom
    }
}

/// Screen distance for picking a vertex or a line.
const PICK_POINTS: f64 = 6.0;
/// Freehand samples closer than this on screen are dropped.
const FREEHAND_STEP_POINTS: f64 = 2.0;
/// Handles are drawn for shapes with at most this many vertices.
const MAX_HANDLES: usize = 2000;

pub struct AnnotationLayer {
    pub doc: Document,
    pub tool: Tool,
    pub selected: Option<AnnotationId>,
    /// Class given to new annotations.
    pub new_class: Option<AnnotationClass>,
    /// The app's class list (colours), copied in each frame.
    pub classes: Vec<AnnotationClass>,
    pub pixel_size: Option<PixelSize>,
    pub autosaver: Option<Autosaver>,
    /// A problem found when loading the sidecar, shown until dismissed.
    pub load_warning: Option<String>,
    drawing: Option<Drawing>,
    reshape: Option<Reshape>,
    /// Annotations drawn last frame (after culling), for the benchmark and tests.
    pub drawn: usize,
    /// The view's zoom last frame (screen points per level-0 pixel).
    pub zoom: f64,
    /// Level-0 size of the slide: new shapes are drawn within it.
    pub slide_size: [f64; 2],
    /// The brush's radius in screen points.
    pub brush_radius: f32,
    /// The brush erases (as Alt does while dragging).
    pub brush_erase: bool,
    shape_cache: Option<(LayerKey, Vec<Shape>)>,
    /// Length labels of the finished rulers in view (screen position, text), made with the shapes.
    ruler_labels: Vec<(Pos2, String)>,
}

/// What the drawn layer depends on.
#[derive(Clone, PartialEq)]
struct LayerKey {
    revision: u64,
    camera: [f64; 4],
    view: [f64; 4],
    selected: Option<AnnotationId>,
    classes: Vec<AnnotationClass>,
}

impl AnnotationLayer {
    pub fn new(doc: Document, pixel_size: Option<PixelSize>) -> Self {
        AnnotationLayer {
            doc,
            tool: Tool::Select,
            selected: None,
            new_class: None,
            classes: crate::annotations::default_classes(),
            pixel_size,
            autosaver: None,
            load_warning: None,
            drawing: None,
            reshape: None,
            drawn: 0,
            zoom: 1.0,
            slide_size: [f64::INFINITY, f64::INFINITY],
            brush_radius: 15.0,
            brush_erase: false,
            shape_cache: None,
            ruler_labels: Vec::new(),
        }
    }

    /// A point moved onto the slide (drawing past the edge follows the edge).
    fn clamp(&self, p: Point) -> Point {
        [p[0].clamp(0.0, self.slide_size[0]), p[1].clamp(0.0, self.slide_size[1])]
    }

    /// The length labels of finished rulers drawn last time the layer changed (screen position,
    /// text), for tests.
    pub fn ruler_labels(&self) -> &[(Pos2, String)] {
        &self.ruler_labels
    }

    pub fn projection_zoom(&self) -> f64 {
        self.zoom
    }

    pub fn is_drawing(&self) -> bool {
        self.drawing.is_some()
    }

    pub fn set_tool(&mut self, tool: Tool) {
        if tool != self.tool {
            self.finish_clicked();
            self.drawing = None;
            self.tool = tool;
        }
    }

    pub fn color_of(&self, a: &Annotation) -> Color32 {
        let rgb = a
            .class
            .as_ref()
            .and_then(|name| self.classes.iter().find(|c| &c.name == name).map(|c| c.color))
            .or(a.class_color)
            .unwrap_or(UNCLASSIFIED_COLOR);
        Color32::from_rgb(rgb[0], rgb[1], rgb[2])
    }

    fn create(&mut self, geometry: Geometry, name: &str) {
        let mut a = Annotation::new(geometry).with_class(self.new_class.as_ref());
        a.name = name.to_string();
        self.selected = Some(self.doc.add(a));
    }

    pub fn undo(&mut self) {
        self.drawing = None;
        self.reshape = None;
        self.doc.undo();
        self.drop_stale_selection();
    }

    pub fn redo(&mut self) {
        self.drawing = None;
        self.reshape = None;
        self.doc.redo();
        self.drop_stale_selection();
    }

    fn drop_stale_selection(&mut self) {
        if self.selected.is_some_and(|id| self.doc.get(id).is_none()) {
            self.selected = None;
        }
    }

    pub fn delete_selected(&mut self) {
        if let Some(id) = self.selected {
            if self.doc.get(id).is_some_and(|a| !a.is_locked()) {
                self.doc.remove(&[id]);
                self.selected = None;
            }
        }
    }

    /// Duplicate the selection a little down and right (20 screen points), and select the copy.
    pub fn duplicate_selected(&mut self, projection: &Projection) {
        if let Some(id) = self.selected {
            let d = projection.level0_len(20.0);
            self.selected = self.doc.duplicate(id, [d, d]);
        }
    }

    pub fn toggle_lock_selected(&mut self) {
        if let Some(a) = self.selected.and_then(|id| self.doc.get(id)) {
            let mut a = a.as_ref().clone();
            a.locked = !a.locked;
            self.doc.update(a);
        }
    }

    /// Finish a polygon or polyline being clicked (Enter, double-click, tool change).
    pub fn finish_clicked(&mut self) {
        if let Some(Drawing::Clicked { points, closed }) = self.drawing.take() {
            let mut points = points;
            points.dedup();
            if closed && points.len() >= 3 {
                self.create(Geometry::Polygon(Polygon { exterior: points, holes: vec![] }), "");
            } else if !closed && points.len() >= 2 {
                self.create(Geometry::Polyline { points }, "");
            }
        }
    }

    /// Keys for the layer; call when no text field has the keyboard. `navigation`: Enter and
    /// Escape are ours too (the slide has the focus, or nothing has).
    pub fn handle_keys(&mut self, ui: &egui::Ui, projection: &Projection, navigation: bool) {
        use super::help::{Action, SHORTCUTS};
        let shortcut = |s: &super::help::Shortcut| {
            ui.input_mut(|i| i.consume_shortcut(&egui::KeyboardShortcut::new(s.modifiers, s.key)))
        };
        // One table for the keys and the help (src/viewer/help.rs), tried in its order; two keys
        // for one action (Delete and Backspace) act once.
        let mut done = Vec::new();
        for s in SHORTCUTS {
            match s.action {
                Action::Finish | Action::Cancel if !navigation => continue,
                a if a.is_view() || a.is_app() || done.contains(&a) => continue,
                _ => {}
            }
            if !shortcut(s) {
                continue;
            }
            done.push(s.action);
            match s.action {
                Action::Redo => self.redo(),
                Action::Undo => self.undo(),
                Action::Duplicate => self.duplicate_selected(projection),
                Action::Lock => self.toggle_lock_selected(),
                Action::Tool(tool) => self.set_tool(tool),
                Action::Finish => self.finish_clicked(),
                Action::Cancel => {
                    if self.drawing.is_some() || self.reshape.is_some() {
                        self.drawing = None;
                        self.reshape = None;
                    } else {
                        self.selected = None;
                    }
                }
                Action::Delete => match &mut self.drawing {
                    Some(Drawing::Clicked { points, .. }) => {
                        points.pop();
                        if points.is_empty() {
                            self.drawing = None;
                        }
                    }
                    Some(_) => {}
                    None => self.delete_selected(),
                },
                _ => {}
            }
        }
    }

    /// Pointer input over the slide. Returns true when the layer took the primary-button drag
    /// (so the view must not pan).
    pub fn handle_pointer(&mut self, ui: &egui::Ui, response: &egui::Response, projection: &Projection) -> bool {
        let primary = egui::PointerButton::Primary;
        self.zoom = projection.camera.zoom;
        let pointer = response.interact_pointer_pos().or(response.hover_pos());
        let press_origin = ui.input(|i| i.pointer.press_origin());
        let tolerance = projection.level0_len(PICK_POINTS);
        // Clicks (and double-clicks) first: they come on release, after any drag has ended.
        if response.clicked_by(primary) {
            if let Some(p) = pointer.map(|p| projection.to_level0(p)) {
                let p = if self.tool == Tool::Select { p } else { self.clamp(p) };
                let double = response.double_clicked_by(primary);
                let alt = ui.input(|i| i.modifiers.alt);
                self.click(p, double, tolerance, alt);
            }
            return true;
        }
        match self.tool {
            Tool::Select => self.select_drag(ui, response, projection, press_origin, tolerance),
            // Clicking tools: a drag pans, so long polygons can be drawn across the slide.
            Tool::Points | Tool::Polygon | Tool::Polyline => false,
            Tool::Rectangle | Tool::Ellipse | Tool::Freehand | Tool::Ruler | Tool::Brush => {
                // On release egui forgets the press origin; the end point is where the pointer is.
                let Some(p) = pointer.or(ui.input(|i| i.pointer.latest_pos())) else { return false };
                let now = self.clamp(projection.to_level0(p));
                let start = press_origin.map_or(now, |o| self.clamp(projection.to_level0(o)));
                if response.drag_started_by(primary) {
                    self.drawing = Some(match self.tool {
                        Tool::Rectangle => Drawing::Box { start, end: now, ellipse: false },
                        Tool::Ellipse => Drawing::Box { start, end: now, ellipse: true },
                        Tool::Freehand => Drawing::Freehand { points: vec![start, now] },
                        Tool::Brush => Drawing::Brush {
                            points: vec![start, now],
                            radius: projection.level0_len(f64::from(self.brush_radius)),
                            erase: self.brush_erase || ui.input(|i| i.modifiers.alt),
                        },
                        _ => Drawing::Ruler { start, end: now },
                    });
                }
                if response.dragged_by(primary) {
                    match &mut self.drawing {
                        Some(Drawing::Box { end, .. }) | Some(Drawing::Ruler { end, .. }) => *end = now,
                        Some(Drawing::Freehand { points }) | Some(Drawing::Brush { points, .. }) => {
                            let last = points.last().copied().unwrap_or(now);
                            if (last[0] - now[0]).hypot(last[1] - now[1]) >= projection.level0_len(FREEHAND_STEP_POINTS)
                            {
                                points.push(now);
                            }
                        }
                        _ => {}
                    }
                }
                if response.drag_stopped_by(primary) {
                    self.finish_drag(now);
                }
                response.dragged_by(primary) || response.drag_stopped_by(primary)
            }
        }
    }

    fn click(&mut self, p: Point, double: bool, tolerance: f64, alt: bool) {
        match self.tool {
            Tool::Select => {
                // On the selected shape's outline: a click adds a vertex on an edge, an
                // Alt+click removes the vertex under the pointer (one undo step each).
                let editable = self.selected.and_then(|id| self.doc.get(id)).filter(|a| !a.is_locked());
                if let Some(mut a) = editable.map(|a| a.as_ref().clone()) {
                    let changed = if alt {
                        a.geometry.remove_vertex_near(p, tolerance)
                    } else {
                        !double && a.geometry.insert_vertex_on_edge(p, tolerance)
                    };
                    if changed {
                        self.doc.update(a);
                        return;
                    }
                }
                // Keep the selection when clicking inside it (overlapping shapes).
                let keep = self.selected.and_then(|id| self.doc.get(id)).is_some_and(|a| a.hit(p, tolerance));
                if !keep {
                    self.selected = self.doc.hit(p, tolerance);
                }
            }
            Tool::Points => {
                let target = self
                    .selected
                    .and_then(|id| self.doc.get(id))
                    .filter(|a| matches!(a.geometry, Geometry::Points { .. }) && !a.is_locked())
                    .map(|a| a.as_ref().clone());
                match target {
                    Some(mut a) => {
                        if let Geometry::Points { points } = &mut a.geometry {
                            points.push(p);
                        }
                        self.doc.update(a);
                    }
                    None => self.create(Geometry::Points { points: vec![p] }, ""),
                }
            }
            Tool::Polygon | Tool::Polyline => {
                if double {
                    // The double-click's first click already placed this vertex.
                    self.finish_clicked();
                    return;
                }
                match &mut self.drawing {
                    Some(Drawing::Clicked { points, .. }) => points.push(p),
                    _ => self.drawing = Some(Drawing::Clicked { points: vec![p], closed: self.tool == Tool::Polygon }),
                }
            }
            Tool::Brush => {
                let radius = f64::from(self.brush_radius) / self.zoom.max(1e-12);
                self.brush_stroke(&[p], radius, self.brush_erase || alt);
            }
            _ => {}
        }
    }

    /// Paint (or erase) a brush stroke into the selected area annotation; painting with no area
    /// selected makes a new one (of the current class) and selects it; erasing it all deletes
    /// it. One undo step.
    fn brush_stroke(&mut self, points: &[Point], radius: f64, erase: bool) {
        let target = self
            .selected
            .and_then(|id| self.doc.get(id))
            .filter(|a| {
                !a.is_locked()
                    && a.kind == ObjectKind::Annotation
                    && crate::annotations::brush::is_area(&a.geometry)
                    && !crate::annotations::counting::is_field(a)
            })
            .map(|a| a.as_ref().clone());
        match target {
            Some(mut a) => match crate::annotations::brush::apply(Some(&a.geometry), points, radius, erase) {
                Some(g) => {
                    a.geometry = g;
                    self.doc.update(a);
                }
                None => {
                    self.doc.remove(&[a.id]);
                    self.selected = None;
                }
            },
            None if !erase => {
                let clamped: Vec<Point> = points.iter().map(|p| self.clamp(*p)).collect();
                if let Some(g) = crate::annotations::brush::apply(None, &clamped, radius, false) {
                    self.create(g, "");
                }
            }
            None => {}
        }
    }

    fn finish_drag(&mut self, end: Point) {
        match self.drawing.take() {
            Some(Drawing::Box { start, ellipse, .. }) => {
                // A box of no width or height (a click) makes nothing.
                if (start[0] - end[0]).abs() > 0.0 && (start[1] - end[1]).abs() > 0.0 {
                    self.create(box_geometry(start, end, ellipse), "");
                }
            }
            Some(Drawing::Freehand { mut points }) => {
                points.push(end);
                points.dedup();
                if points.len() >= 3 {
                    self.create(Geometry::Polygon(Polygon { exterior: points, holes: vec![] }), "");
                }
            }
            Some(Drawing::Brush { mut points, radius, erase }) => {
                points.push(end);
                points.dedup();
                self.brush_stroke(&points, radius, erase);
            }
            Some(Drawing::Ruler { start, .. }) => {
                if start != end {
                    // A measurement, not an annotation of the current class (Annotation::is_ruler).
                    let mut a = Annotation::new(Geometry::Polyline { points: vec![start, end] });
                    a.name = RULER_NAME.to_string();
                    self.selected = Some(self.doc.add(a));
                }
            }
            other => self.drawing = other,
        }
    }

    fn select_drag(
        &mut self,
        ui: &egui::Ui,
        response: &egui::Response,
        projection: &Projection,
        press_origin: Option<Pos2>,
        tolerance: f64,
    ) -> bool {
        let primary = egui::PointerButton::Primary;
        if response.drag_started_by(primary) {
            let Some(origin) = press_origin else { return false };
            let grab = projection.to_level0(origin);
            // A handle of the selection, else the shape under the pointer (which becomes selected).
            let selected = self.selected.and_then(|id| self.doc.get(id)).cloned();
            let vertex = selected.as_ref().filter(|a| !a.is_locked()).and_then(|a| {
                let vs = a.geometry.vertices();
                (vs.len() <= MAX_HANDLES)
                    .then(|| vs.iter().position(|v| (v[0] - grab[0]).hypot(v[1] - grab[1]) <= tolerance))
                    .flatten()
            });
            let target = match (vertex, &selected) {
                (Some(_), Some(a)) => Some(a.clone()),
                _ => selected
                    .filter(|a| a.hit(grab, tolerance))
                    .or_else(|| self.doc.hit(grab, tolerance).and_then(|id| self.doc.get(id).cloned())),
            };
            if let Some(a) = target {
                self.selected = Some(a.id);
                // Locked shapes, and detections, cells and tiles, are not moved or reshaped.
                if !a.is_locked() {
                    self.reshape = Some(Reshape {
                        id: a.id,
                        original: a.geometry.clone(),
                        preview: a.geometry.clone(),
                        grab,
                        vertex,
                        delta: [0.0, 0.0],
                    });
                }
                return !a.is_locked(); // dragging a locked shape pans the view
            }
            return false;
        }
        let Some(reshape) = &mut self.reshape else { return false };
        if let Some(p) = response.interact_pointer_pos().map(|p| projection.to_level0(p)) {
            reshape.preview = match reshape.vertex {
                Some(i) => {
                    let mut g = reshape.original.clone();
                    g.set_vertex(i, p);
                    g
                }
                None => {
                    reshape.delta = [p[0] - reshape.grab[0], p[1] - reshape.grab[1]];
                    reshape.original.translated(reshape.delta)
                }
            };
            ui.ctx().request_repaint();
        }
        if response.drag_stopped_by(primary) || !ui.input(|i| i.pointer.primary_down()) {
            if let Some(r) = self.reshape.take() {
                if let Some(a) = self.doc.get(r.id) {
                    let a = match r.vertex {
                        // A move takes every part of a geometry collection along.
                        None => a.translated(r.delta),
                        Some(_) => Annotation { geometry: r.preview, ..a.as_ref().clone() },
                    };
                    self.doc.update(a);
                }
            }
        }
        true
    }

    /// Queue the document for autosave if it changed.
    pub fn autosave(&mut self) {
        let revision = self.doc.revision();
        if let Some(saver) = &mut self.autosaver {
            if saver.queued_revision() != revision {
                saver.submit(revision, self.doc.snapshot(), &self.classes);
            }
        }
    }

    /// The selected annotation's outer outline when it is an area (polygons, rectangles,
    /// ellipses as 128-gons), level-0 px: the region a detection layer counts in.
    pub fn selected_area_outline(&self) -> Option<Vec<[f64; 2]>> {
        let a = self.doc.get(self.selected?)?;
        if !crate::annotations::brush::is_area(&a.geometry) {
            return None;
        }
        a.geometry.as_polygon(128).map(|p| p.exterior)
    }

    /// Draw the annotations meeting the view, the selection's handles and any shape in progress.
    pub fn paint(&mut self, painter: &egui::Painter, projection: &Projection, pointer: Option<Pos2>) {
        // A still view redraws the same shapes: reuse them until anything they depend on changes.
        let key = LayerKey {
            revision: self.doc.revision(),
            camera: [
                projection.camera.center[0],
                projection.camera.center[1],
                projection.camera.zoom,
                projection.camera.rotation,
            ],
            view: [projection.view.x, projection.view.y, projection.view.width, projection.view.height],
            selected: self.selected,
            classes: self.classes.clone(),
        };
        let shapes = match &self.shape_cache {
            Some((k, shapes)) if *k == key => shapes.clone(),
            _ => {
                let shapes = self.layer_shapes(projection);
                self.shape_cache = Some((key, shapes.clone()));
                shapes
            }
        };
        painter.extend(shapes);
        for (at, text) in &self.ruler_labels {
            label_box(painter, *at, text);
        }
        // The selection, or its preview while being moved.
        if let Some(a) = self.selected.and_then(|id| self.doc.get(id)).cloned() {
            let geometry = match &self.reshape {
                Some(r) if r.id == a.id => r.preview.clone(),
                _ => a.geometry.clone(),
            };
            let color = self.color_of(&a);
            let mut shapes = Vec::new();
            let mut dots = ScreenMask::new(&projection.view);
            let others: Vec<&Geometry> = a.parts.iter().chain(&a.nucleus).collect();
            for (g, width) in std::iter::once((&geometry, 2.5)).chain(others.iter().map(|g| (*g, 1.5))) {
                geometry_shapes(g, projection, Stroke::new(width + 2.5, halo(color)), &mut shapes, &mut dots);
                let mut dots = ScreenMask::new(&projection.view);
                geometry_shapes(g, projection, Stroke::new(width, color), &mut shapes, &mut dots);
            }
            painter.extend(shapes);
            let vertices = geometry.vertices();
            if vertices.len() <= MAX_HANDLES && !a.is_locked() {
                for v in vertices {
                    let r = Rect::from_center_size(projection.to_screen(v), Vec2::splat(7.0));
                    painter.rect_filled(r, 1.0, Color32::WHITE);
                    painter.rect_stroke(r, 1.0, Stroke::new(1.0, Color32::BLACK), egui::StrokeKind::Inside);
                }
            }
            let b = geometry.bounds();
            let label = self.measure_text(&geometry, &a);
            let at = projection.to_screen([b[2], b[3]]) + Vec2::new(6.0, 4.0);
            label_box(painter, at, &label);
        }
        // The brush: its stroke so far as a wide translucent line, and its size at the pointer.
        if self.tool == Tool::Brush {
            let erase = self.brush_erase || painter.ctx().input(|i| i.modifiers.alt);
            let color = if erase {
                Color32::from_rgba_unmultiplied(255, 80, 80, 90)
            } else {
                Color32::from_rgba_unmultiplied(255, 220, 0, 90)
            };
            if let Some(Drawing::Brush { points, radius, erase }) = &self.drawing {
                let width = (*radius * projection.camera.zoom * 2.0) as f32;
                let color = if *erase { Color32::from_rgba_unmultiplied(255, 80, 80, 90) } else { color };
                let path: Vec<Pos2> = points.iter().map(|p| projection.to_screen(*p)).collect();
                for p in [path.first(), path.last()].into_iter().flatten() {
                    painter.circle_filled(*p, width / 2.0, color);
                }
                painter.add(Shape::line(path, Stroke::new(width, color)));
            }
            if let Some(p) = pointer {
                painter.circle_stroke(p, self.brush_radius, Stroke::new(1.5, color.to_opaque()));
            }
        }
        // The shape being drawn, with its live measurement.
        if let Some(g) = self.drawing_geometry(pointer.map(|p| projection.to_level0(p))) {
            let color = self
                .new_class
                .as_ref()
                .map_or(Color32::from_rgb(255, 220, 0), |c| Color32::from_rgb(c.color[0], c.color[1], c.color[2]));
            let mut shapes = Vec::new();
            let mut dots = ScreenMask::new(&projection.view);
            geometry_shapes(&g, projection, Stroke::new(2.0, color), &mut shapes, &mut dots);
            painter.extend(shapes);
            if let Some(p) = pointer {
                let text = self.measure_text(&g, &Annotation::new(g.clone()));
                label_box(painter, p + Vec2::new(14.0, 14.0), &text);
            }
        }
    }

    /// The shape in progress as geometry (clicked shapes follow the pointer with a rubber band).
    fn drawing_geometry(&self, pointer: Option<Point>) -> Option<Geometry> {
        match self.drawing.as_ref()? {
            Drawing::Box { start, end, ellipse } => Some(box_geometry(*start, *end, *ellipse)),
            Drawing::Ruler { start, end } => Some(Geometry::Polyline { points: vec![*start, *end] }),
            Drawing::Freehand { points } => {
                Some(Geometry::Polygon(Polygon { exterior: points.clone(), holes: vec![] }))
            }
            // Drawn as a wide line instead (AnnotationLayer::paint).
            Drawing::Brush { .. } => None,
            Drawing::Clicked { points, closed } => {
                let mut points = points.clone();
                points.extend(pointer);
                Some(if *closed && points.len() >= 3 {
                    Geometry::Polygon(Polygon { exterior: points, holes: vec![] })
                } else {
                    Geometry::Polyline { points }
                })
            }
        }
    }

    /// The unselected annotations meeting the view, as shapes.
    fn layer_shapes(&mut self, projection: &Projection) -> Vec<Shape> {
        let visible = projection.camera.visible_level0(&projection.view);
        let found = self.doc.query_with_bounds(visible);
        self.drawn = found.len();
        // Shapes smaller than a few screen pixels become one dot each, and dots on the same screen
        // pixel are drawn once, all in one mesh: 50,000 cells at low zoom cost one draw call.
        let mut dots = ScreenMask::new(&projection.view);
        let mut dot_mesh = egui::Mesh::default();
        let mut shapes = Vec::new();
        let zoom = projection.camera.zoom;
        self.ruler_labels.clear();
        let tiny = found.iter().filter(|(_, b)| (b[2] - b[0]) * zoom < 3.0 && (b[3] - b[1]) * zoom < 3.0).count();
        // Grown once, not by doubling: large reallocations cost page faults every frame.
        dot_mesh.reserve_vertices(tiny * 4);
        dot_mesh.reserve_triangles(tiny * 2);
        for (id, b) in found {
            if self.selected == Some(id) {
                continue; // drawn last, on top
            }
            let Some(a) = self.doc.get(id) else { continue };
            let color = self.color_of(a);
            if (b[2] - b[0]) * zoom < 3.0
                && (b[3] - b[1]) * zoom < 3.0
                && !matches!(a.geometry, Geometry::Points { .. })
            {
                let c = projection.to_screen([(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0]);
                if dots.insert(c) {
                    dot_mesh.add_colored_rect(Rect::from_center_size(c, Vec2::splat(2.0)), color);
                }
                continue;
            }
            // A halo (a wider dark or light stroke) under the coloured one: readable on any stain.
            // Detections, cells and tiles (often thousands) are thinner than annotations, and a
            // cell's nucleus thinner still.
            let (width, halo_width) = if a.kind == ObjectKind::Annotation { (1.5, 3.5) } else { (1.0, 2.5) };
            for g in a.shapes() {
                let mut halo_dots = ScreenMask::new(&projection.view);
                if !matches!(g, Geometry::Points { .. }) {
                    geometry_shapes(g, projection, Stroke::new(halo_width, halo(color)), &mut shapes, &mut halo_dots);
                }
                geometry_shapes(g, projection, Stroke::new(width, color), &mut shapes, &mut dots);
            }
            if let Some(nucleus) = &a.nucleus {
                let mut halo_dots = ScreenMask::new(&projection.view);
                geometry_shapes(nucleus, projection, Stroke::new(1.75, halo(color)), &mut shapes, &mut halo_dots);
                geometry_shapes(nucleus, projection, Stroke::new(0.75, color), &mut shapes, &mut halo_dots);
            }
            if a.is_ruler() {
                let text = self.measure_text(&a.geometry, &Annotation::new(a.geometry.clone()));
                let [x0, y0, x1, y1] = b;
                let mid = projection.to_screen([(x0 + x1) / 2.0, (y0 + y1) / 2.0]);
                self.ruler_labels.push((mid + Vec2::new(8.0, 6.0), text));
            }
        }
        if !dot_mesh.is_empty() {
            shapes.push(Shape::mesh(dot_mesh));
        }
        shapes
    }

    /// "Tumor · 1,234.5 µm² · 150.2 µm" for labels.
    pub fn measure_text(&self, g: &Geometry, a: &Annotation) -> String {
        // A geometry collection is measured whole (its parts are not reshaped with `g`).
        let m = if a.parts.is_empty() { g.measure(self.pixel_size) } else { a.measure(self.pixel_size) };
        let (area_unit, len_unit) = match m.unit {
            crate::annotations::Unit::Microns => ("µm²", "µm"),
            crate::annotations::Unit::Pixels => ("px²", "px"),
        };
        let mut parts = Vec::new();
        if a.kind != ObjectKind::Annotation {
            parts.push(a.kind.label().to_string());
        }
        if !a.name.is_empty() {
            parts.push(a.name.clone());
        }
        if let Some(c) = &a.class {
            parts.push(c.clone());
        }
        if let Some(area) = m.area {
            parts.push(format!("{} {area_unit}", group_thousands(area)));
        }
        if let Some(len) = m.length {
            parts.push(format!("{} {len_unit}", group_thousands(len)));
        } else if let Some(p) = m.perimeter {
            parts.push(format!("perimeter {} {len_unit}", group_thousands(p)));
        }
        if let Some(n) = m.points {
            parts.push(format!("{n} points"));
        }
        if a.locked {
            parts.push("locked".into());
        }
        parts.join(" · ")
    }
}

/// One bit per screen point: markers and dots landing on a point already drawn are skipped.
struct ScreenMask {
    origin: Pos2,
    width: usize,
    height: usize,
    bits: Vec<u64>,
}

impl ScreenMask {
    fn new(view: &ViewRect) -> Self {
        let (width, height) = (view.width.max(1.0) as usize + 1, view.height.max(1.0) as usize + 1);
        ScreenMask {
            origin: Pos2::new(view.x as f32, view.y as f32),
            width,
            height,
            bits: vec![0; (width * height).div_ceil(64)],
        }
    }

    /// Mark the point; false if it was already marked. Points off the view count as new.
    fn insert(&mut self, p: Pos2) -> bool {
        let (x, y) = ((p.x - self.origin.x).floor(), (p.y - self.origin.y).floor());
        if x < 0.0 || y < 0.0 || x as usize >= self.width || y as usize >= self.height {
            return true;
        }
        let i = y as usize * self.width + x as usize;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let fresh = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        fresh
    }
}

/// The rectangle (or the ellipse inscribed in it) spanned by two corners dragged in either
/// direction, in level-0 pixels.
fn box_geometry(start: Point, end: Point, ellipse: bool) -> Geometry {
    let (x0, x1) = (start[0].min(end[0]), start[0].max(end[0]));
    let (y0, y1) = (start[1].min(end[1]), start[1].max(end[1]));
    if ellipse {
        Geometry::Ellipse { cx: (x0 + x1) / 2.0, cy: (y0 + y1) / 2.0, rx: (x1 - x0) / 2.0, ry: (y1 - y0) / 2.0 }
    } else {
        Geometry::Rectangle { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }
    }
}

/// The one number formatter ([`crate::text`]), shared with the report page; re-exported for the
/// viewer's panels.
pub use crate::text::group_thousands;

/// The halo under an outline of `color`: black or white, whichever contrasts more, half opaque.
fn halo(color: Color32) -> Color32 {
    let [r, g, b] = halo_for([color.r(), color.g(), color.b()]);
    Color32::from_rgba_unmultiplied(r, g, b, 170)
}

fn label_box(painter: &egui::Painter, at: Pos2, text: &str) {
    if text.is_empty() {
        return;
    }
    let galley = painter.layout_no_wrap(text.to_string(), egui::FontId::proportional(13.0), Color32::WHITE);
    let rect = Rect::from_min_size(at, galley.size()).expand(3.0);
    painter.rect_filled(rect, 3.0, Color32::from_black_alpha(170));
    painter.galley(at, galley, Color32::WHITE);
}

/// Screen polyline of a ring or path, dropping vertices closer than half a point to the last kept
/// one: a 10,000-vertex outline seen small draws with a few dozen.
fn screen_path(points: &[Point], projection: &Projection) -> Vec<Pos2> {
    let mut out: Vec<Pos2> = Vec::with_capacity(points.len().min(4096));
    for (i, p) in points.iter().enumerate() {
        let s = projection.to_screen(*p);
        let last = i + 1 == points.len();
        if out.last().is_none_or(|q: &Pos2| q.distance_sq(s) >= 0.25) || last {
            out.push(s);
        }
    }
    out
}

fn geometry_shapes(
    g: &Geometry,
    projection: &Projection,
    stroke: Stroke,
    shapes: &mut Vec<Shape>,
    dots: &mut ScreenMask,
) {
    let ring = |r: &[Point], shapes: &mut Vec<Shape>| {
        let path = screen_path(r, projection);
        if path.len() >= 2 {
            shapes.push(Shape::closed_line(path, stroke));
        }
    };
    match g {
        Geometry::Rectangle { x, y, width, height } if projection.camera.rotation != 0.0 => {
            let corners = [[*x, *y], [x + width, *y], [x + width, y + height], [*x, y + height]];
            shapes.push(Shape::closed_line(corners.iter().map(|&p| projection.to_screen(p)).collect(), stroke));
        }
        Geometry::Rectangle { x, y, width, height } => {
            let r = Rect::from_two_pos(projection.to_screen([*x, *y]), projection.to_screen([x + width, y + height]));
            shapes.push(Shape::rect_stroke(r, 0.0, stroke, egui::StrokeKind::Middle));
        }
        Geometry::Ellipse { .. } if projection.camera.rotation != 0.0 => {
            if let Some(p) = g.as_polygon(128) {
                ring(&p.exterior, shapes);
            }
        }
        Geometry::Ellipse { cx, cy, rx, ry } => {
            let zoom = projection.camera.zoom as f32;
            shapes.push(Shape::ellipse_stroke(
                projection.to_screen([*cx, *cy]),
                Vec2::new(*rx as f32 * zoom, *ry as f32 * zoom),
                stroke,
            ));
        }
        Geometry::Polygon(p) => {
            ring(&p.exterior, shapes);
            p.holes.iter().for_each(|h| ring(h, shapes));
        }
        Geometry::MultiPolygon { polygons } => {
            for p in polygons {
                ring(&p.exterior, shapes);
                p.holes.iter().for_each(|h| ring(h, shapes));
            }
        }
        Geometry::Polyline { points } => {
            let path = screen_path(points, projection);
            if path.len() >= 2 {
                shapes.push(Shape::line(path, stroke));
            }
        }
        Geometry::Points { points } => {
            for p in points {
                let s = projection.to_screen(*p);
                if dots.insert(s) {
                    // A dark rim keeps markers visible on dark nuclei.
                    shapes.push(Shape::Circle(egui::epaint::CircleShape {
                        center: s,
                        radius: stroke.width + 1.5,
                        fill: stroke.color,
                        stroke: Stroke::new(1.0, Color32::from_black_alpha(200)),
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strokes of the rectangles `layer` draws in a 200 × 200 view at zoom 1, in drawing order.
    fn rect_strokes(layer: &mut AnnotationLayer) -> Vec<Stroke> {
        let projection = Projection {
            camera: Camera { center: [50.0, 50.0], zoom: 1.0, rotation: 0.0 },
            view: ViewRect { x: 0.0, y: 0.0, width: 200.0, height: 200.0 },
        };
        layer
            .layer_shapes(&projection)
            .into_iter()
            .filter_map(|s| match s {
                Shape::Rect(r) => Some(r.stroke),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn outlines_are_drawn_over_a_halo() {
        let tumor = AnnotationClass::new("Tumor", [215, 30, 30]);
        let rect = Annotation::new(Geometry::Rectangle { x: 10.0, y: 10.0, width: 50.0, height: 40.0 })
            .with_class(Some(&tumor));
        let mut layer = AnnotationLayer::new(Document::from_annotations(vec![rect]), None);
        layer.classes = vec![tumor];
        let strokes = rect_strokes(&mut layer);
        assert_eq!(strokes.len(), 2, "a halo and the outline");
        assert!(strokes[0].width > strokes[1].width, "the halo is wider and drawn first");
        assert_eq!(strokes[1].color, Color32::from_rgb(215, 30, 30));
        assert_eq!(strokes[0].color, halo(strokes[1].color));
    }

    #[test]
    fn cells_are_thinner_than_annotations_with_a_thinner_nucleus() {
        let mut cell = Annotation::new(Geometry::Rectangle { x: 10.0, y: 10.0, width: 50.0, height: 40.0 });
        cell.kind = ObjectKind::Cell;
        cell.nucleus = Some(Geometry::Rectangle { x: 20.0, y: 20.0, width: 10.0, height: 10.0 });
        let mut layer = AnnotationLayer::new(Document::from_annotations(vec![cell]), None);
        let widths: Vec<f32> = rect_strokes(&mut layer).iter().map(|s| s.width).collect();
        assert_eq!(widths, [2.5, 1.0, 1.75, 0.75], "cell halo and outline, then the nucleus's, thinner");
    }

    #[test]
    fn every_tool_has_its_own_key() {
        let mut keys: Vec<_> = Tool::ALL.iter().map(|t| t.key()).collect();
        keys.sort_by_key(|k| k.name());
        keys.dedup();
        assert_eq!(keys.len(), Tool::ALL.len());
        assert!(Tool::Polygon.tooltip().contains("(P)"));
    }
}
