//! Opening real and generated slides: levels, metadata and pixels against independent references
//! (the `tiff` crate's decoder, PNG references, lossless twins of lossy slides).

mod common;

use common::{diff, fixtures, synth, tiff_crate_rgba};
use wsiview::synth::{generate_ome_multi, Layout, OmeExtraImage, SynthCompression, SynthOptions};
use wsiview::tiff::ByteOrder;
use wsiview::Slide;

fn open(path: &std::path::Path) -> Slide {
    Slide::open(path).unwrap_or_else(|e| panic!("{e}"))
}

fn level0_rgba(slide: &Slide) -> Vec<u8> {
    let l = &slide.levels()[0];
    slide.read_region(0, 0, 0, l.width as u32, l.height as u32).unwrap_or_else(|e| panic!("{e}")).into_raw()
}

#[test]
fn boxes_tiff_matches_openslide_facts_and_png() {
    let Some(dir) = fixtures() else { return };
    let slide = open(&dir.join("openslide-python/boxes.tiff"));
    let dims: Vec<(u64, u64)> = slide.levels().iter().map(|l| (l.width, l.height)).collect();
    assert_eq!(dims, vec![(300, 250), (150, 125), (75, 62), (37, 31)]);
    let ds: Vec<f64> = slide.levels().iter().map(|l| l.downsample).collect();
    for (got, want) in ds.iter().zip([1.0, 2.0, 4.016129, 8.086312]) {
        assert!((got - want).abs() < 1e-5, "downsample {got} vs {want}");
    }
    let p = slide.properties();
    assert_eq!(p.vendor, "generic-tiff");
    assert!((p.mpp_x.unwrap_or(0.0) - 352.7778).abs() < 1e-3, "{:?}", p.mpp_x);
    assert!((p.mpp_y.unwrap_or(0.0) - 352.7778).abs() < 1e-3);
    assert!(slide.associated_names().is_empty());
    let reference = image::open(dir.join("openslide-python/boxes.png")).unwrap_or_else(|e| panic!("{e}")).to_rgba8();
    assert_eq!(reference.dimensions(), (300, 250));
    let (max, _) = diff(&level0_rgba(&slide), reference.as_raw());
    assert_eq!(max, 0, "Deflate level 0 must equal the PNG exactly");
}

#[test]
fn small_svs_aperio_rgb_jpeg() {
    let Some(dir) = fixtures() else { return };
    let slide = open(&dir.join("openslide-python/small.svs"));
    let p = slide.properties();
    assert_eq!(p.vendor, "aperio");
    assert_eq!(slide.levels().len(), 1);
    assert_eq!((slide.levels()[0].width, slide.levels()[0].height), (16, 16));
    assert_eq!(p.mpp_x, Some(0.499));
    assert_eq!(p.mpp_y, Some(0.499));
    assert_eq!(p.objective_power, Some(20.0));
    assert_eq!(slide.associated_names(), vec!["thumbnail".to_string()]);
    assert!(p.values.get("aperio.AppMag").is_some_and(|v| v == "20"));
    // The tile is RGB JPEG without the colour transform (Photometric RGB). Decoded as YCbCr it would
    // be far off; the tiff crate decodes it without conversion, as OpenSlide does (checked: ±1).
    let (_, _, reference) = tiff_crate_rgba(&dir.join("openslide-python/small.svs"));
    let (max, _) = diff(&level0_rgba(&slide)[..], &reference[..16 * 16 * 4]);
    assert!(max <= 2, "differs from the reference by {max}");
    let thumb = slide.read_associated("thumbnail").unwrap_or_else(|e| panic!("{e}"));
    assert!(thumb.width() > 0 && thumb.height() > 0);
}

/// ImageScope under a comma-decimal locale writes `MPP = 0,500000`: 0.5 µm, as OpenSlide 4 reads it.
#[test]
fn aperio_mpp_with_a_decimal_comma() {
    let Some(dir) = fixtures() else { return };
    let slide = open(&dir.join("bugreports/svs-mpp-comma.svs"));
    let p = slide.properties();
    assert_eq!(p.vendor, "aperio");
    let dims: Vec<(u64, u64)> = slide.levels().iter().map(|l| (l.width, l.height)).collect();
    assert_eq!(dims, vec![(1536, 1024), (384, 256)]);
    assert_eq!((p.mpp_x, p.mpp_y, p.objective_power), (Some(0.5), Some(0.5), Some(20.0)));
    assert_eq!(slide.associated_names(), vec!["thumbnail".to_string()]);
    assert!(!p.values.keys().any(|k| k.starts_with("wsiview.warning")), "{:?}", p.values);
}

fn extra(name: &str, width: u32, height: u32, tiled: bool) -> OmeExtraImage {
    OmeExtraImage { name: name.into(), width, height, tiled }
}

/// Bio-Formats and tifffile write the macro or label as an earlier Image than the scan: the
/// slide is the largest tiled pyramid wherever it is, the rest are named associated images, and
/// mpp is the scan's own.
#[test]
fn multi_image_ome_finds_the_slide_and_names_the_rest() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = SynthOptions { width: 2048, height: 1536, mpp: 0.25, objective_power: 20.0, ..Default::default() };
    let extras =
        [extra("Macro image", 600, 240, false), extra("label", 300, 280, true), extra("Overview 2", 512, 384, true)];
    let reference = {
        let path = dir.path().join("plain.ome.tif");
        generate_ome_multi(&path, &opts, &[], 0).unwrap_or_else(|e| panic!("{e}"));
        let slide = open(&path);
        slide.read_region(1, 300, 200, 128, 128).unwrap_or_else(|e| panic!("{e}")).into_raw()
    };
    for slide_at in 0..=extras.len() {
        for byte_order in [ByteOrder::Little, ByteOrder::Big] {
            let path = dir.path().join(format!("multi-{slide_at}-{byte_order:?}.ome.tif"));
            let opts = SynthOptions { byte_order, ..opts.clone() };
            generate_ome_multi(&path, &opts, &extras, slide_at).unwrap_or_else(|e| panic!("{e}"));
            let slide = open(&path);
            let dims: Vec<(u64, u64)> = slide.levels().iter().map(|l| (l.width, l.height)).collect();
            assert_eq!(dims, vec![(2048, 1536), (1024, 768), (512, 384), (256, 192)], "scan at {slide_at}");
            let p = slide.properties();
            assert_eq!((p.mpp_x, p.mpp_y, p.objective_power), (Some(0.25), Some(0.25), Some(20.0)), "at {slide_at}");
            assert!(!p.values.contains_key("wsiview.warning.ome"), "{:?}", p.values.get("wsiview.warning.ome"));
            let mut names = slide.associated_names();
            names.sort();
            assert_eq!(names, vec!["Overview 2", "label", "macro"], "scan at {slide_at}");
            let macro_image = slide.read_associated("macro").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(macro_image.dimensions(), (600, 240));
            assert_eq!(slide.read_associated("label").unwrap_or_else(|e| panic!("{e}")).dimensions(), (300, 280));
            let pixels = slide.read_region(1, 300, 200, 128, 128).unwrap_or_else(|e| panic!("{e}")).into_raw();
            assert_eq!(pixels, reference, "the scan's pixels, wherever it is in the file");
        }
    }
}

