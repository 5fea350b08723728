//! The `wsiview` binary as a user runs it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::synth;
use wsiview::synth::{Layout, SynthOptions};

fn wsiview(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsiview")).args(args).output().unwrap_or_else(|e| panic!("{e}"))
}

fn sample() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-slides/sample.svs").to_string_lossy().to_string()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn info_json_of_the_bundled_sample() {
    let v = json(&wsiview(&["info", &sample(), "--json"]));
    assert_eq!(v["vendor"], "aperio");
    assert_eq!(v["level_dimensions"][0], serde_json::json!([8192, 6144]));
    assert_eq!(v["level_downsamples"][1], serde_json::json!(4.0));
    assert_eq!(v["mpp_x"], serde_json::json!(0.5));
    assert_eq!(v["mpp_y"], serde_json::json!(0.5));
    assert_eq!(v["objective_power"], serde_json::json!(20.0));
    assert_eq!(v["associated_images"], serde_json::json!(["thumbnail", "label", "macro"]));
    assert!(v["level_dimensions"].as_array().is_some_and(|a| a.len() >= 3));
}

/// With no arguments wsiview opens the sample in the viewer; with no display it says so in one line.
#[test]
fn no_arguments_opens_the_viewer_or_says_why_not() {
    let out = Command::new(env!("CARGO_BIN_EXE_wsiview"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot open a window") && err.contains("DISPLAY"), "{err}");
}

#[test]
fn region_thumbnail_associated_write_pngs() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let region = tmp.path().join("r.png");
    let r = region.to_string_lossy();
    let out = wsiview(&[
        "region",
        &sample(),
        "--level",
        "1",
        "--x",
        "-400",
        "--y",
        "0",
        "--width",
        "300",
        "--height",
        "200",
        "-o",
        &r,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&region).unwrap_or_else(|e| panic!("{e}")).to_rgba8();
    assert_eq!(img.dimensions(), (300, 200));
    // x = -400 at level 1 (downsample 4) is 100 level pixels left of the slide: transparent there.
    assert_eq!(img.get_pixel(99, 50).0[3], 0);
    assert_eq!(img.get_pixel(100, 50).0[3], 255);

    let thumb = tmp.path().join("t.png");
    let out = wsiview(&["thumbnail", &sample(), "--max-size", "256", "-o", &thumb.to_string_lossy()]);
    assert!(out.status.success());
    assert_eq!(image::open(&thumb).map(|i| (i.width(), i.height())).ok(), Some((256, 192)));

    let label = tmp.path().join("l.png");
    let out = wsiview(&["associated", &sample(), "label", "-o", &label.to_string_lossy()]);
    assert!(out.status.success());
    assert_eq!(image::open(&label).map(|i| (i.width(), i.height())).ok(), Some((387, 463)));

    let out = wsiview(&["associated", &sample(), "nonesuch", "-o", &label.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nonesuch") && err.contains("thumbnail, label, macro"), "{err}");
}

#[test]
fn generate_then_bench() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = tmp.path().join("g.tif");
    let p = path.to_string_lossy();
    let out = wsiview(&[
        "generate",
        &p,
        "--width",
        "3000",
        "--height",
        "2000",
        "--layout",
        "subifd",
        "--bigtiff",
        "--compression",
        "deflate",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&wsiview(&["info", &p, "--json"]));
    assert_eq!(v["level_dimensions"][0], serde_json::json!([3000, 2000]));
    assert_eq!(v["level_compressions"][0], "Deflate");
    let b = json(&wsiview(&["bench", &p, "--threads", "2", "--json"]));
    for key in ["open_ms", "tiles_per_s", "viewport_1080p_level0_ms"] {
        assert!(b[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {}", b[key]);
    }
    assert_eq!(b["threads"], 2);
    // The 4096×4096 window is clipped to this 3000×2000 slide: 12 × 8 tiles.
    assert_eq!(b["tiles"], 96);
}

#[test]
fn generate_refuses_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = tmp.path().join("x.tif");
    let out = wsiview(&["generate", &p.to_string_lossy(), "--width", "100", "--height", "100", "--tile", "100"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tile size 100"));
    assert!(!p.exists(), "no partial output left behind");
    let out = wsiview(&["generate", &p.to_string_lossy(), "--width", "100"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    let _ = synth(
        tmp.path(),
        "ok.tif",
        &SynthOptions { width: 300, height: 300, layout: Layout::Svs, ..Default::default() },
    );
}

/// The viewer benchmark's pan scale is checked before a window opens: out of range is said, and
/// without --bench-seconds it is a usage error.
#[test]
fn view_bench_refuses_a_bad_pan_scale() {
    let out = wsiview(&["view", &sample(), "--bench-seconds", "1", "--pan-scale", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pan-scale must be between 0.25 and 4"), "{out:?}");
    let out = wsiview(&["view", &sample(), "--pan-scale", "0.8"]);
    assert_eq!(out.status.code(), Some(2), "usage error: {out:?}");
}

/// `wsiview A.svs B.svs` (no `view`) opens slides like `wsiview view A B`; subcommands still work.
#[test]
fn bare_slide_arguments_open_the_viewer_and_subcommands_still_run() {
    let headless = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wsiview"))
            .args(args)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    for args in [vec!["nonexistent.svs"], vec!["a.svs", "b.svs"], vec!["view", "a.svs", "b.svs"]] {
        let out = headless(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let viewing = if cfg!(feature = "gui") { "cannot open a window" } else { "built without the viewer" };
        assert!(err.contains(viewing), "{args:?} is treated as viewing slides: {err}");
    }
    let v = json(&wsiview(&["info", &sample(), "--json"]));
    assert_eq!(v["vendor"], "aperio", "a subcommand name is still a subcommand");
    let out = wsiview(&["info"]);
    assert_eq!(out.status.code(), Some(2), "info without its slide is a usage error, not a slide named info");
}

/// Errors are one line naming the file, and the system's reason is said once, not repeated by
/// the error's cause chain.
#[test]
fn file_errors_say_the_reason_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = |name: &str| dir.path().join(name).to_string_lossy().to_string();
    std::fs::create_dir(dir.path().join("reports")).unwrap_or_else(|e| panic!("{e}"));
    let cases: [Vec<String>; 4] = [
        vec!["consolidate".into(), d("reports"), "--out".into(), d("out"), "--category-map".into(), d("absent.json")],
        vec!["annotations".into(), "convert".into(), d("absent.geojson"), d("out.xml")],
        vec!["verify".into(), d("absent.report.json"), sample()],
        vec![
            "export-teaching".into(),
            sample(),
            d("absent.report.json"),
            d("teaching"),
            "--key-file".into(),
            d("absent.key"),
        ],
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = wsiview(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains("absent."), "{args:?}: the file is named: {stderr}");
        let reason = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
        let os_reason = "No such file or directory";
        let times = stderr.matches(os_reason).count().max(stderr.matches(&reason).count());
        assert_eq!(times, 1, "{args:?}: the reason once: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line: {stderr}");
    }
}

/// dicomize: bad input and bad output folders are one clear line naming the file, exit 1.
#[test]
fn dicomize_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a slide").unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("out");
    let check = |args: &[&str], needles: &[&str]| {
        let result = wsiview(args);
        assert_eq!(result.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&result.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
        }
        assert!(!err.contains("panicked") && !err.contains("internal error"), "{err}");
    };
    check(&["dicomize", &text.to_string_lossy(), &out.to_string_lossy()], &["notes.txt"]);
    check(&["dicomize", &dir.path().join("missing.svs").to_string_lossy(), &out.to_string_lossy()], &["missing.svs"]);
    // An output folder that cannot be made (a file is in the way).
    let slide = synth(dir.path(), "s.tif", &SynthOptions { width: 300, height: 200, ..Default::default() });
    let blocked = text.join("sub");
    check(
        &["dicomize", &slide.to_string_lossy(), &blocked.to_string_lossy()],
        &["notes.txt/sub", "cannot create the output folder"],
    );
    check(
        &["dicomize", &slide.to_string_lossy(), &out.to_string_lossy(), "--study-uid", "1.02.x"],
        &["--study-uid", "1.02.x"],
    );
    assert!(!out.exists() || std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) == 0, "nothing written");
    if let Some(f) = common::fixtures() {
        // No pixel size (PixelSpacing is type 1), not tiled, already DICOM: each says why.
        let no_mpp = f.join("image-tiff/seq-1c-8b-tiled-deflate-20f3db0c.tiff");
        check(&["dicomize", &no_mpp.to_string_lossy(), &out.to_string_lossy()], &["seq-1c-8b", "pixel size"]);
        let stripped = f.join("image-tiff/BigTIFF.tif");
        check(&["dicomize", &stripped.to_string_lossy(), &out.to_string_lossy()], &["BigTIFF.tif", "tiled"]);
        let dicom = f.join("openslide-python/boxes_0.dcm");
        check(
            &["dicomize", &dicom.to_string_lossy(), &out.to_string_lossy()],
            &["boxes_0.dcm", "already a DICOM slide"],
        );
    }
    // Written once; the second run does not replace it.
    let good = wsiview(&["dicomize", &slide.to_string_lossy(), &out.to_string_lossy()]);
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let printed = String::from_utf8_lossy(&good.stdout);
    assert!(printed.lines().any(|l| l.contains("level-0.dcm") && l.contains("VOLUME level 0")), "{printed}");
    check(&["dicomize", &slide.to_string_lossy(), &out.to_string_lossy()], &["level-0.dcm", "already exists"]);
}

// ---------- export-research ----------

const RESEARCH_KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const RESEARCH_KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/// Text in every report that must never reach the dataset.
const SECRETS: [&str; 12] = [
    "Quentin Zyxwv",
    "Amelia Amender",
    "Horatio Nestlerode",
    "Patience Oddbody",
    "lump noticed",
    "GREYWHITE",
    "pleomorphic",
    "Carcinoma seen",
    "Discussed at",
    "SECRETSLIDE",
    "SECRETPATH",
    "943 476 5919",
];

/// One group of reports: site, received date, category, ethnic codes and IMD deciles (cycled),
/// how many, and whether they are drafts.
struct Group {
    site: &'static str,
    date: &'static str,
    category: &'static str,
    ethnic: &'static [&'static str],
    deciles: &'static [u8],
    count: usize,
    draft: bool,
}

/// 59 reports across five sites, built so that each generalisation level is reached:
/// - NORTH 2026-01 B5b: 20 with White/decile 1, 5 without equity, 5 drafts — month;
/// - SOUTH 2026-05 B5a: 8, "Not stated"/decile 10 — month;
/// - SOUTH 2026-02 and 2026-03 B2: 3 + 3 — quarter;
/// - EAST 2026-04 B3: 6 Black with 5 different quintiles — quarter without IMD;
/// - WEST 2026-07 B4: 6 in 5 ethnic groups — quarter without equity;
/// - RARE 2026-10 B1: 3 — withheld.
fn research_groups() -> Vec<Group> {
    let g = |site, date, category, ethnic, deciles, count, draft| Group {
        site,
        date,
        category,
        ethnic,
        deciles,
        count,
        draft,
    };
    vec![
        g("NORTH", "2026-01-06", "B5b", &["A"], &[1], 20, false),
        g("NORTH", "2026-01-13", "B5b", &[], &[], 5, false),
        g("NORTH", "2026-01-20", "B5b", &["A"], &[1], 5, true),
        g("SOUTH", "2026-05-11", "B5a", &["Z"], &[10], 8, false),
        g("SOUTH", "2026-02-03", "B2", &["H"], &[4], 3, false),
        g("SOUTH", "2026-03-03", "B2", &["H"], &[4], 3, false),
        g("EAST", "2026-04-14", "B3", &["M"], &[1, 3, 5, 7, 9, 10], 6, false),
        g("WEST", "2026-07-21", "B4", &["A", "D", "H", "M", "R", "S"], &[2], 6, false),
        g("RARE", "2026-10-01", "B1", &["B"], &[6], 3, false),
    ]
}

fn research_report(group: &Group, n: usize) -> wsiview::report::Report {
    use wsiview::report::schema::{ClassSummary, Equity};
    let mut r = wsiview::report::Report {
        case_id: format!("H26-{n:05}"),
        site: group.site.into(),
        received_date: Some(group.date.into()),
        ..Default::default()
    };
    r.reviewer.name = format!("Dr Quentin Zyxwv-{}", group.site);
    r.slide.sha256 = format!("{:064x}", 0xabc000 + n);
    r.slide.file_name = format!("SECRETSLIDE-{n}.svs");
    r.slide.url = Some(format!("https://pacs.example/SECRETPATH/{n}.svs"));
    r.slide.study_instance_uid = Some(format!("1.2.826.0.1.99999.{n}"));
    r.specimen = "Core biopsy from Mr Horatio Nestlerode".into();
    r.clinical_details = "Patient reports lump noticed 2025-12-24".into();
    r.macroscopy = "Three GREYWHITE cores".into();
    r.microscopy = "Markedly pleomorphic cells".into();
    r.diagnosis.text = "Carcinoma seen by Dr Quentin Zyxwv".into();
    r.diagnosis.category = group.category.into();
    r.diagnosis.snomed_ct = vec!["413448000".into()];
    r.comments = "Discussed at MDT on 2026-01-17".into();
    r.annotations.file = format!("SECRETSLIDE-{n}.svs.annotations.geojson");
    r.annotations.by_class = vec![ClassSummary { class: "Tumour".into(), count: 4, ..Default::default() }];
    if !group.ethnic.is_empty() {
        r.equity = Some(Equity {
            ethnic_category: Some(group.ethnic[n % group.ethnic.len()].into()),
            imd_decile: Some(group.deciles[n % group.deciles.len()]),
            ..Default::default()
        });
    }
    r.extra.insert("x_nhs_number".into(), "943 476 5919".into());
    if !group.draft {
        let day: u32 = group.date[8..].parse().unwrap_or_else(|e| panic!("{e}"));
        let reported = format!("{}{:02}T15:30:00+00:00", &group.date[..8], day + 5);
        r.finalise(&reported).unwrap_or_else(|e| panic!("{e}"));
        if n.is_multiple_of(4) {
            let reason = "Addendum after a call with Mrs Patience Oddbody";
            r.amend("Dr Amelia Amender", None, reason, "2026-11-30T09:00:00+00:00", |r| {
                r.comments.push_str(" Amended.");
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    r
}

/// Write the research set under `root` (a folder per site); the folder.
fn research_set(root: &Path) -> std::path::PathBuf {
    let reports = root.join("reports");
    let mut n = 0;
    for group in research_groups() {
        let dir = reports.join(group.site);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..group.count {
            let r = research_report(&group, n);
            std::fs::write(dir.join(r.file_name()), r.to_json()).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    reports
}

fn export_research(reports: &Path, out: &Path, key: &Path, force: bool) -> Output {
    let (reports, out, key) = (reports.to_string_lossy(), out.to_string_lossy(), key.to_string_lossy());
    let mut args = vec!["export-research", &reports, "--out", &out, "--key-file", &key];
    if force {
        args.push("--force");
    }
    wsiview(&args)
}

/// Whether `text` holds a date written YYYY-MM-DD.
fn has_exact_date(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    b.windows(10).any(|w| digits(&w[..4]) && w[4] == b'-' && digits(&w[5..7]) && w[7] == b'-' && digits(&w[8..]))
}

/// The CSV's rows as fields (no field of this set holds a comma or a quote).
fn csv_rows(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = csv.lines().map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    let header = lines.next().unwrap_or_default();
    (header, lines.collect())
}

#[test]
fn export_research_writes_a_de_identified_k_anonymous_dataset() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let reports = research_set(tmp.path());
    let key_a = tmp.path().join("a.key");
    let key_b = tmp.path().join("b.key");
    std::fs::write(&key_a, format!("{RESEARCH_KEY_A}\n")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&key_b, format!("{RESEARCH_KEY_B}\n")).unwrap_or_else(|e| panic!("{e}"));
    let out = tmp.path().join("out");
    let o = export_research(&reports, &out, &key_a, false);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("51 rows from 59 reports") && stdout.contains("3 withheld"), "{stdout}");

    let csv = std::fs::read_to_string(out.join("research.csv")).unwrap_or_else(|e| panic!("{e}"));
    for secret in SECRETS {
        assert!(!csv.to_lowercase().contains(&secret.to_lowercase()), "{secret} in the CSV");
    }
    assert!(
        !csv.contains("H26-") && !csv.contains("1.2.826") && !csv.contains("00000000000000"),
        "identifiers in {csv}"
    );
    assert!(!has_exact_date(&csv), "an exact date in {csv}");
    let (header, rows) = csv_rows(&csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} column"));
    let (site, period, category, ethnic, imd) =
        (col("site"), col("period"), col("diagnosis_category"), col("ethnic_group"), col("imd_quintile"));
    assert_eq!(rows.len(), 51, "59 reports less 5 drafts less 3 withheld");

    // k ≥ 5 for every published combination, recounted from the CSV.
    let mut combos: std::collections::HashMap<Vec<&str>, usize> = std::collections::HashMap::new();
    for row in &rows {
        let qi = [site, period, category, ethnic, imd].iter().map(|&i| row[i].as_str()).collect();
        *combos.entry(qi).or_default() += 1;
    }
    for (qi, n) in &combos {
        assert!(*n >= 5, "{qi:?} occurs {n} times");
    }
    // Rare combinations generalised or withheld.
    let of_site = |s: &'static str| rows.iter().filter(move |r| r[site] == s);
    assert_eq!(of_site("RARE").count(), 0, "withheld");
    assert!(of_site("NORTH").all(|r| r[period] == "2026-01"), "month kept");
    assert_eq!(of_site("SOUTH").filter(|r| r[period] == "2026-Q1").count(), 6, "quarter");
    assert!(of_site("EAST").all(|r| r[period] == "2026-Q2" && r[imd].is_empty() && r[ethnic] == "Black"));
    assert!(of_site("WEST").all(|r| r[period] == "2026-Q3" && r[imd].is_empty() && r[ethnic].is_empty()));
    assert!(rows.iter().all(|r| r[ethnic] != "A" && r[ethnic] != "Z"), "broad groups, not codes");

    // The manifest's counts add up.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let n = |k: &str| manifest[k].as_u64().unwrap_or_else(|| panic!("no {k} in {manifest}"));
    let level = |k: &str| manifest["by_level"][k].as_u64().unwrap_or_else(|| panic!("no by_level.{k}"));
    assert_eq!((n("rows_in"), n("not_exported_drafts"), n("rows_out"), n("withheld"), n("k")), (59, 5, 51, 3, 5));
    assert_eq!(n("rows_in"), n("not_exported_drafts") + n("rows_out") + n("withheld"));
    assert_eq!(
        (level("month"), level("quarter"), level("quarter_without_imd"), level("quarter_without_equity")),
        (33, 6, 6, 6)
    );
    assert_eq!(n("generalised_to_quarter"), 18);
    assert_eq!((n("imd_quintile_dropped"), n("ethnic_group_dropped")), (12, 6));
    assert_eq!(manifest["key_id"].as_str().map(str::len), Some(8));
    let dictionary = std::fs::read_to_string(out.join("data-dictionary.json")).unwrap_or_else(|e| panic!("{e}"));
    for name in &header {
        assert!(dictionary.contains(&format!("\"name\": \"{name}\"")), "{name} not in the dictionary");
    }

    // An existing dataset is kept without --force; the same key gives the same pseudonyms.
    let again = export_research(&reports, &out, &key_a, false);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--force"));
    let again = export_research(&reports, &out, &key_a, true);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let csv_again = std::fs::read_to_string(out.join("research.csv")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(csv_again, csv, "stable for the same key");
    let out_b = tmp.path().join("out-b");
    assert!(export_research(&reports, &out_b, &key_b, false).status.success());
    let csv_b = std::fs::read_to_string(out_b.join("research.csv")).unwrap_or_else(|e| panic!("{e}"));
    let pseudonyms = |csv: &str| -> std::collections::HashSet<String> {
        csv_rows(csv).1.iter().flat_map(|r| [r[0].clone(), r[1].clone()]).collect()
    };
    assert!(pseudonyms(&csv).is_disjoint(&pseudonyms(&csv_b)), "another key, other pseudonyms");
    assert_eq!(csv_rows(&csv_b).1.len(), 51);

    // A registry that is not there: a clear error naming it, nothing written.
    let db = wsiview(&[
        "export-research",
        "--db",
        "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
        "--out",
        &tmp.path().join("o").display().to_string(),
        "--key-file",
        &tmp.path().join("k").display().to_string(),
    ]);
    assert_eq!(db.status.code(), Some(1));
    assert!(!tmp.path().join("k").exists(), "no key made when there is nothing to export");
    let stderr = String::from_utf8_lossy(&db.stderr);
    assert!(stderr.contains("cannot connect to the registry postgresql://nobody@127.0.0.1:1/none"), "{stderr}");
}
