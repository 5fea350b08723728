//! One DICOM instance (one file): its data set up to PixelData, read with dicom-object from the
//! bytes [`parse::walk_to`] found, reduced to what the slide needs (role, sizes, pixel format,
//! frame table, sparse positions, properties); the data set itself is dropped.

use std::path::Path;
use std::sync::Arc;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header as _;
use dicom_core::value::Value;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::file::ReadPreamble;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use super::parse::{self, FrameTable, IMPLICIT_VR_LE, PIXEL_DATA};
use super::web::WebFrames;
use crate::error::{printable, ErrorKind};
use crate::limits::Limits;
use crate::tiff::{ByteSource, FileSource};
use crate::tiles::codec::{ChunkFormat, Compression, Photometric};

/// VL Whole Slide Microscopy Image Storage.
pub(super) const WSI_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.77.1.6";

/// What an instance is for, from ImageType value 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Level,
    Associated(&'static str),
    Other,
}

/// Where an instance's frames come from.
pub(super) enum Pixels {
    /// A file: frame `j` is where its frame table says.
    File { source: Arc<dyn ByteSource>, table: FrameTable },
    /// A DICOMweb server: instance `index` of the series' fetcher. `module` is the image pixel
    /// module, to decode frames the server sends in another transfer syntax than expected.
    Web { frames: Arc<WebFrames>, index: usize, module: PixelModule },
}

/// The image pixel module's facts that decoding needs.
#[derive(Clone, Debug)]
pub(super) struct PixelModule {
    photometric: String,
    samples: i64,
    bits: i64,
    planar: bool,
}

/// Where an instance's pixel data is, for [`Instance::from_dataset`].
pub(super) enum PixelsAt {
    File(Arc<dyn ByteSource>, parse::Header),
    Web(Arc<WebFrames>, usize),
}

/// One instance, ready to serve frames.
pub(super) struct Instance {
    /// The file name (or, from a server, the SOPInstanceUID), for messages.
    pub name: String,
    pub pixels: Pixels,
    pub sop_uid: String,
    /// Instances of one concatenation share this (ConcatenationUID, else the concatenation
    /// source's SOPInstanceUID, else the instance's own).
    pub concat_key: String,
    /// ConcatenationFrameOffsetNumber: frames of the whole before this part's first.
    pub concat_offset: u64,
    pub role: Role,
    /// How frames are decoded (for a server's: in the series' transfer syntax).
    pub format: ChunkFormat,
    /// Frame size (Columns × Rows).
    pub tile_w: u32,
    pub tile_h: u32,
    /// TotalPixelMatrixColumns × TotalPixelMatrixRows.
    pub width: u64,
    pub height: u64,
    /// NumberOfFrames.
    pub frames: u64,
    /// TILED_SPARSE: each frame's tile (column, row), `None` for a frame of another focal plane
    /// or optical path, or off the tile grid. `None` for TILED_FULL (frames row-major).
    pub positions: Option<Vec<Option<(u64, u64)>>>,
    /// Sparse frames whose position is not on the tile grid.
    pub unaligned: u64,
    /// PixelSpacing (mm; row, column) of the shared functional groups, as written.
    pub pixel_spacing: Option<String>,
    /// ObjectiveLensPower of the first optical path, as written.
    pub objective: Option<String>,
    /// `dicom.*` properties (device, series and image facts; nothing about the patient).
    pub properties: Vec<(String, String)>,
    /// The caps the instance was opened with (frames are read within `tile_bytes`).
    pub limits: Limits,
}

/// Data-set encoding from the transfer syntax: explicit VR or not; big endian and deflated
/// data sets are refused.
fn dataset_explicit(ts: &str) -> Result<bool, ErrorKind> {
    match ts {
        IMPLICIT_VR_LE => Ok(false),
        "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99" => Err(unsupported_syntax(ts)),
        _ => Ok(true),
    }
}