/// OME-XML that is malformed or disagrees with the IFDs: the file is read as a plain TIFF (the
/// largest tiled image is the slide), with a warning property, never refused.
#[test]
fn multi_image_ome_with_bad_xml_falls_back_with_a_warning() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = SynthOptions { width: 2048, height: 1536, ..Default::default() };
    let extras = [extra("macro", 600, 240, true)];
    let path = dir.path().join("good.ome.tif");
    generate_ome_multi(&path, &opts, &extras, 1).unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let replace = |from: &str, to: &str| -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = bytes.windows(from.len()).position(|w| w == from.as_bytes()).unwrap_or_else(|| panic!("{from}"));
        let mut b = bytes.clone();
        b[at..at + to.len()].copy_from_slice(to.as_bytes());
        b
    };
    for (name, patched, needle) in [
        ("malformed", replace("</OME>", "</OMX>"), "OME-XML"),
        ("past-the-chain", replace("TiffData IFD=\"1\"", "TiffData IFD=\"7\""), "IFD 7"),
        ("wrong-size", replace("SizeX=\"2048\"", "SizeX=\"2047\""), "2047"),
    ] {
        let path = dir.path().join(format!("{name}.ome.tif"));
        std::fs::write(&path, patched).unwrap_or_else(|e| panic!("{e}"));
        let slide = open(&path);
        assert_eq!((slide.levels()[0].width, slide.levels().len()), (2048, 4), "{name}");
        let warning = slide.properties().values.get("wsiview.warning.ome").cloned().unwrap_or_default();
        assert!(warning.contains(needle) && warning.contains("plain TIFF"), "{name}: {warning:?}");
    }
}

/// Third-party tiled TIFFs from image-tiff: our decode must equal the tiff crate's, exactly.
#[test]
fn image_tiff_fixtures_match_tiff_crate() {
    let Some(dir) = fixtures() else { return };
    for name in [
        "tiled-rgb-u8.tif",
        "tiled-rect-rgb-u8.tif",
        "tiled-jpeg-rgb-u8.tif",
        "seq-1c-8b-tiled-deflate-20f3db0c.tiff",
        "seq-1c-8b-tiled-lzw-20f3db0c.tiff",
    ] {
        let path = dir.join("image-tiff").join(name);
        let slide = open(&path);
        let (w, h, reference) = tiff_crate_rgba(&path);
        assert_eq!((slide.levels()[0].width, slide.levels()[0].height), (u64::from(w), u64::from(h)), "{name}");
        let (max, mean) = diff(&level0_rgba(&slide), &reference);
        assert_eq!(max, 0, "{name}: max difference {max}, mean {mean}");
    }
}

/// quad-tile.tif keeps its tile offsets under the strip tags (an old SGI habit libtiff accepts);
/// quad-jpeg.tif is the same picture as JPEG strips, our reference within JPEG's error.
#[test]
fn tiles_listed_under_strip_tags() {
    let Some(dir) = fixtures() else { return };
    let slide = open(&dir.join("image-tiff/quad-tile.tif"));
    let (w, h, reference) = tiff_crate_rgba(&dir.join("image-tiff/quad-jpeg.tif"));
    assert_eq!((slide.levels()[0].width, slide.levels()[0].height), (u64::from(w), u64::from(h)));
    let (_, mean) = diff(&level0_rgba(&slide), &reference);
    assert!(mean < 4.0, "mean difference {mean}");
}

#[test]
fn signed_8_bit_samples_read_as_their_bits() {
    let Some(dir) = fixtures() else { return };
    let path = dir.join("image-tiff/tiled-oversize-gray-i8.tif");
    let slide = open(&path);
    assert_eq!((slide.levels()[0].width, slide.levels()[0].height), (499, 374));
    // The tiff crate's decode (i8), taken as bits, is what libtiff's RGBA interface shows.
    use tiff::decoder::{Decoder, DecodingResult};
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut dec = Decoder::new(std::io::BufReader::new(file)).unwrap_or_else(|e| panic!("{e}"));
    let DecodingResult::I8(values) = dec.read_image().unwrap_or_else(|e| panic!("{e}")) else {
        panic!("the fixture is not signed 8-bit")
    };
    let reference: Vec<u8> = values.iter().flat_map(|&v| [v as u8, v as u8, v as u8, 255]).collect();
    let (max, _) = diff(&level0_rgba(&slide), &reference);
    assert_eq!(max, 0);
}

/// Sample `s` of pixel (x, y) of the test pattern, 16 bits.
fn pattern(x: u32, y: u32, s: u32) -> u16 {
    ((x * 521 + y * 131 + s * 9973).wrapping_mul(37) % 65536) as u16
}

/// A one-level tiled TIFF of the pattern (100 × 70, 32-px tiles, so edge tiles): `bits` 8 or 16,
/// `spp` samples (1 grey, 3 RGB), interleaved or separate planes, raw or Deflate with Predictor 2.
fn pattern_tiff(path: &std::path::Path, order: ByteOrder, bits: u16, spp: u16, planar: bool, deflate: bool) {
    use std::io::Write;
    use wsiview::tiff::tags;
    use wsiview::tiff::writer::{TiffWriter, Value};
    let (w, h, t) = (100u32, 70u32, 32u32);
    let mut out = TiffWriter::create(path, order, false).unwrap_or_else(|e| panic!("{e}"));
    let put = |v: u16, buf: &mut Vec<u8>| match (bits, order) {
        (8, _) => buf.push(v as u8),
        (_, ByteOrder::Big) => buf.extend_from_slice(&v.to_be_bytes()),
        _ => buf.extend_from_slice(&v.to_le_bytes()),
    };
    let value = |x: u32, y: u32, s: u32| {
        let v = if x < w && y < h { pattern(x, y, s) } else { 0 };
        if bits == 8 {
            v & 0xFF
        } else {
            v
        }
    };
    let planes: Vec<Vec<u32>> =
        if planar { (0..u32::from(spp)).map(|s| vec![s]).collect() } else { vec![(0..u32::from(spp)).collect()] };
    let (mut offsets, mut counts) = (Vec::new(), Vec::new());
    for samples in &planes {
        for ty in 0..h.div_ceil(t) {
            for tx in 0..w.div_ceil(t) {
                let mut buf = Vec::new();
                for y in ty * t..ty * t + t {
                    let mut previous = vec![0u16; samples.len()];
                    for x in tx * t..tx * t + t {
                        for (k, &s) in samples.iter().enumerate() {
                            let v = value(x, y, s);
                            let stored = if deflate {
                                v.wrapping_sub(previous[k]) & if bits == 8 { 0xFF } else { 0xFFFF }
                            } else {
                                v
                            };
                            previous[k] = v;
                            put(stored, &mut buf);
                        }
                    }
                }
                if deflate {
                    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                    enc.write_all(&buf).unwrap_or_else(|e| panic!("{e}"));
                    buf = enc.finish().unwrap_or_else(|e| panic!("{e}"));
                }
                counts.push(buf.len() as u64);
                offsets.push(out.write_block(&buf).unwrap_or_else(|e| panic!("{e}")));
            }
        }
    }
    let mut ifd = vec![
        (tags::IMAGE_WIDTH, Value::Long(vec![w])),
        (tags::IMAGE_LENGTH, Value::Long(vec![h])),
        (tags::BITS_PER_SAMPLE, Value::Short(vec![bits; usize::from(spp)])),
        (tags::COMPRESSION, Value::Short(vec![if deflate { 8 } else { 1 }])),
        (tags::PHOTOMETRIC, Value::Short(vec![if spp == 1 { 1 } else { 2 }])),
        (tags::SAMPLES_PER_PIXEL, Value::Short(vec![spp])),
        (tags::PLANAR_CONFIGURATION, Value::Short(vec![if planar { 2 } else { 1 }])),
        (tags::TILE_WIDTH, Value::Long(vec![t])),
        (tags::TILE_LENGTH, Value::Long(vec![t])),
        (tags::TILE_OFFSETS, Value::Offsets(offsets)),
        (tags::TILE_BYTE_COUNTS, Value::Offsets(counts)),
    ];
    if deflate {
        ifd.push((tags::PREDICTOR, Value::Short(vec![2])));
    }
    out.write_chained_ifd(ifd).unwrap_or_else(|e| panic!("{e}"));
    out.finish().unwrap_or_else(|e| panic!("{e}"));
}

