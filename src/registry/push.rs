//! `wsiview registry push`: report files into the registry.
//!
//! Rules (docs/registry.md, "Publishing"):
//! - Every valid report is stored as its canonical JSON ([`Report::to_json`]) with the SHA-256
//!   of those bytes. A report whose content is already one of its stored versions changes nothing
//!   ("unchanged"), so pushing again, or a queue published twice, never duplicates.
//! - Otherwise it becomes version 1, or the next version of its `report_id`, when it is at least
//!   as far along as the latest stored version (amended > final > draft, then more amendments). A
//!   report behind the latest version, or a signed-out report that differs from the latest
//!   without a further amendment, is skipped with the reason.
//! - Copies of one report in one push are taken in that order (least advanced first), so a
//!   folder holding a draft and its final copy stores both, as versions.
//! - A report of a site the connecting role does not write for, an invalid file and a teaching
//!   copy are skipped with the reason; the rest of the batch goes on.
//! - Rows go in by `COPY`, [`BATCH_ROWS`] per transaction. When the database refuses a batch
//!   (another pusher got there first, a policy refused a row), its rows are tried one by one so
//!   that only the offending ones are skipped. When the connection is lost, the batches already
//!   committed stay, the rest are reported as not published, and pushing again completes the work.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

use postgres::Client;
use rayon::prelude::*;

use super::schema::{check_version, writable_sites};
use super::RegistryError;
use crate::report::consolidate::{find_report_files, read_report};
use crate::report::hash::sha256_bytes;
use crate::report::schema::{parse_date, TEACHING_FIELD};
use crate::report::{Report, Status};

/// Rows per `COPY` transaction.
pub const BATCH_ROWS: usize = 2000;
/// Report ids per query for their stored versions.
const LOOKUP_IDS: usize = 10_000;

/// The columns a report version is stored with, in `COPY` order (the rest have defaults).
pub(crate) const COLUMNS: [&str; 19] = [
    "report_id",
    "version",
    "site",
    "case_id",
    "status",
    "amendments",
    "reviewer",
    "reviewer_role",
    "review_type",
    "received_date",
    "reported_at",
    "received_on",
    "turnaround_days",
    "category",
    "slide_sha256",
    "ethnic_category",
    "imd_decile",
    "content_sha256",
    "report",
];

/// The SQL type of each of [`COLUMNS`] (values travel as text and are cast).
const TYPES: [&str; 19] = [
    "uuid", "integer", "text", "text", "text", "integer", "text", "text", "text", "text", "text", "date", "integer",
    "text", "text", "text", "smallint", "text", "json",
];

/// What a push did.
#[derive(Debug, Default)]
pub struct PushOutcome {
    /// Reports stored as a new version: `(source, report_id, version)`, in the order stored.
    pub published: Vec<(String, String, i32)>,
    /// Reports whose content the registry already holds: `(source, report_id)`.
    pub unchanged: Vec<(String, String)>,
    /// Files and reports not published, with the reason: `(source, reason)`.
    pub skipped: Vec<(String, String)>,
    /// Set when the registry went away part-way: why; the reports of `not_sent` were not
    /// published (pushing again completes them).
    pub interrupted: Option<String>,
    /// Reports not published because the connection was lost.
    pub not_sent: Vec<String>,
}

/// A report ready to store.
struct Candidate {
    source: String,
    report: Report,
    json: Vec<u8>,
    content_sha256: String,
}

/// The stored state of one report id, as the connecting role can see it.
#[derive(Clone, Debug, Default)]
struct Stored {
    latest: i32,
    latest_rank: (u8, usize),
    contents: HashSet<String>,
}

fn rank(status: Status, amendments: usize) -> (u8, usize) {
    let status = match status {
        Status::Draft => 0,
        Status::Final => 1,
        Status::Amended => 2,
    };
    (status, amendments)
}

/// The report id in one spelling (lower-case hyphenated), whatever the file wrote.
fn id_key(report_id: &str) -> String {
    uuid::Uuid::parse_str(report_id.trim()).map_or_else(|_| report_id.to_string(), |u| u.to_string())
}

