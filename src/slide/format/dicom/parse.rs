//! The byte structure of a DICOM file that wsiview reads itself (PS3.10 §7, PS3.5 §7.1 and §A.4):
//! the file meta group, a walk over element headers to find where PixelData starts (without
//! reading any value it does not need), and each instance's frame table, so that a frame is one
//! positional read through the [`ByteSource`] and an instance is never loaded whole.

use crate::error::ErrorKind;
use crate::limits::Limits;
use crate::tiff::ByteSource;

pub(super) const ITEM: u32 = 0xFFFE_E000;
const ITEM_DELIMITER: u32 = 0xFFFE_E00D;
const SEQUENCE_DELIMITER: u32 = 0xFFFE_E0DD;
pub(super) const PIXEL_DATA: u32 = 0x7FE0_0010;
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Bytes read at a time while walking headers.
const WINDOW: u64 = 64 << 10;

/// The implicit VR little endian transfer syntax (every other supported one is explicit VR).
pub(super) const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";

fn tag_text(tag: u32) -> String {
    format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF)
}

/// One element header.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header {
    pub tag: u32,
    pub vr: Option<[u8; 2]>,
    pub len: u32,
    /// Where the header starts, and where its value starts.
    pub at: u64,
    pub value_at: u64,
}

impl Header {
    pub fn undefined_length(&self) -> bool {
        self.len == UNDEFINED
    }
}

/// A forward reader over a byte source, reading a window at a time, that never goes past
/// `limit` (the file's length, or the header budget).
struct Cursor<'a> {
    src: &'a dyn ByteSource,
    pos: u64,
    limit: u64,
    buf: Vec<u8>,
    buf_start: u64,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a dyn ByteSource, pos: u64, limit: u64, what: &'static str) -> Self {
        Cursor { src, pos, limit: limit.min(src.len()), buf: Vec::new(), buf_start: 0, what }
    }

    /// `n` bytes at the current position (not consumed).
    fn peek(&mut self, n: u64) -> Result<&[u8], ErrorKind> {
        let end = self.pos.checked_add(n).ok_or_else(|| ErrorKind::InvalidDicom("offset overflow".into()))?;
        if end > self.limit {
            return Err(self.beyond(end));
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos < self.buf_start || end > buf_end {
            let len = (self.limit - self.pos).min(WINDOW.max(n));
            self.buf.resize(len as usize, 0);
            self.src.read_exact_at(self.pos, &mut self.buf).map_err(ErrorKind::Io)?;
            self.buf_start = self.pos;
        }
        let at = (self.pos - self.buf_start) as usize;
        Ok(&self.buf[at..at + n as usize])
    }

    fn beyond(&self, end: u64) -> ErrorKind {
        if end > self.src.len() {
            ErrorKind::Truncated { what: self.what.to_string(), start: self.pos, end, file_len: self.src.len() }
        } else {
            ErrorKind::TooLarge(format!("{} is longer than {} bytes", self.what, self.limit))
        }
    }

    fn skip(&mut self, n: u64) -> Result<(), ErrorKind> {
        let end = self.pos.checked_add(n).ok_or_else(|| ErrorKind::InvalidDicom("offset overflow".into()))?;
        if end > self.limit {
            return Err(self.beyond(end));
        }
        self.pos = end;
        Ok(())
    }

    fn at_end(&self) -> bool {
        self.pos >= self.limit
    }

    /// The element header at the current position, consumed.
    fn header(&mut self, explicit: bool) -> Result<Header, ErrorKind> {
        let at = self.pos;
        let b = self.peek(8)?;
        let tag = (u32::from(u16::from_le_bytes([b[0], b[1]])) << 16) | u32::from(u16::from_le_bytes([b[2], b[3]]));
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if tag >> 16 == 0xFFFE || !explicit {
            let len = u32_at(b, 4);
            self.pos += 8;
            return Ok(Header { tag, vr: None, len, at, value_at: at + 8 });
        }
        let vr = [b[4], b[5]];
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return Err(ErrorKind::InvalidDicom(format!(
                "element {} at byte {at} has no value representation (bytes {:02X} {:02X})",
                tag_text(tag),
                vr[0],
                vr[1]
            )));
        }
        if matches!(
            &vr,
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV"
        ) {
            let b = self.peek(12)?;
            let len = u32_at(b, 8);
            self.pos += 12;
            Ok(Header { tag, vr: Some(vr), len, at, value_at: at + 12 })
        } else {
            let len = u32::from(u16::from_le_bytes([b[6], b[7]]));
            self.pos += 8;
            Ok(Header { tag, vr: Some(vr), len, at, value_at: at + 8 })
        }
    }

    /// Skip the value of the element whose header was just read: its bytes, or for an undefined
    /// length, the items of its sequence (or encapsulated pixel data) up to the delimiter.
    /// Sequences nested `max_depth` deep are refused ([`Limits::dicom_sequence_depth`]).
    fn skip_value(&mut self, h: &Header, explicit: bool, depth: u32, max_depth: u32) -> Result<(), ErrorKind> {
        if !h.undefined_length() {
            return self.skip(u64::from(h.len));
        }
        if depth >= max_depth {
            return Err(ErrorKind::InvalidDicom(format!(
                "sequences nested more than {max_depth} deep at byte {}",
                h.at
            )));
        }
        // An undefined-length UN holds implicit VR little endian (PS3.5 §6.2.2).
        let nested_explicit = explicit && h.vr != Some(*b"UN");
        loop {
            let item = self.header(nested_explicit)?;
            match item.tag {
                SEQUENCE_DELIMITER => return Ok(()),
                ITEM if item.undefined_length() => loop {
                    let e = self.header(nested_explicit)?;
                    if e.tag == ITEM_DELIMITER {
                        break;
                    }
                    self.skip_value(&e, nested_explicit, depth + 1, max_depth)?;
                },
                ITEM => self.skip(u64::from(item.len))?,
                other => {
                    return Err(ErrorKind::InvalidDicom(format!(
                        "expected an item of {} at byte {}, found {}",
                        tag_text(h.tag),
                        item.at,
                        tag_text(other)
                    )))
                }
            }
        }
    }
}

