//! The case report, schema `wsiview.report/1` (docs/report-schema.md). Field names are the
//! schema's; every object keeps the fields it does not know in `extra`, so a report written by a
//! newer version survives being read and saved by this one.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

pub use super::error::{EditError, InvalidReport, ReportError, TimeError};
use crate::error::printable;

/// The value of every report's `schema` field. It changes only when a field's meaning does; a
/// reader that finds another value must not guess (see docs/report-schema.md).
pub const SCHEMA: &str = "wsiview.report/1";
/// `CASE.report.json`.
pub const REPORT_SUFFIX: &str = ".report.json";
/// At most this many problems are listed for one report (enough for every missing field).
const MAX_PROBLEMS: usize = 12;
/// The top-level field that marks a teaching copy of a report (`wsiview export-teaching`):
/// consolidation does not count such copies.
pub const TEACHING_FIELD: &str = "teaching_copy";

/// Where a report is in its life (the `status` field; docs/report-schema.md, "Life of a
/// report"): draft → final → amended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `"draft"`: still being written, freely editable, may be incomplete; not counted by
    /// consolidation.
    #[default]
    Draft,
    /// `"final"`: signed out by [`Report::finalise`], complete, read-only; `reported_at` is set.
    Final,
    /// `"amended"`: a final report changed through [`Report::amend`]; lists at least one
    /// amendment and keeps the first sign-out's `reported_at`.
    Amended,
}

impl Status {
    /// The schema's value: `"draft"`, `"final"` or `"amended"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Final => "final",
            Status::Amended => "amended",
        }
    }
    /// Final and amended reports are signed out: they count for turnaround and concordance and
    /// change only by amendment.
    pub fn is_signed_out(self) -> bool {
        matches!(self, Status::Final | Status::Amended)
    }
}

/// A reviewer's or amender's professional role (`reviewer.role`, `amendments[].role`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `"consultant"`: a consultant pathologist (the default).
    #[default]
    Consultant,
    /// `"trainee"`: a pathologist in training.
    Trainee,
    /// `"biomedical_scientist"`: a biomedical scientist reporting within their scope.
    BiomedicalScientist,
    /// `"other"`: any other role.
    Other,
}

impl Role {
    /// Every role, in the order the viewer's menus list them.
    pub const ALL: [Role; 4] = [Role::Consultant, Role::Trainee, Role::BiomedicalScientist, Role::Other];
    /// The schema's value (`"biomedical_scientist"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Consultant => "consultant",
            Role::Trainee => "trainee",
            Role::BiomedicalScientist => "biomedical_scientist",
            Role::Other => "other",
        }
    }
    /// For people: "Biomedical scientist", … (menus, the report page).
    pub fn label(self) -> &'static str {
        match self {
            Role::Consultant => "Consultant",
            Role::Trainee => "Trainee",
            Role::BiomedicalScientist => "Biomedical scientist",
            Role::Other => "Other",
        }
    }
}

/// Why the slide was reviewed (the `review_type` field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewType {
    /// `"primary"`: the diagnostic report on the case (the default).
    #[default]
    Primary,
    /// `"second_opinion"`: a review asked for by another pathologist or site.
    SecondOpinion,
    /// `"mdt"`: a review for a multidisciplinary team meeting.
    Mdt,
    /// `"teaching"`: a review for teaching.
    Teaching,
    /// `"audit"`: a review for audit or quality assurance.
    Audit,
}

impl ReviewType {
    /// Every review type, in the order the viewer's menus list them.
    pub const ALL: [ReviewType; 5] =
        [ReviewType::Primary, ReviewType::SecondOpinion, ReviewType::Mdt, ReviewType::Teaching, ReviewType::Audit];
    /// The schema's value (`"second_opinion"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewType::Primary => "primary",
            ReviewType::SecondOpinion => "second_opinion",
            ReviewType::Mdt => "mdt",
            ReviewType::Teaching => "teaching",
            ReviewType::Audit => "audit",
        }
    }
    /// For people: "Second opinion", "MDT", … (menus, the report page).
    pub fn label(self) -> &'static str {
        match self {
            ReviewType::Primary => "Primary",
            ReviewType::SecondOpinion => "Second opinion",
            ReviewType::Mdt => "MDT",
            ReviewType::Teaching => "Teaching",
            ReviewType::Audit => "Audit",
        }
    }
}

/// Who signs the report out (the `reviewer` field). Amendments keep it: it stays the person who
/// signed the report out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reviewer {
    /// The reviewer's name as it should appear on the report; empty in a new draft, required
    /// (non-blank) to sign out.
    pub name: String,
    /// The reviewer's role.
    pub role: Role,
    /// Fields of `reviewer` this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The slide the report is about; `sha256` (lower-case hex of the whole file) identifies it
