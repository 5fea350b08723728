//! Where a slide's report lives and how it is written: `CASE.report.json` and `CASE.report.html`
//! in the slide's folder (or the app data folder when that is read-only), replaced atomically.
//! Everything here reads or writes files: call it from a worker, never from the UI thread.

use std::path::{Path, PathBuf};

use super::error::{ReportError, SaveError};
use super::html::{report_html, SlidePicture};
use super::schema::{read_report_bytes, ClassSummary, Report, REPORT_SUFFIX};
use crate::annotations::table::{class_totals, measure_all};
use crate::annotations::{Annotation, AnnotationClass, PixelSize};
use crate::files::{app_data_dir, folder_writable, write_atomic};
use crate::Slide;

/// The reports folder used when the slide's folder is read-only.
pub fn fallback_dir() -> Option<PathBuf> {
    app_data_dir().map(|d| d.join("reports"))
}

/// Whether a slide "path" is a remote slide's (redacted) URL: its reports live only in the
/// fallback folder.
fn is_remote(slide: &Path) -> bool {
    slide.to_str().is_some_and(crate::remote::is_url)
}

/// Folders searched for a slide's report: its own, then the fallback (only the fallback for a
/// remote slide).
fn search_dirs(slide: &Path) -> Vec<PathBuf> {
    if is_remote(slide) {
        return fallback_dir().into_iter().collect();
    }
    let own = slide.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    std::iter::once(own).chain(fallback_dir()).collect()
}

fn file_name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The newest valid report in `dirs` whose `slide.file_name` is this slide's file name, with
/// where it was read and the reports that could not be read (named, for a warning).
pub fn find_for_slide_in(slide: &Path, dirs: &[PathBuf]) -> (Option<(PathBuf, Report)>, Vec<String>) {
    let wanted = file_name_of(slide);
    let stem = wanted.split('.').next().unwrap_or_default();
    find_ranked_in(dirs, &[stem], |value| (value.pointer("/slide/file_name")?.as_str()? == wanted).then_some(0))
}

/// The valid report in `dirs` of the best (lowest) rank `rank` gives its JSON (`None`: not
/// wanted), the newest of that rank, with where it was read; and the reports that could not be
/// read whose file names start with one of `stems`, one message each. A file without
/// `slide.file_name` counts as unreadable.
fn find_ranked_in(
    dirs: &[PathBuf],
    stems: &[&str],
    rank: impl Fn(&serde_json::Value) -> Option<u8>,
) -> (Option<(PathBuf, Report)>, Vec<String>) {
    let mut found: Option<(u8, std::time::SystemTime, PathBuf, Report)> = None;
    let mut problems = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if !file_name_of(&path).ends_with(REPORT_SUFFIX) || !path.is_file() {
                continue;
            }
            // Cheap checks first: most reports in a shared folder are about other slides.
            if entry.metadata().is_ok_and(|m| m.len() > crate::Limits::DEFAULT.report_bytes) {
                continue;
            }
            let Ok(bytes) = read_report_bytes(&path) else { continue };
            let value = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .filter(|v| v.pointer("/slide/file_name").and_then(|n| n.as_str()).is_some());
            let this_rank = match &value {
                Some(value) => match rank(value) {
                    Some(r) => r,
                    None => continue,
                },
                // Not readable JSON: only worth a warning if its name says it is about one of ours.
                None => {
                    let name = file_name_of(&path);
                    if stems.iter().any(|s| name.starts_with(s)) {
                        problems.push(format!("{}: not a readable report", path.display()));
                    }
                    continue;
                }
            };
            match Report::from_json(&bytes) {
                Ok(report) => {
                    let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                    let better =
                        found.as_ref().is_none_or(|(r, t, _, _)| this_rank < *r || (this_rank == *r && modified > *t));
                    if better {
                        found = Some((this_rank, modified, path, report));
                    }
                }
                Err(problem) => problems.push(ReportError::Invalid { path, problem }.to_string()),
            }
        }
    }
    (found.map(|(_, _, p, r)| (p, r)), problems)
}

