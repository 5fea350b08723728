//! The app's file chores, kept apart from the window code: File > Open (the desktop's picker or
//! the built-in browser), File > Open URL…, File > Open from PACS… (the window is [`super::pacs`]), Open recent (canonical paths of slides that opened,
//! redacted URLs of remote ones; missing files dropped, URLs never), and File > Import / Export
//! annotations. Everything that touches a file or the network runs on a worker; these functions
//! poll [`Job`]s.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::app::{TabState, ViewerApp, RECENT_MAX};
use super::command::AppCommand;
use super::file_browser::{is_url_path, BrowserEvent, FileBrowser, FileDialogMode, Picked};
use super::job::Job;
use super::message::{Level, Message};
use super::pacs::PacsEvent;

/// An annotation import or export running on a worker.
pub(super) enum AnnotationJob {
    /// Into the slide at this path: the file chosen (none: cancelled) and what was read from it.
    Import(PathBuf, Job<Option<(PathBuf, Result<crate::annotations::Import, String>)>>),
    /// The message to show (none: cancelled).
    Export(Job<Option<Result<String, String>>>),
}

/// File > Open URL…: the address being typed, and why the last one was refused.
#[derive(Debug, Default)]
pub struct UrlDialog {
    /// As typed: it may hold a presigned query or credentials, so it lives only here and in the
    /// open request, and is never shown elsewhere, logged or saved.
    pub text: String,
    error: Option<String>,
    focused: bool,
}

/// A remote slide's address as it may be shown or saved ([`crate::remote::redact`]); a local
/// path as it is.
pub(super) fn redacted(path: PathBuf) -> PathBuf {
    match path.to_str() {
        Some(url) if crate::remote::is_url(url) => PathBuf::from(crate::remote::redact(url)),
        _ => path,
    }
}

