//! Streaming GeoJSON reading for [`super::DetectionLayer`]: a byte scanner that splits the
//! `features` array into feature byte ranges without parsing them, a typed serde parse of one
//! feature (borrowing its strings from the read buffer, no `serde_json::Value`), and the batches
//! that carry parsed objects back in file order.
//!
//! Coordinates are parsed as `f64`, checked (finite, |x| at most the cap) and stored as `f32`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::super::error::FormatError;
use super::super::geojson::{non_finite_as_null, packed_color, read_color, EXPECTED_GEOJSON};
use super::super::model::{ObjectKind, UNCLASSIFIED_COLOR};

// ---------------------------------------------------------------------------------------------
// The scanner.

/// One element of the features array (or the single top-level Feature): absolute byte range
/// `[start, end)` in the file, with trailing whitespace still in it, and its 1-based number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Element {
    pub start: u64,
    pub end: u64,
    pub number: usize,
    /// Longer than the per-feature cap: its bytes were not kept.
    pub oversized: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Before the first value.
    Start,
    /// Inside a top-level object, looking for its `features` key.
    TopObject,
    /// Inside the features array (or a bare array).
    Features,
    /// The features (or the single Feature) are complete; the rest is not read.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    No,
    At(u64),
    Oversized(u64),
}

/// Tracks JSON strings, escapes and bracket depth across chunks; emits the byte ranges of the
/// features array's elements.
pub(super) struct Scanner {
    /// Absolute offset of the next byte to scan.
    pub pos: u64,
    depth: u32,
    in_string: bool,
    escaped: bool,
    pub mode: Mode,
    elem_depth: u32,
    open: Open,
    /// Elements begun so far.
    pub number: usize,
    top_start: u64,
    retain_top: bool,
    expect_key: bool,
    collecting_key: bool,
    key: Vec<u8>,
    last_key_features: bool,
    value_is_features: bool,
    /// The file is one Feature (a top-level object without `features`).
    pub single: bool,
    max_feature: u64,
}

fn not_geojson(what: &str) -> FormatError {
    FormatError::NotGeoJson(what.to_string())
}

impl Scanner {
    pub fn new(start: u64, max_feature: u64) -> Self {
        Scanner {
            pos: start,
            depth: 0,
            in_string: false,
            escaped: false,
            mode: Mode::Start,
            elem_depth: 0,
            open: Open::No,
            number: 0,
            top_start: 0,
            retain_top: false,
            expect_key: false,
            collecting_key: false,
            key: Vec::with_capacity(16),
            last_key_features: false,
            value_is_features: false,
            single: false,
            max_feature,
        }
    }

    /// The first absolute offset whose bytes must be kept for the next scan (the start of an
    /// element still open, or of a top-level object that may turn out to be a single Feature).
    pub fn keep_from(&self) -> u64 {
        match self.open {
            Open::At(s) => s,
            _ if self.mode == Mode::TopObject && self.retain_top => self.top_start,
            _ => self.pos,
        }
    }

