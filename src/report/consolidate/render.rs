//! The consolidation's output files: `summary.json`, `summary.csv`, `discordance.csv`, a
//! self-contained `summary.html` and `summary-public.html` (suppressed aggregate figures only).
//! Every string from a report is escaped.

use std::io;
use std::path::Path;

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::equity::{
    Cell, EquityFigures, EquityTable, EquityTables, PublicWorkload, Suppressed, WorkloadFigures, MIN_CELL, NOT_RECORDED,
};
use super::{DiscordantPair, ReportRow, Summary, OUTPUT_FILES};
use crate::report::category_map::normalise as category_key;
use crate::text::{csv_text, escape_markup as html_escape, push_csv_text};

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

impl Summary {
    /// `summary.json`: the keys of issue 5, plus `duplicates`, `equity` ([`equity_json`]) and
    /// `generated_at`.
    pub fn to_json(&self) -> Value {
        let invalid: Vec<Value> =
            self.invalid.iter().map(|i| json!({"file": path_text(&i.file), "error": i.error})).collect();
        let duplicates: Vec<Value> = self
            .duplicates
            .iter()
            .map(|d| json!({"file": path_text(&d.file), "report_id": d.report_id, "kept": path_text(&d.kept)}))
            .collect();
        let by_site: Map<String, Value> = self
            .by_site
            .iter()
            .map(|(site, s)| {
                let stats = json!({
                    "reports": s.reports,
                    "final": s.signed_out,
                    "turnaround_days_median": s.turnaround_days_median,
                    "turnaround_days_p90": s.turnaround_days_p90,
                    "within_7_days_pct": s.within_7_days_pct,
                    "within_10_days_pct": s.within_10_days_pct,
                });
                (site.clone(), stats)
            })
            .collect();
        let by_reviewer: Map<String, Value> = self
            .by_reviewer
            .iter()
            .map(|(name, r)| (name.clone(), json!({"reports": r.reports, "sites": r.sites})))
            .collect();
        let pair_json = |p: &DiscordantPair, with_files: bool| {
            let mut pair = json!({
                "sha256": p.sha256,
                "case_id": p.case_id_a,
                "site_a": p.site_a,
                "category_a": p.category_a,
                "group_a": p.group_a,
                "site_b": p.site_b,
                "category_b": p.category_b,
                "group_b": p.group_b,
                "report_id_a": p.report_id_a,
                "report_id_b": p.report_id_b,
            });
            // Sites number cases their own way; the second id only when it differs.
            if p.case_id_b != p.case_id_a {
                pair["case_id_b"] = json!(p.case_id_b);
            }
            if with_files {
                pair["file_a"] = json!(p.source_a);
                pair["file_b"] = json!(p.source_b);
            }
            pair
        };
        let pairs: Vec<Value> = self.concordance.pairs.iter().map(|p| pair_json(p, false)).collect();
        let not_comparable: Vec<Value> = self.concordance.not_comparable.iter().map(|p| pair_json(p, true)).collect();
        let c = &self.concordance;
        json!({
            "reports": self.reports.len(),
            "invalid": invalid,
            "duplicates": duplicates,
            "by_site": by_site,
            "by_reviewer": by_reviewer,
            "concordance": {
                "slides_reviewed_more_than_once": c.slides_reviewed_more_than_once,
                "discordant_slides": c.discordant_slides,
                "concordance_pct": c.concordance_pct,
                "pairs": pairs,
                "slides_compared": c.slides_compared,
                "slides_not_comparable": c.slides_not_comparable,
                "not_comparable": not_comparable,
                "category_map": c.category_map,
            },
            "equity": equity_json(&self.equity),
            "generated_at": self.generated_at,
        })
    }

    /// "10000 reports (12 invalid, 3 duplicates) from 5 sites; 4 of 40 twice-reviewed slides discordant",
    /// and ", 2 not comparable" when some slides' categories could not be compared.
    pub fn headline(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let c = &self.concordance;
        let mut line = format!(
            "{} ({} invalid, {}) from {}; {} of {} twice-reviewed slides discordant",
            plural(self.reports.len(), "report", "reports"),
            self.invalid.len(),
            plural(self.duplicates.len(), "duplicate", "duplicates"),
            plural(self.by_site.len(), "site", "sites"),
            c.discordant_slides,
            c.slides_reviewed_more_than_once,
        );
        if c.slides_not_comparable > 0 {
            line += &format!(", {} not comparable", c.slides_not_comparable);
        }
        line
    }
}

