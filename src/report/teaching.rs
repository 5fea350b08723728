//! Teaching copies: a case report and its slide made fit to share for teaching.
//!
//! The report's case id and reviewer names become stable pseudonyms (`CASE-3fa2c19b0e`,
//! `REVIEWER-…`): a keyed SHA-256 of the normalised value. The same value and key always give the
//! same pseudonym, so copies exported at different sites that share a key file still match; without
//! the key, a pseudonym cannot be reversed by hashing guessed names. Free text is kept as written
//! (it cannot be scrubbed reliably); the caller is told to check it.
//!
//! The slide copy is the original's bytes with, patched in place: the label and macro images
//! unlinked from the IFD chain and every byte they owned (IFD, tag values, strips) zeroed; and the
//! Aperio description's `Filename`, `User`, `Date`, `Time` (and `Barcode`) values blanked in every IFD.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::error::{InvalidReport, ReportError};
use super::hash::{sha256_file, to_hex};
use super::schema::{now_rfc3339, safe_file_stem, Report, REPORT_SUFFIX};
use crate::annotations::store::{existing_annotations, sidecar_path};
use crate::error::{ErrorKind, SlideError};
use crate::files::{app_data_dir, write_atomic};
use crate::slide::{associated_ifds, vendor::blank_aperio_values, Slide};
use crate::tiff::edit::{footprint, subtract_ranges, TiffEditor};
use crate::tiff::tags::{self, types};
use crate::tiff::{FileSource, Ifd, TiffReader};

/// Aperio description values blanked in the copy, because they identify: the original file name,
/// who scanned and when, and the label's barcode (often the specimen or patient number).
pub const BLANKED_DESCRIPTION_KEYS: [&str; 5] = ["Filename", "User", "Date", "Time", "Barcode"];
/// Associated images removed from the copy: the label carries patient details and a barcode, and
/// the macro photographs the label.
pub const REMOVED_ASSOCIATED: [&str; 2] = ["label", "macro"];
/// The default key's file name in the app data folder.
pub const KEY_FILE_NAME: &str = "teaching.key";
pub use super::schema::TEACHING_FIELD;
/// Free-text fields kept as written (the user must check them).
const FREE_TEXT_FIELDS: [&str; 6] =
    ["specimen", "clinical_details", "macroscopy", "microscopy", "diagnosis.text", "comments"];
/// Read size for copying and hashing.
const CHUNK: usize = 1 << 20;

/// Why a teaching copy could not be made. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum TeachingError {
    /// The report could not be read.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The slide could not be opened or read.
    #[error("{}: cannot read: {error}", path.display())]
    SlideRead {
        /// The slide.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// The slide is not a TIFF that can be scrubbed (the error names the slide).
    #[error(transparent)]
    Slide(#[from] SlideError),
    /// The label or macro could not be removed from the copy.
    #[error("{}: {problem}", path.display())]
    Scrub {
        /// The slide the copy was made from.
        path: PathBuf,
        /// What stopped the scrub.
        problem: ScrubError,
    },
    /// The pseudonym key file could not be read, created or written.
    #[error("{}: {action}: {error}", path.display())]
    KeyIo {
        /// The key file.
        path: PathBuf,
        /// "cannot read", "cannot create its folder", "no random numbers from the system",
        /// "cannot write".
        action: &'static str,
        /// What the system said.
        error: io::Error,
    },
    /// The key file does not hold a key.
    #[error("{}: not a teaching key: expected 64 hex digits (32 bytes), as wsiview writes them", path.display())]
    NotAKey {
        /// The key file.
        path: PathBuf,
    },
    /// An output file or folder could not be made.
    #[error("{}: {action}: {error}", path.display())]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// What was being done ("cannot create the folder", "copying SLIDE", ...).
        action: String,
        /// What the system said.
        error: io::Error,
    },
    /// An output would replace one of the originals.
    #[error("{}: is one of the originals; choose another output folder", path.display())]
    WouldReplaceOriginal {
        /// The output path.
        path: PathBuf,
    },
    /// An output exists and `force` was not given.
    #[error("{}: already exists (use --force to replace it)", path.display())]
    Exists {
        /// The output path.
        path: PathBuf,
    },
    /// The scrubbed copy did not open as a slide (nothing was published under the final name).
    #[error("{}: the scrubbed copy does not open: {kind}", path.display())]
    CopyUnreadable {
        /// The copy's final path.
        path: PathBuf,
        /// Why it does not open.
        kind: ErrorKind,
    },
    /// The scrubbed copy still lists a label or macro.
    #[error("{}: the scrubbed copy still has a {name} image", path.display())]
    NotScrubbed {
        /// The copy's final path.
        path: PathBuf,
        /// The associated image left.
        name: String,
    },
    /// The pseudonymised report would not be valid (a bug: nothing is written).
    #[error("{}: the teaching report would be invalid: {problem}", path.display())]
    InvalidTeachingReport {
        /// The teaching report's path.
        path: PathBuf,
        /// What is wrong with it.
        problem: InvalidReport,
    },
    /// The report's slide fingerprint is not this slide's.
    #[error(
        "{}: refers to another slide than {} (report sha256 {report_sha256}, slide sha256 {slide_sha256}); check with `wsiview verify`",
        report.display(),
        slide.display()
    )]
    OtherSlide {
        /// The report.
        report: PathBuf,
        /// The slide given.
        slide: PathBuf,
        /// `slide.sha256` in the report.
        report_sha256: String,
        /// The slide's SHA-256.
        slide_sha256: String,
    },
}

