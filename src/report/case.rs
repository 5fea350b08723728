//! Cases: the slides that belong together, found in folders, with the state of their report.
//!
//! **The case id rule** (used by the case list, `wsiview case` and the report's default case id):
//! a slide's case id is the accession number its file name starts with — one to four letters, an
//! optional `-` or space, a two- or four-digit year, a `-`, `/` or space, then up to eight digits
//! (`H26-01234`, `S2024-118`, `NP26 77`) — so `H26-01234_A1_HE.svs` and `H26-01234 B2 Ki67.ndpi`
//! are one case. A name without one is its own case id up to the first `_` or space
//! (`CMU-1_HE.svs` → `CMU-1`), or its whole stem. A **case folder** is a folder whose own name
//! starts with an accession number: all the slides in it are one case of that id, whatever the
//! slides are called (`H26-01234/HE.svs`, `H26-01234/Ki67.svs`).
//!
//! A slide here is a slide file (by its name ending, [`crate::slide::SLIDE_EXTENSIONS`]) or a DICOM series:
//! the `.dcm` files of one folder count as one slide (the folder, opened as a series).
//!
//! Everything here reads folders: call it from a worker, never from the UI thread. Walks are
//! bounded ([`MAX_FOLDERS`], [`MAX_ENTRIES`], [`MAX_DEPTH`]) and say when they stopped early.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::schema::{read_report_bytes, Status, REPORT_SUFFIX};
use crate::slide::is_slide_name;

/// Most folders a case listing walks.
pub const MAX_FOLDERS: usize = 20_000;
/// Most folder entries a case listing reads, all folders together.
pub const MAX_ENTRIES: usize = 500_000;
/// Deepest folder level below the root a case listing walks.
pub const MAX_DEPTH: usize = 8;

fn is_dicom_name(name: &str) -> bool {
    Path::new(name).extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("dcm"))
}

/// The accession number `text` starts with (see the module docs), if any.
pub fn accession_prefix(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_alphabetic() {
        i += 1;
    }
    if !(1..=4).contains(&i) {
        return None;
    }
    if i < b.len() && (b[i] == b'-' || b[i] == b' ') {
        i += 1;
    }
    let year = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i - year != 2 && i - year != 4 {
        return None;
    }
    if i >= b.len() || !matches!(b[i], b'-' | b'/' | b' ') {
        return None;
    }
    i += 1;
    let number = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == number || i - number > 8 {
        return None;
    }
    // A date ("2023-05-01", "2024/03/07") is not an accession number.
    if i + 1 < b.len() && matches!(b[i], b'-' | b'/') && b[i + 1].is_ascii_digit() {
        return None;
    }
    Some(&text[..i])
}

/// A slide file's (or folder's) case id by the rule in the module docs; `name` is a file name,
/// its ending is ignored.
pub fn case_id_of(name: &str) -> String {
    let stem = name.split('.').next().unwrap_or(name).trim();
    if let Some(accession) = accession_prefix(stem) {
        return accession.to_string();
    }
    let first = stem.split(['_', ' ']).next().unwrap_or(stem);
    if first.is_empty() { stem } else { first }.to_string()
}

/// The case id of the slide at `path` (a file, a DICOM series folder or a redacted URL) without
/// reading anything: its folder's accession number when the folder is a case folder, else
/// [`case_id_of`] its name. What a new report's case id starts as.
pub fn case_id_for_slide(path: &Path) -> String {
    let folder = path.parent().map(name_of).unwrap_or_default();
    if let Some(id) = accession_prefix(&folder) {
        return id.to_string();
    }
    case_id_of(&name_of(path))
}

/// How far a case's report has got: the most advanced state among the reports that name the
/// case (`none` when there is none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseState {
    /// No report names the case.
    #[default]
    None,
    /// A draft, not signed out.
    Draft,
    /// Signed out.
    Final,
    /// Signed out and changed since.
    Amended,
}

impl CaseState {
    /// "none", "draft", "final", "amended".
    pub fn name(self) -> &'static str {
        match self {
            CaseState::None => "none",
            CaseState::Draft => "draft",
            CaseState::Final => "final",
            CaseState::Amended => "amended",
        }
    }

    /// The state a report of `status` gives its case.
    pub fn of(status: Status) -> CaseState {
        match status {
            Status::Draft => CaseState::Draft,
            Status::Final => CaseState::Final,
            Status::Amended => CaseState::Amended,
        }
    }
}

/// The report state of each case id among `rows` (e.g. a registry's current reports of one
/// site): the most advanced of its reports. Case ids are trimmed; empty ones are left out.
pub fn states_of_rows(rows: &[super::consolidate::ReportRow]) -> std::collections::HashMap<String, CaseState> {
    states_of(rows.iter().map(|row| (row.case_id.as_str(), row.status)))
}

