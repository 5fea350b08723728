//! View > Case list: the cases under a folder tree ([`crate::report::case::list_cases`], on a
//! worker), each with its slide count and report state, filterable by text. Opening a case, and
//! moving to the next or previous one, is asked of the app with [`AppCommand::OpenCase`]; the
//! app closes the current case's slides once their reports are saved.

use std::path::PathBuf;

use egui::RichText;

use super::command::{AppCommand, CommandQueue};
use super::job::Job;
use super::message::{Level, Message};
use crate::report::case::{Case, CaseListing, CaseState};

/// The case list panel's state.
#[derive(Default)]
pub struct CaseList {
    /// The folder tree listed (what the folder field holds once listed).
    pub root: Option<PathBuf>,
    /// The folder field as typed.
    folder_text: String,
    listing: Option<Job<Result<CaseListing, String>>>,
    /// The cases of the last listing, sorted by id.
    pub cases: Vec<Case>,
    /// The last listing stopped at a bound, or could not read some folders, or failed.
    pub message: Option<Message>,
    /// Shown cases contain this text (case id or a slide's name), ignoring case.
    pub filter: String,
    /// The highlighted case, by id and folder (survives a new listing).
    selected: Option<(String, PathBuf)>,
}

/// Which case, for [`CaseList::step_from`].
fn key_of(case: &Case) -> (String, PathBuf) {
    (case.id.clone(), case.folder.clone())
}

impl CaseList {
    /// List the cases under `root` on a worker (replacing any listing under way).
    pub fn list(&mut self, root: PathBuf, ctx: &egui::Context) {
        self.folder_text = root.display().to_string();
        self.root = Some(root.clone());
        let fallback: Vec<PathBuf> = crate::report::store::fallback_dir().into_iter().collect();
        self.listing = Some(Job::spawn(ctx, move || {
            crate::report::case::list_cases(&root, &fallback).map_err(|e| format!("{}: {e}", root.display()))
        }));
    }

    /// List the same folder again (report states change as reports are saved).
    pub fn refresh(&mut self, ctx: &egui::Context) {
        if let Some(root) = self.root.clone() {
            self.list(root, ctx);
        }
    }

    /// A listing is under way.
    pub fn is_listing(&self) -> bool {
        self.listing.is_some()
    }

    /// Take a finished listing.
    pub fn poll(&mut self) {
        let Some(job) = &mut self.listing else { return };
        let Some(result) = job.try_take() else { return };
        self.listing = None;
        match result {
            Ok(Ok(listing)) => {
                self.cases = listing.cases;
                self.message = if !listing.problems.is_empty() {
                    Some(Message::warning(format!("Some folders could not be read: {}", listing.problems.join("; "))))
                } else if listing.truncated {
                    Some(Message::warning("Not every folder was listed: the tree is too large or too deep"))
                } else {
                    None
                };
            }
            Ok(Err(e)) => {
                self.cases.clear();
                self.message = Some(Message::error(e));
            }
            Err(stopped) => self.message = Some(Message::error(format!("listing cases: {stopped}"))),
        }
    }

    /// Indices of the cases the filter shows, in list order.
    pub fn shown(&self) -> Vec<usize> {
        let needle = self.filter.trim().to_lowercase();
        (0..self.cases.len())
            .filter(|&i| {
                let c = &self.cases[i];
                needle.is_empty()
                    || c.id.to_lowercase().contains(&needle)
                    || c.slides.iter().any(|s| s.to_string_lossy().to_lowercase().contains(&needle))
                    || c.state.name() == needle
            })
            .collect()
    }

    /// The shown case `step` places after (or before, when negative) `from` (the current case,
    /// else the highlighted one; the first shown case when neither is in the list).
    pub fn step_from(&self, from: Option<&Case>, step: isize) -> Option<Case> {
        let shown = self.shown();
        let anchor = from.map(key_of).or_else(|| self.selected.clone());
        let target = match anchor {
            // Not in the (filtered) list: no next or previous, rather than a jump to the first.
            Some(k) => {
                let at = shown.iter().position(|&i| key_of(&self.cases[i]) == k)?;
                at.checked_add_signed(step).filter(|&p| p < shown.len())?
            }
            None => 0,
        };
        shown.get(target).map(|&i| self.cases[i].clone())
    }

    /// Highlight `case` (the case just opened).
    pub fn select(&mut self, case: &Case) {
        self.selected = Some(key_of(case));
    }

