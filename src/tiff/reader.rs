//! Parsing of the TIFF header, IFDs and tag values (TIFF 6.0 section 2 "TIFF Structure",
//! BigTIFF, and Hamamatsu NDPI's 64-bit variant), with every size checked against the
//! file and the reader's [`Limits`] before anything is allocated.

use std::collections::HashSet;
use std::sync::Arc;

use super::tags::{self, types};
use super::{ByteOrder, ByteSource};
use crate::error::ErrorKind;
use crate::limits::Limits;

type TResult<T> = std::result::Result<T, ErrorKind>;

/// Largest tag value read into memory by default: [`Limits::tag_bytes`] of [`Limits::DEFAULT`].
pub const MAX_TAG_BYTES: u64 = Limits::DEFAULT.tag_bytes;
/// Hamamatsu NDPI's FileFormat tag: in IFD 0, it marks the NDPI layout of classic TIFF.
pub const NDPI_FORMAT_TAG: u16 = 65420;

/// One directory entry: a tag, its type, its count and either the value inline or its offset.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The tag number (see [`super::tags`]).
    pub tag: u16,
    /// The TIFF field type (1 BYTE … 18 IFD8, see [`super::tags::types`]).
    pub field_type: u16,
    /// Number of values (not bytes) of the field type.
    pub count: u64,
    /// The entry's value field as stored (4 bytes in classic TIFF, 8 in BigTIFF, zero-padded).
    raw: [u8; 8],
    /// NDPI: the high 32 bits of the value field (stored after the IFD); 0 otherwise.
    high: u32,
    /// Where the entry's 12 (classic) or 20 (BigTIFF) bytes start in the file; entries are kept
    /// sorted by tag, so this, not the position in `entries`, is what an in-place edit patches.
    at: u64,
}

impl Entry {
    /// File offset of the entry itself (its tag field).
    pub fn entry_offset(&self) -> u64 {
        self.at
    }
}

/// An Image File Directory: its offset, its entries sorted by tag, and the next IFD's offset (0 = none).
#[derive(Clone, Debug)]
pub struct Ifd {
    /// File offset of the IFD (its entry count).
    pub offset: u64,
    /// The entries, sorted by tag (TIFF 6.0 requires it; files that do not are sorted on read).
    pub entries: Vec<Entry>,
    /// File offset of the next IFD in the chain; 0 ends it.
    pub next: u64,
}

impl Ifd {
    /// The entry of `tag`, if the IFD has one (binary search).
    pub fn get(&self, tag: u16) -> Option<&Entry> {
        self.entries.binary_search_by_key(&tag, |e| e.tag).ok().map(|i| &self.entries[i])
    }
}

/// A parsed TIFF header plus the byte source; reads IFDs and values on demand, each by positional
/// reads, so one reader serves many threads (`&self` everywhere). Sizes read from the file are
/// checked against its [`Limits`] ([`TiffReader::with_limits`]).
pub struct TiffReader {
    source: Arc<dyn ByteSource>,
    limits: Limits,
    /// The header's byte order ("II" or "MM").
    pub order: ByteOrder,
    /// BigTIFF (version 43: 8-byte offsets and counts) rather than classic TIFF (42).
    pub bigtiff: bool,
    /// Hamamatsu NDPI's variant of classic TIFF (files over 4 GB): the header's first-IFD offset
    /// has 8 bytes (4..12); each IFD's next-IFD offset has 8 bytes and is followed by one 4-byte
    /// high half per entry, extending the entry's value field (an offset, or an inline LONG) to
    /// 64 bits. Set when the IFD so read has tag 65420 ([`NDPI_FORMAT_TAG`]).
    pub ndpi: bool,
    /// File offset of IFD 0, from the header.
    pub first_ifd: u64,
}

fn describe_signature(head: &[u8]) -> String {
    let known: [(&[u8], &str); 6] = [
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"%PDF", "a PDF document"),
        (b"GIF8", "a GIF image"),
        (b"BM", "a BMP image"),
    ];
    for (sig, name) in known {
        if head.starts_with(sig) {
            return format!("the signature of {name}");
        }
    }
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        return "the signature of a DICOM file".into();
    }
    let shown: Vec<String> = head.iter().take(4).map(|b| format!("{b:02X}")).collect();
    format!("bytes {}", shown.join(" "))
}