/// The report state of each case id among `(case id, status)` pairs of reports: the most
/// advanced. Case ids are trimmed; empty ones are left out.
pub fn states_of<'a>(
    reports: impl IntoIterator<Item = (&'a str, Status)>,
) -> std::collections::HashMap<String, CaseState> {
    let mut states = std::collections::HashMap::new();
    for (case_id, status) in reports {
        let id = case_id.trim();
        if id.is_empty() {
            continue;
        }
        let state = states.entry(id.to_string()).or_insert(CaseState::None);
        *state = (*state).max(CaseState::of(status));
    }
    states
}

/// One case: its id, the folder it was found in, its slides (sorted by name) and its report state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The case id ([`case_id_of`], or a case folder's accession number).
    pub id: String,
    /// The folder holding its slides.
    pub folder: PathBuf,
    /// Slide files, or DICOM series folders (and a `.dcm` file standing for its folder's
    /// series), sorted by name.
    pub slides: Vec<PathBuf>,
    /// How far its report has got.
    pub state: CaseState,
}

/// What a folder tree holds: its cases, sorted by id then folder, and whether the walk stopped
/// at a bound.
#[derive(Clone, Debug, Default)]
pub struct CaseListing {
    /// The cases found.
    pub cases: Vec<Case>,
    /// The walk stopped at [`MAX_FOLDERS`], [`MAX_ENTRIES`] or [`MAX_DEPTH`]: say so beside the list.
    pub truncated: bool,
    /// Folders that could not be read, one line each ("/x/y: permission denied"), at most 10.
    pub problems: Vec<String>,
}

/// One folder's direct contents, as far as cases go.
#[derive(Default)]
struct FolderContents {
    /// Slide files other than DICOM instances, sorted.
    slides: Vec<PathBuf>,
    /// The first `.dcm` file (by name), when the folder holds any.
    first_dicom: Option<PathBuf>,
    /// Subfolders, sorted.
    folders: Vec<PathBuf>,
    /// `*.report.json` files.
    reports: Vec<PathBuf>,
}

fn read_folder(dir: &Path, entries_left: &mut usize) -> std::io::Result<(FolderContents, bool)> {
    let mut c = FolderContents::default();
    let mut truncated = false;
    for entry in std::fs::read_dir(dir)? {
        if *entries_left == 0 {
            truncated = true;
            break;
        }
        *entries_left -= 1;
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Symbolic links are followed for files (a case folder may link slides from an
        // archive), never for folders (no cycles).
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            c.folders.push(path);
        } else if name.ends_with(REPORT_SUFFIX) {
            c.reports.push(path);
        } else if is_slide_name(&name) && (kind.is_file() || path.is_file()) {
            if is_dicom_name(&name) {
                if c.first_dicom.as_ref().is_none_or(|f| path < *f) {
                    c.first_dicom = Some(path);
                }
            } else {
                c.slides.push(path);
            }
        }
    }
    c.slides.sort();
    c.folders.sort();
    Ok((c, truncated))
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Whether `dir` directly holds a `.dcm` file (a DICOM series folder, counted as one slide).
fn is_series_folder(dir: &Path, entries_left: &mut usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    for entry in entries.flatten().take(64) {
        *entries_left = entries_left.saturating_sub(1);
        if is_dicom_name(&entry.file_name().to_string_lossy()) {
            return true;
        }
    }
    false
}

/// The report states named in `reports`, by case id (unreadable reports are passed over: the
/// report panel names them when their slide is opened).
fn report_states(reports: &[PathBuf], states: &mut BTreeMap<String, CaseState>) {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        case_id: String,
        status: Status,
    }
    for path in reports {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > crate::Limits::DEFAULT.report_bytes) {
            continue;
        }
        let Ok(bytes) = read_report_bytes(path) else { continue };
        let Ok(head) = serde_json::from_slice::<Head>(&bytes) else { continue };
        let state = states.entry(head.case_id.trim().to_string()).or_default();
        *state = (*state).max(CaseState::of(head.status));
    }
}

/// The slides one folder contributes (its slide files, its DICOM series subfolders), with the
/// folders to walk further.
fn folder_slides(contents: &FolderContents, entries_left: &mut usize) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut slides = contents.slides.clone();
    let mut walk = Vec::new();
    for sub in &contents.folders {
        if is_series_folder(sub, entries_left) {
            slides.push(sub.clone());
        } else {
            walk.push(sub.clone());
        }
    }
    slides.sort_by_key(|p| name_of(p));
    (slides, walk)
}