/// across sites whatever the file is called.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlideRef {
    /// The slide's file name without its folder (`H26-01234_A1.svs`); a report is found for a
    /// slide by this name, but compared across sites by `sha256`.
    pub file_name: String,
    /// Where a remote slide was read: its `http(s)://` or `s3://` URL without credentials, query
    /// string or fragment ([`crate::remote::redact`]). Absent for a local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A DICOM slide's StudyInstanceUID (where its series is on a PACS). Absent for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_instance_uid: Option<String>,
    /// A DICOM slide's SeriesInstanceUID. Absent for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_instance_uid: Option<String>,
    /// SHA-256 of the whole slide file as 64 lower-case hex digits ([`super::hash::sha256_file`]);
    /// empty until computed, required to sign out.
    pub sha256: String,
    /// Level-0 width in pixels (0 when not filled in).
    pub width: u64,
    /// Level-0 height in pixels (0 when not filled in).
    pub height: u64,
    /// µm per level-0 pixel along x; None (null) when the slide does not say.
    pub mpp_x: Option<f64>,
    /// µm per level-0 pixel along y; None (null) when the slide does not say.
    pub mpp_y: Option<f64>,
    /// The slide format as the engine names it (`"aperio"`, `"ome-tiff"`, `"generic-tiff"`).
    pub vendor: String,
    /// Fields of `slide` this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The diagnosis (the `diagnosis` field): free text, the category concordance compares, and
/// SNOMED CT codes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The diagnosis in words ("Invasive carcinoma, NST, grade 2"); required to sign out.
    pub text: String,
    /// A short code agreed by the network ("B5b", "malignant"): what concordance compares.
    pub category: String,
    /// SNOMED CT concept ids as strings (`"413448000"`); empty when none are given.
    #[serde(default)]
    pub snomed_ct: Vec<String>,
    /// Fields of `diagnosis` this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One class's line in the report's annotation summary (`annotations.by_class[]`), made by
/// [`super::store::summarise_annotations`]; rulers are not counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    /// The class name; empty for unclassified annotations.
    pub class: String,
    /// How many objects of the class (annotations, detections, cells and tiles).
    pub count: u64,
    /// Summed area of the class's areas in µm²; null when the slide's pixel size is unknown
    /// (measurements are then only in pixels).
    #[serde(default)]
    pub area_um2: Option<f64>,
    /// Summed length of the class's open lines in µm; null when the pixel size is unknown.
    #[serde(default)]
    pub length_um: Option<f64>,
    /// Fields of the entry this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The report's record of the slide's annotations (the `annotations` field); empty when the
/// report was written without any. For a case of several slides, `by_class` is the case's totals
/// and `by_slide` each slide's part ([`AnnotationsSummary::set_case_slides`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnnotationsSummary {
    /// The sidecar's file name (of the slide the report is held by, for a case of several).
    pub file: String,
    /// One entry per class, sorted by name with the unclassified last; empty when there are no
    /// annotations. For a case of several slides, summed over them.
    #[serde(default)]
    pub by_class: Vec<ClassSummary>,
    /// For a case of several slides, each slide's annotations in the case's order; absent (empty)
    /// for a report on one slide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_slide: Vec<SlideAnnotations>,
    /// Fields of `annotations` this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One slide's part of a case's annotations (`annotations.by_slide[]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlideAnnotations {
    /// The slide's file name (its `slide.file_name` were the report made on it).
    #[serde(default)]
    pub file_name: String,
    /// Its annotation sidecar's file name.
    #[serde(default)]
    pub file: String,
    /// As [`AnnotationsSummary::by_class`], for this slide alone.
    #[serde(default)]
    pub by_class: Vec<ClassSummary>,
    /// Fields of the entry this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AnnotationsSummary {
    /// Record a case's slides (in the case's order): `by_slide` is set to them and `by_class`
    /// to their totals. A class's count is summed; its area and length are summed when every
    /// slide that has the class knows its pixel size, else null (a sum of some slides' µm² would
    /// read as the case's). With fewer than two slides, `by_slide` is cleared and `by_class` is
    /// the one slide's.
    pub fn set_case_slides(&mut self, slides: Vec<SlideAnnotations>) {
        if slides.len() < 2 {
            self.by_class = slides.into_iter().next().map(|s| s.by_class).unwrap_or_default();
            self.by_slide.clear();
            return;
        }
        let mut totals: Vec<ClassSummary> = Vec::new();
        for c in slides.iter().flat_map(|s| &s.by_class) {
            match totals.iter_mut().find(|t| t.class == c.class) {
                Some(t) => {
                    t.count += c.count;
                    t.area_um2 = t.area_um2.zip(c.area_um2).map(|(a, b)| a + b);
                    t.length_um = t.length_um.zip(c.length_um).map(|(a, b)| a + b);
                }
                None => totals.push(ClassSummary { extra: Map::new(), ..c.clone() }),
            }
        }
        // As a slide's summary is ordered; the unclassified ("") last.
        fn name(c: &ClassSummary) -> Option<&str> {
            Some(c.class.as_str()).filter(|n| !n.is_empty())
        }
        totals.sort_by(|a, b| crate::annotations::table::class_order(name(a), name(b)));
        self.by_class = totals;
        self.by_slide = slides;
    }
}

