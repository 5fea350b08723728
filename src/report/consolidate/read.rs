//! Finding and reading report files for consolidation: every regular `*.report.json` under the
//! folders, each real file once, read through [`crate::report::schema::Report::read`]; duplicated
//! report ids resolved to the most advanced copy.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::{Duplicate, InvalidFile, ReportFile};
use crate::report::schema::{Report, Status, REPORT_SUFFIX, TEACHING_FIELD};

/// Report files under `dirs`, sorted by path, each real file once; missing folders and unreadable
/// sub-folders go to `invalid`. Also returns how many of `dirs` are folders.
pub(crate) fn find_report_files(dirs: &[PathBuf], invalid: &mut Vec<InvalidFile>) -> (Vec<PathBuf>, usize) {
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut folders_read = 0;
    for dir in dirs {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => folders_read += 1,
            Ok(_) => {
                invalid.push(InvalidFile { file: dir.clone(), error: "not a folder".into() });
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                invalid.push(InvalidFile { file: dir.clone(), error: "no such folder".into() });
                continue;
            }
            Err(e) => {
                invalid.push(InvalidFile { file: dir.clone(), error: format!("cannot read: {e}") });
                continue;
            }
        }
        // Links below the root are not followed, so the root's real path joined with the part
        // below it is the file's real path: a folder given twice, or inside another given folder,
        // then yields each file once without a system call per file.
        let real_root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        for entry in WalkDir::new(dir).follow_links(false) {
            match entry {
                Ok(entry) if entry.file_type().is_file() && is_report_name(entry.file_name()) => {
                    let below = entry.path().strip_prefix(dir).unwrap_or(entry.path());
                    let real = real_root.join(below);
                    found.push((entry.into_path(), real));
                }
                Ok(_) => {}
                Err(e) => {
                    let file = e.path().map(Path::to_path_buf).unwrap_or_else(|| dir.clone());
                    let reason = e.io_error().map_or_else(|| e.to_string(), ToString::to_string);
                    invalid.push(InvalidFile { file, error: format!("cannot read folder: {reason}") });
                }
            }
        }
    }
    found.sort();
    let mut seen = HashSet::new();
    let files = found.into_iter().filter(|(_, real)| seen.insert(real.clone())).map(|(path, _)| path).collect();
    (files, folders_read)
}

fn is_report_name(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().ends_with(REPORT_SUFFIX)
}

/// The report in `file`, or why it is not one (without the file name).
pub(crate) fn read_report(file: &Path) -> Result<Report, String> {
    let report = Report::read(file).map_err(|e| e.reason())?;
    // A teaching copy repeats a real report under pseudonyms and a new id: counting it would count
    // that review twice.
    if report.extra.contains_key(TEACHING_FIELD) {
        return Err("a teaching copy (wsiview export-teaching): not counted".into());
    }
    Ok(report)
}

/// How far a report has gone; the further copy of a duplicated report wins.
fn advancement(report: &Report) -> (u8, usize) {
    let status = match report.status {
        Status::Draft => 0,
        Status::Final => 1,
        Status::Amended => 2,
    };
    (status, report.amendments.len())
}

/// One report per `report_id` (compared as UUIDs, so case and braces do not matter); `valid` is in
/// path order and so is the result.
pub(super) fn drop_duplicates(valid: Vec<ReportFile>) -> (Vec<ReportFile>, Vec<Duplicate>) {
    let id_key = |r: &Report| uuid::Uuid::parse_str(r.report_id.trim()).map_or(r.report_id.clone(), |u| u.to_string());
    let mut kept: Vec<ReportFile> = Vec::new();
    let mut kept_by_id: HashMap<String, usize> = HashMap::new();
    // (file, report_id, key): the kept copy is known only once every copy has been seen.
    let mut others: Vec<(PathBuf, String, String)> = Vec::new();
    for candidate in valid {
        let key = id_key(&candidate.report);
        match kept_by_id.get(&key) {
            None => {
                kept_by_id.insert(key, kept.len());
                kept.push(candidate);
            }
            Some(&index) => {
                // Strictly further only: on a tie the first in path order stays.
                let loser = if advancement(&candidate.report) > advancement(&kept[index].report) {
                    std::mem::replace(&mut kept[index], candidate)
                } else {
                    candidate
                };
                others.push((loser.file, loser.report.report_id, key));
            }
        }
    }
    let duplicates = {
        let mut list: Vec<Duplicate> = others
            .into_iter()
            .map(|(file, report_id, key)| {
                let kept_file = kept_by_id.get(&key).map(|&i| kept[i].file.clone()).unwrap_or_default();
                Duplicate { file, report_id, kept: kept_file }
            })
            .collect();
        list.sort_by(|a, b| a.file.cmp(&b.file));
        list
    };
    kept.sort_by(|a, b| a.file.cmp(&b.file));
    (kept, duplicates)
}
