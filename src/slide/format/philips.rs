//! Philips TIFF (BigTIFF from Philips IntelliSite scanners): IFD 0's ImageDescription is a
//! `DataObject` of type `DPUfsImport` (XML). Levels are the tiled IFDs; their true sizes and
//! downsamples come from the WSI image's per-level pixel spacings, not from the TIFF sizes (padded
//! to whole tiles). Label and macro are TIFF IFDs described `Label…`/`Macro…`, or else base64 JPEG
//! in the XML. Tiles with byte count 0 were not scanned: transparent. Reference: OpenSlide's
//! Philips format notes and `openslide-vendor-philips.c`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;

use super::{Format, LevelPlan, Opener, Probe, TiffContext, TiffLayout};
use crate::error::{printable, ErrorKind};
use crate::slide::tiff_slide::{AssociatedData, AssociatedPlan};

pub(super) const FORMAT: Format = Format { name: "philips-tiff", detect, open: Opener::Tiff(layout) };

fn detect(probe: &Probe) -> bool {
    probe.tiff.is_some() && probe.software.starts_with("Philips") && probe.description.contains("DPUfsImport")
}

fn invalid(what: String) -> ErrorKind {
    ErrorKind::Invalid(format!("Philips XML: {}", printable(&what)))
}

/// The `Attribute` children of a `DataObject`, by name.
fn attributes<'a>(object: roxmltree::Node<'a, 'a>) -> impl Iterator<Item = (&'a str, roxmltree::Node<'a, 'a>)> {
    object.children().filter(|n| n.has_tag_name("Attribute")).filter_map(|n| n.attribute("Name").map(|name| (name, n)))
}

fn attribute<'a>(object: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    attributes(object).find(|(n, _)| *n == name).map(|(_, node)| node)
}

fn image_type<'a>(object: roxmltree::Node<'a, 'a>) -> &'a str {
    attribute(object, "PIM_DP_IMAGE_TYPE").map(text).unwrap_or("")
}

fn text<'a>(node: roxmltree::Node<'a, 'a>) -> &'a str {
    node.text().unwrap_or("").trim()
}

/// The `DataObject`s in an attribute's `Array`.
fn array_objects<'a>(attr: roxmltree::Node<'a, 'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    attr.children()
        .filter(|n| n.has_tag_name("Array"))
        .flat_map(|a| a.children().filter(|n| n.has_tag_name("DataObject")))
        .collect()
}

/// A Philips `IDoubleArray` value: numbers in double quotes, separated by spaces.
fn doubles(value: &str) -> Vec<f64> {
    value.split_whitespace().filter_map(|v| v.trim_matches('"').parse::<f64>().ok()).collect()
}

/// Simple (text) attributes of a DataObject as `philips.PREFIXNAME` properties.
fn add_properties(object: roxmltree::Node, prefix: &str, values: &mut BTreeMap<String, String>) {
    for (name, node) in attributes(object) {
        if name == "PIM_DP_IMAGE_DATA" || node.children().any(|c| c.is_element()) {
            continue;
        }
        values.insert(format!("philips.{prefix}{name}"), text(node).to_string());
    }
}

