//! The application window: tabs of open slides, menus, recent files, drag and drop, the side
//! panel (properties, associated images) and the status bar. It composes the panels: they ask for
//! changes with [`AppCommand`]s, applied once at the end of each frame. Everything that reads a
//! file — opening a slide, decoding an associated image — runs in a [`Job`]. Scripted screenshot
//! and benchmark runs are not here but in [`super::scripted`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use egui::{ColorImage, RichText, TextureHandle};

use super::annotation_panels::{annotation_section, toolbar, MeasurementTable};
use super::app_files::AnnotationJob;
use super::command::{AppCommand, CommandQueue};
use super::file_browser::{FileBrowser, FileDialogMode, Picked};
use super::job::Job;
use super::message::{Level, Message};
use super::report_panel::{ReportPanel, ReviewerDefaults};
use super::slide_view::{OpenedSlide, SlideView};
use crate::annotations::AnnotationClass;
use crate::tiles::TileCache;

/// How a slide tab is doing.
pub enum TabState {
    /// The file is being read on a worker.
    Opening(Job<crate::Result<OpenedSlide>>),
    Open(Box<SlideView>),
    Failed(String),
}

/// An associated image loading or loaded for the side panel.
enum Associated {
    Loading(Job<Result<ColorImage, String>>),
    Ready(TextureHandle),
    Failed(String),
}

pub struct SlideTab {
    /// The slide's path as given, or a remote slide's [`redact`](crate::remote::redact)ed URL:
    /// what the tab shows and what identifies it.
    pub path: PathBuf,
    pub state: TabState,
    /// When opening started, and the bytes the process had received from the network then
    /// (the opening state shows what a remote slide has fetched so far).
    opening_since: (Instant, u64),
    associated: Vec<(String, Associated)>,
    /// Label and macro carry patient identifiers: shown only on request.
    show_identifiers: bool,
    pub table: MeasurementTable,
    /// The case report, started when the report panel is first shown for this slide.
    pub report: Option<ReportPanel>,
}

impl SlideTab {
    fn title(&self) -> String {
        self.path.file_name().map_or_else(|| self.path.display().to_string(), |n| n.to_string_lossy().into_owned())
    }

    pub fn view(&self) -> Option<&SlideView> {
        match &self.state {
            TabState::Open(v) => Some(v),
            _ => None,
        }
    }

    pub fn view_mut(&mut self) -> Option<&mut SlideView> {
        match &mut self.state {
            TabState::Open(v) => Some(v),
            _ => None,
        }
    }
}

/// Settings kept between runs.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Persisted {
    pub recent: Vec<PathBuf>,
    /// Annotation classes as the user edited them.
    #[serde(default)]
    pub classes: Vec<AnnotationClass>,
    /// Name, role and site, filled into new reports.
    #[serde(default)]
    pub reviewer: ReviewerDefaults,
    /// File > Open from PACS…'s server address, redacted (never credentials).
    #[serde(default)]
    pub pacs_server: String,
    /// File > Report registry…: the registry's URI or keywords, never a password (empty: the
    /// `WSIVIEW_REGISTRY` variable).
    #[serde(default)]
    pub registry: String,
}

pub struct ViewerApp {
    pub tabs: Vec<SlideTab>,
    pub active: usize,
    pub recent: Vec<PathBuf>,
    cache: Arc<TileCache>,
    pub(super) dialog: Option<Job<Picked>>,
    /// The built-in file browser, where the desktop has no file picker (or it is asked for).
    pub file_browser: Option<FileBrowser>,
    /// How File > Open asks for a file (`WSIVIEW_FILE_DIALOG`).
    pub file_dialog: FileDialogMode,
    /// Help > Keyboard shortcuts is open.
    pub show_shortcuts: bool,
    /// Open recent's existence check running on a worker, and when the last one started.
    pub(super) recent_check: Option<Job<Vec<PathBuf>>>,
    pub(super) recent_checked: Option<Instant>,
    /// Entries dropped from Open recent because their file is gone, until dismissed.
    pub recent_note: Option<Message>,
    show_side_panel: bool,
    pub classes: Vec<AnnotationClass>,
    pub show_measurements: bool,
    pub(super) annotation_job: Option<AnnotationJob>,
    /// The last import or export result.
    pub annotation_message: Option<Message>,
    pub show_report: bool,
    pub reviewer: ReviewerDefaults,
    /// Asking before closing with unsaved report changes: the window, or one tab.
    pub closing: Option<Closing>,
    /// The user chose to close although something is unsaved (or everything is saved now).
    allow_close: bool,
    /// Where the report, side and measurement panels were drawn last frame: a press there takes
    /// the keyboard from the slide (keys that miss a text field must not zoom the slide).
    form_rects: Vec<egui::Rect>,
    /// What panels asked for this frame; applied at its end.
    pub(super) commands: CommandQueue,
    /// File > Open URL… while it is open.
    pub url_dialog: Option<super::app_files::UrlDialog>,
    /// File > Open from PACS… while it is open.
    pub pacs: Option<super::pacs::PacsWindow>,
    /// The last DICOMweb server searched, redacted: what File > Open from PACS… starts with.
    pub pacs_server: String,
    /// `user:password@` typed into File > Open from PACS… for one server: kept in memory until
    /// the app exits, never persisted.
    pub(super) pacs_credentials: Option<super::pacs::SessionCredentials>,
    /// The report registry setting and the publish queue's runs.
    pub publisher: super::publisher::Publisher,
    /// View > Layout: one slide, or several side by side (issue 18).
    pub layout: super::grid::Layout,
    /// In a layout of several: moving one slide moves the others by the same distance in µm.
    pub sync_navigation: bool,
    /// Each tab's camera at the end of the last frame (by tab index), to see how the active slide
    /// moved since.
    grid_cameras: Vec<Option<super::camera::Camera>>,
    /// "Align here" under way: the level-0 point clicked in each slide so far (by tab index), in
    /// click order; the first is the reference.
    pub aligning: Option<Vec<(usize, [f64; 2])>>,
    /// The counting field and grid settings (side panel).
    pub counting: super::counting_panel::CountingSettings,
    /// File > Export view… running on a worker (none: cancelled).
    pub(super) view_export: Option<super::job::Job<Option<Result<String, String>>>>,
    /// A detection layer to read over the first slide to open (`--annotations`).
    pub pending_detections: Option<PathBuf>,
    /// The slide `pending_detections` is for, by its tab's path: the first tab once there is one
    /// (the first slide of `wsiview view` or `wsiview case`).
    pub(super) pending_detections_for: Option<PathBuf>,
    /// Import detections: the file picker, running on a worker, for the slide at this path.
    pub(super) detection_pick: Option<(PathBuf, super::job::Job<Option<PathBuf>>)>,
    /// How the last view export went.
    pub export_message: Option<Message>,
    /// View > Case list.
    pub show_cases: bool,
    /// The case list panel: the cases under a folder tree.
    pub case_list: super::case_list::CaseList,
    /// The case whose slides are open as a case (`wsiview case`, or opened from the case list).
    pub current_case: Option<crate::report::case::Case>,
    /// A move to this case, waiting for the current case's reports to be saved.
    pub(super) case_switch: Option<crate::report::case::Case>,
    /// Why the last move to another case did not happen, or that the list ended.
    pub case_message: Option<Message>,
}

