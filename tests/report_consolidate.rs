//! `wsiview consolidate` on a hand-built multi-site set of reports whose totals, turnaround figures
//! and discordant pairs are worked out below, plus malformed files, duplicates and hostile text.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use time::macros::date;
use time::Duration;
use wsiview::report::consolidate::{self, Summary};
use wsiview::report::schema::Amendment;
use wsiview::report::{Report, Status};

const SCRIPT_SITE: &str = "<script>alert(1)</script>";

/// A slide's SHA-256 from a short name, so groups are readable below.
fn sha(name: &str) -> String {
    let mut hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    hex.truncate(64);
    format!("{hex:0<64}")
}

struct Spec {
    path: &'static str,
    site: &'static str,
    status: Status,
    /// Calendar days from receipt to report; None for a draft with no `reported_at`.
    turnaround: Option<i64>,
    slide: &'static str,
    category: &'static str,
    reviewer: &'static str,
    case_id: &'static str,
}

/// (path, site, status, turnaround, slide, category, reviewer, case_id), as in the table below.
type Row = (&'static str, &'static str, Status, Option<i64>, &'static str, &'static str, &'static str, &'static str);

fn spec((path, site, status, turnaround, slide, category, reviewer, case_id): Row) -> Spec {
    Spec { path, site, status, turnaround, slide, category, reviewer, case_id }
}

fn report(s: &Spec, n: usize) -> Report {
    // Receipt dates move a day per report, so months and years are crossed.
    let received = date!(2026 - 12 - 20) + Duration::days(n as i64);
    let mut r = Report {
        report_id: format!("00000000-0000-4000-8000-{n:012}"),
        case_id: s.case_id.into(),
        site: s.site.into(),
        status: s.status,
        received_date: Some(received.to_string()),
        reported_at: s.turnaround.map(|t| format!("{}T15:20:00+00:00", received + Duration::days(t))),
        ..Report::default()
    };
    r.reviewer.name = s.reviewer.into();
    r.slide.sha256 = sha(s.slide);
    r.diagnosis.category = s.category.into();
    r.diagnosis.text = format!("Diagnosis {}", s.category);
    r.specimen = "Core biopsy".into();
    r.microscopy = "As described.".into();
    if s.status == Status::Amended {
        r.amendments.push(Amendment {
            at: "2027-03-01T09:00:00Z".into(),
            by: "Dr Q".into(),
            reason: "addendum".into(),
            ..Default::default()
        });
    }
    r
}

fn write(root: &Path, relative: &str, bytes: &[u8]) -> PathBuf {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, bytes).expect("write");
    path
}

