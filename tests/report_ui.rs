//! The report panel driven like a user with egui_kittest: open it, fill the fields, watch the
//! slide hash finish, finalise, amend; the files written are checked, and reopening the slide
//! brings the report back.
#![cfg(feature = "gui")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::synth;
use egui::accesskit::Role as A11yRole;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use wsiview::report::schema::Role;
use wsiview::report::{Report, Status};
use wsiview::synth::SynthOptions;
use wsiview::viewer::report_panel::ReviewerDefaults;
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

/// Step (in real time, for the draft's autosave) until `done` holds for the saved report or
/// `seconds` pass; the report as saved then, if any (the caller asserts what it needs).
fn wait_for_saved(h: &mut H, seconds: u64, done: impl Fn(&Report) -> bool) -> Option<Report> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) && !saved(h.state()).is_some_and(|r| done(&r)) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    saved(h.state())
}

/// Wait until the panel has nothing left to write (the slide hashed, no save running or due), so
/// that no save outlives the test's temporary folder.
fn settle(h: &mut H) {
    wait_until(h, "the report to settle", |app| {
        panel(app).is_none_or(|p| p.slide_hash().is_some() && !p.is_saving() && !p.has_unsaved())
    });
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
    // Finalising an incomplete draft is refused, says what is missing, and asks nothing.
    click(&mut h, "Finalise…");
    let message = panel(h.state()).and_then(|p| p.message.clone()).unwrap_or_default();
    for field in ["Site", "Reviewer", "Received", "Specimen", "Microscopy", "Diagnosis", "Category"] {
        assert!(message.text.contains(field), "{field} not named in {message:?}");
    }
    assert!(message.text.starts_with("Not finalised"), "{message:?}");
    assert!(h.query_by_label("Sign out").is_none(), "no confirmation for an incomplete report");

    type_into(&mut h, "Site", "RLH");
    type_into(&mut h, "Reviewer", "Dr Ada Test");
    type_into(&mut h, "Received", "2026-11-20");
    type_into(&mut h, "Category", "B5b");
    type_into(&mut h, "Specimen", "Core biopsy, left breast");
    type_into(&mut h, "Microscopy", "Infiltrating carcinoma.");
    let message = panel(h.state()).and_then(|p| p.message.clone()).unwrap_or_default();
    assert!(
        message.text.contains("Diagnosis") && !message.text.contains("Specimen"),
        "follows the fields: {message:?}"
    );
    type_into(&mut h, "Diagnosis", "Invasive carcinoma, NST");
    h.step();
    assert_eq!(panel(h.state()).and_then(|p| p.message.clone()), None, "the refusal goes once all is filled in");
    assert_eq!(h.state().reviewer.name, "Dr Ada Test", "the reviewer is remembered");
    // Signing out asks first, naming who signs; cancelling changes nothing.
    click(&mut h, "Finalise…");
    assert!(h.query_by_label_contains("Signed by: Dr Ada Test (Consultant), site RLH").is_some());
    click(&mut h, "Cancel");
    assert_eq!(panel(h.state()).map(|p| p.report.status), Some(Status::Draft));
    click(&mut h, "Finalise…");
    click(&mut h, "Sign out");
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

    // A final report is read-only. Another user (a trainee, with their own remembered identity)
    // amends it: the amendment is theirs, the signing reviewer stays, the old value is kept.
    assert!(h.query_by_label("Save draft").is_none());
    h.state_mut().reviewer = ReviewerDefaults { name: "T. Rainee".into(), role: Role::Trainee, site: "RLH".into() };
    click(&mut h, "Amend…");
    assert!(
        h.get_by_role_and_label(A11yRole::TextInput, "Reviewer").accesskit_node().is_disabled(),
        "the signing reviewer cannot be edited in an amendment"
    );
    type_into(&mut h, "Category", "-revised");
    // A region drawn since sign-out: the amendment records the annotations as they stand, and
    // its confirmation says so in words (100 × 100 pixels at 0.25 µm: 625 µm²).
    {
        use wsiview::annotations::{Annotation, Geometry};
        let view = h.state_mut().active_view_mut().unwrap_or_else(|| panic!("no view"));
        view.annotations.doc.add(Annotation::new(Geometry::Rectangle {
            x: 10.0,
            y: 10.0,
            width: 100.0,
            height: 100.0,
        }));
    }
    // Equity of service is amended like any other field.
    choose(&mut h, "IMD decile", "3");
    click(&mut h, "Save amendment…");
    let message = panel(h.state()).and_then(|p| p.message.clone()).unwrap_or_default();
    assert!(message.text.contains("reason"), "no reason yet: {message:?}");
    assert!(h.query_by_label("Save amendment").is_none(), "no confirmation without a reason");
    type_into(&mut h, "Reason", "second opinion received");
    click(&mut h, "Save amendment…");
    assert!(h.query_by_label_contains("Amended by: T. Rainee (Trainee)").is_some());
    assert!(h.query_by_label_contains("Category: was B5b, now B5b-revised").is_some());
    assert!(h.query_by_label_contains("Annotations by class: was none, now (unclassified) 1 (625.0 µm²)").is_some());
    click(&mut h, "Save amendment");
    wait_until(&mut h, "the amendment to be written", |app| {
        saved(app).is_some_and(|r| r.status == Status::Amended) && panel(app).is_some_and(|p| !p.is_saving())
    });
    let amended = saved(h.state()).unwrap_or_else(|| panic!("no saved report"));
    assert_eq!(amended.diagnosis.category, "B5b-revised");
    assert_eq!(amended.amendments.len(), 1);
    assert_eq!(amended.amendments[0].reason, "second opinion received");
    assert_eq!(amended.amendments[0].by, "T. Rainee");
    assert_eq!(amended.amendments[0].role, Some(Role::Trainee));
    assert_eq!(amended.reviewer.name, "Dr Ada Test", "the original reviewer stays");
    let change = amended.amendments[0].changes.iter().find(|c| c.field == "diagnosis.category");
    assert_eq!(change.map(|c| (c.before.clone(), c.after.clone())), Some(("B5b".into(), "B5b-revised".into())));
    assert_eq!(amended.equity.as_ref().map(|e| (e.ethnic_category.clone(), e.imd_decile)), Some((None, Some(3))));
    let change = amended.amendments[0].changes.iter().find(|c| c.field == "equity");
    assert_eq!(
        change.map(|c| (c.before.clone(), c.after["imd_decile"].clone())),
        Some((serde_json::Value::Null, 3.into()))
    );
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

/// Where every field of the form is (text inputs by label).
fn field_rects(h: &H) -> Vec<(String, egui::Rect)> {
    let mut rects = Vec::new();
    for label in ["Case ID", "Site", "Reviewer", "Received", "Category", "SNOMED CT"] {
        rects.push((label.to_string(), h.get_by_role_and_label(A11yRole::TextInput, label).rect()));
    }
    for label in ["Specimen", "Clinical details", "Macroscopy", "Microscopy", "Diagnosis", "Comments"] {
        rects.push((label.to_string(), h.get_by_role_and_label(A11yRole::MultilineTextInput, label).rect()));
    }
    rects
}

fn assert_same_rects(h: &H, before: &[(String, egui::Rect)], when: &str) {
    let now = field_rects(h);
    for ((label, a), (_, b)) in before.iter().zip(&now) {
        assert!(
            (a.min - b.min).length() < 0.5 && (a.size() - b.size()).length() < 0.5,
            "{when}: {label} moved from {a:?} to {b:?}"
        );
    }
}

#[test]
fn drafts_save_themselves_and_nothing_moves_under_the_pointer() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| panel(app).is_some_and(|p| !p.is_loading()));
    h.step();
    let width = |h: &H| h.get_by_role_and_label(A11yRole::MultilineTextInput, "Microscopy").rect().width();
    let start_width = width(&h);
    // A long line wraps: the panel keeps its width (egui would otherwise widen it to the text).
    type_into(&mut h, "Microscopy", "Sheets of atypical cells.");
    type_into(&mut h, "Received", "2026-02-30");
    type_into(&mut h, "Comments", &"a long line without an end ".repeat(20));
    for _ in 0..10 {
        h.step();
    }
    assert!((width(&h) - start_width).abs() < 1.0, "the panel widened: {start_width} → {}", width(&h));
    // From here on the user only waits: nothing they did moves the fields any more.
    let before = field_rects(&h);
    let draft = wait_for_saved(&mut h, 10, |_| true).unwrap_or_else(|| panic!("the draft was not saved within 10 s"));
    for _ in 0..10 {
        h.step();
    }
    let notice = panel(h.state()).and_then(|p| p.notice()).unwrap_or_else(|| panic!("no save notice"));
    assert!(notice.text.starts_with("Saved") && !notice.is_problem(), "{notice:?}");
    assert_same_rects(&h, &before, "after the first autosave's notice");
    // A refused sign-out explains itself in the same place.
    wait_until(&mut h, "the slide to be hashed and saves to finish", |app| {
        panel(app).is_some_and(|p| p.slide_hash().is_some() && !p.is_saving())
    });
    click(&mut h, "Finalise…");
    for _ in 0..200 {
        h.step(); // a save in flight may finish meanwhile: it must not hide the refusal
        std::thread::sleep(Duration::from_millis(5));
    }
    let message = panel(h.state()).and_then(|p| p.message.clone()).unwrap_or_default();
    assert!(message.text.starts_with("Not finalised"), "{message:?}");
    assert_same_rects(&h, &before, "after a refusal (missing fields marked)");
    assert_eq!(draft.status, Status::Draft);
    assert_eq!(draft.microscopy, "Sheets of atypical cells.");
    assert_eq!(draft.received_date, None, "an impossible date is not stored (the draft stays readable)");
}

