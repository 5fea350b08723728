//! `wsiview consolidate`: many sites' case reports merged into one summary — workload per site
//! and reviewer, turnaround, and concordance where the same slide was reviewed more than once.
//!
//! Rules (issue 5; README "Consolidating reports"):
//! - Input is every regular file named `*.report.json` under the given folders. Symbolic links are
//!   not followed, so a link back up the tree cannot loop and a linked report is not read twice.
//! - A file that cannot be read or is not a valid report is listed in `invalid` and the run goes
//!   on; so is a folder argument that does not exist.
//! - The same `report_id` in several files (a report copied to two folders) counts once: the most
//!   advanced copy is kept (amended > final > draft, then more amendments, then the first in path
//!   order) and the others are listed in `duplicates`.
//! - Turnaround ([`Report::turnaround_days`]) and concordance count signed-out reports only (final
//!   or amended). Median: the middle value, or the mean of the two middle values. p90: nearest rank,
//!   the ⌈0.9·n⌉-th smallest. Percentages 0–100, one decimal, halves rounded up.
//! - Diagnosis categories are compared trimmed and case-insensitively ("B5b" = " b5b "), and
//!   through a [`CategoryMap`] of comparable groups ("B5a" and "malignant" agree). Equal
//!   categories always agree; two categories that differ where either has no group are "not
//!   comparable": listed apart, never counted as discordant. A slide whose pairs are all not
//!   comparable is left out of `concordance_pct` (it cannot be said to agree or disagree).
//!
//! - Turnaround is also broken down by ethnic category and IMD quintile per site and network-wide,
//!   with small-number suppression ([`equity`]); `summary-public.html` holds only those suppressed,
//!   aggregate figures.
//!
//! Parts: `read` finds and reads the report files (bounded, each file once, duplicates
//! resolved; [`read_reports`] is the one reading path, used here, by the research export and by
//! the registry's push), `stats` computes workload, turnaround and concordance, [`equity`] the
//! suppressed breakdowns and published workload, [`render`] writes `summary.json`, the CSVs,
//! `summary.html` and `summary-public.html`. This module holds the types they share.

pub mod equity;
mod read;
pub mod render;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::category_map::CategoryMap;
use super::schema::{now_rfc3339, Report, ReviewType, Role, Status};

use equity::{published, EquityTables, PublicWorkload};
use read::drop_duplicates;
pub(crate) use read::{find_report_files, read_report};
pub use render::{discordance_csv, summary_csv, summary_html, summary_public_html, write_outputs};
use stats::{concordance, reviewer_stats, site_stats};

/// The output files [`write_outputs`] writes.
pub const OUTPUT_FILES: [&str; 5] =
    ["summary.json", "summary.csv", "discordance.csv", "summary.html", "summary-public.html"];

/// A valid report and the file it was read from.
#[derive(Clone, Debug)]
pub struct ReportFile {
    /// The report file's path as found under the folder argument (not resolved to its real path).
    pub file: PathBuf,
    /// The report as read and checked ([`Report::read`]); never a teaching copy.
    pub report: Report,
}

/// One report as consolidation counts it: the fields the figures need, trimmed as they are
/// compared, from a report file ([`ReportRow::from_report`]) or from the registry's columns.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRow {
    /// Where the report was read: its file's path as found under the folder argument, or
    /// `registry:REPORT_ID/vVERSION` for a registry's report.
    pub source: String,
    /// The `report_id` as written.
    pub report_id: String,
    /// `case_id`, trimmed.
    pub case_id: String,
    /// `site`, trimmed.
    pub site: String,
    /// `status`.
    pub status: Status,
    /// How many amendments the report lists (a duplicated report's further copy wins).
    pub amendments: usize,
    /// `reviewer.name`, trimmed (may be empty in a draft).
    pub reviewer: String,
    /// `reviewer.role`.
    pub role: Role,
    /// `review_type`.
    pub review_type: ReviewType,
    /// `received_date` as written (YYYY-MM-DD).
    pub received_date: Option<String>,
    /// `reported_at` as written (RFC 3339).
    pub reported_at: Option<String>,
    /// Days from receipt to report ([`Report::turnaround_days`]), for signed-out reports only.
    pub turnaround_days: Option<i64>,
    /// `diagnosis.category`, trimmed, case kept.
    pub category: String,
    /// `slide.sha256`.
    pub sha256: String,
    /// `equity.ethnic_category`, when recorded.
    pub ethnic_category: Option<String>,
    /// `equity.imd_decile`, when recorded.
    pub imd_decile: Option<u8>,
}

