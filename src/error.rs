//! Typed errors of the slide engine. Every error names the file it concerns and says what went wrong
//! in words a user can act on; the binary prints them as one line.

use std::path::{Path, PathBuf};

/// An error about one slide file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct SlideError {
    pub path: PathBuf,
    pub kind: ErrorKind,
}

impl SlideError {
    pub fn new(path: impl AsRef<Path>, kind: ErrorKind) -> Self {
        SlideError { path: path.as_ref().to_path_buf(), kind }
    }
}

/// What went wrong, without the file name (the [`SlideError`] adds it).
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("not a TIFF file (it starts with {0})")]
    NotTiff(String),
    #[error("truncated: {what} needs bytes {start}..{end} but the file has only {file_len} bytes")]
    Truncated { what: String, start: u64, end: u64, file_len: u64 },
    #[error("IFD loop: the IFD at offset {0} is referenced twice")]
    IfdLoop(u64),
    #[error("invalid TIFF: {0}")]
    Invalid(String),
    #[error("unsupported: IFD {ifd}: compression {value} ({name})")]
    UnsupportedCompression { ifd: usize, value: u16, name: &'static str },
    #[error("unsupported: IFD {ifd}: {what}")]
    Unsupported { ifd: usize, what: String },
    #[error("invalid DICOM: {0}")]
    InvalidDicom(String),
    #[error("unsupported DICOM: {0}")]
    UnsupportedDicom(String),
    #[error("no tiled image: {0}")]
    NoLevels(String),
    #[error("level {level}: unreadable tile table ({reason})")]
    TileTable { level: usize, reason: String },
    #[error("tile {col},{row} of level {level} is corrupt ({reason})")]
    CorruptTile { level: usize, col: u64, row: u64, reason: String },
    #[error("level {level} does not exist (the slide has {count} levels)")]
    NoSuchLevel { level: usize, count: usize },
    #[error("tile {col},{row} is outside level {level} ({cols}×{rows} tiles)")]
    NoSuchTile { level: usize, col: u64, row: u64, cols: u64, rows: u64 },
    #[error("no associated image named {name:?} (available: {available})")]
    NoSuchAssociated { name: String, available: String },
    #[error("associated image {name:?} is unreadable: {reason}")]
    CorruptAssociated { name: String, reason: String },
    #[error("request too large: {0}")]
    TooLarge(String),
}

impl ErrorKind {
    /// [`ErrorKind::NoSuchAssociated`] for `name`, listing the `available` names ("none" when
    /// there are none), as every slide source reports an unknown associated image.
    pub fn no_such_associated(name: &str, available: &[String]) -> ErrorKind {
        let available = if available.is_empty() { "none".into() } else { available.join(", ") };
        ErrorKind::NoSuchAssociated { name: name.into(), available }
    }
}

pub type Result<T> = std::result::Result<T, SlideError>;

/// Text from a file, safe to quote in a one-line message: control and other non-printable
/// characters are escaped (`\u{1e}`), so a message never carries raw bytes of the file to a
/// terminal or a log.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{feff}') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}