/// The set. Signed-out turnaround per site (days), worked out by hand:
/// - RLH [2, 3, 5, 7, 8, 10, 11, 14], n = 8 (+1 draft): median (7 + 8)/2 = 7.5; p90 rank ⌈7.2⌉ = 8
///   → 14; ≤ 7 days 4/8 = 50.0 %; ≤ 10 days 6/8 = 75.0 %.
/// - NBT [1, 4, 6, 7, 9, 12, 20], n = 7: median 7; p90 rank ⌈6.3⌉ = 7 → 20 (interpolation would
///   give 15.2); ≤ 7 days 4/7 = 57.1 %; ≤ 10 days 5/7 = 71.4 %.
/// - GWH [0, 1, 1, 2, 3, 3, 4, 5, 6, 30], n = 10 (+2 drafts): median 3; p90 rank 9 → 6 (rank 10
///   would give 30); ≤ 7 and ≤ 10 days 9/10 = 90.0 %.
/// - SCRIPT_SITE: one draft; no turnaround (nulls).
///
/// Slides with ≥ 2 signed-out reports: a (B5b, " b5b " — same), b (GWH B3, RLH B5b — discordant),
/// c (GWH MALIGNANT, NBT Benign, RLH malignant — discordant, 2 pairs), f (B1, b1 — same),
/// g (benign, Benign — same): 5 slides, 2 discordant, 60.0 %. Slide d has one final and one draft
/// (not counted); slide e's report exists twice under one report_id (counted once).
fn specs() -> Vec<Spec> {
    use Status::{Amended, Draft, Final};
    let rows: Vec<Row> = vec![
        ("rlh/2026/12/a.report.json", "RLH", Final, Some(2), "a", "B5b", "Dr A. Smith", "RLH-1"),
        ("rlh/2026/12/b.report.json", "RLH", Final, Some(3), "b", "B5b", "Dr A. Smith", "H26-B"),
        ("rlh/2026/12/c.report.json", "RLH", Amended, Some(5), "c", "malignant", "Dr C. Jones", "RLH-3"),
        ("rlh/2027/01/d.report.json", "RLH", Final, Some(7), "g", "benign", "Dr C. Jones", "RLH-4"),
        ("rlh/2027/01/e.report.json", "RLH", Final, Some(8), "u1", "B2", "Dr C. Jones", "RLH-5"),
        ("rlh/2027/01/f.report.json", "RLH", Amended, Some(10), "e", "B4", "Dr C. Jones", "RLH-6"),
        ("rlh/2027/02/g.report.json", "RLH", Final, Some(11), "u2", "B1", "Dr C. Jones", "RLH-7"),
        ("rlh/2027/02/h.report.json", "RLH", Final, Some(14), "u3", "B5a", "Dr C. Jones", "RLH-8"),
        // A draft with both dates: counting drafts would move every RLH figure.
        ("rlh/2027/02/i.report.json", "RLH", Draft, Some(30), "u4", "B5b", "Dr C. Jones", "RLH-9"),
        ("nbt/a.report.json", "NBT", Final, Some(1), "a", " b5b ", " Dr A. Smith ", "NBT-1"),
        ("nbt/b.report.json", "NBT", Final, Some(4), "c", "Benign", "Dr N. Patel", "NBT-2"),
        ("nbt/c.report.json", "NBT", Final, Some(6), "g", "Benign", "Dr N. Patel", "NBT-3"),
        ("nbt/d.report.json", "NBT", Final, Some(7), "d", "B2", "Dr N. Patel", "NBT-4"),
        ("nbt/e.report.json", "NBT", Final, Some(9), "u5", "B3", "Dr N. Patel", "NBT-5"),
        ("nbt/f.report.json", "NBT", Amended, Some(12), "u6", "B4", "Dr N. Patel", "NBT-6"),
        ("nbt/g.report.json", "NBT", Final, Some(20), "u7", "B5a", "Dr N. Patel", "NBT-7"),
        ("gwh/deep/er/a.report.json", "GWH", Final, Some(0), "b", "B3", "Dr G. Lee", "H26-B"),
        ("gwh/deep/er/b.report.json", "GWH", Final, Some(1), "c", "MALIGNANT", "Dr G. Lee", "GWH-2"),
        ("gwh/deep/er/c.report.json", "GWH", Final, Some(1), "f", "B1", "Dr G. Lee", "GWH-3"),
        ("gwh/deep/er/d.report.json", "GWH", Final, Some(2), "f", "b1", "Dr G. Lee", "GWH-4"),
        ("gwh/deep/e.report.json", "GWH", Final, Some(3), "u8", "B2", "Dr G. Lee", "GWH-5"),
        ("gwh/deep/f.report.json", "GWH", Final, Some(3), "u9", "B2", "Dr G. Lee", "GWH-6"),
        ("gwh/g.report.json", "GWH", Final, Some(4), "u10", "B2", "Dr G. Lee", "GWH-7"),
        ("gwh/h.report.json", "GWH", Final, Some(5), "u11", "B2", "Dr G. Lee", "GWH-8"),
        ("gwh/i.report.json", "GWH", Amended, Some(6), "u12", "B2", "Dr G. Lee", "GWH-9"),
        ("gwh/j.report.json", "GWH", Final, Some(30), "u13", "B2", "Dr G. Lee", "GWH-10"),
        ("gwh/k.report.json", "GWH", Draft, None, "d", "B5", "", "GWH-11"),
        ("gwh/l.report.json", "GWH", Draft, None, "u14", "", "Dr G. Lee", "GWH-12"),
        ("xss/a.report.json", SCRIPT_SITE, Draft, None, "u15", "<b>bold</b>", "Dr <img src=x>", "X-1"),
    ];
    rows.into_iter().map(spec).collect()
}

const VALID: usize = 29;

/// Writes the set under `root` and returns the path of the kept copy of the duplicated report.
fn build(root: &Path) -> PathBuf {
    let mut kept = PathBuf::new();
    for (n, s) in specs().iter().enumerate() {
        let r = report(s, n);
        let path = write(root, s.path, &r.to_json());
        if s.slide == "e" {
            // An earlier copy (first in path order), still final: the amended one must win.
            let mut copy = r.clone();
            copy.status = Status::Final;
            copy.amendments.clear();
            copy.diagnosis.category = "B3".into();
            write(root, "archive/copy-of-f.report.json", &copy.to_json());
            kept = path;
        }
    }
    // Files that are not reports by name are not read.
    write(root, "nbt/notes.json", b"{}");
    write(root, "nbt/a.report.json.bak", b"not read");

    let good: Value = serde_json::from_slice(&report(&specs()[0], 1000).to_json()).expect("json");
    let variant = |edit: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        edit(&mut v);
        serde_json::to_vec(&v).expect("json")
    };
    write(root, "bad/not-json.report.json", b"this is not JSON");
    write(root, "bad/empty.report.json", b"");
    write(root, "bad/wrong-types.report.json", &variant(&|v| v["slide"]["width"] = json!("wide")));
    let drop_case_id = |v: &mut Value| {
        if let Some(fields) = v.as_object_mut() {
            fields.remove("case_id");
        }
    };
    write(root, "bad/missing-case.report.json", &variant(&drop_case_id));
    write(root, "bad/bad-date.report.json", &variant(&|v| v["received_date"] = json!("2026-02-30")));
    write(root, "bad/wrong-schema.report.json", &variant(&|v| v["schema"] = json!("wsiview.report/2")));
    // Signed out but incomplete: no category, and a blank specimen and diagnosis text.
    let incomplete = |v: &mut Value| {
        v["diagnosis"]["category"] = json!("  ");
        v["diagnosis"]["text"] = json!("");
        v["specimen"] = json!(" ");
    };
    write(root, "bad/no-category.report.json", &variant(&incomplete));
    kept
}

