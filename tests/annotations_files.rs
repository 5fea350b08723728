//! Annotation files as users bring them: every GeoJSON dialect QuPath has written, damaged files,
//! ASAP XML, conversion between the two, and `wsiview annotations measure` against exact formulas.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use wsiview::annotations::geojson::{from_geojson_str, read_geojson_file, to_geojson_bytes};
use wsiview::annotations::{
    asap, store, table, Annotation, AnnotationClass, Geometry, Import, ObjectKind, PixelSize, Polygon,
};

fn wsiview(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsiview")).args(args).output().unwrap_or_else(|e| panic!("{e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn import(text: &str) -> Import {
    from_geojson_str(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Equal to 1e-12 relative.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

fn square(x0: f64, y0: f64, side: f64) -> Vec<[f64; 2]> {
    vec![[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]]
}

// ---------------------------------------------------------------------------------------------
// GeoJSON dialects

const COLLECTION: &str = r#"{
  "type": "FeatureCollection",
  "features": [
    {"type": "Feature", "id": "a1", "geometry": {"type": "Point", "coordinates": [10.5, 20.25]},
     "properties": {"objectType": "annotation", "name": "one cell"}},
    {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4], [5, 6]]},
     "properties": {"objectType": "annotation", "classification": {"name": "Immune cells", "color": [160, 90, 160]}}},
    {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [30, 40], [30, 50]]},
     "properties": {"objectType": "annotation"}},
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
        [[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]],
        [[20, 20], [40, 20], [40, 40], [20, 40], [20, 20]]]},
     "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}}},
    {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [
        [[[0, 0], [10, 0], [10, 10], [0, 0]]],
        [[[50, 50], [60, 50], [60, 60], [50, 50]]]]},
     "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}}}
  ]
}"#;

#[test]
fn feature_collection_with_every_geometry() {
    let imp = import(COLLECTION);
    assert_eq!((imp.skipped, imp.truncated), (0, false), "{:?}", imp.problems);
    let a = &imp.annotations;
    assert_eq!(a.len(), 5);
    assert_eq!(a[0].geometry, Geometry::Points { points: vec![[10.5, 20.25]] });
    assert_eq!((a[0].name.as_str(), a[0].uuid.as_str()), ("one cell", "a1"));
    assert_eq!(a[1].geometry, Geometry::Points { points: vec![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]] });
    assert_eq!((a[1].class.as_deref(), a[1].class_color), (Some("Immune cells"), Some([160, 90, 160])));
    assert_eq!(a[2].geometry, Geometry::Polyline { points: vec![[0.0, 0.0], [30.0, 40.0], [30.0, 50.0]] });
    assert_eq!(
        a[3].geometry,
        Geometry::Polygon(Polygon { exterior: square(0.0, 0.0, 100.0), holes: vec![square(20.0, 20.0, 20.0)] }),
        "closing vertices dropped, hole kept"
    );
    match &a[4].geometry {
        Geometry::MultiPolygon { polygons } => {
            assert_eq!(polygons.len(), 2);
            assert_eq!(polygons[1].exterior, vec![[50.0, 50.0], [60.0, 50.0], [60.0, 60.0]]);
        }
        other => panic!("{other:?}"),
    }
    let classes: Vec<_> = imp.classes.iter().map(|c| (c.name.as_str(), c.color)).collect();
    assert_eq!(classes, [("Immune cells", [160, 90, 160]), ("Tumor", [200, 0, 0])]);
}

#[test]
fn bare_array_and_single_feature() {
    let bare = r#"[
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]}, "properties": {}}
    ]"#;
    let imp = import(bare);
    assert_eq!((imp.annotations.len(), imp.skipped), (2, 0));
    assert_eq!(imp.annotations[1].geometry, Geometry::Points { points: vec![[3.0, 4.0]] });

    let single = r#"{"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [3, 4]]},
                     "properties": {"name": "ruler"}}"#;
    let imp = import(single);
    assert_eq!(imp.annotations.len(), 1);
    assert_eq!(imp.annotations[0].geometry.kind_name(), "Line");
    assert_eq!(imp.annotations[0].name, "ruler");
}

#[test]
fn packed_signed_color_rgb() {
    // Older QuPath: ARGB packed into a signed 32-bit int. -3670016 = 0xFFC80000 → (200, 0, 0).
    assert_eq!(-3670016i32 as u32, 0xFFC8_0000);
    let text = r#"{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
                   "properties": {"classification": {"name": "Tumor", "colorRGB": -3670016}}}"#;
    let imp = import(text);
    assert_eq!(imp.annotations[0].class_color, Some([200, 0, 0]));
    assert_eq!(imp.classes, vec![AnnotationClass::new("Tumor", [200, 0, 0])]);
    // And the newer array form of the same colour.
    let text = text.replace("\"colorRGB\": -3670016", "\"color\": [200, 0, 0]");
    assert_eq!(import(&text).annotations[0].class_color, Some([200, 0, 0]));
}

