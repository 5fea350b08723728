//! Annotations: plain documents in level-0 pixels, with no GUI types, so the CLI and tests use them
//! as the viewer does.

pub mod geometry;

pub use geometry::{Geometry, Measurement, PixelSize, Point, Polygon, Unit};