/// (file name, words its error must contain)
const BAD: [(&str, &[&str]); 7] = [
    ("not-json.report.json", &["not JSON"]),
    ("empty.report.json", &["empty"]),
    ("wrong-types.report.json", &["invalid type", "\"wide\""]),
    ("missing-case.report.json", &["missing field", "case_id"]),
    ("bad-date.report.json", &["received_date", "2026-02-30"]),
    ("wrong-schema.report.json", &["wsiview.report/2"]),
    ("no-category.report.json", &["diagnosis.category", "specimen", "diagnosis.text"]),
];

fn run(dirs: &[PathBuf]) -> Summary {
    consolidate::consolidate(dirs, &|_, _| {})
}

#[test]
fn figures_of_a_multi_site_set_match_the_hand_count() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    let kept = build(&root);
    let missing = temp.path().join("no-such-folder");
    let summary = run(&[root.clone(), missing.clone()]);
    let v = summary.to_json();

    assert_eq!(v["reports"], json!(VALID));
    assert_eq!(
        v["by_site"]["RLH"],
        json!({"reports": 9, "final": 8, "turnaround_days_median": 7.5, "turnaround_days_p90": 14,
               "within_7_days_pct": 50.0, "within_10_days_pct": 75.0})
    );
    assert_eq!(
        v["by_site"]["NBT"],
        json!({"reports": 7, "final": 7, "turnaround_days_median": 7.0, "turnaround_days_p90": 20,
               "within_7_days_pct": 57.1, "within_10_days_pct": 71.4})
    );
    assert_eq!(
        v["by_site"]["GWH"],
        json!({"reports": 12, "final": 10, "turnaround_days_median": 3.0, "turnaround_days_p90": 6,
               "within_7_days_pct": 90.0, "within_10_days_pct": 90.0})
    );
    assert_eq!(
        v["by_site"][SCRIPT_SITE],
        json!({"reports": 1, "final": 0, "turnaround_days_median": null, "turnaround_days_p90": null,
               "within_7_days_pct": null, "within_10_days_pct": null})
    );
    assert_eq!(v["by_site"].as_object().map(|o| o.len()), Some(4));

    // Names are trimmed: " Dr A. Smith " at NBT is the RLH Dr A. Smith. The unnamed draft is not listed.
    assert_eq!(v["by_reviewer"]["Dr A. Smith"], json!({"reports": 3, "sites": ["NBT", "RLH"]}));
    assert_eq!(v["by_reviewer"]["Dr C. Jones"], json!({"reports": 7, "sites": ["RLH"]}));
    assert_eq!(v["by_reviewer"]["Dr G. Lee"], json!({"reports": 11, "sites": ["GWH"]}));
    assert_eq!(v["by_reviewer"].as_object().map(|o| o.len()), Some(5));

    let c = &v["concordance"];
    assert_eq!(c["slides_reviewed_more_than_once"], json!(5));
    assert_eq!(c["discordant_slides"], json!(2));
    assert_eq!(c["concordance_pct"], json!(60.0));
    // Every category of the set is in the built-in map: all five slides compared.
    assert_eq!(c["slides_compared"], json!(5));
    assert_eq!(c["slides_not_comparable"], json!(0));
    assert_eq!(c["not_comparable"], json!([]));
    assert_eq!(c["category_map"], json!("built-in"));
    let id = |path: &str| {
        let n = specs().iter().position(|s| s.path == path).expect("spec");
        format!("00000000-0000-4000-8000-{n:012}")
    };
    // Pairs by slide (SHA-256 order: "b" < "c"), then path order within the slide.
    assert_eq!(
        c["pairs"],
        json!([
            {"sha256": sha("b"), "case_id": "H26-B", "site_a": "GWH", "category_a": "B3", "site_b": "RLH",
             "category_b": "B5b", "group_a": "uncertain", "group_b": "malignant",
             "report_id_a": id("gwh/deep/er/a.report.json"),
             "report_id_b": id("rlh/2026/12/b.report.json")},
            {"sha256": sha("c"), "case_id": "GWH-2", "site_a": "GWH", "category_a": "MALIGNANT", "site_b": "NBT",
             "category_b": "Benign", "group_a": "malignant", "group_b": "benign",
             "report_id_a": id("gwh/deep/er/b.report.json"),
             "report_id_b": id("nbt/b.report.json"), "case_id_b": "NBT-2"},
            {"sha256": sha("c"), "case_id": "NBT-2", "site_a": "NBT", "category_a": "Benign", "site_b": "RLH",
             "category_b": "malignant", "group_a": "benign", "group_b": "malignant",
             "report_id_a": id("nbt/b.report.json"),
             "report_id_b": id("rlh/2026/12/c.report.json"), "case_id_b": "RLH-3"},
        ])
    );

    // The copy is listed, and the amended original (later in path order) is the one counted.
    assert_eq!(
        v["duplicates"],
        json!([{"file": root.join("archive/copy-of-f.report.json").display().to_string(),
                "report_id": id("rlh/2027/01/f.report.json"), "kept": kept.display().to_string()}])
    );
    let counted = summary.reports.iter().find(|r| r.source == kept.display().to_string()).expect("kept copy counted");
    assert_eq!(counted.status, Status::Amended);

    // Every malformed file, plus the missing folder, with a reason; none stopped the run.
    let invalid = v["invalid"].as_array().expect("invalid");
    assert_eq!(invalid.len(), BAD.len() + 1, "{invalid:#?}");
    for (name, words) in BAD {
        let file = root.join("bad").join(name).display().to_string();
        let entry = invalid.iter().find(|i| i["file"] == json!(file)).unwrap_or_else(|| panic!("{name} not listed"));
        let error = entry["error"].as_str().unwrap_or_default();
        for word in words {
            assert!(error.contains(word), "{name}: {error:?} lacks {word:?}");
        }
    }
    assert!(invalid
        .iter()
        .any(|i| i["file"] == json!(missing.display().to_string()) && i["error"] == json!("no such folder")));

    let files: Vec<PathBuf> = summary.reports.iter().map(|r| PathBuf::from(&r.source)).collect();
    assert!(files.windows(2).all(|w| w[0] < w[1]), "reports in path order");
}