#[test]
fn not_json_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "notes.geojson", "this is not JSON at all");
    let err = read_geojson_file(&path).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with(&s(&path)) && message.contains("not valid JSON"), "{message}");
    let missing = dir.path().join("absent.geojson");
    assert!(read_geojson_file(&missing).unwrap_err().to_string().contains("absent.geojson"));
    // Valid JSON that is not GeoJSON is a whole-file error too.
    let path = write(dir.path(), "other.json", r#"{"type": "Topology", "objects": {}}"#);
    assert!(read_geojson_file(&path).unwrap_err().to_string().contains("Topology"));
}

#[test]
fn truncated_mid_feature_keeps_the_earlier_features() {
    let full = COLLECTION;
    // Cut inside the fourth feature (the polygon with a hole).
    let cut = full.find("[[20, 20]").unwrap();
    let imp = import(&full[..cut]);
    assert!(imp.truncated);
    assert_eq!(imp.annotations.len(), 3);
    assert_eq!(imp.annotations[2].geometry.kind_name(), "Polyline");
    // The same through a file: the summary says so.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "cut.geojson", &full[..cut]);
    let imp = read_geojson_file(&path).unwrap();
    assert!(imp.truncated && imp.summary().contains("truncated"), "{}", imp.summary());
}

#[test]
fn wrong_types_absurd_coordinates_and_detections_are_skipped_and_counted() {
    let text = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": ["1", "2"]}, "properties": {}},
      {"type": "Feature", "geometry": null, "properties": {}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1e300, 2]}, "properties": {}},
      {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1e300, 0], [1, 1], [0, 0]]]},
       "properties": {}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 6]},
       "properties": {"objectType": "detection"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [7, 8]},
       "properties": {"objectType": "cell"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [9, 10]},
       "properties": {"objectType": "annotation", "name": "kept"}}
    ]}"#;
    let imp = import(text);
    // Detections and cells are objects of their own type now, not skipped.
    let kinds: Vec<(ObjectKind, &str)> = imp.annotations.iter().map(|a| (a.kind, a.name.as_str())).collect();
    assert_eq!(kinds, [(ObjectKind::Detection, ""), (ObjectKind::Cell, ""), (ObjectKind::Annotation, "kept")]);
    assert_eq!(imp.skipped, 4);
    assert_eq!(imp.problems.len(), 4);
    let p = &imp.problems;
    assert!(p[0].starts_with("feature 1:") && p[0].contains("not a number"), "{p:?}");
    assert!(p[1].starts_with("feature 2:"), "{p:?}");
    assert!(p[2].contains("out of range") && p[3].contains("out of range"), "{p:?}");
    let indices: Vec<usize> = imp.skipped_features.iter().map(|f| f.index).collect();
    assert_eq!(indices, [1, 2, 3, 4]);
    assert!(imp.summary().contains("4 skipped"), "{}", imp.summary());
}

// ---------------------------------------------------------------------------------------------
// ASAP XML

const ASAP: &str = r##"<?xml version="1.0"?>
<ASAP_Annotations>
	<Annotations>
		<Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="metastases" Color="#F4FA58">
			<Coordinates>
				<Coordinate Order="0" X="1000.5" Y="2000.25" />
				<Coordinate Order="1" X="1100.5" Y="2000.25" />
				<Coordinate Order="3" X="1000.5" Y="2100.25" />
				<Coordinate Order="2" X="1100.5" Y="2100.25" />
			</Coordinates>
		</Annotation>
		<Annotation Name="Annotation 1" Type="Rectangle" PartOfGroup="_2" Color="#F4FA58">
			<Coordinates>
				<Coordinate Order="0" X="10" Y="20" />
				<Coordinate Order="1" X="110" Y="20" />
				<Coordinate Order="2" X="110" Y="60" />
				<Coordinate Order="3" X="10" Y="60" />
			</Coordinates>
		</Annotation>
		<Annotation Name="lymphocytes" Type="PointSet" PartOfGroup="_2" Color="#F4FA58">
			<Coordinates>
				<Coordinate Order="0" X="5,5" Y="6,25" />
				<Coordinate Order="1" X="1.5e1" Y="1E1" />
			</Coordinates>
		</Annotation>
		<Annotation Name="mitosis" Type="Dot" PartOfGroup="None" Color="#F4FA58">
			<Coordinates><Coordinate Order="0" X="300" Y="400" /></Coordinates>
		</Annotation>
		<Annotation Name="ruler" Type="Measurement" PartOfGroup="None" Color="#000000">
			<Coordinates><Coordinate Order="0" X="0" Y="0" /><Coordinate Order="1" X="300" Y="400" /></Coordinates>
		</Annotation>
		<Annotation Name="smooth" Type="Spline" PartOfGroup="metastases" Color="#F4FA58">
			<Coordinates>
				<Coordinate Order="0" X="0" Y="0" /><Coordinate Order="1" X="40" Y="0" /><Coordinate Order="2" X="20" Y="30" />
			</Coordinates>
		</Annotation>
		<Annotation Name="broken" Type="Polygon" PartOfGroup="None" Color="#F4FA58">
			<Coordinates><Coordinate Order="0" X="1" Y="one" /></Coordinates>
		</Annotation>
	</Annotations>
	<AnnotationGroups>
		<Group Name="metastases" PartOfGroup="None" Color="#ff0000"><Attributes /></Group>
		<Group Name="_2" PartOfGroup="None" Color="#64FE2E"><Attributes /></Group>
	</AnnotationGroups>
