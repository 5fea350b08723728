//! `wsiview export-research`: signed-out case reports as a de-identified research dataset —
//! `research.csv`, `data-dictionary.json` and `manifest.json` (README "Research export").
//!
//! What a row keeps (one row per signed-out report; drafts are not exported):
//! - the case id and report id as keyed pseudonyms, exactly as teaching copies make them
//!   ([`PseudonymKey::case_pseudonym`], [`PseudonymKey::report_uuid`]), so the same key gives the
//!   same pseudonyms;
//! - the site code, review type, diagnosis category and SNOMED CT codes (digits only);
//! - `received_date` reduced to its month (`period`) and turnaround in whole days
//!   ([`Report::turnaround_days`]). The month of sign-out is not exported: with the month of
//!   receipt and the exact turnaround it would pin dates (received 2026-01, reported 2026-02,
//!   1 day ⇒ received on 31 January, reported on 1 February);
//! - annotation counts per class (no areas, lengths or file names);
//! - the broad ethnic group ([`ethnic_group`], never the code) and the IMD quintile
//!   ([`imd_quintile`], never the decile).
//!
//! Nothing else: no reviewer or amender names, no free text (specimen, clinical details,
//! macroscopy, microscopy, diagnosis text, comments, amendment reasons), no exact dates, no slide
//! file names, URLs, DICOM UIDs or hashes, no fields this version does not know.
//!
//! Small cells (k-anonymity with k = [`K`]): the quasi-identifiers are (site, period, diagnosis
//! category, ethnic group, IMD quintile). Every row starts at level 0 (month). Rows whose
//! combination occurs fewer than [`K`] times among the rows still pending go one level further,
//! and are counted again among themselves only: 1 = quarter (`YYYY-Qn`, both periods), 2 = quarter
//! without the IMD quintile, 3 = quarter without either equity field; rows still in a combination
//! of fewer than [`K`] at level 3 are withheld. A removed equity field is written empty, as a
//! field not recorded is, so combinations published at different levels can only merge — every
//! combination in the CSV occurs at least [`K`] times (the "k-anonymity" of Sweeney 2002, with
//! the NHS small-number suppression threshold of 5 from the ONS/NHS Digital disclosure-control
//! guidance). Counts are of rows (reports), not patients.
//!
//! The core ([`research_dataset`], [`write_dataset`]) takes reports already read and checked (one
//! per report id), so a registry can feed it as well as the folder reader
//! ([`super::consolidate::read_reports`]).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::schema::{ethnic_group, imd_quintile, now_rfc3339, parse_date, Report};
use super::teaching::PseudonymKey;
use crate::files::write_atomic;
use crate::text::csv_text;

/// The smallest number of rows a published combination of quasi-identifiers may have.
pub const K: usize = 5;
/// The dataset's rows.
pub const CSV_FILE: &str = "research.csv";
/// Every column: name, type, meaning, coarsening.
pub const DICTIONARY_FILE: &str = "data-dictionary.json";
/// Where the rows came from and what the generalisation did; written last.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The files [`write_dataset`] writes, in the order it writes them.
pub const OUTPUT_FILES: [&str; 3] = [CSV_FILE, DICTIONARY_FILE, MANIFEST_FILE];
/// The value of the manifest's and the dictionary's `format` field.
pub const FORMAT: &str = "wsiview.research/1";

/// How far a row was generalised to reach [`K`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Level 0: periods are months, both equity fields kept.
    Month,
    /// Level 1: periods are quarters.
    Quarter,
    /// Level 2: quarters, IMD quintile removed.
    QuarterWithoutImd,
    /// Level 3: quarters, IMD quintile and ethnic group removed.
    QuarterWithoutEquity,
}

impl Level {
    /// The levels in the order rows pass through them.
    pub const ALL: [Level; 4] = [Level::Month, Level::Quarter, Level::QuarterWithoutImd, Level::QuarterWithoutEquity];
}

/// A month of the calendar: what a date is reduced to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// The year, e.g. 2026.
    pub year: i32,
    /// 1–12.
    pub month: u8,
}

impl Month {
    /// `YYYY-MM` at [`Level::Month`]; at every further level `YYYY-Qn` (quarter n = ⌈month / 3⌉).
    pub fn label(self, level: Level) -> String {
        if level == Level::Month {
            format!("{:04}-{:02}", self.year, self.month)
        } else {
            format!("{:04}-Q{}", self.year, self.month.div_ceil(3))
        }
    }
}

