//! Typed errors of annotation files. Problems with single objects are not errors: the reader
//! skips them and lists them in [`super::Import`]; these are for files that cannot be read at all.
//! Text quoted from a file is made printable ([`crate::error::printable`]).

use std::io;
use std::path::{Path, PathBuf};

/// Why text is not an annotation file at all (without the file name).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// Not JSON (serde's message names line and column).
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not GeoJSON features (what was found instead).
    #[error("{0}")]
    NotGeoJson(String),
    /// Not well-formed XML (the parser's message names line and column).
    #[error("not valid XML: {0}")]
    NotXml(String),
    /// Aperio ImageScope's XML, which has the same root element as an ASAP list.
    #[error("this is Aperio ImageScope XML, not ASAP XML (not supported)")]
    ImageScope,
    /// XML with another root element.
    #[error("expected ASAP annotations (<ASAP_Annotations>), found <{0}>")]
    NotAsap(String),
}

/// Why an annotation file could not be read or written. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum AnnotationFileError {
    /// The file could not be opened or read (missing, not a regular file, larger than
    /// [`Limits::annotation_file_bytes`](crate::Limits::annotation_file_bytes), permissions).
    #[error("{}: {error}", path.display())]
    Read {
        /// The annotation file.
        path: PathBuf,
        /// What the system (or the size check) said.
        error: io::Error,
    },
    /// The bytes are not UTF-8 (GeoJSON and ASAP XML are UTF-8 text).
    #[error("{}: not UTF-8 text: {reason}", path.display())]
    NotUtf8 {
        /// The annotation file.
        path: PathBuf,
        /// Where the first invalid byte is.
        reason: String,
    },
    /// Read, but not an annotation file of the expected format.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The annotation file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FormatError,
    },
    /// The file could not be written (the previous file, if any, is unchanged).
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        /// The annotation file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
}

impl AnnotationFileError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            AnnotationFileError::Read { path, .. }
            | AnnotationFileError::NotUtf8 { path, .. }
            | AnnotationFileError::Format { path, .. }
            | AnnotationFileError::Write { path, .. } => path,
        }
    }

    /// The problem without the file name.
    pub fn reason(&self) -> String {
        match self {
            AnnotationFileError::Read { error, .. } => error.to_string(),
            AnnotationFileError::NotUtf8 { reason, .. } => format!("not UTF-8 text: {reason}"),
            AnnotationFileError::Format { problem, .. } => problem.to_string(),
            AnnotationFileError::Write { error, .. } => format!("cannot write: {error}"),
        }
    }
}

/// Read a whole annotation file of at most [`Limits::annotation_file_bytes`](crate::Limits::annotation_file_bytes) as UTF-8 text,
/// then parse it with `parse`.
pub(super) fn read_text_file<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, FormatError>,
) -> Result<T, AnnotationFileError> {
    let bytes = crate::files::read_regular(path, crate::Limits::DEFAULT.annotation_file_bytes)
        .map_err(|error| AnnotationFileError::Read { path: path.to_path_buf(), error })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| AnnotationFileError::NotUtf8 { path: path.to_path_buf(), reason: e.to_string() })?;
    parse(&text).map_err(|problem| AnnotationFileError::Format { path: path.to_path_buf(), problem })
}

/// Why a detection layer ([`super::detections::DetectionLayer`]) could not be loaded or written.
/// Names the file: the GeoJSON source for reading problems, the output for writing problems.
#[derive(Debug, thiserror::Error)]
pub enum DetectionFileError {
    /// The file could not be opened or read (missing, not a regular file, permissions).
    #[error("{}: {error}", path.display())]
    Read {
        /// The GeoJSON file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// Not GeoJSON features at all (a file with some unreadable features is not an error: they
    /// are skipped and counted in the load report).
    #[error("{}: {problem}", path.display())]
    Format {
        /// The GeoJSON file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FormatError,
    },
    /// More objects, vertices, classes or measurement values than the layer's caps allow
    /// ([`super::detections::DetectionLimits`]); nothing was kept.
    #[error("{}: too large for a detection layer: {what}", path.display())]
    TooLarge {
        /// The GeoJSON file.
        path: PathBuf,
        /// Which cap, and its value.
        what: String,
    },
    /// The load was cancelled by the caller.
    #[error("{}: loading was cancelled", path.display())]
    Cancelled {
        /// The GeoJSON file.
        path: PathBuf,
    },
    /// The source file changed since the layer was loaded, so its features cannot be copied
    /// back; nothing was written.
    #[error("{}: the file changed since it was loaded ({what}); load it again before exporting", path.display())]
    SourceChanged {
        /// The GeoJSON source file.
        path: PathBuf,
        /// What changed (size, modification time, or the bytes at a feature's place).
        what: String,
    },
    /// The output could not be written (the previous file, if any, is unchanged).
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
}

impl DetectionFileError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            DetectionFileError::Read { path, .. }
            | DetectionFileError::Format { path, .. }
            | DetectionFileError::TooLarge { path, .. }
            | DetectionFileError::Cancelled { path }
            | DetectionFileError::SourceChanged { path, .. }
            | DetectionFileError::Write { path, .. } => path,
        }
    }
}
