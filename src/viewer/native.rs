//! The eframe shell around [`ViewerApp`] (or a [`ScriptedRun`]): window, persistence, exit codes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::scripted::{BenchPlan, FrameTimes, Script, ScriptedRun};
use super::{ScreenshotPlan, ViewerApp};

pub struct ViewOptions {
    pub slides: Vec<PathBuf>,
    pub screenshot: Option<ScreenshotPlan>,
    pub bench: Option<BenchPlan>,
    /// Window inner size in points.
    pub size: [f32; 2],
    pub cache_bytes: u64,
    pub started: Instant,
    /// `wsiview case`: open this case (its slides, the case list, the report panel).
    pub case: Option<crate::report::case::Case>,
    /// Cells side by side at the start (1 to 4; View > Layout).
    pub cells: usize,
    /// A detection layer for the first slide (`--annotations`).
    pub annotations: Option<PathBuf>,
}

/// What the window runs: the viewer, or a scripted run.
enum Running {
    /// The viewer, and the slides named on the command line (opened at the first frame).
    Viewer {
        app: Box<ViewerApp>,
        to_open: Vec<PathBuf>,
        case: Option<crate::report::case::Case>,
    },
    Scripted {
        run: Box<ScriptedRun>,
        times: FrameTimes,
    },
}

struct Shell {
    running: Running,
    exit: Arc<Mutex<Option<i32>>>,
}

const STORAGE_KEY: &str = "wsiview";

impl eframe::App for Shell {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        match &mut self.running {
            Running::Viewer { app, to_open, case } => {
                for path in std::mem::take(to_open) {
                    app.open(path, ui.ctx());
                }
                if let Some(case) = case.take() {
                    app.start_case(case, ui.ctx());
                }
                app.ui(ui);
            }
            Running::Scripted { run, times } => {
                times.last_frame_cpu_ms = frame.info().cpu_usage.map(|s| f64::from(s) * 1e3);
                let start = Instant::now();
                let code = run.frame(ui, *times);
                times.last_ui_ms = Some(start.elapsed().as_secs_f64() * 1e3);
                if let Some(code) = code {
                    // The first code stands: frames drawn while the window closes change nothing.
                    self.exit.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(code);
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            }
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Running::Viewer { app, .. } = &self.running {
            eframe::set_value(storage, STORAGE_KEY, &app.persisted());
        }
    }
}

/// Open the window and run until it closes; returns the process exit code.
pub fn run(options: ViewOptions) -> anyhow::Result<i32> {
    let exit = Arc::new(Mutex::new(None));
    let shell_exit = exit.clone();
    let script = match (options.screenshot.clone(), options.bench.clone()) {
        (Some(plan), _) => Some(Script::Screenshot(plan)),
        (None, Some(plan)) => Some(Script::Bench(plan)),
        (None, None) => None,
    };
    let scripted = script.is_some();
    // eframe restores the last window size even when told not to save it: scripted runs get an
    // empty state folder of their own (removed afterwards), so --size is the size.
    let scripted_state =
        scripted.then(|| std::env::temp_dir().join(format!("wsiview-scripted-{}", std::process::id())));
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("wsiview")
            .with_inner_size(options.size)
            .with_drag_and_drop(true)
            .with_resizable(!scripted),
        persist_window: !scripted,
        // egui's dithering adds per-pixel noise arithmetic to every fragment: under llvmpipe at
        // 3840 × 2100 it cost a fifth of the frame rate (BENCHMARKS.md, issue 17), and on a 24-bit
        // display it hides no banding in a photograph of tissue.
        dithering: false,
        persistence_path: scripted_state.clone(),
        // OpenGL: under a software renderer (Mesa llvmpipe, remote desktops, Xvfb) it drew frames
        // about 6x faster than wgpu here (BENCHMARKS.md). WSIVIEW_RENDERER=wgpu selects wgpu.
        renderer: match std::env::var("WSIVIEW_RENDERER").as_deref() {
            Ok("wgpu") => eframe::Renderer::Wgpu,
            _ => eframe::Renderer::Glow,
        },
        ..Default::default()
    };
    let ViewOptions { slides, cache_bytes, started, case, cells, annotations, .. } = options;
    let result = eframe::run_native(
        "wsiview",
        native,
        Box::new(move |cc| {
            if let Some(gl) = &cc.gl {
                super::tile_painter::use_gl(&cc.egui_ctx, gl);
            }
            let running = match (script, slides.first()) {
                (Some(script), Some(slide)) => {
                    let run = ScriptedRun::new(slide.clone(), script, cache_bytes, started, &cc.egui_ctx, annotations);
                    Running::Scripted { run: Box::new(run), times: FrameTimes::default() }
                }
                _ => {
                    let mut app = ViewerApp::new(cache_bytes);
                    if let Some(saved) = cc.storage.and_then(|s| eframe::get_value(s, STORAGE_KEY)) {
                        app.restore(saved);
                    }
                    app.pending_detections = annotations;
                    if let Some(layout) = super::grid::Layout::with_cells(cells).filter(|_| cells > 1) {
                        app.layout = layout;
                    }
                    let to_open = if case.is_some() { Vec::new() } else { slides };
                    Running::Viewer { app: Box::new(app), to_open, case }
                }
            };
            Ok(Box::new(Shell { running, exit: shell_exit }))
        }),
    );
    if let Some(dir) = scripted_state {
        let _ = std::fs::remove_dir_all(dir);
    }
    result.map_err(|e| {
        let text = e.to_string();
        if text.contains("DISPLAY") || text.contains("X server") {
            anyhow::anyhow!(
                "cannot open a window: no graphical display (DISPLAY is unset or unreachable); \
                 the command-line tools (info, region, thumbnail, …) work without one"
            )
        } else {
            anyhow::anyhow!("cannot open a window: {text}")
        }
    })?;
    let code = exit.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(0);
    Ok(code)
}
