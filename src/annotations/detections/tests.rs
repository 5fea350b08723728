use std::sync::atomic::AtomicBool;

use serde_json::Value;

use super::*;

const SMALL: &str = r#"{"type": "FeatureCollection", "features": [
{"type": "Feature", "id": "c0ffee00-0000-4000-8000-000000000001",
 "geometry": {"type": "Polygon", "coordinates": [[[10, 10], [30, 10], [30, 30], [10, 30], [10, 10]]]},
 "properties": {"objectType": "cell", "classification": {"name": "Tumor", "color": [200, 0, 0]},
  "nucleusGeometry": {"type": "Polygon", "coordinates": [[[15.5, 15.25], [25, 15], [20, 25], [15.5, 15.25]]]},
  "measurements": {"Nucleus: Area µm^2": 42.5, "DAB: Mean": 0.125, "bad": null}}},
{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[100, 100], [110, 100], [105, 108]]]},
 "properties": {"objectType": "detection", "classification": {"names": ["Stroma", "Positive"], "colorRGB": -3670016},
  "measurements": [{"name": "DAB: Mean", "value": 0.75}, {"name": "Extra", "value": 3}]}},
{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [512, 0], [512, 512], [0, 512], [0, 0]]]},
 "properties": {"objectType": "tile"}},
{"type": "Feature", "properties": {"objectType": "detection"}},
{"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [
   [[[200, 200], [220, 200], [220, 220], [200, 200]], [[205, 202], [210, 202], [210, 205], [205, 202]]],
   [[[300, 300], [310, 300], [310, 310], [300, 300]]]]},
 "properties": {"objectType": "detection", "classification": {"name": "Tumor", "color": [1, 2, 3]}}},
{"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]}, "properties": {"objectType": "detection"}},
{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9]]]},
 "properties": {"objectType": "annotation"}},
{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[1e300, 0], [9, 0], [9, 9]]]}, "properties": {}},
{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[40, 40], [50, 40], [45, 48]]]},
 "properties": {"measurements": {"DAB: Mean": NaN, "Extra": 7}}},
17
]}"#;

fn temp_path(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("wsiview-detections-{}-{k}-{name}", std::process::id()))
}

struct TempFile(PathBuf);