</ASAP_Annotations>
"##;

#[test]
fn asap_file_with_several_types_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "camelyon.xml", ASAP);
    let imp = store::read_any(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(imp.annotations.len(), 6);
    assert_eq!(imp.skipped, 1);
    assert!(imp.problems[0].starts_with("annotation 7") && imp.problems[0].contains("\"one\""), "{:?}", imp.problems);
    let a = &imp.annotations;
    assert_eq!(
        a[0].geometry,
        Geometry::Polygon(Polygon {
            exterior: vec![[1000.5, 2000.25], [1100.5, 2000.25], [1100.5, 2100.25], [1000.5, 2100.25]],
            holes: vec![]
        }),
        "vertices in Order"
    );
    assert_eq!((a[0].class.as_deref(), a[0].class_color), (Some("metastases"), Some([255, 0, 0])));
    assert_eq!(a[1].geometry, Geometry::Rectangle { x: 10.0, y: 20.0, width: 100.0, height: 40.0 });
    assert_eq!(a[1].class_color, Some([0x64, 0xFE, 0x2E]));
    assert_eq!(a[2].geometry, Geometry::Points { points: vec![[5.5, 6.25], [15.0, 10.0]] });
    assert_eq!((a[3].geometry.kind_name(), a[3].class.as_deref(), a[3].name.as_str()), ("Points", None, "mitosis"));
    assert_eq!(a[4].geometry, Geometry::Polyline { points: vec![[0.0, 0.0], [300.0, 400.0]] });
    assert_eq!(a[5].geometry.kind_name(), "Polygon");
    let classes: Vec<_> = imp.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(classes, ["metastases", "_2"]);

    // Whole-file problems are errors naming the file.
    let bad = write(dir.path(), "bad.xml", "<ASAP_Annotations><Annotations>");
    let err = store::read_any(&bad).unwrap_err().to_string();
    assert!(err.starts_with(&s(&bad)) && err.contains("not valid XML"), "{err}");
    let other = write(dir.path(), "other.xml", "<html><body/></html>");
    assert!(store::read_any(&other).unwrap_err().to_string().contains("<html>"));
}

fn mixed_annotations() -> (Vec<Annotation>, Vec<AnnotationClass>) {
    let classes =
        vec![AnnotationClass::new("Tumor", [200, 0, 0]), AnnotationClass::new("Stroma & fat", [150, 200, 150])];
    let mut rect = Annotation::new(Geometry::Rectangle { x: 100.25, y: 200.5, width: 300.0, height: 150.75 })
        .with_class(Some(&classes[0]));
    rect.name = "region \"A\"".into();
    let mut poly = Annotation::new(Geometry::Polygon(Polygon {
        exterior: vec![[0.1, 0.2], [1000.3, 5.7], [900.123456789, 800.000001], [3.0, 700.0]],
        holes: vec![],
    }))
    .with_class(Some(&classes[1]));
    poly.name = "margin <1mm>".into();
    let cells = Annotation::new(Geometry::Points { points: vec![[1.0, 2.0], [3.5, 4.5], [6.0, 7.0]] })
        .with_class(Some(&classes[0]));
    let dot = Annotation::new(Geometry::Points { points: vec![[42.0, 43.0]] });
    let ruler = Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [30.0, 40.0]] });
    (vec![rect, poly, cells, dot, ruler], classes)
}

#[test]
fn asap_export_import_round_trip() {
    let (annotations, classes) = mixed_annotations();
    let xml = asap::to_asap_xml(&annotations, &classes);
    let imp = asap::from_asap_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(imp.skipped, 0, "{:?}", imp.problems);
    assert_eq!(imp.annotations.len(), annotations.len());
    for (a, b) in annotations.iter().zip(&imp.annotations) {
        assert_eq!(a.geometry, b.geometry);
        assert_eq!((&a.name, &a.class, a.class_color), (&b.name, &b.class, b.class_color));
    }
    assert_eq!(imp.classes, classes);
    assert!(asap::export_losses(&annotations).is_empty());
}

