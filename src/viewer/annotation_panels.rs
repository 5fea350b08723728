//! Annotation controls around the slide: the tool bar, the side-panel editor for the selection
//! and the classes, and the measurement table.

use egui::{Color32, RichText};

use super::annotate::{AnnotationLayer, Tool};
use super::command::{AppCommand, CommandQueue};
use super::message::Level;
use super::slide_view::SlideView;
use crate::annotations::table::{
    class_totals, group_thousands, measure_all, ruler_total, to_csv, ClassTotal, MeasuredRow,
};
use crate::annotations::{AnnotationClass, ObjectKind, Unit};

/// The tool buttons, the class for new annotations, undo and redo, the measurement table and the
/// magnification presets (on their own here, not on the menu bar where tabs could push them off).
/// `show_table`: whether the measurement table is shown; toggling it asks the app.
pub fn toolbar(
    ui: &mut egui::Ui,
    view: &mut SlideView,
    classes: &[AnnotationClass],
    show_table: bool,
    commands: &mut CommandQueue,
) {
    ui.horizontal_wrapped(|ui| {
        let layer = &mut view.annotations;
        for tool in Tool::ALL {
            if ui.selectable_label(layer.tool == tool, tool.label()).on_hover_text(tool.tooltip()).clicked() {
                layer.set_tool(tool);
            }
        }
        if layer.tool == Tool::Brush {
            ui.add(egui::Slider::new(&mut layer.brush_radius, 2.0..=100.0).text("Brush (points)"));
            ui.checkbox(&mut layer.brush_erase, "Erase").on_hover_text("Erase instead of paint (Alt while dragging)");
        }
        ui.separator();
        ui.label("Class");
        let current = layer.new_class.as_ref().map_or("None".to_string(), |c| c.name.clone());
        egui::ComboBox::from_id_salt("new-class").selected_text(current).show_ui(ui, |ui| {
            if ui.selectable_label(layer.new_class.is_none(), "None").clicked() {
                layer.new_class = None;
            }
            for c in classes {
                let chosen = layer.new_class.as_ref().is_some_and(|n| n.name == c.name);
                if class_choice(ui, chosen, c).clicked() {
                    layer.new_class = Some(c.clone());
                }
            }
        });
        ui.separator();
        if ui.add_enabled(layer.doc.can_undo(), egui::Button::new("Undo")).on_hover_text("Undo (Ctrl+Z)").clicked() {
            layer.undo();
        }
        if ui
            .add_enabled(layer.doc.can_redo(), egui::Button::new("Redo"))
            .on_hover_text("Redo (Ctrl+Shift+Z or Ctrl+Y)")
            .clicked()
        {
            layer.redo();
        }
        ui.separator();
        let mut show = show_table;
        if ui
            .toggle_value(&mut show, "Measurements")
            .on_hover_text("The measurement table, with totals per class")
            .changed()
        {
            commands.push(AppCommand::ShowMeasurements(show));
        }
        super::magnification::presets(ui, view);
    });
}

/// A class in a list: its colour as a swatch, its name in the theme's text colour (coloured text
/// on a panel background can be unreadable in one theme or the other).
fn class_choice(ui: &mut egui::Ui, selected: bool, c: &AnnotationClass) -> egui::Response {
    ui.horizontal(|ui| {
        swatch(ui, c.color);
        ui.selectable_label(selected, &c.name)
    })
    .inner
}

/// A small square of `color` outlined in the text colour, so it shows on either theme.
pub fn swatch(ui: &mut egui::Ui, color: [u8; 3]) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    ui.painter().rect_filled(rect, 2.0, Color32::from_rgb(color[0], color[1], color[2]));
    let outline = egui::Stroke::new(1.0, ui.visuals().text_color());
    ui.painter().rect_stroke(rect, 2.0, outline, egui::StrokeKind::Inside);
}

