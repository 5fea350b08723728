//! The report panel driven like a user with egui_kittest: open it, fill the fields, watch the
//! slide hash finish, finalise, amend; the files written are checked, and reopening the slide
//! brings the report back.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::synth;
use egui::accesskit::Role as A11yRole;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use wsiview::report::{Report, Status};
use wsiview::synth::SynthOptions;
use wsiview::viewer::ViewerApp;

type H = Harness<'static, ViewerApp>;

fn harness(path: &Path) -> H {
    let mut h = common::viewer(path, [1400.0, 900.0], 64 << 20);
    wait_until(&mut h, "the slide to open", |app| app.active_view().is_some());
    h.step();
    h
}

fn wait_until(h: &mut H, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    if !common::step_until(h, 30, done) {
        let state = panel(h.state()).map(|p| (p.message.clone(), p.report.clone()));
        panic!("timed out waiting for {what}: {state:?}");
    }
}

fn panel(app: &ViewerApp) -> Option<&wsiview::viewer::report_panel::ReportPanel> {
    app.active_tab().and_then(|t| t.report.as_ref())
}

fn type_into(h: &mut H, label: &str, text: &str) {
    let role = if h.query_by_role_and_label(A11yRole::TextInput, label).is_some() {
        A11yRole::TextInput
    } else {
        A11yRole::MultilineTextInput
    };
    h.get_by_role_and_label(role, label).click();
    h.step();
    h.get_by_role_and_label(role, label).type_text(text);
    h.step();
}

fn click(h: &mut H, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
}

fn slide(dir: &Path) -> PathBuf {
    let opts = SynthOptions { width: 3000, height: 2000, mpp: 0.25, seed: 5, ..Default::default() };
    synth(dir, "H26-555.tif", &opts)
}

fn saved(app: &ViewerApp) -> Option<Report> {
    let path = panel(app)?.path.clone()?;
    Report::read(&path).ok()
}

