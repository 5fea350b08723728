//! The case report beside the slide: the fields of `wsiview.report/1`, pre-filled from the slide
//! and its annotations; "Save draft", "Finalise", and amendments of a signed-out report. Workers
//! find the slide's report, hash the slide (with progress) and write the JSON and HTML files; the
//! UI thread only edits the document in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Color32, RichText};

use super::slide_view::SlideView;
use crate::annotations::AnnotationClass;
use crate::report::schema::{now_rfc3339, parse_date, ClassSummary, Report, ReviewType, Role, Status};
use crate::report::store::{self, SaveRequest, Saved};

/// Reviewer details remembered between runs (filled into new reports).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReviewerDefaults {
    pub name: String,
    pub role: Role,
    pub site: String,
}

/// Drafts are saved by themselves this long after the last edit.
const DRAFT_AUTOSAVE_AFTER: Duration = Duration::from_secs(3);

enum Hashing {
    /// Bytes hashed and the file's size (both published by the worker).
    Running {
        done: Arc<AtomicU64>,
        total: Arc<AtomicU64>,
        rx: Receiver<Result<String, String>>,
    },
    Done(String),
    Failed(String),
}

struct Amending {
    original: Report,
    reason: String,
}

type Found = (Option<(PathBuf, Report)>, Vec<String>);

pub struct ReportPanel {
    pub report: Report,
    /// Where the report was read from or last saved.
    pub path: Option<PathBuf>,
    pub html_path: Option<PathBuf>,
    loading: Option<Receiver<Found>>,
    hashing: Hashing,
    cancel_hash: Arc<AtomicBool>,
    saving: Option<Receiver<Result<Saved, String>>>,
    amending: Option<Amending>,
    snomed_text: String,
    /// The last problem or action: text, and whether it is a problem.
    pub message: Option<(String, bool)>,
    /// When and where the report was last written (kept apart from `message`, so a background
    /// save never hides a problem).
    pub saved_note: Option<String>,
    /// Unsaved edits of a draft, and when the last one was made.
    dirty_since: Option<Instant>,
    /// Annotation summary cache: the document revision it was made from.
    summary: Option<(u64, Vec<ClassSummary>)>,
    /// Who is using the viewer (the remembered reviewer): amendments are recorded in their name.
    current_user: String,
    /// The last save failed; a signed-out report offers "Retry save".
    save_failed: bool,
}

