//! The side panel's counting section: place a counting field of a set area (mm², or N
//! high-power fields of diameter D mm) in the view's centre, read what it holds (count, area,
//! count per mm², by class), and the counting grid overlay for manual counts
//! ([`crate::annotations::counting`]).

use crate::annotations::counting::{self, FieldArea, FieldShape};

use super::slide_view::SlideView;

/// The counting section's settings, kept for the session (shared by all slides).
#[derive(Clone, Debug, PartialEq)]
pub struct CountingSettings {
    pub shape: FieldShape,
    /// Area mode: `true` for N high-power fields, `false` for mm².
    pub by_hpf: bool,
    pub mm2: f64,
    pub fields: u32,
    pub diameter_mm: f64,
    /// The counting grid over the slide, lines this many µm apart.
    pub grid: bool,
    pub grid_um: f64,
}

impl Default for CountingSettings {
    fn default() -> Self {
        CountingSettings {
            shape: FieldShape::Circle,
            by_hpf: true,
            mm2: 1.0,
            fields: 10,
            diameter_mm: 0.55,
            grid: false,
            grid_um: 100.0,
        }
    }
}

impl CountingSettings {
    pub fn area(&self) -> FieldArea {
        if self.by_hpf {
            FieldArea::HighPowerFields { fields: self.fields, diameter_mm: self.diameter_mm }
        } else {
            FieldArea::SquareMillimetres(self.mm2)
        }
    }

    /// The grid spacing in µm when the grid is on.
    pub fn grid_spacing(&self) -> Option<f64> {
        (self.grid && self.grid_um.is_finite() && self.grid_um > 0.0).then_some(self.grid_um)
    }
}

/// The section, for the active slide.
pub fn counting_section(ui: &mut egui::Ui, view: &mut SlideView, settings: &mut CountingSettings) {
    egui::CollapsingHeader::new("Counting field").default_open(true).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.radio_value(&mut settings.shape, FieldShape::Circle, "Circle");
            ui.radio_value(&mut settings.shape, FieldShape::Square, "Square");
        });
        ui.horizontal(|ui| {
            ui.radio_value(&mut settings.by_hpf, true, "HPF");
            ui.add(egui::DragValue::new(&mut settings.fields).range(1..=100).suffix(" fields"));
            ui.label("of");
            ui.add(egui::DragValue::new(&mut settings.diameter_mm).range(0.1..=2.0).speed(0.01).suffix(" mm"));
        });
        ui.horizontal(|ui| {
            ui.radio_value(&mut settings.by_hpf, false, "Area");
            ui.add(
                egui::DragValue::new(&mut settings.mm2)
                    .range(0.01..=counting::MAX_FIELD_MM2)
                    .speed(0.01)
                    .suffix(" mm²"),
            );
        });
        ui.label(settings.area().describe());
        let pixel_size = view.annotations.pixel_size;
        let center = view.camera.center;
        let field = counting::new_field(center, settings.shape, settings.area(), pixel_size);
        let place = ui
            .add_enabled(field.is_some(), egui::Button::new("Place counting field"))
            .on_hover_text("In the middle of the view; drag it to move it. Points inside are counted")
            .on_disabled_hover_text("Needs the slide's pixel size (µm per pixel)");
        if let (true, Some(field)) = (place.clicked(), field) {
            view.annotations.selected = Some(view.annotations.doc.add(field));
        }
        // The selected field, else the last one placed.
        let doc = &view.annotations.doc;
        let shown = view
            .annotations
            .selected
            .and_then(|id| doc.get(id))
            .filter(|a| counting::is_field(a))
            .or_else(|| doc.annotations().iter().rev().find(|a| counting::is_field(a)));
        if let Some(field) = shown {
            let c = counting::count(doc, field, pixel_size);
            ui.strong(format!("Count {}", c.total));
            if let Some(area) = c.area_mm2 {
                ui.label(format!("Area {area:.3} mm²"));
            }
            if let Some(d) = c.per_mm2() {
                ui.label(format!("{d:.2} per mm²"));
            }
            for (class, n) in &c.by_class {
                ui.label(format!("  {}: {n}", class.as_deref().unwrap_or("no class")));
            }
        }
        ui.separator();
        ui.horizontal(|ui| {
            ui.checkbox(&mut settings.grid, "Counting grid").on_hover_text("Lines over the slide for manual counts");
            ui.add(egui::DragValue::new(&mut settings.grid_um).range(5.0..=5000.0).suffix(" µm"));
        });
        if settings.grid && pixel_size.is_none() {
            ui.label("The grid needs the slide's pixel size.");
        }
    });
}
