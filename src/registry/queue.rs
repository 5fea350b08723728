//! The publish queue: reports signed out in the viewer while a registry is configured wait here
//! until the registry holds them, so a registry that cannot be reached loses nothing.
//!
//! Rules (docs/registry.md, "The publish queue"):
//! - The queue is the folder `registry-queue/` in the per-user data folder
//!   ([`crate::files::app_data_dir`]), readable by its owner only.
//! - [`enqueue`] writes an atomic copy of the report, `REPORTID-HASH12.report.json` (the first 12
//!   hex digits of the SHA-256 of [`Report::to_json`]), before any attempt to publish it. The same
//!   content queued twice is one file; an amendment is another file.
//! - [`publish_queue`] reads every queued file (bounded reads), pushes them with
//!   [`push_reports`] (so the registry's rules apply: idempotent by content, versions in order),
//!   and then, per file:
//!   - published, or already held by the registry ("unchanged"): the file is deleted;
//!   - refused (a report of another site, older than the registry's version, …): moved to
//!     `registry-queue/refused/` with a sidecar `NAME.reason.txt`;
//!   - not sent because the connection was lost, or refused only because another push stored the
//!     same version at that moment ([`is_conflict`]): kept, for the next run (which finds it
//!     unchanged).
//! - A file that is not a valid report is moved to `registry-queue/invalid/` with its reason.
//!   Nothing in the queue is ever deleted unless the registry holds it.
//! - Publishing the queue twice, or from the viewer and `wsiview registry push` at once, publishes
//!   nothing twice: the registry stores a content once, and a file already gone is no error.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use postgres::Client;

use super::push::{is_conflict, push_reports, PushOutcome};
use super::RegistryError;
use crate::report::hash::sha256_bytes;
use crate::report::Report;

/// The queue's folder name inside the per-user data folder.
pub const QUEUE_FOLDER: &str = "registry-queue";
/// Where refused reports go, inside the queue.
pub const REFUSED_FOLDER: &str = "refused";
/// Where files that are not valid reports go, inside the queue.
pub const INVALID_FOLDER: &str = "invalid";
/// What queued report files end with.
const SUFFIX: &str = ".report.json";

/// What publishing the queue did. Reports are named by their `report_id`.
#[derive(Debug, Default)]
pub struct QueueOutcome {
    /// Stored as a new version: `(report_id, version)`; their files are deleted.
    pub published: Vec<(String, i32)>,
    /// Already held by the registry; their files are deleted.
    pub unchanged: Vec<String>,
    /// Refused by the registry: `(report_id, reason)`; moved to `refused/`.
    pub refused: Vec<(String, String)>,
    /// Files that are not valid reports: `(file name, reason)`; moved to `invalid/`.
    pub invalid: Vec<(String, String)>,
    /// Reports still queued (the connection was lost before they were sent).
    pub still_queued: Vec<String>,
    /// Set when the registry went away part-way: why.
    pub interrupted: Option<String>,
    /// Files that could not be deleted or moved: `(file, error)` (they stay queued, and the
    /// registry already deduplicates them).
    pub file_errors: Vec<(PathBuf, String)>,
}

/// The queue folder, `<data dir>/registry-queue`, or `None` when there is no data folder.
pub fn queue_dir() -> Option<PathBuf> {
    crate::files::app_data_dir().map(|d| d.join(QUEUE_FOLDER))
}

fn no_data_dir() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no per-user data folder (set HOME or XDG_DATA_HOME)")
}

/// Create `dir` (and its parents) if missing, readable by its owner only.
fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    builder.create(dir)?;
    Ok(())
}

/// The report id as it may appear in a file name (letters, digits and hyphens only).
fn file_id(report_id: &str) -> String {
    let id: String = report_id.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect();
    if id.is_empty() {
        "report".into()
    } else {
        id.to_ascii_lowercase()
    }
}

/// The queue file's name for `json` (the report's canonical bytes).
fn queue_name(report_id: &str, json: &[u8]) -> String {
    let hash = sha256_bytes(json);
    format!("{}-{}{SUFFIX}", file_id(report_id), hash.get(..12).unwrap_or_default())
}

/// Queue `report` for the registry in the per-user queue folder ([`enqueue_in`]).
pub fn enqueue(report: &Report) -> io::Result<PathBuf> {
    enqueue_in(&queue_dir().ok_or_else(no_data_dir)?, report)
}