/// Report files under `paths` (files, or folders searched recursively for `*.report.json`),
/// each read and checked in parallel, as `(source, report)`. Unusable ones go to `skipped`.
fn read_files(paths: &[PathBuf], skipped: &mut Vec<(String, String)>) -> Vec<(String, Report)> {
    let (mut files, mut folders) = (Vec::new(), Vec::new());
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
        } else {
            folders.push(path.clone());
        }
    }
    let mut invalid = Vec::new();
    let (found, _) = find_report_files(&folders, &mut invalid);
    skipped.extend(invalid.into_iter().map(|i| (i.file.display().to_string(), i.error)));
    files.extend(found);
    let read: Vec<(String, Result<Report, String>)> =
        files.into_par_iter().map(|f| (f.display().to_string(), read_report(&f))).collect();
    let mut reports = Vec::new();
    for (source, result) in read {
        match result {
            Ok(report) => reports.push((source, report)),
            Err(reason) => skipped.push((source, reason)),
        }
    }
    reports
}

/// Publish the reports under `paths` (see the module's rules). `Err` only when nothing could be
/// done (no connection, wrong schema version); problems with single reports are in the outcome.
pub fn push(client: &mut Client, paths: &[PathBuf]) -> Result<PushOutcome, RegistryError> {
    let mut outcome = PushOutcome::default();
    let reports = read_files(paths, &mut outcome.skipped);
    push_reports(client, reports, outcome)
}

/// Publish reports already read (the viewer's queue, tests): `(source, report)` pairs, each a
/// valid report.
pub fn push_reports(
    client: &mut Client,
    reports: Vec<(String, Report)>,
    mut outcome: PushOutcome,
) -> Result<PushOutcome, RegistryError> {
    check_version(client)?;
    let writable: HashSet<String> = writable_sites(client)?.into_iter().collect();
    let role = current_role(client)?;
    let (teaching, reports): (Vec<_>, Vec<_>) =
        reports.into_iter().partition(|(_, report)| report.extra.contains_key(TEACHING_FIELD));
    for (source, _) in teaching {
        outcome.skipped.push((source, "a teaching copy (wsiview export-teaching): never published".into()));
    }
    let (mine, others): (Vec<_>, Vec<_>) =
        reports.into_iter().partition(|(_, report)| writable.contains(report.site.trim()));
    for (source, report) in others {
        let site = crate::error::printable(report.site.trim());
        let reason = if site.is_empty() {
            "the report has no site: only a site's reports are published".to_string()
        } else {
            format!("site {site:?} is not one this role ({role}) publishes for: run as a member of that site's role")
        };
        outcome.skipped.push((source, reason));
    }
    let mut candidates: Vec<Candidate> = mine
        .into_par_iter()
        .map(|(source, report)| {
            let json = report.to_json();
            let content_sha256 = sha256_bytes(&json);
            Candidate { source, report, json, content_sha256 }
        })
        .collect();
    // Copies of one report: least advanced first, then by source.
    candidates.sort_by(|a, b| {
        (id_key(&a.report.report_id), rank(a.report.status, a.report.amendments.len()), &a.source).cmp(&(
            id_key(&b.report.report_id),
            rank(b.report.status, b.report.amendments.len()),
            &b.source,
        ))
    });
    let ids: Vec<String> = {
        let mut seen = HashSet::new();
        candidates.iter().map(|c| id_key(&c.report.report_id)).filter(|id| seen.insert(id.clone())).collect()
    };
    let mut stored = match stored_versions(client, &ids) {
        Ok(stored) => stored,
        Err(e) if e.is_connection_lost() => {
            outcome.interrupted = Some(e.to_string());
            outcome.not_sent = candidates.into_iter().map(|c| c.source).collect();
            return Ok(outcome);
        }
        Err(e) => return Err(e),
    };
    let mut rows: Vec<(Candidate, i32)> = Vec::new();
    for candidate in candidates {
        let key = id_key(&candidate.report.report_id);
        let state = stored.entry(key.clone()).or_default();
        if state.contents.contains(&candidate.content_sha256) {
            outcome.unchanged.push((candidate.source, candidate.report.report_id));
            continue;
        }
        let new_rank = rank(candidate.report.status, candidate.report.amendments.len());
        if state.latest > 0 {
            if new_rank < state.latest_rank {
                outcome.skipped.push((
                    candidate.source,
                    format!("older than the registry's version {} of report {key}", state.latest),
                ));
                continue;
            }
            if new_rank == state.latest_rank && new_rank.0 > 0 {
                outcome.skipped.push((
                    candidate.source,
                    format!(
                        "differs from the registry's signed-out version {} of report {key} without a further amendment",
                        state.latest
                    ),
                ));
                continue;
            }
        }
        state.latest += 1;
        state.latest_rank = new_rank;
        state.contents.insert(candidate.content_sha256.clone());
        let version = state.latest;
        rows.push((candidate, version));
    }
    insert_rows(client, rows, &mut outcome);
    Ok(outcome)
}

