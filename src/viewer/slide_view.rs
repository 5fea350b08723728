//! One slide on screen: camera, input, tile requests and drawing. The view never touches the file:
//! it states which tiles it wants (the scheduler loads them on rayon's pool), uploads what has
//! arrived, and draws the best tiles it has — coarser ones scaled up under the ones still loading.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Color32, ColorImage, Pos2, Rect, RichText, Sense, Stroke, TextureHandle, TextureOptions, Vec2};

use super::annotate::{AnnotationLayer, Projection, Tool};
use super::camera::{level_for_zoom, scale_bar, tiles_in, Adjustments, Camera, ViewRect, MAX_PHYSICAL_ZOOM};
use super::tile_painter::{GlTexture, PixelOrder, TilePainter, TileQuad, TileScene, TileTextureRef};
use crate::slide::Slide;
use crate::tiles::{TileId, TileRequest, TileScheduler};

/// A slide opened off the UI thread, with its overview image already decoded.
pub struct OpenedSlide {
    pub slide: Arc<Slide>,
    pub overview: Option<ColorImage>,
    /// The slide's saved annotations and where to autosave them.
    pub annotations: crate::annotations::store::Loaded,
    /// The slide's canonical (absolute) path, for Open recent; a remote slide's
    /// [`redact`](crate::remote::redact)ed URL.
    pub canonical: std::path::PathBuf,
    /// A remote slide's whole URL as given (a presigned query included). Kept in memory for
    /// reading and hashing only; never shown, logged or saved.
    url: Option<String>,
}

/// Stages of [`OpenedSlide::load_with_progress`], published as `done` of [`OPEN_STAGES`].
pub const OPEN_STAGES: u64 = 3;

/// What an opening slide is doing, for a fraction of [`OPEN_STAGES`] published by
/// [`OpenedSlide::load_with_progress`].
pub fn open_stage_text(fraction: f32) -> &'static str {
    match (fraction * OPEN_STAGES as f32).round() as u64 {
        0 => "reading the slide's layout",
        1 => "reading the coarsest level",
        _ => "reading annotations",
    }
}

impl OpenedSlide {
    /// Open a slide and decode its overview. Call from a worker thread: this reads the file.
    /// A path that is an `http(s)://` or `s3://` URL opens the remote slide.
    pub fn load(path: &std::path::Path, cache: Arc<crate::tiles::TileCache>) -> crate::Result<Self> {
        Self::load_with_progress(path, cache, |_| {})
    }

    /// [`Self::load`], telling `stage` (0 to [`OPEN_STAGES`]) as it goes: a remote slide opens
    /// slowly, and the window says what it waits for.
    pub fn load_with_progress(
        path: &std::path::Path,
        cache: Arc<crate::tiles::TileCache>,
        stage: impl Fn(u64),
    ) -> crate::Result<Self> {
        stage(0);
        let remote = path.to_str().filter(|s| crate::remote::is_url(s));
        let slide = match remote {
            Some(url) => {
                let limits = crate::Limits::DEFAULT;
                let source = crate::slide::open_location(url, &limits)?;
                Arc::new(Slide::from_source(source, cache).with_limits(limits))
            }
            None => Arc::new(Slide::open_with_cache(path, cache)?),
        };
        stage(1);
        let overview = overview_of(&slide);
        stage(2);
        // A remote slide's annotations are found by its redacted URL (the app data folder).
        let shown = slide.path().to_path_buf();
        let (annotations, canonical) = match remote {
            Some(_) => (crate::annotations::store::load_for_slide(&shown), shown),
            None => (
                crate::annotations::store::load_for_slide(path),
                std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            ),
        };
        stage(OPEN_STAGES);
        let url = remote.map(str::to_string);
        Ok(OpenedSlide { slide, overview, annotations, canonical, url })
    }
}

/// The overview image, drawn from the coarsest level; a slide too large for that still opens.
fn overview_of(slide: &Slide) -> Option<ColorImage> {
    slide
        .thumbnail(256)
        .ok()
        .map(|img| ColorImage::from_rgba_unmultiplied([img.width() as usize, img.height() as usize], img.as_raw()))
}

/// A tile's texture: egui's, or the OpenGL tile painter's own.
enum TileTextureHandle {
    Egui(TextureHandle),
    Gl(GlTexture),
}

impl TileTextureHandle {
    fn reference(&self) -> TileTextureRef {
        match self {
            TileTextureHandle::Egui(handle) => TileTextureRef::Egui(handle.id()),
            TileTextureHandle::Gl(texture) => texture.reference(),
        }
    }
}

struct TileTexture {
    handle: TileTextureHandle,
    last_used: u64,
    bytes: usize,
    /// The display adjustments' generation its pixels were made with.
    generation: u64,
}

/// What the tile loader applies: the adjustments' generation and lookup table.
#[derive(Clone, Copy)]
struct Look {
    generation: u64,
    lut: Option<[u8; 256]>,
}

/// A tile's pixels ready for upload: an egui image, or bytes in the OpenGL tile painter's order.
enum TilePixels {
    Egui(ColorImage),
    Gl { size: [usize; 2], pixels: Vec<u8> },
}

/// A tile ready for upload, with the generation of the adjustments applied to it.
type LoadedTile = (TilePixels, u64);

/// `rgba` (straight alpha, 4 bytes a pixel) through `lut` (colour channels) when given, with alpha
/// premultiplied as egui does, in `order`.
fn tile_bytes(rgba: &[u8], lut: Option<&[u8; 256]>, order: PixelOrder) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgba.len());
    for p in rgba.chunks_exact(4) {
        let [r, g, b] = match lut {
            Some(lut) => [lut[p[0] as usize], lut[p[1] as usize], lut[p[2] as usize]],
            None => [p[0], p[1], p[2]],
        };
        let c = if p[3] == 255 { [r, g, b, 255] } else { Color32::from_rgba_unmultiplied(r, g, b, p[3]).to_array() };
        match order {
            PixelOrder::Bgra => out.extend_from_slice(&[c[2], c[1], c[0], c[3]]),
            PixelOrder::Rgba => out.extend_from_slice(&c),
        }
    }
    out
}

/// A zoom in progress: ease towards `zoom`, keeping the level-0 point under `anchor` still.
#[derive(Clone, Copy, Debug)]
struct ZoomAnimation {
    anchor: [f64; 2],
    zoom: f64,
}

/// What the last frame drew and asked for (status bar, tests, the snapshot mode).
#[derive(Clone, Debug, Default)]
pub struct FrameStats {
    /// The level matching the zoom.
    pub level: usize,
    /// Visible tiles of that level.
    pub visible: usize,
    /// Of those, drawn from their own texture.
    pub exact: usize,
    /// Of those, failed to load or decode (drawn hatched, with the reason on hover).
    pub failed: usize,
    /// Of those, drawn from a coarser level while their own tile loads.
    pub coarse: usize,
    /// Tiles asked of the scheduler this frame, most urgent first.
    pub wanted: Vec<TileId>,
}