fn unsupported_syntax(ts: &str) -> ErrorKind {
    let name = match ts {
        "1.2.840.10008.1.2.2" => " (explicit VR big endian)",
        "1.2.840.10008.1.2.1.99" => " (deflated explicit VR little endian)",
        "1.2.840.10008.1.2.4.51" => " (JPEG extended 12-bit)",
        "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => " (JPEG lossless)",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => " (JPEG-LS)",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            " (High-Throughput JPEG 2000)"
        }
        "1.2.840.10008.1.2.5" => " (RLE lossless)",
        "1.2.840.10008.1.2.4.110" | "1.2.840.10008.1.2.4.111" => " (JPEG XL)",
        _ => "",
    };
    ErrorKind::UnsupportedDicom(format!(
        "transfer syntax {}{name}; wsiview reads JPEG baseline (1.2.840.10008.1.2.4.50), JPEG 2000 (.4.90, .4.91) \
         and uncompressed little endian",
        printable(ts)
    ))
}

/// ImageType value 3 (VOLUME, LABEL, OVERVIEW, THUMBNAIL); without an ImageType, VOLUME for a
/// tiled image (as [`Instance::from_dataset`] takes it).
pub(super) fn image_type(obj: &InMemDicomObject) -> Option<String> {
    let values = strings(obj, tags::IMAGE_TYPE);
    if values.is_empty() && obj.get(tags::TOTAL_PIXEL_MATRIX_COLUMNS).is_some() {
        return Some("VOLUME".into());
    }
    values.into_iter().nth(2)
}

/// TotalPixelMatrixColumns, when positive.
pub(super) fn total_columns(obj: &InMemDicomObject) -> Option<u64> {
    int(obj, tags::TOTAL_PIXEL_MATRIX_COLUMNS).filter(|&v| v > 0).map(|v| v as u64)
}

/// The pixel compression of a transfer syntax wsiview decodes.
pub(super) fn compression_of(ts: &str) -> Result<Compression, ErrorKind> {
    match ts {
        "1.2.840.10008.1.2.4.50" => Ok(Compression::Jpeg),
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => Ok(Compression::Jpeg2000),
        IMPLICIT_VR_LE | "1.2.840.10008.1.2.1" => Ok(Compression::None),
        other => Err(unsupported_syntax(other)),
    }
}

/// Parse the data set bytes `[128, end)` of a file (meta group included) with dicom-object.
fn parse_dataset(src: &dyn ByteSource, end: u64, limits: &Limits) -> Result<InMemDicomObject, ErrorKind> {
    let len = end.saturating_sub(128);
    if len > limits.dicom_header_bytes {
        return Err(ErrorKind::TooLarge(format!("a data set of {len} bytes before PixelData")));
    }
    let mut bytes = vec![0u8; len as usize];
    src.read_exact_at(128, &mut bytes).map_err(ErrorKind::Io)?;
    let object = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(&bytes[..])
        .map_err(|e| ErrorKind::InvalidDicom(one_line(&e)))?;
    Ok(object.into_inner())
}

/// An error and its causes on one line.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    printable(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn string(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let text = obj.get(tag)?.value().to_str().ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.to_string())
}

fn strings(obj: &InMemDicomObject, tag: Tag) -> Vec<String> {
    obj.get(tag)
        .and_then(|e| e.value().to_multi_str().ok())
        .map(|v| v.iter().map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string()).collect())
        .unwrap_or_default()
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.value().to_int::<i64>().ok()
}

fn item(obj: &InMemDicomObject, tag: Tag, index: usize) -> Option<&InMemDicomObject> {
    obj.get(tag)?.items()?.get(index)
}

/// A required positive size, at most `max`.
fn size(obj: &InMemDicomObject, tag: Tag, what: &str, max: u64) -> Result<u64, ErrorKind> {
    let v = int(obj, tag).ok_or_else(|| ErrorKind::InvalidDicom(format!("no {what}")))?;
    if v <= 0 || v as u64 > max {
        return Err(ErrorKind::InvalidDicom(format!("{what} {v} is out of range (1..={max})")));
    }
    Ok(v as u64)
}

