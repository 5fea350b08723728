//! Messages the viewer shows (status lines, notes, errors in panels): text with a [`Level`],
//! coloured by the theme (`warn_fg_color`, `error_fg_color`, the text colour for information) so
//! they stay readable in the light and the dark theme. Colours of slides, annotations and
//! classes are not messages and keep their own.

use egui::{Color32, RichText};

/// How much a message matters to the user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Level {
    /// Something done (saved, exported).
    #[default]
    Info,
    /// Worth knowing; nothing was lost (a file left out, measurements in pixels).
    Warning,
    /// Something failed (a save, a read).
    Error,
}

impl Level {
    /// The theme's colour for this level.
    pub fn color(self, visuals: &egui::Visuals) -> Color32 {
        match self {
            Level::Info => visuals.text_color(),
            Level::Warning => visuals.warn_fg_color,
            Level::Error => visuals.error_fg_color,
        }
    }

    /// `text` in this level's colour.
    pub fn text(self, ui: &egui::Ui, text: impl Into<String>) -> RichText {
        RichText::new(text).color(self.color(ui.visuals()))
    }

    /// A label of `text` in this level's colour.
    pub fn label(self, ui: &mut egui::Ui, text: impl Into<String>) -> egui::Response {
        let text = self.text(ui, text);
        ui.label(text)
    }
}

/// One message: what to say, and how much it matters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub level: Level,
    pub text: String,
}

impl Message {
    pub fn info(text: impl Into<String>) -> Self {
        Message { level: Level::Info, text: text.into() }
    }

    pub fn warning(text: impl Into<String>) -> Self {
        Message { level: Level::Warning, text: text.into() }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Message { level: Level::Error, text: text.into() }
    }

    /// A warning or an error.
    pub fn is_problem(&self) -> bool {
        self.level != Level::Info
    }

    /// The message as a label in its level's colour.
    pub fn show(&self, ui: &mut egui::Ui) -> egui::Response {
        self.level.label(ui, self.text.as_str())
    }
}