/// What the file meta group says.
pub(super) struct Meta {
    pub transfer_syntax: String,
    /// Where the data set starts.
    pub dataset_at: u64,
}

/// Check the preamble's "DICM" and read the file meta group (always explicit VR little endian),
/// within [`Limits::dicom_meta_bytes`].
pub(super) fn read_meta(src: &dyn ByteSource, limits: &Limits) -> Result<Meta, ErrorKind> {
    let mut magic = [0u8; 4];
    if src.len() < 132 {
        return Err(ErrorKind::InvalidDicom(format!(
            "{} bytes is too short for a DICOM file (preamble and \"DICM\" need 132)",
            src.len()
        )));
    }
    src.read_exact_at(128, &mut magic).map_err(ErrorKind::Io)?;
    if &magic != b"DICM" {
        return Err(ErrorKind::InvalidDicom("no \"DICM\" at byte 128 (not a DICOM file)".into()));
    }
    let mut c = Cursor::new(src, 132, 132 + limits.dicom_meta_bytes, "the file meta group");
    let mut transfer_syntax = None;
    while !c.at_end() {
        let start = c.pos;
        if u16::from_le_bytes(<[u8; 2]>::try_from(c.peek(2)?).unwrap_or_default()) != 0x0002 {
            break;
        }
        let h = c.header(true)?;
        if h.undefined_length() {
            return Err(ErrorKind::InvalidDicom(format!("meta element {} has an undefined length", tag_text(h.tag))));
        }
        if h.tag == 0x0002_0010 {
            let value = c.peek(u64::from(h.len).min(256))?;
            let text = String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).trim().to_string();
            transfer_syntax = Some(text);
        }
        c.skip(u64::from(h.len))?;
        debug_assert!(c.pos > start);
    }
    let transfer_syntax = transfer_syntax
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ErrorKind::InvalidDicom("the file meta group has no TransferSyntaxUID (0002,0010)".into()))?;
    Ok(Meta { transfer_syntax, dataset_at: c.pos })
}