impl Instance {
    /// Read the instance at `path`, with its SeriesInstanceUID. An instance of a series other
    /// than `series` (when given) is `Ok(None)`, and so is a DICOM object that is not a
    /// whole-slide image when `quiet` (else an error): files to pass over. Sizes are checked
    /// against `limits`.
    pub fn open(
        path: &Path,
        series: Option<&str>,
        quiet: bool,
        limits: &Limits,
    ) -> Result<Option<(Instance, String)>, ErrorKind> {
        let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(path)?);
        let src = &*source;
        let meta = parse::read_meta(src, limits)?;
        let ts = meta.transfer_syntax.clone();
        let explicit = dataset_explicit(&ts)?;
        // First the elements up to SeriesInstanceUID, enough to tell whether this file belongs.
        let prefix_end =
            parse::walk_to(src, meta.dataset_at, explicit, 0x0020_000F, limits)?.map_or(src.len(), |h| h.at);
        let prefix = parse_dataset(src, prefix_end, limits)?;
        let sop_class = string(&prefix, tags::SOP_CLASS_UID).unwrap_or_default();
        let series_uid = string(&prefix, tags::SERIES_INSTANCE_UID).unwrap_or_default();
        if sop_class != WSI_SOP_CLASS {
            if quiet {
                return Ok(None);
            }
            return Err(ErrorKind::UnsupportedDicom(format!(
                "SOP class {} is not VL Whole Slide Microscopy Image Storage ({WSI_SOP_CLASS})",
                printable(&sop_class)
            )));
        }
        if series_uid.is_empty() {
            return Err(ErrorKind::InvalidDicom("no SeriesInstanceUID (0020,000E)".into()));
        }
        if series.is_some_and(|s| s != series_uid) {
            return Ok(None);
        }
        let Some(pixel) =
            parse::walk_to(src, meta.dataset_at, explicit, PIXEL_DATA, limits)?.filter(|h| h.tag == PIXEL_DATA)
        else {
            return Err(ErrorKind::InvalidDicom("no PixelData (7FE0,0010)".into()));
        };
        let obj = parse_dataset(src, pixel.at, limits)?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let instance = Instance::from_dataset(name, PixelsAt::File(source.clone(), pixel), &ts, &obj, limits)?;
        Ok(Some((instance, series_uid)))
    }

    /// Frames its pixel data lists (a file cut short lists fewer than NumberOfFrames).
    pub fn listed_frames(&self) -> u64 {
        match &self.pixels {
            Pixels::File { table, .. } => table.len(),
            Pixels::Web { .. } => self.frames,
        }
    }

    /// The SOPInstanceUID and SeriesInstanceUID of the DICOM file at `path` (any SOP class),
    /// reading only the data set's first elements.
    pub fn read_uids(path: &Path, limits: &Limits) -> Result<(String, String), ErrorKind> {
        let source = FileSource::open(path)?;
        let meta = parse::read_meta(&source, limits)?;
        let explicit = dataset_explicit(&meta.transfer_syntax)?;
        let end =
            parse::walk_to(&source, meta.dataset_at, explicit, 0x0020_000F, limits)?.map_or(source.len(), |h| h.at);
        let prefix = parse_dataset(&source, end, limits)?;
        let sop = string(&prefix, tags::SOP_INSTANCE_UID).unwrap_or_default();
        let series = string(&prefix, tags::SERIES_INSTANCE_UID).unwrap_or_default();
        Ok((sop, series))
    }

    /// An instance of a data set whose pixel data is at `at`, in transfer syntax `ts` (from a
    /// server: the syntax its frames come in).
    pub fn from_dataset(
        name: String,
        at: PixelsAt,
        ts: &str,
        obj: &InMemDicomObject,
        limits: &Limits,
    ) -> Result<Instance, ErrorKind> {
        let image_type = strings(obj, tags::IMAGE_TYPE);
        let role = match image_type.get(2).map(String::as_str) {
            Some("VOLUME") => Role::Level,
            Some("LABEL") => Role::Associated("label"),
            Some("OVERVIEW") => Role::Associated("macro"),
            Some("THUMBNAIL") => Role::Associated("thumbnail"),
            // ImageType is type 1, but OrthancWSIDicomizer 1.1 writes none: a volume by its
            // VolumetricProperties, or by its tiled total pixel matrix.
            None if image_type.is_empty()
                && (string(obj, tags::VOLUMETRIC_PROPERTIES).as_deref() == Some("VOLUME")
                    || obj.get(tags::TOTAL_PIXEL_MATRIX_COLUMNS).is_some()) =>
            {
                Role::Level
            }
            _ => Role::Other,
        };
        let compression = compression_of(ts)?;
        let tile_w = size(obj, tags::COLUMNS, "Columns", limits.tile_edge)?;
        let tile_h = size(obj, tags::ROWS, "Rows", limits.tile_edge)?;
        if tile_w * tile_h > limits.tile_pixels {
            return Err(ErrorKind::TooLarge(format!("frames of {tile_w}×{tile_h} pixels")));
        }
        let frames = match int(obj, tags::NUMBER_OF_FRAMES) {
            None => 1,
            Some(n) if n >= 1 && n as u64 <= limits.level_tiles => n as u64,
            Some(n) => {
                let max = limits.level_tiles;
                return Err(ErrorKind::InvalidDicom(format!("NumberOfFrames {n} is out of range (1..={max})")));
            }
        };
        // Older single-frame images (labels, overviews) may lack the total pixel matrix.
        let (width, height) = if obj.get(tags::TOTAL_PIXEL_MATRIX_COLUMNS).is_none() && frames == 1 {
            (tile_w, tile_h)
        } else {
            (
                size(obj, tags::TOTAL_PIXEL_MATRIX_COLUMNS, "TotalPixelMatrixColumns", limits.image_edge)?,
                size(obj, tags::TOTAL_PIXEL_MATRIX_ROWS, "TotalPixelMatrixRows", limits.image_edge)?,
            )
        };
        let module = PixelModule {
            photometric: string(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default(),
            samples: int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(0),
            bits: int(obj, tags::BITS_ALLOCATED).unwrap_or(0),
            planar: int(obj, tags::PLANAR_CONFIGURATION).unwrap_or(0) == 1,
        };
        // From a server asked for uncompressed frames: it decoded stored YBR JPEG to RGB.
        let transcoded =
            matches!(&at, PixelsAt::Web(frames, _) if frames.accept() == super::web::FrameAccept::Uncompressed);
        let format = module.format(compression, ts, transcoded)?;
        let pixels = match at {
            PixelsAt::Web(frames, index) => Pixels::Web { frames, index, module },
            PixelsAt::File(source, pixel) => {
                let table = file_frames(&*source, pixel, obj, compression, &format, frames, tile_w * tile_h)?;
                Pixels::File { source, table }
            }
        };
        let sparse = string(obj, tags::DIMENSION_ORGANIZATION_TYPE).as_deref() != Some("TILED_FULL")
            && obj.get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE).is_some();
        let (positions, unaligned) = if sparse {
            let (p, u) = sparse_positions(obj, frames, tile_w, tile_h, width, height);
            (Some(p), u)
        } else {
            (None, 0)
        };
        let shared = item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, 0);
        let pixel_spacing = shared
            .and_then(|s| item(s, tags::PIXEL_MEASURES_SEQUENCE, 0))
            .map(|m| strings(m, tags::PIXEL_SPACING).join("\\"))
            .filter(|s| !s.is_empty());
        let objective = item(obj, tags::OPTICAL_PATH_SEQUENCE, 0).and_then(|p| string(p, tags::OBJECTIVE_LENS_POWER));
        let sop_uid = string(obj, tags::SOP_INSTANCE_UID).unwrap_or_default();
        let concat_key = string(obj, tags::CONCATENATION_UID)
            .or_else(|| string(obj, tags::SOP_INSTANCE_UID_OF_CONCATENATION_SOURCE))
            .unwrap_or_else(|| sop_uid.clone());
        let concat_offset = int(obj, tags::CONCATENATION_FRAME_OFFSET_NUMBER)
            .unwrap_or(0)
            .clamp(0, i64::try_from(limits.level_tiles).unwrap_or(i64::MAX)) as u64;
        Ok(Instance {
            name,
            pixels,
            sop_uid,
            concat_key,
            concat_offset,
            role,
            format,
            tile_w: tile_w as u32,
            tile_h: tile_h as u32,
            width,
            height,
            frames,
            positions,
            unaligned,
            pixel_spacing,
            objective,
            properties: properties(obj, ts, limits.dicom_properties_per_attribute),
            limits: *limits,
        })
    }
}

