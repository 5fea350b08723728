//! Slides written by libvips (a third-party writer) open with the right structure and pixels.
//! CI installs libvips-tools and sets WSIVIEW_REQUIRE_VIPS=1 so these cannot be skipped there.

mod common;

use std::path::Path;
use std::process::Command;

use common::{diff, synth};
use wsiview::synth::{Layout, SynthCompression, SynthOptions};
use wsiview::Slide;

fn have_vips() -> bool {
    let found = Command::new("vips").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("WSIVIEW_REQUIRE_VIPS").is_none(), "WSIVIEW_REQUIRE_VIPS is set but vips is missing");
        eprintln!("skipped: vips (libvips-tools) is not installed");
    }
    found
}

fn vips(args: &[&str]) {
    let out = Command::new("vips").args(args).output().unwrap_or_else(|e| panic!("vips: {e}"));
    assert!(out.status.success(), "vips {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A 2000×1500 lossless picture from our generator, saved as PNG for vips to convert.
fn source_png(dir: &Path) -> (std::path::PathBuf, image::RgbaImage) {
    let opts = SynthOptions {
        width: 2000,
        height: 1500,
        compression: SynthCompression::None,
        layout: Layout::Chain,
        seed: 11,
        ..Default::default()
    };
    let slide = Slide::open(&synth(dir, "src.tif", &opts)).unwrap_or_else(|e| panic!("{e}"));
    let img = slide.read_region(0, 0, 0, 2000, 1500).unwrap_or_else(|e| panic!("{e}"));
    let rgb = image::DynamicImage::ImageRgba8(img.clone()).to_rgb8();
    let png = dir.join("src.png");
    rgb.save(&png).unwrap_or_else(|e| panic!("{e}"));
    (png, img)
}

#[test]
fn libvips_pyramids_open_and_match() {
    if !have_vips() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (png, reference) = source_png(tmp.path());
    let png = png.to_string_lossy().to_string();
    let cases: [(&str, &[&str], u8); 6] = [
        ("jpeg-chain", &["--compression", "jpeg", "--Q", "92"], 40),
        ("jpeg-subifd-bigtiff", &["--compression", "jpeg", "--Q", "92", "--subifd", "--bigtiff"], 40),
        ("deflate-chain", &["--compression", "deflate"], 0),
        ("deflate-predictor", &["--compression", "deflate", "--predictor", "horizontal"], 0),
        ("lzw-predictor", &["--compression", "lzw", "--predictor", "horizontal"], 0),
        ("none-tile240", &["--compression", "none", "--tile-width", "240", "--tile-height", "240"], 0),
    ];
    for (name, extra, max_allowed) in cases {
        let out = tmp.path().join(format!("{name}.tif"));
        let out_s = out.to_string_lossy().to_string();
        let mut args =
            vec!["tiffsave", png.as_str(), out_s.as_str(), "--tile", "--pyramid", "--xres", "4000", "--yres", "4000"];
        if !extra.contains(&"--tile-width") {
            args.extend(["--tile-width", "256", "--tile-height", "256"]);
        }
        args.extend(extra);
        vips(&args);
        let slide = Slide::open(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        let levels = slide.levels();
        assert_eq!((levels[0].width, levels[0].height), (2000, 1500), "{name}");
        assert!(levels.len() >= 3, "{name}: {} levels", levels.len());
        for pair in levels.windows(2) {
            assert!((pair[1].downsample / pair[0].downsample - 2.0).abs() < 0.05, "{name}: {pair:?}");
        }
        // xres 4000 px/mm = 0.25 µm per pixel.
        let mpp = slide.properties().mpp_x.unwrap_or(0.0);
        assert!((mpp - 0.25).abs() < 1e-3, "{name}: mpp {mpp}");
        let got = slide.read_region(0, 0, 0, 2000, 1500).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (max, mean) = diff(got.as_raw(), reference.as_raw());
        assert!(max <= max_allowed && mean < 2.0, "{name}: max {max}, mean {mean:.3}");
        // A reduced level matches vips's own shrink of the source within a small error.
        let l2 = &levels[2];
        let ours = slide.read_region(2, 0, 0, l2.width as u32, l2.height as u32).unwrap_or_else(|e| panic!("{e}"));
        let shrunk = image::imageops::resize(
            &reference,
            l2.width as u32,
            l2.height as u32,
            image::imageops::FilterType::Triangle,
        );
        let (_, mean) = diff(ours.as_raw(), shrunk.as_raw());
        assert!(mean < 6.0, "{name}: level 2 mean difference {mean:.2} from a resized level 0");
    }
}
