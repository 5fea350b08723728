//! Annotations: plain documents in level-0 pixels, with no GUI types, so the CLI and tests use them
//! as the viewer does.

pub mod asap;
pub mod error;
pub mod geojson;
pub mod geometry;
pub mod model;
pub mod store;
pub mod table;

pub use error::{AnnotationFileError, FormatError};
pub use geojson::Import;
pub use geometry::{Geometry, Measurement, PixelSize, Point, Polygon, Unit};
pub use model::{default_classes, Annotation, AnnotationClass, AnnotationId, Document, ObjectKind};

/// The largest annotation file read (QuPath GeoJSON or ASAP XML): 1 GiB, far above a slide's
/// million detections (about 300 MB of GeoJSON), bounded so a wrong file cannot exhaust memory.
pub const MAX_ANNOTATION_FILE_BYTES: u64 = 1 << 30;
