//! In-place edits of a TIFF file, for making a scrubbed copy without rewriting gigabytes: relink
//! the IFD chain, overwrite byte ranges with zeros, replace a text value. The caller parses the
//! file with [`TiffReader`] first and passes what it read; the editor only writes.

use std::io::{self, Seek, SeekFrom, Write};
use std::ops::Range;

use super::reader::{Entry, Ifd, TiffReader};
use super::tags::{self, types};
use super::ByteOrder;
use crate::error::ErrorKind;

/// Writes into an open TIFF file (or any `Write + Seek`) at positions the reader found.
pub struct TiffEditor<F: Write + Seek> {
    file: F,
    order: ByteOrder,
    bigtiff: bool,
    /// Current end of the file: values that no longer fit where they were are appended here.
    len: u64,
}

/// Zeros written per call: large enough to be fast, small enough not to matter in memory.
const ZERO_CHUNK: u64 = 1 << 20;

impl<F: Write + Seek> TiffEditor<F> {
    /// An editor of `file`, which `reader` parsed (its byte order, BigTIFF-ness and length).
    pub fn new(file: F, reader: &TiffReader) -> Self {
        TiffEditor { file, order: reader.order, bigtiff: reader.bigtiff, len: reader.file_len() }
    }

    /// The file, edits written (not flushed).
    pub fn into_inner(self) -> F {
        self.file
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(bytes)?;
        self.len = self.len.max(offset + bytes.len() as u64);
        Ok(())
    }

    /// An offset or count as the file stores it (4 bytes classic, 8 BigTIFF).
    fn offset_bytes(&self, value: u64) -> io::Result<Vec<u8>> {
        if self.bigtiff {
            Ok(self.order.put_u64(value).to_vec())
        } else {
            let value = u32::try_from(value)
                .map_err(|_| io::Error::other(format!("offset {value} does not fit a classic TIFF (4 GiB)")))?;
            Ok(self.order.put_u32(value).to_vec())
        }
    }

    /// Overwrite `range` with zeros.
    pub fn zero(&mut self, range: Range<u64>) -> io::Result<()> {
        if range.end > self.len {
            return Err(io::Error::other(format!(
                "bytes {}..{} lie beyond the end of the file",
                range.start, range.end
            )));
        }
        let zeros = vec![0u8; ZERO_CHUNK.min(range.end.saturating_sub(range.start)) as usize];
        let mut at = range.start;
        while at < range.end {
            let n = (range.end - at).min(ZERO_CHUNK);
            self.write_at(at, &zeros[..n as usize])?;
            at += n;
        }
        Ok(())
    }

    /// Point the header at a different first IFD.
    pub fn set_first_ifd(&mut self, reader: &TiffReader, offset: u64) -> io::Result<()> {
        let bytes = self.offset_bytes(offset)?;
        self.write_at(reader.first_ifd_pointer_offset(), &bytes)
    }

    /// Point `ifd` at a different next IFD (0: it becomes the last).
    pub fn set_next_ifd(&mut self, reader: &TiffReader, ifd: &Ifd, next: u64) -> io::Result<()> {
        let bytes = self.offset_bytes(next)?;
        self.write_at(reader.next_pointer_offset(ifd), &bytes)
    }

    /// Replace the value of a one-byte-per-value entry (ASCII, BYTE, UNDEFINED) with `text` and a
    /// NUL. The new value goes inline when it fits the entry, over the old value when it is not
    /// longer (the rest zeroed), else at the end of the file (the old value zeroed). No byte of
    /// the old value survives beyond what the new one writes over it.
    pub fn replace_text(&mut self, reader: &TiffReader, entry: &Entry, text: &str) -> io::Result<()> {
        if !matches!(entry.field_type, types::ASCII | types::BYTE | types::UNDEFINED) {
            return Err(io::Error::other(format!("tag {} is not text (type {})", entry.tag, entry.field_type)));
        }
        let mut value = text.as_bytes().to_vec();
        value.push(0);
        let new_len = value.len() as u64;
        let old = reader.value_range(entry).map_err(io::Error::other)?;
        let inline_size = reader.offset_size();
        let value_field = if new_len <= inline_size {
            if let Some(old) = old {
                self.zero(old)?;
            }
            value.resize(inline_size as usize, 0);
            value
        } else {
            let at = match old {
                Some(old) if new_len <= old.end - old.start => {
                    self.write_at(old.start, &value)?;
                    self.zero(old.start + new_len..old.end)?;
                    old.start
                }
                _ => {
                    if let Some(old) = old {
                        self.zero(old)?;
                    }
                    // TIFF values start on a word boundary.
                    let end = self.len;
                    let at = end + end % 2;
                    self.write_at(end, &vec![0u8; (at - end) as usize])?;
                    self.write_at(at, &value)?;
                    at
                }
            };
            self.offset_bytes(at)?
        };
        let count = self.offset_bytes(new_len)?;
        self.write_at(reader.count_field_offset(entry), &count)?;
        self.write_at(reader.value_field_offset(entry), &value_field)
    }
}