    /// Scan `data`, which starts at absolute offset `self.pos`; complete elements go to `out`.
    pub fn scan(&mut self, data: &[u8], out: &mut Vec<Element>) -> Result<(), FormatError> {
        let base = self.pos;
        let n = data.len();
        let mut i = 0;
        while i < n {
            if self.mode == Mode::Done {
                break;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    self.key_push(&data[i..i + 1]);
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &data[i..]) {
                    None => {
                        self.key_push(&data[i..]);
                        i = n;
                    }
                    Some(j) => {
                        self.key_push(&data[i..i + j]);
                        let c = data[i + j];
                        i += j + 1;
                        if c == b'\\' {
                            self.escaped = true;
                            self.key_push(b"\\");
                        } else {
                            self.in_string = false;
                            if self.collecting_key {
                                self.collecting_key = false;
                                self.last_key_features = self.key == b"features";
                            }
                        }
                    }
                }
                continue;
            }
            if self.mode == Mode::Features && self.depth > self.elem_depth {
                i = self.skip_inside(data, i);
                continue;
            }
            let c = data[i];
            let at = base + i as u64;
            i += 1;
            match self.mode {
                Mode::Start => match c {
                    b' ' | b'\t' | b'\n' | b'\r' => {}
                    b'[' => {
                        self.mode = Mode::Features;
                        self.depth = 1;
                        self.elem_depth = 1;
                    }
                    b'{' => {
                        self.mode = Mode::TopObject;
                        self.depth = 1;
                        self.top_start = at;
                        self.retain_top = true;
                        self.expect_key = true;
                    }
                    _ => return Err(not_geojson(EXPECTED_GEOJSON)),
                },
                Mode::TopObject => self.top_byte(c, at, out)?,
                Mode::Features => self.feature_byte(c, at, out),
                Mode::Done => {}
            }
        }
        self.pos = base + n as u64;
        match self.open {
            Open::At(s) if self.pos - s > self.max_feature => self.open = Open::Oversized(s),
            _ => {}
        }
        if self.mode == Mode::TopObject && self.retain_top && self.pos - self.top_start > self.max_feature {
            self.retain_top = false;
        }
        Ok(())
    }

    /// Inside a feature (deeper than the features array): only strings and brackets matter, so
    /// skip everything else quickly. Returns where to go on: the byte after the bracket that
    /// closes the feature, the end of `data`, or inside a string that `data` cuts.
    fn skip_inside(&mut self, data: &[u8], mut i: usize) -> usize {
        /// `"`, `{`, `}`, `[` and `]`.
        const STRUCTURAL: [bool; 256] = {
            let mut t = [false; 256];
            t[b'"' as usize] = true;
            t[b'{' as usize] = true;
            t[b'}' as usize] = true;
            t[b'[' as usize] = true;
            t[b']' as usize] = true;
            t
        };
        let n = data.len();
        let mut depth = self.depth;
        while i < n {
            let c = data[i];
            i += 1;
            if !STRUCTURAL[usize::from(c)] {
                continue;
            }
            match c {
                b'"' => loop {
                    match memchr::memchr2(b'"', b'\\', &data[i..]) {
                        None => {
                            self.in_string = true;
                            self.depth = depth;
                            return n;
                        }
                        Some(k) if data[i + k] == b'\\' => {
                            if i + k + 1 >= n {
                                self.in_string = true;
                                self.escaped = true;
                                self.depth = depth;
                                return n;
                            }
                            i += k + 2;
                        }
                        Some(k) => {
                            i += k + 1;
                            break;
                        }
                    }
                },
                b'{' | b'[' => depth += 1,
                _ => {
                    depth -= 1;
                    if depth == self.elem_depth {
                        break;
                    }
                }
            }
        }
        self.depth = depth;
        i
    }

    fn key_push(&mut self, bytes: &[u8]) {
        if self.collecting_key && self.key.len() < 16 {
            let room = 16 - self.key.len();
            self.key.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    fn top_byte(&mut self, c: u8, at: u64, out: &mut Vec<Element>) -> Result<(), FormatError> {
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            return Ok(());
        }
        if self.depth == 1 && self.value_is_features {
            self.value_is_features = false;
            if c == b'[' {
                self.mode = Mode::Features;
                self.depth = 2;
                self.elem_depth = 2;
                self.retain_top = false;
                return Ok(());
            }
            return Err(not_geojson("\"features\" is not an array"));
        }
        match c {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expect_key {
                    self.expect_key = false;
                    self.collecting_key = true;
                    self.key.clear();
                }
            }
            b':' if self.depth == 1 => {
                self.value_is_features = self.last_key_features;
                self.last_key_features = false;
            }
            b',' if self.depth == 1 => self.expect_key = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth -= 1;
                if self.depth == 0 {
                    // A top-level object without "features": one Feature.
                    self.mode = Mode::Done;
                    self.single = true;
                    self.number = 1;
                    out.push(Element { start: self.top_start, end: at + 1, number: 1, oversized: !self.retain_top });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn begin(&mut self, at: u64) {
        if self.depth == self.elem_depth && self.open == Open::No {
            self.open = Open::At(at);
            self.number += 1;
        }
    }

    fn close(&mut self, at: u64, out: &mut Vec<Element>) {
        match self.open {
            Open::At(s) => {
                out.push(Element { start: s, end: at, number: self.number, oversized: at - s > self.max_feature })
            }
            Open::Oversized(s) => out.push(Element { start: s, end: at, number: self.number, oversized: true }),
            Open::No => {}
        }
        self.open = Open::No;
    }

    fn feature_byte(&mut self, c: u8, at: u64, out: &mut Vec<Element>) {
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b',' if self.depth == self.elem_depth => self.close(at, out),
            b']' | b'}' if self.depth == self.elem_depth => {
                self.close(at, out);
                self.depth -= 1;
                self.mode = Mode::Done;
            }
            b'{' | b'[' => {
                self.begin(at);
                self.depth += 1;
            }
            b'}' | b']' => self.depth -= 1,
            b'"' => {
                self.begin(at);
                self.in_string = true;
            }
            _ => self.begin(at),
        }
    }

    /// At the end of the file: complete a last element that only lacks the closing `]`, and say
    /// where a truncated file was cut (None when it was complete).
    pub fn finish(&mut self, out: &mut Vec<Element>) -> Result<Option<String>, FormatError> {
        match self.mode {
            Mode::Start => Err(not_geojson("the file is empty")),
            Mode::TopObject => {
                Err(not_geojson("the file ends before any feature (truncated, or not a FeatureCollection or Feature)"))
            }
            Mode::Done => Ok(None),
            Mode::Features => {
                let complete = !self.in_string && self.depth == self.elem_depth;
                let cut = match self.open {
                    Open::At(_) | Open::Oversized(_) if complete => {
                        self.close(self.pos, out);
                        "the file ends after the last feature without closing the features list".to_string()
                    }
                    Open::At(s) | Open::Oversized(s) => {
                        format!("the file ends inside feature {} (which starts at byte {s})", self.number)
                    }
                    Open::No => "the file ends before the features list is closed".to_string(),
                };
                Ok(Some(cut))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The typed parse of one feature.

/// Per-thread parse state, reused from feature to feature.
#[derive(Default)]
pub(super) struct Work<'a> {
    /// Positions of every geometry of the feature, as parsed.
    pos: Vec<[f64; 2]>,
    /// End (in `pos`) of each list of positions.
    ring_end: Vec<u32>,
    /// End (in `ring_end`) of each list of rings.
    poly_end: Vec<u32>,
    /// The kept rings of the current feature, outline first, then nucleus: `[start, end)` in
    /// `pos`, without the closing repeat.
    rings: Vec<(u32, u32)>,
    /// Measurements of the batch's objects, in order.
    pub meas: Vec<(Cow<'a, str>, f32)>,
    coordinate: f64,
}

impl Work<'_> {
    fn clear_feature(&mut self) {
        self.pos.clear();
        self.ring_end.clear();
        self.poly_end.clear();
        self.rings.clear();
    }
}

#[derive(Clone, Copy)]
struct Block {
    depth: u8,
    pos0: u32,
    ring0: u32,
    poly0: u32,
    poly1: u32,
}

struct Geom<'a> {
    kind: Option<Cow<'a, str>>,
    coords: Option<Block>,
    members: Option<Vec<Geom<'a>>>,
}

#[derive(Default)]
struct Feature<'a> {
    kind: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    geometry: Option<Geom<'a>>,
    object_type: Option<Cow<'a, str>>,
    class_name: Option<Cow<'a, str>>,
    class_color: Option<[u8; 3]>,
    nucleus: Option<Geom<'a>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Type,
    Id,
    Geometry,
    Properties,
    Coordinates,
    Geometries,
    ObjectType,
    Classification,
    Nucleus,
    Measurements,
    Name,
    Names,
    Color,
    ColorRgb,
    Value,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "type" => Key::Type,
                    "id" => Key::Id,
                    "geometry" => Key::Geometry,
                    "properties" => Key::Properties,
                    "coordinates" => Key::Coordinates,
                    "geometries" => Key::Geometries,
                    "objectType" => Key::ObjectType,
                    "classification" => Key::Classification,
                    "nucleusGeometry" => Key::Nucleus,
                    "measurements" => Key::Measurements,
                    "name" => Key::Name,
                    "names" => Key::Names,
                    "color" => Key::Color,
                    "colorRGB" => Key::ColorRgb,
                    "value" => Key::Value,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Visitor methods that accept any other JSON value and give `$v`.
macro_rules! accept_scalars {
    ($v:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}
macro_rules! accept_str {
    ($v:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}
macro_rules! accept_seq {
    ($v:expr) => {
        fn visit_seq<S: SeqAccess<'a>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($v)
        }
    };
}
macro_rules! accept_map {
    ($v:expr) => {
        fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($v)
        }
    };
}

/// A string borrowed from the buffer when it has no escapes; None for any other value.
struct LooseStr<'a>(Option<Cow<'a, str>>);

impl<'a> de::Deserialize<'a> for LooseStr<'a> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = LooseStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'a str) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(s.to_string()))))
            }
            accept_scalars!(LooseStr(None));
            accept_seq!(LooseStr(None));
            accept_map!(LooseStr(None));
        }
        d.deserialize_any(V)
    }
}

