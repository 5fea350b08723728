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

use super::html::escape as html_escape;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde_json::{json, Map, Value};
use walkdir::WalkDir;

use super::category_map::{normalise as category_key, CategoryMap};
use super::schema::{now_rfc3339, Report, Status, REPORT_SUFFIX};
use crate::annotations::{store, table::csv_field};

/// A report is a few kilobytes; a bigger file under that name is not read into memory whole.
pub const MAX_REPORT_BYTES: u64 = 16 << 20;

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

/// Report files under `dirs`, sorted by path, each real file once; missing folders and unreadable
/// sub-folders go to `invalid`. Also returns how many of `dirs` are folders.
fn find_report_files(dirs: &[PathBuf], invalid: &mut Vec<InvalidFile>) -> (Vec<PathBuf>, usize) {
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
fn read_report(file: &Path) -> Result<Report, String> {
    let mut bytes = Vec::new();
    crate::files::open_regular(file)
        .and_then(|f| f.take(MAX_REPORT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(format!("larger than {} MB: not a report", MAX_REPORT_BYTES >> 20));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("empty file".into());
    }
    let report = Report::from_json(&bytes)?;
    // A teaching copy repeats a real report under pseudonyms and a new id: counting it would count
    // that review twice.
    if report.extra.contains_key(super::teaching::TEACHING_FIELD) {
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
fn drop_duplicates(valid: Vec<ReportFile>) -> (Vec<ReportFile>, Vec<Duplicate>) {
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

/// The middle value of sorted values, or the mean of the two middle ones.
pub fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}

/// The nearest-rank percentile of sorted values: the ⌈p/100·n⌉-th smallest (always a value that
/// occurs, no interpolation).
pub fn percentile_nearest_rank(sorted: &[i64], percent: usize) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // Integer ceiling avoids 0.9·10 = 9.000000000000002 → rank 10.
    let rank = (percent.min(100) * n).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// `part` of `whole` as a percentage with one decimal, halves rounded up; None for an empty whole.
/// Integer arithmetic, so 1 of 8 is exactly 12.5 and 1 of 3 is 33.3.
pub fn percent_one_decimal(part: usize, whole: usize) -> Option<f64> {
    if whole == 0 {
        return None;
    }
    let (part, whole) = (part as u128, whole as u128);
    let tenths = (part * 2000 + whole) / (2 * whole);
    Some(tenths as f64 / 10.0)
}

fn site_stats(reports: &[ReportFile]) -> BTreeMap<String, SiteStats> {
    let mut turnarounds: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut by_site: BTreeMap<String, SiteStats> = BTreeMap::new();
    for ReportFile { report, .. } in reports {
        let site = report.site.trim().to_string();
        let stats = by_site.entry(site.clone()).or_default();
        stats.reports += 1;
        if report.status.is_signed_out() {
            stats.signed_out += 1;
            // A valid signed-out report has both dates, so this is always Some.
            if let Some(days) = report.turnaround_days() {
                turnarounds.entry(site).or_default().push(days);
            }
        }
    }
    for (site, mut days) in turnarounds {
        days.sort_unstable();
        let within = |limit: i64| percent_one_decimal(days.iter().filter(|&&d| d <= limit).count(), days.len());
        if let Some(stats) = by_site.get_mut(&site) {
            stats.turnaround_days_median = median(&days);
            stats.turnaround_days_p90 = percentile_nearest_rank(&days, 90);
            stats.within_7_days_pct = within(7);
            stats.within_10_days_pct = within(10);
        }
    }
    by_site
}

fn reviewer_stats(reports: &[ReportFile]) -> BTreeMap<String, ReviewerStats> {
    let mut by_reviewer: BTreeMap<String, ReviewerStats> = BTreeMap::new();
    for ReportFile { report, .. } in reports {
        let name = report.reviewer.name.trim();
        if name.is_empty() {
            continue;
        }
        let stats = by_reviewer.entry(name.to_string()).or_default();
        stats.reports += 1;
        stats.sites.insert(report.site.trim().to_string());
    }
    by_reviewer
}

/// How two reports' categories relate.
#[derive(Clone, Copy, PartialEq)]
enum Agreement {
    /// Equal categories, or categories of the same group.
    Agree,
    Disagree,
    /// Different categories, at least one without a group.
    NotComparable,
}

fn agreement(key_a: &str, key_b: &str, categories: &CategoryMap) -> Agreement {
    if key_a == key_b {
        return Agreement::Agree;
    }
    match (categories.group(key_a), categories.group(key_b)) {
        (Some(a), Some(b)) if a == b => Agreement::Agree,
        (Some(_), Some(_)) => Agreement::Disagree,
        _ => Agreement::NotComparable,
    }
}

fn concordance(reports: &[ReportFile], categories: &CategoryMap) -> Concordance {
    let mut by_slide: BTreeMap<&str, Vec<&ReportFile>> = BTreeMap::new();
    for entry in reports.iter().filter(|e| e.report.status.is_signed_out()) {
        by_slide.entry(entry.report.slide.sha256.as_str()).or_default().push(entry);
    }
    let mut result = Concordance { category_map: categories.source.clone(), ..Concordance::default() };
    for (sha256, group) in by_slide.into_iter().filter(|(_, group)| group.len() >= 2) {
        result.slides_reviewed_more_than_once += 1;
        let keys: Vec<String> = group.iter().map(|e| category_key(&e.report.diagnosis.category)).collect();
        let (mut compared, mut discordant) = (false, false);
        // Every differing pair, so a slide seen by three sites shows who disagreed with whom.
        for i in 0..group.len() {
            for j in i + 1..group.len() {
                let list = match agreement(&keys[i], &keys[j], categories) {
                    Agreement::Agree => {
                        compared = true;
                        continue;
                    }
                    Agreement::Disagree => {
                        (compared, discordant) = (true, true);
                        &mut result.pairs
                    }
                    Agreement::NotComparable => &mut result.not_comparable,
                };
                let (a, b) = (&group[i].report, &group[j].report);
                list.push(DiscordantPair {
                    sha256: sha256.to_string(),
                    case_id_a: a.case_id.trim().to_string(),
                    case_id_b: b.case_id.trim().to_string(),
                    site_a: a.site.trim().to_string(),
                    site_b: b.site.trim().to_string(),
                    category_a: a.diagnosis.category.trim().to_string(),
                    category_b: b.diagnosis.category.trim().to_string(),
                    group_a: categories.group(&keys[i]).map(str::to_string),
                    group_b: categories.group(&keys[j]).map(str::to_string),
                    report_id_a: a.report_id.clone(),
                    report_id_b: b.report_id.clone(),
                    file_a: group[i].file.clone(),
                    file_b: group[j].file.clone(),
                });
            }
        }
        if compared {
            result.slides_compared += 1;
        } else {
            result.slides_not_comparable += 1;
        }
        if discordant {
            result.discordant_slides += 1;
        }
    }
    result.concordance_pct =
        percent_one_decimal(result.slides_compared - result.discordant_slides, result.slides_compared);
    result
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

impl Summary {
    /// `summary.json`: the keys of issue 5, plus `duplicates` and `generated_at`.
    pub fn to_json(&self) -> Value {
        let invalid: Vec<Value> =
            self.invalid.iter().map(|i| json!({"file": path_text(&i.file), "error": i.error})).collect();
        let duplicates: Vec<Value> = self
            .duplicates
            .iter()
            .map(|d| json!({"file": path_text(&d.file), "report_id": d.report_id, "kept": path_text(&d.kept)}))
            .collect();
        let by_site: Map<String, Value> = self
            .by_site
            .iter()
            .map(|(site, s)| {
                let stats = json!({
                    "reports": s.reports,
                    "final": s.signed_out,
                    "turnaround_days_median": s.turnaround_days_median,
                    "turnaround_days_p90": s.turnaround_days_p90,
                    "within_7_days_pct": s.within_7_days_pct,
                    "within_10_days_pct": s.within_10_days_pct,
                });
                (site.clone(), stats)
            })
            .collect();
        let by_reviewer: Map<String, Value> = self
            .by_reviewer
            .iter()
            .map(|(name, r)| (name.clone(), json!({"reports": r.reports, "sites": r.sites})))
            .collect();
        let pair_json = |p: &DiscordantPair, with_files: bool| {
            let mut pair = json!({
                "sha256": p.sha256,
                "case_id": p.case_id_a,
                "site_a": p.site_a,
                "category_a": p.category_a,
                "group_a": p.group_a,
                "site_b": p.site_b,
                "category_b": p.category_b,
                "group_b": p.group_b,
                "report_id_a": p.report_id_a,
                "report_id_b": p.report_id_b,
            });
            // Sites number cases their own way; the second id only when it differs.
            if p.case_id_b != p.case_id_a {
                pair["case_id_b"] = json!(p.case_id_b);
            }
            if with_files {
                pair["file_a"] = json!(path_text(&p.file_a));
                pair["file_b"] = json!(path_text(&p.file_b));
            }
            pair
        };
        let pairs: Vec<Value> = self.concordance.pairs.iter().map(|p| pair_json(p, false)).collect();
        let not_comparable: Vec<Value> = self.concordance.not_comparable.iter().map(|p| pair_json(p, true)).collect();
        let c = &self.concordance;
        json!({
            "reports": self.reports.len(),
            "invalid": invalid,
            "duplicates": duplicates,
            "by_site": by_site,
            "by_reviewer": by_reviewer,
            "concordance": {
                "slides_reviewed_more_than_once": c.slides_reviewed_more_than_once,
                "discordant_slides": c.discordant_slides,
                "concordance_pct": c.concordance_pct,
                "pairs": pairs,
                "slides_compared": c.slides_compared,
                "slides_not_comparable": c.slides_not_comparable,
                "not_comparable": not_comparable,
                "category_map": c.category_map,
            },
            "generated_at": self.generated_at,
        })
    }

    /// "10000 reports (12 invalid, 3 duplicates) from 5 sites; 4 of 40 twice-reviewed slides discordant",
    /// and ", 2 not comparable" when some slides' categories could not be compared.
    pub fn headline(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let c = &self.concordance;
        let mut line = format!(
            "{} ({} invalid, {}) from {}; {} of {} twice-reviewed slides discordant",
            plural(self.reports.len(), "report", "reports"),
            self.invalid.len(),
            plural(self.duplicates.len(), "duplicate", "duplicates"),
            plural(self.by_site.len(), "site", "sites"),
            c.discordant_slides,
            c.slides_reviewed_more_than_once,
        );
        if c.slides_not_comparable > 0 {
            line += &format!(", {} not comparable", c.slides_not_comparable);
        }
        line
    }
}

/// Text from a report as a CSV field. Spreadsheet programs run a cell beginning with `=`, `+`,
/// `-` or `@` as a formula; these files come from other hospitals, so such a cell gets a leading
/// apostrophe, which makes them show it as text (OWASP "CSV injection").
fn csv_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        csv_field(&format!("'{text}"))
    } else {
        csv_field(text)
    }
}

fn csv_line(out: &mut String, fields: &[String]) {
    *out += &fields.join(",");
    *out += "\r\n";
}

/// `summary.csv`: one row per valid report, in path order; turnaround only for signed-out
/// reports. CRLF line ends (RFC 4180).
pub fn summary_csv(summary: &Summary) -> String {
    let mut out = String::new();
    let header = "file,report_id,case_id,site,status,reviewer,role,review_type,received_date,reported_at,\
                  turnaround_days,diagnosis_category,sha256";
    csv_line(&mut out, &[header.to_string()]);
    for ReportFile { file, report: r } in &summary.reports {
        let turnaround = if r.status.is_signed_out() { r.turnaround_days() } else { None };
        csv_line(
            &mut out,
            &[
                csv_text(&path_text(file)),
                csv_text(&r.report_id),
                csv_text(r.case_id.trim()),
                csv_text(r.site.trim()),
                r.status.as_str().to_string(),
                csv_text(r.reviewer.name.trim()),
                r.reviewer.role.as_str().to_string(),
                r.review_type.as_str().to_string(),
                csv_text(r.received_date.as_deref().unwrap_or_default()),
                csv_text(r.reported_at.as_deref().unwrap_or_default()),
                turnaround.map(|d| d.to_string()).unwrap_or_default(),
                csv_text(r.diagnosis.category.trim()),
                csv_text(&r.slide.sha256),
            ],
        );
    }
    out
}

/// `discordance.csv`: one row per discordant pair, with both files so each can be found.
pub fn discordance_csv(summary: &Summary) -> String {
    let mut out = String::new();
    // The group columns come last so readers of the earlier columns by position are unaffected.
    let header = "sha256,case_id,site_a,category_a,report_id_a,file_a,case_id_b,site_b,category_b,report_id_b,file_b,\
                  group_a,group_b";
    csv_line(&mut out, &[header.to_string()]);
    for p in &summary.concordance.pairs {
        csv_line(
            &mut out,
            &[
                csv_text(&p.sha256),
                csv_text(&p.case_id_a),
                csv_text(&p.site_a),
                csv_text(&p.category_a),
                csv_text(&p.report_id_a),
                csv_text(&path_text(&p.file_a)),
                csv_text(&p.case_id_b),
                csv_text(&p.site_b),
                csv_text(&p.category_b),
                csv_text(&p.report_id_b),
                csv_text(&path_text(&p.file_b)),
                csv_text(p.group_a.as_deref().unwrap_or_default()),
                csv_text(p.group_b.as_deref().unwrap_or_default()),
            ],
        );
    }
    out
}

const HTML_STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d2330; margin: 2em auto; max-width: 70em; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #d5d9e0; padding-bottom: 0.2em; }
.meta { color: #5a6270; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #d5d9e0; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f1f3f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.none { color: #8a919c; }
.error { color: #a1261b; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
";

fn html_number(value: Option<f64>, suffix: &str) -> String {
    value.map_or_else(|| "<span class=\"none\">—</span>".to_string(), |v| format!("{v:.1}{suffix}"))
}

fn html_table(out: &mut String, header: &[&str], numeric: &[bool], rows: &[Vec<String>]) {
    *out += "<table>\n<tr>";
    for h in header {
        *out += &format!("<th>{h}</th>");
    }
    *out += "</tr>\n";
    for row in rows {
        *out += "<tr>";
        for (i, cell) in row.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) { " class=\"num\"" } else { "" };
            *out += &format!("<td{class}>{cell}</td>");
        }
        *out += "</tr>\n";
    }
    *out += "</table>\n";
}

/// At most `max` characters, with an ellipsis when cut (chart labels).
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Horizontal bars of median and p90 turnaround per site, with reference lines at 7 and 10 days.
fn turnaround_chart(summary: &Summary) -> String {
    let sites: Vec<(&String, f64, i64)> = summary
        .by_site
        .iter()
        .filter_map(|(site, s)| Some((site, s.turnaround_days_median?, s.turnaround_days_p90?)))
        .collect();
    if sites.is_empty() {
        return "<p class=\"none\">No signed-out reports: no turnaround to chart.</p>\n".into();
    }
    let (label_width, plot_width, row_height, top, bottom) = (170.0, 520.0, 40.0, 28.0, 34.0);
    let longest = sites.iter().map(|s| s.2).max().unwrap_or(0).max(10) as f64;
    // A round scale end so the ticks fall on whole days.
    let tick_days = if longest <= 15.0 {
        1.0
    } else if longest <= 40.0 {
        5.0
    } else {
        (longest / 50.0).ceil() * 10.0
    };
    let scale_end = ((longest * 1.05) / tick_days).ceil() * tick_days;
    let x = |days: f64| label_width + days / scale_end * plot_width;
    let height = top + row_height * sites.len() as f64 + bottom;
    let width = label_width + plot_width + 60.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"Median and 90th percentile turnaround in days per site\">\n"
    );
    let plot_bottom = top + row_height * sites.len() as f64;
    let mut tick = 0.0;
    while tick <= scale_end + 1e-9 {
        svg += &format!(
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{plot_bottom}\" stroke=\"#eceef2\"/>\
             <text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{tick}</text>\n",
            x(tick),
            plot_bottom + 14.0
        );
        tick += tick_days;
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">days from receipt to report</text>\n",
        label_width + plot_width / 2.0,
        plot_bottom + 30.0
    );
    for (i, (site, median_days, p90_days)) in sites.iter().enumerate() {
        let y = top + row_height * i as f64;
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            label_width - 8.0,
            y + row_height / 2.0 + 4.0,
            html_escape(&clip(site, 22))
        );
        for (row, days, colour, name) in
            [(0.0, *median_days, "#4a78b5", "median"), (1.0, *p90_days as f64, "#e0913a", "p90")]
        {
            let bar_y = y + 6.0 + row * 14.0;
            svg += &format!(
                "<rect x=\"{label_width}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"12\" fill=\"{colour}\">\
                 <title>{} {name}: {days} days</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{days}</text>\n",
                (x(days) - label_width).max(1.0),
                html_escape(site),
                x(days) + 4.0,
                bar_y + 10.0
            );
        }
    }
    for limit in [7.0, 10.0] {
        svg += &format!(
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{plot_bottom}\" stroke=\"#a1261b\" \
             stroke-dasharray=\"4 3\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\" \
             style=\"fill:#a1261b\">{limit} days</text>\n",
            x(limit),
            top - 4.0,
            top - 8.0
        );
    }
    svg += &format!(
        "<rect x=\"{0}\" y=\"4\" width=\"12\" height=\"10\" fill=\"#4a78b5\"/><text x=\"{1}\" y=\"13\">median</text>\
         <rect x=\"{2}\" y=\"4\" width=\"12\" height=\"10\" fill=\"#e0913a\"/><text x=\"{3}\" y=\"13\">90th percentile</text>\n",
        4.0,
        20.0,
        80.0,
        96.0
    );
    svg += "</svg>\n";
    svg
}

/// `summary.html`: one self-contained page (inline CSS and SVG, no scripts or external files).
/// Every string from a report is escaped: reports come from other hospitals.
pub fn summary_html(summary: &Summary) -> String {
    let e = html_escape;
    let c = &summary.concordance;
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out += "<title>Case report consolidation</title>\n<style>";
    out += HTML_STYLE;
    out += "</style>\n</head>\n<body>\n<h1>Case report consolidation</h1>\n";
    out += &format!("<p class=\"meta\">{} · generated {}</p>\n", e(&summary.headline()), e(&summary.generated_at));
    out += "<p class=\"meta\">Turnaround: calendar days from specimen receipt to the date of the report, over \
            final and amended reports. Median: middle value (mean of the two middle values for an even \
            count). 90th percentile: nearest rank. Drafts count in the totals only.</p>\n";

    out += "<h2>Turnaround by site</h2>\n";
    out += &turnaround_chart(summary);
    let rows: Vec<Vec<String>> = summary
        .by_site
        .iter()
        .map(|(site, s)| {
            vec![
                e(site),
                s.reports.to_string(),
                s.signed_out.to_string(),
                html_number(s.turnaround_days_median, ""),
                s.turnaround_days_p90.map_or_else(|| html_number(None, ""), |d| d.to_string()),
                html_number(s.within_7_days_pct, " %"),
                html_number(s.within_10_days_pct, " %"),
            ]
        })
        .collect();
    html_table(
        &mut out,
        &["site", "reports", "final or amended", "median days", "p90 days", "within 7 days", "within 10 days"],
        &[false, true, true, true, true, true, true],
        &rows,
    );

    out += "<h2>By reviewer</h2>\n";
    let rows: Vec<Vec<String>> = summary
        .by_reviewer
        .iter()
        .map(|(name, r)| {
            let sites: Vec<String> = r.sites.iter().map(|s| e(s)).collect();
            vec![e(name), r.reports.to_string(), sites.join(", ")]
        })
        .collect();
    html_table(&mut out, &["reviewer", "reports", "sites"], &[false, true, false], &rows);

    out += "<h2>Concordance</h2>\n";
    out += &format!(
        "<p>{} slides reviewed more than once (final or amended reports, same SHA-256); {} discordant; \
         {} not comparable; concordance {} (of the {} slides whose reports could be compared).</p>\n",
        c.slides_reviewed_more_than_once,
        c.discordant_slides,
        c.slides_not_comparable,
        html_number(c.concordance_pct, " %"),
        c.slides_compared,
    );
    out += &format!(
        "<p class=\"meta\">Categories are compared by group ({} category map): equal categories, or \
         categories of the same group (B5a and malignant), agree. A pair whose categories differ where \
         either has no group is not comparable: listed below, not counted as discordant; a slide with \
         only such pairs is left out of the percentage.</p>\n",
        e(&c.category_map)
    );
    let category = |name: &str, group: &Option<String>| match group {
        Some(g) if category_key(name) != *g => format!("{} <span class=\"meta\">({})</span>", e(name), e(g)),
        Some(_) => e(name),
        None => format!("{} <span class=\"none\">(no group)</span>", e(name)),
    };
    let pair_rows = |pairs: &[DiscordantPair], with_files: bool| -> Vec<Vec<String>> {
        pairs
            .iter()
            .map(|p| {
                let case = if p.case_id_a == p.case_id_b {
                    e(&p.case_id_a)
                } else {
                    format!("{} / {}", e(&p.case_id_a), e(&p.case_id_b))
                };
                let mut row = vec![
                    format!("<code>{}…</code>", e(&clip(&p.sha256, 13))),
                    case,
                    e(&p.site_a),
                    category(&p.category_a, &p.group_a),
                    e(&p.site_b),
                    category(&p.category_b, &p.group_b),
                ];
                if with_files {
                    row.push(e(&path_text(&p.file_a)));
                    row.push(e(&path_text(&p.file_b)));
                }
                row
            })
            .collect()
    };
    let pair_header = ["slide (SHA-256)", "case", "site A", "category A", "site B", "category B"];
    if !c.pairs.is_empty() {
        html_table(&mut out, &pair_header, &[], &pair_rows(&c.pairs, false));
    }
    if !c.not_comparable.is_empty() {
        out += &format!("<h3>Not comparable ({})</h3>\n", c.not_comparable.len());
        out +=
            "<p class=\"meta\">Add the categories to a map file (<code>--category-map</code>) to compare them.</p>\n";
        let header: Vec<&str> = pair_header.iter().copied().chain(["file A", "file B"]).collect();
        html_table(&mut out, &header, &[], &pair_rows(&c.not_comparable, true));
    }

    if !summary.duplicates.is_empty() {
        out += &format!(
            "<h2>Duplicates ({})</h2>\n<p class=\"meta\">The same report found in more than one file is \
             counted once, from the most advanced copy.</p>\n",
            summary.duplicates.len()
        );
        let rows: Vec<Vec<String>> = summary
            .duplicates
            .iter()
            .map(|d| vec![e(&path_text(&d.file)), e(&d.report_id), e(&path_text(&d.kept))])
            .collect();
        html_table(&mut out, &["file", "report id", "counted from"], &[], &rows);
    }

    out += &format!("<h2>Invalid files ({})</h2>\n", summary.invalid.len());
    if summary.invalid.is_empty() {
        out += "<p class=\"none\">None.</p>\n";
    } else {
        let rows: Vec<Vec<String>> = summary
            .invalid
            .iter()
            .map(|i| vec![e(&path_text(&i.file)), format!("<span class=\"error\">{}</span>", e(&i.error))])
            .collect();
        html_table(&mut out, &["file", "problem"], &[], &rows);
    }
    out += "</body>\n</html>\n";
    out
}

/// Write [`OUTPUT_FILES`] into `out_dir` (created if missing), each atomically. The error names the
/// file that could not be written.
pub fn write_outputs(summary: &Summary, out_dir: &Path) -> io::Result<()> {
    let named = |path: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: cannot write: {e}", path.display()));
    std::fs::create_dir_all(out_dir).map_err(|e| named(out_dir, e))?;
    let mut json = serde_json::to_vec_pretty(&summary.to_json()).map_err(io::Error::other)?;
    json.push(b'\n');
    let contents = [
        json,
        summary_csv(summary).into_bytes(),
        discordance_csv(summary).into_bytes(),
        summary_html(summary).into_bytes(),
    ];
    for (name, bytes) in OUTPUT_FILES.iter().zip(contents) {
        let path = out_dir.join(name);
        store::write_atomic(&path, &bytes).map_err(|e| named(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[4]), Some(4.0));
        assert_eq!(median(&[1, 2, 9]), Some(2.0));
        assert_eq!(median(&[1, 2, 3, 9]), Some(2.5));
        assert_eq!(median(&[7, 8]), Some(7.5));
        assert_eq!(median(&[0, 0, 30, 30]), Some(15.0));
    }

    #[test]
    fn p90_is_the_nearest_rank_value() {
        assert_eq!(percentile_nearest_rank(&[], 90), None);
        assert_eq!(percentile_nearest_rank(&[5], 90), Some(5));
        // n = 10: rank ⌈9⌉ = 9, not 10 (floating point would give 9.000000000000002 → 10).
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile_nearest_rank(&ten, 90), Some(9));
        // n = 11: rank ⌈9.9⌉ = 10.
        let eleven: Vec<i64> = (1..=11).collect();
        assert_eq!(percentile_nearest_rank(&eleven, 90), Some(10));
        // n = 9: rank ⌈8.1⌉ = 9, the largest; a value that occurs, never interpolated.
        assert_eq!(percentile_nearest_rank(&[1, 2, 3, 4, 5, 6, 7, 8, 100], 90), Some(100));
        assert_eq!(percentile_nearest_rank(&[3, 4], 0), Some(3), "rank is at least 1");
        assert_eq!(percentile_nearest_rank(&[3, 4], 100), Some(4));
    }

    #[test]
    fn percentages_have_one_decimal_with_halves_rounded_up() {
        assert_eq!(percent_one_decimal(0, 0), None);
        assert_eq!(percent_one_decimal(1, 3), Some(33.3));
        assert_eq!(percent_one_decimal(2, 3), Some(66.7));
        assert_eq!(percent_one_decimal(1, 8), Some(12.5));
        assert_eq!(percent_one_decimal(4, 7), Some(57.1));
        assert_eq!(percent_one_decimal(5, 7), Some(71.4));
        // 0.15 % exactly: a half, rounded up (0.15 in floating point is just below 0.15).
        assert_eq!(percent_one_decimal(3, 2000), Some(0.2));
        // 0.125 %: below the half.
        assert_eq!(percent_one_decimal(1, 800), Some(0.1));
        assert_eq!(percent_one_decimal(9999, 10000), Some(100.0));
        assert_eq!(percent_one_decimal(7, 7), Some(100.0));
        assert_eq!(percent_one_decimal(0, 7), Some(0.0));
    }

    #[test]
    fn html_escape_covers_markup_and_attribute_quotes() {
        assert_eq!(html_escape("<script>a&b</script>"), "&lt;script&gt;a&amp;b&lt;/script&gt;");
        assert_eq!(html_escape("\"x\" 'y'"), "&quot;x&quot; &#39;y&#39;");
    }

    #[test]
    fn csv_cells_that_spreadsheets_would_run_are_made_text() {
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("B5b"), "B5b");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
    }
}
