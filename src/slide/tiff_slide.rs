//! Tiled pyramidal TIFF slides: generic (pyramid in the main IFD chain or in SubIFDs), Aperio SVS
//! and OME-TIFF. IFDs are parsed once at open; each level's tile offset table is loaded on first
//! use, so opening a 100,000-pixel-wide slide reads a few kilobytes.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::vendor::parse_aperio_description;
use super::{LevelInfo, SlideProperties, SlideSource, TilePixels};
use crate::error::{ErrorKind, Result, SlideError};
use crate::tiff::tags::{self, compression_name};
use crate::tiff::{FileSource, Ifd, TiffReader};
use crate::tiles::codec::{decode_chunk, decode_planes, ChunkFormat, Compression, Photometric};

/// Largest tile edge accepted; real slides use 240–1024.
const MAX_TILE_EDGE: u64 = 16_384;
/// Largest tile area (pixels); bounds the memory one tile decode can take (64 MiB as RGBA).
const MAX_TILE_PIXELS: u64 = 1 << 24;
/// Largest compressed tile accepted.
const MAX_TILE_BYTES: u64 = 64 << 20;
/// Largest associated image decoded whole (pixels).
const MAX_ASSOCIATED_PIXELS: u64 = 100_000_000;
/// Largest image edge: TIFF allows 2^32-1, but no scanner makes more than a few hundred thousand.
const MAX_IMAGE_EDGE: u64 = 1 << 24;

/// The facts of one IFD that decide whether and how it can be read.
#[derive(Clone, Debug)]
struct ImageIfd {
    /// Position in the main chain (SubIFDs get the index of their parent); for messages.
    index: usize,
    ifd: Ifd,
    width: u64,
    height: u64,
    tile: Option<(u64, u64)>,
    compression_code: u16,
    description: Option<String>,
}

/// Tile offsets and byte counts of one level.
struct TileIndex {
    offsets: Vec<u64>,
    byte_counts: Vec<u64>,
}

struct TiledLevel {
    image: ImageIfd,
    format: ChunkFormat,
    across: u64,
    down: u64,
    /// Loaded on first use; an error is kept as text and repeated to every caller.
    index: OnceLock<std::result::Result<TileIndex, String>>,
}

struct Associated {
    name: String,
    image: ImageIfd,
}

pub struct TiffSlide {
    path: PathBuf,
    reader: TiffReader,
    format_name: &'static str,
    levels: Vec<LevelInfo>,
    tiled: Vec<TiledLevel>,
    associated: Vec<Associated>,
    properties: SlideProperties,
}

impl TiffSlide {
    pub fn open(path: &Path) -> Result<Self> {
        let err = |kind| SlideError::new(path, kind);
        let source = FileSource::open(path).map_err(|e| err(ErrorKind::Io(e)))?;
        let reader = TiffReader::new(Arc::new(source)).map_err(err)?;
        Self::from_reader(path, reader)
    }