/// A number; None for any other value.
struct LooseNum(Option<f64>);

impl<'a> de::Deserialize<'a> for LooseNum {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = LooseNum;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseNum, E> {
                Ok(LooseNum(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseNum, E> {
                Ok(LooseNum(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LooseNum, E> {
                Ok(LooseNum(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LooseNum, E> {
                Ok(LooseNum(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LooseNum, E> {
                Ok(LooseNum(None))
            }
            accept_str!(LooseNum(None));
            accept_seq!(LooseNum(None));
            accept_map!(LooseNum(None));
        }
        d.deserialize_any(V)
    }
}

/// A class name: a string, or QuPath's derived classes (`["Tumor", "Positive"]`) joined with
/// ": " (as [`super::super::geojson`] reads them); None for anything else.
struct ClassName<'a>(Option<Cow<'a, str>>);

impl<'a> de::Deserialize<'a> for ClassName<'a> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = ClassName<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a class name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'a str) -> Result<Self::Value, E> {
                Ok(ClassName(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(ClassName(Some(Cow::Owned(s.to_string()))))
            }
            fn visit_seq<S: SeqAccess<'a>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut parts: Vec<Cow<'a, str>> = Vec::new();
                while let Some(LooseStr(s)) = seq.next_element::<LooseStr<'a>>()? {
                    parts.extend(s);
                }
                Ok(ClassName((!parts.is_empty()).then(|| Cow::Owned(parts.join(": ")))))
            }
            accept_scalars!(ClassName(None));
            accept_map!(ClassName(None));
        }
        d.deserialize_any(V)
    }
}

fn custom<E: de::Error>(message: impl fmt::Display) -> E {
    E::custom(message)
}

#[derive(Clone, Copy, PartialEq)]
enum Node {
    Num(f64),
    Null,
    /// A list: 0 a position, 1 a list of positions, 2 a list of rings, 3 a list of polygons.
    List(u8),
}

struct NodeSeed<'w, 'a>(&'w mut Work<'a>);

impl<'a> DeserializeSeed<'a> for NodeSeed<'_, 'a> {
    type Value = Node;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for NodeSeed<'_, 'a> {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a list of coordinates")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Num(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_seq<S: SeqAccess<'a>>(self, mut seq: S) -> Result<Node, S::Error> {
        let work = self.0;
        match seq.next_element_seed(NodeSeed(&mut *work))? {
            None => Err(custom("an empty list of coordinates")),
            Some(Node::Null) => Err(custom("coordinate null is not a number")),
            Some(Node::Num(x)) => {
                let y = match seq.next_element_seed(NodeSeed(&mut *work))? {
                    Some(Node::Num(y)) => y,
                    Some(Node::Null) => return Err(custom("coordinate null is not a number")),
                    Some(Node::List(_)) => return Err(custom("a position mixes numbers and lists")),
                    None => return Err(custom(format!("position [{x}] is not [x, y]"))),
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                for v in [x, y] {
                    if !v.is_finite() || v.abs() > work.coordinate {
                        return Err(custom(if v.abs() >= 1e15 {
                            format!("coordinate {v:e} is out of range")
                        } else {
                            format!("coordinate {v} is out of range")
                        }));
                    }
                }
                work.pos.push([x, y]);
                Ok(Node::List(0))
            }
            Some(Node::List(d)) => {
                while let Some(next) = seq.next_element_seed(NodeSeed(&mut *work))? {
                    if next != Node::List(d) {
                        return Err(custom("coordinate lists of different nesting"));
                    }
                }
                match d {
                    0 => work.ring_end.push(work.pos.len() as u32),
                    1 => work.poly_end.push(work.ring_end.len() as u32),
                    2 => {}
                    _ => return Err(custom("coordinates nested too deeply")),
                }
                Ok(Node::List(d + 1))
            }
        }
    }
}

struct CoordsSeed<'w, 'a>(&'w mut Work<'a>);

impl<'a> DeserializeSeed<'a> for CoordsSeed<'_, 'a> {
    type Value = Option<Block>;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Option<Block>, D::Error> {
        let work = self.0;
        let (pos0, ring0, poly0) = (work.pos.len() as u32, work.ring_end.len() as u32, work.poly_end.len() as u32);
        match NodeSeed(&mut *work).deserialize(d)? {
            Node::Null => Ok(None),
            Node::Num(_) => Err(custom("coordinates are a number, not a list")),
            Node::List(depth) => Ok(Some(Block { depth, pos0, ring0, poly0, poly1: work.poly_end.len() as u32 })),
        }
    }
}

struct GeomSeed<'w, 'a>(&'w mut Work<'a>);

impl<'a> DeserializeSeed<'a> for GeomSeed<'_, 'a> {
    type Value = Option<Geom<'a>>;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for GeomSeed<'_, 'a> {
    type Value = Option<Geom<'a>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a geometry object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let work = self.0;
        let mut g = Geom { kind: None, coords: None, members: None };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => g.kind = map.next_value::<LooseStr<'a>>()?.0,
                Key::Coordinates => g.coords = map.next_value_seed(CoordsSeed(&mut *work))?,
                Key::Geometries => g.members = Some(map.next_value_seed(MembersSeed(&mut *work))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(g))
    }
}

struct MembersSeed<'w, 'a>(&'w mut Work<'a>);

impl<'a> DeserializeSeed<'a> for MembersSeed<'_, 'a> {
    type Value = Vec<Geom<'a>>;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'a> Visitor<'a> for MembersSeed<'_, 'a> {
    type Value = Vec<Geom<'a>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of geometries")
    }
    fn visit_seq<S: SeqAccess<'a>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let work = self.0;
        let mut members = Vec::new();
        while let Some(g) = seq.next_element_seed(GeomSeed(&mut *work))? {
            members.extend(g);
        }
        Ok(members)
    }
}

struct MeasSeed<'w, 'a>(&'w mut Work<'a>);

impl<'a> DeserializeSeed<'a> for MeasSeed<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for MeasSeed<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("measurements")
    }
    /// QuPath 0.3 and later: a map of name → number.
    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(LooseStr(name)) = map.next_key::<LooseStr<'a>>()? {
            let LooseNum(value) = map.next_value::<LooseNum>()?;
            if let (Some(name), Some(v)) = (name, value.filter(|v| v.is_finite())) {
                self.0.meas.push((name, v as f32));
            }
        }
        Ok(())
    }
    /// Earlier QuPath: a list of `{"name", "value"}`.
    fn visit_seq<S: SeqAccess<'a>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(entry) = seq.next_element::<MeasEntry<'a>>()? {
            if let MeasEntry(Some(name), Some(v)) = entry {
                if v.is_finite() {
                    self.0.meas.push((name, v as f32));
                }
            }
        }
        Ok(())
    }
    accept_scalars!(());
    accept_str!(());
}