#[test]
fn a_folder_given_twice_or_nested_is_read_once() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    build(&root);
    let summary = run(&[root.clone(), root.join("nbt"), root.join("./gwh/")]);
    assert_eq!(summary.reports.len(), VALID);
    assert_eq!(summary.duplicates.len(), 1, "only the real copy is a duplicate");
    assert_eq!(summary.invalid.len(), BAD.len());
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_not_followed() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    build(&root);
    // A link back up the tree would loop for ever if followed; a linked report would count twice.
    std::os::unix::fs::symlink(&root, root.join("nbt/loop")).expect("symlink");
    std::os::unix::fs::symlink(root.join("nbt/a.report.json"), root.join("gwh/linked.report.json")).expect("symlink");
    let summary = run(std::slice::from_ref(&root));
    assert_eq!(summary.reports.len(), VALID);
    assert_eq!(summary.duplicates.len(), 1);
    assert_eq!(summary.invalid.len(), BAD.len());
}

#[test]
fn hostile_text_is_escaped_in_the_html_and_neutralised_in_the_csv() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    build(&root);
    let mut r = report(&specs()[0], 2000);
    r.case_id = "=HYPERLINK(\"http://x\",\"click\")".into();
    r.site = "Site \"A\" & <i>co</i>".into();
    write(&root, "evil/x.report.json", &r.to_json());
    let summary = run(std::slice::from_ref(&root));
    let html = consolidate::summary_html(&summary);
    for raw in ["<script>alert", "<img src=x>", "<b>bold", "<i>co</i>"] {
        assert!(!html.contains(raw), "{raw} reached the HTML unescaped");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the site is shown, escaped");
    assert!(html.contains("Site &quot;A&quot; &amp; &lt;i&gt;co&lt;/i&gt;"));
    assert!(html.contains("Dr &lt;img src=x&gt;"));
    assert!(!html.contains("<script"), "no scripts");
    assert!(html.contains("<svg") && html.contains("7 days") && html.contains("10 days"), "the chart is drawn");

    let csv = consolidate::summary_csv(&summary);
    assert!(csv.contains(",\"'=HYPERLINK(\"\"http://x\"\",\"\"click\"\")\","), "{csv}");
}

