//! Aperio SVS: tiled IFDs are the levels, in file order; IFD 1, when stripped, is the thumbnail;
//! other stripped IFDs are the label and macro. Metadata is the `|`-separated `key = value`
//! description of IFD 0 (`MPP`, `AppMag`). Tiles are JPEG, or JPEG 2000: compression 33003 (Y,
//! Cb, Cr components, converted by wsiview) or 33005 (RGB through the codestream's colour
//! transform). Reference: OpenSlide's Aperio format notes and `openslide-vendor-aperio.c`.

use super::{Format, LevelPlan, Opener, Probe, TiffContext, TiffLayout};
use crate::error::ErrorKind;
use crate::slide::tiff_slide::{AssociatedPlan, ImageIfd};
use crate::slide::vendor::parse_aperio_description;

pub(super) const FORMAT: Format = Format { name: "aperio-svs", detect, open: Opener::Tiff(layout) };

fn detect(probe: &Probe) -> bool {
    probe.tiff.is_some() && probe.description.starts_with("Aperio")
}

fn layout(ctx: &mut TiffContext) -> Result<TiffLayout, ErrorKind> {
    let properties = &mut ctx.properties;
    properties.vendor = "aperio".into();
    for (key, value) in parse_aperio_description(properties.description.as_deref().unwrap_or("")) {
        properties.values.insert(format!("aperio.{key}"), value);
    }
    let mpp = vendor_positive(&mut properties.values, "aperio.MPP");
    properties.mpp_x = mpp;
    properties.mpp_y = mpp;
    properties.objective_power = vendor_positive(&mut properties.values, "aperio.AppMag");
    let mut levels = Vec::new();
    let mut associated: Vec<AssociatedPlan> = Vec::new();
    for image in std::mem::take(&mut ctx.images) {
        let Some(name) = associated_name(&image) else {
            levels.push(LevelPlan::plain(image));
            continue;
        };
        let shadowed = associated.iter().any(|a| a.name == name);
        associated.push(AssociatedPlan { shadowed, ..AssociatedPlan::ifd(name, image) });
    }
    Ok(TiffLayout { format_name: FORMAT.name, levels, associated })
}

/// A positive number from a vendor property (comma decimals read, see
/// [`crate::slide::number`]); one present but unreadable leaves a `wsiview.warning.KEY` property.
fn vendor_positive(values: &mut std::collections::BTreeMap<String, String>, key: &str) -> Option<f64> {
    let text = values.get(key)?.clone();
    crate::slide::number::positive_or_warn(&text, key, values)
}

/// Tiled IFDs are levels; IFD 1, when stripped, is the thumbnail; other stripped IFDs are the
/// label and macro, named by their description, or else by compression (label LZW, macro JPEG),
/// as OpenSlide decides. `None`: a pyramid level.
fn associated_name(image: &ImageIfd) -> Option<&'static str> {
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
