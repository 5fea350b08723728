//! Typed errors of the slide engine. Every error names the file it concerns and says what went wrong
//! in words a user can act on; the binary prints them as one line.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};

/// An error about one slide file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct SlideError {
    /// The slide file (or folder) concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl SlideError {
    /// An error about the file at `path`.
    pub fn new(path: impl AsRef<Path>, kind: ErrorKind) -> Self {
        SlideError { path: path.as_ref().to_path_buf(), kind }
    }
}

/// What went wrong, without the file name (the [`SlideError`] adds it). Text fields are one
/// line, with anything quoted from the file made [`printable`].
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The operating system could not open or read the file.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The file has no bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// Neither TIFF nor any other format read: what it starts with instead (another image
    /// format's signature, or its first bytes in hex).
    #[error("not a TIFF file (it starts with {0})")]
    NotTiff(String),
    /// A structure points past the end of the file.
    #[error("truncated: {what} needs bytes {start}..{end} but the file has only {file_len} bytes")]
    Truncated {
        /// The structure read ("the IFD at offset 8", "tile data").
        what: String,
        /// Its first byte (file offset).
        start: u64,
        /// One past its last byte.
        end: u64,
        /// The file's length in bytes.
        file_len: u64,
    },
    /// The IFD chain returns to an IFD already read on the same path (file offset).
    #[error("IFD loop: the IFD at offset {0} is referenced twice")]
    IfdLoop(u64),
    /// The TIFF (or a vendor's metadata in it) breaks its specification in a way that stops
    /// reading; also a size past a [`crate::Limits`] cap read from the container.
    #[error("invalid TIFF: {0}")]
    Invalid(String),
    /// An image uses a TIFF compression wsiview cannot decode.
    #[error("unsupported: IFD {ifd}: compression {value} ({name})")]
    UnsupportedCompression {
        /// Index of the IFD in the main chain.
        ifd: usize,
        /// The Compression tag's value.
        value: u16,
        /// Its name ([`crate::tiff::tags::compression_name`]).
        name: &'static str,
    },
    /// A valid TIFF feature wsiview does not read (stripped levels, a sample layout, a size
    /// past a [`crate::Limits`] cap).
    #[error("unsupported: IFD {ifd}: {what}")]
    Unsupported {
        /// Index of the IFD in the main chain.
        ifd: usize,
        /// What is not supported.
        what: String,
    },
    /// The DICOM file breaks DICOM PS3.5/PS3.10 or the WSI IOD (PS3.3 A.32.8) in a way that
    /// stops reading.
    #[error("invalid DICOM: {0}")]
    InvalidDicom(String),
    /// A valid DICOM object wsiview does not read (another SOP class, a transfer syntax).
    #[error("unsupported DICOM: {0}")]
    UnsupportedDicom(String),
    /// The file holds no image that can serve as a pyramid level.
    #[error("no tiled image: {0}")]
    NoLevels(String),
    /// A level's tile offsets or byte counts cannot be read (loaded on first use of the level).
    #[error("level {level}: unreadable tile table ({reason})")]
    TileTable {
        /// The pyramid level (0 = full resolution).
        level: usize,
        /// Why.
        reason: String,
    },
    /// One tile's data is missing, cut short or does not decode, or could not be read (a
    /// network failure: the reason starts with "cannot read"); other tiles may be fine.
    #[error(
        "tile {col},{row} of level {level} {} ({reason})",
        if reason.starts_with("cannot read") { "could not be read" } else { "is corrupt" }
    )]
    CorruptTile {
        /// The pyramid level (0 = full resolution).
        level: usize,
        /// Column in the level's tile grid.
        col: u64,
        /// Row in the level's tile grid.
        row: u64,
        /// Why (a [`crate::tiles::codec::DecodeError`]'s text, or a read error).
        reason: String,
    },
    /// A level index past the last level.
    #[error("level {level} does not exist (the slide has {count} levels)")]
    NoSuchLevel {
        /// The level asked for.
        level: usize,
        /// How many levels the slide has.
        count: usize,
    },
    /// A tile outside the level's tile grid.
    #[error("tile {col},{row} is outside level {level} ({cols}×{rows} tiles)")]
    NoSuchTile {
        /// The pyramid level.
        level: usize,
        /// The column asked for.
        col: u64,
        /// The row asked for.
        row: u64,
        /// Tiles across the level.
        cols: u64,
        /// Tiles down the level.
        rows: u64,
    },
    /// An associated image name the slide does not have ([`ErrorKind::no_such_associated`]).
    #[error("no associated image named {name:?} (available: {available})")]
    NoSuchAssociated {
        /// The name asked for.
        name: String,
        /// The names the slide has, comma-separated, or "none".
        available: String,
    },
    /// An associated image that exists but cannot be decoded.
    #[error("associated image {name:?} is unreadable: {reason}")]
    CorruptAssociated {
        /// Its name ("label", "macro", "thumbnail", …).
        name: String,
        /// Why.
        reason: String,
    },
    /// A request or an image past a [`crate::Limits`] cap (a region, an associated image, a
    /// DICOM data set).
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

/// The engine's result: an error always names its file.
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
