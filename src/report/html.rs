//! The printable page beside each report (`CASE.report.html`): every field, the per-class table,
//! a thumbnail of the slide and a snapshot of the reviewed view with the annotations drawn over
//! them. One self-contained file (images embedded) that any browser opens and prints.

use base64::Engine;

use super::schema::Report;
use crate::annotations::{Annotation, AnnotationClass, Geometry};

/// A picture of part of the slide: PNG bytes and the level-0 rectangle [x, y, w, h] it shows.
#[derive(Clone, Debug)]
pub struct SlidePicture {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub region: [f64; 4],
}

/// Annotations drawn on one picture at most; beyond it the smallest are left out (and counted), so
/// a slide with 50,000 cell outlines still gives a page a browser opens quickly.
const MAX_DRAWN: usize = 5_000;

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn or_dash(text: &str) -> String {
    if text.trim().is_empty() {
        "—".into()
    } else {
        escape(text)
    }
}

fn number(v: f64) -> String {
    format!("{v:.1}")
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

/// The picture with the annotations that meet it drawn on top, as inline SVG whose coordinates
/// are level-0 pixels (so shapes need no conversion and stay sharp when printed).
fn picture_svg(picture: &SlidePicture, annotations: &[&Annotation], classes: &[AnnotationClass], alt: &str) -> String {
    let [x, y, w, h] = picture.region;
    let meets = |b: [f64; 4]| b[2] >= x && b[0] <= x + w && b[3] >= y && b[1] <= y + h;
    let mut shown: Vec<(&Annotation, f64)> = annotations
        .iter()
        .map(|a| (*a, a.geometry.bounds()))
        .filter(|(_, b)| meets(*b))
        .map(|(a, b)| (a, (b[2] - b[0]).max(b[3] - b[1])))
        .collect();
    let left_out = shown.len().saturating_sub(MAX_DRAWN);
    if left_out > 0 {
        shown.sort_by(|a, b| b.1.total_cmp(&a.1));
        shown.truncate(MAX_DRAWN);
    }
    let marker = (w.max(h) / f64::from(picture.width.max(picture.height).max(1))) * 4.0;
    let shapes: String = shown.iter().map(|(a, _)| svg_shape(a, class_color(a, classes), marker)).collect();
    let data = base64::engine::general_purpose::STANDARD.encode(&picture.png);
    let mut html = format!(
        "<svg class=\"picture\" viewBox=\"{x:.1} {y:.1} {w:.1} {h:.1}\" preserveAspectRatio=\"xMidYMid meet\" \
         role=\"img\" aria-label=\"{alt}\" style=\"aspect-ratio: {} / {}\">\
         <image href=\"data:image/png;base64,{data}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" \
         preserveAspectRatio=\"none\"/>{shapes}</svg>",
        picture.width.max(1),
        picture.height.max(1),
        alt = escape(alt),
    );
    if left_out > 0 {
        html += &format!("<p class=\"note\">{left_out} smaller annotations are not drawn here.</p>");
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
svg.picture { width: 100%; height: auto; border: 1px solid #ccc; background: #fff; }
figcaption, .note, footer { color: #555; font-size: .85rem; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } figure { break-inside: avoid; } }
";

/// The whole page.
pub fn report_html(
    report: &Report,
    thumbnail: Option<&SlidePicture>,
    view: Option<&SlidePicture>,
    annotations: &[&Annotation],
    classes: &[AnnotationClass],
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
    page += &field("Specimen received", or_dash(r.received_date.as_deref().unwrap_or_default()));
    page += &field("Reported", or_dash(r.reported_at.as_deref().unwrap_or_default()));
    if let Some(days) = r.turnaround_days() {
        page += &field("Turnaround", format!("{days} calendar day{}", if days == 1 { "" } else { "s" }));
    }
    page += "</table><h2>Report</h2><table class=\"fields\">";
    page += &field("Specimen", text(&r.specimen));
    page += &field("Clinical details", text(&r.clinical_details));
    page += &field("Macroscopy", text(&r.macroscopy));
    page += &field("Microscopy", text(&r.microscopy));
    page += &field("Diagnosis", text(&r.diagnosis.text));
    page += &field("Diagnostic category", or_dash(&r.diagnosis.category));
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
                c.count,
                c.area_um2.map_or("—".into(), number),
                c.length_um.map_or("—".into(), number)
            );
        }
        page += "</table>";
    }
    if !r.annotations.file.is_empty() {
        page += &format!("<p class=\"note\">From <span class=\"mono\">{}</span>.</p>", escape(&r.annotations.file));
    }

    if thumbnail.is_some() || view.is_some() {
        page += "<h2>Slide</h2><div class=\"pictures\">";
        if let Some(t) = thumbnail {
            page += &format!(
                "<figure>{}<figcaption>Whole slide with annotations.</figcaption></figure>",
                picture_svg(t, annotations, classes, "whole slide")
            );
        }
        if let Some(v) = view {
            let [x, y, w, h] = v.region;
            page += &format!(
                "<figure>{}<figcaption>The view reviewed: x {x:.0}–{:.0}, y {y:.0}–{:.0} (level-0 pixels).\
                 </figcaption></figure>",
                picture_svg(v, annotations, classes, "reviewed view"),
                x + w,
                y + h
            );
        }
        page += "</div>";
    } else {
        page += "<h2>Slide</h2>";
    }
    let s = &r.slide;
    let mpp = match (s.mpp_x, s.mpp_y) {
        (Some(x), Some(y)) if (x - y).abs() < 1e-9 => format!("{x:.4} µm/pixel"),
        (Some(x), Some(y)) => format!("{x:.4} × {y:.4} µm/pixel"),
        _ => "unknown".into(),
    };
    page += "<table class=\"fields\">";
    page += &field("File", or_dash(&s.file_name));
    page += &field("SHA-256", format!("<span class=\"mono\">{}</span>", or_dash(&s.sha256)));
    page += &field("Size", format!("{} × {} pixels", s.width, s.height));
    page += &field("Pixel size", mpp);
    page += &field("Vendor", or_dash(&s.vendor));
    page += "</table>";

    if !r.amendments.is_empty() {
        page += "<h2>Amendments</h2><table><tr><th>When</th><th>By</th><th>Reason</th></tr>";
        for a in &r.amendments {
            page += &format!(
                "<tr><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                escape(&a.at),
                escape(&a.by),
                escape(&a.reason)
            );
        }
        page += "</table>";
    }
    page += &format!(
        "<footer><p>Written by wsiview {} · schema {}. The slide's label and macro images are never \
         included.</p></footer></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&r.schema)
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::Polygon;

    #[test]
    fn fields_are_escaped_and_pictures_embedded_with_annotations() {
        let mut r = Report { case_id: "H26<1>".into(), site: "RLH".into(), ..Report::default() };
        r.microscopy = "<script>alert(1)</script>\nline 2".into();
        r.annotations.by_class.push(super::super::schema::ClassSummary {
            class: "Tumor".into(),
            count: 2,
            area_um2: Some(1234.5),
            length_um: Some(0.0),
            extra: Default::default(),
        });
        let inside = Annotation::new(Geometry::Polygon(Polygon {
            exterior: vec![[10.0, 10.0], [50.0, 10.0], [30.0, 40.0]],
            holes: vec![],
        }))
        .with_class(Some(&AnnotationClass::new("Tumor", [200, 0, 0])));
        let outside = Annotation::new(Geometry::Rectangle { x: 5000.0, y: 5000.0, width: 10.0, height: 10.0 });
        let picture = SlidePicture { png: vec![1, 2, 3], width: 100, height: 80, region: [0.0, 0.0, 100.0, 80.0] };
        let html = report_html(&r, Some(&picture), None, &[&inside, &outside], &[]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("Case H26&lt;1&gt;"));
        assert!(html.contains("data:image/png;base64,AQID"), "the PNG is embedded");
        assert!(html.contains("M10.0 10.0L50.0 10.0L30.0 40.0Z"), "the polygon is drawn in level-0 coordinates");
        assert!(html.contains("rgb(200,0,0)"), "in its class colour");
        assert!(!html.contains("5000.0"), "annotations outside the picture are left out");
        assert!(html.contains("<td class=\"num\">1234.5</td>"), "the class table");
    }

    #[test]
    fn many_annotations_keep_the_largest() {
        let many: Vec<Annotation> = (0..MAX_DRAWN + 10)
            .map(|i| Annotation::new(Geometry::Rectangle { x: 1.0, y: 1.0, width: 1.0 + i as f64, height: 1.0 }))
            .collect();
        let refs: Vec<&Annotation> = many.iter().collect();
        let picture = SlidePicture { png: vec![], width: 10, height: 10, region: [0.0, 0.0, 100.0, 100.0] };
        let html = picture_svg(&picture, &refs, &[], "x");
        assert_eq!(html.matches("<rect").count(), MAX_DRAWN);
        assert!(html.contains("10 smaller annotations are not drawn"));
        assert!(!html.contains("width=\"1.0\""), "the smallest went");
    }
}