fn current_role(client: &mut Client) -> Result<String, RegistryError> {
    let row = client.query_one("SELECT current_user::text", &[]).map_err(RegistryError::database("the role"))?;
    Ok(row.get(0))
}

/// The versions stored for `ids` that the connecting role can see.
fn stored_versions(client: &mut Client, ids: &[String]) -> Result<HashMap<String, Stored>, RegistryError> {
    let mut stored: HashMap<String, Stored> = HashMap::new();
    for chunk in ids.chunks(LOOKUP_IDS) {
        let rows = client
            .query(
                "SELECT report_id::text, version, status, amendments, content_sha256 FROM wsiview.report_versions \
                 WHERE report_id = ANY($1::text[]::uuid[])",
                &[&chunk],
            )
            .map_err(RegistryError::database("the stored versions"))?;
        for row in rows {
            let (id, version, status, amendments, content): (String, i32, String, i32, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            let status = match status.as_str() {
                "final" => Status::Final,
                "amended" => Status::Amended,
                _ => Status::Draft,
            };
            let state = stored.entry(id).or_default();
            if version > state.latest {
                state.latest = version;
                state.latest_rank = rank(status, amendments.max(0) as usize);
            }
            state.contents.insert(content);
        }
    }
    Ok(stored)
}

/// One report version as the text of each of [`COLUMNS`].
fn row_values(c: &Candidate, version: i32) -> Vec<Option<String>> {
    let r = &c.report;
    let equity = r.equity.as_ref();
    let received_on = r.received_date.as_deref().filter(|d| parse_date(d).is_ok()).map(str::to_string);
    let turnaround = if r.status.is_signed_out() { r.turnaround_days() } else { None };
    vec![
        Some(id_key(&r.report_id)),
        Some(version.to_string()),
        Some(r.site.trim().to_string()),
        Some(r.case_id.trim().to_string()),
        Some(r.status.as_str().to_string()),
        Some(r.amendments.len().to_string()),
        Some(r.reviewer.name.trim().to_string()),
        Some(r.reviewer.role.as_str().to_string()),
        Some(r.review_type.as_str().to_string()),
        r.received_date.clone(),
        r.reported_at.clone(),
        received_on,
        turnaround.map(|d| d.to_string()),
        Some(r.diagnosis.category.trim().to_string()),
        Some(r.slide.sha256.clone()),
        equity.and_then(|e| e.ethnic_category.clone()),
        equity.and_then(|e| e.imd_decile).map(|d| d.to_string()),
        Some(c.content_sha256.clone()),
        Some(String::from_utf8_lossy(&c.json).into_owned()),
    ]
}

/// A value in `COPY`'s text format: `\N` for null, backslash escapes for `\`, tab, newline and
/// carriage return.
fn copy_field(out: &mut Vec<u8>, value: &Option<String>) {
    let Some(text) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => {}
            _ => out.push(b),
        }
    }
}

