//! QuPath-compatible GeoJSON. Export writes a FeatureCollection of Features with their
//! `objectType` (annotation, detection, cell, tile), a cell's `nucleusGeometry` and the objects'
//! `measurements`; rectangles and ellipses are Polygons with their exact shape in
//! `properties.shape`. Import reads the dialects QuPath has written over the years: a
//! FeatureCollection, a bare array of Features, a single Feature, the object type in
//! `objectType` or (QuPath 0.2) in `id`, `classification.color` or the older packed `colorRGB`,
//! a class `name` or derived `names`, measurements as a map or a list of `{name, value}`, and
//! GeometryCollections (one object of several members). Features that cannot be read are
//! skipped, each listed with its number and reason; a truncated file gives back the features
//! before the cut.

use serde_json::{json, Map, Value};

use super::error::{read_text_file, AnnotationFileError, FormatError};
use super::geometry::{Geometry, Point, Polygon};
use super::model::{Annotation, AnnotationClass, ObjectKind};

/// Vertices used to write an ellipse as a polygon for other tools.
pub const ELLIPSE_SEGMENTS: usize = 128;

/// Problems listed by name in an import report; the rest are counted.
pub const PROBLEMS_LISTED: usize = 10;

/// One feature an import could not read: its 1-based number in the file ("feature 3") and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SkippedFeature {
    /// 1-based position of the feature in the file (of the `<Annotation>` element for ASAP XML).
    pub index: usize,
    /// Why it could not be read, in plain words ("no geometry"); for ASAP XML it starts with the
    /// element's line ("line 12: …").
    pub reason: String,
}

/// What an import read: the annotations (and QuPath's detections, cells and tiles: see
/// [`Annotation::kind`]), the classes they use, and what it skipped and why.
#[derive(Debug, Default)]
pub struct Import {
    /// The objects read, in file order, with id 0 (a [`crate::annotations::Document`] numbers
    /// them) and coordinates in level-0 pixels as the file gave them.
    pub annotations: Vec<Annotation>,
    /// Each class named in the file once, with the colour the file gave it
    /// ([`crate::annotations::model::UNCLASSIFIED_COLOR`] when it gave none): for GeoJSON in order
    /// of first use; for ASAP XML the listed groups first (used or not), then any group an
    /// annotation names that is not listed. For the caller to add to its class list.
    pub classes: Vec<AnnotationClass>,
    /// Features that could not be read.
    pub skipped: usize,
    /// The first problems, one line each ("feature 3: …").
    pub problems: Vec<String>,
    /// Every feature skipped, with its number and reason.
    pub skipped_features: Vec<SkippedFeature>,
    /// The file stopped early (truncated JSON); the annotations are those before the cut.
    pub truncated: bool,
    /// Where a truncated file broke (the parser's words, with line and column).
    pub cut: Option<String>,
}

impl Import {
    /// Skip feature (or annotation) `index` (1-based) for `reason`; `message` is the line listed
    /// among the first problems ("feature 3: …").
    pub(crate) fn skip(&mut self, index: usize, reason: String, message: String) {
        self.skipped += 1;
        if self.problems.len() < PROBLEMS_LISTED {
            self.problems.push(message);
        }
        self.skipped_features.push(SkippedFeature { index, reason });
    }

    fn problem(&mut self, index: usize, reason: String) {
        let message = format!("feature {index}: {reason}");
        self.skip(index, reason, message);
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

/// The object's geometry, with the GeometryCollection of its members when it has parts.
fn object_geometry_json(a: &Annotation) -> (Value, Option<Value>) {
    let (geometry, shape) = geometry_json(&a.geometry);
    if a.parts.is_empty() {
        return (geometry, shape);
    }
    let members: Vec<Value> = std::iter::once(geometry).chain(a.parts.iter().map(|g| geometry_json(g).0)).collect();
    (json!({"type": "GeometryCollection", "geometries": members}), None)
}

fn feature(a: &Annotation, classes: &[AnnotationClass]) -> Value {
    let (geometry, shape) = object_geometry_json(a);
    let mut props = Map::new();
    props.insert("objectType".into(), json!(a.kind.name()));
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
    if let Some(nucleus) = &a.nucleus {
        props.insert("nucleusGeometry".into(), geometry_json(nucleus).0);
    }
    if !a.measurements.is_empty() {
        let m: Map<String, Value> = a.measurements.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        props.insert("measurements".into(), Value::Object(m));
    }
    json!({"type": "Feature", "id": a.uuid, "geometry": geometry, "properties": props})
}

/// Read GeoJSON text. Errors only when nothing can be read at all; otherwise the import lists
/// what it skipped.
pub fn from_geojson_str(text: &str) -> Result<Import, FormatError> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => from_value(value),
        Err(e) if e.is_eof() => salvage_truncated(text)
            .map(|mut import| {
                import.cut = Some(format!("the file ends early: {e}"));
                import
            })
            .ok_or_else(|| not_json(&e)),
        Err(e) => match non_finite_as_null(text) {
            // Python's json module writes NaN and Infinity: read the file with them as nulls, so
            // only the features holding them are skipped.
            Some(cleaned) => match serde_json::from_str::<Value>(&cleaned) {
                Ok(value) => from_value(value),
                Err(_) => Err(not_json(&e)),
            },
            None => Err(not_json(&e)),
        },
    }
}