/// Whether `location` is a plain `http://` URL, which crosses the network unencrypted.
pub fn is_plain_http(location: &str) -> bool {
    location.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

/// The one-line warning shown for a plain `http://` slide.
pub const PLAIN_HTTP_WARNING: &str = "Not encrypted: this slide comes over plain http://, readable on the network.";

impl ViewerApp {
    /// File > Open URL…
    pub fn open_url_dialog(&mut self) {
        self.url_dialog = Some(UrlDialog::default());
    }

    /// Show File > Open URL… while it is open; Open (or Enter) asks for the slide, which opens
    /// in a tab on a worker like any other.
    pub(super) fn show_url_dialog(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.url_dialog else { return };
        let (mut open, mut close) = (false, false);
        egui::Window::new("Open URL")
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                ui.label("A slide on a web server that answers range requests, or in S3:");
                let label = ui.label("URL");
                let field = egui::TextEdit::singleline(&mut dialog.text)
                    .hint_text("https://server/path/slide.svs  or  s3://bucket/key")
                    .desired_width(460.0);
                let response = ui.add(field).labelled_by(label.id);
                if !dialog.focused {
                    response.request_focus();
                    dialog.focused = true;
                }
                if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    open = true;
                }
                if is_plain_http(dialog.text.trim()) {
                    Level::Warning.label(ui, PLAIN_HTTP_WARNING);
                }
                ui.weak("Open recent keeps the address without its query string or credentials.");
                if let Some(e) = &dialog.error {
                    Level::Error.label(ui, e.as_str());
                }
                ui.horizontal(|ui| {
                    open |= ui.button("Open").clicked();
                    close |= ui.button("Cancel").clicked();
                });
            });
        if ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            close = true;
        }
        if open {
            let text = dialog.text.trim();
            if crate::remote::is_url(text) {
                self.commands.push(AppCommand::OpenSlide(PathBuf::from(text)));
                close = true;
            } else {
                dialog.error = Some("Not a URL: type an address starting with https://, http:// or s3://.".into());
                dialog.focused = false;
            }
        }
        if close {
            self.url_dialog = None;
        }
    }

    /// File > Open from PACS…, starting with the remembered server.
    pub fn open_pacs(&mut self) {
        if self.pacs.is_none() {
            self.pacs = Some(super::pacs::PacsWindow::new(&self.pacs_server, self.pacs_credentials.take()));
        }
    }

    /// Show File > Open from PACS… while it is open; a series chosen there opens like a URL
    /// typed into File > Open URL….
    pub(super) fn show_pacs(&mut self, ctx: &egui::Context) {
        let Some(window) = &mut self.pacs else { return };
        match window.show(ctx) {
            PacsEvent::None => {}
            PacsEvent::Remember(server) => self.pacs_server = crate::remote::redact(&server),
            PacsEvent::Closed => self.close_pacs(),
            PacsEvent::Open(url) => {
                self.close_pacs();
                self.commands.push(AppCommand::OpenSlide(url));
            }
        }
    }

    fn close_pacs(&mut self) {
        if let Some(window) = self.pacs.take() {
            self.pacs_credentials = window.into_credentials();
        }
    }

    /// Put a slide that opened at the top of Open recent (its canonical path, once; a URL
    /// without credentials, query string or fragment).
    pub(super) fn remember_recent(&mut self, path: PathBuf) {
        let path = redacted(path);
        self.recent.retain(|p| p != &path);
        self.recent.insert(0, path);
        self.recent.truncate(RECENT_MAX);
    }

    /// Check Open recent's files on a worker (at start, and when the menu is shown again later).
    pub(super) fn check_recent(&mut self, ctx: &egui::Context) {
        if self.recent_check.is_some() || self.recent_checked.is_some_and(|t| t.elapsed().as_secs() < 5) {
            return;
        }
        self.recent_checked = Some(Instant::now());
        self.recent_check = Some(super::file_browser::check_missing(self.recent.clone(), ctx));
    }

    pub(super) fn poll_recent_check(&mut self) {
        let Some(job) = &mut self.recent_check else { return };
        let Some(missing) = job.try_take() else { return };
        self.recent_check = None;
        // A check that stopped drops nothing: the next one runs when the menu is shown again.
        let missing = missing.unwrap_or_default();
        if missing.is_empty() {
            return;
        }
        self.recent.retain(|p| !missing.contains(p));
        let names: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
        self.recent_note =
            Some(Message::warning(format!("Removed from Open recent, file missing: {}", names.join(", "))));
    }

    /// File > Open: the desktop's picker on a worker, or the built-in browser when there is
    /// none (or `WSIVIEW_FILE_DIALOG=builtin`).
    pub(super) fn pick_file(&mut self, ctx: &egui::Context) {
        if self.file_dialog == FileDialogMode::Builtin {
            self.open_file_browser("Built-in file browser (WSIVIEW_FILE_DIALOG=builtin).".into(), ctx);
            return;
        }
        let start = self.browse_start();
        self.dialog = Some(Job::spawn(ctx, move || {
            let start = (!start.as_os_str().is_empty()).then_some(start);
            super::file_browser::system_pick(start)
        }));
    }

    /// Where browsing starts: the active slide's folder, else the last slide's, else the current one.
    pub(super) fn browse_start(&self) -> PathBuf {
        let local = |p: &PathBuf| !is_url_path(p);
        self.active_tab()
            .map(|t| t.path.clone())
            .filter(local)
            .or_else(|| self.recent.iter().find(|p| local(p)).cloned())
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default()
    }

    pub(super) fn open_file_browser(&mut self, note: String, ctx: &egui::Context) {
        self.file_browser = Some(FileBrowser::new(self.browse_start(), note, ctx));
    }

    pub(super) fn poll_file_dialogs(&mut self, ctx: &egui::Context) {
        if let Some(job) = &mut self.dialog {
            if let Some(picked) = job.try_take() {
                self.dialog = None;
                match picked.unwrap_or_else(|stopped| Picked::Unavailable(stopped.to_string())) {
                    Picked::File(path) => self.commands.push(AppCommand::OpenSlide(path)),
                    Picked::Cancelled => {}
                    Picked::Unavailable(why) => {
                        self.open_file_browser(format!("No desktop file picker: {why}. Choose a slide here."), ctx)
                    }
                }
            }
        }
        if let Some(browser) = &mut self.file_browser {
            match browser.show(ctx) {
                BrowserEvent::None => {}
                BrowserEvent::Closed => self.file_browser = None,
                BrowserEvent::Open(path) => {
                    self.file_browser = None;
                    self.commands.push(AppCommand::OpenSlide(path));
                }
            }
        }
    }

    /// Ask for a file and read it on a worker; the result is merged in `poll_annotation_job`.
    pub(super) fn import_annotations(&mut self, ctx: &egui::Context) {
        self.start_import(ctx, || {
            rfd::FileDialog::new()
                .add_filter("Annotations", &["geojson", "json", "xml"])
                .add_filter("All files", &["*"])
                .pick_file()
        });
    }

    /// Import `file` into the active slide, read on a worker (File > Import without the dialog).
    pub fn import_annotations_from(&mut self, file: PathBuf, ctx: &egui::Context) {
        self.start_import(ctx, move || Some(file));
    }

    fn start_import(&mut self, ctx: &egui::Context, pick: impl FnOnce() -> Option<PathBuf> + Send + 'static) {
        let Some(tab) = self.tabs.get(self.active) else { return };
        let job = Job::spawn(ctx, move || {
            pick().map(|path| {
                let read = crate::annotations::store::read_any(&path).map_err(|e| e.to_string());
                (path, read)
            })
        });
        self.annotation_job = Some(AnnotationJob::Import(tab.path.clone(), job));
    }

    pub(super) fn export_annotations(&mut self, ctx: &egui::Context) {
        let Some(view) = self.active_view() else { return };
        let snapshot = view.annotations.doc.snapshot();
        let (dir, name) =
            self.active_tab().map(|t| super::file_browser::export_suggestion(&t.path)).unwrap_or_default();
        let classes = self.classes.clone();
        let job = Job::spawn(ctx, move || {
            let mut dialog = rfd::FileDialog::new()
                .add_filter("QuPath GeoJSON", &["geojson"])
                .add_filter("ASAP XML", &["xml"])
                .set_file_name(name);
            if let Some(dir) = dir {
                dialog = dialog.set_directory(dir);
            }
            dialog.save_file().map(|path| {
                crate::annotations::store::write_any(&path, &snapshot, &classes)
                    .map(|()| format!("Exported {} annotations to {}", snapshot.len(), path.display()))
                    .map_err(|e| e.to_string())
            })
        });
        self.annotation_job = Some(AnnotationJob::Export(job));
    }

    pub(super) fn poll_annotation_job(&mut self) {
        let Some(job) = &mut self.annotation_job else { return };
        match job {
            AnnotationJob::Import(slide, job) => {
                let Some(result) = job.try_take() else { return };
                let slide = slide.clone();
                self.annotation_job = None;
                let result = match result {
                    Ok(result) => result,
                    Err(stopped) => Some((slide.clone(), Err(stopped.to_string()))),
                };
                let Some((path, read)) = result else { return };
                match read {
                    Ok(import) => {
                        let text = format!("Imported from {}: {}", path.display(), import.summary());
                        let level = if import.skipped > 0 || import.truncated { Level::Warning } else { Level::Info };
                        self.annotation_message = Some(Message { level, text });
                        self.add_imported(&slide, import);
                    }
                    // A failed import leaves the slide's annotations as they were.
                    Err(e) => self.annotation_message = Some(Message::error(format!("Import failed: {e}"))),
                }
            }
            AnnotationJob::Export(job) => {
                let Some(result) = job.try_take() else { return };
                self.annotation_job = None;
                match result.unwrap_or_else(|stopped| Some(Err(stopped.to_string()))) {
                    Some(Ok(text)) => self.annotation_message = Some(Message::info(text)),
                    Some(Err(e)) => self.annotation_message = Some(Message::error(format!("Export failed: {e}"))),
                    None => {}
                }
            }
        }
    }

    /// Add imported annotations to a slide's document (one undo step) and their classes to the list.
    pub fn add_imported(&mut self, slide: &Path, import: crate::annotations::Import) {
        self.merge_classes(import.classes);
        if let Some(view) = self.tabs.iter_mut().find(|t| t.path == slide).and_then(|t| t.view_mut()) {
            view.annotations.doc.add_all(import.annotations);
        }
    }
}

