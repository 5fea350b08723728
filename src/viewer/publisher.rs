//! Publishing signed-out reports to the report registry from the viewer, and File > Report
//! registry….
//!
//! Rules a user relies on:
//! - A registry is configured by the setting (a `postgresql://` URI or libpq keywords, never a
//!   password: [`check_setting`]) or, when that is empty, by `WSIVIEW_REGISTRY`.
//! - The report panel queues a report it has saved signed out ([`crate::registry::queue`]); the
//!   queue is then published on a worker (connect, [`publish_queue_in`]): the UI thread never
//!   waits on the network or a file.
//! - The queue is tried at start-up and every [`RETRY_EVERY`] while it is not empty, and at once
//!   after each new sign-out; one run at a time.
//! - What a run found is told to the report panels as one note per report: published, queued
//!   (with the registry's [`Target::shown`], never a password) or refused (with the reason).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::job::Job;
use super::message::Message;
use crate::registry::connect::check_setting;
use crate::registry::queue::{publish_queue_in, queue_dir, queued_files, QueueOutcome};
use crate::registry::{Origin, Target};

/// While the queue is not empty, it is tried again this often.
pub const RETRY_EVERY: Duration = Duration::from_secs(60);

/// One publishing run's result.
pub struct Run {
    /// The registry as shown to people ([`Target::shown`]); empty when it was not reached for.
    target: String,
    /// The ids of the reports queued when the run began.
    queued: Vec<String>,
    /// What publishing did, or why nothing was done (and whether the registry was unreachable).
    outcome: Result<QueueOutcome, (String, bool)>,
}

/// File > Report registry… while it is open.
pub struct RegistryDialog {
    /// The text being edited.
    pub text: String,
    /// Why the text was refused.
    pub error: Option<String>,
    /// The full check ([`Target::parse`] reads service and password files) on a worker.
    checking: Option<Job<Result<String, String>>>,
}

/// The registry setting and the queue's publishing runs.
pub struct Publisher {
    /// The setting (persisted): a URI or keywords without a password; empty for
    /// `WSIVIEW_REGISTRY`.
    pub setting: String,
    /// `WSIVIEW_REGISTRY` as the viewer started with it.
    env: Option<String>,
    job: Option<Job<Run>>,
    /// A run was asked for (a sign-out, a new setting) while another ran, or before the first.
    again: bool,
    /// When to try the queue again by itself.
    next_try: Option<Instant>,
    /// The start-up run has been made.
    started: bool,
    pub dialog: Option<RegistryDialog>,
}

impl Default for Publisher {
    fn default() -> Self {
        Self::new()
    }
}

/// The key a report id is known by here (trimmed, lower-case).
pub fn id_key(report_id: &str) -> String {
    report_id.trim().to_ascii_lowercase()
}

impl Publisher {
    /// No setting yet; `WSIVIEW_REGISTRY` read now.
    pub fn new() -> Self {
        Publisher {
            setting: String::new(),
            env: std::env::var("WSIVIEW_REGISTRY").ok().filter(|v| !v.trim().is_empty()),
            job: None,
            again: false,
            next_try: None,
            started: false,
            dialog: None,
        }
    }

    /// The setting as it may be kept: itself when it names no password and is well-formed, else
    /// empty (a hand-edited settings file is not trusted).
    pub fn kept_setting(text: &str) -> String {
        let text = text.trim();
        if check_setting(text).is_ok() {
            text.to_string()
        } else {
            String::new()
        }
    }

    /// The registry to publish to, and where it was given.
    pub fn configured(&self) -> Option<(String, Origin)> {
        if !self.setting.trim().is_empty() {
            return Some((self.setting.clone(), Origin::CommandLine));
        }
        self.env.clone().map(|e| (e, Origin::Environment))
    }

    /// Whether signed-out reports are to be published.
    pub fn is_configured(&self) -> bool {
        self.configured().is_some()
    }

    /// Publish the queue as soon as possible (after a report was queued).
    pub fn request(&mut self) {
        self.again = true;
    }