/// Side-panel section: the selected annotation (class, name, note, lock) and the class list (the
/// app's: edits are sent as [`AppCommand::SetClasses`]).
pub fn annotation_section(
    ui: &mut egui::Ui,
    layer: &mut AnnotationLayer,
    classes: &[AnnotationClass],
    commands: &mut CommandQueue,
) {
    let mut edited = classes.to_vec();
    selection_section(ui, layer, &edited);
    classes_editor(ui, &mut edited, &layer.doc, commands);
    if edited != classes {
        commands.push(AppCommand::SetClasses(edited));
    }
}

/// The annotation list's state and the selected annotation's editor.
fn selection_section(ui: &mut egui::Ui, layer: &mut AnnotationLayer, classes: &[AnnotationClass]) {
    ui.heading("Annotations");
    if let Some(warning) = layer.load_warning.clone() {
        Level::Warning.label(ui, warning);
        if ui.small_button("Dismiss").clicked() {
            layer.load_warning = None;
        }
    }
    ui.label(format!("{} on this slide", layer.doc.len()));
    if let Some(saver) = &layer.autosaver {
        let status = saver.status();
        match status.error {
            Some(e) => {
                Level::Error.label(ui, e);
            }
            None if status.saved_revision == layer.doc.revision() || status.saved_at.is_some() => {
                ui.label(RichText::new(format!("Saved to {}", saver.path().display())).small())
                    .on_hover_text("Every change is written within a second or two");
            }
            // The line is always there, so nothing below it moves when the first save lands.
            None => {
                ui.label(RichText::new("Not saved yet: changes are written within a second or two").small());
            }
        }
    }
    let Some(selected) = layer.selected.and_then(|id| layer.doc.get(id)).cloned() else {
        ui.label(RichText::new("Nothing selected").italics());
        return;
    };
    let mut edited = selected.as_ref().clone();
    ui.group(|ui| {
        if selected.kind != ObjectKind::Annotation {
            ui.label(format!("{} from an analysis: drawn and measured, not edited", selected.kind.label()));
        }
        ui.label(RichText::new(layer.measure_text(&selected.geometry, &selected)).strong());
        if !selected.measurements.is_empty() {
            ui.collapsing(format!("{} measurements from the file", selected.measurements.len()), |ui| {
                egui::Grid::new("selected-measurements").num_columns(2).striped(true).show(ui, |ui| {
                    for (name, value) in &selected.measurements {
                        ui.label(name);
                        ui.label(format!("{value}"));
                        ui.end_row();
                    }
                });
            });
        }
        ui.add_enabled_ui(!selected.is_locked(), |ui| {
            egui::Grid::new("selected").num_columns(2).show(ui, |ui| {
                ui.label("Class");
                let current = edited.class.clone().unwrap_or_else(|| "None".into());
                egui::ComboBox::from_id_salt("selected-class").selected_text(current).show_ui(ui, |ui| {
                    if ui.selectable_label(edited.class.is_none(), "None").clicked() {
                        edited.class = None;
                        edited.class_color = None;
                    }
                    for c in classes.iter() {
                        if class_choice(ui, edited.class.as_ref() == Some(&c.name), c).clicked() {
                            edited.class = Some(c.name.clone());
                            edited.class_color = Some(c.color);
                        }
                    }
                });
                ui.end_row();
                ui.label("Name");
                ui.text_edit_singleline(&mut edited.name);
                ui.end_row();
                ui.label("Note");
                ui.text_edit_multiline(&mut edited.note);
                ui.end_row();
            });
        });
        ui.horizontal(|ui| {
            if selected.kind != ObjectKind::Annotation {
                let hint = "Make this object an ordinary annotation that can be moved, reshaped and deleted \
                            (a cell loses its nucleus outline; its measurements stay)";
                if ui.button("Convert to annotation").on_hover_text(hint).clicked() {
                    edited = edited.clone().into_annotation();
                }
            } else {
                let lock_text = if selected.locked { "Unlock" } else { "Lock" };
                if ui.button(lock_text).on_hover_text("Lock against moving, editing and deleting (Ctrl+K)").clicked() {
                    edited.locked = !edited.locked;
                }
            }
            if ui.button("Duplicate").on_hover_text("Duplicate (Ctrl+D)").clicked() {
                let d = 20.0 / layer.projection_zoom().max(1e-9);
                layer.selected = layer.doc.duplicate(selected.id, [d, d]);
            }
            if ui
                .add_enabled(!selected.is_locked(), egui::Button::new("Delete"))
                .on_hover_text("Delete (Delete or Backspace)")
                .clicked()
            {
                layer.delete_selected();
            }
        });
    });
    // Text edits become one undo step per frame of typing; locked shapes keep only the lock change.
    if layer.doc.get(selected.id).is_some() && edited != *selected {
        layer.doc.update(edited);
    }
}