/// 16-bit and separate-plane slides, which OpenSlide reads, read as libtiff's RGBA interface
/// makes them 8-bit: grey keeps the high byte, colour `(v + 128) / 257` (tif_getimage.c).
#[test]
fn sixteen_bit_and_separate_planes_match_the_pattern() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for order in [ByteOrder::Little, ByteOrder::Big] {
        for (bits, spp, planar, deflate) in [
            (16, 3, false, false),
            (16, 3, false, true),
            (16, 1, false, true),
            (8, 3, true, false),
            (8, 3, true, true),
            (16, 3, true, true),
        ] {
            let name = format!("p-{order:?}-{bits}-{spp}-{planar}-{deflate}.tif");
            let path = dir.path().join(&name);
            pattern_tiff(&path, order, bits, spp, planar, deflate);
            let slide = open(&path);
            let got = level0_rgba(&slide);
            let eight = |v: u16| match (bits, spp) {
                (8, _) => (v & 0xFF) as u8,
                (_, 1) => (v >> 8) as u8,
                _ => ((u32::from(v) + 128) / 257) as u8,
            };
            let expected: Vec<u8> = (0..70u32)
                .flat_map(|y| (0..100u32).map(move |x| (x, y)))
                .flat_map(|(x, y)| {
                    let c = |s: u32| eight(pattern(x, y, if spp == 1 { 0 } else { s }));
                    [c(0), c(1), c(2), 255]
                })
                .collect();
            let (max, _) = diff(&got, &expected);
            assert_eq!(max, 0, "{name}");
        }
    }
}

#[test]
fn bigtiff_fixture_with_oversized_byte_count_reads() {
    let Some(dir) = fixtures() else { return };
    // Tile byte count 1024 where 256 are needed: the extra bytes are ignored, as libtiff does for reads.
    let slide = open(&dir.join("image-tiff/seq-1c-8b-tiled-bigtiff-20f3db0c.tiff"));
    assert_eq!((slide.levels()[0].width, slide.levels()[0].height), (16, 16));
    let px = level0_rgba(&slide);
    assert!(px.chunks_exact(4).all(|p| p[0] == p[1] && p[1] == p[2] && p[3] == 255), "grey, opaque");
}

fn small(layout: Layout, compression: SynthCompression) -> SynthOptions {
    // Sizes not divisible by the tile: edge tiles everywhere.
    SynthOptions { width: 1500, height: 1100, tile: 256, compression, layout, mpp: 0.25, seed: 7, ..Default::default() }
}

/// Every layout, compression, TIFF flavour and byte order we write opens with the right facts, and
/// level 0 equals the independent tiff crate's decode of the same file.
#[test]
fn generated_slides_every_flavour() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut n = 0;
    for layout in [Layout::Chain, Layout::Subifd, Layout::Ome, Layout::Svs] {
        for compression in
            [SynthCompression::Jpeg, SynthCompression::Deflate, SynthCompression::Lzw, SynthCompression::None]
        {
            for (bigtiff, order) in
                [(false, ByteOrder::Little), (true, ByteOrder::Big), (true, ByteOrder::Little), (false, ByteOrder::Big)]
            {
                // All combinations of flavour for JPEG (the common case); one flavour each otherwise.
                if compression != SynthCompression::Jpeg && (bigtiff || order == ByteOrder::Big) && n % 3 != 0 {
                    n += 1;
                    continue;
                }
                n += 1;
                let opts = SynthOptions { bigtiff, byte_order: order, ..small(layout, compression) };
                let name = format!("{layout:?}-{compression:?}-{bigtiff}-{order:?}.tif");
                let path = synth(tmp.path(), &name, &opts);
                let slide = open(&path);
                let levels = slide.levels();
                let factor: f64 = if layout == Layout::Svs { 4.0 } else { 2.0 };
                assert_eq!((levels[0].width, levels[0].height), (1500, 1100), "{name}");
                assert!(levels.len() >= 3, "{name}: {} levels", levels.len());
                for (i, l) in levels.iter().enumerate() {
                    let want = factor.powi(i as i32);
                    assert!((l.downsample / want - 1.0).abs() < 0.01, "{name}: level {i} downsample {}", l.downsample);
                    assert_eq!((l.tile_width, l.tile_height), (256, 256));
                }
                let p = slide.properties();
                assert!((p.mpp_x.unwrap_or(0.0) - 0.25).abs() < 1e-6, "{name}: mpp {:?}", p.mpp_x);
                let vendor = match layout {
                    Layout::Svs => "aperio",
                    Layout::Ome => "ome-tiff",
                    _ => "generic-tiff",
                };
                assert_eq!(p.vendor, vendor, "{name}");
                if layout == Layout::Svs {
                    assert_eq!(slide.associated_names(), vec!["thumbnail", "label", "macro"], "{name}");
                    assert_eq!(p.objective_power, Some(40.0));
                    for a in ["thumbnail", "label", "macro"] {
                        let img = slide.read_associated(a).unwrap_or_else(|e| panic!("{name} {a}: {e}"));
                        assert!(img.width() > 100, "{name}: {a} is {}×{}", img.width(), img.height());
                    }
                }
                let (w, h, reference) = tiff_crate_rgba(&path);
                assert_eq!((w, h), (1500, 1100));
                let (max, mean) = diff(&level0_rgba(&slide), &reference);
                let tolerance = if compression == SynthCompression::Jpeg { 3 } else { 0 };
                assert!(max <= tolerance, "{name}: differs from the tiff crate by up to {max} (mean {mean:.3})");
            }
        }
    }
}

/// A JPEG slide against its lossless twin (same picture, no compression): within JPEG's error.
#[test]
fn jpeg_levels_match_lossless_twin() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for layout in [Layout::Chain, Layout::Svs] {
        let jpeg = open(&synth(tmp.path(), "j.tif", &small(layout, SynthCompression::Jpeg)));
        let raw = open(&synth(tmp.path(), "r.tif", &small(layout, SynthCompression::None)));
        for level in 0..jpeg.levels().len() {
            let l = &jpeg.levels()[level];
            let a = jpeg.read_region(level, 0, 0, l.width as u32, l.height as u32).unwrap_or_else(|e| panic!("{e}"));
            let b = raw.read_region(level, 0, 0, l.width as u32, l.height as u32).unwrap_or_else(|e| panic!("{e}"));
            let (max, mean) = diff(a.as_raw(), b.as_raw());
            assert!(mean < 3.0 && max < 80, "{layout:?} level {level}: mean {mean:.2}, max {max}");
        }
    }
}

#[test]
fn read_region_follows_openslide_semantics() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let slide = open(&synth(tmp.path(), "s.tif", &small(Layout::Chain, SynthCompression::Deflate)));
    // Partly outside the slide (negative corner): outside transparent, inside equal to the pixels there.
    let r = slide.read_region(0, -10, -20, 50, 60).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.get_pixel(0, 0).0, [0, 0, 0, 0]);
    assert_eq!(r.get_pixel(9, 25).0[3], 0);
    let inside = slide.read_region(0, 0, 0, 40, 40).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.get_pixel(10, 20), inside.get_pixel(0, 0));
    assert_eq!(r.get_pixel(49, 59), inside.get_pixel(39, 39));
    // Past the right/bottom edge.
    let edge = slide.read_region(0, 1490, 1090, 20, 20).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(edge.get_pixel(9, 9).0[3], 255);
    assert_eq!(edge.get_pixel(10, 9).0[3], 0);
    assert_eq!(edge.get_pixel(9, 10).0[3], 0);
    // Level 1: x, y are level-0 coordinates; the region spans tile boundaries and equals the tiles.
    let region = slide.read_region(1, 400, 200, 300, 200).unwrap_or_else(|e| panic!("{e}"));
    let (lx, ly) = (200u32, 100u32);
    for (x, y) in [(0u32, 0u32), (55, 155), (56, 156), (299, 199), (100, 57)] {
        let (gx, gy) = (lx + x, ly + y);
        let tile = slide.read_tile(1, u64::from(gx / 256), u64::from(gy / 256)).unwrap_or_else(|e| panic!("{e}"));
        let at = (((gy % 256) * tile.width + gx % 256) * 4) as usize;
        assert_eq!(&region.get_pixel(x, y).0[..], &tile.rgba[at..at + 4], "pixel {x},{y}");
    }
    assert_eq!(slide.best_level_for_downsample(1.0), 0);
    assert_eq!(slide.best_level_for_downsample(3.9), 1);
    assert_eq!(slide.best_level_for_downsample(4.0), 2);
    assert_eq!(slide.best_level_for_downsample(1000.0), slide.levels().len() - 1);
    assert_eq!(slide.best_level_for_downsample(0.5), 0);
}