/// Every byte range an IFD owns: the IFD itself, its values stored outside it, and its pixel
/// data (strips and tiles). Entries of unknown field types cannot be sized and are left out.
pub fn footprint(reader: &TiffReader, ifd: &Ifd) -> Result<Vec<Range<u64>>, ErrorKind> {
    let file_len = reader.file_len();
    let mut ranges = vec![reader.ifd_range(ifd)];
    for entry in &ifd.entries {
        if types::size(entry.field_type).is_none() {
            continue;
        }
        ranges.extend(reader.value_range(entry)?);
    }
    for (offsets_tag, counts_tag) in
        [(tags::STRIP_OFFSETS, tags::STRIP_BYTE_COUNTS), (tags::TILE_OFFSETS, tags::TILE_BYTE_COUNTS)]
    {
        let (Some(offsets), Some(counts)) = (ifd.get(offsets_tag), ifd.get(counts_tag)) else { continue };
        let (offsets, counts) = (reader.entry_u64s(offsets)?, reader.entry_u64s(counts)?);
        // A mismatch would leave some pixel data unaccounted for (and so not zeroed).
        if offsets.len() != counts.len() {
            return Err(ErrorKind::Invalid(format!(
                "IFD at {}: {} data offsets but {} byte counts",
                ifd.offset,
                offsets.len(),
                counts.len()
            )));
        }
        for (&offset, &count) in offsets.iter().zip(&counts) {
            if offset == 0 || count == 0 {
                continue; // sparse: never written
            }
            ranges.push(offset..offset.saturating_add(count));
        }
    }
    for range in &ranges {
        if range.end > file_len {
            return Err(ErrorKind::Truncated {
                what: format!("data of the IFD at offset {}", ifd.offset),
                start: range.start,
                end: range.end,
                file_len,
            });
        }
    }
    Ok(ranges)
}