impl ViewerApp {
    /// The export picture of the active slide's view, or of every cell shown (`all_cells`), laid
    /// out as on screen last frame. `None` when no slide is shown.
    fn view_export_plan(&self, all_cells: bool, ctx: &egui::Context) -> Option<super::export_view::ExportPlan> {
        use super::export_view::{CellPicture, ExportPlan};
        let rect_of = |v: &super::slide_view::SlideView| {
            let r = v.view_rect();
            egui::Rect::from_min_size(egui::pos2(r.x as f32, r.y as f32), egui::vec2(r.width as f32, r.height as f32))
        };
        let shown: Vec<usize> = if all_cells && self.layout != super::grid::Layout::Single && self.tabs.len() > 1 {
            super::grid::shown_tabs(self.tabs.len(), self.active, self.layout.cells()).collect()
        } else {
            vec![self.active]
        };
        let cells: Vec<CellPicture> = shown
            .into_iter()
            .filter_map(|i| {
                let tab = self.tabs.get(i)?;
                let v = tab.view()?;
                let name = tab.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Some(CellPicture { slide: v.slide.clone(), camera: v.camera, rect: rect_of(v), name })
            })
            .collect();
        let area = cells.iter().fold(egui::Rect::NOTHING, |a, c| a.union(c.rect));
        (!cells.is_empty() && area.is_positive()).then(|| ExportPlan::new(ctx, area, cells))
    }

