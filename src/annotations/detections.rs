//! A detection layer: the QuPath detections, cells and tiles of one slide — up to millions of
//! them — held compactly for drawing, colouring, counting and writing back unchanged.
//!
//! **Coordinates.** Level-0 slide pixels, x to the right and y down from the image's top-left
//! corner. The public API takes and gives `f64` (areas `[x0, y0, x1, y1]`, points `[x, y]`);
//! vertices, bounds and centroids are *stored* as `f32` (a 100,000 px slide keeps about
//! 0.008 px), which halves the memory of a million cells.
//!
//! **What is kept of each feature.** Its object kind ([`ObjectKind`]: detection, cell or tile;
//! a feature without `objectType` is a detection, one with `objectType` "annotation" is left out
//! and counted in [`LoadReport::annotations`]); the outer ring of each polygon of its geometry
//! (Polygon, MultiPolygon, and the polygons of a GeometryCollection), without the closing repeat
//! of the first vertex; the same for a cell's `nucleusGeometry`; its class (name and the colour of
//! the class's first use, as [`super::geojson`] reads `classification`); its finite numeric
//! measurements (as `f32`, about 7 significant digits); and the byte range of its text in the
//! source file. Holes are not kept for drawing, and neither are any other properties — but
//! [`DetectionLayer::write_geojson`] copies each feature's original bytes, so nothing is lost on
//! export. Points and lines are not areas: such features are skipped and counted.
//!
//! **Loading** ([`DetectionLayer::load`]) streams the file in 32 MiB chunks: a byte scanner
//! (tracking strings, escapes and bracket depth) splits the `features` array (or a bare array of
//! Features, or one Feature) into feature texts, which rayon threads parse with typed serde
//! visitors while the next chunk is read. Features that cannot be read are skipped and counted,
//! the first few listed ("feature 12: no geometry"); a truncated file keeps the features before
//! the cut. Sizes are bounded before allocation ([`DetectionLimits`]): a file over a cap is an
//! error ([`DetectionFileError::TooLarge`]) rather than an exhausted memory. Progress is reported
//! after each chunk and the load can be cancelled between chunks.
//!
//! **Queries.** A uniform grid over object bounds ([`DetectionLayer::query`]); counts per class
//! ([`DetectionLayer::count_by_class`], [`DetectionLayer::count_by_class_in_polygon`]) count an
//! object when its centroid (the area centroid of its outline) is inside.
//!
//! **Colours.** By class colour or by a measurement through a [`ColorMap`] ([`ColorBy`],
//! [`DetectionLayer::color_of`], [`DetectionLayer::legend`]); per-class visibility and a layer
//! opacity are kept here for the viewer.
//!
//! **Errors** are [`DetectionFileError`]s naming the file: the source for reading, the output for
//! writing, and [`DetectionFileError::SourceChanged`] when the source changed since loading.
//!
//! Threads: the load uses rayon's global pool; a caller in a UI runs it on a background thread.

#![warn(missing_docs)]

mod load;
mod synthetic;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use rayon::prelude::*;

use super::error::{DetectionFileError, FormatError};
use super::geojson::PROBLEMS_LISTED;
use super::model::{AnnotationClass, ObjectKind, UNCLASSIFIED_COLOR};
use load::{Batch, Element, FeatureCaps, Mode, Scanner};

pub use synthetic::write_synthetic_cells;

/// Bytes read from the source file at a time while loading.
pub const CHUNK_BYTES: usize = 32 << 20;

/// Class index of objects without a class (entry 0 of [`DetectionLayer::classes`], named "").
pub const UNCLASSIFIED: u16 = 0;

/// Colour of objects without a value for the measurement they are coloured by.
pub const NO_VALUE_COLOR: [u8; 3] = [128, 128, 128];

/// Caps on what a detection file may make the layer allocate. A file over a cap is refused with
/// [`DetectionFileError::TooLarge`] (or, per feature, skipped), never read into exhausted memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectionLimits {
    /// Most objects (count). Default 4,000,000 (about 1.1 GB for cells like QuPath's).
    pub objects: usize,
    /// Most vertices of all objects together (count, at most 2^32 − 1; 8 bytes each).
    /// Default 2^27 (1 GiB of vertices).
    pub vertices: usize,
    /// Most vertices of one object, outline and nucleus together (count); a feature with more is
    /// skipped. Default 65,536.
    pub vertices_per_object: usize,
    /// Largest feature text (bytes, below 4 GiB); a longer feature is skipped without being kept
    /// in memory. Default 64 MiB.
    pub feature_bytes: usize,
    /// Most measurement columns (count); further names are left out and counted in
    /// [`LoadReport::measurements_left_out`]. Default 256.
    pub measurements: usize,
    /// Most measurement values, objects × columns (count, 4 bytes each). Default 2^27 (512 MiB).
    pub measurement_values: usize,
    /// Most classes (count, at most 65,535). Default 4096.
    pub classes: usize,
    /// Largest absolute coordinate, level-0 pixels; a feature with a larger one (or NaN) is
    /// skipped. Default [`crate::Limits::annotation_coordinate`] (10^8).
    pub coordinate: f64,
}

impl DetectionLimits {
    /// The caps [`DetectionLayer::load`] uses (values in each field's doc).
    pub const DEFAULT: DetectionLimits = DetectionLimits {
        objects: 4_000_000,
        vertices: 1 << 27,
        vertices_per_object: 65_536,
        feature_bytes: 64 << 20,
        measurements: 256,
        measurement_values: 1 << 27,
        classes: 4096,
        coordinate: crate::Limits::DEFAULT.annotation_coordinate,
    };
}

impl Default for DetectionLimits {
    /// [`DetectionLimits::DEFAULT`].
    fn default() -> Self {
        DetectionLimits::DEFAULT
    }
}

/// What a load read, skipped and left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Objects in the layer.
    pub objects: usize,
    /// Elements of the features array seen (objects + skipped + annotations).
    pub features: usize,
    /// Features that could not be read.
    pub skipped: usize,
    /// The first problems ([`PROBLEMS_LISTED`] at most), one line each ("feature 12: no geometry").
    pub problems: Vec<String>,
    /// Features with `objectType` "annotation" (or QuPath 0.2's `PathAnnotationObject`): not part
    /// of a detection layer, left out (import them with [`super::geojson`]).
    pub annotations: usize,
    /// Distinct measurement names beyond [`DetectionLimits::measurements`], not kept.
    pub measurements_left_out: usize,
    /// The file stopped early; the objects are those before the cut.
    pub truncated: bool,
    /// Where a truncated file broke.
    pub cut: Option<String>,
    /// Bytes of the file read.
    pub bytes: u64,
}

