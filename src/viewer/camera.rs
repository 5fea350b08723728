//! Camera maths, free of any GUI type so it is unit-tested alone: where level-0 pixels land on the
//! screen, which level to draw, and which tiles are visible in which order.

use crate::slide::LevelInfo;

/// A rectangle on screen, in points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewRect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl ViewRect {
    pub fn center(&self) -> [f64; 2] {
        [self.x + self.width / 2.0, self.y + self.height / 2.0]
    }
}

/// What part of the slide the view shows: the level-0 point at the view's centre, the zoom in
/// screen points per level-0 pixel, and the view's rotation: the slide is drawn turned clockwise
/// by `rotation` radians about the view's centre (0: level-0 x to the right, y down).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Camera {
    pub center: [f64; 2],
    pub zoom: f64,
    pub rotation: f64,
}

/// `angle` in (−π, π], quarter turns exact (no drift after many 90° steps).
pub fn normalise_angle(angle: f64) -> f64 {
    use std::f64::consts::{FRAC_PI_2, PI, TAU};
    if !angle.is_finite() {
        return 0.0;
    }
    let mut a = angle.rem_euclid(TAU);
    if a > PI {
        a -= TAU;
    }
    let quarter = (a / FRAC_PI_2).round();
    if (a - quarter * FRAC_PI_2).abs() < 1e-9 {
        a = quarter * FRAC_PI_2;
    }
    if a == -PI {
        a = PI;
    }
    a
}

/// `v` turned clockwise on screen (y down) by `angle` radians.
pub fn rotate(v: [f64; 2], angle: f64) -> [f64; 2] {
    if angle == 0.0 {
        return v;
    }
    let (sin, cos) = angle.sin_cos();
    [v[0] * cos - v[1] * sin, v[0] * sin + v[1] * cos]
}

/// The closest the view may come: 4 screen pixels per level-0 pixel.
pub const MAX_PHYSICAL_ZOOM: f64 = 4.0;

impl Camera {
    /// The whole slide in the view turned by `rotation`, centred, with a small margin.
    pub fn fit_turned(slide_width: f64, slide_height: f64, view: &ViewRect, rotation: f64) -> Camera {
        let (sin, cos) = rotation.sin_cos();
        let (w, h) =
            (slide_width * cos.abs() + slide_height * sin.abs(), slide_width * sin.abs() + slide_height * cos.abs());
        let zoom = Camera::fit(w, h, view).zoom;
        Camera { center: [slide_width / 2.0, slide_height / 2.0], zoom, rotation }
    }

    /// The whole slide in the view, centred, with a small margin.
    pub fn fit(slide_width: f64, slide_height: f64, view: &ViewRect) -> Camera {
        let zoom = (view.width / slide_width).min(view.height / slide_height) * 0.96;
        Camera { center: [slide_width / 2.0, slide_height / 2.0], zoom: zoom.max(1e-9), rotation: 0.0 }
    }

    /// The same camera without its rotation (tiles are laid out in this frame and turned as they
    /// are drawn).
    pub fn unrotated(&self) -> Camera {
        Camera { rotation: 0.0, ..*self }
    }

    pub fn screen_to_level0(&self, p: [f64; 2], view: &ViewRect) -> [f64; 2] {
        let c = view.center();
        let d = rotate([p[0] - c[0], p[1] - c[1]], -self.rotation);
        [self.center[0] + d[0] / self.zoom, self.center[1] + d[1] / self.zoom]
    }

    pub fn level0_to_screen(&self, p: [f64; 2], view: &ViewRect) -> [f64; 2] {
        let c = view.center();
        let d = rotate([(p[0] - self.center[0]) * self.zoom, (p[1] - self.center[1]) * self.zoom], self.rotation);
        [c[0] + d[0], c[1] + d[1]]
    }

    /// Level-0 rectangle the view covers: [x0, y0, x1, y1] (when rotated, the bounds of the
    /// turned view).
    pub fn visible_level0(&self, view: &ViewRect) -> [f64; 4] {
        let corners = [
            [view.x, view.y],
            [view.x + view.width, view.y],
            [view.x, view.y + view.height],
            [view.x + view.width, view.y + view.height],
        ]
        .map(|p| self.screen_to_level0(p, view));
        let (mut b0, mut b1) = ([f64::MAX; 2], [f64::MIN; 2]);
        for p in corners {
            b0 = [b0[0].min(p[0]), b0[1].min(p[1])];
            b1 = [b1[0].max(p[0]), b1[1].max(p[1])];
        }
        [b0[0], b0[1], b1[0], b1[1]]
    }

