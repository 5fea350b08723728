//! Ventana / Roche BIF (BigTIFF from iScan and DP scanners): IFD 0's XMP packet holds an `iScan`
//! element (Magnification, ScanRes). Levels are the IFDs described `level=N mag=M`; the level-0
//! XMP `EncodeInfo` says where the scanner's tiles go: areas of interest (AOIs) of tiles whose
//! joints overlap by a confidence-weighted mean, so tiles advance by the tile size less that
//! overlap and each level's size is the extent of its tiles. Lower levels hold the same tiles
//! scaled down: each stored tile holds `downsample`² of them. "Label Image" is the macro;
//! "Thumbnail" the thumbnail. Reference: OpenSlide's Ventana format notes and
//! `openslide-vendor-ventana.c`.

use super::{Format, LevelPlan, Opener, Placement, Probe, TiffContext, TiffLayout};
use crate::error::{printable, ErrorKind};
use crate::slide::tiff_slide::{AssociatedPlan, ImageIfd, Piece};
use crate::tiff::{tags, Ifd, TiffReader};

pub(super) const FORMAT: Format = Format { name: "ventana-bif", detect, open: Opener::Tiff(layout) };

fn detect(probe: &Probe) -> bool {
    match probe.tiff {
        Some((reader, Some(ifd))) => xmp(reader, ifd).is_some_and(|x| x.contains("<iScan")),
        _ => false,
    }
}

fn xmp(reader: &TiffReader, ifd: &Ifd) -> Option<String> {
    let entry = ifd.get(tags::XMP)?;
    let bytes = reader.entry_bytes(entry).ok()?;
    Some(String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string())
}

fn invalid(what: String) -> ErrorKind {
    ErrorKind::Invalid(format!("Ventana XML: {}", printable(&what)))
}

fn int(node: roxmltree::Node, attr: &str) -> Result<i64, ErrorKind> {
    node.attribute(attr)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| invalid(format!("<{}> has no whole-number {attr}", node.tag_name().name())))
}

/// `level=N mag=M …` of a level IFD's description.
fn level_info(description: &str) -> Option<(i64, f64)> {
    let field = |key: &str| description.split(' ').find_map(|p| p.strip_prefix(key).map(str::to_string));
    let level = field("level=")?.parse::<i64>().ok()?;
    let mag = field("mag=")?.parse::<f64>().ok().filter(|m| m.is_finite() && *m > 0.0)?;
    Some((level, mag))
}

fn layout(ctx: &mut TiffContext) -> Result<TiffLayout, ErrorKind> {
    let first = ctx.images.first().ok_or_else(|| invalid("no IFDs".into()))?;
    let scan_xml = xmp(ctx.reader, &first.ifd).ok_or_else(|| invalid("IFD 0 has no XMP".into()))?;
    let doc = super::parse_xml(&scan_xml, ctx.reader.limits()).map_err(invalid)?;
    let iscan =
        doc.descendants().find(|n| n.has_tag_name("iScan")).ok_or_else(|| invalid("no <iScan> element".into()))?;
    let properties = &mut ctx.properties;
    properties.vendor = "ventana".into();
    for attr in iscan.attributes() {
        if !attr.value().is_empty() {
            properties.values.insert(format!("ventana.{}", attr.name()), attr.value().to_string());
        }
    }
    let positive = |key: &str| {
        iscan.attribute(key).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite() && *v > 0.0)
    };
    properties.mpp_x = positive("ScanRes");
    properties.mpp_y = properties.mpp_x;
    properties.objective_power = positive("Magnification").map(f64::trunc);

    let images = std::mem::take(&mut ctx.images);
    let mut levels: Vec<(i64, f64, ImageIfd)> = Vec::new();
    let mut associated = Vec::new();
    for image in images {
        let desc = image.description.clone().unwrap_or_default();
        if desc.contains("level=") {
            let (level, mag) =
                level_info(&desc).ok_or_else(|| invalid(format!("IFD {}: description {desc:?}", image.index)))?;
            levels.push((level, mag, image));
        } else if desc == "Label Image" || desc == "Label_Image" {
            associated.push(AssociatedPlan::ifd("macro", image));
        } else if desc == "Thumbnail" {
            associated.push(AssociatedPlan::ifd("thumbnail", image));
        }
    }
    levels.sort_by_key(|(level, _, _)| *level);
    let Some((_, mag0, level0)) = levels.first() else {
        return Err(ErrorKind::NoLevels("no IFD is described `level=N mag=M`".into()));
    };
    let mag0 = *mag0;
    let encode = xmp(ctx.reader, &level0.ifd).filter(|x| x.contains("EncodeInfo"));
    let tile = level0.tile.ok_or_else(|| invalid(format!("level 0 (IFD {}) is not tiled", level0.index)))?;
    let stitch = match encode {
        Some(xml) => Some(read_stitching(&xml, tile, ctx.reader.limits())?),
        None => None,
    };
    let mut plans = Vec::new();
    for (_, mag, image) in levels {
        let downsample = mag0 / mag;
        let plan = match &stitch {
            Some(s) => s.plan(image, downsample)?,
            None => LevelPlan { downsample: Some(downsample), ..LevelPlan::plain(image) },
        };
        plans.push(plan);
    }
    Ok(TiffLayout { format_name: FORMAT.name, levels: plans, associated })
}