/// Group one folder's slides into cases (see the module docs).
fn cases_in(dir: &Path, slides: Vec<PathBuf>, out: &mut Vec<Case>) {
    if slides.is_empty() {
        return;
    }
    if let Some(id) = accession_prefix(&name_of(dir)) {
        out.push(Case { id: id.to_string(), folder: dir.to_path_buf(), slides, state: CaseState::None });
        return;
    }
    let mut by_id: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for slide in slides {
        by_id.entry(case_id_of(&name_of(&slide))).or_default().push(slide);
    }
    for (id, slides) in by_id {
        out.push(Case { id, folder: dir.to_path_buf(), slides, state: CaseState::None });
    }
}

/// Every case under `root` (a folder tree), with its report state read from the report files in
/// the walked folders and in `report_dirs` (the app's fallback reports folder). A DICOM series
/// folder is a slide, not walked into; hidden folders are passed over.
///
/// Errors: `root` itself cannot be read (not found, not a folder, no permission).
pub fn list_cases(root: &Path, report_dirs: &[PathBuf]) -> std::io::Result<CaseListing> {
    let mut listing = CaseListing::default();
    let mut entries_left = MAX_ENTRIES;
    let mut states = BTreeMap::new();
    let (root_contents, cut) = read_folder(root, &mut entries_left)?;
    listing.truncated |= cut;
    // The root itself is a DICOM series: one slide.
    if root_contents.first_dicom.is_some() {
        let parent = root.parent().unwrap_or(root);
        cases_in(parent, vec![root.to_path_buf()], &mut listing.cases);
        report_states(&root_contents.reports, &mut states);
    } else {
        let mut queue = vec![(root.to_path_buf(), root_contents, 0usize)];
        let mut folders = 1usize;
        while let Some((dir, contents, depth)) = queue.pop() {
            report_states(&contents.reports, &mut states);
            let (slides, walk) = folder_slides(&contents, &mut entries_left);
            cases_in(&dir, slides, &mut listing.cases);
            for sub in walk.into_iter().rev() {
                if depth + 1 > MAX_DEPTH || folders >= MAX_FOLDERS || entries_left == 0 {
                    listing.truncated = true;
                    continue;
                }
                folders += 1;
                match read_folder(&sub, &mut entries_left) {
                    Ok((c, cut)) => {
                        listing.truncated |= cut;
                        queue.push((sub, c, depth + 1));
                    }
                    Err(e) if listing.problems.len() < 10 => listing.problems.push(format!("{}: {}", sub.display(), e)),
                    Err(_) => {}
                }
            }
        }
    }
    for dir in report_dirs {
        if let Ok((c, _)) = read_folder(dir, &mut entries_left) {
            report_states(&c.reports, &mut states);
        }
    }
    for case in &mut listing.cases {
        case.state = states.get(&case.id).copied().unwrap_or_default();
    }
    listing.cases.sort_by(|a, b| (&a.id, &a.folder).cmp(&(&b.id, &b.folder)));
    Ok(listing)
}