    /// Open from any byte source (used by tests and future remote sources).
    pub fn from_reader(path: &Path, reader: TiffReader) -> Result<Self> {
        let err = |kind| SlideError::new(path, kind);
        let mut seen = HashSet::new();
        let chain = reader.read_chain(reader.first_ifd, &mut seen).map_err(err)?;
        let images: Vec<ImageIfd> = chain
            .into_iter()
            .enumerate()
            .map(|(index, ifd)| describe(&reader, index, ifd))
            .collect::<std::result::Result<_, _>>()
            .map_err(err)?;
        let first = images.first().ok_or_else(|| err(ErrorKind::Invalid("no IFDs".into())))?;
        let description = first.description.clone();
        let desc = description.as_deref().unwrap_or("");

        let mut properties = SlideProperties { description: description.clone(), ..Default::default() };
        read_tiff_properties(&reader, &first.ifd, &mut properties.values);

        let (format_name, level_images, associated) = if is_aperio(desc) {
            properties.vendor = "aperio".into();
            for (key, value) in parse_aperio_description(desc) {
                properties.values.insert(format!("aperio.{key}"), value);
            }
            let mpp = vendor_positive(&mut properties.values, "aperio.MPP");
            properties.mpp_x = mpp;
            properties.mpp_y = mpp;
            properties.objective_power = vendor_positive(&mut properties.values, "aperio.AppMag");
            let (levels, associated) = aperio_layout(images);
            ("aperio-svs", levels, associated)
        } else if is_ome(desc) {
            properties.vendor = "ome-tiff".into();
            let (slide, associated) = match super::vendor::parse_ome_images(desc) {
                Ok(omes) => match ome_layout(&omes, &images) {
                    Ok((chosen, associated)) => {
                        let facts = &omes[chosen].facts;
                        properties.mpp_x = facts.mpp_x;
                        properties.mpp_y = facts.mpp_y;
                        properties.objective_power = facts.objective_power;
                        properties.values.extend(facts.values.clone());
                        if !omes[chosen].name.is_empty() {
                            properties.values.insert("ome.Image.Name".into(), omes[chosen].name.clone());
                        }
                        (omes[chosen].ifd, associated)
                    }
                    Err(why) => {
                        properties.values.insert(
                            "wsiview.warning.ome".into(),
                            format!("{why}; read as a plain TIFF (the largest tiled image is the slide)"),
                        );
                        (largest_tiled(&images), Vec::new())
                    }
                },
                Err(e) => {
                    properties.values.insert("ome.error".into(), e.clone());
                    properties.values.insert(
                        "wsiview.warning.ome".into(),
                        format!("{e}; read as a plain TIFF (the largest tiled image is the slide)"),
                    );
                    (largest_tiled(&images), Vec::new())
                }
            };
            let associated: Vec<Associated> = associated
                .into_iter()
                .filter_map(|(name, index)| images.get(index).map(|i| Associated { name, image: i.clone() }))
                .collect();
            let slide_image = images.into_iter().nth(slide);
            let levels = subifd_pyramid(&reader, slide_image, &mut seen, &mut properties.values).map_err(err)?;
            ("ome-tiff", levels, associated)
        } else {
            properties.vendor = "generic-tiff".into();
            let levels = if first.ifd.get(tags::SUB_IFDS).is_none() {
                images.into_iter().filter(|i| i.tile.is_some()).collect()
            } else {
                subifd_pyramid(&reader, images.into_iter().next(), &mut seen, &mut properties.values).map_err(err)?
            };
            ("generic-tiff", levels, Vec::new())
        };
        if properties.mpp_x.is_none() {
            let (x, y) = resolution_mpp(&properties.values);
            properties.mpp_x = x;
            properties.mpp_y = y;
        }
        if let Some(mpp) = properties.mpp_x {
            properties.values.insert("mpp-x".into(), format!("{mpp}"));
        }
        if let Some(mpp) = properties.mpp_y {
            properties.values.insert("mpp-y".into(), format!("{mpp}"));
        }

        let tiled = build_levels(&reader, level_images).map_err(err)?;
        let (w0, h0) = (tiled[0].image.width as f64, tiled[0].image.height as f64);
        let levels = tiled
            .iter()
            .map(|l| LevelInfo {
                width: l.image.width,
                height: l.image.height,
                downsample: if l.image.width == tiled[0].image.width && l.image.height == tiled[0].image.height {
                    1.0
                } else {
                    (w0 / l.image.width as f64 + h0 / l.image.height as f64) / 2.0
                },
                tile_width: l.image.tile.map_or(0, |t| t.0 as u32),
                tile_height: l.image.tile.map_or(0, |t| t.1 as u32),
                compression: l.format.compression,
            })
            .collect();
        Ok(TiffSlide { path: path.to_path_buf(), reader, format_name, levels, tiled, associated, properties })
    }

    fn err(&self, kind: ErrorKind) -> SlideError {
        SlideError::new(&self.path, kind)
    }

    fn tile_index<'a>(&self, level: &'a TiledLevel) -> Result<&'a TileIndex> {
        let loaded = level.index.get_or_init(|| {
            load_tile_index(&self.reader, &level.image, level.across * level.down * planes(&level.format))
                .map_err(|e| e.to_string())
        });
        loaded.as_ref().map_err(|reason| {
            let level = self.tiled.iter().position(|l| std::ptr::eq(l, level)).unwrap_or(0);
            self.err(ErrorKind::TileTable { level, reason: reason.clone() })
        })
    }
}

/// A positive number from a vendor property (comma decimals read, see [`number`]); one that is
/// present but unreadable leaves a `wsiview.warning.KEY` property saying why.
fn vendor_positive(values: &mut std::collections::BTreeMap<String, String>, key: &str) -> Option<f64> {
    let text = values.get(key)?.clone();
    super::number::positive_or_warn(&text, key, values)
}

fn positive(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0)
}

