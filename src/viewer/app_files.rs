//! The app's file chores, kept apart from the window code: File > Open (the desktop's picker or
//! the built-in browser) and Open recent (canonical paths of slides that opened; missing files
//! dropped). Everything that touches a file runs on a worker; these functions poll [`Job`]s.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::app::{ViewerApp, RECENT_MAX};
use super::command::AppCommand;
use super::file_browser::{BrowserEvent, FileBrowser, FileDialogMode, Picked};
use super::job::Job;
use super::message::Message;

impl ViewerApp {
    /// Put a slide that opened at the top of Open recent (its canonical path, once).
    pub(super) fn remember_recent(&mut self, path: PathBuf) {
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
        self.active_tab()
            .map(|t| t.path.clone())
            .or_else(|| self.recent.first().cloned())
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
}