impl LoadReport {
    /// One line for the user: "1,000,000 objects; 2 skipped (feature 3: …)".
    pub fn summary(&self) -> String {
        let mut s = format!("{} objects", crate::text::group_digits(self.objects as u64));
        if self.truncated {
            s += "; the file is truncated, objects before the cut were read";
        }
        if self.annotations > 0 {
            s += &format!("; {} annotations left out", self.annotations);
        }
        if self.skipped > 0 {
            s += &format!("; {} skipped ({})", self.skipped, self.problems.join("; "));
        }
        if self.measurements_left_out > 0 {
            s += &format!("; {} measurement names over the cap left out", self.measurements_left_out);
        }
        s
    }

    fn skip(&mut self, number: usize, reason: &str) {
        self.skipped += 1;
        if self.problems.len() < PROBLEMS_LISTED {
            self.problems.push(format!("feature {number}: {reason}"));
        }
    }
}

/// The source file of a layer as it was when loaded: where each object's feature text is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The GeoJSON file.
    pub path: PathBuf,
    /// Its size when loaded, bytes.
    pub len: u64,
    /// Its modification time when loaded (None where the platform gives none).
    pub modified: Option<SystemTime>,
}

/// How objects are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ColorBy {
    /// Each object in its class's colour.
    #[default]
    Class,
    /// By the value of measurement `column` ([`DetectionLayer::measurement_names`]) through
    /// `map`: `lo` and below get the map's first colour, `hi` and above its last; objects without
    /// a value get [`NO_VALUE_COLOR`].
    Measurement {
        /// Index into [`DetectionLayer::measurement_names`].
        column: usize,
        /// Value at the map's start.
        lo: f32,
        /// Value at the map's end.
        hi: f32,
        /// The colour map.
        map: ColorMap,
    },
}

/// A colour map from 0 to 1, as a small table of evenly spaced sRGB stops interpolated linearly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ColorMap {
    /// Matplotlib's viridis: perceptually uniform, dark blue to yellow; readable in grey and by
    /// colour-blind users.
    #[default]
    Viridis,
    /// The classic rainbow (dark blue, cyan, yellow, dark red): strong contrast, not uniform.
    Jet,
    /// Moreland's cool-warm diverging map (blue, grey, red), for values around a midpoint.
    CoolWarm,
}

const VIRIDIS: [[u8; 3]; 11] = [
    [68, 1, 84],
    [72, 36, 117],
    [65, 68, 135],
    [53, 95, 141],
    [42, 120, 142],
    [33, 145, 140],
    [34, 168, 132],
    [68, 191, 112],
    [122, 209, 81],
    [189, 223, 38],
    [253, 231, 37],
];

const JET: [[u8; 3]; 9] = [
    [0, 0, 128],
    [0, 0, 255],
    [0, 128, 255],
    [0, 255, 255],
    [128, 255, 128],
    [255, 255, 0],
    [255, 128, 0],
    [255, 0, 0],
    [128, 0, 0],
];

const COOL_WARM: [[u8; 3]; 9] = [
    [59, 76, 192],
    [98, 130, 234],
    [141, 176, 254],
    [184, 208, 249],
    [221, 221, 221],
    [245, 196, 173],
    [244, 154, 123],
    [222, 96, 77],
    [180, 4, 38],
];

impl ColorMap {
    /// Every map, in the order a menu lists them.
    pub const ALL: [ColorMap; 3] = [ColorMap::Viridis, ColorMap::Jet, ColorMap::CoolWarm];

    /// For menus: "Viridis", "Jet", "Cool-warm".
    pub fn label(self) -> &'static str {
        match self {
            ColorMap::Viridis => "Viridis",
            ColorMap::Jet => "Jet",
            ColorMap::CoolWarm => "Cool-warm",
        }
    }

    fn stops(self) -> &'static [[u8; 3]] {
        match self {
            ColorMap::Viridis => &VIRIDIS,
            ColorMap::Jet => &JET,
            ColorMap::CoolWarm => &COOL_WARM,
        }
    }

    /// The colour at `t` (0 the start, 1 the end; outside clamps; NaN gives [`NO_VALUE_COLOR`]).
    pub fn color_at(self, t: f32) -> [u8; 3] {
        if t.is_nan() {
            return NO_VALUE_COLOR;
        }
        let stops = self.stops();
        let x = t.clamp(0.0, 1.0) * (stops.len() - 1) as f32;
        let k = (x.floor() as usize).min(stops.len() - 2);
        let f = x - k as f32;
        let (a, b) = (stops[k], stops[k + 1]);
        std::array::from_fn(|c| (f32::from(a[c]) + (f32::from(b[c]) - f32::from(a[c])) * f).round() as u8)
    }
}

/// One row of a legend: a colour and what it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct LegendEntry {
    /// A class name ("Unclassified" for index 0), a value ("12.5"), or "no value".
    pub label: String,
    /// Its colour.
    pub color: [u8; 3],
    /// The measurement value it stands for (None for classes and "no value").
    pub value: Option<f32>,
}

/// The detection layer of one slide. Objects are numbered `0..len()` in file order.
pub struct DetectionLayer {
    source: SourceFile,
    classes: Vec<AnnotationClass>,
    class_visible: Vec<bool>,
    opacity: f32,
    kinds: Vec<ObjectKind>,
    class_of: Vec<u16>,
    /// Object i's rings are `object_rings[i]..object_rings[i + 1]` (len n + 1).
    object_rings: Vec<u32>,
    /// How many of an object's rings are its outline (the rest are its nucleus).
    outline_rings: Vec<u16>,
    /// Ring r's vertices are `ring_starts[r]..ring_starts[r + 1]` (len rings + 1).
    ring_starts: Vec<u32>,
    vertices: Vec<[f32; 2]>,
    bounds: Vec<[f32; 4]>,
    centroids: Vec<[f32; 2]>,
    feature_offsets: Vec<u64>,
    feature_lens: Vec<u32>,
    measurement_names: Vec<String>,
    columns: Vec<Vec<f32>>,
    ranges: Vec<Option<[f32; 2]>>,
    grid: Grid,
}