struct MeasEntry<'a>(Option<Cow<'a, str>>, Option<f64>);

impl<'a> de::Deserialize<'a> for MeasEntry<'a> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = MeasEntry<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a measurement {name, value}")
            }
            fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entry = MeasEntry(None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Name => entry.0 = map.next_value::<LooseStr<'a>>()?.0,
                        Key::Value => entry.1 = map.next_value::<LooseNum>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(entry)
            }
            accept_scalars!(MeasEntry(None, None));
            accept_str!(MeasEntry(None, None));
            accept_seq!(MeasEntry(None, None));
        }
        d.deserialize_any(V)
    }
}

/// `classification`: QuPath's `{"name", "color"}`, older `{"name", "colorRGB"}`, derived
/// `"names"`, or a bare string (as [`super::super::geojson`] reads it).
struct ClassOut<'a> {
    name: Option<Cow<'a, str>>,
    color: Option<[u8; 3]>,
}

impl<'a> de::Deserialize<'a> for ClassOut<'a> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = ClassOut<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a classification")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'a str) -> Result<Self::Value, E> {
                Ok(ClassOut { name: Some(Cow::Borrowed(s)), color: None })
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(ClassOut { name: Some(Cow::Owned(s.to_string())), color: None })
            }
            fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let (mut name, mut names, mut color, mut packed) = (None, None, None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Name => name = Some(map.next_value::<ClassName<'a>>()?.0),
                        Key::Names => names = Some(map.next_value::<ClassName<'a>>()?.0),
                        Key::Color => color = read_color(&map.next_value::<serde_json::Value>()?),
                        Key::ColorRgb => packed = packed_color(&map.next_value::<serde_json::Value>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                // "name" wins when present, even when unreadable (as the GeoJSON importer).
                Ok(ClassOut { name: name.or(names).flatten(), color: color.or(packed) })
            }
            accept_scalars!(ClassOut { name: None, color: None });
            accept_seq!(ClassOut { name: None, color: None });
        }
        d.deserialize_any(V)
    }
}

