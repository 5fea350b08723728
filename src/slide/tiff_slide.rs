//! Tiled pyramidal TIFF slides: generic (pyramid in the main IFD chain or in SubIFDs), Aperio SVS
//! and OME-TIFF. IFDs are parsed once at open; each level's tile offset table is loaded on first
//! use, so opening a 100,000-pixel-wide slide reads a few kilobytes.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::{LevelInfo, SlideProperties, SlideSource, TilePixels};
use crate::error::{ErrorKind, Result, SlideError};
use crate::tiff::tags::{self, compression_name};
use crate::tiff::{FileSource, Ifd, TiffReader};
use crate::tiles::codec::{decode_chunk, decode_planes, ChunkFormat, Compression, Photometric};

/// The facts of one IFD that decide whether and how it can be read.
#[derive(Clone, Debug)]
pub(crate) struct ImageIfd {
    /// Position in the main chain (SubIFDs get the index of their parent); for messages.
    pub index: usize,
    pub ifd: Ifd,
    pub width: u64,
    pub height: u64,
    pub tile: Option<(u64, u64)>,
    pub compression_code: u16,
    pub description: Option<String>,
}

/// Tile offsets and byte counts of one level.
struct TileIndex {
    offsets: Vec<u64>,
    byte_counts: Vec<u64>,
}

/// Where a level's stored tiles sit in the level.
#[derive(Clone, Debug, Default)]
pub(crate) enum Placement {
    /// Stored tile (col, row) is the level's tile (col, row): the usual pyramid.
    #[default]
    Grid,
    /// The level is painted from pieces of stored tiles, in order (later over earlier); pixels no
    /// piece covers are transparent. The level's tiles (what callers address) are composed from
    /// the pieces they meet. Leica SCN (an image inside a larger collection) and Ventana BIF
    /// (tiles that overlap by the joint info) need it.
    Placed(Vec<Piece>),
}

/// A rectangle of a stored tile painted at a position of the level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Piece {
    /// Stored tile index (row-major in the IFD's tile grid).
    pub tile: u32,
    /// Source rectangle in the stored tile: x, y, width, height (pixels).
    pub src: [u32; 4],
    /// Where the rectangle's top-left corner lands (level pixels; may be negative).
    pub dst: (i64, i64),
}

/// One level as a format lays it out: the IFD that stores it and, where the format says so, its
/// size, downsample and tile placement.
pub(crate) struct LevelPlan {
    pub image: ImageIfd,
    /// The level's size in its own pixels; `None`: the IFD's size. Philips levels are smaller
    /// than their padded IFDs, Leica levels larger (the whole collection).
    pub size: Option<(u64, u64)>,
    /// Level-0 pixels per pixel of this level; `None`: the mean of the width and height ratios.
    pub downsample: Option<f64>,
    pub placement: Placement,
}

impl LevelPlan {
    pub fn plain(image: ImageIfd) -> Self {
        LevelPlan { image, size: None, downsample: None, placement: Placement::Grid }
    }
}

/// Where an associated image's pixels are.
#[derive(Clone, Debug)]
pub(crate) enum AssociatedData {
    /// A stripped or tiled IFD.
    Ifd(ImageIfd),
    /// A whole JPEG held in memory (Philips keeps its label and macro as base64 in the XML).
    Jpeg(Arc<[u8]>),
}

pub(crate) struct AssociatedPlan {
    pub name: String,
    pub data: AssociatedData,
    /// A second image of a name already taken: not listed by the slide, but an image a label
    /// remover must still find.
    pub shadowed: bool,
}

impl AssociatedPlan {
    pub fn ifd(name: &str, image: ImageIfd) -> Self {
        AssociatedPlan { name: name.to_string(), data: AssociatedData::Ifd(image), shadowed: false }
    }
}

/// What a TIFF-based format makes of a file: its name, levels (largest first) and associated
/// images. Properties are filled into [`TiffContext::properties`].
pub(crate) struct TiffLayout {
    pub format_name: &'static str,
    pub levels: Vec<LevelPlan>,
    pub associated: Vec<AssociatedPlan>,
}