impl ReportRow {
    /// The row of a valid report read from `source`.
    pub fn from_report(source: String, r: &Report) -> ReportRow {
        let equity = r.equity.as_ref();
        ReportRow {
            source,
            report_id: r.report_id.clone(),
            case_id: r.case_id.trim().to_string(),
            site: r.site.trim().to_string(),
            status: r.status,
            amendments: r.amendments.len(),
            reviewer: r.reviewer.name.trim().to_string(),
            role: r.reviewer.role,
            review_type: r.review_type,
            received_date: r.received_date.clone(),
            reported_at: r.reported_at.clone(),
            turnaround_days: if r.status.is_signed_out() { r.turnaround_days() } else { None },
            category: r.diagnosis.category.trim().to_string(),
            sha256: r.slide.sha256.clone(),
            ethnic_category: equity.and_then(|e| e.ethnic_category.clone()),
            imd_decile: equity.and_then(|e| e.imd_decile),
        }
    }
}

/// A file (or folder argument) that could not be used, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidFile {
    /// The file, sub-folder or folder argument, as found or given.
    pub file: PathBuf,
    /// Why it was not used, in plain words without the file name ("no such folder", the
    /// report's problems, "a teaching copy …: not counted"), made printable.
    pub error: String,
}

/// A second copy of a report already counted from `kept`.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplicate {
    /// The copy not counted.
    pub file: PathBuf,
    /// Its `report_id` as written (copies match as UUIDs, whatever their case or braces).
    pub report_id: String,
    /// The copy counted instead: the most advanced one (amended > final > draft, then more
    /// amendments, then the first in path order).
    pub kept: PathBuf,
}

/// One site's workload and turnaround (sites keyed by their trimmed `site` code). Turnaround is
/// in calendar days from `received_date` to the date of `reported_at`
/// ([`Report::turnaround_days`]), over signed-out reports only.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteStats {
    /// Every valid report of the site, drafts included.
    pub reports: usize,
    /// Signed-out reports (final or amended): the ones turnaround counts.
    pub signed_out: usize,
    /// None when the site has no signed-out report (as are the three below).
    pub turnaround_days_median: Option<f64>,
    /// 90th percentile of turnaround in days, by nearest rank (the ⌈0.9·n⌉-th smallest).
    pub turnaround_days_p90: Option<i64>,
    /// Percentage (0–100, one decimal) of signed-out reports with a turnaround of at most 7 days.
    pub within_7_days_pct: Option<f64>,
    /// Percentage (0–100, one decimal) of signed-out reports with a turnaround of at most 10
    /// days.
    pub within_10_days_pct: Option<f64>,
}

/// One reviewer's workload (reviewers keyed by their trimmed `reviewer.name`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReviewerStats {
    /// Every valid report the reviewer wrote, drafts included.
    pub reports: usize,
    /// The (trimmed) site codes of those reports.
    pub sites: BTreeSet<String>,
}

/// Two signed-out reports of one slide whose diagnosis categories differ — in group (discordant)
/// or where a category has no group (not comparable); `a` comes first in path order.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscordantPair {
    /// The slide both reports are about (`slide.sha256`, 64 lower-case hex digits).
    pub sha256: String,
    /// Report `a`'s case id, trimmed (sites may number the same slide differently).
    pub case_id_a: String,
    /// Report `b`'s case id, trimmed.
    pub case_id_b: String,
    /// Report `a`'s site code, trimmed.
    pub site_a: String,
    /// Report `b`'s site code, trimmed.
    pub site_b: String,
    /// Report `a`'s `diagnosis.category`, trimmed, as written (case kept).
    pub category_a: String,
    /// Report `b`'s `diagnosis.category`, trimmed, as written.
    pub category_b: String,
    /// Category `a`'s group in the [`CategoryMap`]; None when not mapped.
    pub group_a: Option<String>,
    /// Category `b`'s group in the [`CategoryMap`]; None when not mapped.
    pub group_b: Option<String>,
    /// Report `a`'s `report_id`.
    pub report_id_a: String,
    /// Report `b`'s `report_id`.
    pub report_id_b: String,
    /// Where report `a` was read ([`ReportRow::source`]).
    pub source_a: String,
    /// Where report `b` was read.
    pub source_b: String,
}

/// How the reports of slides reviewed more than once agree. Slides are matched by
/// `slide.sha256` and only signed-out reports count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Concordance {
    /// Slides (distinct `slide.sha256`) with two or more signed-out reports.
    pub slides_reviewed_more_than_once: usize,
    /// Slides reviewed more than once with at least one comparable pair of reports: the
    /// denominator of `concordance_pct`.
    pub slides_compared: usize,
    /// Slides reviewed more than once whose reports could not be compared at all (every pair
    /// differs and has a category without a group): left out of `concordance_pct`.
    pub slides_not_comparable: usize,
    /// Compared slides with at least one discordant pair (categories in different groups).
    pub discordant_slides: usize,
    /// Concordant share of `slides_compared`; None when there is none.
    pub concordance_pct: Option<f64>,
    /// Discordant pairs: both categories have groups, and the groups differ.
    pub pairs: Vec<DiscordantPair>,
    /// Pairs whose categories differ where either has no group.
    pub not_comparable: Vec<DiscordantPair>,
    /// Where the category map came from ([`CategoryMap::source`]).
    pub category_map: String,
}