#[test]
fn geojson_to_asap_to_geojson_with_convert() {
    let dir = tempfile::tempdir().unwrap();
    let (annotations, classes) = mixed_annotations();
    let source = dir.path().join("in.geojson");
    std::fs::write(&source, to_geojson_bytes(&annotations, &classes)).unwrap();
    let xml = dir.path().join("out.xml");
    let back = dir.path().join("back.geojson");

    let out = wsiview(&["annotations", "convert", &s(&source), &s(&xml)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("5 annotations") && report.contains("ASAP XML"), "{report}");
    assert!(!report.contains("lost"), "{report}");
    assert!(std::fs::read_to_string(&xml).unwrap().starts_with("<?xml"));

    let out = wsiview(&["annotations", "convert", &s(&xml), &s(&back)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("GeoJSON"), "{}", stdout(&out));

    let imp = read_geojson_file(&back).unwrap();
    assert_eq!(imp.skipped, 0);
    assert_eq!(imp.annotations.len(), annotations.len());
    for (a, b) in annotations.iter().zip(&imp.annotations) {
        assert_eq!(a.geometry, b.geometry, "rectangles and polygons exact");
        assert_eq!((&a.name, &a.class, a.class_color), (&b.name, &b.class, b.class_color));
    }
    assert_eq!(imp.classes, classes);
}

#[test]
fn convert_reports_what_asap_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let holed = Annotation::new(Geometry::Polygon(Polygon {
        exterior: square(0.0, 0.0, 100.0),
        holes: vec![square(10.0, 10.0, 5.0), square(50.0, 50.0, 5.0)],
    }));
    let ellipse = Annotation::new(Geometry::Ellipse { cx: 50.0, cy: 50.0, rx: 20.0, ry: 10.0 });
    let polyline = Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [3.0, 4.0], [3.0, 10.0]] });
    let source = dir.path().join("in.json");
    std::fs::write(&source, to_geojson_bytes(&[holed, ellipse, polyline], &[])).unwrap();
    let xml = dir.path().join("out.XML");
    let out = wsiview(&["annotations", "convert", &s(&source), &s(&xml)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("lost: 2 holes dropped from 1 polygons"), "{report}");
    assert!(report.contains("lost: 1 ellipses written as 128-vertex polygons"), "{report}");
    assert!(report.contains("lost: 1 polylines written as 2 two-point Measurements"), "{report}");
    let imp = store::read_any(&xml).unwrap();
    assert_eq!(imp.annotations.len(), 4);

    // Unknown output format and unreadable input: one line naming the file, exit 1.
    let out = wsiview(&["annotations", "convert", &s(&source), &s(&dir.path().join("out.txt"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("out.txt") && stderr(&out).lines().count() == 1, "{}", stderr(&out));
    let broken = write(dir.path(), "broken.xml", "<ASAP_Annotations>");
    let out = wsiview(&["annotations", "convert", &s(&broken), &s(&dir.path().join("x.geojson"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("broken.xml"), "{}", stderr(&out));
    assert!(!dir.path().join("x.geojson").exists());
}

// ---------------------------------------------------------------------------------------------
// wsiview annotations measure

const MPP_X: f64 = 0.5;
const MPP_Y: f64 = 0.25;

/// A document with one of each measurable shape, in two classes and unclassified.
fn measured_document(dir: &Path) -> PathBuf {
    let tumor = AnnotationClass::new("Tumor", [200, 0, 0]);
    let stroma = AnnotationClass::new("Stroma", [150, 200, 150]);
    let annotations = vec![
        Annotation::new(Geometry::Rectangle { x: 10.0, y: 20.0, width: 100.0, height: 40.0 }).with_class(Some(&tumor)),
        // 30 px at 0.5 µm and 60 px at 0.25 µm: a circle of radius 15 µm.
        Annotation::new(Geometry::Ellipse { cx: 500.0, cy: 500.0, rx: 30.0, ry: 60.0 }).with_class(Some(&tumor)),
        Annotation::new(Geometry::Polygon(Polygon {
            exterior: vec![[0.0, 0.0], [120.0, 0.0], [120.0, 80.0], [60.0, 120.0], [0.0, 80.0]],
            holes: vec![square(20.0, 20.0, 30.0)],
        }))
        .with_class(Some(&stroma)),
        Annotation::new(Geometry::Polyline { points: vec![[0.0, 0.0], [30.0, 40.0], [30.0, 100.0]] })
            .with_class(Some(&stroma)),
        Annotation::new(Geometry::Points { points: vec![[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]] }),
        Annotation::new(Geometry::Points { points: vec![[9.0, 9.0]] }).with_class(Some(&tumor)),
    ];
    let path = dir.join("doc.geojson");
    std::fs::write(&path, to_geojson_bytes(&annotations, &[tumor, stroma])).unwrap();
    path
}

/// Twice the signed shoelace area.
fn shoelace2(ring: &[[f64; 2]]) -> f64 {
    (0..ring.len())
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum()
}

fn scaled_length(points: &[[f64; 2]], closed: bool) -> f64 {
    let n = if closed { points.len() } else { points.len() - 1 };
    (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % points.len()]);
            ((b[0] - a[0]) * MPP_X).hypot((b[1] - a[1]) * MPP_Y)
        })
        .sum()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn measure_json_matches_exact_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let path = measured_document(dir.path());
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.5", "--mpp-y", "0.25", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(v["unit"], "microns");
    let f = v["features"].as_array().unwrap();
    assert_eq!(f.len(), 6);

    // Rectangle: w·h·mpp_x·mpp_y, perimeter 2(w·mpp_x + h·mpp_y).
    let rect_area = 100.0 * 40.0 * MPP_X * MPP_Y;
    assert_eq!((&f[0]["geometry"], &f[0]["class"]), (&Value::from("Rectangle"), &Value::from("Tumor")));
    assert!(close(num(&f[0], "area_um2"), rect_area));
    assert!(close(num(&f[0], "perimeter_um"), 2.0 * (100.0 * MPP_X + 40.0 * MPP_Y)));
    assert!(f[0].get("length_um").is_none() && f[0].get("points").is_none(), "{}", f[0]);

    // Ellipse: π·a·b with the semi-axes in µm; here a circle, so the perimeter is 2πr exactly.
    let (a, b) = (30.0 * MPP_X, 60.0 * MPP_Y);
    let ellipse_area = PI * a * b;
    assert!(close(num(&f[1], "area_um2"), ellipse_area));
    assert!(close(num(&f[1], "perimeter_um"), 2.0 * PI * 15.0));

    // Polygon with a hole: shoelace of the outline less the hole's, both rings in the perimeter.
    let exterior = [[0.0, 0.0], [120.0, 0.0], [120.0, 80.0], [60.0, 120.0], [0.0, 80.0]];
    let hole = square(20.0, 20.0, 30.0);
    let poly_area = (shoelace2(&exterior).abs() - shoelace2(&hole).abs()) / 2.0 * MPP_X * MPP_Y;
    assert!(close(poly_area, (120.0 * 80.0 + 120.0 * 40.0 / 2.0 - 900.0) * 0.125), "the test's own arithmetic");
    assert!(close(num(&f[2], "area_um2"), poly_area));
    assert!(close(num(&f[2], "perimeter_um"), scaled_length(&exterior, true) + scaled_length(&hole, true)));

    // Polyline with anisotropic pixels: (30, 40) px is hypot(15, 10) µm, then 60 px down is 15 µm.
    let line_length = 15f64.hypot(10.0) + 15.0;
    assert_eq!(f[3]["geometry"], "Polyline");
    assert!(close(num(&f[3], "length_um"), line_length));
    assert!(f[3].get("area_um2").is_none());

    // Points: counts only.
    assert_eq!((f[4]["points"].as_u64(), &f[4]["class"]), (Some(4), &Value::Null));
    assert_eq!(f[5]["points"].as_u64(), Some(1));
    assert!(f[4].get("area_um2").is_none());

    // Per class: Stroma, Tumor, then unclassified.
    let by = v["by_class"].as_array().unwrap();
    assert_eq!(by.len(), 3);
    assert_eq!((&by[0]["class"], by[0]["count"].as_u64()), (&Value::from("Stroma"), Some(2)));
    assert!(close(num(&by[0], "area_um2"), poly_area));
    assert!(close(num(&by[0], "length_um"), line_length));
    assert_eq!((&by[1]["class"], by[1]["count"].as_u64()), (&Value::from("Tumor"), Some(3)));
    assert!(close(num(&by[1], "area_um2"), rect_area + ellipse_area));
    assert_eq!(by[1]["points"].as_u64(), Some(1));
    assert_eq!(num(&by[1], "length_um"), 0.0);
    assert_eq!((&by[2]["class"], by[2]["count"].as_u64(), by[2]["points"].as_u64()), (&Value::Null, Some(1), Some(4)));

    // Without --mpp-y the pixels are square.
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.5", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(close(num(&v["features"][0], "area_um2"), 100.0 * 40.0 * 0.25));
}

#[test]
fn measure_csv_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = measured_document(dir.path());
    let csv = dir.path().join("m.csv");
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.25", "--csv", &s(&csv)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "index,name,class,geometry,area_um2,perimeter_um,length_um,points,object");
    let blank = lines.iter().position(|l| l.is_empty()).unwrap();
    assert_eq!(blank, 7, "six rows after the header");
    assert_eq!(lines[blank + 1], "class,count,area_um2,perimeter_um,length_um,points");
    assert_eq!(lines.len() - blank - 2, 3, "three class totals");
    assert!(lines[1].starts_with("1,,Tumor,Rectangle,250,"), "{}", lines[1]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temp file left");

    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.25"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains("area µm²") && table.contains("Totals by class") && table.contains("(unclassified)"),
        "{table}"
    );
    assert!(table.contains("250.00"), "{table}");
}

/// Numbers from a measuring tool go into reports: a truncated file is an error naming the file
/// and where it broke; `--partial` measures the complete features and says the rest was cut.
#[test]
fn measure_refuses_a_truncated_file_unless_partial() {
    let dir = tempfile::tempdir().unwrap();
    let full = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[100,0],[100,100],[0,100],[0,0]]]}, "properties": {"objectType": "annotation"}},
      {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[10,0],[10,10],[0,10],[0,0]]]}, "properties": {"objectType": "annotation"}}
    ]}"#;
    let cut = &full[..full.len() - 60];
    let path = write(dir.path(), "cut.geojson", cut);
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.5"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cut.geojson") && err.contains("line") && err.contains("column"), "{err}");
    assert!(out.stdout.is_empty(), "no partial totals: {}", String::from_utf8_lossy(&out.stdout));
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.5", "--json", "--partial"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["features"].as_array().map(Vec::len), Some(1));
    assert_eq!(num(&v["features"][0], "area_um2"), 2500.0);
}

