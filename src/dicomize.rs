//! `wsiview dicomize`: a slide written as a DICOM whole-slide image series (VL Whole Slide
//! Microscopy Image Storage, 1.2.840.10008.5.1.4.1.1.77.1.6), one file per instance, so that TIFF
//! slides can join a PACS without re-encoding.
//!
//! What is written, and where each rule comes from:
//!
//! - One VOLUME instance per pyramid level (`level-N.dcm`, N as in `wsiview info`), and THUMBNAIL
//!   (`thumbnail.dcm`), OVERVIEW (`overview.dcm`, from the "macro" image) and, only when asked,
//!   LABEL (`label.dcm`) instances from the associated images (PS3.3 A.32.8, the WSI IOD;
//!   C.8.12.4.1.1 Image Type values 3 and 4: `ORIGINAL\PRIMARY\VOLUME\NONE` for level 0,
//!   `DERIVED\PRIMARY\VOLUME\RESAMPLED` for the others, `…\THUMBNAIL\RESAMPLED`, `…\OVERVIEW\NONE`,
//!   `…\LABEL\NONE`). Labels carry patient identifiers; the command line says so.
//! - Frames: DimensionOrganizationType TILED_FULL (C.8.12.4.1.3 and C.7.6.17.3): frame n is tile
//!   (n mod across, n div across) of the level's TIFF tile grid, edge frames padded as the TIFF
//!   pads them; no Per-Frame Functional Groups (allowed for TILED_FULL, C.7.6.16.1).
//! - Pixel data without decoding where the tiles allow (PS3.5 A.4, encapsulation): JPEG tiles
//!   become JPEG baseline frames (1.2.840.10008.1.2.4.50), each a complete interchange stream —
//!   shared JPEGTables (TIFF tag 347, TIFF Technical Note 2) are spliced in front, as libtiff
//!   joins them. PhotometricInterpretation (PS3.5 8.2.1, PS3.3 C.7.6.3.1.2, C.8.12.4.1.5):
//!   YBR_FULL_422 for YCbCr whatever the SOF's sampling (the WSI IOD allows no YBR_FULL), RGB when the
//!   TIFF says Photometric RGB or the stream carries an Adobe APP14 marker with transform 0; an
//!   RGB frame gets such an APP14 marker (and loses any JFIF APP0, which would say YCbCr) so that
//!   decoders that look only at the stream see RGB too. Aperio JPEG 2000 tiles (33003, 33005:
//!   lossy) become JPEG 2000 frames (1.2.840.10008.1.2.4.91), YBR_ICT/YBR_RCT when the
//!   codestream's COD marker applies the component transform, else RGB (PS3.5 8.2.4); 33003's
//!   untransformed Y, Cb, Cr would be YBR_FULL, which the WSI IOD does not allow, so those levels
//!   are decoded (below).
//!   Frames are indexed by a Basic Offset Table (PS3.5 A.4), or, for an instance whose frames
//!   could pass the 4 GiB its 32-bit offsets address, by an Extended Offset Table with an empty
//!   Basic Offset Table (PS3.3 C.7.6.3.1.8); either is filled in once the frames are written
//!   (its size is known before), so nothing waits in memory. Items are padded to even length.
//!   A JPEG tile that cannot be a baseline frame as it is (another SOF, a size that is not the
//!   tile's), and a tile never written, is decoded and encoded again (JPEG quality 90) with the
//!   level's photometric interpretation.
//! - Levels whose tiles cannot be copied (LZW, Deflate, uncompressed; separate planes; placed
//!   tiles of Leica and Ventana; every level of NDPI, whose JPEG is not tiled) are decoded: to
//!   explicit VR little endian uncompressed RGB when the source was lossless and the level fits
//!   the 4 GiB of a PixelData length, else encoded again as JPEG quality 90, 4:2:2
//!   (YBR_FULL_422). Thumbnail, overview and label are decoded and written as one JPEG frame.
//! - LossyImageCompression "01" whenever the pixels went through lossy compression (the source's
//!   or ours), with the ratio of this instance's frames and the method (ISO_10918_1,
//!   ISO_15444_1) (C.7.6.1.1.5, C.8.12.4.1.5).
//! - Geometry (C.8.12.4, C.8.12.9, C.7.6.16.2.1): PixelSpacing in the Shared Functional Groups'
//!   Pixel Measures, in mm, row spacing first: mpp-y/1000 and mpp-x/1000 times the level's own
//!   height and width ratio to level 0; ImagedVolumeWidth/Height = level-0 size × mpp (mm);
//!   TotalPixelMatrixColumns/Rows = the level's size; TotalPixelMatrixOrigin (0, 0) mm, as the
//!   slide's position on the glass is not known; ImageOrientationSlide (C.8.12.2.1.1, direction
//!   cosines of a row and of a column in the slide coordinate system) `0\-1\0\-1\0\0`: rows run
//!   along −Y, columns along −X, a slide scanned with its label to the left, the value the DICOM
//!   fixture series of `../shared/fixtures` carries. A slide without a pixel size is refused:
//!   PixelSpacing and ImagedVolumeWidth are type 1.
//! - Identity: StudyInstanceUID and SeriesInstanceUID from the flags or generated; UIDs are
//!   `2.25.` and a random UUID as a decimal (PS3.5 B.2). FrameOfReferenceUID, the dimension
//!   organisation and the specimen UID are shared by the series. ContainerIdentifier (type 1) is
//!   the slide's file stem. Patient and study attributes are type 2 and left empty
//!   (AccessionNumber from `--accession`; StudyDate and StudyTime the scan's, when the TIFF
//!   DateTime or Aperio's Date and Time give it; AcquisitionDateTime, type 1, that or the time of
//!   the conversion); Manufacturer, model, serial number and software
//!   versions (Enhanced General Equipment, type 1) come from the TIFF's Make, Model, Software
//!   and Aperio's ScanScope ID, else "unknown". The optical path is brightfield with full-spectrum
//!   illumination, the slide's objective power, and an sRGB ICC profile ([`srgb_icc`]; type 1C
//!   for colour images).
//! - Files are written under a temporary name in OUTDIR, made durable (fsync) and renamed when
//!   complete; existing outputs are not replaced, and a conversion that fails removes the
//!   instances it wrote. Memory stays bounded whatever the slide's size: frames stream from
//!   the TIFF to the file.
//!
//! IOD conformance is checked with dciodvfy (dicom3tools) in the tests (tests/formats.rs), and
//! the output read back with wsiview's own DICOM reader.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dicom_core::header::Header as _;
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::SpecificCharacterSet;
use dicom_object::mem::InMemElement;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use rayon::prelude::*;

use crate::error::SlideError;
use crate::slide::{SlideSource, TiffSlide};
use crate::tiles::codec::{Compression, Photometric};

/// VL Whole Slide Microscopy Image Storage.
pub const WSI_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.77.1.6";
/// Transfer syntaxes written.
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
/// JPEG 2000 (lossless or lossy).
pub const JPEG_2000: &str = "1.2.840.10008.1.2.4.91";
/// Explicit VR little endian (uncompressed frames).
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// wsiview's implementation class UID (file meta group), a fixed `2.25` UUID.
const IMPLEMENTATION_CLASS_UID: &str = "2.25.229339620453452591406513389939470591822";
const IMPLEMENTATION_VERSION: &str = "WSIVIEW_0_1";
/// Quality of frames wsiview encodes itself.
const JPEG_QUALITY: u8 = 90;
/// Largest native PixelData value (its length is 32 bits, 0xFFFFFFFF meaning undefined).
const MAX_NATIVE_BYTES: u64 = 0xFFFF_FFFE;
/// Tiles read at once when they are copied (those stored back to back in one read).
const COPY_BATCH: usize = 512;
/// Tiles decoded at once (in parallel) when a level must be decoded.
const DECODE_BATCH: usize = 64;

/// What to write besides the pixels.
#[derive(Clone, Debug, Default)]
pub struct DicomizeOptions {
    /// StudyInstanceUID; generated when `None`.
    pub study_uid: Option<String>,
    /// SeriesInstanceUID; generated when `None`.
    pub series_uid: Option<String>,
    /// AccessionNumber (else empty).
    pub accession: Option<String>,
    /// Write the LABEL instance (the label image carries patient identifiers).
    pub include_label: bool,
    /// Always index frames with an Extended Offset Table; by default only instances whose
    /// frames could pass the 4 GiB a Basic Offset Table can address have one.
    pub extended_offset_table: bool,
}

/// How an instance's frames were made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PixelOrigin {
    /// Every frame is the source tile's stored bytes (JPEG tables spliced in, APP14 added for RGB).
    Copied,
    /// Mostly copied; `re_encoded` frames (never-written tiles, tiles that are not baseline
    /// frames of the tile size) were decoded and encoded again.
    Mixed { re_encoded: u64 },
    /// Decoded and written uncompressed.
    Uncompressed,
    /// Decoded and encoded as JPEG (quality 90).
    ReEncoded,
}

