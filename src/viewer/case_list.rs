//! View > Case list: the cases under a folder tree ([`crate::report::case::list_cases`], on a
//! worker), each with its slide count and report state, filterable by text. Opening a case, and
//! moving to the next or previous one, is asked of the app with [`AppCommand::OpenCase`]; the
//! app closes the current case's slides once their reports are saved.
//!
//! With a report registry configured and the reviewer's site set, each listing (and a change of
//! registry or site) also asks the registry (on a worker) for the report state of the site's
//! cases: a case signed out there — by anyone at the site, on any computer — counts as reported,
//! and "Hide reported" (on by default once the registry answered) leaves the cases of the site
//! with no final report yet. A registry that cannot be reached is said, and the list falls back
//! to this computer's reports.

use std::collections::HashMap;
use std::path::PathBuf;

use egui::RichText;

use super::command::{AppCommand, CommandQueue};
use super::job::Job;
use super::message::{Level, Message};
use crate::registry::{Origin, Target};
use crate::report::case::{Case, CaseListing, CaseState};

/// Where to ask which cases are reported: the registry setting, where it was given, and the
/// reviewer's site.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistrySource {
    pub setting: String,
    pub origin: Origin,
    pub site: String,
}

type RegistryStates = Result<HashMap<String, CaseState>, String>;

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
    /// The registry to ask at each listing (set by the app from its settings each frame,
    /// [`CaseList::set_registry`]).
    pub registry: Option<RegistrySource>,
    /// The question under way, and the source it was asked of.
    registry_job: Option<(RegistrySource, Job<RegistryStates>)>,
    /// The registry's report state of the site's cases, by case id, from the last answer.
    pub registry_states: Option<HashMap<String, CaseState>>,
    /// What the registry said (how many reported, or why it was not reached).
    pub registry_message: Option<Message>,
    /// Hide final and amended cases; `None`: hidden once the registry has answered.
    pub hide_reported: Option<bool>,
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
        self.ask_registry(ctx);
    }

    /// Where to ask which cases are reported (the app's settings, each frame). A source that
    /// changes — configured, changed, or gone — drops what the previous one said and any question
    /// under way; a new one is asked at once when a folder is listed.
    pub fn set_registry(&mut self, source: Option<RegistrySource>, ctx: &egui::Context) {
        if source == self.registry {
            return;
        }
        self.registry = source;
        self.registry_states = None;
        self.registry_message = None;
        self.registry_job = None;
        if self.root.is_some() {
            self.ask_registry(ctx);
        }
    }

    /// Ask the registry for the site's case states on a worker (replacing a question under way);
    /// with no registry, forget what one said.
    fn ask_registry(&mut self, ctx: &egui::Context) {
        let Some(source) = self.registry.clone() else {
            self.registry_job = None;
            self.registry_states = None;
            self.registry_message = None;
            return;
        };
        let asked = source.clone();
        let job = Job::spawn(ctx, move || {
            let target = Target::parse(&source.setting, source.origin).map_err(|e| e.to_string())?;
            let mut client = target.connect().map_err(|e| e.to_string())?;
            crate::registry::read::case_states(&mut client, &source.site).map_err(|e| e.to_string())
        });
        self.registry_job = Some((asked, job));
    }

    /// The state shown for `case`: the most advanced of this computer's reports and the
    /// registry's.
    pub fn state_of(&self, case: &Case) -> CaseState {
        let registry = self.registry_states.as_ref().and_then(|s| s.get(case.id.trim())).copied();
        case.state.max(registry.unwrap_or_default())
    }

    /// What this computer's report of `case` now is (saved or read by the report panel): shown
    /// at once, without listing the folder again. The most advanced state stays (the listing's
    /// is that of all the case's reports).
    pub fn note_report_state(&mut self, case: &Case, state: CaseState) {
        for c in self.cases.iter_mut().filter(|c| c.id == case.id && c.folder == case.folder) {
            c.state = c.state.max(state);
        }
    }

    /// Whether final and amended cases are hidden.
    pub fn hides_reported(&self) -> bool {
        self.hide_reported.unwrap_or(self.registry_states.is_some())
    }

    fn poll_registry(&mut self) {
        let Some((asked, job)) = &mut self.registry_job else { return };
        // Asked of another registry or for another site than the one set now: not this list's.
        if self.registry.as_ref() != Some(&*asked) {
            self.registry_job = None;
            return;
        }
        let Some(result) = job.try_take() else { return };
        let site = asked.site.clone();
        self.registry_job = None;
        match result {
            Ok(Ok(states)) => {
                let reported = states.values().filter(|s| **s >= CaseState::Final).count();
                self.registry_message = Some(Message::info(format!(
                    "Registry: {reported} case{} of {site} signed out",
                    if reported == 1 { "" } else { "s" }
                )));
                self.registry_states = Some(states);
            }
            Ok(Err(e)) => {
                self.registry_states = None;
                self.registry_message = Some(Message::warning(format!(
                    "Registry not reached ({e}): report states are this computer's only"
                )));
            }
            Err(stopped) => {
                self.registry_states = None;
                self.registry_message = Some(Message::error(format!("asking the registry: {stopped}")));
            }
        }
    }

    /// List the same folder again (report states change as reports are saved).
    pub fn refresh(&mut self, ctx: &egui::Context) {
        if let Some(root) = self.root.clone() {
            self.list(root, ctx);
        }
    }

    /// A listing is under way.
    pub fn is_listing(&self) -> bool {
        self.listing.is_some() || self.registry_job.is_some()
    }

    /// Take a finished listing.
    pub fn poll(&mut self) {
        self.poll_registry();
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
        let hide_reported = self.hides_reported();
        (0..self.cases.len())
            .filter(|&i| {
                let c = &self.cases[i];
                let state = self.state_of(c);
                !(hide_reported && state >= CaseState::Final)
                    && (needle.is_empty()
                        || c.id.to_lowercase().contains(&needle)
                        || c.slides.iter().any(|s| s.to_string_lossy().to_lowercase().contains(&needle))
                        || state.name() == needle)
            })
            .collect()
    }

    /// The shown case `step` places after (or before, when negative) `from` (the current case,
    /// else the highlighted one; the first shown case when neither is in the list).
    pub fn step_from(&self, from: Option<&Case>, step: isize) -> Option<Case> {
        let shown = self.shown();
        let anchor = from.map(key_of).or_else(|| self.selected.clone());
        let target = match anchor {
            // Not in the list at all: no next or previous, rather than a jump to the first.
            Some(k) => {
                let at = self.cases.iter().position(|c| key_of(c) == k)?;
                // The anchor may be hidden (reported, or filtered out): the shown cases after or
                // before its place in the whole list. `before` shown cases come before it.
                let before = shown.partition_point(|&i| i < at);
                let anchor_shown = shown.get(before) == Some(&at);
                let offset = if step > 0 && !anchor_shown { step - 1 } else { step };
                before.checked_add_signed(offset).filter(|&p| p < shown.len())?
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
        let mut hide = self.hides_reported();
        if ui
            .checkbox(&mut hide, "Hide reported")
            .on_hover_text("Leave out cases signed out (final or amended), here or in the report registry")
            .changed()
        {
            self.hide_reported = Some(hide);
        }
        if let Some(m) = &self.message {
            m.show(ui);
        }
        if let Some(m) = &self.registry_message {
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
                let state = self.state_of(case);
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
                    state_label(ui, state);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, state: CaseState) -> Case {
        Case { id: id.into(), folder: PathBuf::from(format!("/cases/{id}")), slides: Vec::new(), state }
    }

    #[test]
    fn the_registrys_states_mark_cases_reported_and_reported_cases_hide_once_it_answered() {
        let mut list = CaseList {
            cases: vec![
                case("H26-1", CaseState::None),
                case("H26-2", CaseState::Draft),
                case("H26-3", CaseState::None),
                case("H26-4", CaseState::Final),
            ],
            ..CaseList::default()
        };
        // No registry: every case shown, local states.
        assert_eq!(list.shown(), vec![0, 1, 2, 3]);
        assert!(!list.hides_reported());
        // The registry: H26-2 signed out elsewhere, H26-3 drafted elsewhere, H26-4 unknown there.
        list.registry_states =
            Some(HashMap::from([("H26-2".to_string(), CaseState::Final), ("H26-3".to_string(), CaseState::Draft)]));
        assert_eq!(list.state_of(&list.cases[1]), CaseState::Final);
        assert_eq!(list.state_of(&list.cases[2]), CaseState::Draft);
        assert_eq!(list.state_of(&list.cases[3]), CaseState::Final, "the local final stands");
        assert!(list.hides_reported());
        assert_eq!(list.shown(), vec![0, 2], "only the cases with no final report");
        // Next from H26-1 skips the reported H26-2.
        let next = list.step_from(Some(&list.cases[0].clone()), 1).map(|c| c.id);
        assert_eq!(next.as_deref(), Some("H26-3"));
        // From the hidden H26-2 (just signed out), the shown cases on either side of it.
        let next = list.step_from(Some(&list.cases[1].clone()), 1).map(|c| c.id);
        assert_eq!(next.as_deref(), Some("H26-3"));
        let previous = list.step_from(Some(&list.cases[1].clone()), -1).map(|c| c.id);
        assert_eq!(previous.as_deref(), Some("H26-1"));
        // From the hidden last case: nothing after it.
        assert_eq!(list.step_from(Some(&list.cases[3].clone()), 1), None);
        assert_eq!(list.step_from(Some(&list.cases[3].clone()), -1).map(|c| c.id).as_deref(), Some("H26-3"));
        list.hide_reported = Some(false);
        assert_eq!(list.shown(), vec![0, 1, 2, 3]);
        list.filter = "final".into();
        assert_eq!(list.shown(), vec![1, 3], "the filter uses the merged state");
    }
}