/// Walk the top-level elements from `from` to the first whose tag is `stop` or later: its
/// header, or `None` when the data set ends first. Values are skipped, not read; the walk stays
/// within [`Limits::dicom_header_bytes`].
pub(super) fn walk_to(
    src: &dyn ByteSource,
    from: u64,
    explicit: bool,
    stop: u32,
    limits: &Limits,
) -> Result<Option<Header>, ErrorKind> {
    let mut c = Cursor::new(src, from, limits.dicom_header_bytes, "the data set before PixelData");
    while !c.at_end() {
        let h = c.header(explicit)?;
        if h.tag >= stop {
            return Ok(Some(h));
        }
        c.skip_value(&h, explicit, 0, limits.dicom_sequence_depth)?;
    }
    if c.limit < src.len() {
        return Err(c.beyond(c.limit + 1));
    }
    Ok(None)
}

/// Where one frame's bytes are: for encapsulated pixel data the item holding it (`span`: the
/// bytes from `at` to read at once when known, header included; 0 when not), for native pixel
/// data the bytes themselves.
#[derive(Clone, Copy, Debug)]
pub(super) struct FrameAt {
    pub at: u64,
    pub span: u64,
}

/// An instance's frames.
#[derive(Debug)]
pub(super) enum FrameTable {
    /// Uncompressed: frame `i` is `frame_bytes` at `start + i * frame_bytes`.
    Native { start: u64, frame_bytes: u64, count: u64 },
    /// Encapsulated: one fragment (item) per frame. Fewer entries than frames when the file
    /// ended early (walked without an offset table).
    Encapsulated(Vec<FrameAt>),
}

impl FrameTable {
    /// Frames listed.
    pub fn len(&self) -> u64 {
        match self {
            FrameTable::Native { count, .. } => *count,
            FrameTable::Encapsulated(v) => v.len() as u64,
        }
    }
}

/// The frame table of native (uncompressed) pixel data of `len` bytes at `value_at`.
pub(super) fn native_frames(value_at: u64, len: u32, frames: u64, frame_bytes: u64) -> Result<FrameTable, ErrorKind> {
    let needed = frames.saturating_mul(frame_bytes);
    if len != UNDEFINED && u64::from(len) < needed {
        return Err(ErrorKind::InvalidDicom(format!(
            "PixelData holds {len} bytes but {frames} frames of {frame_bytes} bytes need {needed}"
        )));
    }
    Ok(FrameTable::Native { start: value_at, frame_bytes, count: frames })
}

