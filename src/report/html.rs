//! The printable page beside each report (`CASE.report.html`): every field, the per-class table,
//! a thumbnail of the slide and a snapshot of the reviewed view with the annotations drawn over
//! them, a scale bar and a legend of the classes drawn, and the amendments with what each changed.
//! One self-contained file (images embedded) that any browser opens and prints.
//!
//! Every string from a report is escaped with [`escape`]: reports travel between hospitals.

use crate::text::escape_markup as escape;
use base64::Engine;
use serde_json::Value;

use super::schema::{parse_date, parse_timestamp, Amendment, FieldChange, Report, ReviewType};
use crate::annotations::{Annotation, AnnotationClass, Geometry};
use crate::text::{group_digits, group_thousands};

/// A picture of part of the slide: encoded image bytes (PNG or JPEG, as `mime` says), its size in
/// pixels and the level-0 rectangle [x, y, w, h] it shows.
#[derive(Clone, Debug)]
pub struct SlidePicture {
    /// The encoded image file (PNG or JPEG), embedded in the page as a base64 data URI.
    pub bytes: Vec<u8>,
    /// `"image/jpeg"` or `"image/png"`: the data URI's type.
    pub mime: &'static str,
    /// The image's width in pixels.
    pub width: u32,
    /// The image's height in pixels.
    pub height: u32,
    /// The part of the slide shown, `[x, y, w, h]` in level-0 pixels (top-left corner, width and
    /// height; not `[x0, y0, x1, y1]`): annotations are drawn over the picture in these
    /// coordinates.
    pub region: [f64; 4],
}

/// JPEG quality of the view snapshot: at 85 a 1,600-pixel view of tissue is a few hundred
/// kilobytes where PNG took several megabytes, with no loss a reader of the page can see.
pub const JPEG_QUALITY: u8 = 85;

impl SlidePicture {
    /// The image as JPEG (transparent pixels shown on white), or None when it cannot be encoded.
    pub fn jpeg(image: &image::RgbaImage, region: [f64; 4]) -> Option<SlidePicture> {
        let (w, h) = (u16::try_from(image.width()).ok()?, u16::try_from(image.height()).ok()?);
        let rgb: Vec<u8> = image
            .pixels()
            .flat_map(|p| {
                let [r, g, b, a] = p.0;
                let over_white = |c: u8| ((u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a))) / 255) as u8;
                [over_white(r), over_white(g), over_white(b)]
            })
            .collect();
        let mut bytes = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, JPEG_QUALITY);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        encoder.encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb).ok()?;
        Some(SlidePicture { bytes, mime: "image/jpeg", width: image.width(), height: image.height(), region })
    }

    /// The image as PNG (lossless), or None when it cannot be encoded.
    pub fn png(image: &image::RgbaImage, region: [f64; 4]) -> Option<SlidePicture> {
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).ok()?;
        Some(SlidePicture { bytes, mime: "image/png", width: image.width(), height: image.height(), region })
    }

    /// Whichever of JPEG and PNG is smaller: a thumbnail that is mostly empty glass can be smaller
    /// as PNG, tissue always as JPEG.
    pub fn smallest(image: &image::RgbaImage, region: [f64; 4]) -> Option<SlidePicture> {
        match (SlidePicture::jpeg(image, region), SlidePicture::png(image, region)) {
            (Some(j), Some(p)) => Some(if p.bytes.len() < j.bytes.len() { p } else { j }),
            (j, p) => j.or(p),
        }
    }
}

fn or_dash(text: &str) -> String {
    if text.trim().is_empty() {
        "—".into()
    } else {
        escape(text)
    }
}

/// "30 Nov 2026 14:05 (+00:00)". A report's timestamps are shown in the offset they were written
/// with — the reporting site's local time when it was signed — with that offset, not converted
/// to the reader's zone: the page then reads the same wherever it is opened or printed, matches
/// the calendar day turnaround counts, and the offset makes the instant unambiguous. Text that is
/// not an RFC 3339 timestamp is shown as written (escaped).
pub fn timestamp_text(text: &str) -> String {
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year] [hour]:[minute] ([offset_hour sign:mandatory]:[offset_minute])"
    );
    match parse_timestamp(text.trim()) {
        Ok(t) => t.format(&format).map_or_else(|_| escape(text), |s| escape(&s)),
        Err(_) => or_dash(text),
    }
}

/// "2026-11-18" → "18 Nov 2026"; other text as written (escaped).
fn date_text(text: &str) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    match parse_date(text.trim()) {
        Ok(d) => d.format(&format).map_or_else(|_| escape(text), |s| escape(&s)),
        Err(_) => or_dash(text),
    }
}

fn class_color(a: &Annotation, classes: &[AnnotationClass]) -> [u8; 3] {
    a.class
        .as_ref()
        .and_then(|name| classes.iter().find(|c| &c.name == name).map(|c| c.color))
        .or(a.class_color)
        .unwrap_or(crate::annotations::model::UNCLASSIFIED_COLOR)
}