struct PropsSeed<'w, 'f, 'a> {
    work: &'w mut Work<'a>,
    out: &'f mut Feature<'a>,
}

impl<'a> DeserializeSeed<'a> for PropsSeed<'_, '_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for PropsSeed<'_, '_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("properties")
    }
    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::ObjectType => self.out.object_type = map.next_value::<LooseStr<'a>>()?.0,
                Key::Classification => {
                    let c = map.next_value::<ClassOut<'a>>()?;
                    self.out.class_name = c.name;
                    self.out.class_color = c.color;
                }
                Key::Nucleus => self.out.nucleus = map.next_value_seed(GeomSeed(&mut *self.work))?,
                Key::Measurements => map.next_value_seed(MeasSeed(&mut *self.work))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    accept_scalars!(());
    accept_str!(());
    accept_seq!(());
}

struct FeatureSeed<'w, 'a>(&'w mut Work<'a>);

impl<'a> DeserializeSeed<'a> for FeatureSeed<'_, 'a> {
    type Value = Feature<'a>;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Feature<'a>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for FeatureSeed<'_, 'a> {
    type Value = Feature<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Feature object")
    }
    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<Feature<'a>, M::Error> {
        let work = self.0;
        let mut out = Feature::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => out.kind = map.next_value::<LooseStr<'a>>()?.0,
                Key::Id => out.id = map.next_value::<LooseStr<'a>>()?.0,
                Key::Geometry => out.geometry = map.next_value_seed(GeomSeed(&mut *work))?,
                Key::Properties => map.next_value_seed(PropsSeed { work: &mut *work, out: &mut out })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// What one feature gave.
pub(super) enum Outcome<'a> {
    /// An object: its rings are `work.rings` (the first `outline` of them its outline, the rest
    /// its nucleus), its measurements were appended to `work.meas`.
    Object { kind: ObjectKind, class: Option<(Cow<'a, str>, [u8; 3])>, outline: usize },
    /// An annotation (`objectType` "annotation"): not part of a detection layer.
    Annotation,
    /// Not read, for this reason; `not_a_feature` when its `type` is not "Feature".
    Skip { reason: String, not_a_feature: bool },
}

fn skip<'a>(reason: String) -> Outcome<'a> {
    Outcome::Skip { reason, not_a_feature: false }
}

/// serde_json's message without its " at line 1 column 57" (the position within one feature
/// means little to a user).
fn serde_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(k) => s[..k].to_string(),
        None => s,
    };
    crate::error::printable(&s)
}