    /// The panel; `current` is the open case.
    pub fn show(&mut self, ui: &mut egui::Ui, current: Option<&Case>, switching: bool, commands: &mut CommandQueue) {
        self.poll();
        ui.heading("Cases");
        let ctx = ui.ctx().clone();
        ui.horizontal(|ui| {
            let label = ui.label("Folder");
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut self.folder_text)
                        .hint_text("a folder of cases")
                        .desired_width(ui.available_width() - 50.0),
                )
                .labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("List").on_hover_text("List the cases in this folder and below it").clicked() || enter)
                && !self.folder_text.trim().is_empty()
            {
                self.list(PathBuf::from(self.folder_text.trim()), &ctx);
            }
        });
        ui.horizontal(|ui| {
            let previous =
                ui.add_enabled(self.step_from(current, -1).is_some(), egui::Button::new("Previous")).on_hover_text(
                    "The previous case (Ctrl+Left or Page Up): its slides replace these, whose reports are saved first",
                );
            if previous.clicked() {
                if let Some(c) = self.step_from(current, -1) {
                    commands.push(AppCommand::OpenCase(c));
                }
            }
            let next = ui
                .add_enabled(self.step_from(current, 1).is_some(), egui::Button::new("Next"))
                .on_hover_text("The next case (Ctrl+Right or Page Down)");
            if next.clicked() {
                if let Some(c) = self.step_from(current, 1) {
                    commands.push(AppCommand::OpenCase(c));
                }
            }
            if self.is_listing() || switching {
                ui.spinner();
            }
        });
        let filter = ui
            .horizontal(|ui| {
                let label = ui.label("Filter");
                ui.add(
                    egui::TextEdit::singleline(&mut self.filter)
                        .hint_text("case id, slide, or none / draft / final / amended")
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id)
            })
            .inner;
        let shown = self.shown();
        // In the filter field, Up and Down move the highlight and Enter opens it.
        if filter.has_focus() {
            let (down, up) = ui.input_mut(|i| {
                (
                    i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowDown),
                    i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowUp),
                )
            });
            if down || up {
                let at = self.selected.as_ref().and_then(|k| shown.iter().position(|&i| key_of(&self.cases[i]) == *k));
                let to = match (at, down) {
                    (None, _) => 0,
                    (Some(p), true) => (p + 1).min(shown.len().saturating_sub(1)),
                    (Some(p), false) => p.saturating_sub(1),
                };
                if let Some(&i) = shown.get(to) {
                    self.selected = Some(key_of(&self.cases[i]));
                }
            }
        }
        if filter.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            let pick = self
                .selected
                .as_ref()
                .and_then(|k| shown.iter().find(|&&i| key_of(&self.cases[i]) == *k))
                .or(shown.first())
                .map(|&i| self.cases[i].clone());
            if let Some(c) = pick {
                commands.push(AppCommand::OpenCase(c));
            }
        }
        if let Some(m) = &self.message {
            m.show(ui);
        }
        if self.root.is_some() && !self.is_listing() {
            ui.label(format!("{} of {} cases", shown.len(), self.cases.len()));
        }
        ui.separator();
        egui::ScrollArea::vertical().auto_shrink([false, false]).show_rows(ui, 20.0, shown.len(), |ui, rows| {
            for &i in &shown[rows] {
                let case = &self.cases[i];
                let key = key_of(case);
                let is_current = current.is_some_and(|c| key_of(c) == key);
                let selected = self.selected.as_ref() == Some(&key);
                let n = case.slides.len();
                let mut text = RichText::new(format!("{}  ·  {n} slide{}", case.id, if n == 1 { "" } else { "s" }));
                if is_current {
                    text = text.strong();
                }
                ui.horizontal(|ui| {
                    let r = ui.selectable_label(selected || is_current, text).on_hover_text(format!(
                        "{}\nDouble-click (or Enter in the filter) to open",
                        case.folder.display()
                    ));
                    if r.clicked() {
                        self.selected = Some(key.clone());
                    }
                    if r.double_clicked() {
                        commands.push(AppCommand::OpenCase(case.clone()));
                    }
                    state_label(ui, case.state);
                });
            }
        });
    }
}

/// The report state: none faint, a draft in the warning colour (work to finish), final and
/// amended plain.
fn state_label(ui: &mut egui::Ui, state: CaseState) {
    let text = match state {
        CaseState::None => RichText::new(state.name()).weak(),
        CaseState::Draft => Level::Warning.text(ui, state.name()),
        CaseState::Final | CaseState::Amended => RichText::new(state.name()),
    };
    ui.label(text);
}
