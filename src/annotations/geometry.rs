//! Annotation geometry in level-0 pixels and its measurements in microns (x and y pixel sizes
//! apart), or in pixels when the slide's pixel size is unknown. Exact formulas: a polygon's area
//! is its shoelace area less its holes', an ellipse's is πab.

/// A point `[x, y]` in level-0 slide pixels (x to the right, y down, origin at the top-left
/// corner of the full-resolution image).
pub type Point = [f64; 2];

/// A polygon: one outer ring and any number of holes; rings are implicitly closed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Polygon {
    /// The outer ring's vertices in level-0 pixels, in either winding order, without repeating
    /// the first vertex at the end (GeoJSON's closing vertex is added on export).
    pub exterior: Vec<Point>,
    /// Inner rings cut out of the area (each like `exterior`); empty for a simple polygon. Their
    /// areas are subtracted and their boundaries count towards the perimeter.
    #[serde(default)]
    pub holes: Vec<Vec<Point>>,
}

/// The shape of one annotation (or one member of it), in level-0 slide pixels (x right, y down).
/// Rectangles and ellipses keep their exact parameters (exported to GeoJSON as polygons, with the
/// exact shape in `properties.shape`, so other tools see the polygon); the rest are lists of
/// vertices.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Geometry {
    /// Many points in one annotation (cell counts). GeoJSON `Point` (one) or `MultiPoint`; ASAP
    /// `Dot` or `PointSet`. Measured as a count, with no area or length.
    Points {
        /// The marked positions, in level-0 pixels.
        points: Vec<Point>,
    },
    /// Axis-aligned rectangle given by its top-left corner and size, in level-0 pixels. The
    /// tools make `width` and `height` positive; measurements take their absolute values.
    Rectangle {
        /// Left edge (smallest x), level-0 pixels.
        x: f64,
        /// Top edge (smallest y), level-0 pixels.
        y: f64,
        /// Extent to the right of `x`, level-0 pixels.
        width: f64,
        /// Extent down from `y`, level-0 pixels.
        height: f64,
    },
    /// Axis-aligned ellipse, by its centre and semi-axes in level-0 pixels.
    Ellipse {
        /// Centre x, level-0 pixels.
        cx: f64,
        /// Centre y, level-0 pixels.
        cy: f64,
        /// Semi-axis along x (half the width), level-0 pixels.
        rx: f64,
        /// Semi-axis along y (half the height), level-0 pixels.
        ry: f64,
    },
    /// One closed area with optional holes (GeoJSON `Polygon`).
    Polygon(Polygon),
    /// Several disjoint areas measured as one (GeoJSON `MultiPolygon`, or a GeometryCollection
    /// of areas only).
    MultiPolygon {
        /// The member areas; areas and perimeters add up over them.
        polygons: Vec<Polygon>,
    },
    /// Open line (freehand line, polyline, ruler with two points).
    Polyline {
        /// The vertices in drawing order, level-0 pixels; not closed (GeoJSON `LineString`).
        points: Vec<Point>,
    },
}

/// Microns per level-0 pixel along x and y.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelSize {
    /// Width of one level-0 pixel in µm (the slide's mpp x). Measurements treat a value that is
    /// not positive and finite as unknown.
    pub x: f64,
    /// Height of one level-0 pixel in µm (mpp y); may differ from `x`.
    pub y: f64,
}

/// What a measurement is expressed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// µm and µm².
    Microns,
    /// Level-0 pixels, because the slide does not say its pixel size.
    Pixels,
}

/// The size of a shape, from [`Geometry::measure`] or [`crate::annotations::Annotation::measure`]:
/// only the quantities that apply to the shape are `Some`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Measurement {
    /// Whether lengths are µm and areas µm², or level-0 px and px² (unknown pixel size).
    pub unit: Unit,
    /// Enclosed area (holes subtracted) in µm² or px²; `Some` for rectangles, ellipses and
    /// polygons, None for lines and points.
    pub area: Option<f64>,
    /// Boundary length including hole boundaries, in µm or px; `Some` for areas only.
    pub perimeter: Option<f64>,
    /// Length of an open line in µm or px; `Some` for polylines only.
    pub length: Option<f64>,
    /// Number of points; `Some` for point sets only.
    pub points: Option<usize>,
}