/// The frame table of a file's PixelData (its header `pixel`): encapsulated (offset tables, or
/// the fragments walked) or native.
fn file_frames(
    source: &dyn ByteSource,
    pixel: parse::Header,
    obj: &InMemDicomObject,
    compression: Compression,
    format: &ChunkFormat,
    frames: u64,
    pixels: u64,
) -> Result<FrameTable, ErrorKind> {
    if pixel.undefined_length() {
        if compression == Compression::None {
            return Err(ErrorKind::InvalidDicom("uncompressed PixelData of undefined length".into()));
        }
        let extended = match (obj.get(tags::EXTENDED_OFFSET_TABLE), obj.get(tags::EXTENDED_OFFSET_TABLE_LENGTHS)) {
            (Some(o), Some(l)) => Some((
                o.value()
                    .to_multi_int::<u64>()
                    .map_err(|e| ErrorKind::InvalidDicom(format!("ExtendedOffsetTable: {e}")))?,
                l.value()
                    .to_multi_int::<u64>()
                    .map_err(|e| ErrorKind::InvalidDicom(format!("ExtendedOffsetTableLengths: {e}")))?,
            )),
            _ => None,
        };
        parse::encapsulated_frames(source, pixel.value_at, frames, extended)
    } else {
        if compression != Compression::None {
            return Err(ErrorKind::InvalidDicom(format!(
                "{} PixelData is not encapsulated (it has a defined length)",
                compression.name()
            )));
        }
        let frame_bytes = pixels * u64::from(format.samples) * u64::from(format.bits / 8);
        parse::native_frames(pixel.value_at, pixel.len, frames, frame_bytes)
    }
}

