//! Leica SCN (BigTIFF from Leica SCN400 / Aperio Versa): IFD 0's ImageDescription is an `scn`
//! XML document describing a `collection` (the whole slide, in nm) holding images: the macro
//! (its view covers the whole collection) and the main brightfield image, placed at its view's
//! offset. Levels are in collection pixels: the main image sits inside them and the rest is
//! transparent (`openslide.bounds-*` say where). Reference: OpenSlide's Leica format notes and
//! `openslide-vendor-leica.c`.

use super::{Format, LevelPlan, Opener, Placement, Probe, TiffContext, TiffLayout};
use crate::error::{printable, ErrorKind};
use crate::slide::tiff_slide::{AssociatedPlan, Piece};
use crate::tiff::tags;

pub(super) const FORMAT: Format = Format { name: "leica-scn", detect, open: Opener::Tiff(layout) };

const NAMESPACE: &str = "http://www.leica-microsystems.com/scn/2010/10/01";

fn detect(probe: &Probe) -> bool {
    probe.tiff.is_some() && probe.description.contains(NAMESPACE) && probe.description.contains("<scn")
}

fn invalid(what: String) -> ErrorKind {
    ErrorKind::Invalid(format!("Leica XML: {}", printable(&what)))
}

fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    node.children().find(|n| n.has_tag_name((NAMESPACE, name)))
}

fn number(node: roxmltree::Node, attr: &str) -> Result<u64, ErrorKind> {
    node.attribute(attr)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| invalid(format!("<{}> has no whole-number {attr}", node.tag_name().name())))
}

/// One `dimension` of an image's `pixels`: a resolution stored in one IFD.
struct Dimension {
    width: u64,
    height: u64,
    ifd: usize,
}

struct Image<'a> {
    node: roxmltree::Node<'a, 'a>,
    /// View rectangle in the collection, nm: x, y, width, height.
    view: [u64; 4],
    /// Dimensions of z-plane 0 and channel 0, largest first.
    dimensions: Vec<Dimension>,
    brightfield: bool,
}

fn read_image<'a>(node: roxmltree::Node<'a, 'a>) -> Result<Image<'a>, ErrorKind> {
    let view = child(node, "view").ok_or_else(|| invalid("an image has no <view>".into()))?;
    let view = [number(view, "offsetX")?, number(view, "offsetY")?, number(view, "sizeX")?, number(view, "sizeY")?];
    let pixels = child(node, "pixels").ok_or_else(|| invalid("an image has no <pixels>".into()))?;
    let mut dimensions = Vec::new();
    for d in pixels.children().filter(|n| n.has_tag_name((NAMESPACE, "dimension"))) {
        let plane = |attr| d.attribute(attr).map_or(Ok(0), |_| number(d, attr));
        if plane("z")? != 0 || plane("c")? != 0 {
            continue;
        }
        let ifd = usize::try_from(number(d, "ifd")?).map_err(|_| invalid("an IFD number is too large".into()))?;
        dimensions.push(Dimension { width: number(d, "sizeX")?, height: number(d, "sizeY")?, ifd });
    }
    dimensions.sort_by_key(|d| std::cmp::Reverse(d.width));
    let illumination = node
        .descendants()
        .find(|n| n.has_tag_name((NAMESPACE, "illuminationSource")))
        .and_then(|n| n.text())
        .unwrap_or("brightfield");
    Ok(Image { node, view, dimensions, brightfield: illumination.trim() == "brightfield" })
}