fn ring_path(ring: &[[f64; 2]], closed: bool, out: &mut String) {
    for (i, p) in ring.iter().enumerate() {
        out.push_str(if i == 0 { "M" } else { "L" });
        out.push_str(&format!("{:.1} {:.1}", p[0], p[1]));
    }
    if closed {
        out.push('Z');
    }
}

/// One annotation as an SVG element in level-0 coordinates; `marker` is a point's radius.
fn svg_shape(a: &Annotation, color: [u8; 3], marker: f64) -> String {
    let [r, g, b] = color;
    let paint = format!(
        "stroke=\"rgb({r},{g},{b})\" fill=\"rgb({r},{g},{b})\" fill-opacity=\"0.12\" stroke-width=\"2\" \
         vector-effect=\"non-scaling-stroke\""
    );
    let title = match (&a.class, a.name.trim()) {
        (Some(c), "") => format!("<title>{}</title>", escape(c)),
        (Some(c), n) => format!("<title>{}: {}</title>", escape(c), escape(n)),
        (None, "") => String::new(),
        (None, n) => format!("<title>{}</title>", escape(n)),
    };
    match &a.geometry {
        Geometry::Rectangle { x, y, width, height } => {
            format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" {paint}>{title}</rect>"
            )
        }
        Geometry::Ellipse { cx, cy, rx, ry } => {
            format!("<ellipse cx=\"{cx:.1}\" cy=\"{cy:.1}\" rx=\"{rx:.1}\" ry=\"{ry:.1}\" {paint}>{title}</ellipse>")
        }
        Geometry::Polygon(p) => {
            let mut d = String::new();
            ring_path(&p.exterior, true, &mut d);
            p.holes.iter().for_each(|h| ring_path(h, true, &mut d));
            format!("<path d=\"{d}\" fill-rule=\"evenodd\" {paint}>{title}</path>")
        }
        Geometry::MultiPolygon { polygons } => {
            let mut d = String::new();
            for p in polygons {
                ring_path(&p.exterior, true, &mut d);
                p.holes.iter().for_each(|h| ring_path(h, true, &mut d));
            }
            format!("<path d=\"{d}\" fill-rule=\"evenodd\" {paint}>{title}</path>")
        }
        Geometry::Polyline { points } => {
            let mut d = String::new();
            ring_path(points, false, &mut d);
            format!(
                "<path d=\"{d}\" fill=\"none\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"2\" \
                 vector-effect=\"non-scaling-stroke\">{title}</path>"
            )
        }
        Geometry::Points { points } => {
            let circles: String = points
                .iter()
                .map(|p| format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{marker:.1}\"/>", p[0], p[1]))
                .collect();
            format!(
                "<g fill=\"rgb({r},{g},{b})\" stroke=\"black\" stroke-width=\"1\" \
                 vector-effect=\"non-scaling-stroke\">{title}{circles}</g>"
            )
        }
    }
}

/// A round length for a scale bar about a fifth of `width_um` wide: 1, 2 or 5 × 10ⁿ µm, never
/// more than the target (so between a twelfth and a fifth of the picture).
fn scale_bar_um(width_um: f64) -> Option<f64> {
    let target = width_um / 5.0;
    if !(target.is_finite() && target > 0.0) {
        return None;
    }
    let power = 10f64.powf(target.log10().floor());
    [5.0, 2.0, 1.0].into_iter().map(|m| m * power).find(|&len| len <= target * (1.0 + 1e-9))
}

/// "500 µm", "2 mm", "0.5 µm".
fn length_label(um: f64) -> String {
    if um >= 1000.0 {
        format!("{} mm", um / 1000.0)
    } else {
        format!("{um} µm")
    }
}

/// A scale bar in the bottom-left corner of a picture showing `region` (level 0) at `mpp_x` µm per
/// level-0 pixel, in the picture's own (level-0) coordinates. Black on a white halo, so it reads
/// on pale glass and dark tissue alike. None when the pixel size is unknown.
fn scale_bar_svg(region: [f64; 4], mpp_x: Option<f64>) -> Option<String> {
    let mpp = mpp_x.filter(|m| m.is_finite() && *m > 0.0)?;
    let [x, y, w, h] = region;
    let um = scale_bar_um(w * mpp)?;
    let length = um / mpp;
    // Sizes in level-0 pixels proportional to the picture, so they look the same at any zoom:
    // the text is about 1/30 of the picture's width (≈ 15 px on screen for a 460-px figure).
    let unit = w / 100.0;
    let (font, margin, thickness) = (3.2 * unit, 2.5 * unit, 0.9 * unit);
    let (left, bar_top) = (x + margin, y + h - margin - thickness);
    let label = length_label(um);
    Some(format!(
        "<g class=\"scale-bar\" aria-label=\"scale bar {label}\">\
         <rect x=\"{hx:.1}\" y=\"{hy:.1}\" width=\"{hw:.1}\" height=\"{hh:.1}\" fill=\"white\"/>\
         <rect x=\"{left:.1}\" y=\"{bar_top:.1}\" width=\"{length:.1}\" height=\"{thickness:.1}\" fill=\"black\"/>\
         <text x=\"{left:.1}\" y=\"{ty:.1}\" font-size=\"{font:.1}\" font-family=\"system-ui, sans-serif\" \
         font-weight=\"600\" fill=\"black\" stroke=\"white\" stroke-width=\"{halo:.1}\" paint-order=\"stroke\" \
         stroke-linejoin=\"round\">{label}</text></g>",
        hx = left - 0.4 * thickness,
        hy = bar_top - 0.4 * thickness,
        hw = length + 0.8 * thickness,
        hh = 1.8 * thickness,
        ty = bar_top - 0.8 * thickness,
        halo = 0.25 * font,
    ))
}

