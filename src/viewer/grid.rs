//! Slides side by side (issue 18): how the central area is divided into cells, and synchronised
//! navigation between them. Each cell is a full [`SlideView`](super::slide_view::SlideView); this
//! module only decides where the cells are and how a follower's camera moves when the leader's
//! does, free of any GUI state so it is unit-tested alone.

use egui::{Pos2, Rect};

use super::camera::{normalise_angle, rotate, Camera};

/// How many slides the central area shows, and how they are arranged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// The active tab only.
    #[default]
    Single,
    /// Two slides side by side.
    Two,
    /// Three slides side by side.
    Three,
    /// Four slides, two by two.
    Four,
}

impl Layout {
    pub const ALL: [Layout; 4] = [Layout::Single, Layout::Two, Layout::Three, Layout::Four];

    /// The layout with `cells` cells (1 to 4).
    pub fn with_cells(cells: usize) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.cells() == cells)
    }

    /// Cells in the layout.
    pub fn cells(self) -> usize {
        match self {
            Layout::Single => 1,
            Layout::Two => 2,
            Layout::Three => 3,
            Layout::Four => 4,
        }
    }

    /// The name in View > Layout.
    pub fn label(self) -> &'static str {
        match self {
            Layout::Single => "One slide",
            Layout::Two => "Two side by side",
            Layout::Three => "Three side by side",
            Layout::Four => "Four, 2 × 2",
        }
    }

    /// The cells' rectangles in `area` (screen points), row by row, `gap` points apart.
    pub fn cell_rects(self, area: Rect, gap: f32) -> Vec<Rect> {
        let (cols, rows) = match self {
            Layout::Single => (1, 1),
            Layout::Two => (2, 1),
            Layout::Three => (3, 1),
            Layout::Four => (2, 2),
        };
        let w = (area.width() - gap * (cols - 1) as f32) / cols as f32;
        let h = (area.height() - gap * (rows - 1) as f32) / rows as f32;
        let mut cells = Vec::with_capacity(cols * rows);
        for r in 0..rows {
            for c in 0..cols {
                let min = Pos2::new(area.min.x + c as f32 * (w + gap), area.min.y + r as f32 * (h + gap));
                cells.push(Rect::from_min_size(min, egui::vec2(w.max(0.0), h.max(0.0))));
            }
        }
        cells
    }
}

/// The tabs a layout of `cells` shows when `active` of `tabs` tabs is active: `cells` consecutive
/// tabs that include the active one (fewer when fewer are open).
pub fn shown_tabs(tabs: usize, active: usize, cells: usize) -> std::ops::Range<usize> {
    let n = cells.min(tabs);
    let start = (active + 1).saturating_sub(n).min(tabs - n);
    start..start + n
}

/// Move a follower as the leader moved from `before` to `after`: its centre by the same physical
/// distance on screen (µm, through each slide's pixel size `mpp`, and through each view's
/// rotation: a pan to the right moves both slides to the right however each is turned), its
/// zoom to the leader's physical scale (the same µm per screen point), and its rotation by the
/// leader's change of rotation. Slides scanned at different resolutions, or turned differently,
/// stay aligned and show the same field. Without a pixel size on either side, level-0 pixels
/// stand for µm.
pub fn follow(
    before: Camera,
    after: Camera,
    leader_mpp: Option<f64>,
    follower: Camera,
    follower_mpp: Option<f64>,
) -> Camera {
    let ratio = mpp_ratio(leader_mpp, follower_mpp);
    let moved = [after.center[0] - before.center[0], after.center[1] - before.center[1]];
    // The leader's move as the screen shows it, then in the follower's level-0 frame.
    let on_screen = rotate(moved, after.rotation);
    let d = rotate(on_screen, -follower.rotation);
    Camera {
        center: [follower.center[0] + d[0] * ratio, follower.center[1] + d[1] * ratio],
        zoom: if after.zoom == before.zoom { follower.zoom } else { after.zoom / ratio },
        rotation: normalise_angle(follower.rotation + (after.rotation - before.rotation)),
    }
}

/// Level-0 px of the follower per level-0 px of the leader (1 without both pixel sizes).
fn mpp_ratio(leader_mpp: Option<f64>, follower_mpp: Option<f64>) -> f64 {
    match (leader_mpp, follower_mpp) {
        (Some(l), Some(f)) if l > 0.0 && f > 0.0 => l / f,
        _ => 1.0,
    }
}

