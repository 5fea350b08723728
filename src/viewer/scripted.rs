//! Scripted runs of the viewer, without menus or panels: one [`SlideView`] filling the window,
//! driven frame by frame until it yields an exit code.
//! - `wsiview view SLIDE --screenshot OUT.png` ([`ScreenshotPlan`]): place the camera, wait until
//!   every visible tile is at its level, save the window as PNG, print the timings as JSON.
//! - `wsiview view SLIDE --bench-seconds N` ([`BenchPlan`]): first view, jumps, then continuous
//!   panning across every level, with frame times and memory printed as one JSON line.
//!
//! With `--annotations FILE`, the file is read as the slide's detection layer (shared by every
//! cell) and a view is complete only once the layer is drawn over it; the reports add
//! `annotations_load_ms` (the read, ms) and `objects`.
//!
//! The slide is opened, the PNG written and /proc read in [`Job`]s, never on the UI thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use egui::ColorImage;

use super::detection_overlay::DetectionOverlay;
use super::job::Job;
use super::slide_view::{OpenedSlide, SlideView};
use crate::tiles::TileCache;

/// A scripted view (`wsiview view --screenshot`): where to look, and where to save.
#[derive(Clone, Debug)]
pub struct ScreenshotPlan {
    /// Centre of the view in level-0 pixels; the slide's centre when absent.
    pub center: Option<[f64; 2]>,
    /// Show this level at 1:1 (when `downsample` is absent).
    pub level: Option<usize>,
    /// Show this many level-0 pixels per screen pixel.
    pub downsample: Option<f64>,
    /// The PNG to write.
    pub output: PathBuf,
}

/// Scripted benchmark (`wsiview view --bench-seconds N`): first view, jumps, then continuous panning
/// across every level, with frame times and memory reported as one JSON line.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    /// How long the panning phase lasts, in seconds.
    pub pan_seconds: f64,
    /// The slide in this many cells (1–4, as View > Layout arranges them), moved together as
    /// synchronised navigation moves them.
    pub cells: usize,
    /// While panning, each level is shown at this many screen pixels per level pixel (1: the
    /// level at 1:1, as the standard magnifications show it; other values scale it, filtered).
    pub pan_scale: f64,
}

/// What a scripted run does.
#[derive(Clone, Debug)]
pub enum Script {
    Screenshot(ScreenshotPlan),
    Bench(BenchPlan),
}

/// Frame times measured by the shell, for the benchmark.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameTimes {
    /// CPU time of the previous whole frame (eframe's measure: UI, tessellation, painting), ms.
    pub last_frame_cpu_ms: Option<f64>,
    /// Time of the previous call to [`ScriptedRun::frame`], ms.
    pub last_ui_ms: Option<f64>,
}

enum BenchPhase {
    FirstView,
    Jump { index: usize, since: Instant },
    Pan { since: Instant, last_level_change: Instant, level: usize },
    Report(Job<()>),
}

struct BenchProgress {
    phase: BenchPhase,
    complete_ms: f64,
    jump_ms: Vec<f64>,
    ui_ms: Vec<f64>,
    frame_ms: Vec<f64>,
    velocity: [f64; 2],
}

const BENCH_JUMPS: usize = 10;

#[derive(Default)]
struct ScreenshotProgress {
    placed: bool,
    first_frame_ms: Option<f64>,
    requested: bool,
    /// Filled by egui's screenshot callback.
    image: Arc<Mutex<Option<Arc<ColorImage>>>>,
    saving: Option<Job<Result<(), String>>>,
}

enum Progress {
    Screenshot(ScreenshotPlan, ScreenshotProgress),
    Bench(BenchPlan, BenchProgress),
}

/// One scripted run: owns the slide's view (once opened) and the script's progress.
pub struct ScriptedRun {
    opening: Option<Job<crate::Result<Vec<OpenedSlide>>>>,
    path: PathBuf,
    /// One view, or a benchmark's cells (each its own opening of the slide, one tile cache).
    views: Vec<SlideView>,
    cache: Arc<TileCache>,
    /// When the process started: timings are from here.
    started: Instant,
    progress: Progress,
    /// `--annotations`: a detection layer read over the slide (every cell shares it).
    annotations: Option<PathBuf>,
}

