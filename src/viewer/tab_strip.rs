//! Tab titles on the menu bar: however many slides are open, the tabs share the width left after
//! the menus, each title elided to fit (the full path on hover), so none is cut off.

use std::path::Path;

/// Room for a tab's `×` button and the spacing around it.
const CLOSE_BUTTON_WIDTH: f32 = 28.0;
/// A title is never narrower than this (a letter or two and the ellipsis).
const MIN_TITLE_WIDTH: f32 = 28.0;
/// Nor wider: a long name does not take the room of the others.
const MAX_TITLE_WIDTH: f32 = 220.0;

/// The width each of `tabs` titles may take in what is left of `ui`'s row.
pub fn title_width(ui: &egui::Ui, tabs: usize) -> f32 {
    let share = ui.available_width() / tabs.max(1) as f32;
    (share - CLOSE_BUTTON_WIDTH - ui.spacing().item_spacing.x).clamp(MIN_TITLE_WIDTH, MAX_TITLE_WIDTH)
}

/// A tab's title: selectable, elided to `width`, the slide's path on hover.
pub fn title(ui: &mut egui::Ui, selected: bool, title: String, path: &Path, width: f32) -> egui::Response {
    ui.scope(|ui| {
        ui.set_max_width(width);
        ui.add(egui::Button::selectable(selected, title).truncate())
    })
    .inner
    .on_hover_text(path.display().to_string())
}