/// Where the scanner's tiles are, from level 0's EncodeInfo.
struct Stitching {
    /// Level-0 tile size.
    tile: (u64, u64),
    /// Level-0 pixels from one tile to the next: the tile size less the mean overlap.
    advance: (f64, f64),
    /// Tiles present: (column, row) in the level-0 tile grid.
    tiles: Vec<(u64, u64)>,
}

/// Read level 0's EncodeInfo XML: at most [`crate::Limits::level_tiles`] tiles over all AOIs.
fn read_stitching(xml: &str, tile: (u64, u64), limits: &crate::limits::Limits) -> Result<Stitching, ErrorKind> {
    let doc = super::parse_xml(xml, limits).map_err(invalid)?;
    let root = doc.root_element();
    let infos: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("SlideStitchInfo"))
        .flat_map(|s| s.children().filter(|n| n.has_tag_name("ImageInfo")))
        .collect();
    let origins: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("AoiOrigin"))
        .flat_map(|s| s.children().filter(|n| n.is_element()))
        .collect();
    if infos.is_empty() || infos.len() != origins.len() {
        return Err(invalid(format!("{} AOIs but {} AOI origins", infos.len(), origins.len())));
    }
    let (tw, th) = (tile.0 as i64, tile.1 as i64);
    let (mut sum_x, mut weight_x, mut sum_y, mut weight_y) = (0i64, 0i64, 0i64, 0i64);
    let mut tiles = Vec::new();
    for (info, origin) in infos.iter().zip(&origins) {
        if int(*info, "AOIScanned")? == 0 {
            continue;
        }
        if (int(*info, "Width")?, int(*info, "Height")?) != (tw, th) {
            return Err(invalid("the AOI tile size is not the TIFF's".into()));
        }
        let (ox, oy) = (int(*origin, "OriginX")?, int(*origin, "OriginY")?);
        if ox < 0 || oy < 0 || ox % tw != 0 || oy % th != 0 {
            return Err(invalid(format!("AOI origin {ox},{oy} is not a whole number of tiles")));
        }
        let (cols, rows) = (int(*info, "NumCols")?, int(*info, "NumRows")?);
        if cols <= 0 || rows <= 0 || (cols as u64).saturating_mul(rows as u64) + tiles.len() as u64 > limits.level_tiles
        {
            return Err(invalid(format!("an AOI of {cols}×{rows} tiles")));
        }
        let (start_col, start_row) = ((ox / tw) as u64, (oy / th) as u64);
        // Joint tile numbers run serpentine from the bottom row: 1-based, rows from the bottom,
        // every other row right to left.
        let position = |n: i64| -> Result<(i64, i64), ErrorKind> {
            if n < 1 || n > cols * rows {
                return Err(invalid(format!("tile number {n} outside an AOI of {cols}×{rows}")));
            }
            let (mut col, row) = ((n - 1) % cols, (n - 1) / cols);
            if row % 2 == 1 {
                col = cols - 1 - col;
            }
            Ok((col, rows - 1 - row))
        };
        for joint in info.children().filter(|n| n.has_tag_name("TileJointInfo")) {
            let (a, b) = (position(int(joint, "Tile1")?)?, position(int(joint, "Tile2")?)?);
            let confidence = int(joint, "Confidence")?.clamp(0, 1000);
            match joint.attribute("Direction") {
                Some("RIGHT") if b == (a.0 + 1, a.1) => {
                    sum_x += confidence * int(joint, "OverlapX")?.clamp(-tw, tw);
                    weight_x += confidence;
                }
                Some("UP") if b == (a.0, a.1 - 1) => {
                    sum_y += confidence * int(joint, "OverlapY")?.clamp(-th, th);
                    weight_y += confidence;
                }
                other => {
                    return Err(invalid(format!("joint {:?} between tiles {a:?} and {b:?}", other.unwrap_or(""))));
                }
            }
        }
        for r in 0..rows as u64 {
            for c in 0..cols as u64 {
                tiles.push((start_col + c, start_row + r));
            }
        }
    }
    let mean = |sum: i64, weight: i64| if weight > 0 { sum as f64 / weight as f64 } else { 0.0 };
    let advance = (tw as f64 - mean(sum_x, weight_x), th as f64 - mean(sum_y, weight_y));
    if advance.0 < 1.0 || advance.1 < 1.0 {
        return Err(invalid(format!("tiles advance by {:.1}×{:.1} pixels", advance.0, advance.1)));
    }
    Ok(Stitching { tile, advance, tiles })
}

