//! File > Export view…: the visible area of the active slide, or of every cell of the layout, as
//! a PNG with each slide's name and a scale bar, as on screen (turned views included).
//!
//! The picture is made from the slides, not read back from the screen: each cell is sampled from
//! a region of the level the view draws (bilinear, at the display's pixels per point), on a
//! worker. Only the text is prepared on the UI thread: egui lays out the names and scale-bar
//! labels and their glyphs' coverage is copied from its font atlas, so the picture uses the
//! viewer's own font. The file is written atomically (`crate::files::write_atomic`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{Color32, FontId, Pos2, Rect, Vec2};
use image::{Rgba, RgbaImage};

use super::camera::{level_for_zoom, scale_bar, Camera, ViewRect};
use crate::Slide;

/// The colour where there is no slide (as the view's background).
const BACKGROUND: [u8; 4] = [38, 38, 38, 255];

/// Most pixels one export may have (a 4K screen is 8.3 million).
pub const MAX_EXPORT_PIXELS: u64 = 64 << 20;

/// Most level pixels read for one cell: beyond this the next coarser level is read instead.
const MAX_REGION_PIXELS: u64 = 48 << 20;

/// One cell to draw: a slide as a view shows it.
pub struct CellPicture {
    pub slide: Arc<Slide>,
    pub camera: Camera,
    /// Where the cell is in the picture, in points from the picture's top-left corner.
    pub rect: Rect,
    /// The slide's name, written in the cell's top-left corner.
    pub name: String,
}

/// Text to write: glyph coverage copied from egui's font atlas, placed in picture pixels.
#[derive(Clone, Debug, Default)]
pub struct Stamp {
    /// Each glyph: its top-left corner (picture pixels), width, height and coverage (0–255).
    glyphs: Vec<([i64; 2], usize, usize, Vec<u8>)>,
    color: [u8; 3],
}

/// Everything the worker needs.
pub struct ExportPlan {
    /// The picture's size in points.
    pub size: Vec2,
    /// Picture pixels per point (the display's).
    pub pixels_per_point: f32,
    pub cells: Vec<CellPicture>,
    /// Dark boxes (picture points) under the texts and bars.
    boxes: Vec<Rect>,
    /// Scale bars: start and end (picture points), white.
    bars: Vec<(Pos2, Pos2)>,
    stamps: Vec<Stamp>,
}

impl ExportPlan {
    /// Plan the picture of `cells` (their rects relative to `area`'s top-left corner): names and
    /// scale bars laid out with `ctx`'s fonts. Call on the UI thread (it only lays out text).
    pub fn new(ctx: &egui::Context, area: Rect, cells: Vec<CellPicture>) -> ExportPlan {
        let ppp = ctx.pixels_per_point();
        let mut plan = ExportPlan {
            size: area.size(),
            pixels_per_point: ppp,
            cells: Vec::new(),
            boxes: Vec::new(),
            bars: Vec::new(),
            stamps: Vec::new(),
        };
        let font = FontId::proportional(13.0);
        let layout = |text: &str| {
            (!text.is_empty())
                .then(|| ctx.fonts_mut(|f| f.layout_no_wrap(text.to_string(), font.clone(), Color32::WHITE)))
        };
        // Laid out first, then copied from the font atlas once (layout adds the glyphs to it).
        let mut texts = Vec::new();
        for mut cell in cells {
            cell.rect = cell.rect.translate(-area.min.to_vec2());
            // The name, top left.
            let at = cell.rect.left_top() + Vec2::new(8.0, 8.0);
            if let Some(galley) = layout(&cell.name) {
                plan.boxes.push(Rect::from_min_size(at, galley.size()).expand(4.0));
                texts.push((galley, at));
            }
            // The scale bar, bottom left, as the view draws it.
            let mpp = cell.slide.properties().mpp_x;
            if let Some((_, points, label)) = mpp.and_then(|m| scale_bar(m / cell.camera.zoom, 150.0)) {
                let origin = cell.rect.left_bottom() + Vec2::new(16.0, -18.0);
                let end = origin + Vec2::new(points as f32, 0.0);
                plan.boxes.push(Rect::from_min_max(origin + Vec2::new(-8.0, -22.0), end + Vec2::new(8.0, 8.0)));
                plan.bars.push((origin, end));
                texts.extend(layout(&label).map(|galley| (galley, origin + Vec2::new(0.0, -20.0))));
            }
            plan.cells.push(cell);
        }
        let atlas = ctx.fonts(|f| f.image());
        plan.stamps = texts.iter().map(|(galley, at)| stamp(galley, &atlas, *at, ppp)).collect();
        plan
    }