fn wsiview<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wsiview")).args(args).output().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_command_writes_five_files() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    build(&root);
    let out = temp.path().join("out/nested");
    let missing = temp.path().join("absent");
    let result = wsiview(&[Path::new("consolidate"), &root, &missing, Path::new("--out"), &out]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "stderr: {}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(
        stdout.trim(),
        format!(
            "29 reports (8 invalid, 1 duplicate) from 4 sites; 2 of 5 twice-reviewed slides discordant → {}",
            out.display()
        )
    );
    assert!(result.stderr.is_empty(), "no progress for a small run: {}", String::from_utf8_lossy(&result.stderr));

    let text = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let summary: Value = serde_json::from_str(&text("summary.json")).expect("summary.json is JSON");
    let keys: BTreeSet<&str> = summary.as_object().expect("object").keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> =
        ["reports", "invalid", "by_site", "by_reviewer", "concordance", "duplicates", "equity", "generated_at"].into();
    assert_eq!(keys, expected);
    assert_eq!(summary["reports"], json!(VALID));
    let generated = summary["generated_at"].as_str().unwrap_or_default();
    assert!(wsiview::report::schema::parse_timestamp(generated).is_ok(), "{generated}");

    let rows = |csv: &str| csv.split_terminator("\r\n").count();
    let summary_csv = text("summary.csv");
    assert!(summary_csv.starts_with("file,report_id,case_id,site,status,reviewer,role,review_type,"));
    assert_eq!(rows(&summary_csv), 1 + VALID);
    assert!(!summary_csv.replace("\r\n", "").contains('\n'), "CRLF line ends only");
    let discordance = text("discordance.csv");
    assert_eq!(rows(&discordance), 1 + 3);
    let html = text("summary.html");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("&lt;script&gt;"));
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src=\""), "self-contained");
    let public = text("summary-public.html");
    assert!(public.starts_with("<!DOCTYPE html>") && public.contains("&lt;script&gt;") && !public.contains("<script"));
    // No report of the set records equity: one "not recorded" column and "all".
    assert_eq!(summary["equity"]["ethnic_category"]["columns"], json!(["not recorded", "all"]));

    // A summary row: the amended kept copy of report f, with its turnaround.
    let row = summary_csv.lines().find(|l| l.contains("RLH-6")).expect("row of RLH-6");
    assert!(row.contains(",RLH,amended,Dr C. Jones,consultant,primary,") && row.contains(",10,B4,"), "{row}");
}

#[test]
fn the_command_fails_when_no_folder_exists_or_outputs_cannot_be_written() {
    let temp = tempfile::tempdir().expect("temp");
    let missing = temp.path().join("absent");
    let out = temp.path().join("out");
    let result = wsiview(&[Path::new("consolidate"), &missing, Path::new("--out"), &out]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("absent: no such folder") && stderr.lines().count() == 1, "{stderr}");
    assert!(!out.exists(), "nothing written");

    let root = temp.path().join("reports");
    build(&root);
    let blocker = write(temp.path(), "a-file", b"x");
    let result = wsiview(&[Path::new("consolidate"), &root, Path::new("--out"), &blocker]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("a-file") && stderr.contains("cannot write") && stderr.lines().count() == 1, "{stderr}");
}

#[test]
fn progress_is_at_most_ten_lines_without_a_terminal() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("many");
    let template = report(&specs()[0], 0);
    for n in 0..1200 {
        let mut r = template.clone();
        r.report_id = format!("00000000-0000-4000-8000-{n:012}");
        write(&root, &format!("{}/{n}.report.json", n % 7), &r.to_json());
    }
    let out = temp.path().join("out");
    let result = wsiview(&[Path::new("consolidate"), &root, Path::new("--out"), &out]);
    assert!(result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!((1..=10).contains(&lines.len()), "{stderr}");
    assert!(lines.last().is_some_and(|l| l.contains("1200 of 1200")), "{stderr}");
    assert!(!stderr.contains('\r'));
}

#[test]
fn teaching_copies_are_listed_not_counted() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    let s = spec(("a.report.json", "RLH", Status::Final, Some(3), "s1", "B5b", "Dr A", "C1"));
    let original = report(&s, 1);
    write(&root, "a.report.json", &original.to_json());
    let mut copy = report(&s, 2);
    copy.extra.insert("teaching_copy".into(), json!({"made_at": "2027-01-01T00:00:00Z"}));
    write(&root, "teaching/CASE-1.report.json", &copy.to_json());
    let summary = run(&[root]);
    assert_eq!(summary.reports.len(), 1, "the teaching copy does not count the review twice");
    assert_eq!(summary.invalid.len(), 1);
    let listed = serde_json::to_string(&summary.to_json()).expect("json");
    assert!(listed.contains("teaching copy"), "{listed}");
}

/// Two sites with different vocabularies. Slides with two or more signed-out reports:
/// - v1: B5a / malignant — the same group: concordant;
/// - v2: B5a / B2 — malignant against benign: discordant;
/// - v3: weird / B5a — "weird" has no group: not comparable, left out of the percentage;
/// - v4: weird / " WEIRD " — equal categories agree whatever the map says: concordant;
/// - v5: B5b / malignant / odd — B5b and malignant agree; both pairs with "odd" are not comparable.
///
/// So 5 slides reviewed more than once, 4 compared, 1 discordant: 75.0 %; 3 pairs not comparable.
fn vocabulary_set(root: &Path) -> Vec<PathBuf> {
    use Status::Final;
    let rows: Vec<Row> = vec![
        ("rlh/v1.report.json", "RLH", Final, Some(2), "v1", "B5a", "Dr A", "R1"),
        ("nbt/v1.report.json", "NBT", Final, Some(3), "v1", "malignant", "Dr N", "N1"),
        ("rlh/v2.report.json", "RLH", Final, Some(2), "v2", "B5a", "Dr A", "R2"),
        ("nbt/v2.report.json", "NBT", Final, Some(3), "v2", "B2", "Dr N", "N2"),
        ("rlh/v3.report.json", "RLH", Final, Some(2), "v3", "weird", "Dr A", "R3"),
        ("nbt/v3.report.json", "NBT", Final, Some(3), "v3", "B5a", "Dr N", "N3"),
        ("rlh/v4.report.json", "RLH", Final, Some(2), "v4", "weird", "Dr A", "R4"),
        ("nbt/v4.report.json", "NBT", Final, Some(3), "v4", " WEIRD ", "Dr N", "N4"),
        ("gwh/v5.report.json", "GWH", Final, Some(1), "v5", "<i>odd</i>", "Dr G", "G5"),
        ("nbt/v5.report.json", "NBT", Final, Some(3), "v5", "malignant", "Dr N", "N5"),
        ("rlh/v5.report.json", "RLH", Final, Some(2), "v5", "B5b", "Dr A", "R5"),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(n, row)| {
            let s = spec(row);
            write(root, s.path, &report(&s, 100 + n).to_json())
        })
        .collect()
}

