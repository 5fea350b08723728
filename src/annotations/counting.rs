//! Counting fields: a circle or square of a set area in which points are counted (mitoses per
//! 10 high-power fields, cells per mm²), and the count per mm².
//!
//! A counting field is an ordinary annotation named [`COUNTING_FIELD_NAME`] whose shape is an
//! ellipse (a circle in µm: its radii in level-0 px differ when mpp x and y do) or a rectangle
//! (a square in µm), so it is saved, moved and undone like any other; the count is made
//! from the document each time it is shown. Areas are in mm² (1 mm² = 10⁶ µm²) and need the
//! slide's pixel size.
//!
//! High-power fields: "N HPF of diameter D mm" is the area of N circles of diameter D,
//! N·π·(D/2)² mm² (10 HPF of 0.55 mm is 2.376 mm²), as mitotic counts are given in grading
//! systems that define the field by its diameter; the field placed is one circle (or square) of
//! that total area.

use super::geometry::{Geometry, PixelSize, Point};
use super::model::{Annotation, Document, ObjectKind};

/// The name that marks an annotation as a counting field.
pub const COUNTING_FIELD_NAME: &str = "Counting field";

/// The largest counting field: 1,000 mm² (a whole large slide is about 1,500).
pub const MAX_FIELD_MM2: f64 = 1000.0;

/// The field's shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FieldShape {
    /// A circle (in µm).
    #[default]
    Circle,
    /// A square (in µm), sides along the slide's axes.
    Square,
}

/// How big the field is.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FieldArea {
    /// This many mm².
    SquareMillimetres(f64),
    /// `fields` high-power fields of `diameter_mm` each.
    HighPowerFields {
        /// How many fields.
        fields: u32,
        /// Each field's diameter in mm (the eyepiece's field number over the objective's power).
        diameter_mm: f64,
    },
}

impl Default for FieldArea {
    fn default() -> Self {
        FieldArea::HighPowerFields { fields: 10, diameter_mm: 0.55 }
    }
}

impl FieldArea {
    /// The area in mm², if positive, finite and at most [`MAX_FIELD_MM2`].
    pub fn mm2(self) -> Option<f64> {
        let a = match self {
            FieldArea::SquareMillimetres(a) => a,
            FieldArea::HighPowerFields { fields, diameter_mm } => {
                f64::from(fields) * std::f64::consts::PI * (diameter_mm / 2.0).powi(2)
            }
        };
        (a.is_finite() && a > 0.0 && a <= MAX_FIELD_MM2).then_some(a)
    }

    /// "2.376 mm² (10 HPF of 0.55 mm)", or "1.000 mm²".
    pub fn describe(self) -> String {
        let mm2 = self.mm2().map_or_else(|| "?".to_string(), |a| format!("{a:.3} mm²"));
        match self {
            FieldArea::SquareMillimetres(_) => mm2,
            FieldArea::HighPowerFields { fields, diameter_mm } => {
                format!("{mm2} ({fields} HPF of {diameter_mm} mm)")
            }
        }
    }
}

/// The shape of a counting field of `area` centred on `center` (level-0 px). `None` without a
/// usable pixel size or area.
pub fn field_geometry(
    center: Point,
    shape: FieldShape,
    area: FieldArea,
    pixel_size: Option<PixelSize>,
) -> Option<Geometry> {
    let mm2 = area.mm2()?;
    let ps = pixel_size.filter(|p| p.x.is_finite() && p.x > 0.0 && p.y.is_finite() && p.y > 0.0)?;
    let um2 = mm2 * 1e6;
    Some(match shape {
        FieldShape::Circle => {
            let r_um = (um2 / std::f64::consts::PI).sqrt();
            Geometry::Ellipse { cx: center[0], cy: center[1], rx: r_um / ps.x, ry: r_um / ps.y }
        }
        FieldShape::Square => {
            let side_um = um2.sqrt();
            let (w, h) = (side_um / ps.x, side_um / ps.y);
            Geometry::Rectangle { x: center[0] - w / 2.0, y: center[1] - h / 2.0, width: w, height: h }
        }
    })
}

/// A new counting field annotation (see [`field_geometry`]), named for its area.
pub fn new_field(
    center: Point,
    shape: FieldShape,
    area: FieldArea,
    pixel_size: Option<PixelSize>,
) -> Option<Annotation> {
    let mut a = Annotation::new(field_geometry(center, shape, area, pixel_size)?);
    a.name = COUNTING_FIELD_NAME.to_string();
    a.note = area.describe();
    Some(a)
}

/// Whether `a` is a counting field.
pub fn is_field(a: &Annotation) -> bool {
    a.name == COUNTING_FIELD_NAME && matches!(a.geometry, Geometry::Ellipse { .. } | Geometry::Rectangle { .. })
}

