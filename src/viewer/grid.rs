//! Slides side by side (issue 18): how the central area is divided into cells, and synchronised
//! navigation between them. Each cell is a full [`SlideView`](super::slide_view::SlideView); this
//! module only decides where the cells are and how a follower's camera moves when the leader's
//! does, free of any GUI state so it is unit-tested alone.

use egui::{Pos2, Rect};

use super::camera::Camera;

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
/// distance (µm, through each slide's pixel size `mpp`), and its zoom to the leader's physical
/// scale (the same µm per screen point), so slides scanned at different resolutions stay aligned
/// and show the same field. Without a pixel size on either side, level-0 pixels stand for µm.
pub fn follow(
    before: Camera,
    after: Camera,
    leader_mpp: Option<f64>,
    follower: Camera,
    follower_mpp: Option<f64>,
) -> Camera {
    let ratio = match (leader_mpp, follower_mpp) {
        (Some(l), Some(f)) if l > 0.0 && f > 0.0 => l / f,
        _ => 1.0,
    };
    Camera {
        center: [
            follower.center[0] + (after.center[0] - before.center[0]) * ratio,
            follower.center[1] + (after.center[1] - before.center[1]) * ratio,
        ],
        zoom: if after.zoom == before.zoom { follower.zoom } else { after.zoom / ratio },
    }
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
        let before = Camera { center: [1000.0, 1000.0], zoom: 0.5 };
        let after = Camera { center: [1400.0, 900.0], zoom: 1.0 };
        let follower = Camera { center: [300.0, 300.0], zoom: 0.123 };
        let moved = follow(before, after, Some(0.25), follower, Some(0.5));
        assert_eq!(moved.center, [500.0, 250.0]);
        // 0.25 µm/px at 1 point/px = 0.25 µm per point; at 0.5 µm/px that is 2 points per px.
        assert_eq!(moved.zoom, 2.0);
        assert_eq!(0.25 / after.zoom, 0.5 / moved.zoom, "the same µm per screen point");
        // A pan alone keeps the follower's own zoom.
        let pan = Camera { center: [1100.0, 1000.0], zoom: 0.5 };
        assert_eq!(follow(before, pan, Some(0.25), follower, Some(0.5)).zoom, 0.123);
        // Without pixel sizes, level-0 pixels for level-0 pixels.
        assert_eq!(follow(before, after, None, follower, Some(0.5)).center, [700.0, 200.0]);
    }
}
