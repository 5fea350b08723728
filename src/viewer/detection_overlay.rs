//! Drawing a slide's detection layer (issue 18): up to millions of cells over the tiles.
//!
//! **How.** Drawing a million outlines as egui shapes every frame costs far more than a frame
//! under a software rasteriser. The layer is instead *rasterised on a worker* ([`rasterize`]):
//! the objects meeting a level-0 rectangle a little larger than the view are drawn into one
//! RGBA image at the screen's resolution — filled outlines, outline strokes, nuclei when large
//! enough, one pixel for objects smaller than a pixel — using the layer's grid index and rayon
//! (bands of rows in parallel). That image is one texture, drawn each frame as one quad whose
//! corners are its level-0 corners projected by the camera, so panning, zooming and rotation move
//! it exactly with the slide at the cost of a single textured quad. When the view leaves the
//! image's rectangle, its scale drifts from the screen's, or the style changes, the next image is
//! made while the current one stays on screen (as tiles do).
//!
//! **Counts.** Per class, of objects whose centroid is in the view (the turned view's quad) and
//! in the selected area annotation, computed on a worker at most [`COUNT_EVERY`] apart.
//!
//! Coordinates are level-0 pixels; the image is premultiplied sRGBA, row-major, top row first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Color32, ColorImage, TextureHandle, TextureOptions};
use rayon::prelude::*;

use crate::annotations::detections::{ColorBy, DetectionLayer, LoadReport};
use crate::annotations::error::DetectionFileError;

use super::annotate::Projection;
use super::job::Job;

/// How a detection layer is drawn: what the side panel sets.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionStyle {
    /// Draw the layer at all.
    pub shown: bool,
    /// Class colours, or a measurement through a colour map.
    pub color_by: ColorBy,
    /// Per class (indexed like [`DetectionLayer::classes`]): drawn or not.
    pub class_visible: Vec<bool>,
    /// 0 (invisible) to 1; outlines are drawn at this opacity, fills at [`FILL_SHARE`] of it.
    pub opacity: f32,
    /// Fill each object (else outlines only).
    pub fill: bool,
}

impl DetectionStyle {
    /// Every class shown, in its class colour, filled, at 80 % opacity.
    pub fn new(classes: usize) -> Self {
        DetectionStyle {
            shown: true,
            color_by: ColorBy::Class,
            class_visible: vec![true; classes],
            opacity: 0.8,
            fill: true,
        }
    }

    fn class_shown(&self, class: u16) -> bool {
        self.class_visible.get(usize::from(class)).copied().unwrap_or(true)
    }
}

/// Share of the opacity a fill gets (outlines get all of it).
pub const FILL_SHARE: f32 = 0.45;

/// Objects whose bounds span less than this many image pixels both ways are drawn as one pixel.
const DOT_PX: f64 = 2.0;

/// Nuclei are drawn for objects at least this many image pixels across.
const NUCLEUS_PX: f64 = 12.0;

/// Rows of the image drawn by one rayon task.
const BAND_ROWS: usize = 32;

/// The image covers the view's level-0 bounds widened by this share of their size on each side,
/// so a pan does not need a new image at once.
const MARGIN: f64 = 0.25;

/// Largest image made, in pixels (a 4K view with its margin is scaled down to fit).
const MAX_PIXELS: f64 = 12e6;

/// Counts are refreshed at most this often while the view moves.
pub const COUNT_EVERY: Duration = Duration::from_millis(250);

/// One pixel's colour at `alpha` (0–1), premultiplied.
fn premultiplied(rgb: [u8; 3], alpha: f32) -> [u8; 4] {
    let a = alpha.clamp(0.0, 1.0);
    let m = |c: u8| (f32::from(c) * a).round() as u8;
    [m(rgb[0]), m(rgb[1]), m(rgb[2]), (255.0 * a).round() as u8]
}

/// `src` (premultiplied) over `dst`.
#[inline]
fn blend(dst: &mut Color32, src: [u8; 4]) {
    let keep = 255 - u32::from(src[3]);
    let d = dst.to_array();
    let mix = |s: u8, d: u8| (u32::from(s) + (u32::from(d) * keep + 127) / 255).min(255) as u8;
    *dst = Color32::from_rgba_premultiplied(mix(src[0], d[0]), mix(src[1], d[1]), mix(src[2], d[2]), mix(src[3], d[3]));
}

/// One band of the image: rows `y0..y0 + rows.len() / width`.
struct Band<'a> {
    pixels: &'a mut [Color32],
    width: usize,
    y0: usize,
    rows: usize,
}

