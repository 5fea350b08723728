//! The side panel's detection section: import a detection layer (QuPath GeoJSON cells,
//! detections, tiles), watch it load, and set how it is drawn — shown or not, opacity, fill,
//! class colours or a measurement through a colour map with its range and legend, classes shown
//! — with the count per class in the view and in the selected area annotation
//! ([`super::detection_overlay`]).

use crate::annotations::detections::{ColorBy, ColorMap, DetectionLayer, NO_VALUE_COLOR};

use super::detection_overlay::{Counts, DetectionOverlay, DetectionState, DetectionStyle};
use super::slide_view::SlideView;

/// What the section asks of the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectionAction {
    /// Pick a file and read it as the slide's detection layer.
    Import,
}

fn rgb(c: [u8; 3]) -> egui::Color32 {
    egui::Color32::from_rgb(c[0], c[1], c[2])
}

/// "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The section, for the active slide.
pub fn detection_section(ui: &mut egui::Ui, view: &mut SlideView) -> Option<DetectionAction> {
    let mut action = None;
    egui::CollapsingHeader::new("Detections").default_open(true).show(ui, |ui| {
        let mut remove = false;
        match &mut view.detections {
            None => {
                ui.label("No detection layer. Import QuPath cells or detections (GeoJSON).");
            }
            Some(overlay) => {
                let name = overlay.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                match &overlay.state {
                    DetectionState::Loading(_) => {
                        let fraction = overlay.progress().unwrap_or(0.0);
                        ui.add(
                            egui::ProgressBar::new(fraction)
                                .text(format!("Reading {name}… {:.0} %", fraction * 100.0))
                                .animate(true),
                        );
                        if ui.button("Cancel").clicked() {
                            overlay.cancel();
                        }
                    }
                    DetectionState::Failed(message) => {
                        ui.colored_label(ui.visuals().error_fg_color, format!("Detections not loaded: {message}"));
                        remove = ui.button("Dismiss").clicked();
                    }
                    DetectionState::Ready(layer) => {
                        let layer = layer.clone();
                        remove = ready(ui, overlay, &layer, &name);
                    }
                }
            }
        }
        if remove {
            view.detections = None;
        }
        if ui.button("Import detections…").on_hover_text("QuPath GeoJSON of cells, detections or tiles").clicked() {
            action = Some(DetectionAction::Import);
        }
    });
    action
}

/// A loaded layer's settings, legend and counts; true when the user removes it.
fn ready(ui: &mut egui::Ui, overlay: &mut DetectionOverlay, layer: &DetectionLayer, name: &str) -> bool {
    let mut line = format!("{} objects from {name}", thousands(layer.len() as u64));
    if let Some(ms) = overlay.load_ms {
        line.push_str(&format!(" (read in {:.1} s)", ms / 1e3));
    }
    ui.label(line);
    if let Some(report) = &overlay.report {
        if report.skipped > 0 || report.truncated {
            ui.colored_label(ui.visuals().warn_fg_color, report.summary()).on_hover_text(report.problems.join("\n"));
        }
    }
    let totals = overlay.class_totals.clone();
    let style = &mut overlay.style;
    ui.horizontal(|ui| {
        ui.checkbox(&mut style.shown, "Show");
        ui.checkbox(&mut style.fill, "Fill");
    });
    ui.add(egui::Slider::new(&mut style.opacity, 0.0..=1.0).text("Opacity"));
    color_by(ui, style, layer);
    legend(ui, style, layer);
    ui.add_space(4.0);
    classes(ui, style, layer, overlay.counts.as_ref(), &totals);
    ui.button("Remove layer").on_hover_text("Stop showing these detections (the file is not changed)").clicked()
}

