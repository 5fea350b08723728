//! A small TIFF writer for tiled pyramids: classic or BigTIFF, either byte order, tiles or strips,
//! SubIFDs. Data blocks are written first and IFDs after them, as libtiff does, so a file is
//! streamed out in one pass and only the offset tables are kept in memory.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::tags::types;
use super::ByteOrder;

/// A tag value to write.
#[derive(Clone, Debug)]
pub enum Value {
    /// SHORT values.
    Short(Vec<u16>),
    /// LONG values.
    Long(Vec<u32>),
    /// LONG8 values (BigTIFF only).
    Long8(Vec<u64>),
    /// RATIONAL values: (numerator, denominator).
    Rational(Vec<(u32, u32)>),
    /// ASCII text; the terminating NUL is added.
    Ascii(String),
    /// UNDEFINED bytes (JPEGTables, XMP).
    Undefined(Vec<u8>),
    /// SubIFD offsets: written as IFD (classic) or IFD8 (BigTIFF).
    Ifd(Vec<u64>),
    /// Offsets or byte counts: LONG in classic TIFF, LONG8 in BigTIFF.
    Offsets(Vec<u64>),
}

/// Writes a TIFF front to back: data blocks with [`TiffWriter::write_block`], then IFDs whose
/// entries point at them. Offsets are in bytes from the file's start; values longer than the
/// entry's value field go in a block before the IFD. Finish with [`TiffWriter::finish`].
pub struct TiffWriter<W: Write + Seek> {
    out: W,
    order: ByteOrder,
    bigtiff: bool,
    pos: u64,
    /// Where the pointer to the next IFD of the main chain must be patched.
    chain_link: u64,
}

impl TiffWriter<BufWriter<File>> {
    /// Create (or truncate) the file at `path`, buffered, and write the header.
    pub fn create(path: &Path, order: ByteOrder, bigtiff: bool) -> io::Result<Self> {
        TiffWriter::new(BufWriter::with_capacity(1 << 20, File::create(path)?), order, bigtiff)
    }
}

impl<W: Write + Seek> TiffWriter<W> {
    /// Write the header (classic TIFF, or BigTIFF when `bigtiff`) to `out`, positioned at its
    /// start.
    pub fn new(mut out: W, order: ByteOrder, bigtiff: bool) -> io::Result<Self> {
        out.write_all(if order == ByteOrder::Little { b"II" } else { b"MM" })?;
        let pos = if bigtiff {
            out.write_all(&order.put_u16(43))?;
            out.write_all(&order.put_u16(8))?;
            out.write_all(&order.put_u16(0))?;
            out.write_all(&order.put_u64(0))?;
            16
        } else {
            out.write_all(&order.put_u16(42))?;
            out.write_all(&order.put_u32(0))?;
            8
        };
        let chain_link = if bigtiff { 8 } else { 4 };
        Ok(TiffWriter { out, order, bigtiff, pos, chain_link })
    }

    /// Whether the file is BigTIFF (8-byte offsets).
    pub fn bigtiff(&self) -> bool {
        self.bigtiff
    }

    fn align(&mut self) -> io::Result<()> {
        if self.pos % 2 == 1 {
            self.out.write_all(&[0])?;
            self.pos += 1;
        }
        Ok(())
    }

    /// Append a block of data (a tile, a strip, a long tag value), word-aligned as TIFF 6.0
    /// asks; returns its offset. A classic TIFF passing 4 GiB is an error.
    pub fn write_block(&mut self, bytes: &[u8]) -> io::Result<u64> {
        self.align()?;
        let at = self.pos;
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        if !self.bigtiff && self.pos > u64::from(u32::MAX) {
            return Err(io::Error::other("the file passed 4 GiB: use BigTIFF"));
        }
        Ok(at)
    }