impl Band<'_> {
    #[inline]
    fn plot(&mut self, x: i64, y: i64, src: [u8; 4]) {
        if x < 0 || y < self.y0 as i64 || x >= self.width as i64 || y >= (self.y0 + self.rows) as i64 {
            return;
        }
        let i = (y as usize - self.y0) * self.width + x as usize;
        blend(&mut self.pixels[i], src);
    }

    /// Fill the rings (even-odd over all of them) for the pixels whose centre is inside.
    fn fill(&mut self, rings: &[Vec<[f64; 2]>], y_range: [f64; 2], src: [u8; 4], xs: &mut Vec<f64>) {
        let first = ((y_range[0] - 0.5).ceil().max(self.y0 as f64)) as i64;
        let last = ((y_range[1] - 0.5).floor().min((self.y0 + self.rows) as f64 - 1.0)) as i64;
        for y in first..=last {
            let yc = y as f64 + 0.5;
            xs.clear();
            for ring in rings {
                for (k, p) in ring.iter().enumerate() {
                    let q = ring[(k + 1) % ring.len()];
                    if (p[1] <= yc) != (q[1] <= yc) {
                        xs.push(p[0] + (yc - p[1]) * (q[0] - p[0]) / (q[1] - p[1]));
                    }
                }
            }
            xs.sort_by(f64::total_cmp);
            for pair in xs.chunks_exact(2) {
                let from = ((pair[0] - 0.5).ceil().max(0.0)) as i64;
                let to = ((pair[1] - 0.5).ceil().min(self.width as f64)) as i64;
                for x in from..to {
                    self.plot(x, y, src);
                }
            }
        }
    }

    /// A one-pixel closed outline through the ring's vertices, each edge clipped to the band
    /// first (so an edge far longer than the image costs only the pixels it crosses).
    fn stroke(&mut self, ring: &[[f64; 2]], src: [u8; 4]) {
        let clip = [-1.0, self.y0 as f64 - 1.0, self.width as f64 + 1.0, (self.y0 + self.rows) as f64 + 1.0];
        for (k, &p) in ring.iter().enumerate() {
            let q = ring[(k + 1) % ring.len()];
            let Some((a, b)) = clip_segment(p, q, clip) else { continue };
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            // Each step moves at most one pixel; the clipped edge spans at most the band.
            let steps = dx.abs().max(dy.abs()).ceil().max(1.0) as i64;
            for s in 0..=steps {
                let t = s as f64 / steps as f64;
                self.plot((a[0] + dx * t).floor() as i64, (a[1] + dy * t).floor() as i64, src);
            }
        }
    }
}

