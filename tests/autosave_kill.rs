//! Autosave under SIGKILL: a child process edits a document as fast as it can (the viewer's own
//! Document and Autosaver), reporting each change; the parent kills it at random moments and checks
//! that the sidecar is always a valid file holding every change made more than 2 s before the kill.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wsiview::annotations::geojson::read_geojson_file;
use wsiview::annotations::store::{load_for_slide_in, sidecar_path, Autosaver};
use wsiview::annotations::{Annotation, Document, Geometry, Polygon};

const CHILD_ENV: &str = "WSIVIEW_AUTOSAVE_CHILD_SLIDE";

/// The child: load what is there, then add, move and delete annotations without pause. Each
/// annotation is named after the edit count that created it; every edit is printed as it happens.
fn child(slide: &Path) {
    let loaded = load_for_slide_in(slide, None);
    assert!(loaded.warning.is_none(), "the sidecar left by the last kill is valid: {:?}", loaded.warning);
    let mut start: u64 =
        loaded.import.annotations.iter().filter_map(|a| a.name.parse::<u64>().ok()).max().map_or(0, |m| m + 1);
    let mut doc = Document::from_annotations(loaded.import.annotations);
    let mut saver = Autosaver::new(loaded.save_path, doc.revision());
    let stdout = std::io::stdout();
    loop {
        let n = start;
        start += 1;
        let x = (n % 1000) as f64 * 50.0;
        let ring: Vec<[f64; 2]> = (0..64)
            .map(|i| {
                let t = f64::from(i) / 64.0 * std::f64::consts::TAU;
                [x + 20.0 * t.cos(), 100.0 + 20.0 * t.sin()]
            })
            .collect();
        let mut a = Annotation::new(Geometry::Polygon(Polygon { exterior: ring, holes: vec![] }));
        a.name = n.to_string();
        let id = doc.add(a);
        // Some edits move or delete: the file must follow those too.
        if n.is_multiple_of(7) {
            if let Some(a) = doc.get(id).map(|a| a.as_ref().clone()) {
                let mut moved = a.clone();
                moved.geometry = a.geometry.translated([1.0, 1.0]);
                doc.update(moved);
            }
        }
        saver.submit(doc.revision(), doc.snapshot(), &[]);
        use std::io::Write;
        let mut out = stdout.lock();
        let _ = writeln!(out, "{n}");
        let _ = out.flush();
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn killed_during_heavy_editing_the_file_is_valid_and_at_most_2s_behind() {
    if let Some(slide) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&slide));
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let slide = tmp.path().join("case.svs");
    let sidecar = sidecar_path(&slide);
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut total_edits = 0;
    // Kill after varied times; the document grows over the rounds, so saves get bigger.
    for (round, run_ms) in [700u64, 1300, 450, 2600, 900, 3100].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(["--exact", "killed_during_heavy_editing_the_file_is_valid_and_at_most_2s_behind", "--nocapture"])
            .env(CHILD_ENV, &slide)
            .stdout(Stdio::piped())
            // Its stderr is the test's: a panic in it is seen.
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn the child: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        // Read the child's edit log on a thread, timestamping each line as it arrives, and say
        // when the first edit came: the child first loads the sidecar the last round left, which
        // grows over the rounds, and the kill is timed from its first edit, not from its start.
        let (first_edit_tx, first_edit) = std::sync::mpsc::channel::<()>();
        let log = std::thread::spawn(move || {
            let mut seen: Vec<(u64, Instant)> = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(n) = line.trim().parse::<u64>() {
                    seen.push((n, Instant::now()));
                    if seen.len() == 1 {
                        let _ = first_edit_tx.send(());
                    }
                }
            }
            seen
        });
        match first_edit.recv_timeout(Duration::from_secs(120)) {
            Ok(()) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("round {round}: the child made no edit within 120 s of its start");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // Its output ended before any edit: it failed, e.g. on the sidecar it loads.
                let status = child.wait();
                panic!("round {round}: the child stopped before its first edit ({status:?})");
            }
        }
        std::thread::sleep(Duration::from_millis(run_ms));
        let killed_at = Instant::now();
        child.kill().unwrap_or_else(|e| panic!("SIGKILL: {e}")); // SIGKILL on Unix
        let _ = child.wait();
        let edits = log.join().unwrap_or_else(|_| panic!("log thread"));
        assert!(edits.len() > 100, "round {round}: the child made only {} edits", edits.len());
        total_edits += edits.len();

        // The file is whole and valid: no truncation, nothing skipped.
        let import = read_geojson_file(&sidecar).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(!import.truncated && import.skipped == 0, "round {round}: {}", import.summary());
        let saved: std::collections::HashSet<u64> =
            import.annotations.iter().filter_map(|a| a.name.parse().ok()).collect();
        // Every edit reported more than 2 s before the kill is in the file.
        let deadline = killed_at - Duration::from_secs(2);
        let missing: Vec<u64> =
            edits.iter().filter(|(_, t)| *t < deadline).map(|(n, _)| *n).filter(|n| !saved.contains(n)).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} edits older than 2 s are missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        // And nothing invented: every saved annotation was reported by some round.
        assert!(saved.iter().all(|n| (*n as usize) < total_edits + 10), "round {round}: unknown annotations");
        // Moved ones carry their move (edits n % 7 == 0 were shifted by one pixel).
        for a in &import.annotations {
            let n: u64 = a.name.parse().unwrap_or_else(|_| panic!("name {}", a.name));
            let x = (n % 1000) as f64 * 50.0 + if n.is_multiple_of(7) { 1.0 } else { 0.0 };
            let b = a.geometry.bounds();
            assert!(((b[0] + b[2]) / 2.0 - x).abs() < 1e-6, "annotation {n} at {b:?}");
        }
        // No temp files pile up beyond the one a kill may leave mid-write.
        let temps = std::fs::read_dir(tmp.path())
            .map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).count())
            .unwrap_or(0);
        assert!(temps <= round + 1, "round {round}: {temps} temp files");
    }
}
