//! `consolidate` on 10,000 reports from 8 sites (issue 5: under 5 s on 2 cores). The reports are
//! written once into a temporary folder, one sub-folder per site and month; a tenth are drafts, a
//! twentieth amended, and one slide in ten is reviewed at two sites (agreeing four times in five).
//!
//! `WSIVIEW_BENCH_REPORTS=/some/dir cargo bench --bench consolidate` writes them there and keeps
//! them, to time the release CLI on the same set (BENCHMARKS.md).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use time::macros::date;
use wsiview::report::{consolidate, Report, Status};

const REPORTS: usize = 10_000;
const SITES: [&str; 8] = ["RLH", "NBT", "GWH", "UHB", "STH", "LTH", "MFT", "OUH"];
const CATEGORIES: [&str; 6] = ["B1", "B2", "B3", "B4", "B5a", "B5b"];

fn write_reports(root: &Path) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let start = date!(2026 - 01 - 05);
    let mut previous_category = CATEGORIES[0];
    for i in 0..REPORTS {
        let site = SITES[i % SITES.len()];
        let received = start + time::Duration::days(rand(300) as i64);
        let days = rand(15) as i64 + if rand(10) == 0 { 10 } else { 0 };
        let reported = received + time::Duration::days(days);
        // One slide in ten is shared with the report before it (a second opinion at another site).
        let slide = if i % 10 == 1 { i - 1 } else { i };
        let mut r = Report {
            case_id: format!("{site}-26-{i:05}"),
            site: site.into(),
            received_date: Some(received.to_string()),
            specimen: "Core biopsy, left breast".into(),
            clinical_details: "Screen-detected mass, 14 mm.".into(),
            microscopy: "Cores of breast tissue with an infiltrating carcinoma of no special type. ".repeat(6),
            ..Report::default()
        };
        r.reviewer.name = format!("Dr Reviewer {}", i % 40);
        r.slide.sha256 = format!("{slide:064x}");
        r.slide.file_name = format!("slide-{slide}.svs");
        r.slide.width = 100_000;
        r.slide.height = 80_000;
        r.diagnosis.text = "Invasive carcinoma".into();
        // A second review agrees four times in five.
        let category = if i % 10 == 1 && rand(5) != 0 {
            previous_category
        } else {
            CATEGORIES[rand(CATEGORIES.len() as u64) as usize]
        };
        previous_category = category;
        r.diagnosis.category = category.into();
        if i % 10 != 3 {
            r.status = Status::Final;
            r.reported_at = Some(format!("{reported}T14:30:00+00:00"));
        }
        if i % 20 == 5 {
            r.status = Status::Amended;
            r.amendments.push(wsiview::report::schema::Amendment {
                at: format!("{reported}T16:00:00+00:00"),
                by: "Dr Reviewer 0".into(),
                reason: "Typo in the microscopy".into(),
                ..Default::default()
            });
        }
        let dir = root.join(site).join(format!("{}", received.month() as u8));
        std::fs::create_dir_all(&dir).expect("create folder");
        std::fs::write(dir.join(r.file_name()), r.to_json()).expect("write report");
    }
}

fn bench(c: &mut Criterion) {
    let kept: Option<PathBuf> = std::env::var_os("WSIVIEW_BENCH_REPORTS").map(PathBuf::from);
    let temp = tempfile::tempdir().expect("temp dir");
    let root = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    write_reports(&root);
    let summary = consolidate::consolidate(std::slice::from_ref(&root), &|_, _| {});
    assert_eq!(summary.reports.len(), REPORTS, "{:?}", summary.invalid.first());
    eprintln!("{}", summary.headline());

    let mut group = c.benchmark_group("consolidate");
    group.sample_size(10);
    group.bench_function("10000 reports, 8 sites (warm cache)", |b| {
        b.iter(|| consolidate::consolidate(std::slice::from_ref(&root), &|_, _| {}))
    });
    group.bench_function("summary.json, CSVs and HTML in memory", |b| {
        b.iter(|| {
            let json = serde_json::to_vec_pretty(&summary.to_json()).unwrap_or_default();
            json.len()
                + consolidate::summary_csv(&summary).len()
                + consolidate::discordance_csv(&summary).len()
                + consolidate::summary_html(&summary).len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
