//! The registry read back: the current version of every report the connecting role may see, as
//! consolidation rows (`wsiview registry consolidate`) or as report files (`wsiview registry
//! pull`).

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use postgres::Client;
use rayon::prelude::*;
use time::Date;

use super::schema::check_version;
use super::{literal, RegistryError};
use crate::report::consolidate::ReportRow;
use crate::report::schema::{safe_file_stem, REPORT_SUFFIX};
use crate::report::{Report, ReviewType, Role, Status};

/// Which reports: all, or those of one site, received in a period, or published since a time.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this site's reports (its code, trimmed).
    pub site: Option<String>,
    /// Only reports received on or after this date (`received_date`; reports without one are
    /// left out when a period is given).
    pub from: Option<Date>,
    /// Only reports received on or before this date.
    pub to: Option<Date>,
    /// Only reports whose current version was published at or after this time (RFC 3339).
    pub since: Option<String>,
}

impl Filter {
    /// The filter's terms, values quoted as literals (`COPY` takes no parameters).
    fn terms(&self) -> Vec<String> {
        let mut terms = Vec::new();
        if let Some(site) = &self.site {
            terms.push(format!("site = {}", literal(site.trim())));
        }
        let date = |d: &Date| literal(&format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()));
        if let Some(from) = &self.from {
            terms.push(format!("received_on >= {}::date", date(from)));
        }
        if let Some(to) = &self.to {
            terms.push(format!("received_on <= {}::date", date(to)));
        }
        if let Some(since) = &self.since {
            terms.push(format!("pushed_at >= {}::timestamptz", literal(since)));
        }
        terms
    }

    /// `SELECT columns` of the current version of every report matching the filter. Without a
    /// filter, `DISTINCT ON` over the narrow columns; with one, the matching versions that no
    /// later version of their report follows (so the site index serves `--site`). Measured on
    /// a million reports: BENCHMARKS.md, "Report registry".
    fn current(&self, columns: &str) -> String {
        let terms = self.terms();
        if terms.is_empty() {
            return format!(
                "SELECT DISTINCT ON (report_id) {columns} FROM wsiview.report_versions ORDER BY report_id, version DESC"
            );
        }
        format!(
            "SELECT {columns} FROM wsiview.report_versions v WHERE {} AND NOT EXISTS (SELECT 1 FROM \
             wsiview.report_versions later WHERE later.report_id = v.report_id AND later.version > v.version)",
            terms.join(" AND ")
        )
    }
}

/// The report state of every case of `site` in the registry (the most advanced current report
/// naming it), by case id: what the case list marks as reported. Reads only the case id and
/// status of the site's current reports (each pair once), nothing else of them.
pub fn case_states(
    client: &mut Client,
    site: &str,
) -> Result<std::collections::HashMap<String, crate::report::case::CaseState>, RegistryError> {
    check_version(client)?;
    let filter = Filter { site: Some(site.trim().to_string()), ..Filter::default() };
    let query = format!("SELECT DISTINCT case_id, status FROM ({}) current", filter.current("case_id, status"));
    let rows = client.query(&query, &[]).map_err(RegistryError::database("the case states"))?;
    let mut pairs = Vec::with_capacity(rows.len());
    for row in &rows {
        let case_id: String = row.try_get(0).map_err(RegistryError::database("a case state's case id"))?;
        let status: String = row.try_get(1).map_err(RegistryError::database("a case state's status"))?;
        let status = parse_status(&status).ok_or_else(|| {
            let shown = crate::error::printable(&status);
            RegistryError::Unexpected(format!("a case state with an unknown status: {shown}"))
        })?;
        pairs.push((case_id, status));
    }
    Ok(crate::report::case::states_of(pairs.iter().map(|(case_id, status)| (case_id.as_str(), *status))))
}

/// A status column's value.
fn parse_status(text: &str) -> Option<Status> {
    match text {
        "draft" => Some(Status::Draft),
        "final" => Some(Status::Final),
        "amended" => Some(Status::Amended),
        _ => None,
    }
}

/// The columns of a consolidation row, in `COPY` order.
const ROW_COLUMNS: &str = "report_id, version, case_id, site, status, amendments, reviewer, reviewer_role, \
                           review_type, received_date, reported_at, turnaround_days, category, slide_sha256, \
                           ethnic_category, imd_decile";

