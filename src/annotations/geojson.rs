//! QuPath-compatible GeoJSON. Export writes a FeatureCollection of annotation Features;
//! rectangles and ellipses are Polygons with their exact shape in `properties.shape`. Import
//! reads the dialects QuPath has written over the years: a FeatureCollection, a bare array of
//! Features, a single Feature, `classification.color` or the older packed `colorRGB`. Features
//! that cannot be read are skipped and counted; a truncated file gives back the features before
//! the cut.

use serde_json::{json, Map, Value};

use super::geometry::{Geometry, Point, Polygon};
use super::model::{Annotation, AnnotationClass};

/// Vertices used to write an ellipse as a polygon for other tools.
pub const ELLIPSE_SEGMENTS: usize = 128;

/// Coordinates beyond this (in level-0 pixels) are taken as corrupt: the largest slides are a few
/// hundred thousand pixels wide.
pub const MAX_COORDINATE: f64 = 1e8;

/// Problems listed by name in an import report; the rest are counted.
const PROBLEMS_LISTED: usize = 10;

/// What an import read: the annotations, the classes they use, and what it skipped and why.
#[derive(Debug, Default)]
pub struct Import {
    pub annotations: Vec<Annotation>,
    pub classes: Vec<AnnotationClass>,
    /// Features that could not be read.
    pub skipped: usize,
    /// The first problems, one line each ("feature 3: …").
    pub problems: Vec<String>,
    /// The file stopped early (truncated JSON); the annotations are those before the cut.
    pub truncated: bool,
    /// Where a truncated file broke (the parser's words, with line and column).
    pub cut: Option<String>,
}

impl Import {
    fn problem(&mut self, message: String) {
        self.skipped += 1;
        if self.problems.len() < PROBLEMS_LISTED {
            self.problems.push(message);
        }
    }

    /// One line for the user: "12 annotations; 2 skipped (feature 3: …)".
    pub fn summary(&self) -> String {
        let mut s = format!("{} annotations", self.annotations.len());
        if self.truncated {
            s += "; the file is truncated, features before the cut were read";
        }
        if self.skipped > 0 {
            s += &format!("; {} skipped ({})", self.skipped, self.problems.join("; "));
        }
        s
    }
}

/// Why a whole file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AnnotationFileError {
    pub path: String,
    pub message: String,
}

impl AnnotationFileError {
    pub fn new(path: &std::path::Path, message: impl Into<String>) -> Self {
        AnnotationFileError { path: path.display().to_string(), message: crate::error::printable(&message.into()) }
    }
}

/// Write annotations as a QuPath FeatureCollection.
pub fn to_geojson(annotations: &[impl AsRef<Annotation>], classes: &[AnnotationClass]) -> Value {
    let features: Vec<Value> = annotations.iter().map(|a| feature(a.as_ref(), classes)).collect();
    json!({ "type": "FeatureCollection", "features": features })
}

/// Serialise to bytes (compact: sidecars of 50,000 annotations stay small and quick to write).
pub fn to_geojson_bytes(annotations: &[impl AsRef<Annotation>], classes: &[AnnotationClass]) -> Vec<u8> {
    serde_json::to_vec(&to_geojson(annotations, classes)).unwrap_or_default()
}

fn closed_ring(ring: &[Point]) -> Value {
    let mut coords: Vec<Value> = ring.iter().map(|p| json!([p[0], p[1]])).collect();
    if let (Some(first), true) = (ring.first(), ring.len() > 1) {
        coords.push(json!([first[0], first[1]]));
    }
    Value::Array(coords)
}

fn polygon_rings(p: &Polygon) -> Value {
    Value::Array(std::iter::once(&p.exterior).chain(&p.holes).map(|r| closed_ring(r)).collect())
}