impl ScriptedRun {
    /// Start opening `slide` (on a worker) for `script`, with a tile cache of `cache_bytes`.
    /// With `annotations`, that file is read as the slide's detection layer and drawn; the view
    /// is complete once it is drawn.
    pub fn new(
        slide: PathBuf,
        script: Script,
        cache_bytes: u64,
        started: Instant,
        ctx: &egui::Context,
        annotations: Option<PathBuf>,
    ) -> Self {
        let cache = Arc::new(TileCache::new(cache_bytes));
        let (worker_cache, worker_path) = (cache.clone(), slide.clone());
        let cells = match &script {
            Script::Bench(plan) => plan.cells.clamp(1, 4),
            Script::Screenshot(_) => 1,
        };
        let opening = Job::spawn(ctx, move || {
            (0..cells).map(|_| OpenedSlide::load(&worker_path, worker_cache.clone())).collect()
        });
        let progress = match script {
            Script::Screenshot(plan) => Progress::Screenshot(plan, ScreenshotProgress::default()),
            Script::Bench(plan) => Progress::Bench(
                plan,
                BenchProgress {
                    phase: BenchPhase::FirstView,
                    complete_ms: 0.0,
                    jump_ms: Vec::new(),
                    ui_ms: Vec::new(),
                    frame_ms: Vec::new(),
                    velocity: [23.0, 17.0],
                },
            ),
        };
        ScriptedRun { opening: Some(opening), path: slide, views: Vec::new(), cache, started, progress, annotations }
    }

    /// One frame; `Some(code)` when the run is over (0: done, 1: failed, the reason printed).
    pub fn frame(&mut self, ui: &mut egui::Ui, times: FrameTimes) -> Option<i32> {
        let ctx = ui.ctx().clone();
        if let Some(job) = &mut self.opening {
            match job.try_take() {
                None => {}
                Some(Ok(Ok(opened))) => {
                    self.opening = None;
                    self.views = opened.into_iter().map(|o| SlideView::new(o, &ctx)).collect();
                    if let (Some(file), Some(first)) = (&self.annotations, self.views.first_mut()) {
                        first.load_detections(file, &ctx);
                    }
                }
                Some(Ok(Err(e))) => {
                    eprintln!("wsiview: {}", crate::error::printable(&e.to_string()));
                    return Some(1);
                }
                Some(Err(stopped)) => {
                    eprintln!("wsiview: {}: {stopped}", self.path.display());
                    return Some(1);
                }
            }
        }
        if let Some(code) = self.share_detections() {
            return Some(code);
        }
        if self.views.is_empty() {
            ctx.request_repaint_after(std::time::Duration::from_millis(16));
            egui::CentralPanel::default().show(ui, |ui| {
                ui.centered_and_justified(|ui| ui.spinner());
            });
            return None;
        }
        match &mut self.progress {
            Progress::Screenshot(plan, progress) => progress.frame(ui, &mut self.views[0], plan, self.started),
            Progress::Bench(plan, progress) => {
                progress.frame(ui, &mut self.views, plan, self.started, times, &self.cache)
            }
        }
    }
}

impl ScriptedRun {
    /// Once the first view's detection layer is read, the other cells show the same layer
    /// (one copy in memory). `Some(1)` when it could not be read (the reason printed).
    fn share_detections(&mut self) -> Option<i32> {
        let first = self.views.first()?.detections.as_ref()?;
        if let Some(message) = first.failed() {
            eprintln!("wsiview: {message}");
            return Some(1);
        }
        let (path, layer) = (first.path.clone(), first.layer()?.clone());
        for view in self.views.iter_mut().skip(1).filter(|v| v.detections.is_none()) {
            view.detections = Some(DetectionOverlay::shared(&path, layer.clone()));
        }
        None
    }
}

/// Every visible tile is at its level and the detection layer, if any, is drawn.
fn settled(view: &SlideView) -> bool {
    view.is_complete() && view.detections.as_ref().is_none_or(|d| d.is_settled())
}

/// `annotations_load_ms` and `objects` of a view's detection layer, added to a report.
fn add_detection_figures(report: &mut serde_json::Value, view: &SlideView) {
    if let Some(d) = &view.detections {
        report["annotations_load_ms"] = d.load_ms.map(round1).into();
        report["objects"] = d.layer().map(|l| l.len()).into();
    }
}

