//! File > Open: the desktop's file picker (rfd: the XDG portal or GTK on Linux), and where none
//! can be shown, a simple built-in browser in egui, so the menu item never silently does nothing.
//! Also the folder checks behind Open recent. Every listing, canonicalisation and existence check
//! runs in a [`Job`] on a worker thread; the window only polls it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::job::Job;
use super::message::Level;

/// How File > Open asks for a slide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileDialogMode {
    /// The desktop's file picker; the built-in browser when it cannot be shown.
    System,
    /// Always the built-in browser (`WSIVIEW_FILE_DIALOG=builtin`).
    Builtin,
}

impl FileDialogMode {
    /// From `WSIVIEW_FILE_DIALOG` (`builtin` or `system`, the default).
    pub fn from_env() -> Self {
        match std::env::var("WSIVIEW_FILE_DIALOG").as_deref() {
            Ok("builtin") => FileDialogMode::Builtin,
            _ => FileDialogMode::System,
        }
    }
}

pub use crate::slide::{is_slide_name, SLIDE_EXTENSIONS};

/// What the desktop's picker gave.
#[derive(Debug)]
pub enum Picked {
    File(PathBuf),
    Cancelled,
    /// No picker could be shown; why.
    Unavailable(String),
}

/// A picker that answers "nothing chosen" faster than this was not shown to anyone.
pub(super) const NO_PICKER_WITHIN: Duration = Duration::from_millis(400);

/// Ask the desktop's picker for a slide. Call from a worker: it blocks until the user answers.
pub fn system_pick(start: Option<PathBuf>) -> Picked {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Picked::Unavailable("no desktop session (DISPLAY and WAYLAND_DISPLAY are unset)".into());
    }
    let started = Instant::now();
    let mut dialog = rfd::FileDialog::new().add_filter("Slides", SLIDE_EXTENSIONS).add_filter("All files", &["*"]);
    if let Some(dir) = start {
        dialog = dialog.set_directory(dir);
    }
    match dialog.pick_file() {
        Some(path) => Picked::File(path),
        // rfd returns None at once when there is no file-chooser portal (or GTK) to ask.
        None if started.elapsed() < NO_PICKER_WITHIN => Picked::Unavailable(
            "the desktop's file picker did not open (no file-chooser portal on this session)".into(),
        ),
        None => Picked::Cancelled,
    }
}

/// One row of the built-in browser.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub is_dir: bool,
}

/// A folder as listed by the worker: its canonical path, sub-folders then slides, by name.
#[derive(Debug)]
pub struct Listing {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
}

/// List `dir` (empty: the current folder) on this thread: folders and slides, hidden ones left out.
fn list_folder(dir: &Path) -> Result<Listing, String> {
    let dir = if dir.as_os_str().is_empty() {
        std::env::current_dir().map_err(|e| format!("current folder: {e}"))?
    } else {
        dir.to_path_buf()
    };
    let dir = std::fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let read = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<Entry> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            // Follows symbolic links, so a linked folder opens like a folder.
            let is_dir = path.is_dir();
            (!name.starts_with('.') && (is_dir || is_slide_name(&name))).then_some(Entry { name, path, is_dir })
        })
        .collect();
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase())));
    Ok(Listing { dir, entries })
}

/// What the built-in browser did this frame.
#[derive(Debug, PartialEq)]
pub enum BrowserEvent {
    None,
    Open(PathBuf),
    Closed,
}

/// The built-in file browser: a folder field, the folder's sub-folders and slides (read on a
/// worker), double-click or Enter to open.
pub struct FileBrowser {
    /// Why it is shown (no desktop picker, or asked for).
    pub note: String,
    pub folder_text: String,
    pub dir: Option<PathBuf>,
    pub entries: Vec<Entry>,
    pub selected: Option<usize>,
    pub error: Option<String>,
    listing: Option<Job<Result<Listing, String>>>,
}

impl FileBrowser {
    /// Start in `start` (empty: the current folder); the listing arrives from a worker.
    pub fn new(start: PathBuf, note: String, ctx: &egui::Context) -> Self {
        let mut b = FileBrowser {
            note,
            folder_text: start.display().to_string(),
            dir: None,
            entries: Vec::new(),
            selected: None,
            error: None,
            listing: None,
        };
        b.go(start, ctx);
        b
    }

    /// List `dir` on a worker.
    pub fn go(&mut self, dir: PathBuf, ctx: &egui::Context) {
        self.listing = Some(Job::spawn(ctx, move || list_folder(&dir)));
        self.selected = None;
    }

    pub fn is_listing(&self) -> bool {
        self.listing.is_some()
    }

    fn poll(&mut self) {
        let Some(job) = &mut self.listing else { return };
        match job.try_take() {
            None => {}
            Some(Ok(Ok(listing))) => {
                self.listing = None;
                self.folder_text = listing.dir.display().to_string();
                self.dir = Some(listing.dir);
                self.entries = listing.entries;
                self.selected = None;
                self.error = None;
            }
            Some(Ok(Err(e))) => {
                self.listing = None;
                self.error = Some(e);
            }
            Some(Err(stopped)) => {
                self.listing = None;
                self.error = Some(format!("the folder could not be read: {stopped}"));
            }
        }
    }