fn describe(reader: &TiffReader, index: usize, ifd: Ifd) -> std::result::Result<ImageIfd, ErrorKind> {
    let width = reader.get_u64(&ifd, tags::IMAGE_WIDTH)?.unwrap_or(0);
    let height = reader.get_u64(&ifd, tags::IMAGE_LENGTH)?.unwrap_or(0);
    let tile = match (reader.get_u64(&ifd, tags::TILE_WIDTH)?, reader.get_u64(&ifd, tags::TILE_LENGTH)?) {
        (Some(w), Some(h)) => Some((w, h)),
        _ => None,
    };
    let compression_code = reader.get_u64(&ifd, tags::COMPRESSION)?.unwrap_or(1) as u16;
    // A description that is not text (wrong type) is ignored rather than refusing the slide.
    let description = reader.get_string(&ifd, tags::IMAGE_DESCRIPTION).ok().flatten();
    Ok(ImageIfd { index, ifd, width, height, tile, compression_code, description })
}

fn read_tiff_properties(reader: &TiffReader, ifd: &Ifd, values: &mut BTreeMap<String, String>) {
    for (tag, name) in [
        (tags::IMAGE_DESCRIPTION, "ImageDescription"),
        (tags::MAKE, "Make"),
        (tags::MODEL, "Model"),
        (tags::SOFTWARE, "Software"),
        (tags::DATE_TIME, "DateTime"),
    ] {
        if let Ok(Some(text)) = reader.get_string(ifd, tag) {
            values.insert(format!("tiff.{name}"), text);
        }
    }
    for (tag, name) in [(tags::X_RESOLUTION, "XResolution"), (tags::Y_RESOLUTION, "YResolution")] {
        if let Ok(Some(v)) = reader.get_f64(ifd, tag) {
            values.insert(format!("tiff.{name}"), format!("{v}"));
        }
    }
    if let Ok(Some(unit)) = reader.get_u64(ifd, tags::RESOLUTION_UNIT) {
        let unit = match unit {
            1 => "none",
            2 => "inch",
            3 => "centimeter",
            _ => "unknown",
        };
        values.insert("tiff.ResolutionUnit".into(), unit.into());
    }
}

/// mpp from XResolution/YResolution (pixels per unit) and ResolutionUnit, as OpenSlide does.
fn resolution_mpp(values: &BTreeMap<String, String>) -> (Option<f64>, Option<f64>) {
    let microns_per_unit = match values.get("tiff.ResolutionUnit").map(String::as_str) {
        Some("inch") => 25_400.0,
        Some("centimeter") => 10_000.0,
        _ => return (None, None),
    };
    let mpp = |key: &str| values.get(key).and_then(|v| positive(v)).map(|px_per_unit| microns_per_unit / px_per_unit);
    (mpp("tiff.XResolution"), mpp("tiff.YResolution"))
}

/// Whether a first-IFD description marks an Aperio SVS file.
fn is_aperio(description: &str) -> bool {
    description.starts_with("Aperio")
}

/// Aperio: tiled IFDs are levels; IFD 1, when stripped, is the thumbnail; other stripped IFDs are
/// the label and macro, named by their description, or else by compression (label LZW, macro JPEG),
/// as OpenSlide decides. `None`: a pyramid level.
fn aperio_associated_name(image: &ImageIfd) -> Option<&'static str> {
    let desc = image.description.as_deref().unwrap_or("").to_ascii_lowercase();
    let named = if desc.contains("label") {
        Some("label")
    } else if desc.contains("macro") {
        Some("macro")
    } else {
        None
    };
    if image.tile.is_some() && named.is_none() {
        return None;
    }
    Some(match named {
        Some(n) => n,
        None if image.index == 1 => "thumbnail",
        None if image.compression_code == 5 => "label",
        None => "macro",
    })
}

/// Split Aperio IFDs into levels and associated images; a second image of a name already taken
/// is ignored.
fn aperio_layout(images: Vec<ImageIfd>) -> (Vec<ImageIfd>, Vec<Associated>) {
    let mut levels = Vec::new();
    let mut associated = Vec::new();
    for image in images {
        let Some(name) = aperio_associated_name(&image) else {
            levels.push(image);
            continue;
        };
        if !associated.iter().any(|a: &Associated| a.name == name) {
            associated.push(Associated { name: name.to_string(), image });
        }
    }
    (levels, associated)
}

/// An IFD of the main chain that the slide reader takes for an associated image.
#[derive(Clone, Debug)]
pub struct AssociatedIfd {
    /// "thumbnail", "label" or "macro" (Aperio), or an OME Image's name.
    pub name: String,
    /// Position in the main chain.
    pub index: usize,
    pub ifd: Ifd,
}

/// An OME-XML ImageDescription (OME-TIFF).
fn is_ome(desc: &str) -> bool {
    desc.trim_start().starts_with("<?xml") && desc.contains("<OME") || desc.trim_start().starts_with("<OME")
}