fn geometry_json(g: &Geometry) -> (Value, Option<Value>) {
    let points = |ps: &[Point]| Value::Array(ps.iter().map(|p| json!([p[0], p[1]])).collect());
    match g {
        Geometry::Points { points: ps } if ps.len() == 1 => {
            (json!({"type": "Point", "coordinates": [ps[0][0], ps[0][1]]}), None)
        }
        Geometry::Points { points: ps } => (json!({"type": "MultiPoint", "coordinates": points(ps)}), None),
        Geometry::Polyline { points: ps } => (json!({"type": "LineString", "coordinates": points(ps)}), None),
        Geometry::Polygon(p) => (json!({"type": "Polygon", "coordinates": polygon_rings(p)}), None),
        Geometry::MultiPolygon { polygons } => {
            let coords: Vec<Value> = polygons.iter().map(polygon_rings).collect();
            (json!({"type": "MultiPolygon", "coordinates": coords}), None)
        }
        Geometry::Rectangle { x, y, width, height } => {
            let poly = g.as_polygon(4).unwrap_or(Polygon { exterior: vec![], holes: vec![] });
            (
                json!({"type": "Polygon", "coordinates": polygon_rings(&poly)}),
                Some(json!({"type": "rectangle", "x": x, "y": y, "width": width, "height": height})),
            )
        }
        Geometry::Ellipse { cx, cy, rx, ry } => {
            let poly = g.as_polygon(ELLIPSE_SEGMENTS).unwrap_or(Polygon { exterior: vec![], holes: vec![] });
            (
                json!({"type": "Polygon", "coordinates": polygon_rings(&poly)}),
                Some(json!({"type": "ellipse", "cx": cx, "cy": cy, "rx": rx, "ry": ry})),
            )
        }
    }
}

fn feature(a: &Annotation, classes: &[AnnotationClass]) -> Value {
    let (geometry, shape) = geometry_json(&a.geometry);
    let mut props = Map::new();
    props.insert("objectType".into(), json!("annotation"));
    if !a.name.is_empty() {
        props.insert("name".into(), json!(a.name));
    }
    if let Some(class) = &a.class {
        let color = classes.iter().find(|c| &c.name == class).map(|c| c.color).or(a.class_color).unwrap_or([255, 0, 0]);
        props.insert("classification".into(), json!({"name": class, "color": color}));
    }
    if a.locked {
        props.insert("isLocked".into(), json!(true));
    }
    if !a.note.is_empty() {
        props.insert("description".into(), json!(a.note));
    }
    if let Some(shape) = shape {
        props.insert("shape".into(), shape);
    }
    json!({"type": "Feature", "id": a.uuid, "geometry": geometry, "properties": props})
}

/// Read GeoJSON text. Errors only when nothing can be read at all; otherwise the import lists
/// what it skipped.
pub fn from_geojson_str(text: &str) -> Result<Import, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => from_value(value),
        Err(e) if e.is_eof() => salvage_truncated(text)
            .map(|mut import| {
                import.cut = Some(format!("the file ends early: {e}"));
                import
            })
            .ok_or_else(|| format!("not valid JSON: {e}")),
        Err(e) => match non_finite_as_null(text) {
            // Python's json module writes NaN and Infinity: read the file with them as nulls, so
            // only the features holding them are skipped.
            Some(cleaned) => match serde_json::from_str::<Value>(&cleaned) {
                Ok(value) => from_value(value),
                Err(_) => Err(format!("not valid JSON: {e}")),
            },
            None => Err(format!("not valid JSON: {e}")),
        },
    }
}

/// `text` with bare `NaN`, `Infinity` and `-Infinity` (outside strings) replaced by `null`, or
/// None when it has none.
fn non_finite_as_null(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| rest.starts_with(t)) {
            out.push_str("null");
            rest = &rest[token.len()..];
            changed = true;
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
}