fn layout(ctx: &mut TiffContext) -> Result<TiffLayout, ErrorKind> {
    let description = ctx.description().to_string();
    let doc = super::parse_xml(&description, ctx.reader.limits()).map_err(invalid)?;
    let root = doc.root_element();
    if !(root.has_tag_name("DataObject") && root.attribute("ObjectType") == Some("DPUfsImport")) {
        return Err(invalid("the root is not a DataObject of type DPUfsImport".into()));
    }
    let properties = &mut ctx.properties;
    properties.vendor = "philips".into();
    add_properties(root, "", &mut properties.values);
    let scanned = attribute(root, "PIM_DP_SCANNED_IMAGES").map(array_objects).unwrap_or_default();
    let wsi = scanned
        .iter()
        .find(|o| image_type(**o) == "WSI")
        .ok_or_else(|| invalid("no DPScannedImage of type WSI".into()))?;
    add_properties(*wsi, "", &mut properties.values);

    // mpp: DICOM_PIXEL_SPACING is (row, column) spacing in mm; the column spacing is x.
    if let Some(spacing) = attribute(*wsi, "DICOM_PIXEL_SPACING").map(|n| doubles(text(n))) {
        if let [row, column] = spacing[..] {
            properties.mpp_x = Some(column * 1000.0).filter(|v| v.is_finite() && *v > 0.0);
            properties.mpp_y = Some(row * 1000.0).filter(|v| v.is_finite() && *v > 0.0);
        }
    }
    // Objective: the first `levels=` entry of the derivation description, when plausible.
    let derivation = attribute(*wsi, "DICOM_DERIVATION_DESCRIPTION").map(text).unwrap_or("");
    properties.objective_power = derivation
        .split('-')
        .find_map(|part| part.strip_prefix("levels="))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| (1.0..=200.0).contains(v));

    // Per-level spacings, in the order of their representation numbers.
    let mut representations: Vec<(u64, Vec<f64>)> = Vec::new();
    if let Some(seq) = attribute(*wsi, "PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE") {
        for (i, rep) in array_objects(seq).into_iter().enumerate() {
            add_properties(rep, &format!("PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE[{i}]."), &mut properties.values);
            let number = attribute(rep, "PIIM_PIXEL_DATA_REPRESENTATION_NUMBER")
                .and_then(|n| text(n).parse::<u64>().ok())
                .unwrap_or(i as u64);
            let spacing = attribute(rep, "DICOM_PIXEL_SPACING").map(|n| doubles(text(n))).unwrap_or_default();
            representations.push((number, spacing));
        }
    }
    representations.sort_by_key(|(n, _)| *n);

    let images = std::mem::take(&mut ctx.images);
    let mut levels: Vec<LevelPlan> = Vec::new();
    let mut associated: Vec<AssociatedPlan> = Vec::new();
    for image in images {
        let desc = image.description.as_deref().unwrap_or("");
        if image.tile.is_some() {
            levels.push(LevelPlan::plain(image));
        } else if desc.starts_with("Label") || desc.starts_with("Macro") {
            let name = if desc.starts_with("Label") { "label" } else { "macro" };
            if !associated.iter().any(|a| a.name == name) {
                associated.push(AssociatedPlan::ifd(name, image));
            }
        }
    }
    // Level sizes from the spacings: downsample = the rounded mean ratio to level 0's spacing.
    let spacing_ok = representations.len() == levels.len()
        && representations.iter().all(|(_, s)| s.len() == 2 && s.iter().all(|v| v.is_finite() && *v > 0.0));
    if spacing_ok && !levels.is_empty() {
        let (w0, h0) = (levels[0].image.width, levels[0].image.height);
        let base = &representations[0].1;
        for (plan, (_, spacing)) in levels.iter_mut().zip(&representations) {
            let downsample = ((spacing[0] / base[0] + spacing[1] / base[1]) / 2.0).round().max(1.0);
            let size = ((w0 as f64 / downsample) as u64, (h0 as f64 / downsample) as u64);
            if size.0 == 0 || size.1 == 0 || size.0 > plan.image.width || size.1 > plan.image.height {
                return Err(invalid(format!(
                    "level of IFD {} would be {}×{}, larger than its {}×{} image",
                    plan.image.index, size.0, size.1, plan.image.width, plan.image.height
                )));
            }
            plan.size = Some(size);
            plan.downsample = Some(downsample);
        }
    } else {
        properties.values.insert(
            "wsiview.warning.philips".into(),
            format!(
                "{} pixel spacings for {} tiled levels; level sizes are the TIFF's (padded) sizes",
                representations.len(),
                levels.len()
            ),
        );
    }

    // Label and macro from the XML when no IFD holds them.
    for (kind, name) in [("LABELIMAGE", "label"), ("MACROIMAGE", "macro")] {
        if associated.iter().any(|a| a.name == name) {
            continue;
        }
        let Some(object) = scanned.iter().find(|o| image_type(**o) == kind) else { continue };
        let Some(data) = attribute(*object, "PIM_DP_IMAGE_DATA").map(text) else { continue };
        match decode_base64_jpeg(data, ctx.reader.limits().base64_bytes) {
            Ok(jpeg) => associated.push(AssociatedPlan {
                name: name.into(),
                data: AssociatedData::Jpeg(Arc::from(jpeg)),
                shadowed: false,
            }),
            Err(why) => {
                properties.values.insert(format!("wsiview.warning.philips.{kind}"), format!("not listed: {why}"));
            }
        }
    }
    Ok(TiffLayout { format_name: FORMAT.name, levels, associated })
}

/// Base64 text (whitespace allowed) holding a JPEG file; at most `max_bytes` of text
/// ([`crate::Limits::base64_bytes`]), checked before decoding.
fn decode_base64_jpeg(text: &str, max_bytes: usize) -> Result<Vec<u8>, String> {
    if text.len() > max_bytes {
        return Err(format!("{} bytes of base64 (the limit is {max_bytes})", text.len()));
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()).map_err(|e| format!("base64: {e}"))?;
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("the base64 data is not a JPEG (no SOI marker)".into());
    }
    Ok(bytes)
}