impl PixelModule {
    /// The decoder's view of the pixels, from the transfer syntax and the image pixel module.
    /// `from_server`: uncompressed frames a server decoded from stored YBR JPEG come as RGB.
    pub fn format(&self, compression: Compression, ts: &str, from_server: bool) -> Result<ChunkFormat, ErrorKind> {
        let (samples, bits, planar) = (self.samples, self.bits, self.planar);
        let photometric = match self.photometric.as_str() {
            p if from_server && compression == Compression::None && p.starts_with("YBR") => "RGB",
            p => p,
        };
        use Compression as C;
        use Photometric as P;
        let kind = match (compression, photometric, samples) {
            (C::Jpeg, "YBR_FULL_422" | "YBR_FULL", 3) => Some(P::YCbCr),
            (C::Jpeg, "RGB", 3) => Some(P::Rgb),
            // The codestream's colour transform (ICT/RCT) gives RGB; YBR_FULL has Y, Cb, Cr without it.
            (C::Jpeg2000, "YBR_ICT" | "YBR_RCT" | "RGB", 3) => Some(P::Rgb),
            (C::Jpeg2000, "YBR_FULL", 3) => Some(P::YCbCr),
            (C::None, "RGB", 3) => Some(P::Rgb),
            (_, "MONOCHROME2", 1) => Some(P::BlackIsZero),
            (C::None, "MONOCHROME1", 1) => Some(P::WhiteIsZero),
            _ => None,
        };
        let Some(kind) = kind else {
            return Err(ErrorKind::UnsupportedDicom(format!(
                "PhotometricInterpretation {} with {samples} samples per pixel in transfer syntax {}",
                printable(if photometric.is_empty() { "(none)" } else { photometric }),
                printable(ts)
            )));
        };
        let bits = match (compression, bits) {
            (_, 8) => 8,
            (C::None, 16) => 16,
            _ => {
                return Err(ErrorKind::UnsupportedDicom(format!(
                    "{bits} bits allocated per sample with {}",
                    compression.name()
                )))
            }
        };
        let mut format = ChunkFormat::simple(compression, kind, samples as u16);
        format.bits = bits;
        format.planar = planar && compression == C::None && samples == 3;
        Ok(format)
    }
}