/// A sign-out asked for while an autosave is still writing is written after it, not dropped.
#[test]
fn a_sign_out_during_an_autosave_is_still_written() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load and the slide to be hashed", |app| {
        panel(app).is_some_and(|p| !p.is_loading() && p.slide_hash().is_some())
    });
    for (label, text) in [
        ("Site", "RLH"),
        ("Reviewer", "Dr Ada Test"),
        ("Received", "2026-11-20"),
        ("Category", "B5b"),
        ("Specimen", "Core biopsy"),
        ("Microscopy", "Carcinoma."),
        ("Diagnosis", "Invasive carcinoma"),
    ] {
        type_into(&mut h, label, text);
    }
    // An autosave starts, and in the same moment the report is signed out.
    {
        let ctx = h.ctx.clone();
        let app = h.state_mut();
        let classes = app.classes.clone();
        let tab = &mut app.tabs[0];
        let (wsiview::viewer::app::TabState::Open(view), Some(p)) = (&tab.state, tab.report.as_mut()) else {
            panic!("no open slide with a report")
        };
        p.save_now(view, &classes, &ctx);
        assert!(p.is_saving(), "the autosave is writing");
        p.finalise(view, &classes, &ctx);
        assert_eq!(p.report.status, Status::Final);
        assert!(p.has_unsaved(), "the sign-out is not on disk yet");
    }
    wait_until(&mut h, "both saves to finish", |app| panel(app).is_some_and(|p| !p.has_unsaved()));
    let on_disk = saved(h.state()).unwrap_or_else(|| panic!("nothing saved"));
    assert_eq!(on_disk.status, Status::Final, "the sign-out reached the file");
}