pub struct SlideView {
    pub slide: Arc<Slide>,
    pub camera: Camera,
    /// The counting grid: lines this many µm apart over the slide (the side panel's setting).
    pub counting_grid_um: Option<f64>,
    animation: Option<ZoomAnimation>,
    fitted: bool,
    /// Until the user moves the view, keep the whole slide fitted as the window or panels resize.
    auto_fit: bool,
    scheduler: TileScheduler<LoadedTile, crate::SlideError>,
    look: Arc<std::sync::RwLock<Look>>,
    adjustments: Adjustments,
    textures: HashMap<TileId, TileTexture>,
    /// Tiles whose load failed, with the reason; forgotten when they leave the view (and so
    /// asked for again when they come back), retried in view after [`FAILED_RETRY_AFTER`].
    failed: HashMap<TileId, String>,
    /// When each tile in `failed` last failed.
    failed_at: HashMap<TileId, Instant>,
    /// The failed tile under the pointer last frame, for its tooltip.
    hovered_failure: Option<TileId>,
    /// A remote slide's whole URL (see [`OpenedSlide`]): for hashing; never shown.
    url: Option<String>,
    texture_budget_bytes: usize,
    frame: u64,
    overview_image: Option<ColorImage>,
    overview: Option<TextureHandle>,
    view: ViewRect,
    pixels_per_point: f64,
    /// The level-0 point under the pointer, if it is over the slide.
    pub cursor_level0: Option<[f64; 2]>,
    pub stats: FrameStats,
    /// Tiles uploaded as textures since the view opened.
    pub tiles_loaded: u64,
    minimap_rect: Option<Rect>,
    /// Arrived tiles not yet uploaded: uploads are spread over frames to keep each frame short.
    arrived: VecDeque<crate::tiles::TileResult<LoadedTile, crate::SlideError>>,
    /// The tiles in `arrived`, so they are not asked for again while they wait.
    arrived_ids: std::collections::HashSet<TileId>,
    pub annotations: AnnotationLayer,
    /// Cells and detections read from a file (QuPath GeoJSON), drawn under the annotations.
    pub detections: Option<super::detection_overlay::DetectionOverlay>,
    /// The slide has the keyboard: its shortcuts act. Taken by a press in a form (the app,
    /// [`Self::release_keyboard`]), given back by a press on the slide.
    keyboard: bool,
    /// A dialog is open this frame: no key reaches the slide ([`Self::block_keys`]).
    keys_blocked: bool,
    /// Draws the tiles (through OpenGL when eframe uses it).
    tile_painter: TilePainter,
}

/// The annotation layer for a slide, with its loaded annotations and autosave.
fn annotation_layer(slide: &Slide, loaded: crate::annotations::store::Loaded) -> AnnotationLayer {
    let p = slide.properties();
    let pixel_size = match (p.mpp_x, p.mpp_y) {
        (Some(x), Some(y)) => Some(crate::annotations::PixelSize { x, y }),
        (Some(x), None) => Some(crate::annotations::PixelSize { x, y: x }),
        _ => None,
    };
    let doc = crate::annotations::Document::from_annotations(loaded.import.annotations);
    let mut layer = AnnotationLayer::new(doc, pixel_size);
    let l0 = &slide.levels()[0];
    layer.slide_size = [l0.width as f64, l0.height as f64];
    layer.load_warning = loaded.warning;
    if !loaded.save_path.as_os_str().is_empty() {
        layer.autosaver = Some(crate::annotations::store::Autosaver::new(loaded.save_path, 0));
    }
    layer
}

/// Share of the view a shape fills when the measurement table goes to it.
pub const FOCUS_FILL: f64 = 0.8;
/// Smallest extent shown around a point or tiny shape, in µm (or pixels without a pixel size).
pub const FOCUS_MIN_UM: f64 = 50.0;
pub const FOCUS_MIN_PX: f64 = 200.0;

/// Texture bytes uploaded per frame (at least one tile); the rest wait for the next frame
/// (requested at once). 128 tiles of 256²: a 4K view's tiles in one or two frames (issue 17).
const UPLOAD_BYTES_PER_FRAME: usize = 32 << 20;

/// Textures kept on the GPU per open slide (about 380 tiles of 256²: the view, its prefetch ring
/// and fallbacks several times over). With a software renderer they live in main memory.
pub const DEFAULT_TEXTURE_BUDGET: usize = 96 << 20;

/// A tile that failed is asked for again after this long even if it never left the view: a
/// network that dropped out comes back without the user having to move.
pub const FAILED_RETRY_AFTER: Duration = Duration::from_secs(10);

impl SlideView {
    pub fn new(opened: OpenedSlide, ctx: &egui::Context) -> Self {
        let slide = opened.slide;
        let annotations = annotation_layer(&slide, opened.annotations);
        let loader_slide = slide.clone();
        let repaint = ctx.clone();
        let look = Arc::new(std::sync::RwLock::new(Look { generation: 0, lut: None }));
        let loader_look = look.clone();
        let tile_painter = TilePainter::new(ctx);
        // Under OpenGL in the painter's order; egui's images are premultiplied RGBA.
        let gl_order = tile_painter.pixel_order();
        let scheduler = TileScheduler::new(
            move |id: TileId| {
                let tile = loader_slide.read_tile(id.level as usize, id.col, id.row)?;
                let look = *loader_look.read().unwrap_or_else(|p| p.into_inner());
                let size = [tile.width as usize, tile.height as usize];
                // Adjustments apply to a copy on its way to the GPU; the decoded tile stays as is.
                let pixels = tile_bytes(&tile.rgba, look.lut.as_ref(), gl_order.unwrap_or(PixelOrder::Rgba));
                let pixels = match gl_order {
                    Some(_) => TilePixels::Gl { size, pixels },
                    None => TilePixels::Egui(ColorImage::from_rgba_premultiplied(size, &pixels)),
                };
                Ok((pixels, look.generation))
            },
            move || repaint.request_repaint(),
            rayon::current_num_threads().max(2),
        );
        SlideView {
            keyboard: true,
            keys_blocked: false,
            slide,
            camera: Camera { center: [0.0, 0.0], zoom: 1.0, rotation: 0.0 },
            counting_grid_um: None,
            animation: None,
            fitted: false,
            auto_fit: true,
            scheduler,
            look,
            adjustments: Adjustments::default(),
            textures: HashMap::new(),
            failed: HashMap::new(),
            failed_at: HashMap::new(),
            hovered_failure: None,
            url: opened.url,
            texture_budget_bytes: DEFAULT_TEXTURE_BUDGET,
            frame: 0,
            overview_image: opened.overview,
            overview: None,
            view: ViewRect { x: 0.0, y: 0.0, width: 1.0, height: 1.0 },
            pixels_per_point: 1.0,
            cursor_level0: None,
            stats: FrameStats::default(),
            tiles_loaded: 0,
            minimap_rect: None,
            arrived: VecDeque::new(),
            arrived_ids: std::collections::HashSet::new(),
            annotations,
            detections: None,
            tile_painter,
        }
    }

