//! The eframe shell around [`ViewerApp`]: window, persistence, exit codes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::app::BenchPlan;
use super::{ScreenshotPlan, ViewerApp};

pub struct ViewOptions {
    pub slides: Vec<PathBuf>,
    pub screenshot: Option<ScreenshotPlan>,
    pub bench: Option<BenchPlan>,
    /// Window inner size in points.
    pub size: [f32; 2],
    pub cache_bytes: u64,
    pub started: Instant,
}

struct Shell {
    app: ViewerApp,
    to_open: Vec<PathBuf>,
    exit: Arc<Mutex<Option<i32>>>,
    persist: bool,
}

const STORAGE_KEY: &str = "wsiview";

impl eframe::App for Shell {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        for path in std::mem::take(&mut self.to_open) {
            self.app.open(path, ui.ctx());
        }
        self.app.last_frame_cpu_ms = frame.info().cpu_usage.map(|s| f64::from(s) * 1e3);
        let start = Instant::now();
        self.app.ui(ui);
        self.app.last_ui_ms = Some(start.elapsed().as_secs_f64() * 1e3);
        if let Some(code) = self.app.exit_code {
            *self.exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(code);
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.persist {
            eframe::set_value(storage, STORAGE_KEY, &self.app.persisted());
        }
    }
}

/// Open the window and run until it closes; returns the process exit code.
pub fn run(options: ViewOptions) -> anyhow::Result<i32> {
    let exit = Arc::new(Mutex::new(None));
    let shell_exit = exit.clone();
    let scripted = options.screenshot.is_some() || options.bench.is_some();
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
        persistence_path: scripted_state.clone(),
        // OpenGL: under a software renderer (Mesa llvmpipe, remote desktops, Xvfb) it drew frames
        // about 6x faster than wgpu here (BENCHMARKS.md). WSIVIEW_RENDERER=wgpu selects wgpu.
        renderer: match std::env::var("WSIVIEW_RENDERER").as_deref() {
            Ok("wgpu") => eframe::Renderer::Wgpu,
            _ => eframe::Renderer::Glow,
        },
        ..Default::default()
    };
    let ViewOptions { slides, screenshot, bench, cache_bytes, started, .. } = options;
    let result = eframe::run_native(
        "wsiview",
        native,
        Box::new(move |cc| {
            let mut app = ViewerApp::new(cache_bytes, started);
            if let Some(plan) = screenshot {
                app = app.with_screenshot(plan);
            } else if let Some(plan) = bench {
                app = app.with_bench(plan);
            } else if let Some(storage) = cc.storage {
                if let Some(saved) = eframe::get_value(storage, STORAGE_KEY) {
                    app.restore(saved);
                }
            }
            Ok(Box::new(Shell { app, to_open: slides, exit: shell_exit, persist: !scripted }))
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