/// An amendment's before or after value of `annotations.by_class` or `annotations.by_slide` in
/// words ("Tumour 3 (18,125.0 µm²), Mitosis 5"; "A1.svs: Tumour 2; B1.svs: none"); `None` for
/// other fields or values that are not such lists.
pub fn annotations_change_text(field: &str, value: &Value) -> Option<String> {
    let classes = |list: &[ClassSummary]| {
        if list.is_empty() {
            return "none".to_string();
        }
        let one = |c: &ClassSummary| {
            let name = if c.class.is_empty() { "(unclassified)" } else { c.class.as_str() };
            let area = c.area_um2.filter(|a| *a > 0.0).map(|a| format!("{} µm²", crate::text::group_thousands(a)));
            let length = c.length_um.filter(|l| *l > 0.0).map(|l| format!("{} µm", crate::text::group_thousands(l)));
            match (area, length) {
                (Some(a), Some(l)) => format!("{name} {} ({a}, {l})", c.count),
                (Some(m), None) | (None, Some(m)) => format!("{name} {} ({m})", c.count),
                (None, None) => format!("{name} {}", c.count),
            }
        };
        list.iter().map(one).collect::<Vec<_>>().join(", ")
    };
    match field {
        "annotations.by_class" => serde_json::from_value::<Vec<ClassSummary>>(value.clone()).ok().map(|l| classes(&l)),
        "annotations.by_slide" => serde_json::from_value::<Vec<SlideAnnotations>>(value.clone()).ok().map(|l| {
            if l.is_empty() {
                return "none".to_string();
            }
            l.iter().map(|s| format!("{}: {}", s.file_name, classes(&s.by_class))).collect::<Vec<_>>().join("; ")
        }),
        _ => None,
    }
}

/// The NHS Data Dictionary's ETHNIC CATEGORY codes (the 2001 census categories) as
/// `(code, meaning, broad group)`: `"Z"` is "not stated" (asked, not given) and `"99"` "not known"
/// (not asked). The broad group is what research extracts and small tables publish.
pub const ETHNIC_CATEGORIES: [(&str, &str, &str); 18] = [
    ("A", "White: British", "White"),
    ("B", "White: Irish", "White"),
    ("C", "White: any other White background", "White"),
    ("D", "Mixed: White and Black Caribbean", "Mixed"),
    ("E", "Mixed: White and Black African", "Mixed"),
    ("F", "Mixed: White and Asian", "Mixed"),
    ("G", "Mixed: any other mixed background", "Mixed"),
    ("H", "Asian or Asian British: Indian", "Asian"),
    ("J", "Asian or Asian British: Pakistani", "Asian"),
    ("K", "Asian or Asian British: Bangladeshi", "Asian"),
    ("L", "Asian or Asian British: any other Asian background", "Asian"),
    ("M", "Black or Black British: Caribbean", "Black"),
    ("N", "Black or Black British: African", "Black"),
    ("P", "Black or Black British: any other Black background", "Black"),
    ("R", "Other ethnic groups: Chinese", "Other"),
    ("S", "Other ethnic groups: any other ethnic group", "Other"),
    ("Z", "Not stated", "Not stated"),
    ("99", "Not known", "Not known"),
];

/// The broad group of an ETHNIC CATEGORY code ([`ETHNIC_CATEGORIES`]); None for an unknown code.
pub fn ethnic_group(code: &str) -> Option<&'static str> {
    ETHNIC_CATEGORIES.iter().find(|(c, _, _)| *c == code).map(|(_, _, group)| *group)
}

/// The IMD quintile (1 = most deprived fifth) of an IMD decile 1–10: deciles 1–2 are quintile 1,
/// …, 9–10 quintile 5. None outside 1–10.
pub fn imd_quintile(decile: u8) -> Option<u8> {
    (1..=10).contains(&decile).then(|| decile.div_ceil(2))
}

/// Who the patient is, as far as equity of service is measured (the optional `equity` field):
/// entered by lab staff or imported with the case details. Both parts are optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Equity {
    /// The NHS Data Dictionary ETHNIC CATEGORY code ([`ETHNIC_CATEGORIES`]): `"A"`…`"S"`, `"Z"`
    /// (not stated) or `"99"` (not known); null when not recorded.
    #[serde(default)]
    pub ethnic_category: Option<String>,
    /// The Index of Multiple Deprivation decile of the patient's area, 1 (most deprived) to 10;
    /// null when not recorded.
    #[serde(default)]
    pub imd_decile: Option<u8>,
    /// Fields of `equity` this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One field an amendment changed: its path in the report (`diagnosis.category`) and its JSON
/// value before and after.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The changed field as a dotted path in the report: `"comments"`, `"diagnosis.category"`.
    pub field: String,
    /// The field's JSON value before the amendment (null when it had none).
    pub before: Value,
    /// The field's JSON value after the amendment (null when it was removed).
    pub after: Value,
    /// Fields of the change this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One change to a signed-out report (an entry of `amendments`): when, by whom, why, and what
/// changed, made by [`Report::amend`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Amendment {
    /// When it was made: an RFC 3339 timestamp with the amender's offset.
    pub at: String,
    /// Who amended (the user of the viewer, not necessarily the report's reviewer).
    pub by: String,
    /// Their role, when known (reports written before wsiview recorded it have none).
    #[serde(default)]
    pub role: Option<Role>,
    /// Why the report was amended, in the amender's words; never blank in a valid report.
    pub reason: String,
    /// What changed, with the previous values, so the history can be read.
    #[serde(default)]
    pub changes: Vec<FieldChange>,
    /// Fields of the amendment this version does not know, kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A case report, schema `wsiview.report/1`: one review of one slide, saved as