    /// Whether a run is going on.
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Every frame: take in a finished run (the notes for the report panels, by [`id_key`]),
    /// and start one when asked, at start-up, or when the retry is due.
    pub fn tick(&mut self, ctx: &egui::Context) -> Option<HashMap<String, Message>> {
        let notes = self.poll();
        self.poll_dialog();
        if self.job.is_some() {
            return notes;
        }
        let Some((text, origin)) = self.configured() else { return notes };
        let due = self.next_try.is_some_and(|at| at <= Instant::now());
        if !self.started || self.again || due {
            self.started = true;
            self.again = false;
            self.next_try = None;
            self.job = Some(Job::spawn(ctx, move || run(&text, origin, queue_dir())));
        } else if let Some(at) = self.next_try {
            ctx.request_repaint_after(at.saturating_duration_since(Instant::now()));
        }
        notes
    }

    fn poll(&mut self) -> Option<HashMap<String, Message>> {
        let run = self.job.as_mut()?.try_take()?;
        self.job = None;
        let run = run.unwrap_or_else(|stopped| Run {
            target: String::new(),
            queued: Vec::new(),
            outcome: Err((stopped.to_string(), false)),
        });
        let (notes, still_queued) = notes(&run);
        self.next_try = still_queued.then(|| Instant::now() + RETRY_EVERY);
        Some(notes)
    }

    /// Open File > Report registry… with the setting.
    pub fn open_dialog(&mut self) {
        self.dialog = Some(RegistryDialog { text: self.setting.clone(), error: None, checking: None });
    }

    /// Whether the dialog is open (keys must not reach the slide).
    pub fn dialog_open(&self) -> bool {
        self.dialog.is_some()
    }

    fn poll_dialog(&mut self) {
        let Some(dialog) = &mut self.dialog else { return };
        let Some(checked) = dialog.checking.as_mut().and_then(|j| j.try_take()) else { return };
        dialog.checking = None;
        match checked.unwrap_or_else(|stopped| Err(stopped.to_string())) {
            Ok(_) => {
                self.setting = dialog.text.trim().to_string();
                self.dialog = None;
                self.again = true;
            }
            Err(e) => dialog.error = Some(e),
        }
    }

    /// "Save" in the dialog: an empty text clears the setting; any other is checked (no password,
    /// known parameters, then [`Target::parse`] on a worker) before it is kept.
    fn save_dialog(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.dialog else { return };
        let text = dialog.text.trim().to_string();
        if text.is_empty() {
            self.setting.clear();
            self.dialog = None;
            self.again = true;
            return;
        }
        if let Err(e) = check_setting(&text) {
            dialog.error = Some(e.to_string());
            return;
        }
        dialog.error = None;
        dialog.checking = Some(Job::spawn(ctx, move || {
            Target::parse(&text, Origin::CommandLine).map(|t| t.shown()).map_err(|e| e.to_string())
        }));
    }

    /// The dialog, when open.
    pub fn show_dialog(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.dialog else { return };
        let (mut save, mut cancel) = (false, false);
        let env = if self.env.is_some() { "WSIVIEW_REGISTRY is used" } else { "reports are not published" };
        egui::Window::new("Report registry").collapsible(false).resizable(false).show(ctx, |ui| {
            ui.label("Signed-out reports are published to this PostgreSQL registry; when it cannot be reached they are queued and published later.");
            ui.label(format!("Empty: {env}. Never a password here: use ~/.pgpass or PGPASSWORD."));
            ui.horizontal(|ui| {
                let label = ui.label("Registry");
                ui.add(
                    egui::TextEdit::singleline(&mut dialog.text)
                        .hint_text("postgresql://user@host/dbname?sslmode=verify-full")
                        .desired_width(420.0),
                )
                .labelled_by(label.id);
            });
            if let Some(error) = &dialog.error {
                ui.colored_label(ui.visuals().error_fg_color, error);
            }
            ui.horizontal(|ui| {
                if dialog.checking.is_some() {
                    ui.spinner();
                } else {
                    save = ui.button("Save").clicked();
                }
                cancel = ui.button("Cancel").clicked();
            });
        });
        if cancel {
            self.dialog = None;
        } else if save {
            self.save_dialog(ctx);
        }
    }
}

/// The report ids of the queued files (from their names, `REPORTID-HASH12.report.json`).
fn queued_ids(dir: &std::path::Path) -> Vec<String> {
    let files = queued_files(dir).unwrap_or_default();
    files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter_map(|n| n.strip_suffix(".report.json").and_then(|s| s.rsplit_once('-')).map(|(id, _)| id_key(id)))
        .collect()
}