/// What a TIFF-based format's layout function reads: the reader, the main IFD chain described,
/// the IFDs read so far (for SubIFDs), and the properties so far (`tiff.*` of IFD 0).
pub(crate) struct TiffContext<'a> {
    pub reader: &'a TiffReader,
    pub images: Vec<ImageIfd>,
    pub seen: HashSet<u64>,
    pub properties: SlideProperties,
}

/// A TIFF-based format's reading of a file (see [`super::format`]).
pub(crate) type LayoutFn = fn(&mut TiffContext) -> std::result::Result<TiffLayout, ErrorKind>;

/// Stored tiles decoded for composing placed levels, kept apart from the slide's tile cache.
const PLACED_CACHE_BYTES: u64 = 64 << 20;

struct TiledLevel {
    image: ImageIfd,
    format: ChunkFormat,
    /// The stored tile grid (the IFD's).
    across: u64,
    down: u64,
    /// The level's tile grid (what callers address).
    level_across: u64,
    level_down: u64,
    /// For a placed level: its pieces, and per level tile (row-major) the pieces meeting it, in
    /// drawing order.
    cover: Option<(Vec<Piece>, Vec<Vec<u32>>)>,
    /// Loaded on first use; an error is kept as text and repeated to every caller.
    index: OnceLock<std::result::Result<TileIndex, String>>,
}

struct Associated {
    name: String,
    data: AssociatedData,
}

/// The TIFF tile engine: a slide whose levels are tiled IFDs (possibly placed from pieces, as
/// Ventana and Leica lay them out), read with the layout of one TIFF-based format. Levels are
/// decoded tile by tile with positional reads, so one `TiffSlide` serves many threads.
pub struct TiffSlide {
    path: PathBuf,
    reader: TiffReader,
    format_name: &'static str,
    levels: Vec<LevelInfo>,
    tiled: Vec<TiledLevel>,
    associated: Vec<Associated>,
    properties: SlideProperties,
    /// Decoded stored tiles of placed levels.
    placed_cache: crate::tiles::TileCache,
}

impl TiffSlide {
    /// Open a TIFF-based slide, with [`crate::Limits::DEFAULT`], by the first TIFF-based format of
    /// the formats table (`slide/format/mod.rs`) that recognises it.
    pub fn open(path: &Path) -> Result<Self> {
        let err = |kind| SlideError::new(path, kind);
        let source = FileSource::open(path).map_err(|e| err(ErrorKind::Io(e)))?;
        let reader = TiffReader::new(Arc::new(source)).map_err(err)?;
        Self::from_reader(path, reader)
    }

    /// Open from any byte source (used by tests and future remote sources).
    pub fn from_reader(path: &Path, reader: TiffReader) -> Result<Self> {
        let layout = super::format::tiff_layout_for(path, &reader)?;
        Self::with_layout(path, reader, layout)
    }

