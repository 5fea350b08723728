//! ASAP XML annotations (the Computational Pathology Group's viewer; CAMELYON's annotations are in
//! this format), read and written as ASAP's own `XmlRepository` does:
//!
//! ```xml
//! <ASAP_Annotations>
//!   <Annotations>
//!     <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="Tumor" Color="#F4FA58">
//!       <Coordinates><Coordinate Order="0" X="1.5" Y="2.5"/>…</Coordinates>
//!     </Annotation>
//!   </Annotations>
//!   <AnnotationGroups>
//!     <Group Name="Tumor" PartOfGroup="None" Color="#64FE2E"><Attributes/></Group>
//!   </AnnotationGroups>
//! </ASAP_Annotations>
//! ```
//!
//! Types (ASAP's `Annotation::_typeStrings`): `Dot`, `Polygon`, `Spline`, `PointSet`,
//! `Measurement`, `Rectangle`. On reading:
//! - `Polygon` and `Spline` become polygons of their control points, in `Order`. ASAP draws a
//!   spline as a Catmull-Rom curve through them, but its own mask export (`AnnotationToMask`)
//!   fills the control polygon, as we do.
//! - `Rectangle` becomes a rectangle when its four corners are axis-aligned, else a polygon.
//! - `Dot` and `PointSet` become points; `Measurement` (a ruler: ASAP draws first to last point)
//!   becomes a line.
//! - An annotation's group (`PartOfGroup`, `None` for none) is its class; the group's colour is the
//!   class colour. Groups of groups are flattened: the class is the annotation's own group.
//! - Numbers are read as ASAP reads them (C `strtod`: scientific notation allowed), and with a comma
//!   as decimal separator too: ASAP writes with `printf`, so a German or French locale gives
//!   `X="1234,5"` (DIAG's own wholeslidedata reader accepts these the same way).
//!
//! Whole-file problems (not XML, another root element) are errors; an annotation that cannot be
//! read (unknown type, non-numeric or absurd coordinates, too few vertices) is skipped and
//! counted, as in the GeoJSON importer.

use crate::text::escape_markup;
use std::fmt::Write as _;

use super::error::{read_text_file, AnnotationFileError, FormatError};
use super::geojson::{Import, ELLIPSE_SEGMENTS, MAX_COORDINATE};
use super::geometry::{Geometry, Point, Polygon};
use super::model::{Annotation, AnnotationClass, ObjectKind, UNCLASSIFIED_COLOR};

/// ASAP's colour for annotations without a group (`AnnotationBase`'s default).
const ASAP_DEFAULT_COLOR: &str = "#F4FA58";

/// Skip annotation `number` (1-based) at `line` for `reason`.
fn problem(import: &mut Import, number: usize, line: u32, reason: String) {
    let message = format!("annotation {number} (line {line}): {reason}");
    import.skip(number, format!("line {line}: {reason}"), message);
}

/// Read an ASAP XML file. The error names the file.
pub fn read_asap_file(path: &std::path::Path) -> Result<Import, AnnotationFileError> {
    read_text_file(path, from_asap_str)
}