/// Write an atomic copy of `report` into the queue folder `dir` (created owner-only if missing);
/// the file's path. The same content queued again is the same file.
pub fn enqueue_in(dir: &Path, report: &Report) -> io::Result<PathBuf> {
    private_dir(dir)?;
    let json = report.to_json();
    let path = dir.join(queue_name(&report.report_id, &json));
    crate::files::write_atomic(&path, &json)?;
    Ok(path)
}

/// The report files waiting in the queue folder `dir`, sorted (none when it does not exist).
pub fn queued_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden files are write_atomic's temporaries.
        if name.starts_with('.') || !name.ends_with(SUFFIX) || !entry.file_type()?.is_file() {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    Ok(files)
}

/// Publish the per-user queue ([`publish_queue_in`]). With no data folder there is no queue.
pub fn publish_queue(client: &mut Client) -> Result<QueueOutcome, RegistryError> {
    match queue_dir() {
        Some(dir) => publish_queue_in(client, &dir),
        None => Ok(QueueOutcome::default()),
    }
}

/// Publish every report queued in `dir` (see the module's rules). `Err` when nothing could be
/// done (no connection, wrong schema version, an unreadable queue folder): every file stays.
pub fn publish_queue_in(client: &mut Client, dir: &Path) -> Result<QueueOutcome, RegistryError> {
    let io_error = |error| RegistryError::Io { path: dir.display().to_string(), error };
    let files = queued_files(dir).map_err(io_error)?;
    let mut outcome = QueueOutcome::default();
    let mut reports = Vec::new();
    let mut by_source: HashMap<String, (PathBuf, String)> = HashMap::new();
    for file in files {
        match Report::read(&file) {
            Ok(report) => {
                let source = file.display().to_string();
                by_source.insert(source.clone(), (file, report.report_id.clone()));
                reports.push((source, report));
            }
            Err(e) => set_aside(dir, &file, INVALID_FOLDER, &e.reason(), &mut outcome, true),
        }
    }
    if reports.is_empty() {
        return Ok(outcome);
    }
    let pushed = push_reports(client, reports, PushOutcome::default())?;
    settle(dir, pushed, &mut by_source, &mut outcome);
    Ok(outcome)
}

/// Act on what the push did, file by file.
fn settle(
    dir: &Path,
    pushed: PushOutcome,
    by_source: &mut HashMap<String, (PathBuf, String)>,
    outcome: &mut QueueOutcome,
) {
    for (source, _, version) in pushed.published {
        if let Some((file, id)) = by_source.remove(&source) {
            remove(&file, outcome);
            outcome.published.push((id, version));
        }
    }
    for (source, _) in pushed.unchanged {
        if let Some((file, id)) = by_source.remove(&source) {
            remove(&file, outcome);
            outcome.unchanged.push(id);
        }
    }
    for (source, reason) in pushed.skipped {
        if is_conflict(&reason) {
            continue; // another push stored it at the same moment: kept, settled by the next run
        }
        if let Some((file, id)) = by_source.remove(&source) {
            set_aside(dir, &file, REFUSED_FOLDER, &reason, outcome, false);
            outcome.refused.push((id, reason));
        }
    }
    outcome.interrupted = pushed.interrupted;
    // Not sent (the connection was lost), or not accounted for: kept for the next run.
    let mut kept: Vec<String> = by_source.drain().map(|(_, (_, id))| id).collect();
    kept.sort();
    outcome.still_queued = kept;
}

/// Delete a published file; one already gone (another run took it) is no error.
fn remove(file: &Path, outcome: &mut QueueOutcome) {
    match std::fs::remove_file(file) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => outcome.file_errors.push((file.to_path_buf(), e.to_string())),
    }
}

