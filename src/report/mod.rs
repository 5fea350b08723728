//! Case reports: the per-case record a review leaves ([`schema`]), the slide's fingerprint
//! ([`hash`]), the report files and printable page ([`store`], [`html`]), teaching copies with
//! pseudonyms and a scrubbed slide ([`teaching`]), and the tools that read many sites' reports
//! ([`consolidate`], comparing diagnosis categories through a [`category_map`]).
//! No GUI types: the CLI, the viewer and tests share them.

pub mod category_map;
pub mod consolidate;
pub mod error;
pub mod hash;
pub mod html;
pub mod schema;
pub mod store;
pub mod teaching;

pub use error::{EditError, InvalidReport, ReportError, SaveError, TimeError};
pub use schema::{Report, ReviewType, Role, Status};