/// The associated images of a slide's main IFD chain, decided exactly as [`TiffSlide::open`]
/// decides, plus any second image of a name the reader ignores (a duplicate label is still a
/// label: whoever removes labels must find it). Aperio slides and multi-image OME-TIFF have them.
pub fn associated_ifds(reader: &TiffReader) -> std::result::Result<Vec<AssociatedIfd>, ErrorKind> {
    let chain = reader.read_chain(reader.first_ifd, &mut HashSet::new())?;
    let images: Vec<ImageIfd> = chain
        .into_iter()
        .enumerate()
        .map(|(index, ifd)| describe(reader, index, ifd))
        .collect::<std::result::Result<_, _>>()?;
    let description = images.first().and_then(|i| i.description.as_deref()).unwrap_or_default();
    if is_ome(description) {
        let Ok(omes) = super::vendor::parse_ome_images(description) else { return Ok(Vec::new()) };
        let Ok((_, named)) = ome_layout(&omes, &images) else { return Ok(Vec::new()) };
        return Ok(named
            .into_iter()
            .filter_map(|(name, index)| {
                images.get(index).map(|i| AssociatedIfd { name, index: i.index, ifd: i.ifd.clone() })
            })
            .collect());
    }
    if !is_aperio(description) {
        return Ok(Vec::new());
    }
    Ok(images
        .into_iter()
        .filter_map(|image| {
            aperio_associated_name(&image).map(|name| AssociatedIfd {
                name: name.into(),
                index: image.index,
                ifd: image.ifd,
            })
        })
        .collect())
}

/// Where the slide is in a multi-image OME-TIFF: the Image whose main-chain IFD is the largest
/// tiled one (its pyramid in SubIFDs); every other Image is an associated image named by
/// [`super::vendor::ome_associated_name`]. Returns (index into `omes` of the slide, [(name,
/// main-chain index)]), or why the OME-XML cannot be trusted (an Image pointing past the chain or
/// whose size disagrees with its IFD, or no tiled Image).
fn ome_layout(
    omes: &[super::vendor::OmeImage],
    images: &[ImageIfd],
) -> std::result::Result<(usize, Vec<(String, usize)>), String> {
    if omes.is_empty() {
        return Err("the OME-XML has no Image".into());
    }
    for (i, ome) in omes.iter().enumerate() {
        let Some(image) = images.get(ome.ifd) else {
            return Err(format!("OME Image {i} names IFD {} but the file has {}", ome.ifd, images.len()));
        };
        if (image.width, image.height) != (ome.width, ome.height) {
            return Err(format!(
                "OME Image {i} is {}×{} but IFD {} is {}×{}",
                ome.width, ome.height, ome.ifd, image.width, image.height
            ));
        }
    }
    let chosen = omes
        .iter()
        .enumerate()
        .filter(|(_, o)| images[o.ifd].tile.is_some())
        .max_by_key(|(i, o)| (o.width.saturating_mul(o.height), std::cmp::Reverse(*i)))
        .map(|(i, _)| i)
        .ok_or("no OME Image is tiled")?;
    let mut names: Vec<String> = Vec::new();
    let mut associated = Vec::new();
    for (i, ome) in omes.iter().enumerate() {
        if i == chosen || ome.ifd == omes[chosen].ifd {
            continue;
        }
        let mut name = super::vendor::ome_associated_name(ome, i);
        if names.contains(&name) {
            name = format!("{name} ({i})");
        }
        names.push(name.clone());
        associated.push((name, ome.ifd));
    }
    Ok((chosen, associated))
}

/// The main-chain index of the largest tiled image (0 when none is tiled: that is refused later
/// with the reason).
fn largest_tiled(images: &[ImageIfd]) -> usize {
    images
        .iter()
        .enumerate()
        .filter(|(_, i)| i.tile.is_some())
        .max_by_key(|(k, i)| (i.width.saturating_mul(i.height), std::cmp::Reverse(*k)))
        .map_or(0, |(k, _)| k)
}