/// `CASE.report.json` (docs/report-schema.md gives every field's meaning and the validity rules
/// [`Report::problems`] checks). Text fields missing from a file read as empty, `received_date`
/// and `reported_at` as None; [`Report::default`] is a new draft with a fresh `report_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`]; [`Report::from_json`] refuses any other value.
    pub schema: String,
    /// A UUID made when the report is started and kept through amendments; teaching copies
    /// replace it with a pseudonym.
    pub report_id: String,
    /// The laboratory's case number ("H26-01234"); names the report file (see
    /// [`Report::file_name`]). Required to sign out.
    pub case_id: String,
    /// The reporting site's code ("RLH"); consolidation groups by it. Required to sign out.
    pub site: String,
    /// Draft, final or amended.
    pub status: Status,
    /// Who reviewed and signs the report out.
    pub reviewer: Reviewer,
    /// Why the slide was reviewed.
    pub review_type: ReviewType,
    /// YYYY-MM-DD: when the specimen reached the lab.
    pub received_date: Option<String>,
    /// RFC 3339, set when the report is made final.
    pub reported_at: Option<String>,
    /// The slide reviewed: its file name, fingerprint, size, pixel size and format.
    pub slide: SlideRef,
    /// What the specimen is ("Core biopsy, left breast"); free text, empty when not given;
    /// required to sign out.
    #[serde(default)]
    pub specimen: String,
    /// Clinical details given with the request; free text, may be empty.
    #[serde(default)]
    pub clinical_details: String,
    /// The macroscopic (gross) description; free text, may be empty.
    #[serde(default)]
    pub macroscopy: String,
    /// The microscopic description; free text, required to sign out.
    #[serde(default)]
    pub microscopy: String,
    /// The diagnosis text, category and SNOMED CT codes.
    pub diagnosis: Diagnosis,
    /// Further comments; free text, may be empty.
    #[serde(default)]
    pub comments: String,
    /// The annotation sidecar's name and per-class counts, areas and lengths; empty when absent
    /// from the file.
    #[serde(default)]
    pub annotations: AnnotationsSummary,
    /// Every amendment, oldest first; empty for drafts and final reports.
    #[serde(default)]
    pub amendments: Vec<Amendment>,
    /// The patient's ethnic category and area deprivation, for equity-of-service figures; absent
    /// (and not written) when not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equity: Option<Equity>,
    /// Top-level fields this version does not know (such as a teaching copy's
    /// [`TEACHING_FIELD`]), kept and written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A new draft with a fresh id.
impl Default for Report {
    fn default() -> Self {
        Report {
            schema: SCHEMA.into(),
            report_id: uuid::Uuid::new_v4().to_string(),
            case_id: String::new(),
            site: String::new(),
            status: Status::Draft,
            reviewer: Reviewer::default(),
            review_type: ReviewType::Primary,
            received_date: None,
            reported_at: None,
            slide: SlideRef::default(),
            specimen: String::new(),
            clinical_details: String::new(),
            macroscopy: String::new(),
            microscopy: String::new(),
            diagnosis: Diagnosis::default(),
            comments: String::new(),
            annotations: AnnotationsSummary::default(),
            amendments: Vec::new(),
            equity: None,
            extra: Map::new(),
        }
    }
}

/// "2026-11-03" → the date; anything else is an error saying what was expected.
pub fn parse_date(text: &str) -> Result<Date, TimeError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format).map_err(|e| TimeError {
        text: text.to_string(),
        expected: "a date YYYY-MM-DD",
        reason: e.to_string(),
    })
}

/// An RFC 3339 timestamp, keeping the offset it was written with.
pub fn parse_timestamp(text: &str) -> Result<OffsetDateTime, TimeError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| TimeError {
        text: text.to_string(),
        expected: "an RFC 3339 timestamp",
        reason: e.to_string(),
    })
}