    /// The picture's size in pixels.
    pub fn pixel_size(&self) -> (u32, u32) {
        let w = (self.size.x * self.pixels_per_point).round().max(1.0) as u32;
        let h = (self.size.y * self.pixels_per_point).round().max(1.0) as u32;
        (w, h)
    }

    /// Draw the picture (reads the slides: call on a worker).
    pub fn render(&self) -> Result<RgbaImage, String> {
        let (w, h) = self.pixel_size();
        if u64::from(w) * u64::from(h) > MAX_EXPORT_PIXELS {
            return Err(format!("the picture would be {w} × {h} pixels, more than {MAX_EXPORT_PIXELS} in all"));
        }
        let ppp = f64::from(self.pixels_per_point);
        let mut out = RgbaImage::from_pixel(w, h, Rgba(BACKGROUND));
        for cell in &self.cells {
            draw_cell(&mut out, cell, ppp)?;
        }
        for b in &self.boxes {
            fill(&mut out, *b, ppp, [0, 0, 0], 150);
        }
        for (a, b) in &self.bars {
            fill(
                &mut out,
                Rect::from_min_max(*a - Vec2::new(0.0, 1.5), *b + Vec2::new(0.0, 1.5)),
                ppp,
                [255, 255, 255],
                255,
            );
        }
        for s in &self.stamps {
            for (at, gw, gh, coverage) in &s.glyphs {
                for y in 0..*gh {
                    for x in 0..*gw {
                        let (px, py) = (at[0] + x as i64, at[1] + y as i64);
                        if px < 0 || py < 0 || px >= i64::from(w) || py >= i64::from(h) {
                            continue;
                        }
                        blend(out.get_pixel_mut(px as u32, py as u32), s.color, u16::from(coverage[y * gw + x]));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `galley` (text laid out by egui) placed at `at` (points), as glyph coverage in picture pixels
/// copied from egui's font `atlas`.
fn stamp(galley: &egui::Galley, atlas: &egui::ColorImage, at: Pos2, ppp: f32) -> Stamp {
    let mut glyphs = Vec::new();
    for row in &galley.rows {
        let mesh = &row.row.visuals.mesh;
        let range = row.row.visuals.glyph_vertex_range.clone();
        for quad in mesh.vertices[range].chunks_exact(4) {
            let (mut p0, mut p1) = (Pos2::new(f32::MAX, f32::MAX), Pos2::new(f32::MIN, f32::MIN));
            let (mut u0, mut u1) = (Pos2::new(f32::MAX, f32::MAX), Pos2::new(f32::MIN, f32::MIN));
            for v in quad {
                p0 = p0.min(v.pos);
                p1 = p1.max(v.pos);
                u0 = u0.min(v.uv);
                u1 = u1.max(v.uv);
            }
            // Texel coordinates in the atlas (non-normalised UV).
            let (tx, ty) = (u0.x.round() as usize, u0.y.round() as usize);
            let (tw, th) = ((u1.x - u0.x).round() as usize, (u1.y - u0.y).round() as usize);
            if tw == 0 || th == 0 || tx + tw > atlas.size[0] || ty + th > atlas.size[1] {
                continue;
            }
            let mut coverage = Vec::with_capacity(tw * th);
            for y in ty..ty + th {
                for x in tx..tx + tw {
                    coverage.push(atlas.pixels[y * atlas.size[0] + x].a());
                }
            }
            let origin = (at + row.pos.to_vec2() + p0.to_vec2()) * ppp;
            glyphs.push(([origin.x.round() as i64, origin.y.round() as i64], tw, th, coverage));
        }
    }
    Stamp { glyphs, color: [255, 255, 255] }
}

/// `color` at `alpha` (0–255) over `pixel`.
fn blend(pixel: &mut Rgba<u8>, color: [u8; 3], alpha: u16) {
    for (d, s) in pixel.0.iter_mut().zip(color) {
        *d = ((u16::from(s) * alpha + u16::from(*d) * (255 - alpha)) / 255) as u8;
    }
}

/// Blend `color` at `alpha` over the pixels of `rect` (points).
fn fill(out: &mut RgbaImage, rect: Rect, ppp: f64, color: [u8; 3], alpha: u16) {
    let x0 = (f64::from(rect.min.x) * ppp).round().max(0.0) as u32;
    let y0 = (f64::from(rect.min.y) * ppp).round().max(0.0) as u32;
    let x1 = ((f64::from(rect.max.x) * ppp).round().max(0.0) as u32).min(out.width());
    let y1 = ((f64::from(rect.max.y) * ppp).round().max(0.0) as u32).min(out.height());
    for y in y0..y1 {
        for x in x0..x1 {
            blend(out.get_pixel_mut(x, y), color, alpha);
        }
    }
}

/// Draw one cell: the region of the level its view draws, sampled bilinearly at each pixel's
/// centre through the cell's camera (turned views included).
fn draw_cell(out: &mut RgbaImage, cell: &CellPicture, ppp: f64) -> Result<(), String> {
    let slide = &cell.slide;
    let levels = slide.levels();
    let view = ViewRect { x: 0.0, y: 0.0, width: f64::from(cell.rect.width()), height: f64::from(cell.rect.height()) };
    let l0 = levels.first().ok_or("the slide has no levels")?;
    let (sw, sh) = (l0.width as f64, l0.height as f64);
    let [x0, y0, x1, y1] = cell.camera.visible_level0(&view);
    let (x0, y0, x1, y1) = (x0.max(0.0), y0.max(0.0), x1.min(sw), y1.min(sh));
    if x0 >= x1 || y0 >= y1 {
        return Ok(());
    }
    let mut level = level_for_zoom(levels, cell.camera.zoom, ppp);
    let region = |level: usize| {
        let ds = levels[level].downsample;
        let (rx, ry) = ((x0 / ds).floor(), (y0 / ds).floor());
        let (rw, rh) = (((x1 / ds).ceil() - rx + 1.0).max(1.0), ((y1 / ds).ceil() - ry + 1.0).max(1.0));
        (ds, rx, ry, rw, rh)
    };
    while level + 1 < levels.len() && {
        let (_, _, _, rw, rh) = region(level);
        rw * rh > MAX_REGION_PIXELS as f64
    } {
        level += 1;
    }
    let (ds, rx, ry, rw, rh) = region(level);
    if rw * rh > MAX_REGION_PIXELS as f64 {
        return Err(format!("{}: the view needs too large a region ({rw} × {rh} pixels)", cell.name));
    }
    let pixels = slide
        .read_region(level, (rx * ds).round() as i64, (ry * ds).round() as i64, rw as u32, rh as u32)
        .map_err(|e| format!("{}: {}", cell.name, e.kind))?;
    let (iw, ih) = (pixels.width() as i64, pixels.height() as i64);
    let px0 = (f64::from(cell.rect.min.x) * ppp).round() as i64;
    let py0 = (f64::from(cell.rect.min.y) * ppp).round() as i64;
    let pw = (f64::from(cell.rect.width()) * ppp).round() as i64;
    let ph = (f64::from(cell.rect.height()) * ppp).round() as i64;
    for j in 0..ph {
        for i in 0..pw {
            let (ox, oy) = (px0 + i, py0 + j);
            if ox < 0 || oy < 0 || ox >= i64::from(out.width()) || oy >= i64::from(out.height()) {
                continue;
            }
            let p = cell.camera.screen_to_level0([(i as f64 + 0.5) / ppp, (j as f64 + 0.5) / ppp], &view);
            if p[0] < 0.0 || p[1] < 0.0 || p[0] >= sw || p[1] >= sh {
                continue;
            }
            // Level pixel centres are at +0.5.
            let (fx, fy) = (p[0] / ds - rx - 0.5, p[1] / ds - ry - 0.5);
            let (ax, ay) = (fx.floor(), fy.floor());
            let (tx, ty) = (fx - ax, fy - ay);
            let at = |x: f64, y: f64| {
                let (x, y) = ((x as i64).clamp(0, iw - 1), (y as i64).clamp(0, ih - 1));
                pixels.get_pixel(x as u32, y as u32).0
            };
            let (a, b, c, d) = (at(ax, ay), at(ax + 1.0, ay), at(ax, ay + 1.0), at(ax + 1.0, ay + 1.0));
            let mut rgba = [0u8; 4];
            for k in 0..4 {
                let top = f64::from(a[k]) * (1.0 - tx) + f64::from(b[k]) * tx;
                let bottom = f64::from(c[k]) * (1.0 - tx) + f64::from(d[k]) * tx;
                rgba[k] = (top * (1.0 - ty) + bottom * ty).round().clamp(0.0, 255.0) as u8;
            }
            // Transparent slide pixels (outside a scan area) show the background.
            let dst = out.get_pixel_mut(ox as u32, oy as u32);
            *dst = Rgba(BACKGROUND);
            blend(dst, [rgba[0], rgba[1], rgba[2]], u16::from(rgba[3]));
        }
    }
    Ok(())
}

/// Render `plan` and write it to `path` as PNG, atomically. Returns a line for the status bar.
pub fn export(plan: &ExportPlan, path: &Path) -> Result<String, String> {
    let image = plan.render().map_err(|e| format!("Not exported: {e}"))?;
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba8(image)
        .to_rgb8()
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| format!("Not exported: encoding PNG: {e}"))?;
    crate::files::write_atomic(path, &bytes).map_err(|e| format!("Not exported: {}: {e}", path.display()))?;
    let (w, h) = plan.pixel_size();
    Ok(format!("Exported the view ({w} × {h} px) to {}", path.display()))
}

/// `folder/name`, or `folder/STEM-2.png`, `-3`… when that exists (an export never replaces a file
/// it was not pointed at).
pub fn unused_path(folder: &Path, name: &str) -> PathBuf {
    let first = folder.join(name);
    if !first.exists() {
        return first;
    }
    let stem = name.strip_suffix(".png").unwrap_or(name);
    (2..10_000).map(|n| folder.join(format!("{stem}-{n}.png"))).find(|p| !p.exists()).unwrap_or(first)
}

/// A file name for the export: the first slide's stem and "view".
pub fn suggested_name(slides: &[PathBuf]) -> String {
    let stem = slides.first().and_then(|p| p.file_stem()).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if stem.is_empty() {
        "view.png".into()
    } else {
        format!("{stem}-view.png")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_never_replaces_a_file() {
        let dir = std::env::temp_dir().join(format!("wsiview-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(unused_path(&dir, "a-view.png"), dir.join("a-view.png"));
        std::fs::write(dir.join("a-view.png"), b"x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("a-view-2.png"), b"x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(unused_path(&dir, "a-view.png"), dir.join("a-view-3.png"));
        assert_eq!(suggested_name(&[PathBuf::from("/x/H26-1.svs")]), "H26-1-view.png");
        assert_eq!(suggested_name(&[]), "view.png");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
