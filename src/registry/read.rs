//! The registry read back: the current version of every report the connecting role may see, as
//! consolidation rows (`wsiview registry consolidate`) or as report files (`wsiview registry
//! pull`).

use std::io::{BufRead, BufReader};
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
    /// The `WHERE` clause, values quoted as literals (`COPY` takes no parameters).
    fn clause(&self) -> String {
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
        if terms.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", terms.join(" AND "))
        }
    }
}

/// The columns of a consolidation row, in `COPY` order.
const ROW_COLUMNS: &str = "report_id, version, case_id, site, status, amendments, reviewer, reviewer_role, \
                           review_type, received_date, reported_at, turnaround_days, category, slide_sha256, \
                           ethnic_category, imd_decile";

/// The current version of every report matching `filter`, as consolidation rows ordered by site,
/// case and report id; `source` is `registry:REPORT_ID/vVERSION`. Fetched with one `COPY`, parsed
/// in parallel.
pub fn rows(client: &mut Client, filter: &Filter) -> Result<Vec<ReportRow>, RegistryError> {
    check_version(client)?;
    let query = format!("COPY (SELECT {ROW_COLUMNS} FROM wsiview.current_reports{}) TO STDOUT", filter.clause());
    let reader = client.copy_out(&query).map_err(RegistryError::database("the reports (COPY)"))?;
    let mut lines = Vec::new();
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    loop {
        let mut line = Vec::with_capacity(256);
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => lines.push(line),
            Err(e) => return Err(RegistryError::Unexpected(format!("a broken COPY stream: {e}"))),
        }
    }
    let mut rows = lines.par_iter().map(|line| parse_row(line)).collect::<Result<Vec<_>, _>>()?;
    rows.par_sort_by(|a, b| (&a.site, &a.case_id, &a.report_id).cmp(&(&b.site, &b.case_id, &b.report_id)));
    Ok(rows)
}

/// One `COPY` text line's fields: `None` for `\N`, backslash escapes undone.
fn copy_fields(line: &[u8]) -> Vec<Option<String>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.split(|&b| b == b'\t')
        .map(|field| {
            if field == b"\\N" {
                return None;
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
            Some(String::from_utf8_lossy(&out).into_owned())
        })
        .collect()
}

fn parse_row(line: &[u8]) -> Result<ReportRow, RegistryError> {
    let fields = copy_fields(line);
    let bad = |what: &str| {
        RegistryError::Unexpected(format!(
            "a report row with {what}: {}",
            crate::error::printable(&String::from_utf8_lossy(&line[..line.len().min(80)]))
        ))
    };
    if fields.len() != 16 {
        return Err(bad(&format!("{} columns instead of 16", fields.len())));
    }
    let text = |i: usize| fields[i].clone().unwrap_or_default();
    let number = |i: usize| -> Result<Option<i64>, RegistryError> {
        fields[i].as_deref().map(|t| t.parse::<i64>().map_err(|_| bad("a column that is not a number"))).transpose()
    };
    let status = match text(4).as_str() {
        "draft" => Status::Draft,
        "final" => Status::Final,
        "amended" => Status::Amended,
        _ => return Err(bad("an unknown status")),
    };
    let role = Role::ALL.into_iter().find(|r| r.as_str() == text(7)).unwrap_or(Role::Other);
    let review_type = ReviewType::ALL.into_iter().find(|r| r.as_str() == text(8)).unwrap_or_default();
    let report_id = text(0);
    let version = number(1)?.unwrap_or(0);
    Ok(ReportRow {
        source: format!("registry:{report_id}/v{version}"),
        report_id,
        case_id: text(2),
        site: text(3),
        status,
        amendments: number(5)?.unwrap_or(0).max(0) as usize,
        reviewer: text(6),
        role,
        review_type,
        received_date: fields[9].clone(),
        reported_at: fields[10].clone(),
        turnaround_days: number(11)?,
        category: text(12),
        sha256: text(13),
        ethnic_category: fields[14].clone(),
        imd_decile: number(15)?.and_then(|d| u8::try_from(d).ok()),
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
        "SELECT report_id::text, version, site, case_id, report::text FROM wsiview.current_reports{} \
         ORDER BY site, case_id, report_id",
        filter.clause()
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

/// Write the current version of every report matching `filter` into `out/SITE/CASE.report.json`
/// (`CASE_REPORTID.report.json` when the case has several reports), atomically, as stored.
pub fn pull(client: &mut Client, filter: &Filter, out: &Path) -> Result<PullOutcome, RegistryError> {
    let stored = current_json(client, filter)?;
    let mut outcome = PullOutcome::default();
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |error| RegistryError::Io { path, error }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut case_counts = std::collections::HashMap::new();
    for s in &stored {
        *case_counts.entry((s.site.as_str(), s.case_id.as_str())).or_insert(0) += 1;
    }
    for s in &stored {
        if let Err(problem) = Report::from_json(s.json.as_bytes()) {
            outcome.invalid.push((s.source.clone(), problem.to_string()));
            continue;
        }
        let dir = out.join(safe_file_stem(&s.site));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let several = case_counts.get(&(s.site.as_str(), s.case_id.as_str())).copied().unwrap_or(1) > 1;
        let stem = if several { format!("{}_{}", s.case_id, s.report_id) } else { s.case_id.clone() };
        let path = dir.join(format!("{}{REPORT_SUFFIX}", safe_file_stem(&stem)));
        if std::fs::read(&path).is_ok_and(|old| old == s.json.as_bytes()) {
            outcome.unchanged += 1;
            continue;
        }
        crate::files::write_atomic(&path, s.json.as_bytes()).map_err(io(&path))?;
        outcome.written.push(path.display().to_string());
    }
    Ok(outcome)
}