/// One instance written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// ImageType value 3: VOLUME, THUMBNAIL, OVERVIEW or LABEL.
    pub image_type: &'static str,
    /// The pyramid level, for VOLUME instances.
    pub level: Option<usize>,
    /// TotalPixelMatrixColumns × Rows.
    pub width: u64,
    pub height: u64,
    /// Frame size.
    pub tile_width: u32,
    pub tile_height: u32,
    pub frames: u64,
    pub transfer_syntax: &'static str,
    pub photometric: &'static str,
    pub pixels: PixelOrigin,
    /// File size.
    pub bytes: u64,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.level {
            Some(l) => format!("VOLUME level {l}"),
            None => self.image_type.to_string(),
        };
        let syntax = match self.transfer_syntax {
            JPEG_BASELINE => "JPEG baseline",
            JPEG_2000 => "JPEG 2000",
            _ => "uncompressed",
        };
        let how = match self.pixels {
            PixelOrigin::Copied => "copied".to_string(),
            PixelOrigin::Mixed { re_encoded } => format!("copied, {re_encoded} re-encoded"),
            PixelOrigin::Uncompressed => "decoded".to_string(),
            PixelOrigin::ReEncoded => format!("re-encoded q{JPEG_QUALITY}"),
        };
        write!(
            f,
            "{}: {what}, {}×{}, {} frame{} of {}×{}, {syntax} {} ({how}), {:.1} MB",
            self.path.display(),
            self.width,
            self.height,
            self.frames,
            if self.frames == 1 { "" } else { "s" },
            self.tile_width,
            self.tile_height,
            self.photometric,
            self.bytes as f64 / 1e6
        )
    }
}

/// What went wrong; each names the file or the flag.
#[derive(Debug, thiserror::Error)]
pub enum DicomizeError {
    /// The slide cannot be opened or read (names the slide).
    #[error(transparent)]
    Slide(#[from] SlideError),
    /// The slide opens but cannot be written as DICOM WSI.
    #[error("{path}: cannot be dicomized: {reason}")]
    Unsupported { path: String, reason: String },
    /// A flag's value is not usable.
    #[error("{flag} {value:?}: {reason}")]
    BadOption { flag: &'static str, value: String, reason: String },
    /// Writing failed.
    #[error("{path}: {what}: {source}")]
    Io {
        path: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> DicomizeError + 'a {
    move |source| DicomizeError::Io { path: path.display().to_string(), what, source }
}

/// A new UID: `2.25.` and a random UUID as one decimal number (PS3.5 B.2).
pub fn new_uid() -> String {
    format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
}

/// Whether `uid` is a valid DICOM UID (PS3.5 9.1): digits and dots, at most 64 characters,
/// components without leading zeros.
pub fn check_uid(uid: &str) -> std::result::Result<(), String> {
    if uid.is_empty() || uid.len() > 64 {
        return Err(format!("a UID has 1 to 64 characters, this one {}", uid.len()));
    }
    for part in uid.split('.') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err("a UID is numbers separated by dots".into());
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(format!("component {part:?} has a leading zero"));
        }
    }
    Ok(())
}

/// Text for an LO/SH value: printable, no backslash (the value separator), at most `max` characters.
fn clean_text(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control() && *c != '\\').take(max).collect::<String>().trim().to_string()
}

/// What the whole series shares.
struct Series {
    study_uid: String,
    series_uid: String,
    frame_of_reference_uid: String,
    dimension_uid: String,
    specimen_uid: String,
    container: String,
    accession: String,
    /// DA and TM of the conversion (Content Date/Time).
    content_date: String,
    content_time: String,
    /// AcquisitionDateTime (DT), and the study date and time when the scan date is known.
    acquisition: String,
    study_date: String,
    study_time: String,
    manufacturer: String,
    model: String,
    serial: String,
    software: String,
    objective_power: Option<f64>,
    /// Every instance gets an Extended Offset Table.
    extended_offset_table: bool,
    /// Level-0 size.
    width0: u64,
    height0: u64,
}

/// How one instance's pixels are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameKind {
    /// JPEG baseline frames with this photometric interpretation.
    Jpeg(JpegColour),
    /// JPEG 2000 frames.
    J2k(&'static str),
    /// Uncompressed RGB.
    Native,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JpegColour {
    /// YBR_FULL_422: YCbCr (subsampled 4:2:2 when wsiview encodes).
    Ybr422,
    /// RGB samples without the colour transform.
    Rgb,
    /// One component.
    Grey,
}

impl JpegColour {
    fn photometric(self) -> &'static str {
        match self {
            JpegColour::Ybr422 => "YBR_FULL_422",
            JpegColour::Rgb => "RGB",
            JpegColour::Grey => "MONOCHROME2",
        }
    }
}

impl FrameKind {
    fn transfer_syntax(self) -> &'static str {
        match self {
            FrameKind::Jpeg(_) => JPEG_BASELINE,
            FrameKind::J2k(_) => JPEG_2000,
            FrameKind::Native => EXPLICIT_VR_LE,
        }
    }
    fn photometric(self) -> &'static str {
        match self {
            FrameKind::Jpeg(c) => c.photometric(),
            FrameKind::J2k(p) => p,
            FrameKind::Native => "RGB",
        }
    }
    fn samples(self) -> u16 {
        match self {
            FrameKind::Jpeg(JpegColour::Grey) => 1,
            _ => 3,
        }
    }
    fn lossy_method(self) -> Option<&'static str> {
        match self {
            FrameKind::Jpeg(_) => Some("ISO_10918_1"),
            FrameKind::J2k(_) => Some("ISO_15444_1"),
            FrameKind::Native => None,
        }
    }
}