    /// Set the zoom, keeping the level-0 point under `anchor` (a screen point) where it is.
    pub fn zoom_about(&mut self, anchor: [f64; 2], new_zoom: f64, view: &ViewRect) {
        let fixed = self.screen_to_level0(anchor, view);
        self.zoom = new_zoom;
        let c = view.center();
        let d = rotate([anchor[0] - c[0], anchor[1] - c[1]], -self.rotation);
        self.center = [fixed[0] - d[0] / new_zoom, fixed[1] - d[1] / new_zoom];
    }

    /// Move the view by a screen-space drag (the slide follows the pointer).
    pub fn pan_by_screen(&mut self, delta: [f64; 2]) {
        let d = rotate(delta, -self.rotation);
        self.center[0] -= d[0] / self.zoom;
        self.center[1] -= d[1] / self.zoom;
    }

    /// Turn the view to `angle` radians (normalised to (−π, π]) about the screen point `anchor`,
    /// which keeps showing the same level-0 point.
    pub fn rotate_about(&mut self, anchor: [f64; 2], angle: f64, view: &ViewRect) {
        let fixed = self.screen_to_level0(anchor, view);
        let a = normalise_angle(angle);
        self.rotation = a;
        let c = view.center();
        let d = rotate([anchor[0] - c[0], anchor[1] - c[1]], -a);
        self.center = [fixed[0] - d[0] / self.zoom, fixed[1] - d[1] / self.zoom];
    }

    /// Keep the centre on the slide, so the slide can never be lost off-screen.
    pub fn clamp_center(&mut self, slide_width: f64, slide_height: f64) {
        self.center[0] = self.center[0].clamp(0.0, slide_width);
        self.center[1] = self.center[1].clamp(0.0, slide_height);
    }
}

/// The level to draw at a zoom: the most detailed level whose pixels are no smaller than a
/// screen pixel (so a level is never magnified, except level 0 past 1:1).
/// `pixels_per_point` converts the zoom (points) to physical pixels.
pub fn level_for_zoom(levels: &[LevelInfo], zoom: f64, pixels_per_point: f64) -> usize {
    let wanted_downsample = 1.0 / (zoom * pixels_per_point).max(1e-12);
    levels.iter().rposition(|l| l.downsample <= wanted_downsample * (1.0 + 1e-6)).unwrap_or(0)
}

/// Tiles of `level` that intersect the level-0 rectangle `area`, nearest `focus` (level-0) first.
/// Each comes with its distance from the focus in tiles, the scheduler's priority.
pub fn tiles_in(level: &LevelInfo, area: [f64; 4], focus: [f64; 2]) -> Vec<((u64, u64), f64)> {
    let ds = level.downsample;
    let (tw, th) = (f64::from(level.tile_width) * ds, f64::from(level.tile_height) * ds);
    if tw <= 0.0 || th <= 0.0 {
        return Vec::new();
    }
    let cols = level.tiles_across() as f64;
    let rows = level.tiles_down() as f64;
    let c0 = (area[0] / tw).floor().clamp(0.0, cols);
    let c1 = (area[2] / tw).ceil().clamp(0.0, cols);
    let r0 = (area[1] / th).floor().clamp(0.0, rows);
    let r1 = (area[3] / th).ceil().clamp(0.0, rows);
    let mut out = Vec::with_capacity(((c1 - c0) * (r1 - r0)).max(0.0) as usize);
    for row in r0 as u64..r1 as u64 {
        for col in c0 as u64..c1 as u64 {
            let cx = (col as f64 + 0.5) * tw;
            let cy = (row as f64 + 0.5) * th;
            let d = (((cx - focus[0]) / tw).powi(2) + ((cy - focus[1]) / th).powi(2)).sqrt();
            out.push(((col, row), d));
        }
    }
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out
}

/// A scale bar of a round length (1, 2 or 5 × 10^k µm) about `target_px` long.
/// Returns (length in µm, length in screen points, label).
pub fn scale_bar(um_per_point: f64, target_points: f64) -> Option<(f64, f64, String)> {
    if !(um_per_point.is_finite() && um_per_point > 0.0) {
        return None;
    }
    let raw = um_per_point * target_points;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().rev().map(|m| m * magnitude).find(|&l| l <= raw).unwrap_or(magnitude);
    let label = if step >= 1000.0 {
        format!("{} mm", step / 1000.0)
    } else if step >= 1.0 {
        format!("{step} µm")
    } else {
        format!("{:.2} µm", step)
    };
    Some((step, step / um_per_point, label))
}