/// What is being closed while report changes are unsaved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseTarget {
    Window,
    /// A tab, by its slide's path.
    Tab,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Closing {
    pub target: CloseTarget,
    /// The tab's slide, for `CloseTarget::Tab`.
    pub tab: Option<PathBuf>,
    /// "Save and close" was chosen: close as soon as everything is saved.
    pub when_saved: bool,
}

pub(super) const RECENT_MAX: usize = 10;

impl ViewerApp {
    pub fn new(cache_bytes: u64) -> Self {
        ViewerApp {
            tabs: Vec::new(),
            layout: super::grid::Layout::Single,
            sync_navigation: true,
            grid_cameras: Vec::new(),
            show_cases: false,
            view_export: None,
            detection_pick: None,
            pending_detections: None,
            pending_detections_for: None,
            export_message: None,
            counting: Default::default(),
            aligning: None,
            case_list: Default::default(),
            current_case: None,
            case_switch: None,
            case_message: None,
            active: 0,
            recent: Vec::new(),
            cache: Arc::new(TileCache::new(cache_bytes)),
            dialog: None,
            file_browser: None,
            file_dialog: FileDialogMode::from_env(),
            show_shortcuts: false,
            recent_check: None,
            recent_checked: None,
            recent_note: None,
            show_side_panel: true,
            classes: crate::annotations::default_classes(),
            show_measurements: false,
            annotation_job: None,
            annotation_message: None,
            show_report: false,
            reviewer: ReviewerDefaults::default(),
            closing: None,
            allow_close: false,
            form_rects: Vec::new(),
            commands: CommandQueue::default(),
            url_dialog: None,
            pacs: None,
            pacs_server: String::new(),
            pacs_credentials: None,
            publisher: super::publisher::Publisher::new(),
        }
    }

    pub fn restore(&mut self, persisted: Persisted) {
        // Redacted again: an entry saved by an older version may carry a query string.
        self.recent = persisted.recent.into_iter().map(super::app_files::redacted).collect();
        self.recent.dedup();
        // Checked for missing files on a worker at the next frame.
        self.recent_checked = None;
        self.reviewer = persisted.reviewer;
        // Redacted again: the settings file may have been edited by hand.
        self.pacs_server = crate::remote::redact(persisted.pacs_server.trim());
        if !persisted.classes.is_empty() {
            self.classes = persisted.classes;
        }
        // Checked again: the settings file may have been edited by hand (never a password).
        self.publisher.setting = super::publisher::Publisher::kept_setting(&persisted.registry);
    }

    pub fn persisted(&self) -> Persisted {
        Persisted {
            recent: self.recent.clone(),
            classes: self.classes.clone(),
            reviewer: self.reviewer.clone(),
            pacs_server: crate::remote::redact(&self.pacs_server),
            registry: super::publisher::Publisher::kept_setting(&self.publisher.setting),
        }
    }

    pub fn cache(&self) -> &Arc<TileCache> {
        &self.cache
    }

    /// Open a slide in a new tab (or switch to it if already open); the file is read on a worker.
    /// `path` may be an `http(s)://` or `s3://` URL: the whole URL goes to the worker only, and
    /// the tab knows the slide by its redacted form.
    pub fn open(&mut self, path: PathBuf, ctx: &egui::Context) {
        let shown = super::app_files::redacted(path.clone());
        if let Some(i) = self.tabs.iter().position(|t| t.path == shown && !matches!(t.state, TabState::Failed(_))) {
            self.active = i;
            return;
        }
        let cache = self.cache.clone();
        let job = Job::spawn_with_progress(ctx, move |progress| {
            OpenedSlide::load_with_progress(&path, cache, |stage| progress.set(stage, super::slide_view::OPEN_STAGES))
        });
        self.tabs.push(SlideTab {
            path: shown,
            state: TabState::Opening(job),
            opening_since: (Instant::now(), crate::remote::totals().1),
            associated: Vec::new(),
            show_identifiers: false,
            table: MeasurementTable::default(),
            report: None,
        });
        self.active = self.tabs.len() - 1;
    }

    pub fn active_tab(&self) -> Option<&SlideTab> {
        self.tabs.get(self.active)
    }

    pub fn active_view(&self) -> Option<&SlideView> {
        self.active_tab().and_then(|t| t.view())
    }

    pub fn active_view_mut(&mut self) -> Option<&mut SlideView> {
        self.tabs.get_mut(self.active).and_then(|t| t.view_mut())
    }

    fn poll_opening(&mut self, ctx: &egui::Context) {
        let mut opened_now = Vec::new();
        let mut found_classes = Vec::new();
        for tab in &mut self.tabs {
            if let TabState::Opening(job) = &mut tab.state {
                match job.try_take() {
                    Some(Ok(Ok(opened))) => {
                        opened_now.push(opened.canonical.clone());
                        // Classes named in the slide's annotation file join the list now, before
                        // any panel of this frame can edit (and so replace) the list.
                        found_classes.push(opened.annotations.import.classes.clone());
                        let names = opened.slide.associated_names();
                        tab.state = TabState::Open(Box::new(SlideView::new(opened, ctx)));
                        tab.associated = names.into_iter().map(|n| (n, Associated::Failed(String::new()))).collect();
                        // The thumbnail is not identifying: load it now. Label and macro wait.
                        let slide = tab.view().map(|v| v.slide.clone());
                        if let Some(slide) = slide {
                            for (name, state) in &mut tab.associated {
                                if name == "thumbnail" {
                                    *state = load_associated(slide.clone(), name.clone(), ctx);
                                }
                            }
                        }
                    }
                    Some(Ok(Err(e))) => tab.state = TabState::Failed(crate::error::printable(&e.to_string())),
                    None => {}
                    Some(Err(stopped)) => {
                        tab.state = TabState::Failed(format!("{}: opening: {stopped}", tab.path.display()))
                    }
                }
            }
            for (name, state) in &mut tab.associated {
                if let Associated::Loading(job) = state {
                    match job.try_take() {
                        Some(Ok(Ok(image))) => {
                            *state =
                                Associated::Ready(ctx.load_texture(name.clone(), image, egui::TextureOptions::LINEAR))
                        }
                        Some(Ok(Err(e))) => *state = Associated::Failed(e),
                        Some(Err(stopped)) => *state = Associated::Failed(format!("{name}: {stopped}")),
                        None => {}
                    }
                }
            }
        }
        for classes in found_classes {
            self.merge_classes(classes);
        }
        for path in opened_now {
            self.remember_recent(path);
        }
    }