/// One equity cell in JSON: `{"n", "turnaround_days_median", "within_7_days_pct",
/// "within_10_days_pct"}` when shown, `{"suppressed": "<10"}` (fewer than 10 reports) or
/// `{"suppressed": "complementary"}` (hidden so a small cell cannot be recovered) when not.
fn equity_cell_json(cell: &Cell<EquityFigures>) -> Value {
    match cell {
        Cell::Shown(f) => json!({
            "n": f.n,
            "turnaround_days_median": f.turnaround_days_median,
            "within_7_days_pct": f.within_7_days_pct,
            "within_10_days_pct": f.within_10_days_pct,
        }),
        Cell::Suppressed(Suppressed::Small) => json!({"suppressed": "<10"}),
        Cell::Suppressed(Suppressed::Complementary) => json!({"suppressed": "complementary"}),
    }
}

fn equity_table_json(table: &EquityTable) -> Value {
    let cells = |cells: &[Cell<EquityFigures>]| cells.iter().map(equity_cell_json).collect::<Vec<Value>>();
    let sites: Map<String, Value> = table.sites.iter().map(|(site, row)| (site.clone(), json!(cells(row)))).collect();
    json!({"columns": table.columns, "sites": sites, "network": cells(&table.network)})
}

/// `summary.json`'s `equity`: `{"min_cell": 10, "ethnic_category": TABLE, "imd_quintile": TABLE}`,
/// a TABLE being `{"columns": [...], "sites": {SITE: [CELL per column]}, "network": [CELL per
/// column]}` ([`equity_cell_json`]'s cells).
pub fn equity_json(tables: &EquityTables) -> Value {
    json!({
        "min_cell": MIN_CELL,
        "ethnic_category": equity_table_json(&tables.ethnic_category),
        "imd_quintile": equity_table_json(&tables.imd_quintile),
    })
}

fn csv_line(out: &mut String, fields: &[String]) {
    *out += &fields.join(",");
    *out += "\r\n";
}

/// `summary.csv`: one row per valid report, in path order; turnaround only for signed-out
/// reports. CRLF line ends (RFC 4180).
pub fn summary_csv(summary: &Summary) -> String {
    let mut out = String::new();
    let header = "file,report_id,case_id,site,status,reviewer,role,review_type,received_date,reported_at,\
                  turnaround_days,diagnosis_category,sha256";
    csv_line(&mut out, &[header.to_string()]);
    // A million rows: built in parallel blocks, each field appended in place.
    let blocks: Vec<String> = summary.reports.par_chunks(8192).map(summary_csv_rows).collect();
    out.reserve(blocks.iter().map(String::len).sum());
    blocks.iter().for_each(|b| out.push_str(b));
    out
}