/// Display adjustments applied to decoded pixels on their way to the screen (the decoded tiles
/// stay as they are, so changing them never re-decodes).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adjustments {
    /// Added to every channel, -1 to 1.
    pub brightness: f32,
    /// Scales distances from mid-grey, 0 to 3 (1 = unchanged).
    pub contrast: f32,
    /// Output = input^(1/gamma), 0.2 to 5 (1 = unchanged).
    pub gamma: f32,
}

impl Default for Adjustments {
    fn default() -> Self {
        Adjustments { brightness: 0.0, contrast: 1.0, gamma: 1.0 }
    }
}

impl Adjustments {
    pub fn is_identity(&self) -> bool {
        *self == Adjustments::default()
    }

    /// The 8-bit lookup table: contrast about mid-grey, then brightness, then gamma.
    pub fn lut(&self) -> [u8; 256] {
        let mut lut = [0u8; 256];
        for (i, out) in lut.iter_mut().enumerate() {
            let x = i as f32 / 255.0;
            let y = ((x - 0.5) * self.contrast + 0.5 + self.brightness).clamp(0.0, 1.0);
            let y = y.powf(1.0 / self.gamma.max(0.01));
            *out = (y * 255.0).round() as u8;
        }
        lut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::codec::Compression;

    fn level(width: u64, height: u64, downsample: f64) -> LevelInfo {
        LevelInfo { width, height, downsample, tile_width: 256, tile_height: 256, compression: Compression::Jpeg }
    }

    const VIEW: ViewRect = ViewRect { x: 100.0, y: 50.0, width: 800.0, height: 600.0 };

    #[test]
    fn screen_and_level0_round_trip() {
        let cam = Camera { center: [5000.0, 4000.0], zoom: 0.25, rotation: 0.0 };
        assert_eq!(cam.level0_to_screen([5000.0, 4000.0], &VIEW), [500.0, 350.0]);
        assert_eq!(cam.screen_to_level0([100.0, 50.0], &VIEW), [5000.0 - 1600.0, 4000.0 - 1200.0]);
        let p = [1234.5, 987.25];
        let back = cam.screen_to_level0(cam.level0_to_screen(p, &VIEW), &VIEW);
        assert!((back[0] - p[0]).abs() < 1e-9 && (back[1] - p[1]).abs() < 1e-9);
        assert_eq!(cam.visible_level0(&VIEW), [3400.0, 2800.0, 6600.0, 5200.0]);
    }

    #[test]
    fn zoom_keeps_the_anchor_fixed() {
        let mut cam = Camera { center: [5000.0, 4000.0], zoom: 0.25, rotation: 0.0 };
        let anchor = [250.0, 125.0];
        let before = cam.screen_to_level0(anchor, &VIEW);
        cam.zoom_about(anchor, 1.0, &VIEW);
        let after = cam.screen_to_level0(anchor, &VIEW);
        assert!((before[0] - after[0]).abs() < 1e-9 && (before[1] - after[1]).abs() < 1e-9);
        assert_eq!(cam.zoom, 1.0);
        cam.pan_by_screen([100.0, -40.0]);
        assert!((cam.screen_to_level0([350.0, 85.0], &VIEW)[0] - before[0]).abs() < 1e-9);
    }

    #[test]
    fn a_rotated_view_turns_about_its_centre() {
        let mut cam = Camera { center: [5000.0, 4000.0], zoom: 0.5, rotation: 0.0 };
        let centre = VIEW.center();
        cam.rotate_about(centre, std::f64::consts::FRAC_PI_2, &VIEW);
        assert_eq!(cam.center, [5000.0, 4000.0], "turning about the centre keeps it");
        // Turned 90° clockwise: a point 100 px right of the centre is drawn 50 points below it.
        let s = cam.level0_to_screen([5100.0, 4000.0], &VIEW);
        assert!((s[0] - centre[0]).abs() < 1e-9 && (s[1] - centre[1] - 50.0).abs() < 1e-9, "{s:?}");
        let p = [4321.0, 4567.0];
        let back = cam.screen_to_level0(cam.level0_to_screen(p, &VIEW), &VIEW);
        assert!((back[0] - p[0]).abs() < 1e-9 && (back[1] - p[1]).abs() < 1e-9);
        // The view is 800 × 600 points: turned, it covers 1200 × 1600 level-0 pixels.
        let [x0, y0, x1, y1] = cam.visible_level0(&VIEW);
        assert!((x1 - x0 - 1200.0).abs() < 1e-6 && (y1 - y0 - 1600.0).abs() < 1e-6);
        // A drag moves the slide with the pointer, turned or not.
        let under = cam.screen_to_level0([300.0, 200.0], &VIEW);
        cam.pan_by_screen([30.0, -20.0]);
        let moved = cam.level0_to_screen(under, &VIEW);
        assert!((moved[0] - 330.0).abs() < 1e-9 && (moved[1] - 180.0).abs() < 1e-9);
        // Turning about another point keeps that point; zoom about a point too.
        let anchor = [200.0, 500.0];
        let fixed = cam.screen_to_level0(anchor, &VIEW);
        cam.rotate_about(anchor, 0.3, &VIEW);
        let still = cam.level0_to_screen(fixed, &VIEW);
        assert!((still[0] - anchor[0]).abs() < 1e-9 && (still[1] - anchor[1]).abs() < 1e-9);
        cam.zoom_about(anchor, 2.0, &VIEW);
        let still = cam.level0_to_screen(fixed, &VIEW);
        assert!((still[0] - anchor[0]).abs() < 1e-9 && (still[1] - anchor[1]).abs() < 1e-9);
        // Angles stay in (−π, π]; four quarter turns come back to exactly 0.
        cam.rotate_about(centre, 0.0, &VIEW);
        for _ in 0..4 {
            let r = cam.rotation;
            cam.rotate_about(centre, r + std::f64::consts::FRAC_PI_2, &VIEW);
        }
        assert_eq!(cam.rotation, 0.0);
    }

    #[test]
    fn fit_shows_the_whole_slide() {
        let cam = Camera::fit(100_000.0, 80_000.0, &VIEW);
        let [x0, y0, x1, y1] = cam.visible_level0(&VIEW);
        assert!(x0 < 0.0 && y0 < 0.0 && x1 > 100_000.0 && y1 > 80_000.0);
        assert!(y1 - y0 < 84_000.0, "fits snugly on the limiting axis (height here)");
    }

    #[test]
    fn level_choice_never_magnifies_a_reduced_level() {
        let levels = [level(100_000, 80_000, 1.0), level(25_000, 20_000, 4.0), level(6250, 5000, 16.0)];
        assert_eq!(level_for_zoom(&levels, 2.0, 1.0), 0);
        assert_eq!(level_for_zoom(&levels, 1.0, 1.0), 0);
        assert_eq!(level_for_zoom(&levels, 0.5, 1.0), 0);
        assert_eq!(level_for_zoom(&levels, 0.25, 1.0), 1);
        assert_eq!(level_for_zoom(&levels, 0.2, 1.0), 1);
        assert_eq!(level_for_zoom(&levels, 0.01, 1.0), 2);
        // On a 2× display, 0.25 points per pixel is 0.5 physical pixels: level 0 is still needed.
        assert_eq!(level_for_zoom(&levels, 0.25, 2.0), 0);
    }

    #[test]
    fn visible_tiles_centre_out_and_clipped() {
        let l = level(1000, 700, 1.0); // 4 × 3 tiles
        let tiles = tiles_in(&l, [-500.0, -500.0, 5000.0, 5000.0], [640.0, 384.0]);
        assert_eq!(tiles.len(), 12);
        assert_eq!(tiles[0].0, (2, 1));
        assert!(tiles.windows(2).all(|w| w[0].1 <= w[1].1));
        let few = tiles_in(&l, [300.0, 10.0, 400.0, 20.0], [350.0, 15.0]);
        assert_eq!(few.iter().map(|t| t.0).collect::<Vec<_>>(), vec![(1, 0)]);
        // At level 1 (downsample 2) a tile covers 512 level-0 pixels.
        let l1 = level(500, 350, 2.0);
        assert_eq!(tiles_in(&l1, [0.0, 0.0, 1000.0, 700.0], [0.0, 0.0]).len(), 4);
    }

    #[test]
    fn adjustments_lut() {
        assert_eq!(Adjustments::default().lut()[37], 37);
        assert!(Adjustments::default().is_identity());
        let brighter = Adjustments { brightness: 0.1, ..Default::default() }.lut();
        assert_eq!((brighter[0], brighter[100], brighter[250]), (26, 126, 255));
        let contrast = Adjustments { contrast: 2.0, ..Default::default() }.lut();
        assert_eq!((contrast[60], contrast[128], contrast[192]), (0, 129, 255));
        let gamma = Adjustments { gamma: 2.0, ..Default::default() }.lut();
        assert_eq!(gamma[64], ((64.0f32 / 255.0).sqrt() * 255.0).round() as u8);
    }

    #[test]
    fn scale_bar_is_round() {
        let (um, points, label) = scale_bar(0.5, 150.0).unwrap_or_default();
        assert_eq!((um, label.as_str()), (50.0, "50 µm"));
        assert!((points - 100.0).abs() < 1e-9);
        assert_eq!(scale_bar(40.0, 150.0).map(|s| s.2), Some("5 mm".to_string()));
        assert_eq!(scale_bar(f64::NAN, 150.0), None);
    }
}