fn insert_rows(client: &mut Client, rows: Vec<(Candidate, i32)>, outcome: &mut PushOutcome) {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<(Candidate, i32)> = rows.by_ref().take(BATCH_ROWS).collect();
        match copy_batch(client, &batch) {
            Ok(()) => outcome.published.extend(batch.into_iter().map(|(c, v)| (c.source, c.report.report_id, v))),
            Err(e) if e.is_connection_lost() || e.is_temporary() || client.is_closed() => {
                outcome.interrupted = Some(e.to_string());
                outcome.not_sent.extend(batch.into_iter().chain(rows).map(|(c, _)| c.source));
                return;
            }
            Err(_) => {
                // Refused as a whole: find the rows at fault one by one.
                for (candidate, version) in batch {
                    match insert_one(client, &candidate, version) {
                        Ok(()) => outcome.published.push((candidate.source, candidate.report.report_id, version)),
                        Err(e) if e.is_connection_lost() || e.is_temporary() || client.is_closed() => {
                            outcome.interrupted = Some(e.to_string());
                            outcome.not_sent.push(candidate.source);
                            outcome.not_sent.extend(rows.map(|(c, _)| c.source));
                            return;
                        }
                        Err(e) => outcome.skipped.push((candidate.source, refusal(&e))),
                    }
                }
            }
        }
    }
}

/// The reason given when another push stored a version of the report at the same moment (the
/// database refuses a version that is not the next one): pushing again settles it.
pub(crate) const CONFLICT: &str = "another push stored this version of the report at the same moment: push again";

/// Whether a report was skipped because another push stored the same version at that moment,
/// which pushing again settles (the publish queue keeps such a report rather than setting it
/// aside).
pub fn is_conflict(reason: &str) -> bool {
    reason == CONFLICT
}

/// Why the database refused one row, in words.
fn refusal(error: &RegistryError) -> String {
    let code = match error {
        RegistryError::Database { error, .. } => error.as_db_error().map(|d| d.code().code().to_string()),
        _ => None,
    };
    match code.as_deref() {
        Some("23505") => CONFLICT.into(),
        Some("42501") => format!("refused by the registry's security: {error}"),
        _ => error.to_string(),
    }
}

/// One batch in one transaction: `COPY` into a temporary table (`COPY FROM` is not allowed into
/// a table with row-level security), then `INSERT … SELECT`, which the policies check row by row.
fn copy_batch(client: &mut Client, batch: &[(Candidate, i32)]) -> Result<(), RegistryError> {
    let columns = COLUMNS.join(", ");
    let mut tx = client.transaction().map_err(RegistryError::database("a transaction"))?;
    tx.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS wsiview_push (LIKE wsiview.report_versions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
    )
    .map_err(RegistryError::database("a temporary table for the batch"))?;
    let mut writer = tx
        .copy_in(&format!("COPY pg_temp.wsiview_push ({columns}) FROM STDIN"))
        .map_err(RegistryError::database("COPY"))?;
    let mut buffer = Vec::with_capacity(1 << 20);
    let broken = |e: std::io::Error| RegistryError::Unexpected(format!("a broken COPY stream: {e}"));
    for (candidate, version) in batch {
        for (i, value) in row_values(candidate, *version).iter().enumerate() {
            if i > 0 {
                buffer.push(b'\t');
            }
            copy_field(&mut buffer, value);
        }
        buffer.push(b'\n');
        if buffer.len() >= 1 << 20 {
            writer.write_all(&buffer).map_err(broken)?;
            buffer.clear();
        }
    }
    writer.write_all(&buffer).map_err(broken)?;
    writer.finish().map_err(RegistryError::database("the reports (COPY)"))?;
    tx.batch_execute(&format!(
        "INSERT INTO wsiview.report_versions ({columns}) SELECT {columns} FROM pg_temp.wsiview_push \
         ORDER BY report_id, version"
    ))
    .map_err(RegistryError::database("the reports"))?;
    tx.commit().map_err(RegistryError::database("committing the reports"))
}

fn insert_one(client: &mut Client, candidate: &Candidate, version: i32) -> Result<(), RegistryError> {
    let placeholders: Vec<String> = TYPES.iter().enumerate().map(|(i, t)| format!("${}::text::{t}", i + 1)).collect();
    let statement =
        format!("INSERT INTO wsiview.report_versions ({}) VALUES ({})", COLUMNS.join(", "), placeholders.join(", "));
    let values = row_values(candidate, version);
    let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
        values.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect();
    client.execute(&statement, &params).map(|_| ()).map_err(RegistryError::database("the report"))
}