/// The newest valid report about `slide` (matched by `slide.file_name`) in the slide's folder or
/// the app data folder's `reports/`, with its path, and the unreadable or invalid reports met on
/// the way, one message each (each names its file). Reads files: call from a worker.
pub fn find_for_slide(slide: &Path) -> (Option<(PathBuf, Report)>, Vec<String>) {
    find_for_slide_in(slide, &search_dirs(slide))
}

/// The report of a case, for `slide`, one of its `slides`: the newest about `slide`; else the
/// newest about another of the case's slides (the report was begun while `slide` was not open);
/// else the newest naming case id `case_id` (trimmed). Searched in the folders of all the case's
/// slides and the app data folder's `reports/`; problems as [`find_for_slide`]. Reads files:
/// call from a worker.
pub fn find_for_case(slide: &Path, slides: &[PathBuf], case_id: &str) -> (Option<(PathBuf, Report)>, Vec<String>) {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in std::iter::once(slide).chain(slides.iter().map(PathBuf::as_path)).flat_map(search_dirs) {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let wanted = file_name_of(slide);
    let others: Vec<String> = slides.iter().map(|s| file_name_of(s)).filter(|n| *n != wanted).collect();
    let stems: Vec<&str> = std::iter::once(wanted.as_str())
        .chain(others.iter().map(String::as_str))
        .map(|n| n.split('.').next().unwrap_or_default())
        .collect();
    let case_id = case_id.trim();
    find_ranked_in(&dirs, &stems, |value| {
        let name = value.pointer("/slide/file_name")?.as_str()?;
        let named_case = value.get("case_id").and_then(|c| c.as_str()).map(str::trim);
        if name == wanted {
            Some(0)
        } else if others.iter().any(|o| o == name) {
            Some(1)
        } else if !case_id.is_empty() && named_case == Some(case_id) {
            Some(2)
        } else {
            None
        }
    })
}

/// Fill the slide's facts (all but the hash) into a report.
pub fn describe_slide(report: &mut Report, slide: &Slide) {
    report.slide.file_name = file_name_of(slide.path());
    // A remote slide's path is its redacted URL (no credentials, no query string).
    report.slide.url = is_remote(slide.path()).then(|| slide.path().to_string_lossy().into_owned());
    if let Some(l0) = slide.levels().first() {
        report.slide.width = l0.width;
        report.slide.height = l0.height;
    }
    let p = slide.properties();
    report.slide.mpp_x = p.mpp_x;
    report.slide.mpp_y = p.mpp_y;
    report.slide.vendor = p.vendor.clone();
    let uid = |key: &str| p.values.get(key).filter(|u| crate::remote::dicomweb::valid_uid(u)).cloned();
    let dicom = slide.format_name() == "dicom";
    report.slide.study_instance_uid = uid("dicom.StudyInstanceUID").filter(|_| dicom);
    report.slide.series_instance_uid = uid("dicom.SeriesInstanceUID").filter(|_| dicom);
}

/// The per-class summary of a slide's annotations: count, area in µm² and line length in µm
/// (null when the pixel size is unknown).
pub fn summarise_annotations(
    annotations: &[impl AsRef<Annotation>],
    pixel_size: Option<PixelSize>,
) -> Vec<ClassSummary> {
    let rows = measure_all(annotations, pixel_size);
    class_totals(&rows)
        .into_iter()
        .map(|t| ClassSummary {
            class: t.class.unwrap_or_default(),
            count: t.count as u64,
            area_um2: pixel_size.map(|_| t.area),
            length_um: pixel_size.map(|_| t.length),
            extra: Default::default(),
        })
        .collect()
}

/// Everything needed to write a report's two files.
#[derive(Clone)]
pub struct SaveRequest {
    /// The report to write, as it is (saving neither checks nor changes it).
    pub report: Report,
    /// The slide, for the thumbnail and the view snapshot (read here, on the worker).
    pub slide: Option<std::sync::Arc<Slide>>,
    /// Level-0 rectangle [x, y, w, h] of the view being reviewed.
    pub view_region: Option<[f64; 4]>,
    /// The slide's annotations, drawn over the pictures in the HTML page.
    pub annotations: Vec<std::sync::Arc<Annotation>>,
    /// The class list, for the annotations' colours and the page's legend.
    pub classes: Vec<AnnotationClass>,
    /// Where the report was read from or last saved, if anywhere.
    pub previous: Option<PathBuf>,
}

/// Where a report is written: beside the slide when its folder is writable, else the fallback;
/// always the fallback for a remote slide (an empty path, which no save accepts, when there is no
/// app data folder).
pub fn report_dir(slide: &Path) -> PathBuf {
    if is_remote(slide) {
        return fallback_dir().unwrap_or_default();
    }
    let own = slide.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    match fallback_dir() {
        Some(fallback) if !folder_writable(&own) => fallback,
        _ => own,
    }
}

/// Longest side of the view snapshot in the HTML page, in pixels.
const VIEW_PICTURE_SIZE: f64 = 1600.0;

/// The snapshot of `region` (level 0), at most 1,600 pixels on its longest side, as JPEG (a PNG
/// of tissue this size is several megabytes).
fn view_picture(slide: &Slide, region: [f64; 4]) -> Option<SlidePicture> {
    // Only the part of the view that shows the slide (a zoomed-out view has margins around it).
    let l0 = slide.levels().first()?;
    let (x, y) = (region[0].max(0.0), region[1].max(0.0));
    let w = (region[0] + region[2]).min(l0.width as f64) - x;
    let h = (region[1] + region[3]).min(l0.height as f64) - y;
    let region = [x, y, w, h];
    if !(w >= 1.0 && h >= 1.0) {
        return None;
    }
    let downsample = (w.max(h) / VIEW_PICTURE_SIZE).max(1.0);
    let level = slide.best_level_for_downsample(downsample);
    let ds = slide.levels().get(level)?.downsample;
    let (pw, ph) = ((w / ds).round().max(1.0), (h / ds).round().max(1.0));
    // A slide without a fitting level would need a huge read: leave the snapshot out instead.
    if pw * ph > 16e6 {
        return None;
    }
    let image = slide.read_region(level, x.round() as i64, y.round() as i64, pw as u32, ph as u32).ok()?;
    let scale = (VIEW_PICTURE_SIZE / pw.max(ph)).min(1.0);
    let image = if scale < 1.0 {
        let (tw, th) = (((pw * scale).round() as u32).max(1), ((ph * scale).round() as u32).max(1));
        image::imageops::resize(&image, tw, th, image::imageops::FilterType::Triangle)
    } else {
        image
    };
    SlidePicture::jpeg(&image, region)
}

/// The whole slide, at most 1,024 pixels on its longest side, as JPEG or PNG, whichever is smaller.
fn thumbnail_picture(slide: &Slide) -> Option<SlidePicture> {
    let image = slide.thumbnail(1024).ok()?;
    let l0 = slide.levels().first()?;
    SlidePicture::smallest(&image, [0.0, 0.0, l0.width as f64, l0.height as f64])
}

/// The report id in a report file, if it is one.
fn report_id_in(path: &Path) -> Option<String> {
    let bytes = read_report_bytes(path).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("report_id")?.as_str().map(str::to_string)
}

/// `CASE.report.json` in `dir` — unless that file holds another report (a case has several
/// slides, each with its report): then `CASE_SLIDE.report.json`, then with the report id too.
/// Never the path of another report: a name not yet taken is claimed by creating the file
/// (`create_new`), so two reports of one case saved at the same moment (moving to the next case
/// saves them all) cannot both take it; the claim is an empty file until the report replaces it.
/// Returns the path and whether it was claimed now (to remove if the write fails).
fn report_path_in(dir: &Path, report: &Report, previous: Option<&Path>) -> (PathBuf, bool) {
    use super::schema::safe_file_stem;
    let case = safe_file_stem(&report.case_id);
    let slide_stem = safe_file_stem(report.slide.file_name.split('.').next().unwrap_or_default());
    let id_stem: String = report.report_id.chars().take(8).collect();
    let candidates = [
        format!("{case}{REPORT_SUFFIX}"),
        format!("{case}_{slide_stem}{REPORT_SUFFIX}"),
        format!("{case}_{slide_stem}_{id_stem}{REPORT_SUFFIX}"),
        format!("{case}_{}{REPORT_SUFFIX}", report.report_id),
    ];
    let ours = |path: &Path| report_id_in(path).is_some_and(|id| id.eq_ignore_ascii_case(&report.report_id));
    for path in candidates.iter().map(|name| dir.join(name)) {
        // Ours already (by its id; the file we wrote last time, unless another report has
        // since been written there).
        if path.exists() && (ours(&path) || (Some(path.as_path()) == previous && report_id_in(&path).is_none())) {
            return (path, false);
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return (path, true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // Not writable here: the write fails with the reason, and the fallback is tried.
            Err(_) => return (path, false),
        }
    }
    (dir.join(format!("{case}_{}{REPORT_SUFFIX}", report.report_id)), false)
}

/// What a save wrote.
#[derive(Debug)]
pub struct Saved {
    /// `CASE.report.json` as written.
    pub json: PathBuf,
    /// `CASE.report.html` beside it.
    pub html: PathBuf,
    /// The report as saved.
    pub report: Report,
    /// Set when the report could not be written where it was wanted and went to the fallback
    /// folder instead: why the first place failed.
    pub fell_back: Option<SaveError>,
}

/// Save in `preferred` (the folder the report was read from, or the slide's); when that fails
/// (read-only, full, gone), in the app data folder's `reports/` instead, as annotations do. An
/// error only when neither could be written, naming both failures.
pub fn save_with_fallback(preferred: &Path, request: SaveRequest) -> Result<Saved, SaveError> {
    save_with_fallback_in(preferred, fallback_dir().as_deref(), request)
}

/// [`save_with_fallback`] with the fallback folder given (tests use a temporary one).
pub fn save_with_fallback_in(
    preferred: &Path,
    fallback: Option<&Path>,
    request: SaveRequest,
) -> Result<Saved, SaveError> {
    let first = match fallback {
        Some(f) if f != preferred => save_in(preferred, request.clone()),
        _ => return save_in(preferred, request),
    };
    let first_error = match first {
        Ok(saved) => return Ok(saved),
        Err(e) => e,
    };
    let Some(fallback) = fallback else { return Err(first_error) };
    match save_in(fallback, request) {
        Ok(mut saved) => {
            saved.fell_back = Some(first_error);
            Ok(saved)
        }
        Err(second) => Err(SaveError::Nowhere { first: Box::new(first_error), fallback: Box::new(second) }),
    }
}

/// Write `CASE.report.json` then `CASE.report.html` in `dir`, atomically. A draft renamed by a
/// new case id replaces its old file.
pub fn save_in(dir: &Path, request: SaveRequest) -> Result<Saved, SaveError> {
    let SaveRequest { report, slide, view_region, annotations, classes, previous } = request;
    std::fs::create_dir_all(dir).map_err(|error| SaveError::CreateFolder { path: dir.to_path_buf(), error })?;
    let write = |path: &Path, bytes: &[u8]| {
        write_atomic(path, bytes).map_err(|error| SaveError::Write { path: path.to_path_buf(), error })
    };
    let (json, claimed) = report_path_in(dir, &report, previous.as_deref());
    let html = json.with_file_name(file_name_of(&json).replace(REPORT_SUFFIX, ".report.html"));
    if let Err(e) = write(&json, &report.to_json()) {
        if claimed {
            let _ = std::fs::remove_file(&json);
        }
        return Err(e);
    }
    let (thumbnail, view) = match &slide {
        Some(s) => (thumbnail_picture(s), view_region.and_then(|r| view_picture(s, r))),
        None => (None, None),
    };
    let refs: Vec<&Annotation> = annotations.iter().map(AsRef::as_ref).collect();
    let page = report_html(&report, thumbnail.as_ref(), view.as_ref(), &refs, &classes);
    write(&html, page.as_bytes())?;
    // Only in the same folder: a report written elsewhere (the fallback) never deletes the copy
    // in the slide's folder, which colleagues and `consolidate` read.
    if let Some(old) = previous.filter(|p| *p != json && p.parent() == json.parent()) {
        // Only the same report under its old name is removed.
        let same = Report::read(&old).is_ok_and(|r| r.report_id == report.report_id);
        if same {
            let _ = std::fs::remove_file(&old);
            let _ = std::fs::remove_file(old.with_file_name(file_name_of(&old).replace(REPORT_SUFFIX, ".report.html")));
        }
    }
    Ok(Saved { json, html, report, fell_back: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_of_one_case_saved_at_once_never_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let reports: Vec<Report> = (0..6)
            .map(|i| {
                let mut r = Report { case_id: "H26-1".into(), site: "RLH".into(), ..Report::default() };
                r.slide.file_name = format!("H26-1_{}.svs", i % 2);
                r
            })
            .collect();
        let dir_path = dir.path().to_path_buf();
        let saved: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = reports
                .iter()
                .map(|r| {
                    let request = SaveRequest {
                        report: r.clone(),
                        slide: None,
                        view_region: None,
                        annotations: Vec::new(),
                        classes: Vec::new(),
                        previous: None,
                    };
                    let dir = dir_path.clone();
                    s.spawn(move || save_in(&dir, request).map(|saved| saved.json))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
        });
        let mut unique = saved.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 6, "{saved:?}");
        for (r, path) in reports.iter().zip(&saved) {
            assert_eq!(Report::read(path).unwrap().report_id, r.report_id, "{}", path.display());
        }
    }

    #[test]
    fn a_remote_slide_has_its_reports_in_the_fallback_folder_only() {
        let url = Path::new("https://slides.example/cases/a.svs");
        assert_eq!(search_dirs(url), fallback_dir().into_iter().collect::<Vec<_>>());
        assert_eq!(report_dir(url), fallback_dir().unwrap_or_default());
        assert!(!report_dir(url).starts_with("https:"));
        let local = Path::new("/data/cases/a.svs");
        assert_eq!(search_dirs(local)[0], Path::new("/data/cases"));
    }

    #[test]
    fn found_by_slide_name_newest_first_and_renamed_drafts_replace_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let slide = dir.path().join("case 7.svs");
        let mut report = Report { case_id: "A1".into(), site: "RLH".into(), ..Report::default() };
        report.slide.file_name = "case 7.svs".into();
        let mut other = Report { case_id: "B2".into(), site: "RLH".into(), ..Report::default() };
        other.slide.file_name = "other.svs".into();
        std::fs::write(dir.path().join("junk.report.json"), "{").unwrap();
        let request = |r: &Report, previous| SaveRequest {
            report: r.clone(),
            slide: None,
            view_region: None,
            annotations: vec![],
            classes: vec![],
            previous,
        };
        save_in(dir.path(), request(&other, None)).unwrap();
        let first = save_in(dir.path(), request(&report, None)).unwrap();
        assert!(first.json.ends_with("A1.report.json") && first.html.ends_with("A1.report.html"));
        let dirs = [dir.path().to_path_buf()];
        let (found, _) = find_for_slide_in(&slide, &dirs);
        assert_eq!(found.map(|(_, r)| r.report_id), Some(report.report_id.clone()));
        // The case id changes while a draft: the file follows it.
        report.case_id = "A1-corrected".into();
        let second = save_in(dir.path(), request(&report, Some(first.json.clone()))).unwrap();
        assert!(!first.json.exists() && !first.html.exists(), "the old name is gone");
        let (found, _) = find_for_slide_in(&slide, &dirs);
        assert_eq!(found.map(|(p, r)| (p, r.case_id)), Some((second.json, "A1-corrected".into())));
        assert!(dir.path().join("B2.report.json").exists(), "other slides' reports are untouched");

        // A second slide of the same case never overwrites the first slide's report.
        let mut second_slide = Report { case_id: "B2".into(), site: "RLH".into(), ..Report::default() };
        second_slide.slide.file_name = "B2 level 2.svs".into();
        let saved = save_in(dir.path(), request(&second_slide, None)).unwrap();
        assert!(saved.json.ends_with("B2_B2_level_2.report.json"), "{}", saved.json.display());
        assert!(saved.html.ends_with("B2_B2_level_2.report.html"));
        assert_eq!(Report::read(&dir.path().join("B2.report.json")).unwrap().report_id, other.report_id);
        let again = save_in(dir.path(), request(&second_slide, Some(saved.json.clone()))).unwrap();
        assert_eq!(again.json, saved.json, "saving again keeps its name");
    }

    #[test]
    fn a_save_that_fails_falls_back_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the folder should be: no user (root included) can write in it.
        let blocked = dir.path().join("not-a-folder");
        std::fs::write(&blocked, b"x").unwrap();
        let fallback = dir.path().join("data/reports");
        let report = Report { case_id: "C9".into(), site: "RLH".into(), ..Report::default() };
        let request = || SaveRequest {
            report: report.clone(),
            slide: None,
            view_region: None,
            annotations: vec![],
            classes: vec![],
            previous: None,
        };
        let saved = save_with_fallback_in(&blocked, Some(&fallback), request()).unwrap();
        assert_eq!(saved.json, fallback.join("C9.report.json"));
        assert!(
            saved.fell_back.as_ref().is_some_and(|why| why.to_string().contains("not-a-folder")),
            "{:?}",
            saved.fell_back
        );
        assert_eq!(Report::read(&saved.json).unwrap().report_id, report.report_id);
        // Writable where wanted: no fallback.
        let saved = save_with_fallback_in(dir.path(), Some(&fallback), request()).unwrap();
        assert!(saved.fell_back.is_none() && saved.json.starts_with(dir.path()) && !saved.json.starts_with(&fallback));
        // A save that lands in the fallback never removes the copy in the slide's folder.
        let beside = saved.json.clone();
        let moved = save_with_fallback_in(
            &blocked,
            Some(&fallback),
            SaveRequest { previous: Some(beside.clone()), ..request() },
        )
        .unwrap();
        assert!(moved.json.starts_with(&fallback) && beside.exists(), "{}", moved.json.display());
        // Neither place: one error naming both.
        let blocked_too = dir.path().join("also-a-file");
        std::fs::write(&blocked_too, b"x").unwrap();
        let err = save_with_fallback_in(&blocked, Some(&blocked_too), request()).unwrap_err().to_string();
        assert!(err.contains("not-a-folder") && err.contains("also-a-file"), "{err}");
    }

    #[test]
    fn a_page_with_a_1600_pixel_view_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.tif");
        crate::synth::generate(&path, &crate::synth::SynthOptions::default()).unwrap();
        let slide = std::sync::Arc::new(Slide::open(&path).unwrap());
        let mut report = Report { case_id: "P1".into(), ..Report::default() };
        describe_slide(&mut report, &slide);
        // 6,400 × 4,000 level-0 pixels: read at downsample 4, a 1,600 × 1,000 snapshot.
        let request = SaveRequest {
            report,
            slide: Some(slide),
            view_region: Some([1000.0, 1000.0, 6400.0, 4000.0]),
            annotations: vec![],
            classes: vec![],
            previous: None,
        };
        let saved = save_in(dir.path(), request).unwrap();
        let page = std::fs::read_to_string(&saved.html).unwrap();
        assert!(page.contains("x 1000–7400, y 1000–5000"), "the view is on the page");
        assert!(page.contains("data:image/jpeg;base64,/9j/"), "as JPEG");
        // It was 5.2 MB with PNG pictures.
        assert!(page.len() < 1_000_000, "the page is {} bytes", page.len());
        eprintln!("page with a 1600-px view: {} bytes", page.len());
    }
}