/// Level 0 plus the tiled images among its SubIFDs (OME-TIFF, libvips `--subifd`).
///
/// A `SubIFDs` entry that is present but unreadable (a wrong type, offset 0, an IFD that cannot be
/// parsed) does not hide behind a smaller pyramid: the levels that can be read are kept and
/// `wsiview.warning.tiff.SubIFDs` in `values` says what was passed over. Loops are errors.
fn subifd_pyramid(
    reader: &TiffReader,
    first: Option<ImageIfd>,
    seen: &mut HashSet<u64>,
    values: &mut std::collections::BTreeMap<String, String>,
) -> std::result::Result<Vec<ImageIfd>, ErrorKind> {
    let Some(first) = first else { return Ok(Vec::new()) };
    let mut levels = Vec::new();
    let mut problems = Vec::new();
    let parent = [first.ifd.offset];
    let mut taken: HashSet<u64> = parent.into();
    let offsets = reader.sub_ifds(&first.ifd).unwrap_or_else(|e| {
        problems.push(format!("the SubIFDs tag is unreadable ({e})"));
        Vec::new()
    });
    for (i, offset) in offsets.into_iter().enumerate() {
        if offset == 0 {
            problems.push(format!("entry {i} is offset 0"));
            continue;
        }
        // SubIFDs may be listed one by one, chained, or both (tifffile, libtiff): an IFD reached
        // again through another path is the same level, taken once. Back to the parent is a loop.
        if parent.contains(&offset) {
            return Err(ErrorKind::IfdLoop(offset));
        }
        let ifds = if !seen.contains(&offset) {
            reader.read_chain_from(offset, seen, &parent)
        } else if !taken.contains(&offset) {
            // Listed here and reached first through another path (e.g. the main chain).
            reader.read_ifd(offset).map(|ifd| vec![ifd])
        } else {
            Ok(Vec::new())
        };
        let ifds = match ifds {
            Ok(ifds) => ifds,
            Err(e @ ErrorKind::IfdLoop(_)) => return Err(e),
            Err(e) => {
                problems.push(format!("entry {i} (offset {offset}) is unreadable ({e})"));
                continue;
            }
        };
        for ifd in ifds {
            if !taken.insert(ifd.offset) {
                continue;
            }
            match describe(reader, first.index, ifd) {
                Ok(image) if image.tile.is_some() => levels.push(image),
                Ok(_) => {}
                Err(e) => problems.push(format!("entry {i} (offset {offset}) is unreadable ({e})")),
            }
        }
    }
    if !problems.is_empty() {
        let text = crate::error::printable(&problems.join("; "));
        values.insert("wsiview.warning.tiff.SubIFDs".into(), format!("levels passed over: {text}"));
    }
    levels.insert(0, first);
    Ok(levels)
}

/// Check every level can be decoded, order levels from largest to smallest.
fn build_levels(reader: &TiffReader, mut images: Vec<ImageIfd>) -> std::result::Result<Vec<TiledLevel>, ErrorKind> {
    if images.is_empty() {
        return Err(ErrorKind::NoLevels(
            "no IFD has TileWidth/TileLength; stripped images are not slides (only tiled pyramidal TIFF is supported)"
                .into(),
        ));
    }
    if images[0].tile.is_none() {
        return Err(ErrorKind::Unsupported {
            ifd: images[0].index,
            what: "stripped image (no TileWidth/TileLength): only tiled pyramidal TIFF is supported".into(),
        });
    }
    images.sort_by_key(|i| std::cmp::Reverse(i.width));
    let mut levels: Vec<TiledLevel> = Vec::with_capacity(images.len());
    for image in images {
        if let Some(prev) = levels.last() {
            // Skip duplicates and images that are not smaller (e.g. a second full-size plane).
            if image.width >= prev.image.width {
                continue;
            }
        }
        let (tw, th) = image.tile.unwrap_or((0, 0));
        let at = image.index;
        if image.width == 0 || image.height == 0 || image.width > MAX_IMAGE_EDGE || image.height > MAX_IMAGE_EDGE {
            return Err(ErrorKind::Unsupported {
                ifd: at,
                what: format!("image size {}×{}", image.width, image.height),
            });
        }
        if tw == 0 || th == 0 || tw > MAX_TILE_EDGE || th > MAX_TILE_EDGE || tw * th > MAX_TILE_PIXELS {
            return Err(ErrorKind::Unsupported { ifd: at, what: format!("tile size {tw}×{th}") });
        }
        let format = chunk_format(reader, &image)?;
        let across = image.width.div_ceil(tw);
        let down = image.height.div_ceil(th);
        levels.push(TiledLevel { image, format, across, down, index: OnceLock::new() });
    }
    Ok(levels)
}

