//! The table of slide formats wsiview reads, in the order they are tried, as OpenSlide keeps one
//! file per vendor: each format has a cheap `detect` (from the first bytes, or IFD 0 of a TIFF)
//! and an opener. TIFF-based formats only lay the file out (levels, placement, associated
//! images, properties, see [`TiffLayout`]) and share the TIFF tile engine
//! ([`super::TiffSlide`]); others implement [`SlideSource`] themselves. Adding a format touches
//! this table and its own file.
//!
//! | format | detected by | reference |
//! |---|---|---|
//! | Aperio SVS (JPEG, JPEG 2000 33003/33005) | IFD 0 description starts `Aperio` | OpenSlide `openslide-vendor-aperio.c` |
//! | Philips TIFF | Software `Philips…`, a `DPUfsImport` XML description | OpenSlide `openslide-vendor-philips.c` |
//! | Leica SCN | an `scn` XML description in Leica's namespace | OpenSlide `openslide-vendor-leica.c` |
//! | Ventana BIF | an `iScan` element in IFD 0's XMP | OpenSlide `openslide-vendor-ventana.c` |
//! | OME-TIFF | IFD 0 description is OME-XML | OME-TIFF specification |
//! | Hamamatsu NDPI | tag 65420 (FileFormat) in IFD 0 | OpenSlide `openslide-vendor-hamamatsu.c` |
//! | DICOM WSI (a series of instances: levels, label, overview, thumbnail) | "DICM" at byte 128, or a folder holding such files | OpenSlide `openslide-vendor-dicom.c`, DICOM PS3.3 A.32.8 |
//! | generic tiled TIFF | any other TIFF | TIFF 6.0 |

mod aperio;
mod dicom;
pub(crate) use dicom::{open_series_url, series_files};
mod generic;
mod leica;
mod ndpi;
mod ome;
mod philips;
mod ventana;

use std::path::Path;
use std::sync::Arc;

use super::tiff_slide::{LayoutFn, TiffSlide};
use super::SlideSource;
use crate::error::{ErrorKind, Result, SlideError};
use crate::limits::Limits;
use crate::tiff::{tags, ByteSource, FileSource, Ifd, TiffReader};

pub(crate) use super::tiff_slide::{LevelPlan, Placement, TiffContext, TiffLayout};

/// What a format's `detect` sees: cheap facts read once for all formats.
pub(crate) struct Probe<'a> {
    pub path: &'a Path,
    /// The first bytes of the file (up to 4 KiB); empty for a folder.
    pub head: &'a [u8],
    /// When the file parses as TIFF: its reader and IFD 0 (`None` if IFD 0 is unreadable).
    pub tiff: Option<(&'a TiffReader, Option<&'a Ifd>)>,
    /// IFD 0's ImageDescription and Software ("" when absent or not a TIFF).
    pub description: &'a str,
    pub software: &'a str,
    /// The caps the slide is opened with (for a TIFF, also its reader's).
    pub limits: &'a Limits,
}

impl Probe<'_> {
    /// IFD 0 of a TIFF, when readable.
    pub fn first_ifd(&self) -> Option<&Ifd> {
        self.tiff.and_then(|(_, ifd)| ifd)
    }

    /// Whether IFD 0 of a TIFF has `tag`.
    pub fn has_tag(&self, tag: u16) -> bool {
        self.first_ifd().is_some_and(|ifd| ifd.get(tag).is_some())
    }
}

/// How a format opens a file.
pub(crate) enum Opener {
    /// A TIFF-based format: a layout for the shared TIFF tile engine.
    Tiff(LayoutFn),
    /// A format with its own reader.
    Other(fn(&Probe) -> Result<Arc<dyn SlideSource>>),
}

pub(crate) struct Format {
    /// The name [`SlideSource::format_name`] reports.
    pub name: &'static str,
    pub detect: fn(&Probe) -> bool,
    pub open: Opener,
}

/// Every format, in the order they are tried; generic TIFF last (it takes any TIFF).
pub(crate) static FORMATS: &[Format] = &[
    aperio::FORMAT,
    philips::FORMAT,
    leica::FORMAT,
    ventana::FORMAT,
    ome::FORMAT,
    ndpi::FORMAT,
    dicom::FORMAT,
    generic::FORMAT,
];

/// Parse vendor XML (Philips, Ventana, Leica) with no DTD, hence no entities at all, internal or
/// external, and at most [`Limits::xml_nodes`] nodes. `Err` is the parser's message, safe to print.
pub(crate) fn parse_xml<'a>(text: &'a str, limits: &Limits) -> std::result::Result<roxmltree::Document<'a>, String> {
    let options = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: limits.xml_nodes, ..Default::default() };
    roxmltree::Document::parse_with_options(text, options).map_err(|e| crate::error::printable(&e.to_string()))
}

/// Most bytes read for detection.
const HEAD_BYTES: u64 = 4096;