/// The part of segment `p`–`q` inside rectangle `r` (`[x0, y0, x1, y1]`), by Liang–Barsky;
/// `None` when none of it is.
fn clip_segment(p: [f64; 2], q: [f64; 2], r: [f64; 4]) -> Option<([f64; 2], [f64; 2])> {
    let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (den, num) in [(-dx, p[0] - r[0]), (dx, r[2] - p[0]), (-dy, p[1] - r[1]), (dy, r[3] - p[1])] {
        if den == 0.0 {
            if num < 0.0 {
                return None;
            }
        } else {
            let t = num / den;
            if den < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then(|| ([p[0] + dx * t0, p[1] + dy * t0], [p[0] + dx * t1, p[1] + dy * t1]))
}

/// Draw the objects of `layer` that meet level-0 rectangle `area` (`[x0, y0, x1, y1]`) into an
/// image of `size` pixels (`[width, height]`) mapping `area` onto it, transparent where there is
/// nothing. `None` when `cancel` was set while drawing, or for an empty size or area.
pub fn rasterize(
    layer: &DetectionLayer,
    style: &DetectionStyle,
    area: [f64; 4],
    size: [usize; 2],
    cancel: &AtomicBool,
) -> Option<ColorImage> {
    let [w, h] = size;
    let (aw, ah) = (area[2] - area[0], area[3] - area[1]);
    if w == 0 || h == 0 || !(aw > 0.0 && ah > 0.0) || w.saturating_mul(h) as f64 > MAX_PIXELS * 1.01 {
        return None;
    }
    let (sx, sy) = (w as f64 / aw, h as f64 / ah);
    let to_image = |p: [f32; 2]| [(f64::from(p[0]) - area[0]) * sx, (f64::from(p[1]) - area[1]) * sy];
    let mut pixels = vec![Color32::TRANSPARENT; w * h];
    let line_alpha = style.opacity;
    let fill_alpha = style.opacity * FILL_SHARE;
    pixels.par_chunks_mut(w * BAND_ROWS).enumerate().for_each(|(b, chunk)| {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let rows = chunk.len() / w;
        let mut band = Band { pixels: chunk, width: w, y0: b * BAND_ROWS, rows };
        // The band's strip of the slide, one pixel wider each way for strokes on its edge.
        let strip =
            [area[0], area[1] + (band.y0 as f64 - 1.0) / sy, area[2], area[1] + ((band.y0 + rows) as f64 + 1.0) / sy];
        let (mut rings, mut xs) = (Vec::<Vec<[f64; 2]>>::new(), Vec::new());
        for (n, i) in layer.query(strip).enumerate() {
            if n % 4096 == 4095 && cancel.load(Ordering::Relaxed) {
                return;
            }
            if !style.class_shown(layer.class_index(i)) {
                continue;
            }
            let rgb = layer.color_of(i, &style.color_by);
            let bounds = layer.bounds(i);
            let (bw, bh) = ((bounds[2] - bounds[0]) * sx, (bounds[3] - bounds[1]) * sy);
            if bw < DOT_PX && bh < DOT_PX {
                let c = layer.centroid(i);
                let p = [(c[0] - area[0]) * sx, (c[1] - area[1]) * sy];
                band.plot(p[0].floor() as i64, p[1].floor() as i64, premultiplied(rgb, line_alpha));
                continue;
            }
            rings.clear();
            rings.extend(layer.outline(i).filter(|r| r.len() >= 2).map(|r| r.iter().map(|&v| to_image(v)).collect()));
            if style.fill {
                let y_range = [(bounds[1] - area[1]) * sy, (bounds[3] - area[1]) * sy];
                band.fill(&rings, y_range, premultiplied(rgb, fill_alpha), &mut xs);
            }
            let line = premultiplied(rgb, line_alpha);
            for ring in &rings {
                band.stroke(ring, line);
            }
            if bw.max(bh) >= NUCLEUS_PX {
                for ring in layer.nucleus(i).filter(|r| r.len() >= 2) {
                    let ring: Vec<[f64; 2]> = ring.iter().map(|&v| to_image(v)).collect();
                    band.stroke(&ring, line);
                }
            }
        }
    });
    (!cancel.load(Ordering::Relaxed)).then(|| ColorImage::new(size, pixels))
}

/// The image to draw for a view: the level-0 rectangle it covers, its size in pixels, and its
/// pixels per level-0 pixel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    pub area: [f64; 4],
    pub size: [usize; 2],
    pub scale: f64,
}

/// The image for a view whose level-0 bounds are `bounds`, shown at `scale` screen pixels per
/// level-0 pixel: the bounds widened by [`MARGIN`] on each side, at `scale` unless the image
/// would be over [`MAX_PIXELS`] or a side over `max_side` (the GPU's largest texture). `None`
/// for an empty view.
pub fn plan(bounds: [f64; 4], scale: f64, max_side: usize) -> Option<Plan> {
    let (bw, bh) = (bounds[2] - bounds[0], bounds[3] - bounds[1]);
    let area = [bounds[0] - bw * MARGIN, bounds[1] - bh * MARGIN, bounds[2] + bw * MARGIN, bounds[3] + bh * MARGIN];
    let (aw, ah) = (area[2] - area[0], area[3] - area[1]);
    if !(aw > 0.0 && ah > 0.0 && scale > 0.0 && aw.is_finite() && ah.is_finite() && scale.is_finite()) {
        return None;
    }
    let side = max_side.max(1) as f64;
    let scale = scale.min((MAX_PIXELS / (aw * ah)).sqrt()).min(side / aw).min(side / ah);
    let size = [
        ((aw * scale).floor() as usize).clamp(1, max_side.max(1)),
        ((ah * scale).floor() as usize).clamp(1, max_side.max(1)),
    ];
    Some(Plan { area, size, scale: size[0] as f64 / aw })
}

/// Whether an image of `area` at `scale` (image pixels per level-0 pixel) no longer serves a
/// view planned as `wanted`: the view's bounds leave it, or its scale is off by more than 25 %.
fn outgrown(area: [f64; 4], scale: f64, bounds: [f64; 4], wanted: &Plan) -> bool {
    let ratio = wanted.scale / scale;
    let inside = bounds[0] >= area[0] && bounds[1] >= area[1] && bounds[2] <= area[2] && bounds[3] <= area[3];
    !(inside && (0.8..=1.25).contains(&ratio))
}

/// An image being drawn: its job, its stop flag, and what it will show (area, scale, generation).
type Drawing = (Job<Option<Raster>>, Arc<AtomicBool>, ([f64; 4], f64, u64));

/// A finished image: what it shows and the style generation it was drawn with.
struct Raster {
    image: ColorImage,
    area: [f64; 4],
    /// Image pixels per level-0 pixel.
    scale: f64,
    generation: u64,
}

/// Counts per class (indexed like the layer's classes) of one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Objects whose centroid is in the view.
    pub view: Vec<u64>,
    /// Objects whose centroid is in the selected area annotation (None without one).
    pub region: Option<Vec<u64>>,
}