/// What a counting field holds.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldCount {
    /// Points inside the field: every point of the point annotations, and the centre of each
    /// imported detection or cell.
    pub total: usize,
    /// The same by class (no class: `None`), by name.
    pub by_class: Vec<(Option<String>, usize)>,
    /// The field's area in mm² (None without a pixel size).
    pub area_mm2: Option<f64>,
}

impl FieldCount {
    /// Points per mm², when the area is known.
    pub fn per_mm2(&self) -> Option<f64> {
        self.area_mm2.filter(|a| *a > 0.0).map(|a| self.total as f64 / a)
    }
}

/// Count what lies inside `field` (a point on its edge counts: inside within 1e-9 px).
pub fn count(doc: &Document, field: &Annotation, pixel_size: Option<PixelSize>) -> FieldCount {
    let b = field.geometry.bounds();
    let inside = |p: Point| field.geometry.hit(p, 1e-9);
    let mut by_class: std::collections::BTreeMap<Option<String>, usize> = Default::default();
    for id in doc.query(b) {
        let Some(a) = doc.get(id) else { continue };
        if a.id == field.id || is_field(a) || a.is_ruler() {
            continue;
        }
        let n = match (&a.geometry, a.kind) {
            (Geometry::Points { points }, _) => points.iter().filter(|p| inside(**p)).count(),
            (g, ObjectKind::Detection | ObjectKind::Cell) => {
                let c = g.bounds();
                usize::from(inside([(c[0] + c[2]) / 2.0, (c[1] + c[3]) / 2.0]))
            }
            _ => 0,
        };
        if n > 0 {
            *by_class.entry(a.class.clone()).or_default() += n;
        }
    }
    let measured = field.measure(pixel_size);
    let area_mm2 = measured.area.filter(|_| measured.unit == super::geometry::Unit::Microns).map(|um2| um2 / 1e6);
    FieldCount { total: by_class.values().sum(), by_class: by_class.into_iter().collect(), area_mm2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_high_power_fields_of_half_a_millimetre() {
        let a = FieldArea::HighPowerFields { fields: 10, diameter_mm: 0.55 };
        assert!((a.mm2().unwrap_or(0.0) - 2.3758).abs() < 1e-4);
        assert_eq!(a.describe(), "2.376 mm² (10 HPF of 0.55 mm)");
        assert_eq!(FieldArea::SquareMillimetres(0.0).mm2(), None);
        assert_eq!(FieldArea::SquareMillimetres(f64::NAN).mm2(), None);
        assert_eq!(FieldArea::SquareMillimetres(1e6).mm2(), None);
    }

    #[test]
    fn a_field_counts_the_points_inside_and_gives_the_density() {
        let ps = Some(PixelSize { x: 0.5, y: 0.5 });
        // 1 mm² circle at 0.5 µm/px: radius 564.19 µm = 1128.4 px.
        let field = new_field([5000.0, 5000.0], FieldShape::Circle, FieldArea::SquareMillimetres(1.0), ps)
            .unwrap_or_else(|| panic!("no field"));
        let Geometry::Ellipse { rx, .. } = field.geometry else { panic!("not a circle") };
        assert!((rx - 1128.379).abs() < 1e-3, "{rx}");
        let mut doc = Document::new();
        let field_id = doc.add(field);
        let mut mitoses = Annotation::new(Geometry::Points {
            points: vec![[5000.0, 5000.0], [5000.0, 6100.0], [6200.0, 5000.0], [5800.0, 5800.0], [5790.0, 5790.0]],
        });
        mitoses.class = Some("Mitosis".into());
        doc.add(mitoses);
        doc.add(Annotation::new(Geometry::Points { points: vec![[4500.0, 4500.0]] }));
        let field = doc.get(field_id).map(|a| a.as_ref().clone()).unwrap_or_else(|| panic!("gone"));
        let c = count(&doc, &field, ps);
        // Inside: the centre, (5000, 6100) at 1100 px, (5790, 5790) at 1117 px, (4500, 4500);
        // outside: (6200, 5000) at 1200 px and (5800, 5800) at 1131 px.
        assert_eq!(c.total, 4);
        assert_eq!(c.by_class, vec![(None, 1), (Some("Mitosis".into()), 3)]);
        assert!((c.area_mm2.unwrap_or(0.0) - 1.0).abs() < 1e-9);
        assert!((c.per_mm2().unwrap_or(0.0) - 4.0).abs() < 1e-9);
        // A square of 0.25 mm²: 500 µm sides, 1000 px.
        let square = field_geometry([0.0, 0.0], FieldShape::Square, FieldArea::SquareMillimetres(0.25), ps);
        assert_eq!(square, Some(Geometry::Rectangle { x: -500.0, y: -500.0, width: 1000.0, height: 1000.0 }));
        assert_eq!(field_geometry([0.0, 0.0], FieldShape::Square, FieldArea::SquareMillimetres(0.25), None), None);
    }
}