/// The rows of `summary.csv` for these reports.
fn summary_csv_rows(reports: &[ReportRow]) -> String {
    let mut out = String::with_capacity(reports.len() * 260);
    for r in reports {
        let turnaround = r.turnaround_days.map(|d| d.to_string()).unwrap_or_default();
        let fields: [(&str, bool); 13] = [
            (&r.source, true),
            (&r.report_id, true),
            (&r.case_id, true),
            (&r.site, true),
            (r.status.as_str(), false),
            (&r.reviewer, true),
            (r.role.as_str(), false),
            (r.review_type.as_str(), false),
            (r.received_date.as_deref().unwrap_or_default(), true),
            (r.reported_at.as_deref().unwrap_or_default(), true),
            (&turnaround, false),
            (&r.category, true),
            (&r.sha256, true),
        ];
        for (i, (field, from_report)) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if from_report {
                push_csv_text(&mut out, field);
            } else {
                out.push_str(field);
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// `discordance.csv`: one row per discordant pair, with both files so each can be found.
pub fn discordance_csv(summary: &Summary) -> String {
    let mut out = String::new();
    // The group columns come last so readers of the earlier columns by position are unaffected.
    let header = "sha256,case_id,site_a,category_a,report_id_a,file_a,case_id_b,site_b,category_b,report_id_b,file_b,\
                  group_a,group_b";
    csv_line(&mut out, &[header.to_string()]);
    for p in &summary.concordance.pairs {
        csv_line(
            &mut out,
            &[
                csv_text(&p.sha256),
                csv_text(&p.case_id_a),
                csv_text(&p.site_a),
                csv_text(&p.category_a),
                csv_text(&p.report_id_a),
                csv_text(&p.source_a),
                csv_text(&p.case_id_b),
                csv_text(&p.site_b),
                csv_text(&p.category_b),
                csv_text(&p.report_id_b),
                csv_text(&p.source_b),
                csv_text(p.group_a.as_deref().unwrap_or_default()),
                csv_text(p.group_b.as_deref().unwrap_or_default()),
            ],
        );
    }
    out
}

const HTML_STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d2330; margin: 2em auto; max-width: 70em; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #d5d9e0; padding-bottom: 0.2em; }
.meta { color: #5a6270; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #d5d9e0; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f1f3f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.none { color: #8a919c; }
.error { color: #a1261b; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
";

fn html_number(value: Option<f64>, suffix: &str) -> String {
    value.map_or_else(|| "<span class=\"none\">—</span>".to_string(), |v| format!("{v:.1}{suffix}"))
}

fn html_table(out: &mut String, header: &[&str], numeric: &[bool], rows: &[Vec<String>]) {
    *out += "<table>\n<tr>";
    for h in header {
        *out += &format!("<th>{h}</th>");
    }
    *out += "</tr>\n";
    for row in rows {
        *out += "<tr>";
        for (i, cell) in row.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) { " class=\"num\"" } else { "" };
            *out += &format!("<td{class}>{cell}</td>");
        }
        *out += "</tr>\n";
    }
    *out += "</table>\n";
}

/// At most `max` characters, with an ellipsis when cut (chart labels).
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Horizontal bars of median and p90 turnaround per site, with reference lines at 7 and 10 days.
fn turnaround_chart(summary: &Summary) -> String {
    let sites: Vec<(&String, f64, i64)> = summary
        .by_site
        .iter()
        .filter_map(|(site, s)| Some((site, s.turnaround_days_median?, s.turnaround_days_p90?)))
        .collect();
    if sites.is_empty() {
        return "<p class=\"none\">No signed-out reports: no turnaround to chart.</p>\n".into();
    }
    let (label_width, plot_width, row_height, top, bottom) = (170.0, 520.0, 40.0, 28.0, 34.0);
    let longest = sites.iter().map(|s| s.2).max().unwrap_or(0).max(10) as f64;
    // A round scale end so the ticks fall on whole days.
    let tick_days = if longest <= 15.0 {
        1.0
    } else if longest <= 40.0 {
        5.0
    } else {
        (longest / 50.0).ceil() * 10.0
    };
    let scale_end = ((longest * 1.05) / tick_days).ceil() * tick_days;
    let x = |days: f64| label_width + days / scale_end * plot_width;
    let height = top + row_height * sites.len() as f64 + bottom;
    let width = label_width + plot_width + 60.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"Median and 90th percentile turnaround in days per site\">\n"
    );
    let plot_bottom = top + row_height * sites.len() as f64;
    let mut tick = 0.0;
    while tick <= scale_end + 1e-9 {
        svg += &format!(
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{plot_bottom}\" stroke=\"#eceef2\"/>\
             <text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{tick}</text>\n",
            x(tick),
            plot_bottom + 14.0
        );
        tick += tick_days;
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">days from receipt to report</text>\n",
        label_width + plot_width / 2.0,
        plot_bottom + 30.0
    );
    for (i, (site, median_days, p90_days)) in sites.iter().enumerate() {
        let y = top + row_height * i as f64;
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            label_width - 8.0,
            y + row_height / 2.0 + 4.0,
            html_escape(&clip(site, 22))
        );
        for (row, days, colour, name) in
            [(0.0, *median_days, "#4a78b5", "median"), (1.0, *p90_days as f64, "#e0913a", "p90")]
        {
            let bar_y = y + 6.0 + row * 14.0;
            svg += &format!(
                "<rect x=\"{label_width}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"12\" fill=\"{colour}\">\
                 <title>{} {name}: {days} days</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{days}</text>\n",
                (x(days) - label_width).max(1.0),
                html_escape(site),
                x(days) + 4.0,
                bar_y + 10.0
            );
        }
    }
    for limit in [7.0, 10.0] {
        svg += &format!(
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{plot_bottom}\" stroke=\"#a1261b\" \
             stroke-dasharray=\"4 3\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\" \
             style=\"fill:#a1261b\">{limit} days</text>\n",
            x(limit),
            top - 4.0,
            top - 8.0
        );
    }
    svg += &format!(
        "<rect x=\"{0}\" y=\"4\" width=\"12\" height=\"10\" fill=\"#4a78b5\"/><text x=\"{1}\" y=\"13\">median</text>\
         <rect x=\"{2}\" y=\"4\" width=\"12\" height=\"10\" fill=\"#e0913a\"/><text x=\"{3}\" y=\"13\">90th percentile</text>\n",
        4.0,
        20.0,
        80.0,
        96.0
    );
    svg += "</svg>\n";
    svg
}

fn suppressed_html(why: Suppressed) -> String {
    format!("<span class=\"none\">{}</span>", html_escape(why.marker()))
}

/// A shown equity cell: "n · median d" over "within 7 % / within 10 %".
fn equity_cell_html(cell: &Cell<EquityFigures>) -> String {
    match cell {
        Cell::Shown(f) => format!(
            "{} · {}<br>{} / {}",
            f.n,
            html_number(f.turnaround_days_median, " d"),
            html_number(f.within_7_days_pct, " %"),
            html_number(f.within_10_days_pct, " %")
        ),
        Cell::Suppressed(why) => suppressed_html(*why),
    }
}

const SUPPRESSION_NOTE: &str = "<p class=\"meta\">Final and amended reports only. A cell counting fewer than \
    10 reports shows &lt;10 and no figures; a cell that would let such a count be worked out by \
    subtraction from a row or column total shows \u{201c}suppressed\u{201d}.</p>\n";

fn equity_table_html(out: &mut String, title: &str, table: &EquityTable) {
    let e = html_escape;
    *out += &format!("<h3>{}</h3>\n", e(title));
    let mut header = vec!["site".to_string()];
    for column in &table.columns {
        let meaning = table.dimension.meaning(column);
        header.push(if meaning.is_empty() {
            e(column)
        } else {
            format!("<abbr title=\"{}\">{}</abbr>", e(&meaning), e(column))
        });
    }
    let row = |name: String, cells: &[Cell<EquityFigures>]| {
        std::iter::once(name).chain(cells.iter().map(equity_cell_html)).collect::<Vec<String>>()
    };
    let mut rows: Vec<Vec<String>> = table.sites.iter().map(|(site, cells)| row(e(site), cells)).collect();
    rows.push(row("<b>network</b>".into(), &table.network));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let numeric: Vec<bool> = header.iter().enumerate().map(|(i, _)| i > 0).collect();
    html_table(out, &header, &numeric, &rows);
}

/// The equity section: turnaround by ethnic category and by IMD quintile, suppressed.
fn equity_html(tables: &EquityTables) -> String {
    let mut out = String::from("<h2>Equity of service</h2>\n");
    out += "<p class=\"meta\">Each cell: reports · median turnaround in days, then the share within 7 days / \
            within 10 days. Ethnic category: NHS Data Dictionary code (Z not stated, 99 not known); \
            IMD quintile 1 is the most deprived fifth of areas.</p>\n";
    out += SUPPRESSION_NOTE;
    equity_table_html(&mut out, "By ethnic category", &tables.ethnic_category);
    equity_table_html(&mut out, "By IMD quintile", &tables.imd_quintile);
    if tables.ethnic_category.columns.iter().chain(&tables.imd_quintile.columns).any(|c| c == NOT_RECORDED) {
        out += "<p class=\"meta\">not recorded: reports without the field in their equity block.</p>\n";
    }
    out
}

fn workload_row(name: String, cell: &Cell<WorkloadFigures>) -> Vec<String> {
    match cell {
        Cell::Shown(w) => vec![
            name,
            w.reports.to_string(),
            w.signed_out.to_string(),
            html_number(w.turnaround_days_median, ""),
            html_number(w.within_7_days_pct, " %"),
            html_number(w.within_10_days_pct, " %"),
        ],
        Cell::Suppressed(why) => std::iter::once(name).chain(std::iter::repeat_n(suppressed_html(*why), 5)).collect(),
    }
}

fn public_workload_html(out: &mut String, workload: &PublicWorkload) {
    let mut rows: Vec<Vec<String>> =
        workload.sites.iter().map(|(site, cell)| workload_row(html_escape(site), cell)).collect();
    rows.push(workload_row("<b>network</b>".into(), &workload.network));
    html_table(
        out,
        &["site", "reports", "final or amended", "median days", "within 7 days", "within 10 days"],
        &[false, true, true, true, true, true],
        &rows,
    );
}

/// `summary-public.html`: only aggregate figures, suppressed for publication — workload and
/// turnaround per site and network-wide, and the equity tables. No reviewer, case, report id,
/// slide hash, file, category or invalid file appears; site codes are escaped.
pub fn summary_public_html(summary: &Summary) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out += "<title>Reporting turnaround and equity of service</title>\n<style>";
    out += HTML_STYLE;
    out += "</style>\n</head>\n<body>\n<h1>Reporting turnaround and equity of service</h1>\n";
    out += &format!(
        "<p class=\"meta\">Aggregate figures for publication · {} · generated {}</p>\n",
        match summary.public_workload.sites.len() {
            1 => "1 site".to_string(),
            n => format!("{n} sites"),
        },
        html_escape(&summary.generated_at)
    );
    out += "<p class=\"meta\">Turnaround: calendar days from specimen receipt to the date of the report. \
            Median: middle value (mean of the two middle values for an even count).</p>\n";
    out += SUPPRESSION_NOTE;
    out += "<h2>Turnaround by site</h2>\n";
    public_workload_html(&mut out, &summary.public_workload);
    out += &equity_html(&summary.equity);
    out += "</body>\n</html>\n";
    out
}