impl TiffReader {
    /// Parse the header, with [`Limits::DEFAULT`]. Fails with [`ErrorKind::Empty`] or
    /// [`ErrorKind::NotTiff`] for other files, [`ErrorKind::Truncated`] or [`ErrorKind::Invalid`]
    /// for a broken header, [`ErrorKind::Io`] when the source cannot be read.
    pub fn new(source: Arc<dyn ByteSource>) -> TResult<Self> {
        Self::with_limits(source, Limits::DEFAULT)
    }

    /// [`TiffReader::new`] with caps of the caller's choosing (image-tiff's
    /// `Decoder::with_limits`); the slide readers built on this reader use the same caps.
    pub fn with_limits(source: Arc<dyn ByteSource>, limits: Limits) -> TResult<Self> {
        let len = source.len();
        if len == 0 {
            return Err(ErrorKind::Empty);
        }
        let mut head = vec![0u8; len.min(132) as usize];
        source.read_exact_at(0, &mut head)?;
        let order = match head.get(..2) {
            Some(b"II") => ByteOrder::Little,
            Some(b"MM") => ByteOrder::Big,
            _ => return Err(ErrorKind::NotTiff(describe_signature(&head))),
        };
        if head.len() < 8 {
            return Err(ErrorKind::Truncated { what: "the TIFF header".into(), start: 0, end: 8, file_len: len });
        }
        let magic = order.u16([head[2], head[3]]);
        let (bigtiff, first_ifd) = match magic {
            42 => {
                let low = order.u32([head[4], head[5], head[6], head[7]]);
                // NDPI keeps the high half of the first-IFD offset in bytes 8..12.
                if let Some(offset) = head.get(8..12).and_then(|h| {
                    let high = order.u32([h[0], h[1], h[2], h[3]]);
                    let offset = u64::from(low) | (u64::from(high) << 32);
                    Self::is_ndpi_ifd(&source, limits, order, offset).then_some(offset)
                }) {
                    return Ok(TiffReader { source, limits, order, bigtiff: false, ndpi: true, first_ifd: offset });
                }
                (false, u64::from(low))
            }
            43 => {
                if head.len() < 16 {
                    return Err(ErrorKind::Truncated {
                        what: "the BigTIFF header".into(),
                        start: 0,
                        end: 16,
                        file_len: len,
                    });
                }
                let offset_size = order.u16([head[4], head[5]]);
                if offset_size != 8 {
                    return Err(ErrorKind::Invalid(format!("BigTIFF offset size {offset_size} (must be 8)")));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[8..16]);
                (true, order.u64(b))
            }
            other => {
                return Err(ErrorKind::NotTiff(format!("a TIFF byte-order mark but version {other} (not 42 or 43)")))
            }
        };
        Ok(TiffReader { source, limits, order, bigtiff, ndpi: false, first_ifd })
    }

    /// Whether the IFD at `offset`, read in NDPI layout, parses and has the NDPI FileFormat tag.
    /// Errors say no: the file is then read as classic TIFF, which reports them.
    fn is_ndpi_ifd(source: &Arc<dyn ByteSource>, limits: Limits, order: ByteOrder, offset: u64) -> bool {
        if offset < 12 || offset >= source.len() {
            return false;
        }
        let probe = TiffReader { source: source.clone(), limits, order, bigtiff: false, ndpi: true, first_ifd: offset };
        probe.read_ifd(offset).is_ok_and(|ifd| ifd.get(NDPI_FORMAT_TAG).is_some())
    }

    /// The byte source read (shared: slide readers keep it for tile reads).
    pub fn source(&self) -> &Arc<dyn ByteSource> {
        &self.source
    }

    /// The caps this reader, and the slide readers built on it, check sizes against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Length of the source in bytes.
    pub fn file_len(&self) -> u64 {
        self.source.len()
    }

