//! Case reports: the per-case record a review leaves ([`schema`]), the slide's fingerprint
//! ([`hash`]), and the tools that read many sites' reports. No GUI types: the CLI, the viewer and
//! tests share them.

pub mod consolidate;
pub mod hash;
pub mod schema;

pub use schema::{Report, ReportError, ReviewType, Role, Status};