/// Open a slide (a file, or a folder for formats that take one) with the first format that
/// recognises it, checking sizes against `limits`.
pub fn open(path: &Path, limits: &Limits) -> Result<Arc<dyn SlideSource>> {
    let err = |kind| SlideError::new(path, kind);
    if path.is_dir() {
        let probe = Probe { path, head: &[], tiff: None, description: "", software: "", limits };
        if let Some(format) = FORMATS.iter().find(|f| (f.detect)(&probe)) {
            if let Opener::Other(open) = format.open {
                return open(&probe);
            }
        }
    }
    let source: Arc<dyn ByteSource> = Arc::new(FileSource::open(path).map_err(|e| err(ErrorKind::Io(e)))?);
    open_bytes(path, source, limits)
}

/// Open a slide from any byte source (a file, or later a remote object read by range requests);
/// `path` names it in messages and is where formats that read sibling files (DICOM) look.
pub fn open_bytes(path: &Path, source: Arc<dyn ByteSource>, limits: &Limits) -> Result<Arc<dyn SlideSource>> {
    let err = |kind| SlideError::new(path, kind);
    let mut head = vec![0u8; source.len().min(HEAD_BYTES) as usize];
    source.read_exact_at(0, &mut head).map_err(|e| err(ErrorKind::Io(e)))?;
    let tiff = TiffReader::with_limits(source.clone(), *limits);
    let found = with_probe(path, &head, tiff.as_ref().ok(), limits, |probe| {
        FORMATS.iter().find(|f| (f.detect)(probe)).map(|f| match f.open {
            Opener::Other(open) => Err(open(probe)),
            Opener::Tiff(layout) => Ok(layout),
        })
    });
    let chosen = match found {
        Some(Err(opened)) => return opened,
        Some(Ok(layout)) => Some(layout),
        None => None,
    };
    match (chosen, tiff) {
        (Some(layout), Ok(reader)) => Ok(Arc::new(TiffSlide::with_layout(path, reader, layout)?)),
        (_, Err(kind)) => Err(err(kind)),
        (None, Ok(_)) => Err(err(ErrorKind::Invalid("no format recognises this TIFF".into()))),
    }
}

/// Build the [`Probe`] of a file from its first bytes and, for a TIFF, IFD 0 (its description and
/// Software read once), and hand it to `f`.
fn with_probe<T>(
    path: &Path,
    head: &[u8],
    tiff: Option<&TiffReader>,
    limits: &Limits,
    f: impl FnOnce(&Probe) -> T,
) -> T {
    let first = tiff.and_then(|r| r.read_ifd(r.first_ifd).ok());
    let text = |tag| match (tiff, &first) {
        (Some(r), Some(ifd)) => r.get_string(ifd, tag).ok().flatten().unwrap_or_default(),
        _ => String::new(),
    };
    let (description, software) = (text(tags::IMAGE_DESCRIPTION), text(tags::SOFTWARE));
    let tiff = tiff.map(|r| (r, first.as_ref()));
    let probe = Probe { path, head, tiff, description: &description, software: &software, limits };
    f(&probe)
}

/// The first format that recognises a TIFF, with its layout when it is TIFF-based (generic TIFF
/// at worst). A format with its own reader (NDPI) comes back without a layout.
pub(crate) fn tiff_format_for(path: &Path, reader: &TiffReader) -> Result<(&'static Format, Option<LayoutFn>)> {
    let mut head = vec![0u8; reader.file_len().min(HEAD_BYTES) as usize];
    reader.source().read_exact_at(0, &mut head).map_err(|e| SlideError::new(path, ErrorKind::Io(e)))?;
    let format =
        with_probe(path, &head, Some(reader), reader.limits(), |probe| FORMATS.iter().find(|f| (f.detect)(probe)))
            .ok_or_else(|| SlideError::new(path, ErrorKind::Invalid("no format recognises this TIFF".into())))?;
    Ok(match format.open {
        Opener::Tiff(layout) => (format, Some(layout)),
        Opener::Other(_) => (format, None),
    })
}

/// The layout of the first format that recognises a TIFF, which must be TIFF-based.
pub(crate) fn tiff_layout_for(path: &Path, reader: &TiffReader) -> Result<LayoutFn> {
    match tiff_format_for(path, reader)? {
        (_, Some(layout)) => Ok(layout),
        (format, None) => Err(SlideError::new(
            path,
            ErrorKind::Invalid(format!("a {} slide is not read by the TIFF tile engine", format.name)),
        )),
    }
}
#[cfg(test)]
mod tests {
    use super::parse_xml;
    use crate::limits::Limits;

    #[test]
    fn vendor_xml_with_a_dtd_or_entities_is_refused() {
        let external = r#"<?xml version="1.0"?><!DOCTYPE scn [<!ENTITY x SYSTEM "file:///etc/passwd">]><scn>&x;</scn>"#;
        assert!(parse_xml(external, &Limits::DEFAULT).is_err(), "an external entity must never be resolved");
        let bomb = r#"<!DOCTYPE a [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><a>&b;</a>"#;
        assert!(parse_xml(bomb, &Limits::DEFAULT).is_err());
        assert!(parse_xml("<scn><collection/></scn>", &Limits::DEFAULT).is_ok());
    }
}