    /// Enter a folder or open a slide.
    fn activate(&mut self, i: usize, ctx: &egui::Context) -> BrowserEvent {
        let Some(entry) = self.entries.get(i).cloned() else { return BrowserEvent::None };
        if entry.is_dir {
            self.go(entry.path, ctx);
            BrowserEvent::None
        } else {
            BrowserEvent::Open(entry.path)
        }
    }

    /// The window; call every frame while it is open.
    pub fn show(&mut self, ctx: &egui::Context) -> BrowserEvent {
        self.poll();
        let mut open = true;
        let mut event = BrowserEvent::None;
        // Enter in the folder field goes there; it does not also open the selected entry.
        let mut folder_entered = false;
        egui::Window::new("Open slide").open(&mut open).default_size([520.0, 420.0]).collapsible(false).show(
            ctx,
            |ui| {
                if !self.note.is_empty() {
                    Level::Warning.label(ui, self.note.as_str());
                }
                ui.horizontal(|ui| {
                    let label = ui.label("Folder");
                    let field = ui.add(
                        egui::TextEdit::singleline(&mut self.folder_text).desired_width(ui.available_width() - 60.0),
                    );
                    let field = field.labelled_by(label.id);
                    if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                        let dir = PathBuf::from(self.folder_text.trim());
                        self.go(dir, ctx);
                        folder_entered = true;
                    }
                    let parent = self.dir.as_deref().and_then(Path::parent).map(Path::to_path_buf);
                    if ui
                        .add_enabled(parent.is_some(), egui::Button::new("Up"))
                        .on_hover_text("The parent folder")
                        .clicked()
                    {
                        if let Some(p) = parent {
                            self.go(p, ctx);
                        }
                    }
                });
                if let Some(e) = &self.error {
                    Level::Error.label(ui, e.as_str());
                }
                if self.listing.is_some() {
                    ui.spinner();
                }
                let mut activate = None;
                egui::ScrollArea::vertical().max_height(300.0).auto_shrink([false, true]).show(ui, |ui| {
                    if self.entries.is_empty() && self.listing.is_none() && self.error.is_none() {
                        ui.label("No folders or slides here.");
                    }
                    for (i, entry) in self.entries.iter().enumerate() {
                        let text = if entry.is_dir { format!("{}/", entry.name) } else { entry.name.clone() };
                        let r = ui.selectable_label(self.selected == Some(i), text);
                        if r.clicked() {
                            self.selected = Some(i);
                        }
                        if r.double_clicked() {
                            activate = Some(i);
                        }
                    }
                });
                let typing = ui.ctx().text_edit_focused();
                if !typing && !folder_entered && activate.is_none() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    activate = self.selected;
                }
                ui.separator();
                ui.horizontal(|ui| {
                    let file = self.selected.and_then(|i| self.entries.get(i)).is_some_and(|e| !e.is_dir);
                    if ui.add_enabled(file, egui::Button::new("Open")).clicked() {
                        activate = self.selected;
                    }
                    if ui.button("Cancel").clicked() {
                        event = BrowserEvent::Closed;
                    }
                    ui.label(format!(
                        "Slides: {}",
                        SLIDE_EXTENSIONS.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(" ")
                    ));
                });
                if let Some(i) = activate {
                    event = self.activate(i, ctx);
                }
            },
        );
        if !open {
            event = BrowserEvent::Closed;
        }
        event
    }
}

/// The entries of `recent` whose file is gone, checked on a worker. URLs are never checked
/// (no network from this check) and so never dropped.
pub fn check_missing(recent: Vec<PathBuf>, ctx: &egui::Context) -> Job<Vec<PathBuf>> {
    Job::spawn(ctx, move || recent.into_iter().filter(|p| !is_url_path(p) && !p.is_file()).collect())
}

/// Whether a path of Open recent or a tab is really a URL (a remote slide's redacted address).
pub fn is_url_path(path: &Path) -> bool {
    path.to_str().is_some_and(crate::remote::is_url)
}

/// Where Export annotations suggests writing: beside the slide, named after it
/// (`case.svs` → `case.geojson`, `case.ome.tif` → `case.geojson`).
pub fn export_suggestion(slide: &Path) -> (Option<PathBuf>, String) {
    let dir = slide.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf);
    let stem = slide.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = stem.strip_suffix(".ome").unwrap_or(&stem).to_string();
    let stem = if stem.is_empty() { "annotations".to_string() } else { stem };
    (dir, format!("{stem}.geojson"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_is_named_after_the_slide_beside_it() {
        assert_eq!(
            export_suggestion(Path::new("/data/case.svs")),
            (Some(PathBuf::from("/data")), "case.geojson".to_string())
        );
        assert_eq!(export_suggestion(Path::new("/d/x.ome.tif")).1, "x.geojson");
        assert_eq!(export_suggestion(Path::new("case.svs")), (None, "case.geojson".to_string()));
    }

    #[test]
    fn slides_are_recognised_by_extension() {
        assert!(is_slide_name("a.SVS") && is_slide_name("b.ome.tiff") && !is_slide_name("notes.txt"));
    }
}
