//! The real viewer window under X (Xvfb when no display is set): `view --screenshot` of a known
//! place must equal the engine's `read_region` of the same place. CI installs xvfb and sets
//! WSIVIEW_REQUIRE_DISPLAY=1 so this cannot be skipped there.
#![cfg(feature = "gui")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{diff, synth};
use wsiview::synth::{Layout, SynthOptions};
use wsiview::Slide;

/// An X display for the test: the caller's, or a private Xvfb stopped on drop.
struct Display {
    name: String,
    server: Option<Child>,
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

fn display() -> Option<Display> {
    if let Some(name) = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) {
        return Some(Display { name, server: None });
    }
    let number = 140 + std::process::id() % 50;
    let server = Command::new("Xvfb")
        .args([format!(":{number}").as_str(), "-screen", "0", "1920x1200x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match server {
        Ok(child) => {
            let socket = format!("/tmp/.X11-unix/X{number}");
            for _ in 0..100 {
                if Path::new(&socket).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(Display { name: format!(":{number}"), server: Some(child) })
        }
        Err(e) => {
            assert!(
                std::env::var_os("WSIVIEW_REQUIRE_DISPLAY").is_none(),
                "WSIVIEW_REQUIRE_DISPLAY is set but Xvfb: {e}"
            );
            eprintln!("skipped: no DISPLAY and no Xvfb ({e})");
            None
        }
    }
}

fn screenshot(display: &Display, slide: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsiview"));
    cmd.arg("view").arg(slide).args(args).arg("--screenshot").arg(out).env("DISPLAY", &display.name);
    let output = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    assert!(output.status.success(), "view --screenshot failed: {}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn screenshot_matches_read_region() {
    let Some(display) = display() else { return };
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = SynthOptions { width: 6000, height: 4000, layout: Layout::Chain, seed: 9, ..Default::default() };
    let path = synth(tmp.path(), "w.tif", &opts);
    let slide = Slide::open(&path).unwrap_or_else(|e| panic!("{e}"));
    for (level, center) in [(0usize, (3000i64, 2000i64)), (1, (2600, 1800))] {
        let out = tmp.path().join(format!("shot{level}.png"));
        let timings = screenshot(
            &display,
            &path,
            &out,
            &["--center", &format!("{},{}", center.0, center.1), "--level", &level.to_string(), "--size", "800x600"],
        );
        for key in ["first_frame_ms", "complete_ms"] {
            assert!(timings[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {timings}");
        }
        assert!(timings["tiles_loaded"].as_u64().is_some_and(|n| n > 0), "{timings}");
        let shot = image::open(&out).unwrap_or_else(|e| panic!("{e}")).to_rgba8();
        assert_eq!(shot.dimensions(), (800, 600), "the slide area fills the window");
        let ds = slide.levels()[level].downsample;
        let (x, y) = (center.0 - (400.0 * ds) as i64, center.1 - (300.0 * ds) as i64);
        let reference = slide.read_region(level, x, y, 800, 600).unwrap_or_else(|e| panic!("{e}"));
        // Compare where no overlay is drawn: the minimap is top right, the scale bar bottom left.
        let crop = |img: &image::RgbaImage| image::imageops::crop_imm(img, 180, 180, 400, 360).to_image().into_raw();
        let (max, mean) = diff(&crop(&shot), &crop(&reference));
        assert!(
            max <= 4 && mean < 0.5,
            "level {level}: screenshot differs from read_region: max {max}, mean {mean:.3}"
        );
    }
}
