//! Annotations: plain documents in level-0 pixels, with no GUI types, so the CLI and tests use them
//! as the viewer does.
//!
//! This module owns a slide's annotation document and everything about it that is not drawing:
//! the shapes and their measurements ([`geometry`]), annotations, classes and the [`Document`]
//! with its undo history and spatial index ([`model`]), the brush's paint and erase
//! ([`brush`]), counting fields and what they hold ([`counting`]), QuPath GeoJSON ([`geojson`])
//! and ASAP XML ([`asap`]) reading and writing, the sidecar file beside the slide and its background autosave
//! ([`store`]), the measurement table and its CSV/JSON export ([`table`]), the typed file
//! errors ([`error`]), and the detection layer ([`detections`]): up to millions of QuPath
//! detections, cells and tiles held compactly, streamed from GeoJSON and written back unchanged.
//!
//! Conventions throughout: coordinates are level-0 slide pixels as `f64`, x to the right and y
//! down from the image's top-left corner; a bounding box or query area `[f64; 4]` is
//! `[x0, y0, x1, y1]`, while a rectangle is its top-left corner and size. Measurements are in µm
//! and µm² when the slide's pixel size is known, else in level-0 px and px²
//! ([`geometry::Unit`] says which).
//!
//! Dependencies: no GUI crate and no viewer types; within the crate it imports only
//! [`crate::files`] (bounded reads, atomic writes, the app data folder), [`crate::text`] (markup
//! escaping, CSV fields, digit grouping), [`crate::limits`] (file size and coordinate caps) and
//! [`crate::error`] (printable quotes of file text) —
//! never the slide, tile, TIFF or report layers (its tests aside: one checks the report summary
//! against the table). The report module builds on this one, not the other way round.

#![warn(missing_docs)]

pub mod asap;
pub mod brush;
pub mod counting;
pub mod detections;
pub mod error;
pub mod geojson;
pub mod geometry;
pub mod model;
pub mod store;
pub mod table;

pub use error::{AnnotationFileError, DetectionFileError, FormatError};
pub use geojson::Import;
pub use geometry::{Geometry, Measurement, PixelSize, Point, Polygon, Unit};
pub use model::{default_classes, Annotation, AnnotationClass, AnnotationId, Document, ObjectKind};