fn layout(ctx: &mut TiffContext) -> Result<TiffLayout, ErrorKind> {
    let description = ctx.description().to_string();
    let doc = super::parse_xml(&description, ctx.reader.limits()).map_err(invalid)?;
    let root = doc.root_element();
    if !root.has_tag_name((NAMESPACE, "scn")) {
        return Err(invalid("the root is not <scn>".into()));
    }
    let collection = child(root, "collection").ok_or_else(|| invalid("no <collection>".into()))?;
    let (coll_w, coll_h) = (number(collection, "sizeX")?, number(collection, "sizeY")?);
    let images: Vec<Image> = collection
        .children()
        .filter(|n| n.has_tag_name((NAMESPACE, "image")))
        .map(read_image)
        .collect::<Result<_, _>>()?;
    let is_macro = |i: &Image| i.view == [0, 0, coll_w, coll_h];
    let main = images
        .iter()
        .find(|i| !is_macro(i) && i.brightfield && !i.dimensions.is_empty())
        .ok_or_else(|| invalid("no brightfield main image".into()))?;

    let properties = &mut ctx.properties;
    properties.vendor = "leica".into();
    let values = &mut properties.values;
    if let Some(barcode) = child(collection, "barcode").and_then(|n| n.text()) {
        values.insert("leica.barcode".into(), barcode.trim().to_string());
    }
    let main_text =
        |name: &str| main.node.descendants().find(|n| n.has_tag_name((NAMESPACE, name))).and_then(|n| n.text());
    for (name, key) in [
        ("creationDate", "leica.creation-date"),
        ("objective", "leica.objective"),
        ("numericalAperture", "leica.aperture"),
        ("illuminationSource", "leica.illumination-source"),
    ] {
        if let Some(text) = main_text(name) {
            values.insert(key.into(), text.trim().to_string());
        }
    }
    if let Some(device) = child(main.node, "device") {
        for (attr, key) in [("model", "leica.device-model"), ("version", "leica.device-version")] {
            if let Some(v) = device.attribute(attr) {
                values.insert(key.into(), v.to_string());
            }
        }
    }
    // OpenSlide takes the objective as an integer.
    properties.objective_power = main_text("objective")
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::trunc);

    let chain = std::mem::take(&mut ctx.images);
    let ifd_of = |d: &Dimension| {
        chain
            .get(d.ifd)
            .cloned()
            .ok_or_else(|| invalid(format!("a dimension names IFD {} but the file has {}", d.ifd, chain.len())))
    };
    // mpp from the resolution tags of the main image's level-0 IFD (as OpenSlide).
    let main0 = ifd_of(&main.dimensions[0])?;
    let resolution = |tag| ctx.reader.get_f64(&main0.ifd, tag).ok().flatten().filter(|v| v.is_finite() && *v > 0.0);
    let per_cm = matches!(ctx.reader.get_u64(&main0.ifd, tags::RESOLUTION_UNIT), Ok(Some(3)));
    if per_cm {
        properties.mpp_x = resolution(tags::X_RESOLUTION).map(|r| 10_000.0 / r);
        properties.mpp_y = resolution(tags::Y_RESOLUTION).map(|r| 10_000.0 / r);
    }

    let [view_x, view_y, view_w, view_h] = main.view;
    let mut levels = Vec::new();
    for (i, d) in main.dimensions.iter().enumerate() {
        let image = ifd_of(d)?;
        if (image.width, image.height) != (d.width, d.height) || d.width == 0 || d.height == 0 {
            return Err(invalid(format!(
                "dimension {}×{} but IFD {} is {}×{}",
                d.width, d.height, d.ifd, image.width, image.height
            )));
        }
        let (Some((tw, th)), true) = (image.tile, view_w > 0 && view_h > 0) else {
            return Err(invalid(format!("IFD {} is not tiled, or the view is empty", d.ifd)));
        };
        // nm per pixel of this dimension; the level covers the collection.
        let (nm_x, nm_y) = (view_w as f64 / d.width as f64, view_h as f64 / d.height as f64);
        let size = ((coll_w as f64 / nm_x).ceil() as u64, (coll_h as f64 / nm_y).ceil() as u64);
        let offset = ((view_x as f64 / nm_x).floor() as i64, (view_y as f64 / nm_y).floor() as i64);
        if i == 0 {
            let bounds = [("x", offset.0 as u64), ("y", offset.1 as u64), ("width", d.width), ("height", d.height)];
            for (key, v) in bounds {
                properties.values.insert(format!("openslide.bounds-{key}"), v.to_string());
            }
        }
        if tw == 0 || th == 0 || size.0 > 1 << 24 || size.1 > 1 << 24 {
            return Err(invalid(format!("level of {}×{} pixels with {tw}×{th} tiles", size.0, size.1)));
        }
        let (across, down) = (d.width.div_ceil(tw), d.height.div_ceil(th));
        let mut pieces = Vec::with_capacity((across * down).min(1 << 22) as usize);
        for r in 0..down {
            for c in 0..across {
                // Edge tiles hold padding past the image: only the image is drawn.
                let (w, h) = (tw.min(d.width - c * tw), th.min(d.height - r * th));
                pieces.push(Piece {
                    tile: (r * across + c) as u32,
                    src: [0, 0, w as u32, h as u32],
                    dst: (offset.0 + (c * tw) as i64, offset.1 + (r * th) as i64),
                });
            }
        }
        levels.push(LevelPlan { image, size: Some(size), downsample: None, placement: Placement::Placed(pieces) });
    }
    let mut associated = Vec::new();
    if let Some(macro_image) = images.iter().find(|i| is_macro(i)) {
        if let Some(d) = macro_image.dimensions.first() {
            associated.push(AssociatedPlan::ifd("macro", ifd_of(d)?));
        }
    }
    Ok(TiffLayout { format_name: FORMAT.name, levels, associated })
}