fn not_json(e: &serde_json::Error) -> FormatError {
    FormatError::NotJson(crate::error::printable(&e.to_string()))
}

/// `text` with bare `NaN`, `Infinity` and `-Infinity` (outside strings) replaced by `null`, or
/// None when it has none.
pub(crate) fn non_finite_as_null(text: &str) -> Option<String> {
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
    read_text_file(path, from_geojson_str)
}

pub(crate) const EXPECTED_GEOJSON: &str = "expected GeoJSON (a FeatureCollection, a Feature or an array of Features)";

fn from_value(value: Value) -> Result<Import, FormatError> {
    let not_geojson = |what: String| Err(FormatError::NotGeoJson(crate::error::printable(&what)));
    let features: Vec<Value> = match value {
        Value::Array(items) => items,
        Value::Object(mut obj) => match obj.get("type").and_then(Value::as_str) {
            Some("FeatureCollection") => match obj.remove("features") {
                Some(Value::Array(items)) => items,
                Some(_) => return not_geojson("\"features\" is not an array".into()),
                None => return not_geojson("a FeatureCollection without \"features\"".into()),
            },
            Some("Feature") => vec![Value::Object(obj)],
            Some(other) => {
                return not_geojson(format!("expected a FeatureCollection or Feature, found type \"{other}\""))
            }
            None => return not_geojson(EXPECTED_GEOJSON.into()),
        },
        _ => return not_geojson(EXPECTED_GEOJSON.into()),
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
    if !x.is_finite() || x.abs() > crate::Limits::DEFAULT.annotation_coordinate {
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

/// A geometry with any further members (see [`Annotation::parts`]): a GeometryCollection's
/// areas become one Polygon or MultiPolygon, its points one point set, and each line a member;
/// a MultiLineString is its lines.
fn read_object_geometry(g: &Value) -> Result<(Geometry, Vec<Geometry>), String> {
    let mut members = Vec::new();
    collect_members(g, &mut members)?;
    let mut polygons = Vec::new();
    let mut points = Vec::new();
    let mut lines = Vec::new();
    for m in members {
        match m {
            Geometry::Polygon(p) => polygons.push(p),
            Geometry::MultiPolygon { polygons: ps } => polygons.extend(ps),
            Geometry::Points { points: ps } => points.extend(ps),
            other => lines.push(other),
        }
    }
    let mut all = Vec::new();
    match polygons.len() {
        0 => {}
        1 => all.extend(polygons.pop().map(Geometry::Polygon)),
        _ => all.push(Geometry::MultiPolygon { polygons }),
    }
    all.extend(lines);
    if !points.is_empty() {
        all.push(Geometry::Points { points });
    }
    let mut all = all.into_iter();
    let first = all.next().ok_or("an empty GeometryCollection")?;
    Ok((first, all.collect()))
}

fn collect_members(g: &Value, members: &mut Vec<Geometry>) -> Result<(), String> {
    match g.get("type").and_then(Value::as_str) {
        Some("GeometryCollection") => {
            let list =
                g.get("geometries").and_then(Value::as_array).ok_or("a GeometryCollection without \"geometries\"")?;
            for (i, member) in list.iter().enumerate() {
                collect_members(member, members).map_err(|e| format!("GeometryCollection member {}: {e}", i + 1))?;
            }
        }
        Some("MultiLineString") => {
            let lines =
                g.get("coordinates").and_then(Value::as_array).ok_or("MultiLineString coordinates are not a list")?;
            for line in lines {
                members.push(line_string(line)?);
            }
        }
        _ => members.push(read_geometry(g)?),
    }
    Ok(())
}

fn line_string(coords: &Value) -> Result<Geometry, String> {
    let ps = points(coords)?;
    if ps.len() < 2 {
        return Err("a LineString with fewer than 2 positions".into());
    }
    Ok(Geometry::Polyline { points: ps })
}

fn read_geometry(g: &Value) -> Result<Geometry, String> {
    let kind = g.get("type").and_then(Value::as_str).ok_or("geometry without a \"type\"")?;
    let coords = g.get("coordinates").ok_or_else(|| format!("{kind} without \"coordinates\""))?;
    Ok(match kind {
        "Point" => Geometry::Points { points: vec![point(coords)?] },
        "MultiPoint" => Geometry::Points { points: points(coords)? },
        "LineString" => line_string(coords)?,
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
    let f = |k: &str| {
        shape
            .get(k)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && v.abs() <= crate::Limits::DEFAULT.annotation_coordinate)
    };
    match shape.get("type")?.as_str()? {
        "rectangle" => Some(Geometry::Rectangle { x: f("x")?, y: f("y")?, width: f("width")?, height: f("height")? }),
        "ellipse" => Some(Geometry::Ellipse { cx: f("cx")?, cy: f("cy")?, rx: f("rx")?, ry: f("ry")? }),
        _ => None,
    }
}

pub(crate) fn read_color(v: &Value) -> Option<[u8; 3]> {
    if let Some([r, g, b]) = v.as_array().map(Vec::as_slice) {
        let c = |x: &Value| x.as_u64().filter(|&x| x <= 255).map(|x| x as u8);
        return Some([c(r)?, c(g)?, c(b)?]);
    }
    None
}

/// Older QuPath packs colours as one signed ARGB integer.
pub(crate) fn packed_color(v: &Value) -> Option<[u8; 3]> {
    let packed = v.as_i64()? as u32;
    Some([(packed >> 16) as u8, (packed >> 8) as u8, packed as u8])
}

fn read_feature(f: &Value, index: usize, import: &mut Import) {
    let number = index + 1;
    let Some(obj) = f.as_object() else {
        import.problem(number, "not an object".into());
        return;
    };
    if let Some(t) = obj.get("type").and_then(Value::as_str) {
        if t != "Feature" {
            import.problem(number, format!("type \"{t}\" is not a Feature"));
            return;
        }
    }
    let props = obj.get("properties").and_then(Value::as_object);
    let prop = |k: &str| props.and_then(|p| p.get(k));
    // QuPath 0.2 put the object type in "id" ("PathAnnotationObject", "PathDetectionObject", …);
    // later versions put a UUID there and the type in properties.objectType.
    let id = obj.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
    let legacy_kind = id.filter(|s| s.starts_with("Path") && s.ends_with("Object"));
    // Annotations, detections, cells and tiles are read; other objects (TMA cores, the root) are not.
    let kind = match (prop("objectType").and_then(Value::as_str), legacy_kind) {
        (Some(t), _) => match ObjectKind::from_qupath(t) {
            Some(k) => k,
            None => {
                import.problem(number, format!("objectType \"{t}\" is not an annotation, detection, cell or tile"));
                return;
            }
        },
        (None, Some(t)) => match ObjectKind::from_qupath(t) {
            Some(k) => k,
            None => {
                import.problem(number, format!("\"{t}\" is not an annotation, detection, cell or tile"));
                return;
            }
        },
        (None, None) => ObjectKind::Annotation,
    };
    let (geometry, parts) = match obj.get("geometry").map(read_object_geometry) {
        Some(Ok(g)) => g,
        Some(Err(e)) => {
            import.problem(number, e);
            return;
        }
        None => {
            import.problem(number, "no geometry".into());
            return;
        }
    };
    let nucleus = match prop("nucleusGeometry").filter(|v| !v.is_null()).map(read_geometry) {
        Some(Ok(g)) => Some(g),
        Some(Err(e)) => {
            import.problem(number, format!("nucleusGeometry: {e}"));
            return;
        }
        None => None,
    };
    // The exact shape wins if it agrees with the polygon written beside it (another tool may have
    // edited the polygon and left the property behind).
    let geometry = match prop("shape").and_then(read_shape).filter(|_| parts.is_empty()) {
        Some(shape) if bounds_agree(&shape.bounds(), &geometry.bounds()) => shape,
        _ => geometry,
    };
    let mut annotation = Annotation::new(geometry);
    annotation.kind = kind;
    annotation.parts = parts;
    annotation.nucleus = nucleus;
    annotation.measurements = prop("measurements").map(read_measurements).unwrap_or_default();
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

/// QuPath's measurements: a map of name → number (QuPath 0.3 and later) or a list of
/// `{"name", "value"}` (earlier). Values that are not finite numbers (NaN, written as null) are
/// left out.
fn read_measurements(v: &Value) -> std::collections::BTreeMap<String, f64> {
    let finite = |v: Option<&Value>| v.and_then(Value::as_f64).filter(|x| x.is_finite());
    match v {
        Value::Object(map) => map.iter().filter_map(|(k, v)| Some((k.clone(), finite(Some(v))?))).collect(),
        Value::Array(list) => {
            list.iter().filter_map(|m| Some((m.get("name")?.as_str()?.to_string(), finite(m.get("value"))?))).collect()
        }
        _ => Default::default(),
    }
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
        assert_eq!(import.annotations.len(), 3, "annotation, detection, last point: {:?}", import.problems);
        assert_eq!(import.skipped, 2, "two non-finite coordinates");
        let skipped: Vec<usize> = import.skipped_features.iter().map(|s| s.index).collect();
        assert_eq!(skipped, [3, 4]);
        assert_ne!(import.annotations[0].uuid, "PathAnnotationObject", "a type is not an id");
        assert_eq!(import.annotations[0].kind, ObjectKind::Annotation);
        assert_eq!(import.annotations[1].kind, ObjectKind::Detection, "the type from QuPath 0.2's id");
        assert_ne!(import.annotations[1].uuid, "PathDetectionObject");
        assert_eq!(import.annotations[0].class.as_deref(), Some("Tumor"));
        assert_eq!(import.annotations[0].class_color, Some([200, 0, 0]));
        assert_eq!(import.annotations[2].name, "NaN", "strings are left alone");
    }
}