    fn encode(&self, value: &Value) -> (u16, u64, Vec<u8>) {
        let o = self.order;
        match value {
            Value::Short(v) => (types::SHORT, v.len() as u64, v.iter().flat_map(|&x| o.put_u16(x)).collect()),
            Value::Long(v) => (types::LONG, v.len() as u64, v.iter().flat_map(|&x| o.put_u32(x)).collect()),
            Value::Long8(v) => (types::LONG8, v.len() as u64, v.iter().flat_map(|&x| o.put_u64(x)).collect()),
            Value::Rational(v) => (
                types::RATIONAL,
                v.len() as u64,
                v.iter().flat_map(|&(n, d)| o.put_u32(n).into_iter().chain(o.put_u32(d))).collect(),
            ),
            Value::Ascii(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                (types::ASCII, b.len() as u64, b)
            }
            Value::Undefined(b) => (types::UNDEFINED, b.len() as u64, b.clone()),
            Value::Ifd(v) | Value::Offsets(v) => {
                let is_ifd = matches!(value, Value::Ifd(_));
                if self.bigtiff {
                    let t = if is_ifd { types::IFD8 } else { types::LONG8 };
                    (t, v.len() as u64, v.iter().flat_map(|&x| o.put_u64(x)).collect())
                } else {
                    let t = if is_ifd { types::IFD } else { types::LONG };
                    (t, v.len() as u64, v.iter().flat_map(|&x| o.put_u32(x as u32)).collect())
                }
            }
        }
    }

    /// Write an IFD with these entries (any order); returns its offset. The IFD's own next pointer is 0.
    fn write_ifd_raw(&mut self, entries: &mut [(u16, Value)]) -> io::Result<(u64, u64)> {
        entries.sort_by_key(|(tag, _)| *tag);
        let inline = if self.bigtiff { 8 } else { 4 };
        // Out-of-line values go before the IFD.
        let mut fields = Vec::with_capacity(entries.len());
        for (tag, value) in entries.iter() {
            let (t, count, bytes) = self.encode(value);
            let mut field = vec![0u8; inline];
            if bytes.len() <= inline {
                field[..bytes.len()].copy_from_slice(&bytes);
            } else {
                let at = self.write_block(&bytes)?;
                field =
                    if self.bigtiff { self.order.put_u64(at).to_vec() } else { self.order.put_u32(at as u32).to_vec() };
            }
            fields.push((*tag, t, count, field));
        }
        self.align()?;
        let at = self.pos;
        let o = self.order;
        let mut ifd = Vec::new();
        if self.bigtiff {
            ifd.extend_from_slice(&o.put_u64(fields.len() as u64));
        } else {
            ifd.extend_from_slice(&o.put_u16(fields.len() as u16));
        }
        for (tag, t, count, field) in &fields {
            ifd.extend_from_slice(&o.put_u16(*tag));
            ifd.extend_from_slice(&o.put_u16(*t));
            if self.bigtiff {
                ifd.extend_from_slice(&o.put_u64(*count));
            } else {
                ifd.extend_from_slice(&o.put_u32(*count as u32));
            }
            ifd.extend_from_slice(field);
        }
        let next_link = at + ifd.len() as u64;
        ifd.extend_from_slice(&vec![0u8; inline]);
        self.out.write_all(&ifd)?;
        self.pos += ifd.len() as u64;
        Ok((at, next_link))
    }

    /// Write an IFD and append it to the main chain.
    pub fn write_chained_ifd(&mut self, mut entries: Vec<(u16, Value)>) -> io::Result<u64> {
        let (at, next_link) = self.write_ifd_raw(&mut entries)?;
        self.patch_offset(self.chain_link, at)?;
        self.chain_link = next_link;
        Ok(at)
    }

    /// Write an IFD outside the main chain (a SubIFD); returns its offset.
    pub fn write_detached_ifd(&mut self, mut entries: Vec<(u16, Value)>) -> io::Result<u64> {
        Ok(self.write_ifd_raw(&mut entries)?.0)
    }

    fn patch_offset(&mut self, at: u64, value: u64) -> io::Result<()> {
        self.out.seek(SeekFrom::Start(at))?;
        if self.bigtiff {
            self.out.write_all(&self.order.put_u64(value))?;
        } else {
            self.out.write_all(&self.order.put_u32(value as u32))?;
        }
        self.out.seek(SeekFrom::Start(self.pos))?;
        Ok(())
    }

    /// Flush and hand back the output. The main chain ends with the last chained IFD.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