/// Why a slide file could not be scrubbed ([`scrub_slide_file`]); without the file name.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// The file could not be opened or read.
    #[error("cannot read: {0}")]
    Read(io::Error),
    /// The TIFF structure is unreadable, or the format's label cannot be removed.
    #[error("{0}")]
    Tiff(ErrorKind),
    /// A label or macro with SubIFDs (not removable without rewriting the file).
    #[error("the {name} image (IFD {index}) has SubIFDs, which this tool cannot remove")]
    SubIfds {
        /// "label" or "macro".
        name: String,
        /// Its IFD's position in the main chain.
        index: usize,
    },
    /// Every image is a label or macro.
    #[error("every image is a label or macro: nothing would be left")]
    NothingLeft,
    /// A label's or macro's bytes could not be located.
    #[error("the {name} image: {kind}")]
    Associated {
        /// "label" or "macro".
        name: String,
        /// Why.
        kind: ErrorKind,
    },
    /// Writing the changes failed (the copy is incomplete and is not kept).
    #[error("cannot write: {0}")]
    Write(io::Error),
}

fn output_err(path: &Path, action: impl Into<String>, source: io::Error) -> TeachingError {
    TeachingError::Output { path: path.to_path_buf(), action: action.into(), error: source }
}

// ---------- pseudonyms ----------

/// The secret that makes pseudonyms: 32 bytes, stored as 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PseudonymKey(id {})", self.id())
    }
}

impl PseudonymKey {
    /// A key of these 32 secret bytes (tests, or a key held elsewhere); files hold keys as 64
    /// hex digits ([`PseudonymKey::read`]).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PseudonymKey { bytes }
    }

    /// `app_data_dir()/teaching.key`.
    pub fn default_path() -> Option<PathBuf> {
        app_data_dir().map(|d| d.join(KEY_FILE_NAME))
    }

    /// Read a key file: 64 hex digits (surrounding whitespace ignored).
    pub fn read(path: &Path) -> Result<Self, TeachingError> {
        let text = crate::files::read_regular(path, 4096)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|error| TeachingError::KeyIo { path: path.to_path_buf(), action: "cannot read", error })?;
        Self::parse(text.trim()).ok_or_else(|| TeachingError::NotAKey { path: path.to_path_buf() })
    }

    fn parse(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(PseudonymKey { bytes })
    }

    /// The key at `path`, or a new random one written there (owner-only on Unix) when there is
    /// none. The second value says whether it was created. Two exports racing to create it agree
    /// on one key: the file is linked into place only if absent.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), TeachingError> {
        let key_err =
            |action: &'static str, error: io::Error| TeachingError::KeyIo { path: path.to_path_buf(), action, error };
        match fs::metadata(path) {
            Ok(_) => return Ok((Self::read(path)?, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(key_err("cannot read", e)),
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| key_err("cannot create its folder", e))?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| key_err("no random numbers from the system", io::Error::other(e)))?;
        let key = PseudonymKey { bytes };
        let temp = dir.join(format!(".{KEY_FILE_NAME}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp)?;
            file.write_all(format!("{}\n", to_hex(&key.bytes)).as_bytes())?;
            file.sync_all()?;
            match fs::hard_link(&temp, path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                // Folders without hard links (some network shares): a plain rename.
                Err(_) => fs::rename(&temp, path).map(|()| true),
            }
        })();
        let _ = fs::remove_file(&temp);
        match written {
            Ok(true) => Ok((key, true)),
            Ok(false) => Ok((Self::read(path)?, false)),
            Err(e) => Err(key_err("cannot write", e)),
        }
    }

    /// SHA-256(key ‖ kind ‖ 0x00 ‖ value trimmed and lower-cased).
    fn digest(&self, kind: &str, value: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.bytes);
        hasher.update(kind.as_bytes());
        hasher.update([0u8]);
        hasher.update(value.trim().to_lowercase().as_bytes());
        hasher.finalize().into()
    }

    /// `PREFIX-` and 10 hex digits (40 bits: collisions are negligible below ~100,000 values).
    fn pseudonym(&self, kind: &str, prefix: &str, value: &str) -> String {
        format!("{prefix}-{}", &to_hex(&self.digest(kind, value))[..10])
    }

    /// The case id's pseudonym, `CASE-` and 10 lower-case hex digits (`CASE-3fa2c19b0e`): the
    /// same for the same key and case id, ignoring case and surrounding spaces.
    pub fn case_pseudonym(&self, case_id: &str) -> String {
        self.pseudonym("case", "CASE", case_id)
    }

    /// A reviewer's (or amender's) pseudonym, `REVIEWER-` and 10 lower-case hex digits: the same
    /// for the same key and name, ignoring case and surrounding spaces.
    pub fn reviewer_pseudonym(&self, name: &str) -> String {
        self.pseudonym("reviewer", "REVIEWER", name)
    }

    /// A UUID (version-4 shaped) derived from the key and the original report id.
    pub fn report_uuid(&self, report_id: &str) -> String {
        let digest = self.digest("report_id", report_id);
        let mut random = [0u8; 16];
        random.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(random).into_uuid().to_string()
    }

    /// A short fingerprint of the key, safe to show: tells whether two copies used the same key.
    pub fn id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"wsiview teaching key id\0");
        hasher.update(self.bytes);
        to_hex(&hasher.finalize())[..8].to_string()
    }
}