/// Convert `slide` into a DICOM WSI series in `outdir` (created if missing), calling `on_written`
/// after each instance; returns the instances written and notes on what was left out.
pub fn dicomize(
    slide: &Path,
    outdir: &Path,
    options: &DicomizeOptions,
    mut on_written: impl FnMut(&Written),
) -> Result<(Vec<Written>, Vec<String>), DicomizeError> {
    for (flag, uid) in [("--study-uid", &options.study_uid), ("--series-uid", &options.series_uid)] {
        if let Some(uid) = uid {
            check_uid(uid).map_err(|reason| DicomizeError::BadOption { flag, value: uid.clone(), reason })?;
        }
    }
    if let Some(a) = &options.accession {
        if a.chars().count() > 16 || a.contains('\\') || a.chars().any(char::is_control) {
            return Err(DicomizeError::BadOption {
                flag: "--accession",
                value: a.clone(),
                reason: "an accession number is at most 16 characters, without backslashes".into(),
            });
        }
    }
    let unsupported = |reason: String| DicomizeError::Unsupported { path: slide.display().to_string(), reason };
    // TIFF-based formats through the TIFF tile engine, whose stored tiles can be copied; others
    // (NDPI) through their own reader, decoded.
    let (tiff, source): (Option<Arc<TiffSlide>>, Arc<dyn SlideSource>) = match TiffSlide::open(slide) {
        Ok(t) => {
            let t = Arc::new(t);
            (Some(t.clone()), t)
        }
        Err(_) => (None, crate::slide::open_source(slide)?),
    };
    if source.format_name() == "dicom" {
        return Err(unsupported("it is already a DICOM slide".into()));
    }
    let props = source.properties();
    let (Some(mpp_x), Some(mpp_y)) = (props.mpp_x, props.mpp_y) else {
        return Err(unsupported(
            "the slide does not say its pixel size (mpp), which DICOM WSI requires (PixelSpacing is type 1)".into(),
        ));
    };
    let levels = source.levels().to_vec();
    let Some(level0) = levels.first() else { return Err(unsupported("no levels".into())) };
    if let Some((i, l)) = levels.iter().enumerate().find(|(_, l)| l.tile_width > 65535 || l.tile_height > 65535) {
        return Err(unsupported(format!(
            "level {i} has tiles of {}×{}; DICOM frames are at most 65535 pixels a side",
            l.tile_width, l.tile_height
        )));
    }

    std::fs::create_dir_all(outdir).map_err(io_err(outdir, "cannot create the output folder"))?;
    let mut names: Vec<String> = (0..levels.len()).map(|i| format!("level-{i}.dcm")).collect();
    names.extend(["thumbnail.dcm", "overview.dcm", "label.dcm"].map(String::from));
    for name in &names {
        let path = outdir.join(name);
        if path.exists() {
            return Err(DicomizeError::Io {
                path: path.display().to_string(),
                what: "already exists",
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "dicomize does not replace files; remove them or choose an empty folder",
                ),
            });
        }
    }

    if !crate::files::folder_writable(outdir) {
        return Err(DicomizeError::Io {
            path: outdir.display().to_string(),
            what: "cannot write in the output folder",
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        });
    }
    // None of the outputs existed: whatever of them exists when this returns early was made by
    // this run, a series cut short, and is removed.
    let mut cleanup = Cleanup { paths: names.iter().map(|n| outdir.join(n)).collect(), armed: true };

    let series = series_facts(slide, options, source.as_ref(), level0.width, level0.height);
    // Each instance is reported once it is durable under its name, while the next is written.
    let mut pending: Option<Pending> = None;
    let mut settle = |next: Option<Pending>, written: &mut Vec<Written>| -> Result<(), DicomizeError> {
        if let Some(previous) = std::mem::replace(&mut pending, next) {
            let w = previous.finish()?;
            on_written(&w);
            written.push(w);
        }
        Ok(())
    };
    let mut written = Vec::new();
    let mut notes = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let plan = plan_level(tiff.as_deref(), source.as_ref(), i)?;
        let image_type = if i == 0 {
            ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
        } else {
            ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"]
        };
        let geometry = Geometry {
            width: level.width,
            height: level.height,
            tile_w: level.tile_width,
            tile_h: level.tile_height,
            spacing_row_mm: mpp_y / 1000.0 * series.height0 as f64 / level.height as f64,
            spacing_col_mm: mpp_x / 1000.0 * series.width0 as f64 / level.width as f64,
        };
        let path = outdir.join(&names[i]);
        let result = write_instance(&path, &series, &image_type, i as u32 + 1, &geometry, plan, &mut |frames| {
            frames.level(tiff.as_deref(), source.as_ref(), i)
        });
        match result {
            Ok(mut p) => {
                p.written.level = Some(i);
                settle(Some(p), &mut written)?;
            }
            Err(e) => {
                let _ = settle(None, &mut written);
                return Err(e);
            }
        }
    }
    let associated = source.associated_names();
    let mut number = levels.len() as u32 + 1;
    for (name, image_type, file) in [
        ("thumbnail", ["DERIVED", "PRIMARY", "THUMBNAIL", "RESAMPLED"], "thumbnail.dcm"),
        ("macro", ["ORIGINAL", "PRIMARY", "OVERVIEW", "NONE"], "overview.dcm"),
        ("label", ["ORIGINAL", "PRIMARY", "LABEL", "NONE"], "label.dcm"),
    ] {
        if !associated.iter().any(|a| a == name) {
            continue;
        }
        if name == "label" && !options.include_label {
            notes.push("label not written (it can carry patient identifiers; --include-label writes it)".into());
            continue;
        }
        let image = match source.read_associated(name) {
            Ok(i) => i,
            Err(e) => {
                notes.push(format!("{name} not written: {e}"));
                continue;
            }
        };
        let (w, h) = (image.width(), image.height());
        if w > 65535 || h > 65535 {
            notes.push(format!("{name} not written: {w}×{h} is larger than one JPEG frame can be"));
            continue;
        }
        // The thumbnail shows the scanned area. The overview shows the whole glass and the
        // label its label, of sizes no slide file states: nominal spacings from a 76 × 26 mm
        // slide (ISO 8037-1), its length across the overview's longer side, a 26 mm label.
        let (spacing_row_mm, spacing_col_mm) = match name {
            "thumbnail" => (
                mpp_y / 1000.0 * series.height0 as f64 / f64::from(h),
                mpp_x / 1000.0 * series.width0 as f64 / f64::from(w),
            ),
            "macro" => (76.0 / f64::from(w.max(h)), 76.0 / f64::from(w.max(h))),
            _ => (26.0 / f64::from(w.max(h)), 26.0 / f64::from(w.max(h))),
        };
        let geometry = Geometry {
            width: u64::from(w),
            height: u64::from(h),
            tile_w: w,
            tile_h: h,
            spacing_row_mm,
            spacing_col_mm,
        };
        let kind = FrameKind::Jpeg(JpegColour::Ybr422);
        let plan = LevelPlan { kind, source_lossy: true, origin: PixelOrigin::ReEncoded };
        let path = outdir.join(file);
        let rgba = image.into_raw();
        let result = write_instance(&path, &series, &image_type, number, &geometry, plan, &mut |frames| {
            let frame = encode_jpeg(&rgba, w, h, JpegColour::Ybr422).map_err(|e| e.to_string())?;
            frames.push(frame)
        });
        number += 1;
        match result {
            Ok(p) => settle(Some(p), &mut written)?,
            Err(e) => {
                let _ = settle(None, &mut written);
                return Err(e);
            }
        }
    }
    settle(None, &mut written)?;
    cleanup.armed = false;
    Ok((written, notes))
}

