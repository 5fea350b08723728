//! Generic tiled TIFF: a pyramid in the main IFD chain (every tiled IFD a level, largest first),
//! or in the SubIFDs of IFD 0 (libvips `--subifd`). mpp from the resolution tags.

use super::{Format, LevelPlan, Opener, Probe, TiffContext, TiffLayout};
use crate::error::ErrorKind;
use crate::slide::tiff_slide::subifd_pyramid;
use crate::tiff::tags;

pub(super) const FORMAT: Format = Format { name: "generic-tiff", detect, open: Opener::Tiff(layout) };

fn detect(probe: &Probe) -> bool {
    probe.tiff.is_some()
}

fn layout(ctx: &mut TiffContext) -> Result<TiffLayout, ErrorKind> {
    ctx.properties.vendor = "generic-tiff".into();
    let images = std::mem::take(&mut ctx.images);
    let has_sub_ifds = images.first().is_some_and(|i| i.ifd.get(tags::SUB_IFDS).is_some());
    let levels = if has_sub_ifds {
        subifd_pyramid(ctx.reader, images.into_iter().next(), &mut ctx.seen, &mut ctx.properties.values)?
    } else {
        images.into_iter().filter(|i| i.tile.is_some()).collect()
    };
    Ok(TiffLayout {
        format_name: FORMAT.name,
        levels: levels.into_iter().map(LevelPlan::plain).collect(),
        associated: Vec::new(),
    })
}