/// Read a GeoJSON file. The error names the file.
pub fn read_geojson_file(path: &std::path::Path) -> Result<Import, AnnotationFileError> {
    let bytes = crate::files::read_regular(path, super::MAX_ANNOTATION_FILE_BYTES)
        .map_err(|e| AnnotationFileError::new(path, e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| AnnotationFileError::new(path, format!("not UTF-8 text: {e}")))?;
    from_geojson_str(&text).map_err(|m| AnnotationFileError::new(path, m))
}

fn from_value(value: Value) -> Result<Import, String> {
    let features: Vec<Value> = match value {
        Value::Array(items) => items,
        Value::Object(mut obj) => match obj.get("type").and_then(Value::as_str) {
            Some("FeatureCollection") => match obj.remove("features") {
                Some(Value::Array(items)) => items,
                Some(_) => return Err("\"features\" is not an array".into()),
                None => return Err("a FeatureCollection without \"features\"".into()),
            },
            Some("Feature") => vec![Value::Object(obj)],
            Some(other) => return Err(format!("expected a FeatureCollection or Feature, found type \"{other}\"")),
            None => return Err("expected GeoJSON (a FeatureCollection, a Feature or an array of Features)".into()),
        },
        _ => return Err("expected GeoJSON (a FeatureCollection, a Feature or an array of Features)".into()),
    };
    let mut import = Import::default();
    for (i, f) in features.iter().enumerate() {
        read_feature(f, i, &mut import);
    }
    Ok(import)
}

/// A truncated file: read the complete features before the cut. Finds the features array (or
/// a bare array) and parses its elements one by one.
fn salvage_truncated(text: &str) -> Option<Import> {
    let start = match text.find("\"features\"") {
        Some(k) => k + text[k..].find('[')?,
        None => text.find('[').filter(|&k| text[..k].trim().is_empty())?,
    };
    let mut rest = &text[start + 1..];
    let mut import = Import { truncated: true, ..Default::default() };
    let mut index = 0;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() || rest.starts_with(']') {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                let used = stream.byte_offset();
                read_feature(&value, index, &mut import);
                index += 1;
                rest = &rest[used..];
            }
            _ => break,
        }
    }
    Some(import)
}

fn number(v: &Value) -> Result<f64, String> {
    let x = v.as_f64().ok_or_else(|| format!("coordinate {v} is not a number"))?;
    if !x.is_finite() || x.abs() > MAX_COORDINATE {
        return Err(format!("coordinate {x} is out of range"));
    }
    Ok(x)
}

fn point(v: &Value) -> Result<Point, String> {
    match v.as_array().map(Vec::as_slice) {
        Some([x, y, ..]) => Ok([number(x)?, number(y)?]),
        _ => Err(format!("position {} is not [x, y]", short(v))),
    }
}

fn points(v: &Value) -> Result<Vec<Point>, String> {
    v.as_array().ok_or_else(|| format!("{} is not a list of positions", short(v)))?.iter().map(point).collect()
}

/// A ring without its closing repeat of the first vertex.
fn ring(v: &Value) -> Result<Vec<Point>, String> {
    let mut r = points(v)?;
    if r.len() > 1 && r.first() == r.last() {
        r.pop();
    }
    if r.len() < 3 {
        return Err(format!("a polygon ring has {} distinct vertices (at least 3 needed)", r.len()));
    }
    Ok(r)
}