    /// The whole window; called by eframe each frame, and by the UI tests.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.poll_opening(&ctx);
        self.poll_file_dialogs(&ctx);
        if self.recent_checked.is_none() && !self.recent.is_empty() {
            self.check_recent(&ctx);
        }
        self.poll_recent_check();
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).filter(|p| !p.as_os_str().is_empty()).collect()
        });
        for path in dropped {
            self.commands.push(AppCommand::OpenSlide(path));
        }
        self.sync_annotation_classes();
        self.poll_annotation_job();
        self.poll_view_export();
        self.poll_detection_pick(&ctx);
        self.attach_pending_detections(&ctx);
        self.tick_reports(&ctx);
        if ctx.input(|i| i.viewport().close_requested()) {
            self.request_close_window(&ctx);
        }
        self.take_keyboard_from_forms(&ctx);
        self.advance_case_switch(&ctx);
        let mut form_rects = Vec::new();
        self.menu_bar(ui);
        let (classes, show_table, commands) = (&self.classes, self.show_measurements, &mut self.commands);
        if let Some(view) = self.tabs.get_mut(self.active).and_then(|t| t.view_mut()) {
            egui::Panel::top("tools").show(ui, |ui| toolbar(ui, view, classes, show_table, commands));
        } else if !self.tabs.is_empty() {
            // A slide still opening, or one that failed: the tools are there but off, so the
            // slide area does not jump when the tab changes or the slide opens.
            egui::Panel::top("tools").show(ui, |ui| {
                ui.add_enabled_ui(false, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        for tool in super::annotate::Tool::ALL {
                            let _ = ui.selectable_label(false, tool.label());
                        }
                    });
                });
            });
        }
        self.status_bar(ui);
        if self.show_measurements {
            if let Some(tab) = self.tabs.get_mut(self.active) {
                if let TabState::Open(view) = &tab.state {
                    let commands = &mut self.commands;
                    let r = egui::Panel::bottom("measurements")
                        .resizable(true)
                        .default_size(220.0)
                        .show(ui, |ui| tab.table.show(ui, &view.annotations, commands));
                    form_rects.push(r.response.rect);
                }
            }
        }
        if self.show_report {
            form_rects.extend(self.report_panel(ui));
        }
        if self.show_cases {
            // The registry answers which cases of the reviewer's site are signed out: asked as
            // soon as one is configured (`wsiview case` lists before the first frame).
            let site = self.reviewer.site.trim().to_string();
            let source = self
                .publisher
                .configured()
                .filter(|_| !site.is_empty())
                .map(|(setting, origin)| super::case_list::RegistrySource { setting, origin, site: site.clone() });
            self.case_list.set_registry(source, &ctx);
            let (current, switching, commands) =
                (self.current_case.as_ref(), self.case_switch.is_some(), &mut self.commands);
            let list = &mut self.case_list;
            let r = egui::Panel::left("cases")
                .default_size(300.0)
                .resizable(true)
                .show(ui, |ui| list.show(ui, current, switching, commands));
            form_rects.push(r.response.rect);
        }
        if self.show_side_panel {
            let r = egui::Panel::right("side").default_size(280.0).resizable(true).show(ui, |ui| self.side_panel(ui));
            form_rects.push(r.response.rect);
        }
        self.form_rects = form_rects;
        // A dialog over the window has the keyboard.
        let dialog = self.closing.is_some()
            || self.url_dialog.is_some()
            || self.pacs.is_some()
            || self.publisher.dialog_open()
            || self.tabs.iter().any(|t| t.report.as_ref().is_some_and(|r| r.dialog_open()));
        if let Some(view) = self.active_view_mut() {
            view.block_keys(dialog);
        }
        self.case_keys(&ctx, dialog);
        egui::CentralPanel::default().frame(egui::Frame::NONE).show(ui, |ui| {
            self.central(ui, dialog);
            // Textures of views closed since the last paint (the last slide closed: no view
            // paints to delete them) are deleted this frame.
            if let Some(shape) = super::tile_painter::TilePainter::new(ui.ctx()).release_shape(ui.max_rect().min) {
                ui.painter().add(shape);
            }
        });
        self.close_dialog(&ctx);
        self.show_url_dialog(&ctx);
        self.show_pacs(&ctx);
        self.publisher.show_dialog(&ctx);
        super::help::shortcuts_window(&ctx, &mut self.show_shortcuts);
        self.apply_commands(&ctx);
    }

    /// Apply what panels asked for this frame, in order.
    fn apply_commands(&mut self, ctx: &egui::Context) {
        for command in self.commands.take() {
            match command {
                AppCommand::OpenSlide(path) => self.open(path, ctx),
                AppCommand::FocusAnnotation(id) => {
                    if let Some(view) = self.active_view_mut() {
                        view.focus_annotation(id);
                    }
                }
                AppCommand::SetClasses(classes) => self.classes = classes,
                AppCommand::RenameClass { from, to } => self.rename_class(&from, &to),
                AppCommand::ShowMeasurements(show) => self.show_measurements = show,
                AppCommand::SetReviewer(reviewer) => self.reviewer = reviewer,
                AppCommand::OpenCase(case) => self.open_case(case, ctx),
            }
        }
        self.sync_annotation_classes();
    }

    /// Rename class `from` to `to`: the list entry, and every object of the class on every open
    /// slide (each slide's rename is one undo step there). Refused when `to` is already a class.
    pub fn rename_class(&mut self, from: &str, to: &str) {
        if self.classes.iter().any(|c| c.name == to) {
            return;
        }
        let mut color = None;
        for c in &mut self.classes {
            if c.name == from {
                c.name = to.to_string();
                color = Some(c.color);
            }
        }
        for tab in &mut self.tabs {
            if let Some(view) = tab.view_mut() {
                view.annotations.doc.rename_class(from, to, color);
                // Saved now: a slide not shown this frame does not autosave by itself.
                view.annotations.autosave();
                if let Some(c) = view.annotations.new_class.as_mut().filter(|c| c.name == from) {
                    c.name = to.to_string();
                }
            }
        }
    }

    /// Add `classes` to the list where their name is new.
    pub(super) fn merge_classes(&mut self, classes: Vec<AnnotationClass>) {
        for c in classes {
            if !self.classes.iter().any(|k| k.name == c.name) {
                self.classes.push(c);
            }
        }
    }

    /// Report panels work in the background too: saves finish, drafts autosave, failed saves
    /// retry, signed-out reports are queued; the queue is published and each panel told how its
    /// report stands with the registry.
    fn tick_reports(&mut self, ctx: &egui::Context) {
        self.sync_case_annotations();
        // The case list shows the open case's report as it is on disk now.
        if let Some(case) = &self.current_case {
            let holder = self.tabs.get(self.report_tab()).filter(|t| case.slides.contains(&t.path));
            if let Some(panel) = holder.and_then(|t| t.report.as_ref()).filter(|p| p.path.is_some() && !p.is_saving()) {
                use crate::report::case::CaseState;
                let (id, status) = panel.saved_state();
                let state = match status {
                    crate::report::Status::Draft => CaseState::Draft,
                    crate::report::Status::Final => CaseState::Final,
                    crate::report::Status::Amended => CaseState::Amended,
                };
                // Only for a report still of this case (its Case ID may have been changed).
                if id == case.id.trim() {
                    self.case_list.note_report_state(case, state);
                }
            }
        }
        let publishing = self.publisher.is_configured();
        for tab in &mut self.tabs {
            let TabState::Open(view) = &tab.state else { continue };
            if let Some(panel) = &mut tab.report {
                panel.set_publishing(publishing);
                panel.tick(view, &self.classes, &self.reviewer, ctx);
                if panel.take_publish_request() {
                    self.publisher.request();
                }
            }
        }
        if let Some(notes) = self.publisher.tick(ctx) {
            for panel in self.tabs.iter_mut().filter_map(|t| t.report.as_mut()) {
                if let Some(note) = notes.get(&super::publisher::id_key(&panel.report.report_id)) {
                    panel.set_registry_note(note.clone());
                }
            }
        }
    }

    /// The report of the open case, when it has several slides, summarises the annotations of
    /// all of them: the holding panel is told the case's slides and given the summary of each
    /// other open one whose annotations changed since (made here, as the holding slide's is).
    fn sync_case_annotations(&mut self) {
        let Some(case) = &self.current_case else { return };
        let holder = self.report_tab();
        if !self.tabs.get(holder).is_some_and(|t| t.report.is_some() && case.slides.contains(&t.path)) {
            return;
        }
        let slides = if case.slides.len() > 1 { case.slides.as_slice() } else { &[] };
        let mut updates = Vec::new();
        let mut unread = Vec::new();
        if let Some(panel) = &self.tabs[holder].report {
            for (i, tab) in self.tabs.iter().enumerate() {
                if i == holder || !slides.contains(&tab.path) {
                    continue;
                }
                if let TabState::Failed(why) = &tab.state {
                    unread.push((super::report_panel::file_name(&tab.path), why.clone()));
                }
                let TabState::Open(view) = &tab.state else { continue };
                let version = super::report_panel::AnnotationsVersion::of(view);
                if !panel.has_case_slide_annotations(&tab.path, version) {
                    updates.push((tab.path.clone(), version, super::report_panel::case_slide_annotations(view)));
                }
            }
        }
        let own = self.tabs[holder].path.clone();
        if let Some(panel) = &mut self.tabs[holder].report {
            panel.set_case_slides(slides, &own);
            panel.set_unread_case_slides(unread);
            for (path, version, part) in updates {
                panel.set_case_slide_annotations(&path, version, part);
            }
        }
    }

    /// A press in a form (report, side panel, measurement table) takes the keyboard from the
    /// slide until the slide is clicked again: keys typed after a click that missed a text field
    /// must not reach the slide's shortcuts.
    fn take_keyboard_from_forms(&mut self, ctx: &egui::Context) {
        let pressed = ctx.input(|i| if i.pointer.any_pressed() { i.pointer.interact_pos() } else { None });
        let Some(pos) = pressed else { return };
        if self.form_rects.iter().any(|r| r.contains(pos)) {
            if let Some(view) = self.active_view_mut() {
                view.release_keyboard();
            }
        }
    }

    /// Tabs whose report has changes not on disk: (slide, what is unsaved).
    pub fn unsaved_reports(&self) -> Vec<(PathBuf, String)> {
        self.tabs
            .iter()
            .filter_map(|t| {
                let p = t.report.as_ref()?;
                if !p.has_unsaved() {
                    return None;
                }
                let what = if p.is_amending() {
                    "an amendment in progress (save or cancel it first)".to_string()
                } else if p.save_failed() {
                    format!("not saved: {}", p.message.as_ref().map(|m| m.text.as_str()).unwrap_or("the save failed"))
                } else if p.is_saving() {
                    "saving…".to_string()
                } else {
                    "unsaved edits".to_string()
                };
                Some((t.path.clone(), what))
            })
            .collect()
    }

    /// The window was asked to close: closes when nothing is unsaved, else asks.
    pub fn request_close_window(&mut self, ctx: &egui::Context) {
        if self.allow_close || self.unsaved_reports().is_empty() {
            return;
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
        if self.closing.as_ref().is_none_or(|c| !c.when_saved) {
            self.closing = Some(Closing { target: CloseTarget::Window, tab: None, when_saved: false });
        }
    }

    /// Close tab `i`, asking first when its report has unsaved changes.
    pub fn request_close_tab(&mut self, i: usize) {
        let Some(tab) = self.tabs.get(i) else { return };
        if tab.report.as_ref().is_some_and(|r| r.has_unsaved()) {
            self.closing = Some(Closing { target: CloseTarget::Tab, tab: Some(tab.path.clone()), when_saved: false });
        } else {
            self.close_tab_now(i);
        }
    }

    pub(super) fn close_tab_now(&mut self, i: usize) {
        // "Align here" marks are by tab index.
        self.aligning = None;
        if i < self.tabs.len() {
            self.tabs.remove(i);
            if i < self.grid_cameras.len() {
                self.grid_cameras.remove(i);
            }
            self.active = self.active.min(self.tabs.len().saturating_sub(1));
        }
    }

    fn close_dialog(&mut self, ctx: &egui::Context) {
        let Some(closing) = self.closing.clone() else { return };
        let in_scope = |t: &SlideTab| closing.target == CloseTarget::Window || Some(&t.path) == closing.tab.as_ref();
        let unsaved: Vec<(PathBuf, String)> = self
            .unsaved_reports()
            .into_iter()
            .filter(|(p, _)| closing.target == CloseTarget::Window || Some(p) == closing.tab.as_ref())
            .collect();
        let failed = self.tabs.iter().any(|t| in_scope(t) && t.report.as_ref().is_some_and(|r| r.save_failed()));
        if closing.when_saved && !failed {
            if unsaved.is_empty() {
                self.closing = None;
                self.finish_close(ctx, &closing);
            }
            return;
        }
        let amending = self
            .tabs
            .iter()
            .any(|t| in_scope(t) && t.report.as_ref().is_some_and(|r| r.is_amending() && r.has_unsaved()));
        let mut action = None;
        egui::Modal::new(egui::Id::unique("close-unsaved")).show(ctx, |ui| {
            ui.set_max_width(480.0);
            ui.heading("Report changes are not saved");
            for (path, what) in &unsaved {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                ui.label(format!("{name}: {what}"));
            }
            if closing.when_saved && failed {
                ui.label(RichText::new("Saving failed: choose another folder, keep trying, or discard.").strong());
            }
            ui.horizontal_wrapped(|ui| {
                if ui
                    .add_enabled(!amending, egui::Button::new("Save and close"))
                    .on_disabled_hover_text("Finish or cancel the amendment in the report panel first")
                    .clicked()
                {
                    action = Some("save");
                }
                if failed && ui.button("Save elsewhere…").clicked() {
                    action = Some("elsewhere");
                }
                if ui.button("Keep open").clicked() {
                    action = Some("keep");
                }
                if ui.button("Discard and close").clicked() {
                    action = Some("discard");
                }
            });
        });
        match action {
            Some("save") => {
                for tab in &mut self.tabs {
                    let in_scope = closing.target == CloseTarget::Window || Some(&tab.path) == closing.tab.as_ref();
                    let TabState::Open(view) = &tab.state else { continue };
                    if let (true, Some(panel)) = (in_scope, &mut tab.report) {
                        panel.save_now(view, &self.classes, ctx);
                    }
                }
                self.closing = Some(Closing { when_saved: true, ..closing });
            }
            Some("elsewhere") => {
                if let Some(i) =
                    self.tabs.iter().position(|t| in_scope(t) && t.report.as_ref().is_some_and(|r| r.save_failed()))
                {
                    self.active = i;
                    self.show_report = true;
                    if let Some(panel) = &mut self.tabs[i].report {
                        panel.open_save_elsewhere();
                    }
                }
                self.closing = None;
            }
            Some("keep") => self.closing = None,
            Some("discard") => {
                self.closing = None;
                self.finish_close(ctx, &closing);
            }
            _ => {}
        }
    }

    fn finish_close(&mut self, ctx: &egui::Context, closing: &Closing) {
        match closing.target {
            CloseTarget::Window => {
                self.allow_close = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            CloseTarget::Tab => {
                if let Some(i) = self.tabs.iter().position(|t| Some(&t.path) == closing.tab.as_ref()) {
                    self.close_tab_now(i);
                }
            }
        }
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        egui::Panel::top("menu").show(ui, |ui| {
            egui::MenuBar::new().ui(ui, |ui| {
                ui.menu_button("File", |ui| {
                    if ui.button("Open…").clicked() {
                        self.pick_file(&ctx);
                    }
                    if ui
                        .button("Open URL…")
                        .on_hover_text("A slide on a web server (http://, https://) or in S3 (s3://bucket/key)")
                        .clicked()
                    {
                        self.open_url_dialog();
                    }
                    if ui
                        .button("Open from PACS…")
                        .on_hover_text("Find slide microscopy series on a DICOMweb server and open one")
                        .clicked()
                    {
                        self.open_pacs();
                    }
                    ui.menu_button("Open recent", |ui| {
                        self.check_recent(&ctx);
                        if let Some(note) = &self.recent_note {
                            note.show(ui);
                        }
                        if self.recent.is_empty() {
                            ui.label("(none)");
                        }
                        for path in self.recent.clone() {
                            if ui.button(path.display().to_string()).clicked() {
                                self.commands.push(AppCommand::OpenSlide(path));
                            }
                        }
                    });
                    ui.separator();
                    let has_view = self.active_view().is_some();
                    if ui
                        .add_enabled(has_view, egui::Button::new("Import annotations…"))
                        .on_hover_text("QuPath GeoJSON or ASAP XML; added to this slide's annotations as one undo step")
                        .clicked()
                    {
                        self.import_annotations(&ctx);
                    }
                    if ui
                        .add_enabled(has_view, egui::Button::new("Import detections…"))
                        .on_hover_text("QuPath GeoJSON of cells, detections or tiles, drawn as this slide's detection layer (millions of objects)")
                        .clicked()
                    {
                        self.import_detections(&ctx);
                    }
                    if ui
                        .add_enabled(has_view, egui::Button::new("Export annotations…"))
                        .on_hover_text("QuPath GeoJSON (.geojson) or ASAP XML (.xml)")
                        .clicked()
                    {
                        self.export_annotations(&ctx);
                    }
                    ui.separator();
                    let several = self.layout != super::grid::Layout::Single && self.tabs.len() > 1;
                    let label = if several { "Export view of this slide…" } else { "Export view…" };
                    if ui
                        .add_enabled(has_view, egui::Button::new(label))
                        .on_hover_text("The visible area as PNG, with the slide's name and a scale bar")
                        .clicked()
                    {
                        self.export_view(false, &ctx);
                    }
                    if several
                        && ui
                            .add_enabled(has_view, egui::Button::new("Export view of all slides…"))
                            .on_hover_text("Every slide of the layout as on screen, in one PNG")
                            .clicked()
                    {
                        self.export_view(true, &ctx);
                    }
                    ui.separator();
                    if ui
                        .button("Report registry…")
                        .on_hover_text("Publish signed-out reports to the network's PostgreSQL registry")
                        .clicked()
                    {
                        self.publisher.open_dialog();
                    }
                    ui.separator();
                    if ui.button("Close tab").clicked() && !self.tabs.is_empty() {
                        self.request_close_tab(self.active);
                    }
                });
                ui.menu_button("View", |ui| {
                    ui.checkbox(&mut self.show_side_panel, "Side panel");
                    ui.checkbox(&mut self.show_report, "Report panel");
                    ui.checkbox(&mut self.show_cases, "Case list")
                        .on_hover_text("The cases under a folder, with their report state; next and previous case");
                    if ui.button("Fit to window (0)").clicked() {
                        if let Some(v) = self.active_view_mut() {
                            v.fit();
                        }
                    }
                    ui.menu_button("Layout", |ui| {
                        for layout in super::grid::Layout::ALL {
                            ui.radio_value(&mut self.layout, layout, layout.label());
                        }
                        ui.separator();
                        ui.checkbox(&mut self.sync_navigation, "Synchronise navigation")
                            .on_hover_text("Pan and zoom in one slide move the others by the same distance in µm");
                    });
                });
                ui.menu_button("Help", |ui| {
                    if ui.button("Keyboard shortcuts").clicked() {
                        self.show_shortcuts = true;
                    }
                });
                ui.toggle_value(&mut self.show_report, "Report")
                    .on_hover_text("The case report: fields, save draft, finalise, amend");
                if self.layout != super::grid::Layout::Single {
                    ui.toggle_value(&mut self.sync_navigation, "Sync")
                        .on_hover_text("Pan and zoom in one slide move the others by the same distance in µm");
                    let aligning = self.aligning.is_some();
                    if ui
                        .selectable_label(aligning, "Align here")
                        .on_hover_text(
                            "Click the same feature in each slide: the slides then move so that it lies at the same \
                             place in each, at the same scale (Escape cancels)",
                        )
                        .clicked()
                    {
                        self.aligning = if aligning { None } else { Some(Vec::new()) };
                    }
                }
                ui.separator();
                let mut close = None;
                let title_width = super::tab_strip::title_width(ui, self.tabs.len());
                for (i, tab) in self.tabs.iter().enumerate() {
                    let title = match tab.state {
                        TabState::Opening(_) => format!("{} (opening…)", tab.title()),
                        TabState::Failed(_) => format!("{} (error)", tab.title()),
                        TabState::Open(_) => tab.title(),
                    };
                    if super::tab_strip::title(ui, i == self.active, title, &tab.path, title_width).clicked() {
                        self.active = i;
                    }
                    if ui.small_button("×").on_hover_text("Close this slide").clicked() {
                        close = Some(i);
                    }
                }
                if let Some(i) = close {
                    self.request_close_tab(i);
                }
            });
        });
    }

    /// Give every view the class list (and the counting grid setting).
    pub(super) fn sync_annotation_classes(&mut self) {
        let classes = self.classes.clone();
        let grid = self.counting.grid_spacing();
        for tab in &mut self.tabs {
            if let Some(view) = tab.view_mut() {
                view.counting_grid_um = grid;
                if view.annotations.classes != classes {
                    view.annotations.classes = classes.clone();
                }
            }
        }
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                if let Some(note) = &self.recent_note {
                    note.show(ui);
                    if ui.small_button("Dismiss").clicked() {
                        self.recent_note = None;
                    }
                    ui.separator();
                }
                if let Some(note) = &self.case_message {
                    note.show(ui);
                    if ui.small_button("Dismiss").clicked() {
                        self.case_message = None;
                    }
                    ui.separator();
                }
                if let Some(note) = &self.export_message {
                    note.show(ui);
                    if ui.small_button("Dismiss").clicked() {
                        self.export_message = None;
                    }
                    ui.separator();
                }
                let Some(tab) = self.tabs.get(self.active) else {
                    ui.label("Open a slide: File > Open, or drop a file on the window.");
                    return;
                };
                let plain_http = tab.path.to_str().is_some_and(super::app_files::is_plain_http);
                if plain_http {
                    Level::Warning.label(ui, super::app_files::PLAIN_HTTP_WARNING);
                    ui.separator();
                }
                let Some(view) = tab.view() else {
                    ui.label(tab.path.display().to_string());
                    return;
                };
                match super::magnification::status_text(view) {
                    Some(text) => ui.label(text),
                    None => ui.label(format!("zoom {:.3}", view.camera.zoom)),
                };
                ui.separator();
                if let Some([x, y]) = view.cursor_level0 {
                    let mut text = format!("x {x:.0}  y {y:.0} px");
                    let p = view.slide.properties();
                    if let (Some(mx), Some(my)) = (p.mpp_x, p.mpp_y) {
                        text += &format!("  ({:.1} µm, {:.1} µm)", x * mx, y * my);
                    }
                    ui.label(text);
                    ui.separator();
                }
                let s = &view.stats;
                ui.label(format!("level {}  tiles {}/{}", s.level, s.exact, s.visible));
                let failed = view.failed_tiles().len();
                if failed > 0 {
                    ui.separator();
                    let reason = view.failed_tiles().values().min().cloned().unwrap_or_default();
                    if view.is_remote() {
                        // Network failures are retried: say so, with the reason.
                        Level::Error.label(ui, format!("{failed} tiles failed: {reason}")).on_hover_text(
                            "Drawn as hatched gaps; asked for again when back in view, or in a few seconds",
                        );
                    } else {
                        Level::Error.label(ui, format!("{failed} corrupt tiles")).on_hover_text(reason);
                    }
                }
                ui.separator();
                ui.label(format!(
                    "cache {:.0} / {:.0} MB",
                    self.cache.used_bytes() as f64 / 1e6,
                    self.cache.budget_bytes() as f64 / 1e6
                ));
            });
        });
    }

    fn side_panel(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let mut import_detections = false;
        self.side_panel_sections(ui, &ctx, &mut import_detections);
        if import_detections {
            self.import_detections(&ctx);
        }
    }

    fn side_panel_sections(&mut self, ui: &mut egui::Ui, ctx: &egui::Context, import_detections: &mut bool) {
        let Some(tab) = self.tabs.get_mut(self.active) else { return };
        egui::ScrollArea::vertical().show(ui, |ui| {
            let Some(view) = tab.view() else { return };
            let slide = view.slide.clone();
            let p = slide.properties();
            ui.heading("Slide");
            egui::Grid::new("props").num_columns(2).striped(true).show(ui, |ui| {
                let l0 = &slide.levels()[0];
                let rows = [
                    ("Format", slide.format_name().to_string()),
                    ("Size", format!("{} × {} px", l0.width, l0.height)),
                    ("Levels", slide.levels().len().to_string()),
                    ("Tiles", format!("{}×{} {}", l0.tile_width, l0.tile_height, l0.compression.name())),
                    ("µm per pixel", p.mpp_x.map_or("unknown".into(), |m| format!("{m:.4}"))),
                    ("Objective", p.objective_power.map_or("unknown".into(), |m| format!("{m}×"))),
                ];
                for (k, v) in rows {
                    ui.label(k);
                    ui.label(v);
                    ui.end_row();
                }
            });
            ui.collapsing("All properties", |ui| {
                egui::Grid::new("allprops").num_columns(2).striped(true).show(ui, |ui| {
                    for (k, v) in &p.values {
                        if k == "tiff.ImageDescription" {
                            continue;
                        }
                        ui.label(k);
                        ui.label(v);
                        ui.end_row();
                    }
                });
            });
            ui.separator();
            ui.heading("Display");
            if let Some(view) = tab.view_mut() {
                let mut a = view.adjustments();
                ui.add(egui::Slider::new(&mut a.brightness, -0.5..=0.5).text("Brightness"));
                ui.add(egui::Slider::new(&mut a.contrast, 0.2..=3.0).text("Contrast"));
                ui.add(egui::Slider::new(&mut a.gamma, 0.3..=3.0).logarithmic(true).text("Gamma"));
                if ui.add_enabled(!a.is_identity(), egui::Button::new("Reset")).clicked() {
                    a = super::camera::Adjustments::default();
                }
                view.set_adjustments(a);
            }
            ui.separator();
            if let Some(message) = &self.annotation_message {
                message.show(ui);
            }
            if let Some(view) = tab.view_mut() {
                annotation_section(ui, &mut view.annotations, &self.classes, &mut self.commands);
                ui.separator();
                super::counting_panel::counting_section(ui, view, &mut self.counting);
                ui.separator();
                if let Some(super::detection_panel::DetectionAction::Import) =
                    super::detection_panel::detection_section(ui, view)
                {
                    *import_detections = true;
                }
            }
            ui.separator();
            ui.heading("Associated images");
            if tab.associated.is_empty() {
                ui.label("none");
            }
            let identifying = |n: &str| n == "label" || n == "macro";
            if tab.associated.iter().any(|(n, _)| identifying(n)) {
                let text = if tab.show_identifiers { "Hide label" } else { "Show label" };
                if ui.button(text).on_hover_text("The label and macro images can carry patient identifiers").clicked() {
                    tab.show_identifiers = !tab.show_identifiers;
                    if tab.show_identifiers {
                        for (name, state) in &mut tab.associated {
                            if identifying(name) && matches!(state, Associated::Failed(e) if e.is_empty()) {
                                *state = load_associated(slide.clone(), name.clone(), ctx);
                            }
                        }
                    }
                }
            }
            for (name, state) in &tab.associated {
                if identifying(name) && !tab.show_identifiers {
                    continue;
                }
                ui.label(RichText::new(name).strong());
                match state {
                    Associated::Loading(_) => {
                        ui.spinner();
                    }
                    Associated::Ready(tex) => {
                        let size = tex.size_vec2();
                        let scale = (ui.available_width() / size.x).min(1.0);
                        ui.image((tex.id(), size * scale));
                    }
                    Associated::Failed(e) if !e.is_empty() => {
                        Level::Error.label(ui, e.as_str());
                    }
                    Associated::Failed(_) => {}
                }
            }
        });
    }

    /// The case report beside the slides: the active slide's, or for a slide of the open case the
    /// case's one report ([`Self::report_tab`]).
    fn report_panel(&mut self, ui: &mut egui::Ui) -> Option<egui::Rect> {
        let ctx = ui.ctx().clone();
        let index = self.report_tab();
        let tab = self.tabs.get_mut(index)?;
        let TabState::Open(view) = &tab.state else { return None };
        // A slide of the open case starts from the case's report, whichever slide it was made on.
        let case = self.current_case.as_ref().filter(|c| c.slides.contains(&tab.path));
        let panel = tab.report.get_or_insert_with(|| ReportPanel::start(view, &self.reviewer, case, &ctx));
        let (classes, reviewer, commands) = (&self.classes, &self.reviewer, &mut self.commands);
        // Bounded: egui widens a panel to fit text laid out on one line, which would otherwise
        // push the slide aside after a long diagnosis is typed.
        let r = egui::Panel::right("report")
            .default_size(380.0)
            .size_range(300.0..=440.0)
            .resizable(true)
            .show(ui, |ui| panel.show(ui, view, classes, reviewer, commands));
        Some(r.response.rect)
    }

    /// The slide area: the active tab, or the cells of a layout of several (`dialog`: a dialog
    /// has the keyboard this frame).
    fn central(&mut self, ui: &mut egui::Ui, dialog: bool) {
        if self.layout == super::grid::Layout::Single || self.tabs.len() < 2 {
            self.aligning = None;
            self.central_tab(ui, self.active);
            self.record_cameras();
            return;
        }
        let cells = self.layout.cell_rects(ui.max_rect(), 4.0);
        let shown = super::grid::shown_tabs(self.tabs.len(), self.active, cells.len());
        // A press in a cell makes its slide the active one before the press acts in it.
        let pressed = ui.input(|i| i.pointer.any_pressed().then(|| i.pointer.interact_pos()).flatten());
        if let Some(p) = pressed {
            if let Some(t) = cells.iter().zip(shown.clone()).find(|(c, _)| c.contains(p)).map(|(_, t)| t) {
                self.active = t;
            }
        }
        for (cell, t) in cells.iter().zip(shown.clone()) {
            // Keys act in the active slide only.
            if let Some(view) = self.tabs.get_mut(t).and_then(|tab| tab.view_mut()) {
                view.block_keys(dialog || t != self.active);
            }
            let mut child = ui.new_child(egui::UiBuilder::new().max_rect(*cell).id_salt(("grid cell", t)));
            self.central_tab(&mut child, t);
            if t == self.active {
                let stroke = egui::Stroke::new(2.0, ui.visuals().selection.bg_fill);
                ui.painter().rect_stroke(*cell, 0.0, stroke, egui::StrokeKind::Inside);
            }
        }
        if self.aligning.is_some() {
            self.align_clicks(ui, &cells, shown.clone());
        }
        if self.follow_active(shown) {
            ui.ctx().request_repaint();
        }
    }

    /// "Align here": a click in a cell marks the feature in that slide (clicks go to no slide
    /// meanwhile); once every shown slide is marked, each is moved so that its mark lies where the
    /// first slide's does, at the first slide's µm per point ([`super::grid::align`]). The first
    /// slide becomes the active one and does not move.
    fn align_clicks(&mut self, ui: &mut egui::Ui, cells: &[egui::Rect], shown: std::ops::Range<usize>) {
        if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            self.aligning = None;
            return;
        }
        let Some(mut points) = self.aligning.take() else { return };
        points.retain(|(t, _)| shown.contains(t));
        let stroke = egui::Stroke::new(2.0, egui::Color32::from_rgb(255, 200, 0));
        for (cell, t) in cells.iter().zip(shown.clone()) {
            let Some(view) = self.tabs.get(t).and_then(|tab| tab.view()) else { continue };
            let r = ui.interact(*cell, ui.scope_id().with(("align here", t)), egui::Sense::click());
            if let Some(pos) = r.clicked().then(|| r.interact_pointer_pos()).flatten() {
                let p = view.camera.screen_to_level0([f64::from(pos.x), f64::from(pos.y)], &view.view_rect());
                points.retain(|(u, _)| *u != t);
                points.push((t, p));
            }
            r.on_hover_cursor(egui::CursorIcon::Crosshair);
            let painter = ui.painter().with_clip_rect(*cell);
            for (_, p) in points.iter().filter(|(u, _)| *u == t) {
                let s = view.camera.level0_to_screen(*p, &view.view_rect());
                let c = egui::pos2(s[0] as f32, s[1] as f32);
                painter.circle_stroke(c, 10.0, stroke);
                painter.line_segment([c - egui::vec2(16.0, 0.0), c + egui::vec2(16.0, 0.0)], stroke);
                painter.line_segment([c - egui::vec2(0.0, 16.0), c + egui::vec2(0.0, 16.0)], stroke);
            }
            if !points.iter().any(|(u, _)| *u == t) {
                let text = "Align here: click the feature to align in this slide";
                let at = cell.center_top() + egui::vec2(0.0, 24.0);
                painter.text(at, egui::Align2::CENTER_TOP, text, egui::FontId::proportional(15.0), stroke.color);
            }
        }
        let marked = shown.clone().all(|t| points.iter().any(|(u, _)| *u == t));
        if !marked || points.is_empty() {
            self.aligning = Some(points);
            return;
        }
        let (reference, p) = points[0];
        let Some((camera, mpp)) =
            self.tabs.get(reference).and_then(|t| t.view()).map(|v| (v.camera, v.slide.properties().mpp_x))
        else {
            return;
        };
        for &(t, q) in &points[1..] {
            if let Some(view) = self.tabs.get_mut(t).and_then(|t| t.view_mut()) {
                let aligned =
                    super::grid::align(camera, p, mpp, q, view.slide.properties().mpp_x, view.camera.rotation);
                view.look_at(aligned.center, Some(aligned.zoom));
            }
        }
        self.active = reference;
        self.record_cameras();
        ui.ctx().request_repaint();
    }

    /// Synchronised navigation: when the active slide moved since the last frame (and not by
    /// fitting itself to its cell), move the other shown slides the same distance in µm and to
    /// the same µm per screen point ([`super::grid::follow`]).
    /// Returns whether another slide moved (it is drawn there next frame).
    fn follow_active(&mut self, shown: std::ops::Range<usize>) -> bool {
        let mut followed = false;
        let leader = self
            .tabs
            .get(self.active)
            .and_then(|t| t.view())
            .map(|v| (v.camera, v.slide.properties().mpp_x, v.is_auto_fit()));
        let before = self.grid_cameras.get(self.active).copied().flatten();
        if let (true, Some((after, mpp, fitted)), Some(before)) = (self.sync_navigation, leader, before) {
            for t in shown.filter(|&t| t != self.active && before != after) {
                let Some(view) = self.tabs[t].view_mut() else { continue };
                if fitted {
                    // A slide fitting itself to its cell moves no other; a turn of it turns
                    // the others as much (each about its own centre).
                    if after.rotation != before.rotation {
                        view.rotate_by(after.rotation - before.rotation);
                        followed = true;
                    }
                    continue;
                }
                let moved = super::grid::follow(before, after, mpp, view.camera, view.slide.properties().mpp_x);
                view.look_at(moved.center, Some(moved.zoom));
                view.camera.rotation = moved.rotation;
                followed = true;
            }
        }
        self.record_cameras();
        followed
    }

    /// Every tab's camera now, for the next frame's [`Self::follow_active`] (kept in one slide's
    /// layout too, so that a move made there is not replayed when cells come back).
    fn record_cameras(&mut self) {
        self.grid_cameras = self.tabs.iter().map(|t| t.view().map(|v| v.camera)).collect();
    }

    /// Tab `i`'s slide (or what it is doing) in all of `ui`.
    fn central_tab(&mut self, ui: &mut egui::Ui, i: usize) {
        let Some(tab) = self.tabs.get_mut(i) else {
            ui.centered_and_justified(|ui| ui.label("No slide open. File > Open, or drop a slide here."));
            return;
        };
        match &mut tab.state {
            TabState::Opening(job) => {
                let (since, bytes_then) = tab.opening_since;
                let remote = super::file_browser::is_url_path(&tab.path);
                let stage = super::slide_view::open_stage_text(job.fraction());
                let mut text = format!("Opening {}…\n{stage}", tab.path.display());
                if remote {
                    // Bytes of the whole process: close enough while a slide opens.
                    let kb = crate::remote::totals().1.saturating_sub(bytes_then) as f64 / 1024.0;
                    text += &format!(", {kb:.0} KB received, {:.0} s", since.elapsed().as_secs_f64());
                    // The seconds count up: repaint now and then while the network is awaited.
                    ui.ctx().request_repaint_after(std::time::Duration::from_millis(250));
                }
                ui.vertical_centered(|ui| {
                    ui.add_space(ui.available_height() / 2.0 - 30.0);
                    ui.spinner();
                    ui.label(text);
                });
            }
            TabState::Failed(message) => {
                ui.centered_and_justified(|ui| {
                    ui.label(Level::Error.text(ui, format!("Cannot open this slide.\n\n{message}")).size(16.0))
                });
            }
            TabState::Open(view) => {
                view.ui(ui);
            }
        }
    }
}

fn load_associated(slide: Arc<crate::Slide>, name: String, ctx: &egui::Context) -> Associated {
    Associated::Loading(Job::spawn(ctx, move || {
        slide
            .read_associated(&name)
            .map(|img| ColorImage::from_rgba_unmultiplied([img.width() as usize, img.height() as usize], img.as_raw()))
            .map_err(|e| e.kind.to_string())
    }))
}