/// The bytes of a report file: the one bounded read every reader of report files uses (the
/// viewer's search for a slide's report, consolidation, teaching copies, saving). Only a regular
/// file of at most [`Limits::report_bytes`](crate::Limits::report_bytes) is read.
pub fn read_report_bytes(path: &Path) -> Result<Vec<u8>, ReportError> {
    let io_error = |error| ReportError::Io { path: path.to_path_buf(), error };
    let file = crate::files::open_regular(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(crate::Limits::DEFAULT.report_bytes + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > crate::Limits::DEFAULT.report_bytes {
        return Err(ReportError::TooLarge { path: path.to_path_buf() });
    }
    Ok(bytes)
}

/// Now, in the local offset when the system says it, else UTC; RFC 3339 to the second.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_local().unwrap_or_else(|_| OffsetDateTime::now_utc());
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_else(|_| now.to_string())
}

/// Today's date (local when known) as YYYY-MM-DD.
pub fn today() -> String {
    let now = OffsetDateTime::now_local().unwrap_or_else(|_| OffsetDateTime::now_utc());
    let d = now.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Report {
    /// Parse and check a report. Errors list the first problems found; text quoted from the
    /// bytes is made printable.
    pub fn from_json(bytes: &[u8]) -> Result<Report, InvalidReport> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(InvalidReport::Empty);
        }
        // Type errors from serde name the field and the line.
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| InvalidReport::NotJson(printable(&e.to_string())))?;
        match value.get("schema").and_then(Value::as_str) {
            Some(SCHEMA) => {}
            None => return Err(InvalidReport::NoSchema),
            Some(other) => return Err(InvalidReport::OtherSchema(other.to_string())),
        }
        let report: Report =
            serde_json::from_value(value).map_err(|e| InvalidReport::Schema(printable(&e.to_string())))?;
        let problems = report.problems();
        if problems.is_empty() {
            Ok(report)
        } else {
            Err(InvalidReport::Problems(problems.iter().map(|p| printable(p)).collect()))
        }
    }

    /// Read and check the report in `path` ([`read_report_bytes`], then [`Report::from_json`]).
    pub fn read(path: &Path) -> Result<Report, ReportError> {
        let bytes = read_report_bytes(path)?;
        Report::from_json(&bytes).map_err(|problem| ReportError::Invalid { path: path.to_path_buf(), problem })
    }

    /// Pretty JSON, fields in schema order, unknown fields after them.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// What makes this report invalid; empty when it is valid. Drafts may be incomplete; a
    /// signed-out report must say when the specimen came in, when it was reported, and what the
    /// diagnosis category is.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.schema != SCHEMA {
            problems.push(format!("schema {:?} is not {SCHEMA:?}", self.schema));
        }
        if uuid::Uuid::parse_str(&self.report_id).is_err() {
            problems.push(format!("report_id {:?} is not a UUID", self.report_id));
        }
        if !self.slide.sha256.is_empty() && !is_sha256_hex(&self.slide.sha256) {
            problems.push(format!("slide.sha256 {:?} is not 64 lower-case hex digits", self.slide.sha256));
        }
        // A report travels: the URL it records must not carry a secret (shown redacted).
        if let Some(url) = &self.slide.url {
            if crate::remote::redact(url) != *url {
                problems.push(format!(
                    "slide.url {:?} holds credentials, a query string or a fragment",
                    crate::remote::redact(url)
                ));
            }
        }
        for (name, uid) in [
            ("slide.study_instance_uid", &self.slide.study_instance_uid),
            ("slide.series_instance_uid", &self.slide.series_instance_uid),
        ] {
            if let Some(uid) = uid.as_deref().filter(|u| !crate::remote::dicomweb::valid_uid(u)) {
                problems.push(format!("{name} {:?} is not a DICOM UID (digits and dots, at most 64)", printable(uid)));
            }
        }
        if let Some(equity) = &self.equity {
            if let Some(code) = equity.ethnic_category.as_deref().filter(|c| ethnic_group(c).is_none()) {
                problems.push(format!(
                    "equity.ethnic_category {:?} is not an NHS ethnic category code (A to S, Z or 99)",
                    printable(code)
                ));
            }
            if let Some(decile) = equity.imd_decile.filter(|d| imd_quintile(*d).is_none()) {
                problems.push(format!("equity.imd_decile {decile} is not a decile from 1 to 10"));
            }
        }
        let received = self.received_date.as_deref().map(parse_date);
        let reported = self.reported_at.as_deref().map(parse_timestamp);
        if let Some(Err(e)) = &received {
            problems.push(format!("received_date: {e}"));
        }
        if let Some(Err(e)) = &reported {
            problems.push(format!("reported_at: {e}"));
        }
        if let (Some(Ok(received)), Some(Ok(reported))) = (&received, &reported) {
            if reported.date() < *received {
                problems.push(format!(
                    "reported_at {} is before received_date {}",
                    self.reported_at.as_deref().unwrap_or_default(),
                    self.received_date.as_deref().unwrap_or_default()
                ));
            }
        }
        if self.status.is_signed_out() {
            for field in self.missing_for_sign_out() {
                problems.push(format!("{} report has no {field}", self.status.as_str()));
            }
        }
        if self.status == Status::Amended && self.amendments.is_empty() {
            problems.push("amended report lists no amendments".into());
        }
        for (i, a) in self.amendments.iter().enumerate() {
            if let Err(e) = parse_timestamp(&a.at) {
                problems.push(format!("amendments[{i}].at: {e}"));
            }
            if a.reason.trim().is_empty() {
                problems.push(format!("amendments[{i}] has no reason"));
            }
        }
        problems.truncate(MAX_PROBLEMS);
        problems
    }

    /// The fields a signed-out (final or amended) report must have that this one lacks, by their
    /// schema names, in form order: `case_id`, `site`, `reviewer.name`, `received_date`,
    /// `specimen`, `microscopy`, `diagnosis.text`, `diagnosis.category`, `slide.sha256`, and
    /// `reported_at` (which finalising sets). Blank text counts as missing.
    pub fn missing_for_sign_out(&self) -> Vec<&'static str> {
        let blank = |s: &str| s.trim().is_empty();
        [
            ("case_id", blank(&self.case_id)),
            ("site", blank(&self.site)),
            ("reviewer.name", blank(&self.reviewer.name)),
            ("received_date", self.received_date.as_deref().is_none_or(blank)),
            ("specimen", blank(&self.specimen)),
            ("microscopy", blank(&self.microscopy)),
            ("diagnosis.text", blank(&self.diagnosis.text)),
            ("diagnosis.category", blank(&self.diagnosis.category)),
            ("slide.sha256", !is_sha256_hex(&self.slide.sha256)),
            ("reported_at", self.reported_at.is_none()),
        ]
        .into_iter()
        .filter_map(|(field, missing)| missing.then_some(field))
        .collect()
    }

    /// Calendar days from `received_date` to the date of `reported_at` (in the offset it was
    /// written with, i.e. the reporting site's own calendar), when both are known.
    pub fn turnaround_days(&self) -> Option<i64> {
        let received = parse_date(self.received_date.as_deref()?).ok()?;
        let reported = parse_timestamp(self.reported_at.as_deref()?).ok()?;
        Some((reported.date() - received).whole_days())
    }

    /// Whether fields may still be edited freely (a signed-out report changes by amendment only).
    pub fn is_editable(&self) -> bool {
        !self.status.is_signed_out()
    }

    /// Sign out a draft: status final, `reported_at` now. Refused when the result would be
    /// invalid, with the problems.
    pub fn finalise(&mut self, now: &str) -> Result<(), EditError> {
        if self.status.is_signed_out() {
            return Err(EditError::AlreadySignedOut(self.status));
        }
        let mut signed = self.clone();
        signed.status = Status::Final;
        signed.reported_at = Some(now.to_string());
        let problems = signed.problems();
        if !problems.is_empty() {
            return Err(EditError::Invalid(problems));
        }
        *self = signed;
        Ok(())
    }

    /// Change a signed-out report: `edit` makes the change, which is recorded as an amendment by
    /// `by` (with their role) with its reason and every changed field's previous value; the status
    /// becomes "amended". `reported_at` keeps the first sign-out (turnaround counts the original
    /// report) and `reviewer` stays the person who signed it out. Refused when nothing changed or
    /// the result would be invalid.
    pub fn amend(
        &mut self,
        by: &str,
        role: Option<Role>,
        reason: &str,
        now: &str,
        edit: impl FnOnce(&mut Report),
    ) -> Result<(), EditError> {
        if !self.status.is_signed_out() {
            return Err(EditError::Draft);
        }
        if reason.trim().is_empty() {
            return Err(EditError::NoReason);
        }
        if by.trim().is_empty() {
            return Err(EditError::NoAuthor);
        }
        let mut amended = self.clone();
        edit(&mut amended);
        amended.status = self.status;
        amended.schema = SCHEMA.into();
        amended.report_id = self.report_id.clone();
        amended.reported_at = self.reported_at.clone();
        amended.reviewer = self.reviewer.clone();
        amended.amendments = self.amendments.clone();
        let changes = changed_fields(self, &amended);
        if changes.is_empty() {
            return Err(EditError::NothingChanged);
        }
        amended.status = Status::Amended;
        amended.amendments.push(Amendment {
            at: now.to_string(),
            by: by.trim().to_string(),
            role,
            reason: reason.trim().to_string(),
            changes,
            extra: Map::new(),
        });
        let problems = amended.problems();
        if !problems.is_empty() {
            return Err(EditError::Invalid(problems));
        }
        *self = amended;
        Ok(())
    }

    /// `CASE.report.json` in `dir`; the case id is made safe as a file name.
    pub fn file_name(&self) -> String {
        format!("{}{REPORT_SUFFIX}", safe_file_stem(&self.case_id))
    }
}