#[test]
fn measure_asap_and_warn_about_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "slide.xml", ASAP);
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("warning") && err.contains("slide.xml") && err.contains("1 features skipped"), "{err}");
    assert!(err.contains("annotation 7"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["features"].as_array().map(Vec::len), Some(6));
    assert_eq!(num(&v["features"][1], "area_um2"), 4000.0);
    assert_eq!(num(&v["features"][4], "length_um"), 500.0);
}

#[test]
fn measure_refuses_bad_arguments_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = measured_document(dir.path());
    for bad in ["0", "-0.5", "nan", "inf", "abc"] {
        let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", bad]);
        assert_eq!(out.status.code(), Some(2), "--mpp {bad}: {}", stderr(&out));
        let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.5", "--mpp-y", bad]);
        assert_eq!(out.status.code(), Some(2), "--mpp-y {bad}");
    }
    let out = wsiview(&["annotations", "measure", &s(&path)]);
    assert_eq!(out.status.code(), Some(2), "--mpp is required");
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "1", "--json", "--csv", "x.csv"]);
    assert_eq!(out.status.code(), Some(2), "--json and --csv exclude each other");

    let missing = dir.path().join("nowhere.geojson");
    let out = wsiview(&["annotations", "measure", &s(&missing), "--mpp", "0.5"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("nowhere.geojson") && err.lines().count() == 1, "{err}");
    let garbage = write(dir.path(), "garbage.json", "{{{");
    let out = wsiview(&["annotations", "measure", &s(&garbage), "--mpp", "0.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("garbage.json"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// QuPath objects beyond annotations: detections, cells, tiles, measurements, GeometryCollections

/// The bug-report fixture, or None (with the reason printed) when the shared folder is absent.
fn qupath_fixture() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/bugreports");
    let path = dir.join("qupath-cells-measurements.geojson");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: {} is absent (third-party fixtures live there)", path.display());
        None
    }
}

/// The fixture's facts (its README, measured with shapely): object type, class, µm², µm at 0.25.
const QUPATH_FACTS: [(ObjectKind, Option<&str>, f64, f64); 5] = [
    (ObjectKind::Annotation, Some("Tumor: Positive"), 187500.000, 1750.000),
    (ObjectKind::Cell, Some("Immune cells"), 234.947, 55.219),
    (ObjectKind::Detection, Some("Tumor"), 122.369, 39.242),
    (ObjectKind::Tile, None, 7656.250, 350.000),
    (ObjectKind::Annotation, Some("Stroma"), 50000.000, 1250.000),
];

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-3
}

