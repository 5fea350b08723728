//! DICOM whole-slide images (VL Whole Slide Microscopy Image Storage), as OpenSlide 4 reads them.
//! A slide is a series: one instance (file) per pyramid level, or several (concatenations), plus
//! LABEL, OVERVIEW and THUMBNAIL instances, all sharing a SeriesInstanceUID. Open any instance
//! (its folder is searched for the others) or the folder itself.
//!
//! - Levels: VOLUME instances (ImageType value 3; with no ImageType at all, as OrthancWSIDicomizer
//!   1.1 writes, an instance with a total pixel matrix), grouped by TotalPixelMatrixColumns/Rows and
//!   sorted by width; downsample = mean of the width and height ratios to level 0; tile = the
//!   frame size (Columns × Rows).
//! - Frames: TILED_FULL (row-major, edge frames padded) or TILED_SPARSE (Per-Frame Functional
//!   Groups → Plane Position (Slide)); a tile with no frame is transparent. The first focal plane
//!   and optical path only.
//! - Pixels: JPEG baseline, JPEG 2000, uncompressed little endian. The data set up to PixelData
//!   is read with dicom-object; frames are fetched lazily by positional reads from each
//!   instance's frame table (extended or basic offset table, or the fragments walked), see
//!   [`parse`].
//! - LABEL → "label", OVERVIEW → "macro", THUMBNAIL → "thumbnail".
//! - mpp-y/x = 1000 × PixelSpacing[0]/[1] of level 0's shared functional groups; objective =
//!   ObjectiveLensPower of its first optical path.
//!
//! Reference: OpenSlide's `openslide-vendor-dicom.c`, DICOM PS3.3 A.32.8 and C.8.12.

mod instance;
mod parse;
mod web;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Format, Opener, Probe};
use crate::error::{printable, ErrorKind, Result, SlideError};
use crate::limits::Limits;
use crate::slide::tiff_slide::standard_properties;
use crate::slide::{LevelInfo, SlideProperties, SlideSource, TilePixels};
use crate::tiles::codec::{decode_chunk, decode_planes};
use instance::{Instance, Pixels, Role};

pub(super) const FORMAT: Format = Format { name: "dicom", detect, open: Opener::Other(open) };

fn detect(probe: &Probe) -> bool {
    if probe.head.get(128..132) == Some(b"DICM") {
        // A dual-personality DICOM-TIFF named .tif/.tiff is left to the TIFF readers, as OpenSlide does.
        let tiff_name =
            probe.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tif") || e.eq_ignore_ascii_case("tiff"));
        return !(probe.tiff.is_some() && tiff_name);
    }
    probe.head.is_empty() && probe.path.is_dir() && list_folder(probe.path, probe.limits).0.iter().any(|p| has_dicm(p))
}

/// Regular files of a folder (at most [`Limits::dicom_scan_entries`] entries looked at), sorted
/// by name; and whether entries were left unread.
fn list_folder(dir: &Path, limits: &Limits) -> (Vec<PathBuf>, bool) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (Vec::new(), false) };
    let mut files = Vec::new();
    let mut more = false;
    for (n, entry) in entries.enumerate() {
        if n >= limits.dicom_scan_entries {
            more = true;
            break;
        }
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if path.metadata().is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    (files, more)
}

/// Whether a file has the DICOM preamble's "DICM" at byte 128 (any read problem: no).
fn has_dicm(path: &Path) -> bool {
    use crate::tiff::ByteSource;
    let Ok(src) = crate::tiff::FileSource::open(path) else { return false };
    let mut magic = [0u8; 4];
    src.len() >= 132 && src.read_exact_at(128, &mut magic).is_ok() && &magic == b"DICM"
}

