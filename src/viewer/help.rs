//! The keyboard shortcuts: one table ([`SHORTCUTS`]) that the slide view and the annotation layer
//! dispatch from and Help > Keyboard shortcuts shows, so the help can never miss a key.

use egui::{Key, Modifiers};

use super::annotate::Tool;
use super::magnification::{format_magnification, PRESETS};

/// What a key does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    PanLeft,
    PanRight,
    PanUp,
    PanDown,
    ZoomIn,
    ZoomOut,
    Fit,
    /// The magnification preset `PRESETS[i]`.
    Magnification(usize),
    /// Turn the view by this many degrees (clockwise when positive) about its centre.
    Rotate(i16),
    /// Back to no rotation.
    ResetRotation,
    Tool(Tool),
    Redo,
    Undo,
    Duplicate,
    Lock,
    /// Close the polygon or finish the polyline being clicked.
    Finish,
    /// Cancel the shape being drawn, else clear the selection.
    Cancel,
    /// Delete the selection, or the last vertex of the shape being clicked.
    Delete,
    /// Open the next case of the case list (handled by the app).
    NextCase,
    /// Open the previous case of the case list (handled by the app).
    PreviousCase,
}

impl Action {
    /// Handled by the app, not by a slide or its annotations.
    pub fn is_app(self) -> bool {
        matches!(self, Action::NextCase | Action::PreviousCase)
    }

    /// Moves the view (handled by the slide view; modifiers are ignored).
    pub fn is_view(self) -> bool {
        matches!(
            self,
            Action::PanLeft
                | Action::PanRight
                | Action::PanUp
                | Action::PanDown
                | Action::ZoomIn
                | Action::ZoomOut
                | Action::Fit
                | Action::Magnification(_)
                | Action::Rotate(_)
                | Action::ResetRotation
        )
    }
}

/// A key (with modifiers) and what it does.
#[derive(Clone, Copy, Debug)]
pub struct Shortcut {
    pub modifiers: Modifiers,
    pub key: Key,
    pub action: Action,
    /// What it does, for the help; tools and presets describe themselves.
    pub what: &'static str,
}

const fn key(key: Key, action: Action, what: &'static str) -> Shortcut {
    Shortcut { modifiers: Modifiers::NONE, key, action, what }
}

const fn command(modifiers: Modifiers, key: Key, action: Action, what: &'static str) -> Shortcut {
    Shortcut { modifiers, key, action, what }
}

const fn tool(t: Tool) -> Shortcut {
    key(t.key(), Action::Tool(t), "")
}

const CTRL_SHIFT: Modifiers = Modifiers { shift: true, ..Modifiers::COMMAND };