/// Removes the files of a conversion that did not complete.
struct Cleanup {
    paths: Vec<PathBuf>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.armed {
            for path in &self.paths {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn series_facts(
    slide: &Path,
    options: &DicomizeOptions,
    source: &dyn SlideSource,
    width0: u64,
    height0: u64,
) -> Series {
    let props = source.properties();
    let value = |key: &str| props.values.get(key).map(|v| clean_text(v, 64)).filter(|v| !v.is_empty());
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let da = |t: time::OffsetDateTime| format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day());
    let tm = |t: time::OffsetDateTime| format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second());
    // The scan's date: TIFF DateTime "YYYY:MM:DD HH:MM:SS", else Aperio's Date (MM/DD/YY) and Time.
    let scanned = props.values.get("tiff.DateTime").and_then(|d| {
        let digits: String = d.chars().filter(char::is_ascii_digit).collect();
        (digits.len() == 14).then(|| (digits[..8].to_string(), digits[8..].to_string()))
    });
    let scanned = scanned.or_else(|| {
        let date = props.values.get("aperio.Date")?;
        let time = props.values.get("aperio.Time")?;
        let d: Vec<&str> = date.split('/').collect();
        let t: String = time.chars().filter(char::is_ascii_digit).collect();
        if d.len() != 3 || t.len() != 6 || !d.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        Some((format!("20{}{}{}", d[2], d[0], d[1]), t))
    });
    let (study_date, study_time) = scanned.clone().unwrap_or_default();
    let acquisition = match &scanned {
        Some((d, t)) => format!("{d}{t}"),
        None => format!("{}{}", da(now), tm(now)),
    };
    let container = slide
        .file_stem()
        .map(|s| clean_text(&s.to_string_lossy(), 64))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let vendor_maker = match props.vendor.as_str() {
        "aperio" => Some("Aperio"),
        "hamamatsu" => Some("Hamamatsu"),
        "philips" => Some("Philips"),
        "leica" => Some("Leica"),
        "ventana" => Some("Ventana"),
        _ => None,
    };
    Series {
        study_uid: options.study_uid.clone().unwrap_or_else(new_uid),
        series_uid: options.series_uid.clone().unwrap_or_else(new_uid),
        frame_of_reference_uid: new_uid(),
        dimension_uid: new_uid(),
        specimen_uid: new_uid(),
        container,
        accession: options.accession.clone().unwrap_or_default(),
        content_date: da(now),
        content_time: tm(now),
        acquisition,
        study_date,
        study_time,
        manufacturer: value("tiff.Make").or_else(|| vendor_maker.map(String::from)).unwrap_or_else(|| "unknown".into()),
        model: value("tiff.Model").unwrap_or_else(|| "unknown".into()),
        serial: value("aperio.ScanScope ID").unwrap_or_else(|| "unknown".into()),
        software: value("tiff.Software").unwrap_or_else(|| "unknown".into()),
        objective_power: props.objective_power,
        extended_offset_table: options.extended_offset_table,
        width0,
        height0,
    }
}

/// An instance's size and spacing.
struct Geometry {
    width: u64,
    height: u64,
    tile_w: u32,
    tile_h: u32,
    /// PixelSpacing: mm between rows, between columns.
    spacing_row_mm: f64,
    spacing_col_mm: f64,
}

impl Geometry {
    fn across(&self) -> u64 {
        self.width.div_ceil(u64::from(self.tile_w))
    }
    fn down(&self) -> u64 {
        self.height.div_ceil(u64::from(self.tile_h))
    }
    fn frames(&self) -> u64 {
        self.across() * self.down()
    }
}

/// How a level is written.
#[derive(Clone, Copy, Debug)]
struct LevelPlan {
    kind: FrameKind,
    /// The source's pixels went through lossy compression.
    source_lossy: bool,
    origin: PixelOrigin,
}

/// Decide how level `i` is written: copied when its tiles are JPEG baseline or Aperio JPEG 2000
/// that the TIFF engine hands over as single chunks; else decoded.
fn plan_level(tiff: Option<&TiffSlide>, source: &dyn SlideSource, i: usize) -> Result<LevelPlan, DicomizeError> {
    let info = &source.levels()[i];
    let source_lossy = matches!(info.compression, Compression::Jpeg | Compression::Jpeg2000);
    let native_bytes =
        info.tiles_across() * info.tiles_down() * u64::from(info.tile_width) * u64::from(info.tile_height) * 3;
    let decoded = if source_lossy || native_bytes > MAX_NATIVE_BYTES {
        LevelPlan { kind: FrameKind::Jpeg(JpegColour::Ybr422), source_lossy, origin: PixelOrigin::ReEncoded }
    } else {
        LevelPlan { kind: FrameKind::Native, source_lossy, origin: PixelOrigin::Uncompressed }
    };
    let Some(tiff) = tiff else { return Ok(decoded) };
    if !tiff.raw_tiles_available(i) || info.tile_width > 65535 || info.tile_height > 65535 {
        return Ok(decoded);
    }
    // The first tile stored tells the colour model and whether the frames are baseline.
    let first = (0..info.tiles_down())
        .flat_map(|row| (0..info.tiles_across()).map(move |col| (col, row)))
        .take(64)
        .find_map(|(col, row)| tiff.read_raw_tile(i, col, row).ok().flatten());
    let Some(raw) = first else { return Ok(decoded) };
    let copied = |kind| LevelPlan { kind, source_lossy: true, origin: PixelOrigin::Copied };
    match raw.format.compression {
        Compression::Jpeg => {
            let Ok(stream) = crate::tiles::codec::with_tables(raw.format.jpeg_tables.as_deref(), &raw.data) else {
                return Ok(decoded);
            };
            let Some(header) = jpeg_header(&stream) else { return Ok(decoded) };
            if header.sof != 0xC0 {
                return Ok(decoded);
            }
            let colour = match header.components.as_slice() {
                [_] => JpegColour::Grey,
                [_, _, _] if raw.format.photometric == Photometric::Rgb || header.adobe_transform == Some(0) => {
                    JpegColour::Rgb
                }
                // 4:4:4 too: the WSI IOD allows no YBR_FULL (C.8.12.4.1.5), and a JPEG decoder
                // takes the sampling from the SOF, not from the photometric interpretation.
                [_, _, _] => JpegColour::Ybr422,
                _ => return Ok(decoded),
            };
            Ok(copied(FrameKind::Jpeg(colour)))
        }
        Compression::Jpeg2000 => {
            let Some(mct) = j2k_transform(&raw.data) else { return Ok(decoded) };
            let photometric = match (mct, raw.format.photometric) {
                (Some(true), _) => "YBR_ICT",
                (Some(false), _) => "YBR_RCT",
                // Aperio 33003: Y, Cb, Cr without the codestream's transform, which would be
                // YBR_FULL, a value the WSI IOD does not allow (C.8.12.4.1.5): decoded instead.
                (None, Photometric::YCbCr) => return Ok(decoded),
                (None, _) => "RGB",
            };
            Ok(copied(FrameKind::J2k(photometric)))
        }
        _ => Ok(decoded),
    }
}

/// What the JPEG stream's headers say.
struct JpegHeader {
    /// The SOF marker (0xC0 baseline).
    sof: u8,
    width: u16,
    height: u16,
    /// (id, horizontal, vertical sampling) of each component.
    components: Vec<(u8, u8, u8)>,
    /// The Adobe APP14 marker's transform flag.
    adobe_transform: Option<u8>,
    /// Where a JFIF APP0 segment is (start, length with marker).
    jfif: Option<(usize, usize)>,
}

/// Read a JPEG stream's markers up to the first SOS; `None` when it is not one.
fn jpeg_header(data: &[u8]) -> Option<JpegHeader> {
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut header =
        JpegHeader { sof: 0, width: 0, height: 0, components: Vec::new(), adobe_transform: None, jfif: None };
    let mut at = 2;
    loop {
        while *data.get(at)? == 0xFF && *data.get(at + 1)? == 0xFF {
            at += 1; // fill bytes
        }
        if *data.get(at)? != 0xFF {
            return None;
        }
        let marker = *data.get(at + 1)?;
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            at += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*data.get(at + 2)?, *data.get(at + 3)?]));
        let body = data.get(at + 4..at + 2 + len)?;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                header.sof = marker;
                header.height = u16::from_be_bytes([*body.get(1)?, *body.get(2)?]);
                header.width = u16::from_be_bytes([*body.get(3)?, *body.get(4)?]);
                let n = usize::from(*body.get(5)?);
                for c in 0..n {
                    let comp = body.get(6 + c * 3..9 + c * 3)?;
                    header.components.push((comp[0], comp[1] >> 4, comp[1] & 15));
                }
            }
            0xEE if body.starts_with(b"Adobe") => header.adobe_transform = body.get(11).copied(),
            0xE0 if body.starts_with(b"JFIF\0") => header.jfif = Some((at, len + 2)),
            _ => {}
        }
        at += 2 + len;
    }
    (header.sof != 0).then_some(header)
}

/// The Adobe APP14 segment saying "no colour transform" (RGB).
const ADOBE_RGB: [u8; 16] = [0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0, 0, 0, 0, 0];

/// Make an RGB JPEG stream say so: no JFIF APP0 (which means YCbCr), an Adobe APP14 with
/// transform 0 after SOI.
fn mark_rgb(stream: Vec<u8>, header: &JpegHeader) -> Vec<u8> {
    if header.adobe_transform == Some(0) && header.jfif.is_none() {
        return stream;
    }
    let mut out = Vec::with_capacity(stream.len() + ADOBE_RGB.len());
    out.extend_from_slice(&stream[..2]);
    if header.adobe_transform.is_none() {
        out.extend_from_slice(&ADOBE_RGB);
    }
    match header.jfif {
        Some((at, len)) => {
            out.extend_from_slice(&stream[2..at]);
            out.extend_from_slice(&stream[at + len..]);
        }
        None => out.extend_from_slice(&stream[2..]),
    }
    out
}

/// From a JPEG 2000 codestream's COD marker: whether the multiple component transform is used,
/// and then whether it is the irreversible one (9/7 wavelet: ICT) — `Some(None)`: no transform.
fn j2k_transform(data: &[u8]) -> Option<Option<bool>> {
    if data.get(..2)? != [0xFF, 0x4F] {
        return None;
    }
    let mut at = 2;
    loop {
        let marker = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
        let len = usize::from(u16::from_be_bytes([*data.get(at + 2)?, *data.get(at + 3)?]));
        if marker == 0xFF52 {
            // COD: Lcod, Scod, SGcod (progression, layers ×2, MCT), SPcod (levels, cb w, cb h, style, transform).
            let mct = *data.get(at + 8)?;
            let irreversible = *data.get(at + 13)? == 0;
            return Some((mct == 1).then_some(irreversible));
        }
        if marker == 0xFF90 || marker == 0xFF93 || len < 2 {
            return None;
        }
        at += 2 + len;
    }
}

/// Encode RGBA pixels as a JPEG frame of the given colour model.
fn encode_jpeg(
    rgba: &[u8],
    width: u32,
    height: u32,
    colour: JpegColour,
) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, JPEG_QUALITY);
    let (w, h) = (width as u16, height as u16);
    match colour {
        JpegColour::Ybr422 => {
            enc.set_sampling_factor(SamplingFactor::R_4_2_2);
            enc.encode(rgba, w, h, ColorType::Rgba)?;
        }
        JpegColour::Rgb => {
            // Declared YCbCr so that the samples are stored untransformed; marked RGB below.
            enc.set_sampling_factor(SamplingFactor::F_1_1);
            let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            enc.encode(&rgb, w, h, ColorType::Ycbcr)?;
        }
        JpegColour::Grey => {
            let grey: Vec<u8> = rgba.chunks_exact(4).map(|p| p[0]).collect();
            enc.encode(&grey, w, h, ColorType::Luma)?;
        }
    }
    if colour == JpegColour::Rgb {
        if let Some(header) = jpeg_header(&out) {
            return Ok(mark_rgb(out, &header));
        }
    }
    Ok(out)
}

/// The frames of one instance as they are written, with their lengths and offsets.
struct FrameSink<'a> {
    out: &'a mut Counting<BufWriter<File>>,
    encapsulated: bool,
    /// Offsets from the first frame item, and lengths, of the frames so far (encapsulated).
    offsets: Vec<u64>,
    lengths: Vec<u64>,
    /// First frame item's position.
    first_at: u64,
    frame_bytes: u64,
    re_encoded: u64,
    expected: u64,
    plan: LevelPlan,
    tile: (u32, u32),
    /// Bytes written since the last flush was started, and that flush.
    unflushed: u64,
    flushing: Option<std::thread::JoinHandle<()>>,
}

/// Bytes after which the frames written so far are flushed in the background: the disk works
/// while frames are still copied, instead of all at the end (a streaming copy, as `cp` and a
/// later `sync` would be, not slower).
const FLUSH_EVERY: u64 = 32 << 20;