impl std::fmt::Debug for DetectionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectionLayer")
            .field("source", &self.source)
            .field("objects", &self.len())
            .field("classes", &self.classes.len())
            .field("measurements", &self.measurement_names.len())
            .finish()
    }
}

impl DetectionLayer {
    /// Load a QuPath GeoJSON file (a FeatureCollection, a bare array of Features, or one Feature)
    /// with [`DetectionLimits::DEFAULT`]. `progress(bytes_done, bytes_total)` is called after
    /// each chunk; setting `cancel` stops the load between chunks with
    /// [`DetectionFileError::Cancelled`].
    pub fn load(
        path: &Path,
        progress: impl Fn(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<(DetectionLayer, LoadReport), DetectionFileError> {
        Self::load_with_limits(path, &DetectionLimits::DEFAULT, progress, cancel)
    }

    /// [`DetectionLayer::load`] with other caps.
    pub fn load_with_limits(
        path: &Path,
        limits: &DetectionLimits,
        progress: impl Fn(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<(DetectionLayer, LoadReport), DetectionFileError> {
        Self::load_chunked(path, limits, CHUNK_BYTES, progress, cancel)
    }

    /// The load, reading `chunk` bytes at a time (small in tests, to cross chunk edges often).
    fn load_chunked(
        path: &Path,
        limits: &DetectionLimits,
        chunk: usize,
        progress: impl Fn(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<(DetectionLayer, LoadReport), DetectionFileError> {
        let read_error = |error: io::Error| DetectionFileError::Read { path: path.to_path_buf(), error };
        let format_error = |problem: FormatError| DetectionFileError::Format { path: path.to_path_buf(), problem };
        let mut file = crate::files::open_regular(path).map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        let total = meta.len();
        let source = SourceFile { path: path.to_path_buf(), len: total, modified: meta.modified().ok() };
        let caps = FeatureCaps {
            coordinate: limits.coordinate,
            vertices: limits.vertices_per_object,
            bytes: limits.feature_bytes.min(u32::MAX as usize - 1),
        };
        let mut builder = Builder::new(path, *limits);
        let mut report = LoadReport::default();

        // The first chunk; a UTF-8 byte order mark is skipped.
        let mut cur: Vec<u8> = Vec::with_capacity(chunk.min(total as usize + 16));
        let mut elements = Vec::new();
        let (read, eof) = read_chunk(&mut file, &mut cur, chunk).map_err(read_error)?;
        let bom = if cur.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        let mut scanner = Scanner::new(bom, caps.bytes as u64);
        scanner.scan(&cur[bom as usize..], &mut elements).map_err(format_error)?;
        let mut bytes_read = read as u64;
        let mut eof = eof;
        let mut cur_start = 0u64;
        let mut next: Vec<u8> = Vec::new();
        let mut cut = None;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(DetectionFileError::Cancelled { path: path.to_path_buf() });
            }
            let finished = eof || scanner.mode == Mode::Done;
            if finished && scanner.mode != Mode::Done {
                cut = scanner.finish(&mut elements).map_err(format_error)?;
            }
            // The bytes of an element still open go to the front of the next buffer.
            let keep = scanner.keep_from();
            next.clear();
            if !finished {
                next.reserve(chunk + (cur_start + cur.len() as u64 - keep) as usize);
                next.extend_from_slice(&cur[(keep - cur_start) as usize..]);
            }
            let mut next_elements = Vec::new();
            let (batches, read_result) = rayon::join(
                || parse_elements(&cur, cur_start, &elements, caps),
                || -> Result<(usize, bool), DetectionFileError> {
                    if finished {
                        return Ok((0, true));
                    }
                    let before = next.len();
                    let (read, eof) = read_chunk(&mut file, &mut next, chunk).map_err(read_error)?;
                    scanner.scan(&next[before..], &mut next_elements).map_err(format_error)?;
                    Ok((read, eof))
                },
            );
            if scanner.single {
                // One Feature: a top-level object that is not a Feature is not GeoJSON at all.
                if let Some((_, reason, true)) = batches.iter().flat_map(|b| &b.skipped).next() {
                    return Err(format_error(FormatError::NotGeoJson(format!(
                        "expected a FeatureCollection or Feature: {reason}"
                    ))));
                }
            }
            builder.merge(&batches, &mut report)?;
            drop(batches);
            if builder.len() > 0 && !builder.reserved {
                builder.reserve(total, keep.max(1));
            }
            let (read, now_eof) = read_result?;
            bytes_read += read as u64;
            progress(bytes_read, total.max(bytes_read));
            if finished {
                break;
            }
            eof = now_eof;
            std::mem::swap(&mut cur, &mut next);
            cur_start = keep;
            elements = next_elements;
        }
        progress(total.max(bytes_read), total.max(bytes_read));
        report.features = scanner.number;
        report.measurements_left_out = builder.left_out.len();
        report.truncated = cut.is_some();
        report.cut = cut;
        report.bytes = bytes_read;
        let layer = builder.finish(source);
        report.objects = layer.len();
        Ok((layer, report))
    }

    /// The source file and its state when loaded.
    pub fn source(&self) -> &SourceFile {
        &self.source
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether the layer has no objects.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Detection, cell or tile.
    pub fn kind(&self, i: usize) -> ObjectKind {
        self.kinds[i]
    }

    /// The classes, index 0 ([`UNCLASSIFIED`]) for objects without one (named "", in
    /// [`UNCLASSIFIED_COLOR`]), then each class in order of first use with the colour of its
    /// first use (unclassified colour when the file gave none).
    pub fn classes(&self) -> &[AnnotationClass] {
        &self.classes
    }

    /// A class's name for display: "Unclassified" for index 0.
    pub fn class_label(&self, class: u16) -> &str {
        match self.classes.get(usize::from(class)) {
            Some(c) if class != UNCLASSIFIED => &c.name,
            _ => "Unclassified",
        }
    }

    /// The class index of object `i` (into [`DetectionLayer::classes`]).
    pub fn class_index(&self, i: usize) -> u16 {
        self.class_of[i]
    }

    /// Show or hide a class's objects (for drawing; queries and counts still see them).
    pub fn set_class_visible(&mut self, class: u16, visible: bool) {
        if let Some(v) = self.class_visible.get_mut(usize::from(class)) {
            *v = visible;
        }
    }

    /// Whether a class's objects are shown (all are after a load).
    pub fn class_visible(&self, class: u16) -> bool {
        self.class_visible.get(usize::from(class)).copied().unwrap_or(false)
    }

    /// Whether object `i` is shown (its class is).
    pub fn is_visible(&self, i: usize) -> bool {
        self.class_visible[usize::from(self.class_of[i])]
    }

    /// The layer's opacity for drawing, 0 (invisible) to 1 (opaque); 1 after a load.
    pub fn opacity(&self) -> f32 {
        self.opacity
    }

    /// Set the opacity (clamped to 0–1; NaN is ignored).
    pub fn set_opacity(&mut self, opacity: f32) {
        if !opacity.is_nan() {
            self.opacity = opacity.clamp(0.0, 1.0);
        }
    }

    fn rings(&self, i: usize) -> impl Iterator<Item = &[[f32; 2]]> + '_ {
        (self.object_rings[i]..self.object_rings[i + 1]).map(move |r| {
            let r = r as usize;
            &self.vertices[self.ring_starts[r] as usize..self.ring_starts[r + 1] as usize]
        })
    }

    /// Object `i`'s outline: one ring per polygon (one for a plain Polygon), each without the
    /// closing repeat of its first vertex, level-0 px.
    pub fn outline(&self, i: usize) -> impl Iterator<Item = &[[f32; 2]]> + '_ {
        self.rings(i).take(usize::from(self.outline_rings[i]))
    }

    /// Object `i`'s nucleus rings (none for objects without a nucleus).
    pub fn nucleus(&self, i: usize) -> impl Iterator<Item = &[[f32; 2]]> + '_ {
        self.rings(i).skip(usize::from(self.outline_rings[i]))
    }

    /// Bounds of object `i`, outline and nucleus, `[x0, y0, x1, y1]` level-0 px.
    pub fn bounds(&self, i: usize) -> [f64; 4] {
        self.bounds[i].map(f64::from)
    }

    /// Bounds of all objects (None when there are none).
    pub fn extent(&self) -> Option<[f64; 4]> {
        (!self.is_empty()).then_some(self.grid.extent)
    }

    /// Centroid of object `i`: the area centroid of its outline rings (the mean of their vertices
    /// for a degenerate outline), always within its bounds; level-0 px.
    pub fn centroid(&self, i: usize) -> [f64; 2] {
        self.centroids[i].map(f64::from)
    }

    /// Where object `i`'s feature text is in the source file: byte offset and length.
    pub fn feature_range(&self, i: usize) -> (u64, u32) {
        (self.feature_offsets[i], self.feature_lens[i])
    }

    /// The measurement names, in order of first use; column `c` of the `measurement_*` methods.
    pub fn measurement_names(&self) -> &[String] {
        &self.measurement_names
    }

    /// The column of a measurement name.
    pub fn measurement_column(&self, name: &str) -> Option<usize> {
        self.measurement_names.iter().position(|n| n == name)
    }

    /// Object `i`'s value of measurement `column` (None when it has none).
    pub fn measurement(&self, i: usize, column: usize) -> Option<f32> {
        self.columns.get(column).map(|c| c[i]).filter(|v| !v.is_nan())
    }

    /// All values of measurement `column`, one per object, NaN where an object has none.
    pub fn measurement_values(&self, column: usize) -> &[f32] {
        self.columns.get(column).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Smallest and largest finite value of measurement `column` (None when it has none): the
    /// default range of [`ColorBy::Measurement`].
    pub fn measurement_range(&self, column: usize) -> Option<[f32; 2]> {
        self.ranges.get(column).copied().flatten()
    }

    /// Object `i`'s colour under `by`.
    pub fn color_of(&self, i: usize, by: &ColorBy) -> [u8; 3] {
        match *by {
            ColorBy::Class => self.classes[usize::from(self.class_of[i])].color,
            ColorBy::Measurement { column, lo, hi, map } => match self.measurement(i, column) {
                Some(v) => map.color_at(normalise(v, lo, hi)),
                None => NO_VALUE_COLOR,
            },
        }
    }

    /// The legend of `by`: for classes each class in use (with "Unclassified" if any object has
    /// none); for a measurement `steps` (at least 2) evenly spaced values from `lo` to `hi` with
    /// their colours, then "no value".
    pub fn legend(&self, by: &ColorBy, steps: usize) -> Vec<LegendEntry> {
        match *by {
            ColorBy::Class => {
                let mut used = vec![false; self.classes.len()];
                for &c in &self.class_of {
                    used[usize::from(c)] = true;
                }
                (0..self.classes.len())
                    .filter(|&c| used[c])
                    .map(|c| LegendEntry {
                        label: self.class_label(c as u16).to_string(),
                        color: self.classes[c].color,
                        value: None,
                    })
                    .collect()
            }
            ColorBy::Measurement { lo, hi, map, .. } => {
                let steps = steps.max(2);
                let mut out: Vec<LegendEntry> = (0..steps)
                    .map(|k| {
                        let t = k as f32 / (steps - 1) as f32;
                        let value = lo + (hi - lo) * t;
                        LegendEntry { label: format_value(value), color: map.color_at(t), value: Some(value) }
                    })
                    .collect();
                out.push(LegendEntry { label: "no value".into(), color: NO_VALUE_COLOR, value: None });
                out
            }
        }
    }

    /// Objects whose bounds meet `area` (`[x0, y0, x1, y1]` level-0 px, edges included), each
    /// once, in grid order (not file order).
    pub fn query(&self, area: [f64; 4]) -> Query<'_> {
        Query::new(self, area)
    }

    /// [`DetectionLayer::query`] into `out` (cleared first), for reuse across frames.
    pub fn query_into(&self, area: [f64; 4], out: &mut Vec<u32>) {
        out.clear();
        out.extend(self.query(area).map(|i| i as u32));
    }

    /// Objects per class (indexed like [`DetectionLayer::classes`]) whose centroid is inside
    /// `area`, edges included; hidden classes are counted too.
    pub fn count_by_class(&self, area: [f64; 4]) -> Vec<u64> {
        let area = normalise_area(area);
        let mut counts = vec![0u64; self.classes.len()];
        for i in self.query(area) {
            let c = self.centroid(i);
            if c[0] >= area[0] && c[0] <= area[2] && c[1] >= area[1] && c[1] <= area[3] {
                counts[usize::from(self.class_of[i])] += 1;
            }
        }
        counts
    }

    /// Objects per class whose centroid is inside `polygon` (level-0 px vertices, closed or not;
    /// even-odd rule, so a self-crossing outline counts what it encloses an odd number of times).
    /// A polygon of fewer than 3 vertices, or with a non-finite one, counts nothing.
    pub fn count_by_class_in_polygon(&self, polygon: &[[f64; 2]]) -> Vec<u64> {
        let mut counts = vec![0u64; self.classes.len()];
        let Some(tester) = PolygonTest::new(polygon) else {
            return counts;
        };
        for i in self.query(tester.bounds) {
            if tester.contains(self.centroid(i)) {
                counts[usize::from(self.class_of[i])] += 1;
            }
        }
        counts
    }

    /// Heap memory the layer holds, bytes (from its vectors' capacities).
    pub fn heap_bytes(&self) -> usize {
        fn cap<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        cap(&self.classes)
            + self.classes.iter().map(|c| c.name.capacity()).sum::<usize>()
            + cap(&self.class_visible)
            + cap(&self.kinds)
            + cap(&self.class_of)
            + cap(&self.object_rings)
            + cap(&self.outline_rings)
            + cap(&self.ring_starts)
            + cap(&self.vertices)
            + cap(&self.bounds)
            + cap(&self.centroids)
            + cap(&self.feature_offsets)
            + cap(&self.feature_lens)
            + cap(&self.measurement_names)
            + self.measurement_names.iter().map(String::capacity).sum::<usize>()
            + cap(&self.columns)
            + self.columns.iter().map(cap).sum::<usize>()
            + cap(&self.ranges)
            + cap(&self.grid.starts)
            + cap(&self.grid.items)
            + cap(&self.grid.large)
    }

    /// Write the objects for which `which(i)` is true as a GeoJSON FeatureCollection to `out`,
    /// each feature the exact bytes it had in the source file. Streams (memory does not grow with
    /// the layer) and is atomic: `out` is the old file or the new one, never a part. Refuses with
    /// [`DetectionFileError::SourceChanged`] if the source's size or modification time changed
    /// since loading, or a feature's bytes no longer look like one. Writing over the source file
    /// itself works, but leaves this layer's byte ranges stale (later writes are refused): load it
    /// again.
    pub fn write_geojson(&self, out: &Path, which: impl Fn(usize) -> bool) -> Result<(), DetectionFileError> {
        let src = &self.source.path;
        let read_error = |error: io::Error| DetectionFileError::Read { path: src.clone(), error };
        let file = crate::files::open_regular(src).map_err(read_error)?;
        self.check_unchanged(&file)?;
        let mut reader = BufReader::with_capacity(4 << 20, file);
        let mut failure: Option<DetectionFileError> = None;
        let result = crate::files::write_atomic_with(out, |file| {
            let mut w = io::BufWriter::with_capacity(4 << 20, file);
            w.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
            let mut pos = 0u64;
            let mut first = true;
            let mut text = Vec::new();
            for i in 0..self.len() {
                if !which(i) {
                    continue;
                }
                let (offset, len) = (self.feature_offsets[i], self.feature_lens[i] as usize);
                let step = if offset >= pos {
                    reader.seek_relative((offset - pos) as i64)
                } else {
                    reader.seek(io::SeekFrom::Start(offset)).map(|_| ())
                };
                text.resize(len, 0);
                if let Err(e) = step.and_then(|()| reader.read_exact(&mut text)) {
                    failure = Some(read_error(e));
                    return Err(io::Error::other("source read failed"));
                }
                pos = offset + len as u64;
                if text.first() != Some(&b'{') || text.last() != Some(&b'}') {
                    failure = Some(DetectionFileError::SourceChanged {
                        path: src.clone(),
                        what: format!("object {i} at byte {offset} is no longer a feature"),
                    });
                    return Err(io::Error::other("source changed"));
                }
                w.write_all(if first { b"\n" } else { b",\n" })?;
                first = false;
                w.write_all(&text)?;
            }
            w.write_all(b"\n]}\n")?;
            w.flush()?;
            // Changed while being copied: refuse rather than write a mixture.
            if let Err(e) = self.check_unchanged(reader.get_ref()) {
                failure = Some(e);
                return Err(io::Error::other("source changed"));
            }
            Ok(())
        });
        match (result, failure) {
            (_, Some(e)) => Err(e),
            (Err(error), None) => Err(DetectionFileError::Write { path: out.to_path_buf(), error }),
            (Ok(()), None) => Ok(()),
        }
    }

    fn check_unchanged(&self, file: &std::fs::File) -> Result<(), DetectionFileError> {
        let src = &self.source;
        let meta = file.metadata().map_err(|error| DetectionFileError::Read { path: src.path.clone(), error })?;
        let what = if meta.len() != src.len {
            format!("its size was {} bytes, now {}", src.len, meta.len())
        } else if src.modified.is_some() && meta.modified().ok() != src.modified {
            "its modification time changed".to_string()
        } else {
            return Ok(());
        };
        Err(DetectionFileError::SourceChanged { path: src.path.clone(), what })
    }
}

fn normalise(v: f32, lo: f32, hi: f32) -> f32 {
    if hi == lo || !(hi - lo).is_finite() {
        return if v < lo {
            0.0
        } else if v > hi {
            1.0
        } else {
            0.5
        };
    }
    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
}

fn format_value(v: f32) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.01..100_000.0).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn normalise_area(a: [f64; 4]) -> [f64; 4] {
    [a[0].min(a[2]), a[1].min(a[3]), a[0].max(a[2]), a[1].max(a[3])]
}

/// Read up to `chunk` more bytes into `buf`: (bytes read, end of file reached).
fn read_chunk(file: &mut std::fs::File, buf: &mut Vec<u8>, chunk: usize) -> io::Result<(usize, bool)> {
    let read = file.take(chunk as u64).read_to_end(buf)?;
    Ok((read, read < chunk))
}

/// Parse the elements (whose bytes are in `buf`, starting at absolute offset `buf_start`) on
/// rayon's threads, in batches, in file order.
fn parse_elements<'a>(buf: &'a [u8], buf_start: u64, elements: &[Element], caps: FeatureCaps) -> Vec<Batch<'a>> {
    elements
        .par_chunks(512)
        .map(|els| {
            let mut batch = Batch::default();
            for e in els {
                batch.read(buf, buf_start, e, caps);
            }
            batch
        })
        .collect()
}