#[test]
fn qupath_cells_detections_tiles_and_collections_are_measured() {
    let Some(path) = qupath_fixture() else { return };
    let imp = read_geojson_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((imp.skipped, imp.annotations.len()), (0, 5), "{:?}", imp.problems);
    let rows = table::measure_all(&imp.annotations, Some(PixelSize { x: 0.25, y: 0.25 }));
    for ((a, row), (kind, class, area, perimeter)) in imp.annotations.iter().zip(&rows).zip(QUPATH_FACTS) {
        assert_eq!((a.kind, row.object, a.class.as_deref()), (kind, kind, class), "{}", a.uuid);
        let m = row.measurement;
        assert!(m.area.is_some_and(|v| near(v, area)), "{}: area {:?}, expected {area}", a.uuid, m.area);
        assert!(m.perimeter.is_some_and(|v| near(v, perimeter)), "{}: {:?}, expected {perimeter}", a.uuid, m.perimeter);
    }
    // The annotation's map of measurements, the cell's list and nucleus, the detection's packed colour.
    let [annotation, cell, detection, tile, pieces] = &imp.annotations[..] else { panic!("five objects") };
    assert_eq!(annotation.measurements.get("Num Detections"), Some(&3.0));
    assert!(annotation.locked && !cell.locked);
    assert_eq!(cell.measurements.get("Nucleus: Area"), Some(&35.2));
    assert_eq!(cell.measurements.get("Cell: Area"), Some(&235.0));
    let nucleus = cell.nucleus.as_ref().map(|n| n.bounds());
    assert_eq!(nucleus, Some([1485.0, 1488.0, 1515.0, 1512.0]), "the nucleus, inside the cell");
    assert!(cell.is_locked() && detection.is_locked() && tile.is_locked(), "analysis objects are not edited");
    assert!(!cell.clone().into_annotation().is_locked(), "until converted");
    assert_eq!(detection.class_color, Some([200, 0, 0]));
    assert_eq!(tile.measurements.len(), 2);
    assert!(matches!(&pieces.geometry, Geometry::MultiPolygon { polygons } if polygons.len() == 2));
    assert!(pieces.parts.is_empty() && !pieces.is_locked(), "a collection of areas is one editable MultiPolygon");
    // Class totals count every object by class, and say of which kinds.
    let totals = table::class_totals(&rows);
    let tumor = totals.iter().find(|t| t.class.as_deref() == Some("Tumor")).map(|t| (t.count, t.objects_text()));
    assert_eq!(tumor, Some((1, "1 detection".to_string())));
    assert_eq!(totals.iter().map(|t| t.count).sum::<usize>(), 5);
}