/// "Align here": the camera that shows `point` (level-0 px of a slide with pixel size `mpp`,
/// viewed turned by `rotation`) where the reference slide shows `reference_point`, relative to
/// each cell's centre, at the reference's physical scale (the same µm per screen point). Once
/// aligned, synchronised navigation keeps the two together: the offset between them is the
/// slides' own cameras.
pub fn align(
    reference: Camera,
    reference_point: [f64; 2],
    reference_mpp: Option<f64>,
    point: [f64; 2],
    mpp: Option<f64>,
    rotation: f64,
) -> Camera {
    let zoom = reference.zoom / mpp_ratio(reference_mpp, mpp);
    // Where the reference point is drawn from its cell's centre, in screen points.
    let offset = rotate(
        [
            (reference_point[0] - reference.center[0]) * reference.zoom,
            (reference_point[1] - reference.center[1]) * reference.zoom,
        ],
        reference.rotation,
    );
    let d = rotate(offset, -rotation);
    Camera { center: [point[0] - d[0] / zoom, point[1] - d[1] / zoom], zoom, rotation }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_tile_the_area() {
        let area = Rect::from_min_size(Pos2::new(10.0, 20.0), egui::vec2(1000.0, 600.0));
        for layout in Layout::ALL {
            let cells = layout.cell_rects(area, 4.0);
            assert_eq!(cells.len(), layout.cells());
            let covered: f32 = cells.iter().map(|c| c.area()).sum();
            let gaps = match layout {
                Layout::Single => 0.0,
                Layout::Two => 4.0 * 600.0,
                Layout::Three => 8.0 * 600.0,
                Layout::Four => 4.0 * 600.0 + 4.0 * 1000.0 - 16.0,
            };
            assert!((covered + gaps - 600_000.0).abs() < 1.0, "{layout:?}: {covered} + {gaps}");
            for (i, a) in cells.iter().enumerate() {
                assert!(area.contains_rect(*a), "{layout:?} {a:?}");
                assert!(cells[i + 1..].iter().all(|b| a.intersect(*b).area() <= 0.0), "{layout:?} overlap");
            }
        }
    }

    #[test]
    fn the_shown_tabs_include_the_active_one() {
        assert_eq!(shown_tabs(6, 0, 4), 0..4);
        assert_eq!(shown_tabs(6, 3, 4), 0..4);
        assert_eq!(shown_tabs(6, 4, 4), 1..5);
        assert_eq!(shown_tabs(6, 5, 4), 2..6);
        assert_eq!(shown_tabs(2, 1, 4), 0..2);
        assert_eq!(shown_tabs(1, 0, 1), 0..1);
    }

    #[test]
    fn a_follower_moves_the_same_micrometres() {
        // Leader at 0.25 µm/px pans 400 px (100 µm) right and zooms in 2×; the follower at
        // 0.5 µm/px moves 200 px and shows the same µm per screen point.
        let before = Camera { center: [1000.0, 1000.0], zoom: 0.5, rotation: 0.0 };
        let after = Camera { center: [1400.0, 900.0], zoom: 1.0, rotation: 0.0 };
        let follower = Camera { center: [300.0, 300.0], zoom: 0.123, rotation: 0.0 };
        let moved = follow(before, after, Some(0.25), follower, Some(0.5));
        assert_eq!(moved.center, [500.0, 250.0]);
        // 0.25 µm/px at 1 point/px = 0.25 µm per point; at 0.5 µm/px that is 2 points per px.
        assert_eq!(moved.zoom, 2.0);
        assert_eq!(0.25 / after.zoom, 0.5 / moved.zoom, "the same µm per screen point");
        // A pan alone keeps the follower's own zoom.
        let pan = Camera { center: [1100.0, 1000.0], zoom: 0.5, rotation: 0.0 };
        assert_eq!(follow(before, pan, Some(0.25), follower, Some(0.5)).zoom, 0.123);
        // Without pixel sizes, level-0 pixels for level-0 pixels.
        assert_eq!(follow(before, after, None, follower, Some(0.5)).center, [700.0, 200.0]);
    }

    #[test]
    fn aligned_points_land_on_the_same_place_of_each_cell() {
        let view = super::super::camera::ViewRect { x: 0.0, y: 0.0, width: 800.0, height: 600.0 };
        let other_view = super::super::camera::ViewRect { x: 804.0, y: 0.0, width: 800.0, height: 600.0 };
        let reference = Camera { center: [5000.0, 4000.0], zoom: 0.5, rotation: 0.0 };
        let p = [5100.0, 3900.0];
        let q = [900.0, 1200.0];
        let aligned = align(reference, p, Some(0.25), q, Some(0.5), 0.0);
        let at_p = reference.level0_to_screen(p, &view);
        let at_q = aligned.level0_to_screen(q, &other_view);
        assert!((at_p[0] - (at_q[0] - 804.0)).abs() < 1e-9 && (at_p[1] - at_q[1]).abs() < 1e-9, "{at_p:?} {at_q:?}");
        assert_eq!(0.25 / reference.zoom, 0.5 / aligned.zoom, "the same µm per point");
    }

    #[test]
    fn turned_slides_follow_on_screen() {
        use std::f64::consts::FRAC_PI_2;
        let view = super::super::camera::ViewRect { x: 0.0, y: 0.0, width: 800.0, height: 600.0 };
        // The leader pans 100 points right on screen; the follower is turned a quarter turn.
        let before = Camera { center: [1000.0, 1000.0], zoom: 1.0, rotation: 0.0 };
        let mut after = before;
        after.pan_by_screen([-100.0, 0.0]);
        let follower = Camera { center: [500.0, 500.0], zoom: 1.0, rotation: FRAC_PI_2 };
        let moved = follow(before, after, None, follower, None);
        // On screen the follower's content moved as the leader's did: left by 100 points.
        let p = [520.0, 480.0];
        let (was, now) = (follower.level0_to_screen(p, &view), moved.level0_to_screen(p, &view));
        assert!((now[0] - was[0] + 100.0).abs() < 1e-9 && (now[1] - was[1]).abs() < 1e-9, "{was:?} → {now:?}");
        // A turn of the leader turns the follower by as much.
        let turned = Camera { rotation: 0.5, ..after };
        assert!((follow(after, turned, None, follower, None).rotation - (FRAC_PI_2 + 0.5)).abs() < 1e-12);
        // Aligning a turned slide puts its point where the reference shows its own.
        let reference = Camera { center: [5000.0, 4000.0], zoom: 0.5, rotation: 0.4 };
        let aligned = align(reference, [5100.0, 3900.0], Some(0.25), [900.0, 1200.0], Some(0.5), -1.0);
        let a = reference.level0_to_screen([5100.0, 3900.0], &view);
        let b = aligned.level0_to_screen([900.0, 1200.0], &view);
        assert!((a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9, "{a:?} {b:?}");
        assert_eq!(aligned.rotation, -1.0);
    }
}