// ---------- the report ----------

/// What the teaching report says about the copy it goes with.
pub struct CopyFacts<'a> {
    /// The slide copy's file name (`CASE-….svs`), written to `slide.file_name`.
    pub slide_file_name: &'a str,
    /// SHA-256 of the scrubbed copy (64 lower-case hex digits), written to `slide.sha256` so the
    /// teaching report verifies against the copy, not the original.
    pub slide_sha256: &'a str,
    /// The annotation copy's file name, if one was written.
    pub annotations_file: Option<&'a str>,
    /// RFC 3339.
    pub made_at: &'a str,
}

/// The teaching version of a report: case id, reviewer names and report id replaced, the slide
/// fields pointing at the copy, and a `teaching_copy` field saying so. The reviewer's unknown
/// fields are dropped (they describe the person: a registration number, an email).
pub fn teaching_report(original: &Report, key: &PseudonymKey, copy: &CopyFacts) -> Report {
    let mut report = original.clone();
    report.case_id = key.case_pseudonym(&original.case_id);
    report.report_id = key.report_uuid(&original.report_id);
    if !original.reviewer.name.trim().is_empty() {
        report.reviewer.name = key.reviewer_pseudonym(&original.reviewer.name);
    }
    report.reviewer.extra = Map::new();
    for amendment in &mut report.amendments {
        if !amendment.by.trim().is_empty() {
            amendment.by = key.reviewer_pseudonym(&amendment.by);
        }
        amendment.extra = Map::new();
        for change in &mut amendment.changes {
            let field = change.field.as_str();
            if field == "case_id" {
                // Old case numbers are identifiers too: pseudonyms with the same key.
                for value in [&mut change.before, &mut change.after] {
                    if let Some(text) = value.as_str().filter(|t| !t.trim().is_empty()) {
                        *value = json!(key.case_pseudonym(text));
                    }
                }
            } else if field == "report_id"
                || field == "equity"
                || field.starts_with("equity.")
                || field.starts_with("reviewer.")
                || field.starts_with("slide.")
                || field.starts_with("annotations.file")
                || field.starts_with("annotations.by_slide")
                || field.starts_with(TEACHING_FIELD)
            {
                // Names, the original slide's file and hash: not carried into a teaching copy.
                change.before = Value::Null;
                change.after = Value::Null;
                change.extra.insert("removed".into(), json!(true));
            }
        }
    }
    report.slide.file_name = copy.slide_file_name.to_string();
    // The copy is a local file: where the original was read from is not the teaching set's.
    report.slide.url = None;
    // The PACS's UIDs lead back to the patient's series.
    report.slide.study_instance_uid = None;
    report.slide.series_instance_uid = None;
    report.slide.sha256 = copy.slide_sha256.to_string();
    // Ethnic category and area deprivation describe the patient: not for teaching.
    report.equity = None;
    // The original sidecar's name is the original slide's name: never keep it.
    report.annotations.file = copy.annotations_file.unwrap_or_default().to_string();
    // A case of several slides: their file names carry the case number. The copied slide's part
    // takes the copy's names; the others' become "<case pseudonym> slide N" (not copied).
    for (i, part) in report.annotations.by_slide.iter_mut().enumerate() {
        if part.file_name == original.slide.file_name {
            part.file_name = report.slide.file_name.clone();
            part.file = report.annotations.file.clone();
        } else {
            part.file_name = format!("{} slide {} (not copied)", report.case_id, i + 1);
            part.file = String::new();
        }
        part.extra = Map::new();
    }
    report.extra.insert(
        TEACHING_FIELD.into(),
        json!({
            "made_at": copy.made_at,
            "key_id": key.id(),
            "note": "Teaching copy: case id, report id and reviewer names are keyed pseudonyms; the slide copy has no label or macro image and its description's Filename, User, Date, Time and Barcode are blank. Free text is as the reviewer wrote it.",
        }),
    );
    report
}