#[test]
fn qupath_fixture_measured_by_the_cli_in_microns() {
    let Some(path) = qupath_fixture() else { return };
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.25", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "nothing skipped, nothing to warn about");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["unit"], "microns");
    assert_eq!(v["skipped"], serde_json::json!([]));
    let features = v["features"].as_array().map_or(&[][..], Vec::as_slice);
    assert_eq!(features.len(), 5);
    for (f, (kind, class, area, perimeter)) in features.iter().zip(QUPATH_FACTS) {
        assert_eq!(f["object"], kind.name(), "{f}");
        assert_eq!(f["class"].as_str(), class, "{f}");
        assert!(near(num(f, "area_um2"), area) && near(num(f, "perimeter_um"), perimeter), "{f}");
    }
    let tumor_positive = v["by_class"].as_array().and_then(|c| c.iter().find(|t| t["class"] == "Tumor: Positive"));
    assert_eq!(tumor_positive.map(|t| t["objects"].clone()), Some(serde_json::json!({"annotation": 1})));
    // The text table shows the object types too.
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.25"]);
    let table = stdout(&out);
    assert!(table.contains(" cell ") && table.contains(" tile ") && table.contains("1 detection"), "{table}");
}

/// A cell, a detection with list-form measurements and a `names` class, a tile, and a collection
/// of an area and two lines, as a QuPath user might export them.
const QUPATH_OBJECTS: &str = r#"{"type": "FeatureCollection", "features": [
  {"type": "Feature", "id": "c1", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [20, 0], [20, 20], [0, 20], [0, 0]]]},
   "properties": {"objectType": "cell", "classification": {"names": ["Tumor", "Positive"], "color": [200, 0, 0]},
     "nucleusGeometry": {"type": "Polygon", "coordinates": [[[5, 5], [15, 5], [15, 15], [5, 15], [5, 5]]]},
     "measurements": {"Nucleus: Area": 100, "Cell: Area": 400, "Bad": null}}},
  {"type": "Feature", "id": "d1", "geometry": {"type": "Polygon", "coordinates": [[[30, 0], [40, 0], [40, 10], [30, 0]]]},
   "properties": {"objectType": "detection", "classification": {"name": "Immune cells"},
     "measurements": [{"name": "Hematoxylin: Mean", "value": 0.5}, {"name": "Eosin: Mean", "value": 0.25}, {"name": "No value"}]}},
  {"type": "Feature", "id": "t1", "geometry": {"type": "Polygon", "coordinates": [[[0, 100], [50, 100], [50, 150], [0, 150], [0, 100]]]},
   "properties": {"objectType": "tile", "isLocked": true, "measurements": {"prob": 0.75}}},
  {"type": "Feature", "id": "g1", "geometry": {"type": "GeometryCollection", "geometries": [
      {"type": "Polygon", "coordinates": [[[100, 100], [110, 100], [110, 110], [100, 110], [100, 100]]]},
      {"type": "LineString", "coordinates": [[200, 200], [230, 240]]},
      {"type": "MultiLineString", "coordinates": [[[300, 300], [300, 310]]]}]},
   "properties": {"objectType": "annotation", "name": "mixed"}}
]}"#;

