//! The network's report registry on PostgreSQL: every site's reports in one database, each site
//! writing only its own, history never changed, read back for consolidation, pulls and research.
//!
//! - [`connect`]: where the registry is (libpq's URIs, keywords, `PG*` variables, service and
//!   password files) and TLS.
//! - [`schema`]: the versioned migrations (`wsiview registry init`), and the security set-up:
//!   a site's database role may insert and read only its site's rows (row-level security), a
//!   reader role reads all, nobody updates or deletes a version (a trigger refuses it), and the
//!   schema owner is none of them (docs/registry.md).
//! - [`push`]: publishing report files, batched by `COPY`, idempotent by `report_id` and content.
//! - [`queue`]: the viewer's publish queue: reports wait there while the registry cannot be
//!   reached, and are published later (by the viewer or `wsiview registry push`).
//! - [`read`]: the current version of every report, as consolidation rows or as report files.
//!
//! Dependencies: [`crate::report`] (the schema, consolidation's rows and statistics) and the
//! shared helpers; never the viewer.

#![warn(missing_docs)]

pub mod connect;
pub mod push;
pub mod queue;
pub mod read;
pub mod schema;

pub use connect::{Origin, Target};

/// What went wrong with the registry. Messages name the registry by [`Target::shown`] (never a
/// password) and say what failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The target or a file it names is wrong (unknown parameter, bad sslmode, unreadable CA
    /// file, password on the command line, …).
    #[error("registry connection: {0}")]
    Config(String),
    /// The registry could not be reached or refused the login.
    #[error("cannot connect to the registry {target}: {}", describe(.error))]
    Connect {
        /// [`Target::shown`].
        target: String,
        /// The client's error.
        error: postgres::Error,
    },
    /// The registry did not complete the connection in time (it accepted and never answered).
    #[error("the registry {target} did not answer within {seconds} s")]
    Unreachable {
        /// [`Target::shown`].
        target: String,
        /// The connect timeout.
        seconds: u64,
    },
    /// A statement failed.
    #[error("the registry refused {what}: {}", describe(.error))]
    Database {
        /// What was being done ("the migration to version 2", "the list of sites").
        what: String,
        /// The client's error.
        error: postgres::Error,
    },
    /// The registry answered something wsiview cannot use.
    #[error("the registry answered {0}")]
    Unexpected(String),
    /// The registry is older or newer than this wsiview.
    #[error(
        "the registry's schema is at version {found}, this wsiview needs {needed}: run `wsiview registry init` as \
         the schema owner (or use a newer wsiview)"
    )]
    Version {
        /// The highest migration applied.
        found: i32,
        /// The highest this wsiview knows.
        needed: i32,
    },
    /// A local file could not be written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
}

impl RegistryError {
    pub(crate) fn database(what: impl Into<String>) -> impl FnOnce(postgres::Error) -> RegistryError {
        let what = what.into();
        move |error| RegistryError::Database { what, error }
    }

    /// Whether the database refused for a passing reason (SQLSTATE classes 08 connection, 25
    /// read-only or aborted transaction, 40 serialization failure or deadlock, 53 insufficient
    /// resources, 57 operator intervention or timeout, 58 system error): trying again later may
    /// succeed, so the report is not refused.
    pub fn is_temporary(&self) -> bool {
        let RegistryError::Database { error, .. } = self else { return false };
        error.as_db_error().is_some_and(|d| {
            let code = d.code().code();
            ["08", "25", "40", "53", "57", "58"].iter().any(|class| code.starts_with(class))
        })
    }

    /// Whether the connection itself failed (the registry went away), rather than a statement
    /// being refused.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            // A login refused (wrong password, no such database) is an answer, not a lost line.
            RegistryError::Connect { error, .. } => error.as_db_error().is_none(),
            RegistryError::Unreachable { .. } => true,
            RegistryError::Database { error, .. } => error.is_closed() || error.as_db_error().is_none(),
            _ => false,
        }
    }
}

/// The server's message and SQLSTATE, or the client's error (never a password: the client does
/// not put it in errors).
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", crate::error::printable(db.message()), db.code().code()),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            crate::error::printable(&text)
        }
    }
}

/// `text` as an SQL string literal (`standard_conforming_strings` on, which wsiview sets for its
/// sessions): for the statements that take no parameters (`COPY`, `CREATE POLICY`).
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\0', "").replace('\'', "''"))
}

/// `text` as an SQL identifier.
pub(crate) fn identifier(text: &str) -> String {
    format!("\"{}\"", text.replace('\0', "").replace('"', "\"\""))
}
