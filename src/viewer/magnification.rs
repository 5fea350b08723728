//! Magnification presets (the tool bar's 1×…40× buttons, keys `1`–`5`) and the status bar's
//! magnification. A preset beyond the scan's own magnification is digital zoom: it enlarges
//! scanned pixels without adding detail, and says so.

use super::slide_view::SlideView;

/// The presets, in key order (`1` is the first).
pub const PRESETS: [f64; 5] = [1.0, 5.0, 10.0, 20.0, 40.0];

/// "40×", "2.5×": whole numbers without decimals.
pub fn format_magnification(m: f64) -> String {
    if (m - m.round()).abs() < 0.05 {
        format!("{:.0}×", m.round())
    } else {
        format!("{m:.1}×")
    }
}

/// True when showing `magnification` enlarges the scan beyond its own magnification.
pub fn is_digital(magnification: f64, scan: f64) -> bool {
    magnification > scan * 1.01
}

/// Tooltip of a preset button.
pub fn preset_tooltip(m: f64, key: usize, scan: Option<f64>) -> String {
    let mut text = format!("Magnification {} (key {key})", format_magnification(m));
    if let Some(scan) = scan.filter(|&s| is_digital(m, s)) {
        text += &format!(" — digital zoom: the slide was scanned at {}", format_magnification(scan));
    }
    text
}

/// The status bar's magnification: "10×", or "40× (digital zoom, scan 20×)" past the scan's.
pub fn status_text(view: &SlideView) -> Option<String> {
    let m = view.magnification()?;
    let mut text = format_magnification(m);
    if let Some(scan) = view.scan_magnification().filter(|&s| is_digital(m, s)) {
        text += &format!(" (digital zoom, scan {})", format_magnification(scan));
    }
    Some(text)
}

/// The preset buttons, when the scan's magnification is known.
pub fn presets(ui: &mut egui::Ui, view: &mut SlideView) {
    let Some(scan) = view.scan_magnification() else { return };
    ui.separator();
    let mut chosen = None;
    for (i, m) in PRESETS.into_iter().enumerate() {
        let label = format_magnification(m);
        let text = if is_digital(m, scan) { egui::RichText::new(label).italics() } else { egui::RichText::new(label) };
        if ui.button(text).on_hover_text(preset_tooltip(m, i + 1, Some(scan))).clicked() {
            chosen = Some(m);
        }
    }
    if let Some(z) = chosen.and_then(|m| view.zoom_for_magnification(m)) {
        view.zoom_to(z, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_past_the_scan_are_digital() {
        assert_eq!(format_magnification(40.0), "40×");
        assert_eq!(format_magnification(2.5), "2.5×");
        assert!(preset_tooltip(40.0, 5, Some(20.0)).contains("digital zoom"));
        assert!(!preset_tooltip(20.0, 4, Some(20.0)).contains("digital"));
        assert!(!preset_tooltip(40.0, 5, Some(40.0)).contains("digital"));
    }
}