/// Parse one feature's text (which starts with `{`). Measurements go to `work.meas` (removed
/// again when the feature is not an object).
pub(super) fn read_feature<'a>(
    text: &'a [u8],
    work: &mut Work<'a>,
    coordinate: f64,
    max_vertices: usize,
) -> Outcome<'a> {
    work.clear_feature();
    work.coordinate = coordinate;
    let mark = work.meas.len();
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = FeatureSeed(&mut *work).deserialize(&mut de).and_then(|f| de.end().map(|()| f));
    let outcome = match parsed {
        Ok(feature) => interpret(feature, work, max_vertices),
        Err(e) => skip(serde_reason(&e)),
    };
    if !matches!(outcome, Outcome::Object { .. }) {
        work.meas.truncate(mark);
    }
    outcome
}

/// Whether `text` may hold Python's bare NaN or Infinity (checked only after a parse failed).
pub(super) fn may_hold_non_finite(text: &[u8]) -> bool {
    memchr::memmem::find(text, b"NaN").is_some() || memchr::memmem::find(text, b"Infinity").is_some()
}

/// The feature text with Python's bare NaN / Infinity outside strings as `null` (so only the
/// coordinates or measurements holding them are affected), or None when it has none.
pub(super) fn cleaned(text: &[u8]) -> Option<String> {
    non_finite_as_null(std::str::from_utf8(text).ok()?)
}

fn interpret<'a>(f: Feature<'a>, work: &mut Work<'a>, max_vertices: usize) -> Outcome<'a> {
    if let Some(t) = f.kind.as_deref() {
        if t != "Feature" {
            return Outcome::Skip {
                reason: format!("type \"{}\" is not a Feature", crate::error::printable(t)),
                not_a_feature: true,
            };
        }
    }
    // QuPath 0.2 put the object type in "id" ("PathCellObject", …); later versions a UUID.
    let legacy = f.id.as_deref().filter(|s| !s.is_empty() && s.starts_with("Path") && s.ends_with("Object"));
    let kind = match (f.object_type.as_deref(), legacy) {
        (Some(t), _) => match ObjectKind::from_qupath(t) {
            Some(k) => k,
            None => {
                return skip(format!(
                    "objectType \"{}\" is not an annotation, detection, cell or tile",
                    crate::error::printable(t)
                ))
            }
        },
        (None, Some(t)) => match ObjectKind::from_qupath(t) {
            Some(k) => k,
            None => {
                return skip(format!(
                    "\"{}\" is not an annotation, detection, cell or tile",
                    crate::error::printable(t)
                ))
            }
        },
        // A file loaded as a detection layer: objects without a type are detections.
        (None, None) => ObjectKind::Detection,
    };
    if kind == ObjectKind::Annotation {
        return Outcome::Annotation;
    }
    let Some(geometry) = &f.geometry else {
        return skip("no geometry".into());
    };
    if let Err(e) = outer_rings(geometry, work) {
        return skip(e);
    }
    let outline = work.rings.len();
    if let Some(nucleus) = &f.nucleus {
        if let Err(e) = outer_rings(nucleus, work) {
            return skip(format!("nucleusGeometry: {e}"));
        }
    }
    let vertices: usize = work.rings.iter().map(|&(s, e)| (e - s) as usize).sum();
    if vertices > max_vertices {
        return skip(format!("{vertices} vertices, more than the {max_vertices} one object may have"));
    }
    let class = f.class_name.filter(|n| !n.is_empty()).map(|n| (n, f.class_color.unwrap_or(UNCLASSIFIED_COLOR)));
    Outcome::Object { kind, class, outline }
}

/// Append the outer ring of each polygon of `g` to `work.rings`; holes, lines and points are
/// not kept.
fn outer_rings(g: &Geom, work: &mut Work) -> Result<(), String> {
    let kind = g.kind.as_deref().ok_or("geometry without a \"type\"")?;
    let block = |what: &str| -> Result<Block, String> {
        g.coords.ok_or_else(|| format!("{} without \"coordinates\"", crate::error::printable(what)))
    };
    match kind {
        "Polygon" => {
            let b = block(kind)?;
            if b.depth != 2 {
                return Err("Polygon coordinates are not a list of rings".into());
            }
            push_ring(work, b.pos0, b.ring0)
        }
        "MultiPolygon" => {
            let b = block(kind)?;
            if b.depth != 3 {
                return Err("MultiPolygon coordinates are not a list of polygons".into());
            }
            for p in b.poly0..b.poly1 {
                let first_ring = if p == b.poly0 { b.ring0 } else { work.poly_end[p as usize - 1] };
                let start = if first_ring == b.ring0 { b.pos0 } else { work.ring_end[first_ring as usize - 1] };
                push_ring(work, start, first_ring)?;
            }
            Ok(())
        }
        "GeometryCollection" => {
            let before = work.rings.len();
            for m in g.members.iter().flatten() {
                // Lines and points beside the areas are not kept.
                if let Some("Polygon" | "MultiPolygon" | "GeometryCollection") = m.kind.as_deref() {
                    outer_rings(m, work).map_err(|e| format!("GeometryCollection member: {e}"))?
                }
            }
            if work.rings.len() == before {
                return Err("a GeometryCollection without a polygon".into());
            }
            Ok(())
        }
        "Point" | "MultiPoint" | "LineString" | "MultiLineString" => {
            Err(format!("a {kind} is not an area (a detection layer keeps polygons)"))
        }
        other => Err(format!("geometry type {} is not supported", crate::error::printable(other))),
    }
}