    /// File > Export view…: ask where, then write the picture (both on a worker).
    pub(super) fn export_view(&mut self, all_cells: bool, ctx: &egui::Context) {
        let Some(plan) = self.view_export_plan(all_cells, ctx) else { return };
        let slides: Vec<PathBuf> = plan.cells.iter().map(|c| PathBuf::from(&c.name)).collect();
        let dir = self.active_tab().and_then(|t| super::file_browser::export_suggestion(&t.path).0);
        let name = super::export_view::suggested_name(&slides);
        self.view_export = Some(Job::spawn(ctx, move || {
            let mut dialog = rfd::FileDialog::new().add_filter("PNG", &["png"]).set_file_name(&name);
            if let Some(dir) = &dir {
                dialog = dialog.set_directory(dir);
            }
            let started = Instant::now();
            match dialog.save_file() {
                Some(path) => Some(super::export_view::export(&plan, &path)),
                // Answered at once: no picker was shown (a bare X server, a remote session
                // without a portal). Written beside the slide, or in the app's folder, and said.
                None if started.elapsed() < super::file_browser::NO_PICKER_WITHIN => {
                    let folder = dir
                        .filter(|d| crate::files::folder_writable(d))
                        .or_else(|| crate::files::app_data_dir().map(|d| d.join("exports")));
                    let Some(folder) = folder else {
                        return Some(Err("Not exported: no file picker, and no folder to write to".into()));
                    };
                    let path = super::export_view::unused_path(&folder, &name);
                    Some(
                        std::fs::create_dir_all(&folder)
                            .map_err(|e| format!("Not exported: {}: {e}", folder.display()))
                            .and_then(|()| super::export_view::export(&plan, &path))
                            .map(|text| format!("{text} (this desktop has no file picker)")),
                    )
                }
                None => None,
            }
        }));
    }