/// The view's corners and the region of a count, and when it was asked for.
type CountedFor = ([[f64; 2]; 4], Option<Vec<[f64; 2]>>, Instant);

/// What the loader answers: the layer with its load report and objects per class (counted on
/// the worker too: millions of objects), and how long the read took, ms.
type Loaded = (Result<(DetectionLayer, LoadReport, Vec<u64>), DetectionFileError>, f64);

/// The state of a slide's detection layer.
pub enum DetectionState {
    /// Being read on a worker (progress in the job).
    Loading(Job<Loaded>),
    /// Ready to draw.
    Ready(Arc<DetectionLayer>),
    /// Could not be read: the message names the file.
    Failed(String),
}

/// A slide's detection layer with how it is drawn, its current image and counts.
pub struct DetectionOverlay {
    /// The file it was read from.
    pub path: PathBuf,
    pub state: DetectionState,
    pub style: DetectionStyle,
    /// What the load said (objects, skipped features, problems).
    pub report: Option<LoadReport>,
    /// How long the load took, ms.
    pub load_ms: Option<f64>,
    started: Instant,
    cancel: Arc<AtomicBool>,
    /// Bumped on every style change: an image of an older one is redrawn.
    generation: u64,
    drawn_style: DetectionStyle,
    texture: Option<TextureHandle>,
    shown: Option<([f64; 4], f64, u64)>,
    /// The image being drawn, its stop flag, and what it will show (area, scale, generation).
    drawing: Option<Drawing>,
    /// The image on screen does not serve the view of the last frame (a new one is wanted).
    stale: bool,
    counting: Option<Job<Counts>>,
    /// What the last counts were asked for (the view's corners, the region) and when.
    counted: Option<CountedFor>,
    /// The latest counts.
    pub counts: Option<Counts>,
    /// Objects per class in the whole layer.
    pub class_totals: Vec<u64>,
}

impl DetectionOverlay {
    /// Start reading `path` on a worker.
    pub fn load(path: &Path, ctx: &egui::Context) -> Self {
        let cancel = Arc::new(AtomicBool::new(false));
        let (file, flag) = (path.to_path_buf(), cancel.clone());
        let job = Job::spawn_with_progress(ctx, move |progress| {
            let start = Instant::now();
            let loaded = DetectionLayer::load(&file, |done, total| progress.set(done, total), &flag);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let loaded = loaded.map(|(layer, report)| {
                let totals = class_totals(&layer);
                (layer, report, totals)
            });
            (loaded, ms)
        });
        let mut overlay = Self::empty(path);
        overlay.state = DetectionState::Loading(job);
        overlay.cancel = cancel;
        overlay
    }

    fn empty(path: &Path) -> Self {
        DetectionOverlay {
            path: path.to_path_buf(),
            state: DetectionState::Failed(String::new()),
            style: DetectionStyle::new(0),
            report: None,
            load_ms: None,
            started: Instant::now(),
            cancel: Arc::new(AtomicBool::new(false)),
            generation: 0,
            drawn_style: DetectionStyle::new(0),
            texture: None,
            shown: None,
            drawing: None,
            stale: true,
            counting: None,
            counted: None,
            counts: None,
            class_totals: Vec::new(),
        }
    }

    /// An overlay of a layer already read (another view of the same slide shares its memory).
    pub fn shared(path: &Path, layer: Arc<DetectionLayer>) -> Self {
        let mut overlay = Self::empty(path);
        overlay.style = DetectionStyle::new(layer.classes().len());
        overlay.class_totals = class_totals(&layer);
        overlay.state = DetectionState::Ready(layer);
        overlay
    }

    /// Whether the load failed (the message in [`DetectionState::Failed`]).
    pub fn failed(&self) -> Option<&str> {
        match &self.state {
            DetectionState::Failed(message) => Some(message),
            _ => None,
        }
    }

    /// The layer, once read.
    pub fn layer(&self) -> Option<&Arc<DetectionLayer>> {
        match &self.state {
            DetectionState::Ready(layer) => Some(layer),
            _ => None,
        }
    }

    /// Share of the file read, 0–1, while loading.
    pub fn progress(&self) -> Option<f32> {
        match &self.state {
            DetectionState::Loading(job) => Some(job.fraction()),
            _ => None,
        }
    }

    /// Stop a load in progress (it ends as failed, "cancelled").
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether the image on screen is of the current style and covers the view at its scale
    /// (for tests and the benchmark: nothing is still being drawn).
    pub fn is_settled(&self) -> bool {
        !self.stale
            && self.drawing.is_none()
            && self.counting.is_none()
            && self.shown.is_some_and(|(_, _, g)| g == self.generation)
    }

