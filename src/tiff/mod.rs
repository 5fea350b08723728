//! The TIFF container: positional, lock-free reading of IFDs and tag values ([`reader`]), a small
//! writer for tiled pyramids ([`writer`]), and in-place edits for scrubbed copies ([`edit`]).
//! Handles classic TIFF (TIFF 6.0) and BigTIFF in both byte orders, and Hamamatsu NDPI's 64-bit
//! extension of classic TIFF. It knows nothing of slides, pyramids or codecs: pixels are the
//! business of [`crate::tiles`] and [`crate::slide`].
//!
//! Dependencies: this module imports nothing of the crate but [`crate::error`] (errors are
//! [`ErrorKind`](crate::ErrorKind)), [`crate::limits`] and the file-opening helper in
//! `crate::files`; nothing here may import `slide`, `tiles` or the viewer.
//!
//! This is our own thin layer rather than the `tiff` crate's decoder because that decoder is a
//! stream (`Read + Seek` behind `&mut self`): tiles could only be read through one locked handle,
//! and tile offset tables could not be loaded lazily. Here every read is a positional read on a
//! shared [`ByteSource`], so many threads fetch tiles at once, and the seam lets a remote source
//! (HTTP range requests) replace the file. The `tiff` crate is used in the tests as an independent
//! reader of what [`writer`] produces.

#![warn(missing_docs)]

pub mod edit;
pub mod reader;
pub mod source;
pub mod tags;
pub mod writer;

pub use reader::{Entry, Ifd, TiffReader};
pub use source::{ByteSource, FileSource, MemorySource};

/// Byte order of a TIFF file ("II" little-endian, "MM" big-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// "II": least significant byte first.
    Little,
    /// "MM": most significant byte first.
    Big,
}

impl ByteOrder {
    /// Read a u16 stored in this order.
    pub fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        }
    }
    /// Read a u32 stored in this order.
    pub fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        }
    }
    /// Read a u64 stored in this order.
    pub fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            ByteOrder::Little => u64::from_le_bytes(b),
            ByteOrder::Big => u64::from_be_bytes(b),
        }
    }
    /// The bytes of a u16 in this order.
    pub fn put_u16(self, v: u16) -> [u8; 2] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }
    /// The bytes of a u32 in this order.
    pub fn put_u32(self, v: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }
    /// The bytes of a u64 in this order.
    pub fn put_u64(self, v: u64) -> [u8; 8] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }
}