#[test]
fn categories_compare_by_group_and_unmapped_ones_are_not_comparable() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    let files = vocabulary_set(&root);
    let summary = run(std::slice::from_ref(&root));
    let c = &summary.to_json()["concordance"];
    assert_eq!(c["slides_reviewed_more_than_once"], json!(5));
    assert_eq!(c["slides_compared"], json!(4));
    assert_eq!(c["slides_not_comparable"], json!(1));
    assert_eq!(c["discordant_slides"], json!(1));
    assert_eq!(c["concordance_pct"], json!(75.0));
    let pairs = c["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 1, "only B5a against B2 is discordant: {pairs:#?}");
    assert_eq!(
        (&pairs[0]["sha256"], &pairs[0]["category_a"], &pairs[0]["category_b"]),
        (&json!(sha("v2")), &json!("B2"), &json!("B5a")),
        "nbt/ before rlh/ in path order"
    );
    assert_eq!((&pairs[0]["group_a"], &pairs[0]["group_b"]), (&json!("benign"), &json!("malignant")));

    let file = |i: usize| json!(files[i].display().to_string());
    let not_comparable: Vec<(Value, Value, Value, Value, Value)> = c["not_comparable"]
        .as_array()
        .expect("not_comparable")
        .iter()
        .map(|p| {
            (
                p["sha256"].clone(),
                p["category_a"].clone(),
                p["category_b"].clone(),
                p["file_a"].clone(),
                p["file_b"].clone(),
            )
        })
        .collect();
    assert_eq!(
        not_comparable,
        vec![
            (json!(sha("v3")), json!("B5a"), json!("weird"), file(5), file(4)),
            (json!(sha("v5")), json!("<i>odd</i>"), json!("malignant"), file(8), file(9)),
            (json!(sha("v5")), json!("<i>odd</i>"), json!("B5b"), file(8), file(10)),
        ]
    );
    assert_eq!(c["not_comparable"][0]["group_a"], json!("malignant"));
    assert_eq!(c["not_comparable"][0]["group_b"], Value::Null, "no group");
    assert_eq!(
        summary.headline(),
        "11 reports (0 invalid, 0 duplicates) from 3 sites; 1 of 5 twice-reviewed slides discordant, 1 not comparable"
    );

    let html = consolidate::summary_html(&summary);
    assert!(html.contains("<h3>Not comparable (3)</h3>"), "listed apart");
    assert!(html.contains("&lt;i&gt;odd&lt;/i&gt; <span class=\"none\">(no group)</span>"), "escaped");
    assert!(!html.contains("<i>odd"));
    assert!(html.contains("B5a <span class=\"meta\">(malignant)</span>"), "groups are shown");
    assert!(html.contains("of the 4 slides whose reports could be compared"));
    assert_eq!(consolidate::discordance_csv(&summary).split_terminator("\r\n").count(), 1 + 1);
}

#[test]
fn a_category_map_file_extends_and_overrides_the_built_in_one() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    vocabulary_set(&root);
    // B5a (in situ) is its own group at this network, "weird" is a local word for it, and
    // "positive" is dropped; the rest of the built-in map (B2, B5b, malignant) still applies.
    let map = write(
        temp.path(),
        "network-map.json",
        br#"{"comment": "in situ apart", "groups": {"b5A": "in_situ", "Weird": "In_Situ", "positive": null}}"#,
    );
    let out = temp.path().join("out");
    let result = wsiview(&[
        "consolidate".as_ref(),
        root.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--category-map".as_ref(),
        map.as_os_str(),
    ]);
    assert!(result.status.success(), "stderr: {}", String::from_utf8_lossy(&result.stderr));
    // v1 (in situ against malignant) and v2 (in situ against benign) discordant; v3 (weird = in
    // situ = B5a) and v4 agree; v5 is compared through B5b/malignant. 3 of 5 concordant.
    assert_eq!(
        String::from_utf8_lossy(&result.stdout).trim(),
        format!(
            "11 reports (0 invalid, 0 duplicates) from 3 sites; 2 of 5 twice-reviewed slides discordant → {}",
            out.display()
        )
    );
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let summary: Value = serde_json::from_str(&text).expect("json");
    let c = &summary["concordance"];
    assert_eq!((&c["slides_compared"], &c["slides_not_comparable"]), (&json!(5), &json!(0)));
    assert_eq!(c["concordance_pct"], json!(60.0));
    assert_eq!(c["pairs"][0]["group_b"], json!("in_situ"), "the file's group, case ignored");
    assert_eq!(c["not_comparable"].as_array().map(Vec::len), Some(2), "only the pairs with \"odd\"");
    let source = c["category_map"].as_str().unwrap_or_default();
    assert!(source.starts_with("built-in, extended by ") && source.ends_with("network-map.json"), "{source}");
}