/// The fields that differ between two versions of a report, as dotted paths (`diagnosis.text`):
/// top-level fields, and the fields of nested objects one by one. The status and the amendment
/// list are the amendment's own record and are not listed.
pub fn changed_fields(before: &Report, after: &Report) -> Vec<FieldChange> {
    let to_map = |r: &Report| match serde_json::to_value(r) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let (a, b) = (to_map(before), to_map(after));
    let mut changes = Vec::new();
    let mut push = |field: String, x: Option<&Value>, y: Option<&Value>| {
        let (x, y) = (x.cloned().unwrap_or(Value::Null), y.cloned().unwrap_or(Value::Null));
        if x != y {
            changes.push(FieldChange { field, before: x, after: y, extra: Map::new() });
        }
    };
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    for key in keys {
        if matches!(key.as_str(), "status" | "amendments") {
            continue;
        }
        match (a.get(key), b.get(key)) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                for sub in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    push(format!("{key}.{sub}"), x.get(sub), y.get(sub));
                }
            }
            (x, y) => push(key.clone(), x, y),
        }
    }
    changes
}

/// The name a reader knows a report field by, from its dotted schema path (`diagnosis.category` →
/// "Diagnosis category"); fields this version does not know keep their path.
pub fn field_label(path: &str) -> Option<&'static str> {
    Some(match path {
        "case_id" => "Case",
        "site" => "Site",
        "report_id" => "Report id",
        "reviewer.name" => "Reviewer",
        "reviewer.role" => "Reviewer's role",
        "review_type" => "Review type",
        "received_date" => "Specimen received",
        "reported_at" => "Reported",
        "specimen" => "Specimen",
        "clinical_details" => "Clinical details",
        "macroscopy" => "Macroscopy",
        "microscopy" => "Microscopy",
        "diagnosis.text" => "Diagnosis",
        "diagnosis.category" => "Diagnosis category",
        "diagnosis.snomed_ct" => "SNOMED CT codes",
        "comments" => "Comments",
        "annotations.file" => "Annotation file",
        "annotations.by_class" => "Annotations by class",
        "annotations.by_slide" => "Annotations by slide",
        "slide.file_name" => "Slide file",
        "slide.sha256" => "Slide SHA-256",
        "slide.width" => "Slide width",
        "slide.height" => "Slide height",
        "slide.mpp_x" | "slide.mpp_y" => "Pixel size",
        "slide.vendor" => "Slide format",
        "equity" => "Equity",
        "equity.ethnic_category" => "Ethnic category",
        "equity.imd_decile" => "IMD decile",
        _ => return None,
    })
}