impl FrameSink<'_> {
    /// Start flushing what is in the page cache, on a thread of its own, when enough was written
    /// and no flush is still running. Best effort: the final fsync is what makes the file durable.
    fn flush_behind(&mut self) {
        if self.unflushed < FLUSH_EVERY || self.flushing.as_ref().is_some_and(|f| !f.is_finished()) {
            return;
        }
        self.unflushed = 0;
        if let Ok(file) = self.out.inner.get_ref().try_clone() {
            self.flushing = Some(std::thread::spawn(move || {
                let _ = file.sync_data();
            }));
        }
    }

    /// Write the next frame.
    fn push(&mut self, frame: Vec<u8>) -> Result<(), String> {
        if self.offsets.len() as u64 >= self.expected {
            return Err("more frames than the instance has".into());
        }
        let io = |e: io::Error| e.to_string();
        if self.encapsulated {
            let padded = frame.len() + (frame.len() & 1);
            if padded > u32::MAX as usize - 1 {
                return Err(format!("a frame of {} bytes", frame.len()));
            }
            self.offsets.push(self.out.pos - self.first_at);
            self.lengths.push(padded as u64);
            self.out.write_all(&item_header(0xE000, padded as u32)).map_err(io)?;
            self.out.write_all(&frame).map_err(io)?;
            if frame.len() & 1 == 1 {
                self.out.write_all(&[0]).map_err(io)?;
            }
        } else {
            self.offsets.push(0);
            self.out.write_all(&frame).map_err(io)?;
        }
        self.frame_bytes += frame.len() as u64;
        self.unflushed += frame.len() as u64;
        self.flush_behind();
        Ok(())
    }

    /// Write the frames of level `i`, copied or decoded as planned.
    fn level(&mut self, tiff: Option<&TiffSlide>, source: &dyn SlideSource, i: usize) -> Result<(), String> {
        let info = &source.levels()[i];
        let (across, down) = (info.tiles_across(), info.tiles_down());
        let tiles: Vec<(u64, u64)> = (0..down).flat_map(|row| (0..across).map(move |col| (col, row))).collect();
        match (self.plan.origin, tiff) {
            (PixelOrigin::Copied, Some(tiff)) => {
                let mut stored = Vec::new();
                for (k, &(col, row)) in tiles.iter().enumerate() {
                    if k % COPY_BATCH == 0 {
                        let batch = &tiles[k..(k + COPY_BATCH).min(tiles.len())];
                        stored = tiff.read_raw_tiles(i, batch).map_err(|e| e.to_string())?;
                        stored.reverse();
                    }
                    let raw = stored.pop().flatten();
                    let frame = match self.copy_frame(raw.as_ref()) {
                        Some(frame) => frame,
                        None => {
                            self.re_encoded += 1;
                            let tile = source.decode_tile(i, col, row).map_err(|e| e.to_string())?;
                            self.encode(&tile.rgba, tile.width, tile.height)?
                        }
                    };
                    self.push(frame)?;
                }
            }
            _ => {
                for batch in tiles.chunks(DECODE_BATCH) {
                    let frames: Vec<Result<Vec<u8>, String>> = batch
                        .par_iter()
                        .map(|&(col, row)| {
                            let tile = source.decode_tile(i, col, row).map_err(|e| e.to_string())?;
                            self.encode(&tile.rgba, tile.width, tile.height)
                        })
                        .collect();
                    for frame in frames {
                        self.push(frame?)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A stored tile as a frame, when it can be one as it is.
    fn copy_frame(&self, raw: Option<&crate::slide::RawTile>) -> Option<Vec<u8>> {
        let raw = raw?;
        let (tw, th) = self.tile;
        match self.plan.kind {
            FrameKind::Jpeg(colour) => {
                let stream = crate::tiles::codec::with_tables(raw.format.jpeg_tables.as_deref(), &raw.data).ok()?;
                let header = jpeg_header(&stream)?;
                let fits = header.sof == 0xC0
                    && (u32::from(header.width), u32::from(header.height)) == (tw, th)
                    && header.components.len() == usize::from(self.plan.kind.samples());
                if !fits {
                    return None;
                }
                Some(if colour == JpegColour::Rgb { mark_rgb(stream, &header) } else { stream })
            }
            FrameKind::J2k(_) => Some(raw.data.clone()),
            FrameKind::Native => None,
        }
    }

    /// Decoded pixels (RGBA) as a frame of this instance.
    fn encode(&self, rgba: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
        let (tw, th) = self.tile;
        // Tiles come as whole grid cells; anything else is cut or padded to the frame size.
        if rgba.len() < width as usize * height as usize * 4 {
            return Err(format!("a decoded tile of {} bytes for {width}×{height} pixels", rgba.len()));
        }
        let cell;
        let rgba = if (width, height) == (tw, th) {
            rgba
        } else {
            let mut out = vec![0u8; tw as usize * th as usize * 4];
            for y in 0..height.min(th) as usize {
                let run = width.min(tw) as usize * 4;
                out[y * tw as usize * 4..][..run].copy_from_slice(&rgba[y * width as usize * 4..][..run]);
            }
            cell = out;
            &cell
        };
        match self.plan.kind {
            FrameKind::Jpeg(colour) => encode_jpeg(rgba, tw, th, colour).map_err(|e| format!("JPEG encoder: {e}")),
            FrameKind::Native => Ok(rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()),
            FrameKind::J2k(_) => {
                Err("a JPEG 2000 tile that is not stored cannot be made (no JPEG 2000 encoder)".into())
            }
        }
    }
}

/// A writer that counts the bytes through it.
struct Counting<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An item (or delimiter) header: (FFFE,xxxx) and a 32-bit length.
fn item_header(element: u16, len: u32) -> [u8; 8] {
    let mut h = [0xFE, 0xFF, 0, 0, 0, 0, 0, 0];
    h[2..4].copy_from_slice(&element.to_le_bytes());
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h
}

/// An explicit VR little endian header of a long-form VR (OB, OV, …): 12 bytes.
fn long_header(tag: Tag, vr: &[u8; 2], len: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0..2].copy_from_slice(&tag.0.to_le_bytes());
    h[2..4].copy_from_slice(&tag.1.to_le_bytes());
    h[4..6].copy_from_slice(vr);
    h[8..12].copy_from_slice(&len.to_le_bytes());
    h
}

/// ImagedVolumeDepth and SliceThickness (type 1C for VOLUME and THUMBNAIL images): the section's
/// thickness is in no slide file wsiview reads, so a nominal 1 µm is written.
const NOMINAL_DEPTH_MM: f64 = 0.001;

/// Width of the LossyImageCompressionRatio value reserved before the frames and filled after.
const RATIO_WIDTH: usize = 16;

/// Write one instance to `path` (through a temporary file in the same folder), its frames
/// produced by `frames`.
#[allow(clippy::too_many_arguments)]
fn write_instance(
    path: &Path,
    series: &Series,
    image_type: &[&'static str; 4],
    instance_number: u32,
    geometry: &Geometry,
    plan: LevelPlan,
    frames: &mut dyn FnMut(&mut FrameSink) -> Result<(), String>,
) -> Result<Pending, DicomizeError> {
    let sop_uid = new_uid();
    let dataset = build_dataset(series, image_type, instance_number, geometry, plan, &sop_uid);
    let ts = plan.kind.transfer_syntax();
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(WSI_SOP_CLASS)
        .media_storage_sop_instance_uid(sop_uid.as_str())
        .transfer_syntax(ts)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION)
        .build()
        .map_err(|e| io_err(path, "cannot build the file meta group")(io::Error::other(e)))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(&temp).map_err(io_err(&temp, "cannot create"))?;
    let result = write_body(file, path, &meta, &dataset, geometry, plan, series.extended_offset_table, frames);
    let (file, frames_written, pixels, bytes) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    // Made durable and renamed on a thread of its own, while the next instance is written: the
    // disk flushes one file as the next fills the page cache.
    let (final_path, dir) = (path.to_path_buf(), dir.to_path_buf());
    let finishing = std::thread::spawn(move || {
        let finish = || -> io::Result<()> {
            file.sync_all()?;
            drop(file);
            std::fs::rename(&temp, &final_path)?;
            #[cfg(unix)]
            File::open(&dir)?.sync_all()?;
            Ok(())
        };
        finish().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            io_err(&final_path, "cannot write")(e)
        })
    });
    let written = Written {
        path: path.to_path_buf(),
        image_type: image_type[2],
        level: None,
        width: geometry.width,
        height: geometry.height,
        tile_width: geometry.tile_w,
        tile_height: geometry.tile_h,
        frames: frames_written,
        transfer_syntax: ts,
        photometric: plan.kind.photometric(),
        pixels,
        bytes,
    };
    Ok(Pending { written, finishing })
}

/// An instance whose bytes are all written, being flushed and renamed.
struct Pending {
    written: Written,
    finishing: std::thread::JoinHandle<Result<(), DicomizeError>>,
}

impl Pending {
    /// Wait until the file is durable under its name.
    fn finish(self) -> Result<Written, DicomizeError> {
        match self.finishing.join() {
            Ok(Ok(())) => Ok(self.written),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DicomizeError::Io {
                path: self.written.path.display().to_string(),
                what: "cannot write",
                source: io::Error::other("the thread flushing it stopped"),
            }),
        }
    }
}

