//! Case reports: the per-case record a review leaves ([`schema`]), the slide's fingerprint
//! ([`hash`]), the report files and printable page ([`store`], [`html`]), teaching copies with
//! pseudonyms and a scrubbed slide ([`teaching`]), the tools that read many sites' reports
//! ([`consolidate`], comparing diagnosis categories through a [`category_map`]), and the
//! de-identified research dataset made from them ([`research`]).
//! No GUI types: the CLI, the viewer and tests share them.
//!
//! This module owns the report schema `wsiview.report/1` and its validity rules
//! (docs/report-schema.md), where report files live and how they are written, the HTML page, the
//! teaching copy, cross-site consolidation, the research export, and which slides make a case
//! ([`case`]: the case id rule, case folders, a case's report state). The typed errors are in
//! [`error`] (reports, saving, editing), [`teaching::TeachingError`], [`research::ResearchError`]
//! and [`category_map::CategoryMapError`].
//!
//! Dependencies: no GUI crate and never the viewer (the viewer drives reports, not the reverse).
//! It may use [`crate::annotations`] (the documents: the page draws them and the report
//! summarises them per class) and [`crate::slide`] (the slide's facts, thumbnail and view
//! snapshot, and the associated images a teaching copy removes); the teaching copy also patches
//! the slide file through [`crate::tiff`]. Otherwise it imports only the shared helpers
//! [`crate::files`], [`crate::text`], [`crate::error`], [`crate::limits`] and [`crate::stats`].

#![warn(missing_docs)]

pub mod case;
pub mod category_map;
pub mod consolidate;
pub mod error;
pub mod hash;
pub mod html;
pub mod research;
pub mod schema;
pub mod store;
pub mod synth;
pub mod teaching;

pub use error::{EditError, InvalidReport, ReportError, SaveError, TimeError};
pub use schema::{Report, ReviewType, Role, Status};