/// Delete `.NAME.<pid>.partial` files left in `dir` by killed exports of NAME.
fn remove_stale_partials(dir: &Path, copy_name: &str) {
    let prefix = format!(".{copy_name}.");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".partial") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// What a user must check by hand before sharing: free text that is kept, and where it mentions
/// the original case id or a reviewer's name; unknown fields that are kept. One sentence each;
/// empty when there is nothing to check.
pub fn privacy_warnings(original: &Report) -> Vec<String> {
    let mut warnings = Vec::new();
    let texts = [
        &original.specimen,
        &original.clinical_details,
        &original.macroscopy,
        &original.microscopy,
        &original.diagnosis.text,
        &original.comments,
    ];
    let mut names: Vec<(&str, &str)> = vec![("the case id", original.case_id.as_str())];
    names.push(("the reviewer's name", original.reviewer.name.as_str()));
    names.extend(original.amendments.iter().map(|a| ("an amending reviewer's name", a.by.as_str())));
    let filled: Vec<&str> =
        FREE_TEXT_FIELDS.iter().zip(texts).filter(|(_, t)| !t.trim().is_empty()).map(|(f, _)| *f).collect();
    if !filled.is_empty() {
        warnings.push(format!(
            "free text kept as written: {} (remove names, dates of birth and hospital numbers by hand)",
            filled.join(", ")
        ));
    }
    for (field, text) in FREE_TEXT_FIELDS.iter().zip(texts) {
        let lower = text.to_lowercase();
        for (what, name) in &names {
            let name = name.trim().to_lowercase();
            if name.len() >= 3 && lower.contains(&name) {
                warnings.push(format!("{field} mentions {what}"));
            }
        }
    }
    if original.amendments.iter().any(|a| !a.reason.trim().is_empty()) {
        warnings.push("amendment reasons kept as written".into());
    }
    warnings.dedup();
    let mut unknown: Vec<String> =
        original.extra.keys().filter(|k| k.as_str() != TEACHING_FIELD).map(|k| k.to_string()).collect();
    unknown.extend(original.slide.extra.keys().map(|k| format!("slide.{k}")));
    unknown.extend(original.diagnosis.extra.keys().map(|k| format!("diagnosis.{k}")));
    if !unknown.is_empty() {
        warnings.push(format!("fields this version does not know, kept as they are: {}", unknown.join(", ")));
    }
    warnings
}

// ---------- the slide copy ----------

/// What scrubbing changed in a slide copy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScrubSummary {
    /// Associated images removed ("label", "macro"), in file order.
    pub removed: Vec<&'static str>,
    /// Descriptions whose identifying values ([`BLANKED_DESCRIPTION_KEYS`]) were blanked.
    pub descriptions_blanked: usize,
    /// Bytes overwritten with zeros.
    pub bytes_zeroed: u64,
}

/// Every IFD reachable from `roots` through SubIFDs (the roots included), each once.
fn with_sub_ifds(
    reader: &TiffReader,
    roots: Vec<Ifd>,
    seen: &mut std::collections::HashSet<u64>,
) -> Result<Vec<Ifd>, ScrubError> {
    let mut all = Vec::new();
    let mut pending = roots;
    while let Some(ifd) = pending.pop() {
        for offset in reader.sub_ifds(&ifd).map_err(ScrubError::Tiff)? {
            if seen.contains(&offset) {
                continue;
            }
            pending.extend(reader.read_chain_from(offset, seen, &[ifd.offset]).map_err(ScrubError::Tiff)?);
        }
        all.push(ifd);
    }
    Ok(all)
}