/// One signed-out report as the dataset holds it, before the period is written out.
#[derive(Clone, Debug, PartialEq)]
pub struct ResearchRow {
    /// [`PseudonymKey::case_pseudonym`] of `case_id`.
    pub case_pseudonym: String,
    /// [`PseudonymKey::report_uuid`] of `report_id`.
    pub report_pseudonym: String,
    /// `site`, trimmed.
    pub site: String,
    /// The month of `received_date`.
    pub received: Month,
    /// [`Report::turnaround_days`]: calendar days from receipt to report.
    pub turnaround_days: Option<i64>,
    /// `review_type` as the schema writes it (`second_opinion`).
    pub review_type: &'static str,
    /// `diagnosis.category`, trimmed, case kept.
    pub category: String,
    /// `diagnosis.snomed_ct` codes that are SNOMED CT identifiers (6–18 digits), trimmed, sorted,
    /// each once; anything else is dropped (it could be free text).
    pub snomed_ct: Vec<String>,
    /// `(class, count)` from `annotations.by_class`, counts of a class named twice summed; the
    /// unclassified as `(unclassified)`.
    pub annotations: Vec<(String, u64)>,
    /// The broad group of `equity.ethnic_category` ([`ethnic_group`]); None when not recorded.
    pub ethnic_group: Option<&'static str>,
    /// [`imd_quintile`] of `equity.imd_decile`; None when not recorded.
    pub imd_quintile: Option<u8>,
    /// How far the row was generalised; None when it is withheld.
    pub level: Option<Level>,
}

impl ResearchRow {
    /// The row of a signed-out report with a valid `received_date`; None otherwise (a draft, or
    /// a report [`Report::problems`] would refuse).
    pub fn from_report(report: &Report, key: &PseudonymKey) -> Option<ResearchRow> {
        if !report.status.is_signed_out() {
            return None;
        }
        let received = parse_date(report.received_date.as_deref()?).ok()?;
        let equity = report.equity.as_ref();
        Some(ResearchRow {
            case_pseudonym: key.case_pseudonym(&report.case_id),
            report_pseudonym: key.report_uuid(&report.report_id),
            site: report.site.trim().to_string(),
            received: Month { year: received.year(), month: u8::from(received.month()) },
            turnaround_days: report.turnaround_days(),
            review_type: report.review_type.as_str(),
            category: report.diagnosis.category.trim().to_string(),
            snomed_ct: snomed_codes(&report.diagnosis.snomed_ct),
            annotations: class_counts(report),
            ethnic_group: equity.and_then(|e| e.ethnic_category.as_deref()).and_then(ethnic_group),
            imd_quintile: equity.and_then(|e| e.imd_decile).and_then(imd_quintile),
            level: Some(Level::Month),
        })
    }

    /// The quasi-identifiers as published at `level`: (site, period, category, ethnic group, IMD
    /// quintile), removed fields empty.
    fn quasi_identifiers(&self, level: Level) -> (String, String, String, String, String) {
        let ethnic = if level >= Level::QuarterWithoutEquity { None } else { self.ethnic_group };
        let imd = if level >= Level::QuarterWithoutImd { None } else { self.imd_quintile };
        (
            self.site.clone(),
            self.received.label(level),
            self.category.clone(),
            ethnic.unwrap_or_default().to_string(),
            imd.map(|q| q.to_string()).unwrap_or_default(),
        )
    }
}

/// SNOMED CT identifiers are 6 to 18 digits (SNOMED CT Technical Implementation Guide, "SCTID").
fn snomed_codes(codes: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = codes
        .iter()
        .map(|c| c.trim())
        .filter(|c| (6..=18).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    kept.sort();
    kept.dedup();
    kept
}

/// The name an unclassified annotation count is published under.
pub const UNCLASSIFIED: &str = "(unclassified)";

/// Per-class annotation counts, by trimmed class name; `;` and `:` in a name (the column's
/// separators) become `_`.
fn class_counts(report: &Report) -> Vec<(String, u64)> {
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for class in &report.annotations.by_class {
        let name = class.class.trim();
        let name = if name.is_empty() { UNCLASSIFIED.to_string() } else { name.replace([';', ':'], "_") };
        *counts.entry(name).or_default() += class.count;
    }
    counts.into_iter().collect()
}

/// Where the reports came from, as the manifest records it (no paths: they are the exporting
/// site's, not the dataset's).
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// `"folders"` (report files) or `"registry"`.
    pub kind: String,
    /// Folder arguments read (0 for a registry).
    pub folders_read: usize,
    /// Files that were not valid reports, or were teaching copies, and were not read.
    pub invalid: usize,
    /// Further copies of a report id, not counted twice.
    pub duplicates: usize,
}