    /// Write the export picture to `path` without asking (what File > Export view… does once a
    /// file is chosen; for scripts and tests).
    pub fn export_view_to(&mut self, path: PathBuf, all_cells: bool, ctx: &egui::Context) {
        let Some(plan) = self.view_export_plan(all_cells, ctx) else { return };
        self.view_export = Some(Job::spawn(ctx, move || Some(super::export_view::export(&plan, &path))));
    }

    /// A view export running on a worker.
    pub fn is_exporting_view(&self) -> bool {
        self.view_export.is_some()
    }

    pub(super) fn poll_view_export(&mut self) {
        let Some(job) = &mut self.view_export else { return };
        let Some(result) = job.try_take() else { return };
        self.view_export = None;
        self.export_message = match result {
            Ok(Some(Ok(text))) => Some(Message::info(text)),
            Ok(Some(Err(e))) => Some(Message::error(e)),
            Ok(None) => None,
            Err(stopped) => Some(Message::error(format!("Not exported: {stopped}"))),
        };
    }

    /// File > Import detections…: pick a file on a worker; it becomes the active slide's
    /// detection layer when picked ([`Self::poll_detection_pick`]).
    pub(super) fn import_detections(&mut self, ctx: &egui::Context) {
        let Some(tab) = self.tabs.get(self.active) else { return };
        let job = Job::spawn(ctx, || {
            rfd::FileDialog::new()
                .add_filter("QuPath GeoJSON", &["geojson", "json"])
                .add_filter("All files", &["*"])
                .pick_file()
        });
        self.detection_pick = Some((tab.path.clone(), job));
    }

    /// Read `file` as the active slide's detection layer, on a worker (Import detections without
    /// the dialog; `wsiview view --annotations`).
    pub fn import_detections_from(&mut self, file: &Path, ctx: &egui::Context) {
        if let Some(view) = self.active_view_mut() {
            view.load_detections(file, ctx);
        }
    }

    /// `--annotations`: read the file as the first slide's detection layer once that slide is
    /// open (whichever tab is active then); when it cannot be opened, or its tab is closed
    /// before, the file is dropped and the annotation message says so.
    pub(super) fn attach_pending_detections(&mut self, ctx: &egui::Context) {
        let Some(file) = self.pending_detections.clone() else { return };
        if self.pending_detections_for.is_none() {
            self.pending_detections_for = self.tabs.first().map(|t| t.path.clone());
        }
        let Some(slide) = self.pending_detections_for.clone() else { return };
        let why_not = match self.tabs.iter_mut().find(|t| t.path == slide).map(|t| &mut t.state) {
            Some(TabState::Opening(_)) => return,
            Some(TabState::Open(view)) => {
                view.load_detections(&file, ctx);
                None
            }
            Some(TabState::Failed(_)) => Some("the slide could not be opened"),
            None => Some("the slide was closed"),
        };
        self.pending_detections = None;
        self.pending_detections_for = None;
        if let Some(why) = why_not {
            self.annotation_message = Some(Message::warning(format!(
                "Detections {} not read over {}: {why}",
                file.display(),
                slide.display()
            )));
        }
    }

    pub(super) fn poll_detection_pick(&mut self, ctx: &egui::Context) {
        let Some((slide, job)) = &mut self.detection_pick else { return };
        let Some(picked) = job.try_take() else { return };
        let slide = slide.clone();
        self.detection_pick = None;
        let Ok(Some(file)) = picked else { return };
        // The slide the import was asked for, even if another tab is active now.
        if let Some(view) = self.tabs.iter_mut().find(|t| t.path == slide).and_then(|t| t.view_mut()) {
            view.load_detections(&file, ctx);
        }
    }
}
