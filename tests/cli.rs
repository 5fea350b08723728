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
