//! The measurement table: one row per annotation and totals per class, as the viewer shows them
//! and the CLI exports them (CSV or JSON). Units follow the measurements: µm when the pixel size is
//! known, level-0 pixels otherwise, and the column names say which.

use crate::text::csv_field;
use serde_json::{json, Map, Value};

use super::geometry::{Measurement, PixelSize, Unit};
use super::model::{Annotation, AnnotationId, ObjectKind};

/// One annotation's measurements.
#[derive(Clone, Debug)]
pub struct MeasuredRow {
    /// The annotation's id in its document (for selecting it from the table).
    pub id: AnnotationId,
    /// 1-based position in the document.
    pub index: usize,
    /// The annotation's name; empty when it has none.
    pub name: String,
    /// The class name; None for an unclassified annotation.
    pub class: Option<String>,
    /// [`super::Geometry::kind_name`].
    pub kind: &'static str,
    /// Annotation, detection, cell or tile.
    pub object: ObjectKind,
    /// Its area, perimeter, length or point count, in µm (µm²) or level-0 px (px²) as
    /// `measurement.unit` says.
    pub measurement: Measurement,
    /// A ruler ([`Annotation::is_ruler`]): a measurement, not counted in any class's totals.
    pub ruler: bool,
}

/// The sums over one class (`None`: the unclassified annotations). Sums count only the
/// annotations a measure applies to (areas of areas, lengths of lines, points of point sets).
#[derive(Clone, Debug, Default)]
pub struct ClassTotal {
    /// The class name; None for the unclassified annotations (and for the rulers' total).
    pub class: Option<String>,
    /// How many objects of the class (every kind, of any shape).
    pub count: usize,
    /// Summed area of the class's areas, in µm² or px² (the rows' unit); 0 when none has one.
    pub area: f64,
    /// Summed perimeter of the class's areas, in µm or px.
    pub perimeter: f64,
    /// Summed length of the class's open lines, in µm or px.
    pub length: f64,
    /// Summed count of the class's point-set points.
    pub points: usize,
    /// How many of `count` are of each [`ObjectKind`] (indexed by it).
    pub objects: [usize; 4],
}