/// Twice the signed shoelace area of a closed ring.
fn ring_area2(ring: &[Point]) -> f64 {
    if ring.len() < 3 {
        return 0.0;
    }
    let mut sum = 0.0;
    for (i, a) in ring.iter().enumerate() {
        let b = ring[(i + 1) % ring.len()];
        sum += a[0] * b[1] - b[0] * a[1];
    }
    sum
}

fn path_length(points: &[Point], closed: bool, s: PixelSize) -> f64 {
    if points.len() < 2 {
        return 0.0;
    }
    let segment = |a: Point, b: Point| ((b[0] - a[0]) * s.x).hypot((b[1] - a[1]) * s.y);
    let open: f64 = points.windows(2).map(|w| segment(w[0], w[1])).sum();
    if closed && points.len() > 2 {
        open + segment(points[points.len() - 1], points[0])
    } else {
        open
    }
}

fn polygon_area(p: &Polygon) -> f64 {
    (ring_area2(&p.exterior).abs() - p.holes.iter().map(|h| ring_area2(h).abs()).sum::<f64>()) / 2.0
}

fn polygon_perimeter(p: &Polygon, s: PixelSize) -> f64 {
    path_length(&p.exterior, true, s) + p.holes.iter().map(|h| path_length(h, true, s)).sum::<f64>()
}

/// Exact perimeter of an ellipse with semi-axes `a` and `b` by the arithmetic-geometric mean
/// (Gauss-Kummer): converges to machine precision in a handful of steps.
fn ellipse_perimeter(a: f64, b: f64) -> f64 {
    let (a, b) = (a.max(b), a.min(b));
    if a == 0.0 {
        return 0.0;
    }
    if b == 0.0 {
        return 4.0 * a;
    }
    let (mut an, mut bn) = (a, b);
    let mut sum = (a * a - b * b) / 2.0;
    let mut weight = 1.0;
    for _ in 0..64 {
        let c = (an - bn) / 2.0;
        (an, bn) = ((an + bn) / 2.0, (an * bn).sqrt());
        sum += weight * c * c;
        weight *= 2.0;
        if c <= 1e-17 * an {
            break;
        }
    }
    2.0 * std::f64::consts::PI * (a * a - sum) / an
}

/// A pixel size measurements can use: positive and finite along both axes.
fn usable(pixel_size: Option<PixelSize>) -> Option<PixelSize> {
    pixel_size.filter(|p| p.x > 0.0 && p.y > 0.0 && p.x.is_finite() && p.y.is_finite())
}

impl Unit {
    /// The unit measurements with this pixel size are in: microns when it is usable, else pixels
    /// (whatever there is to measure, so an empty table says the same as a full one).
    pub fn for_pixel_size(pixel_size: Option<PixelSize>) -> Unit {
        if usable(pixel_size).is_some() {
            Unit::Microns
        } else {
            Unit::Pixels
        }
    }
}

