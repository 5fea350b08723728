//! `wsiview verify` and `wsiview export-teaching`, driven through the real binary and checked
//! with our reader and, independently, the `tiff` crate.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tiff::decoder::Decoder;
use tiff::tags::Tag;
use wsiview::report::hash::sha256_file;
use wsiview::report::Report;
use wsiview::synth::{Layout, SynthOptions};
use wsiview::tiff::ByteOrder;
use wsiview::Slide;

const CASE_ID: &str = "H26-1234";
const REVIEWER: &str = "Dr Ann Smith";
const AMENDER: &str = "Dr Bob Jones";
const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn wsiview(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsiview")).args(args).output().expect("run wsiview")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn svs(dir: &Path, name: &str, bigtiff: bool, byte_order: ByteOrder) -> PathBuf {
    let opts =
        SynthOptions { width: 2000, height: 1500, layout: Layout::Svs, bigtiff, byte_order, ..Default::default() };
    common::synth(dir, name, &opts)
}

/// A final, amended report about `slide`, written beside it.
fn report_for(slide: &Path) -> PathBuf {
    let s = Slide::open(slide).expect("open slide");
    let mut r = Report { case_id: CASE_ID.into(), site: "RLH".into(), ..Report::default() };
    r.received_date = Some("2026-11-02".into());
    r.reviewer.name = REVIEWER.into();
    r.reviewer.extra.insert("gmc_number".into(), "7654321".into());
    r.slide.file_name = slide.file_name().expect("name").to_string_lossy().into_owned();
    r.slide.sha256 = sha256_file(slide, |_, _| true).expect("hash");
    r.slide.width = s.levels()[0].width;
    r.slide.height = s.levels()[0].height;
    r.diagnosis.category = "B5b".into();
    r.microscopy = "Invasive carcinoma of no special type.".into();
    r.specimen = "Core biopsy, left breast".into();
    r.diagnosis.text = "Invasive carcinoma, NST".into();
    r.annotations.file = format!("{}.annotations.geojson", r.slide.file_name);
    r.finalise("2026-11-09T16:05:00+00:00").expect("finalise");
    r.amend(AMENDER, None, "grade revised", "2026-11-10T09:00:00+00:00", |r| r.diagnosis.category = "B5a".into())
        .expect("amend");
    let path = slide.with_file_name(r.file_name());
    std::fs::write(&path, r.to_json()).expect("write report");
    path
}

fn key_file(dir: &Path, name: &str, hex: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{hex}\n")).expect("write key");
    path
}