#[test]
fn keys_typed_in_the_report_never_reach_the_slide() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| panel(app).is_some_and(|p| !p.is_loading()));
    for _ in 0..30 {
        h.step();
    }
    let zoom = |h: &H| h.state().active_view().map(|v| (v.camera.zoom, v.camera.center)).unwrap_or_default();
    let start = zoom(&h);
    // Digits and +/- are magnification and zoom keys on the slide.
    type_into(&mut h, "SNOMED CT", "254837009, 1+2-3");
    for _ in 0..30 {
        h.step();
    }
    assert_eq!(zoom(&h), start, "typing a code moved the slide");
    // A click that misses a field (on a label) takes the keyboard from the slide too.
    h.get_by_role_and_label(A11yRole::Label, "Specimen").click();
    h.step();
    for k in
        [egui::Key::Num5, egui::Key::Num1, egui::Key::Plus, egui::Key::Minus, egui::Key::Num0, egui::Key::ArrowLeft]
    {
        h.key_press(k);
        h.step();
    }
    for _ in 0..30 {
        h.step();
    }
    assert_eq!(zoom(&h), start, "keys after a click in the report moved the slide");
    // Clicking the slide gives it the keyboard back.
    let centre = h
        .state()
        .active_view()
        .map(|v| v.view_rect())
        .map(|r| egui::pos2((r.x + r.width / 2.0) as f32, (r.y + r.height / 2.0) as f32));
    let centre = centre.unwrap_or_else(|| panic!("no view"));
    h.hover_at(centre);
    h.step();
    h.drag_at(centre);
    h.step();
    h.event(egui::Event::PointerButton {
        pos: centre,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    for _ in 0..20 {
        h.step();
    }
    h.key_press(egui::Key::Plus);
    for _ in 0..40 {
        h.step();
    }
    assert!(zoom(&h).0 > start.0 * 1.2, "the slide has the keyboard again: {:?} → {:?}", start, zoom(&h));
}

#[test]
fn closing_a_tab_or_the_window_with_unsaved_report_asks_first() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| panel(app).is_some_and(|p| !p.is_loading()));
    type_into(&mut h, "Specimen", "Skin ellipse");
    // The window: the close is cancelled and the question asked.
    let ctx = h.ctx.clone();
    h.state_mut().request_close_window(&ctx);
    h.step();
    h.step();
    assert!(h.query_by_label("Report changes are not saved").is_some());
    click(&mut h, "Keep open");
    assert!(h.state().closing.is_none() && h.state().tabs.len() == 1);
    // The tab: × asks, "Save and close" writes the report, then the tab goes.
    h.get_by_label("×").click();
    for _ in 0..3 {
        h.step();
    }
    assert!(h.query_by_label("Report changes are not saved").is_some());
    assert_eq!(h.state().tabs.len(), 1, "nothing closed before an answer");
    click(&mut h, "Save and close");
    wait_until(&mut h, "the tab to close after saving", |app| app.tabs.is_empty());
    let written = Report::read(&tmp.path().join("H26-555.report.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written.specimen, "Skin ellipse");
}

/// A final report in a folder the user cannot write (a shared, read-only case folder), amended
/// by a second, non-root user: the amendment goes to their data folder; when no folder takes it,
/// the panel keeps it, closing asks, and "Save elsewhere…" writes it. As root (CI), the test runs
/// itself again as `nobody`, for whom the permissions hold.
#[test]
fn read_only_folder_second_user_never_loses_an_amendment() {
    use std::os::unix::fs::PermissionsExt;
    const CHILD: &str = "WSIVIEW_TEST_SECOND_USER_DIR";
    if let Some(dir) = std::env::var_os(CHILD) {
        return second_user(Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path();
    let shared = root.join("shared");
    std::fs::create_dir_all(&shared).unwrap_or_else(|e| panic!("{e}"));
    let path = slide(&shared);
    // A final report signed by the first user, beside the slide.
    let mut r = Report { case_id: "H26-555".into(), site: "RLH".into(), ..Report::default() };
    r.reviewer.name = "Dr Ada Test".into();
    r.received_date = Some("2026-11-20".into());
    r.specimen = "Core biopsy".into();
    r.microscopy = "Infiltrating carcinoma.".into();
    r.diagnosis.text = "Invasive carcinoma".into();
    r.diagnosis.category = "B5b".into();
    r.slide.file_name = "H26-555.tif".into();
    r.slide.sha256 = wsiview::report::hash::sha256_file(&path, |_, _| true).unwrap_or_else(|e| panic!("{e}"));
    r.finalise("2026-11-25T10:00:00+00:00").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(shared.join("H26-555.report.json"), r.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let home = root.join("home");
    let locked = root.join("locked-data");
    for d in [&home, &locked] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(root, 0o755).unwrap_or_else(|e| panic!("{e}"));
    mode(&shared, 0o555).unwrap_or_else(|e| panic!("{e}"));
    mode(&locked, 0o555).unwrap_or_else(|e| panic!("{e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let args = ["read_only_folder_second_user_never_loses_an_amendment", "--exact", "--nocapture", "--test-threads=1"];
    let is_root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut command = if is_root {
        // `nobody` owns its home only; the shared folder and the locked data folder stay root's.
        std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap_or_else(|e| panic!("{e}"));
        // The build folder may be one `nobody` cannot enter (a clone under /root): run a copy.
        let copy = root.join("report_ui-second-user");
        std::fs::copy(&exe, &copy).unwrap_or_else(|e| panic!("{e}"));
        mode(&copy, 0o755).unwrap_or_else(|e| panic!("{e}"));
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(&copy);
        c
    } else {
        std::process::Command::new(&exe)
    };
    let out = command
        .args(args)
        .env(CHILD, root)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run the test as a second user: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    mode(&shared, 0o755).unwrap_or_else(|e| panic!("{e}"));
    mode(&locked, 0o755).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success() && text.contains("1 passed"), "second user's run failed:\n{text}");
}

fn second_user(root: &Path) {
    let path = root.join("shared/H26-555.tif");
    assert!(!wsiview::files::folder_writable(&root.join("shared")), "the shared folder must be read-only");
    let mut h = harness(&path);
    h.state_mut().reviewer = ReviewerDefaults { name: "T. Rainee".into(), role: Role::Trainee, site: "RLH".into() };
    click(&mut h, "Report");
    wait_until(&mut h, "the final report to load", |app| {
        panel(app).is_some_and(|p| !p.is_loading() && p.slide_hash().is_some())
    });
    assert_eq!(panel(h.state()).map(|p| p.report.status), Some(Status::Final));
    click(&mut h, "Amend…");
    type_into(&mut h, "Comments", "Reviewed at MDT.");
    type_into(&mut h, "Reason", "MDT note");
    click(&mut h, "Save amendment…");
    click(&mut h, "Save amendment");
    wait_until(&mut h, "the amendment to be saved", |app| panel(app).is_some_and(|p| !p.is_saving()));
    let p = panel(h.state()).unwrap_or_else(|| panic!("no panel"));
    let fallback = root.join("home/data/wsiview/reports/H26-555.report.json");
    assert_eq!(p.path.as_deref(), Some(fallback.as_path()), "{:?}", p.notice());
    assert!(p.notice().is_some_and(|n| n.text.contains("app data folder")), "{:?}", p.notice());
    let saved = Report::read(&fallback).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((saved.status, saved.amendments[0].by.as_str()), (Status::Amended, "T. Rainee"));
    drop(h);
    // Reopened, the slide shows the amended report.
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| panel(app).is_some_and(|p| !p.is_loading()));
    assert_eq!(panel(h.state()).map(|p| p.report.status), Some(Status::Amended));
    drop(h);

    // Now no folder takes it: the data folder is read-only as well.
    std::env::set_var("XDG_DATA_HOME", root.join("locked-data"));
    let _ = std::fs::remove_file(&fallback);
    let mut h = harness(&path);
    h.state_mut().reviewer = ReviewerDefaults { name: "T. Rainee".into(), role: Role::Trainee, site: "RLH".into() };
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| {
        panel(app).is_some_and(|p| !p.is_loading() && p.slide_hash().is_some())
    });
    click(&mut h, "Amend…");
    type_into(&mut h, "Comments", "Second look.");
    type_into(&mut h, "Reason", "addendum");
    click(&mut h, "Save amendment…");
    click(&mut h, "Save amendment");
    wait_until(&mut h, "the save to fail", |app| panel(app).is_some_and(|p| !p.is_saving() && p.save_failed()));
    let notice = panel(h.state()).and_then(|p| p.notice()).unwrap_or_else(|| panic!("no notice"));
    assert!(notice.is_problem() && notice.text.starts_with("Not saved"), "{notice:?}");
    assert!(h.query_by_label("Retry save").is_some() && h.query_by_label("Discard…").is_some());
    // Closing the window asks, and keeps the amendment.
    let ctx = h.ctx.clone();
    h.state_mut().request_close_window(&ctx);
    h.step();
    h.step();
    assert!(h.query_by_label("Report changes are not saved").is_some());
    // The dialog's button (the panel has one of the same name under it).
    let buttons: Vec<_> = h.get_all_by_label("Save elsewhere…").collect();
    buttons.last().unwrap_or_else(|| panic!("no Save elsewhere…")).click();
    for _ in 0..3 {
        h.step();
    }
    let elsewhere = root.join("home/elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap_or_else(|e| panic!("{e}"));
    // The folder field starts filled; replace its text.
    h.get_by_role_and_label(A11yRole::TextInput, "Folder").click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_role_and_label(A11yRole::TextInput, "Folder").type_text(&elsewhere.display().to_string());
    h.step();
    click(&mut h, "Save here");
    wait_until(&mut h, "the report to be saved elsewhere", |app| {
        panel(app).is_some_and(|p| !p.is_saving() && !p.has_unsaved())
    });
    let saved = Report::read(&elsewhere.join("H26-555.report.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(saved.comments, "Second look.");
    assert_eq!(saved.amendments.len(), 1, "{:?}", saved.amendments);
    assert_eq!(saved.reviewer.name, "Dr Ada Test");
}

/// Pick `option` in the combo box labelled `label` (by accessibility actions, so a combo scrolled
/// out of the panel's view is reached as a screen reader would).
fn choose(h: &mut H, label: &str, option: &str) {
    h.get_by_role_and_label(A11yRole::ComboBox, label).click_accesskit();
    h.step();
    h.step();
    h.get_by_label(option).click_accesskit();
    h.step();
    h.step();
}

#[test]
fn equity_of_service_is_entered_and_saved_with_the_draft() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let mut h = harness(&path);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| panel(app).is_some_and(|p| !p.is_loading()));
    h.step();
    let value = |h: &H, label: &str| {
        h.get_by_role_and_label(A11yRole::ComboBox, label).accesskit_node().value().unwrap_or_default().to_string()
    };
    assert_eq!(value(&h, "Ethnic category"), "not recorded");
    assert_eq!(value(&h, "IMD decile"), "not recorded");
    choose(&mut h, "Ethnic category", "N – Black or Black British: African");
    choose(&mut h, "IMD decile", "1 – most deprived");
    assert_eq!(value(&h, "Ethnic category"), "N – Black or Black British: African");
    let equity = |r: &Report| r.equity.as_ref().map(|e| (e.ethnic_category.clone(), e.imd_decile));
    assert_eq!(panel(h.state()).and_then(|p| equity(&p.report)), Some((Some("N".into()), Some(1))));
    // Autosaved like any other edit of a draft.
    wait_until(&mut h, "the draft with its equity to be saved", |app| {
        saved(app).is_some_and(|r| equity(&r) == Some((Some("N".into()), Some(1))))
    });
    // Back to "not recorded": both absent, and the block is gone from the file.
    choose(&mut h, "Ethnic category", "not recorded");
    choose(&mut h, "IMD decile", "not recorded");
    wait_until(&mut h, "the draft without equity to be saved", |app| {
        saved(app).is_some_and(|r| r.equity.is_none()) && panel(app).is_some_and(|p| !p.is_saving())
    });
    let file = panel(h.state()).and_then(|p| p.path.clone()).unwrap_or_default();
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(!text.contains("equity"), "{text}");
}

/// A registry that accepts connections and drops each after 1.5 s without a word: a publish run
/// on the UI thread would freeze a frame that long. Its port.
fn silent_registry() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1500));
                drop(stream);
            });
        }
    });
    port
}