/// The classes drawn on a picture, by name ("" for unclassified), with their colours; sorted by
/// name, unclassified last.
fn legend_entries(shown: &[(&Annotation, f64)], classes: &[AnnotationClass]) -> Vec<(String, [u8; 3])> {
    let mut entries: Vec<(String, [u8; 3])> = Vec::new();
    for (a, _) in shown {
        let name = a.class.clone().unwrap_or_default();
        if !entries.iter().any(|(n, _)| *n == name) {
            entries.push((name, class_color(a, classes)));
        }
    }
    entries.sort_by(|a, b| (a.0.is_empty(), &a.0).cmp(&(b.0.is_empty(), &b.0)));
    entries
}

fn legend_html(entries: &[(String, [u8; 3])]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let items: String = entries
        .iter()
        .map(|(name, [r, g, b])| {
            // An SVG swatch, not a CSS background: browsers leave backgrounds out when printing.
            format!(
                "<li><svg class=\"swatch\" viewBox=\"0 0 10 10\" aria-hidden=\"true\"><rect width=\"10\" height=\"10\" \
                 fill=\"rgb({r},{g},{b})\" fill-opacity=\"0.35\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"3\"/></svg>{}</li>",
                if name.is_empty() { "(unclassified)".to_string() } else { escape(name) }
            )
        })
        .collect();
    format!("<ul class=\"legend\" aria-label=\"classes drawn\">{items}</ul>")
}

/// The picture with the annotations that meet it drawn on top, as inline SVG whose coordinates
/// are level-0 pixels (so shapes need no conversion and stay sharp when printed), a scale bar
/// when `mpp_x` is known, and under it the legend of the classes drawn.
fn picture_svg(
    picture: &SlidePicture,
    annotations: &[&Annotation],
    classes: &[AnnotationClass],
    mpp_x: Option<f64>,
    alt: &str,
) -> String {
    let [x, y, w, h] = picture.region;
    let meets = |b: [f64; 4]| b[2] >= x && b[0] <= x + w && b[3] >= y && b[1] <= y + h;
    let mut shown: Vec<(&Annotation, f64)> = annotations
        .iter()
        .map(|a| (*a, a.geometry.bounds()))
        .filter(|(_, b)| meets(*b))
        .map(|(a, b)| (a, (b[2] - b[0]).max(b[3] - b[1])))
        .collect();
    let left_out = shown.len().saturating_sub(crate::Limits::DEFAULT.report_drawn);
    if left_out > 0 {
        shown.sort_by(|a, b| b.1.total_cmp(&a.1));
        shown.truncate(crate::Limits::DEFAULT.report_drawn);
    }
    let marker = (w.max(h) / f64::from(picture.width.max(picture.height).max(1))) * 4.0;
    let shapes: String = shown.iter().map(|(a, _)| svg_shape(a, class_color(a, classes), marker)).collect();
    let data = base64::engine::general_purpose::STANDARD.encode(&picture.bytes);
    let mut html = format!(
        "<svg class=\"picture\" viewBox=\"{x:.1} {y:.1} {w:.1} {h:.1}\" preserveAspectRatio=\"xMidYMid meet\" \
         role=\"img\" aria-label=\"{alt}\" style=\"aspect-ratio: {} / {}\">\
         <image href=\"data:{mime};base64,{data}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" \
         preserveAspectRatio=\"none\"/>{shapes}{bar}</svg>",
        picture.width.max(1),
        picture.height.max(1),
        alt = escape(alt),
        mime = picture.mime,
        bar = scale_bar_svg(picture.region, mpp_x).unwrap_or_default(),
    );
    html += &legend_html(&legend_entries(&shown, classes));
    if left_out > 0 {
        html +=
            &format!("<p class=\"note\">{} smaller annotations are not drawn here.</p>", group_digits(left_out as u64));
    }
    html
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1b1b1b; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.1rem; border-bottom: 1px solid #ccc;
       padding-bottom: .2rem; margin-top: 1.6rem; }
.status { display: inline-block; padding: .1rem .5rem; border-radius: .3rem; font-weight: 600;
       text-transform: uppercase; font-size: .8rem; }