impl Stitching {
    /// A level's plan: the level-0 tiles scaled by `downsample`, each a piece of a stored tile.
    fn plan(&self, image: ImageIfd, downsample: f64) -> Result<LevelPlan, ErrorKind> {
        let (tw, th) = self.tile;
        if image.tile != Some(self.tile) {
            return Err(invalid(format!("IFD {}: tile size differs from level 0's", image.index)));
        }
        // Level-0 tiles per stored tile, along each axis.
        let k = downsample.round() as u64;
        if k < 1 || (downsample - k as f64).abs() > 1e-6 || k > tw || k > th {
            return Err(invalid(format!("IFD {}: downsample {downsample} is not a whole number", image.index)));
        }
        let (sub_w, sub_h) = (tw.div_ceil(k), th.div_ceil(k));
        let (across, down) = (image.width.div_ceil(tw), image.height.div_ceil(th));
        let (ax, ay) = (self.advance.0 / downsample, self.advance.1 / downsample);
        let (mut width, mut height) = (0f64, 0f64);
        let mut pieces = Vec::with_capacity(self.tiles.len());
        // Whether every piece lands where it is in the stored grid (abutting tiles).
        let mut identity = true;
        for &(c, r) in &self.tiles {
            let (x, y) = (c as f64 * ax, r as f64 * ay);
            width = width.max(x + tw as f64 / downsample);
            height = height.max(y + th as f64 / downsample);
            let (stored_c, stored_r) = (c / k, r / k);
            if stored_c >= across || stored_r >= down {
                return Err(invalid(format!("IFD {}: tile {c},{r} is outside the stored image", image.index)));
            }
            let src = [((c % k) * sub_w) as u32, ((r % k) * sub_h) as u32, sub_w as u32, sub_h as u32];
            let dst = (x.round() as i64, y.round() as i64);
            identity &= dst == ((stored_c * tw) as i64 + i64::from(src[0]), (stored_r * th) as i64 + i64::from(src[1]));
            pieces.push(Piece { tile: (stored_r * across + stored_c) as u32, src, dst });
        }
        let size = (width.ceil() as u64, height.ceil() as u64);
        // Abutting tiles filling a rectangle from the corner: the plain grid, cropped to it.
        let cols = self.tiles.iter().map(|t| t.0 + 1).max().unwrap_or(0);
        let rows = self.tiles.iter().map(|t| t.1 + 1).max().unwrap_or(0);
        let full = self.tiles.len() as u64 == cols * rows;
        let placement = if identity && full { Placement::Grid } else { Placement::Placed(pieces) };
        Ok(LevelPlan { image, size: Some(size), downsample: Some(downsample), placement })
    }
}
