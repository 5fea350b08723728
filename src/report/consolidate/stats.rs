//! Workload per site and reviewer, turnaround and concordance, from the valid reports.

use std::collections::{BTreeMap, BTreeSet};

use super::{Concordance, DiscordantPair, ReportRow, ReviewerStats, SiteStats};
use crate::report::category_map::{normalise as category_key, CategoryMap};
use crate::stats::{median, percent_one_decimal, percentile_nearest_rank, FastMap};

// Counted in hash maps keyed by borrowed text (a million rows, a few sites: ordered maps would
// compare long common prefixes millions of times), then ordered once.

pub(super) fn site_stats(reports: &[ReportRow]) -> BTreeMap<String, SiteStats> {
    let mut by_site: FastMap<&str, (SiteStats, Vec<i64>)> = FastMap::default();
    for report in reports {
        let (stats, days) = by_site.entry(report.site.as_str()).or_default();
        stats.reports += 1;
        if report.status.is_signed_out() {
            stats.signed_out += 1;
            // A valid signed-out report has both dates, so this is always Some.
            days.extend(report.turnaround_days);
        }
    }
    by_site
        .into_iter()
        .map(|(site, (mut stats, days))| {
            if !days.is_empty() {
                stats.set_turnaround(days);
            }
            (site.to_string(), stats)
        })
        .collect()
}

impl SiteStats {
    /// Median, p90 and within-7/10-day shares of these turnarounds (days, any order).
    pub(super) fn set_turnaround(&mut self, mut days: Vec<i64>) {
        days.sort_unstable();
        let within = |limit: i64| percent_one_decimal(days.iter().filter(|&&d| d <= limit).count(), days.len());
        // Days are small integers: exact as f64.
        let as_f64: Vec<f64> = days.iter().map(|&d| d as f64).collect();
        self.turnaround_days_median = median(&as_f64);
        self.turnaround_days_p90 = percentile_nearest_rank(&days, 90.0);
        self.within_7_days_pct = within(7);
        self.within_10_days_pct = within(10);
    }
}

pub(super) fn reviewer_stats(reports: &[ReportRow]) -> BTreeMap<String, ReviewerStats> {
    let mut by_reviewer: FastMap<&str, (usize, BTreeSet<&str>)> = FastMap::default();
    for report in reports.iter().filter(|r| !r.reviewer.is_empty()) {
        let (count, sites) = by_reviewer.entry(report.reviewer.as_str()).or_default();
        *count += 1;
        sites.insert(report.site.as_str());
    }
    by_reviewer
        .into_iter()
        .map(|(name, (reports, sites))| {
            let sites = sites.into_iter().map(str::to_string).collect();
            (name.to_string(), ReviewerStats { reports, sites })
        })
        .collect()
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

pub(super) fn concordance(reports: &[ReportRow], categories: &CategoryMap) -> Concordance {
    // Hashed, then only the slides seen twice sorted: most slides are reviewed once.
    let mut by_slide: FastMap<&str, Vec<&ReportRow>> =
        FastMap::with_capacity_and_hasher(reports.len(), Default::default());
    for entry in reports.iter().filter(|e| e.status.is_signed_out()) {
        by_slide.entry(entry.sha256.as_str()).or_default().push(entry);
    }
    let mut twice: Vec<(&str, Vec<&ReportRow>)> = by_slide.into_iter().filter(|(_, group)| group.len() >= 2).collect();
    twice.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut result = Concordance { category_map: categories.source.clone(), ..Concordance::default() };
    for (sha256, group) in twice {
        result.slides_reviewed_more_than_once += 1;
        let keys: Vec<String> = group.iter().map(|e| category_key(&e.category)).collect();
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
                let (a, b) = (group[i], group[j]);
                list.push(DiscordantPair {
                    sha256: sha256.to_string(),
                    case_id_a: a.case_id.clone(),
                    case_id_b: b.case_id.clone(),
                    site_a: a.site.clone(),
                    site_b: b.site.clone(),
                    category_a: a.category.clone(),
                    category_b: b.category.clone(),
                    group_a: categories.group(&keys[i]).map(str::to_string),
                    group_b: categories.group(&keys[j]).map(str::to_string),
                    report_id_a: a.report_id.clone(),
                    report_id_b: b.report_id.clone(),
                    source_a: a.source.clone(),
                    source_b: b.source.clone(),
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