    /// Screen ↔ level-0 for the current frame.
    pub fn projection(&self) -> Projection {
        Projection { camera: self.camera, view: self.view }
    }

    fn slide_size(&self) -> (f64, f64) {
        let l0 = &self.slide.levels()[0];
        (l0.width as f64, l0.height as f64)
    }

    pub fn fit_zoom(&self) -> f64 {
        let (w, h) = self.slide_size();
        Camera::fit_turned(w, h, &self.view, self.camera.rotation).zoom
    }

    fn zoom_limits(&self) -> (f64, f64) {
        let fit = self.fit_zoom();
        (fit * 0.5, (MAX_PHYSICAL_ZOOM / self.pixels_per_point).max(fit))
    }

    /// Nominal objective magnification of the scan: the objective power, else 10 µm / mpp (the
    /// usual 0.25 µm ↔ 40× convention).
    pub fn scan_magnification(&self) -> Option<f64> {
        let p = self.slide.properties();
        p.objective_power.or(p.mpp_x.map(|mpp| 10.0 / mpp))
    }

    /// Magnification on screen (1 screen pixel per scanned pixel = the scan's magnification).
    pub fn magnification(&self) -> Option<f64> {
        self.scan_magnification().map(|m| m * self.camera.zoom * self.pixels_per_point)
    }

    /// Zoom that shows the slide at `magnification`×, if the scan's magnification is known.
    pub fn zoom_for_magnification(&self, magnification: f64) -> Option<f64> {
        self.scan_magnification().map(|m| magnification / m / self.pixels_per_point)
    }

    /// Animate to `zoom` about the view's centre (keys, presets) or about a screen point.
    pub fn zoom_to(&mut self, zoom: f64, anchor: Option<[f64; 2]>) {
        let (lo, hi) = self.zoom_limits();
        let anchor = anchor.unwrap_or(self.view.center());
        self.auto_fit = false;
        self.animation = Some(ZoomAnimation { anchor, zoom: zoom.clamp(lo, hi) });
    }

    pub fn zoom_by(&mut self, factor: f64, anchor: Option<[f64; 2]>) {
        let base = self.animation.map_or(self.camera.zoom, |a| a.zoom);
        self.zoom_to(base * factor, anchor);
    }

    /// Whole slide in view.
    pub fn fit(&mut self) {
        let (w, h) = self.slide_size();
        let fit = Camera::fit_turned(w, h, &self.view, self.camera.rotation);
        self.camera.center = fit.center;
        self.zoom_to(fit.zoom, None);
    }

    /// Turn the view to `angle` radians (clockwise) about its centre; the same level-0 point
    /// stays in the middle. A fitted view stays fitted (refitted for the turned slide).
    pub fn set_rotation(&mut self, angle: f64) {
        let view = self.view;
        self.camera.rotate_about(view.center(), angle, &view);
    }

    /// Turn the view by `angle` radians (clockwise) about its centre.
    pub fn rotate_by(&mut self, angle: f64) {
        self.set_rotation(self.camera.rotation + angle);
    }

    /// The view's rotation in whole degrees clockwise, in (−180, 180].
    pub fn rotation_degrees(&self) -> f64 {
        self.camera.rotation.to_degrees()
    }

    /// Jump to a level-0 centre and zoom at once (scripted views, minimap).
    pub fn look_at(&mut self, center: [f64; 2], zoom: Option<f64>) {
        self.fitted = true;
        self.auto_fit = false;
        self.animation = None;
        self.camera.center = center;
        if let Some(z) = zoom {
            self.camera.zoom = z;
        }
    }

    /// Select annotation `id` and move the view to it (when it exists).
    pub fn focus_annotation(&mut self, id: crate::annotations::AnnotationId) {
        let Some(b) = self.annotations.doc.get(id).map(|a| a.geometry.bounds()) else { return };
        self.annotations.selected = Some(id);
        self.show_bounds(b);
    }

    /// A press elsewhere (a form) took the keyboard: the slide's shortcuts rest until the slide
    /// is pressed again.
    pub fn release_keyboard(&mut self) {
        self.keyboard = false;
    }

    /// Whether a dialog over the window blocks the slide's keys this frame.
    pub fn block_keys(&mut self, blocked: bool) {
        self.keys_blocked = blocked;
    }

    /// Centre the level-0 box `b` ([x0, y0, x1, y1]) and zoom so it fills most of the view
    /// ([`FOCUS_FILL`]), within the zoom limits. Points and tiny shapes are shown with at least
    /// [`FOCUS_MIN_UM`] µm around them ([`FOCUS_MIN_PX`] pixels when the pixel size is unknown).
    pub fn show_bounds(&mut self, b: [f64; 4]) {
        let min_extent = self.slide.properties().mpp_x.map_or(FOCUS_MIN_PX, |mpp| FOCUS_MIN_UM / mpp);
        let (w, h) = ((b[2] - b[0]).max(min_extent), (b[3] - b[1]).max(min_extent));
        // The box as the turned view shows it.
        let (sin, cos) = self.camera.rotation.sin_cos();
        let (w, h) = (w * cos.abs() + h * sin.abs(), w * sin.abs() + h * cos.abs());
        let zoom = (self.view.width * FOCUS_FILL / w).min(self.view.height * FOCUS_FILL / h);
        let (lo, hi) = self.zoom_limits();
        self.look_at([(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0], Some(zoom.clamp(lo, hi)));
    }

    pub fn is_animating(&self) -> bool {
        self.animation.is_some()
    }

    /// Every visible tile of the level matching the zoom is drawn from its own texture (or is
    /// known to be corrupt), and no zoom is under way: what a screenshot should wait for.
    pub fn is_complete(&self) -> bool {
        self.fitted
            && self.animation.is_none()
            && self.stats.visible > 0
            && self.stats.exact + self.stats.failed == self.stats.visible
    }

    pub fn adjustments(&self) -> Adjustments {
        self.adjustments
    }

    /// Change brightness, contrast and gamma. Visible tiles are remade from the decoded-tile cache
    /// (no decoding) and replace the old ones as they arrive; until then the old ones stay drawn.
    pub fn set_adjustments(&mut self, adjustments: Adjustments) {
        if adjustments == self.adjustments {
            return;
        }
        self.adjustments = adjustments;
        let mut look = self.look.write().unwrap_or_else(|p| p.into_inner());
        look.generation += 1;
        look.lut = (!adjustments.is_identity()).then(|| adjustments.lut());
    }

    fn generation(&self) -> u64 {
        self.look.read().unwrap_or_else(|p| p.into_inner()).generation
    }

    /// Where the slide was drawn last frame (screen points).
    pub fn view_rect(&self) -> ViewRect {
        self.view
    }

    /// Where the overview was drawn last frame, if it fit.
    pub fn minimap_rect(&self) -> Option<Rect> {
        self.minimap_rect
    }

    /// Tiles that failed to load or decode and are drawn as gaps, with the reason.
    pub fn failed_tiles(&self) -> &HashMap<TileId, String> {
        &self.failed
    }

    /// Where the slide is read from, for a worker that reads it whole (hashing): a remote
    /// slide's full URL (credentials and query included: pass it only to the engine), else
    /// its path.
    pub fn location(&self) -> std::borrow::Cow<'_, str> {
        match &self.url {
            Some(url) => std::borrow::Cow::Borrowed(url.as_str()),
            None => self.slide.path().to_string_lossy(),
        }
    }