/// Keep ring `ring` (positions from `start` to `ring_end[ring]`) without its closing repeat.
fn push_ring(work: &mut Work, start: u32, ring: u32) -> Result<(), String> {
    let end = work.ring_end[ring as usize];
    let pts = &work.pos[start as usize..end as usize];
    let mut len = pts.len();
    if len > 1 && pts[0] == pts[len - 1] {
        len -= 1;
    }
    if len < 3 {
        return Err(format!("a polygon ring has {len} distinct vertices (at least 3 needed)"));
    }
    work.rings.push((start, start + len as u32));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Batches: features parsed on one thread, in file order.

/// One parsed object of a batch.
pub(super) struct Parsed<'a> {
    pub offset: u64,
    pub len: u32,
    pub kind: ObjectKind,
    pub class: Option<(Cow<'a, str>, [u8; 3])>,
    /// End of its rings in `Batch::ring_ends`.
    pub rings_end: u32,
    pub outline_rings: u16,
    /// End of its measurements in `Batch::work.meas`.
    pub meas_end: u32,
    pub bounds: [f32; 4],
    pub centroid: [f32; 2],
}

/// The objects of consecutive features, parsed on one thread.
#[derive(Default)]
pub(super) struct Batch<'a> {
    pub objects: Vec<Parsed<'a>>,
    pub vertices: Vec<[f32; 2]>,
    /// End of each ring in `vertices`.
    pub ring_ends: Vec<u32>,
    /// Skipped features: number, reason, whether its type was not "Feature".
    pub skipped: Vec<(usize, String, bool)>,
    pub annotations: usize,
    pub work: Work<'a>,
}

/// Caps one feature is checked against while parsing.
#[derive(Clone, Copy)]
pub(super) struct FeatureCaps {
    pub coordinate: f64,
    pub vertices: usize,
    pub bytes: usize,
}

impl<'a> Batch<'a> {
    /// Parse `e`, whose bytes are in `buf` (which starts at absolute offset `buf_start`).
    pub fn read(&mut self, buf: &'a [u8], buf_start: u64, e: &Element, caps: FeatureCaps) {
        if e.oversized {
            let reason = format!("more than {} bytes, the most one feature may take", caps.bytes);
            self.skipped.push((e.number, reason, false));
            return;
        }
        let from = (e.start - buf_start) as usize;
        let to = (e.end - buf_start) as usize;
        let text = buf[from..to].trim_ascii_end();
        if text.first() != Some(&b'{') {
            self.skipped.push((e.number, "not an object".into(), false));
            return;
        }
        let outcome = read_feature(text, &mut self.work, caps.coordinate, caps.vertices);
        match outcome {
            Outcome::Skip { .. } if may_hold_non_finite(text) => match cleaned(text) {
                // Python's json module writes NaN and Infinity: read the feature with them as
                // nulls (the file's bytes are still what is written back).
                Some(clean) => {
                    let mut work = Work::default();
                    let outcome = read_feature(clean.as_bytes(), &mut work, caps.coordinate, caps.vertices);
                    let outcome = match outcome {
                        Outcome::Object { kind, class, outline } => {
                            let class = class.map(|(n, c)| (Cow::Owned(n.into_owned()), c));
                            self.work.meas.extend(work.meas.drain(..).map(|(n, v)| (Cow::Owned(n.into_owned()), v)));
                            Outcome::Object { kind, class, outline }
                        }
                        Outcome::Annotation => Outcome::Annotation,
                        Outcome::Skip { reason, not_a_feature } => Outcome::Skip { reason, not_a_feature },
                    };
                    let meas_end = self.work.meas.len() as u32;
                    self.take(e, text.len(), outcome, &work, meas_end);
                }
                None => self.take(e, text.len(), outcome, &Work::default(), 0),
            },
            outcome => {
                let meas_end = self.work.meas.len() as u32;
                let work = std::mem::take(&mut self.work);
                self.take(e, text.len(), outcome, &work, meas_end);
                self.work = work;
            }
        }
    }

