//! The case report beside the slide: the fields of `wsiview.report/1`, pre-filled from the slide
//! and its annotations; "Save draft", "Finalise…", and amendments of a signed-out report. Workers
//! find the slide's report, hash the slide (with progress) and write the JSON and HTML files; the
//! UI thread only edits the document in memory.
//!
//! Rules a user relies on:
//! - Nothing moves under the pointer: the actions and one fixed-height status line sit above the
//!   fields, and no save, refusal or notice changes their height.
//! - Signing out is deliberate: "Finalise…" and "Save amendment…" ask for confirmation, showing who
//!   signs and what becomes read-only; a report is final only when complete
//!   ([`Report::missing_for_sign_out`]), and the missing fields are marked until filled.
//! - A report is never lost: saves fall back to the app data folder; when no folder takes it the
//!   panel keeps retrying and offers "Save elsewhere…" and an explicit "Discard…"; the window and
//!   the tab ask before closing with unsaved changes ([`ReportPanel::has_unsaved`]).
//! - An amendment is by whoever amends: the remembered identity of the user, not the reviewer
//!   who signed the report out (whose name and role are locked while amending).
//! - When a registry is configured, every save of a signed-out report (Finalise, Amend, a retried
//!   save) also queues it for the registry, on the same worker, after the local save
//!   ([`crate::registry::queue`]); the app then publishes the queue ([`super::publisher`]) and the
//!   status line says whether the registry holds it, refused it, or it stays queued.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Color32, RichText};

use super::command::{AppCommand, CommandQueue};
use super::job::Job;
use super::message::{Level, Message};

use super::slide_view::SlideView;
use crate::annotations::AnnotationClass;
use crate::report::schema::{
    changed_fields, now_rfc3339, parse_date, AnnotationsSummary, ClassSummary, Equity, FieldChange, Report, ReviewType,
    Role, SlideAnnotations, Status, ETHNIC_CATEGORIES,
};
use crate::report::store::{self, SaveRequest, Saved};

/// Reviewer details remembered between runs (filled into new reports): who uses this viewer.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReviewerDefaults {
    pub name: String,
    pub role: Role,
    pub site: String,
}

/// Drafts are saved by themselves this long after the last edit.
const DRAFT_AUTOSAVE_AFTER: Duration = Duration::from_secs(3);
/// After a failed save, the panel tries again this often until it succeeds or the user decides.
const RETRY_AFTER: Duration = Duration::from_secs(10);

enum Hashing {
    /// The worker publishes bytes hashed of the file's size as the job's progress; dropping the
    /// job (the panel closes) stops it.
    Running(Job<Result<String, String>>),
    Done(String),
    Failed(String),
}

struct Amending {
    original: Report,
    reason: String,
}

/// A dialog of the panel's, shown over the window.
#[derive(Clone, Debug, PartialEq)]
enum Dialog {
    ConfirmFinalise,
    ConfirmAmendment,
    /// A folder typed by the user for "Save elsewhere…".
    SaveElsewhere(String),
    ConfirmDiscard,
}

type Found = (Option<(PathBuf, Report)>, Vec<String>);
/// What queueing a saved report for the registry did: `None` when it was not asked for.
type Queued = Option<Result<(), String>>;

pub struct ReportPanel {
    pub report: Report,
    /// Where the report was read from or last saved.
    pub path: Option<PathBuf>,
    pub html_path: Option<PathBuf>,
    /// The report as last read or written (what "Discard" returns to).
    baseline: Report,
    loading: Option<Job<Found>>,
    hashing: Hashing,
    saving: Option<Job<Result<(Saved, Queued), String>>>,
    amending: Option<Amending>,
    snomed_text: String,
    /// The received date as typed; the report holds it only when it is a real date.
    received_text: String,
    /// The last problem, if one stands (a refused sign-out, a failed save, an unreadable report).
    pub message: Option<Message>,
    /// When and where the report was last written (shown when no problem stands).
    pub saved_note: Option<String>,
    /// Unsaved edits of a draft, and when the last one was made.
    dirty_since: Option<Instant>,
    /// Annotation summary cache: the document revision it was made from.
    summary: Option<(u64, Vec<ClassSummary>)>,
    /// For the report of a case of several slides: the case's slides in its order (empty for a
    /// slide alone), and the annotation summaries of its other open slides with the version of
    /// their annotations each was made from ([`Self::set_case_slide_annotations`]).
    case_slides: Vec<PathBuf>,
    case_own: PathBuf,
    /// Slides of the case that could not be opened (file name, why): named in the panel and
    /// when signing out, as their annotations are not counted (or only as last saved).
    unread_slides: Vec<(String, String)>,
    /// The annotations as the panel last showed them ([`Self::current_annotations`]): what an
    /// amendment will record, listed in its confirmation.
    live_annotations: Option<AnnotationsSummary>,
    other_slides: std::collections::HashMap<PathBuf, (AnnotationsVersion, SlideAnnotations)>,
    /// Who is using the viewer (the remembered identity): amendments are recorded in their name.
    current_user: ReviewerDefaults,
    /// The last save failed (why), and when to try again by itself.
    save_failed: Option<(String, Instant)>,
    /// A sign-out was refused: the missing fields are marked until they are filled.
    show_missing: bool,
    dialog: Option<Dialog>,
    /// The slide's folder, for "Save elsewhere…" to start from.
    slide_path: PathBuf,
    /// A save asked for while another was running (`Some(folder)` for "Save elsewhere…"); it
    /// runs as soon as that one ends.
    pending_save: Option<Option<PathBuf>>,
    /// A registry is configured: signed-out reports are queued for it when saved.
    publishing: bool,
    /// A report was queued: the app is to publish the queue.
    publish_requested: bool,
    /// Where the report stands with the registry (queued, published, refused).
    pub registry_note: Option<Message>,
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A slide's part of a case's annotations: its file name, its annotation file's name and
/// `by_class` (its [`store::summarise_annotations`]).
fn slide_annotations(view: &SlideView, by_class: Vec<ClassSummary>) -> SlideAnnotations {
    let file = view
        .annotations
        .autosaver
        .as_ref()
        .map(|s| file_name(s.path()))
        .unwrap_or_else(|| file_name(&crate::annotations::store::sidecar_path(view.slide.path())));
    SlideAnnotations { file_name: file_name(view.slide.path()), file, by_class, extra: Default::default() }
}

/// [`slide_annotations`] of another slide of a case, for [`ReportPanel::set_case_slide_annotations`]
/// (summarised here, on the calling thread, as the report's own slide is).
pub fn case_slide_annotations(view: &SlideView) -> SlideAnnotations {
    let by_class = store::summarise_annotations(view.annotations.doc.annotations(), view.annotations.pixel_size);
    slide_annotations(view, by_class)
}

/// Which state of a view's annotations a summary was made from: the opened slide (a tab closed
/// and opened again is another, whose revisions count from the start again) and the document's
/// revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnotationsVersion {
    opened: usize,
    revision: u64,
}