    /// Whether the slide is read over the network.
    pub fn is_remote(&self) -> bool {
        self.url.is_some()
    }

    /// Whether the view still fits the whole slide to its rectangle (the user has not moved it).
    pub fn is_auto_fit(&self) -> bool {
        self.auto_fit
    }

    /// Read a detection layer (QuPath GeoJSON cells, detections, tiles) from `path` on a worker,
    /// in place of the one shown.
    pub fn load_detections(&mut self, path: &std::path::Path, ctx: &egui::Context) {
        self.detections = Some(super::detection_overlay::DetectionOverlay::load(path, ctx));
    }

    /// Whether tiles are drawn by the OpenGL paint callback (else as egui images).
    pub fn draws_tiles_with_gl(&self) -> bool {
        self.tile_painter.uses_gl()
    }

    pub fn scheduler_stats(&self) -> crate::tiles::scheduler::SchedulerStats {
        self.scheduler.stats()
    }

    /// Draw the slide into all of `ui`'s available space and handle its input.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> egui::Response {
        self.frame += 1;
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        self.pixels_per_point = f64::from(ui.ctx().pixels_per_point());
        self.view = ViewRect {
            x: f64::from(rect.min.x),
            y: f64::from(rect.min.y),
            width: f64::from(rect.width()),
            height: f64::from(rect.height()),
        };
        if !self.fitted || self.auto_fit {
            let (w, h) = self.slide_size();
            self.camera = Camera::fit_turned(w, h, &self.view, self.camera.rotation);
            self.fitted = true;
        }
        let projection = self.projection();
        let took_drag = self.annotations.handle_pointer(ui, &response, &projection);
        // Pressing on the slide gives it the keyboard, arrows included (egui would otherwise move
        // the focus with them).
        // A press and release within one frame (a quick tap, a scripted click) is a press too.
        let pressed = response.is_pointer_button_down_on()
            || response.clicked()
            || response.secondary_clicked()
            || response.middle_clicked()
            || response.drag_started();
        if pressed {
            response.request_focus();
        }
        if response.has_focus() {
            let arrows = egui::EventFilter { horizontal_arrows: true, vertical_arrows: true, ..Default::default() };
            ui.memory_mut(|m| m.set_focus_lock_filter(response.id, arrows));
        }
        // Letters and shortcuts act unless text is being typed. Arrows, Enter and Escape also drive
        // whatever widget has the focus (a slider, a button), so they act only when the slide has
        // it or nothing has.
        // A press on the slide gives it the keyboard back (the app takes it away on a press in a
        // form); a dialog over the window blocks the slide's keys for the frame.
        if pressed {
            self.keyboard = true;
        }
        let typing = ui.ctx().text_edit_focused() || !self.keyboard || self.keys_blocked;
        let navigation = !typing && (response.has_focus() || ui.memory(|m| m.focused().is_none()));
        if !typing {
            self.annotations.handle_keys(ui, &projection, navigation);
        }
        self.handle_input(ui, &response, took_drag, navigation);
        self.step_animation(ui);
        let (w, h) = self.slide_size();
        let (lo, hi) = self.zoom_limits();
        self.camera.zoom = self.camera.zoom.clamp(lo, hi);
        self.camera.clamp_center(w, h);