/// Move `file` into `dir/folder/` with a sidecar `NAME.reason.txt` saying why. `invalid`
/// records it in [`QueueOutcome::invalid`].
fn set_aside(dir: &Path, file: &Path, folder: &str, reason: &str, outcome: &mut QueueOutcome, invalid: bool) {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if invalid {
        outcome.invalid.push((name.clone(), reason.to_string()));
    }
    let aside = dir.join(folder);
    let target = aside.join(&name);
    let result = private_dir(&aside)
        .and_then(|()| {
            crate::files::write_atomic(&aside.join(format!("{name}.reason.txt")), format!("{reason}\n").as_bytes())
        })
        .and_then(|()| std::fs::rename(file, &target));
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound && !file.exists() => {}
        Err(e) => outcome.file_errors.push((file.to_path_buf(), e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(n: u64) -> Report {
        crate::report::synth::report(n, &["RLH"], 3)
    }

    #[test]
    fn enqueue_names_by_id_and_content_and_is_owner_only() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("data/registry-queue");
        let mut r = report(1);
        let first = enqueue_in(&dir, &r).unwrap_or_else(|e| panic!("{e}"));
        let name = first.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let hash = sha256_bytes(&r.to_json());
        assert_eq!(name, format!("{}-{}.report.json", r.report_id.to_lowercase(), &hash[..12]));
        assert_eq!(std::fs::read(&first).unwrap_or_default(), r.to_json(), "the canonical bytes");
        // The same content again: the same single file.
        assert_eq!(enqueue_in(&dir, &r).unwrap_or_else(|e| panic!("{e}")), first);
        r.comments = "Changed.".into();
        let second = enqueue_in(&dir, &r).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first, second);
        assert_eq!(queued_files(&dir).unwrap_or_default(), {
            let mut v = vec![first, second];
            v.sort();
            v
        });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).map(|m| m.permissions().mode() & 0o777).unwrap_or_default();
            assert_eq!(mode, 0o700, "owner only");
        }
    }

    #[test]
    fn queued_files_skip_temporaries_sidecars_and_folders() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path();
        assert!(queued_files(&dir.join("missing")).unwrap_or_else(|e| panic!("{e}")).is_empty());
        for name in [".x.report.json.1-2.tmp", "notes.txt", "a.report.json.reason.txt"] {
            std::fs::write(dir.join(name), b"x").unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::create_dir(dir.join("refused")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("b.report.json"), b"{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(queued_files(dir).unwrap_or_default(), vec![dir.join("b.report.json")]);
    }

    #[test]
    fn settle_deletes_what_the_registry_holds_sets_refused_aside_and_keeps_the_rest() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("q");
        let files: Vec<PathBuf> =
            (0..5).map(|n| enqueue_in(&dir, &report(n)).unwrap_or_else(|e| panic!("{e}"))).collect();
        let mut by_source: HashMap<String, (PathBuf, String)> =
            files.iter().enumerate().map(|(n, f)| (f.display().to_string(), (f.clone(), format!("id{n}")))).collect();
        let source = |n: usize| files[n].display().to_string();
        let pushed = PushOutcome {
            published: vec![(source(0), "id0".into(), 1)],
            unchanged: vec![(source(1), "id1".into())],
            skipped: vec![
                (source(2), "site \"NBT\" is not one this role publishes for".into()),
                (source(4), super::super::push::CONFLICT.into()),
            ],
            interrupted: Some("connection lost".into()),
            not_sent: vec![source(3)],
        };
        let mut outcome = QueueOutcome::default();
        settle(&dir, pushed, &mut by_source, &mut outcome);
        assert_eq!(outcome.published, vec![("id0".to_string(), 1)]);
        assert_eq!(outcome.unchanged, vec!["id1".to_string()]);
        assert_eq!(outcome.refused.len(), 1);
        assert_eq!(outcome.still_queued, vec!["id3".to_string(), "id4".to_string()]);
        assert!(outcome.file_errors.is_empty(), "{:?}", outcome.file_errors);
        let mut kept = vec![files[3].clone(), files[4].clone()];
        kept.sort();
        assert_eq!(queued_files(&dir).unwrap_or_default(), kept, "the unsent one and the conflict stay");
        let name = files[2].file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        assert!(dir.join("refused").join(&name).is_file(), "refused, kept aside");
        let reason =
            std::fs::read_to_string(dir.join("refused").join(format!("{name}.reason.txt"))).unwrap_or_default();
        assert!(reason.contains("NBT"), "{reason}");
    }

    #[test]
    fn invalid_files_are_moved_aside_with_the_reason_never_deleted() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path();
        let bad = dir.join("junk.report.json");
        std::fs::write(&bad, b"not json").unwrap_or_else(|e| panic!("{e}"));
        let mut outcome = QueueOutcome::default();
        set_aside(dir, &bad, INVALID_FOLDER, "not JSON", &mut outcome, true);
        assert!(!bad.exists());
        assert_eq!(std::fs::read(dir.join("invalid/junk.report.json")).unwrap_or_default(), b"not json");
        assert_eq!(
            std::fs::read_to_string(dir.join("invalid/junk.report.json.reason.txt")).unwrap_or_default(),
            "not JSON\n"
        );
        assert_eq!(outcome.invalid, vec![("junk.report.json".to_string(), "not JSON".to_string())]);
    }

    #[test]
    fn odd_report_ids_make_safe_file_names() {
        assert_eq!(file_id("../../etc/passwd"), "etcpasswd");
        assert_eq!(file_id(""), "report");
        assert_eq!(file_id("ABC-def"), "abc-def");
    }
}