/// `summary.html`: one self-contained page (inline CSS and SVG, no scripts or external files).
/// Every string from a report is escaped: reports come from other hospitals.
pub fn summary_html(summary: &Summary) -> String {
    let e = html_escape;
    let c = &summary.concordance;
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out += "<title>Case report consolidation</title>\n<style>";
    out += HTML_STYLE;
    out += "</style>\n</head>\n<body>\n<h1>Case report consolidation</h1>\n";
    out += &format!("<p class=\"meta\">{} · generated {}</p>\n", e(&summary.headline()), e(&summary.generated_at));
    out += "<p class=\"meta\">Turnaround: calendar days from specimen receipt to the date of the report, over \
            final and amended reports. Median: middle value (mean of the two middle values for an even \
            count). 90th percentile: nearest rank. Drafts count in the totals only.</p>\n";

    out += "<h2>Turnaround by site</h2>\n";
    out += &turnaround_chart(summary);
    let rows: Vec<Vec<String>> = summary
        .by_site
        .iter()
        .map(|(site, s)| {
            vec![
                e(site),
                s.reports.to_string(),
                s.signed_out.to_string(),
                html_number(s.turnaround_days_median, ""),
                s.turnaround_days_p90.map_or_else(|| html_number(None, ""), |d| d.to_string()),
                html_number(s.within_7_days_pct, " %"),
                html_number(s.within_10_days_pct, " %"),
            ]
        })
        .collect();
    html_table(
        &mut out,
        &["site", "reports", "final or amended", "median days", "p90 days", "within 7 days", "within 10 days"],
        &[false, true, true, true, true, true, true],
        &rows,
    );

    out += "<h2>By reviewer</h2>\n";
    let rows: Vec<Vec<String>> = summary
        .by_reviewer
        .iter()
        .map(|(name, r)| {
            let sites: Vec<String> = r.sites.iter().map(|s| e(s)).collect();
            vec![e(name), r.reports.to_string(), sites.join(", ")]
        })
        .collect();
    html_table(&mut out, &["reviewer", "reports", "sites"], &[false, true, false], &rows);

    out += "<h2>Concordance</h2>\n";
    out += &format!(
        "<p>{} slides reviewed more than once (final or amended reports, same SHA-256); {} discordant; \
         {} not comparable; concordance {} (of the {} slides whose reports could be compared).</p>\n",
        c.slides_reviewed_more_than_once,
        c.discordant_slides,
        c.slides_not_comparable,
        html_number(c.concordance_pct, " %"),
        c.slides_compared,
    );
    out += &format!(
        "<p class=\"meta\">Categories are compared by group ({} category map): equal categories, or \
         categories of the same group (B5a and malignant), agree. A pair whose categories differ where \
         either has no group is not comparable: listed below, not counted as discordant; a slide with \
         only such pairs is left out of the percentage.</p>\n",
        e(&c.category_map)
    );
    let category = |name: &str, group: &Option<String>| match group {
        Some(g) if category_key(name) != *g => format!("{} <span class=\"meta\">({})</span>", e(name), e(g)),
        Some(_) => e(name),
        None => format!("{} <span class=\"none\">(no group)</span>", e(name)),
    };
    let pair_rows = |pairs: &[DiscordantPair], with_files: bool| -> Vec<Vec<String>> {
        pairs
            .iter()
            .map(|p| {
                let case = if p.case_id_a == p.case_id_b {
                    e(&p.case_id_a)
                } else {
                    format!("{} / {}", e(&p.case_id_a), e(&p.case_id_b))
                };
                let mut row = vec![
                    format!("<code>{}…</code>", e(&clip(&p.sha256, 13))),
                    case,
                    e(&p.site_a),
                    category(&p.category_a, &p.group_a),
                    e(&p.site_b),
                    category(&p.category_b, &p.group_b),
                ];
                if with_files {
                    row.push(e(&p.source_a));
                    row.push(e(&p.source_b));
                }
                row
            })
            .collect()
    };
    let pair_header = ["slide (SHA-256)", "case", "site A", "category A", "site B", "category B"];
    if !c.pairs.is_empty() {
        html_table(&mut out, &pair_header, &[], &pair_rows(&c.pairs, false));
    }
    if !c.not_comparable.is_empty() {
        out += &format!("<h3>Not comparable ({})</h3>\n", c.not_comparable.len());
        out +=
            "<p class=\"meta\">Add the categories to a map file (<code>--category-map</code>) to compare them.</p>\n";
        let header: Vec<&str> = pair_header.iter().copied().chain(["file A", "file B"]).collect();
        html_table(&mut out, &header, &[], &pair_rows(&c.not_comparable, true));
    }

    out += &equity_html(&summary.equity);

    if !summary.duplicates.is_empty() {
        out += &format!(
            "<h2>Duplicates ({})</h2>\n<p class=\"meta\">The same report found in more than one file is \
             counted once, from the most advanced copy.</p>\n",
            summary.duplicates.len()
        );
        let rows: Vec<Vec<String>> = summary
            .duplicates
            .iter()
            .map(|d| vec![e(&path_text(&d.file)), e(&d.report_id), e(&path_text(&d.kept))])
            .collect();
        html_table(&mut out, &["file", "report id", "counted from"], &[], &rows);
    }

    out += &format!("<h2>Invalid files ({})</h2>\n", summary.invalid.len());
    if summary.invalid.is_empty() {
        out += "<p class=\"none\">None.</p>\n";
    } else {
        let rows: Vec<Vec<String>> = summary
            .invalid
            .iter()
            .map(|i| vec![e(&path_text(&i.file)), format!("<span class=\"error\">{}</span>", e(&i.error))])
            .collect();
        html_table(&mut out, &["file", "problem"], &[], &rows);
    }
    out += "</body>\n</html>\n";
    out
}

/// Write [`OUTPUT_FILES`] into `out_dir` (created if missing), each atomically. The error names the
/// file that could not be written.
pub fn write_outputs(summary: &Summary, out_dir: &Path) -> io::Result<()> {
    let named = |path: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: cannot write: {e}", path.display()));
    std::fs::create_dir_all(out_dir).map_err(|e| named(out_dir, e))?;
    // Made and written in parallel: summary.csv of a million reports is the long one.
    let makers: [&(dyn Fn() -> Vec<u8> + Sync); 5] = [
        &|| {
            let mut json = serde_json::to_vec_pretty(&summary.to_json()).unwrap_or_default();
            json.push(b'\n');
            json
        },
        &|| summary_csv(summary).into_bytes(),
        &|| discordance_csv(summary).into_bytes(),
        &|| summary_html(summary).into_bytes(),
        &|| summary_public_html(summary).into_bytes(),
    ];
    OUTPUT_FILES.par_iter().zip(makers.par_iter()).try_for_each(|(name, make)| {
        let path = out_dir.join(name);
        crate::files::write_atomic(&path, &make()).map_err(|e| named(&path, e))
    })?;
    Ok(())
}