impl Geometry {
    /// Measure in microns when the pixel size is known, else in pixels.
    pub fn measure(&self, pixel_size: Option<PixelSize>) -> Measurement {
        let (unit, s) = match usable(pixel_size) {
            Some(p) => (Unit::Microns, p),
            None => (Unit::Pixels, PixelSize { x: 1.0, y: 1.0 }),
        };
        let area_scale = s.x * s.y;
        let none = Measurement { unit, area: None, perimeter: None, length: None, points: None };
        match self {
            Geometry::Points { points } => Measurement { points: Some(points.len()), ..none },
            Geometry::Rectangle { width, height, .. } => Measurement {
                area: Some(width.abs() * height.abs() * area_scale),
                perimeter: Some(2.0 * (width.abs() * s.x + height.abs() * s.y)),
                ..none
            },
            Geometry::Ellipse { rx, ry, .. } => {
                let (a, b) = (rx.abs() * s.x, ry.abs() * s.y);
                Measurement {
                    area: Some(std::f64::consts::PI * a * b),
                    perimeter: Some(ellipse_perimeter(a, b)),
                    ..none
                }
            }
            Geometry::Polygon(p) => Measurement {
                area: Some(polygon_area(p) * area_scale),
                perimeter: Some(polygon_perimeter(p, s)),
                ..none
            },
            Geometry::MultiPolygon { polygons } => Measurement {
                area: Some(polygons.iter().map(polygon_area).sum::<f64>() * area_scale),
                perimeter: Some(polygons.iter().map(|p| polygon_perimeter(p, s)).sum()),
                ..none
            },
            Geometry::Polyline { points } => Measurement { length: Some(path_length(points, false, s)), ..none },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MPP: Option<PixelSize> = Some(PixelSize { x: 0.5, y: 0.25 });

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
    }

    #[test]
    fn rectangle_and_ellipse_are_exact() {
        let r = Geometry::Rectangle { x: 10.0, y: 20.0, width: 100.0, height: 40.0 }.measure(MPP);
        assert_eq!(r.unit, Unit::Microns);
        assert!(close(r.area, 100.0 * 0.5 * 40.0 * 0.25));
        assert!(close(r.perimeter, 2.0 * (50.0 + 10.0)));
        let e =
            Geometry::Ellipse { cx: 0.0, cy: 0.0, rx: 100.0, ry: 100.0 }.measure(Some(PixelSize { x: 0.5, y: 0.5 }));
        assert!(close(e.area, std::f64::consts::PI * 50.0 * 50.0));
        assert!(close(e.perimeter, 2.0 * std::f64::consts::PI * 50.0), "a circle's perimeter is exact");
        // 5 × 3 ellipse: 25.526998863398... (numerical integral of the complete elliptic integral).
        let e = Geometry::Ellipse { cx: 0.0, cy: 0.0, rx: 10.0, ry: 12.0 }.measure(Some(PixelSize { x: 0.5, y: 0.25 }));
        assert!(close(e.perimeter, 25.526_998_863_398), "{:?}", e.perimeter);
        assert!(close(e.area, std::f64::consts::PI * 15.0));
        // A flat ellipse is twice its long axis.
        let flat = Geometry::Ellipse { cx: 0.0, cy: 0.0, rx: 10.0, ry: 0.0 }.measure(None);
        assert!(close(flat.perimeter, 40.0));
    }

    #[test]
    fn polygon_with_hole_shoelace() {
        let square =
            |x0: f64, y0: f64, side: f64| vec![[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]];
        let mut hole = square(2.0, 2.0, 2.0);
        hole.reverse(); // orientation must not matter
        let p = Geometry::Polygon(Polygon { exterior: square(0.0, 0.0, 10.0), holes: vec![hole] });
        let m = p.measure(None);
        assert_eq!(m.unit, Unit::Pixels);
        assert!(close(m.area, 100.0 - 4.0));
        assert!(close(m.perimeter, 40.0 + 8.0), "hole boundaries count");
        let m = p.measure(MPP);
        assert!(close(m.area, 96.0 * 0.125));
        let multi = Geometry::MultiPolygon {
            polygons: vec![
                Polygon { exterior: square(0.0, 0.0, 1.0), holes: vec![] },
                Polygon { exterior: square(5.0, 5.0, 2.0), holes: vec![] },
            ],
        };
        assert!(close(multi.measure(None).area, 5.0));
    }

    #[test]
    fn lines_and_points() {
        let ruler =
            Geometry::Polyline { points: vec![[0.0, 0.0], [30.0, 40.0]] }.measure(Some(PixelSize { x: 1.0, y: 1.0 }));
        assert!(close(ruler.length, 50.0));
        // Anisotropic pixels: 30 px in x at 0.5 µm and 40 px in y at 0.25 µm = a 15-10 right triangle.
        let anisotropic = Geometry::Polyline { points: vec![[0.0, 0.0], [30.0, 40.0]] }.measure(MPP);
        assert!(close(anisotropic.length, 15f64.hypot(10.0)));
        let cells = Geometry::Points { points: vec![[1.0, 1.0]; 7] }.measure(MPP);
        assert_eq!((cells.points, cells.area), (Some(7), None));
        // Unknown or nonsense pixel sizes measure in pixels and say so.
        assert_eq!(
            Geometry::Polyline { points: vec![] }.measure(Some(PixelSize { x: f64::NAN, y: 1.0 })).unit,
            Unit::Pixels
        );
    }
}