    /// Read `len` bytes at `offset`, after checking the range lies inside the file
    /// ([`ErrorKind::Truncated`] if not); `what` names the data in that message.
    pub fn read_bytes(&self, offset: u64, len: u64, what: &str) -> TResult<Vec<u8>> {
        let mut buf = self.buffer_for(offset, len, what)?;
        self.source.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// A zeroed buffer for `len` bytes at `offset`, once they are known to lie inside the file
    /// (else [`ErrorKind::Truncated`], or [`ErrorKind::Invalid`] on overflow).
    fn buffer_for(&self, offset: u64, len: u64, what: &str) -> TResult<Vec<u8>> {
        let end = offset.checked_add(len).ok_or_else(|| ErrorKind::Invalid(format!("{what}: offset overflow")))?;
        if end > self.file_len() {
            return Err(ErrorKind::Truncated { what: what.to_string(), start: offset, end, file_len: self.file_len() });
        }
        Ok(vec![0u8; len as usize])
    }

    /// [`read_bytes`](Self::read_bytes) of bulk data (tile or strip bytes), read with
    /// [`ByteSource::read_data_at`]: a remote source fetches no more than covers it.
    pub fn read_data(&self, offset: u64, len: u64, what: &str) -> TResult<Vec<u8>> {
        let mut buf = self.buffer_for(offset, len, what)?;
        self.source.read_data_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Read one IFD at `offset`; more than [`Limits::ifd_entries`] entries is
    /// [`ErrorKind::Invalid`].
    pub fn read_ifd(&self, offset: u64) -> TResult<Ifd> {
        let (count_size, entry_size, next_size) = self.ifd_field_sizes();
        if offset < 8 {
            return Err(ErrorKind::Invalid(format!("IFD offset {offset} is not inside the file")));
        }
        let count_bytes = self.read_bytes(offset, count_size, &format!("the IFD at offset {offset}"))?;
        let count = if self.bigtiff {
            self.order.u64(count_bytes[..8].try_into().unwrap_or_default())
        } else {
            u64::from(self.order.u16([count_bytes[0], count_bytes[1]]))
        };
        if count == 0 || count > self.limits.ifd_entries {
            return Err(ErrorKind::Invalid(format!("the IFD at offset {offset} claims {count} entries")));
        }
        let high_size = if self.ndpi { 4 * count } else { 0 };
        let body = self.read_bytes(
            offset + count_size,
            count * entry_size + next_size + high_size,
            &format!("the IFD at offset {offset} ({count} entries)"),
        )?;
        let highs = &body[(count * entry_size + next_size) as usize..];
        let mut entries = Vec::with_capacity(count as usize);
        let first_entry_at = offset + count_size;
        for (i, chunk) in body[..(count * entry_size) as usize].chunks_exact(entry_size as usize).enumerate() {
            let tag = self.order.u16([chunk[0], chunk[1]]);
            let field_type = self.order.u16([chunk[2], chunk[3]]);
            let mut raw = [0u8; 8];
            let count = if self.bigtiff {
                raw.copy_from_slice(&chunk[12..20]);
                self.order.u64(chunk[4..12].try_into().unwrap_or_default())
            } else {
                raw[..4].copy_from_slice(&chunk[8..12]);
                u64::from(self.order.u32([chunk[4], chunk[5], chunk[6], chunk[7]]))
            };
            let high = match highs.get(i * 4..i * 4 + 4) {
                Some(h) => self.order.u32([h[0], h[1], h[2], h[3]]),
                None => 0,
            };
            entries.push(Entry { tag, field_type, count, raw, high, at: first_entry_at + i as u64 * entry_size });
        }
        entries.sort_by_key(|e| e.tag);
        let tail = &body[(count * entry_size) as usize..];
        let next = if self.bigtiff || self.ndpi {
            self.order.u64(tail[..8].try_into().unwrap_or_default())
        } else {
            u64::from(self.order.u32([tail[0], tail[1], tail[2], tail[3]]))
        };
        Ok(Ifd { offset, entries, next })
    }

    /// Read the chain of IFDs starting at `start`, refusing loops and runaway chains.
    ///
    /// The IFDs of a file form a graph (next-IFD pointers and SubIFDs) whose nodes may be shared:
    /// tifffile and libtiff list every sub-level in `SubIFDs` *and* chain them through their
    /// next pointers. An IFD already read through another path (in `seen`, shared across chains)
    /// ends this chain: it and what follows it are known. A chain that returns to one of its own
    /// IFDs is a true cycle and an error, as is one that reaches an `ancestor` (the IFD whose
    /// SubIFDs this chain is). Memory is bounded by [`Limits::ifds`].
    pub fn read_chain_from(&self, start: u64, seen: &mut HashSet<u64>, ancestors: &[u64]) -> TResult<Vec<Ifd>> {
        let mut ifds: Vec<Ifd> = Vec::new();
        let mut offset = start;
        while offset != 0 {
            if ancestors.contains(&offset) || ifds.iter().any(|i| i.offset == offset) {
                return Err(ErrorKind::IfdLoop(offset));
            }
            if !seen.insert(offset) {
                break;
            }
            if seen.len() > self.limits.ifds {
                return Err(ErrorKind::Invalid(format!("more than {} IFDs", self.limits.ifds)));
            }
            let ifd = self.read_ifd(offset)?;
            offset = ifd.next;
            ifds.push(ifd);
        }
        Ok(ifds)
    }

    /// [`Self::read_chain_from`] for a chain with no ancestors (the main chain).
    pub fn read_chain(&self, start: u64, seen: &mut HashSet<u64>) -> TResult<Vec<Ifd>> {
        self.read_chain_from(start, seen, &[])
    }

    /// Bytes of the entry count before an IFD's entries, of one entry, and of the next-IFD pointer.
    fn ifd_field_sizes(&self) -> (u64, u64, u64) {
        if self.bigtiff {
            (8, 20, 8)
        } else if self.ndpi {
            (2, 12, 8)
        } else {
            (2, 12, 4)
        }
    }

    /// Size of an offset (and of an inline value field): 4 bytes in classic TIFF, 8 in BigTIFF.
    pub fn offset_size(&self) -> u64 {
        if self.bigtiff {
            8
        } else {
            4
        }
    }

    /// File offset of the header's pointer to the first IFD.
    pub fn first_ifd_pointer_offset(&self) -> u64 {
        self.offset_size()
    }

    /// The bytes an IFD occupies: entry count, entries and next-IFD pointer (and, in NDPI, the
    /// high halves of the entries' value fields).
    pub fn ifd_range(&self, ifd: &Ifd) -> std::ops::Range<u64> {
        let (count_size, entry_size, next_size) = self.ifd_field_sizes();
        let n = ifd.entries.len() as u64;
        let high_size = if self.ndpi { 4 * n } else { 0 };
        ifd.offset..ifd.offset + count_size + n * entry_size + next_size + high_size
    }

    /// File offset of an IFD's pointer to the next IFD.
    pub fn next_pointer_offset(&self, ifd: &Ifd) -> u64 {
        let (count_size, entry_size, _) = self.ifd_field_sizes();
        ifd.offset + count_size + ifd.entries.len() as u64 * entry_size
    }

    /// File offset of an entry's count field.
    pub fn count_field_offset(&self, e: &Entry) -> u64 {
        e.at + 4
    }

    /// File offset of an entry's value field (the value itself when inline, else its offset).
    pub fn value_field_offset(&self, e: &Entry) -> u64 {
        e.at + if self.bigtiff { 12 } else { 8 }
    }

    /// Where an entry's value lies when it is stored outside the entry; `None` when inline.
    pub fn value_range(&self, e: &Entry) -> TResult<Option<std::ops::Range<u64>>> {
        let len = self.value_len(e)?;
        if len <= self.offset_size() {
            return Ok(None);
        }
        let offset = self.value_offset(e);
        let end = offset
            .checked_add(len)
            .ok_or_else(|| ErrorKind::Invalid(format!("the value of tag {}: offset overflow", e.tag)))?;
        Ok(Some(offset..end))
    }

    /// The value field read as an offset.
    fn value_offset(&self, e: &Entry) -> u64 {
        if self.bigtiff {
            self.order.u64(e.raw)
        } else if self.ndpi {
            u64::from(self.order.u32([e.raw[0], e.raw[1], e.raw[2], e.raw[3]])) | (u64::from(e.high) << 32)
        } else {
            u64::from(self.order.u32([e.raw[0], e.raw[1], e.raw[2], e.raw[3]]))
        }
    }

    /// Byte length of an entry's value, checked for overflow and against [`Limits::tag_bytes`].
    pub fn value_len(&self, e: &Entry) -> TResult<u64> {
        let size = types::size(e.field_type)
            .ok_or_else(|| ErrorKind::Invalid(format!("tag {} has unknown field type {}", e.tag, e.field_type)))?;
        let len = e
            .count
            .checked_mul(size)
            .filter(|&l| l <= self.limits.tag_bytes)
            .ok_or_else(|| ErrorKind::Invalid(format!("tag {} claims {} values", e.tag, e.count)))?;
        Ok(len)
    }

    /// The raw bytes of an entry's value, inline or fetched from its offset.
    pub fn entry_bytes(&self, e: &Entry) -> TResult<Vec<u8>> {
        let len = self.value_len(e)?;
        let inline = if self.bigtiff { 8 } else { 4 };
        if len <= inline {
            return Ok(e.raw[..len as usize].to_vec());
        }
        self.read_bytes(self.value_offset(e), len, &format!("the value of tag {}", e.tag))
    }

    /// All values of an integer-typed entry, widened to u64.
    pub fn entry_u64s(&self, e: &Entry) -> TResult<Vec<u64>> {
        let bytes = self.entry_bytes(e)?;
        let o = self.order;
        let values = match e.field_type {
            types::BYTE | types::UNDEFINED => bytes.iter().map(|&b| u64::from(b)).collect(),
            types::SHORT => bytes.chunks_exact(2).map(|c| u64::from(o.u16([c[0], c[1]]))).collect(),
            // NDPI: a single inline LONG (a strip offset or byte count) has its high half too.
            types::LONG | types::IFD if self.ndpi && e.count == 1 => {
                vec![u64::from(o.u32([bytes[0], bytes[1], bytes[2], bytes[3]])) | (u64::from(e.high) << 32)]
            }
            types::LONG | types::IFD => {
                bytes.chunks_exact(4).map(|c| u64::from(o.u32([c[0], c[1], c[2], c[3]]))).collect()
            }
            types::LONG8 | types::IFD8 => {
                bytes.chunks_exact(8).map(|c| o.u64(c.try_into().unwrap_or_default())).collect()
            }
            t => return Err(ErrorKind::Invalid(format!("tag {} has type {t}, expected an unsigned integer", e.tag))),
        };
        Ok(values)
    }

    /// The first value of an integer entry.
    pub fn entry_u64(&self, e: &Entry) -> TResult<u64> {
        if e.count == 0 {
            return Err(ErrorKind::Invalid(format!("tag {} has no value", e.tag)));
        }
        // Not a shortened copy of the entry: a shorter count could wrongly make the value look inline.
        self.entry_u64s(e)?.first().copied().ok_or_else(|| ErrorKind::Invalid(format!("tag {} has no value", e.tag)))
    }

    /// The first value of a numeric entry as f64 (RATIONAL, FLOAT, DOUBLE or integer).
    pub fn entry_f64(&self, e: &Entry) -> TResult<f64> {
        if e.count == 0 {
            return Err(ErrorKind::Invalid(format!("tag {} has no value", e.tag)));
        }
        let b = self.entry_bytes(e)?;
        let o = self.order;
        Ok(match e.field_type {
            types::RATIONAL => {
                let (n, d) = (o.u32([b[0], b[1], b[2], b[3]]), o.u32([b[4], b[5], b[6], b[7]]));
                if d == 0 {
                    return Err(ErrorKind::Invalid(format!("tag {} is a rational with denominator 0", e.tag)));
                }
                f64::from(n) / f64::from(d)
            }
            types::SRATIONAL => {
                let (n, d) = (o.u32([b[0], b[1], b[2], b[3]]) as i32, o.u32([b[4], b[5], b[6], b[7]]) as i32);
                if d == 0 {
                    return Err(ErrorKind::Invalid(format!("tag {} is a rational with denominator 0", e.tag)));
                }
                f64::from(n) / f64::from(d)
            }
            types::FLOAT => f64::from(f32::from_bits(o.u32([b[0], b[1], b[2], b[3]]))),
            types::DOUBLE => f64::from_bits(o.u64(b[..8].try_into().unwrap_or_default())),
            _ => self.entry_u64(e)? as f64,
        })
    }

    /// An ASCII entry as text (up to the first NUL; invalid UTF-8 replaced).
    pub fn entry_string(&self, e: &Entry) -> TResult<String> {
        let bytes = self.entry_bytes(e)?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
    }

    /// Convenience: the first integer value of `tag` in `ifd`, if present.
    pub fn get_u64(&self, ifd: &Ifd, tag: u16) -> TResult<Option<u64>> {
        ifd.get(tag).map(|e| self.entry_u64(e)).transpose()
    }

    /// Convenience: `tag` of `ifd` as text ([`Self::entry_string`]), if present; a tag of a
    /// non-text type (not ASCII, BYTE or UNDEFINED) is [`ErrorKind::Invalid`].
    pub fn get_string(&self, ifd: &Ifd, tag: u16) -> TResult<Option<String>> {
        match ifd.get(tag) {
            Some(e)
                if e.field_type == types::ASCII || e.field_type == types::BYTE || e.field_type == types::UNDEFINED =>
            {
                self.entry_string(e).map(Some)
            }
            Some(e) => Err(ErrorKind::Invalid(format!("tag {} should be text but has type {}", e.tag, e.field_type))),
            None => Ok(None),
        }
    }

    /// Convenience: the first value of `tag` in `ifd` as f64 ([`Self::entry_f64`]), if present.
    pub fn get_f64(&self, ifd: &Ifd, tag: u16) -> TResult<Option<f64>> {
        ifd.get(tag).map(|e| self.entry_f64(e)).transpose()
    }

    /// SubIFD offsets of an IFD (empty when it has none).
    pub fn sub_ifds(&self, ifd: &Ifd) -> TResult<Vec<u64>> {
        match ifd.get(tags::SUB_IFDS) {
            Some(e) => self.entry_u64s(e),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiff::MemorySource;

    fn reader(bytes: Vec<u8>) -> TResult<TiffReader> {
        TiffReader::new(Arc::new(MemorySource(bytes)))
    }

    #[test]
    fn recognises_other_formats() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\0".to_vec();
        let err = reader(png).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("PNG"), "{err}");
        assert!(matches!(reader(Vec::new()), Err(ErrorKind::Empty)));
        assert!(matches!(reader(b"II*".to_vec()), Err(ErrorKind::Truncated { .. })));
    }

    #[test]
    fn detects_ifd_loop() {
        // Classic LE TIFF whose single IFD points back to itself.
        let mut f = b"II*\0\x08\0\0\0".to_vec();
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&256u16.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&16u32.to_le_bytes());
        f.extend_from_slice(&8u32.to_le_bytes());
        let r = reader(f).expect("header parses");
        let mut seen = HashSet::new();
        assert!(matches!(r.read_chain(r.first_ifd, &mut seen), Err(ErrorKind::IfdLoop(8))));
    }

    /// Three IFDs A → B → C (next pointers), each with one dummy tag.
    fn chain_file(c_next: u32) -> Vec<u8> {
        let mut f = b"II*\0\x08\0\0\0".to_vec();
        for (i, next) in [26u32, 44, c_next].into_iter().enumerate() {
            f.extend_from_slice(&1u16.to_le_bytes());
            f.extend_from_slice(&256u16.to_le_bytes());
            f.extend_from_slice(&4u16.to_le_bytes());
            f.extend_from_slice(&1u32.to_le_bytes());
            f.extend_from_slice(&(16 + i as u32).to_le_bytes());
            f.extend_from_slice(&next.to_le_bytes());
        }
        f
    }

    #[test]
    fn shared_ifds_are_read_once_and_true_cycles_refused() {
        let r = reader(chain_file(0)).expect("header parses");
        let mut seen = HashSet::new();
        let b_then_c = r.read_chain_from(26, &mut seen, &[8]).expect("B, C");
        assert_eq!(b_then_c.iter().map(|i| i.offset).collect::<Vec<_>>(), [26, 44]);
        // C again, as a listed SubIFD after the chain reached it: already known, not a loop.
        assert!(r.read_chain_from(44, &mut seen, &[8]).expect("C again").is_empty());
        // A chain that reaches what was read through another path stops there.
        let mut seen: HashSet<u64> = [44].into();
        assert_eq!(r.read_chain(8, &mut seen).expect("A, B").len(), 2);
        // C → A: back to the chain's own start.
        let r = reader(chain_file(8)).expect("header parses");
        assert!(matches!(r.read_chain(8, &mut HashSet::new()), Err(ErrorKind::IfdLoop(8))));
        // A SubIFD chain back to its parent is a cycle too.
        let r = reader(chain_file(0)).expect("header parses");
        assert!(matches!(r.read_chain_from(26, &mut HashSet::new(), &[44]), Err(ErrorKind::IfdLoop(44))));
    }

    /// A sparse source: `len` bytes of zeros but for the pieces given (so a "5 GB" NDPI fits).
    struct Sparse {
        len: u64,
        pieces: Vec<(u64, Vec<u8>)>,
    }

    impl ByteSource for Sparse {
        fn len(&self) -> u64 {
            self.len
        }
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            let end = offset + buf.len() as u64;
            if end > self.len {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.fill(0);
            for (at, bytes) in &self.pieces {
                let (lo, hi) = (offset.max(*at), end.min(at + bytes.len() as u64));
                if lo < hi {
                    buf[(lo - offset) as usize..(hi - offset) as usize]
                        .copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize]);
                }
            }
            Ok(())
        }
    }

    /// An NDPI IFD: entries (tag, type, count, low 32 bits, high 32 bits), an 8-byte next offset,
    /// then the high halves.
    fn ndpi_ifd(entries: &[(u16, u16, u32, u32, u32)], next: u64) -> Vec<u8> {
        let mut f = (entries.len() as u16).to_le_bytes().to_vec();
        for &(tag, ty, count, low, _) in entries {
            f.extend_from_slice(&tag.to_le_bytes());
            f.extend_from_slice(&ty.to_le_bytes());
            f.extend_from_slice(&count.to_le_bytes());
            f.extend_from_slice(&low.to_le_bytes());
        }
        f.extend_from_slice(&next.to_le_bytes());
        for &(.., high) in entries {
            f.extend_from_slice(&high.to_le_bytes());
        }
        f
    }

    #[test]
    fn ndpi_offsets_past_4_gib() {
        const GIB: u64 = 1 << 30;
        let ifd0_at = 5 * GIB + 16;
        let ifd1_at = 4 * GIB + 1000;
        let mut header = b"II*\0".to_vec();
        header.extend_from_slice(&ifd0_at.to_le_bytes());
        let text_at = 4 * GIB + 64; // "NDPI\0" stored past 4 GiB
        let ifd0 = ndpi_ifd(
            &[
                (256, types::LONG, 1, 640, 0),
                (273, types::LONG, 1, 8, 1), // strip offset 4 GiB + 8
                (305, types::ASCII, 5, (text_at & 0xFFFF_FFFF) as u32, (text_at >> 32) as u32),
                (NDPI_FORMAT_TAG, types::LONG, 1, 1, 0),
            ],
            ifd1_at,
        );
        let ifd1 = ndpi_ifd(&[(256, types::LONG, 1, 320, 0), (NDPI_FORMAT_TAG, types::LONG, 1, 1, 0)], 0);
        let src = Sparse {
            len: 6 * GIB,
            pieces: vec![(0, header), (ifd0_at, ifd0), (ifd1_at, ifd1), (text_at, b"NDPI\0".to_vec())],
        };
        let r = TiffReader::new(Arc::new(src)).expect("NDPI header parses");
        assert!(r.ndpi && !r.bigtiff);
        assert_eq!(r.first_ifd, ifd0_at);
        let chain = r.read_chain(r.first_ifd, &mut HashSet::new()).expect("chain");
        assert_eq!(chain.iter().map(|i| i.offset).collect::<Vec<_>>(), [ifd0_at, ifd1_at]);
        assert_eq!(r.get_u64(&chain[0], 273).expect("strip offset"), Some(4 * GIB + 8));
        assert_eq!(r.get_string(&chain[0], 305).expect("text").as_deref(), Some("NDPI"));
        assert_eq!(r.get_u64(&chain[1], 256).expect("width"), Some(320));
        let range = r.ifd_range(&chain[0]);
        assert_eq!(range.end - range.start, 2 + 4 * 12 + 8 + 4 * 4);
        assert_eq!(r.next_pointer_offset(&chain[0]), ifd0_at + 2 + 4 * 12);
    }

    #[test]
    fn classic_tiff_is_not_taken_for_ndpi() {
        // IFD 0 at 8 without tag 65420: classic, 4-byte next pointer.
        let r = reader(chain_file(0)).expect("header parses");
        assert!(!r.ndpi);
        assert_eq!(r.read_chain(r.first_ifd, &mut HashSet::new()).expect("chain").len(), 3);
        // An NDPI header whose IFD is cut short is read as classic TIFF and reports the problem.
        let mut f = b"II*\0\x0c\0\0\0\0\0\0\0".to_vec();
        f.extend_from_slice(&ndpi_ifd(&[(NDPI_FORMAT_TAG, types::LONG, 1, 1, 0)], 0)[..10]);
        let r = reader(f).expect("header parses");
        assert!(!r.ndpi);
        assert!(r.read_ifd(r.first_ifd).is_err());
    }

    #[test]
    fn refuses_huge_counts_without_allocating() {
        let mut f = b"II*\0\x08\0\0\0".to_vec();
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&324u16.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&100u32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        let r = reader(f).expect("header parses");
        let ifd = r.read_ifd(8).expect("ifd parses");
        let e = ifd.get(324).expect("entry");
        assert!(r.entry_u64s(e).is_err());
    }
}
