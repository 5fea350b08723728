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
//! Parts: [`read`] finds and reads the report files (bounded, each file once, duplicates
//! resolved), [`stats`] computes workload, turnaround and concordance, [`render`] writes
//! `summary.json`, the CSVs and `summary.html`. This module holds the types they share.

mod read;
pub mod render;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::category_map::CategoryMap;
use super::schema::{now_rfc3339, Report};

use read::{drop_duplicates, find_report_files, read_report};
pub use render::{discordance_csv, summary_csv, summary_html, write_outputs};
use stats::{concordance, reviewer_stats, site_stats};

/// The output files [`write_outputs`] writes.
pub const OUTPUT_FILES: [&str; 4] = ["summary.json", "summary.csv", "discordance.csv", "summary.html"];

/// A valid report and the file it was read from.
#[derive(Clone, Debug)]
pub struct ReportFile {
    pub file: PathBuf,
    pub report: Report,
}

/// A file (or folder argument) that could not be used, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidFile {
    pub file: PathBuf,
    pub error: String,
}

/// A second copy of a report already counted from `kept`.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplicate {
    pub file: PathBuf,
    pub report_id: String,
    pub kept: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteStats {
    /// Every valid report of the site, drafts included.
    pub reports: usize,
    /// Signed-out reports (final or amended): the ones turnaround counts.
    pub signed_out: usize,
    /// None when the site has no signed-out report (as are the three below).
    pub turnaround_days_median: Option<f64>,
    pub turnaround_days_p90: Option<i64>,
    pub within_7_days_pct: Option<f64>,
    pub within_10_days_pct: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReviewerStats {
    pub reports: usize,
    pub sites: BTreeSet<String>,
}

/// Two signed-out reports of one slide whose diagnosis categories differ — in group (discordant)
/// or where a category has no group (not comparable); `a` comes first in path order.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscordantPair {
    pub sha256: String,
    pub case_id_a: String,
    pub case_id_b: String,
    pub site_a: String,
    pub site_b: String,
    pub category_a: String,
    pub category_b: String,
    /// The categories' groups in the [`CategoryMap`]; None when not mapped.
    pub group_a: Option<String>,
    pub group_b: Option<String>,
    pub report_id_a: String,
    pub report_id_b: String,
    pub file_a: PathBuf,
    pub file_b: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Concordance {
    pub slides_reviewed_more_than_once: usize,
    /// Slides reviewed more than once with at least one comparable pair of reports: the
    /// denominator of `concordance_pct`.
    pub slides_compared: usize,
    /// Slides reviewed more than once whose reports could not be compared at all (every pair
    /// differs and has a category without a group): left out of `concordance_pct`.
    pub slides_not_comparable: usize,
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

#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Valid reports, one per `report_id`, in path order.
    pub reports: Vec<ReportFile>,
    /// In path order.
    pub invalid: Vec<InvalidFile>,
    /// In path order.
    pub duplicates: Vec<Duplicate>,
    /// Site codes trimmed.
    pub by_site: BTreeMap<String, SiteStats>,
    /// Names trimmed; reports without a reviewer name (drafts may lack one) are not listed.
    pub by_reviewer: BTreeMap<String, ReviewerStats>,
    pub concordance: Concordance,
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

/// [`consolidate`] with a category map of the caller's.
pub fn consolidate_with(
    dirs: &[PathBuf],
    categories: &CategoryMap,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Summary {
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
    Summary {
        by_site: site_stats(&reports),
        by_reviewer: reviewer_stats(&reports),
        concordance: concordance(&reports, categories),
        reports,
        invalid,
        duplicates,
        folders_read,
        generated_at: now_rfc3339(),
    }
}