impl Drop for ReportPanel {
    fn drop(&mut self) {
        self.cancel_hash.store(true, Ordering::Relaxed);
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

impl ReportPanel {
    /// Start finding the slide's report and hashing the slide, on workers.
    pub fn start(view: &SlideView, defaults: &ReviewerDefaults, ctx: &egui::Context) -> Self {
        let slide_path = view.slide.path().to_path_buf();
        let mut report = Report {
            case_id: slide_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            site: defaults.site.clone(),
            ..Report::default()
        };
        report.reviewer.name = defaults.name.clone();
        report.reviewer.role = defaults.role;
        store::describe_slide(&mut report, &view.slide);

        let (tx, loading) = channel();
        let repaint = ctx.clone();
        let path = slide_path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(store::find_for_slide(&path));
            repaint.request_repaint();
        });

        let (tx, rx) = channel();
        let done = Arc::new(AtomicU64::new(0));
        let total = Arc::new(AtomicU64::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let (worker_done, worker_total, worker_cancel, repaint) =
            (done.clone(), total.clone(), cancel.clone(), ctx.clone());
        std::thread::spawn(move || {
            let mut last_repaint = Instant::now();
            let result = crate::report::hash::sha256_file(&slide_path, |n, size| {
                worker_done.store(n, Ordering::Relaxed);
                worker_total.store(size, Ordering::Relaxed);
                if last_repaint.elapsed() > Duration::from_millis(100) {
                    repaint.request_repaint();
                    last_repaint = Instant::now();
                }
                !worker_cancel.load(Ordering::Relaxed)
            });
            let _ = tx.send(result.map_err(|e| format!("{}: cannot hash: {e}", slide_path.display())));
            repaint.request_repaint();
        });

        ReportPanel {
            report,
            path: None,
            html_path: None,
            loading: Some(loading),
            hashing: Hashing::Running { done, total, rx },
            cancel_hash: cancel,
            saving: None,
            amending: None,
            snomed_text: String::new(),
            message: None,
            saved_note: None,
            dirty_since: None,
            summary: None,
            current_user: defaults.name.clone(),
            save_failed: false,
        }
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    pub fn is_saving(&self) -> bool {
        self.saving.is_some()
    }

    /// The slide's SHA-256 once computed.
    pub fn slide_hash(&self) -> Option<&str> {
        match &self.hashing {
            Hashing::Done(h) => Some(h),
            _ => None,
        }
    }

    fn editable(&self) -> bool {
        self.report.is_editable() || self.amending.is_some()
    }

    fn poll(&mut self) {
        if let Some(rx) = &self.loading {
            if let Ok((found, problems)) = rx.try_recv() {
                self.loading = None;
                if let Some((path, report)) = found {
                    self.report = report;
                    self.path = Some(path);
                }
                if !problems.is_empty() {
                    self.message = Some((format!("Reports that could not be read: {}", problems.join("; ")), true));
                }
                self.snomed_text = self.report.diagnosis.snomed_ct.join(", ");
                self.check_hash();
            }
        }
        if let Hashing::Running { rx, .. } = &self.hashing {
            if let Ok(result) = rx.try_recv() {
                self.hashing = match result {
                    Ok(h) => Hashing::Done(h),
                    Err(e) => Hashing::Failed(e),
                };
                self.check_hash();
            }
        }
        if let Some(rx) = &self.saving {
            if let Ok(result) = rx.try_recv() {
                self.saving = None;
                match result {
                    Ok(saved) => {
                        self.save_failed = false;
                        let time = crate::report::schema::now_rfc3339();
                        let time = time.get(11..19).unwrap_or_default();
                        self.saved_note = Some(format!("Saved {} at {time}", saved.json.display()));
                        if self.message.as_ref().is_some_and(|(text, _)| text.starts_with("Not saved")) {
                            self.message = None;
                        }
                        self.path = Some(saved.json);
                        self.html_path = Some(saved.html);
                    }
                    Err(e) => {
                        self.save_failed = true;
                        self.message = Some((format!("Not saved: {e}"), true));
                        // Try again after the next edit or click.
                        self.dirty_since.get_or_insert_with(Instant::now);
                    }
                }
            }
        }
    }

    /// Put the hash in an editable report; warn when a signed-out report names another file.
    fn check_hash(&mut self) {
        if self.loading.is_some() {
            return;
        }
        let Hashing::Done(hash) = &self.hashing else { return };
        if self.report.is_editable() {
            // A saved draft gets the hash written; a new one takes it with its first save (merely
            // opening the panel writes no file).
            if self.report.slide.sha256 != *hash {
                self.report.slide.sha256 = hash.clone();
                if self.path.is_some() {
                    self.dirty_since.get_or_insert_with(Instant::now);
                }
            }
        } else if self.report.slide.sha256 != *hash {
            self.message = Some((
                format!(
                    "This {} report was made on a different file (SHA-256 {}…, this slide {}…)",
                    self.report.status.as_str(),
                    self.report.slide.sha256.get(..12).unwrap_or_default(),
                    hash.get(..12).unwrap_or_default()
                ),
                true,
            ));
        }
    }

    fn annotation_summary(&mut self, view: &SlideView) -> Vec<ClassSummary> {
        let revision = view.annotations.doc.revision();
        match &self.summary {
            Some((r, s)) if *r == revision => s.clone(),
            _ => {
                let s = store::summarise_annotations(view.annotations.doc.annotations(), view.annotations.pixel_size);
                self.summary = Some((revision, s.clone()));
                s
            }
        }
    }

    /// Fill what comes from the slide and its annotations, then write both files on a worker.
    fn save(&mut self, view: &SlideView, classes: &[AnnotationClass], ctx: &egui::Context) {
        if self.saving.is_some() {
            return;
        }
        if self.report.is_editable() {
            self.fill_from_slide(view);
        }
        self.dirty_since = None;
        let request = SaveRequest {
            report: self.report.clone(),
            slide: Some(view.slide.clone()),
            view_region: Some({
                let r = view.camera.visible_level0(&view.view_rect());
                [r[0], r[1], r[2] - r[0], r[3] - r[1]]
            }),
            annotations: view.annotations.doc.snapshot(),
            classes: classes.to_vec(),
            previous: self.path.clone(),
        };
        let (known_dir, slide_path) =
            (self.path.as_ref().and_then(|p| p.parent()).map(Path::to_path_buf), view.slide.path().to_path_buf());
        let (tx, rx) = channel();
        let repaint = ctx.clone();
        std::thread::spawn(move || {
            // Choosing the folder probes whether it is writable: a file operation, so here.
            let dir = known_dir.unwrap_or_else(|| store::report_dir(&slide_path));
            let _ = tx.send(store::save_in(&dir, request));
            repaint.request_repaint();
        });
        self.saving = Some(rx);
    }

    fn fill_from_slide(&mut self, view: &SlideView) {
        store::describe_slide(&mut self.report, &view.slide);
        if let Hashing::Done(h) = &self.hashing {
            self.report.slide.sha256 = h.clone();
        }
        self.report.annotations.file = view
            .annotations
            .autosaver
            .as_ref()
            .map(|s| file_name(s.path()))
            .unwrap_or_else(|| file_name(&crate::annotations::store::sidecar_path(view.slide.path())));
        self.report.annotations.by_class = self.annotation_summary(view);
        self.report.diagnosis.snomed_ct = split_codes(&self.snomed_text);
    }

    /// Sign the draft out and save it.
    pub fn finalise(&mut self, view: &SlideView, classes: &[AnnotationClass], ctx: &egui::Context) {
        self.fill_from_slide(view);
        match self.report.finalise(&now_rfc3339()) {
            Ok(()) => self.save(view, classes, ctx),
            Err(problems) => self.message = Some((format!("Not finalised: {problems}"), true)),
        }
    }

    /// Begin amending a signed-out report: the fields become editable.
    pub fn begin_amendment(&mut self) {
        if !self.report.is_editable() && self.amending.is_none() {
            self.amending = Some(Amending { original: self.report.clone(), reason: String::new() });
        }
    }

    pub fn set_amendment_reason(&mut self, reason: &str) {
        if let Some(a) = &mut self.amending {
            a.reason = reason.to_string();
        }
    }

    /// Record the changes as an amendment (with its reason) and save.
    pub fn save_amendment(&mut self, view: &SlideView, classes: &[AnnotationClass], ctx: &egui::Context) {
        let Some(amending) = self.amending.take() else { return };
        self.report.diagnosis.snomed_ct = split_codes(&self.snomed_text);
        let edited = self.report.clone();
        let mut amended = amending.original.clone();
        // The person amending, who may not be the report's reviewer.
        let by =
            if self.current_user.trim().is_empty() { edited.reviewer.name.clone() } else { self.current_user.clone() };
        let annotations = self.annotation_summary(view);
        // `amend` keeps the status history, id and sign-out time of the original.
        let result = amended.amend(&by, None, &amending.reason, &now_rfc3339(), |r| {
            *r = edited;
            r.annotations.by_class = annotations;
        });
        match result {
            Ok(()) => {
                self.report = amended;
                self.save(view, classes, ctx);
            }
            Err(e) => {
                self.message = Some((format!("Not amended: {e}"), true));
                self.amending = Some(amending);
            }
        }
    }

    pub fn cancel_amendment(&mut self) {
        if let Some(a) = self.amending.take() {
            self.report = a.original;
            self.snomed_text = self.report.diagnosis.snomed_ct.join(", ");
        }
    }

    /// The panel. `defaults` takes the reviewer's details as they are typed.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        view: &SlideView,
        classes: &[AnnotationClass],
        defaults: &mut ReviewerDefaults,
    ) {
        let ctx = ui.ctx().clone();
        self.poll();
        self.current_user = defaults.name.clone();
        let (badge, color) = match self.report.status {
            Status::Draft => ("DRAFT", Color32::from_rgb(200, 150, 0)),
            Status::Final => ("FINAL", Color32::from_rgb(40, 150, 60)),
            Status::Amended => ("AMENDED", Color32::from_rgb(40, 120, 170)),
        };
        ui.horizontal(|ui| {
            ui.heading("Case report");
            ui.label(RichText::new(badge).strong().color(color));
            if self.dirty_since.is_some() {
                ui.label(RichText::new("unsaved").italics());
            }
        });
        if self.loading.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Looking for this slide's report…");
            });
            return;
        }
        let editable = self.editable();
        // Actions and messages first, so they stay in view however long the text below grows.
        self.buttons(ui, view, classes, &ctx);
        if let Some((text, problem)) = &self.message {
            let color = if *problem { Color32::from_rgb(230, 160, 60) } else { ui.visuals().text_color() };
            ui.colored_label(color, text);
        }
        ui.separator();
        let changed = self.fields(ui, view, defaults, editable);
        if changed && self.report.is_editable() {
            self.dirty_since = Some(Instant::now());
        }
        // Drafts save themselves a few seconds after the last edit: nothing typed is lost.
        if let Some(since) = self.dirty_since {
            if self.report.is_editable() && self.amending.is_none() {
                let wait = DRAFT_AUTOSAVE_AFTER.saturating_sub(since.elapsed());
                if wait.is_zero() {
                    self.save(view, classes, &ctx);
                } else {
                    ctx.request_repaint_after(wait);
                }
            }
        }
    }

    /// The fields, scrolling; true when any was edited.
    fn fields(&mut self, ui: &mut egui::Ui, view: &SlideView, defaults: &mut ReviewerDefaults, editable: bool) -> bool {
        let mut changed = false;
        egui::ScrollArea::vertical()
            .id_salt("report-scroll")
            .auto_shrink([false, false])
            .max_width(ui.available_width())
            .show(ui, |ui| {
                ui.add_enabled_ui(editable, |ui| {
                    egui::Grid::new("report-fields").num_columns(2).spacing([8.0, 4.0]).show(ui, |ui| {
                        changed |= line(ui, "Case ID", &mut self.report.case_id, "e.g. H26-01234");
                        if line(ui, "Site", &mut self.report.site, "site code, e.g. RLH") {
                            changed = true;
                            defaults.site = self.report.site.clone();
                        }
                        if line(ui, "Reviewer", &mut self.report.reviewer.name, "your name") {
                            changed = true;
                            defaults.name = self.report.reviewer.name.clone();
                        }
                        ui.label("Role");
                        let before = self.report.reviewer.role;
                        egui::ComboBox::from_id_salt("report-role").selected_text(before.label()).show_ui(ui, |ui| {
                            for role in Role::ALL {
                                ui.selectable_value(&mut self.report.reviewer.role, role, role.label());
                            }
                        });
                        if self.report.reviewer.role != before {
                            changed = true;
                            defaults.role = self.report.reviewer.role;
                        }
                        ui.end_row();
                        ui.label("Review type");
                        let before = self.report.review_type;
                        egui::ComboBox::from_id_salt("report-type").selected_text(before.label()).show_ui(ui, |ui| {
                            for t in ReviewType::ALL {
                                ui.selectable_value(&mut self.report.review_type, t, t.label());
                            }
                        });
                        changed |= self.report.review_type != before;
                        ui.end_row();
                        let mut received = self.report.received_date.clone().unwrap_or_default();
                        if line(ui, "Received", &mut received, "YYYY-MM-DD") {
                            changed = true;
                            self.report.received_date =
                                (!received.trim().is_empty()).then(|| received.trim().to_string());
                        }
                        if let Some(Err(e)) = self.report.received_date.as_deref().map(parse_date) {
                            ui.label("");
                            ui.colored_label(Color32::from_rgb(230, 90, 90), e);
                            ui.end_row();
                        }
                        ui.label("Reported");
                        ui.label(self.report.reported_at.as_deref().unwrap_or("not yet (set when finalised)"));
                        ui.end_row();
                    });
                    ui.separator();
                    changed |= area(ui, "Specimen", &mut self.report.specimen);
                    changed |= area(ui, "Clinical details", &mut self.report.clinical_details);
                    changed |= area(ui, "Macroscopy", &mut self.report.macroscopy);
                    changed |= area(ui, "Microscopy", &mut self.report.microscopy);
                    changed |= area(ui, "Diagnosis", &mut self.report.diagnosis.text);
                    egui::Grid::new("report-codes").num_columns(2).show(ui, |ui| {
                        changed |= line(ui, "Category", &mut self.report.diagnosis.category, "network code, e.g. B5b");
                        changed |= line(ui, "SNOMED CT", &mut self.snomed_text, "codes, comma-separated");
                    });
                    changed |= area(ui, "Comments", &mut self.report.comments);
                });
                ui.separator();
                ui.label(RichText::new("Slide").strong());
                egui::Grid::new("report-slide").num_columns(2).show(ui, |ui| {
                    let s = &self.report.slide;
                    ui.label("File");
                    ui.label(&s.file_name);
                    ui.end_row();
                    ui.label("Size");
                    ui.label(format!("{} × {} px", s.width, s.height));
                    ui.end_row();
                    ui.label("SHA-256");
                    match &self.hashing {
                        Hashing::Running { done, total, .. } => {
                            let fraction =
                                done.load(Ordering::Relaxed) as f32 / total.load(Ordering::Relaxed).max(1) as f32;
                            ui.add(
                                egui::ProgressBar::new(fraction)
                                    .desired_width(160.0)
                                    .text(format!("hashing {:.0} %", fraction * 100.0)),
                            );
                        }
                        Hashing::Done(h) => {
                            ui.label(RichText::new(format!("{}…", h.get(..16).unwrap_or_default())).monospace())
                                .on_hover_text(h.as_str());
                        }
                        Hashing::Failed(e) => {
                            ui.colored_label(Color32::from_rgb(230, 90, 90), e);
                        }
                    }
                    ui.end_row();
                });
                ui.label(RichText::new("Annotations").strong());
                let summary = self.annotation_summary(view);
                if summary.is_empty() {
                    ui.label("none");
                }
                egui::Grid::new("report-classes").num_columns(4).striped(true).show(ui, |ui| {
                    if !summary.is_empty() {
                        for h in ["Class", "Count", "Area µm²", "Length µm"] {
                            ui.label(RichText::new(h).strong());
                        }
                        ui.end_row();
                    }
                    for c in &summary {
                        ui.label(if c.class.is_empty() { "(unclassified)" } else { &c.class });
                        ui.label(c.count.to_string());
                        ui.label(c.area_um2.map_or("—".into(), super::annotate::group_thousands));
                        ui.label(c.length_um.map_or("—".into(), super::annotate::group_thousands));
                        ui.end_row();
                    }
                });
                if !self.report.amendments.is_empty() {
                    ui.label(RichText::new("Amendments").strong());
                    for a in &self.report.amendments {
                        ui.label(format!("{} · {} · {}", a.at, a.by, a.reason));
                    }
                }
            });
        changed
    }

    fn buttons(&mut self, ui: &mut egui::Ui, view: &SlideView, classes: &[AnnotationClass], ctx: &egui::Context) {
        let busy = self.saving.is_some();
        ui.horizontal_wrapped(|ui| {
            if self.report.is_editable() {
                if ui
                    .add_enabled(!busy, egui::Button::new("Save draft"))
                    .on_hover_text("Write CASE.report.json and CASE.report.html (drafts also save by themselves)")
                    .clicked()
                {
                    self.save(view, classes, ctx);
                }
                let hashed = self.slide_hash().is_some();
                if ui
                    .add_enabled(!busy && hashed, egui::Button::new("Finalise"))
                    .on_hover_text("Sign the report out: it becomes read-only; later changes are amendments")
                    .on_disabled_hover_text("Available once the slide's SHA-256 is computed")
                    .clicked()
                {
                    self.finalise(view, classes, ctx);
                }
            } else if self.amending.is_none() {
                if self.save_failed
                    && ui
                        .add_enabled(!busy, egui::Button::new("Retry save"))
                        .on_hover_text("The last save failed: write the report again")
                        .clicked()
                {
                    self.save(view, classes, ctx);
                }
                if ui
                    .add_enabled(!busy, egui::Button::new("Amend…"))
                    .on_hover_text("Change a signed-out report; the change is recorded with its reason")
                    .clicked()
                {
                    self.begin_amendment();
                }
            } else {
                let mut reason = self.amending.as_ref().map(|a| a.reason.clone()).unwrap_or_default();
                let label = ui.label("Reason");
                if ui
                    .add(egui::TextEdit::singleline(&mut reason).hint_text("why the report changes"))
                    .labelled_by(label.id)
                    .changed()
                {
                    self.set_amendment_reason(&reason);
                }
                if ui.add_enabled(!busy && !reason.trim().is_empty(), egui::Button::new("Save amendment")).clicked() {
                    self.save_amendment(view, classes, ctx);
                }
                if ui.button("Cancel").clicked() {
                    self.cancel_amendment();
                }
            }
            if busy {
                ui.spinner();
            }
        });
        if let Some(note) = &self.saved_note {
            ui.label(RichText::new(note).small());
        }
        if let Some(html) = &self.html_path {
            ui.label(RichText::new(format!("Printable page: {}", html.display())).small());
        }
    }
}

/// "123, 456 ,789" → ["123", "456", "789"].
fn split_codes(text: &str) -> Vec<String> {
    text.split([',', ';', ' ']).map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// A labelled one-line field in a two-column grid; true when edited.
fn line(ui: &mut egui::Ui, name: &str, value: &mut String, hint: &str) -> bool {
    let label = ui.label(name);
    let changed =
        ui.add(egui::TextEdit::singleline(value).hint_text(hint).desired_width(190.0)).labelled_by(label.id).changed();
    ui.end_row();
    changed
}

/// A labelled multi-line field; true when edited.
fn area(ui: &mut egui::Ui, name: &str, value: &mut String) -> bool {
    let label = ui.label(RichText::new(name).strong());
    ui.add(egui::TextEdit::multiline(value).desired_rows(2).desired_width(ui.available_width()))
        .labelled_by(label.id)
        .changed()
}