/// Collects the batches into the layer's columns, serially and in file order.
struct Builder {
    path: PathBuf,
    limits: DetectionLimits,
    reserved: bool,
    estimated_objects: usize,
    classes: Vec<AnnotationClass>,
    class_lookup: HashMap<String, u16>,
    /// The class of the previous object (most neighbours share one).
    last_class: (String, u16),
    kinds: Vec<ObjectKind>,
    class_of: Vec<u16>,
    object_rings: Vec<u32>,
    outline_rings: Vec<u16>,
    ring_starts: Vec<u32>,
    vertices: Vec<[f32; 2]>,
    bounds: Vec<[f32; 4]>,
    centroids: Vec<[f32; 2]>,
    feature_offsets: Vec<u64>,
    feature_lens: Vec<u32>,
    measurement_names: Vec<String>,
    measurement_lookup: HashMap<String, usize>,
    left_out: std::collections::HashSet<String>,
    /// The columns of the previous object's measurements, by position (most objects of a file
    /// list the same names in the same order).
    recent: Vec<usize>,
    columns: Vec<Vec<f32>>,
}

impl Builder {
    fn new(path: &Path, limits: DetectionLimits) -> Self {
        Builder {
            path: path.to_path_buf(),
            limits,
            reserved: false,
            estimated_objects: 0,
            classes: vec![AnnotationClass { name: String::new(), color: UNCLASSIFIED_COLOR }],
            class_lookup: HashMap::new(),
            last_class: (String::new(), UNCLASSIFIED),
            kinds: Vec::new(),
            class_of: Vec::new(),
            object_rings: vec![0],
            outline_rings: Vec::new(),
            ring_starts: vec![0],
            vertices: Vec::new(),
            bounds: Vec::new(),
            centroids: Vec::new(),
            feature_offsets: Vec::new(),
            feature_lens: Vec::new(),
            measurement_names: Vec::new(),
            measurement_lookup: HashMap::new(),
            left_out: Default::default(),
            recent: Vec::new(),
            columns: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.kinds.len()
    }

    fn too_large(&self, what: String) -> DetectionFileError {
        DetectionFileError::TooLarge { path: self.path.clone(), what }
    }

    /// Reserve for the whole file from what the first `consumed` bytes gave (within the caps), so
    /// that the columns do not double (and leave up to half their capacity unused).
    fn reserve(&mut self, total: u64, consumed: u64) {
        self.reserved = true;
        let scale = |x: usize| ((x as f64) * (total as f64 / consumed as f64) * 1.03) as usize + 16;
        let objects = scale(self.len()).min(self.limits.objects);
        let vertices = scale(self.vertices.len()).min(self.limits.vertices);
        let rings = scale(self.ring_starts.len()).min(self.limits.vertices / 3 + 1);
        let more = objects.saturating_sub(self.len());
        self.estimated_objects = objects;
        self.kinds.reserve_exact(more);
        self.class_of.reserve_exact(more);
        self.object_rings.reserve_exact(more);
        self.outline_rings.reserve_exact(more);
        self.bounds.reserve_exact(more);
        self.centroids.reserve_exact(more);
        self.feature_offsets.reserve_exact(more);
        self.feature_lens.reserve_exact(more);
        self.ring_starts.reserve_exact(rings.saturating_sub(self.ring_starts.len()));
        self.vertices.reserve_exact(vertices.saturating_sub(self.vertices.len()));
        for c in &mut self.columns {
            c.reserve_exact(more);
        }
    }

    fn class_index(&mut self, name: &str, color: [u8; 3]) -> Result<u16, DetectionFileError> {
        if self.last_class.0 == name {
            return Ok(self.last_class.1);
        }
        let index = match self.class_lookup.get(name) {
            Some(&index) => index,
            None => {
                if self.classes.len() > self.limits.classes.min(usize::from(u16::MAX)) {
                    return Err(self.too_large(format!("more than {} classes", self.limits.classes)));
                }
                let index = self.classes.len() as u16;
                self.classes.push(AnnotationClass { name: name.to_string(), color });
                self.class_lookup.insert(name.to_string(), index);
                index
            }
        };
        self.last_class.0.clear();
        self.last_class.0.push_str(name);
        self.last_class.1 = index;
        Ok(index)
    }

    fn column(&mut self, position: usize, name: &str) -> Result<Option<usize>, DetectionFileError> {
        if let Some(&c) = self.recent.get(position) {
            if c != usize::MAX && self.measurement_names[c] == name {
                return Ok(Some(c));
            }
        }
        let column = match self.measurement_lookup.get(name) {
            Some(&c) => Some(c),
            None if self.columns.len() >= self.limits.measurements => {
                if self.left_out.len() < 100_000 {
                    self.left_out.insert(name.to_string());
                }
                None
            }
            None => {
                let n = self.len() + 1;
                if n.saturating_mul(self.columns.len() + 1) > self.limits.measurement_values {
                    return Err(self.too_large(format!(
                        "more than {} measurement values ({} measurements of {n} objects)",
                        self.limits.measurement_values,
                        self.columns.len() + 1
                    )));
                }
                let mut values = Vec::with_capacity(self.estimated_objects.max(n));
                values.resize(n, f32::NAN);
                self.columns.push(values);
                self.measurement_names.push(name.to_string());
                self.measurement_lookup.insert(name.to_string(), self.columns.len() - 1);
                Some(self.columns.len() - 1)
            }
        };
        if self.recent.len() <= position {
            self.recent.resize(position + 1, usize::MAX);
        }
        self.recent[position] = column.unwrap_or(usize::MAX);
        Ok(column)
    }

    fn merge(&mut self, batches: &[Batch], report: &mut LoadReport) -> Result<(), DetectionFileError> {
        for batch in batches {
            for (number, reason, _) in &batch.skipped {
                report.skip(*number, reason);
            }
            report.annotations += batch.annotations;
            let (mut ring0, mut meas0) = (0usize, 0usize);
            for p in &batch.objects {
                if self.len() >= self.limits.objects {
                    return Err(self.too_large(format!("more than {} objects", self.limits.objects)));
                }
                let rings = ring0..p.rings_end as usize;
                let v0 = if ring0 == 0 { 0 } else { batch.ring_ends[ring0 - 1] as usize };
                let v1 = batch.ring_ends[rings.end - 1] as usize;
                if self.vertices.len() + (v1 - v0) > self.limits.vertices.min(u32::MAX as usize) {
                    return Err(self.too_large(format!("more than {} vertices", self.limits.vertices)));
                }
                let base = self.vertices.len() as u32 - v0 as u32;
                self.vertices.extend_from_slice(&batch.vertices[v0..v1]);
                self.ring_starts.extend(batch.ring_ends[rings.clone()].iter().map(|&e| base + e));
                self.object_rings.push(self.ring_starts.len() as u32 - 1);
                ring0 = rings.end;
                self.outline_rings.push(p.outline_rings);
                let class = match &p.class {
                    Some((name, color)) => self.class_index(name, *color)?,
                    None => UNCLASSIFIED,
                };
                self.class_of.push(class);
                self.kinds.push(p.kind);
                self.bounds.push(p.bounds);
                self.centroids.push(p.centroid);
                self.feature_offsets.push(p.offset);
                self.feature_lens.push(p.len);
                let n = self.len();
                if n.saturating_mul(self.columns.len()) > self.limits.measurement_values {
                    return Err(self.too_large(format!(
                        "more than {} measurement values ({} measurements of {n} objects)",
                        self.limits.measurement_values,
                        self.columns.len()
                    )));
                }
                for c in &mut self.columns {
                    c.push(f32::NAN);
                }
                let meas = &batch.work.meas[meas0..p.meas_end as usize];
                meas0 = p.meas_end as usize;
                for (k, (name, value)) in meas.iter().enumerate() {
                    if let Some(c) = self.column(k, name)? {
                        self.columns[c][n - 1] = *value;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self, source: SourceFile) -> DetectionLayer {
        let mut layer = DetectionLayer {
            source,
            class_visible: vec![true; self.classes.len()],
            classes: self.classes,
            opacity: 1.0,
            kinds: self.kinds,
            class_of: self.class_of,
            object_rings: self.object_rings,
            outline_rings: self.outline_rings,
            ring_starts: self.ring_starts,
            vertices: self.vertices,
            bounds: self.bounds,
            centroids: self.centroids,
            feature_offsets: self.feature_offsets,
            feature_lens: self.feature_lens,
            measurement_names: self.measurement_names,
            ranges: Vec::new(),
            columns: self.columns,
            grid: Grid::default(),
        };
        // Realloc of a large block shrinks in place (no copy) with the usual allocators.
        layer.kinds.shrink_to_fit();
        layer.class_of.shrink_to_fit();
        layer.object_rings.shrink_to_fit();
        layer.outline_rings.shrink_to_fit();
        layer.ring_starts.shrink_to_fit();
        layer.vertices.shrink_to_fit();
        layer.bounds.shrink_to_fit();
        layer.centroids.shrink_to_fit();
        layer.feature_offsets.shrink_to_fit();
        layer.feature_lens.shrink_to_fit();
        layer.columns.par_iter_mut().for_each(|c| c.shrink_to_fit());
        layer.ranges = layer
            .columns
            .par_iter()
            .map(|c| {
                let (lo, hi) = c
                    .iter()
                    .filter(|v| v.is_finite())
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                (lo <= hi).then_some([lo, hi])
            })
            .collect();
        layer.grid = Grid::build(&layer.bounds);
        layer
    }
}

// ---------------------------------------------------------------------------------------------
// The spatial index.

/// A uniform grid over object bounds, cells in compressed rows. An object is listed in every cell
/// its bounds meet, unless it spans more than [`Grid::LARGE_CELLS`] cells (a big tile): those are
/// listed once in `large` and checked on every query.
#[derive(Default)]
struct Grid {
    extent: [f64; 4],
    cell: f64,
    cols: usize,
    rows: usize,
    /// Cell k's objects are `items[starts[k]..starts[k + 1]]`, in index order.
    starts: Vec<u32>,
    items: Vec<u32>,
    large: Vec<u32>,
}

impl Grid {
    const LARGE_CELLS: usize = 64;
    const MAX_CELLS: usize = 1 << 22;

    fn build(bounds: &[[f32; 4]]) -> Grid {
        if bounds.is_empty() {
            return Grid::default();
        }
        let extent =
            bounds.iter().fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |e, b| {
                [
                    e[0].min(f64::from(b[0])),
                    e[1].min(f64::from(b[1])),
                    e[2].max(f64::from(b[2])),
                    e[3].max(f64::from(b[3])),
                ]
            });
        let (w, h) = ((extent[2] - extent[0]).max(1.0), (extent[3] - extent[1]).max(1.0));
        // About 4 objects a cell, but not cells much smaller than a typical object.
        let step = (bounds.len() / 10_000).max(1);
        let mut sizes: Vec<f32> = bounds.iter().step_by(step).map(|b| (b[2] - b[0]).max(b[3] - b[1])).collect();
        let mid = sizes.len() / 2;
        let median = f64::from(*sizes.select_nth_unstable_by(mid, f32::total_cmp).1);
        let mut cell = (w * h / (bounds.len() as f64 / 4.0).max(1.0)).sqrt().max(median * 1.5).max(1e-3);
        while (w / cell).ceil() * (h / cell).ceil() > Self::MAX_CELLS as f64 {
            cell *= 1.25;
        }
        let cols = ((w / cell).ceil() as usize).max(1);
        let rows = ((h / cell).ceil() as usize).max(1);
        let mut grid =
            Grid { extent, cell, cols, rows, starts: vec![0; cols * rows + 1], items: Vec::new(), large: Vec::new() };
        let mut counts = vec![0u32; cols * rows];
        for b in bounds {
            let (cx0, cy0, cx1, cy1) = grid.cells(b.map(f64::from));
            if (cx1 - cx0 + 1) * (cy1 - cy0 + 1) <= Self::LARGE_CELLS {
                for cy in cy0..=cy1 {
                    for cx in cx0..=cx1 {
                        counts[cy * cols + cx] += 1;
                    }
                }
            }
        }
        let mut total = 0u32;
        for (k, c) in counts.iter().enumerate() {
            grid.starts[k] = total;
            total += c;
        }
        grid.starts[cols * rows] = total;
        grid.items = vec![0; total as usize];
        let mut fill: Vec<u32> = grid.starts[..cols * rows].to_vec();
        for (i, b) in bounds.iter().enumerate() {
            let (cx0, cy0, cx1, cy1) = grid.cells(b.map(f64::from));
            if (cx1 - cx0 + 1) * (cy1 - cy0 + 1) <= Self::LARGE_CELLS {
                for cy in cy0..=cy1 {
                    for cx in cx0..=cx1 {
                        let k = cy * cols + cx;
                        grid.items[fill[k] as usize] = i as u32;
                        fill[k] += 1;
                    }
                }
            } else {
                grid.large.push(i as u32);
            }
        }
        grid
    }

    /// The cells an area meets, clamped to the grid: (x0, y0, x1, y1) inclusive.
    fn cells(&self, a: [f64; 4]) -> (usize, usize, usize, usize) {
        let cx = |x: f64| (((x - self.extent[0]) / self.cell).floor().max(0.0) as usize).min(self.cols - 1);
        let cy = |y: f64| (((y - self.extent[1]) / self.cell).floor().max(0.0) as usize).min(self.rows - 1);
        (cx(a[0]), cy(a[1]), cx(a[2]), cy(a[3]))
    }
}

/// The objects whose bounds meet an area ([`DetectionLayer::query`]).
pub struct Query<'a> {
    layer: &'a DetectionLayer,
    area: [f64; 4],
    cells: (usize, usize, usize, usize),
    cx: usize,
    cy: usize,
    k: usize,
    end: usize,
    large: usize,
    done_cells: bool,
}

impl<'a> Query<'a> {
    fn new(layer: &'a DetectionLayer, area: [f64; 4]) -> Self {
        let area = normalise_area(area);
        let g = &layer.grid;
        let empty = layer.is_empty()
            || area.iter().any(|v| v.is_nan())
            || area[2] < g.extent[0]
            || area[0] > g.extent[2]
            || area[3] < g.extent[1]
            || area[1] > g.extent[3];
        let cells = if empty { (0, 0, 0, 0) } else { g.cells(area) };
        let mut q = Query { layer, area, cells, cx: cells.0, cy: cells.1, k: 0, end: 0, large: 0, done_cells: empty };
        if empty {
            q.large = g.large.len();
        } else {
            q.enter_cell();
        }
        q
    }

    fn enter_cell(&mut self) {
        let g = &self.layer.grid;
        let cell = self.cy * g.cols + self.cx;
        self.k = g.starts[cell] as usize;
        self.end = g.starts[cell + 1] as usize;
    }

    fn meets(&self, i: usize) -> bool {
        let b = self.layer.bounds[i];
        let a = self.area;
        f64::from(b[0]) <= a[2] && f64::from(b[2]) >= a[0] && f64::from(b[1]) <= a[3] && f64::from(b[3]) >= a[1]
    }
}

impl Iterator for Query<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let layer: &DetectionLayer = self.layer;
        let g = &layer.grid;
        while !self.done_cells {
            while self.k < self.end {
                let i = g.items[self.k] as usize;
                self.k += 1;
                if !self.meets(i) {
                    continue;
                }
                // Reported only in the first cell it shares with the query.
                let (ox0, oy0, _, _) = g.cells(self.layer.bounds[i].map(f64::from));
                if self.cx == ox0.max(self.cells.0) && self.cy == oy0.max(self.cells.1) {
                    return Some(i);
                }
            }
            if self.cx < self.cells.2 {
                self.cx += 1;
            } else if self.cy < self.cells.3 {
                self.cy += 1;
                self.cx = self.cells.0;
            } else {
                self.done_cells = true;
                break;
            }
            self.enter_cell();
        }
        while self.large < g.large.len() {
            let i = g.large[self.large] as usize;
            self.large += 1;
            if self.meets(i) {
                return Some(i);
            }
        }
        None
    }
}

/// Even-odd point-in-polygon test with the edges sorted into horizontal bands.
struct PolygonTest {
    bounds: [f64; 4],
    edges: Vec<[f64; 4]>,
    band_height: f64,
    /// Band k's edges are `band_edges[band_starts[k]..band_starts[k + 1]]`.
    band_starts: Vec<u32>,
    band_edges: Vec<u32>,
}

impl PolygonTest {
    fn new(polygon: &[[f64; 2]]) -> Option<PolygonTest> {
        if polygon.len() < 3 || polygon.iter().flatten().any(|v| !v.is_finite()) {
            return None;
        }
        let bounds =
            polygon.iter().fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |b, p| {
                [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])]
            });
        let edges: Vec<[f64; 4]> = (0..polygon.len())
            .map(|k| {
                let (p, q) = (polygon[k], polygon[(k + 1) % polygon.len()]);
                [p[0], p[1], q[0], q[1]]
            })
            .collect();
        let bands = (edges.len() / 4).clamp(1, 4096);
        let band_height = ((bounds[3] - bounds[1]) / bands as f64).max(1e-9);
        let band = |y: f64| (((y - bounds[1]) / band_height).floor().max(0.0) as usize).min(bands - 1);
        let mut counts = vec![0u32; bands + 1];
        for e in &edges {
            for b in band(e[1].min(e[3]))..=band(e[1].max(e[3])) {
                counts[b + 1] += 1;
            }
        }
        for k in 0..bands {
            counts[k + 1] += counts[k];
        }
        let mut fill = counts.clone();
        let mut band_edges = vec![0u32; counts[bands] as usize];
        for (i, e) in edges.iter().enumerate() {
            for b in band(e[1].min(e[3]))..=band(e[1].max(e[3])) {
                band_edges[fill[b] as usize] = i as u32;
                fill[b] += 1;
            }
        }
        Some(PolygonTest { bounds, edges, band_height, band_starts: counts, band_edges })
    }

    fn contains(&self, p: [f64; 2]) -> bool {
        let b = self.bounds;
        if p[0] < b[0] || p[0] > b[2] || p[1] < b[1] || p[1] > b[3] {
            return false;
        }
        let bands = self.band_starts.len() - 1;
        let k = (((p[1] - b[1]) / self.band_height).floor().max(0.0) as usize).min(bands - 1);
        let mut inside = false;
        for &e in &self.band_edges[self.band_starts[k] as usize..self.band_starts[k + 1] as usize] {
            let [x1, y1, x2, y2] = self.edges[e as usize];
            if (y1 > p[1]) != (y2 > p[1]) && p[0] < x1 + (p[1] - y1) * (x2 - x1) / (y2 - y1) {
                inside = !inside;
            }
        }
        inside
    }
}

/// Even-odd test over every edge (for tests to compare with).
#[cfg(test)]
fn point_in_polygon(polygon: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    for k in 0..polygon.len() {
        let (a, b) = (polygon[k], polygon[(k + 1) % polygon.len()]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]) {
            inside = !inside;
        }
    }
    inside
}