    /// Take a finished load.
    fn poll_load(&mut self) {
        let DetectionState::Loading(job) = &mut self.state else { return };
        let Some(outcome) = job.try_take() else { return };
        // Timed on the worker (the read alone); a worker that stopped has only the wait.
        let (loaded, ms) = match outcome {
            Ok((loaded, ms)) => (Ok(loaded), ms),
            Err(stopped) => (Err(stopped), self.started.elapsed().as_secs_f64() * 1e3),
        };
        self.load_ms = Some(ms);
        self.state = match loaded {
            Ok(Ok((layer, report, totals))) => {
                self.style = DetectionStyle::new(layer.classes().len());
                self.class_totals = totals;
                self.report = Some(report);
                DetectionState::Ready(Arc::new(layer))
            }
            Ok(Err(e)) => DetectionState::Failed(crate::error::printable(&e.to_string())),
            Err(stopped) => DetectionState::Failed(format!("{}: {stopped}", self.path.display())),
        };
    }

    /// Draw the layer under `projection` (a frame of the slide view), asking for a new image or
    /// new counts when needed. `region` is the selected area annotation's outline, if any.
    pub fn paint(&mut self, painter: &egui::Painter, projection: &Projection, ppp: f64, region: Option<Vec<[f64; 2]>>) {
        self.poll_load();
        let Some(layer) = self.layer().cloned() else { return };
        let ctx = painter.ctx().clone();
        if self.style != self.drawn_style {
            self.generation += 1;
            self.drawn_style = self.style.clone();
        }
        // A finished image becomes the texture.
        if let Some((job, _, _)) = &mut self.drawing {
            if let Some(outcome) = job.try_take() {
                self.drawing = None;
                if let Ok(Some(raster)) = outcome {
                    match &mut self.texture {
                        Some(t) => t.set(raster.image, TextureOptions::LINEAR),
                        None => {
                            self.texture = Some(ctx.load_texture("detections", raster.image, TextureOptions::LINEAR))
                        }
                    }
                    self.shown = Some((raster.area, raster.scale, raster.generation));
                }
            }
        }
        let corners = view_corners(projection);
        let bounds = bounds_of(&corners);
        let max_side = ctx.input(|i| i.max_texture_side);
        let wanted = plan(bounds, projection.camera.zoom * ppp, max_side);
        let serves = |(area, scale, generation): ([f64; 4], f64, u64), wanted: &Plan| {
            generation == self.generation && !outgrown(area, scale, bounds, wanted)
        };
        self.stale = match (&wanted, self.shown) {
            (Some(w), Some(shown)) => !serves(shown, w),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if let (Some(w), true, true) = (wanted, self.stale, self.style.shown) {
            // An image under way for an older style or a view left behind is stopped.
            let pending_serves = self.drawing.as_ref().is_some_and(|(_, _, what)| serves(*what, &w));
            if !pending_serves {
                if let Some((_, stop, _)) = self.drawing.take() {
                    stop.store(true, Ordering::Relaxed);
                }
                self.start_drawing(&ctx, &layer, w);
            }
        }
        if self.style.shown {
            if let (Some(texture), Some((area, _, _))) = (&self.texture, self.shown) {
                let mut mesh = egui::Mesh::with_texture(texture.id());
                let at = |x: f64, y: f64| projection.to_screen([x, y]);
                let quad = [at(area[0], area[1]), at(area[2], area[1]), at(area[0], area[3]), at(area[2], area[3])];
                let uvs = [egui::pos2(0.0, 0.0), egui::pos2(1.0, 0.0), egui::pos2(0.0, 1.0), egui::pos2(1.0, 1.0)];
                for (pos, uv) in quad.into_iter().zip(uvs) {
                    mesh.vertices.push(egui::epaint::Vertex { pos, uv, color: Color32::WHITE });
                }
                mesh.indices.extend([0, 1, 2, 1, 3, 2]);
                painter.add(egui::Shape::mesh(mesh));
            }
        }
        self.update_counts(&ctx, &layer, corners, region);
    }

    fn start_drawing(&mut self, ctx: &egui::Context, layer: &Arc<DetectionLayer>, plan: Plan) {
        let (layer, style, generation) = (layer.clone(), self.style.clone(), self.generation);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let job = Job::spawn(ctx, move || {
            let image = rasterize(&layer, &style, plan.area, plan.size, &flag)?;
            Some(Raster { image, area: plan.area, scale: plan.scale, generation })
        });
        self.drawing = Some((job, stop, (plan.area, plan.scale, generation)));
    }

    fn update_counts(
        &mut self,
        ctx: &egui::Context,
        layer: &Arc<DetectionLayer>,
        corners: [[f64; 2]; 4],
        region: Option<Vec<[f64; 2]>>,
    ) {
        if let Some(job) = &mut self.counting {
            if let Some(outcome) = job.try_take() {
                self.counting = None;
                self.counts = outcome.ok();
            }
            return;
        }
        let changed = match &self.counted {
            None => true,
            Some((c, r, at)) => (*c != corners || *r != region) && at.elapsed() >= COUNT_EVERY,
        };
        if !changed {
            if self.counted.as_ref().is_some_and(|(c, r, _)| *c != corners || *r != region) {
                ctx.request_repaint_after(COUNT_EVERY);
            }
            return;
        }
        self.counted = Some((corners, region.clone(), Instant::now()));
        let layer = layer.clone();
        // A view showing every object (zoomed out) counts them all: no need to look at each.
        let totals = layer.extent().filter(|e| contains_box(&corners, *e)).map(|_| self.class_totals.clone());
        self.counting = Some(Job::spawn(ctx, move || Counts {
            view: totals.unwrap_or_else(|| layer.count_by_class_in_polygon(&corners)),
            region: region.map(|r| layer.count_by_class_in_polygon(&r)),
        }));
    }
}

impl Drop for DetectionOverlay {
    fn drop(&mut self) {
        self.cancel();
        if let Some((_, stop, _)) = &self.drawing {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Objects per class in the whole layer.
fn class_totals(layer: &DetectionLayer) -> Vec<u64> {
    let mut totals = vec![0; layer.classes().len()];
    for i in 0..layer.len() {
        if let Some(n) = totals.get_mut(usize::from(layer.class_index(i))) {
            *n += 1;
        }
    }
    totals
}

/// Whether the convex quadrilateral `quad` (corners in order, either winding) holds the whole
/// box `b` (`[x0, y0, x1, y1]`): every corner of the box is on the inner side of every edge.
fn contains_box(quad: &[[f64; 2]; 4], b: [f64; 4]) -> bool {
    let cross = |o: [f64; 2], a: [f64; 2], p: [f64; 2]| (a[0] - o[0]) * (p[1] - o[1]) - (a[1] - o[1]) * (p[0] - o[0]);
    // A collapsed view (no area) holds nothing.
    let area2: f64 = (0..4).map(|k| cross([0.0, 0.0], quad[k], quad[(k + 1) % 4])).sum();
    if area2.abs().partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return false;
    }
    let box_corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
    let sides: Vec<f64> = (0..4).flat_map(|k| box_corners.map(|p| cross(quad[k], quad[(k + 1) % 4], p))).collect();
    sides.iter().all(|&c| c >= 0.0) || sides.iter().all(|&c| c <= 0.0)
}

/// The view's corners in level-0 pixels, clockwise from its top-left on screen.
fn view_corners(projection: &Projection) -> [[f64; 2]; 4] {
    let v = projection.view;
    let at = |x: f64, y: f64| projection.camera.screen_to_level0([x, y], &v);
    [at(v.x, v.y), at(v.x + v.width, v.y), at(v.x + v.width, v.y + v.height), at(v.x, v.y + v.height)]
}

fn bounds_of(corners: &[[f64; 2]; 4]) -> [f64; 4] {
    let xs = corners.map(|c| c[0]);
    let ys = corners.map(|c| c[1]);
    let min = |v: [f64; 4]| v.into_iter().fold(f64::INFINITY, f64::min);
    let max = |v: [f64; 4]| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
    [min(xs), min(ys), max(xs), max(ys)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three 12-gon cells of two classes, written as QuPath GeoJSON and loaded.
    fn layer() -> (tempfile::TempDir, DetectionLayer) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cells.geojson");
        let cell = |cx: f64, cy: f64, r: f64, class: &str, color: [u8; 3], value: f64| {
            let ring: Vec<String> = (0..=12)
                .map(|k| {
                    let a = std::f64::consts::TAU * f64::from(k % 12) / 12.0;
                    format!("[{},{}]", cx + r * a.cos(), cy + r * a.sin())
                })
                .collect();
            format!(
                r#"{{"type":"Feature","geometry":{{"type":"Polygon","coordinates":[[{}]]}},"properties":{{"objectType":"cell","classification":{{"name":"{class}","color":[{},{},{}]}},"measurements":{{"DAB: Mean":{value}}}}}}}"#,
                ring.join(","),
                color[0],
                color[1],
                color[2]
            )
        };
        let features = [
            cell(100.0, 100.0, 20.0, "Tumor", [200, 0, 0], 0.0),
            cell(300.0, 100.0, 20.0, "Stroma", [0, 200, 0], 1.0),
            cell(300.0, 300.0, 20.0, "Tumor", [200, 0, 0], 0.5),
        ];
        let text = format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(","));
        std::fs::write(&path, text).expect("write");
        let (layer, report) = DetectionLayer::load(&path, |_, _| {}, &AtomicBool::new(false)).expect("load");
        assert_eq!(report.objects, 3);
        (dir, layer)
    }

    fn at(image: &ColorImage, x: usize, y: usize) -> [u8; 4] {
        image.pixels[y * image.size[0] + x].to_array()
    }

    #[test]
    fn cells_are_filled_and_outlined_in_their_class_colour_where_they_are() {
        let (_dir, layer) = layer();
        let style = DetectionStyle::new(layer.classes().len());
        // 400 × 400 level-0 px onto 200 × 200 image px.
        let image =
            rasterize(&layer, &style, [0.0, 0.0, 400.0, 400.0], [200, 200], &AtomicBool::new(false)).expect("drawn");
        // The first cell's centre (50, 50): a red fill at the fill opacity, premultiplied.
        let fill = at(&image, 50, 50);
        let a = (255.0 * 0.8 * FILL_SHARE).round() as u8;
        assert_eq!(fill[3], a);
        assert!(fill[0] > 60 && fill[1] == 0 && fill[2] == 0, "{fill:?}");
        // The second cell is green.
        let green = at(&image, 150, 50);
        assert!(green[1] > 60 && green[0] == 0, "{green:?}");
        // Its outline (radius 20 → 10 image px right of the centre) is drawn at the full opacity.
        assert!((148..=162).any(|x| at(&image, x, 50)[3] >= 200), "an outline pixel on the right edge");
        // Outside every cell: nothing.
        assert_eq!(at(&image, 100, 100), [0, 0, 0, 0]);
        assert_eq!(at(&image, 150, 20), [0, 0, 0, 0]);
    }

    #[test]
    fn hidden_classes_are_left_out_and_measurements_colour_through_the_map() {
        let (_dir, layer) = layer();
        let mut style = DetectionStyle::new(layer.classes().len());
        let tumor = layer.classes().iter().position(|c| c.name == "Tumor").expect("Tumor") as u16;
        style.class_visible[usize::from(tumor)] = false;
        let cancel = AtomicBool::new(false);
        let image = rasterize(&layer, &style, [0.0, 0.0, 400.0, 400.0], [200, 200], &cancel).expect("drawn");
        assert_eq!(at(&image, 50, 50), [0; 4], "the Tumor cell is hidden");
        assert!(at(&image, 150, 50)[3] > 0, "the Stroma cell is not");

        let column = layer.measurement_column("DAB: Mean").expect("column");
        let map = crate::annotations::detections::ColorMap::Viridis;
        let style = DetectionStyle {
            color_by: ColorBy::Measurement { column, lo: 0.0, hi: 1.0, map },
            opacity: 1.0,
            fill: true,
            ..DetectionStyle::new(layer.classes().len())
        };
        let image = rasterize(&layer, &style, [0.0, 0.0, 400.0, 400.0], [200, 200], &cancel).expect("drawn");
        // Filled at 45 % over transparent: the colour premultiplied by 0.45.
        let expect = |rgb: [u8; 3]| premultiplied(rgb, FILL_SHARE);
        assert_eq!(at(&image, 50, 50), expect(map.color_at(0.0)), "value 0: the map's start");
        assert_eq!(at(&image, 150, 50), expect(map.color_at(1.0)), "value 1: the map's end");
        assert_eq!(at(&image, 150, 150), expect(map.color_at(0.5)), "value 0.5: the middle");
    }

    #[test]
    fn the_planned_image_keeps_to_the_caps_and_a_view_it_was_planned_for_is_served() {
        // A 4K view turned 10°: its bounds with the margin are far over the pixel cap.
        let (w, h, turn) = (3540.0f64, 2100.0f64, 10f64.to_radians());
        let (cw, ch) = (w * turn.cos() + h * turn.sin(), w * turn.sin() + h * turn.cos());
        let bounds = [1000.0, 1000.0, 1000.0 + cw, 1000.0 + ch];
        let p = plan(bounds, 1.0, 16384).expect("a plan");
        assert!((p.size[0] * p.size[1]) as f64 <= MAX_PIXELS);
        assert!(p.scale < 1.0);
        assert!(!outgrown(p.area, p.scale, bounds, &p), "the image drawn for a view serves it");
        // A wide, short view: each side within the texture limit.
        let p = plan([0.0, 0.0, 9000.0, 600.0], 1.0, 8192).expect("a plan");
        assert!(p.size[0] <= 8192 && p.size[1] <= 8192, "{:?}", p.size);
        assert!(!outgrown(p.area, p.scale, [0.0, 0.0, 9000.0, 600.0], &p));
        // Zoomed in twice as far, or panned out of the area: a new image is wanted.
        let p = plan([0.0, 0.0, 1600.0, 1000.0], 1.0, 8192).expect("a plan");
        assert_eq!(p.size, [2400, 1500]);
        let zoomed = plan([400.0, 250.0, 1200.0, 750.0], 2.0, 8192).expect("a plan");
        assert!(outgrown(p.area, p.scale, [400.0, 250.0, 1200.0, 750.0], &zoomed));
        let panned = [900.0, 0.0, 2500.0, 1000.0];
        assert!(outgrown(p.area, p.scale, panned, &plan(panned, 1.0, 8192).expect("a plan")));
        assert!(plan([0.0, 0.0, 0.0, 10.0], 1.0, 8192).is_none(), "an empty view");
    }

    #[test]
    fn an_edge_far_outside_the_image_costs_only_what_it_crosses() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("far.geojson");
        // A sliver from the image's middle to 10⁸ px away, and back.
        let text = r#"{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[50,50],[100000000,50],[100000000,60],[50,60],[50,50]]]},"properties":{"objectType":"detection"}}"#;
        std::fs::write(&path, text).expect("write");
        let (layer, _) = DetectionLayer::load(&path, |_, _| {}, &AtomicBool::new(false)).expect("load");
        // Outlines only: the fill would cover a gap in the stroke.
        let style = DetectionStyle { fill: false, ..DetectionStyle::new(layer.classes().len()) };
        let start = Instant::now();
        let image =
            rasterize(&layer, &style, [0.0, 0.0, 100.0, 100.0], [400, 400], &AtomicBool::new(false)).expect("drawn");
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        // Its top edge (y = 50 → row 200) runs from x = 200 to the image's right side, unbroken.
        assert!((200..400).all(|x| at(&image, x, 200)[3] > 0), "the edge is drawn without gaps");
        assert_eq!(at(&image, 100, 200), [0; 4], "nothing left of its start");
    }