/// Colour by class or by a measurement, with the map and its range.
fn color_by(ui: &mut egui::Ui, style: &mut DetectionStyle, layer: &DetectionLayer) {
    let names = layer.measurement_names();
    let current = match style.color_by {
        ColorBy::Class => "Class".to_string(),
        ColorBy::Measurement { column, .. } => names.get(column).cloned().unwrap_or_default(),
    };
    let width = (ui.available_width() - 80.0).clamp(80.0, 180.0);
    egui::ComboBox::from_label("Colour by").selected_text(current).width(width).show_ui(ui, |ui| {
        if ui.selectable_label(style.color_by == ColorBy::Class, "Class").clicked() {
            style.color_by = ColorBy::Class;
        }
        for (column, name) in names.iter().enumerate() {
            let selected = matches!(style.color_by, ColorBy::Measurement { column: c, .. } if c == column);
            if ui.selectable_label(selected, name).clicked() && !selected {
                let [lo, hi] = layer.measurement_range(column).unwrap_or([0.0, 1.0]);
                let map = match style.color_by {
                    ColorBy::Measurement { map, .. } => map,
                    ColorBy::Class => ColorMap::default(),
                };
                style.color_by = ColorBy::Measurement { column, lo, hi, map };
            }
        }
    });
    if let ColorBy::Measurement { column, lo, hi, map } = &mut style.color_by {
        egui::ComboBox::from_label("Colour map").selected_text(map.label()).show_ui(ui, |ui| {
            for m in ColorMap::ALL {
                ui.selectable_value(map, m, m.label());
            }
        });
        let speed = layer.measurement_range(*column).map_or(0.01, |[a, b]| f64::from((b - a).abs().max(1e-6)) / 200.0);
        ui.horizontal(|ui| {
            ui.label("Range");
            ui.add(egui::DragValue::new(lo).speed(speed).max_decimals(3));
            ui.label("to");
            ui.add(egui::DragValue::new(hi).speed(speed).max_decimals(3));
            if ui.button("Full").on_hover_text("The smallest and largest value in the layer").clicked() {
                if let Some([a, b]) = layer.measurement_range(*column) {
                    (*lo, *hi) = (a, b);
                }
            }
        });
    }
}

/// The colour map as a bar from the range's start to its end, and the colour of "no value".
fn legend(ui: &mut egui::Ui, style: &DetectionStyle, layer: &DetectionLayer) {
    let ColorBy::Measurement { column, lo, hi, map } = style.color_by else { return };
    let name = layer.measurement_names().get(column).cloned().unwrap_or_default();
    let width = ui.available_width().clamp(80.0, 240.0);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(width, 14.0), egui::Sense::hover());
    let steps = 48;
    let painter = ui.painter();
    for k in 0..steps {
        let t0 = k as f32 / steps as f32;
        let t1 = (k + 1) as f32 / steps as f32;
        let slice = egui::Rect::from_min_max(
            egui::pos2(rect.left() + rect.width() * t0, rect.top()),
            egui::pos2(rect.left() + rect.width() * t1 + 0.5, rect.bottom()),
        );
        painter.rect_filled(slice, 0.0, rgb(map.color_at((t0 + t1) / 2.0)));
    }
    ui.horizontal(|ui| {
        ui.label(format!("{lo:.3}"));
        ui.label(format!("Legend: {name}"));
        ui.label(format!("{hi:.3}"));
    });
    ui.horizontal(|ui| {
        let (swatch, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
        ui.painter().rect_filled(swatch, 2.0, rgb(NO_VALUE_COLOR));
        ui.label("no value");
    });
}

/// One row per class: shown or not, its colour, and its counts in the view and the region.
fn classes(
    ui: &mut egui::Ui,
    style: &mut DetectionStyle,
    layer: &DetectionLayer,
    counts: Option<&Counts>,
    totals: &[u64],
) {
    let count = |v: Option<&Vec<u64>>, k: usize| v.and_then(|v| v.get(k)).copied();
    let region = counts.and_then(|c| c.region.as_ref());
    egui::Grid::new("detection classes").num_columns(3).striped(true).show(ui, |ui| {
        ui.label("Class");
        ui.label("In view");
        ui.label(if region.is_some() { "In selection" } else { "" });
        ui.end_row();
        for (k, class) in layer.classes().iter().enumerate() {
            let in_view = count(counts.map(|c| &c.view), k);
            if class.name.is_empty() && totals.get(k) == Some(&0) {
                continue;
            }
            let label = if class.name.is_empty() { "Unclassified" } else { class.name.as_str() };
            ui.horizontal(|ui| {
                let (swatch, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                ui.painter().rect_filled(swatch, 2.0, rgb(class.color));
                if let Some(shown) = style.class_visible.get_mut(k) {
                    ui.checkbox(shown, label).on_hover_text(format!("Show or hide {label}"));
                }
            });
            ui.label(in_view.map_or("…".into(), thousands));
            ui.label(count(region, k).map_or(String::new(), thousands));
            ui.end_row();
        }
        let total = |v: Option<&Vec<u64>>| v.map(|v| v.iter().sum::<u64>());
        ui.label("All");
        ui.label(total(counts.map(|c| &c.view)).map_or("…".into(), thousands));
        ui.label(total(region).map_or(String::new(), thousands));
        ui.end_row();
    });
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