fn polygon(v: &Value) -> Result<Polygon, String> {
    let rings = v.as_array().ok_or("polygon coordinates are not a list of rings")?;
    let mut rings = rings.iter().map(ring);
    let exterior = rings.next().ok_or("a polygon without rings")??;
    Ok(Polygon { exterior, holes: rings.collect::<Result<_, _>>()? })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn read_geometry(g: &Value) -> Result<Geometry, String> {
    let kind = g.get("type").and_then(Value::as_str).ok_or("geometry without a \"type\"")?;
    let coords = g.get("coordinates").ok_or_else(|| format!("{kind} without \"coordinates\""))?;
    Ok(match kind {
        "Point" => Geometry::Points { points: vec![point(coords)?] },
        "MultiPoint" => Geometry::Points { points: points(coords)? },
        "LineString" => {
            let ps = points(coords)?;
            if ps.len() < 2 {
                return Err("a LineString with fewer than 2 positions".into());
            }
            Geometry::Polyline { points: ps }
        }
        "Polygon" => Geometry::Polygon(polygon(coords)?),
        "MultiPolygon" => {
            let polys = coords.as_array().ok_or("MultiPolygon coordinates are not a list")?;
            let polygons = polys.iter().map(polygon).collect::<Result<Vec<_>, _>>()?;
            if polygons.is_empty() {
                return Err("an empty MultiPolygon".into());
            }
            Geometry::MultiPolygon { polygons }
        }
        other => return Err(format!("geometry type {other} is not supported")),
    })
}

/// The exact shape kept by wsiview, if present and sane.
fn read_shape(shape: &Value) -> Option<Geometry> {
    let f = |k: &str| shape.get(k).and_then(Value::as_f64).filter(|v| v.is_finite() && v.abs() <= MAX_COORDINATE);
    match shape.get("type")?.as_str()? {
        "rectangle" => Some(Geometry::Rectangle { x: f("x")?, y: f("y")?, width: f("width")?, height: f("height")? }),
        "ellipse" => Some(Geometry::Ellipse { cx: f("cx")?, cy: f("cy")?, rx: f("rx")?, ry: f("ry")? }),
        _ => None,
    }
}

fn read_color(v: &Value) -> Option<[u8; 3]> {
    if let Some([r, g, b]) = v.as_array().map(Vec::as_slice) {
        let c = |x: &Value| x.as_u64().filter(|&x| x <= 255).map(|x| x as u8);
        return Some([c(r)?, c(g)?, c(b)?]);
    }
    None
}

/// Older QuPath packs colours as one signed ARGB integer.
fn packed_color(v: &Value) -> Option<[u8; 3]> {
    let packed = v.as_i64()? as u32;
    Some([(packed >> 16) as u8, (packed >> 8) as u8, packed as u8])
}

fn read_feature(f: &Value, index: usize, import: &mut Import) {
    let number = index + 1;
    let Some(obj) = f.as_object() else {
        import.problem(format!("feature {number}: not an object"));
        return;
    };
    if let Some(t) = obj.get("type").and_then(Value::as_str) {
        if t != "Feature" {
            import.problem(format!("feature {number}: type \"{t}\" is not a Feature"));
            return;
        }
    }
    let props = obj.get("properties").and_then(Value::as_object);
    let prop = |k: &str| props.and_then(|p| p.get(k));
    // QuPath 0.2 put the object type in "id" ("PathAnnotationObject", "PathDetectionObject", …);
    // later versions put a UUID there and the type in properties.objectType.
    let id = obj.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
    let legacy_kind = id.filter(|s| s.starts_with("Path") && s.ends_with("Object"));
    // Detections, cells and tiles are not annotations; QuPath files can hold millions of them.
    if let Some(kind) = prop("objectType").and_then(Value::as_str) {
        if kind != "annotation" {
            import.problem(format!("feature {number}: objectType \"{kind}\" is not an annotation"));
            return;
        }
    } else if let Some(kind) = legacy_kind.filter(|k| *k != "PathAnnotationObject") {
        import.problem(format!("feature {number}: \"{kind}\" is not an annotation"));
        return;
    }
    let geometry = match obj.get("geometry").map(read_geometry) {
        Some(Ok(g)) => g,
        Some(Err(e)) => {
            import.problem(format!("feature {number}: {e}"));
            return;
        }
        None => {
            import.problem(format!("feature {number}: no geometry"));
            return;
        }
    };
    // The exact shape wins if it agrees with the polygon written beside it (another tool may have
    // edited the polygon and left the property behind).
    let geometry = match prop("shape").and_then(read_shape) {
        Some(shape) if bounds_agree(&shape.bounds(), &geometry.bounds()) => shape,
        _ => geometry,
    };
    let mut annotation = Annotation::new(geometry);
    if let Some(id) = id.filter(|_| legacy_kind.is_none()) {
        annotation.uuid = id.to_string();
    }
    annotation.name = prop("name").and_then(Value::as_str).unwrap_or_default().to_string();
    annotation.note =
        prop("description").or_else(|| prop("note")).and_then(Value::as_str).unwrap_or_default().to_string();
    annotation.locked = prop("isLocked").and_then(Value::as_bool).unwrap_or(false);
    if let Some(c) = prop("classification") {
        // QuPath writes {"name", "color"}; older versions {"name", "colorRGB"}; some tools a bare string.
        let (name, color) = match c {
            Value::String(s) => (Some(s.clone()), None),
            Value::Object(o) => (
                o.get("name").or_else(|| o.get("names")).and_then(class_name),
                o.get("color").and_then(read_color).or_else(|| o.get("colorRGB").and_then(packed_color)),
            ),
            _ => (None, None),
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            let color = color.unwrap_or(super::model::UNCLASSIFIED_COLOR);
            if !import.classes.iter().any(|c| c.name == name) {
                import.classes.push(AnnotationClass { name: name.clone(), color });
            }
            annotation.class = Some(name);
            annotation.class_color = Some(color);
        }
    }
    import.annotations.push(annotation);
}

/// A class name, or QuPath's derived classes ("names": ["Tumor", "Positive"]) joined with ": ".
fn class_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
            (!parts.is_empty()).then(|| parts.join(": "))
        }
        _ => None,
    }
}