impl TempFile {
    fn with(name: &str, text: &[u8]) -> TempFile {
        let path = temp_path(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn load(path: &Path, chunk: usize) -> Result<(DetectionLayer, LoadReport), DetectionFileError> {
    DetectionLayer::load_chunked(path, &DetectionLimits::DEFAULT, chunk, |_, _| {}, &AtomicBool::new(false))
}

fn ring(layer: &DetectionLayer, i: usize, k: usize) -> Vec<[f32; 2]> {
    layer.outline(i).nth(k).unwrap().to_vec()
}

#[test]
fn reads_cells_detections_tiles_and_reports_problems() {
    let file = TempFile::with("small.geojson", SMALL.as_bytes());
    for chunk in [CHUNK_BYTES, 64, 7] {
        let (layer, report) = load(&file.0, chunk).unwrap();
        assert_eq!(layer.len(), 5, "chunk {chunk}: {report:?}");
        assert_eq!(report.objects, 5);
        assert_eq!(report.features, 10);
        assert_eq!(report.annotations, 1);
        assert_eq!(report.skipped, 4, "{:?}", report.problems);
        assert_eq!(report.problems[0], "feature 4: no geometry");
        assert!(report.problems[1].starts_with("feature 6: a Point is not an area"), "{}", report.problems[1]);
        assert_eq!(report.problems[2], "feature 8: coordinate 1e300 is out of range");
        assert_eq!(report.problems[3], "feature 10: not an object");
        assert!(!report.truncated);

        // The cell: outline without the closing repeat, nucleus, class, measurements.
        assert_eq!(layer.kind(0), ObjectKind::Cell);
        assert_eq!(ring(&layer, 0, 0), [[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]);
        let nucleus: Vec<&[[f32; 2]]> = layer.nucleus(0).collect();
        assert_eq!(nucleus, [&[[15.5, 15.25], [25.0, 15.0], [20.0, 25.0]][..]]);
        assert_eq!(layer.bounds(0), [10.0, 10.0, 30.0, 30.0]);
        assert_eq!(layer.centroid(0), [20.0, 20.0]);
        assert_eq!(layer.classes()[layer.class_index(0) as usize], AnnotationClass::new("Tumor", [200, 0, 0]));
        assert_eq!(layer.measurement_names(), ["Nucleus: Area µm^2", "DAB: Mean", "Extra"]);
        assert_eq!(layer.measurement(0, 0), Some(42.5));
        assert_eq!(layer.measurement(0, 1), Some(0.125));
        assert_eq!(layer.measurement(0, 2), None);

        // The detection: derived class name, packed colour, measurements as a list.
        assert_eq!(layer.kind(1), ObjectKind::Detection);
        assert_eq!(layer.nucleus(1).count(), 0);
        assert_eq!(
            layer.classes()[layer.class_index(1) as usize],
            AnnotationClass::new("Stroma: Positive", [200, 0, 0])
        );
        assert_eq!(
            (layer.measurement(1, 0), layer.measurement(1, 1), layer.measurement(1, 2)),
            (None, Some(0.75), Some(3.0))
        );

        // The tile, unclassified.
        assert_eq!(layer.kind(2), ObjectKind::Tile);
        assert_eq!(layer.class_index(2), UNCLASSIFIED);
        assert_eq!(layer.class_label(UNCLASSIFIED), "Unclassified");

        // The MultiPolygon: the outer ring of each polygon, the hole left out; the class keeps
        // the colour of its first use.
        assert_eq!(layer.outline(3).count(), 2);
        assert_eq!(ring(&layer, 3, 0), [[200.0, 200.0], [220.0, 200.0], [220.0, 220.0]]);
        assert_eq!(ring(&layer, 3, 1), [[300.0, 300.0], [310.0, 300.0], [310.0, 310.0]]);
        assert_eq!(layer.class_index(3), layer.class_index(0));
        assert_eq!(layer.classes().len(), 3);

        // Python's NaN: the feature is read, the NaN measurement left out; no objectType: a detection.
        assert_eq!(layer.kind(4), ObjectKind::Detection);
        assert_eq!((layer.measurement(4, 1), layer.measurement(4, 2)), (None, Some(7.0)));
        assert_eq!(layer.measurement_range(1), Some([0.125, 0.75]));
        assert_eq!(layer.measurement_range(0), Some([42.5, 42.5]));
    }
}

#[test]
fn written_features_are_the_original_bytes() {
    let file = TempFile::with("round.geojson", SMALL.as_bytes());
    let (layer, _) = load(&file.0, 50).unwrap();
    let out = TempFile(temp_path("out.geojson"));
    layer.write_geojson(&out.0, |_| true).unwrap();
    // serde_json cannot read Python's NaN (written back as it was): compare after the same cleaning.
    let as_value = |bytes: &[u8]| -> Value {
        let text = load::cleaned(bytes).unwrap_or_else(|| String::from_utf8(bytes.to_vec()).unwrap());
        serde_json::from_str(&text).unwrap()
    };
    let written = as_value(&std::fs::read(&out.0).unwrap());
    let features = written["features"].as_array().unwrap();
    assert_eq!(features.len(), layer.len());
    for (i, f) in features.iter().enumerate() {
        let (offset, len) = layer.feature_range(i);
        assert_eq!(f, &as_value(&SMALL.as_bytes()[offset as usize..offset as usize + len as usize]));
    }
    // The bytes themselves.
    let text = std::fs::read(&out.0).unwrap();
    for i in 0..layer.len() {
        let (offset, len) = layer.feature_range(i);
        let original = &SMALL.as_bytes()[offset as usize..offset as usize + len as usize];
        assert!(memchr::memmem::find(&text, original).is_some(), "object {i}");
    }
    // A selection, and reading it back gives the same objects.
    layer.write_geojson(&out.0, |i| i % 2 == 0).unwrap();
    let (again, report) = load(&out.0, CHUNK_BYTES).unwrap();
    assert_eq!((again.len(), report.skipped), (3, 0));
    assert_eq!(again.measurement(2, again.measurement_column("Extra").unwrap()), Some(7.0));
    assert_eq!((again.kind(1), again.nucleus(0).count()), (ObjectKind::Tile, 1));
}

#[test]
fn changed_source_is_refused_on_export() {
    let file = TempFile::with("changed.geojson", SMALL.as_bytes());
    let (layer, _) = load(&file.0, CHUNK_BYTES).unwrap();
    let out = TempFile(temp_path("changed-out.geojson"));
    std::fs::write(&out.0, b"previous").unwrap();
    let mut text = SMALL.as_bytes().to_vec();
    text.extend_from_slice(b"\n");
    std::fs::write(&file.0, &text).unwrap();
    let err = layer.write_geojson(&out.0, |_| true).unwrap_err();
    assert!(matches!(err, DetectionFileError::SourceChanged { .. }), "{err}");
    assert!(err.to_string().contains("changed.geojson"), "{err}");
    assert_eq!(std::fs::read(&out.0).unwrap(), b"previous", "the old output is kept");
    std::fs::remove_file(&file.0).unwrap();
    assert!(matches!(layer.write_geojson(&out.0, |_| true), Err(DetectionFileError::Read { .. })));
}

#[test]
fn truncated_file_keeps_what_came_before_the_cut() {
    let cut = SMALL.find("{\"type\": \"Feature\", \"geometry\": {\"type\": \"MultiPolygon\"").unwrap() + 60;
    let file = TempFile::with("cut.geojson", &SMALL.as_bytes()[..cut]);
    for chunk in [CHUNK_BYTES, 33] {
        let (layer, report) = load(&file.0, chunk).unwrap();
        assert!(report.truncated);
        assert!(report.cut.as_deref().unwrap().contains("inside feature 5"), "{:?}", report.cut);
        assert_eq!(layer.len(), 3);
        assert_eq!(report.skipped, 1);
        assert!(report.summary().contains("truncated"));
    }
    // Cut right after a feature, before the list closes: that feature is kept.
    let end = SMALL.find("\n17").unwrap();
    let file = TempFile::with("cut2.geojson", &SMALL.as_bytes()[..end - 1]);
    let (layer, report) = load(&file.0, CHUNK_BYTES).unwrap();
    assert_eq!((layer.len(), report.truncated), (5, true));
    // Nothing GeoJSON at all.
    for (text, what) in [("", "empty"), ("{\"type\": \"Featu", "ends before"), ("true", "expected GeoJSON")] {
        let file = TempFile::with("bad.geojson", text.as_bytes());
        let err = load(&file.0, CHUNK_BYTES).unwrap_err();
        assert!(matches!(err, DetectionFileError::Format { .. }) && err.to_string().contains(what), "{err}");
    }
}

#[test]
fn single_feature_and_bare_array() {
    let single = r#"{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4]]]},
      "properties": {"objectType": "cell", "features": []}}"#;
    let file = TempFile::with("single.geojson", single.as_bytes());
    let (layer, report) = load(&file.0, 10).unwrap();
    assert_eq!((layer.len(), report.features), (1, 1));
    assert_eq!(layer.feature_range(0), (0, single.len() as u32));
    let other = TempFile::with("other.geojson", br#"{"type": "Topology", "objects": {}}"#);
    assert!(matches!(load(&other.0, 10), Err(DetectionFileError::Format { .. })));
    let bare = format!("\u{feff}[{single}, {single}]");
    let file = TempFile::with("bare.geojson", bare.as_bytes());
    let (layer, _) = load(&file.0, 10).unwrap();
    assert_eq!(layer.len(), 2);
    assert_eq!(layer.feature_range(0).0, 4);
}

#[test]
fn cancel_and_caps() {
    let file = TempFile::with("caps.geojson", SMALL.as_bytes());
    let err = DetectionLayer::load(&file.0, |_, _| {}, &AtomicBool::new(true)).unwrap_err();
    assert!(matches!(err, DetectionFileError::Cancelled { .. }), "{err}");
    let few = DetectionLimits { objects: 3, ..DetectionLimits::DEFAULT };
    let err = DetectionLayer::load_with_limits(&file.0, &few, |_, _| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(err, DetectionFileError::TooLarge { .. }) && err.to_string().contains("more than 3 objects"),
        "{err}"
    );
    let small = DetectionLimits { vertices_per_object: 5, measurements: 1, ..DetectionLimits::DEFAULT };
    let (layer, report) =
        DetectionLayer::load_with_limits(&file.0, &small, |_, _| {}, &AtomicBool::new(false)).unwrap();
    // The cell (4 + 3 vertices) and the MultiPolygon (6) are skipped.
    assert_eq!(layer.len(), 3, "{:?}", report.problems);
    assert_eq!(report.problems[0], "feature 1: 7 vertices, more than the 5 one object may have");
    assert!(report.problems[2].starts_with("feature 5: 6 vertices"), "{:?}", report.problems);
    assert_eq!(layer.measurement_names(), ["DAB: Mean"]);
    assert_eq!(report.measurements_left_out, 1);
    // Features of 458 and 336 bytes over a 320-byte cap, within one chunk and across chunks.
    for chunk in [CHUNK_BYTES, 64] {
        let small = DetectionLimits { feature_bytes: 320, ..DetectionLimits::DEFAULT };
        let (layer, report) =
            DetectionLayer::load_chunked(&file.0, &small, chunk, |_, _| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(layer.len(), 3, "{:?}", report.problems);
        assert_eq!(report.problems[0], "feature 1: more than 320 bytes, the most one feature may take");
        assert!(report.problems[2].starts_with("feature 5: more than 320 bytes"), "{:?}", report.problems);
    }
    // Progress ends at the file's size.
    let last = std::cell::Cell::new((0, 0));
    DetectionLayer::load(&file.0, |done, total| last.set((done, total)), &AtomicBool::new(false)).unwrap();
    assert_eq!(last.get(), (SMALL.len() as u64, SMALL.len() as u64));
}

#[test]
fn queries_and_counts_match_brute_force() {
    let path = TempFile(temp_path("synthetic.geojson"));
    write_synthetic_cells(&path.0, 3000, 20_000.0, 15_000.0, 7).unwrap();
    let (layer, report) = load(&path.0, 100_000).unwrap();
    assert_eq!((layer.len(), report.skipped), (3000, 0), "{:?}", report.problems);
    assert_eq!(layer.classes().len(), 5);
    assert_eq!(layer.measurement_names().len(), 5);
    assert!(layer.outline(0).next().unwrap().len() == 12 && layer.nucleus(0).next().unwrap().len() == 12);
    // The same seed gives the same file.
    let again = TempFile(temp_path("synthetic2.geojson"));
    write_synthetic_cells(&again.0, 3000, 20_000.0, 15_000.0, 7).unwrap();
    assert_eq!(std::fs::read(&path.0).unwrap(), std::fs::read(&again.0).unwrap());

    let mut state = 99u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::new();
    for _ in 0..50 {
        let (x, y) = (rand() * 22_000.0 - 1000.0, rand() * 17_000.0 - 1000.0);
        let area = [x, y, x + rand() * 6000.0, y + rand() * 6000.0];
        layer.query_into(area, &mut out);
        let mut got: Vec<usize> = out.iter().map(|&i| i as usize).collect();
        got.sort_unstable();
        let meets = |b: [f64; 4]| b[0] <= area[2] && b[2] >= area[0] && b[1] <= area[3] && b[3] >= area[1];
        let want: Vec<usize> = (0..layer.len()).filter(|&i| meets(layer.bounds(i))).collect();
        assert_eq!(got, want);

        let inside = |c: [f64; 2]| c[0] >= area[0] && c[0] <= area[2] && c[1] >= area[1] && c[1] <= area[3];
        let mut counts = vec![0u64; layer.classes().len()];
        for i in (0..layer.len()).filter(|&i| inside(layer.centroid(i))) {
            counts[layer.class_index(i) as usize] += 1;
        }
        assert_eq!(layer.count_by_class(area), counts);

        // A star-shaped polygon of 40 vertices around a random centre.
        let (cx, cy, r) = (rand() * 20_000.0, rand() * 15_000.0, 500.0 + rand() * 4000.0);
        let polygon: Vec<[f64; 2]> = (0..40)
            .map(|k| {
                let t = k as f64 / 40.0 * std::f64::consts::TAU;
                let rr = if k % 2 == 0 { r } else { r * 0.4 };
                [cx + rr * t.cos(), cy + rr * t.sin()]
            })
            .collect();
        let mut counts = vec![0u64; layer.classes().len()];
        for i in (0..layer.len()).filter(|&i| point_in_polygon(&polygon, layer.centroid(i))) {
            counts[layer.class_index(i) as usize] += 1;
        }
        assert_eq!(layer.count_by_class_in_polygon(&polygon), counts);
    }
    assert_eq!(layer.query([1e9, 1e9, 2e9, 2e9]).count(), 0);
    assert_eq!(layer.query([f64::NAN, 0.0, 1.0, 1.0]).count(), 0);
    assert_eq!(layer.query([-1e9, -1e9, 1e9, 1e9]).count(), layer.len());
    assert_eq!(layer.count_by_class_in_polygon(&[[0.0, 0.0], [1.0, 1.0]]).iter().sum::<u64>(), 0);
    assert!(layer.heap_bytes() > 3000 * 24 * 8);
}

#[test]
fn large_objects_are_found_too() {
    // A tile over the whole extent beside many small detections: listed once, outside the grid cells.
    let mut text = String::from("[");
    text += r#"{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10000, 0], [10000, 10000], [0, 10000]]]}, "properties": {"objectType": "tile"}}"#;
    for k in 0..400 {
        let (x, y) = ((k % 20) as f64 * 500.0, (k / 20) as f64 * 500.0);
        text += &format!(
            r#",{{"type": "Feature", "geometry": {{"type": "Polygon", "coordinates": [[[{x}, {y}], [{}, {y}], [{x}, {}]]]}}}}"#,
            x + 10.0,
            y + 10.0
        );
    }
    text += "]";
    let file = TempFile::with("large.geojson", text.as_bytes());
    let (layer, _) = load(&file.0, CHUNK_BYTES).unwrap();
    assert_eq!(layer.len(), 401);
    let mut got: Vec<usize> = layer.query([990.0, 990.0, 1010.0, 1010.0]).collect();
    got.sort_unstable();
    assert_eq!(got, [0, 43], "the tile and detection k = 42");
    assert_eq!(layer.extent(), Some([0.0, 0.0, 10000.0, 10000.0]));
}

#[test]
fn colours_by_class_and_measurement() {
    assert_eq!(ColorMap::Viridis.color_at(0.0), [68, 1, 84]);
    assert_eq!(ColorMap::Viridis.color_at(1.0), [253, 231, 37]);
    assert_eq!(ColorMap::Viridis.color_at(7.0), [253, 231, 37]);
    assert_eq!(ColorMap::Jet.color_at(-1.0), [0, 0, 128]);
    assert_eq!(ColorMap::Jet.color_at(1.0), [128, 0, 0]);
    assert_eq!(ColorMap::Jet.color_at(0.5), [128, 255, 128]);
    assert_eq!(ColorMap::CoolWarm.color_at(0.5), [221, 221, 221]);
    assert_eq!(ColorMap::CoolWarm.color_at(f32::NAN), NO_VALUE_COLOR);

    let file = TempFile::with("colours.geojson", SMALL.as_bytes());
    let (mut layer, _) = load(&file.0, CHUNK_BYTES).unwrap();
    assert_eq!(layer.color_of(0, &ColorBy::Class), [200, 0, 0]);
    assert_eq!(layer.color_of(2, &ColorBy::Class), UNCLASSIFIED_COLOR);
    let by = ColorBy::Measurement { column: 1, lo: 0.125, hi: 0.75, map: ColorMap::Viridis };
    assert_eq!(layer.color_of(0, &by), [68, 1, 84]);
    assert_eq!(layer.color_of(1, &by), [253, 231, 37]);
    assert_eq!(layer.color_of(2, &by), NO_VALUE_COLOR);
    let legend = layer.legend(&by, 3);
    assert_eq!(legend.len(), 4);
    assert_eq!((legend[0].label.as_str(), legend[0].value), ("0.125", Some(0.125)));
    assert_eq!(legend[2].color, [253, 231, 37]);
    assert_eq!(legend[3].label, "no value");
    let classes: Vec<String> = layer.legend(&ColorBy::Class, 0).into_iter().map(|e| e.label).collect();
    assert_eq!(classes, ["Unclassified", "Tumor", "Stroma: Positive"]);

    layer.set_class_visible(1, false);
    assert!(!layer.is_visible(0) && layer.is_visible(1) && !layer.class_visible(1) && layer.class_visible(0));
    layer.set_opacity(2.0);
    assert_eq!(layer.opacity(), 1.0);
    layer.set_opacity(0.25);
    assert_eq!(layer.opacity(), 0.25);
}
