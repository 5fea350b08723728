//! What panels ask of the app and of each other. A panel never sets another panel's (or the
//! app's) fields: it pushes an [`AppCommand`] onto the [`CommandQueue`] it is handed, and the app
//! applies the queue once per frame, after every panel was drawn.

use std::path::PathBuf;

use super::report_panel::ReviewerDefaults;
use crate::annotations::{AnnotationClass, AnnotationId};

/// One request of a panel, applied by [`super::ViewerApp`].
#[derive(Clone, Debug, PartialEq)]
pub enum AppCommand {
    /// Open a slide in a new tab, or switch to its tab (File > Open, Open recent, the built-in
    /// browser, a file dropped on the window).
    OpenSlide(PathBuf),
    /// Select this annotation of the active slide and move the view to it (a row clicked in the
    /// measurement table).
    FocusAnnotation(AnnotationId),
    /// The class list as edited in the side panel.
    SetClasses(Vec<AnnotationClass>),
    /// A class renamed in the side panel: the list entry and every object of the class on every
    /// open slide (one undo step per slide).
    RenameClass { from: String, to: String },
    /// Show or hide the measurement table (the tool bar's toggle).
    ShowMeasurements(bool),
    /// The user's remembered identity as typed into the report panel.
    SetReviewer(ReviewerDefaults),
    /// Open this case: the current case's slides close once their reports are saved, and the
    /// case's slides open (the case list: a double-click, Enter, next or previous).
    OpenCase(crate::report::case::Case),
}

/// Commands pushed during a frame, in order; owned by the app, lent to panels while they draw.
#[derive(Debug, Default)]
pub struct CommandQueue {
    commands: Vec<AppCommand>,
}

impl CommandQueue {
    /// Ask the app for `command`; it is applied at the end of this frame.
    pub fn push(&mut self, command: AppCommand) {
        self.commands.push(command);
    }

    /// Everything pushed since the last call, oldest first.
    pub fn take(&mut self) -> Vec<AppCommand> {
        std::mem::take(&mut self.commands)
    }
}
