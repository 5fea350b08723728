//! wsiview: a whole-slide image engine and viewer for histopathology.
//!
//! Layers, with one-way dependencies: [`tiff`] (the container), [`tiles`] (codecs and the decoded
//! tile cache), [`slide`] (formats behind the [`slide::SlideSource`] trait, and [`slide::Slide`]
//! for regions), [`synth`] (synthetic slides for tests and demos). None of them uses a GUI; the
//! `viewer` (egui, behind the default cargo feature `gui`) sits on top and reaches files only
//! through them; `cargo build --no-default-features` builds everything else without a GUI crate.

pub mod annotations;
pub mod bench;
pub mod error;
pub mod files;
pub mod report;
pub mod slide;
pub mod stats;
pub mod synth;
pub mod text;
pub mod tiff;
pub mod tiles;
#[cfg(feature = "gui")]
pub mod viewer;

pub use error::{ErrorKind, Result, SlideError};
pub use slide::{LevelInfo, Slide, SlideProperties, SlideSource};