/// Scrub a slide file in place (call it on a copy): remove the label and macro, blank the
/// identifying description values. Errors are the problem without the file name.
pub fn scrub_slide_file(path: &Path) -> Result<ScrubSummary, ScrubError> {
    let source = FileSource::open(path).map_err(ScrubError::Read)?;
    let reader = TiffReader::new(Arc::new(source)).map_err(ScrubError::Tiff)?;
    let mut seen = std::collections::HashSet::new();
    let chain = reader.read_chain(reader.first_ifd, &mut seen).map_err(ScrubError::Tiff)?;
    let removed: Vec<_> = associated_ifds(&reader)
        .map_err(ScrubError::Tiff)?
        .into_iter()
        .filter(|a| REMOVED_ASSOCIATED.contains(&a.name.as_str()))
        .collect();
    for a in &removed {
        if !reader.sub_ifds(&a.ifd).map_err(ScrubError::Tiff)?.is_empty() {
            return Err(ScrubError::SubIfds { name: a.name.clone(), index: a.index });
        }
    }
    let is_removed = |ifd: &Ifd| removed.iter().any(|a| a.ifd.offset == ifd.offset);
    let kept_chain: Vec<Ifd> = chain.iter().filter(|i| !is_removed(i)).cloned().collect();
    if kept_chain.is_empty() {
        return Err(ScrubError::NothingLeft);
    }
    let kept = with_sub_ifds(&reader, kept_chain.clone(), &mut seen)?;

    // Bytes the removed images own, less any a kept image also uses (a shared JPEG table): those
    // must stay or the copy would not open.
    let header_len = if reader.bigtiff { 16 } else { 8 };
    let mut keep: Vec<Range<u64>> = Vec::new();
    keep.push(0..header_len);
    for ifd in &kept {
        keep.extend(footprint(&reader, ifd).map_err(ScrubError::Tiff)?);
    }
    let mut remove = Vec::new();
    for a in &removed {
        remove
            .extend(footprint(&reader, &a.ifd).map_err(|kind| ScrubError::Associated { name: a.name.clone(), kind })?);
    }
    let zero = subtract_ranges(remove, keep);

    let mut descriptions = Vec::new();
    for ifd in &kept {
        let Some(entry) = ifd.get(tags::IMAGE_DESCRIPTION) else { continue };
        if !matches!(entry.field_type, types::ASCII | types::BYTE | types::UNDEFINED) {
            continue;
        }
        let text = reader.entry_string(entry).map_err(ScrubError::Tiff)?;
        if let Some(blank) = blank_aperio_values(&text, &BLANKED_DESCRIPTION_KEYS) {
            descriptions.push((entry.clone(), blank));
        }
    }

    let file = OpenOptions::new().write(true).open(path).map_err(ScrubError::Write)?;
    let mut editor = TiffEditor::new(file, &reader);
    let write_err = ScrubError::Write;
    for range in &zero {
        editor.zero(range.clone()).map_err(write_err)?;
    }
    for (entry, text) in &descriptions {
        editor.replace_text(&reader, entry, text).map_err(write_err)?;
    }
    if !removed.is_empty() {
        // Relink the chain over the gaps: the header and each kept IFD point at the next kept one.
        if kept_chain[0].offset != reader.first_ifd {
            editor.set_first_ifd(&reader, kept_chain[0].offset).map_err(write_err)?;
        }
        for (i, ifd) in kept_chain.iter().enumerate() {
            let next = kept_chain.get(i + 1).map_or(0, |n| n.offset);
            if ifd.next != next {
                editor.set_next_ifd(&reader, ifd, next).map_err(write_err)?;
            }
        }
    }
    editor.into_inner().sync_all().map_err(write_err)?;
    Ok(ScrubSummary {
        removed: removed.iter().filter_map(|a| REMOVED_ASSOCIATED.iter().find(|r| **r == a.name).copied()).collect(),
        descriptions_blanked: descriptions.len(),
        bytes_zeroed: zero.iter().map(|r| r.end - r.start).sum(),
    })
}

/// The slide a teaching copy is made from: a local file, or a remote object streamed once.
enum Original {
    File(File),
    Remote(Box<crate::remote::HttpSource>),
}

/// Copy `from` to `to` (created), returning the SHA-256 of the bytes copied: one read of a
/// multi-gigabyte slide both copies and fingerprints it. Memory: one chunk.
fn copy_and_hash(from: &mut Original, to: &mut File, progress: &mut dyn FnMut(&str, u64, u64)) -> io::Result<String> {
    let mut hasher = Sha256::new();
    match from {
        Original::File(from) => {
            let total = from.metadata()?.len();
            let mut buffer = vec![0u8; CHUNK];
            let mut done = 0u64;
            loop {
                let n = match from.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                hasher.update(&buffer[..n]);
                to.write_all(&buffer[..n])?;
                done += n as u64;
                progress("copying", done, total);
            }
        }
        Original::Remote(from) => {
            let total = crate::tiff::ByteSource::len(from.as_ref());
            let mut written = Ok(());
            from.stream(|piece, done| {
                hasher.update(piece);
                written = to.write_all(piece);
                progress("copying", done, total);
                written.is_ok()
            })?;
            written?;
        }
    }
    Ok(to_hex(&hasher.finalize()))
}