/// The current version of every report matching `filter`, as consolidation rows ordered by site,
/// then report id; `source` is `registry:REPORT_ID/vVERSION`. Fetched with one `COPY`, parsed
/// in parallel.
pub fn rows(client: &mut Client, filter: &Filter) -> Result<Vec<ReportRow>, RegistryError> {
    check_version(client)?;
    let query = format!("COPY ({}) TO STDOUT", filter.current(ROW_COLUMNS));
    let mut reader = client.copy_out(&query).map_err(RegistryError::database("the reports (COPY)"))?;
    // Parsed in 4 MB chunks of whole lines while the rest still arrives; sorted afterwards.
    let parsed: std::sync::Mutex<Vec<Result<Vec<ReportRow>, RegistryError>>> = Default::default();
    let mut failure = None;
    rayon::scope(|scope| {
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut chunk = std::mem::take(&mut carry);
            let start = chunk.len();
            chunk.resize(start + CHUNK_BYTES, 0);
            let n = match read_full(&mut reader, &mut chunk[start..]) {
                Ok(n) => n,
                Err(e) => {
                    failure = Some(RegistryError::Unexpected(format!("a broken COPY stream: {e}")));
                    break;
                }
            };
            chunk.truncate(start + n);
            let done = n < CHUNK_BYTES;
            if !done {
                // Keep the unfinished last line for the next chunk.
                let cut = chunk.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                carry = chunk.split_off(cut);
            }
            let parsed = &parsed;
            scope.spawn(move |_| {
                let rows = chunk.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(parse_row).collect();
                if let Ok(mut list) = parsed.lock() {
                    list.push(rows);
                }
            });
            if done {
                break;
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let parts = parsed.into_inner().map_err(|_| RegistryError::Unexpected("a parse worker failed".into()))?;
    let mut rows = Vec::new();
    for part in parts {
        rows.extend(part?);
    }
    Ok(in_site_then_id_order(rows))
}

/// Rows ordered by site, then report id, with integer keys (a million string comparisons with
/// long common prefixes cost more than the rest of the sort).
fn in_site_then_id_order(rows: Vec<ReportRow>) -> Vec<ReportRow> {
    let mut sites: Vec<String> = {
        let distinct: crate::stats::FastMap<&str, ()> = rows.iter().map(|r| (r.site.as_str(), ())).collect();
        distinct.into_keys().map(str::to_string).collect()
    };
    sites.sort_unstable();
    let rank: crate::stats::FastMap<&str, u32> =
        sites.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
    let mut keyed: Vec<((u32, u128), ReportRow)> = rows
        .into_par_iter()
        .map(|r| {
            let id = uuid::Uuid::parse_str(&r.report_id).map_or(0, |u| u.as_u128());
            ((rank.get(r.site.as_str()).copied().unwrap_or(u32::MAX), id), r)
        })
        .collect();
    keyed.par_sort_unstable_by_key(|(key, _)| *key);
    keyed.into_par_iter().map(|(_, r)| r).collect()
}

/// How much of a `COPY` answer is parsed at a time.
const CHUNK_BYTES: usize = 4 << 20;

/// Fill `buf` from `reader` unless it ends first; how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// One `COPY` text line's fields: `None` for `\N`, backslash escapes undone.
fn copy_fields(line: &[u8]) -> Vec<Option<Cow<'_, str>>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.split(|&b| b == b'\t')
        .map(|field| {
            if field == b"\\N" {
                return None;
            }
            // Most fields have no escape: borrowed as they are.
            if !field.contains(&b'\\') {
                if let Ok(text) = std::str::from_utf8(field) {
                    return Some(Cow::Borrowed(text));
                }
            }
            let mut out = Vec::with_capacity(field.len());
            let mut bytes = field.iter();
            while let Some(&b) = bytes.next() {
                if b != b'\\' {
                    out.push(b);
                    continue;
                }
                match bytes.next() {
                    Some(b't') => out.push(b'\t'),
                    Some(b'n') => out.push(b'\n'),
                    Some(b'r') => out.push(b'\r'),
                    Some(b'b') => out.push(8),
                    Some(b'f') => out.push(12),
                    Some(b'v') => out.push(11),
                    Some(&other) => out.push(other),
                    None => {}
                }
            }
            Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
        })
        .collect()
}

fn parse_row(line: &[u8]) -> Result<ReportRow, RegistryError> {
    let bad = |what: &str| {
        RegistryError::Unexpected(format!(
            "a report row with {what}: {}",
            crate::error::printable(&String::from_utf8_lossy(&line[..line.len().min(80)]))
        ))
    };
    let fields = copy_fields(line);
    let count = fields.len();
    let [report_id, version, case_id, site, status, amendments, reviewer, role, review_type, received_date, reported_at, turnaround_days, category, sha256, ethnic_category, imd_decile]: [Option<Cow<str>>; 16] =
        fields.try_into().map_err(|_| bad(&format!("{count} columns instead of 16")))?;
    let number = |value: Option<Cow<str>>| -> Result<Option<i64>, RegistryError> {
        value.map(|t| t.parse::<i64>().map_err(|_| bad("a column that is not a number"))).transpose()
    };
    let owned = |value: Option<Cow<str>>| value.map(Cow::into_owned);
    let text = |value: Option<Cow<str>>| value.map(Cow::into_owned).unwrap_or_default();
    let report_id = text(report_id);
    let version = number(version)?.unwrap_or(0);
    let status = status.as_deref().and_then(parse_status).ok_or_else(|| bad("an unknown status"))?;
    let (role, review_type) = (role.unwrap_or_default(), review_type.unwrap_or_default());
    Ok(ReportRow {
        source: format!("registry:{report_id}/v{version}"),
        report_id,
        case_id: text(case_id),
        site: text(site),
        status,
        amendments: number(amendments)?.unwrap_or(0).max(0) as usize,
        reviewer: text(reviewer),
        role: Role::ALL.into_iter().find(|r| r.as_str() == role).unwrap_or(Role::Other),
        review_type: ReviewType::ALL.into_iter().find(|r| r.as_str() == review_type).unwrap_or_default(),
        received_date: owned(received_date),
        reported_at: owned(reported_at),
        turnaround_days: number(turnaround_days)?,
        category: text(category),
        sha256: text(sha256),
        ethnic_category: owned(ethnic_category),
        imd_decile: number(imd_decile)?.and_then(|d| u8::try_from(d).ok()),
    })
}

/// What [`pull`] wrote.
#[derive(Debug, Default)]
pub struct PullOutcome {
    /// Report files written (or rewritten with a newer version).
    pub written: Vec<String>,
    /// Files already holding the report's current version.
    pub unchanged: usize,
    /// Rows that are not a valid report, with the reason (they are not written).
    pub invalid: Vec<(String, String)>,
}

/// The current version of one report as stored.
struct Stored {
    source: String,
    report_id: String,
    site: String,
    case_id: String,
    json: String,
}

fn current_json(client: &mut Client, filter: &Filter) -> Result<Vec<Stored>, RegistryError> {
    check_version(client)?;
    let query = format!(
        "SELECT * FROM ({}) current ORDER BY site, case_id, report_id",
        filter.current("report_id::text, version, site, case_id, report::text")
    );
    let rows = client.query(&query, &[]).map_err(RegistryError::database("the reports"))?;
    Ok(rows
        .iter()
        .map(|row| {
            let (report_id, version): (String, i32) = (row.get(0), row.get(1));
            Stored {
                source: format!("registry:{report_id}/v{version}"),
                report_id,
                site: row.get(2),
                case_id: row.get(3),
                json: row.get(4),
            }
        })
        .collect())
}

/// The current version of every report matching `filter`, parsed and checked (in parallel), as
/// `(source, report)`; rows that are not a valid report are returned apart with the reason.
#[allow(clippy::type_complexity)]
pub fn reports(
    client: &mut Client,
    filter: &Filter,
) -> Result<(Vec<(String, Report)>, Vec<(String, String)>), RegistryError> {
    let stored = current_json(client, filter)?;
    let parsed: Vec<(String, Result<Report, String>)> = stored
        .into_par_iter()
        .map(|s| {
            let report = Report::from_json(s.json.as_bytes()).map_err(|e| e.to_string());
            (s.source, report)
        })
        .collect();
    let (mut valid, mut invalid) = (Vec::new(), Vec::new());
    for (source, result) in parsed {
        match result {
            Ok(report) => valid.push((source, report)),
            Err(problem) => invalid.push((source, problem)),
        }
    }
    Ok((valid, invalid))
}

/// A pulled report's file name: `CASE_REPORTID.report.json`, the case id made safe and cut to
/// 80 characters; the report id makes it unique whatever two case ids or sites become when made
/// safe, and the same on every pull (a later `--since` pull replaces the same file).
fn pulled_file_name(case_id: &str, report_id: &str) -> String {
    let case: String = safe_file_stem(case_id).chars().take(80).collect();
    format!("{case}_{}{REPORT_SUFFIX}", safe_file_stem(report_id))
}

/// Write the current version of every report matching `filter` into
/// `out/SITE/CASE_REPORTID.report.json` ([`pulled_file_name`]), atomically, as stored.
pub fn pull(client: &mut Client, filter: &Filter, out: &Path) -> Result<PullOutcome, RegistryError> {
    let stored = current_json(client, filter)?;
    let mut outcome = PullOutcome::default();
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |error| RegistryError::Io { path, error }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    for s in &stored {
        if let Err(problem) = Report::from_json(s.json.as_bytes()) {
            outcome.invalid.push((s.source.clone(), problem.to_string()));
            continue;
        }
        let dir = out.join(safe_file_stem(&s.site));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(pulled_file_name(&s.case_id, &s.report_id));
        if std::fs::read(&path).is_ok_and(|old| old == s.json.as_bytes()) {
            outcome.unchanged += 1;
            continue;
        }
        crate::files::write_atomic(&path, s.json.as_bytes()).map_err(io(&path))?;
        outcome.written.push(path.display().to_string());
    }
    Ok(outcome)
}