/// Preamble, meta group, data set and frames; the offset table and ratio filled in after.
#[allow(clippy::too_many_arguments)]
fn write_body(
    file: File,
    path: &Path,
    meta: &dicom_object::FileMetaTable,
    dataset: &InMemDicomObject,
    geometry: &Geometry,
    plan: LevelPlan,
    always_extended: bool,
    frames: &mut dyn FnMut(&mut FrameSink) -> Result<(), String>,
) -> Result<(File, u64, PixelOrigin, u64), DicomizeError> {
    let werr = |e: io::Error| io_err(path, "cannot write")(e);
    let dataset_err = |e: io::Error| io_err(path, "cannot write the data set")(e);
    let mut out = Counting { inner: BufWriter::with_capacity(1 << 20, file), pos: 0 };
    out.write_all(&[0u8; 128]).map_err(werr)?;
    out.write_all(b"DICM").map_err(werr)?;
    meta.write(&mut out).map_err(|e| io_err(path, "cannot write the file meta group")(io::Error::other(e)))?;
    let ts = dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let encapsulated = plan.kind != FrameKind::Native;
    let lossy = plan.source_lossy || encapsulated;
    // The data set in two parts around LossyImageCompressionRatio, whose value is known only once
    // the frames are written.
    let ratio_tag = tags::LOSSY_IMAGE_COMPRESSION_RATIO;
    let (before, after): (Vec<_>, Vec<_>) = dataset.iter().cloned().partition(|e| e.tag() < ratio_tag);
    let write_part = |out: &mut Counting<BufWriter<File>>, elements: Vec<InMemElement>| {
        InMemDicomObject::from_element_iter(elements)
            .write_dataset_with_ts_cs(out, &ts, SpecificCharacterSet::ISO_IR_192)
            .map_err(io::Error::other)
    };
    write_part(&mut out, before).map_err(dataset_err)?;
    let mut ratio_at = None;
    if lossy {
        let mut h = [0u8; 8];
        h[0..2].copy_from_slice(&ratio_tag.0.to_le_bytes());
        h[2..4].copy_from_slice(&ratio_tag.1.to_le_bytes());
        h[4..6].copy_from_slice(b"DS");
        h[6..8].copy_from_slice(&(RATIO_WIDTH as u16).to_le_bytes());
        out.write_all(&h).map_err(werr)?;
        ratio_at = Some(out.pos);
        out.write_all(&[b' '; RATIO_WIDTH]).map_err(werr)?;
    }
    write_part(&mut out, after).map_err(dataset_err)?;
    let count = geometry.frames();
    // Where the extended table's offsets are, or the basic table's.
    let mut extended_at = None;
    let mut basic_at = None;
    // Compressed frames larger than 1.5 × the raw samples do not occur (JPEG at quality 100 on
    // noise stays below), so below this bound every offset fits in 32 bits.
    let raw = count * u64::from(geometry.tile_w) * u64::from(geometry.tile_h) * u64::from(plan.kind.samples());
    let extended = always_extended || raw + raw / 2 + count * 1024 >= u64::from(u32::MAX);
    if encapsulated && extended {
        let table_len = u32::try_from(count * 8).map_err(|_| werr(io::Error::other("too many frames")))?;
        extended_at = Some(out.pos + 12);
        out.write_all(&long_header(tags::EXTENDED_OFFSET_TABLE, b"OV", table_len)).map_err(werr)?;
        write_zeros(&mut out, u64::from(table_len)).map_err(werr)?;
        out.write_all(&long_header(tags::EXTENDED_OFFSET_TABLE_LENGTHS, b"OV", table_len)).map_err(werr)?;
        write_zeros(&mut out, u64::from(table_len)).map_err(werr)?;
        out.write_all(&long_header(tags::PIXEL_DATA, b"OB", u32::MAX)).map_err(werr)?;
        out.write_all(&item_header(0xE000, 0)).map_err(werr)?;
    } else if encapsulated {
        let table_len = u32::try_from(count * 4).map_err(|_| werr(io::Error::other("too many frames")))?;
        out.write_all(&long_header(tags::PIXEL_DATA, b"OB", u32::MAX)).map_err(werr)?;
        out.write_all(&item_header(0xE000, table_len)).map_err(werr)?;
        basic_at = Some(out.pos);
        write_zeros(&mut out, u64::from(table_len)).map_err(werr)?;
    } else {
        let bytes = count * u64::from(geometry.tile_w) * u64::from(geometry.tile_h) * 3;
        let len = u32::try_from(bytes + (bytes & 1)).map_err(|_| werr(io::Error::other("pixel data over 4 GiB")))?;
        out.write_all(&long_header(tags::PIXEL_DATA, b"OB", len)).map_err(werr)?;
    }
    let first_at = out.pos;
    let mut sink = FrameSink {
        out: &mut out,
        encapsulated,
        offsets: Vec::with_capacity(count as usize),
        lengths: Vec::with_capacity(count as usize),
        first_at,
        frame_bytes: 0,
        re_encoded: 0,
        expected: count,
        plan,
        tile: (geometry.tile_w, geometry.tile_h),
        unflushed: 0,
        flushing: None,
    };
    frames(&mut sink).map_err(|reason| DicomizeError::Io {
        path: path.display().to_string(),
        what: "cannot make the frames",
        source: io::Error::other(reason),
    })?;
    if sink.offsets.len() as u64 != count {
        return Err(werr(io::Error::other(format!("{} frames made, {count} needed", sink.offsets.len()))));
    }
    if let Some(f) = sink.flushing.take() {
        let _ = f.join();
    }
    let (offsets, lengths, frame_bytes, re_encoded) =
        (std::mem::take(&mut sink.offsets), std::mem::take(&mut sink.lengths), sink.frame_bytes, sink.re_encoded);
    if encapsulated {
        out.write_all(&item_header(0xE0DD, 0)).map_err(werr)?;
    } else if frame_bytes & 1 == 1 {
        out.write_all(&[0]).map_err(werr)?;
    }
    let bytes = out.pos;
    let mut file = out.inner.into_inner().map_err(|e| werr(e.into_error()))?;
    let mut patch = |at: u64, bytes: &[u8]| -> io::Result<()> {
        file.seek(SeekFrom::Start(at))?;
        file.write_all(bytes)
    };
    if let Some(at) = extended_at {
        let table: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        patch(at, &table).map_err(werr)?;
        let table: Vec<u8> = lengths.iter().flat_map(|o| o.to_le_bytes()).collect();
        patch(at + table.len() as u64 + 12, &table).map_err(werr)?;
    }
    if let Some(at) = basic_at {
        let table = offsets
            .iter()
            .map(|&o| u32::try_from(o).map(u32::to_le_bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| werr(io::Error::other("frames past the 4 GiB a basic offset table addresses")))?;
        patch(at, &table.concat()).map_err(werr)?;
    }
    if let Some(at) = ratio_at {
        let raw = count * u64::from(geometry.tile_w) * u64::from(geometry.tile_h) * u64::from(plan.kind.samples());
        let ratio = raw as f64 / frame_bytes.max(1) as f64;
        let text = format!("{:<width$}", format!("{ratio:.2}"), width = RATIO_WIDTH);
        patch(at, &text.as_bytes()[..RATIO_WIDTH]).map_err(werr)?;
    }
    let origin = match plan.origin {
        PixelOrigin::Copied if re_encoded > 0 => PixelOrigin::Mixed { re_encoded },
        o => o,
    };
    Ok((file, count, origin, bytes))
}

fn write_zeros(out: &mut impl Write, mut n: u64) -> io::Result<()> {
    let zeros = [0u8; 8192];
    while n > 0 {
        let k = n.min(zeros.len() as u64) as usize;
        out.write_all(&zeros[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, value.into()));
}

fn put_empty(obj: &mut InMemDicomObject, tag: Tag, vr: VR) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
}

fn put_strs(obj: &mut InMemDicomObject, tag: Tag, vr: VR, values: &[&str]) {
    let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
    obj.put(DataElement::new(tag, vr, PrimitiveValue::Strs(values.into())));
}

fn put_seq(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED)));
}

fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put(&mut item, tags::CODE_VALUE, VR::SH, value);
    put(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put(&mut item, tags::CODE_MEANING, VR::LO, meaning);
    item
}

/// A decimal string (DS: at most 16 characters).
fn ds(v: f64) -> String {
    for precision in (0..=12).rev() {
        let text = format!("{v:.precision$}");
        let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
        if text.len() <= 16 {
            return text;
        }
    }
    format!("{v:.3e}")
}