/// With `WSIVIEW_REGISTRY` naming a registry that cannot be reached, finalising saves the report
/// beside the slide as ever, queues a copy in the data folder's registry-queue/, and the panel
/// says it is queued; no frame waits on the network. The test runs itself again with its own
/// data folder and environment (the variables are read at start-up, and other tests run at once).
#[test]
fn finalising_with_an_unreachable_registry_saves_queues_and_says_so() {
    const CHILD: &str = "WSIVIEW_TEST_QUEUE_ROOT";
    if let Some(dir) = std::env::var_os(CHILD) {
        return queued_while_unreachable(Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let port = silent_registry();
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut command = std::process::Command::new(exe);
    command.args([
        "finalising_with_an_unreachable_registry_saves_queues_and_says_so",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (name, _) in std::env::vars() {
        if name.starts_with("PG") {
            command.env_remove(name);
        }
    }
    let out = command
        .env(CHILD, tmp.path())
        .env("HOME", tmp.path())
        .env("XDG_DATA_HOME", tmp.path().join("data"))
        .env("WSIVIEW_REGISTRY", format!("postgresql://x@127.0.0.1:{port}/none?connect_timeout=2&sslmode=disable"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run the test again: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "the run with a registry failed:\n{text}");
}

fn queued_while_unreachable(root: &Path) {
    let slides = root.join("slides");
    std::fs::create_dir_all(&slides).unwrap_or_else(|e| panic!("{e}"));
    let path = slide(&slides);
    let mut h = harness(&path);
    assert!(h.state().publisher.is_configured(), "WSIVIEW_REGISTRY configures the registry");
    h.state_mut().reviewer =
        ReviewerDefaults { name: "Dr Ada Test".into(), role: Role::Consultant, site: "RLH".into() };
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load and the slide to be hashed", |app| {
        panel(app).is_some_and(|p| !p.is_loading() && p.slide_hash().is_some())
    });
    type_into(&mut h, "Received", "2026-11-20");
    type_into(&mut h, "Category", "B5b");
    type_into(&mut h, "Specimen", "Core biopsy, left breast");
    type_into(&mut h, "Microscopy", "Infiltrating carcinoma.");
    type_into(&mut h, "Diagnosis", "Invasive carcinoma, NST");
    click(&mut h, "Finalise…");
    click(&mut h, "Sign out");
    // Frames go on while the worker waits for the registry.
    let (start, mut slowest) = (Instant::now(), Duration::ZERO);
    let expected = "Queued: the registry cannot be reached (postgresql://x@127.0.0.1:";
    loop {
        let frame = Instant::now();
        h.step();
        slowest = slowest.max(frame.elapsed());
        let notice = panel(h.state()).and_then(|p| p.notice()).map(|n| n.text).unwrap_or_default();
        if notice.starts_with(expected) {
            assert!(notice.contains("/none); will retry") && notice.contains("Saved "), "{notice}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never said queued: {notice:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(slowest < Duration::from_millis(1000), "a frame took {slowest:?}: the UI waited on the registry");
    assert!(start.elapsed() >= Duration::from_millis(1400), "the registry was tried (it answers after 1.5 s)");
    // Saved locally as ever…
    let report = saved(h.state()).unwrap_or_else(|| panic!("no saved report"));
    assert_eq!(report.status, Status::Final);
    assert_eq!(panel(h.state()).and_then(|p| p.path.clone()), Some(slides.join("H26-555.report.json")));
    // …and queued: the same bytes, named by id and content.
    let queue = root.join("data/wsiview/registry-queue");
    let files = wsiview::registry::queue::queued_files(&queue).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 1, "{files:?}");
    let hash = wsiview::report::hash::sha256_bytes(&report.to_json());
    let name = files[0].file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    assert_eq!(name, format!("{}-{}.report.json", report.report_id.to_lowercase(), &hash[..12]));
    assert_eq!(std::fs::read(&files[0]).unwrap_or_default(), report.to_json());
    assert!(!panel(h.state()).is_some_and(|p| p.has_unsaved()), "nothing unsaved: the report is on disk");
    // An amendment is saved and queued too, beside the final version (nothing replaced).
    click(&mut h, "Amend…");
    type_into(&mut h, "Comments", "ER positive.");
    type_into(&mut h, "Reason", "ER status added");
    click(&mut h, "Save amendment…");
    click(&mut h, "Save amendment");
    wait_until(&mut h, "the amendment to be saved and queued", |app| {
        saved(app).is_some_and(|r| r.status == Status::Amended)
            && !app.publisher.is_running()
            && panel(app).and_then(|p| p.notice()).is_some_and(|n| n.text.starts_with(expected))
    });
    let amended = saved(h.state()).unwrap_or_else(|| panic!("no saved report"));
    let files = wsiview::registry::queue::queued_files(&queue).unwrap_or_else(|e| panic!("{e}"));
    let contents: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap_or_default()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(contents.contains(&report.to_json()) && contents.contains(&amended.to_json()));
}

/// File > Report registry…: a password is refused with the reason (and never kept); a registry
/// without one is checked on a worker, kept, and is what the settings file gets.
#[test]
fn the_registry_setting_refuses_a_password_and_keeps_none() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = slide(tmp.path());
    let mut h = harness(&path);
    click(&mut h, "File");
    click(&mut h, "Report registry…");
    type_into(&mut h, "Registry", "postgresql://site_rlh:s3cret@127.0.0.1:1/registry?sslmode=disable");
    click(&mut h, "Save");
    assert!(h.query_by_label_contains("a password is never kept in the settings").is_some());
    assert_eq!(h.state().publisher.setting, "", "nothing kept");
    h.get_by_role_and_label(A11yRole::TextInput, "Registry").click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    let good = "postgresql://site_rlh@127.0.0.1:1/registry?sslmode=disable";
    h.get_by_role_and_label(A11yRole::TextInput, "Registry").type_text(good);
    h.step();
    click(&mut h, "Save");
    wait_until(&mut h, "the setting to be checked and kept", |app| !app.publisher.dialog_open());
    assert_eq!(h.state().publisher.setting, good);
    assert!(h.state().publisher.is_configured());
    let persisted = h.state().persisted();
    assert_eq!(persisted.registry, good);
    let text = serde_json::to_string(&persisted).unwrap_or_else(|e| panic!("{e}"));
    assert!(!text.contains("s3cret"), "{text}");
    // A settings file edited by hand to hold a password is not trusted.
    let mut edited = persisted;
    edited.registry = "host=127.0.0.1 password=s3cret".into();
    h.state_mut().restore(edited);
    assert_eq!(h.state().publisher.setting, "");
}

/// A window with nothing open (the case is opened as `wsiview case` does).
fn empty_window() -> H {
    common::isolate_app_data();
    let app = ViewerApp::new(64 << 20);
    Harness::builder()
        .with_size([1400.0, 900.0])
        .with_step_dt(1.0 / 60.0)
        .build_ui_state(|ui, app: &mut ViewerApp| app.ui(ui), app)
}

fn open_paths(app: &ViewerApp) -> Vec<PathBuf> {
    app.tabs.iter().map(|t| t.path.clone()).collect()
}

fn current_case(app: &ViewerApp) -> String {
    app.current_case.as_ref().map(|c| c.id.clone()).unwrap_or_default()
}

/// Give the slide the keyboard (a click in the slide area, away from the panels).
fn click_slide(h: &mut H) {
    let rect = h.state().active_view().map(|v| v.view_rect()).unwrap_or_else(|| panic!("no slide view"));
    common::click_at(h, egui::pos2((rect.x + rect.width / 2.0) as f32, (rect.y + rect.height / 2.0) as f32));
}

#[test]
fn cases_open_together_and_next_previous_keeps_each_report() {
    use wsiview::report::case::{case_of, CaseState};
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path();
    let opts = SynthOptions { width: 1200, height: 900, mpp: 0.5, seed: 3, ..Default::default() };
    let a_he = synth(root, "H26-00001_A1_HE.tif", &opts);
    let a_ki67 = synth(root, "H26-00001_B1_Ki67.tif", &opts);
    let b = synth(root, "H26-00002_A1_HE.tif", &opts);
    std::fs::create_dir_all(root.join("H26-00003")).unwrap_or_else(|e| panic!("{e}"));
    let c = synth(&root.join("H26-00003"), "ER.tif", &opts);
    // Annotations made earlier on both slides of the first case: its report summarises the two.
    use wsiview::annotations::{Annotation, AnnotationClass, Geometry};
    let tumour = AnnotationClass::new("Tumour", [200, 0, 0]);
    let square = |x: f64| {
        Annotation::new(Geometry::Rectangle { x, y: 100.0, width: 100.0, height: 100.0 }).with_class(Some(&tumour))
    };
    for (slide, squares) in [(&a_he, vec![square(100.0)]), (&a_ki67, vec![square(100.0), square(300.0)])] {
        let bytes = wsiview::annotations::geojson::to_geojson_bytes(&squares, std::slice::from_ref(&tumour));
        std::fs::write(wsiview::annotations::store::sidecar_path(slide), bytes).unwrap_or_else(|e| panic!("{e}"));
    }

    // `wsiview case SLIDE`: the slides beside it with its case id, the case list of the folder.
    let case = case_of(&a_ki67, &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut h = empty_window();
    let ctx = h.ctx.clone();
    h.state_mut().start_case(case, &ctx);
    wait_until(&mut h, "the case's slides to open and the case list", |app| {
        app.tabs.len() == 2 && app.tabs.iter().all(|t| t.view().is_some()) && app.case_list.cases.len() == 3
    });
    assert_eq!(open_paths(h.state()), vec![a_he.clone(), a_ki67.clone()]);
    assert_eq!(current_case(h.state()), "H26-00001");
    assert!(h.state().show_report && h.state().show_cases);
    assert!(h.query_by_label_contains("H26-00001  ·  2 slides").is_some(), "the case list names the case");
    assert!(h.query_by_label_contains("H26-00003  ·  1 slide").is_some(), "a case folder is a case");
    wait_until(&mut h, "the report to start", |app| panel(app).is_some_and(|p| !p.is_loading()));
    assert_eq!(panel(h.state()).map(|p| p.report.case_id.clone()), Some("H26-00001".into()));

    wait_until(&mut h, "both slides' annotations", |app| {
        app.tabs.iter().filter_map(|t| t.view()).map(|v| v.annotations.doc.annotations().len()).sum::<usize>() == 3
    });
    for _ in 0..3 {
        h.step();
    }
    assert!(h.query_by_label_contains("Annotations (2 slides)").is_some(), "the panel sums the case's slides");

    // Write in the report, then Ctrl+Right: the report is saved, the next case replaces this one.
    type_into(&mut h, "Microscopy", "Sheets of atypical cells.");
    // Once the draft saves itself, the case list says so (without listing the folder again).
    wait_until(&mut h, "the case list to show the draft while the case is open", |app| {
        app.case_list.cases.iter().any(|c| c.id == "H26-00001" && c.state == CaseState::Draft)
    });
    // One report per case: with the Ki67 slide active, the panel still shows the case's report.
    h.state_mut().active = 1;
    for _ in 0..3 {
        h.step();
    }
    assert_eq!(h.state().report_tab(), 0);
    assert!(h.state().tabs[1].report.is_none(), "no second report for the case");
    assert!(h.query_all_by_value("Sheets of atypical cells.").next().is_some(), "the case's report is shown");
    h.state_mut().active = 0;
    h.step();
    click_slide(&mut h);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::ArrowRight);
    wait_until(&mut h, "the next case", |app| current_case(app) == "H26-00002" && app.tabs.len() == 1);
    assert_eq!(open_paths(h.state()), vec![b.clone()]);
    let saved_a = std::fs::read_to_string(root.join("H26-00001.report.json")).unwrap_or_else(|e| panic!("{e}"));
    assert!(saved_a.contains("Sheets of atypical cells."), "the left case's report was saved: {saved_a}");
    // Its annotations are the case's: three squares of 100 × 100 pixels at 0.5 µm, by slide too.
    let report = Report::from_json(saved_a.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let totals: Vec<(String, u64, Option<f64>)> =
        report.annotations.by_class.iter().map(|c| (c.class.clone(), c.count, c.area_um2)).collect();
    assert_eq!(totals, vec![("Tumour".to_string(), 3, Some(7500.0))]);
    let by_slide: Vec<(String, u64)> = report
        .annotations
        .by_slide
        .iter()
        .map(|s| (s.file_name.clone(), s.by_class.iter().map(|c| c.count).sum()))
        .collect();
    assert_eq!(by_slide, vec![("H26-00001_A1_HE.tif".to_string(), 1), ("H26-00001_B1_Ki67.tif".to_string(), 2)]);
    wait_until(&mut h, "the case list to show the draft", |app| {
        app.case_list.cases.iter().any(|c| c.id == "H26-00001" && c.state == CaseState::Draft)
    });

    // Page Down: the case folder; Page Up and Ctrl+Left go back, and the report comes back with it.
    wait_until(&mut h, "the slide", |app| app.active_view().is_some());
    click_slide(&mut h);
    h.key_press(egui::Key::PageDown);
    wait_until(&mut h, "the case folder", |app| current_case(app) == "H26-00003" && app.tabs.len() == 1);
    assert_eq!(open_paths(h.state()), vec![c.clone()]);
    wait_until(&mut h, "the slide", |app| app.active_view().is_some());
    click_slide(&mut h);
    h.key_press(egui::Key::PageDown);
    h.step();
    assert_eq!(current_case(h.state()), "H26-00003", "no case after the last");
    assert!(h.state().case_message.as_ref().is_some_and(|m| m.text.contains("last case")));
    h.key_press(egui::Key::PageUp);
    wait_until(&mut h, "the previous case", |app| current_case(app) == "H26-00002");
    wait_until(&mut h, "the slide", |app| app.active_view().is_some());
    click_slide(&mut h);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::ArrowLeft);
    wait_until(&mut h, "the first case again", |app| {
        current_case(app) == "H26-00001" && app.tabs.len() == 2 && app.tabs.iter().all(|t| t.view().is_some())
    });
    h.step();
    wait_until(&mut h, "its report", |app| panel(app).is_some_and(|p| !p.is_loading()));
    assert_eq!(panel(h.state()).map(|p| p.report.microscopy.clone()), Some("Sheets of atypical cells.".into()));

    // The filter: typing part of a case id and Enter opens it.
    type_into(&mut h, "Filter", "00003");
    h.key_press(egui::Key::Enter);
    wait_until(&mut h, "the filtered case", |app| current_case(app) == "H26-00003");
    assert_eq!(h.state().case_list.shown().len(), 1);
    settle(&mut h);
    drop(h);

    // The first slide opened alone, not as its case: its report is the case's, and saving it
    // changes that slide's part only — the other slide's part and the case's totals stay.
    let mut h = harness(&a_he);
    assert!(h.state().current_case.is_none());
    click(&mut h, "Report");
    wait_until(&mut h, "the case's report", |app| panel(app).is_some_and(|p| !p.is_loading()));
    assert_eq!(panel(h.state()).map(|p| p.report.microscopy.clone()), Some("Sheets of atypical cells.".into()));
    type_into(&mut h, "Comments", "Seen alone.");
    let alone =
        wait_for_saved(&mut h, 10, |r| r.comments == "Seen alone.").unwrap_or_else(|| panic!("no report saved"));
    assert_eq!(alone.comments, "Seen alone.", "the draft was not saved within 10 s");
    assert_eq!(alone.annotations.by_slide, report.annotations.by_slide);
    assert_eq!(alone.annotations.by_class, report.annotations.by_class);
    settle(&mut h);
    drop(h);

    // The second slide opened alone finds the same report (made on the first): a case never
    // gets a second report, and the first slide's part stays.
    let mut h = harness(&a_ki67);
    click(&mut h, "Report");
    wait_until(&mut h, "the case's report", |app| panel(app).is_some_and(|p| !p.is_loading()));
    assert_eq!(panel(h.state()).and_then(|p| p.path.clone()), Some(root.join("H26-00001.report.json")));
    assert_eq!(panel(h.state()).map(|p| p.report.comments.clone()), Some("Seen alone.".into()));
    type_into(&mut h, "Comments", " Ki67 seen.");
    let second =
        wait_for_saved(&mut h, 10, |r| r.comments.contains("Ki67")).unwrap_or_else(|| panic!("no report saved"));
    assert!(second.comments.contains("Ki67 seen."), "the draft was not saved within 10 s");
    assert_eq!(second.annotations.by_slide, report.annotations.by_slide);
    let reports: Vec<String> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("H26-00001") && n.ends_with(".report.json"))
        .collect();
    assert_eq!(reports, vec!["H26-00001.report.json".to_string()], "one report for the case");
    settle(&mut h);
}

#[test]
fn a_case_slide_that_cannot_be_opened_is_named_by_its_report() {
    use wsiview::report::case::case_of;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path();
    let opts = SynthOptions { width: 1200, height: 900, mpp: 0.5, seed: 3, ..Default::default() };
    let good = synth(root, "H26-00009_A1_HE.tif", &opts);
    // The second slide of the case is cut short (a copy that stopped halfway).
    let bytes = std::fs::read(&good).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("H26-00009_B1_CK.tif"), &bytes[..1000]).unwrap_or_else(|e| panic!("{e}"));
    let case = case_of(&good, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(case.slides.len(), 2);
    let mut h = empty_window();
    let ctx = h.ctx.clone();
    h.state_mut().start_case(case, &ctx);
    wait_until(&mut h, "the good slide's report", |app| {
        app.tabs.len() == 2 && app.tabs[0].view().is_some() && panel(app).is_some_and(|p| !p.is_loading())
    });
    let line = "H26-00009_B1_CK.tif could not be opened: its annotations are not in this report";
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) && h.query_by_label_contains(line).is_none() {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(h.query_by_label_contains(line).is_some(), "the report panel names the slide it could not count");
    settle(&mut h);
}

#[test]
fn slides_without_an_accession_number_never_share_a_report() {
    // "slide_001" and "slide_002" both give the case id "slide": not a case, two slides.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path();
    let opts = SynthOptions { width: 1200, height: 900, mpp: 0.5, seed: 3, ..Default::default() };
    synth(root, "slide_001.tif", &opts);
    let second = synth(root, "slide_002.tif", &opts);
    let mut other = Report { case_id: "slide".into(), site: "RLH".into(), ..Report::default() };
    other.slide.file_name = "slide_001.tif".into();
    other.microscopy = "The other slide's report.".into();
    std::fs::write(root.join("slide.report.json"), other.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let mut h = harness(&second);
    click(&mut h, "Report");
    wait_until(&mut h, "the report to load", |app| panel(app).is_some_and(|p| !p.is_loading()));
    let p = panel(h.state()).unwrap_or_else(|| panic!("no panel"));
    assert_eq!((p.path.clone(), p.report.microscopy.clone()), (None, String::new()), "a new report for this slide");
    settle(&mut h);
}