    #[test]
    fn segments_are_clipped_to_the_rectangle() {
        let r = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(clip_segment([-5.0, 5.0], [15.0, 5.0], r), Some(([0.0, 5.0], [10.0, 5.0])));
        assert_eq!(clip_segment([2.0, 2.0], [3.0, 3.0], r), Some(([2.0, 2.0], [3.0, 3.0])));
        assert_eq!(clip_segment([-5.0, -5.0], [-1.0, 20.0], r), None);
        assert_eq!(clip_segment([20.0, 5.0], [20.0, 6.0], r), None);
    }

    #[test]
    fn a_view_holds_a_box_only_when_every_corner_is_inside_turned_or_not() {
        let square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert!(contains_box(&square, [1.0, 1.0, 9.0, 9.0]));
        assert!(contains_box(&square, [0.0, 0.0, 10.0, 10.0]), "edges included");
        assert!(!contains_box(&square, [1.0, 1.0, 11.0, 9.0]));
        let reversed = [square[3], square[2], square[1], square[0]];
        assert!(contains_box(&reversed, [1.0, 1.0, 9.0, 9.0]));
        // A diamond (the square turned 45°) of half-diagonal 10 about (10, 10).
        let diamond = [[10.0, 0.0], [20.0, 10.0], [10.0, 20.0], [0.0, 10.0]];
        assert!(contains_box(&diamond, [6.0, 6.0, 14.0, 14.0]));
        assert!(!contains_box(&diamond, [2.0, 2.0, 18.0, 18.0]), "its corners stick out");
        assert!(!contains_box(&[[5.0, 5.0]; 4], [5.0, 5.0, 5.0, 5.0]), "a collapsed view holds nothing");
    }

    #[test]
    fn objects_smaller_than_two_pixels_are_one_pixel_and_a_cancel_stops_the_drawing() {
        let (_dir, layer) = layer();
        let style = DetectionStyle::new(layer.classes().len());
        // 400 level-0 px onto 8 image px: 50 px per image pixel, cells of 40 px are dots.
        let image =
            rasterize(&layer, &style, [0.0, 0.0, 400.0, 400.0], [8, 8], &AtomicBool::new(false)).expect("drawn");
        let drawn: Vec<(usize, usize)> =
            (0..8).flat_map(|y| (0..8).map(move |x| (x, y))).filter(|&(x, y)| at(&image, x, y)[3] > 0).collect();
        assert_eq!(drawn, vec![(2, 2), (6, 2), (6, 6)]);
        assert!(rasterize(&layer, &style, [0.0, 0.0, 400.0, 400.0], [8, 8], &AtomicBool::new(true)).is_none());
        assert!(rasterize(&layer, &style, [0.0, 0.0, 0.0, 400.0], [8, 8], &AtomicBool::new(false)).is_none());
    }
}
