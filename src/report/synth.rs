//! Synthetic case reports for tests, benchmarks and demonstrations (`wsiview generate-reports`):
//! valid, deterministic for a seed, spread over sites, reviewers, dates, categories and equity
//! fields, with second opinions on the same slide so that concordance has work to do.
//!
//! Report `n` of a set:
//! - its site is `sites[n % sites.len()]`; its case id `SITE-n`;
//! - received between 2025-01-01 and 2026-11-30; turnaround 0–20 days (mostly under 10);
//! - 90 % final, 5 % amended (one amendment), 5 % drafts (no `reported_at`);
//! - every 10th report is a second opinion on report `n - 1`'s slide, at the next site, agreeing
//!   with it four times in five;
//! - an ethnic category for 9 in 10 reports and an IMD decile for 8 in 10.

use serde_json::Map;
use time::{Date, Duration, Month};

use super::schema::{Amendment, Equity, Report, ReviewType, Status, ETHNIC_CATEGORIES};

const CATEGORIES: [&str; 8] = ["B1", "B2", "B3", "B4", "B5a", "B5b", "benign", "malignant"];

/// SplitMix64: a well-mixed 64-bit value of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn slide_sha256(seed: u64, slide: u64) -> String {
    (0..4).map(|i| format!("{:016x}", mix(seed ^ mix(slide * 4 + i)))).collect()
}

/// Report `n` of the set made with `seed` over `sites` (at least one site code).
pub fn report(n: u64, sites: &[&str], seed: u64) -> Report {
    let h = |salt: u64| mix(seed ^ mix(n.wrapping_mul(31).wrapping_add(salt)));
    let site_count = sites.len().max(1) as u64;
    let second_opinion = n % 10 == 9;
    // Report n - 1 is at site (n - 1) % count, so a second opinion at n % count is at another.
    let site_index = n % site_count;
    let site = sites.get(site_index as usize).copied().unwrap_or("SITE");
    let slide = if second_opinion { n - 1 } else { n };
    let first = Date::from_calendar_date(2025, Month::January, 1).unwrap_or(Date::MIN);
    let received = first + Duration::days((h(1) % 699) as i64);
    let turnaround = match h(2) % 100 {
        0..=59 => h(3) % 7,
        60..=89 => 7 + h(3) % 4,
        _ => 11 + h(3) % 10,
    } as i64;
    let status = match h(4) % 100 {
        0..=4 => Status::Draft,
        5..=9 => Status::Amended,
        _ => Status::Final,
    };
    let category_of = |slide: u64| CATEGORIES[(mix(seed ^ slide) % CATEGORIES.len() as u64) as usize];
    let category = if second_opinion && h(5) % 5 == 0 { CATEGORIES[(h(6) % 8) as usize] } else { category_of(slide) };
    let uuid_bytes = [h(7).to_le_bytes(), h(8).to_le_bytes()].concat();
    let mut random = [0u8; 16];
    random.copy_from_slice(&uuid_bytes);
    let mut r = Report {
        report_id: uuid::Builder::from_random_bytes(random).into_uuid().to_string(),
        case_id: format!("{site}-{n}"),
        site: site.to_string(),
        status: Status::Draft,
        review_type: if second_opinion { ReviewType::SecondOpinion } else { ReviewType::Primary },
        received_date: Some(received.to_string()),
        ..Report::default()
    };
    r.reviewer.name = format!("Dr Reviewer {site} {}", h(9) % 12);
    r.slide.file_name = format!("{site}-{n}.svs");
    r.slide.sha256 = slide_sha256(seed, slide);
    r.slide.width = 100_000;
    r.slide.height = 80_000;
    r.slide.mpp_x = Some(0.25);
    r.slide.mpp_y = Some(0.25);
    r.slide.vendor = "aperio".into();
    r.specimen = "Core biopsy, left breast".into();
    r.microscopy = "Cores of breast tissue as described.".into();
    r.diagnosis.text = format!("Diagnosis in category {category}");
    r.diagnosis.category = category.into();
    r.diagnosis.snomed_ct = vec!["413448000".into()];
    let code = ETHNIC_CATEGORIES[(h(10) % ETHNIC_CATEGORIES.len() as u64) as usize].0;
    r.equity = Some(Equity {
        ethnic_category: (h(11) % 10 != 0).then(|| code.to_string()),
        imd_decile: (h(12) % 10 >= 2).then(|| (1 + h(13) % 10) as u8),
        extra: Map::new(),
    });
    if status != Status::Draft {
        let reported = received + Duration::days(turnaround);
        r.status = Status::Final;
        r.reported_at = Some(format!("{reported}T14:{:02}:00+00:00", h(14) % 60));
    }
    if status == Status::Amended {
        let at = received + Duration::days(turnaround + 1);
        r.status = Status::Amended;
        r.comments = "Addendum: immunohistochemistry result.".into();
        r.amendments.push(Amendment {
            at: format!("{at}T09:00:00+00:00"),
            by: format!("Dr Reviewer {site} {}", h(15) % 12),
            reason: "immunohistochemistry result".into(),
            ..Amendment::default()
        });
    }
    r
}

/// Write reports `0..count` of the set into `out/SITE/CASE.report.json`, in parallel. Plain writes,
/// not synced: the set is made again from its seed, so a crash loses nothing of anyone's. Returns
/// how many were written; the error names the file.
pub fn write_set(out: &std::path::Path, count: u64, sites: &[&str], seed: u64) -> std::io::Result<u64> {
    use rayon::prelude::*;
    let named = |path: &std::path::Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: cannot write: {e}", path.display()))
    };
    for site in sites {
        let dir = out.join(super::schema::safe_file_stem(site));
        std::fs::create_dir_all(&dir).map_err(|e| named(&dir, e))?;
    }
    (0..count).into_par_iter().try_for_each(|n| {
        let r = report(n, sites, seed);
        let path = out.join(super::schema::safe_file_stem(&r.site)).join(r.file_name());
        std::fs::write(&path, r.to_json()).map_err(|e| named(&path, e))
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_reports_are_valid_deterministic_and_varied() {
        let sites = ["RLH", "NBT", "GWH"];
        let reports: Vec<Report> = (0..400).map(|n| report(n, &sites, 7)).collect();
        for r in &reports {
            assert!(r.problems().is_empty(), "{:?}: {:?}", r.case_id, r.problems());
        }
        assert_eq!(report(5, &sites, 7), reports[5], "deterministic");
        assert_ne!(report(5, &sites, 8).report_id, reports[5].report_id, "the seed matters");
        let count = |s: Status| reports.iter().filter(|r| r.status == s).count();
        assert!(count(Status::Draft) > 5 && count(Status::Amended) > 5 && count(Status::Final) > 300);
        assert_eq!(reports[9].slide.sha256, reports[8].slide.sha256, "a second opinion on the same slide");
        assert_ne!(reports[9].site, reports[8].site, "at another site");
        let ids: std::collections::HashSet<&str> = reports.iter().map(|r| r.report_id.as_str()).collect();
        assert_eq!(ids.len(), reports.len());
    }
}