/// Read ASAP XML text. Errors only when the text is not ASAP XML at all; otherwise the import
/// lists what it skipped.
pub fn from_asap_str(text: &str) -> Result<Import, FormatError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc =
        roxmltree::Document::parse(text).map_err(|e| FormatError::NotXml(crate::error::printable(&e.to_string())))?;
    let root = doc.root_element();
    // ASAP also reads a file whose root is the <Annotations> list itself (it falls back to the
    // document root). Aperio ImageScope XML has that root too, with <Regions> instead of
    // <Coordinates>: say so rather than skipping every annotation.
    let (annotations_node, groups_node) = match root.tag_name().name() {
        "ASAP_Annotations" => (child(root, "Annotations"), child(root, "AnnotationGroups")),
        "Annotations" => {
            let imagescope = root.children().any(|a| a.has_tag_name("Annotation") && child(a, "Regions").is_some());
            if imagescope {
                return Err(FormatError::ImageScope);
            }
            (Some(root), None)
        }
        other => return Err(FormatError::NotAsap(crate::error::printable(other))),
    };
    let mut import = Import::default();
    let groups = read_groups(groups_node);
    for g in &groups {
        import.classes.push(AnnotationClass { name: g.0.clone(), color: g.1 });
    }
    let Some(list) = annotations_node else { return Ok(import) };
    let mut number = 0;
    for node in list.children().filter(roxmltree::Node::is_element) {
        number += 1;
        let line = doc.text_pos_at(node.range().start).row;
        if !node.has_tag_name("Annotation") {
            problem(&mut import, number, line, format!("<{}> is not an <Annotation>", node.tag_name().name()));
            continue;
        }
        match read_annotation(node) {
            Ok(mut annotation) => {
                if let Some(class) = &annotation.class {
                    let color = match import.classes.iter().find(|c| &c.name == class) {
                        Some(c) => c.color,
                        None => {
                            // ASAP refuses the whole file when a group is missing; one annotation
                            // naming a group that is not listed is not worth losing the rest for.
                            let color = node.attribute("Color").and_then(parse_color).unwrap_or(UNCLASSIFIED_COLOR);
                            import.classes.push(AnnotationClass { name: class.clone(), color });
                            color
                        }
                    };
                    annotation.class_color = Some(color);
                }
                import.annotations.push(annotation);
            }
            Err(e) => problem(&mut import, number, line, e),
        }
    }
    Ok(import)
}

fn child<'a, 'input>(node: roxmltree::Node<'a, 'input>, name: &str) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|c| c.has_tag_name(name))
}

/// Group names and colours, in file order (ASAP keys groups by name: a repeated name is one group).
fn read_groups(groups: Option<roxmltree::Node>) -> Vec<(String, [u8; 3])> {
    let mut out: Vec<(String, [u8; 3])> = Vec::new();
    for g in groups.into_iter().flat_map(|g| g.children()).filter(|g| g.is_element()) {
        let Some(name) = g.attribute("Name").filter(|n| !n.is_empty() && *n != "None") else { continue };
        let color = g.attribute("Color").and_then(parse_color).unwrap_or(UNCLASSIFIED_COLOR);
        match out.iter_mut().find(|(n, _)| n == name) {
            Some(existing) => existing.1 = color,
            None => out.push((name.to_string(), color)),
        }
    }
    out
}

/// `#RRGGBB`, `#RGB` or `#AARRGGBB` (the forms QColor reads that ASAP writes or users type).
fn parse_color(text: &str) -> Option<[u8; 3]> {
    let hex = text.trim().strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |s: &str| u8::from_str_radix(s, 16).ok();
    match hex.len() {
        3 => {
            let d = |i: usize| byte(&hex[i..i + 1]).map(|v| v * 17);
            Some([d(0)?, d(1)?, d(2)?])
        }
        6 => Some([byte(&hex[0..2])?, byte(&hex[2..4])?, byte(&hex[4..6])?]),
        8 => Some([byte(&hex[2..4])?, byte(&hex[4..6])?, byte(&hex[6..8])?]),
        _ => None,
    }
}

/// A coordinate as ASAP reads it (`strtod`: optional sign, decimals, exponent), also with a
/// decimal comma. Infinite, NaN and absurdly large values are refused.
fn parse_number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = t.parse::<f64>().ok().or_else(|| {
        // "1234,5" from a comma-decimal locale; "1,234.5" (a thousands separator) stays an error.
        (t.matches(',').count() == 1 && !t.contains('.')).then(|| t.replace(',', ".").parse::<f64>().ok()).flatten()
    });
    match value {
        Some(v) if v.is_finite() && v.abs() <= MAX_COORDINATE => Ok(v),
        Some(v) => Err(format!("coordinate {v} is out of range")),
        None => Err(format!("coordinate {:?} is not a number", short(text))),
    }
}

fn short(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text.to_string()
    }
}