    /// Read the file with one format's layout function.
    pub(crate) fn with_layout(path: &Path, reader: TiffReader, layout: LayoutFn) -> Result<Self> {
        let err = |kind| SlideError::new(path, kind);
        let mut ctx = TiffContext::new(&reader).map_err(err)?;
        let plan = layout(&mut ctx).map_err(err)?;
        let mut properties = ctx.properties;
        if properties.mpp_x.is_none() && properties.mpp_y.is_none() {
            let (x, y) = resolution_mpp(&properties.values);
            properties.mpp_x = x;
            properties.mpp_y = y;
        }
        let (tiled, levels) = build_levels(&reader, plan.levels).map_err(err)?;
        standard_properties(&mut properties, &levels);
        let associated = plan
            .associated
            .into_iter()
            .filter(|a| !a.shadowed)
            .map(|a| Associated { name: a.name, data: a.data })
            .collect();
        Ok(TiffSlide {
            path: path.to_path_buf(),
            reader,
            format_name: plan.format_name,
            levels,
            tiled,
            associated,
            properties,
            placed_cache: crate::tiles::TileCache::new(PLACED_CACHE_BYTES),
        })
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

impl<'a> TiffContext<'a> {
    /// Describe the main chain and read IFD 0's TIFF properties.
    pub fn new(reader: &'a TiffReader) -> std::result::Result<Self, ErrorKind> {
        let mut seen = HashSet::new();
        let chain = reader.read_chain(reader.first_ifd, &mut seen)?;
        let images: Vec<ImageIfd> = chain
            .into_iter()
            .enumerate()
            .map(|(index, ifd)| describe(reader, index, ifd))
            .collect::<std::result::Result<_, _>>()?;
        let first = images.first().ok_or_else(|| ErrorKind::Invalid("no IFDs".into()))?;
        let mut properties = SlideProperties { description: first.description.clone(), ..Default::default() };
        read_tiff_properties(reader, &first.ifd, &mut properties.values);
        Ok(TiffContext { reader, images, seen, properties })
    }

    /// IFD 0's ImageDescription ("" when none).
    pub fn description(&self) -> &str {
        self.images.first().and_then(|i| i.description.as_deref()).unwrap_or("")
    }
}

/// OpenSlide's standard properties (`openslide.vendor`, `openslide.mpp-x`, …,
/// `openslide.level[N].*`), and wsiview's older `mpp-x`/`mpp-y`.
pub(crate) fn standard_properties(properties: &mut SlideProperties, levels: &[LevelInfo]) {
    let values = &mut properties.values;
    values.insert("openslide.vendor".into(), properties.vendor.clone());
    if let Some(mpp) = properties.mpp_x {
        values.insert("mpp-x".into(), format!("{mpp}"));
        values.insert("openslide.mpp-x".into(), format!("{mpp}"));
    }
    if let Some(mpp) = properties.mpp_y {
        values.insert("mpp-y".into(), format!("{mpp}"));
        values.insert("openslide.mpp-y".into(), format!("{mpp}"));
    }
    if let Some(power) = properties.objective_power {
        values.insert("openslide.objective-power".into(), format!("{power}"));
    }
    values.insert("openslide.level-count".into(), levels.len().to_string());
    for (i, l) in levels.iter().enumerate() {
        values.insert(format!("openslide.level[{i}].width"), l.width.to_string());
        values.insert(format!("openslide.level[{i}].height"), l.height.to_string());
        values.insert(format!("openslide.level[{i}].downsample"), format!("{}", l.downsample));
        values.insert(format!("openslide.level[{i}].tile-width"), l.tile_width.to_string());
        values.insert(format!("openslide.level[{i}].tile-height"), l.tile_height.to_string());
    }
}

fn positive(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0)
}

pub(crate) fn describe(reader: &TiffReader, index: usize, ifd: Ifd) -> std::result::Result<ImageIfd, ErrorKind> {
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

pub(crate) fn read_tiff_properties(reader: &TiffReader, ifd: &Ifd, values: &mut BTreeMap<String, String>) {
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
pub(crate) fn resolution_mpp(values: &BTreeMap<String, String>) -> (Option<f64>, Option<f64>) {
    let microns_per_unit = match values.get("tiff.ResolutionUnit").map(String::as_str) {
        Some("inch") => 25_400.0,
        Some("centimeter") => 10_000.0,
        _ => return (None, None),
    };
    let mpp = |key: &str| values.get(key).and_then(|v| positive(v)).map(|px_per_unit| microns_per_unit / px_per_unit);
    (mpp("tiff.XResolution"), mpp("tiff.YResolution"))
}

/// An IFD of the main chain that the slide reader takes for an associated image.
#[derive(Clone, Debug)]
pub struct AssociatedIfd {
    /// "thumbnail", "label" or "macro" (Aperio), or an OME Image's name.
    pub name: String,
    /// Position in the main chain.
    pub index: usize,
    /// The IFD itself (its offset and entries, for an editor that removes it).
    pub ifd: Ifd,
}

/// The associated images of a slide's main IFD chain, decided exactly as [`TiffSlide::open`]
/// decides, plus any second image of a name the reader ignores (a duplicate label is still a
/// label: whoever removes labels must find it). Aperio slides and multi-image OME-TIFF have them.
/// Only Aperio, OME-TIFF and generic TIFF are answered: other formats keep label or macro pixels
/// where removing IFDs cannot reach them (Philips's XML, Leica's second macro resolution, the
/// BIF macro that carries the slide's XMP), so they are refused with the reason.
pub fn associated_ifds(reader: &TiffReader) -> std::result::Result<Vec<AssociatedIfd>, ErrorKind> {
    let (format, _) = super::format::tiff_format_for(Path::new(""), reader).map_err(|e| e.kind)?;
    if !matches!(format.name, "aperio-svs" | "ome-tiff" | "generic-tiff") {
        return Err(ErrorKind::Unsupported {
            ifd: 0,
            what: format!(
                "label and macro removal from {} slides (their identifying images are not only whole IFDs)",
                format.name
            ),
        });
    }
    let layout = super::format::tiff_layout_for(Path::new(""), reader).map_err(|e| e.kind)?;
    let mut ctx = TiffContext::new(reader)?;
    let plan = layout(&mut ctx)?;
    Ok(plan
        .associated
        .into_iter()
        .filter_map(|a| match a.data {
            AssociatedData::Ifd(image) => Some(AssociatedIfd { name: a.name, index: image.index, ifd: image.ifd }),
            AssociatedData::Jpeg(_) => None,
        })
        .collect())
}

/// The main-chain index of the largest tiled image (0 when none is tiled: that is refused later
/// with the reason).
pub(crate) fn largest_tiled(images: &[ImageIfd]) -> usize {
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
pub(crate) fn subifd_pyramid(
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

/// Check every level can be decoded, order levels from largest to smallest (a level not smaller
/// than the one before it, e.g. a second full-size plane, is passed over), and describe them.
fn build_levels(
    reader: &TiffReader,
    mut plans: Vec<LevelPlan>,
) -> std::result::Result<(Vec<TiledLevel>, Vec<LevelInfo>), ErrorKind> {
    if plans.is_empty() {
        return Err(ErrorKind::NoLevels(
            "no IFD has TileWidth/TileLength; stripped images are not slides (only tiled pyramidal TIFF is supported)"
                .into(),
        ));
    }
    if plans[0].image.tile.is_none() {
        return Err(ErrorKind::Unsupported {
            ifd: plans[0].image.index,
            what: "stripped image (no TileWidth/TileLength): only tiled pyramidal TIFF is supported".into(),
        });
    }
    let size = |p: &LevelPlan| p.size.unwrap_or((p.image.width, p.image.height));
    plans.sort_by_key(|p| std::cmp::Reverse(size(p).0));
    let mut levels: Vec<TiledLevel> = Vec::with_capacity(plans.len());
    let mut infos: Vec<LevelInfo> = Vec::with_capacity(plans.len());
    for plan in plans {
        let (width, height) = size(&plan);
        if infos.last().is_some_and(|prev| width >= prev.width) {
            continue;
        }
        let image = plan.image;
        let (tw, th) = image.tile.unwrap_or((0, 0));
        let at = image.index;
        let limits = reader.limits();
        for (w, h) in [(image.width, image.height), (width, height)] {
            if w == 0 || h == 0 || w > limits.image_edge || h > limits.image_edge {
                return Err(ErrorKind::Unsupported { ifd: at, what: format!("image size {w}×{h}") });
            }
        }
        if tw == 0 || th == 0 || tw > limits.tile_edge || th > limits.tile_edge || tw * th > limits.tile_pixels {
            return Err(ErrorKind::Unsupported { ifd: at, what: format!("tile size {tw}×{th}") });
        }
        let format = chunk_format(reader, &image)?;
        let across = image.width.div_ceil(tw);
        let down = image.height.div_ceil(th);
        let (level_across, level_down) = (width.div_ceil(tw), height.div_ceil(th));
        let cover = match plan.placement {
            Placement::Grid => {
                if level_across > across || level_down > down {
                    return Err(ErrorKind::Invalid(format!(
                        "IFD {at}: the level is {width}×{height} but the image stores only {}×{}",
                        image.width, image.height
                    )));
                }
                None
            }
            Placement::Placed(pieces) => {
                let cover = cover_tiles(at, &pieces, (across, down), (tw, th), (width, height), limits.level_tiles)?;
                Some((pieces, cover))
            }
        };
        let downsample = match (plan.downsample, infos.first()) {
            (Some(d), _) => d,
            (None, None) => 1.0,
            (None, Some(l0)) => (l0.width as f64 / width as f64 + l0.height as f64 / height as f64) / 2.0,
        };
        if !(downsample.is_finite() && downsample > 0.0) {
            return Err(ErrorKind::Invalid(format!("IFD {at}: downsample {downsample}")));
        }
        infos.push(LevelInfo {
            width,
            height,
            downsample,
            tile_width: tw as u32,
            tile_height: th as u32,
            compression: format.compression,
        });
        levels.push(TiledLevel {
            image,
            format,
            across,
            down,
            level_across,
            level_down,
            cover,
            index: OnceLock::new(),
        });
    }
    Ok((levels, infos))
}

/// For a placed level: per level tile (row-major), the pieces that meet it, in drawing order.
/// Pieces must lie inside their stored tile and name a stored tile that exists; at most
/// `max_tiles` ([`crate::Limits::level_tiles`]) pieces, and level tiles.
fn cover_tiles(
    at: usize,
    pieces: &[Piece],
    (across, down): (u64, u64),
    (tw, th): (u64, u64),
    (width, height): (u64, u64),
    max_tiles: u64,
) -> std::result::Result<Vec<Vec<u32>>, ErrorKind> {
    let (level_across, level_down) = (width.div_ceil(tw), height.div_ceil(th));
    if pieces.len() as u64 > max_tiles || level_across.saturating_mul(level_down) > max_tiles {
        return Err(ErrorKind::Unsupported {
            ifd: at,
            what: format!("a placed level of {width}×{height} pixels from {} pieces", pieces.len()),
        });
    }
    let mut cover = vec![Vec::new(); (level_across * level_down) as usize];
    for (i, piece) in pieces.iter().enumerate() {
        let [sx, sy, w, h] = piece.src.map(u64::from);
        if u64::from(piece.tile) >= across * down || w == 0 || h == 0 || sx + w > tw || sy + h > th {
            return Err(ErrorKind::Invalid(format!("IFD {at}: tile piece {piece:?} is outside the stored tiles")));
        }
        let (x, y) = piece.dst;
        let (tw, th) = (tw as i64, th as i64);
        // Level tiles this piece meets, clipped to the level.
        let c0 = x.div_euclid(tw).max(0);
        let c1 = (x + w as i64 - 1).div_euclid(tw).min(level_across as i64 - 1);
        let r0 = y.div_euclid(th).max(0);
        let r1 = (y + h as i64 - 1).div_euclid(th).min(level_down as i64 - 1);
        for r in r0..=r1 {
            for c in c0..=c1 {
                cover[(r as u64 * level_across + c as u64) as usize].push(i as u32);
            }
        }
    }
    Ok(cover)
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
    if depth == 16 && matches!(compression, Compression::Jpeg | Compression::Jpeg2000) {
        return Err(unsupported(format!("16-bit {}", compression.name())));
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
        2 if !matches!(compression, Compression::Jpeg | Compression::Jpeg2000) => true,
        2 => return Err(unsupported(format!("PlanarConfiguration 2 (separate planes) with {}", compression.name()))),
        p => return Err(unsupported(format!("PlanarConfiguration {p}"))),
    };
    if let Some(depth) = reader.get_u64(ifd, tags::IMAGE_DEPTH)? {
        if depth > 1 {
            return Err(unsupported(format!("ImageDepth {depth} (volumetric)")));
        }
    }
    let photometric_code = reader.get_u64(ifd, tags::PHOTOMETRIC)?.unwrap_or(if samples >= 3 { 2 } else { 1 });
    let photometric = match (photometric_code, compression) {
        // Aperio's JPEG 2000 codes decide the colour model whatever the tag says (OpenSlide).
        (_, Compression::Jpeg2000) if image.compression_code == 33003 => Photometric::YCbCr,
        (1 | 2 | 6, Compression::Jpeg2000) => Photometric::Rgb,
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
        if len > self.reader.limits().tile_bytes {
            return Err(format!("byte count {len} is larger than any real tile"));
        }
        self.reader.read_data(offset, len, "tile data").map(Some).map_err(|e| e.to_string())
    }

    /// Decode a whole image (an associated image) from its strips or tiles.
    fn decode_whole(&self, name: &str, image: &ImageIfd) -> Result<image::RgbaImage> {
        let bad = |reason: String| self.err(ErrorKind::CorruptAssociated { name: name.into(), reason });
        let (w, h) = (image.width, image.height);
        let limits = self.reader.limits();
        if w == 0 || h == 0 || w.saturating_mul(h) > limits.associated_pixels {
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
        if chunk_w == 0 || chunk_w.saturating_mul(chunk_h) > limits.tile_pixels.saturating_mul(4) {
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
                    decode_planes(&format, &planes, chunk_w as u32, rows_decoded as u32).map_err(|e| bad(e.into()))?
                } else {
                    let Some(data) = self.read_chunk_bytes(&index, i).map_err(&bad)? else { continue };
                    decode_chunk(&format, &data, chunk_w as u32, rows_decoded as u32).map_err(|e| bad(e.into()))?
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
    /// The tile's bytes as stored (a JPEG stream without the shared tables, a JPEG 2000
    /// codestream, …).
    pub data: Vec<u8>,
    /// How to decode `data` ([`crate::tiles::codec::decode_chunk`]).
    pub format: ChunkFormat,
    /// Pixels across the tile.
    pub width: u32,
    /// Pixels down the tile.
    pub height: u32,
}

impl TiffSlide {
    /// The stored (still compressed) bytes of one tile; `None` for a tile never written.
    pub fn read_raw_tile(&self, level: usize, col: u64, row: u64) -> Result<Option<RawTile>> {
        let l = self.checked_tile(level, col, row)?;
        if l.format.planar || l.cover.is_some() {
            return Err(self.err(ErrorKind::Unsupported {
                ifd: l.image.index,
                what: "a raw tile of separate planes or of placed tiles is not one chunk".into(),
            }));
        }
        let index = self.tile_index(l)?;
        let data = self
            .read_chunk_bytes(index, (row * l.across + col) as usize)
            .map_err(|reason| self.err(ErrorKind::CorruptTile { level, col, row, reason }))?;
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        Ok(data.map(|data| RawTile { data, format: l.format.clone(), width: tw as u32, height: th as u32 }))
    }

    /// The stored bytes of several tiles of one level, as [`read_raw_tile`](Self::read_raw_tile)
    /// gives them, in the order asked; tiles that lie back to back in the file are read together,
    /// up to 8 MiB at a time (a converter copying every tile then makes a few thousand reads, not
    /// one per tile).
    pub fn read_raw_tiles(&self, level: usize, tiles: &[(u64, u64)]) -> Result<Vec<Option<RawTile>>> {
        const RUN_BYTES: u64 = 8 << 20;
        let Some(&(c0, r0)) = tiles.first() else { return Ok(Vec::new()) };
        let l = self.checked_tile(level, c0, r0)?;
        if l.format.planar || l.cover.is_some() {
            return Err(self.err(ErrorKind::Unsupported {
                ifd: l.image.index,
                what: "a raw tile of separate planes or of placed tiles is not one chunk".into(),
            }));
        }
        let index = self.tile_index(l)?;
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        let max = self.reader.limits().tile_bytes;
        // (offset, length) of each tile; length 0: never written.
        let mut spans = Vec::with_capacity(tiles.len());
        for &(col, row) in tiles {
            self.checked_tile(level, col, row)?;
            let i = (row * l.across + col) as usize;
            let (offset, len) = (index.offsets[i], index.byte_counts[i]);
            if len > max {
                let reason = format!("byte count {len} is larger than any real tile");
                return Err(self.err(ErrorKind::CorruptTile { level, col, row, reason }));
            }
            spans.push(if offset == 0 || len == 0 { (0, 0) } else { (offset, len) });
        }
        let mut out = Vec::with_capacity(tiles.len());
        let mut k = 0;
        while k < spans.len() {
            if spans[k].1 == 0 {
                out.push(None);
                k += 1;
                continue;
            }
            // The run of tiles from k stored one after the other.
            let start = spans[k].0;
            let mut end = k + 1;
            let mut run_end = start + spans[k].1;
            while end < spans.len()
                && spans[end].1 > 0
                && spans[end].0 == run_end
                && run_end - start + spans[end].1 <= RUN_BYTES
            {
                run_end += spans[end].1;
                end += 1;
            }
            let (col, row) = tiles[k];
            let data = self
                .reader
                .read_data(start, run_end - start, "tile data")
                .map_err(|e| self.err(ErrorKind::CorruptTile { level, col, row, reason: e.to_string() }))?;
            for &(offset, len) in &spans[k..end] {
                let at = (offset - start) as usize;
                let data = data[at..at + len as usize].to_vec();
                out.push(Some(RawTile { data, format: l.format.clone(), width: tw as u32, height: th as u32 }));
            }
            k = end;
        }
        Ok(out)
    }

    /// Whether [`read_raw_tile`](Self::read_raw_tile) answers for `level`: its level tiles are
    /// stored tiles (not composed from placed pieces) of interleaved samples (one chunk each).
    pub fn raw_tiles_available(&self, level: usize) -> bool {
        self.tiled.get(level).is_some_and(|l| !l.format.planar && l.cover.is_none())
    }

    /// The level of a tile, with the tile checked to exist in the level's grid.
    fn checked_tile(&self, level: usize, col: u64, row: u64) -> Result<&TiledLevel> {
        let l =
            self.tiled.get(level).ok_or_else(|| self.err(ErrorKind::NoSuchLevel { level, count: self.tiled.len() }))?;
        if col >= l.level_across || row >= l.level_down {
            return Err(self.err(ErrorKind::NoSuchTile { level, col, row, cols: l.level_across, rows: l.level_down }));
        }
        Ok(l)
    }

    /// Decode stored tile `i` (row-major in the IFD's grid) of a level: RGBA of the stored tile
    /// size, `None` for a tile never written. Errors are reasons; the caller names the tile.
    fn decode_stored(&self, l: &TiledLevel, index: &TileIndex, i: u64) -> std::result::Result<Option<Vec<u8>>, String> {
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        if l.format.planar {
            let per_plane = l.across * l.down;
            let planes = (0..planes(&l.format))
                .map(|p| self.read_chunk_bytes(index, (p * per_plane + i) as usize))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            if planes.iter().all(Option::is_none) {
                return Ok(None);
            }
            return Ok(Some(decode_planes(&l.format, &planes, tw as u32, th as u32)?));
        }
        match self.read_chunk_bytes(index, i as usize)? {
            None => Ok(None),
            Some(data) => Ok(Some(decode_chunk(&l.format, &data, tw as u32, th as u32)?)),
        }
    }

    /// A tile of a placed level: the pieces meeting it, drawn in order; transparent elsewhere.
    fn decode_placed(&self, level: usize, l: &TiledLevel, col: u64, row: u64) -> Result<TilePixels> {
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        let mut out = image::RgbaImage::new(tw as u32, th as u32);
        let Some((pieces, cover)) = &l.cover else {
            return Ok(TilePixels { width: tw as u32, height: th as u32, rgba: out.into_raw() });
        };
        let (x0, y0) = ((col * tw) as i64, (row * th) as i64);
        for &p in cover.get((row * l.level_across + col) as usize).into_iter().flatten() {
            let Some(piece) = pieces.get(p as usize) else { continue };
            let key = crate::tiles::TileKey { slide: 0, level: level as u32, col: u64::from(piece.tile), row: 0 };
            let stored = match self.placed_cache.get(&key) {
                Some(t) => t,
                None => {
                    let rgba = self
                        .decode_stored(l, self.tile_index(l)?, u64::from(piece.tile))
                        .map_err(|reason| self.err(ErrorKind::CorruptTile { level, col, row, reason }))?;
                    let Some(rgba) = rgba else { continue };
                    let t = Arc::new(TilePixels { width: tw as u32, height: th as u32, rgba });
                    self.placed_cache.insert(key, t.clone());
                    t
                }
            };
            blit_piece(&mut out, &stored, piece.src, (piece.dst.0 - x0, piece.dst.1 - y0));
        }
        Ok(TilePixels { width: tw as u32, height: th as u32, rgba: out.into_raw() })
    }
}

/// Copy the `src` rectangle (x, y, w, h) of a decoded tile into `out` with its corner at `at`
/// (may be negative), clipped to `out`.
fn blit_piece(out: &mut image::RgbaImage, tile: &TilePixels, src: [u32; 4], at: (i64, i64)) {
    let (ow, oh) = (i64::from(out.width()), i64::from(out.height()));
    let [sx, sy, w, h] = src.map(i64::from);
    let (x, y) = at;
    let (x0, x1) = (x.max(0), (x + w).min(ow));
    let (y0, y1) = (y.max(0), (y + h).min(oh));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let run = ((x1 - x0) * 4) as usize;
    let stride = i64::from(tile.width);
    let buf: &mut [u8] = out;
    for yy in y0..y1 {
        let from = (((sy + yy - y) * stride + sx + (x0 - x)) * 4) as usize;
        let to = ((yy * ow + x0) * 4) as usize;
        if let (Some(dst), Some(src)) = (buf.get_mut(to..to + run), tile.rgba.get(from..from + run)) {
            dst.copy_from_slice(src);
        }
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
        let found = self
            .associated
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| self.err(ErrorKind::no_such_associated(name, &self.associated_names())))?;
        match &found.data {
            AssociatedData::Ifd(image) => self.decode_whole(name, image),
            AssociatedData::Jpeg(bytes) => {
                crate::tiles::codec::decode_jpeg_image(bytes, self.reader.limits().associated_pixels)
                    .map_err(|e| self.err(ErrorKind::CorruptAssociated { name: name.into(), reason: e.into() }))
            }
        }
    }

    fn decode_tile_reduced(&self, level: usize, col: u64, row: u64, reduce: u8) -> Result<TilePixels> {
        let l = self.checked_tile(level, col, row)?;
        if reduce == 0 || l.cover.is_some() || l.format.compression != Compression::Jpeg2000 {
            return self.decode_tile(level, col, row);
        }
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        let index = self.tile_index(l)?;
        let corrupt = |reason: String| self.err(ErrorKind::CorruptTile { level, col, row, reason });
        let Some(data) = self.read_chunk_bytes(index, (row * l.across + col) as usize).map_err(corrupt)? else {
            let (w, h) = ((tw >> reduce).max(1) as u32, (th >> reduce).max(1) as u32);
            return Ok(TilePixels { width: w, height: h, rgba: vec![0; (w * h * 4) as usize] });
        };
        let (width, height, rgba) =
            crate::tiles::codec::decode_j2k_reduced(&l.format, &data, tw as u32, th as u32, reduce)
                .map_err(|e| corrupt(e.into()))?;
        Ok(TilePixels { width, height, rgba })
    }

    fn decode_tile(&self, level: usize, col: u64, row: u64) -> Result<TilePixels> {
        let l = self.checked_tile(level, col, row)?;
        if l.cover.is_some() {
            return self.decode_placed(level, l, col, row);
        }
        let (tw, th) = l.image.tile.unwrap_or((0, 0));
        let rgba = self
            .decode_stored(l, self.tile_index(l)?, row * l.across + col)
            .map_err(|reason| self.err(ErrorKind::CorruptTile { level, col, row, reason }))?
            .unwrap_or_else(|| vec![0; (tw * th * 4) as usize]);
        Ok(TilePixels { width: tw as u32, height: th as u32, rgba })
    }
}