/// The dataset: every signed-out report's row, with its generalisation level (None: withheld).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Signed-out reports, the published ones first, sorted by their published site, period,
    /// category, ethnic group and IMD quintile, then by pseudonyms: not in input order (which
    /// could follow case numbers), and not by anything a generalisation hid.
    pub rows: Vec<ResearchRow>,
    /// Reports given.
    pub reports_in: usize,
    /// Drafts (and any report without a valid `received_date`): never exported.
    pub not_signed_out: usize,
    /// The key's id ([`PseudonymKey::id`]).
    pub key_id: String,
}

/// How many rows ended at each level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Published at level 0 (month, all fields).
    pub month: usize,
    /// Published at level 1 (quarter).
    pub quarter: usize,
    /// Published at level 2 (quarter, no IMD quintile).
    pub quarter_without_imd: usize,
    /// Published at level 3 (quarter, no equity fields).
    pub quarter_without_equity: usize,
    /// Not published.
    pub withheld: usize,
}

impl Counts {
    /// Rows in the CSV.
    pub fn published(&self) -> usize {
        self.month + self.quarter + self.quarter_without_imd + self.quarter_without_equity
    }
}

impl Dataset {
    /// The rows at each level.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for row in &self.rows {
            match row.level {
                Some(Level::Month) => counts.month += 1,
                Some(Level::Quarter) => counts.quarter += 1,
                Some(Level::QuarterWithoutImd) => counts.quarter_without_imd += 1,
                Some(Level::QuarterWithoutEquity) => counts.quarter_without_equity += 1,
                None => counts.withheld += 1,
            }
        }
        counts
    }
}

/// The dataset of `reports` (valid, one per report id) under `key`: rows of the signed-out ones,
/// generalised until every published combination occurs at least [`K`] times ([`generalise`]).
pub fn research_dataset(reports: &[Report], key: &PseudonymKey) -> Dataset {
    let mut rows: Vec<ResearchRow> = reports.iter().filter_map(|r| ResearchRow::from_report(r, key)).collect();
    let not_signed_out = reports.len() - rows.len();
    generalise(&mut rows);
    // By what is published, then by the keyed pseudonyms: the order within a generalised
    // combination must not tell the months (or equity fields) it hides.
    rows.sort_by_cached_key(|r| {
        let published = r.quasi_identifiers(r.level.unwrap_or(Level::QuarterWithoutEquity));
        (r.level.is_none(), published, r.case_pseudonym.clone(), r.report_pseudonym.clone())
    });
    Dataset { rows, reports_in: reports.len(), not_signed_out, key_id: key.id() }
}

/// Set every row's level: rows whose combination at a level occurs fewer than [`K`] times among
/// the rows still pending there go to the next level; past the last level they are withheld
/// (`level` None).
pub fn generalise(rows: &mut [ResearchRow]) {
    let mut pending: Vec<usize> = (0..rows.len()).collect();
    for level in Level::ALL {
        let mut sizes: HashMap<_, usize> = HashMap::new();
        for &i in &pending {
            *sizes.entry(rows[i].quasi_identifiers(level)).or_default() += 1;
        }
        let mut rare = Vec::new();
        for &i in &pending {
            if sizes.get(&rows[i].quasi_identifiers(level)).copied().unwrap_or(0) >= K {
                rows[i].level = Some(level);
            } else {
                rare.push(i);
            }
        }
        pending = rare;
    }
    for i in pending {
        rows[i].level = None;
    }
}

/// The CSV's header, in column order (the data dictionary describes each).
pub const COLUMNS: [&str; 11] = [
    "case_pseudonym",
    "report_pseudonym",
    "site",
    "period",
    "turnaround_days",
    "review_type",
    "diagnosis_category",
    "snomed_ct",
    "annotation_counts",
    "ethnic_group",
    "imd_quintile",
];