#[test]
fn thumbnail_fits_and_keeps_aspect() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let slide = open(&synth(tmp.path(), "s.tif", &small(Layout::Chain, SynthCompression::Jpeg)));
    let t = slide.thumbnail(300).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.width(), 300);
    assert!((i64::from(t.height()) - 220).abs() <= 1, "{}", t.height());
    // Mostly opaque, and not a flat colour.
    let px: Vec<[u8; 4]> = t.pixels().map(|p| p.0).collect();
    assert!(px.iter().all(|p| p[3] == 255));
    assert!(px.iter().any(|p| p[1] < 200) && px.iter().any(|p| p[1] > 230), "tissue and glass visible");
}

/// Many threads reading overlapping regions of one slide through one shared cache get the same
/// pixels as a single reader with no cache pressure.
#[test]
fn concurrent_reads_agree() {
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = synth(tmp.path(), "c.tif", &small(Layout::Chain, SynthCompression::Jpeg));
    let reference = open(&path).read_region(0, 100, 100, 1200, 900).unwrap_or_else(|e| panic!("{e}"));
    // A cache too small for the region: tiles are evicted and decoded again while others read them.
    let cache = Arc::new(wsiview::tiles::TileCache::new(4 * 256 * 256 * 4));
    let slide = Arc::new(Slide::open_with_cache(&path, cache.clone()).unwrap_or_else(|e| panic!("{e}")));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let slide = slide.clone();
            std::thread::spawn(move || slide.read_region(0, 100, 100, 1200, 900).map(|r| r.into_raw()))
        })
        .collect();
    for h in handles {
        let got = h.join().unwrap_or_else(|_| panic!("reader thread panicked")).unwrap_or_else(|e| panic!("{e}"));
        assert!(got == *reference.as_raw(), "a concurrent read differs");
    }
    assert!(cache.used_bytes() <= cache.budget_bytes());
}

// ---- Vendor formats, against OpenSlide 4.0.1's facts and pixels (../shared/fixtures/vendors) ----

#[test]
fn aperio_jpeg2000_ycbcr_33003_as_openslide_reads_it() {
    let Some(slide) = common::check_vendor_fixture("aperio-j2k-ycbcr.svs") else { return };
    assert_eq!(slide.levels()[0].compression, wsiview::tiles::codec::Compression::Jpeg2000);
}

#[test]
fn aperio_jpeg2000_rgb_33005_as_openslide_reads_it() {
    let Some(slide) = common::check_vendor_fixture("aperio-j2k-rgb.svs") else { return };
    assert_eq!(slide.format_name(), "aperio-svs");
}

#[test]
fn philips_tiff_as_openslide_reads_it() {
    let Some(slide) = common::check_vendor_fixture("philips.tiff") else { return };
    assert_eq!(slide.format_name(), "philips-tiff");
    let p = slide.properties();
    assert_eq!(p.values.get("philips.PIM_DP_IMAGE_TYPE").map(String::as_str), Some("WSI"));
    assert!(!p.values.keys().any(|k| k.starts_with("wsiview.warning")), "{:?}", p.values.keys());
    // The unscanned block (tiles of byte count 0) is transparent, as OpenSlide leaves it.
    let corner = slide.read_region(0, 3584 - 300, 0, 64, 64).unwrap_or_else(|e| panic!("{e}"));
    assert!(corner.pixels().all(|px| px[3] == 0), "the unscanned corner must be transparent");
}

#[test]
fn leica_scn_as_openslide_reads_it() {
    let Some(slide) = common::check_vendor_fixture("leica.scn") else { return };
    assert_eq!(slide.format_name(), "leica-scn");
    // Outside the main image (bounds 400,320 3072×2048) the collection is transparent; inside opaque.
    let outside = slide.read_region(0, 0, 0, 300, 300).unwrap_or_else(|e| panic!("{e}"));
    assert!(outside.pixels().all(|px| px[3] == 0));
    let inside = slide.read_region(0, 400, 320, 100, 100).unwrap_or_else(|e| panic!("{e}"));
    assert!(inside.pixels().all(|px| px[3] == 255));
    let edge = slide.read_region(0, 400 + 3072 - 2, 320, 4, 1).unwrap_or_else(|e| panic!("{e}"));
    let alphas: Vec<u8> = edge.pixels().map(|px| px[3]).collect();
    assert_eq!(alphas, vec![255, 255, 0, 0], "the main image ends at x = 3472");
}

#[test]
fn ventana_bif_as_openslide_reads_it() {
    let Some(slide) = common::check_vendor_fixture("ventana.bif") else { return };
    assert_eq!(slide.format_name(), "ventana-bif");
    assert_eq!(slide.properties().values.get("ventana.ScanRes").map(String::as_str), Some("0.25"));
}