/// How the pixels of an IFD are stored; an `Unsupported` error naming the IFD and the tag value
/// for anything the engine cannot decode.
fn chunk_format(reader: &TiffReader, image: &ImageIfd) -> std::result::Result<ChunkFormat, ErrorKind> {
    let ifd = &image.ifd;
    let at = image.index;
    let unsupported = |what: String| ErrorKind::Unsupported { ifd: at, what };
    let compression = Compression::from_tiff(image.compression_code).ok_or(ErrorKind::UnsupportedCompression {
        ifd: at,
        value: image.compression_code,
        name: compression_name(image.compression_code),
    })?;
    let samples = reader.get_u64(ifd, tags::SAMPLES_PER_PIXEL)?.unwrap_or(1);
    let bits: Vec<u64> = match ifd.get(tags::BITS_PER_SAMPLE) {
        Some(e) => reader.entry_u64s(e)?,
        None => vec![1],
    };
    let depth = bits.first().copied().unwrap_or(8);
    if !(depth == 8 || depth == 16) || bits.iter().any(|&b| b != depth) {
        return Err(unsupported(format!("BitsPerSample {bits:?} (8- and 16-bit samples are supported)")));
    }
    if depth == 16 && compression == Compression::Jpeg {
        return Err(unsupported("16-bit JPEG".into()));
    }
    // Signed 8-bit samples are taken as their bits, as libtiff's RGBA interface (OpenSlide) does.
    if let Some(format) = reader.get_u64(ifd, tags::SAMPLE_FORMAT)? {
        if !(format == 1 || format == 2 && depth == 8) {
            return Err(unsupported(format!(
                "SampleFormat {format} with {depth}-bit samples (unsigned integers, and signed 8-bit, are supported)"
            )));
        }
    }
    let planar = match reader.get_u64(ifd, tags::PLANAR_CONFIGURATION)?.unwrap_or(1) {
        1 => false,
        2 if compression != Compression::Jpeg => true,
        2 => return Err(unsupported("PlanarConfiguration 2 (separate planes) with JPEG".into())),
        p => return Err(unsupported(format!("PlanarConfiguration {p}"))),
    };
    if let Some(depth) = reader.get_u64(ifd, tags::IMAGE_DEPTH)? {
        if depth > 1 {
            return Err(unsupported(format!("ImageDepth {depth} (volumetric)")));
        }
    }
    let photometric_code = reader.get_u64(ifd, tags::PHOTOMETRIC)?.unwrap_or(if samples >= 3 { 2 } else { 1 });
    let photometric = match (photometric_code, compression) {
        (0, _) => Photometric::WhiteIsZero,
        (1, _) => Photometric::BlackIsZero,
        (2, _) => Photometric::Rgb,
        (6, Compression::Jpeg) => Photometric::YCbCr,
        (code, _) => {
            return Err(unsupported(format!(
                "PhotometricInterpretation {code} with {} compression",
                compression.name()
            )))
        }
    };
    match (samples, photometric) {
        (1, Photometric::WhiteIsZero | Photometric::BlackIsZero) => {}
        (3 | 4, Photometric::Rgb | Photometric::YCbCr) => {}
        _ => {
            return Err(unsupported(format!(
                "SamplesPerPixel {samples} with PhotometricInterpretation {photometric_code}"
            )))
        }
    }
    if compression == Compression::Jpeg && samples == 4 {
        return Err(unsupported("JPEG with 4 samples per pixel".into()));
    }
    let horizontal_predictor = match reader.get_u64(ifd, tags::PREDICTOR)?.unwrap_or(1) {
        1 => false,
        2 => true,
        p => return Err(unsupported(format!("Predictor {p}"))),
    };
    let jpeg_tables = match (compression, ifd.get(tags::JPEG_TABLES)) {
        (Compression::Jpeg, Some(e)) => Some(Arc::from(reader.entry_bytes(e)?)),
        _ => None,
    };
    Ok(ChunkFormat {
        compression,
        photometric,
        samples: samples as u16,
        horizontal_predictor,
        jpeg_tables,
        bits: depth as u8,
        big_endian: reader.order == crate::tiff::ByteOrder::Big,
        planar: planar && samples > 1,
    })
}

/// How many chunks make one tile or strip: the samples per pixel for separate planes, else one.
fn planes(format: &ChunkFormat) -> u64 {
    if format.planar {
        u64::from(format.samples)
    } else {
        1
    }
}