#[test]
fn qupath_objects_survive_a_geojson_round_trip() {
    let imp = import(QUPATH_OBJECTS);
    assert_eq!((imp.annotations.len(), imp.skipped), (4, 0), "{:?}", imp.problems);
    let cell = &imp.annotations[0];
    assert_eq!(cell.class.as_deref(), Some("Tumor: Positive"), "names joined as QuPath shows them");
    assert_eq!(cell.measurements.len(), 2, "null (NaN) values are left out: {:?}", cell.measurements);
    let detection = &imp.annotations[1];
    let listed: Vec<(&str, f64)> = detection.measurements.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(listed, [("Eosin: Mean", 0.25), ("Hematoxylin: Mean", 0.5)], "the list form, without the valueless");
    let mixed = &imp.annotations[3];
    assert_eq!(mixed.parts.len(), 2, "two lines beside the square");
    let m = mixed.measure(Some(PixelSize { x: 1.0, y: 1.0 }));
    assert_eq!((m.area, m.perimeter, m.length), (Some(100.0), Some(40.0), Some(60.0)), "50 + 10 of lines");
    assert_eq!(mixed.bounds(), [100.0, 100.0, 300.0, 310.0]);

    // Export and read back: types, nuclei, measurements, parts, classes and locks are kept.
    let bytes = to_geojson_bytes(&imp.annotations, &imp.classes);
    let text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let types: Vec<&str> = (0..4).filter_map(|i| v["features"][i]["properties"]["objectType"].as_str()).collect();
    assert_eq!(types, ["cell", "detection", "tile", "annotation"]);
    assert_eq!(v["features"][0]["properties"]["nucleusGeometry"]["type"], "Polygon");
    assert_eq!(v["features"][3]["geometry"]["type"], "GeometryCollection");
    let back = import(&text);
    assert_eq!(back.skipped, 0);
    let strip = |a: &Annotation| Annotation { id: 0, ..a.clone() };
    let before: Vec<Annotation> = imp.annotations.iter().map(strip).collect();
    let after: Vec<Annotation> = back.annotations.iter().map(strip).collect();
    assert_eq!(after, before);

    // The autosave sidecar goes through the same code: a save and reload keeps them too.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let slide = dir.path().join("slide.svs");
    let mut saver = store::Autosaver::new(store::sidecar_path(&slide), 0);
    saver.submit(1, imp.annotations.iter().cloned().map(std::sync::Arc::new).collect(), &imp.classes);
    drop(saver);
    let loaded = store::load_for_slide_in(&slide, None);
    assert!(loaded.warning.is_none(), "{:?}", loaded.warning);
    let reloaded: Vec<Annotation> = loaded.import.annotations.iter().map(strip).collect();
    assert_eq!(reloaded, before);

    // ASAP XML writes them as ordinary shapes, and says so.
    let losses = asap::export_losses(&imp.annotations).join("\n");
    assert!(losses.contains("1 detection") && losses.contains("1 cell") && losses.contains("1 tile"), "{losses}");
    assert!(losses.contains("nuclei") && losses.contains("measurements"), "{losses}");
    let xml = asap::to_asap_xml(&imp.annotations, &imp.classes);
    let again = asap::from_asap_str(&xml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.annotations.len(), 6, "four objects, the collection's lines as their own");
}

#[test]
fn every_skipped_feature_is_listed_with_its_index() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = r#"{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}"#;
    let bad = r#"{"type": "Feature", "geometry": {"type": "Point", "coordinates": ["x", 2]}, "properties": {}}"#;
    let empty = r#"{"type": "Feature", "geometry": {"type": "GeometryCollection", "geometries": []}}"#;
    let tma = r#"{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"objectType": "tma_core"}}"#;
    // 14 bad features among good ones: more than the import names in its summary.
    let mut features = vec![good.to_string()];
    for _ in 0..12 {
        features.push(bad.to_string());
    }
    features.push(empty.to_string());
    features.push(tma.to_string());
    features.push(good.to_string());
    let path = write(dir.path(), "bad.geojson", &format!("[{}]", features.join(",")));
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.5", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("14 features skipped") && err.contains("feature 2:") && err.contains("11 more"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["unit"], "microns");
    let skipped = v["skipped"].as_array().map_or(&[][..], Vec::as_slice);
    let indices: Vec<u64> = skipped.iter().filter_map(|f| f["index"].as_u64()).collect();
    assert_eq!(indices, (2..=15).collect::<Vec<u64>>());
    assert!(skipped[12]["reason"].as_str().is_some_and(|r| r.contains("empty GeometryCollection")), "{skipped:?}");
    assert!(skipped[13]["reason"].as_str().is_some_and(|r| r.contains("tma_core")), "{skipped:?}");
    assert_eq!(v["features"].as_array().map(Vec::len), Some(2));

    // Everything skipped: with --mpp the unit is still microns (it was pixels with no rows).
    let path = write(dir.path(), "all-bad.geojson", &format!("[{bad}, {empty}]"));
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.5", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["unit"], "microns");
    assert_eq!(v["skipped"].as_array().map(Vec::len), Some(2));
    let csv = dir.path().join("all-bad.csv");
    let out = wsiview(&["annotations", "measure", &s(&path), "--mpp", "0.5", "--csv", &s(&csv)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.starts_with("index,name,class,geometry,area_um2,"), "{text}");
}