/// Characters other than letters, digits, `-`, `_` and `.` become `_`; empty becomes "case".
pub fn safe_file_stem(text: &str) -> String {
    let stem: String = text
        .trim()
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    let stem = stem.trim_start_matches('.');
    if stem.is_empty() {
        "case".into()
    } else {
        stem.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_final() -> Report {
        let mut r = Report {
            case_id: "H26-1234".into(),
            site: "RLH".into(),
            received_date: Some("2026-11-02".into()),
            ..Report::default()
        };
        r.reviewer.name = "Dr A. Smith".into();
        r.slide.sha256 = "ab".repeat(32);
        r.specimen = "Core biopsy, left breast".into();
        r.microscopy = "Invasive carcinoma of no special type.".into();
        r.diagnosis.text = "Invasive carcinoma, NST".into();
        r.diagnosis.category = "B5b".into();
        r.finalise("2026-11-09T16:05:00+00:00").expect("valid");
        r
    }

    #[test]
    fn turnaround_counts_calendar_days_in_the_writers_offset() {
        let mut r = valid_final();
        assert_eq!(r.turnaround_days(), Some(7));
        // 23:30 at UTC-5 is already the next day in UTC; the site's own date counts.
        r.reported_at = Some("2026-11-09T23:30:00-05:00".into());
        assert_eq!(r.turnaround_days(), Some(7));
        r.reported_at = Some("2026-11-02T08:00:00Z".into());
        assert_eq!(r.turnaround_days(), Some(0));
    }

    #[test]
    fn finalise_refuses_an_incomplete_draft_and_amend_keeps_history() {
        let mut draft = Report { case_id: "C1".into(), site: "X".into(), ..Report::default() };
        let err = draft.finalise("2026-11-09T16:05:00Z").unwrap_err().to_string();
        for field in [
            "reviewer.name",
            "received_date",
            "specimen",
            "microscopy",
            "diagnosis.text",
            "diagnosis.category",
            "slide.sha256",
        ] {
            assert!(err.contains(field), "{field} missing from {err}");
        }
        assert!(!err.contains("reported_at"), "finalising sets it: {err}");
        assert_eq!(draft.status, Status::Draft, "a refused finalise changes nothing");
        // Blank text is not a diagnosis.
        let mut blank = valid_final();
        blank.status = Status::Draft;
        blank.reported_at = None;
        blank.diagnosis.text = "  \n ".into();
        assert!(blank.finalise("2026-11-09T16:05:00Z").unwrap_err().to_string().contains("diagnosis.text"));

        let mut r = valid_final();
        assert!(!r.is_editable());
        assert!(r.amend("Dr B", None, "", "2026-11-10T09:00:00Z", |_| {}).is_err(), "a reason is required");
        assert!(r
            .amend("Dr B", None, "why", "2026-11-10T09:00:00Z", |_| {})
            .unwrap_err()
            .to_string()
            .contains("nothing"));
        r.amend("Dr B", Some(Role::Trainee), "margin re-measured", "2026-11-10T09:00:00Z", |r| {
            r.diagnosis.category = "B5a".into();
            r.reviewer.name = "Dr B".into(); // the signing reviewer cannot be rewritten
        })
        .expect("amend");
        assert_eq!(r.status, Status::Amended);
        assert_eq!(r.diagnosis.category, "B5a");
        assert_eq!(r.reviewer.name, "Dr A. Smith");
        assert_eq!(r.amendments.len(), 1);
        assert_eq!(r.amendments[0].reason, "margin re-measured");
        assert_eq!((r.amendments[0].by.as_str(), r.amendments[0].role), ("Dr B", Some(Role::Trainee)));
        let changes: Vec<_> =
            r.amendments[0].changes.iter().map(|c| (c.field.as_str(), c.before.clone(), c.after.clone())).collect();
        assert_eq!(changes, vec![("diagnosis.category", Value::from("B5b"), Value::from("B5a"))]);
        // A second amendment keeps the first and records its own previous values.
        r.amend("Dr C", None, "typo", "2026-11-11T09:00:00Z", |r| r.comments = "See addendum.".into()).expect("amend");
        assert_eq!(r.amendments.len(), 2);
        assert_eq!(r.amendments[1].changes[0].field, "comments");
        assert_eq!(r.amendments[1].changes[0].before, Value::from(""));
        assert_eq!(r.reported_at.as_deref(), Some("2026-11-09T16:05:00+00:00"), "turnaround keeps the first sign-out");
    }

    #[test]
    fn unknown_fields_survive_at_every_level() {
        let mut v: Value = serde_json::from_slice(&valid_final().to_json()).unwrap();
        v["x_future"] = serde_json::json!({"a": [1, 2]});
        v["reviewer"]["gmc_number"] = "1234567".into();
        v["diagnosis"]["x_grade"] = 3.into();
        let report = Report::from_json(&serde_json::to_vec(&v).unwrap()).expect("valid");
        let back: Value = serde_json::from_slice(&report.to_json()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn bad_reports_say_what_is_wrong() {
        let good = valid_final().to_json();
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        v["received_date"] = "2026-13-40".into();
        let err = Report::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err().to_string();
        assert!(err.contains("received_date") && err.contains("2026-13-40"), "{err}");
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        v["status"] = "signed".into();
        let err = Report::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err().to_string();
        assert!(err.contains("signed"), "{err}");
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        v.as_object_mut().unwrap().remove("slide");
        let err = Report::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err().to_string();
        assert!(err.contains("slide"), "{err}");
        assert!(Report::from_json(b"{\"schema\": \"wsiview.report/1\"")
            .unwrap_err()
            .to_string()
            .starts_with("not JSON"));
        assert!(Report::from_json(b"{\"schema\": \"other/2\"}").unwrap_err().to_string().contains("other/2"));
    }

    #[test]
    fn a_slide_url_with_a_secret_is_a_problem() {
        let mut r = Report { case_id: "C1".into(), site: "S".into(), ..Report::default() };
        r.slide.url = Some("https://h/a.svs".into());
        assert!(r.problems().is_empty(), "{:?}", r.problems());
        let json = String::from_utf8(r.to_json()).unwrap();
        assert!(json.contains("\"url\": \"https://h/a.svs\""), "{json}");
        r.slide.url = Some("https://h/a.svs?X-Amz-Signature=SECRET".into());
        let problems = r.problems().join("; ");
        assert!(problems.contains("slide.url") && !problems.contains("SECRET"), "{problems}");
        // A local slide's report has no url field at all.
        r.slide.url = None;
        assert!(!String::from_utf8(r.to_json()).unwrap().contains("\"url\""));
    }

    #[test]
    fn the_equity_block_is_optional_and_checked() {
        let r = valid_final();
        assert!(!String::from_utf8(r.to_json()).unwrap().contains("equity"), "absent when not recorded");
        let mut v: Value = serde_json::from_slice(&r.to_json()).unwrap();
        v["equity"] = serde_json::json!({"ethnic_category": "N", "imd_decile": 3});
        let read = Report::from_json(&serde_json::to_vec(&v).unwrap()).expect("valid");
        let equity = read.equity.clone().expect("read");
        assert_eq!((equity.ethnic_category.as_deref(), equity.imd_decile), (Some("N"), Some(3)));
        assert_eq!(serde_json::from_slice::<Value>(&read.to_json()).unwrap(), v, "written back as read");
        v["equity"] = serde_json::json!({"ethnic_category": "Q", "imd_decile": 11});
        let err = Report::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err().to_string();
        assert!(err.contains("equity.ethnic_category \"Q\"") && err.contains("equity.imd_decile 11"), "{err}");
        assert_eq!(
            (imd_quintile(1), imd_quintile(2), imd_quintile(3), imd_quintile(10)),
            (Some(1), Some(1), Some(2), Some(5))
        );
        assert_eq!(
            (ethnic_group("Z"), ethnic_group("H"), ethnic_group("I")),
            (Some("Not stated"), Some("Asian"), None)
        );
    }

    #[test]
    fn a_cases_annotations_are_summed_over_its_slides_and_kept_per_slide() {
        let class = |name: &str, count, area: Option<f64>, length: Option<f64>| ClassSummary {
            class: name.into(),
            count,
            area_um2: area,
            length_um: length,
            extra: Map::new(),
        };
        let slide = |name: &str, by_class| SlideAnnotations {
            file_name: name.into(),
            file: format!("{name}.annotations.geojson"),
            by_class,
            extra: Map::new(),
        };
        let he = slide("A1_HE.svs", vec![class("tumour", 2, Some(100.0), Some(0.0)), class("", 1, Some(5.0), None)]);
        let ki67 = slide(
            "B1_Ki67.svs",
            vec![class("Mitosis", 7, Some(0.0), Some(0.0)), class("tumour", 1, Some(50.0), Some(3.0))],
        );
        // No pixel size on this one: its areas are unknown, so the case's are too.
        let er = slide("C1_ER.svs", vec![class("", 4, None, None)]);
        let mut a = AnnotationsSummary::default();
        a.set_case_slides(vec![he.clone(), ki67.clone(), er.clone()]);
        assert_eq!(
            a.by_class,
            vec![
                class("Mitosis", 7, Some(0.0), Some(0.0)),
                class("tumour", 3, Some(150.0), Some(3.0)),
                class("", 5, None, None)
            ]
        );
        assert_eq!(a.by_slide, vec![he.clone(), ki67, er]);
        // Written and read back; a single slide's report has no `by_slide` at all.
        let mut r = Report { annotations: a.clone(), ..Report::default() };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["annotations"]["by_slide"][1]["by_class"][0]["count"], 7);
        assert_eq!(serde_json::from_value::<Report>(json).unwrap().annotations, a);
        r.annotations.set_case_slides(vec![he.clone()]);
        assert_eq!(r.annotations.by_class, he.by_class);
        assert!(serde_json::to_value(&r).unwrap()["annotations"].get("by_slide").is_none());
    }

    #[test]
    fn annotation_changes_read_as_words() {
        let by_class = serde_json::json!([
            {"class": "Tumour", "count": 3, "area_um2": 18125.0, "length_um": 0.0},
            {"class": "", "count": 1, "area_um2": null, "length_um": null},
            {"class": "Margin", "count": 1, "area_um2": 0.0, "length_um": 1234.5}
        ]);
        assert_eq!(
            annotations_change_text("annotations.by_class", &by_class).as_deref(),
            Some("Tumour 3 (18,125.0 µm²), (unclassified) 1, Margin 1 (1,234.5 µm)")
        );
        let by_slide = serde_json::json!([
            {"file_name": "A1.svs", "file": "", "by_class": [{"class": "Mitosis", "count": 5}]},
            {"file_name": "B1.svs", "file": "", "by_class": []}
        ]);
        assert_eq!(
            annotations_change_text("annotations.by_slide", &by_slide).as_deref(),
            Some("A1.svs: Mitosis 5; B1.svs: none")
        );
        assert_eq!(annotations_change_text("annotations.by_slide", &Value::Null), None);
        assert_eq!(annotations_change_text("comments", &by_class), None);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(safe_file_stem("H26/1234 A"), "H26_1234_A");
        assert_eq!(safe_file_stem("../x"), "_x");
        assert_eq!(safe_file_stem("  "), "case");
    }
}