impl ClassTotal {
    /// "2 annotations, 1 cell": the kinds counted, in [`ObjectKind::ALL`] order.
    pub fn objects_text(&self) -> String {
        ObjectKind::ALL
            .iter()
            .filter(|k| self.objects[**k as usize] > 0)
            .map(|k| {
                let n = self.objects[*k as usize];
                format!("{n} {}{}", k.name(), if n == 1 { "" } else { "s" })
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `{"annotation": 2, "cell": 1}`: the kinds counted.
    fn objects_json(&self) -> Value {
        let m: Map<String, Value> = ObjectKind::ALL
            .iter()
            .filter(|k| self.objects[**k as usize] > 0)
            .map(|k| (k.name().to_string(), json!(self.objects[*k as usize])))
            .collect();
        Value::Object(m)
    }
}

/// Measure every annotation, in document order.
pub fn measure_all(annotations: &[impl AsRef<Annotation>], pixel_size: Option<PixelSize>) -> Vec<MeasuredRow> {
    annotations
        .iter()
        .map(AsRef::as_ref)
        .enumerate()
        .map(|(i, a)| MeasuredRow {
            id: a.id,
            index: i + 1,
            name: a.name.clone(),
            class: a.class.clone(),
            kind: a.geometry.kind_name(),
            object: a.kind,
            measurement: a.measure(pixel_size),
            ruler: a.is_ruler(),
        })
        .collect()
}

/// One total per class, sorted by name (case-insensitively, then exactly), unclassified last.
/// Rulers are measurements, not annotations of a class: they are left out (see [`ruler_total`]).
pub fn class_totals(rows: &[MeasuredRow]) -> Vec<ClassTotal> {
    let mut totals: Vec<ClassTotal> = Vec::new();
    for row in rows.iter().filter(|r| !r.ruler) {
        let i = match totals.iter().position(|t| t.class == row.class) {
            Some(i) => i,
            None => {
                totals.push(ClassTotal {
                    class: row.class.clone(),
                    count: 0,
                    area: 0.0,
                    perimeter: 0.0,
                    length: 0.0,
                    points: 0,
                    objects: [0; 4],
                });
                totals.len() - 1
            }
        };
        let t = &mut totals[i];
        let m = &row.measurement;
        t.count += 1;
        t.objects[row.object as usize] += 1;
        t.area += m.area.unwrap_or(0.0);
        t.perimeter += m.perimeter.unwrap_or(0.0);
        t.length += m.length.unwrap_or(0.0);
        t.points += m.points.unwrap_or(0);
    }
    totals.sort_by(|a, b| class_order(a.class.as_deref(), b.class.as_deref()));
    totals
}

/// The order classes are listed in: by name, case-insensitive then exact; the unclassified
/// (`None`) last.
pub fn class_order(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.to_lowercase().cmp(&y.to_lowercase()).then_with(|| x.cmp(y)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// The rulers' count and summed length (`class` is `None`), if there are any.
pub fn ruler_total(rows: &[MeasuredRow]) -> Option<ClassTotal> {
    let rulers: Vec<&MeasuredRow> = rows.iter().filter(|r| r.ruler).collect();
    (!rulers.is_empty()).then(|| ClassTotal {
        class: None,
        count: rulers.len(),
        area: 0.0,
        perimeter: 0.0,
        length: rulers.iter().map(|r| r.measurement.length.unwrap_or(0.0)).sum(),
        points: 0,
        objects: [rulers.len(), 0, 0, 0],
    })
}

/// Column names for area, perimeter and length in `unit`.
fn unit_keys(unit: Unit) -> [&'static str; 3] {
    match unit {
        Unit::Microns => ["area_um2", "perimeter_um", "length_um"],
        Unit::Pixels => ["area_px2", "perimeter_px", "length_px"],
    }
}

fn csv_number(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The rows, a blank line, then the per-class totals. Fields that do not apply are empty; the
/// unclassified class is an empty field. `unit` is the pixel size's ([`Unit::for_pixel_size`]),
/// the rows' whenever there are any. Lines end in CRLF (RFC 4180).
pub fn to_csv(rows: &[MeasuredRow], totals: &[ClassTotal], unit: Unit) -> String {
    let [area, perimeter, length] = unit_keys(unit);
    let mut out = format!("index,name,class,geometry,{area},{perimeter},{length},points,object\r\n");
    for r in rows {
        let m = &r.measurement;
        out += &[
            r.index.to_string(),
            csv_field(&r.name),
            csv_field(r.class.as_deref().unwrap_or_default()),
            csv_field(r.kind),
            csv_number(m.area),
            csv_number(m.perimeter),
            csv_number(m.length),
            m.points.map(|p| p.to_string()).unwrap_or_default(),
            r.object.name().to_string(),
        ]
        .join(",");
        out += "\r\n";
    }
    out += &format!("\r\nclass,count,{area},{perimeter},{length},points\r\n");
    for t in totals {
        out += &[
            csv_field(t.class.as_deref().unwrap_or_default()),
            t.count.to_string(),
            t.area.to_string(),
            t.perimeter.to_string(),
            t.length.to_string(),
            t.points.to_string(),
        ]
        .join(",");
        out += "\r\n";
    }
    out
}

/// `{"unit", "features": [...], "by_class": [...]}`; a feature has the measurement keys that
/// apply to it and its `object` type, `class` is null when it has none, and a class total counts
/// its `objects` by type. `unit` as for [`to_csv`].
pub fn to_json(rows: &[MeasuredRow], totals: &[ClassTotal], unit: Unit) -> Value {
    let [area, perimeter, length] = unit_keys(unit);
    let features: Vec<Value> = rows
        .iter()
        .map(|r| {
            let m = &r.measurement;
            let mut f = Map::new();
            f.insert("name".into(), json!(r.name));
            f.insert("class".into(), json!(r.class));
            f.insert("geometry".into(), json!(r.kind));
            f.insert("object".into(), json!(r.object.name()));
            for (key, value) in [(area, m.area), (perimeter, m.perimeter), (length, m.length)] {
                if let Some(v) = value {
                    f.insert(key.into(), json!(v));
                }
            }
            if let Some(p) = m.points {
                f.insert("points".into(), json!(p));
            }
            Value::Object(f)
        })
        .collect();
    let by_class: Vec<Value> = totals
        .iter()
        .map(|t| {
            json!({
                "class": t.class,
                "count": t.count,
                area: t.area,
                perimeter: t.perimeter,
                length: t.length,
                "points": t.points,
                "objects": t.objects_json(),
            })
        })
        .collect();
    json!({ "unit": unit, "features": features, "by_class": by_class })
}

/// Re-exported: the viewer and the measurement table show numbers as the report page does.
pub use crate::text::{group_digits, group_thousands};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::{AnnotationClass, Geometry};

    fn sample() -> Vec<Annotation> {
        let tumor = AnnotationClass::new("Tumor", [200, 0, 0]);
        let stroma = AnnotationClass::new("stroma, \"loose\"", [0, 200, 0]);
        let mut rect =
            Annotation::new(Geometry::Rectangle { x: 0.0, y: 0.0, width: 10.0, height: 20.0 }).with_class(Some(&tumor));
        rect.name = "box, big".into();
        vec![
            rect,
            Annotation::new(Geometry::Points { points: vec![[1.0, 1.0]; 3] }),
            Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [30.0, 40.0]] }).with_class(Some(&stroma)),
            Annotation::new(Geometry::Rectangle { x: 5.0, y: 5.0, width: 2.0, height: 2.0 }).with_class(Some(&tumor)),
        ]
    }

    #[test]
    fn rows_and_totals() {
        let rows = measure_all(&sample(), Some(PixelSize { x: 0.5, y: 0.5 }));
        assert_eq!(rows.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(rows[2].kind, "Line");
        let totals = class_totals(&rows);
        let names: Vec<_> = totals.iter().map(|t| t.class.as_deref()).collect();
        assert_eq!(names, [Some("stroma, \"loose\""), Some("Tumor"), None]);
        assert_eq!((totals[1].count, totals[1].area), (2, (200.0 + 4.0) * 0.25));
        assert_eq!(totals[1].perimeter, (60.0 + 8.0) * 0.5);
        assert_eq!(totals[0].length, 25.0);
        assert_eq!((totals[2].count, totals[2].points, totals[2].area), (1, 3, 0.0));
    }

    #[test]
    fn rulers_are_measurements_not_class_members() {
        let tumor = AnnotationClass::new("Tumor", [200, 0, 0]);
        let mut all = sample();
        // A ruler as older versions drew it (with the current class) and one as drawn now.
        let mut old =
            Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [3.0, 4.0]] }).with_class(Some(&tumor));
        old.name = "Ruler".into();
        let mut new = Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [6.0, 8.0]] });
        new.name = "Ruler".into();
        all.push(old);
        all.push(new);
        let pixel_size = Some(PixelSize { x: 0.5, y: 0.5 });
        let rows = measure_all(&all, pixel_size);
        let totals = class_totals(&rows);
        let tumor_total = totals.iter().find(|t| t.class.as_deref() == Some("Tumor")).map(|t| (t.count, t.length));
        assert_eq!(tumor_total, Some((2, 0.0)), "the two rectangles, not the ruler");
        assert_eq!(totals.iter().find(|t| t.class.is_none()).map(|t| t.count), Some(1), "the points, not the ruler");
        let rulers = ruler_total(&rows).unwrap_or_else(|| panic!("no ruler total"));
        assert_eq!((rulers.count, rulers.length), (2, 2.5 + 5.0));
        // The report's per-class summary follows the same rule.
        let summary = crate::report::store::summarise_annotations(&all, pixel_size);
        let counts: Vec<(String, u64)> = summary.iter().map(|s| (s.class.clone(), s.count)).collect();
        assert_eq!(counts, [("stroma, \"loose\"".to_string(), 1), ("Tumor".to_string(), 2), (String::new(), 1)]);
        // A line with another name, or with three vertices, is an ordinary annotation.
        let mut line = Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]] });
        line.name = "Ruler".into();
        assert!(!line.is_ruler());
    }

    #[test]
    fn csv_quotes_and_names_units() {
        let rows = measure_all(&sample(), Some(PixelSize { x: 0.5, y: 0.5 }));
        let csv = to_csv(&rows, &class_totals(&rows), Unit::Microns);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], "index,name,class,geometry,area_um2,perimeter_um,length_um,points,object");
        assert_eq!(lines[1], "1,\"box, big\",Tumor,Rectangle,50,30,,,annotation");
        assert_eq!(lines[3], "3,,\"stroma, \"\"loose\"\"\",Line,,,25,,annotation");
        assert_eq!(lines[5], "");
        assert_eq!(lines[6], "class,count,area_um2,perimeter_um,length_um,points");
        assert_eq!(lines[9], ",1,0,0,0,3");
        let pixels = measure_all(&sample(), None);
        assert!(to_csv(&pixels, &[], Unit::Pixels)
            .starts_with("index,name,class,geometry,area_px2,perimeter_px,length_px,points,object\r\n"));
        // With a pixel size and nothing measured, the unit is still microns.
        let unit = Unit::for_pixel_size(Some(PixelSize { x: 0.5, y: 0.5 }));
        assert!(to_csv(&[], &[], unit).starts_with("index,name,class,geometry,area_um2,"));
        assert_eq!(to_json(&[], &[], unit)["unit"], "microns");
    }

    #[test]
    fn json_has_only_the_keys_that_apply() {
        let rows = measure_all(&sample(), None);
        let v = to_json(&rows, &class_totals(&rows), Unit::Pixels);
        assert_eq!(v["unit"], "pixels");
        assert_eq!(v["features"][0]["area_px2"], 200.0);
        assert!(v["features"][0].get("length_px").is_none());
        assert!(v["features"][1].get("area_px2").is_none());
        assert_eq!(v["features"][1]["points"], 3);
        assert_eq!(v["features"][1]["class"], Value::Null);
        assert_eq!(v["features"][2]["length_px"], 50.0);
        assert_eq!(v["by_class"][2]["class"], Value::Null);
        assert_eq!(v["by_class"][1]["area_px2"], 204.0);
    }
}