/// Tile positions of a TILED_SPARSE instance's frames (Per-Frame Functional Groups → Plane
/// Position (Slide), 1-based pixel positions), keeping the focal plane and optical path of the
/// first positioned frame; and how many frames lay off the tile grid.
fn sparse_positions(
    obj: &InMemDicomObject,
    frames: u64,
    tile_w: u64,
    tile_h: u64,
    width: u64,
    height: u64,
) -> (Vec<Option<(u64, u64)>>, u64) {
    let items = obj.get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE).and_then(|e| e.items()).unwrap_or(&[]);
    let shared = item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, 0);
    let path_of = |groups: Option<&InMemDicomObject>| {
        groups
            .and_then(|g| item(g, tags::OPTICAL_PATH_IDENTIFICATION_SEQUENCE, 0))
            .and_then(|p| string(p, tags::OPTICAL_PATH_IDENTIFIER))
    };
    let shared_path = path_of(shared);
    let mut plane: Option<(Option<String>, Option<String>)> = None;
    let mut unaligned = 0;
    let positions = items
        .iter()
        .take(frames as usize)
        .map(|frame| {
            let pos = item(frame, tags::PLANE_POSITION_SLIDE_SEQUENCE, 0)?;
            let col = int(pos, tags::COLUMN_POSITION_IN_TOTAL_IMAGE_PIXEL_MATRIX)?;
            let row = int(pos, tags::ROW_POSITION_IN_TOTAL_IMAGE_PIXEL_MATRIX)?;
            let this = (
                string(pos, tags::Z_OFFSET_IN_SLIDE_COORDINATE_SYSTEM),
                path_of(Some(frame)).or_else(|| shared_path.clone()),
            );
            if plane.get_or_insert_with(|| this.clone()) != &this {
                return None;
            }
            let (x, y) = (col - 1, row - 1);
            let on_grid = x >= 0 && y >= 0 && (x as u64).is_multiple_of(tile_w) && (y as u64).is_multiple_of(tile_h);
            if !on_grid || x as u64 >= width || y as u64 >= height {
                unaligned += 1;
                return None;
            }
            Some((x as u64 / tile_w, y as u64 / tile_h))
        })
        .collect();
    (positions, unaligned)
}

