//! Typed errors of the report module. Each says what went wrong and where (the file, or the
//! field); text quoted from a file is made printable ([`crate::error::printable`]) so a message
//! never carries raw bytes of a file to a terminal or a log. The CLI and the viewer show them as
//! one line through `Display`.

use std::io;
use std::path::{Path, PathBuf};

use super::schema::{Status, SCHEMA};

/// Why bytes are not a valid report (without the file name: [`ReportError`] adds it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidReport {
    /// Nothing but white space.
    #[error("empty file")]
    Empty,
    /// Not parseable as JSON; serde's message names the line and column.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON without the top-level `"schema"` string.
    #[error("no \"schema\" field (expected {SCHEMA:?})")]
    NoSchema,
    /// Another schema (or another version of this one).
    #[error("schema {0:?} is not {SCHEMA:?}")]
    OtherSchema(String),
    /// A field of the wrong type or shape; serde's message names the field.
    #[error("schema: {0}")]
    Schema(String),
    /// Well-formed, but the report breaks the schema's rules ([`super::Report::problems`]): each
    /// problem names the field.
    #[error("{}", .0.join("; "))]
    Problems(Vec<String>),
}

/// Why a report file cannot be used. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be opened or read (missing, not a regular file, permissions).
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        /// The report file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// Larger than [`Limits::report_bytes`](crate::Limits::report_bytes): not read into memory.
    #[error("{}: larger than {} MB: not a report", path.display(), crate::Limits::DEFAULT.report_bytes >> 20)]
    TooLarge {
        /// The report file.
        path: PathBuf,
    },
    /// Read, but not a valid report.
    #[error("{}: not a report: {problem}", path.display())]
    Invalid {
        /// The report file.
        path: PathBuf,
        /// What is wrong with its content.
        problem: InvalidReport,
    },
}

impl ReportError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReportError::Io { path, .. } | ReportError::TooLarge { path } | ReportError::Invalid { path, .. } => path,
        }
    }

    /// The problem without the file name (summaries list the file separately).
    pub fn reason(&self) -> String {
        match self {
            ReportError::Io { error, .. } => format!("cannot read: {error}"),
            ReportError::TooLarge { .. } => {
                format!("larger than {} MB: not a report", crate::Limits::DEFAULT.report_bytes >> 20)
            }
            ReportError::Invalid { problem, .. } => problem.to_string(),
        }
    }
}

/// Why a report cannot be signed out ([`super::Report::finalise`]) or amended
/// ([`super::Report::amend`]). The report is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    /// Finalising a report that is already final or amended.
    #[error("the report is already {}", .0.as_str())]
    AlreadySignedOut(Status),
    /// Amending a draft (drafts are edited directly).
    #[error("a draft is edited directly, not amended")]
    Draft,
    /// An amendment without a reason.
    #[error("an amendment needs a reason")]
    NoReason,
    /// An amendment without the name of who made it.
    #[error("an amendment needs the name of who made it")]
    NoAuthor,
    /// An amendment that changes no field.
    #[error("nothing was changed")]
    NothingChanged,
    /// The result would break the schema's rules; each problem names the field.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Why a report could not be saved ([`super::store::save_in`]). Names the folder or file.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The reports folder could not be created.
    #[error("{}: cannot create the folder: {error}", path.display())]
    CreateFolder {
        /// The folder.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// `CASE.report.json` or `CASE.report.html` could not be written (nothing was replaced).
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// Neither the wanted folder nor the app data folder could take the report.
    #[error("{first}; and in the fallback folder: {fallback}")]
    Nowhere {
        /// Why the wanted folder failed.
        first: Box<SaveError>,
        /// Why the fallback folder failed.
        fallback: Box<SaveError>,
    },
}

/// A date or timestamp field that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{text:?} is not {expected} ({reason})")]
pub struct TimeError {
    /// The text as given (shown escaped).
    pub text: String,
    /// What was expected: "a date YYYY-MM-DD" or "an RFC 3339 timestamp".
    pub expected: &'static str,
    /// The parser's explanation.
    pub reason: String,
}