/// The data set of one instance, PixelData (and the offset tables) excepted.
fn build_dataset(
    s: &Series,
    image_type: &[&'static str; 4],
    instance_number: u32,
    g: &Geometry,
    plan: LevelPlan,
    sop_uid: &str,
) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let role = image_type[2];
    let label_visible = matches!(role, "LABEL" | "OVERVIEW");
    // SOP Common (C.12.1)
    put(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(&mut o, tags::SOP_CLASS_UID, VR::UI, WSI_SOP_CLASS);
    put(&mut o, tags::SOP_INSTANCE_UID, VR::UI, sop_uid);
    // Patient (C.7.1.1): type 2, empty.
    for (tag, vr) in [
        (tags::PATIENT_NAME, VR::PN),
        (tags::PATIENT_ID, VR::LO),
        (tags::PATIENT_BIRTH_DATE, VR::DA),
        (tags::PATIENT_SEX, VR::CS),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        (tags::STUDY_ID, VR::SH),
    ] {
        put_empty(&mut o, tag, vr);
    }
    // General Study (C.7.2.1)
    put(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, s.study_uid.as_str());
    put(&mut o, tags::STUDY_DATE, VR::DA, s.study_date.as_str());
    put(&mut o, tags::STUDY_TIME, VR::TM, s.study_time.as_str());
    put(&mut o, tags::ACCESSION_NUMBER, VR::SH, s.accession.as_str());
    // General Series, Whole Slide Microscopy Series (C.7.3.1, C.8.12.3)
    put(&mut o, tags::MODALITY, VR::CS, "SM");
    put(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, s.series_uid.as_str());
    put(&mut o, tags::SERIES_NUMBER, VR::IS, "1");
    // Frame of Reference (C.7.4.1): the slide's own coordinate system.
    put(&mut o, tags::FRAME_OF_REFERENCE_UID, VR::UI, s.frame_of_reference_uid.as_str());
    put(&mut o, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "SLIDE_CORNER");
    // General Equipment, Enhanced General Equipment (C.7.5.1, C.7.5.2)
    put(&mut o, tags::MANUFACTURER, VR::LO, s.manufacturer.as_str());
    put(&mut o, tags::MANUFACTURER_MODEL_NAME, VR::LO, s.model.as_str());
    put(&mut o, tags::DEVICE_SERIAL_NUMBER, VR::LO, s.serial.as_str());
    put(&mut o, tags::SOFTWARE_VERSIONS, VR::LO, s.software.as_str());
    // General Image, Multi-frame Functional Groups (C.7.6.1, C.7.6.16)
    put(&mut o, tags::INSTANCE_NUMBER, VR::IS, instance_number.to_string());
    put(&mut o, tags::CONTENT_DATE, VR::DA, s.content_date.as_str());
    put(&mut o, tags::CONTENT_TIME, VR::TM, s.content_time.as_str());
    put(&mut o, tags::NUMBER_OF_FRAMES, VR::IS, g.frames().to_string());
    put_strs(&mut o, tags::IMAGE_TYPE, VR::CS, image_type);
    put(&mut o, tags::BURNED_IN_ANNOTATION, VR::CS, if label_visible { "YES" } else { "NO" });
    // Image Pixel (C.7.6.3)
    let samples = plan.kind.samples();
    put(&mut o, tags::SAMPLES_PER_PIXEL, VR::US, samples);
    put(&mut o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, plan.kind.photometric());
    if samples > 1 {
        put(&mut o, tags::PLANAR_CONFIGURATION, VR::US, 0u16);
    }
    put(&mut o, tags::ROWS, VR::US, g.tile_h as u16);
    put(&mut o, tags::COLUMNS, VR::US, g.tile_w as u16);
    put(&mut o, tags::BITS_ALLOCATED, VR::US, 8u16);
    put(&mut o, tags::BITS_STORED, VR::US, 8u16);
    put(&mut o, tags::HIGH_BIT, VR::US, 7u16);
    put(&mut o, tags::PIXEL_REPRESENTATION, VR::US, 0u16);
    if samples == 1 {
        put(&mut o, tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY");
    }
    let encapsulated = plan.kind != FrameKind::Native;
    if plan.source_lossy || encapsulated {
        put(&mut o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "01");
        // The ratio (0028,2112) is written by the caller after the frames.
        if let Some(method) = plan.kind.lossy_method().or(Some("ISO_10918_1")) {
            put(&mut o, tags::LOSSY_IMAGE_COMPRESSION_METHOD, VR::CS, method);
        }
    } else {
        put(&mut o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    }
    // Multi-frame Dimension (C.7.6.17): tiles addressed by their position in the total matrix.
    let mut organisation = InMemDicomObject::new_empty();
    put(&mut organisation, tags::DIMENSION_ORGANIZATION_UID, VR::UI, s.dimension_uid.as_str());
    put_seq(&mut o, tags::DIMENSION_ORGANIZATION_SEQUENCE, vec![organisation]);
    let index = |pointer: Tag| {
        let mut item = InMemDicomObject::new_empty();
        put(&mut item, tags::DIMENSION_ORGANIZATION_UID, VR::UI, s.dimension_uid.as_str());
        item.put(DataElement::new(tags::DIMENSION_INDEX_POINTER, VR::AT, PrimitiveValue::Tags(vec![pointer].into())));
        item.put(DataElement::new(
            tags::FUNCTIONAL_GROUP_POINTER,
            VR::AT,
            PrimitiveValue::Tags(vec![tags::PLANE_POSITION_SLIDE_SEQUENCE].into()),
        ));
        item
    };
    put_seq(
        &mut o,
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            index(tags::COLUMN_POSITION_IN_TOTAL_IMAGE_PIXEL_MATRIX),
            index(tags::ROW_POSITION_IN_TOTAL_IMAGE_PIXEL_MATRIX),
        ],
    );
    put(&mut o, tags::DIMENSION_ORGANIZATION_TYPE, VR::CS, "TILED_FULL");
    // Acquisition Context (C.7.6.14): nothing known.
    put_seq(&mut o, tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new());
    // Specimen (C.7.6.22): the slide, identified by its file name.
    put(&mut o, tags::CONTAINER_IDENTIFIER, VR::LO, s.container.as_str());
    put_seq(&mut o, tags::ISSUER_OF_THE_CONTAINER_IDENTIFIER_SEQUENCE, Vec::new());
    put_seq(&mut o, tags::CONTAINER_TYPE_CODE_SEQUENCE, vec![code("433466003", "SCT", "Microscope slide")]);
    let mut specimen = InMemDicomObject::new_empty();
    put(&mut specimen, tags::SPECIMEN_IDENTIFIER, VR::LO, s.container.as_str());
    put(&mut specimen, tags::SPECIMEN_UID, VR::UI, s.specimen_uid.as_str());
    put_seq(&mut specimen, tags::ISSUER_OF_THE_SPECIMEN_IDENTIFIER_SEQUENCE, Vec::new());
    put_seq(&mut specimen, tags::SPECIMEN_PREPARATION_SEQUENCE, Vec::new());
    put_seq(&mut o, tags::SPECIMEN_DESCRIPTION_SEQUENCE, vec![specimen]);
    // Whole Slide Microscopy Image (C.8.12.4)
    put(&mut o, tags::ACQUISITION_DATE_TIME, VR::DT, s.acquisition.as_str());
    put(&mut o, tags::VOLUMETRIC_PROPERTIES, VR::CS, "VOLUME");
    put(&mut o, tags::SPECIMEN_LABEL_IN_IMAGE, VR::CS, if label_visible { "YES" } else { "NO" });
    put(&mut o, tags::FOCUS_METHOD, VR::CS, "AUTO");
    put(&mut o, tags::EXTENDED_DEPTH_OF_FIELD, VR::CS, "NO");
    let width_mm = g.width as f64 * g.spacing_col_mm;
    let height_mm = g.height as f64 * g.spacing_row_mm;
    put(&mut o, tags::IMAGED_VOLUME_WIDTH, VR::FL, width_mm as f32);
    put(&mut o, tags::IMAGED_VOLUME_HEIGHT, VR::FL, height_mm as f32);
    put(&mut o, tags::IMAGED_VOLUME_DEPTH, VR::FL, NOMINAL_DEPTH_MM as f32);
    put(&mut o, tags::TOTAL_PIXEL_MATRIX_COLUMNS, VR::UL, g.width as u32);
    put(&mut o, tags::TOTAL_PIXEL_MATRIX_ROWS, VR::UL, g.height as u32);
    put(&mut o, tags::TOTAL_PIXEL_MATRIX_FOCAL_PLANES, VR::UL, 1u32);
    let mut origin = InMemDicomObject::new_empty();
    put(&mut origin, tags::X_OFFSET_IN_SLIDE_COORDINATE_SYSTEM, VR::DS, "0");
    put(&mut origin, tags::Y_OFFSET_IN_SLIDE_COORDINATE_SYSTEM, VR::DS, "0");
    put_seq(&mut o, tags::TOTAL_PIXEL_MATRIX_ORIGIN_SEQUENCE, vec![origin]);
    put_strs(&mut o, tags::IMAGE_ORIENTATION_SLIDE, VR::DS, &["0", "-1", "0", "-1", "0", "0"]);
    // Optical Path (C.8.12.5)
    let mut path = InMemDicomObject::new_empty();
    put_seq(&mut path, tags::ILLUMINATION_TYPE_CODE_SEQUENCE, vec![code("111744", "DCM", "Brightfield illumination")]);
    put(&mut path, tags::OPTICAL_PATH_IDENTIFIER, VR::SH, "1");
    put(&mut path, tags::OPTICAL_PATH_DESCRIPTION, VR::ST, "Brightfield");
    put_seq(&mut path, tags::ILLUMINATION_COLOR_CODE_SEQUENCE, vec![code("414298005", "SCT", "Full Spectrum")]);
    if let Some(power) = s.objective_power {
        put(&mut path, tags::OBJECTIVE_LENS_POWER, VR::DS, ds(power));
    }
    if samples == 3 {
        path.put(DataElement::new(tags::ICC_PROFILE, VR::OB, PrimitiveValue::U8(srgb_icc().into())));
    }
    put_seq(&mut o, tags::OPTICAL_PATH_SEQUENCE, vec![path]);
    put(&mut o, tags::NUMBER_OF_OPTICAL_PATHS, VR::UL, 1u32);
    // Slide Label (C.8.12.8): only the LABEL instance, and nothing read from the label.
    if role == "LABEL" {
        put_empty(&mut o, tags::LABEL_TEXT, VR::UT);
        put_empty(&mut o, tags::BARCODE_VALUE, VR::LT);
    }
    // Shared Functional Groups (C.7.6.16, A.32.8.3): pixel measures, frame type, optical path.
    let mut shared = InMemDicomObject::new_empty();
    let mut measures = InMemDicomObject::new_empty();
    put(&mut measures, tags::SLICE_THICKNESS, VR::DS, ds(NOMINAL_DEPTH_MM));
    put_strs(
        &mut measures,
        tags::PIXEL_SPACING,
        VR::DS,
        &[ds(g.spacing_row_mm).as_str(), ds(g.spacing_col_mm).as_str()],
    );
    put_seq(&mut shared, tags::PIXEL_MEASURES_SEQUENCE, vec![measures]);
    let mut frame_type = InMemDicomObject::new_empty();
    put_strs(&mut frame_type, tags::FRAME_TYPE, VR::CS, image_type);
    put_seq(&mut shared, tags::WHOLE_SLIDE_MICROSCOPY_IMAGE_FRAME_TYPE_SEQUENCE, vec![frame_type]);
    let mut path_id = InMemDicomObject::new_empty();
    put(&mut path_id, tags::OPTICAL_PATH_IDENTIFIER, VR::SH, "1");
    put_seq(&mut shared, tags::OPTICAL_PATH_IDENTIFICATION_SEQUENCE, vec![path_id]);
    put_seq(&mut o, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]);
    o
}

/// An sRGB ICC profile (version 2.1, display class): D50-adapted sRGB primaries and the sRGB
/// tone curve as a 1024-entry table, written here rather than copied from a file.
pub fn srgb_icc() -> Vec<u8> {
    fn s15(v: f64) -> [u8; 4] {
        ((v * 65536.0).round() as i32).to_be_bytes()
    }
    fn xyz(x: f64, y: f64, z: f64) -> Vec<u8> {
        let mut t = b"XYZ \0\0\0\0".to_vec();
        for v in [x, y, z] {
            t.extend_from_slice(&s15(v));
        }
        t
    }
    let mut desc = b"desc\0\0\0\0".to_vec();
    let text = b"sRGB (wsiview)\0";
    desc.extend_from_slice(&(text.len() as u32).to_be_bytes());
    desc.extend_from_slice(text);
    desc.extend_from_slice(&[0u8; 4 + 4 + 2 + 1 + 67]); // no Unicode or ScriptCode text
    let mut cprt = b"text\0\0\0\0".to_vec();
    cprt.extend_from_slice(b"No copyright, use freely\0");
    let mut curve = b"curv\0\0\0\0".to_vec();
    curve.extend_from_slice(&1024u32.to_be_bytes());
    for i in 0..1024 {
        let v = f64::from(i) / 1023.0;
        let linear = if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) };
        curve.extend_from_slice(&((linear * 65535.0).round() as u16).to_be_bytes());
    }
    let elements: Vec<(&[u8; 4], Vec<u8>)> = vec![
        (b"desc", desc),
        (b"cprt", cprt),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
    ];
    // gTRC and bTRC share rTRC's data.
    let count = elements.len() + 2;
    let mut data_at = 128 + 4 + count * 12;
    let mut table = Vec::new();
    let mut data = Vec::new();
    let mut trc_at = (0, 0);
    for (sig, bytes) in &elements {
        table.extend_from_slice(*sig);
        table.extend_from_slice(&(data_at as u32).to_be_bytes());
        table.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        if *sig == b"rTRC" {
            trc_at = (data_at, bytes.len());
        }
        data.extend_from_slice(bytes);
        let pad = (4 - bytes.len() % 4) % 4;
        data.extend(std::iter::repeat_n(0u8, pad));
        data_at += bytes.len() + pad;
    }
    for sig in [b"gTRC", b"bTRC"] {
        table.extend_from_slice(sig);
        table.extend_from_slice(&(trc_at.0 as u32).to_be_bytes());
        table.extend_from_slice(&(trc_at.1 as u32).to_be_bytes());
    }
    let size = 128 + 4 + table.len() + data.len();
    let mut icc = Vec::with_capacity(size);
    icc.extend_from_slice(&(size as u32).to_be_bytes());
    icc.extend_from_slice(b"\0\0\0\0"); // preferred CMM: none
    icc.extend_from_slice(&[2, 0x10, 0, 0]); // version 2.1
    icc.extend_from_slice(b"mntrRGB XYZ ");
    icc.extend_from_slice(&[0x07, 0xE6, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]); // 2022-01-01
    icc.extend_from_slice(b"acsp");
    icc.extend_from_slice(&[0u8; 4 + 4 + 4 + 4 + 8 + 4]); // platform, flags, maker, model, attributes, intent
    icc.extend_from_slice(&s15(0.9642));
    icc.extend_from_slice(&s15(1.0));
    icc.extend_from_slice(&s15(0.8249));
    icc.extend_from_slice(&[0u8; 4 + 44]); // creator, reserved
    icc.extend_from_slice(&(count as u32).to_be_bytes());
    icc.extend_from_slice(&table);
    icc.extend_from_slice(&data);
    debug_assert_eq!(icc.len(), size);
    if icc.len() % 2 == 1 {
        icc.push(0);
    }
    icc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_checked_and_generated_valid() {
        assert!(check_uid("1.2.840.10008.5.1.4.1.1.77.1.6").is_ok());
        assert!(check_uid("1.02.3").is_err());
        assert!(check_uid("1..3").is_err());
        assert!(check_uid("1.2.a").is_err());
        assert!(check_uid(&"1.".repeat(40)).is_err());
        for _ in 0..20 {
            let uid = new_uid();
            assert!(check_uid(&uid).is_ok(), "{uid}");
        }
    }

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(0.00025), "0.00025");
        assert_eq!(ds(20.0), "20");
        assert!(ds(0.000_123_456_789_123_45).len() <= 16);
        assert!(ds(123_456_789.123_457).len() <= 16);
    }

    #[test]
    fn rgb_frames_say_so_and_lose_jfif() {
        let rgba = vec![200u8; 16 * 16 * 4];
        let frame = encode_jpeg(&rgba, 16, 16, JpegColour::Rgb).expect("encodes");
        let header = jpeg_header(&frame).expect("parses");
        assert_eq!(header.adobe_transform, Some(0));
        assert!(header.jfif.is_none());
        assert_eq!((header.width, header.height, header.sof), (16, 16, 0xC0));
        let ybr = encode_jpeg(&rgba, 16, 16, JpegColour::Ybr422).expect("encodes");
        let header = jpeg_header(&ybr).expect("parses");
        assert_eq!(header.components[0].1, 2, "4:2:2 luma sampling");
    }

    #[test]
    fn icc_profile_is_well_formed() {
        let icc = srgb_icc();
        let size = u32::from_be_bytes([icc[0], icc[1], icc[2], icc[3]]) as usize;
        assert!(size == icc.len() || size + 1 == icc.len());
        assert_eq!(&icc[36..40], b"acsp");
    }
}