/// The coordinates of an annotation in `Order` (coordinates without a readable `Order` keep
/// their place in the file).
fn read_coordinates(annotation: roxmltree::Node) -> Result<Vec<Point>, String> {
    let Some(coords) = child(annotation, "Coordinates") else { return Err("no <Coordinates>".into()) };
    let mut points: Vec<(i64, Point)> = Vec::new();
    for (i, c) in coords.children().filter(|c| c.has_tag_name("Coordinate")).enumerate() {
        let axis = |name: &str| match c.attribute(name) {
            Some(v) => parse_number(v),
            None => Err(format!("coordinate {} has no {name}", i + 1)),
        };
        let p = [axis("X")?, axis("Y")?];
        let order = c.attribute("Order").and_then(|o| o.trim().parse::<i64>().ok()).unwrap_or(i as i64);
        points.push((order, p));
    }
    points.sort_by_key(|(order, _)| *order); // stable: equal orders keep file order
    Ok(points.into_iter().map(|(_, p)| p).collect())
}

/// A ring without a closing repeat of its first vertex, with at least 3 distinct vertices.
fn ring(mut points: Vec<Point>, kind: &str) -> Result<Vec<Point>, String> {
    if points.len() > 1 && points.first() == points.last() {
        points.pop();
    }
    let mut distinct = points.clone();
    distinct.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    distinct.dedup();
    if distinct.len() < 3 {
        return Err(format!("a {kind} with {} distinct vertices (at least 3 needed)", distinct.len()));
    }
    Ok(points)
}