impl ScreenshotProgress {
    /// Scripted snapshot: place the camera, wait until every visible tile is at its level, take
    /// the screenshot, save it on a worker, print the timings and finish.
    fn frame(
        &mut self,
        ui: &mut egui::Ui,
        view: &mut SlideView,
        plan: &ScreenshotPlan,
        started: Instant,
    ) -> Option<i32> {
        let progress = self;
        let ctx = ui.ctx().clone();
        ctx.request_repaint_after(std::time::Duration::from_millis(16));
        egui::CentralPanel::default().frame(egui::Frame::NONE).show(ui, |ui| {
            if !progress.placed {
                let levels = view.slide.levels();
                let l0 = &levels[0];
                let downsample = plan
                    .downsample
                    .or_else(|| plan.level.and_then(|l| levels.get(l)).map(|l| l.downsample))
                    .unwrap_or(1.0);
                let center = plan.center.unwrap_or([l0.width as f64 / 2.0, l0.height as f64 / 2.0]);
                let ppp = f64::from(ctx.pixels_per_point());
                view.look_at(center, Some(1.0 / downsample / ppp));
                progress.placed = true;
            }
            view.ui(ui);
            if progress.first_frame_ms.is_none() && view.tiles_loaded > 0 {
                progress.first_frame_ms = Some(started.elapsed().as_secs_f64() * 1e3);
            }
        });
        if !progress.requested && settled(view) {
            progress.requested = true;
            let slot = progress.image.clone();
            let repaint = ctx.clone();
            let complete_ms = started.elapsed().as_secs_f64() * 1e3;
            let first_frame_ms = progress.first_frame_ms.unwrap_or(complete_ms);
            ctx.request_screenshot(move |image| {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(image);
                repaint.request_repaint();
            });
            let tile_draw = if view.draws_tiles_with_gl() { "gl" } else { "egui" };
            let mut line = serde_json::json!({"first_frame_ms": round1(first_frame_ms), "complete_ms": round1(complete_ms), "tiles_loaded": view.tiles_loaded, "tile_draw": tile_draw});
            add_detection_figures(&mut line, view);
            // A remote slide: what the process had asked of the server when the view completed
            // (opening, the overview and prefetch included).
            let (requests, bytes_fetched) = crate::remote::totals();
            if requests > 0 {
                line["requests"] = requests.into();
                line["bytes_fetched"] = bytes_fetched.into();
            }
            println!("{line}");
        }
        let shot = progress.image.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(image) = shot {
            let output = plan.output.clone();
            progress.saving = Some(Job::spawn(&ctx, move || save_color_image(&image, &output)));
        }
        match progress.saving.as_mut()?.try_take()? {
            Ok(Ok(())) => Some(0),
            Ok(Err(e)) => {
                eprintln!("wsiview: {e}");
                Some(1)
            }
            Err(stopped) => {
                eprintln!("wsiview: {}: {stopped}", plan.output.display());
                Some(1)
            }
        }
    }
}