fn bounds_agree(a: &[f64; 4], b: &[f64; 4]) -> bool {
    let tolerance = 0.5 + 1e-3 * (a[2] - a[0]).abs().max((a[3] - a[1]).abs());
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tolerance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_shapes_classes_and_names() {
        let classes = super::super::model::default_classes();
        let mut ellipse = Annotation::new(Geometry::Ellipse { cx: 500.0, cy: 400.0, rx: 120.5, ry: 60.25 })
            .with_class(Some(&classes[0]));
        ellipse.name = "Focus 1".into();
        ellipse.note = "check margin".into();
        ellipse.locked = true;
        let rect = Annotation::new(Geometry::Rectangle { x: 1.0, y: 2.0, width: 30.0, height: 40.0 });
        let holed = Annotation::new(Geometry::Polygon(Polygon {
            exterior: vec![[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]],
            holes: vec![vec![[10.0, 10.0], [20.0, 10.0], [20.0, 20.0]]],
        }))
        .with_class(Some(&classes[1]));
        let line = Annotation::new(Geometry::Polyline { points: vec![[0.5, 0.25], [10.0, 20.0], [30.0, 5.0]] });
        let cells = Annotation::new(Geometry::Points { points: vec![[1.0, 1.0], [2.0, 3.0]] });
        let original = vec![ellipse, rect, holed, line, cells];
        let bytes = to_geojson_bytes(&original.iter().collect::<Vec<_>>(), &classes);
        let import = from_geojson_str(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(import.skipped, 0);
        assert_eq!(import.annotations, original);
        assert_eq!(import.classes, vec![classes[0].clone(), classes[1].clone()]);
    }

    #[test]
    fn truncated_file_gives_back_complete_features() {
        let anns: Vec<Annotation> =
            (0..5).map(|i| Annotation::new(Geometry::Points { points: vec![[f64::from(i), 0.0]] })).collect();
        let text = String::from_utf8(to_geojson_bytes(&anns.iter().collect::<Vec<_>>(), &[])).unwrap();
        let cut = text.rfind("\"Feature\"").unwrap();
        let import = from_geojson_str(&text[..cut]).unwrap();
        assert!(import.truncated);
        assert_eq!(import.annotations.len(), 4);
        assert!(from_geojson_str("{\"type\": \"Featu").is_err());
    }

    #[test]
    fn qupath_0_2_object_types_in_id_and_python_nan() {
        let text = r#"[
          {"type": "Feature", "id": "PathAnnotationObject",
           "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]},
           "properties": {"classification": {"name": "Tumor", "colorRGB": -3670016}, "isLocked": false}},
          {"type": "Feature", "id": "PathDetectionObject",
           "geometry": {"type": "Point", "coordinates": [5, 5]}, "properties": {}},
          {"type": "Feature", "id": "PathAnnotationObject",
           "geometry": {"type": "Point", "coordinates": [NaN, 5]}, "properties": {"name": "bad \"NaN\" here"}},
          {"type": "Feature", "id": "PathAnnotationObject",
           "geometry": {"type": "Point", "coordinates": [7, -Infinity]}, "properties": {}},
          {"type": "Feature", "id": "PathAnnotationObject",
           "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"name": "NaN"}}
        ]"#;
        let import = from_geojson_str(text).expect("readable");
        assert_eq!(import.annotations.len(), 2, "the annotation and the last point: {:?}", import.problems);
        assert_eq!(import.skipped, 3, "a detection and two non-finite coordinates");
        assert!(import.problems.iter().any(|p| p.contains("PathDetectionObject")), "{:?}", import.problems);
        assert_ne!(import.annotations[0].uuid, "PathAnnotationObject", "a type is not an id");
        assert_eq!(import.annotations[0].class.as_deref(), Some("Tumor"));
        assert_eq!(import.annotations[0].class_color, Some([200, 0, 0]));
        assert_eq!(import.annotations[1].name, "NaN", "strings are left alone");
    }
}