fn load_tile_index(
    reader: &TiffReader,
    image: &ImageIfd,
    tile_count: u64,
) -> std::result::Result<TileIndex, ErrorKind> {
    // Old SGI writers stored tile offsets under the strip tags; libtiff reads them, so do we.
    let tiles_under_strip_tags =
        image.ifd.get(tags::TILE_OFFSETS).is_none() && image.ifd.get(tags::STRIP_OFFSETS).is_some();
    let (offsets_tag, counts_tag) = if image.tile.is_some() && !tiles_under_strip_tags {
        (tags::TILE_OFFSETS, tags::TILE_BYTE_COUNTS)
    } else {
        (tags::STRIP_OFFSETS, tags::STRIP_BYTE_COUNTS)
    };
    let entry = |tag| {
        image.ifd.get(tag).ok_or_else(|| ErrorKind::Invalid(format!("IFD {}: tag {tag} is missing", image.index)))
    };
    let (offsets_entry, counts_entry) = (entry(offsets_tag)?, entry(counts_tag)?);
    for e in [offsets_entry, counts_entry] {
        if e.count < tile_count {
            return Err(ErrorKind::Invalid(format!(
                "IFD {}: tag {} lists {} chunks but the image needs {tile_count}",
                image.index, e.tag, e.count
            )));
        }
    }
    let offsets = reader.entry_u64s(offsets_entry)?;
    let byte_counts = reader.entry_u64s(counts_entry)?;
    Ok(TileIndex { offsets, byte_counts })
}

impl TiffSlide {
    fn read_chunk_bytes(&self, index: &TileIndex, i: usize) -> std::result::Result<Option<Vec<u8>>, String> {
        let (offset, len) = (index.offsets[i], index.byte_counts[i]);
        if len == 0 || offset == 0 {
            return Ok(None); // sparse: never written
        }
        if len > MAX_TILE_BYTES {
            return Err(format!("byte count {len} is larger than any real tile"));
        }
        self.reader.read_bytes(offset, len, "tile data").map(Some).map_err(|e| e.to_string())
    }

    /// Decode a whole image (an associated image) from its strips or tiles.
    fn decode_whole(&self, name: &str, image: &ImageIfd) -> Result<image::RgbaImage> {
        let bad = |reason: String| self.err(ErrorKind::CorruptAssociated { name: name.into(), reason });
        let (w, h) = (image.width, image.height);
        if w == 0 || h == 0 || w.saturating_mul(h) > MAX_ASSOCIATED_PIXELS {
            return Err(bad(format!("size {w}×{h}")));
        }
        let format = chunk_format(&self.reader, image).map_err(|e| bad(e.to_string()))?;
        let (chunk_w, chunk_h) = match image.tile {
            Some(t) => t,
            None => {
                let rows = self.reader.get_u64(&image.ifd, tags::ROWS_PER_STRIP).map_err(|e| bad(e.to_string()))?;
                (w, rows.unwrap_or(h).clamp(1, h))
            }
        };
        if chunk_w == 0 || chunk_w.saturating_mul(chunk_h) > MAX_TILE_PIXELS * 4 {
            return Err(bad(format!("chunk size {chunk_w}×{chunk_h}")));
        }
        let across = w.div_ceil(chunk_w);
        let down = h.div_ceil(chunk_h);
        let per_plane = across * down;
        let index =
            load_tile_index(&self.reader, image, per_plane * planes(&format)).map_err(|e| bad(e.to_string()))?;
        let mut out = image::RgbaImage::new(w as u32, h as u32);
        for row in 0..down {
            for col in 0..across {
                let i = (row * across + col) as usize;
                // The last strip may hold fewer rows; uncompressed and LZW/Deflate strips are cut short.
                let rows_here = if image.tile.is_none() { chunk_h.min(h - row * chunk_h) } else { chunk_h };
                let rows_decoded = if format.compression == Compression::Jpeg { chunk_h } else { rows_here };
                let rgba = if format.planar {
                    let planes = (0..planes(&format))
                        .map(|p| self.read_chunk_bytes(&index, (p * per_plane) as usize + i))
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(&bad)?;
                    decode_planes(&format, &planes, chunk_w as u32, rows_decoded as u32).map_err(&bad)?
                } else {
                    let Some(data) = self.read_chunk_bytes(&index, i).map_err(&bad)? else { continue };
                    decode_chunk(&format, &data, chunk_w as u32, rows_decoded as u32).map_err(&bad)?
                };
                blit(&mut out, &rgba, chunk_w, rows_here.min(rows_decoded), col * chunk_w, row * chunk_h);
            }
        }
        Ok(out)
    }
}

/// Copy a chunk into an image at (x, y), clipped to the image.
fn blit(out: &mut image::RgbaImage, rgba: &[u8], chunk_w: u64, chunk_h: u64, x: u64, y: u64) {
    let (w, h) = (u64::from(out.width()), u64::from(out.height()));
    let copy_w = chunk_w.min(w.saturating_sub(x)) as usize * 4;
    let buf: &mut [u8] = out;
    for r in 0..chunk_h.min(h.saturating_sub(y)) {
        let src = &rgba[(r * chunk_w * 4) as usize..][..copy_w];
        let dst_at = (((y + r) * w + x) * 4) as usize;
        buf[dst_at..dst_at + copy_w].copy_from_slice(src);
    }
}