/// The frame table of encapsulated pixel data whose value starts at `value_at` (the Basic Offset
/// Table item): from the Extended Offset Table when given, else the Basic Offset Table, else by
/// walking the item headers (at most `frames` + 1 of them).
pub(super) fn encapsulated_frames(
    src: &dyn ByteSource,
    value_at: u64,
    frames: u64,
    extended: Option<(Vec<u64>, Vec<u64>)>,
) -> Result<FrameTable, ErrorKind> {
    let mut c = Cursor::new(src, value_at, u64::MAX, "the basic offset table");
    let bot = c.header(false)?;
    if bot.tag != ITEM || bot.undefined_length() {
        return Err(ErrorKind::InvalidDicom(format!(
            "encapsulated PixelData does not start with an offset table item (found {} at byte {})",
            tag_text(bot.tag),
            bot.at
        )));
    }
    let first = bot.value_at + u64::from(bot.len);
    if let Some((offsets, lengths)) = extended {
        if offsets.len() as u64 != frames || lengths.len() as u64 != frames {
            return Err(ErrorKind::InvalidDicom(format!(
                "the extended offset table has {} offsets and {} lengths for {frames} frames",
                offsets.len(),
                lengths.len()
            )));
        }
        let table = offsets
            .iter()
            .zip(&lengths)
            .map(|(&o, &l)| FrameAt { at: first.saturating_add(o), span: l.saturating_add(8) })
            .collect();
        return Ok(FrameTable::Encapsulated(table));
    }
    if bot.len > 0 {
        if bot.len % 4 != 0 || u64::from(bot.len / 4) != frames {
            return Err(ErrorKind::InvalidDicom(format!(
                "the basic offset table is {} bytes; {frames} frames need {}",
                bot.len,
                frames * 4
            )));
        }
        let raw = c.peek(u64::from(bot.len))?.to_vec();
        let starts: Vec<u64> =
            raw.chunks_exact(4).map(|b| first + u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect();
        // The next start above each one bounds the frame's item: one read fetches header and data.
        let mut sorted = starts.clone();
        sorted.sort_unstable();
        let table = starts
            .iter()
            .map(|&at| {
                let next = sorted.partition_point(|&s| s <= at);
                let span = sorted.get(next).map_or(0, |&n| n - at);
                FrameAt { at, span }
            })
            .collect();
        return Ok(FrameTable::Encapsulated(table));
    }
    // No offset table: walk the fragments, one per frame.
    let mut c = Cursor::new(src, first, u64::MAX, "encapsulated PixelData");
    let mut table = Vec::new();
    while !c.at_end() {
        let h = match c.header(false) {
            Ok(h) => h,
            // A cut file: the frames found so far; the rest fail when read.
            Err(ErrorKind::Truncated { .. }) => break,
            Err(e) => return Err(e),
        };
        match h.tag {
            SEQUENCE_DELIMITER => break,
            ITEM if !h.undefined_length() => {
                if table.len() as u64 >= frames {
                    return Err(ErrorKind::UnsupportedDicom(format!(
                        "more fragments than its {frames} frames and no offset table (frames split over fragments)"
                    )));
                }
                table.push(FrameAt { at: h.at, span: u64::from(h.len) + 8 });
                if c.skip(u64::from(h.len)).is_err() {
                    break;
                }
            }
            other => {
                return Err(ErrorKind::InvalidDicom(format!(
                    "expected a PixelData fragment at byte {}, found {}",
                    h.at,
                    tag_text(other)
                )))
            }
        }
    }
    Ok(FrameTable::Encapsulated(table))
}

/// Read frame `index` of `table`: the compressed data of its fragment, or its native bytes.
/// A fragment over `max_bytes` ([`Limits::tile_bytes`]) is refused. Errors are short reasons (the
/// caller names the file, level and tile).
pub(super) fn read_frame(
    src: &dyn ByteSource,
    table: &FrameTable,
    index: u64,
    max_bytes: u64,
) -> Result<Vec<u8>, String> {
    let file_len = src.len();
    let read = |at: u64, len: u64| -> Result<Vec<u8>, String> {
        let end = at.checked_add(len).filter(|&e| e <= file_len).ok_or_else(|| {
            format!(
                "truncated: frame {} needs bytes {at}..{} but the file has only {file_len} bytes",
                index + 1,
                at.saturating_add(len)
            )
        })?;
        let mut buf = vec![0u8; (end - at) as usize];
        src.read_data_at(at, &mut buf).map_err(|e| format!("cannot read frame {}: {e}", index + 1))?;
        Ok(buf)
    };
    match table {
        FrameTable::Native { start, frame_bytes, count } => {
            if index >= *count {
                return Err(format!("frame {} is not in the instance ({count} frames)", index + 1));
            }
            read(start.saturating_add(index.saturating_mul(*frame_bytes)), *frame_bytes)
        }
        FrameTable::Encapsulated(frames) => {
            let f = frames.get(index as usize).ok_or_else(|| {
                format!("frame {} is missing: the file ends after {} frames", index + 1, frames.len())
            })?;
            if f.at.saturating_add(8) > file_len {
                return Err(format!(
                    "frame {} is at byte {} but the file has only {file_len} bytes (truncated, or a bad offset table)",
                    index + 1,
                    f.at
                ));
            }
            // One read of header and data when the span is known and sane, else the header first.
            let whole = f.span >= 8 && f.span <= max_bytes + 8 && f.at + f.span <= file_len;
            let mut buf = read(f.at, if whole { f.span } else { 8 })?;
            let tag = (u32::from(u16::from_le_bytes([buf[0], buf[1]])) << 16)
                | u32::from(u16::from_le_bytes([buf[2], buf[3]]));
            let len = u64::from(u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]));
            if tag != ITEM {
                return Err(format!("no fragment item at byte {} (found {})", f.at, tag_text(tag)));
            }
            if len > max_bytes {
                return Err(format!("a fragment of {len} bytes (the limit is {max_bytes})"));
            }
            if 8 + len <= buf.len() as u64 {
                buf.truncate(8 + len as usize);
                buf.drain(..8);
                Ok(buf)
            } else {
                read(f.at + 8, len)
            }
        }
    }
}
