//! OME-TIFF: OME-XML in IFD 0's description. The slide is the largest tiled Image (its pyramid in
//! SubIFDs); other Images are associated images. Malformed or inconsistent XML: read as a plain
//! TIFF with `wsiview.warning.ome`. Reference: the OME-TIFF specification (TiffData rules).

use super::{Format, LevelPlan, Opener, Probe, TiffContext, TiffLayout};
use crate::error::ErrorKind;
use crate::slide::tiff_slide::{largest_tiled, subifd_pyramid, AssociatedPlan, ImageIfd};
use crate::slide::vendor;

pub(super) const FORMAT: Format = Format { name: "ome-tiff", detect, open: Opener::Tiff(layout) };

fn detect(probe: &Probe) -> bool {
    probe.tiff.is_some() && is_ome(probe.description)
}

fn layout(ctx: &mut TiffContext) -> Result<TiffLayout, ErrorKind> {
    let description = ctx.description().to_string();
    let properties = &mut ctx.properties;
    properties.vendor = "ome-tiff".into();
    let fallback = |why: String| format!("{why}; read as a plain TIFF (the largest tiled image is the slide)");
    let images = std::mem::take(&mut ctx.images);
    let (slide, associated) = match vendor::parse_ome_images(&description) {
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
                properties.values.insert("wsiview.warning.ome".into(), fallback(why));
                (largest_tiled(&images), Vec::new())
            }
        },
        Err(e) => {
            properties.values.insert("ome.error".into(), e.to_string());
            properties.values.insert("wsiview.warning.ome".into(), fallback(e.to_string()));
            (largest_tiled(&images), Vec::new())
        }
    };
    let associated: Vec<AssociatedPlan> = associated
        .into_iter()
        .filter_map(|(name, index)| images.get(index).map(|i| AssociatedPlan::ifd(&name, i.clone())))
        .collect();
    let slide_image = images.into_iter().nth(slide);
    let levels = subifd_pyramid(ctx.reader, slide_image, &mut ctx.seen, &mut ctx.properties.values)?;
    Ok(TiffLayout { format_name: FORMAT.name, levels: levels.into_iter().map(LevelPlan::plain).collect(), associated })
}

/// An OME-XML ImageDescription (OME-TIFF).
fn is_ome(desc: &str) -> bool {
    desc.trim_start().starts_with("<?xml") && desc.contains("<OME") || desc.trim_start().starts_with("<OME")
}

/// Where the slide is in a multi-image OME-TIFF: the Image whose main-chain IFD is the largest
/// tiled one (its pyramid in SubIFDs); every other Image is an associated image named by
/// [`vendor::ome_associated_name`]. Returns (index into `omes` of the slide, [(name,
/// main-chain index)]), or why the OME-XML cannot be trusted (an Image pointing past the chain or
/// whose size disagrees with its IFD, or no tiled Image).
fn ome_layout(
    omes: &[vendor::OmeImage],
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
        let mut name = vendor::ome_associated_name(ome, i);
        if names.contains(&name) {
            name = format!("{name} ({i})");
        }
        names.push(name.clone());
        associated.push((name, ome.ifd));
    }
    Ok((chosen, associated))
}