impl AnnotationsVersion {
    pub fn of(view: &SlideView) -> Self {
        AnnotationsVersion {
            opened: std::sync::Arc::as_ptr(&view.slide) as usize,
            revision: view.annotations.doc.revision(),
        }
    }
}

/// A field's name as the form labels it (the report page's names, shorter where the form is).
fn form_label(field: &str) -> &str {
    match field {
        "case_id" => "Case ID",
        "received_date" => "Received",
        "diagnosis.category" => "Category",
        other => crate::report::schema::field_label(other).unwrap_or(other),
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "(empty)".into(),
        serde_json::Value::String(s) if s.trim().is_empty() => "(empty)".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if items.iter().all(|i| i.is_string()) => {
            items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// "Category: was B5b, now B5a", shortened for a dialog line.
fn change_line(c: &FieldChange) -> String {
    let short = |s: String| {
        if s.chars().count() > 60 {
            format!("{}…", s.chars().take(60).collect::<String>())
        } else {
            s
        }
    };
    // Annotation changes are not cut: a case's later slides are what they are there to show.
    let text = |v: &serde_json::Value| {
        crate::report::schema::annotations_change_text(&c.field, v).unwrap_or_else(|| short(value_text(v)))
    };
    format!("{}: was {}, now {}", form_label(&c.field), text(&c.before), text(&c.after))
}

impl ReportPanel {
    /// Start finding the slide's report and hashing the slide, on workers. For a slide of `case`
    /// (the open case), or a local slide opened on its own that has others of its case beside it
    /// ([`crate::report::case::case_of`]), the case's report: the slide's own, else one made on
    /// another of its slides or naming its case id ([`store::find_for_case`]), so a case never
    /// gets two.
    pub fn start(
        view: &SlideView,
        defaults: &ReviewerDefaults,
        case: Option<&crate::report::case::Case>,
        ctx: &egui::Context,
    ) -> Self {
        let slide_path = view.slide.path().to_path_buf();
        let mut report = Report {
            // The rule the case list uses (src/report/case.rs): slides of a case share it.
            case_id: crate::report::case::case_id_for_slide(&slide_path),
            site: defaults.site.clone(),
            ..Report::default()
        };
        report.reviewer.name = defaults.name.clone();
        report.reviewer.role = defaults.role;
        store::describe_slide(&mut report, &view.slide);

        let path = slide_path.clone();
        let case = case.map(|c| (c.id.clone(), c.slides.clone()));
        let remote = view.is_remote();
        let loading = Job::spawn(ctx, move || {
            // A local slide opened on its own is still one of its case's slides: the case's
            // report is found whichever of them it was made on (the rule of `wsiview case`) —
            // only for a case id that is an accession number: names like `slide_001.svs` or
            // `Scan 2023…` give ids ("slide", "Scan") that join unrelated slides.
            let case = case.or_else(|| {
                let c = (!remote).then(|| crate::report::case::case_of(&path, &[]).ok()).flatten()?;
                let accession = crate::report::case::accession_prefix(&c.id).is_some_and(|a| a == c.id);
                (accession && c.slides.len() > 1).then_some((c.id, c.slides))
            });
            let (found, problems) = match &case {
                Some((id, slides)) => store::find_for_case(&path, slides, id),
                None => store::find_for_slide(&path),
            };
            (found, problems.iter().map(|p| p.to_string()).collect())
        });
        let hash_path = slide_path.clone();
        // A remote slide is streamed from its whole URL (a presigned query included); messages
        // name it by its redacted path only.
        let location = view.is_remote().then(|| view.location().into_owned());
        let hashing = Job::spawn_with_progress(ctx, move |progress| {
            let each = |n, size| {
                progress.set(n, size);
                !progress.is_cancelled()
            };
            match &location {
                Some(url) => crate::report::hash::sha256_slide(url, each),
                None => crate::report::hash::sha256_slide_path(&hash_path, each),
            }
            .map_err(|e| format!("{}: cannot hash: {e}", hash_path.display()))
        });

        ReportPanel {
            baseline: report.clone(),
            report,
            path: None,
            html_path: None,
            loading: Some(loading),
            hashing: Hashing::Running(hashing),
            saving: None,
            amending: None,
            snomed_text: String::new(),
            received_text: String::new(),
            message: None,
            saved_note: None,
            dirty_since: None,
            summary: None,
            case_slides: Vec::new(),
            case_own: PathBuf::new(),
            unread_slides: Vec::new(),
            live_annotations: None,
            other_slides: Default::default(),
            current_user: defaults.clone(),
            save_failed: None,
            show_missing: false,
            dialog: None,
            slide_path,
            pending_save: None,
            publishing: false,
            publish_requested: false,
            registry_note: None,
        }
    }

    /// The case id and status of the report as last read or written (not of unsaved edits).
    pub fn saved_state(&self) -> (&str, Status) {
        (self.baseline.case_id.trim(), self.baseline.status)
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    pub fn is_saving(&self) -> bool {
        self.saving.is_some()
    }

    pub fn is_amending(&self) -> bool {
        self.amending.is_some()
    }

    /// The last save failed and nothing has been written since.
    pub fn save_failed(&self) -> bool {
        self.save_failed.is_some()
    }

    /// A dialog of the panel's is open (keys must not reach the slide).
    pub fn dialog_open(&self) -> bool {
        self.dialog.is_some()
    }

    /// Something the user made is not on disk yet: unsaved edits, a save in flight or failed, or
    /// an amendment begun with changes.
    pub fn has_unsaved(&self) -> bool {
        self.dirty_since.is_some()
            || self.saving.is_some()
            || self.pending_save.is_some()
            || self.save_failed.is_some()
            || self.amending.as_ref().is_some_and(|a| {
                let mut edited = self.report.clone();
                edited.diagnosis.snomed_ct = split_codes(&self.snomed_text);
                !changed_fields(&a.original, &edited).is_empty() || !a.reason.trim().is_empty()
            })
    }

    /// What the status line shows now: one message at a time, problems first.
    pub fn notice(&self) -> Option<Message> {
        if let Some(message) = &self.message {
            return Some(message.clone());
        }
        if self.saving.is_some() {
            return Some(Message::info("Saving…"));
        }
        match (&self.registry_note, &self.saved_note) {
            (Some(registry), Some(saved)) => {
                Some(Message { level: registry.level, text: format!("{}. {saved}", registry.text) })
            }
            (Some(registry), None) => Some(registry.clone()),
            (None, saved) => saved.as_ref().map(|t| Message::info(t.as_str())),
        }
    }

    /// Whether signed-out reports are queued for a registry when saved (the app says, each frame).
    pub fn set_publishing(&mut self, publishing: bool) {
        self.publishing = publishing;
    }

    /// A report was queued since the last call: the queue is to be published.
    pub fn take_publish_request(&mut self) -> bool {
        std::mem::take(&mut self.publish_requested)
    }

    /// What the last publishing run said about this report.
    pub fn set_registry_note(&mut self, note: Message) {
        self.registry_note = Some(note);
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
        if let Some(job) = &mut self.loading {
            if let Some(found) = job.try_take() {
                self.loading = None;
                let (found, problems) = found.unwrap_or_else(|stopped| (None, vec![stopped.to_string()]));
                if let Some((path, report)) = found {
                    self.report = report;
                    self.path = Some(path);
                }
                self.baseline = self.report.clone();
                if !problems.is_empty() {
                    self.message =
                        Some(Message::warning(format!("Reports that could not be read: {}", problems.join("; "))));
                }
                self.sync_texts();
                self.check_hash();
            }
        }
        if let Hashing::Running(job) = &mut self.hashing {
            if let Some(result) = job.try_take() {
                self.hashing = match result {
                    Ok(Ok(h)) => Hashing::Done(h),
                    Ok(Err(e)) => Hashing::Failed(e),
                    Err(stopped) => Hashing::Failed(format!("{}: cannot hash: {stopped}", self.slide_path.display())),
                };
                self.check_hash();
            }
        }
        if let Some(job) = &mut self.saving {
            if let Some(result) = job.try_take() {
                self.saving = None;
                let result = result.unwrap_or_else(|stopped| Err(stopped.to_string()));
                match result {
                    Ok((saved, queued)) => {
                        self.note_queued(queued);
                        self.save_failed = None;
                        let time = now_rfc3339();
                        let time = time.get(11..19).unwrap_or_default();
                        self.saved_note = Some(match &saved.fell_back {
                            None => format!("Saved {} at {time}", saved.json.display()),
                            Some(why) => format!(
                                "Saved in the app data folder at {time}: {} (the usual folder failed: {why})",
                                saved.json.display()
                            ),
                        });
                        if self.message.as_ref().is_some_and(|m| m.text.starts_with("Not saved")) {
                            self.message = None;
                        }
                        self.baseline = saved.report;
                        self.path = Some(saved.json);
                        self.html_path = Some(saved.html);
                    }
                    Err(e) => {
                        self.save_failed = Some((e.clone(), Instant::now()));
                        self.message = Some(Message::error(format!(
                            "Not saved: {e}. Trying again every {} s; or Save elsewhere…",
                            RETRY_AFTER.as_secs()
                        )));
                    }
                }
            }
        }
    }

    /// After a save: what queueing for the registry did (nothing when it was not asked for).
    fn note_queued(&mut self, queued: Queued) {
        match queued {
            None => {}
            Some(Ok(())) => {
                self.registry_note = Some(Message::info("Queued for the registry: publishing…"));
                self.publish_requested = true;
            }
            Some(Err(e)) => {
                self.registry_note = Some(Message::error(format!(
                    "Not queued for the registry ({e}): publish the saved file with `wsiview registry push`"
                )))
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
        } else if self.report.slide.sha256 != *hash && self.report.slide.file_name == file_name(&self.slide_path) {
            // (A case's report signed out on another of its slides names that slide's file.)
            self.message = Some(Message::warning(format!(
                "This {} report was made on a different file (SHA-256 {}…, this slide {}…)",
                self.report.status.as_str(),
                self.report.slide.sha256.get(..12).unwrap_or_default(),
                hash.get(..12).unwrap_or_default()
            )));
        }
    }

    /// The case's slides in its order, when this is the report of a case of several slides
    /// (else empty), `own` being the one this panel's slide was opened as: the report's
    /// annotations are then the case's ([`Self::current_annotations`]).
    pub fn set_case_slides(&mut self, slides: &[PathBuf], own: &Path) {
        if self.case_slides != slides || self.case_own != own {
            self.case_slides = slides.to_vec();
            self.case_own = own.to_path_buf();
            self.other_slides.retain(|p, _| slides.contains(p));
        }
    }

    /// The case's slides that could not be opened (file name, why); empty when all opened.
    pub fn set_unread_case_slides(&mut self, unread: Vec<(String, String)>) {
        self.unread_slides = unread;
    }

    /// What the report says of a case slide that could not be opened: its part as last saved,
    /// or nothing.
    fn unread_lines(&self) -> Vec<String> {
        self.unread_slides
            .iter()
            .map(|(name, _)| {
                let kept = self.report.annotations.by_slide.iter().any(|p| p.file_name == *name);
                if kept {
                    format!("{name} could not be opened: its annotations are counted as last saved")
                } else {
                    format!("{name} could not be opened: its annotations are not in this report")
                }
            })
            .collect()
    }

    /// Whether the summary held for another of the case's slides was made from `version` of its
    /// annotations (then there is nothing to give again).
    pub fn has_case_slide_annotations(&self, slide: &Path, version: AnnotationsVersion) -> bool {
        self.other_slides.get(slide).is_some_and(|(v, _)| *v == version)
    }

    /// The summary of another open slide of the case, made from `version` of its annotations.
    pub fn set_case_slide_annotations(&mut self, slide: &Path, version: AnnotationsVersion, part: SlideAnnotations) {
        self.other_slides.insert(slide.to_path_buf(), (version, part));
    }

    /// The report's annotations as they stand: this slide's; for a case of several slides the
    /// case's, each slide's part in the case's order. A part the report has for a slide not open
    /// now (it failed to open, its tab was closed, or this slide was opened without its case) is
    /// kept as it was. A live part keeps the unknown fields of the part it replaces.
    fn current_annotations(&mut self, view: &SlideView) -> AnnotationsSummary {
        let own = slide_annotations(view, self.annotation_summary(view));
        let mut a = self.report.annotations.clone();
        a.file = own.file.clone();
        let stored = |name: &str| a.by_slide.iter().find(|s| s.file_name == name).cloned();
        let live = |mut part: SlideAnnotations| {
            if let Some(old) = stored(&part.file_name) {
                part.extra = old.extra;
            }
            part
        };
        let slides = if self.case_slides.len() < 2 || !self.case_slides.contains(&self.case_own) {
            // No case of several slides open: a report on one slide, unless it already has the
            // parts of a case's slides (made when the case was open) — then only this one's
            // part changes.
            let mut parts = a.by_slide.clone();
            match parts.iter().position(|s| s.file_name == own.file_name) {
                Some(i) => parts[i] = live(own),
                None if parts.is_empty() => parts.push(own),
                None => parts.push(live(own)),
            }
            parts
        } else {
            self.case_slides
                .iter()
                .filter_map(|p| {
                    if *p == self.case_own {
                        return Some(live(own.clone()));
                    }
                    match self.other_slides.get(p) {
                        Some((_, part)) => Some(live(part.clone())),
                        None => stored(&file_name(p)),
                    }
                })
                .collect()
        };
        a.set_case_slides(slides);
        a
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

    /// Fill what comes from the slide and its annotations, then write both files on a worker:
    /// in the folder it was read from or last saved to (else the slide's), falling back to the app
    /// data folder; in `elsewhere` when the user chose a folder.
    fn save_to(
        &mut self,
        view: &SlideView,
        classes: &[AnnotationClass],
        ctx: &egui::Context,
        elsewhere: Option<PathBuf>,
    ) {
        if self.saving.is_some() {
            // One save at a time, and none is dropped: this one runs when the current one ends
            // (a sign-out clicked while an autosave writes must still be written).
            self.pending_save = Some(elsewhere);
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
        let known_dir = self.path.as_ref().and_then(|p| p.parent()).map(Path::to_path_buf);
        let slide_path = view.slide.path().to_path_buf();
        let publish = self.publishing && self.report.status.is_signed_out();
        let job = Job::spawn(ctx, move || {
            let saved = match elsewhere {
                Some(dir) => store::save_in(&dir, request),
                None => {
                    // Where it was read or last saved — unless that was the fallback folder: then
                    // the slide's folder is tried again first, so a report goes back beside its
                    // slide once the folder is writable. Choosing probes the folder: a file
                    // operation, so here.
                    let dir = known_dir
                        .filter(|d| store::fallback_dir().as_deref() != Some(d.as_path()))
                        .unwrap_or_else(|| store::report_dir(&slide_path));
                    store::save_with_fallback(&dir, request)
                }
            };
            let saved = saved.map_err(|e| e.to_string())?;
            // Queued only once saved locally, and before any attempt to publish.
            let queued =
                publish.then(|| crate::registry::queue::enqueue(&saved.report).map(|_| ()).map_err(|e| e.to_string()));
            Ok((saved, queued))
        });
        self.saving = Some(job);
    }

    fn save(&mut self, view: &SlideView, classes: &[AnnotationClass], ctx: &egui::Context) {
        self.save_to(view, classes, ctx, None);
    }

    fn fill_from_slide(&mut self, view: &SlideView) {
        store::describe_slide(&mut self.report, &view.slide);
        if let Hashing::Done(h) = &self.hashing {
            self.report.slide.sha256 = h.clone();
        }
        self.report.annotations = self.current_annotations(view);
        self.report.diagnosis.snomed_ct = split_codes(&self.snomed_text);
    }

    /// The text fields that hold what the report stores in another form.
    fn sync_texts(&mut self) {
        self.snomed_text = self.report.diagnosis.snomed_ct.join(", ");
        self.received_text = self.report.received_date.clone().unwrap_or_default();
    }

    /// The fields still missing before this draft can be signed out (what finalising sets
    /// itself, `reported_at`, is not listed).
    pub fn missing_for_sign_out(&self) -> Vec<&'static str> {
        let mut probe = self.report.clone();
        if let Hashing::Done(h) = &self.hashing {
            probe.slide.sha256 = h.clone();
        }
        probe.missing_for_sign_out().into_iter().filter(|f| *f != "reported_at").collect()
    }

    /// "Finalise…": refuse with the missing fields marked, or ask for confirmation.
    pub fn request_finalise(&mut self) {
        if !self.report.is_editable() || self.saving.is_some() {
            return;
        }
        let missing = self.missing_for_sign_out();
        if missing.is_empty() {
            self.show_missing = false;
            self.dialog = Some(Dialog::ConfirmFinalise);
        } else {
            self.show_missing = true;
            self.message = Some(Message::warning(self.missing_message(&missing)));
        }
    }

    fn missing_message(&self, missing: &[&str]) -> String {
        let names: Vec<&str> = missing.iter().map(|f| form_label(f)).collect();
        format!("Not finalised: fill in {} (marked *)", names.join(", "))
    }

    /// Sign the draft out and save it (after the confirmation).
    pub fn finalise(&mut self, view: &SlideView, classes: &[AnnotationClass], ctx: &egui::Context) {
        self.fill_from_slide(view);
        match self.report.finalise(&now_rfc3339()) {
            Ok(()) => {
                self.show_missing = false;
                self.message = None;
                self.save(view, classes, ctx);
            }
            Err(problems) => self.message = Some(Message::warning(format!("Not finalised: {problems}"))),
        }
    }

    /// Begin amending a signed-out report: the fields become editable (but the reviewer who
    /// signed it out).
    pub fn begin_amendment(&mut self) {
        if !self.report.is_editable() && self.amending.is_none() {
            self.amending = Some(Amending { original: self.report.clone(), reason: String::new() });
            self.message = None;
        }
    }

    pub fn set_amendment_reason(&mut self, reason: &str) {
        if let Some(a) = &mut self.amending {
            a.reason = reason.to_string();
        }
    }

    /// The changes the amendment in progress makes, as they will be recorded.
    fn pending_changes(&self) -> Vec<FieldChange> {
        let Some(a) = &self.amending else { return Vec::new() };
        let mut edited = self.report.clone();
        edited.diagnosis.snomed_ct = split_codes(&self.snomed_text);
        edited.reviewer = a.original.reviewer.clone();
        // The annotations are recorded as they stand ([`Self::save_amendment`]): listed too.
        if let Some(live) = &self.live_annotations {
            edited.annotations.by_class = live.by_class.clone();
            edited.annotations.by_slide = live.by_slide.clone();
        }
        changed_fields(&a.original, &edited)
    }

    /// "Save amendment…": ask for confirmation, or say why not.
    pub fn request_amendment(&mut self) {
        let Some(a) = &self.amending else { return };
        let problem = if self.current_user.name.trim().is_empty() {
            Some("Not amended: enter your name (Amending as)")
        } else if a.reason.trim().is_empty() {
            Some("Not amended: give the reason for the amendment")
        } else if self.pending_changes().is_empty() {
            Some("Not amended: nothing was changed")
        } else {
            None
        };
        match problem {
            Some(p) => self.message = Some(Message::warning(p)),
            None => self.dialog = Some(Dialog::ConfirmAmendment),
        }
    }

    /// Record the changes as an amendment by the current user (with the reason and the previous
    /// values) and save.
    pub fn save_amendment(&mut self, view: &SlideView, classes: &[AnnotationClass], ctx: &egui::Context) {
        let Some(amending) = self.amending.take() else { return };
        self.report.diagnosis.snomed_ct = split_codes(&self.snomed_text);
        let edited = self.report.clone();
        let mut amended = amending.original.clone();
        let user = self.current_user.clone();
        let annotations = self.current_annotations(view);
        // `amend` keeps the status history, id, sign-out time and reviewer of the original.
        let result = amended.amend(&user.name, Some(user.role), &amending.reason, &now_rfc3339(), |r| {
            // The annotations as they stand now; the file named is still the one signed out.
            *r = edited;
            r.annotations.by_class = annotations.by_class;
            r.annotations.by_slide = annotations.by_slide;
        });
        match result {
            Ok(()) => {
                self.report = amended;
                self.message = None;
                self.save(view, classes, ctx);
            }
            Err(e) => {
                self.message = Some(Message::warning(format!("Not amended: {e}")));
                self.amending = Some(amending);
            }
        }
    }

    pub fn cancel_amendment(&mut self) {
        if let Some(a) = self.amending.take() {
            self.report = a.original;
            self.sync_texts();
            self.message = None;
        }
    }

    /// Throw away what is not saved: back to the report as last read or written.
    pub fn discard_unsaved(&mut self) {
        if self.saving.is_some() {
            return; // what is being written would come back; Discard waits for it
        }
        self.pending_save = None;
        self.amending = None;
        self.report = self.baseline.clone();
        self.sync_texts();
        self.dirty_since = None;
        self.save_failed = None;
        self.show_missing = false;
        self.message = Some(Message::info("Unsaved changes discarded"));
    }

    /// Start saving whatever is unsaved now (a draft's edits; a report whose save failed). An
    /// amendment in progress is not saved: it needs its reason and confirmation.
    pub fn save_now(&mut self, view: &SlideView, classes: &[AnnotationClass], ctx: &egui::Context) {
        if self.saving.is_none()
            && self.amending.is_none()
            && (self.dirty_since.is_some() || self.save_failed.is_some())
        {
            self.save(view, classes, ctx);
        }
    }

    /// Open "Save elsewhere…" (also reachable from the window's close dialog).
    pub fn open_save_elsewhere(&mut self) {
        let start = store::fallback_dir()
            .or_else(|| self.slide_path.parent().map(Path::to_path_buf))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.dialog = Some(Dialog::SaveElsewhere(start));
    }

    /// The panel. `defaults` is the user's remembered identity (the app's): the reviewer's details
    /// typed into a draft, and the amending user's, are sent as [`AppCommand::SetReviewer`].
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        view: &SlideView,
        classes: &[AnnotationClass],
        defaults: &ReviewerDefaults,
        commands: &mut CommandQueue,
    ) {
        let mut edited = defaults.clone();
        self.show_with(ui, view, classes, &mut edited);
        if edited != *defaults {
            commands.push(AppCommand::SetReviewer(edited));
        }
    }

    fn show_with(
        &mut self,
        ui: &mut egui::Ui,
        view: &SlideView,
        classes: &[AnnotationClass],
        defaults: &mut ReviewerDefaults,
    ) {
        let ctx = ui.ctx().clone();
        self.current_user = defaults.clone();
        let (badge, color) = match self.report.status {
            Status::Draft => ("DRAFT", Color32::from_rgb(200, 150, 0)),
            Status::Final => ("FINAL", Color32::from_rgb(40, 150, 60)),
            Status::Amended => ("AMENDED", Color32::from_rgb(40, 120, 170)),
        };
        ui.horizontal(|ui| {
            ui.heading("Case report");
            ui.label(RichText::new(badge).strong().color(color));
            if self.amending.is_some() {
                ui.label(RichText::new("amending").italics());
            } else if self.has_unsaved() {
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
        // The panel's width is the user's (resizing), never the content's.
        ui.set_max_width(ui.available_width());
        let editable = self.editable();
        // Actions and the status line first, in a fixed place: neither a save nor a notice moves
        // the fields below.
        self.buttons(ui, view, classes, defaults, &ctx);
        self.status_line(ui);
        ui.separator();
        let changed = self.fields(ui, view, defaults, editable);
        if changed && self.report.is_editable() {
            self.dirty_since = Some(Instant::now());
        }
        self.dialogs(&ctx, view, classes);
    }

    /// Every frame, shown or not: take in what workers found, keep the refusal message true,
    /// autosave drafts and retry failed saves. Called by the app for every open slide's report.
    pub fn tick(
        &mut self,
        view: &SlideView,
        classes: &[AnnotationClass],
        defaults: &ReviewerDefaults,
        ctx: &egui::Context,
    ) {
        self.poll();
        self.current_user = defaults.clone();
        if self.loading.is_some() {
            return;
        }
        // A refusal stays only while it is true: it follows the fields as they are filled.
        if self.show_missing {
            if !self.report.is_editable() {
                self.show_missing = false;
            } else {
                let missing = self.missing_for_sign_out();
                if missing.is_empty() {
                    self.show_missing = false;
                    if self.message.as_ref().is_some_and(|m| m.text.starts_with("Not finalised")) {
                        self.message = None;
                    }
                } else if self.message.as_ref().is_none_or(|m| m.text.starts_with("Not finalised")) {
                    self.message = Some(Message::warning(self.missing_message(&missing)));
                }
            }
        }
        if self.saving.is_none() {
            if let Some(elsewhere) = self.pending_save.take() {
                self.save_to(view, classes, ctx, elsewhere);
            }
        }
        // While a dialog asks the user something, nothing starts by itself under it.
        if self.dialog.is_some() {
            return;
        }
        // Drafts save themselves a few seconds after the last edit: nothing typed is lost.
        if let Some(since) = self.dirty_since {
            if self.report.is_editable() && self.amending.is_none() && self.save_failed.is_none() {
                let wait = DRAFT_AUTOSAVE_AFTER.saturating_sub(since.elapsed());
                if wait.is_zero() {
                    self.save(view, classes, ctx);
                } else {
                    ctx.request_repaint_after(wait);
                }
            }
        }
        // A failed save is tried again until it succeeds (or the user saves elsewhere or discards).
        if let Some((_, at)) = &self.save_failed {
            if self.saving.is_none() && self.amending.is_none() {
                let wait = RETRY_AFTER.saturating_sub(at.elapsed());
                if wait.is_zero() {
                    self.save(view, classes, ctx);
                } else {
                    ctx.request_repaint_after(wait);
                }
            }
        }
    }

    /// One status line of fixed height (two rows of text, elided; the whole text on hover).
    fn status_line(&self, ui: &mut egui::Ui) {
        let notice = self.notice();
        let row = ui.text_style_height(&egui::TextStyle::Body);
        let size = egui::vec2(ui.available_width(), row * 2.0 + ui.spacing().item_spacing.y);
        let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
        let Some(notice) = notice else { return };
        let color = notice.level.color(ui.visuals());
        let mut job = egui::text::LayoutJob::simple(
            notice.text.clone(),
            egui::TextStyle::Body.resolve(ui.style()),
            color,
            rect.width(),
        );
        job.wrap.max_rows = 2;
        job.wrap.break_anywhere = false;
        // Painted, not laid out: however long the text, it takes exactly this rectangle.
        let galley = ui.painter().layout_job(job);
        ui.painter().with_clip_rect(rect.intersect(ui.clip_rect())).galley(rect.min, galley, color);
        let text = notice.text.clone();
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &text));
        response.on_hover_text(notice.text);
    }

    /// The fields, scrolling; true when any was edited.
    fn fields(&mut self, ui: &mut egui::Ui, view: &SlideView, defaults: &mut ReviewerDefaults, editable: bool) -> bool {
        let mut changed = false;
        let missing: Vec<&str> = if self.show_missing { self.missing_for_sign_out() } else { Vec::new() };
        let mark = |field: &str| missing.contains(&field);
        // The signing reviewer is not changed by an amendment.
        let reviewer_editable = self.report.is_editable();
        egui::ScrollArea::vertical()
            .id_salt("report-scroll")
            .auto_shrink([false, false])
            .max_width(ui.available_width())
            .show(ui, |ui| {
                ui.add_enabled_ui(editable, |ui| {
                    egui::Grid::new("report-fields").num_columns(2).spacing([8.0, 4.0]).show(ui, |ui| {
                        changed |= line(ui, "Case ID", &mut self.report.case_id, "e.g. H26-01234", mark("case_id"));
                        if line(ui, "Site", &mut self.report.site, "site code, e.g. RLH", mark("site")) {
                            changed = true;
                            if self.amending.is_none() {
                                defaults.site = self.report.site.clone();
                            }
                        }
                        let name_label = label(ui, "Reviewer", mark("reviewer.name"));
                        let r = ui
                            .add_enabled(
                                reviewer_editable,
                                egui::TextEdit::singleline(&mut self.report.reviewer.name)
                                    .hint_text("your name")
                                    .desired_width(190.0),
                            )
                            .labelled_by(name_label.id);
                        ui.end_row();
                        if r.changed() {
                            changed = true;
                            defaults.name = self.report.reviewer.name.clone();
                        }
                        ui.label("Role");
                        let before = self.report.reviewer.role;
                        ui.add_enabled_ui(reviewer_editable, |ui| {
                            egui::ComboBox::from_id_salt("report-role").selected_text(before.label()).show_ui(
                                ui,
                                |ui| {
                                    for role in Role::ALL {
                                        ui.selectable_value(&mut self.report.reviewer.role, role, role.label());
                                    }
                                },
                            );
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
                        if line(ui, "Received", &mut self.received_text, "YYYY-MM-DD", mark("received_date")) {
                            changed = true;
                            // Only a real date goes into the report (a draft must stay readable).
                            let text = self.received_text.trim();
                            self.report.received_date = parse_date(text).is_ok().then(|| text.to_string());
                        }
                        ui.label("Reported");
                        match self.report.reported_at.as_deref() {
                            // "2 Dec 2026 13:51 (+00:00)", as the page has it; the stored value
                            // on hover.
                            Some(at) if crate::report::schema::parse_timestamp(at.trim()).is_ok() => {
                                ui.label(crate::report::html::timestamp_text(at)).on_hover_text(at);
                            }
                            Some(at) => {
                                ui.label(at);
                            }
                            None => {
                                ui.label("not yet (set when finalised)");
                            }
                        }
                        ui.end_row();
                    });
                    // A bad date is said on its own line under the grid, where it moves nothing
                    // above it.
                    let typed = self.received_text.trim();
                    let date_problem = match parse_date(typed) {
                        Err(e) if !typed.is_empty() => e.to_string(),
                        _ => String::new(),
                    };
                    ui.add(egui::Label::new(Level::Error.text(ui, date_problem).small()));
                    ui.separator();
                    changed |= area(ui, "Specimen", &mut self.report.specimen, mark("specimen"));
                    changed |= area(ui, "Clinical details", &mut self.report.clinical_details, false);
                    changed |= area(ui, "Macroscopy", &mut self.report.macroscopy, false);
                    changed |= area(ui, "Microscopy", &mut self.report.microscopy, mark("microscopy"));
                    changed |= area(ui, "Diagnosis", &mut self.report.diagnosis.text, mark("diagnosis.text"));
                    egui::Grid::new("report-codes").num_columns(2).show(ui, |ui| {
                        changed |= line(
                            ui,
                            "Category",
                            &mut self.report.diagnosis.category,
                            "network code, e.g. B5b",
                            mark("diagnosis.category"),
                        );
                        changed |= line(ui, "SNOMED CT", &mut self.snomed_text, "codes, comma-separated", false);
                    });
                    changed |= area(ui, "Comments", &mut self.report.comments, false);
                    ui.separator();
                    changed |= equity_fields(ui, &mut self.report);
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
                    label(ui, "SHA-256", mark("slide.sha256"));
                    match &self.hashing {
                        Hashing::Running(job) => {
                            let fraction = job.fraction();
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
                            Level::Error.label(ui, e.as_str());
                        }
                    }
                    ui.end_row();
                });
                let annotations = self.current_annotations(view);
                self.live_annotations = Some(annotations.clone());
                let summary = annotations.by_class;
                if annotations.by_slide.is_empty() {
                    ui.label(RichText::new("Annotations").strong());
                } else {
                    ui.label(RichText::new(format!("Annotations ({} slides)", annotations.by_slide.len())).strong())
                        .on_hover_text("The case's annotations: every slide of it that has been opened");
                }
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
                for slide in &annotations.by_slide {
                    let n: u64 = slide.by_class.iter().map(|c| c.count).sum();
                    ui.label(format!("{}: {n} object{}", slide.file_name, if n == 1 { "" } else { "s" }));
                }
                for (line, (_, why)) in self.unread_lines().into_iter().zip(&self.unread_slides) {
                    Level::Warning.label(ui, line).on_hover_text(why.as_str());
                }
                if !self.report.amendments.is_empty() {
                    ui.label(RichText::new("Amendments").strong());
                    for a in &self.report.amendments {
                        let role = a.role.map(|r| format!(" ({})", r.label())).unwrap_or_default();
                        ui.label(format!("{} · {}{role} · {}", a.at, a.by, a.reason));
                        for c in &a.changes {
                            ui.label(RichText::new(format!("    {}", change_line(c))).small());
                        }
                    }
                }
            });
        changed
    }

    fn buttons(
        &mut self,
        ui: &mut egui::Ui,
        view: &SlideView,
        classes: &[AnnotationClass],
        defaults: &mut ReviewerDefaults,
        ctx: &egui::Context,
    ) {
        let busy = self.saving.is_some();
        if self.amending.is_some() {
            // Who amends: the user's own remembered identity, not the reviewer who signed out.
            ui.horizontal(|ui| {
                let label = ui.label("Amending as");
                if ui
                    .add(
                        egui::TextEdit::singleline(&mut defaults.name)
                            .hint_text("your name")
                            .desired_width(ui.available_width()),
                    )
                    .labelled_by(label.id)
                    .changed()
                {
                    self.current_user.name = defaults.name.clone();
                }
            });
            ui.horizontal(|ui| {
                ui.label("Your role");
                egui::ComboBox::from_id_salt("amender-role").selected_text(defaults.role.label()).show_ui(ui, |ui| {
                    for role in Role::ALL {
                        ui.selectable_value(&mut defaults.role, role, role.label());
                    }
                });
                self.current_user.role = defaults.role;
            });
            ui.horizontal(|ui| {
                let mut reason = self.amending.as_ref().map(|a| a.reason.clone()).unwrap_or_default();
                let label = ui.label("Reason");
                if ui
                    .add(
                        egui::TextEdit::singleline(&mut reason)
                            .hint_text("why the report changes")
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(label.id)
                    .changed()
                {
                    self.set_amendment_reason(&reason);
                }
            });
        }
        ui.horizontal(|ui| {
            if self.save_failed.is_some() {
                if ui
                    .add_enabled(!busy, egui::Button::new("Retry save"))
                    .on_hover_text("Write the report again now")
                    .clicked()
                {
                    self.save(view, classes, ctx);
                }
                if ui
                    .add_enabled(!busy, egui::Button::new("Save elsewhere…"))
                    .on_hover_text("Write the report to a folder you choose")
                    .clicked()
                {
                    self.open_save_elsewhere();
                }
                if ui
                    .add_enabled(!busy, egui::Button::new("Discard…"))
                    .on_hover_text("Throw away what is not saved")
                    .clicked()
                {
                    self.dialog = Some(Dialog::ConfirmDiscard);
                }
            } else if self.amending.is_some() {
                if ui.add_enabled(!busy, egui::Button::new("Save amendment…")).clicked() {
                    self.request_amendment();
                }
                if ui.button("Cancel").clicked() {
                    self.cancel_amendment();
                }
            } else if self.report.is_editable() {
                if ui
                    .add_enabled(!busy, egui::Button::new("Save draft"))
                    .on_hover_text("Write CASE.report.json and CASE.report.html (drafts also save by themselves)")
                    .clicked()
                {
                    self.save(view, classes, ctx);
                }
                // Signing out sits apart from saving, at the other end of the row.
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let hashed = self.slide_hash().is_some();
                    if ui
                        .add_enabled(!busy && hashed, egui::Button::new("Finalise…"))
                        .on_hover_text("Sign the report out: it becomes read-only; later changes are amendments")
                        .on_disabled_hover_text("Available once the slide's SHA-256 is computed")
                        .clicked()
                    {
                        self.request_finalise();
                    }
                });
            } else if ui
                .add_enabled(!busy, egui::Button::new("Amend…"))
                .on_hover_text("Change a signed-out report; the change is recorded with its reason and your name")
                .clicked()
            {
                self.begin_amendment();
            }
        });
    }

    fn dialogs(&mut self, ctx: &egui::Context, view: &SlideView, classes: &[AnnotationClass]) {
        let Some(dialog) = self.dialog.clone() else { return };
        let mut close = false;
        match dialog {
            Dialog::ConfirmFinalise => {
                let r = &self.report;
                let who = format!("{} ({}), site {}", r.reviewer.name.trim(), r.reviewer.role.label(), r.site.trim());
                let (case, category) = (r.case_id.clone(), r.diagnosis.category.clone());
                let unread = self.unread_lines();
                egui::Modal::new(egui::Id::unique("confirm-finalise")).show(ctx, |ui| {
                    ui.set_max_width(420.0);
                    ui.heading("Sign out this report?");
                    ui.label(format!("Signed by: {who}"));
                    ui.label(format!("Case {case}, diagnosis category {category}"));
                    for line in unread {
                        Level::Warning.label(ui, line);
                    }
                    ui.label(
                        "Once final, every field is read-only and the time of sign-out is recorded. Later changes \
                         are amendments, kept with their reason and the previous values.",
                    );
                    ui.horizontal(|ui| {
                        if ui.button("Sign out").clicked() {
                            close = true;
                            self.finalise(view, classes, ctx);
                        }
                        if ui.button("Cancel").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                            close = true;
                        }
                    });
                });
            }
            Dialog::ConfirmAmendment => {
                let changes = self.pending_changes();
                let reason = self.amending.as_ref().map(|a| a.reason.clone()).unwrap_or_default();
                let who = format!("{} ({})", self.current_user.name.trim(), self.current_user.role.label());
                egui::Modal::new(egui::Id::unique("confirm-amendment")).show(ctx, |ui| {
                    ui.set_max_width(460.0);
                    ui.heading("Save this amendment?");
                    ui.label(format!("Amended by: {who}"));
                    ui.label(format!("Reason: {}", reason.trim()));
                    ui.label(format!(
                        "Signed out by: {} (stays as the report's reviewer)",
                        self.report.reviewer.name.trim()
                    ));
                    ui.label(RichText::new("Changes (previous values are kept in the report):").strong());
                    for c in &changes {
                        ui.label(change_line(c));
                    }
                    ui.horizontal(|ui| {
                        if ui.button("Save amendment").clicked() {
                            close = true;
                            self.save_amendment(view, classes, ctx);
                        }
                        if ui.button("Cancel").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                            close = true;
                        }
                    });
                });
            }
            Dialog::SaveElsewhere(mut folder) => {
                let mut chosen = None;
                egui::Modal::new(egui::Id::unique("save-elsewhere")).show(ctx, |ui| {
                    ui.set_max_width(460.0);
                    ui.heading("Save the report elsewhere");
                    let label = ui.label("Folder");
                    ui.add(egui::TextEdit::singleline(&mut folder).desired_width(420.0)).labelled_by(label.id);
                    ui.horizontal(|ui| {
                        if ui.add_enabled(!folder.trim().is_empty(), egui::Button::new("Save here")).clicked() {
                            chosen = Some(PathBuf::from(folder.trim()));
                        }
                        if ui.button("Cancel").clicked() {
                            close = true;
                        }
                    });
                });
                if let Some(dir) = chosen {
                    close = true;
                    self.save_to(view, classes, ctx, Some(dir));
                } else if !close {
                    self.dialog = Some(Dialog::SaveElsewhere(folder));
                }
            }
            Dialog::ConfirmDiscard => {
                egui::Modal::new(egui::Id::unique("confirm-discard")).show(ctx, |ui| {
                    ui.set_max_width(420.0);
                    ui.heading("Discard what is not saved?");
                    ui.label("The report goes back to its last saved version. This cannot be undone.");
                    let busy = self.saving.is_some();
                    ui.horizontal(|ui| {
                        if ui
                            .add_enabled(!busy, egui::Button::new("Discard"))
                            .on_disabled_hover_text("A save is being written; wait for it")
                            .clicked()
                        {
                            close = true;
                            self.discard_unsaved();
                        }
                        if ui.button("Keep").clicked() {
                            close = true;
                        }
                    });
                });
            }
        }
        if close {
            self.dialog = None;
        }
    }
}

/// "123, 456 ,789" → ["123", "456", "789"].
/// What the panel shows for an ethnic category code: "N – Black or Black British: African".
fn ethnic_text(code: Option<&str>) -> String {
    match code {
        None => NOT_RECORDED.into(),
        Some(code) => match ETHNIC_CATEGORIES.iter().find(|(c, _, _)| *c == code) {
            Some((_, meaning, _)) => format!("{code} – {meaning}"),
            None => code.to_string(),
        },
    }
}

/// What the panel shows for an IMD decile: "1 – most deprived", "5", "10 – least deprived".
fn decile_text(decile: Option<u8>) -> String {
    match decile {
        None => NOT_RECORDED.into(),
        Some(1) => "1 – most deprived".into(),
        Some(10) => "10 – least deprived".into(),
        Some(d) => d.to_string(),
    }
}

/// Shown when a report has no value for an equity field (stored as absent).
const NOT_RECORDED: &str = "not recorded";

/// "Equity of service": the patient's ethnic category and IMD decile, entered by lab staff; each
/// may be "not recorded". Sets `report.equity` (absent when neither is recorded and it holds
/// nothing else); true when either changed.
fn equity_fields(ui: &mut egui::Ui, report: &mut Report) -> bool {
    let equity = report.equity.clone().unwrap_or_default();
    let (mut ethnic, mut decile) = (equity.ethnic_category.clone(), equity.imd_decile);
    ui.label(RichText::new("Equity of service").strong());
    egui::Grid::new("report-equity").num_columns(2).show(ui, |ui| {
        let name = ui.label("Ethnic category");
        // A fixed width, the long names cut: choosing one must not widen the panel.
        egui::ComboBox::from_id_salt("report-ethnic")
            .selected_text(ethnic_text(ethnic.as_deref()))
            .width(170.0)
            .truncate()
            .height(480.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut ethnic, None, NOT_RECORDED);
                for (code, _, _) in ETHNIC_CATEGORIES {
                    ui.selectable_value(&mut ethnic, Some(code.to_string()), ethnic_text(Some(code)));
                }
            })
            .response
            .on_hover_text(ethnic_text(ethnic.as_deref()))
            .labelled_by(name.id);
        ui.end_row();
        let name = ui.label("IMD decile");
        egui::ComboBox::from_id_salt("report-imd")
            .selected_text(decile_text(decile))
            .height(300.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut decile, None, NOT_RECORDED);
                for d in 1..=10u8 {
                    ui.selectable_value(&mut decile, Some(d), decile_text(Some(d)));
                }
            })
            .response
            .labelled_by(name.id);
        ui.end_row();
    });
    if (&ethnic, decile) == (&equity.ethnic_category, equity.imd_decile) {
        return false;
    }
    let edited = Equity { ethnic_category: ethnic, imd_decile: decile, ..equity };
    let empty = edited.ethnic_category.is_none() && edited.imd_decile.is_none() && edited.extra.is_empty();
    report.equity = (!empty).then_some(edited);
    true
}

fn split_codes(text: &str) -> Vec<String> {
    text.split([',', ';', ' ']).map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// A field's label followed by a slot of fixed width holding a red asterisk when the field is
/// required for sign-out and empty (the slot is always there, so marking moves nothing).
fn label(ui: &mut egui::Ui, name: &str, missing: bool) -> egui::Response {
    label_styled(ui, RichText::new(name), missing)
}

fn label_styled(ui: &mut egui::Ui, text: RichText, missing: bool) -> egui::Response {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 2.0;
        let response = ui.label(text);
        let mark = Level::Error.text(ui, if missing { "*" } else { "" }).strong();
        let height = ui.text_style_height(&egui::TextStyle::Body);
        ui.add_sized([10.0, height], egui::Label::new(mark)).on_hover_text("required to sign out");
        response
    })
    .inner
}

/// A labelled one-line field in a two-column grid; true when edited.
fn line(ui: &mut egui::Ui, name: &str, value: &mut String, hint: &str, missing: bool) -> bool {
    let label = label(ui, name, missing);
    let changed =
        ui.add(egui::TextEdit::singleline(value).hint_text(hint).desired_width(190.0)).labelled_by(label.id).changed();
    ui.end_row();
    changed
}

/// A labelled multi-line field; true when edited.
fn area(ui: &mut egui::Ui, name: &str, value: &mut String, missing: bool) -> bool {
    let label = label_styled(ui, RichText::new(name).strong(), missing);
    ui.add(egui::TextEdit::multiline(value).desired_rows(2).desired_width(ui.available_width()))
        .labelled_by(label.id)
        .changed()
}