/// `research.csv`: the header and one line per published row (CRLF-free, `\n` line ends), every
/// text field through [`csv_text`].
pub fn research_csv(dataset: &Dataset) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for row in &dataset.rows {
        let Some(level) = row.level else { continue };
        let (site, period, category, ethnic, imd) = row.quasi_identifiers(level);
        let annotations: Vec<String> = row.annotations.iter().map(|(c, n)| format!("{c}:{n}")).collect();
        let fields = [
            row.case_pseudonym.clone(),
            row.report_pseudonym.clone(),
            site,
            period,
            row.turnaround_days.map(|d| d.to_string()).unwrap_or_default(),
            row.review_type.to_string(),
            category,
            row.snomed_ct.join(";"),
            annotations.join(";"),
            ethnic,
            imd,
        ];
        let fields: Vec<String> = fields.iter().map(|f| csv_text(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// `(name, type, meaning, coarsening)` of every column, in [`COLUMNS`] order.
pub const DICTIONARY: [(&str, &str, &str, &str); 11] = [
    (
        "case_pseudonym",
        "string",
        "The laboratory case number as a keyed pseudonym, CASE- and 10 hex digits: the same for the same case and key (as in teaching copies).",
        "keyed SHA-256 of the trimmed, lower-cased case id; irreversible without the key",
    ),
    (
        "report_pseudonym",
        "string (UUID)",
        "The report id as a keyed pseudonym, a UUID: the same for the same report and key (as in teaching copies).",
        "keyed SHA-256 of the report id",
    ),
    ("site", "string", "The reporting site's code, trimmed.", "none; withheld rows are not published"),
    (
        "period",
        "string",
        "When the specimen was received: YYYY-MM, or YYYY-Qn (calendar quarter n = 1-4) when the row was generalised.",
        "received_date reduced to its month; to its quarter when the month's combination had fewer than k rows",
    ),
    (
        "turnaround_days",
        "integer",
        "Calendar days from receipt to sign-out (amendments do not change it).",
        "whole days; no times",
    ),
    (
        "review_type",
        "string",
        "Why the slide was reviewed: primary, second_opinion, mdt, teaching or audit.",
        "none",
    ),
    (
        "diagnosis_category",
        "string",
        "The diagnosis category agreed by the network (e.g. B5b), trimmed, as written; the diagnosis text is not exported.",
        "none",
    ),
    (
        "snomed_ct",
        "string",
        "SNOMED CT concept ids of the diagnosis, sorted, joined by ';'; empty when none.",
        "values that are not 6-18 digits are dropped",
    ),
    (
        "annotation_counts",
        "string",
        "Annotation objects per class as class:count pairs, sorted by class, joined by ';'; '(unclassified)' for objects without a class; empty when none.",
        "counts only (no areas, lengths, shapes or file names); ';' and ':' in class names become '_'",
    ),
    (
        "ethnic_group",
        "string",
        "Broad ethnic group of the NHS ETHNIC CATEGORY code: White, Mixed, Asian, Black, Other, Not stated or Not known; empty when not recorded or removed.",
        "the 18 codes reduced to their 7 broad groups; removed (empty) when even the quarter without the IMD quintile had fewer than k rows",
    ),
    (
        "imd_quintile",
        "integer",
        "Index of Multiple Deprivation quintile of the patient's area, 1 (most deprived fifth) to 5; empty when not recorded or removed.",
        "the decile reduced to its quintile (deciles 1-2 are 1, ..., 9-10 are 5); removed (empty) when the quarter's combination had fewer than k rows",
    ),
];

/// `data-dictionary.json`: the dataset's columns and the rule that made it.
pub fn data_dictionary() -> Value {
    let columns: Vec<Value> = DICTIONARY
        .iter()
        .map(|(name, kind, meaning, coarsening)| {
            json!({"name": name, "type": kind, "meaning": meaning, "coarsening": coarsening})
        })
        .collect();
    json!({
        "format": FORMAT,
        "file": CSV_FILE,
        "rows": "one per signed-out (final or amended) report; drafts are not exported",
        "k": K,
        "quasi_identifiers": ["site", "period", "diagnosis_category", "ethnic_group", "imd_quintile"],
        "small_cells": format!("Every combination of the quasi-identifiers occurs at least {K} times. Rows in rarer combinations were generalised in turn — period to quarter, then imd_quintile removed, then ethnic_group removed — each time counted among the rows still rare; rows rare after all three are withheld. Counts are of reports, not patients."),
        "not_exported": "names of reviewers and amenders; free text (specimen, clinical details, macroscopy, microscopy, diagnosis text, comments, amendment reasons); exact dates and times; the month of sign-out (with period and turnaround_days it would pin exact dates); slide file names, URLs, DICOM UIDs and hashes; the annotation file; fields this version does not know",
        "columns": columns,
    })
}

/// `manifest.json`: where the rows came from, when, with which key, and what the generalisation
/// did. `rows_in` = `not_exported_drafts` + `signed_out`; `signed_out` = `rows_out` + `withheld`;
/// `rows_out` = the sum of `by_level`'s four published levels.
pub fn manifest(dataset: &Dataset, source: &Source, made_at: &str) -> Value {
    let c = dataset.counts();
    json!({
        "format": FORMAT,
        "made_at": made_at,
        "source": {
            "kind": source.kind,
            "folders_read": source.folders_read,
            "invalid": source.invalid,
            "duplicates": source.duplicates,
        },
        "key_id": dataset.key_id,
        "k": K,
        "rows_in": dataset.reports_in,
        "not_exported_drafts": dataset.not_signed_out,
        "drafts": "draft reports are not exported (only final and amended ones)",
        "signed_out": dataset.rows.len(),
        "rows_out": c.published(),
        "generalised_to_quarter": c.quarter + c.quarter_without_imd + c.quarter_without_equity,
        "imd_quintile_dropped": c.quarter_without_imd + c.quarter_without_equity,
        "ethnic_group_dropped": c.quarter_without_equity,
        "withheld": c.withheld,
        "by_level": {
            "month": c.month,
            "quarter": c.quarter,
            "quarter_without_imd": c.quarter_without_imd,
            "quarter_without_equity": c.quarter_without_equity,
            "withheld": c.withheld,
        },
        "files": OUTPUT_FILES,
    })
}

/// Why a dataset could not be written. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum ResearchError {
    /// An output exists and `force` was not given.
    #[error("{}: already exists (use --force to replace it)", path.display())]
    Exists {
        /// The output path.
        path: PathBuf,
    },
    /// An output file or folder could not be made.
    #[error("{}: {action}: {error}", path.display())]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// What the system said.
        error: io::Error,
    },
}

fn output_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> ResearchError {
    let path = path.to_path_buf();
    move |error| ResearchError::Output { path, action, error }
}

/// Write the dataset into `out` (created if missing): [`OUTPUT_FILES`], each atomically, the
/// manifest last. Refuses a folder that already holds any of them unless `force`. Returns the
/// manifest written.
pub fn write_dataset(dataset: &Dataset, source: &Source, out: &Path, force: bool) -> Result<Value, ResearchError> {
    fs::create_dir_all(out).map_err(output_err(out, "cannot create the folder"))?;
    if !force {
        if let Some(path) = OUTPUT_FILES.iter().map(|f| out.join(f)).find(|p| fs::symlink_metadata(p).is_ok()) {
            return Err(ResearchError::Exists { path });
        }
    }
    let manifest = manifest(dataset, source, &now_rfc3339());
    let pretty = |v: &Value| {
        let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    };
    let contents = [research_csv(dataset).into_bytes(), pretty(&data_dictionary()), pretty(&manifest)];
    for (name, bytes) in OUTPUT_FILES.iter().zip(contents) {
        let path = out.join(name);
        write_atomic(&path, &bytes).map_err(output_err(&path, "cannot write"))?;
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::{ClassSummary, Equity};

    fn key(byte: u8) -> PseudonymKey {
        PseudonymKey::from_bytes([byte; 32])
    }

    /// A final report received on `date` at `site`, with identifying text everywhere.
    fn report(n: usize, site: &str, date: &str, category: &str, ethnic: Option<&str>, decile: Option<u8>) -> Report {
        let mut r = Report {
            case_id: format!("H26-{n:05}"),
            site: site.into(),
            received_date: Some(date.into()),
            ..Report::default()
        };
        r.reviewer.name = "Dr Zebedee Quill".into();
        r.slide.sha256 = format!("{:064x}", n + 1);
        r.slide.file_name = format!("H26-{n:05}_A1.svs");
        r.specimen = "Core biopsy from Mrs Xanthippe Oddly".into();
        r.microscopy = "Invasive carcinoma seen on 2026-03-14.".into();
        r.diagnosis.text = "Invasive carcinoma, NST".into();
        r.diagnosis.category = category.into();
        r.diagnosis.snomed_ct = vec!["413448000".into(), "see notes".into()];
        r.annotations.by_class = vec![
            ClassSummary { class: "Tumour".into(), count: 3, ..ClassSummary::default() },
            ClassSummary { class: String::new(), count: 1, ..ClassSummary::default() },
        ];
        r.equity =
            Some(Equity { ethnic_category: ethnic.map(str::to_string), imd_decile: decile, ..Equity::default() });
        r.extra.insert("x_secret".into(), "LEAKED".into());
        let d = parse_date(date).unwrap_or_else(|e| panic!("{e}")) + time::Duration::days(7);
        let reported = format!("{:04}-{:02}-{:02}T10:00:00+00:00", d.year(), u8::from(d.month()), d.day());
        r.finalise(&reported).unwrap_or_else(|e| panic!("{e}"));
        r
    }

    /// Recount the CSV: every combination of the quasi-identifier columns.
    fn combinations(csv: &str) -> HashMap<Vec<String>, usize> {
        let mut counts = HashMap::new();
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let qi = [2, 3, 6, 9, 10].iter().map(|&i| f[i].to_string()).collect();
            *counts.entry(qi).or_default() += 1;
        }
        counts
    }

    #[test]
    fn rows_keep_only_coarse_fields() {
        let r = report(1, "RLH", "2026-03-02", "B5b", Some("N"), Some(3));
        let row = ResearchRow::from_report(&r, &key(1)).unwrap_or_else(|| panic!("signed out"));
        assert_eq!(row.case_pseudonym, key(1).case_pseudonym("H26-00001"));
        assert_eq!(row.report_pseudonym, key(1).report_uuid(&r.report_id));
        assert_eq!(row.received.label(Level::Month), "2026-03");
        assert_eq!(row.received.label(Level::Quarter), "2026-Q1");
        assert_eq!((row.ethnic_group, row.imd_quintile), (Some("Black"), Some(2)));
        assert_eq!(row.snomed_ct, vec!["413448000".to_string()], "free text is not a code");
        assert_eq!(row.annotations, vec![(UNCLASSIFIED.to_string(), 1), ("Tumour".to_string(), 3)]);
        let mut draft = r.clone();
        draft.status = crate::report::Status::Draft;
        assert!(ResearchRow::from_report(&draft, &key(1)).is_none());
    }

    #[test]
    fn rare_combinations_are_generalised_then_withheld() {
        let mut reports = Vec::new();
        // 5 in one month: published at month level.
        reports.extend((0..5).map(|n| report(n, "A", "2026-01-05", "B5b", Some("A"), Some(1))));
        // 3 + 2 in two months of one quarter: together at quarter level.
        reports.extend((5..8).map(|n| report(n, "A", "2026-02-05", "B2", Some("A"), Some(1))));
        reports.extend((8..10).map(|n| report(n, "A", "2026-03-05", "B2", Some("A"), Some(1))));
        // 5 in one quarter with different IMD: quintile dropped.
        reports.extend((10..15).map(|n| report(n, "B", "2026-04-05", "B3", Some("H"), Some(n as u8 - 9))));
        // 5 in one quarter with different groups and deciles: both dropped.
        let codes = ["A", "D", "H", "M", "R"];
        reports.extend((15..20).map(|n| report(n, "C", "2026-07-05", "B4", Some(codes[n - 15]), Some(1))));
        // 2 alone: withheld.
        reports.extend((20..22).map(|n| report(n, "D", "2026-10-05", "B1", None, None)));
        let mut draft = report(99, "A", "2026-01-05", "B5b", Some("A"), Some(1));
        draft.status = crate::report::Status::Draft;
        reports.push(draft);

        let dataset = research_dataset(&reports, &key(7));
        let c = dataset.counts();
        assert_eq!((c.month, c.quarter, c.quarter_without_imd, c.quarter_without_equity, c.withheld), (5, 5, 5, 5, 2));
        assert_eq!(dataset.not_signed_out, 1);
        let csv = research_csv(&dataset);
        assert_eq!(csv.lines().count(), 1 + 20);
        for (qi, n) in combinations(&csv) {
            assert!(n >= K, "{qi:?} occurs {n} times");
        }
        for line in csv.lines().skip(1) {
            assert!(!line.contains(",D,"), "site D withheld: {line}");
        }
        // Within a published combination rows follow the pseudonyms, not the hidden months.
        let lines: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
        for pair in lines.windows(2) {
            let qi = |f: &Vec<&str>| [2, 3, 6, 9, 10].map(|i| f[i].to_string());
            if qi(&pair[0]) == qi(&pair[1]) {
                assert!(pair[0][0] <= pair[1][0], "{pair:?}");
            }
        }
        let m = manifest(&dataset, &Source { kind: "folders".into(), folders_read: 1, invalid: 0, duplicates: 0 }, "t");
        assert_eq!(
            (m["rows_in"].as_u64(), m["rows_out"].as_u64(), m["withheld"].as_u64()),
            (Some(23), Some(20), Some(2))
        );
        assert_eq!(m["generalised_to_quarter"].as_u64(), Some(15));
        assert_eq!((m["imd_quintile_dropped"].as_u64(), m["ethnic_group_dropped"].as_u64()), (Some(10), Some(5)));
    }

    #[test]
    fn nothing_identifying_is_written() {
        let reports: Vec<Report> = (0..6).map(|n| report(n, "=cmd", "2026-01-05", "B5b", Some("A"), Some(2))).collect();
        let csv = research_csv(&research_dataset(&reports, &key(3)));
        for secret in ["H26-", "Zebedee", "Xanthippe", "2026-03-14", "Invasive", "LEAKED", ".svs", "0000000000000001"] {
            assert!(!csv.contains(secret), "{secret} in {csv}");
        }
        assert!(!csv.contains("2026-01-05"), "no exact date");
        assert!(csv.contains("'=cmd"), "a formula is defused: {csv}");
        let dictionary = data_dictionary();
        let names: Vec<&str> =
            dictionary["columns"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(names, COLUMNS);
    }

    #[test]
    fn no_reported_period_is_exported() {
        // Received 31 January, reported 1 February: a month of sign-out beside the month of
        // receipt and a turnaround of 1 day would give both exact dates.
        let reports: Vec<Report> = (0..6)
            .map(|n| {
                let mut r = report(n, "A", "2026-01-31", "B5b", None, None);
                r.reported_at = Some("2026-02-01T10:00:00+00:00".into());
                r
            })
            .collect();
        let csv = research_csv(&research_dataset(&reports, &key(2)));
        let header: Vec<&str> = csv.lines().next().map(|h| h.split(',').collect()).unwrap_or_default();
        assert!(!header.iter().any(|c| c.contains("reported")), "{header:?}");
        for line in csv.lines().skip(1) {
            assert_eq!(line.split(',').count(), header.len(), "{line}");
            assert!(!line.contains("2026-02"), "no month of sign-out: {line}");
        }
        let dictionary = data_dictionary();
        let names: Vec<&str> =
            dictionary["columns"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
        assert!(!names.iter().any(|n| n.contains("reported")), "{names:?}");
        assert!(!dictionary.to_string().contains("reported_period"));
    }

    #[test]
    fn an_existing_dataset_is_kept_without_force() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let reports: Vec<Report> = (0..5).map(|n| report(n, "A", "2026-01-05", "B5b", None, None)).collect();
        let dataset = research_dataset(&reports, &key(1));
        let source = Source { kind: "folders".into(), folders_read: 1, invalid: 0, duplicates: 0 };
        write_dataset(&dataset, &source, dir.path(), false).unwrap_or_else(|e| panic!("{e}"));
        let err = write_dataset(&dataset, &source, dir.path(), false).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("already exists") && err.contains(CSV_FILE), "{err}");
        write_dataset(&dataset, &source, dir.path(), true).unwrap_or_else(|e| panic!("{e}"));
        for file in OUTPUT_FILES {
            assert!(dir.path().join(file).is_file(), "{file}");
        }
    }
}