#[test]
fn fill_finalise_amend_and_reopen() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let expected_hash = wsiview::report::hash::sha256_file(&path, |_, _| true).unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load and the slide to be hashed", |app| {
        panel(app).is_some_and(|p| !p.is_loading() && p.slide_hash().is_some())
    });
    {
        let p = panel(h.state()).unwrap_or_else(|| panic!("no panel"));
        assert_eq!(p.slide_hash(), Some(expected_hash.as_str()));
        assert_eq!(p.report.case_id, "H26-555", "the case id starts as the slide's name");
        assert_eq!(p.report.slide.width, 3000);
        assert_eq!(p.report.slide.mpp_x, Some(0.25));
        assert_eq!(p.report.status, Status::Draft);
    }
    // Finalising an incomplete draft is refused and says why.
    click(&mut h, "Finalise");
    let message = panel(h.state()).and_then(|p| p.message.clone()).unwrap_or_default();
    assert!(message.0.contains("Not finalised") && message.0.contains("received_date"), "{message:?}");

    type_into(&mut h, "Site", "RLH");
    type_into(&mut h, "Reviewer", "Dr Ada Test");
    type_into(&mut h, "Received", "2026-11-20");
    type_into(&mut h, "Category", "B5b");
    type_into(&mut h, "Diagnosis", "Invasive carcinoma, NST");
    // Sign-out needs the specimen and the microscopy too.
    type_into(&mut h, "Specimen", "Core biopsy, left breast");
    type_into(&mut h, "Microscopy", "Invasive carcinoma of no special type.");
    assert_eq!(h.state().reviewer.name, "Dr Ada Test", "the reviewer is remembered");
    click(&mut h, "Finalise");
    wait_until(&mut h, "the final report to be written", |app| {
        saved(app).is_some_and(|r| r.status == Status::Final) && panel(app).is_some_and(|p| !p.is_saving())
    });
    let report = saved(h.state()).unwrap_or_else(|| panic!("no saved report"));
    assert_eq!(report.site, "RLH");
    assert_eq!(report.slide.sha256, expected_hash);
    assert_eq!(report.diagnosis.category, "B5b");
    assert!(report.reported_at.is_some());
    let json = panel(h.state()).and_then(|p| p.path.clone()).unwrap_or_default();
    assert_eq!(json, tmp.path().join("H26-555.report.json"), "beside the slide, named after the case");
    let html = std::fs::read_to_string(tmp.path().join("H26-555.report.html")).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.contains("Invasive carcinoma, NST") && html.contains(&expected_hash));
    assert_eq!(html.matches("data:image/").count(), 2, "thumbnail and view are embedded");
    assert!(html.contains("data:image/jpeg;base64,/9j/"), "the view as JPEG");
    // 3,000 level-0 pixels at 0.25 µm: 750 µm wide, so a 100 µm bar on both pictures.
    assert_eq!(html.matches(">100 µm</text>").count(), 2, "with scale bars");
    assert!(html.contains("x 0–3000, y 0–2000"), "the fitted view's snapshot is the slide, not its margins");

    // A final report is read-only: amending needs a reason and records it.
    assert!(h.query_by_label("Save draft").is_none());
    click(&mut h, "Amend…");
    type_into(&mut h, "Category", "-revised");
    assert!(h.get_by_label("Save amendment").accesskit_node().is_disabled(), "no reason yet");
    type_into(&mut h, "Reason", "second opinion received");
    click(&mut h, "Save amendment");
    wait_until(&mut h, "the amendment to be written", |app| {
        saved(app).is_some_and(|r| r.status == Status::Amended) && panel(app).is_some_and(|p| !p.is_saving())
    });
    let amended = saved(h.state()).unwrap_or_else(|| panic!("no saved report"));
    assert_eq!(amended.diagnosis.category, "B5b-revised");
    assert_eq!(amended.amendments.len(), 1);
    assert_eq!(amended.amendments[0].reason, "second opinion received");
    assert_eq!(amended.amendments[0].by, "Dr Ada Test");
    assert_eq!(amended.reported_at, report.reported_at, "the first sign-out time stays");
    assert_eq!(amended.report_id, report.report_id);
    let html = std::fs::read_to_string(tmp.path().join("H26-555.report.html")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        html.contains(
            "Diagnosis category <span class=\"note mono\">diagnosis.category</span></th>\
                       <td><div class=\"text\">B5b</div></td><td><div class=\"text\">B5b-revised</div></td>"
        ),
        "the page lists what the amendment changed"
    );
    drop(h);

    // Reopening the slide finds its report.
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| panel(app).is_some_and(|p| !p.is_loading()));
    let p = panel(h.state()).unwrap_or_else(|| panic!("no panel"));
    assert_eq!(p.report.report_id, report.report_id);
    assert_eq!(p.report.status, Status::Amended);
    assert!(h.query_by_label("Amend…").is_some());
}

#[test]
fn drafts_save_themselves_after_an_edit() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| panel(app).is_some_and(|p| !p.is_loading()));
    // A long line wraps: the panel keeps its width (egui would otherwise widen it to the text).
    let width = |h: &H| h.get_by_role_and_label(A11yRole::MultilineTextInput, "Microscopy").rect().width();
    let before = width(&h);
    type_into(&mut h, "Microscopy", "Sheets of atypical cells.");
    type_into(&mut h, "Comments", &"a long line without an end ".repeat(20));
    for _ in 0..10 {
        h.step();
    }
    assert!((width(&h) - before).abs() < 1.0, "{} → {}", before, width(&h));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) && saved(h.state()).is_none() {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let draft = saved(h.state()).unwrap_or_else(|| panic!("the draft was not saved within 10 s"));
    for _ in 0..10 {
        h.step();
    }
    assert!((width(&h) - before).abs() < 1.0, "after saving: {} → {}", before, width(&h));
    // A refused sign-out explains itself in a line that wraps too.
    wait_until(&mut h, "the slide to be hashed and saves to finish", |app| {
        panel(app).is_some_and(|p| p.slide_hash().is_some() && !p.is_saving())
    });
    click(&mut h, "Finalise");
    for _ in 0..200 {
        h.step(); // a save in flight may finish meanwhile: it must not hide the refusal
        std::thread::sleep(Duration::from_millis(5));
    }
    let message = panel(h.state()).and_then(|p| p.message.clone()).unwrap_or_default();
    assert!(message.0.starts_with("Not finalised"), "{message:?}");
    assert!((width(&h) - before).abs() < 1.0, "after a refusal: {} → {}", before, width(&h));
    assert_eq!(draft.status, Status::Draft);
    assert_eq!(draft.microscopy, "Sheets of atypical cells.");
}