/// Run export-teaching; the teaching report read back, with its path.
fn export(slide: &Path, report: &Path, out: &Path, key: &Path) -> (Report, PathBuf) {
    let o = wsiview(&[Path::new("export-teaching"), slide, report, out, Path::new("--key-file"), key]);
    assert!(o.status.success(), "export failed: {}{}", text(&o.stdout), text(&o.stderr));
    let reports: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("outdir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".report.json"))
        .collect();
    assert_eq!(reports.len(), 1, "one report in {}", out.display());
    let path = reports[0].clone();
    (Report::read(&path).expect("teaching report validates"), path)
}

/// Every IFD of the main chain, read with the `tiff` crate: (description, strip byte ranges).
fn ifds_by_tiff_crate(path: &Path) -> Vec<(String, Vec<(u64, u64)>)> {
    let file = std::fs::File::open(path).expect("open");
    let mut dec = Decoder::new(std::io::BufReader::new(file)).expect("tiff crate reads the file");
    let mut out = Vec::new();
    loop {
        let description = dec.get_tag_ascii_string(Tag::ImageDescription).unwrap_or_default();
        let strips = match (dec.get_tag_u64_vec(Tag::StripOffsets), dec.get_tag_u64_vec(Tag::StripByteCounts)) {
            (Ok(o), Ok(c)) => o.into_iter().zip(c).collect(),
            _ => Vec::new(),
        };
        out.push((description, strips));
        if !dec.more_images() {
            break;
        }
        dec.next_image().expect("next IFD");
    }
    out
}

fn aperio_value<'a>(description: &'a str, key: &str) -> Option<&'a str> {
    description.split('|').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn teaching_copy_has_no_label_or_macro_and_the_same_pixels() {
    for (bigtiff, order) in [(false, ByteOrder::Little), (true, ByteOrder::Big)] {
        let what = format!("bigtiff={bigtiff} {order:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let slide = svs(dir.path(), "H26-1234 A1.svs", bigtiff, order);
        let report = report_for(&slide);
        let annotations = wsiview::annotations::store::sidecar_path(&slide);
        let annotation_bytes = br#"{"type": "FeatureCollection", "features": []}"#;
        std::fs::write(&annotations, annotation_bytes).expect("sidecar");
        let key = key_file(dir.path(), "network.key", KEY_A);
        let out = dir.path().join("teaching");
        let (teaching, teaching_path) = export(&slide, &report, &out, &key);
        let copy = out.join(&teaching.slide.file_name);
        assert!(teaching.slide.file_name.starts_with("CASE-") && teaching.slide.file_name.ends_with(".svs"), "{what}");

        // Our reader: same levels and pixels; the thumbnail stays, the label and macro are gone.
        let (a, b) = (Slide::open(&slide).expect("original"), Slide::open(&copy).expect("the copy opens"));
        assert_eq!(a.levels(), b.levels(), "{what}");
        assert_eq!(a.associated_names(), ["thumbnail", "label", "macro"], "{what}");
        assert_eq!(b.associated_names(), ["thumbnail"], "{what}");
        for level in 0..a.levels().len() {
            let region_a = a.read_region(level, 300, 200, 120, 90).expect("region");
            let region_b = b.read_region(level, 300, 200, 120, 90).expect("region");
            assert!(region_a.as_raw() == region_b.as_raw(), "{what}: level {level} pixels differ");
        }
        assert_eq!(a.read_associated("thumbnail").expect("thumb"), b.read_associated("thumbnail").expect("thumb"));

        // The tiff crate, independently: two IFDs fewer, none of them a label or macro.
        let before = ifds_by_tiff_crate(&slide);
        let after = ifds_by_tiff_crate(&copy);
        assert_eq!(before.len(), after.len() + 2, "{what}");
        for (description, _) in &after {
            let d = description.to_lowercase();
            assert!(!d.contains("label") && !d.contains("macro"), "{what}: {description:?}");
        }
        let copy_bytes = std::fs::read(&copy).expect("copy");
        let original_bytes = std::fs::read(&slide).expect("original");
        let mut strips_checked = 0;
        for (description, strips) in &before {
            if !(description.contains("label") || description.contains("macro")) {
                continue;
            }
            for &(offset, len) in strips {
                let strip = &original_bytes[offset as usize..(offset + len) as usize];
                if strip.len() >= 24 {
                    assert!(
                        !contains(&copy_bytes, strip),
                        "{what}: label/macro strip at {offset} survives in the copy"
                    );
                    strips_checked += 1;
                }
            }
        }
        assert!(strips_checked > 10, "{what}: only {strips_checked} strips checked");

        // Descriptions: the identifying values blank, the keys and the rest unchanged.
        let with_pairs: Vec<(&String, &String)> = before
            .iter()
            .map(|(d, _)| d)
            .filter(|d| d.contains("Filename"))
            .zip(after.iter().map(|(d, _)| d).filter(|d| d.contains("Filename")))
            .collect();
        assert_eq!(with_pairs.len(), 2, "{what}: level 0 and the thumbnail carry the pairs");
        for (old, new) in with_pairs {
            for key in ["Filename", "User", "Date", "Time"] {
                assert_eq!(aperio_value(new, key), Some(""), "{what}: {key} in {new:?}");
                assert_ne!(aperio_value(old, key), Some(""), "{what}: the original had a {key}");
            }
            for key in ["MPP", "AppMag"] {
                assert_eq!(aperio_value(new, key), aperio_value(old, key), "{what}: {key}");
                assert!(aperio_value(new, key).is_some());
            }
            assert_eq!(new.split('|').next(), old.split('|').next(), "{what}: header kept");
        }
        assert!(!contains(&copy_bytes, b"SYNTHETIC-1"), "{what}: the original file name survives somewhere");

        // The report: pseudonyms only, pointing at the copy and its annotations.
        let json = std::fs::read_to_string(&teaching_path).expect("report text");
        let original = Report::read(&report).expect("original report");
        for identifier in [CASE_ID, REVIEWER, AMENDER, "7654321", original.report_id.as_str(), "H26-1234 A1"] {
            assert!(!json.contains(identifier), "{what}: {identifier:?} in the teaching report");
        }
        assert!(teaching.case_id.starts_with("CASE-") && teaching.reviewer.name.starts_with("REVIEWER-"), "{what}");
        assert!(teaching.amendments[0].by.starts_with("REVIEWER-"));
        assert_ne!(teaching.amendments[0].by, teaching.reviewer.name);
        assert_eq!(teaching.slide.sha256, sha256_file(&copy, |_, _| true).expect("hash"), "{what}");
        assert_ne!(teaching.slide.sha256, original.slide.sha256);
        assert_eq!(teaching.microscopy, original.microscopy, "free text is kept");
        assert_eq!(teaching.diagnosis, original.diagnosis);
        assert!(teaching.extra["teaching_copy"]["made_at"].is_string(), "{what}");
        assert_eq!(std::fs::read(out.join(&teaching.annotations.file)).expect("annotations copy"), annotation_bytes);
        assert_eq!(teaching.annotations.file, format!("{}.annotations.geojson", teaching.slide.file_name));

        // verify: the teaching report matches the copy, not the original.
        let o = wsiview(&[Path::new("verify"), &teaching_path, &copy]);
        assert_eq!(o.status.code(), Some(0), "{what}: {}{}", text(&o.stdout), text(&o.stderr));
        assert!(text(&o.stdout).starts_with("OK: "), "{}", text(&o.stdout));
        let o = wsiview(&[Path::new("verify"), &teaching_path, &slide]);
        assert_eq!(o.status.code(), Some(3), "{what}: {}{}", text(&o.stdout), text(&o.stderr));
        let stdout = text(&o.stdout);
        assert!(stdout.contains("MISMATCH") && stdout.contains(&teaching.slide.sha256), "{stdout}");
        assert!(stdout.contains("file name") && stdout.contains("(same size)"), "{stdout}");
        let o = wsiview(&[Path::new("verify"), &report, &slide]);
        assert_eq!(o.status.code(), Some(0), "the original pair still verifies");
    }
}

#[test]
fn pseudonyms_follow_the_key_and_outputs_are_not_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slide = svs(dir.path(), "case.svs", false, ByteOrder::Little);
    let report = report_for(&slide);
    let (key_a, key_b) = (key_file(dir.path(), "a.key", KEY_A), key_file(dir.path(), "b.key", KEY_B));
    let (first, first_path) = export(&slide, &report, &dir.path().join("one"), &key_a);
    let (second, _) = export(&slide, &report, &dir.path().join("two"), &key_a);
    let (other, _) = export(&slide, &report, &dir.path().join("three"), &key_b);
    assert_eq!(
        (&first.case_id, &first.reviewer.name, &first.report_id),
        (&second.case_id, &second.reviewer.name, &second.report_id)
    );
    assert_eq!(first.amendments[0].by, second.amendments[0].by);
    assert_ne!(first.case_id, other.case_id);
    assert_ne!(first.reviewer.name, other.reviewer.name);
    assert_ne!(first.report_id, other.report_id);
    assert_eq!(first.slide.sha256, second.slide.sha256, "the copy is deterministic");

    // Existing outputs: refused without --force, replaced with it.
    let out = dir.path().join("one");
    let args = [Path::new("export-teaching"), &slide, &report, &out, Path::new("--key-file"), &key_a];
    let o = wsiview(&args);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("already exists") && stderr.contains(&first.case_id), "{stderr}");
    let o = wsiview(&[&args[..], &[Path::new("--force")][..]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(Report::read(&first_path).is_ok());
    let leftovers: Vec<_> = std::fs::read_dir(&out).expect("dir").map(|e| e.expect("e").file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");

    // Without --key-file: a key made once in the app data folder, then reused.
    let data = dir.path().join("data");
    let run_default = |out: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_wsiview"))
            .args([Path::new("export-teaching"), &slide, &report, out])
            .env("XDG_DATA_HOME", &data)
            .env("HOME", &data)
            .env("APPDATA", &data)
            .output()
            .expect("run");
        assert!(o.status.success(), "{}", text(&o.stderr));
        let report_name = std::fs::read_dir(out)
            .expect("dir")
            .map(|e| e.expect("e").path())
            .find(|p| p.to_string_lossy().ends_with(".report.json"))
            .expect("report");
        (Report::read(&report_name).expect("valid"), text(&o.stdout))
    };
    let (d1, stdout1) = run_default(&dir.path().join("d1"));
    let (d2, stdout2) = run_default(&dir.path().join("d2"));
    assert!(stdout1.contains("key created") && stdout2.contains("key used"), "{stdout1}\n{stdout2}");
    assert_eq!(d1.case_id, d2.case_id);
    assert_ne!(d1.case_id, first.case_id, "a fresh random key, not key A");
    assert!(stdout1.contains("Check before sharing") && stdout1.contains("microscopy"), "{stdout1}");
}

#[test]
fn export_refuses_another_slides_report_and_files_that_are_not_slides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slide = svs(dir.path(), "case.svs", false, ByteOrder::Little);
    let other = common::synth(
        dir.path(),
        "other.svs",
        &SynthOptions { width: 600, height: 400, layout: Layout::Svs, seed: 9, ..Default::default() },
    );
    let report = report_for(&slide);
    let key = key_file(dir.path(), "a.key", KEY_A);
    let out = dir.path().join("out");
    let o = wsiview(&[Path::new("export-teaching"), &other, &report, &out, Path::new("--key-file"), &key]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("another slide") && stderr.contains(&report.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0), 0, "nothing left behind: {stderr}");

    let not_tiff = dir.path().join("notes.svs");
    std::fs::write(&not_tiff, b"%PDF-1.7 not a slide").expect("write");
    let o = wsiview(&[Path::new("export-teaching"), &not_tiff, &report, &out, Path::new("--key-file"), &key]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("notes.svs") && stderr.contains("not a TIFF"), "{stderr}");

    let bad_key = key_file(dir.path(), "bad.key", "1234");
    let o = wsiview(&[Path::new("export-teaching"), &slide, &report, &out, Path::new("--key-file"), &bad_key]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("bad.key"), "{}", text(&o.stderr));
}