/// Removes a temporary file unless it was kept (renamed into place).
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

// ---------- the export ----------

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    /// The scrubbed slide copy, `<case pseudonym>.<ext>` in the output folder.
    pub slide: PathBuf,
    /// The teaching report, `<case pseudonym>.report.json` beside the copy.
    pub report: PathBuf,
    /// The copied annotation sidecar (`<copy name>.annotations.geojson`); None when the original
    /// slide had no annotations.
    pub annotations: Option<PathBuf>,
    /// The case id's pseudonym, which names the files.
    pub case_pseudonym: String,
    /// What scrubbing removed and blanked in the copy.
    pub scrub: ScrubSummary,
    /// SHA-256 of the scrubbed copy as 64 lower-case hex digits (the teaching report's
    /// `slide.sha256`).
    pub slide_sha256: String,
    /// What the user must check by hand before sharing ([`privacy_warnings`]).
    pub warnings: Vec<String>,
}

/// Make a teaching copy of `slide` and `report_path` in `out_dir` (created if missing):
/// `<case pseudonym>.<ext>`, `<case pseudonym>.report.json`, and the annotations under the copy's
/// sidecar name when the slide has any. Refuses to replace existing files unless `force`, and
/// never writes over the originals. `progress(stage, done, total)` follows the copy and the hash.
pub fn export_teaching(
    slide: &Path,
    report_path: &Path,
    out_dir: &Path,
    key: &PseudonymKey,
    force: bool,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Exported, TeachingError> {
    let original = Report::read(report_path)?;
    // A remote slide (`http(s)://`, `s3://`) is streamed, and named by its redacted URL.
    let location = slide.to_string_lossy().into_owned();
    let remote = crate::remote::is_url(&location);
    let shown = if remote { PathBuf::from(crate::remote::redact(&location)) } else { slide.to_path_buf() };
    let slide = shown.as_path();
    let slide_read = |error| TeachingError::SlideRead { path: slide.to_path_buf(), error };
    // Refuse a file that is not a TIFF before copying gigabytes of it.
    let mut source = if remote {
        let object = Arc::new(crate::remote::HttpSource::open(&location).map_err(|e| slide_read(e.into()))?);
        TiffReader::new(object.clone()).map_err(|kind| SlideError::new(slide, kind))?;
        match Arc::try_unwrap(object) {
            Ok(object) => Original::Remote(Box::new(object)),
            Err(_) => return Err(slide_read(io::Error::other("the object is still in use"))),
        }
    } else {
        let file = crate::files::open_regular(slide).map_err(slide_read)?;
        let header = FileSource::open(slide).map_err(slide_read)?;
        TiffReader::new(Arc::new(header)).map_err(|kind| SlideError::new(slide, kind))?;
        Original::File(file)
    };

    let case = key.case_pseudonym(&original.case_id);
    let extension = slide.extension().map(|e| safe_file_stem(&e.to_string_lossy()));
    let copy_name = match &extension {
        Some(ext) => format!("{case}.{ext}"),
        None => case.clone(),
    };
    fs::create_dir_all(out_dir).map_err(|e| output_err(out_dir, "cannot create the folder", e))?;
    let out_dir = fs::canonicalize(out_dir).map_err(|e| output_err(out_dir, "cannot resolve the folder", e))?;
    let copy_path = out_dir.join(&copy_name);
    let report_out = out_dir.join(format!("{}{REPORT_SUFFIX}", safe_file_stem(&case)));
    let annotations_in = existing_annotations(slide, app_data_dir().as_deref());
    let annotations_out = sidecar_path(&copy_path);

    let originals: Vec<PathBuf> = [Some(slide), Some(report_path), annotations_in.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    let mut targets = vec![&copy_path, &report_out];
    if annotations_in.is_some() {
        targets.push(&annotations_out);
    }
    for target in targets {
        if originals.contains(target) {
            return Err(TeachingError::WouldReplaceOriginal { path: target.clone() });
        }
        if !force && target.exists() {
            return Err(TeachingError::Exists { path: target.clone() });
        }
    }

    // A run killed mid-copy leaves an unscrubbed copy (label included) under a hidden name in the
    // folder meant for sharing: remove any before starting.
    remove_stale_partials(&out_dir, &copy_name);
    let mut temp = TempFile { path: out_dir.join(format!(".{copy_name}.{}.partial", std::process::id())), armed: true };
    let mut copy = File::create(&temp.path).map_err(|e| output_err(&temp.path, "cannot create", e))?;
    let original_sha256 = copy_and_hash(&mut source, &mut copy, progress)
        .map_err(|e| output_err(&temp.path, format!("copying {}", slide.display()), e))?;
    drop(copy);
    if !original.slide.sha256.is_empty() && original.slide.sha256 != original_sha256 {
        return Err(TeachingError::OtherSlide {
            report: report_path.to_path_buf(),
            slide: slide.to_path_buf(),
            report_sha256: original.slide.sha256.clone(),
            slide_sha256: original_sha256,
        });
    }
    let scrub =
        scrub_slide_file(&temp.path).map_err(|problem| TeachingError::Scrub { path: slide.to_path_buf(), problem })?;
    // Check the result as a reader will see it before it takes the final name.
    let check =
        Slide::open(&temp.path).map_err(|e| TeachingError::CopyUnreadable { path: copy_path.clone(), kind: e.kind })?;
    if let Some(left) = check.associated_names().iter().find(|n| REMOVED_ASSOCIATED.contains(&n.as_str())) {
        return Err(TeachingError::NotScrubbed { path: copy_path.clone(), name: left.clone() });
    }
    drop(check);
    let slide_sha256 = sha256_file(&temp.path, |done, total| {
        progress("hashing the copy", done, total);
        true
    })
    .map_err(|e| output_err(&temp.path, "cannot read back", e))?;
    fs::rename(&temp.path, &copy_path).map_err(|e| output_err(&copy_path, "cannot write", e))?;
    temp.armed = false;
    #[cfg(unix)]
    File::open(&out_dir).and_then(|d| d.sync_all()).map_err(|e| output_err(&out_dir, "cannot sync the folder", e))?;

    let annotations = match &annotations_in {
        Some(from) => {
            let bytes = crate::files::read_regular(from, crate::Limits::DEFAULT.annotation_file_bytes)
                .map_err(|e| output_err(from, "cannot read", e))?;
            write_atomic(&annotations_out, &bytes).map_err(|e| output_err(&annotations_out, "cannot write", e))?;
            Some(annotations_out)
        }
        None => {
            // A stale copy from an earlier export (with --force) would not match this report.
            if annotations_out.exists() {
                fs::remove_file(&annotations_out)
                    .map_err(|e| output_err(&annotations_out, "cannot remove the stale copy", e))?;
            }
            None
        }
    };
    let annotations_name = annotations.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let made_at = now_rfc3339();
    let teaching = teaching_report(
        &original,
        key,
        &CopyFacts {
            slide_file_name: &copy_name,
            slide_sha256: &slide_sha256,
            annotations_file: annotations_name.as_deref(),
            made_at: &made_at,
        },
    );
    let json = teaching.to_json();
    Report::from_json(&json)
        .map_err(|problem| TeachingError::InvalidTeachingReport { path: report_out.clone(), problem })?;
    write_atomic(&report_out, &json).map_err(|e| output_err(&report_out, "cannot write", e))?;
    let mut warnings = privacy_warnings(&original);
    if annotations.is_some() {
        warnings.push("annotation names and notes copied as written".into());
    }
    Ok(Exported {
        slide: copy_path,
        report: report_out,
        annotations,
        case_pseudonym: case,
        scrub,
        slide_sha256,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::Amendment;

    fn key(byte: u8) -> PseudonymKey {
        PseudonymKey::from_bytes([byte; 32])
    }

    #[test]
    fn pseudonyms_are_stable_normalised_and_keyed() {
        let k = key(7);
        let p = k.case_pseudonym("H26-1234");
        assert!(p.starts_with("CASE-") && p.len() == 15, "{p}");
        assert_eq!(p, k.case_pseudonym("  h26-1234 "), "trimmed, case-insensitive");
        assert_ne!(p, key(8).case_pseudonym("H26-1234"), "another key, another pseudonym");
        assert_ne!(p, k.case_pseudonym("H26-1235"));
        assert_ne!(&k.reviewer_pseudonym("H26-1234")[9..], &p[5..], "the kind is part of the hash");
        let id = k.report_uuid("9b1c3f6e-0000-4000-8000-000000000001");
        assert_eq!(uuid::Uuid::parse_str(&id).map(|u| u.get_version_num()), Ok(4));
        assert_eq!(id, k.report_uuid("9b1c3f6e-0000-4000-8000-000000000001"));
        assert_ne!(k.id(), key(8).id());
    }

    #[test]
    fn key_files_are_64_hex_digits_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/teaching.key");
        let (created, was_new) = PseudonymKey::load_or_create(&path).unwrap();
        assert!(was_new);
        let (again, was_new) = PseudonymKey::load_or_create(&path).unwrap();
        assert!(!was_new);
        assert_eq!(created, again);
        assert_eq!(fs::read_to_string(&path).unwrap().trim().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let bad = dir.path().join("bad.key");
        fs::write(&bad, "not a key").unwrap();
        let err = PseudonymKey::read(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.key") && err.contains("64 hex digits"), "{err}");
    }

    #[test]
    fn teaching_report_replaces_identities_and_warns_about_free_text() {
        let mut r = Report { case_id: "H26-1234".into(), site: "RLH".into(), ..Report::default() };
        r.reviewer.name = "Dr Ann Smith".into();
        r.reviewer.extra.insert("gmc_number".into(), "7654321".into());
        r.amendments.push(Amendment {
            at: "2026-11-10T09:00:00Z".into(),
            by: "dr ann smith".into(),
            reason: "typo".into(),
            changes: vec![
                super::super::schema::FieldChange {
                    field: "case_id".into(),
                    before: "H26-1233".into(),
                    after: "H26-1234".into(),
                    ..Default::default()
                },
                super::super::schema::FieldChange {
                    field: "slide.file_name".into(),
                    before: "H26-1233.svs".into(),
                    after: "H26-1234.svs".into(),
                    ..Default::default()
                },
                super::super::schema::FieldChange {
                    field: "annotations.by_slide".into(),
                    before: Value::Null,
                    after: json!([{"file_name": "H26-1234_C1_ER.svs", "file": "", "by_class": []}]),
                    ..Default::default()
                },
                super::super::schema::FieldChange {
                    field: "diagnosis.category".into(),
                    before: "B3".into(),
                    after: "B5a".into(),
                    ..Default::default()
                },
            ],
            ..Amendment::default()
        });
        r.comments = "Discussed with Dr Ann Smith at MDT".into();
        r.slide.file_name = "H26-1234.svs".into();
        r.annotations.file = "H26-1234.svs.annotations.geojson".into();
        // A case of two slides: the other slide's file name carries the case number too.
        let part = |name: &str| super::super::schema::SlideAnnotations {
            file_name: name.into(),
            file: format!("{name}.annotations.geojson"),
            ..Default::default()
        };
        r.annotations.set_case_slides(vec![part("H26-1234.svs"), part("H26-1234_B1_Ki67.svs")]);
        let k = key(1);
        let facts = CopyFacts {
            slide_file_name: "CASE-x.svs",
            slide_sha256: &"a".repeat(64),
            annotations_file: None,
            made_at: "2026-11-11T10:00:00Z",
        };
        let t = teaching_report(&r, &k, &facts);
        assert_eq!(t.reviewer.name, t.amendments[0].by, "one person, one pseudonym");
        assert!(t.reviewer.extra.is_empty());
        assert_eq!(t.annotations.file, "");
        assert_eq!(t.slide.file_name, "CASE-x.svs");
        let parts: Vec<(&str, &str)> =
            t.annotations.by_slide.iter().map(|p| (p.file_name.as_str(), p.file.as_str())).collect();
        let other = format!("{} slide 2 (not copied)", t.case_id);
        assert_eq!(parts, vec![("CASE-x.svs", ""), (other.as_str(), "")]);
        assert_eq!(t.extra[TEACHING_FIELD]["key_id"], k.id());
        let json = String::from_utf8(t.to_json()).unwrap();
        // An amendment's previous case number is an identifier too; the original slide's name goes.
        let changes = &t.amendments[0].changes;
        assert_eq!(changes[0].before, Value::from(k.case_pseudonym("H26-1233")));
        assert_eq!(changes[0].after, Value::from(t.case_id.clone()));
        assert_eq!((changes[1].before.clone(), changes[1].after.clone()), (Value::Null, Value::Null));
        assert_eq!(changes[2].after, Value::Null, "the slides' names in an annotations change go");
        assert_eq!(changes[3].after, Value::from("B5a"), "clinical changes stay readable");
        for original in ["H26-1234", "H26-1233", "7654321", &r.report_id] {
            assert!(!json.contains(original), "{original} left in {json}");
        }
        let warnings = privacy_warnings(&r).join("\n");
        assert!(warnings.contains("comments") && warnings.contains("the reviewer's name"), "{warnings}");
    }
}