#[test]
fn a_bad_category_map_stops_the_command_naming_the_file() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    vocabulary_set(&root);
    let out = temp.path().join("out");
    let cases: [(&str, &[u8], &str); 3] = [
        ("broken.json", b"{\"groups\": {\"B5a\": ", "not JSON"),
        ("typed.json", br#"{"groups": {"B5a": 5}}"#, "\"B5a\": group 5 is not a string or null"),
        ("misspelt.json", br#"{"group": {"B5a": "malignant"}}"#, "unknown key \"group\""),
    ];
    for (name, bytes, problem) in cases {
        let map = write(temp.path(), name, bytes);
        let result = wsiview(&[
            "consolidate".as_ref(),
            root.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--category-map".as_ref(),
            map.as_os_str(),
        ]);
        assert_eq!(result.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with(&format!("wsiview: {}: category map: ", map.display())), "{stderr}");
        assert!(stderr.contains(problem), "{name}: {stderr}");
        assert!(!out.exists(), "nothing written");
    }
    let absent = temp.path().join("absent.json");
    let result = wsiview(&[
        "consolidate".as_ref(),
        root.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--category-map".as_ref(),
        absent.as_os_str(),
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&result.stderr).contains("absent.json: category map: cannot read"));
    assert!(!out.exists(), "nothing written");
}

/// A final report for the equity set: distinctive reviewer, case, category and slide, so the
/// public page can be searched for them.
fn equity_report(n: usize, site: &str, ethnic: Option<&str>, decile: Option<u8>) -> Report {
    let received = date!(2026 - 10 - 01) + Duration::days(n as i64);
    let mut r = Report {
        report_id: format!("00000000-0000-4000-8000-{n:012}"),
        case_id: format!("CASEZQX-{n}"),
        site: site.into(),
        status: Status::Final,
        received_date: Some(received.to_string()),
        reported_at: Some(format!("{}T10:00:00+00:00", received + Duration::days((n % 13) as i64))),
        equity: (ethnic.is_some() || decile.is_some()).then(|| wsiview::report::schema::Equity {
            ethnic_category: ethnic.map(str::to_string),
            imd_decile: decile,
            ..Default::default()
        }),
        ..Report::default()
    };
    r.reviewer.name = "Dr Zebedee Quuxley".into();
    r.slide.sha256 = sha(&format!("zq{n}"));
    r.diagnosis.category = "CATZQX".into();
    r.diagnosis.text = "Diagnosis".into();
    r.specimen = "Core biopsy".into();
    r.microscopy = "As described.".into();
    r
}

/// Ethnic category per site (signed-out reports):
///
/// | site       | A  | N  | not recorded | all |
/// |------------|----|----|--------------|-----|
/// | SITE-ALPHA | 14 | 10 | 0            | 24  |
/// | SITE-BETA  | 10 | 3  | 0            | 13  |
/// | SITE-GAMMA | 0  | 0  | 5            | 5   |
/// | network    | 24 | 13 | 5            | 42  |
///
/// Primary: every cell under 10. Complementary: ALPHA's N (row ALPHA had only its empty "not
/// recorded" hidden), the network's N (likewise), BETA's A and BETA's "all" (columns A and all had
/// only GAMMA's hidden). Shown: ALPHA A and all, network A and all.
fn equity_set(root: &Path) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut add = |site: &str, ethnic: Option<&str>, count: usize| {
        for _ in 0..count {
            let n = reports.len();
            let r = equity_report(n, site, ethnic, ethnic.map(|_| (n % 10 + 1) as u8));
            write(root, &format!("dirzq-{site}/filezq-{n}.report.json"), &r.to_json());
            reports.push(r);
        }
    };
    add("SITE-ALPHA", Some("A"), 14);
    add("SITE-ALPHA", Some("N"), 10);
    add("SITE-BETA", Some("A"), 10);
    add("SITE-BETA", Some("N"), 3);
    add("SITE-GAMMA", None, 5);
    write(root, "dirzq-bad/invalidzq.report.json", b"not a report");
    reports
}

