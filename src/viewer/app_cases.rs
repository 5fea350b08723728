//! Cases in the window (issue 18): opening a case's slides together, and moving to the next or
//! previous case of the [`CaseList`](super::case_list::CaseList) without losing a report. Moving
//! on saves the current case's reports first and closes its slides only once every one of them
//! is on disk; a failed save or an unfinished amendment stops the move and says why.

use egui::{Key, Modifiers};

use super::app::{TabState, ViewerApp};
use super::message::Message;
use crate::report::case::Case;

impl ViewerApp {
    /// Tabs showing a slide of the current case.
    fn current_case_tabs(&self) -> Vec<usize> {
        let Some(case) = &self.current_case else { return Vec::new() };
        (0..self.tabs.len()).filter(|&i| case.slides.contains(&self.tabs[i].path)).collect()
    }

    /// The tab whose report the report panel shows: for a slide of the open case, the case's one
    /// report (whichever of its slides is active) — the case tab that holds it already, else the
    /// first slide in the case's order that did not fail to open (while it is still opening there
    /// is no report yet: the report does not go to whichever slide opens first); else the active
    /// tab.
    pub fn report_tab(&self) -> usize {
        let Some(case) = &self.current_case else { return self.active };
        if !self.tabs.get(self.active).is_some_and(|t| case.slides.contains(&t.path)) {
            return self.active;
        }
        // The case's tabs in the order of its slides.
        let tabs = &self.tabs;
        let case_tabs = || case.slides.iter().flat_map(move |s| (0..tabs.len()).filter(move |&i| tabs[i].path == *s));
        case_tabs()
            .find(|&i| tabs[i].report.is_some())
            .or_else(|| case_tabs().find(|&i| !matches!(tabs[i].state, super::app::TabState::Failed(_))))
            .unwrap_or(self.active)
    }

    /// Open `case` as the current case: its slides in tabs (the first one active) with the report
    /// panel; the previous case's slides close once their reports are saved
    /// ([`Self::advance_case_switch`]).
    pub fn open_case(&mut self, case: Case, ctx: &egui::Context) {
        self.case_message = None;
        self.case_list.select(&case);
        let same = self.current_case.as_ref().is_some_and(|c| c.id == case.id && c.folder == case.folder);
        if same {
            self.case_switch = None;
            if let Some(&i) = self.current_case_tabs().first() {
                self.active = i;
            }
            return;
        }
        for i in self.current_case_tabs() {
            let tab = &mut self.tabs[i];
            let TabState::Open(view) = &tab.state else { continue };
            if let Some(panel) = &mut tab.report {
                if panel.has_unsaved() && !panel.is_saving() && !panel.is_amending() {
                    panel.save_now(view, &self.classes, ctx);
                }
            }
        }
        self.case_switch = Some(case);
        self.advance_case_switch(ctx);
    }

    /// Finish a move to another case when the current case's reports are saved; stop it (with a
    /// message) when one cannot be. Called every frame.
    pub(super) fn advance_case_switch(&mut self, ctx: &egui::Context) {
        let Some(next) = self.case_switch.clone() else { return };
        let old = self.current_case_tabs();
        // Annotations that cannot be written (a share gone offline) keep the case open too.
        for &i in &old {
            let Some(view) = self.tabs[i].view() else { continue };
            let Some(error) = view.annotations.autosaver.as_ref().and_then(|s| s.status().error) else { continue };
            let name = self.tabs[i].path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            self.case_message = Some(Message::error(format!(
                "Still on case {}: {name}'s annotations are not saved ({error}).",
                self.case_id_text()
            )));
            self.case_switch = None;
            self.active = i;
            return;
        }
        for &i in &old {
            let Some(panel) = &self.tabs[i].report else { continue };
            let name = self.tabs[i].path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let stop = if panel.is_amending() && panel.has_unsaved() {
                Some(format!("finish or cancel the amendment of {name}'s report first"))
            } else if panel.save_failed() {
                let why = panel.message.as_ref().map(|m| m.text.clone()).unwrap_or_else(|| "the save failed".into());
                Some(format!("{name}'s report could not be saved ({why}); save it elsewhere from the report panel"))
            } else {
                None
            };
            if let Some(why) = stop {
                self.case_message = Some(Message::error(format!("Still on case {}: {why}.", self.case_id_text())));
                self.case_switch = None;
                if let Some(c) = &self.current_case {
                    self.case_list.select(&c.clone());
                }
                self.active = i;
                self.show_report = true;
                return;
            }
            if panel.has_unsaved() {
                // Saving: the job's end repaints.
                return;
            }
        }
        for i in old.into_iter().rev() {
            self.close_tab_now(i);
        }
        self.aligning = None;
        for slide in &next.slides {
            self.open(slide.clone(), ctx);
        }
        if let Some(i) = next.slides.first().and_then(|s| self.tabs.iter().position(|t| &t.path == s)) {
            self.active = i;
        }
        self.current_case = Some(next);
        self.case_switch = None;
        self.show_report = true;
        // The left case's report state may have changed.
        self.case_list.refresh(ctx);
    }

    fn case_id_text(&self) -> String {
        self.current_case.as_ref().map_or_else(String::new, |c| c.id.clone())
    }

    /// Ctrl+Right or Page Down, Ctrl+Left or Page Up: the next or previous case, when no text
    /// field has the keyboard and no dialog is open. Taken before the slide sees the keys.
    pub(super) fn case_keys(&mut self, ctx: &egui::Context, dialog: bool) {
        if dialog || ctx.text_edit_focused() || (self.current_case.is_none() && self.case_list.cases.is_empty()) {
            return;
        }
        let step = ctx.input_mut(|i| {
            let next =
                i.consume_key(Modifiers::COMMAND, Key::ArrowRight) | i.consume_key(Modifiers::NONE, Key::PageDown);
            let previous =
                i.consume_key(Modifiers::COMMAND, Key::ArrowLeft) | i.consume_key(Modifiers::NONE, Key::PageUp);
            match (next, previous) {
                (true, false) => 1,
                (false, true) => -1,
                _ => 0,
            }
        });
        if step == 0 {
            return;
        }
        match self.case_list.step_from(self.current_case.as_ref(), step) {
            Some(case) => self.open_case(case, ctx),
            None => {
                let which = if step > 0 { "last" } else { "first" };
                self.case_message = Some(Message::info(format!("This is the {which} case of the list.")));
            }
        }
    }

    /// Start on `case` (`wsiview case`): its slides open, and the case list lists the folder
    /// holding it (the case folder's parent, or the slides' folder) so next and previous work.
    pub fn start_case(&mut self, case: Case, ctx: &egui::Context) {
        let is_case_folder = crate::report::case::accession_prefix(
            &case.folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        )
        .is_some();
        let root =
            if is_case_folder { case.folder.parent().map(|p| p.to_path_buf()) } else { Some(case.folder.clone()) };
        if let Some(root) = root.filter(|r| !r.as_os_str().is_empty()) {
            self.case_list.list(root, ctx);
        }
        self.show_cases = true;
        self.open_case(case, ctx);
    }
}