        self.receive_tiles(ui.ctx());
        self.request_tiles();
        let painter = ui.painter_at(rect);
        self.draw_tiles(&painter, response.hover_pos());
        self.evict_textures();
        let projection = self.projection();
        self.draw_counting_grid(&painter);
        if let Some(detections) = &mut self.detections {
            detections.paint(&painter, &projection, self.pixels_per_point, self.annotations.selected_area_outline());
        }
        self.annotations.paint(&painter, &projection, response.hover_pos());
        self.annotations.autosave();
        self.draw_scale_bar(&painter, rect);
        self.minimap(ui, rect);
        self.rotation_badge(ui, rect);
        self.cursor_level0 =
            response.hover_pos().map(|p| self.camera.screen_to_level0([f64::from(p.x), f64::from(p.y)], &self.view));
        match self.hovered_failure.and_then(|id| self.failed.get(&id)) {
            Some(reason) => {
                let text =
                    format!("This tile did not load: {reason}\nIt is asked for again when it comes back into view.");
                response.on_hover_text(text)
            }
            None => response,
        }
    }

    fn handle_input(&mut self, ui: &egui::Ui, response: &egui::Response, annotation_took_drag: bool, navigation: bool) {
        if response.dragged() && !annotation_took_drag {
            self.auto_fit = false;
            let d = response.drag_delta();
            self.camera.pan_by_screen([f64::from(d.x), f64::from(d.y)]);
        }
        let pointer = response.hover_pos().map(|p| [f64::from(p.x), f64::from(p.y)]);
        if response.double_clicked() && self.annotations.tool == Tool::Select {
            self.zoom_by(2.0, pointer);
        }
        if response.hovered() {
            let (wheel, pinch) = ui.input(|i| {
                let mut lines = 0.0f64;
                for e in &i.events {
                    if let egui::Event::MouseWheel { unit, delta, modifiers, .. } = e {
                        if modifiers.ctrl || modifiers.command {
                            continue; // egui turns these into zoom_delta
                        }
                        lines += f64::from(delta.y)
                            * match unit {
                                egui::MouseWheelUnit::Point => 1.0 / 40.0,
                                egui::MouseWheelUnit::Line => 1.0,
                                egui::MouseWheelUnit::Page => 10.0,
                            };
                    }
                }
                (lines, f64::from(i.zoom_delta()))
            });
            if wheel != 0.0 {
                self.zoom_by(1.25f64.powf(wheel), pointer);
            }
            if (pinch - 1.0).abs() > 1e-6 {
                self.zoom_by(pinch, pointer);
            }
        }
        // Keys act when no text field has the keyboard, the slide has it and no dialog is open.
        if ui.ctx().text_edit_focused() || !self.keyboard || self.keys_blocked {
            return;
        }
        let step = [self.view.width / 8.0, self.view.height / 8.0];
        // One table for the keys and the help (src/viewer/help.rs); modifiers are ignored here.
        let mut done = Vec::new();
        for s in super::help::SHORTCUTS.iter().filter(|s| s.action.is_view()) {
            // Two keys for one action (+ and =) act once.
            if done.contains(&s.action) || !ui.input(|i| i.key_pressed(s.key)) {
                continue;
            }
            done.push(s.action);
            use super::help::Action;
            match s.action {
                Action::PanLeft | Action::PanRight | Action::PanUp | Action::PanDown if !navigation => {}
                Action::PanLeft => self.pan_key([step[0], 0.0]),
                Action::PanRight => self.pan_key([-step[0], 0.0]),
                Action::PanUp => self.pan_key([0.0, step[1]]),
                Action::PanDown => self.pan_key([0.0, -step[1]]),
                Action::ZoomIn => self.zoom_by(1.5, None),
                Action::ZoomOut => self.zoom_by(1.0 / 1.5, None),
                Action::Fit => self.fit(),
                Action::Rotate(degrees) => self.rotate_by(f64::from(degrees).to_radians()),
                Action::ResetRotation => self.set_rotation(0.0),
                Action::Magnification(i) => {
                    let zoom = super::magnification::PRESETS.get(i).and_then(|&m| self.zoom_for_magnification(m));
                    if let Some(z) = zoom {
                        self.zoom_to(z, None);
                    }
                }
                _ => {}
            }
        }
    }

    fn pan_key(&mut self, by: [f64; 2]) {
        self.auto_fit = false;
        self.camera.pan_by_screen(by);
    }

    fn step_animation(&mut self, ui: &egui::Ui) {
        let Some(anim) = self.animation else { return };
        let dt = f64::from(ui.input(|i| i.stable_dt)).clamp(0.001, 0.1);
        let (from, to) = (self.camera.zoom.ln(), anim.zoom.ln());
        let next = if (to - from).abs() < 0.01 {
            self.animation = None;
            anim.zoom
        } else {
            ui.ctx().request_repaint();
            (from + (to - from) * (1.0 - (-dt * 14.0).exp())).exp()
        };
        let view = self.view;
        self.camera.zoom_about(anim.anchor, next, &view);
    }

    fn receive_tiles(&mut self, ctx: &egui::Context) {
        for result in self.scheduler.take_results() {
            self.arrived_ids.insert(result.id);
            self.arrived.push_back(result);
        }
        let mut uploaded = 0;
        while uploaded < UPLOAD_BYTES_PER_FRAME {
            let Some(result) = self.arrived.pop_front() else { break };
            self.arrived_ids.remove(&result.id);
            match result.outcome {
                Ok((pixels, generation)) => {
                    if self.textures.get(&result.id).is_some_and(|t| t.generation > generation) {
                        continue; // made with older adjustments than the texture already here
                    }
                    // Past 1:1 only level 0 is ever magnified: show its pixels crisp.
                    let nearest = result.id.level == 0;
                    let (handle, bytes) = match pixels {
                        TilePixels::Egui(image) => {
                            let options = if nearest { TextureOptions::NEAREST } else { TextureOptions::LINEAR };
                            let bytes = image.pixels.len() * 4;
                            let name = format!("tile {} {} {}", result.id.level, result.id.col, result.id.row);
                            (TileTextureHandle::Egui(ctx.load_texture(name, image, options)), bytes)
                        }
                        TilePixels::Gl { size, pixels } => {
                            let bytes = pixels.len();
                            let Some(texture) = self.tile_painter.upload(size, pixels, nearest) else {
                                let reason = "the tile's pixels do not fill its size".to_string();
                                self.failed.insert(result.id, reason);
                                self.failed_at.insert(result.id, Instant::now());
                                continue;
                            };
                            (TileTextureHandle::Gl(texture), bytes)
                        }
                    };
                    uploaded += bytes;
                    self.textures.insert(result.id, TileTexture { handle, last_used: self.frame, bytes, generation });
                    self.tiles_loaded += 1;
                    self.failed.remove(&result.id);
                    self.failed_at.remove(&result.id);
                }
                Err(e) => {
                    self.failed.insert(result.id, crate::error::printable(&e.kind.to_string()));
                    self.failed_at.insert(result.id, Instant::now());
                }
            }
        }
        if !self.arrived.is_empty() {
            ctx.request_repaint();
        }
    }

    fn request_tiles(&mut self) {
        let levels = self.slide.levels();
        let level = level_for_zoom(levels, self.camera.zoom, self.pixels_per_point);
        let area = self.camera.visible_level0(&self.view);
        let focus = self.camera.center;
        let coarsest = levels.len() - 1;
        let generation = self.generation();
        let now = Instant::now();
        let mut wanted = Vec::new();
        // Every tile this frame shows or prefetches: a failure outside it is forgotten.
        let mut near = std::collections::HashSet::new();
        let mut want = |level: usize, tiles: Vec<((u64, u64), f64)>, base: f64, wanted: &mut Vec<TileRequest>| {
            for ((col, row), d) in tiles {
                let id = TileId { level: level as u32, col, row };
                near.insert(id);
                let current = self.textures.get(&id).is_some_and(|t| t.generation == generation);
                // A failed tile stays drawn as a gap while it is tried again.
                let retry = self.failed_at.get(&id).is_none_or(|t| now.duration_since(*t) >= FAILED_RETRY_AFTER);
                if !current && retry && !self.arrived_ids.contains(&id) {
                    wanted.push(TileRequest { id, priority: base + d });
                }
            }
        };
        // The coarsest level first: it is small and is the backdrop nothing can be drawn without.
        let whole = [0.0, 0.0, f64::MAX / 4.0, f64::MAX / 4.0];
        want(coarsest, tiles_in(&levels[coarsest], whole, focus), -1e6, &mut wanted);
        let visible = tiles_in(&levels[level], area, focus);
        self.stats.level = level;
        self.stats.visible = visible.len();
        want(level, visible, 0.0, &mut wanted);
        // Prefetch, after everything visible: the next coarser level, a ring of neighbours, then
        // the centre of the next finer level.
        let (tw, th) = (
            f64::from(levels[level].tile_width) * levels[level].downsample,
            f64::from(levels[level].tile_height) * levels[level].downsample,
        );
        if level < coarsest {
            want(level + 1, tiles_in(&levels[level + 1], area, focus), 1e3, &mut wanted);
        }
        let ring = [area[0] - tw, area[1] - th, area[2] + tw, area[3] + th];
        want(level, tiles_in(&levels[level], ring, focus), 2e3, &mut wanted);
        if level > 0 {
            let (cw, ch) = ((area[2] - area[0]) / 4.0, (area[3] - area[1]) / 4.0);
            let centre = [focus[0] - cw, focus[1] - ch, focus[0] + cw, focus[1] + ch];
            want(level - 1, tiles_in(&levels[level - 1], centre, focus), 3e3, &mut wanted);
        }
        self.failed.retain(|id, _| near.contains(id));
        self.failed_at.retain(|id, _| near.contains(id));
        self.stats.wanted = wanted.iter().map(|r| r.id).collect();
        self.scheduler.set_wanted(wanted);
    }

    /// Screen rectangle and UV of the part of tile (`l`, `col`, `row`) inside the level-0 rectangle
    /// `clip` (all of the tile's real pixels when `clip` covers it).
    fn tile_quad(&self, l: usize, col: u64, row: u64, clip: [f64; 4]) -> Option<(Rect, Rect)> {
        let info = &self.slide.levels()[l];
        let ds = info.downsample;
        let (tw, th) = (f64::from(info.tile_width), f64::from(info.tile_height));
        // The tile's real pixels (edge tiles are padded), in level-0 coordinates, clipped.
        let x0 = (col as f64 * tw * ds).max(clip[0]);
        let y0 = (row as f64 * th * ds).max(clip[1]);
        let x1 = (((col + 1) as f64 * tw).min(info.width as f64) * ds).min(clip[2]);
        let y1 = (((row + 1) as f64 * th).min(info.height as f64) * ds).min(clip[3]);
        if x0 >= x1 || y0 >= y1 {
            return None;
        }
        // Laid out unturned; a turned view's tiles are turned as they are drawn (TileScene::turn).
        let flat = self.camera.unrotated();
        let a = flat.level0_to_screen([x0, y0], &self.view);
        let b = flat.level0_to_screen([x1, y1], &self.view);
        let rect = Rect::from_min_max(Pos2::new(a[0] as f32, a[1] as f32), Pos2::new(b[0] as f32, b[1] as f32));
        let u = |x: f64| (x / ds / tw - col as f64) as f32;
        let v = |y: f64| (y / ds / th - row as f64) as f32;
        let uv = Rect::from_min_max(Pos2::new(u(x0), v(y0)), Pos2::new(u(x1), v(y1)));
        Some((rect, uv))
    }

    /// Draw each visible tile of the current level from its texture; where one is missing, the
    /// matching part of the finest coarser level that has it all; the background only where no
    /// tile is. Every screen pixel is drawn once, which matters with software rendering (issue 17).
    fn draw_tiles(&mut self, painter: &egui::Painter, hover: Option<Pos2>) {
        let levels = self.slide.levels();
        let level = self.stats.level;
        let area = self.camera.visible_level0(&self.view);
        let (mut exact, mut failed, mut from_coarser) = (0, 0, 0);
        let mut quads = Vec::new();
        // Failed tiles are drawn over the tiles and the background.
        let slots = [painter.add(egui::Shape::Noop), painter.add(egui::Shape::Noop)];
        // The background: around the current level's tiles (its extent times its downsample,
        // which may fall a little short of level 0's size), and under tiles not drawn from their
        // own texture.
        let info = &levels[level];
        let extent = [info.width as f64 * info.downsample, info.height as f64 * info.downsample];
        let flat = self.camera.unrotated();
        let a = flat.level0_to_screen([0.0, 0.0], &self.view);
        let b = flat.level0_to_screen(extent, &self.view);
        let slide = Rect::from_min_max(Pos2::new(a[0] as f32, a[1] as f32), Pos2::new(b[0] as f32, b[1] as f32));
        // Tiles are laid out unturned and turned about the view's centre as they are drawn: the
        // background must cover the clip rectangle turned back.
        let turn = (self.camera.rotation != 0.0).then(|| {
            let c = self.view.center();
            (self.camera.rotation as f32, Pos2::new(c[0] as f32, c[1] as f32))
        });
        let (clip, hover) = match turn {
            Some((angle, pivot)) => {
                let clip = painter.clip_rect();
                let back = clip_corners(clip).map(|p| turn_point(p, -angle, pivot));
                (Rect::from_points(&back), hover.map(|p| turn_point(p, -angle, pivot)))
            }
            None => (painter.clip_rect(), hover),
        };
        let mut gaps = outside(clip, slide);
        // A level above 0 shown at one texel per screen pixel is sampled at the nearest texel
        // (level 0's textures are nearest already).
        let texel = self.camera.zoom * info.downsample * self.pixels_per_point;
        let crisp = level > 0 && (texel - 1.0).abs() < 0.01;
        self.hovered_failure = None;
        let frame = self.frame;
        let generation = self.generation();
        for ((col, row), _) in tiles_in(&levels[level], area, self.camera.center) {
            let id = TileId { level: level as u32, col, row };
            let whole = [f64::MIN, f64::MIN, f64::MAX, f64::MAX];
            if let Some(tex) = self.textures.get_mut(&id) {
                tex.last_used = frame;
                let tex_id = tex.handle.reference();
                let current = tex.generation == generation;
                if let Some((rect, uv)) = self.tile_quad(level, col, row, whole) {
                    quads.push(TileQuad { texture: tex_id, rect, uv, nearest: crisp });
                }
                if current {
                    exact += 1;
                }
                continue;
            }
            if let Some(reason) = self.failed.get(&id) {
                failed += 1;
                if let Some((rect, _)) = self.tile_quad(level, col, row, whole) {
                    match turn {
                        None => hatch(painter, rect, reason),
                        Some((angle, pivot)) => {
                            let corners = clip_corners(rect).map(|p| turn_point(p, angle, pivot));
                            let ring = vec![corners[0], corners[1], corners[3], corners[2]];
                            let stroke = Stroke::new(1.0, Color32::from_rgb(200, 60, 60));
                            painter.add(egui::Shape::convex_polygon(ring, Color32::from_rgb(60, 20, 20), stroke));
                        }
                    }
                    if hover.is_some_and(|p| rect.contains(p)) {
                        self.hovered_failure = Some(id);
                    }
                }
                continue;
            }
            // The level-0 rectangle this tile would cover, filled from the best coarser level.
            let info = &levels[level];
            let ds = info.downsample;
            let (tw, th) = (f64::from(info.tile_width) * ds, f64::from(info.tile_height) * ds);
            let cover = [
                col as f64 * tw,
                row as f64 * th,
                ((col + 1) as f64 * tw).min(info.width as f64 * ds),
                ((row + 1) as f64 * th).min(info.height as f64 * ds),
            ];
            // Under the coarser tiles too: their edge may stop short of this tile's.
            gaps.extend(self.tile_quad(level, col, row, whole).map(|(rect, _)| rect));
            for (coarse, coarse_info) in levels.iter().enumerate().skip(level + 1) {
                let parts = tiles_in(coarse_info, cover, [0.0, 0.0]);
                let ids: Vec<TileId> =
                    parts.iter().map(|&((c, r), _)| TileId { level: coarse as u32, col: c, row: r }).collect();
                if ids.is_empty() || !ids.iter().all(|t| self.textures.contains_key(t)) {
                    continue;
                }
                from_coarser += 1;
                for t in ids {
                    if let Some((rect, uv)) = self.tile_quad(coarse, t.col, t.row, cover) {
                        if let Some(tex) = self.textures.get_mut(&t) {
                            tex.last_used = frame;
                            quads.push(TileQuad { texture: tex.handle.reference(), rect, uv, nearest: false });
                        }
                    }
                }
                break;
            }
        }
        let scene = TileScene { quads, gaps, background: BACKGROUND, turn };
        for (slot, shape) in slots.into_iter().zip(self.tile_painter.shapes(painter, scene)) {
            painter.set(slot, shape);
        }
        self.stats.exact = exact;
        self.stats.failed = failed;
        self.stats.coarse = from_coarser;
    }

    /// Drop the least recently drawn textures beyond the budget; the coarsest level stays.
    fn evict_textures(&mut self) {
        let mut total: usize = self.textures.values().map(|t| t.bytes).sum();
        if total <= self.texture_budget_bytes {
            return;
        }
        let coarsest = (self.slide.levels().len() - 1) as u32;
        let mut candidates: Vec<(u64, TileId, usize)> = self
            .textures
            .iter()
            .filter(|(id, t)| id.level != coarsest && t.last_used < self.frame)
            .map(|(id, t)| (t.last_used, *id, t.bytes))
            .collect();
        candidates.sort_unstable();
        for (_, id, bytes) in candidates {
            if total <= self.texture_budget_bytes {
                break;
            }
            self.textures.remove(&id);
            total -= bytes;
        }
    }

    fn draw_scale_bar(&self, painter: &egui::Painter, rect: Rect) {
        let Some(mpp) = self.slide.properties().mpp_x else { return };
        let Some((_, points, label)) = scale_bar(mpp / self.camera.zoom, 150.0) else { return };
        let origin = rect.left_bottom() + Vec2::new(16.0, -18.0);
        let end = origin + Vec2::new(points as f32, 0.0);
        let bg = Rect::from_min_max(origin + Vec2::new(-8.0, -22.0), end + Vec2::new(8.0, 8.0));
        painter.rect_filled(bg, 4.0, Color32::from_black_alpha(150));
        painter.line_segment([origin, end], Stroke::new(3.0, Color32::WHITE));
        painter.text(
            origin + Vec2::new(0.0, -6.0),
            egui::Align2::LEFT_BOTTOM,
            label,
            egui::FontId::proportional(13.0),
            Color32::WHITE,
        );
    }

    /// The counting grid: lines `counting_grid_um` µm apart from the slide's top-left corner,
    /// over the part of the slide in view; left out while closer than 6 points on screen.
    fn draw_counting_grid(&self, painter: &egui::Painter) {
        let (Some(um), Some(mx), Some(my)) =
            (self.counting_grid_um, self.slide.properties().mpp_x, self.slide.properties().mpp_y)
        else {
            return;
        };
        let (sx, sy) = (um / mx, um / my);
        if !(sx * self.camera.zoom >= 6.0 && sy * self.camera.zoom >= 6.0) {
            return;
        }
        let (w, h) = self.slide_size();
        let [x0, y0, x1, y1] = self.camera.visible_level0(&self.view);
        let (x0, y0, x1, y1) = (x0.max(0.0), y0.max(0.0), x1.min(w), y1.min(h));
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let stroke = Stroke::new(1.0, Color32::from_rgba_unmultiplied(0, 220, 255, 170));
        let to = |p: [f64; 2]| {
            let s = self.camera.level0_to_screen(p, &self.view);
            Pos2::new(s[0] as f32, s[1] as f32)
        };
        let mut shapes = Vec::new();
        let mut x = (x0 / sx).ceil() * sx;
        while x <= x1 && shapes.len() < 2000 {
            shapes.push(egui::Shape::line_segment([to([x, y0]), to([x, y1])], stroke));
            x += sx;
        }
        let mut y = (y0 / sy).ceil() * sy;
        while y <= y1 && shapes.len() < 4000 {
            shapes.push(egui::Shape::line_segment([to([x0, y]), to([x1, y])], stroke));
            y += sy;
        }
        painter.extend(shapes);
    }

    /// A turned view says by how much, top left; a click turns it back.
    fn rotation_badge(&mut self, ui: &mut egui::Ui, rect: Rect) {
        if self.camera.rotation == 0.0 {
            return;
        }
        let text = format!("Rotated {:.0}° · reset", self.rotation_degrees());
        let at = Rect::from_min_size(rect.left_top() + Vec2::new(12.0, 12.0), Vec2::new(150.0, 22.0));
        if rect.contains_rect(at) {
            let button =
                egui::Button::new(RichText::new(text).color(Color32::WHITE)).fill(Color32::from_black_alpha(170));
            if ui.put(at, button).on_hover_text("Back to the slide as scanned (\\)").clicked() {
                self.set_rotation(0.0);
            }
        }
    }

    /// The overview in the top-right corner with the viewport outlined; click or drag to move.
    fn minimap(&mut self, ui: &mut egui::Ui, rect: Rect) {
        if let Some(image) = self.overview_image.take() {
            self.overview = Some(ui.ctx().load_texture("overview", image, TextureOptions::LINEAR));
        }
        let Some(overview) = &self.overview else { return };
        let (w, h) = self.slide_size();
        let size = overview.size_vec2();
        // At most 200 points, and under a third of a small view (a cell of View > Layout).
        let longest = 200f32.min(0.3 * rect.width().min(rect.height()));
        let map_size = size * (longest / size.x.max(size.y)).min(1.0);
        let map = Rect::from_min_size(rect.right_top() + Vec2::new(-map_size.x - 12.0, 12.0), map_size);
        if !rect.contains_rect(map) {
            self.minimap_rect = None;
            return;
        }
        self.minimap_rect = Some(map);
        let response = ui.interact(map, ui.scope_id().with("minimap"), Sense::click_and_drag());
        if let Some(p) = response.interact_pointer_pos().filter(|_| response.clicked() || response.dragged()) {
            let fx = f64::from((p.x - map.min.x) / map.width()).clamp(0.0, 1.0);
            let fy = f64::from((p.y - map.min.y) / map.height()).clamp(0.0, 1.0);
            self.animation = None;
            self.auto_fit = false;
            self.camera.center = [fx * w, fy * h];
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(map.expand(3.0), 3.0, Color32::from_black_alpha(160));
        painter.image(overview.id(), map, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        let to_map = |p: [f64; 2]| {
            Pos2::new(map.min.x + (p[0] / w) as f32 * map.width(), map.min.y + (p[1] / h) as f32 * map.height())
        };
        let stroke = Stroke::new(1.5, Color32::from_rgb(255, 210, 0));
        if self.camera.rotation == 0.0 {
            let [x0, y0, x1, y1] = self.camera.visible_level0(&self.view);
            let outline = Rect::from_min_max(to_map([x0, y0]), to_map([x1, y1])).intersect(map);
            painter.rect_stroke(outline, 0.0, stroke, egui::StrokeKind::Middle);
        } else {
            // The turned view's outline, clipped to the overview.
            let v = self.view;
            let corners = [[v.x, v.y], [v.x + v.width, v.y], [v.x + v.width, v.y + v.height], [v.x, v.y + v.height]]
                .map(|p| to_map(self.camera.screen_to_level0(p, &v)));
            painter.with_clip_rect(map).add(egui::Shape::closed_line(corners.to_vec(), stroke));
        }
    }
}

/// A rectangle's corners: top-left, top-right, bottom-left, bottom-right.
fn clip_corners(r: Rect) -> [Pos2; 4] {
    [r.min, Pos2::new(r.max.x, r.min.y), Pos2::new(r.min.x, r.max.y), r.max]
}

/// `p` turned clockwise by `angle` radians about `pivot`.
fn turn_point(p: Pos2, angle: f32, pivot: Pos2) -> Pos2 {
    super::tile_painter::turn(p, angle, pivot)
}

/// The view's colour where there is no slide (or no tile yet).
const BACKGROUND: Color32 = Color32::from_gray(38);

/// The parts of `view` outside `inner` (up to four bands: above, below, left, right).
fn outside(view: Rect, inner: Rect) -> Vec<Rect> {
    let inner = inner.intersect(view);
    if !inner.is_positive() {
        return vec![view];
    }
    let bands = [
        Rect::from_min_max(view.min, Pos2::new(view.max.x, inner.min.y)),
        Rect::from_min_max(Pos2::new(view.min.x, inner.max.y), view.max),
        Rect::from_min_max(Pos2::new(view.min.x, inner.min.y), Pos2::new(inner.min.x, inner.max.y)),
        Rect::from_min_max(Pos2::new(inner.max.x, inner.min.y), Pos2::new(view.max.x, inner.max.y)),
    ];
    bands.into_iter().filter(|r| r.is_positive()).collect()
}

/// A tile that failed to load or decode: a red-hatched gap, with the reason written in it when
/// the tile is large enough on screen to hold a line of text.
fn hatch(painter: &egui::Painter, rect: Rect, reason: &str) {
    painter.rect_filled(rect, 0.0, Color32::from_rgb(60, 20, 20));
    let stroke = Stroke::new(1.0, Color32::from_rgb(200, 60, 60));
    let step = 12.0;
    let mut t = -rect.height();
    while t < rect.width() {
        let a = Pos2::new(rect.min.x + t.max(0.0), rect.min.y + (-t).max(0.0));
        let len = (rect.width() - t.max(0.0)).min(rect.height() - (-t).max(0.0));
        if len > 0.0 {
            painter.line_segment([a, a + Vec2::new(len, len)], stroke);
        }
        t += step;
    }
    painter.rect_stroke(rect, 0.0, stroke, egui::StrokeKind::Inside);
    // Written in the part on screen: a tile at high zoom can be larger than the view.
    let rect = rect.intersect(painter.clip_rect());
    if rect.width() >= 120.0 && rect.height() >= 40.0 {
        let chars = ((rect.width() - 16.0) / 7.0) as usize;
        let mut text: String = reason.chars().take(chars).collect();
        if text.len() < reason.len() {
            text.pop();
            text.push('…');
        }
        let font = egui::FontId::proportional(12.0);
        let galley = painter.layout_no_wrap(text, font, Color32::WHITE);
        let at = rect.center() - galley.size() / 2.0;
        let bg = Rect::from_min_size(at, galley.size()).expand(4.0);
        painter.rect_filled(bg, 3.0, Color32::from_black_alpha(190));
        painter.galley(at, galley, Color32::WHITE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_bytes_in_the_painters_order() {
        // Opaque red-ish, then a half-transparent pixel (premultiplied as egui premultiplies).
        let rgba = [200, 100, 50, 255, 200, 100, 50, 128];
        let half = Color32::from_rgba_unmultiplied(200, 100, 50, 128).to_array();
        assert_eq!(tile_bytes(&rgba, None, PixelOrder::Rgba), [&[200, 100, 50, 255][..], &half].concat());
        assert_eq!(
            tile_bytes(&rgba, None, PixelOrder::Bgra),
            [&[50, 100, 200, 255][..], &[half[2], half[1], half[0], half[3]]].concat()
        );
        // Adjustments map the colour channels, not alpha.
        let mut lut = [0u8; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = 255 - i as u8;
        }
        assert_eq!(tile_bytes(&rgba[..4], Some(&lut), PixelOrder::Bgra), [205, 155, 55, 255]);
        // As egui's image would hold it.
        let image = ColorImage::from_rgba_unmultiplied([2, 1], &rgba);
        let egui_bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
        assert_eq!(tile_bytes(&rgba, None, PixelOrder::Rgba), egui_bytes);
    }

    fn area(rects: &[Rect]) -> f32 {
        rects.iter().map(|r| r.area()).sum()
    }

    #[test]
    fn background_only_outside_the_slide() {
        let view = Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(100.0, 100.0));
        let slide = Rect::from_min_max(Pos2::new(20.0, 30.0), Pos2::new(80.0, 70.0));
        let bands = outside(view, slide);
        assert_eq!(bands.len(), 4);
        assert_eq!(area(&bands), 100.0 * 100.0 - 60.0 * 40.0);
        for (i, a) in bands.iter().enumerate() {
            assert!(view.contains_rect(*a) && a.intersect(slide).area() <= 0.0, "{a:?}");
            for b in &bands[i + 1..] {
                assert!(a.intersect(*b).area() <= 0.0, "{a:?} overlaps {b:?}");
            }
        }
        // A slide covering the view leaves nothing; one off screen leaves the whole view.
        assert!(outside(view, view.expand(10.0)).is_empty());
        let away = Rect::from_min_max(Pos2::new(200.0, 0.0), Pos2::new(300.0, 100.0));
        assert_eq!(outside(view, away), vec![view]);
        // A slide across the left edge: one band on the right only (and none elsewhere).
        let left = Rect::from_min_max(Pos2::new(-50.0, 0.0), Pos2::new(40.0, 100.0));
        assert_eq!(outside(view, left), vec![Rect::from_min_max(Pos2::new(40.0, 0.0), Pos2::new(100.0, 100.0))]);
    }
}