/// The case `path` belongs to: for a folder, all its slides as one case (a DICOM series folder
/// is a case of one slide); for a slide, the slides beside it with the same case id (all of them
/// in a case folder). Its report state is read from the folder and `report_dirs`.
///
/// Errors: the path or its folder cannot be read, or a folder holds no slide (named in the message).
pub fn case_of(path: &Path, report_dirs: &[PathBuf]) -> Result<Case, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {}", e))?;
    let mut entries_left = MAX_ENTRIES;
    let mut states = BTreeMap::new();
    let mut case = if meta.is_dir() {
        let (contents, _) = read_folder(path, &mut entries_left).map_err(|e| format!("{shown}: {}", e))?;
        report_states(&contents.reports, &mut states);
        let name = name_of(path);
        let id = accession_prefix(&name).map(str::to_string).unwrap_or_else(|| case_id_of(&name));
        let slides = if contents.first_dicom.is_some() {
            vec![path.to_path_buf()]
        } else {
            folder_slides(&contents, &mut entries_left).0
        };
        if slides.is_empty() {
            return Err(format!("{shown}: no slides in this folder"));
        }
        Case { id, folder: path.to_path_buf(), slides, state: CaseState::None }
    } else {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let (contents, _) = read_folder(dir, &mut entries_left).map_err(|e| format!("{}: {}", dir.display(), e))?;
        report_states(&contents.reports, &mut states);
        let mut cases = Vec::new();
        cases_in(dir, folder_slides(&contents, &mut entries_left).0, &mut cases);
        let wanted = name_of(path);
        cases.into_iter().find(|c| c.slides.iter().any(|s| name_of(s) == wanted)).unwrap_or_else(|| Case {
            id: case_id_of(&wanted),
            folder: dir.to_path_buf(),
            slides: vec![path.to_path_buf()],
            state: CaseState::None,
        })
    };
    for dir in report_dirs {
        if let Ok((c, _)) = read_folder(dir, &mut entries_left) {
            report_states(&c.reports, &mut states);
        }
    }
    case.state = states.get(&case.id).copied().unwrap_or_default();
    Ok(case)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_follow_the_accession_rule() {
        for (name, id) in [
            ("H26-01234_A1_HE.svs", "H26-01234"),
            ("H26-01234 B2 Ki67.ndpi", "H26-01234"),
            ("S2024-118-A1.tiff", "S2024-118"),
            ("NP26 77.svs", "NP26 77"),
            ("CMU-1_HE.svs", "CMU-1"),
            ("CMU-1-Small-Region.svs", "CMU-1-Small-Region"),
            ("small.svs", "small"),
            ("_odd.svs", "_odd"),
            ("ABCDE26-1.svs", "ABCDE26-1"),
            ("H26-123456789.svs", "H26-123456789"),
            ("Scan 2023-05-01_HE.svs", "Scan"),
            ("S24-1234-A1.svs", "S24-1234"),
        ] {
            assert_eq!(case_id_of(name), id, "{name}");
        }
        assert_eq!(case_id_for_slide(Path::new("/a/H26-7/HE.svs")), "H26-7");
        assert_eq!(case_id_for_slide(Path::new("/a/b/H26-7_HE.svs")), "H26-7");
        assert_eq!(accession_prefix("H26-01234"), Some("H26-01234"));
        assert_eq!(accession_prefix("H2-1"), None);
        assert_eq!(accession_prefix("26-1"), None);
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    fn report(dir: &Path, name: &str, case: &str, status: &str) {
        let text = format!(r#"{{"case_id":"{case}","status":"{status}","schema":"wsiview.report/1"}}"#);
        std::fs::write(dir.join(format!("{name}{REPORT_SUFFIX}")), text).unwrap();
    }

    #[test]
    fn cases_are_found_by_name_and_by_case_folder_with_their_report_state() {
        let root = std::env::temp_dir().join(format!("wsiview-cases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        touch(&root.join("H26-00001_A1_HE.svs"));
        touch(&root.join("H26-00001_B1_Ki67.ndpi"));
        touch(&root.join("H26-00002_A1_HE.svs"));
        touch(&root.join("notes.txt"));
        touch(&root.join("site/H26-00003/HE.svs"));
        touch(&root.join("site/H26-00003/ER.tiff"));
        touch(&root.join("site/other/dicom-series/1.dcm"));
        touch(&root.join("site/other/dicom-series/2.dcm"));
        touch(&root.join(".hidden/H26-00009.svs"));
        report(&root, "H26-00001", "H26-00001", "draft");
        report(&root, "H26-00001_B1", "H26-00001", "final");
        report(&root.join("site/H26-00003"), "H26-00003", "H26-00003", "amended");
        std::fs::write(root.join(format!("broken{REPORT_SUFFIX}")), b"{not json").unwrap();

        let listing = list_cases(&root, &[]).unwrap();
        let summary: Vec<(String, usize, CaseState)> =
            listing.cases.iter().map(|c| (c.id.clone(), c.slides.len(), c.state)).collect();
        assert_eq!(
            summary,
            vec![
                ("H26-00001".to_string(), 2, CaseState::Final),
                ("H26-00002".to_string(), 1, CaseState::None),
                ("H26-00003".to_string(), 2, CaseState::Amended),
                ("dicom-series".to_string(), 1, CaseState::None),
            ]
        );
        assert!(!listing.truncated);
        assert_eq!(listing.cases[3].slides, vec![root.join("site/other/dicom-series")]);

        let of_slide = case_of(&root.join("H26-00001_B1_Ki67.ndpi"), &[]).unwrap();
        assert_eq!(of_slide.id, "H26-00001");
        assert_eq!(of_slide.slides, vec![root.join("H26-00001_A1_HE.svs"), root.join("H26-00001_B1_Ki67.ndpi")]);
        assert_eq!(of_slide.state, CaseState::Final);
        let of_folder = case_of(&root.join("site/H26-00003/ER.tiff"), &[]).unwrap();
        assert_eq!((of_folder.id.as_str(), of_folder.slides.len()), ("H26-00003", 2));
        let folder = case_of(&root.join("site/H26-00003"), &[]).unwrap();
        assert_eq!(folder, of_folder);
        let series = case_of(&root.join("site/other/dicom-series"), &[]).unwrap();
        assert_eq!(series.slides, vec![root.join("site/other/dicom-series")]);
        let empty = root.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(case_of(&empty, &[]).unwrap_err().contains("no slides"));
        assert!(case_of(&root.join("missing"), &[]).unwrap_err().contains("missing"));
        assert!(list_cases(&root.join("missing"), &[]).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
