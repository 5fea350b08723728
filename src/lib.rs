//! wsiview: a whole-slide image engine and viewer for histopathology.
//!
//! Layers, each depending only on those before it:
//! - foundations, importing nothing of the crate but each other's errors: [`error`] (typed slide
//!   errors, [`error::printable`]), [`limits`] (one [`Limits`] value for every cap on untrusted
//!   input), [`files`] (regular files only, atomic writes, the app-data folder), [`text`] (markup
//!   escaping, CSV fields, digit grouping), [`stats`] (median, nearest-rank percentile);
//! - the engine: [`tiff`] (the container), [`tiles`] (codecs, the decoded-tile cache and the
//!   scheduler; never imports `slide`), [`slide`] (formats behind [`slide::SlideSource`], and
//!   [`slide::Slide`] for regions and thumbnails), [`synth`] (synthetic slides), [`bench`](mod@bench);
//! - documents: [`annotations`] (shapes in level-0 pixels, GeoJSON and ASAP files; imports no
//!   engine module) and [`report`] (case reports, teaching copies, consolidation; reads slides for
//!   pictures and fingerprints);
//! - `viewer` (egui, behind the default cargo feature `gui`) on top: nothing imports it; it reads
//!   slides, annotations and reports only through the layers below (its own file work — folder
//!   listings, screenshots — runs on background jobs). `cargo build --no-default-features` builds
//!   everything else, with the headless command line, without a GUI crate.
//!
//! Errors are typed up to the user: each module has its own `thiserror` enums naming the file and
//! the problem; the command line and the viewer print them as one line.

pub mod annotations;
pub mod bench;
pub mod dicomize;
pub mod error;
pub mod files;
pub mod limits;
pub mod registry;
pub mod remote;
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
pub use limits::Limits;
pub use slide::{LevelInfo, Slide, SlideProperties, SlideSource};