    fn take(&mut self, e: &Element, len: usize, outcome: Outcome<'a>, geometry: &Work, meas_end: u32) {
        match outcome {
            Outcome::Skip { reason, not_a_feature } => self.skipped.push((e.number, reason, not_a_feature)),
            Outcome::Annotation => self.annotations += 1,
            Outcome::Object { kind, class, outline } => {
                let v0 = self.vertices.len();
                let (mut area, mut cx, mut cy) = (0.0f64, 0.0f64, 0.0f64);
                let (mut sx, mut sy, mut count) = (0.0f64, 0.0f64, 0usize);
                for (k, &(s, end)) in geometry.rings.iter().enumerate() {
                    let pts = &geometry.pos[s as usize..end as usize];
                    self.vertices.extend(pts.iter().map(|p| [p[0] as f32, p[1] as f32]));
                    self.ring_ends.push(self.vertices.len() as u32);
                    if k < outline {
                        let (a, c) = ring_centroid(pts);
                        area += a;
                        cx += a * c[0];
                        cy += a * c[1];
                        for p in pts {
                            sx += p[0];
                            sy += p[1];
                        }
                        count += pts.len();
                    }
                }
                let mut b = [f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY];
                for v in &self.vertices[v0..] {
                    b = [b[0].min(v[0]), b[1].min(v[1]), b[2].max(v[0]), b[3].max(v[1])];
                }
                let mut c = if area > 1e-9 { [cx / area, cy / area] } else { [sx / count as f64, sy / count as f64] };
                if !(c[0] >= f64::from(b[0])
                    && c[0] <= f64::from(b[2])
                    && c[1] >= f64::from(b[1])
                    && c[1] <= f64::from(b[3]))
                {
                    c = [sx / count as f64, sy / count as f64];
                }
                let centroid = [(c[0] as f32).clamp(b[0], b[2]), (c[1] as f32).clamp(b[1], b[3])];
                self.objects.push(Parsed {
                    offset: e.start,
                    len: len as u32,
                    kind,
                    class,
                    rings_end: self.ring_ends.len() as u32,
                    outline_rings: outline.min(usize::from(u16::MAX)) as u16,
                    meas_end,
                    bounds: b,
                    centroid,
                });
            }
        }
    }
}

/// Unsigned area and area centroid of a ring (computed relative to its first vertex).
fn ring_centroid(pts: &[[f64; 2]]) -> (f64, [f64; 2]) {
    let o = pts[0];
    let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for k in 0..pts.len() {
        let p = [pts[k][0] - o[0], pts[k][1] - o[1]];
        let q = pts[(k + 1) % pts.len()];
        let q = [q[0] - o[0], q[1] - o[1]];
        let cross = p[0] * q[1] - q[0] * p[1];
        a += cross;
        cx += (p[0] + q[0]) * cross;
        cy += (p[1] + q[1]) * cross;
    }
    if a.abs() < 1e-12 {
        return (0.0, o);
    }
    (a.abs() / 2.0, [o[0] + cx / (3.0 * a), o[1] + cy / (3.0 * a)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(text: &str, chunk: usize) -> (Vec<Element>, Result<Option<String>, FormatError>, Scanner) {
        let mut s = Scanner::new(0, 1 << 20);
        let mut out = Vec::new();
        for c in text.as_bytes().chunks(chunk) {
            if let Err(e) = s.scan(c, &mut out) {
                return (out, Err(e), s);
            }
        }
        let r = s.finish(&mut out);
        (out, r, s)
    }

    #[test]
    fn scanner_splits_features_across_chunk_edges() {
        let text = r#" {"type": "FeatureCollection", "x": {"features": 1}, "features": [ {"a": "}\"]"}, {"b": [1, {"c": 2}]} ,3 ] , "more": [}"#;
        for chunk in [1, 2, 3, 7, 1000] {
            let (els, end, _) = scan_all(text, chunk);
            assert_eq!(end.ok(), Some(None), "chunk {chunk}");
            let parts: Vec<&str> = els.iter().map(|e| text[e.start as usize..e.end as usize].trim_end()).collect();
            assert_eq!(parts, [r#"{"a": "}\"]"}"#, r#"{"b": [1, {"c": 2}]}"#, "3"], "chunk {chunk}");
            assert_eq!(els.iter().map(|e| e.number).collect::<Vec<_>>(), [1, 2, 3]);
        }
    }

    #[test]
    fn scanner_single_feature_bare_array_and_errors() {
        let (els, end, s) = scan_all(r#"{"type": "Feature", "geometry": null}"#, 5);
        assert!(s.single && end.ok() == Some(None) && els.len() == 1);
        let (els, end, _) = scan_all("[{}, {}]", 3);
        assert_eq!((els.len(), end.ok()), (2, Some(None)));
        let (_, end, _) = scan_all(r#"{"features": {"a": 1}}"#, 4);
        assert!(end.is_err());
        let (_, end, _) = scan_all("  ", 4);
        assert!(end.is_err());
        let (_, end, _) = scan_all("12", 4);
        assert!(end.is_err());
        let (els, end, _) = scan_all(r#"{"features": [{"a": 1}, {"b": "#, 4);
        assert_eq!(els.len(), 1);
        assert!(end.ok().flatten().is_some_and(|cut| cut.contains("inside feature 2")));
    }
}
