//! Annotations: plain documents in level-0 pixels, with no GUI types, so the CLI and tests use them
//! as the viewer does.

pub mod asap;
pub mod geojson;
pub mod geometry;
pub mod model;
pub mod store;
pub mod table;

pub use geojson::{AnnotationFileError, Import};
pub use geometry::{Geometry, Measurement, PixelSize, Point, Polygon, Unit};
pub use model::{default_classes, Annotation, AnnotationClass, AnnotationId, Document};