/// Every keyboard shortcut. Order matters where one key has several meanings: the annotation
/// layer tries them in this order (Ctrl+Shift+Z before Ctrl+Z, Ctrl+D before D).
pub const SHORTCUTS: &[Shortcut] = &[
    key(Key::ArrowLeft, Action::PanLeft, "Pan left"),
    key(Key::ArrowRight, Action::PanRight, "Pan right"),
    key(Key::ArrowUp, Action::PanUp, "Pan up"),
    key(Key::ArrowDown, Action::PanDown, "Pan down"),
    key(Key::Plus, Action::ZoomIn, "Zoom in about the centre"),
    key(Key::Equals, Action::ZoomIn, "Zoom in about the centre"),
    key(Key::Minus, Action::ZoomOut, "Zoom out about the centre"),
    key(Key::Num0, Action::Fit, "Whole slide"),
    key(Key::CloseBracket, Action::Rotate(90), "Turn the view 90° clockwise"),
    key(Key::OpenBracket, Action::Rotate(-90), "Turn the view 90° anticlockwise"),
    key(Key::Period, Action::Rotate(5), "Turn the view 5° clockwise"),
    key(Key::Comma, Action::Rotate(-5), "Turn the view 5° anticlockwise"),
    key(Key::Backslash, Action::ResetRotation, "No rotation (as scanned)"),
    key(Key::Num1, Action::Magnification(0), ""),
    key(Key::Num2, Action::Magnification(1), ""),
    key(Key::Num3, Action::Magnification(2), ""),
    key(Key::Num4, Action::Magnification(3), ""),
    key(Key::Num5, Action::Magnification(4), ""),
    command(CTRL_SHIFT, Key::Z, Action::Redo, "Redo"),
    command(Modifiers::COMMAND, Key::Y, Action::Redo, "Redo"),
    command(Modifiers::COMMAND, Key::Z, Action::Undo, "Undo (1,000 steps)"),
    command(Modifiers::COMMAND, Key::D, Action::Duplicate, "Duplicate the selection"),
    command(Modifiers::COMMAND, Key::K, Action::Lock, "Lock or unlock the selection"),
    tool(Tool::Select),
    tool(Tool::Points),
    tool(Tool::Rectangle),
    tool(Tool::Ellipse),
    tool(Tool::Polygon),
    tool(Tool::Freehand),
    tool(Tool::Polyline),
    tool(Tool::Ruler),
    tool(Tool::Brush),
    key(Key::Enter, Action::Finish, "Close the polygon / finish the polyline being drawn"),
    key(Key::Escape, Action::Cancel, "Cancel the shape being drawn, else deselect"),
    key(Key::Delete, Action::Delete, "Delete the selection (while clicking a shape: its last vertex)"),
    key(Key::Backspace, Action::Delete, "Delete the selection (while clicking a shape: its last vertex)"),
    command(
        Modifiers::COMMAND,
        Key::ArrowRight,
        Action::NextCase,
        "Next case of the case list (its reports saved first)",
    ),
    key(Key::PageDown, Action::NextCase, "Next case of the case list"),
    command(Modifiers::COMMAND, Key::ArrowLeft, Action::PreviousCase, "Previous case of the case list"),
    key(Key::PageUp, Action::PreviousCase, "Previous case of the case list"),
];

impl Shortcut {
    /// "Ctrl+Shift+Z", "Left", "M".
    pub fn keys_text(&self) -> String {
        let mut text = String::new();
        if self.modifiers.command || self.modifiers.ctrl {
            text += "Ctrl+";
        }
        if self.modifiers.alt {
            text += "Alt+";
        }
        if self.modifiers.shift {
            text += "Shift+";
        }
        text + self.key.name()
    }

    pub fn description(&self) -> String {
        match self.action {
            Action::Tool(t) => format!("{} tool — {}", t.label(), t.help()),
            Action::Magnification(i) => {
                PRESETS.get(i).map_or_else(String::new, |&m| format!("Magnification {}", format_magnification(m)))
            }
            _ => self.what.to_string(),
        }
    }
}

/// The Help > Keyboard shortcuts window, while `open`.
pub fn shortcuts_window(ctx: &egui::Context, open: &mut bool) {
    egui::Window::new("Keyboard shortcuts").open(open).resizable(true).default_width(460.0).show(ctx, |ui| {
        ui.label("Keys act on the slide unless a text field has the keyboard, or you last clicked in a panel (click the slide to give it the keyboard back).");
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("shortcuts").num_columns(2).striped(true).show(ui, |ui| {
                for s in SHORTCUTS {
                    ui.strong(s.keys_text());
                    ui.label(s.description());
                    ui.end_row();
                }
                ui.strong("Mouse");
                ui.label("Drag pans; wheel zooms about the cursor; double-click zooms in");
                ui.end_row();
            });
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_and_preset_has_a_shortcut() {
        for t in Tool::ALL {
            assert!(SHORTCUTS.iter().any(|s| s.action == Action::Tool(t) && s.key == t.key()), "{t:?}");
        }
        for i in 0..PRESETS.len() {
            assert!(SHORTCUTS.iter().any(|s| s.action == Action::Magnification(i)));
        }
        let redo = SHORTCUTS.iter().position(|s| s.action == Action::Redo && s.key == Key::Z);
        let undo = SHORTCUTS.iter().position(|s| s.action == Action::Undo);
        assert!(redo < undo, "Ctrl+Shift+Z is tried before Ctrl+Z");
        assert_eq!(SHORTCUTS[18].keys_text(), "Ctrl+Shift+Z");
    }
}