/// Sort and merge overlapping or touching ranges.
fn merged(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// The parts of `remove` not covered by `keep`, merged and sorted.
pub fn subtract_ranges(remove: Vec<Range<u64>>, keep: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let keep = merged(keep);
    let mut out = Vec::new();
    for r in merged(remove) {
        let mut start = r.start;
        // `keep` is sorted: skip what ends before this range, cut around what overlaps it.
        let first = keep.partition_point(|k| k.end <= start);
        for k in &keep[first..] {
            if k.start >= r.end {
                break;
            }
            if k.start > start {
                out.push(start..k.start);
            }
            start = start.max(k.end);
        }
        if start < r.end {
            out.push(start..r.end);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Cursor;
    use std::sync::Arc;

    use super::*;
    use crate::tiff::writer::{TiffWriter, Value};
    use crate::tiff::MemorySource;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of ranges, one long
    fn subtraction_cuts_around_kept_ranges() {
        assert_eq!(subtract_ranges(vec![0..10], vec![2..4, 6..7]), vec![0..2, 4..6, 7..10]);
        assert_eq!(subtract_ranges(vec![5..8, 0..3], vec![0..1, 7..20]), vec![1..3, 5..7]);
        assert_eq!(subtract_ranges(vec![0..10], vec![0..10]), Vec::<Range<u64>>::new());
        assert_eq!(subtract_ranges(vec![0..4, 3..6], vec![]), vec![0..6]);
    }

    /// Three chained IFDs, each with a description long enough to be stored outside the entry.
    fn three_ifds(order: ByteOrder, bigtiff: bool) -> Vec<u8> {
        let mut w = TiffWriter::new(Cursor::new(Vec::new()), order, bigtiff).expect("writer");
        for name in ["first", "second", "third"] {
            let strip = w.write_block(name.repeat(10).as_bytes()).expect("block");
            w.write_chained_ifd(vec![
                (tags::IMAGE_WIDTH, Value::Long(vec![1])),
                (tags::IMAGE_DESCRIPTION, Value::Ascii(format!("the {name} image|User = someone"))),
                (tags::STRIP_OFFSETS, Value::Offsets(vec![strip])),
                (tags::STRIP_BYTE_COUNTS, Value::Offsets(vec![name.len() as u64 * 10])),
            ])
            .expect("ifd");
        }
        w.finish().expect("finish").into_inner()
    }

    fn parse(bytes: Vec<u8>) -> (TiffReader, Vec<Ifd>) {
        let reader = TiffReader::new(Arc::new(MemorySource(bytes))).expect("header");
        let chain = reader.read_chain(reader.first_ifd, &mut HashSet::new()).expect("chain");
        (reader, chain)
    }

    #[test]
    fn unlink_zero_and_replace_text_in_every_flavour() {
        for (order, bigtiff) in [(ByteOrder::Little, false), (ByteOrder::Big, false), (ByteOrder::Big, true)] {
            let original = three_ifds(order, bigtiff);
            let (reader, chain) = parse(original.clone());
            let mut editor = TiffEditor::new(Cursor::new(original), &reader);
            // Drop the first and the middle IFD: the header then points at the third.
            for ifd in &chain[..2] {
                for range in footprint(&reader, ifd).expect("footprint") {
                    editor.zero(range).expect("zero");
                }
            }
            editor.set_first_ifd(&reader, chain[2].offset).expect("relink");
            let description = chain[2].get(tags::IMAGE_DESCRIPTION).expect("description");
            // Longer than the old value: appended at the end.
            editor.replace_text(&reader, description, "the third image|User = |x".repeat(2).as_str()).expect("text");
            let edited = editor.into_inner().into_inner();
            let (reader2, chain2) = parse(edited.clone());
            assert_eq!(chain2.len(), 1, "{order:?} bigtiff={bigtiff}");
            let text = reader2.get_string(&chain2[0], tags::IMAGE_DESCRIPTION).expect("read").expect("present");
            assert_eq!(text, "the third image|User = |x".repeat(2));
            for gone in ["first", "second", "someone"] {
                assert!(!edited.windows(gone.len()).any(|w| w == gone.as_bytes()), "{gone:?} left in the file");
            }
            // Shorter: written over the old value, the rest zeroed.
            let (reader3, chain3) = parse(edited);
            let description = chain3[0].get(tags::IMAGE_DESCRIPTION).expect("description");
            let old_len = reader3.value_len(description).expect("len");
            let mut editor = TiffEditor::new(Cursor::new(reader_bytes(&reader3)), &reader3);
            editor.replace_text(&reader3, description, "short text").expect("text");
            let edited = editor.into_inner().into_inner();
            assert_eq!(edited.len() as u64, reader3.file_len(), "nothing appended");
            let (reader4, chain4) = parse(edited.clone());
            let entry = chain4[0].get(tags::IMAGE_DESCRIPTION).expect("description");
            assert_eq!(entry.count, 11);
            assert_eq!(
                reader4.get_string(&chain4[0], tags::IMAGE_DESCRIPTION).expect("read").as_deref(),
                Some("short text")
            );
            let at = reader4.value_range(entry).expect("range").expect("out of line").start;
            assert!(edited[(at + 11) as usize..(at + old_len) as usize].iter().all(|&b| b == 0), "tail zeroed");
            // Inline: fits the entry's value field.
            let mut editor = TiffEditor::new(Cursor::new(edited.clone()), &reader4);
            editor.replace_text(&reader4, entry, "ok").expect("text");
            let edited = editor.into_inner().into_inner();
            let (reader5, chain5) = parse(edited.clone());
            assert_eq!(reader5.get_string(&chain5[0], tags::IMAGE_DESCRIPTION).expect("read").as_deref(), Some("ok"));
            assert!(edited[at as usize..(at + old_len) as usize].iter().all(|&b| b == 0), "old value zeroed");
        }
    }

    fn reader_bytes(reader: &TiffReader) -> Vec<u8> {
        reader.read_bytes(0, reader.file_len(), "the file").expect("bytes")
    }

    #[test]
    fn footprint_refuses_data_beyond_the_end() {
        let mut bytes = three_ifds(ByteOrder::Little, false);
        let (reader, chain) = parse(bytes.clone());
        // Point the first strip past the end of the file.
        let entry = chain[0].get(tags::STRIP_OFFSETS).expect("strip offsets");
        let at = reader.value_field_offset(entry) as usize;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let (reader, chain) = parse(bytes);
        let err = footprint(&reader, &chain[0]).expect_err("beyond the end");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