/// BIF tiles that overlap: the fixture with every RIGHT joint overlapping by 8 pixels and every UP
/// joint by 6 (same byte length). Tiles then advance by 504×506, later tiles drawn over earlier
/// ones; OpenSlide 4.0.1 reports 3032×2536, 1516×1268, 758×634 for this file (checked by hand).
#[test]
fn ventana_bif_with_overlapping_tiles() {
    let Some(dir) = common::fixtures() else { return };
    let original = dir.join("vendors/ventana.bif");
    let mut bytes = std::fs::read(&original).unwrap_or_else(|e| panic!("{e}"));
    let mut at = 0;
    let mut patched = 0;
    while let Some(start) = find(&bytes[at..], b"<TileJointInfo").map(|i| i + at) {
        let end = start + find(&bytes[start..], b">").unwrap_or(0);
        let right = find(&bytes[start..end], b"\"RIGHT\"").is_some();
        let (attr, value) = if right { (&b"OverlapX=\"0\""[..], b'8') } else { (&b"OverlapY=\"0\""[..], b'6') };
        let Some(i) = find(&bytes[start..end], attr) else { panic!("joint without {attr:?}") };
        bytes[start + i + attr.len() - 2] = value;
        patched += 1;
        at = end;
    }
    assert_eq!(patched, 49, "joints in a 6×5 AOI");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = tmp.path().join("overlap.bif");
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let slide = open(&path);
    let dims: Vec<(u64, u64)> = slide.levels().iter().map(|l| (l.width, l.height)).collect();
    assert_eq!(dims, vec![(3032, 2536), (1516, 1268), (758, 634)]);
    // Tile (1,0) now starts at x = 504 and is covered by tile (2,0) from x = 1008 and by tile (1,1)
    // from y = 506: what shows of it equals the abutting original at x = 512.
    let plain = open(&original);
    let moved = slide.read_region(0, 504, 0, 504, 506).unwrap_or_else(|e| panic!("{e}"));
    let there = plain.read_region(0, 512, 0, 504, 506).unwrap_or_else(|e| panic!("{e}"));
    assert!(moved.as_raw() == there.as_raw(), "tile (1,0) is not where the joints put it");
    // Tile (2,1) at (1008, 506), wholly visible in its top-left 504×506.
    let moved = slide.read_region(0, 1008, 506, 504, 506).unwrap_or_else(|e| panic!("{e}"));
    let there = plain.read_region(0, 1024, 512, 504, 506).unwrap_or_else(|e| panic!("{e}"));
    assert!(moved.as_raw() == there.as_raw(), "tile (2,1) is not where the joints put it");
    // Nothing past the last tile: the level ends at the extent of the tiles.
    let edge = slide.read_region(0, 3030, 0, 4, 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(edge.pixels().map(|p| p[3]).collect::<Vec<_>>(), vec![255, 255, 0, 0]);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A thumbnail of a JPEG 2000 slide decodes its tiles at reduced resolution (fewer wavelet
/// levels); it must look like the thumbnail made from the whole level.
#[test]
fn jpeg2000_thumbnail_from_reduced_resolution_tiles() {
    let Some(dir) = common::fixtures() else { return };
    for name in ["aperio-j2k-rgb.svs", "aperio-j2k-ycbcr.svs"] {
        let slide = open(&dir.join("vendors").join(name));
        let thumb = slide.thumbnail(200).unwrap_or_else(|e| panic!("{e}"));
        let l1 = slide.levels()[1].clone();
        let whole = slide.read_region(1, 0, 0, l1.width as u32, l1.height as u32).unwrap_or_else(|e| panic!("{e}"));
        let reference =
            image::imageops::resize(&whole, thumb.width(), thumb.height(), image::imageops::FilterType::Triangle);
        let (_, mad) = diff(thumb.as_raw(), reference.as_raw());
        assert!(mad < 3.0, "{name}: the reduced thumbnail is {mad:.2} from the full-resolution one");
        assert!(thumb.width() == 200 || thumb.height() == 200);
    }
}

/// Hamamatsu NDPI: each level one JPEG strip read by restart intervals; levels 3–5 made from the
/// 768×576 JPEG (no restart markers) at 1/2, 1/4, 1/8, as OpenSlide makes them.
#[test]
fn hamamatsu_ndpi_as_openslide_reads_it() {
    let Some(slide) = common::check_vendor_fixture("hamamatsu.ndpi") else { return };
    assert_eq!(slide.format_name(), "hamamatsu-ndpi");
    let v = &slide.properties().values;
    for (key, want) in [
        ("openslide.vendor", "hamamatsu"),
        ("hamamatsu.SourceLens", "40"),
        ("hamamatsu.XOffsetFromSlideCentre", "456789"),
        ("hamamatsu.YOffsetFromSlideCentre", "-98765"),
        ("hamamatsu.Reference", "SYNTH-D-NDPI"),
        ("hamamatsu.Slide", "SYNTH-D-NDPI"),
        ("hamamatsu.Generator", "make_vendors.py"),
        ("hamamatsu.Objective.Lens.Magnificant", "40"),
        ("tiff.Make", "Hamamatsu"),
        ("tiff.ResolutionUnit", "centimeter"),
        ("openslide.objective-power", "40"),
        ("openslide.level-count", "6"),
    ] {
        assert_eq!(v.get(key).map(String::as_str), Some(want), "{key}");
    }
    // The made levels agree with the stored level they come from, averaged: same place, same picture.
    let l2 = slide.read_region(2, 0, 0, 768, 576).unwrap_or_else(|e| panic!("{e}"));
    for (level, s) in [(3usize, 2u32), (4, 4), (5, 8)] {
        let got = slide.read_region(level, 0, 0, 768 / s, 576 / s).unwrap_or_else(|e| panic!("{e}"));
        let want = image::imageops::resize(&l2, 768 / s, 576 / s, image::imageops::FilterType::Triangle);
        let (_, mad) = diff(got.as_raw(), want.as_raw());
        assert!(mad < 3.0, "level {level}: mean difference {mad:.2} from level 2 resized");
    }
    // Level 0 against level 1 (two stored JPEGs of one picture): the intervals are in place.
    let l0 = slide.read_region(0, 1024, 768, 1024, 768).unwrap_or_else(|e| panic!("{e}"));
    let l1 = slide.read_region(1, 1024, 768, 512, 384).unwrap_or_else(|e| panic!("{e}"));
    let l0_half = image::imageops::resize(&l0, 512, 384, image::imageops::FilterType::Triangle);
    let (_, mad) = diff(l1.as_raw(), l0_half.as_raw());
    assert!(mad < 6.0, "level 1 differs from level 0 halved by {mad:.2}");
}

/// DICOM WSI: one instance per level plus label, overview and thumbnail, found from the instance
/// named (`dicom-dev/level-0.dcm`), as OpenSlide 4.0.1 reads them.
#[test]
fn dicom_series_as_openslide_reads_it() {
    let Some(slide) = common::check_vendor_fixture("dicom-dev") else { return };
    assert_eq!(slide.format_name(), "dicom");
    let levels = slide.levels();
    assert!(levels.iter().all(|l| (l.tile_width, l.tile_height) == (256, 256)), "tiles are the 256×256 frames");
    assert_eq!(levels[0].compression, wsiview::tiles::codec::Compression::Jpeg);
    let p = &slide.properties().values;
    let get = |k: &str| p.get(k).map(String::as_str);
    assert_eq!(get("openslide.vendor"), Some("dicom"));
    assert_eq!(get("openslide.level-count"), Some("4"));
    assert_eq!(get("openslide.objective-power"), Some("20"));
    assert_eq!(get("dicom.ImageType[2]"), Some("VOLUME"));
    assert_eq!(get("dicom.ImageType"), Some("ORIGINAL\\PRIMARY\\VOLUME\\NONE"));
    assert_eq!(get("dicom.DimensionOrganizationType"), Some("TILED_FULL"));
    assert_eq!(get("dicom.TransferSyntaxUID"), Some("1.2.840.10008.1.2.4.50"));
    assert_eq!(get("dicom.Manufacturer"), Some("synthetic"));
    assert_eq!(get("dicom.OpticalPathSequence[0].ObjectiveLensPower"), Some("20.0"));
    assert!(get("dicom.SeriesInstanceUID").is_some_and(|s| s.starts_with("2.25.")));
    // The fixture carries a patient name and ID; neither may surface as a property.
    for (k, v) in p {
        assert!(!k.contains("Patient") && !v.contains("Synthetic^Slide") && v != "SYNTH", "{k} = {v}");
    }
    assert!(!p.keys().any(|k| k.starts_with("wsiview.warning")), "no warnings: {p:?}");
}

fn dicom_dev() -> Option<std::path::PathBuf> {
    Some(fixtures()?.join("vendors/dicom-dev"))
}

/// Any instance of the series opens the same slide, and so does the folder.
#[test]
fn dicom_series_opens_from_any_instance_and_from_its_folder() {
    let Some(dir) = dicom_dev() else { return };
    let reference = open(&dir.join("level-0.dcm"));
    let want = reference.read_region(1, 0, 0, 1500, 1100).unwrap_or_else(|e| panic!("{e}"));
    for path in [dir.join("level-2.dcm"), dir.join("label.dcm"), dir.clone()] {
        let start = std::time::Instant::now();
        let slide = open(&path);
        eprintln!("{}: opened in {:.2} ms", path.display(), start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(slide.format_name(), "dicom", "{}", path.display());
        assert_eq!(slide.levels(), reference.levels(), "{}", path.display());
        let mut names = slide.associated_names();
        names.sort();
        assert_eq!(names, ["label", "macro", "thumbnail"], "{}", path.display());
        assert_eq!(slide.properties().mpp_x, reference.properties().mpp_x);
        let got = slide.read_region(1, 0, 0, 1500, 1100).unwrap_or_else(|e| panic!("{e}"));
        assert!(got == want, "{}: level 1 differs", path.display());
    }
}

/// A DICOM instance taken apart for rewriting (explicit VR little endian, defined-length
/// sequences, as the fixture is written): meta elements, data-set elements before PixelData,
/// each as (tag, encoded bytes), and the frames from the Basic Offset Table.
struct DicomParts {
    meta: Vec<(u32, Vec<u8>)>,
    elements: Vec<(u32, Vec<u8>)>,
    frames: Vec<Vec<u8>>,
}

fn dicom_element(tag: u32, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
    out.extend_from_slice(&(tag as u16).to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
    out
}

/// A sequence of defined length whose items hold the given encoded elements.
fn dicom_sequence(tag: u32, items: &[Vec<u8>]) -> Vec<u8> {
    let mut value = Vec::new();
    for item in items {
        value.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        value.extend_from_slice(&(item.len() as u32).to_le_bytes());
        value.extend_from_slice(item);
    }
    dicom_element(tag, b"SQ", &value)
}

impl DicomParts {
    fn read(path: &std::path::Path) -> DicomParts {
        let d = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let u16_at = |p: usize| u16::from_le_bytes([d[p], d[p + 1]]);
        let u32_at = |p: usize| u32::from_le_bytes([d[p], d[p + 1], d[p + 2], d[p + 3]]);
        let (mut meta, mut elements) = (Vec::new(), Vec::new());
        let mut p = 132;
        loop {
            let tag = (u32::from(u16_at(p)) << 16) | u32::from(u16_at(p + 2));
            let vr = &d[p + 4..p + 6];
            let (len, value_at) = if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT" | b"OV") {
                (u32_at(p + 8), p + 12)
            } else {
                (u32::from(u16_at(p + 6)), p + 8)
            };
            if tag == 0x7FE0_0010 {
                assert_eq!(len, u32::MAX, "encapsulated PixelData");
                let bot_len = u32_at(value_at + 4) as usize;
                let first = value_at + 8 + bot_len;
                let frames = (0..bot_len / 4)
                    .map(|i| {
                        let item = first + u32_at(value_at + 8 + 4 * i) as usize;
                        d[item + 8..item + 8 + u32_at(item + 4) as usize].to_vec()
                    })
                    .collect();
                return DicomParts { meta, elements, frames };
            }
            let end = value_at + len as usize;
            let entry = (tag, d[p..end].to_vec());
            if tag >> 16 == 2 {
                meta.push(entry)
            } else {
                elements.push(entry)
            }
            p = end;
        }
    }

    fn set(&mut self, tag: u32, encoded: Vec<u8>) {
        let list = if tag >> 16 == 2 { &mut self.meta } else { &mut self.elements };
        list.retain(|(t, _)| *t != tag);
        let at = list.partition_point(|(t, _)| *t < tag);
        list.insert(at, (tag, encoded));
    }

    /// The file, with `pixel_data` (an encoded PixelData element) last.
    fn write(&self, path: &std::path::Path, pixel_data: &[u8]) {
        let mut meta_bytes: Vec<u8> =
            self.meta.iter().filter(|(t, _)| *t != 0x0002_0000).flat_map(|(_, b)| b.clone()).collect();
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        out.extend(dicom_element(0x0002_0000, b"UL", &(meta_bytes.len() as u32).to_le_bytes()));
        out.append(&mut meta_bytes);
        for (_, bytes) in &self.elements {
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(pixel_data);
        std::fs::write(path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// Encapsulated PixelData: an empty Basic Offset Table, then one fragment per frame.
fn encapsulated(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    for f in frames {
        let mut f = f.to_vec();
        if f.len() % 2 == 1 {
            f.push(0);
        }
        out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    out.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    out
}

/// TILED_SPARSE: frames placed by the Per-Frame Functional Groups' positions, in any order, with
/// a missing one transparent; no Basic Offset Table (the fragments are walked).
#[test]
fn dicom_tiled_sparse_places_frames_by_position() {
    let Some(dir) = dicom_dev() else { return };
    let intact = open(&dir.join("level-0.dcm"));
    let mut parts = DicomParts::read(&dir.join("level-2.dcm"));
    // Level 2 is 750×550: 3×3 frames of 256, row-major. Keep all but tile 1,1, in another order.
    let order = [(2u64, 2u64), (0, 0), (1, 0), (2, 0), (0, 1), (2, 1), (0, 2), (1, 2)];
    let stored = std::mem::take(&mut parts.frames);
    let frames: Vec<&[u8]> = order.iter().map(|&(c, r)| stored[(r * 3 + c) as usize].as_slice()).collect();
    parts.set(0x0020_9311, dicom_element(0x0020_9311, b"CS", b"TILED_SPARSE"));
    parts.set(0x0028_0008, dicom_element(0x0028_0008, b"IS", b"8 "));
    let items: Vec<Vec<u8>> = order
        .iter()
        .map(|&(c, r)| {
            let mut pos = dicom_element(0x0048_021E, b"SL", &(c as i32 * 256 + 1).to_le_bytes());
            pos.extend(dicom_element(0x0048_021F, b"SL", &(r as i32 * 256 + 1).to_le_bytes()));
            dicom_sequence(0x0048_021A, &[pos])
        })
        .collect();
    parts.set(0x5200_9230, dicom_sequence(0x5200_9230, &items));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = tmp.path().join("sparse.dcm");
    parts.write(&path, &encapsulated(&frames));
    let slide = open(&path);
    assert_eq!(slide.levels().len(), 1);
    assert_eq!((slide.levels()[0].width, slide.levels()[0].height), (750, 550));
    assert_eq!(
        slide.properties().values.get("dicom.DimensionOrganizationType").map(String::as_str),
        Some("TILED_SPARSE")
    );
    for row in 0..3 {
        for col in 0..3 {
            let got = slide.read_tile(0, col, row).unwrap_or_else(|e| panic!("tile {col},{row}: {e}"));
            if (col, row) == (1, 1) {
                assert!(got.rgba.iter().all(|&b| b == 0), "the missing tile is transparent");
            } else {
                let want = intact.read_tile(2, col, row).unwrap_or_else(|e| panic!("{e}"));
                assert!(got.rgba == want.rgba, "tile {col},{row} is not the frame placed there");
            }
        }
    }
}

/// Uncompressed (explicit VR little endian, RGB) frames: frame i at a computed offset.
#[test]
fn dicom_uncompressed_rgb_frames() {
    let Some(dir) = dicom_dev() else { return };
    let intact = open(&dir.join("level-0.dcm"));
    let mut parts = DicomParts::read(&dir.join("level-3.dcm"));
    // Level 3 is 375×275: 2×2 frames. Their decoded pixels become the native frames.
    let tiles: Vec<Vec<u8>> =
        (0..4u64).map(|i| intact.read_tile(3, i % 2, i / 2).unwrap_or_else(|e| panic!("{e}")).rgba.clone()).collect();
    let mut raw = Vec::new();
    for t in &tiles {
        raw.extend(t.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
    }
    parts.set(0x0002_0010, dicom_element(0x0002_0010, b"UI", b"1.2.840.10008.1.2.1\0"));
    parts.set(0x0028_0004, dicom_element(0x0028_0004, b"CS", b"RGB "));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = tmp.path().join("native.dcm");
    parts.write(&path, &dicom_element(0x7FE0_0010, b"OB", &raw));
    let slide = open(&path);
    assert_eq!(slide.levels()[0].compression, wsiview::tiles::codec::Compression::None);
    for (i, want) in tiles.iter().enumerate() {
        let got = slide.read_tile(0, i as u64 % 2, i as u64 / 2).unwrap_or_else(|e| panic!("{e}"));
        assert!(got.rgba == *want, "frame {i}");
    }
}

// ---- dicomize: slides written as DICOM WSI, read back by wsiview's own DICOM reader ----

mod dicomize {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::common::{fixtures, synth};
    use wsiview::dicomize::{dicomize, DicomizeOptions, PixelOrigin, Written};
    use wsiview::slide::{open_source, TiffSlide};
    use wsiview::synth::{Layout, SynthCompression, SynthOptions};
    use wsiview::SlideSource;

    fn convert(slide: &Path, out: &Path, options: &DicomizeOptions) -> Vec<Written> {
        let (written, _notes) = dicomize(slide, out, options, |_| {}).unwrap_or_else(|e| panic!("{e}"));
        written
    }

    /// The encapsulated frames of a DICOM file, read whole with dicom-object (independently of
    /// wsiview's frame tables), each without its padding byte.
    fn frames(path: &Path) -> Vec<Vec<u8>> {
        let obj = dicom_object::open_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let pixels = obj.element(dicom_dictionary_std::tags::PIXEL_DATA).unwrap_or_else(|e| panic!("{e}"));
        let fragments = pixels.value().fragments().unwrap_or_else(|| panic!("{}: not encapsulated", path.display()));
        fragments.iter().map(|f| f.to_vec()).collect()
    }

    /// A frame equals `expected` up to the one padding byte an odd frame gets.
    fn same_frame(frame: &[u8], expected: &[u8]) -> bool {
        frame == expected
            || (expected.len() % 2 == 1
                && frame.len() == expected.len() + 1
                && frame.ends_with(&[0])
                && frame[..expected.len()] == *expected)
    }

    /// Same levels, tile sizes, mpp and objective power; tiles at the corners and in the middle
    /// of every level decode to the same pixels (`tolerance` 0 where frames were copied or
    /// written uncompressed).
    fn same_slide(source: &dyn SlideSource, dicom: &dyn SlideSource, tolerance: u8) {
        assert_eq!(dicom.format_name(), "dicom");
        assert_eq!(source.levels().len(), dicom.levels().len(), "level count");
        let (sp, dp) = (source.properties(), dicom.properties());
        for (s, d) in [(sp.mpp_x, dp.mpp_x), (sp.mpp_y, dp.mpp_y)] {
            let (s, d) = (s.unwrap_or(f64::NAN), d.unwrap_or(f64::NAN));
            assert!((s - d).abs() < 1e-9 * s, "mpp {s} vs {d}");
        }
        assert_eq!(sp.objective_power, dp.objective_power);
        for (i, (s, d)) in source.levels().iter().zip(dicom.levels()).enumerate() {
            assert_eq!(
                (s.width, s.height, s.tile_width, s.tile_height),
                (d.width, d.height, d.tile_width, d.tile_height),
                "level {i}"
            );
            let (across, down) = (s.tiles_across(), s.tiles_down());
            for (col, row) in [(0, 0), (across - 1, down - 1), (across / 2, down / 2), (across - 1, 0)] {
                let a = source.decode_tile(i, col, row).unwrap_or_else(|e| panic!("{e}"));
                let b = dicom.decode_tile(i, col, row).unwrap_or_else(|e| panic!("{e}"));
                // Pixels past the level's edge are padding: compared only inside the level.
                let (w, h) = (
                    (s.width - col * u64::from(s.tile_width)).min(u64::from(s.tile_width)) as usize,
                    (s.height - row * u64::from(s.tile_height)).min(u64::from(s.tile_height)) as usize,
                );
                let stride = s.tile_width as usize * 4;
                let mut max = 0;
                for y in 0..h {
                    for x in 0..w * 4 {
                        if x % 4 != 3 {
                            max = max.max(a.rgba[y * stride + x].abs_diff(b.rgba[y * stride + x]));
                        }
                    }
                }
                assert!(max <= tolerance, "level {i} tile {col},{row}: pixels differ by {max}");
            }
        }
    }

    fn jpeg_opts(layout: Layout) -> SynthOptions {
        SynthOptions {
            width: 1500,
            height: 1100,
            tile: 256,
            compression: SynthCompression::Jpeg,
            layout,
            mpp: 0.25,
            objective_power: 40.0,
            ..Default::default()
        }
    }

    #[test]
    fn dicomize_jpeg_slide_copies_tiles_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let slide = synth(dir.path(), "chain.tif", &jpeg_opts(Layout::Chain));
        let out = dir.path().join("dicom");
        let options =
            DicomizeOptions { study_uid: Some("1.2.3.4".into()), accession: Some("A-17".into()), ..Default::default() };
        let written = convert(&slide, &out, &options);
        let tiff = TiffSlide::open(&slide).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(written.len(), tiff.levels().len());
        for (i, w) in written.iter().enumerate() {
            assert_eq!(w.pixels, PixelOrigin::Copied, "level {i}");
            assert_eq!((w.transfer_syntax, w.photometric), ("1.2.840.10008.1.2.4.50", "YBR_FULL_422"));
            assert_eq!(w.path, out.join(format!("level-{i}.dcm")));
            let frames = frames(&w.path);
            let level = &tiff.levels()[i];
            assert_eq!(frames.len() as u64, level.tiles_across() * level.tiles_down());
            for (n, frame) in frames.iter().enumerate() {
                let (col, row) = (n as u64 % level.tiles_across(), n as u64 / level.tiles_across());
                let raw = tiff
                    .read_raw_tile(i, col, row)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|| panic!("tile {col},{row}"));
                let tables = raw.format.jpeg_tables.as_deref();
                assert!(tables.is_some(), "the generator shares JPEGTables: the splice is tested");
                let expected = wsiview::tiles::codec::with_tables(tables, &raw.data).unwrap_or_else(|e| panic!("{e}"));
                assert!(same_frame(frame, &expected), "level {i} frame {n} is not the tile with its tables");
            }
        }
        let dicom = open_source(&out).unwrap_or_else(|e| panic!("{e}"));
        same_slide(&tiff, dicom.as_ref(), 0);
        let p = &dicom.properties().values;
        assert_eq!(p.get("dicom.ImageType[2]").map(String::as_str), Some("VOLUME"));
        assert_eq!(p.get("dicom.DimensionOrganizationType").map(String::as_str), Some("TILED_FULL"));
        assert_eq!(p.get("dicom.ImageOrientationSlide").map(String::as_str), Some("0\\-1\\0\\-1\\0\\0"));
        // The study UID and accession number given, the same series for every instance.
        let obj = dicom_object::open_file(out.join("level-1.dcm")).unwrap_or_else(|e| panic!("{e}"));
        let text = |tag| {
            obj.element(tag).ok().and_then(|e| e.to_str().ok()).map(|s| s.trim_end_matches('\0').trim().to_string())
        };
        use dicom_dictionary_std::tags;
        assert_eq!(text(tags::STUDY_INSTANCE_UID).as_deref(), Some("1.2.3.4"));
        assert_eq!(text(tags::ACCESSION_NUMBER).as_deref(), Some("A-17"));
        assert_eq!(text(tags::PATIENT_NAME).as_deref(), Some(""));
        assert_eq!(text(tags::CONTAINER_IDENTIFIER).as_deref(), Some("chain"));
        let series = text(tags::SERIES_INSTANCE_UID);
        let obj0 = dicom_object::open_file(out.join("level-0.dcm")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            obj0.element(tags::SERIES_INSTANCE_UID)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches('\0').to_string()),
            series
        );
        // A second run into the same folder refuses to replace the series.
        let again = dicomize(&slide, &out, &options, |_| {});
        let err = again.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("level-0.dcm") && err.contains("already exists"), "{err}");
    }

    #[test]
    fn dicomize_rgb_svs_with_label_and_extended_offset_table() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let slide = synth(dir.path(), "case.svs", &jpeg_opts(Layout::Svs));
        let plain = dir.path().join("plain");
        let written = convert(&slide, &plain, &DicomizeOptions::default());
        let kinds: Vec<&str> = written.iter().map(|w| w.image_type).collect();
        assert!(!kinds.contains(&"LABEL") && !plain.join("label.dcm").exists(), "the label only when asked: {kinds:?}");
        assert!(kinds.contains(&"THUMBNAIL") && kinds.contains(&"OVERVIEW"), "{kinds:?}");
        let out = dir.path().join("dicom");
        let options = DicomizeOptions { include_label: true, extended_offset_table: true, ..Default::default() };
        let written = convert(&slide, &out, &options);
        assert!(written.iter().any(|w| w.image_type == "LABEL"));
        let tiff = TiffSlide::open(&slide).unwrap_or_else(|e| panic!("{e}"));
        let level0 = &written[0];
        assert_eq!((level0.photometric, level0.pixels), ("RGB", PixelOrigin::Copied));
        // RGB frames: the tile with its tables, and an Adobe APP14 marker (transform 0) after SOI.
        let raw = tiff.read_raw_tile(0, 1, 1).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("tile"));
        let spliced = wsiview::tiles::codec::with_tables(raw.format.jpeg_tables.as_deref(), &raw.data)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut expected =
            vec![0xFF, 0xD8, 0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0, 0, 0, 0, 0];
        expected.extend_from_slice(&spliced[2..]);
        let frame = &frames(&level0.path)[(tiff.levels()[0].tiles_across() + 1) as usize];
        assert!(same_frame(frame, &expected), "RGB frame");
        let dicom = open_source(&out.join("level-0.dcm")).unwrap_or_else(|e| panic!("{e}"));
        same_slide(&tiff, dicom.as_ref(), 0);
        let mut names = dicom.associated_names();
        names.sort();
        assert_eq!(names, vec!["label", "macro", "thumbnail"]);
        let (a, b) = (
            tiff.read_associated("thumbnail").unwrap_or_else(|e| panic!("{e}")),
            dicom.read_associated("thumbnail").unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(a.dimensions(), b.dimensions());
        let (max, mean) = super::common::diff(a.as_raw(), b.as_raw());
        assert!(max < 60 && mean < 3.0, "thumbnail re-encoded at quality 90: max {max}, mean {mean}");
    }

    #[test]
    fn dicomize_deflate_slide_decodes_to_uncompressed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let opts = SynthOptions {
            compression: SynthCompression::Deflate,
            width: 700,
            height: 500,
            ..jpeg_opts(Layout::Subifd)
        };
        let slide = synth(dir.path(), "deflate.tif", &opts);
        let out = dir.path().join("dicom");
        let written = convert(&slide, &out, &DicomizeOptions::default());
        assert!(written
            .iter()
            .all(|w| w.pixels == PixelOrigin::Uncompressed && w.transfer_syntax == "1.2.840.10008.1.2.1"));
        let source = open_source(&slide).unwrap_or_else(|e| panic!("{e}"));
        let dicom = open_source(&out).unwrap_or_else(|e| panic!("{e}"));
        same_slide(source.as_ref(), dicom.as_ref(), 0);
    }

    /// A tile that cannot be decoded stops the conversion with the file and tile named, and the
    /// instances already written are removed: no series cut short is left behind.
    #[test]
    fn dicomize_failure_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let opts = SynthOptions {
            compression: SynthCompression::Deflate,
            width: 900,
            height: 700,
            ..jpeg_opts(Layout::Chain)
        };
        let slide = synth(dir.path(), "broken.tif", &opts);
        let tiff = TiffSlide::open(&slide).unwrap_or_else(|e| panic!("{e}"));
        let last = tiff.levels().len() - 1;
        assert!(last >= 1);
        let raw = tiff.read_raw_tile(last, 0, 0).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("tile"));
        drop(tiff);
        let mut bytes = std::fs::read(&slide).unwrap_or_else(|e| panic!("{e}"));
        let at = bytes
            .windows(raw.data.len())
            .position(|w| w == raw.data.as_slice())
            .unwrap_or_else(|| panic!("tile bytes"));
        bytes[at..at + 8].copy_from_slice(&[0xFF; 8]);
        std::fs::write(&slide, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("dicom");
        let mut reported = 0;
        let result = dicomize(&slide, &out, &DicomizeOptions::default(), |_| reported += 1);
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(&format!("level-{last}.dcm")) && err.contains("broken.tif"), "{err}");
        assert!(reported >= 1, "earlier levels were written first");
        let left: Vec<_> =
            std::fs::read_dir(&out).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// Third-party slides: Aperio RGB JPEG with shared tables (small.svs), Aperio JPEG 2000
    /// (33005 copied, 33003 decoded), NDPI (decoded), Philips (tiles never written).
    #[test]
    fn dicomize_fixture_slides() {
        let Some(dir) = fixtures() else { return };
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (name, tolerance) in [
            ("openslide-python/small.svs", 0),
            ("vendors/aperio-j2k-rgb.svs", 0),
            ("vendors/aperio-j2k-ycbcr.svs", 40),
            ("vendors/hamamatsu.ndpi", 40),
            ("vendors/philips.tiff", 0),
        ] {
            let slide = dir.join(name);
            let out = tmp.path().join(name.replace('/', "-"));
            let written = convert(&slide, &out, &DicomizeOptions::default());
            let source = open_source(&slide).unwrap_or_else(|e| panic!("{e}"));
            let dicom = open_source(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.ends_with("j2k-rgb.svs") {
                assert_eq!(written[0].transfer_syntax, "1.2.840.10008.1.2.4.91");
                let tiff = TiffSlide::open(&slide).unwrap_or_else(|e| panic!("{e}"));
                let frames = frames(&written[0].path);
                for n in [0usize, 7, frames.len() - 1] {
                    let across = tiff.levels()[0].tiles_across();
                    let raw = tiff
                        .read_raw_tile(0, n as u64 % across, n as u64 / across)
                        .unwrap_or_else(|e| panic!("{e}"))
                        .unwrap_or_else(|| panic!("tile"));
                    assert!(same_frame(&frames[n], &raw.data), "{name}: frame {n} is not the codestream");
                }
            }
            same_slide(source.as_ref(), dicom.as_ref(), tolerance);
        }
    }

    /// Where dciodvfy (Debian dicom3tools) is, or why the test skips; CI sets
    /// WSIVIEW_REQUIRE_DCIODVFY=1 so that it cannot skip there.
    fn dciodvfy() -> Option<PathBuf> {
        let found = Command::new("dciodvfy").arg("-").output().is_ok();
        if !found {
            assert!(
                std::env::var_os("WSIVIEW_REQUIRE_DCIODVFY").is_none(),
                "WSIVIEW_REQUIRE_DCIODVFY is set but dciodvfy is missing"
            );
            eprintln!("skipped: dciodvfy (dicom3tools) is not installed");
            return None;
        }
        Some(PathBuf::from("dciodvfy"))
    }

    /// Every instance written passes dciodvfy's IOD checks without an error.
    #[test]
    fn dicomize_output_passes_dciodvfy() {
        let Some(tool) = dciodvfy() else { return };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut slides = vec![
            synth(dir.path(), "chain.tif", &jpeg_opts(Layout::Chain)),
            synth(dir.path(), "case.svs", &jpeg_opts(Layout::Svs)),
            synth(
                dir.path(),
                "lzw.tif",
                &SynthOptions {
                    compression: SynthCompression::Lzw,
                    width: 600,
                    height: 400,
                    ..jpeg_opts(Layout::Chain)
                },
            ),
        ];
        if let Some(f) = fixtures() {
            for name in [
                "openslide-python/small.svs",
                "vendors/aperio-j2k-rgb.svs",
                "vendors/aperio-j2k-ycbcr.svs",
                "vendors/hamamatsu.ndpi",
                "vendors/philips.tiff",
                "vendors/leica.scn",
                "vendors/ventana.bif",
            ] {
                slides.push(f.join(name));
            }
        }
        let mut checked = 0;
        for (k, slide) in slides.iter().enumerate() {
            let out = dir.path().join(format!("out-{k}"));
            // The extended offset table on every other slide: both tables are checked.
            let options =
                DicomizeOptions { include_label: true, extended_offset_table: k % 2 == 1, ..Default::default() };
            for w in convert(slide, &out, &options) {
                let result = Command::new(&tool).arg(&w.path).output().unwrap_or_else(|e| panic!("dciodvfy: {e}"));
                let text =
                    format!("{}{}", String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
                let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
                assert!(errors.is_empty(), "{} (from {}): {}", w.path.display(), slide.display(), errors.join("\n"));
                checked += 1;
            }
        }
        assert!(checked >= 8, "{checked} instances checked");
    }
}