/// The result of [`consolidate`]: every report read, what was not used, and the statistics;
/// [`render`] writes it as `summary.json`, the CSVs, `summary.html` and `summary-public.html`.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Valid reports, one per `report_id`, in path order (a registry's: by site, then case).
    pub reports: Vec<ReportRow>,
    /// In path order.
    pub invalid: Vec<InvalidFile>,
    /// In path order.
    pub duplicates: Vec<Duplicate>,
    /// Site codes trimmed.
    pub by_site: BTreeMap<String, SiteStats>,
    /// Names trimmed; reports without a reviewer name (drafts may lack one) are not listed.
    pub by_reviewer: BTreeMap<String, ReviewerStats>,
    /// Agreement between reports of the same slide.
    pub concordance: Concordance,
    /// Turnaround by ethnic category and by IMD quintile, per site and network-wide, suppressed
    /// for publication ([`equity`]).
    pub equity: EquityTables,
    /// Per-site and network workload and turnaround, suppressed for publication.
    pub public_workload: PublicWorkload,
    /// Folder arguments that existed and were searched.
    pub folders_read: usize,
    /// RFC 3339.
    pub generated_at: String,
}

/// Read every report under `dirs` and summarise them, comparing categories with the built-in
/// [`CategoryMap`]. `progress(done, total)` is called from worker threads after each file is
/// read. Never fails: problems are listed in the summary.
pub fn consolidate(dirs: &[PathBuf], progress: &(dyn Fn(usize, usize) + Sync)) -> Summary {
    consolidate_with(dirs, &CategoryMap::built_in(), progress)
}

/// What [`read_reports`] found under the folders: the valid reports, one per `report_id`, and
/// what was not used. The one reading path of consolidation and the research export.
#[derive(Clone, Debug, Default)]
pub struct ReadReports {
    /// Valid reports (never teaching copies), one per `report_id` (the most advanced copy), in
    /// path order.
    pub reports: Vec<ReportFile>,
    /// Files and folder arguments that could not be used, in path order.
    pub invalid: Vec<InvalidFile>,
    /// Further copies of a report already in `reports`, in path order.
    pub duplicates: Vec<Duplicate>,
    /// Folder arguments that existed and were searched.
    pub folders_read: usize,
}

/// Read every `*.report.json` under `dirs` by the rules of this module: each real file once,
/// teaching copies and invalid files listed in `invalid`, duplicated report ids resolved to the
/// most advanced copy. `progress(done, total)` is called from worker threads after each file is
/// read. Never fails: problems are listed.
pub fn read_reports(dirs: &[PathBuf], progress: &(dyn Fn(usize, usize) + Sync)) -> ReadReports {
    let mut invalid = Vec::new();
    let (files, folders_read) = find_report_files(dirs, &mut invalid);
    let total = files.len();
    let done = AtomicUsize::new(0);
    // The order of `files` is kept by rayon's indexed collect, so the result is deterministic.
    let parsed: Vec<Result<Report, String>> = files
        .par_iter()
        .map(|file| {
            let result = read_report(file);
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            result
        })
        .collect();

    let mut valid = Vec::new();
    for (file, result) in files.into_iter().zip(parsed) {
        match result {
            Ok(report) => valid.push(ReportFile { file, report }),
            Err(error) => invalid.push(InvalidFile { file, error: crate::error::printable(&error) }),
        }
    }
    invalid.sort_by(|a, b| a.file.cmp(&b.file));
    let (reports, duplicates) = drop_duplicates(valid);
    ReadReports { reports, invalid, duplicates, folders_read }
}

/// [`consolidate`] with a category map of the caller's.
pub fn consolidate_with(
    dirs: &[PathBuf],
    categories: &CategoryMap,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Summary {
    let read = read_reports(dirs, progress);
    let rows = read.reports.iter().map(|r| ReportRow::from_report(r.file.display().to_string(), &r.report)).collect();
    let mut summary = summarise(rows, categories);
    summary.invalid = read.invalid;
    summary.duplicates = read.duplicates;
    summary.folders_read = read.folders_read;
    summary
}

/// The statistics of reports already read, one row per report (each `report_id` once): what
/// [`consolidate_with`] computes after reading the files, and the registry's consolidation from
/// its rows. `invalid`, `duplicates` and `folders_read` are left empty for the caller.
pub fn summarise(rows: Vec<ReportRow>, categories: &CategoryMap) -> Summary {
    // The parts are independent: on two cores, two at a time.
    let ((by_site, by_reviewer), (concordance, (equity, public_workload))) = rayon::join(
        || (site_stats(&rows), reviewer_stats(&rows)),
        || rayon::join(|| concordance(&rows, categories), || published(&rows)),
    );
    Summary {
        by_site,
        by_reviewer,
        concordance,
        equity,
        public_workload,
        reports: rows,
        invalid: Vec::new(),
        duplicates: Vec::new(),
        folders_read: 0,
        generated_at: now_rfc3339(),
    }
}