#[test]
fn verify_names_the_file_it_cannot_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slide = svs(dir.path(), "case.svs", false, ByteOrder::Little);
    let report = report_for(&slide);
    let not_json = dir.path().join("broken.report.json");
    std::fs::write(&not_json, b"{ this is not json").expect("write");
    let o = wsiview(&[Path::new("verify"), &not_json, &slide]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("broken.report.json") && stderr.contains("not JSON"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    let missing = dir.path().join("missing.svs");
    let o = wsiview(&[Path::new("verify"), &report, &missing]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("missing.svs"), "{stderr}");

    // A file that is not a slide at all is still just "another file": exit 3 with the hash.
    let o = wsiview(&[Path::new("verify"), &report, &not_json]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("does not open as a slide"), "{}", text(&o.stdout));
}

/// Formats whose label or macro pixels are not only whole IFDs (Philips keeps them as base64 in
/// the XML, Leica keeps a second macro resolution, the BIF macro carries the slide's XMP) are
/// refused rather than copied with the label still inside.
#[test]
fn teaching_copies_refuse_formats_whose_labels_cannot_be_removed() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/vendors");
    if !fixtures.is_dir() {
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (name, format) in [("philips.tiff", "philips-tiff"), ("leica.scn", "leica-scn"), ("ventana.bif", "ventana-bif")]
    {
        let copy = dir.path().join(name);
        std::fs::copy(fixtures.join(name), &copy).unwrap_or_else(|e| panic!("{e}"));
        let before = std::fs::read(&copy).unwrap_or_else(|e| panic!("{e}"));
        let err = match wsiview::report::teaching::scrub_slide_file(&copy).map_err(|e| e.to_string()) {
            Ok(_) => panic!("{name}: scrubbed, but its label cannot be removed"),
            Err(e) => e,
        };
        assert!(err.contains(format) && err.contains("label"), "{name}: {err}");
        assert!(std::fs::read(&copy).unwrap_or_default() == before, "{name}: the file was changed");
    }
}