/// The `dicom.*` properties: these top-level attributes (and the contents of the sequences
/// among them), under OpenSlide's names (`dicom.OpticalPathSequence[0].ObjectiveLensPower`,
/// `dicom.ImageType[2]`; a multi-valued attribute also whole, `\`-separated, under its bare
/// name). Patient, study and person attributes are never among them (but the study's UID).
const PROPERTY_TAGS: &[Tag] = &[
    tags::SOP_CLASS_UID,
    tags::SOP_INSTANCE_UID,
    // Where the series is on a PACS (reports record it); no study fact beyond the UID.
    tags::STUDY_INSTANCE_UID,
    tags::SERIES_INSTANCE_UID,
    tags::FRAME_OF_REFERENCE_UID,
    tags::MODALITY,
    tags::MANUFACTURER,
    tags::MANUFACTURER_MODEL_NAME,
    tags::DEVICE_SERIAL_NUMBER,
    tags::SOFTWARE_VERSIONS,
    tags::IMAGE_TYPE,
    tags::SERIES_NUMBER,
    tags::INSTANCE_NUMBER,
    tags::SAMPLES_PER_PIXEL,
    tags::PHOTOMETRIC_INTERPRETATION,
    tags::PLANAR_CONFIGURATION,
    tags::NUMBER_OF_FRAMES,
    tags::ROWS,
    tags::COLUMNS,
    tags::BITS_ALLOCATED,
    tags::BITS_STORED,
    tags::HIGH_BIT,
    tags::PIXEL_REPRESENTATION,
    tags::LOSSY_IMAGE_COMPRESSION,
    tags::LOSSY_IMAGE_COMPRESSION_RATIO,
    tags::LOSSY_IMAGE_COMPRESSION_METHOD,
    tags::BURNED_IN_ANNOTATION,
    tags::SPECIMEN_LABEL_IN_IMAGE,
    tags::VOLUMETRIC_PROPERTIES,
    tags::DIMENSION_ORGANIZATION_TYPE,
    tags::CONCATENATION_UID,
    tags::IMAGED_VOLUME_WIDTH,
    tags::IMAGED_VOLUME_HEIGHT,
    tags::IMAGED_VOLUME_DEPTH,
    tags::TOTAL_PIXEL_MATRIX_COLUMNS,
    tags::TOTAL_PIXEL_MATRIX_ROWS,
    tags::TOTAL_PIXEL_MATRIX_ORIGIN_SEQUENCE,
    tags::IMAGE_ORIENTATION_SLIDE,
    tags::FOCUS_METHOD,
    tags::EXTENDED_DEPTH_OF_FIELD,
    tags::OPTICAL_PATH_SEQUENCE,
    tags::NUMBER_OF_OPTICAL_PATHS,
    tags::TOTAL_PIXEL_MATRIX_FOCAL_PLANES,
    tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
];

/// The `dicom.*` properties of a data set: at most `per_attribute` from one top-level attribute
/// (sequences can be long; [`Limits::dicom_properties_per_attribute`]).
fn properties(obj: &InMemDicomObject, ts: &str, per_attribute: usize) -> Vec<(String, String)> {
    let mut out = vec![("dicom.TransferSyntaxUID".to_string(), ts.to_string())];
    for &tag in PROPERTY_TAGS {
        if let Some(element) = obj.get(tag) {
            let mut budget = per_attribute;
            flatten(element, "dicom", &mut out, &mut budget, 0);
            // A multi-valued attribute whole, too.
            if let (Some(name), Ok(values)) = (keyword(tag), element.value().to_multi_str()) {
                if values.len() > 1 && element.vr() != VR::PN {
                    out.push((format!("dicom.{name}"), printable(&values.join("\\"))));
                }
            }
        }
    }
    out
}

fn keyword(tag: Tag) -> Option<&'static str> {
    StandardDataDictionary.by_tag(tag).map(|e| e.alias())
}

fn flatten(
    element: &dicom_object::mem::InMemElement,
    prefix: &str,
    out: &mut Vec<(String, String)>,
    budget: &mut usize,
    depth: u32,
) {
    let Some(name) = keyword(element.tag()) else { return };
    // Person names, and values that are not text or numbers, are left out.
    if matches!(element.vr(), VR::PN | VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN | VR::AT)
        || depth > 4
    {
        return;
    }
    match element.value() {
        Value::Sequence(seq) => {
            for (i, item) in seq.items().iter().enumerate() {
                for e in item.iter() {
                    flatten(e, &format!("{prefix}.{name}[{i}]"), out, budget, depth + 1);
                }
            }
        }
        Value::Primitive(_) => {
            let Ok(values) = element.value().to_multi_str() else { return };
            let clean = |s: &str| printable(s.trim_matches(|c: char| c == '\0' || c.is_whitespace()));
            if values.len() == 1 {
                if *budget > 0 {
                    *budget -= 1;
                    out.push((format!("{prefix}.{name}"), clean(&values[0])));
                }
            } else {
                for (i, v) in values.iter().enumerate() {
                    if *budget == 0 {
                        return;
                    }
                    *budget -= 1;
                    out.push((format!("{prefix}.{name}[{i}]"), clean(v)));
                }
            }
        }
        Value::PixelSequence(_) => {}
    }
}
