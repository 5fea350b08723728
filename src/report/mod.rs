//! Case reports: the per-case record a review leaves ([`schema`]), the slide's fingerprint
//! ([`hash`]), teaching copies with pseudonyms and a scrubbed slide ([`teaching`]), and the tools
//! that read many sites' reports. No GUI types: the CLI, the viewer and
//! tests share them.

pub mod hash;
pub mod schema;
pub mod teaching;

pub use schema::{Report, ReportError, ReviewType, Role, Status};