/// One run, on a worker: nothing when the queue is empty; else connect and publish it.
fn run(text: &str, origin: Origin, dir: Option<PathBuf>) -> Run {
    let Some(dir) = dir else {
        return Run { target: String::new(), queued: Vec::new(), outcome: Ok(QueueOutcome::default()) };
    };
    let queued = queued_ids(&dir);
    if queued.is_empty() {
        return Run { target: String::new(), queued, outcome: Ok(QueueOutcome::default()) };
    }
    let target = match Target::parse(text, origin) {
        Ok(target) => target,
        Err(e) => return Run { target: String::new(), queued, outcome: Err((e.to_string(), false)) },
    };
    let shown = target.shown();
    let outcome = target
        .connect()
        .and_then(|mut client| publish_queue_in(&mut client, &dir))
        .map_err(|e| (e.to_string(), e.is_connection_lost()));
    Run { target: shown, queued, outcome }
}

/// The note for each report a run dealt with, and whether anything stays queued.
fn notes(run: &Run) -> (HashMap<String, Message>, bool) {
    let mut notes = HashMap::new();
    let queued = |why: &str| {
        if run.target.is_empty() {
            Message::warning(format!("Queued for the registry: {why}; will retry"))
        } else {
            Message::warning(format!("Queued: the registry cannot be reached ({}); will retry", run.target))
        }
    };
    match &run.outcome {
        // Reached, but refused as a whole (login, schema version, grants): say why.
        Err((why, false)) if !run.target.is_empty() => {
            let note = Message::error(format!("Queued: the registry refused the connection: {why}; will retry"));
            for id in &run.queued {
                notes.insert(id_key(id), note.clone());
            }
            (notes, !run.queued.is_empty())
        }
        Err((why, _)) => {
            for id in &run.queued {
                notes.insert(id_key(id), queued(why));
            }
            (notes, !run.queued.is_empty())
        }
        Ok(outcome) => {
            let published = Message::info("Published to the registry");
            for id in outcome.published.iter().map(|(id, _)| id).chain(&outcome.unchanged) {
                notes.insert(id_key(id), published.clone());
            }
            for (id, reason) in &outcome.refused {
                notes.insert(id_key(id), Message::error(format!("Refused by the registry: {reason}")));
            }
            // Kept without a lost connection: another push stored it at that moment.
            let kept = Message::warning("Queued for the registry: another publisher was storing it; will retry");
            for id in &outcome.still_queued {
                let note = if outcome.interrupted.is_some() { queued("") } else { kept.clone() };
                notes.insert(id_key(id), note);
            }
            (notes, !outcome.still_queued.is_empty())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_say_published_queued_or_refused_and_never_a_password() {
        let outcome = QueueOutcome {
            published: vec![("A".into(), 1)],
            unchanged: vec!["b".into()],
            refused: vec![("c".into(), "site \"NBT\" is not one this role publishes for".into())],
            ..Default::default()
        };
        let run = Run { target: "postgresql://u@h:5432/db".into(), queued: vec![], outcome: Ok(outcome) };
        let (notes, again) = super::notes(&run);
        assert!(!again);
        assert_eq!(notes["a"].text, "Published to the registry");
        assert_eq!(notes["b"].text, "Published to the registry");
        assert!(notes["c"].text.starts_with("Refused by the registry: site \"NBT\""));
        let run = Run {
            target: "postgresql://u@h:5432/db".into(),
            queued: vec!["x".into()],
            outcome: Err(("connection refused".into(), true)),
        };
        let (notes, again) = super::notes(&run);
        assert!(again);
        assert_eq!(notes["x"].text, "Queued: the registry cannot be reached (postgresql://u@h:5432/db); will retry");
    }

    #[test]
    fn the_setting_never_keeps_a_password() {
        assert_eq!(Publisher::kept_setting(" postgresql://u@h/db "), "postgresql://u@h/db");
        assert_eq!(Publisher::kept_setting("postgresql://u:pw@h/db"), "");
        assert_eq!(Publisher::kept_setting("host=h password=pw"), "");
    }

    #[test]
    fn queued_ids_come_from_the_file_names() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = crate::report::synth::report(1, &["RLH"], 3);
        crate::registry::queue::enqueue_in(tmp.path(), &r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(queued_ids(tmp.path()), vec![id_key(&r.report_id)]);
    }
}
