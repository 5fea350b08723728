//! wsiview: a whole-slide image engine and viewer for histopathology.
//!
//! Layers, with one-way dependencies: [`tiff`] (the container), [`tiles`] (codecs and the decoded
//! tile cache), [`slide`] (formats behind the [`slide::SlideSource`] trait, and [`slide::Slide`]
//! for regions), [`synth`] (synthetic slides for tests and demos). None of them uses a GUI.

pub mod bench;
pub mod error;
pub mod slide;
pub mod synth;
pub mod tiff;
pub mod tiles;

pub use error::{ErrorKind, Result, SlideError};
pub use slide::{LevelInfo, Slide, SlideProperties, SlideSource};