fn open(probe: &Probe) -> Result<Arc<dyn SlideSource>> {
    let (path, limits) = (probe.path, probe.limits);
    let slide = if path.is_dir() { open_folder(path, limits)? } else { open_file(path, limits)? };
    Ok(Arc::new(slide))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Warnings about files passed over, as `wsiview.warning.dicom.*` properties.
#[derive(Default)]
struct Warnings(Vec<(String, String)>);

impl Warnings {
    fn add(&mut self, what: &str, text: String) {
        self.0.push((format!("wsiview.warning.dicom.{}", printable(what)), printable(&text)));
    }

    /// The folder had more than [`Limits::dicom_scan_entries`] entries.
    fn scan_cut_short(&mut self, limits: &Limits) {
        let max = limits.dicom_scan_entries;
        self.add("scan", format!("only the first {max} entries of the folder were searched"));
    }
}

/// Open one instance and the instances of its series beside it.
fn open_file(path: &Path, limits: &Limits) -> Result<DicomSlide> {
    let err = |kind| SlideError::new(path, kind);
    let (first, series) = Instance::open(path, None, false, limits)
        .map_err(err)?
        .ok_or_else(|| err(ErrorKind::InvalidDicom("not a whole-slide image".into())))?;
    let mut warnings = Warnings::default();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (files, more) = list_folder(dir, limits);
    if more {
        warnings.scan_cut_short(limits);
    }
    let own = path.file_name();
    let mut instances = vec![first];
    for sibling in files.iter().filter(|p| p.file_name() != own && has_dicm(p)) {
        match Instance::open(sibling, Some(&series), true, limits) {
            Ok(Some((instance, _))) => instances.push(instance),
            Ok(None) => {}
            Err(e) => warnings.add(&file_name(sibling), format!("skipped: {e}")),
        }
    }
    DicomSlide::build(path, instances, warnings, limits)
}

/// Open the series in a folder (the one with the largest VOLUME image, when there are several).
fn open_folder(dir: &Path, limits: &Limits) -> Result<DicomSlide> {
    let mut warnings = Warnings::default();
    let (files, more) = list_folder(dir, limits);
    if more {
        warnings.scan_cut_short(limits);
    }
    let mut by_series: Vec<(String, Vec<Instance>)> = Vec::new();
    let mut failures = Vec::new();
    for file in files.iter().filter(|p| has_dicm(p)) {
        match Instance::open(file, None, true, limits) {
            Ok(Some((instance, series))) => match by_series.iter_mut().find(|(s, _)| *s == series) {
                Some((_, list)) => list.push(instance),
                None => by_series.push((series, vec![instance])),
            },
            Ok(None) => {}
            Err(e) => {
                failures.push(format!("{}: {e}", file_name(file)));
                warnings.add(&file_name(file), format!("skipped: {e}"));
            }
        }
    }
    let largest = |list: &Vec<Instance>| {
        list.iter().filter(|i| i.role == Role::Level).map(|i| i.width * i.height).max().unwrap_or(0)
    };
    let Some(best) = (0..by_series.len()).rev().max_by_key(|&i| largest(&by_series[i].1)) else {
        let why = match failures.first() {
            Some(f) => format!("no readable DICOM whole-slide image in this folder ({f})"),
            None => "no DICOM whole-slide image (VL Whole Slide Microscopy) in this folder".into(),
        };
        return Err(SlideError::new(dir, ErrorKind::NoLevels(why)));
    };
    let (_, instances) = by_series.swap_remove(best);
    if by_series.iter().any(|(_, l)| !l.is_empty()) {
        warnings.add("other-series", format!("{} other series in the folder not shown", by_series.len()));
    }
    DicomSlide::build(dir, instances, warnings, limits)
}

/// Open the series at a DICOMweb URL (`…/studies/S/series/SE`): its metadata, then the first
/// batch of its coarsest level, whose reply gives the series' transfer syntax (see [`web`]).
/// The slide is named by the redacted URL.
pub(crate) fn open_series_url(location: &str, limits: &Limits) -> Result<Arc<dyn SlideSource>> {
    let shown = crate::remote::redact(location);
    let err = |kind| SlideError::new(Path::new(&shown), kind);
    let remote = |e: crate::remote::RemoteError| err(ErrorKind::Io(e.into()));
    let series = web::read_series(location, limits.tile_bytes, limits.level_tiles).map_err(remote)?;
    let mut warnings = Warnings::default();
    for (what, text) in series.warnings {
        warnings.add(&what, text);
    }
    let frames = series.frames;
    let volume = |obj: &dicom_object::InMemDicomObject| instance::image_type(obj).as_deref() == Some("VOLUME");
    let width = |obj: &dicom_object::InMemDicomObject| instance::total_columns(obj).unwrap_or(u64::MAX);
    let Some(probe) = (0..series.data_sets.len())
        .filter(|&i| volume(&series.data_sets[i]))
        .min_by_key(|&i| width(&series.data_sets[i]))
    else {
        let n = series.data_sets.len();
        return Err(err(ErrorKind::NoLevels(format!(
            "no VOLUME instance of VL Whole Slide Microscopy in the series ({n} whole-slide instance{})",
            if n == 1 { "" } else { "s" }
        ))));
    };
    let frame_error = |reason: String| err(ErrorKind::Io(std::io::Error::other(reason)));
    let mut first = frames.frame(probe, 0).map_err(frame_error)?;
    // Stored in a syntax wsiview cannot decode: ask for uncompressed frames instead.
    if let Some(ts) = first.transfer_syntax.as_deref().filter(|ts| instance::compression_of(ts).is_err()) {
        let ts = printable(ts);
        frames.fall_back(web::FrameAccept::Stored, &format!("stored in transfer syntax {ts}"));
        first = frames.frame(probe, 0).map_err(frame_error)?;
    }
    // Rendered frames decode as the images they are; the syntax only sets the levels' compression.
    let ts = first.transfer_syntax.clone().unwrap_or_else(|| "1.2.840.10008.1.2.4.50".into());
    if frames.accept() != web::FrameAccept::Stored {
        warnings.add("frames", format!("the server sends frames {}, not as stored", frames.accept().describe()));
    }
    let mut instances = Vec::new();
    for (i, obj) in series.data_sets.iter().enumerate() {
        let uid = frames.instances[i].uid.clone();
        match Instance::from_dataset(uid.clone(), instance::PixelsAt::Web(frames.clone(), i), &ts, obj, limits) {
            Ok(instance) => {
                let across = instance.width.div_ceil(u64::from(instance.tile_w));
                let down = instance.height.div_ceil(u64::from(instance.tile_h));
                if instance.positions.is_none() && instance.concat_offset == 0 && instance.frames == across * down {
                    frames.set_tile_grid(i, across);
                }
                instances.push(instance)
            }
            Err(e) => warnings.add(&uid, format!("skipped: {e}")),
        }
    }
    Ok(Arc::new(DicomSlide::build(Path::new(&shown), instances, warnings, limits)?))
}

/// The instance files of the DICOM series at `path` (a file of it, or its folder), sorted by
/// SOPInstanceUID (then name): every DICOM file of the folder with the series' UID, whatever
/// its SOP class, one per SOPInstanceUID, as a PACS holds the series (files that do not read
/// as DICOM are passed over). The series is `series` when given, else the
/// file's own, else (a folder) the one the reader shows. Returns the series UID too.
pub(crate) fn series_files(
    path: &Path,
    series: Option<&str>,
    limits: &Limits,
) -> Result<(String, Vec<(String, PathBuf)>)> {
    let err = |kind| SlideError::new(path, kind);
    let (dir, series) = if path.is_dir() {
        let series = match series {
            Some(s) => s.to_string(),
            None => {
                let slide = open_folder(path, limits)?;
                let key = "dicom.SeriesInstanceUID";
                slide.properties.values.get(key).cloned().unwrap_or_default()
            }
        };
        (path.to_path_buf(), series)
    } else {
        let own = Instance::read_uids(path, limits).map_err(err)?.1;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (dir, series.map_or(own, str::to_string))
    };
    if series.is_empty() {
        return Err(err(ErrorKind::InvalidDicom("no SeriesInstanceUID".into())));
    }
    let (files, more) = list_folder(&dir, limits);
    if more {
        let max = limits.dicom_scan_entries;
        return Err(err(ErrorKind::TooLarge(format!(
            "a folder of over {max} entries: the series cannot be listed whole"
        ))));
    }
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    // Files that do not read as DICOM are passed over, as opening the folder does.
    for file in files.iter().filter(|p| has_dicm(p)) {
        if let Ok((sop, s)) = Instance::read_uids(file, limits) {
            if s == series {
                out.push((sop, file.clone()));
            }
        }
    }
    // One file per instance, as a PACS keeps it (the first by name of copies).
    out.sort();
    out.dedup_by(|b, a| a.0 == b.0);
    Ok((series, out))
}

/// Where the frames of one level (or associated image) are.
struct Grid {
    width: u64,
    height: u64,
    tile_w: u32,
    tile_h: u32,
    across: u64,
    down: u64,
    /// The instances holding its frames (concatenation parts sorted by frame offset).
    parts: Vec<Arc<Instance>>,
    /// TILED_SPARSE: tile → (part, frame). `None`: TILED_FULL, frame = row × across + col.
    sparse: Option<HashMap<(u64, u64), (usize, u64)>>,
}

impl Grid {
    fn new(mut parts: Vec<Arc<Instance>>) -> Grid {
        parts.sort_by_key(|p| p.concat_offset);
        let first = &parts[0];
        let (width, height, tile_w, tile_h) = (first.width, first.height, first.tile_w, first.tile_h);
        let across = width.div_ceil(u64::from(tile_w));
        let down = height.div_ceil(u64::from(tile_h));
        let sparse = parts.iter().any(|p| p.positions.is_some()).then(|| {
            let mut map = HashMap::new();
            for (k, part) in parts.iter().enumerate() {
                match &part.positions {
                    Some(positions) => {
                        for (j, pos) in positions.iter().enumerate() {
                            if let Some(pos) = pos {
                                map.entry(*pos).or_insert((k, j as u64));
                            }
                        }
                    }
                    // A TILED_FULL part among sparse ones: its frames row-major from its offset.
                    None => {
                        for j in 0..part.listed_frames() {
                            let n = part.concat_offset + j;
                            if n < across * down {
                                map.entry((n % across, n / across)).or_insert((k, j));
                            }
                        }
                    }
                }
            }
            map
        });
        Grid { width, height, tile_w, tile_h, across, down, parts, sparse }
    }

    /// The part and frame holding tile (col, row); `None`: no frame (transparent).
    fn frame(&self, col: u64, row: u64) -> Option<(&Instance, u64)> {
        match &self.sparse {
            Some(map) => map.get(&(col, row)).map(|&(k, j)| (&*self.parts[k], j)),
            None => {
                let n = row * self.across + col;
                self.parts.iter().rev().find(|p| p.concat_offset <= n).and_then(|p| {
                    let j = n - p.concat_offset;
                    (j < p.frames).then_some((&**p, j))
                })
            }
        }
    }

    /// Decode tile (col, row): RGBA of a whole frame, transparent when no frame holds it.
    fn decode(&self, col: u64, row: u64) -> std::result::Result<Vec<u8>, String> {
        let (w, h) = (self.tile_w, self.tile_h);
        let Some((part, j)) = self.frame(col, row) else {
            return Ok(vec![0; w as usize * h as usize * 4]);
        };
        let data = match &part.pixels {
            Pixels::File { source, table } => parse::read_frame(&**source, table, j, part.limits.tile_bytes)
                .map_err(|r| format!("{}: {r}", part.name))?,
            Pixels::Web { frames, index, module } => {
                let fetch = || frames.frame(*index, j).map_err(|r| format!("frame {} of {}: {r}", j + 1, part.name));
                let mut frame = fetch()?;
                // Stored in a syntax wsiview cannot decode (another than the one probed at open):
                // ask for the series' frames uncompressed from now on.
                if let Some(ts) = frame.transfer_syntax.as_deref().filter(|ts| instance::compression_of(ts).is_err()) {
                    if frames.accept() == web::FrameAccept::Stored {
                        frames.fall_back(
                            web::FrameAccept::Stored,
                            &format!("stored in transfer syntax {}", printable(ts)),
                        );
                        frame = fetch()?;
                    }
                }
                let transcoded = frames.accept() == web::FrameAccept::Uncompressed;
                return web::decode(&frame, part, module, transcoded, w, h)
                    .map_err(|r| format!("{} frame {}: {r}", part.name, j + 1));
            }
        };
        let rgba = if part.format.planar {
            let plane = data.len() / 3;
            let planes: Vec<Option<Vec<u8>>> = data.chunks(plane.max(1)).take(3).map(|c| Some(c.to_vec())).collect();
            decode_planes(&part.format, &planes, w, h)
        } else {
            decode_chunk(&part.format, &data, w, h)
        };
        rgba.map_err(|r| format!("{} frame {}: {r}", part.name, j + 1))
    }
}

struct DicomSlide {
    path: PathBuf,
    levels: Vec<LevelInfo>,
    grids: Vec<Grid>,
    associated: Vec<(&'static str, Grid)>,
    properties: SlideProperties,
    limits: Limits,
}

impl DicomSlide {
    /// Lay out a series: `instances[0]` is the file named (or the folder's first).
    fn build(path: &Path, instances: Vec<Instance>, mut warnings: Warnings, limits: &Limits) -> Result<DicomSlide> {
        let instances: Vec<Arc<Instance>> = instances.into_iter().map(Arc::new).collect();
        // Levels: one per total size; its parts are the instances of the first one's concatenation.
        let mut groups: Vec<Vec<Arc<Instance>>> = Vec::new();
        for inst in instances.iter().filter(|i| i.role == Role::Level) {
            let Some(group) = groups.iter_mut().find(|g| (g[0].width, g[0].height) == (inst.width, inst.height)) else {
                groups.push(vec![inst.clone()]);
                continue;
            };
            let head = &group[0];
            if group.iter().any(|g| g.sop_uid == inst.sop_uid && g.concat_offset == inst.concat_offset) {
                continue; // a copy of an instance already taken
            }
            if inst.concat_key != head.concat_key {
                warnings.add(
                    &inst.name,
                    format!(
                        "skipped: another image of {}×{} (level taken from {})",
                        inst.width, inst.height, head.name
                    ),
                );
            } else if (inst.tile_w, inst.tile_h) != (head.tile_w, head.tile_h) {
                warnings.add(
                    &inst.name,
                    format!(
                        "skipped: frames of {}×{} where its level has {}×{}",
                        inst.tile_w, inst.tile_h, head.tile_w, head.tile_h
                    ),
                );
            } else {
                group.push(inst.clone());
            }
        }
        if groups.is_empty() {
            return Err(SlideError::new(
                path,
                ErrorKind::NoLevels(format!(
                    "no VOLUME instance in the series ({} instance{} found)",
                    instances.len(),
                    if instances.len() == 1 { "" } else { "s" }
                )),
            ));
        }
        let mut grids: Vec<Grid> = groups.into_iter().map(Grid::new).collect();
        grids.sort_by(|a, b| b.width.cmp(&a.width).then(b.height.cmp(&a.height)));
        let (w0, h0) = (grids[0].width as f64, grids[0].height as f64);
        let levels: Vec<LevelInfo> = grids
            .iter()
            .map(|g| LevelInfo {
                width: g.width,
                height: g.height,
                downsample: (w0 / g.width as f64 + h0 / g.height as f64) / 2.0,
                tile_width: g.tile_w,
                tile_height: g.tile_h,
                compression: g.parts[0].format.compression,
            })
            .collect();
        let mut associated: Vec<(&'static str, Grid)> = Vec::new();
        for inst in &instances {
            let Role::Associated(name) = inst.role else { continue };
            match associated.iter().find(|(n, _)| *n == name) {
                Some((_, g)) if g.parts[0].sop_uid != inst.sop_uid => warnings
                    .add(&inst.name, format!("skipped: a second {name} image (the first is {})", g.parts[0].name)),
                Some(_) => {}
                None => associated.push((name, Grid::new(vec![inst.clone()]))),
            }
        }
        let properties = slide_properties(&grids[0].parts[0], &grids, &levels, warnings);
        Ok(DicomSlide { path: path.to_path_buf(), levels, grids, associated, properties, limits: *limits })
    }

    fn err(&self, kind: ErrorKind) -> SlideError {
        SlideError::new(&self.path, kind)
    }
}

fn slide_properties(level0: &Instance, grids: &[Grid], levels: &[LevelInfo], warnings: Warnings) -> SlideProperties {
    let mut values: BTreeMap<String, String> = level0.properties.iter().cloned().collect();
    for (key, value) in warnings.0 {
        values.insert(key, value);
    }
    let unaligned: u64 = grids.iter().flat_map(|g| &g.parts).map(|p| p.unaligned).sum();
    if unaligned > 0 {
        values.insert(
            "wsiview.warning.dicom.unaligned-frames".into(),
            format!("{unaligned} sparse frames off the tile grid were left out"),
        );
    }
    let mut properties = SlideProperties { vendor: "dicom".into(), ..Default::default() };
    if let Some(spacing) = &level0.pixel_spacing {
        let parts: Vec<&str> = spacing.split('\\').collect();
        let key = "dicom.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing";
        if parts.len() == 2 {
            let mut mm =
                |i: usize| crate::slide::number::positive_or_warn(parts[i], &format!("{key}[{i}]"), &mut values);
            properties.mpp_y = mm(0).map(|v| v * 1000.0);
            properties.mpp_x = mm(1).map(|v| v * 1000.0);
        } else {
            values.insert(format!("wsiview.warning.{key}"), format!("not used: {} values, 2 expected", parts.len()));
        }
    }
    if let Some(power) = &level0.objective {
        properties.objective_power = crate::slide::number::positive_or_warn(
            power,
            "dicom.OpticalPathSequence[0].ObjectiveLensPower",
            &mut values,
        );
    }
    properties.values = values;
    standard_properties(&mut properties, levels);
    properties
}

impl SlideSource for DicomSlide {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format_name(&self) -> &'static str {
        FORMAT.name
    }

    fn levels(&self) -> &[LevelInfo] {
        &self.levels
    }

    fn properties(&self) -> &SlideProperties {
        &self.properties
    }

    fn associated_names(&self) -> Vec<String> {
        self.associated.iter().map(|(n, _)| n.to_string()).collect()
    }

    fn read_associated(&self, name: &str) -> Result<image::RgbaImage> {
        let Some((_, grid)) = self.associated.iter().find(|(n, _)| *n == name) else {
            return Err(self.err(ErrorKind::no_such_associated(name, &self.associated_names())));
        };
        let corrupt = |reason| self.err(ErrorKind::CorruptAssociated { name: name.into(), reason });
        let max = self.limits.associated_pixels;
        if grid.width * grid.height > max {
            return Err(self.err(ErrorKind::TooLarge(format!(
                "associated image {name:?} of {}×{} pixels (the limit is {max})",
                grid.width, grid.height
            ))));
        }
        let mut out = image::RgbaImage::new(grid.width as u32, grid.height as u32);
        let (tw, th) = (u64::from(grid.tile_w), u64::from(grid.tile_h));
        let out_w = grid.width;
        let buf: &mut [u8] = &mut out;
        for row in 0..grid.down {
            for col in 0..grid.across {
                let rgba = grid.decode(col, row).map_err(corrupt)?;
                let (x0, y0) = (col * tw, row * th);
                let run = (tw.min(grid.width - x0) * 4) as usize;
                for y in 0..th.min(grid.height - y0) {
                    let src = (y * tw * 4) as usize;
                    let dst = (((y0 + y) * out_w + x0) * 4) as usize;
                    buf[dst..dst + run].copy_from_slice(&rgba[src..src + run]);
                }
            }
        }
        Ok(out)
    }

    fn decode_tile(&self, level: usize, col: u64, row: u64) -> Result<TilePixels> {
        let grid =
            self.grids.get(level).ok_or_else(|| self.err(ErrorKind::NoSuchLevel { level, count: self.grids.len() }))?;
        if col >= grid.across || row >= grid.down {
            return Err(self.err(ErrorKind::NoSuchTile { level, col, row, cols: grid.across, rows: grid.down }));
        }
        let rgba =
            grid.decode(col, row).map_err(|reason| self.err(ErrorKind::CorruptTile { level, col, row, reason }))?;
        Ok(TilePixels { width: grid.tile_w, height: grid.tile_h, rgba })
    }
}