/// A tile's stored bytes and how to decode them (for decoder comparisons and pass-through).
pub struct RawTile {
    pub data: Vec<u8>,
    pub format: ChunkFormat,
    pub width: u32,
    pub height: u32,
}

impl TiffSlide {
    /// The stored (still compressed) bytes of one tile; `None` for a tile never written.
    pub fn read_raw_tile(&self, level: usize, col: u64, row: u64) -> Result<Option<RawTile>> {
        if self.tiled.get(level).is_some_and(|l| l.format.planar) {
            return Err(self.err(ErrorKind::Unsupported {
                ifd: self.tiled[level].image.index,
                what: "a raw tile of separate planes (PlanarConfiguration 2) is not one chunk".into(),
            }));
        }
        let (l, data) = self.tile_bytes(level, col, row)?;
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        Ok(data.map(|data| RawTile { data, format: l.format.clone(), width: tw as u32, height: th as u32 }))
    }

    /// The level of a tile, with the tile checked to exist.
    fn checked_tile(&self, level: usize, col: u64, row: u64) -> Result<&TiledLevel> {
        let l =
            self.tiled.get(level).ok_or_else(|| self.err(ErrorKind::NoSuchLevel { level, count: self.tiled.len() }))?;
        if col >= l.across || row >= l.down {
            return Err(self.err(ErrorKind::NoSuchTile { level, col, row, cols: l.across, rows: l.down }));
        }
        Ok(l)
    }

    /// A tile of a level stored as separate planes: one chunk per sample, `across × down` apart.
    fn decode_planar_tile(&self, level: usize, col: u64, row: u64) -> Result<TilePixels> {
        let l = self.checked_tile(level, col, row)?;
        let corrupt = |reason: String| self.err(ErrorKind::CorruptTile { level, col, row, reason });
        let index = self.tile_index(l)?;
        let per_plane = l.across * l.down;
        let planes = (0..planes(&l.format))
            .map(|p| self.read_chunk_bytes(index, (p * per_plane + row * l.across + col) as usize))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        let rgba = decode_planes(&l.format, &planes, tw as u32, th as u32).map_err(corrupt)?;
        Ok(TilePixels { width: tw as u32, height: th as u32, rgba })
    }

    /// A tile's level and stored bytes (`None`: never written), with the tile checked to exist.
    fn tile_bytes(&self, level: usize, col: u64, row: u64) -> Result<(&TiledLevel, Option<Vec<u8>>)> {
        let l = self.checked_tile(level, col, row)?;
        let index = self.tile_index(l)?;
        let data = self
            .read_chunk_bytes(index, (row * l.across + col) as usize)
            .map_err(|reason| self.err(ErrorKind::CorruptTile { level, col, row, reason }))?;
        Ok((l, data))
    }
}

impl SlideSource for TiffSlide {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format_name(&self) -> &'static str {
        self.format_name
    }

    fn levels(&self) -> &[LevelInfo] {
        &self.levels
    }

    fn properties(&self) -> &SlideProperties {
        &self.properties
    }

    fn associated_names(&self) -> Vec<String> {
        self.associated.iter().map(|a| a.name.clone()).collect()
    }

    fn read_associated(&self, name: &str) -> Result<image::RgbaImage> {
        let found = self.associated.iter().find(|a| a.name == name).ok_or_else(|| {
            let names = self.associated_names();
            self.err(ErrorKind::NoSuchAssociated {
                name: name.into(),
                available: if names.is_empty() { "none".into() } else { names.join(", ") },
            })
        })?;
        self.decode_whole(name, &found.image)
    }

    fn decode_tile(&self, level: usize, col: u64, row: u64) -> Result<TilePixels> {
        if self.tiled.get(level).is_some_and(|l| l.format.planar) {
            return self.decode_planar_tile(level, col, row);
        }
        let (l, data) = self.tile_bytes(level, col, row)?;
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        let corrupt = |reason: String| self.err(ErrorKind::CorruptTile { level, col, row, reason });
        let Some(data) = data else {
            return Ok(TilePixels { width: tw as u32, height: th as u32, rgba: vec![0; (tw * th * 4) as usize] });
        };
        let rgba = decode_chunk(&l.format, &data, tw as u32, th as u32).map_err(corrupt)?;
        Ok(TilePixels { width: tw as u32, height: th as u32, rgba })
    }
}