/// The class list. Removing a class that annotations of this slide use asks first, saying how
/// many (they keep their class name and colour; only the list entry goes).
fn classes_editor(
    ui: &mut egui::Ui,
    classes: &mut Vec<AnnotationClass>,
    doc: &crate::annotations::Document,
    commands: &mut CommandQueue,
) {
    let pending_id = egui::Id::unique("wsiview-class-to-remove");
    ui.collapsing("Classes", |ui| {
        let mut remove = None;
        let mut ask: Option<String> = None;
        let names: Vec<String> = classes.iter().map(|c| c.name.clone()).collect();
        for (i, c) in classes.iter_mut().enumerate() {
            ui.horizontal(|ui| {
                ui.color_edit_button_srgb(&mut c.color);
                // The name is edited as text and applied when the field is left (Enter, Tab, a
                // click elsewhere): a rename renames the class's objects too, one undo step.
                let id = ui.scope_id().with(("class name", i));
                let mut text = ui.data(|d| d.get_temp::<String>(id)).unwrap_or_else(|| c.name.clone());
                let field =
                    ui.add(egui::TextEdit::singleline(&mut text).id_salt(id).desired_width(140.0)).on_hover_text(
                        "The class name: renaming it renames it on every object of the class (Ctrl+Z undoes)",
                    );
                if field.lost_focus() {
                    ui.data_mut(|d| d.remove::<String>(id));
                    let to = text.trim();
                    // Escape leaves the name as it was.
                    let escaped = ui.input(|i| i.key_pressed(egui::Key::Escape));
                    if !escaped && !to.is_empty() && to != c.name && !names.iter().any(|n| n == to) {
                        commands.push(AppCommand::RenameClass { from: c.name.clone(), to: to.to_string() });
                    }
                } else if field.has_focus() {
                    ui.data_mut(|d| d.insert_temp(id, text));
                }
                if ui.small_button("x").on_hover_text("Remove this class from the list").clicked() {
                    let used = doc.annotations().iter().filter(|a| a.class.as_deref() == Some(c.name.as_str())).count();
                    if used == 0 {
                        remove = Some(i);
                    } else {
                        ask = Some(c.name.clone());
                    }
                }
            });
        }
        if let Some(name) = ask {
            ui.data_mut(|d| d.insert_temp(pending_id, name));
        }
        let pending: Option<String> = ui.data(|d| d.get_temp(pending_id));
        if let Some(name) = pending {
            let used = doc.annotations().iter().filter(|a| a.class.as_deref() == Some(name.as_str())).count();
            ui.group(|ui| {
                ui.label(format!(
                    "Delete class \"{name}\"? {used} annotation{} on this slide use{} it; they keep the name \
                     and colour but it leaves the list.",
                    if used == 1 { "" } else { "s" },
                    if used == 1 { "s" } else { "" }
                ));
                ui.horizontal(|ui| {
                    if ui.button("Delete class").clicked() {
                        remove = classes.iter().position(|c| c.name == name);
                        ui.data_mut(|d| d.remove::<String>(pending_id));
                    }
                    if ui.button("Keep class").clicked() {
                        ui.data_mut(|d| d.remove::<String>(pending_id));
                    }
                });
            });
        }
        if let Some(i) = remove {
            classes.remove(i);
        }
        ui.horizontal(|ui| {
            if ui.button("Add class").clicked() {
                let n = classes.len() + 1;
                classes.push(AnnotationClass { name: format!("Class {n}"), color: [80, 160, 255] });
            }
            if ui.button("Defaults").on_hover_text("Restore Tumor, Stroma, Immune cells, Necrosis, Other").clicked() {
                *classes = crate::annotations::default_classes();
            }
        });
    });
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SortBy {
    Index,
    Name,
    Class,
    Kind,
    Area,
    Perimeter,
    Length,
    Points,
}

/// The table's type column: the geometry of an annotation ("Polygon"), the object and its geometry
/// otherwise ("Cell (Polygon)").
fn type_text(r: &MeasuredRow) -> String {
    if r.object == ObjectKind::Annotation {
        r.kind.to_string()
    } else {
        format!("{} ({})", r.object.label(), r.kind)
    }
}

/// The measurement table, recomputed only when the document or its pixel size changes.
pub struct MeasurementTable {
    revision: Option<u64>,
    rows: Vec<MeasuredRow>,
    totals: Vec<ClassTotal>,
    /// The rulers (measurements, in no class), if any.
    rulers: Option<ClassTotal>,
    pub sort: SortBy,
    pub descending: bool,
}

impl Default for MeasurementTable {
    fn default() -> Self {
        MeasurementTable {
            revision: None,
            rows: Vec::new(),
            totals: Vec::new(),
            rulers: None,
            sort: SortBy::Index,
            descending: false,
        }
    }
}

impl MeasurementTable {
    fn refresh(&mut self, layer: &AnnotationLayer) {
        if self.revision == Some(layer.doc.revision()) {
            return;
        }
        self.revision = Some(layer.doc.revision());
        self.rows = measure_all(layer.doc.annotations(), layer.pixel_size);
        self.totals = class_totals(&self.rows);
        self.rulers = ruler_total(&self.rows);
        self.sort_rows();
    }

    fn sort_rows(&mut self) {
        let key = |r: &MeasuredRow| -> f64 {
            let m = &r.measurement;
            match self.sort {
                SortBy::Area => m.area.unwrap_or(-1.0),
                SortBy::Perimeter => m.perimeter.unwrap_or(-1.0),
                SortBy::Length => m.length.unwrap_or(-1.0),
                SortBy::Points => m.points.map_or(-1.0, |p| p as f64),
                _ => r.index as f64,
            }
        };
        let text = |r: &MeasuredRow| -> String {
            match self.sort {
                SortBy::Name => r.name.to_lowercase(),
                SortBy::Class => r.class.clone().unwrap_or_default().to_lowercase(),
                SortBy::Kind => type_text(r),
                _ => String::new(),
            }
        };
        self.rows.sort_by(|a, b| {
            let o = text(a).cmp(&text(b)).then(key(a).total_cmp(&key(b))).then(a.index.cmp(&b.index));
            if self.descending {
                o.reverse()
            } else {
                o
            }
        });
    }

    /// The rows as shown (sorted), for tests.
    pub fn rows(&self) -> &[MeasuredRow] {
        &self.rows
    }

    /// The table; a clicked row asks the app to select and show that annotation.
    pub fn show(&mut self, ui: &mut egui::Ui, layer: &AnnotationLayer, commands: &mut CommandQueue) {
        self.refresh(layer);
        let unit = self
            .rows
            .first()
            .map_or(if layer.pixel_size.is_some() { Unit::Microns } else { Unit::Pixels }, |r| r.measurement.unit);
        let (au, lu) = if unit == Unit::Microns { ("µm²", "µm") } else { ("px²", "px") };
        ui.horizontal(|ui| {
            ui.strong(format!("{} annotations", self.rows.len()));
            if unit == Unit::Pixels {
                Level::Warning.label(ui, "Pixel size unknown: measurements are in pixels");
            }
            if ui.button("Copy CSV").on_hover_text("Copy the table and the class totals for a spreadsheet").clicked() {
                ui.ctx().copy_text(to_csv(&self.rows, &self.totals, unit));
            }
        });
        // Totals per class.
        egui::Grid::new("class-totals").striped(true).show(ui, |ui| {
            for h in [
                "Class",
                "Count",
                &format!("Total area {au}"),
                &format!("Total perimeter {lu}"),
                &format!("Total length {lu}"),
                "Total points",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for t in &self.totals {
                ui.label(t.class.clone().unwrap_or_else(|| "Unclassified".into()));
                ui.label(t.count.to_string()).on_hover_text(t.objects_text());
                ui.label(group_thousands(t.area));
                ui.label(group_thousands(t.perimeter));
                ui.label(group_thousands(t.length));
                ui.label(t.points.to_string());
                ui.end_row();
            }
            if let Some(r) = &self.rulers {
                ui.label("Rulers").on_hover_text("Measurements drawn with the Ruler tool (M): in no class's totals");
                ui.label(r.count.to_string());
                ui.label("");
                ui.label("");
                ui.label(group_thousands(r.length));
                ui.label("");
                ui.end_row();
            }
        });
        ui.separator();
        let columns = [
            ("#", SortBy::Index),
            ("Name", SortBy::Name),
            ("Class", SortBy::Class),
            ("Type", SortBy::Kind),
            ("Area", SortBy::Area),
            ("Perimeter", SortBy::Perimeter),
            ("Length", SortBy::Length),
            ("Points", SortBy::Points),
        ];
        let mut clicked_sort = None;
        let mut clicked_row = None;
        egui_extras::TableBuilder::new(ui)
            .striped(true)
            .resizable(true)
            .sense(egui::Sense::click())
            .column(egui_extras::Column::exact(50.0))
            .column(egui_extras::Column::initial(140.0).at_least(60.0))
            .column(egui_extras::Column::initial(110.0).at_least(60.0))
            .columns(egui_extras::Column::initial(90.0).at_least(50.0), 4)
            .column(egui_extras::Column::remainder())
            .header(20.0, |mut header| {
                for (title, sort) in columns {
                    header.col(|ui| {
                        let arrow = match (self.sort == sort, self.descending) {
                            (true, false) => " ^",
                            (true, true) => " v",
                            _ => "",
                        };
                        let unit = match sort {
                            SortBy::Area => format!(" {au}"),
                            SortBy::Perimeter | SortBy::Length => format!(" {lu}"),
                            _ => String::new(),
                        };
                        if ui.button(format!("{title}{unit}{arrow}")).on_hover_text("Sort").clicked() {
                            clicked_sort = Some(sort);
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, self.rows.len(), |mut row| {
                    let r = &self.rows[row.index()];
                    row.set_selected(layer.selected == Some(r.id));
                    let num = |v: Option<f64>| v.map(group_thousands).unwrap_or_default();
                    let cells = [
                        r.index.to_string(),
                        r.name.clone(),
                        if r.ruler { "(ruler)".to_string() } else { r.class.clone().unwrap_or_default() },
                        if r.ruler { "Ruler".to_string() } else { type_text(r) },
                        num(r.measurement.area),
                        num(r.measurement.perimeter),
                        num(r.measurement.length),
                        r.measurement.points.map(|p| p.to_string()).unwrap_or_default(),
                    ];
                    for c in cells {
                        row.col(|ui| {
                            ui.label(c);
                        });
                    }
                    if row.response().clicked() {
                        clicked_row = Some(r.id);
                    }
                });
            });
        if let Some(sort) = clicked_sort {
            if self.sort == sort {
                self.descending = !self.descending;
            } else {
                self.sort = sort;
                self.descending = false;
            }
            self.sort_rows();
        }
        if let Some(id) = clicked_row {
            commands.push(AppCommand::FocusAnnotation(id));
        }
    }
}