/// The rectangle whose corners these are, when they are the four corners of an axis-aligned
/// box of non-zero size in drawing order (either direction, any starting corner).
fn axis_aligned_rectangle(ring: &[Point]) -> Option<Geometry> {
    let [a, b, c, d] = ring else { return None };
    let corners = [*a, *b, *c, *d];
    let (x0, x1) = (
        corners.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min),
        corners.iter().map(|p| p[0]).fold(f64::NEG_INFINITY, f64::max),
    );
    let (y0, y1) = (
        corners.iter().map(|p| p[1]).fold(f64::INFINITY, f64::min),
        corners.iter().map(|p| p[1]).fold(f64::NEG_INFINITY, f64::max),
    );
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let on_corner = |p: &Point| (p[0] == x0 || p[0] == x1) && (p[1] == y0 || p[1] == y1);
    let axis_edge = |p: &Point, q: &Point| (p[0] == q[0]) != (p[1] == q[1]);
    let all_corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]].iter().all(|k| corners.contains(k));
    let edges_ok = (0..4).all(|i| axis_edge(&corners[i], &corners[(i + 1) % 4]));
    (corners.iter().all(on_corner) && all_corners && edges_ok).then_some(Geometry::Rectangle {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

fn read_annotation(node: roxmltree::Node) -> Result<Annotation, String> {
    let kind = node.attribute("Type").unwrap_or_default();
    let lower = kind.to_ascii_lowercase();
    match lower.as_str() {
        "polygon" | "spline" | "rectangle" | "dot" | "pointset" | "measurement" => {}
        "" => return Err("no Type".into()),
        _ => return Err(format!("type {:?} is not an ASAP annotation type", short(kind))),
    }
    let points = read_coordinates(node)?;
    let geometry = match lower.as_str() {
        "polygon" | "spline" => Geometry::Polygon(Polygon { exterior: ring(points, "polygon")?, holes: vec![] }),
        "rectangle" => {
            let exterior = ring(points, "rectangle")?;
            axis_aligned_rectangle(&exterior).unwrap_or(Geometry::Polygon(Polygon { exterior, holes: vec![] }))
        }
        "dot" | "pointset" => {
            if points.is_empty() {
                return Err(format!("a {kind} without coordinates"));
            }
            Geometry::Points { points }
        }
        "measurement" => {
            if points.len() < 2 {
                return Err(format!("a Measurement with {} coordinates (2 needed)", points.len()));
            }
            Geometry::Polyline { points }
        }
        _ => return Err(format!("type {:?} is not an ASAP annotation type", short(kind))),
    };
    let mut annotation = Annotation::new(geometry);
    annotation.name = node.attribute("Name").unwrap_or_default().to_string();
    annotation.class = node.attribute("PartOfGroup").filter(|g| !g.is_empty() && *g != "None").map(str::to_string);
    Ok(annotation)
}

/// `text` as an XML attribute value: [`escape_markup`], with tabs and line breaks as character
/// references (a parser would otherwise normalise them to spaces, XML 1.0 section 3.3.3).
fn escape_attribute(text: &str) -> String {
    escape_markup(text).replace('\t', "&#9;").replace('\n', "&#10;").replace('\r', "&#13;")
}

fn hex_color(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// One `<Annotation>` to write: ASAP type and its coordinates.
fn asap_shapes(g: &Geometry) -> Vec<(&'static str, Vec<Point>)> {
    match g {
        Geometry::Points { points } if points.len() == 1 => vec![("Dot", points.clone())],
        Geometry::Points { points } => vec![("PointSet", points.clone())],
        Geometry::Rectangle { .. } | Geometry::Ellipse { .. } => g
            .as_polygon(ELLIPSE_SEGMENTS)
            .map(|p| vec![(if matches!(g, Geometry::Rectangle { .. }) { "Rectangle" } else { "Polygon" }, p.exterior)])
            .unwrap_or_default(),
        Geometry::Polygon(p) => vec![("Polygon", p.exterior.clone())],
        Geometry::MultiPolygon { polygons } => polygons.iter().map(|p| ("Polygon", p.exterior.clone())).collect(),
        // ASAP has no open line of more than two points: Polygon, Spline and Rectangle are closed
        // when loaded, a Measurement is drawn and measured from its first to its last point, and a
        // PointSet loses the segments. So a polyline is written as one Measurement per segment:
        // every vertex is kept, ASAP draws the same path, and the lengths add up to the polyline's.
        Geometry::Polyline { points } if points.len() <= 2 => vec![("Measurement", points.clone())],
        Geometry::Polyline { points } => points.windows(2).map(|w| ("Measurement", w.to_vec())).collect(),
    }
}

/// Write annotations as ASAP XML. Every class used gets a `<Group>` (ASAP refuses a file whose
/// annotations name a group it does not list). What ASAP cannot hold is listed by [`export_losses`].
pub fn to_asap_xml(annotations: &[impl AsRef<Annotation>], classes: &[AnnotationClass]) -> String {
    let mut groups: Vec<(String, [u8; 3])> = Vec::new();
    for a in annotations.iter().map(AsRef::as_ref) {
        if let Some(class) = &a.class {
            if !groups.iter().any(|(n, _)| n == class) {
                let color = classes.iter().find(|c| &c.name == class).map(|c| c.color).or(a.class_color);
                groups.push((class.clone(), color.unwrap_or(UNCLASSIFIED_COLOR)));
            }
        }
    }
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n\t<Annotations>\n");
    for a in annotations.iter().map(AsRef::as_ref) {
        let (group, color) = match &a.class {
            Some(class) => {
                let color = groups.iter().find(|(n, _)| n == class).map_or(UNCLASSIFIED_COLOR, |g| g.1);
                (escape_attribute(class), hex_color(color))
            }
            None => ("None".to_string(), ASAP_DEFAULT_COLOR.to_string()),
        };
        let name = escape_attribute(&a.name);
        for (kind, points) in a.shapes().flat_map(asap_shapes) {
            if points.is_empty() {
                continue;
            }
            let _ = writeln!(
                xml,
                "\t\t<Annotation Name=\"{name}\" Type=\"{kind}\" PartOfGroup=\"{group}\" Color=\"{color}\">\n\t\t\t<Coordinates>"
            );
            for (i, p) in points.iter().enumerate() {
                let _ = writeln!(xml, "\t\t\t\t<Coordinate Order=\"{i}\" X=\"{}\" Y=\"{}\" />", p[0], p[1]);
            }
            xml.push_str("\t\t\t</Coordinates>\n\t\t</Annotation>\n");
        }
    }
    xml.push_str("\t</Annotations>\n\t<AnnotationGroups>\n");
    for (name, color) in &groups {
        let _ = writeln!(
            xml,
            "\t\t<Group Name=\"{}\" PartOfGroup=\"None\" Color=\"{}\">\n\t\t\t<Attributes />\n\t\t</Group>",
            escape_attribute(name),
            hex_color(*color)
        );
    }
    xml.push_str("\t</AnnotationGroups>\n</ASAP_Annotations>\n");
    xml
}

/// What writing these annotations as ASAP XML loses or changes, one line each (empty when
/// nothing): holes, ellipses as polygons, multipolygons and polylines split, notes and locks.
pub fn export_losses(annotations: &[impl AsRef<Annotation>]) -> Vec<String> {
    let (mut holes, mut holed, mut ellipses, mut multi, mut multi_parts) = (0, 0, 0, 0, 0);
    let (mut lines, mut segments, mut notes, mut locked, mut empty) = (0, 0, 0, 0, 0);
    let (mut objects, mut nuclei, mut measured, mut collections) = ([0usize; 4], 0, 0, 0);
    for a in annotations.iter().map(AsRef::as_ref) {
        match &a.geometry {
            Geometry::Polygon(p) if !p.holes.is_empty() => {
                holes += p.holes.len();
                holed += 1;
            }
            Geometry::MultiPolygon { polygons } => {
                multi += 1;
                multi_parts += polygons.len();
                let h: usize = polygons.iter().map(|p| p.holes.len()).sum();
                holes += h;
                holed += usize::from(h > 0);
            }
            Geometry::Ellipse { .. } => ellipses += 1,
            Geometry::Polyline { points } if points.len() > 2 => {
                lines += 1;
                segments += points.len() - 1;
            }
            _ => {}
        }
        if a.shapes().flat_map(asap_shapes).all(|(_, p)| p.is_empty()) {
            empty += 1;
        }
        notes += usize::from(!a.note.is_empty());
        locked += usize::from(a.locked);
        if a.kind != ObjectKind::Annotation {
            objects[a.kind as usize] += 1;
        }
        nuclei += usize::from(a.nucleus.is_some());
        measured += usize::from(!a.measurements.is_empty());
        collections += usize::from(!a.parts.is_empty());
    }
    let mut out = Vec::new();
    if holes > 0 {
        out.push(format!("{holes} holes dropped from {holed} polygons (ASAP polygons have no holes)"));
    }
    if ellipses > 0 {
        out.push(format!("{ellipses} ellipses written as {ELLIPSE_SEGMENTS}-vertex polygons"));
    }
    if multi > 0 {
        out.push(format!("{multi} multipolygons written as {multi_parts} polygons"));
    }
    if lines > 0 {
        out.push(format!("{lines} polylines written as {segments} two-point Measurements (ASAP has no open polyline)"));
    }
    if notes > 0 {
        out.push(format!("{notes} notes not kept (ASAP has no notes)"));
    }
    if locked > 0 {
        out.push(format!("{locked} locks not kept (ASAP has no locked annotations)"));
    }
    if empty > 0 {
        out.push(format!("{empty} annotations without coordinates not written"));
    }
    let others: Vec<String> = ObjectKind::ALL
        .iter()
        .filter(|k| objects[**k as usize] > 0)
        .map(|k| format!("{} {}s", objects[*k as usize], k.name()))
        .collect();
    if !others.is_empty() {
        out.push(format!("{} written as ordinary annotations (ASAP has only annotations)", others.join(", ")));
    }
    if nuclei > 0 {
        out.push(format!("{nuclei} cell nuclei not kept (ASAP has no nucleus outline)"));
    }
    if measured > 0 {
        out.push(format!("the QuPath measurements of {measured} objects not kept (ASAP has none)"));
    }
    if collections > 0 {
        out.push(format!("{collections} geometry collections written as one ASAP annotation per member"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r##"<?xml version="1.0"?>
<ASAP_Annotations>
	<Annotations>
		<Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="Tumor" Color="#F4FA58">
			<Coordinates>
				<Coordinate Order="2" X="10" Y="10" />
				<Coordinate Order="0" X="0" Y="0" />
				<Coordinate Order="1" X="10" Y="0" />
			</Coordinates>
		</Annotation>
		<Annotation Name="box" Type="Rectangle" PartOfGroup="None" Color="#F4FA58">
			<Coordinates>
				<Coordinate Order="0" X="5.5" Y="6" />
				<Coordinate Order="1" X="5.5" Y="16" />
				<Coordinate Order="2" X="25.5" Y="16" />
				<Coordinate Order="3" X="25.5" Y="6" />
			</Coordinates>
		</Annotation>
		<Annotation Name="tilted" Type="Rectangle" PartOfGroup="" Color="#F4FA58">
			<Coordinates>
				<Coordinate Order="0" X="0" Y="5" /><Coordinate Order="1" X="5" Y="0" />
				<Coordinate Order="2" X="10" Y="5" /><Coordinate Order="3" X="5" Y="10" />
			</Coordinates>
		</Annotation>
		<Annotation Name="cell" Type="Dot" PartOfGroup="Immune" Color="#F4FA58">
			<Coordinates><Coordinate Order="0" X="1,5e2" Y="2.5E1" /></Coordinates>
		</Annotation>
		<Annotation Name="cells" Type="PointSet" PartOfGroup="Immune" Color="#F4FA58">
			<Coordinates><Coordinate Order="0" X="1" Y="2" /><Coordinate Order="1" X="3" Y="4" /></Coordinates>
		</Annotation>
		<Annotation Name="ruler" Type="Measurement" PartOfGroup="None" Color="#000000">
			<Coordinates><Coordinate Order="0" X="0" Y="0" /><Coordinate Order="1" X="30" Y="40" /></Coordinates>
		</Annotation>
		<Annotation Name="curve" Type="Spline" PartOfGroup="Tumor" Color="#F4FA58">
			<Coordinates>
				<Coordinate Order="0" X="0" Y="0" /><Coordinate Order="1" X="4" Y="0" /><Coordinate Order="2" X="2" Y="3" />
			</Coordinates>
		</Annotation>
	</Annotations>
	<AnnotationGroups>
		<Group Name="Tumor" PartOfGroup="None" Color="#64FE2E"><Attributes /></Group>
		<Group Name="Immune" PartOfGroup="Tumor" Color="#0000ff"><Attributes /></Group>
		<Group Name="Unused" PartOfGroup="None" Color="#abc"><Attributes /></Group>
	</AnnotationGroups>
</ASAP_Annotations>
"##;

    #[test]
    fn reads_every_type_group_and_number_format() {
        let import = from_asap_str(SAMPLE).unwrap();
        assert_eq!(import.skipped, 0, "{:?}", import.problems);
        let a = &import.annotations;
        assert_eq!(a.len(), 7);
        assert_eq!(
            a[0].geometry,
            Geometry::Polygon(Polygon { exterior: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]], holes: vec![] }),
            "sorted by Order"
        );
        assert_eq!((a[0].class.as_deref(), a[0].class_color), (Some("Tumor"), Some([0x64, 0xFE, 0x2E])));
        assert_eq!(a[1].geometry, Geometry::Rectangle { x: 5.5, y: 6.0, width: 20.0, height: 10.0 });
        assert_eq!(a[1].name, "box");
        assert_eq!(a[1].class, None);
        assert!(matches!(&a[2].geometry, Geometry::Polygon(p) if p.exterior.len() == 4), "a diamond stays a polygon");
        assert_eq!(a[2].class, None, "empty PartOfGroup is no class");
        assert_eq!(a[3].geometry, Geometry::Points { points: vec![[150.0, 25.0]] }, "comma decimal and exponent");
        assert_eq!(a[4].geometry, Geometry::Points { points: vec![[1.0, 2.0], [3.0, 4.0]] });
        assert_eq!(a[4].class_color, Some([0, 0, 255]));
        assert_eq!(a[5].geometry, Geometry::Polyline { points: vec![[0.0, 0.0], [30.0, 40.0]] });
        assert!(matches!(&a[6].geometry, Geometry::Polygon(p) if p.exterior.len() == 3), "spline control points");
        let names: Vec<_> = import.classes.iter().map(|c| (c.name.as_str(), c.color)).collect();
        assert_eq!(names, vec![("Tumor", [0x64, 0xFE, 0x2E]), ("Immune", [0, 0, 255]), ("Unused", [0xAA, 0xBB, 0xCC])]);
    }

    #[test]
    fn bad_annotations_are_skipped_and_bad_files_refused() {
        let wrap = |body: &str| format!("<ASAP_Annotations><Annotations>{body}</Annotations></ASAP_Annotations>");
        let coord = |x: &str, y: &str| format!("<Coordinate Order=\"0\" X=\"{x}\" Y=\"{y}\"/>");
        let ann = |t: &str, coords: &str| {
            format!("<Annotation Name=\"n\" Type=\"{t}\" PartOfGroup=\"None\"><Coordinates>{coords}</Coordinates></Annotation>")
        };
        let good = ann("Dot", &coord("1", "2"));
        let body = [
            ann("Dot", &coord("abc", "2")),
            ann("Dot", &coord("NaN", "2")),
            ann("Dot", &coord("1e300", "2")),
            ann("Dot", &coord("inf", "2")),
            ann("Polygon", &(coord("0", "0") + &coord("1", "1"))),
            ann("Measurement", &coord("0", "0")),
            ann("Ellipse", &coord("0", "0")),
            ann("PointSet", ""),
            "<Annotation Name=\"x\" Type=\"Dot\"/>".to_string(),
            "<Comment/>".to_string(),
            good.clone(),
            ann("Dot", &coord("1,234.5", "2")),
        ]
        .concat();
        let import = from_asap_str(&wrap(&body)).unwrap();
        assert_eq!(import.annotations.len(), 1);
        assert_eq!(import.skipped, 11);
        assert_eq!(import.problems.len(), crate::annotations::geojson::PROBLEMS_LISTED);
        assert_eq!(import.skipped_features.len(), 11, "every skipped annotation is listed");
        assert!(import.problems[0].starts_with("annotation 1 (line 1): coordinate \"abc\""), "{:?}", import.problems);
        assert!(import.problems[2].contains("out of range"), "{}", import.problems[2]);
        assert!(import.problems[4].contains("2 distinct vertices"), "{}", import.problems[4]);
        assert!(import.problems[6].contains("\"Ellipse\""), "{}", import.problems[6]);

        assert!(from_asap_str("not xml").unwrap_err().to_string().starts_with("not valid XML"));
        assert!(from_asap_str("<ASAP_Annotations><Annotations>").unwrap_err().to_string().starts_with("not valid XML"));
        assert!(from_asap_str("<svg/>").unwrap_err().to_string().contains("<svg>"));
        let imagescope = "<Annotations><Annotation Id=\"1\"><Regions/></Annotation></Annotations>";
        assert!(from_asap_str(imagescope).unwrap_err().to_string().contains("ImageScope"));
        // ASAP also reads a bare <Annotations> root.
        assert_eq!(from_asap_str(&format!("<Annotations>{good}</Annotations>")).unwrap().annotations.len(), 1);
    }

    #[test]
    fn write_then_read_keeps_shapes_classes_and_names() {
        let classes =
            vec![AnnotationClass::new("Tumor & \"margin\"", [200, 0, 0]), AnnotationClass::new("Other", [1, 2, 3])];
        let mut poly = Annotation::new(Geometry::Polygon(Polygon {
            exterior: vec![[0.1, 0.2], [100.3, 0.7], [50.123456789, 80.000001]],
            holes: vec![],
        }))
        .with_class(Some(&classes[0]));
        poly.name = "a <b> 'c'\nline\ttab".into();
        let rect = Annotation::new(Geometry::Rectangle { x: 1.5, y: 2.25, width: 30.0, height: 40.5 });
        let dot = Annotation::new(Geometry::Points { points: vec![[3.0, 4.0]] }).with_class(Some(&classes[1]));
        let cells = Annotation::new(Geometry::Points { points: vec![[3.0, 4.0], [5.0, 6.0], [-1.0, 1e-7]] });
        let ruler = Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [3.0, 4.0]] });
        let original = vec![poly, rect, dot, cells, ruler];
        let xml = to_asap_xml(&original, &classes);
        let import = from_asap_str(&xml).unwrap();
        assert_eq!(import.skipped, 0, "{:?}", import.problems);
        assert_eq!(import.annotations.len(), original.len());
        for (a, b) in original.iter().zip(&import.annotations) {
            assert_eq!(
                (&a.geometry, &a.name, &a.class, a.class_color),
                (&b.geometry, &b.name, &b.class, b.class_color)
            );
        }
        assert_eq!(import.classes, classes);
        assert!(export_losses(&original).is_empty());
    }

    #[test]
    fn shapes_asap_cannot_hold() {
        let holed = Annotation::new(Geometry::Polygon(Polygon {
            exterior: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]],
            holes: vec![vec![[2.0, 2.0], [4.0, 2.0], [4.0, 4.0]]],
        }));
        let multi = Annotation::new(Geometry::MultiPolygon {
            polygons: vec![
                Polygon { exterior: vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]], holes: vec![] },
                Polygon { exterior: vec![[5.0, 5.0], [6.0, 5.0], [6.0, 6.0]], holes: vec![] },
            ],
        });
        let mut ellipse = Annotation::new(Geometry::Ellipse { cx: 50.0, cy: 50.0, rx: 20.0, ry: 10.0 });
        ellipse.name = "e".into();
        let line = Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [3.0, 4.0], [3.0, 10.0]] });
        let all = vec![holed, multi, ellipse, line];
        let import = from_asap_str(&to_asap_xml(&all, &[])).unwrap();
        let kinds: Vec<_> = import.annotations.iter().map(|a| a.geometry.kind_name()).collect();
        assert_eq!(kinds, ["Polygon", "Polygon", "Polygon", "Polygon", "Line", "Line"]);
        assert!(matches!(&import.annotations[0].geometry, Geometry::Polygon(p) if p.holes.is_empty()));
        assert!(
            matches!(&import.annotations[3].geometry, Geometry::Polygon(p) if p.exterior.len() == ELLIPSE_SEGMENTS)
        );
        assert_eq!(import.annotations[3].name, "e");
        let length: f64 = import.annotations[4..].iter().filter_map(|a| a.geometry.measure(None).length).sum();
        assert_eq!(length, 11.0, "the segments add up to the polyline");
        let losses = export_losses(&all);
        assert_eq!(losses.len(), 4, "{losses:?}");
        assert!(losses[0].starts_with("1 holes dropped"), "{losses:?}");
    }

    #[test]
    fn colours_and_escapes() {
        assert_eq!(parse_color("#64FE2E"), Some([0x64, 0xFE, 0x2E]));
        assert_eq!(parse_color("#fff"), Some([255, 255, 255]));
        assert_eq!(parse_color("#80112233"), Some([0x11, 0x22, 0x33]));
        assert_eq!(parse_color("red"), None);
        assert_eq!(parse_color("#12345"), None);
        assert_eq!(escape_attribute("a&b<c>\"d'\u{1}\r"), "a&amp;b&lt;c&gt;&quot;d&#39;&#13;");
        assert_eq!(parse_number(" -1.5e3 "), Ok(-1500.0));
        assert_eq!(parse_number("+2,5"), Ok(2.5));
        assert!(parse_number("").is_err());
    }
}
