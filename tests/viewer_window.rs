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
    // One server per test (tests run in parallel in one process, and other processes may run
    // Xvfb too): a display number whose lock file is free, and a server that stays up.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut last_error = None;
    for _ in 0..20 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let number = 140 + (std::process::id() * 7 + n * 13) % 400;
        if Path::new(&format!("/tmp/.X{number}-lock")).exists() {
            continue;
        }
        let server = Command::new("Xvfb")
            .args([format!(":{number}").as_str(), "-screen", "0", "1920x1200x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match server {
            Ok(child) => child,
            Err(e) => {
                last_error = Some(e);
                break;
            }
        };
        let socket = format!("/tmp/.X11-unix/X{number}");
        for _ in 0..100 {
            if Path::new(&socket).exists() || child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().ok().flatten().is_some() {
            continue; // the number was taken after all
        }
        return Some(Display { name: format!(":{number}"), server: Some(child) });
    }
    match last_error {
        None => panic!("no free X display number for Xvfb"),
        Some(e) => {
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
    screenshot_with(display, slide, out, args, &[])
}

fn screenshot_with(
    display: &Display,
    slide: &Path,
    out: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsiview"));
    cmd.arg("view").arg(slide).args(args).arg("--screenshot").arg(out).env("DISPLAY", &display.name);
    // The default drawing unless the test asks otherwise, whatever the caller's environment.
    cmd.env_remove("WSIVIEW_TILE_DRAW").env_remove("WSIVIEW_RENDERER").envs(envs.iter().copied());
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

/// Tiles drawn by the OpenGL paint callback from its own BGRA textures (the default under glow)
/// look the same as tiles drawn as egui images (`WSIVIEW_TILE_DRAW=egui`): zoomed out past the slide (background around it),
/// between levels (level 1 scaled, bilinear), and at level 0 at 1:1 with a corrupt tile hatched.
#[test]
fn gl_tiles_equal_egui_images() {
    let Some(display) = display() else { return };
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = SynthOptions { width: 6000, height: 4000, layout: Layout::Chain, seed: 5, ..Default::default() };
    let path = synth(tmp.path(), "g.tif", &opts);
    // Level-0 tile (11, 8) corrupt, as in viewer_ui's corrupt-tile test: drawn hatched over the
    // tiles in the third view (screen x 116–372, y 248–504).
    let raw = wsiview::slide::TiffSlide::open(&path)
        .and_then(|s| s.read_raw_tile(0, 11, 8))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("tile"));
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let at =
        bytes.windows(raw.data.len()).position(|w| w == raw.data.as_slice()).unwrap_or_else(|| panic!("tile bytes"));
    bytes[at + 2..at + 40].fill(0x5A);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    let views: [&[&str]; 3] = [
        &["--downsample", "12"],
        &["--center", "2500,1700", "--downsample", "2.74"],
        &["--center", "3100,2100", "--level", "0"],
    ];
    for (i, args) in views.into_iter().enumerate() {
        let args: Vec<&str> = args.iter().copied().chain(["--size", "800x600"]).collect();
        let gl_out = tmp.path().join(format!("gl{i}.png"));
        let egui_out = tmp.path().join(format!("egui{i}.png"));
        let gl_run = screenshot_with(&display, &path, &gl_out, &args, &[]);
        let egui_run = screenshot_with(&display, &path, &egui_out, &args, &[("WSIVIEW_TILE_DRAW", "egui")]);
        assert_eq!(gl_run["tile_draw"], "gl", "the default run draws tiles through OpenGL: {gl_run}");
        assert_eq!(egui_run["tile_draw"], "egui", "{egui_run}");
        let gl = image::open(&gl_out).unwrap_or_else(|e| panic!("{e}")).to_rgba8();
        let egui = image::open(&egui_out).unwrap_or_else(|e| panic!("{e}")).to_rgba8();
        assert_eq!(gl.dimensions(), egui.dimensions());
        // Everything but the overlays (the minimap top right, the scale bar bottom left).
        let crop = |img: &image::RgbaImage| image::imageops::crop_imm(img, 0, 0, 560, 520).to_image().into_raw();
        let (max, mean) = diff(&crop(&gl), &crop(&egui));
        // At 1:1 both show the texels themselves. Scaled, the GL path's textures are BGRA and
        // egui's RGBA, which llvmpipe filters by different code, so they differ by rounding (seen:
        // max 2, mean 0.34 at a downsample of 12, 0.64 at 2.74); a wrong channel order or a
        // missing tile differs by far more.
        let (max_allowed, mean_allowed) = if i == 2 { (0, 0.0) } else { (3, 1.0) };
        assert!(
            max <= max_allowed && mean <= mean_allowed,
            "view {args:?}: GL tiles differ from egui's: max {max}, mean {mean:.3}"
        );
        if i == 2 {
            let hatched = (116..372).any(|x| gl.get_pixel(x, 380).0[..3] == [60, 20, 20]);
            assert!(hatched, "the corrupt tile is drawn hatched");
        }
        if i == 0 {
            // 6000 / 12 = 500 pixels of slide, centred in 800: background on both sides.
            for x in [20, 780] {
                let p = gl.get_pixel(x, 300).0;
                assert_eq!(&p[..3], &[38, 38, 38], "background at x = {x}");
            }
            let inside = gl.get_pixel(400, 300).0;
            assert_ne!(&inside[..3], &[38, 38, 38], "slide at the centre");
        }
    }
}