.draft { background: #fff3cd; color: #7a5b00; } .final { background: #d4edda; color: #155724; }
.amended { background: #d1ecf1; color: #0c5460; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem;
       border-bottom: 1px solid #e3e3e3; vertical-align: top; } th { background: #f5f5f5; }
table.fields th { width: 14rem; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.text { white-space: pre-wrap; } .mono { font-family: ui-monospace, monospace; font-size: .85rem;
       word-break: break-all; }
.pictures { display: flex; gap: 1rem; flex-wrap: wrap; } figure { flex: 1 1 20rem; margin: 0; }
ul.legend { list-style: none; padding: 0; margin: .3rem 0; display: flex; flex-wrap: wrap; gap: .2rem 1rem;
       font-size: .85rem; } svg.swatch { width: .8rem; height: .8rem; vertical-align: -.1rem; margin-right: .3rem; }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; } table.changes th { width: 14rem; font-weight: normal; }
section.amendment { break-inside: avoid; }
svg.picture { width: 100%; height: auto; border: 1px solid #ccc; background: #fff; }
figcaption, .note, footer { color: #555; font-size: .85rem; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } figure { break-inside: avoid; } }
";

/// A changed field's value as the page shows it: text in full (line breaks kept), lists of codes
/// joined, nothing as "—", anything else as compact JSON — all escaped.
fn change_value(field: &str, value: &Value) -> String {
    if let Some(text) = super::schema::annotations_change_text(field, value) {
        return escape(&text);
    }
    match value {
        Value::Null => "—".into(),
        Value::String(text) if text.is_empty() => "<span class=\"note\">(empty)</span>".into(),
        Value::String(text) if field == "review_type" => {
            serde_json::from_value::<ReviewType>(value.clone()).map_or_else(|_| escape(text), |t| t.label().into())
        }
        Value::String(text) => format!("<div class=\"text\">{}</div>", escape(text)),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if items.is_empty() {
                "<span class=\"note\">(none)</span>".into()
            } else {
                escape(&items.join(", "))
            }
        }
        Value::Number(n) => n.as_u64().map_or_else(|| escape(&n.to_string()), group_digits),
        other => format!("<span class=\"mono\">{}</span>", escape(&other.to_string())),
    }
}

fn change_row(change: &FieldChange) -> String {
    let name = match super::schema::field_label(&change.field) {
        Some(label) => format!("{label} <span class=\"note mono\">{}</span>", escape(&change.field)),
        None => format!("<span class=\"mono\">{}</span>", escape(&change.field)),
    };
    format!(
        "<tr><th>{name}</th><td>{}</td><td>{}</td></tr>",
        change_value(&change.field, &change.before),
        change_value(&change.field, &change.after)
    )
}

/// One amendment: when, who (with their role), why, and a table of what changed.
fn amendment_html(number: usize, a: &Amendment) -> String {
    let who = match a.role {
        Some(role) => format!("{} ({})", or_dash(&a.by), role.label()),
        None => or_dash(&a.by),
    };
    let mut html = format!(
        "<section class=\"amendment\"><h3>Amendment {number}: {} · {who}</h3>\
         <p><strong>Reason:</strong> <span class=\"text\">{}</span></p>",
        timestamp_text(&a.at),
        or_dash(&a.reason)
    );
    if a.changes.is_empty() {
        html += "<p class=\"note\">What changed was not recorded (written before wsiview recorded changes).</p>";
    } else {
        html += "<table class=\"changes\"><tr><th>Field</th><th>Before</th><th>After</th></tr>";
        html.extend(a.changes.iter().map(change_row));
        html += "</table>";
    }
    html += "</section>";
    html
}

/// The whole page; "generated" is now.
pub fn report_html(
    report: &Report,
    thumbnail: Option<&SlidePicture>,
    view: Option<&SlidePicture>,
    annotations: &[&Annotation],
    classes: &[AnnotationClass],
) -> String {
    page_html(report, thumbnail, view, annotations, classes, &super::schema::now_rfc3339())
}

fn page_html(
    report: &Report,
    thumbnail: Option<&SlidePicture>,
    view: Option<&SlidePicture>,
    annotations: &[&Annotation],
    classes: &[AnnotationClass],
    generated_at: &str,
) -> String {
    let r = report;
    let status = r.status.as_str();
    let field = |name: &str, value: String| format!("<tr><th>{}</th><td>{value}</td></tr>", escape(name));
    let text = |value: &str| format!("<div class=\"text\">{}</div>", or_dash(value));
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Case {case} — {site}</title><style>{STYLE}</style></head><body>\
         <h1>Case {case} <span class=\"status {status}\">{status}</span></h1>\
         <p class=\"note\">Site {site} · report <span class=\"mono\">{id}</span></p>",
        case = or_dash(&r.case_id),
        site = or_dash(&r.site),
        id = escape(&r.report_id),
    );
    page += "<h2>Review</h2><table class=\"fields\">";
    page += &field("Reviewer", format!("{} ({})", or_dash(&r.reviewer.name), r.reviewer.role.label()));
    page += &field("Review type", r.review_type.label().into());
    page += &field("Specimen received", date_text(r.received_date.as_deref().unwrap_or_default()));
    page += &field("Reported", timestamp_text(r.reported_at.as_deref().unwrap_or_default()));
    if let Some(days) = r.turnaround_days() {
        page += &field("Turnaround", format!("{days} calendar day{}", if days == 1 { "" } else { "s" }));
    }
    page += "</table><h2>Report</h2><table class=\"fields\">";
    page += &field("Specimen", text(&r.specimen));
    page += &field("Clinical details", text(&r.clinical_details));
    page += &field("Macroscopy", text(&r.macroscopy));
    page += &field("Microscopy", text(&r.microscopy));
    page += &field("Diagnosis", text(&r.diagnosis.text));
    page += &field("Diagnosis category", or_dash(&r.diagnosis.category));
    page += &field("SNOMED CT", or_dash(&r.diagnosis.snomed_ct.join(", ")));
    page += &field("Comments", text(&r.comments));
    page += "</table>";

    page += "<h2>Annotations</h2>";
    if r.annotations.by_class.is_empty() {
        page += "<p>None.</p>";
    } else {
        page += "<table><tr><th>Class</th><th class=\"num\">Count</th><th class=\"num\">Area µm²</th>\
                 <th class=\"num\">Length µm</th></tr>";
        for c in &r.annotations.by_class {
            page += &format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                if c.class.is_empty() { "(unclassified)".to_string() } else { escape(&c.class) },
                group_digits(c.count),
                c.area_um2.map_or("—".into(), group_thousands),
                c.length_um.map_or("—".into(), group_thousands)
            );
        }
        page += "</table>";
    }
    if !r.annotations.by_slide.is_empty() {
        // A case of several slides: the totals above are the case's; each slide's part here.
        page += &format!("<p class=\"note\">Totals of the case's {} slides.</p>", r.annotations.by_slide.len());
        page += "<table><tr><th>Slide</th><th>Class</th><th class=\"num\">Count</th><th class=\"num\">Area µm²</th>\
                 <th class=\"num\">Length µm</th></tr>";
        for s in &r.annotations.by_slide {
            let slide = format!("<span class=\"mono\">{}</span>", escape(&s.file_name));
            if s.by_class.is_empty() {
                page += &format!("<tr><td>{slide}</td><td>none</td><td></td><td></td><td></td></tr>");
            }
            for c in &s.by_class {
                page += &format!(
                    "<tr><td>{slide}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td></tr>",
                    if c.class.is_empty() { "(unclassified)".to_string() } else { escape(&c.class) },
                    group_digits(c.count),
                    c.area_um2.map_or("—".into(), group_thousands),
                    c.length_um.map_or("—".into(), group_thousands)
                );
            }
        }
        page += "</table>";
    } else if !r.annotations.file.is_empty() {
        page += &format!("<p class=\"note\">From <span class=\"mono\">{}</span>.</p>", escape(&r.annotations.file));
    }

    let s = &r.slide;
    page += "<h2>Slide</h2>";
    if thumbnail.is_some() || view.is_some() {
        page += "<div class=\"pictures\">";
        if let Some(t) = thumbnail {
            page += &format!(
                "<figure>{}<figcaption>Whole slide with annotations.</figcaption></figure>",
                picture_svg(t, annotations, classes, s.mpp_x, "whole slide")
            );
        }
        if let Some(v) = view {
            let [x, y, w, h] = v.region;
            page += &format!(
                "<figure>{}<figcaption>The view reviewed: x {x:.0}–{:.0}, y {y:.0}–{:.0} (level-0 pixels).\
                 </figcaption></figure>",
                picture_svg(v, annotations, classes, s.mpp_x, "reviewed view"),
                x + w,
                y + h
            );
        }
        page += "</div>";
        if s.mpp_x.is_none() {
            page += "<p class=\"note\">No scale bar: the slide's pixel size is unknown.</p>";
        }
    }
    let mpp = match (s.mpp_x, s.mpp_y) {
        (Some(x), Some(y)) if (x - y).abs() < 1e-9 => format!("{x:.4} µm/pixel"),
        (Some(x), Some(y)) => format!("{x:.4} × {y:.4} µm/pixel"),
        _ => "unknown".into(),
    };
    page += "<table class=\"fields\">";
    page += &field("File", or_dash(&s.file_name));
    page += &field("SHA-256", format!("<span class=\"mono\">{}</span>", or_dash(&s.sha256)));
    page += &field("Size", format!("{} × {} pixels", group_digits(s.width), group_digits(s.height)));
    page += &field("Pixel size", mpp);
    page += &field("Vendor", or_dash(&s.vendor));
    page += "</table>";

    if !r.amendments.is_empty() {
        page += "<h2>Amendments</h2>";
        for (i, a) in r.amendments.iter().enumerate() {
            page += &amendment_html(i + 1, a);
        }
    }
    page += &format!(
        "<footer><p>Generated {} by wsiview {} · schema {}. Times are the reporting site's local time, \
         with its offset from UTC. The slide's label and macro images are never included.</p></footer>\
         </body></html>\n",
        timestamp_text(generated_at),
        env!("CARGO_PKG_VERSION"),
        escape(&r.schema)
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::Polygon;
    use crate::report::schema::{ClassSummary, Role};
    use crate::report::Status;

    fn triangle(class: &AnnotationClass) -> Annotation {
        Annotation::new(Geometry::Polygon(Polygon {
            exterior: vec![[10.0, 10.0], [50.0, 10.0], [30.0, 40.0]],
            holes: vec![],
        }))
        .with_class(Some(class))
    }

    fn picture(bytes: Vec<u8>, region: [f64; 4]) -> SlidePicture {
        SlidePicture { bytes, mime: "image/png", width: 100, height: 80, region }
    }

    /// A tissue-like RGBA image: smooth pink and purple blobs with fine grain, not flat colour
    /// (which any encoder shrinks) nor pure noise (which none does).
    fn tissue(width: u32, height: u32) -> image::RgbaImage {
        let mut seed = 0x2545_f491_u32;
        image::RgbaImage::from_fn(width, height, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let grain = (seed % 24) as f64;
            let (fx, fy) = (f64::from(x) / 37.0, f64::from(y) / 23.0);
            let blob = (fx.sin() * fy.cos() + (fx * 0.3 + fy * 0.7).sin()) * 0.5 + 0.5;
            let channel = |base: f64, depth: f64| (base - depth * blob - grain).clamp(0.0, 255.0) as u8;
            image::Rgba([channel(235.0, 90.0), channel(200.0, 150.0), channel(225.0, 60.0), 255])
        })
    }

    #[test]
    fn fields_are_escaped_and_pictures_embedded_with_annotations() {
        let mut r = Report { case_id: "H26<1>".into(), site: "RLH".into(), ..Report::default() };
        r.microscopy = "<script>alert(1)</script>\nline 2".into();
        r.annotations.by_class.push(ClassSummary {
            class: "Tumor".into(),
            count: 2,
            area_um2: Some(1234.5),
            length_um: Some(0.0),
            extra: Default::default(),
        });
        let inside = triangle(&AnnotationClass::new("Tumor", [200, 0, 0]));
        let outside = Annotation::new(Geometry::Rectangle { x: 5000.0, y: 5000.0, width: 10.0, height: 10.0 });
        let picture = picture(vec![1, 2, 3], [0.0, 0.0, 100.0, 80.0]);
        let html = report_html(&r, Some(&picture), None, &[&inside, &outside], &[]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("Case H26&lt;1&gt;"));
        assert!(html.contains("data:image/png;base64,AQID"), "the PNG is embedded");
        assert!(html.contains("M10.0 10.0L50.0 10.0L30.0 40.0Z"), "the polygon is drawn in level-0 coordinates");
        assert!(html.contains("rgb(200,0,0)"), "in its class colour");
        assert!(!html.contains("5000.0"), "annotations outside the picture are left out");
        assert!(html.contains("<td class=\"num\">1,234.5</td>"), "the class table");
    }

    #[test]
    fn a_cases_annotations_are_listed_by_slide() {
        let class = |name: &str, count| ClassSummary { class: name.into(), count, ..Default::default() };
        let slide = |name: &str, by_class| crate::report::schema::SlideAnnotations {
            file_name: name.into(),
            file: format!("{name}.annotations.geojson"),
            by_class,
            extra: Default::default(),
        };
        let mut r = Report::default();
        r.annotations.set_case_slides(vec![
            slide("A1<HE>.svs", vec![class("Tumor", 2)]),
            slide("B1_Ki67.svs", vec![class("Mitosis", 1_234), class("Tumor", 1)]),
            slide("C1_ER.svs", vec![]),
        ]);
        let html = report_html(&r, None, None, &[], &[]);
        assert!(html.contains("Totals of the case's 3 slides."));
        // The case's totals, then each slide's rows.
        assert!(html.contains("<tr><td>Tumor</td><td class=\"num\">3</td>"), "{html}");
        assert!(html
            .contains("<td><span class=\"mono\">A1&lt;HE&gt;.svs</span></td><td>Tumor</td><td class=\"num\">2</td>"));
        assert!(html
            .contains("<td><span class=\"mono\">B1_Ki67.svs</span></td><td>Mitosis</td><td class=\"num\">1,234</td>"));
        assert!(html.contains("<td><span class=\"mono\">C1_ER.svs</span></td><td>none</td>"));
    }

    #[test]
    fn many_annotations_keep_the_largest() {
        let many: Vec<Annotation> = (0..crate::Limits::DEFAULT.report_drawn + 10)
            .map(|i| Annotation::new(Geometry::Rectangle { x: 1.0, y: 1.0, width: 1.0 + i as f64, height: 1.0 }))
            .collect();
        let refs: Vec<&Annotation> = many.iter().collect();
        let picture =
            SlidePicture { bytes: vec![], mime: "image/png", width: 10, height: 10, region: [0.0, 0.0, 100.0, 100.0] };
        let html = picture_svg(&picture, &refs, &[], None, "x");
        assert_eq!(html.matches("<rect x=").count(), crate::Limits::DEFAULT.report_drawn);
        assert!(html.contains("10 smaller annotations are not drawn"));
        assert!(!html.contains("width=\"1.0\""), "the smallest went");
    }

    #[test]
    fn the_view_is_a_small_jpeg() {
        let region = [0.0, 0.0, 6400.0, 4000.0];
        let image = tissue(1600, 1000);
        let view = SlidePicture::jpeg(&image, region).expect("encodes");
        assert_eq!((view.mime, view.width, view.height), ("image/jpeg", 1600, 1000));
        assert_eq!(view.bytes.get(..3), Some(&[0xff, 0xd8, 0xff][..]), "a JPEG stream");
        let png = SlidePicture::png(&image, region).expect("encodes");
        assert!(view.bytes.len() * 3 < png.bytes.len(), "JPEG {} vs PNG {}", view.bytes.len(), png.bytes.len());
        let thumb = SlidePicture::smallest(&tissue(400, 250), region).expect("encodes");
        let r = Report::default();
        let html = report_html(&r, Some(&thumb), Some(&view), &[], &[]);
        // A JPEG stream starts FF D8 FF, which base64 writes "/9j/".
        assert!(html.contains("data:image/jpeg;base64,/9j/"), "the view is embedded as JPEG");
        assert!(html.len() < 700_000, "the page is {} bytes", html.len());
        // The thumbnail takes whichever encoding is smaller, for tissue and for empty glass.
        let glass = image::RgbaImage::from_pixel(400, 250, image::Rgba([255, 255, 255, 255]));
        for image in [tissue(400, 250), glass] {
            let sizes = [&SlidePicture::jpeg(&image, region), &SlidePicture::png(&image, region)]
                .map(|p| p.as_ref().map_or(usize::MAX, |p| p.bytes.len()));
            let chosen = SlidePicture::smallest(&image, region).expect("encodes");
            assert_eq!(chosen.bytes.len(), sizes[0].min(sizes[1]), "{sizes:?}");
        }
    }

    #[test]
    fn scale_bars_are_round_lengths_and_only_with_a_known_pixel_size() {
        assert_eq!(scale_bar_um(1600.0), Some(200.0));
        assert_eq!(scale_bar_um(1000.0), Some(200.0));
        assert_eq!(scale_bar_um(999.0), Some(100.0));
        assert_eq!(scale_bar_um(24_576.0), Some(2000.0));
        assert_eq!(scale_bar_um(3.0), Some(0.5));
        assert_eq!(scale_bar_um(0.0), None);
        assert_eq!(length_label(2000.0), "2 mm");
        assert_eq!(length_label(500.0), "500 µm");

        let mut r = Report::default();
        r.slide.mpp_x = Some(0.25);
        r.slide.mpp_y = Some(0.25);
        // 6,400 level-0 pixels at 0.25 µm = 1,600 µm wide: a 200 µm bar, 800 level-0 pixels long.
        let view = picture(vec![1], [1000.0, 500.0, 6400.0, 4000.0]);
        let html = report_html(&r, None, Some(&view), &[], &[]);
        assert!(html.contains("<g class=\"scale-bar\""), "a scale bar is drawn");
        assert!(html.contains(">200 µm</text>"), "labelled with its length");
        assert!(html.contains("width=\"800.0\" height=\"57.6\" fill=\"black\""), "800 px long: {html}");
        assert!(html.contains("stroke=\"white\"") && html.contains("paint-order=\"stroke\""), "with a halo");

        r.slide.mpp_x = None;
        r.slide.mpp_y = None;
        let html = report_html(&r, None, Some(&view), &[], &[]);
        assert!(!html.contains("scale-bar") && !html.contains(" µm</text>"), "no scale bar without a pixel size");
        assert!(html.contains("No scale bar: the slide's pixel size is unknown."));
    }

    #[test]
    fn the_legend_lists_the_classes_drawn() {
        let tumor = AnnotationClass::new("Tumor <b>", [200, 0, 0]);
        let stroma = AnnotationClass::new("Stroma", [0, 150, 0]);
        let necrosis = AnnotationClass::new("Necrosis", [90, 90, 90]);
        let mut far = triangle(&necrosis);
        far.geometry = Geometry::Rectangle { x: 9000.0, y: 9000.0, width: 5.0, height: 5.0 };
        let unclassified = Annotation::new(Geometry::Rectangle { x: 1.0, y: 1.0, width: 5.0, height: 5.0 });
        let shapes = [triangle(&tumor), triangle(&stroma), triangle(&tumor), far, unclassified];
        let refs: Vec<&Annotation> = shapes.iter().collect();
        let classes = [tumor.clone(), stroma.clone(), necrosis.clone()];
        let html = picture_svg(&picture(vec![], [0.0, 0.0, 100.0, 80.0]), &refs, &classes, None, "x");
        let legend = html.split("<ul class=\"legend\"").nth(1).expect("a legend");
        let names: Vec<&str> = legend.split("</svg>").skip(1).filter_map(|item| item.split("</li>").next()).collect();
        assert_eq!(names, ["Stroma", "Tumor &lt;b&gt;", "(unclassified)"], "each class drawn once, escaped");
        assert!(legend.contains("fill=\"rgb(0,150,0)\""), "with its colour");
        assert!(!legend.contains("Necrosis"), "a class not in the picture is not listed");
        let empty = picture_svg(&picture(vec![], [0.0, 0.0, 100.0, 80.0]), &[], &classes, None, "x");
        assert!(!empty.contains("legend"), "no legend without annotations");
    }

    #[test]
    fn numbers_have_thousands_separators_and_times_their_offset() {
        let mut r = Report { status: Status::Final, ..Report::default() };
        r.slide.width = 98_304;
        r.slide.height = 75_776;
        r.received_date = Some("2026-11-18".into());
        r.reported_at = Some("2026-11-30T14:05:00+00:00".into());
        r.annotations.by_class.push(ClassSummary {
            class: "Tumor".into(),
            count: 12_345,
            area_um2: Some(1_842_210.54),
            length_um: Some(10_500.0),
            extra: Default::default(),
        });
        let html = page_html(&r, None, None, &[], &[], "2026-12-01T09:30:12-05:00");
        assert!(html.contains("<td class=\"num\">12,345</td>"), "count");
        assert!(html.contains("<td class=\"num\">1,842,210.5</td>"), "area");
        assert!(html.contains("<td class=\"num\">10,500.0</td>"), "length");
        assert!(html.contains("98,304 × 75,776 pixels"), "slide size");
        assert!(html.contains("<td>18 Nov 2026</td>"), "received date");
        assert!(html.contains("<td>30 Nov 2026 14:05 (+00:00)</td>"), "reported, with its offset");
        assert!(html.contains("Generated 1 Dec 2026 09:30 (-05:00)"), "generated, in the offset written");
        assert_eq!(timestamp_text("yesterday <3"), "yesterday &lt;3", "unparseable text is shown escaped");
    }

    #[test]
    fn amendments_list_what_changed_escaped() {
        let mut r = Report::default();
        r.amendments.push(Amendment {
            at: "2026-12-02T10:15:00+01:00".into(),
            by: "Dr B <i>".into(),
            role: Some(Role::Trainee),
            reason: "second opinion & review".into(),
            changes: vec![
                FieldChange {
                    field: "diagnosis.category".into(),
                    before: "B3".into(),
                    after: "B5a".into(),
                    extra: Default::default(),
                },
                FieldChange {
                    field: "microscopy".into(),
                    before: "<script>alert(1)</script>\nSecond line of a long description.".into(),
                    after: "".into(),
                    extra: Default::default(),
                },
                FieldChange {
                    field: "x_future.grade".into(),
                    before: Value::Null,
                    after: serde_json::json!({"g": "<3>"}),
                    extra: Default::default(),
                },
            ],
            extra: Default::default(),
        });
        r.amendments.push(Amendment {
            at: "2026-12-03T08:00:00Z".into(),
            by: "Dr C".into(),
            reason: "old entry".into(),
            ..Default::default()
        });
        let html = report_html(&r, None, None, &[], &[]);
        assert!(!html.contains("<script>") && !html.contains("<i>") && !html.contains("<3>"), "escaped");
        assert!(html.contains("<h3>Amendment 1: 2 Dec 2026 10:15 (+01:00) · Dr B &lt;i&gt; (Trainee)</h3>"));
        assert!(html.contains("second opinion &amp; review"));
        assert!(html.contains(
            "<tr><th>Diagnosis category <span class=\"note mono\">diagnosis.category</span></th>\
             <td><div class=\"text\">B3</div></td><td><div class=\"text\">B5a</div></td></tr>"
        ));
        assert!(html.contains(
            "<td><div class=\"text\">&lt;script&gt;alert(1)&lt;/script&gt;\nSecond line of a long description.</div></td>\
             <td><span class=\"note\">(empty)</span></td>"
        ), "long text in full, escaped");
        assert!(
            html.contains("<th><span class=\"mono\">x_future.grade</span></th><td>—</td>"),
            "unknown field by path"
        );
        assert!(html.contains("{&quot;g&quot;:&quot;&lt;3&gt;&quot;}"), "other values as escaped JSON");
        assert!(html.contains("Amendment 2: 3 Dec 2026 08:00 (+00:00) · Dr C</h3>"), "no role, none shown");
        assert!(html.contains("What changed was not recorded"));
    }
}
