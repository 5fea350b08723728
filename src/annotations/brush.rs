//! The brush: an area painted (or erased) with a round brush along a stroke, merged with an area
//! annotation. The polygon boolean operations are i_overlay's (non-zero fill); this module only
//! turns a stroke into polygons and the result back into a [`Geometry`].
//!
//! Coordinates are level-0 px. The brush is round in level-0 px (the viewer gives its radius in
//! screen points divided by the zoom); a stroke is the union of the brush at points no more
//! than a quarter radius apart along it, so its outline is smooth to about 1% of the radius.

use i_overlay::core::fill_rule::FillRule;
use i_overlay::core::overlay_rule::OverlayRule;
use i_overlay::float::single::SingleFloatOverlay;

use super::geometry::{Geometry, Point, Polygon};

/// Vertices of the brush's circle.
const CIRCLE_VERTICES: usize = 32;

/// Most brush positions one stroke is made of (a very long stroke is sampled more coarsely).
const MAX_DABS: usize = 4000;

fn circle(c: Point, r: f64) -> Vec<[f64; 2]> {
    (0..CIRCLE_VERTICES)
        .map(|i| {
            let a = i as f64 / CIRCLE_VERTICES as f64 * std::f64::consts::TAU;
            [c[0] + r * a.cos(), c[1] + r * a.sin()]
        })
        .collect()
}

/// The brush positions along `points`: every point, and between two points enough to keep
/// them at most `r / 4` apart.
fn dabs(points: &[Point], r: f64) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    let step = (r / 4.0).max(1e-6);
    for (i, p) in points.iter().enumerate() {
        if let Some(prev) = i.checked_sub(1).map(|j| points[j]) {
            let d = (p[0] - prev[0]).hypot(p[1] - prev[1]);
            let n = ((d / step).ceil() as usize).clamp(1, MAX_DABS);
            for k in 1..n {
                let t = k as f64 / n as f64;
                out.push([prev[0] + (p[0] - prev[0]) * t, prev[1] + (p[1] - prev[1]) * t]);
            }
        }
        out.push(*p);
    }
    if out.len() > MAX_DABS {
        let keep = out.len().div_ceil(MAX_DABS);
        let last = out.last().copied();
        out = out.into_iter().step_by(keep).collect();
        out.extend(last);
    }
    out
}

/// Polygon rings of `g`'s area (rectangles and ellipses as polygons); none for lines and points.
fn rings(g: &Geometry) -> Vec<Vec<[f64; 2]>> {
    match g {
        Geometry::MultiPolygon { polygons } => {
            polygons.iter().flat_map(|p| std::iter::once(p.exterior.clone()).chain(p.holes.iter().cloned())).collect()
        }
        _ => g.as_polygon(128).map(|p| std::iter::once(p.exterior).chain(p.holes).collect()).unwrap_or_default(),
    }
}

/// Whether `g` is an area a brush can paint into.
pub fn is_area(g: &Geometry) -> bool {
    matches!(
        g,
        Geometry::Polygon(_) | Geometry::MultiPolygon { .. } | Geometry::Rectangle { .. } | Geometry::Ellipse { .. }
    )
}

/// `target` (an area, or nothing) with the stroke along `points` of a round brush of radius `r`
/// painted into it (`erase`: cut out of it). `None` when nothing is left (all erased) or the
/// stroke is empty.
pub fn apply(target: Option<&Geometry>, points: &[Point], r: f64, erase: bool) -> Option<Geometry> {
    let base = target.map(rings).unwrap_or_default();
    if points.is_empty() || !(r.is_finite() && r > 0.0) {
        return target.cloned();
    }
    let dabs: Vec<Vec<[f64; 2]>> = dabs(points, r).into_iter().map(|c| circle(c, r)).collect();
    // The stroke alone: a union of overlapping circles (non-zero), then one set of rings.
    let none = Vec::<Vec<[f64; 2]>>::new();
    let stroke: Vec<Vec<[f64; 2]>> =
        dabs.overlay(&none, OverlayRule::Union, FillRule::NonZero).into_iter().flatten().collect();
    // The target's rings are read even-odd (holes are holes), as is the stroke's outline.
    let shapes = match (erase, base.is_empty()) {
        (true, true) => return None,
        (true, false) => base.overlay(&stroke, OverlayRule::Difference, FillRule::EvenOdd),
        (false, true) => stroke.overlay(&none, OverlayRule::Union, FillRule::EvenOdd),
        (false, false) => base.overlay(&stroke, OverlayRule::Union, FillRule::EvenOdd),
    };
    let mut polygons: Vec<Polygon> = shapes
        .into_iter()
        .filter_map(|mut contours| {
            if contours.is_empty() {
                return None;
            }
            let exterior = contours.remove(0);
            (exterior.len() >= 3)
                .then_some(Polygon { exterior, holes: contours.into_iter().filter(|h| h.len() >= 3).collect() })
        })
        .collect();
    match polygons.len() {
        0 => None,
        1 => polygons.pop().map(Geometry::Polygon),
        _ => Some(Geometry::MultiPolygon { polygons }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::geometry::Unit;
    use crate::annotations::{Annotation, PixelSize};

    fn area(g: &Geometry) -> f64 {
        let m = Annotation::new(g.clone()).measure(Some(PixelSize { x: 1.0, y: 1.0 }));
        assert_eq!(m.unit, Unit::Microns);
        m.area.unwrap_or(0.0)
    }

    #[test]
    fn a_stroke_paints_a_capsule_and_erasing_cuts_it() {
        // A 100-px stroke of a 10-px brush: a 100 × 20 rectangle and a disc of radius 10.
        let painted = apply(None, &[[0.0, 0.0], [100.0, 0.0]], 10.0, false).unwrap_or_else(|| panic!("nothing"));
        let expected = 100.0 * 20.0 + std::f64::consts::PI * 100.0;
        assert!((area(&painted) / expected - 1.0).abs() < 0.01, "{} vs {expected}", area(&painted));
        // Erase across the middle with a 5-px brush: a 10-wide band comes out, two pieces stay.
        let cut = apply(Some(&painted), &[[50.0, -30.0], [50.0, 30.0]], 5.0, true).unwrap_or_else(|| panic!("gone"));
        assert!(matches!(&cut, Geometry::MultiPolygon { polygons } if polygons.len() == 2), "{cut:?}");
        let removed = area(&painted) - area(&cut);
        assert!((removed / (10.0 * 20.0) - 1.0).abs() < 0.03, "removed {removed}");
        // Painting into a rectangle grows it; erasing it all leaves nothing.
        let rect = Geometry::Rectangle { x: 0.0, y: 0.0, width: 50.0, height: 50.0 };
        let grown = apply(Some(&rect), &[[50.0, 25.0]], 10.0, false).unwrap_or_else(|| panic!("nothing"));
        let half_disc = std::f64::consts::PI * 100.0 / 2.0;
        assert!((area(&grown) - 2500.0 - half_disc).abs() < 3.0, "{}", area(&grown));
        assert_eq!(apply(Some(&rect), &[[25.0, 25.0]], 100.0, true), None);
        assert_eq!(apply(None, &[[0.0, 0.0]], 5.0, true), None, "nothing to erase");
        // A hole erased inside stays a hole.
        let holed = apply(Some(&rect), &[[25.0, 25.0]], 5.0, true).unwrap_or_else(|| panic!("gone"));
        assert!(matches!(&holed, Geometry::Polygon(p) if p.holes.len() == 1), "{holed:?}");
        assert!((area(&holed) - 2500.0 + std::f64::consts::PI * 25.0).abs() < 1.0);
    }
}