impl BenchProgress {
    /// First view, jumps, then panning across every level; the report printed at the end. Every
    /// cell does the same (the same slide, moved together); a phase ends when all have.
    fn frame(
        &mut self,
        ui: &mut egui::Ui,
        views: &mut [SlideView],
        plan: &BenchPlan,
        started: Instant,
        times: FrameTimes,
        cache: &TileCache,
    ) -> Option<i32> {
        let progress = self;
        let ctx = ui.ctx().clone();
        ctx.request_repaint();
        let levels = views[0].slide.levels().to_vec();
        let (w, h) = (levels[0].width as f64, levels[0].height as f64);
        let ppp = f64::from(ctx.pixels_per_point());
        // Deterministic spread of jump targets over the slide.
        let jump_target = |i: usize| {
            let f = |k: u64| ((i as u64 + 1).wrapping_mul(k) % 1000) as f64 / 1000.0;
            [w * (0.1 + 0.8 * f(389)), h * (0.1 + 0.8 * f(757))]
        };
        let look_all = |views: &mut [SlideView], center: [f64; 2], zoom: f64| {
            for view in views.iter_mut() {
                view.look_at(center, Some(zoom));
            }
        };
        let mut exit = None;
        match &mut progress.phase {
            BenchPhase::FirstView => {
                for view in views.iter_mut() {
                    if !view.is_complete() && view.camera.zoom != 1.0 / ppp {
                        view.look_at([w / 2.0, h / 2.0], Some(1.0 / ppp));
                    }
                }
            }
            BenchPhase::Pan { since, last_level_change, level } => {
                if let Some(ms) = times.last_ui_ms {
                    progress.ui_ms.push(ms);
                }
                if let Some(ms) = times.last_frame_cpu_ms {
                    progress.frame_ms.push(ms);
                }
                // A steady drag, bouncing off the slide's edges, and every 2 s the next level.
                for view in views.iter_mut() {
                    view.camera.pan_by_screen([-progress.velocity[0], -progress.velocity[1]]);
                }
                let [cx, cy] = views[0].camera.center;
                if cx <= 0.0 || cx >= w {
                    progress.velocity[0] = -progress.velocity[0];
                }
                if cy <= 0.0 || cy >= h {
                    progress.velocity[1] = -progress.velocity[1];
                }
                if last_level_change.elapsed().as_secs_f64() > 2.0 {
                    *level = (*level + 1) % levels.len();
                    *last_level_change = Instant::now();
                    let center = views[0].camera.center;
                    look_all(views, center, plan.pan_scale / levels[*level].downsample / ppp);
                }
                if since.elapsed().as_secs_f64() > plan.pan_seconds {
                    let mut report = serde_json::json!({
                        "cells": views.len(),
                        "pan_scale": plan.pan_scale,
                        "complete_ms": round1(progress.complete_ms),
                        "jump_ms_median": round1(median(&progress.jump_ms)),
                        "jump_ms_max": round1(percentile(&progress.jump_ms, 100.0)),
                        "pan_seconds": plan.pan_seconds,
                        "frames": progress.ui_ms.len(),
                        "frames_per_s": round1(progress.ui_ms.len() as f64 / plan.pan_seconds),
                        "ui_ms_p50": round2(median(&progress.ui_ms)),
                        "ui_ms_p99": round2(percentile(&progress.ui_ms, 99.0)),
                        "frame_cpu_ms_p50": round2(median(&progress.frame_ms)),
                        "frame_cpu_ms_p99": round2(percentile(&progress.frame_ms, 99.0)),
                        "tiles_loaded": views.iter().map(|v| v.tiles_loaded).sum::<u64>(),
                        "cache_mb": round1(cache.used_bytes() as f64 / 1e6),
                    });
                    add_detection_figures(&mut report, &views[0]);
                    // Memory figures come from /proc: read on a worker, not the UI thread.
                    progress.phase = BenchPhase::Report(Job::spawn(&ctx, move || print_with_memory(report)));
                }
            }
            BenchPhase::Jump { .. } => {}
            BenchPhase::Report(job) => {
                if job.ready() {
                    exit = Some(0);
                }
            }
        }
        egui::CentralPanel::default().frame(egui::Frame::NONE).show(ui, |ui| {
            let layout = super::grid::Layout::with_cells(views.len()).unwrap_or_default();
            let cells = layout.cell_rects(ui.max_rect(), 4.0);
            for (i, (view, cell)) in views.iter_mut().zip(cells).enumerate() {
                let mut child = ui.new_child(egui::UiBuilder::new().max_rect(cell).id_salt(("bench cell", i)));
                view.ui(&mut child);
            }
        });
        let complete = views.iter().all(|v| settled(v) && v.stats.level == 0);
        match &mut progress.phase {
            BenchPhase::FirstView if complete => {
                progress.complete_ms = started.elapsed().as_secs_f64() * 1e3;
                look_all(views, jump_target(0), 1.0 / ppp);
                progress.phase = BenchPhase::Jump { index: 0, since: Instant::now() };
            }
            BenchPhase::Jump { index, since } if complete => {
                progress.jump_ms.push(since.elapsed().as_secs_f64() * 1e3);
                *index += 1;
                if *index < BENCH_JUMPS {
                    look_all(views, jump_target(*index), 1.0 / ppp);
                    *since = Instant::now();
                } else {
                    let now = Instant::now();
                    if plan.pan_scale != 1.0 {
                        let center = views[0].camera.center;
                        look_all(views, center, plan.pan_scale / ppp);
                    }
                    progress.phase = BenchPhase::Pan { since: now, last_level_change: now, level: 0 };
                }
            }
            _ => {}
        }
        exit
    }
}

/// Add the resident and peak memory from /proc to the benchmark's report and print it. Runs on
/// a worker thread.
fn print_with_memory(mut report: serde_json::Value) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    report["rss_mb"] = serde_json::json!(kb("VmRSS:").map(|k| round1(k / 1024.0)));
    report["peak_rss_mb"] = serde_json::json!(kb("VmHWM:").map(|k| round1(k / 1024.0)));
    println!("{report}");
}

/// The nearest-rank percentile (`percent` 0–100) of `values` ([`crate::stats`]); 0 for none.
fn percentile(values: &[f64], percent: f64) -> f64 {
    crate::stats::percentile_nearest_rank(&crate::stats::sorted(values), percent).unwrap_or(0.0)
}

/// The median of `values` ([`crate::stats`]); 0 for none.
fn median(values: &[f64]) -> f64 {
    crate::stats::median(&crate::stats::sorted(values)).unwrap_or(0.0)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Write a screenshot (RGBA) as PNG. Runs on a worker thread.
fn save_color_image(image: &ColorImage, output: &Path) -> Result<(), String> {
    let [w, h] = image.size;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_srgba_unmultiplied()).collect();
    let img = image::RgbaImage::from_raw(w as u32, h as u32, bytes).ok_or("screenshot has the wrong size")?;
    img.save_with_format(output, image::ImageFormat::Png)
        .map_err(|e| format!("{}: cannot write PNG: {e}", output.display()))
}