#[test]
fn equity_tables_are_suppressed_so_no_small_count_can_be_worked_out() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    equity_set(&root);
    let summary = run(std::slice::from_ref(&root));
    let json = summary.to_json();
    let table = &json["equity"]["ethnic_category"];
    assert_eq!(json["equity"]["min_cell"], json!(10));
    assert_eq!(table["columns"], json!(["A", "N", "not recorded", "all"]));
    let small = json!({"suppressed": "<10"});
    let complementary = json!({"suppressed": "complementary"});
    let (alpha, beta, gamma) =
        (&table["sites"]["SITE-ALPHA"], &table["sites"]["SITE-BETA"], &table["sites"]["SITE-GAMMA"]);
    assert_eq!(beta[1], small, "3 reports");
    assert_eq!(alpha[2], small, "0 reports (zero included)");
    assert_eq!(gamma[3], small, "5 reports");
    assert_eq!(alpha[1]["n"], json!(null), "10 reports, but it would give ALPHA's empty column away: {}", alpha[1]);
    assert_eq!(alpha[1], complementary);
    assert_eq!(table["network"][1], complementary);
    assert_eq!([&beta[0], &beta[3]], [&complementary, &complementary]);
    assert_eq!(alpha[0]["n"], json!(14));
    assert_eq!(alpha[3]["n"], json!(24));
    assert_eq!(table["network"][0]["n"], json!(24));
    assert_eq!(table["network"][3]["n"], json!(42));
    // Turnaround days are n mod 13 for reports 0–23 (ALPHA): 0–12, 0–10; median of 24 values.
    let alpha_days: Vec<i64> = (0..24).map(|n| n % 13).collect();
    let within_7 = alpha_days.iter().filter(|&&d| d <= 7).count();
    assert_eq!(alpha[3]["within_7_days_pct"], json!(wsiview::stats::percent_one_decimal(within_7, 24)));
    // Each row and column sum: none has exactly one hidden cell, so no hidden count is a total
    // minus shown cells.
    let shown = |cell: &Value| cell["n"].as_u64();
    let mut grid: Vec<Vec<Option<u64>>> =
        [alpha, beta, gamma].iter().map(|row| (0..4).map(|c| shown(&row[c])).collect()).collect();
    grid.push((0..4).map(|c| shown(&table["network"][c])).collect());
    for row in &grid {
        assert_ne!(row.iter().filter(|c| c.is_none()).count(), 1, "row {row:?}");
    }
    for c in 0..4 {
        let column: Vec<Option<u64>> = grid.iter().map(|row| row[c]).collect();
        assert_ne!(column.iter().filter(|c| c.is_none()).count(), 1, "column {c}: {column:?}");
    }
    // BETA's 3 in column N: the network's 13 is hidden, so 13 − 10 cannot be worked out.
    assert_eq!(grid[3][1], None);
    // A suppressed cell carries no figures.
    for cell in [alpha, beta, gamma].iter().flat_map(|row| row.as_array().into_iter().flatten()) {
        if cell.get("suppressed").is_some() {
            assert_eq!(cell.as_object().map(|o| o.len()), Some(1), "{cell}");
        }
    }
}

#[test]
fn the_public_summary_holds_only_suppressed_aggregate_figures() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().join("reports");
    let reports = equity_set(&root);
    let summary = run(std::slice::from_ref(&root));
    assert_eq!(summary.invalid.len(), 1);
    let out = temp.path().join("out");
    consolidate::write_outputs(&summary, &out).expect("written");
    let public = std::fs::read_to_string(out.join("summary-public.html")).expect("summary-public.html");
    let full = std::fs::read_to_string(out.join("summary.html")).expect("summary.html");
    assert!(full.contains("Dr Zebedee Quuxley"), "the full page names reviewers (the search below is meaningful)");
    for absent in ["Zebedee", "Quuxley", "CASEZQX", "CATZQX", "00000000-0000-4000-8000", "dirzq", "filezq", "invalidzq"]
    {
        assert!(!public.contains(absent), "{absent} in summary-public.html");
    }
    for r in &reports {
        assert!(!public.contains(&r.slide.sha256) && !public.contains(&r.slide.sha256[..13]), "a slide hash");
        assert!(!public.contains(&r.report_id), "a report id");
    }
    assert!(!public.contains(&temp.path().display().to_string()), "a path");
    assert!(public.contains("&lt;10") && public.contains("suppressed"), "suppression markers");
    assert!(public.contains("SITE-ALPHA") && public.contains("Equity of service"));
    // Workload: GAMMA (5 signed out) is <10, BETA (13) hidden with it; ALPHA and the network shown.
    let w = &summary.public_workload;
    use consolidate::equity::{Cell, Suppressed};
    assert_eq!(w.sites[1].1, Cell::Suppressed(Suppressed::Complementary));
    assert_eq!(w.sites[2].1, Cell::Suppressed(Suppressed::Small));
    assert!(matches!(&w.network, Cell::Shown(f) if f.signed_out == 42 && f.reports == 42));
    assert!(public.contains("<td>SITE-GAMMA</td><td class=\"num\"><span class=\"none\">&lt;10</span>"), "{public}");
}
