//! Command-line interface. Every failure is one line on stderr naming the file and the problem,
//! exit code 1; usage errors exit 2 (clap). `verify` exits 3 when the slide is not the report's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use wsiview::annotations::{asap, store, table, Import, PixelSize, Unit};
use wsiview::synth::{self, Layout, SynthCompression, SynthOptions};
use wsiview::tiff::ByteOrder;
use wsiview::Slide;

/// The slide `cargo run --release` opens when given no arguments.
pub const SAMPLE_SLIDE: &str = "sample-slides/sample.svs";

#[derive(Parser)]
#[command(
    name = "wsiview",
    version,
    about = "Whole-slide image viewer and toolkit for tiled pyramidal TIFF slides",
    // `wsiview A.svs B.svs` opens slides; a first argument naming a subcommand runs it.
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Slides to open in the viewer, as `wsiview view SLIDE…` (default: the bundled sample):
    /// files, http(s):// URLs or s3://bucket/key.
    #[arg(value_name = "SLIDE")]
    slides: Vec<PathBuf>,
    /// Trust the certificate authorities in this PEM file as well as the system's, for https://
    /// and s3:// slides (a hospital's own PKI); WSIVIEW_CA_BUNDLE does the same.
    #[arg(long, global = true, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Open slides in the viewer window; with --screenshot, save a PNG of a view and exit.
    View {
        /// Slide files, http(s):// URLs (read with range requests) or s3://bucket/key.
        #[arg(value_name = "SLIDE")]
        slides: Vec<PathBuf>,
        /// Level-0 coordinates of the view centre, "X,Y" (default: the slide's centre).
        #[arg(long, value_parser = parse_pair)]
        center: Option<(f64, f64)>,
        /// Show this level at 1:1.
        #[arg(long, conflicts_with = "downsample")]
        level: Option<usize>,
        /// Show level-0 pixels at this downsample (1 = level-0 pixels 1:1).
        #[arg(long)]
        downsample: Option<f64>,
        /// Window size in points, "WxH".
        #[arg(long, value_parser = parse_size, default_value = "1600x1000")]
        size: (f32, f32),
        /// Save a PNG of the slide area once every visible tile is at its level, print timings, exit.
        #[arg(long)]
        screenshot: Option<PathBuf>,
        /// Decoded-tile cache budget in MB (textures have their own 96 MB).
        #[arg(long, default_value_t = 256)]
        cache_mb: u64,
        /// Benchmark: time the first level-0 view and 10 jumps, then pan across every level for
        /// this many seconds; print frame times and memory as JSON and exit.
        #[arg(long, conflicts_with = "screenshot")]
        bench_seconds: Option<f64>,
        /// With --bench-seconds: the slide in this many cells side by side (2, 3, or 4 as 2 × 2),
        /// moved together as synchronised navigation does.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4), requires = "bench_seconds")]
        grid: u8,
        /// With --bench-seconds: while panning, show each level at this many screen pixels per
        /// level pixel (1, the default: at 1:1, as the standard magnifications do; e.g. 0.8 to
        /// measure scaled, filtered drawing). 0.25 to 4.
        #[arg(long, default_value_t = 1.0, requires = "bench_seconds")]
        pan_scale: f64,
        /// A detection layer for the first slide: QuPath GeoJSON of cells, detections or tiles
        /// (millions of objects), read on a worker and drawn over the slide. With
        /// --bench-seconds, its load time (`annotations_load_ms`) and `objects` are reported.
        #[arg(long, value_name = "FILE")]
        annotations: Option<PathBuf>,
    },
    /// Open a case in the viewer: every slide of a case folder, or the slides beside SLIDE that
    /// share its case id (the accession number its name starts with), with the case list and the
    /// report panel. Ctrl+Right / Ctrl+Left (Page Down / Up) move to the next / previous case.
    Case {
        /// A case folder, or one slide of the case.
        path: PathBuf,
        /// Show this many of the case's slides side by side (2, 3, or 4 as 2 × 2).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
        grid: u8,
        /// Decoded-tile cache budget in MB (textures have their own 96 MB).
        #[arg(long, default_value_t = 256)]
        cache_mb: u64,
        /// A detection layer (QuPath GeoJSON of cells, detections or tiles) drawn over the
        /// case's first slide.
        #[arg(long, value_name = "FILE")]
        annotations: Option<PathBuf>,
    },
    /// Format, levels, tile sizes, compression, mpp, objective power, associated images.
    Info {
        /// A slide file, an http:// or https:// URL (read with range requests) or s3://bucket/key.
        slide: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read a region (x, y in level-0 pixels; size in pixels of LEVEL) and write it as RGBA PNG.
    Region {
        /// A slide file, an http:// or https:// URL (read with range requests) or s3://bucket/key.
        slide: PathBuf,
        #[arg(long, default_value_t = 0)]
        level: usize,
        #[arg(long, allow_hyphen_values = true)]
        x: i64,
        #[arg(long, allow_hyphen_values = true)]
        y: i64,
        #[arg(long)]
        width: u32,
        #[arg(long)]
        height: u32,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write a thumbnail of the whole slide fitting in MAX_SIZE×MAX_SIZE.
    Thumbnail {
        /// A slide file, an http:// or https:// URL (read with range requests) or s3://bucket/key.
        slide: PathBuf,
        #[arg(long, default_value_t = 1024)]
        max_size: u32,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write an associated image (thumbnail, label, macro) as PNG.
    Associated {
        /// A slide file, an http:// or https:// URL (read with range requests) or s3://bucket/key.
        slide: PathBuf,
        name: String,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Measure open time, cold tile throughput and a cold 1080p read (same work as the peer baselines).
    Bench {
        /// A slide file, an http:// or https:// URL (read with range requests) or s3://bucket/key.
        slide: PathBuf,
        /// Decoding threads (default: all cores; for a URL, 16, as reads wait on the network).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write a slide as a DICOM WSI series in OUTDIR, copying JPEG and JPEG 2000 tiles as they are.
    ///
    /// VL Whole Slide Microscopy Image Storage: level-0.dcm, level-1.dcm, … (one VOLUME instance
    /// per level, TILED_FULL), thumbnail.dcm and overview.dcm (from the macro image); label.dcm
    /// only with --include-label. Tiles that cannot be copied are decoded (uncompressed RGB, or
    /// JPEG quality 90 when the source was lossy or a level would pass 4 GiB). Patient fields are
    /// left empty. Existing files are not replaced. One line is printed per instance written.
    Dicomize {
        /// A TIFF-based slide file (SVS, generic TIFF, OME-TIFF, Philips, Leica, Ventana) or NDPI.
        slide: PathBuf,
        outdir: PathBuf,
        /// StudyInstanceUID (default: a new 2.25 UID).
        #[arg(long, value_name = "UID")]
        study_uid: Option<String>,
        /// SeriesInstanceUID (default: a new 2.25 UID).
        #[arg(long, value_name = "UID")]
        series_uid: Option<String>,
        /// AccessionNumber (default: empty).
        #[arg(long, value_name = "A")]
        accession: Option<String>,
        /// Also write the label image (label.dcm). Labels carry patient identifiers (names,
        /// barcodes, case numbers): leave them out of anything shared.
        #[arg(long)]
        include_label: bool,
        /// Then upload every instance written to this DICOMweb service by STOW-RS, e.g.
        /// https://pacs.example/dicom-web (credentials as for `dicomweb list`).
        #[arg(long, value_name = "URL")]
        stow: Option<String>,
        /// Read a bearer token for --stow from this file (instead of WSIVIEW_DICOMWEB_TOKEN).
        #[arg(long, value_name = "FILE", requires = "stow")]
        token_file: Option<PathBuf>,
    },
    /// Find slide microscopy series on a DICOMweb server (PACS).
    Dicomweb {
        #[command(subcommand)]
        action: DicomwebCommand,
    },
    /// The network's report registry on PostgreSQL: set it up, publish reports, consolidate and
    /// pull them back (docs/registry.md).
    Registry {
        #[command(subcommand)]
        action: crate::cli_registry::RegistryCommand,
    },
    /// Measure or convert annotation files (GeoJSON as QuPath writes it, or ASAP XML).
    Annotations {
        #[command(subcommand)]
        action: AnnotationsCommand,
    },
    /// Check that a report refers to exactly this slide (SHA-256 of the whole file).
    /// A URL (http(s)://, s3://) is streamed, not saved.
    /// Exit 0: it does; 3: it is another slide; 1: the report or slide cannot be read; 2: usage.
    Verify {
        report: PathBuf,
        /// A slide file, an http:// or https:// URL or s3://bucket/key.
        slide: PathBuf,
    },
    /// Write a teaching copy to OUTDIR: the report with the case id and reviewer names replaced by
    /// stable pseudonyms, and the slide without its label and macro images and with the
    /// description's Filename, User, Date, Time and Barcode blanked. Free text is kept: check it.
    ExportTeaching {
        /// A slide file, an http:// or https:// URL or s3://bucket/key (streamed into the copy).
        slide: PathBuf,
        report: PathBuf,
        outdir: PathBuf,
        /// Key for the pseudonyms (64 hex digits). Sites sharing a key get the same pseudonyms.
        /// Default: one created once in the app data folder.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Replace outputs that already exist.
        #[arg(long)]
        force: bool,
    },
    /// Merge the case reports (*.report.json) found under the folders, recursively, into
    /// summary.json, summary.csv, discordance.csv, summary.html and summary-public.html: workload,
    /// turnaround, concordance, and turnaround by ethnic category and IMD quintile (small numbers
    /// suppressed; summary-public.html holds only those suppressed aggregate figures).
    Consolidate {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Folder for the five files (created if missing).
        #[arg(long, value_name = "OUTDIR", default_value = ".")]
        out: PathBuf,
        /// JSON file {"groups": {"CATEGORY": "GROUP", ...}} extending the built-in map of
        /// comparable diagnosis categories (B1-B5c, C1-C5, benign ... malignant); its entries
        /// override the built-in ones, and a category mapped to null is removed.
        #[arg(long, value_name = "FILE")]
        category_map: Option<PathBuf>,
    },
    /// Write a set of synthetic, valid case reports (OUTDIR/SITE/CASE.report.json): for trying
    /// consolidation and the registry, and for their benchmarks.
    GenerateReports {
        outdir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Site codes, comma-separated.
        #[arg(long, default_value = "RLH,NBT,GWH", value_delimiter = ',')]
        sites: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a de-identified research dataset to --out: research.csv (one row per signed-out
    /// report: keyed pseudonyms, site, month, turnaround, review type, diagnosis category, SNOMED
    /// CT codes, annotation counts, broad ethnic group, IMD quintile), data-dictionary.json and
    /// manifest.json. No names, free text or exact dates; combinations of site, month, category
    /// and equity fields that occur fewer than 5 times are generalised or withheld.
    ExportResearch {
        /// Folders searched recursively for *.report.json, as `consolidate` reads them.
        #[arg(value_name = "DIR", required_unless_present = "db", conflicts_with = "db")]
        dirs: Vec<PathBuf>,
        /// The report registry instead of folders: its current reports (a postgresql:// URI or
        /// libpq keywords, as `wsiview registry … --db`; "" for WSIVIEW_REGISTRY or the PG*
        /// variables).
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Folder for the three files (created if missing).
        #[arg(long, value_name = "OUTDIR")]
        out: PathBuf,
        /// Key for the pseudonyms (64 hex digits, as export-teaching's); created when missing.
        /// The same key gives the same pseudonyms.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// Replace a dataset already in --out.
        #[arg(long)]
        force: bool,
    },
    /// Write a synthetic H&E-looking pyramidal slide.
    Generate {
        output: PathBuf,
        #[arg(long)]
        width: u64,
        #[arg(long)]
        height: u64,
        #[arg(long, default_value_t = 256)]
        tile: u32,
        #[arg(long, value_enum, default_value_t = SynthCompression::Jpeg)]
        compression: SynthCompression,
        #[arg(long, default_value_t = 85)]
        quality: u8,
        #[arg(long)]
        bigtiff: bool,
        /// Write big-endian ("MM") TIFF.
        #[arg(long)]
        big_endian: bool,
        #[arg(long, value_enum, default_value_t = Layout::Chain)]
        layout: Layout,
        /// Microns per level-0 pixel.
        #[arg(long, default_value_t = 0.25)]
        mpp: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum DicomwebCommand {
    /// List the slide microscopy series (QIDO-RS, modality SM): study and series UIDs,
    /// accession number, study date, series description, number of instances.
    ///
    /// Credentials: a bearer token from --token-file or WSIVIEW_DICOMWEB_TOKEN, or HTTP basic
    /// from WSIVIEW_DICOMWEB_USER and WSIVIEW_DICOMWEB_PASSWORD (preferred to a user:password@
    /// in the URL, which other users of the machine can see in the process list), else the
    /// host's login in the netrc file (NETRC, default ~/.netrc).
    List {
        /// The DICOMweb service root, e.g. https://pacs.example/dicom-web.
        url: String,
        /// Only this study (StudyInstanceUID).
        #[arg(long, value_name = "UID")]
        study: Option<String>,
        /// Only studies with this accession number.
        #[arg(long, value_name = "A")]
        accession: Option<String>,
        /// Read a bearer token from this file (instead of WSIVIEW_DICOMWEB_TOKEN).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Print a JSON array of objects instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AnnotationsCommand {
    /// Area, perimeter, length and point count of every annotation, with totals per class.
    Measure {
        /// Annotation file: .geojson/.json (GeoJSON) or .xml (ASAP).
        file: PathBuf,
        /// Microns per level-0 pixel (along x, and along y unless --mpp-y is given).
        #[arg(long, value_parser = parse_mpp)]
        mpp: f64,
        /// Microns per level-0 pixel along y, for non-square pixels.
        #[arg(long, value_parser = parse_mpp)]
        mpp_y: Option<f64>,
        /// Print one JSON object instead of a table.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Write the table as CSV to this file instead of printing it.
        #[arg(long, value_name = "OUT.csv")]
        csv: Option<PathBuf>,
        /// Measure the complete features of a truncated file instead of failing; says how much
        /// was cut off.
        #[arg(long)]
        partial: bool,
    },
    /// Convert between GeoJSON and ASAP XML (format by extension: .xml is ASAP, .geojson/.json GeoJSON).
    Convert { input: PathBuf, output: PathBuf },
}

pub fn main() -> ExitCode {
    // Safety net: a bug must still end as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("wsiview: internal error: {what} (please report this)");
    }));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever bytes of a file the message quotes.
            eprintln!("wsiview: {}", wsiview::error::printable(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

fn sample_slide() -> PathBuf {
    let beside_sources = Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE_SLIDE);
    if beside_sources.exists() {
        beside_sources
    } else {
        PathBuf::from(SAMPLE_SLIDE)
    }
}

fn parse_pair(text: &str) -> Result<(f64, f64), String> {
    let (a, b) = text.split_once(',').ok_or("expected X,Y")?;
    let num = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or(format!("{s:?} is not a number"));
    Ok((num(a)?, num(b)?))
}

fn parse_mpp(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or(format!("{text:?} is not a positive number of microns per pixel"))
}

fn parse_size(text: &str) -> Result<(f32, f32), String> {
    let (a, b) = text.split_once(['x', 'X']).ok_or("expected WxH")?;
    let num = |s: &str| {
        s.trim()
            .parse::<f32>()
            .ok()
            .filter(|v| *v >= 64.0 && *v <= 16384.0)
            .ok_or(format!("{s:?} is not a size from 64 to 16384"))
    };
    Ok((num(a)?, num(b)?))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(bundle) = &cli.ca_cert {
        wsiview::remote::set_ca_bundle(bundle.clone());
    }
    let started = crate::STARTED.get().copied().unwrap_or_else(std::time::Instant::now);
    let command = match cli.command {
        Some(c) => c,
        None => Command::View {
            slides: if cli.slides.is_empty() { vec![sample_slide()] } else { cli.slides },
            center: None,
            level: None,
            downsample: None,
            size: (1600.0, 1000.0),
            screenshot: None,
            cache_mb: 256,
            bench_seconds: None,
            grid: 1,
            pan_scale: 1.0,
            annotations: None,
        },
    };
    match command {
        #[cfg(feature = "gui")]
        Command::View {
            slides,
            center,
            level,
            downsample,
            size,
            screenshot,
            cache_mb,
            bench_seconds,
            grid,
            pan_scale,
            annotations,
        } => {
            if let Some(d) = downsample {
                if !(d.is_finite() && d > 0.0) {
                    bail!("--downsample must be a positive number");
                }
            }
            if !(0.25..=4.0).contains(&pan_scale) {
                bail!("--pan-scale must be between 0.25 and 4");
            }
            let plan = screenshot.map(|output| wsiview::viewer::ScreenshotPlan {
                center: center.map(|(x, y)| [x, y]),
                level,
                downsample,
                output,
            });
            if (plan.is_some() || bench_seconds.is_some()) && slides.len() != 1 {
                bail!("--screenshot and --bench-seconds need exactly one slide");
            }
            for slide in &slides {
                if slide.to_str().is_some_and(wsiview::viewer::app_files::is_plain_http) {
                    let shown = wsiview::remote::redact(&slide.to_string_lossy());
                    eprintln!("wsiview: warning: {shown}: URL is not encrypted (http)");
                }
            }
            let bench = bench_seconds.map(|s| wsiview::viewer::BenchPlan {
                pan_seconds: s.clamp(1.0, 3600.0),
                cells: usize::from(grid),
                pan_scale,
            });
            // Tiles load on rayon's pool, as many at once as it has threads. A remote slide's
            // loads wait on the network, so with a URL to open the pool has more threads than
            // cores (unless RAYON_NUM_THREADS says otherwise).
            let remote = slides.iter().any(|s| s.to_str().is_some_and(wsiview::remote::is_url));
            if remote && std::env::var_os("RAYON_NUM_THREADS").is_none() {
                let _ = rayon::ThreadPoolBuilder::new().num_threads(wsiview::slide::REMOTE_READ_THREADS).build_global();
            }
            let code = wsiview::viewer::native::run(wsiview::viewer::native::ViewOptions {
                slides,
                screenshot: plan,
                bench,
                size: [size.0, size.1],
                cache_bytes: cache_mb.max(16) << 20,
                started,
                case: None,
                cells: 1,
                annotations,
            })?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        #[cfg(feature = "gui")]
        Command::Case { path, grid, cache_mb, annotations } => {
            let fallback: Vec<PathBuf> = wsiview::report::store::fallback_dir().into_iter().collect();
            // Absolute: a case folder's name is its id, and its parent is what the case list shows.
            let path = std::fs::canonicalize(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let case = wsiview::report::case::case_of(&path, &fallback).map_err(|e| anyhow::anyhow!("{e}"))?;
            let code = wsiview::viewer::native::run(wsiview::viewer::native::ViewOptions {
                slides: case.slides.clone(),
                screenshot: None,
                bench: None,
                size: [1600.0, 1000.0],
                cache_bytes: cache_mb.max(16) << 20,
                started,
                cells: usize::from(grid).min(case.slides.len().max(1)),
                case: Some(case),
                annotations,
            })?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        #[cfg(not(feature = "gui"))]
        Command::Case { .. } => {
            bail!("this wsiview was built without the viewer (cargo feature `gui`); the other commands work")
        }
        #[cfg(not(feature = "gui"))]
        Command::View { .. } => {
            let _ = started;
            bail!("this wsiview was built without the viewer (cargo feature `gui`); the other commands work")
        }
        Command::Info { slide, json } => info(&slide, json),
        Command::Region { slide, level, x, y, width, height, output } => {
            let s = open_slide(&slide)?;
            let img = s.read_region(level, x, y, width, height)?;
            save_png(&img, &output)
        }
        Command::Thumbnail { slide, max_size, output } => {
            let s = open_slide(&slide)?;
            save_png(&s.thumbnail(max_size)?, &output)
        }
        Command::Associated { slide, name, output } => {
            let s = open_slide(&slide)?;
            save_png(&s.read_associated(&name)?, &output)
        }
        Command::Bench { slide, threads, json } => {
            let r = wsiview::bench::run(&slide, threads)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{}: {} threads", r.slide, r.threads);
                println!("  open            {:>10.3} ms (median of 9)", r.open_ms);
                println!(
                    "  tiles           {:>10.1} tiles/s ({} level-0 tiles, cold, median of 3)",
                    r.tiles_per_s, r.tiles
                );
                println!("  1080p level 0   {:>10.1} ms (cold, median of 5)", r.viewport_1080p_level0_ms);
                println!("  thumbnail 1024  {:>10.1} ms (cold, median of 3)", r.thumbnail_1024_ms);
                if let (Some(requests), Some(bytes)) = (r.requests, r.bytes_fetched) {
                    println!("  fetched         {:>10} requests, {bytes} bytes (whole run)", requests);
                }
                if let (Some(fetched), Some(tiles)) = (r.window_bytes_fetched, r.tile_bytes) {
                    println!("  one tiles pass  {:>10} bytes fetched for {tiles} bytes of tiles", fetched);
                }
            }
            Ok(())
        }
        Command::Annotations { action: AnnotationsCommand::Measure { file, mpp, mpp_y, json, csv, partial } } => {
            measure_annotations(&file, PixelSize { x: mpp, y: mpp_y.unwrap_or(mpp) }, json, csv.as_deref(), partial)
        }
        Command::Annotations { action: AnnotationsCommand::Convert { input, output } } => {
            convert_annotations(&input, &output)
        }
        Command::Registry { action } => crate::cli_registry::run(action),
        Command::Dicomweb { action: DicomwebCommand::List { url, study, accession, token_file, json } } => {
            dicomweb_list(&url, study, accession, token_file.as_deref(), json)
        }
        Command::Dicomize { slide, outdir, study_uid, series_uid, accession, include_label, stow, token_file } => {
            // The URL and the credentials are checked before anything is written.
            let server = match &stow {
                Some(url) => {
                    let auth = wsiview::remote::dicomweb::Auth::from_env(token_file.as_deref())
                        .map_err(|e| anyhow::anyhow!(e))?;
                    Some(wsiview::remote::dicomweb::Server::new(url, auth)?)
                }
                None => None,
            };
            let options = wsiview::dicomize::DicomizeOptions {
                study_uid,
                series_uid,
                accession,
                include_label,
                extended_offset_table: false,
            };
            // A closed stdout (`| head`) must not stop the conversion: the lines are only a report.
            use std::io::Write;
            let report = |w: &wsiview::dicomize::Written| {
                let _ = writeln!(std::io::stdout(), "{w}");
            };
            let (written, notes) = wsiview::dicomize::dicomize(&slide, &outdir, &options, report)?;
            for note in notes {
                let _ = writeln!(std::io::stdout(), "note: {note}");
            }
            if let Some(server) = server {
                for w in &written {
                    wsiview::remote::dicomweb::stow(&server, &w.path)?;
                    let _ = writeln!(
                        std::io::stdout(),
                        "{}: stored on {} (STOW-RS)",
                        w.path.display(),
                        server.display_url()
                    );
                }
            }
            Ok(())
        }
        Command::Verify { report, slide } => verify(&report, &slide),
        Command::ExportTeaching { slide, report, outdir, key_file, force } => {
            export_teaching(&slide, &report, &outdir, key_file.as_deref(), force)
        }
        Command::Consolidate { dirs, out, category_map } => consolidate_reports(&dirs, &out, category_map.as_deref()),
        Command::GenerateReports { outdir, count, sites, seed } => {
            let sites: Vec<&str> = sites.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
            if sites.is_empty() {
                bail!("--sites: give at least one site code");
            }
            let written = wsiview::report::synth::write_set(&outdir, count, &sites, seed)?;
            println!("{written} reports → {}", outdir.display());
            Ok(())
        }
        Command::ExportResearch { dirs, db, out, key_file, force } => {
            export_research(&dirs, db.as_deref(), &out, &key_file, force)
        }
        Command::Generate {
            output,
            width,
            height,
            tile,
            compression,
            quality,
            bigtiff,
            big_endian,
            layout,
            mpp,
            seed,
        } => {
            if !(mpp.is_finite() && mpp > 0.0) {
                bail!("--mpp must be a positive number");
            }
            let opts = SynthOptions {
                width,
                height,
                tile,
                compression,
                jpeg_quality: quality.clamp(1, 100),
                bigtiff,
                byte_order: if big_endian { ByteOrder::Big } else { ByteOrder::Little },
                layout,
                mpp,
                objective_power: if mpp <= 0.3 { 40.0 } else { 20.0 },
                seed,
            };
            let report = synth::generate(&output, &opts).with_context(|| format!("{}", output.display()))?;
            println!(
                "{}: {} levels, {} tiles, {:.1} MB",
                report.path.display(),
                report.levels.len(),
                report.tiles,
                report.bytes as f64 / 1e6
            );
            Ok(())
        }
    }
}

/// Files larger than this show hashing progress on stderr.
const PROGRESS_BYTES: u64 = 64 << 20;
/// `verify`'s exit code when the slide is not the one the report is about.
const EXIT_OTHER_SLIDE: u8 = 3;

/// A progress line on stderr for large files, redrawn when the percentage changes.
fn progress_printer(file: &Path) -> impl FnMut(&str, u64, u64) + '_ {
    let mut shown = None;
    move |stage: &str, done: u64, total: u64| {
        if total <= PROGRESS_BYTES {
            return;
        }
        let percent = done * 100 / total.max(1);
        if shown != Some((stage.to_string(), percent)) {
            eprint!("\r{stage} {}: {percent:>3}%", file.display());
            if done >= total {
                eprintln!();
            }
            shown = Some((stage.to_string(), percent));
        }
    }
}

fn verify(report_path: &Path, slide: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let report = wsiview::report::Report::read(report_path)?;
    if report.slide.sha256.is_empty() {
        bail!("{}: has no slide.sha256 to compare (a draft saved before hashing finished?)", report_path.display());
    }
    // A URL is streamed and named without credentials or query string.
    let location = slide.to_string_lossy();
    let remote = wsiview::remote::is_url(&location);
    let shown = if remote { PathBuf::from(wsiview::remote::redact(&location)) } else { slide.to_path_buf() };
    let mut progress = progress_printer(&shown);
    let each = |done, total| {
        progress("hashing", done, total);
        true
    };
    // A local path is hashed as it is (it need not be UTF-8).
    let sha256 = if remote {
        wsiview::report::hash::sha256_slide(&location, each)
    } else {
        wsiview::report::hash::sha256_slide_path(slide, each)
    }
    .with_context(|| format!("{}: cannot read", shown.display()))?;
    if sha256 == report.slide.sha256 {
        println!("OK: {} refers to exactly {} (sha256 {sha256})", report_path.display(), shown.display());
        return Ok(());
    }
    println!("MISMATCH: {} does not refer to {}", report_path.display(), shown.display());
    println!("  sha256        report {}  slide {sha256}", report.slide.sha256);
    // Hints at what the slide is; the hash alone decides.
    let name = shown.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !report.slide.file_name.is_empty() && report.slide.file_name != name {
        println!("  file name     report {:?}  slide {name:?}", report.slide.file_name);
    }
    let opened = if remote { Slide::open_location(&location, wsiview::Limits::DEFAULT) } else { Slide::open(slide) };
    match opened {
        Ok(s) => {
            let (w, h) = s.levels().first().map_or((0, 0), |l| (l.width, l.height));
            let same = if (w, h) == (report.slide.width, report.slide.height) { " (same size)" } else { "" };
            println!("  level-0 size  report {}×{}  slide {w}×{h}{same}", report.slide.width, report.slide.height);
        }
        Err(e) => println!("  the slide does not open as a slide ({})", e.kind),
    }
    let _ = std::io::stdout().flush();
    std::process::exit(i32::from(EXIT_OTHER_SLIDE));
}

fn export_teaching(
    slide: &Path,
    report: &Path,
    outdir: &Path,
    key_file: Option<&Path>,
    force: bool,
) -> anyhow::Result<()> {
    use wsiview::report::teaching::{self, PseudonymKey};
    let (key, key_path, created) = match key_file {
        Some(path) => (PseudonymKey::read(path)?, path.to_path_buf(), false),
        None => {
            let Some(path) = PseudonymKey::default_path() else {
                bail!("no app data folder for the teaching key (HOME is not set): pass --key-file");
            };
            let (key, created) = PseudonymKey::load_or_create(&path)?;
            (key, path, created)
        }
    };
    // A URL is shown without credentials or query string.
    let location = slide.to_string_lossy();
    let shown = if wsiview::remote::is_url(&location) {
        PathBuf::from(wsiview::remote::redact(&location))
    } else {
        slide.into()
    };
    let mut progress = progress_printer(&shown);
    let out = teaching::export_teaching(slide, report, outdir, &key, force, &mut progress)?;
    println!("Teaching copy of {} written as {}:", shown.display(), out.case_pseudonym);
    let removed = if out.scrub.removed.is_empty() {
        "no label or macro image found".to_string()
    } else {
        format!("removed {}", out.scrub.removed.join(" and "))
    };
    println!(
        "  {}  slide: {removed}; {} blanked in {} descriptions",
        out.slide.display(),
        teaching::BLANKED_DESCRIPTION_KEYS.join("/"),
        out.scrub.descriptions_blanked
    );
    println!("  {}  report: case id, report id and reviewer names pseudonymised", out.report.display());
    if let Some(a) = &out.annotations {
        println!("  {}  annotations (copied as they are)", a.display());
    }
    let made = if created { "created" } else { "used" };
    println!(
        "  key {made}: {} (id {}); the same key gives the same pseudonyms, keep it private",
        key_path.display(),
        key.id()
    );
    if !out.warnings.is_empty() {
        println!("Check before sharing:");
        for warning in &out.warnings {
            println!("  - {warning}");
        }
    }
    Ok(())
}

fn save_png(img: &image::RgbaImage, output: &Path) -> anyhow::Result<()> {
    img.save_with_format(output, image::ImageFormat::Png)
        .with_context(|| format!("{}: cannot write PNG", output.display()))
}

#[derive(serde::Serialize)]
struct InfoJson<'a> {
    file: String,
    format: &'a str,
    vendor: &'a str,
    level_count: usize,
    level_dimensions: Vec<[u64; 2]>,
    level_downsamples: Vec<f64>,
    level_tile_sizes: Vec<[u32; 2]>,
    level_compressions: Vec<&'static str>,
    mpp_x: Option<f64>,
    mpp_y: Option<f64>,
    objective_power: Option<f64>,
    associated_images: Vec<String>,
    properties: &'a std::collections::BTreeMap<String, String>,
}

/// Open a slide for a command; what the reader passed over (`wsiview.warning.*` properties: a
/// damaged SubIFDs entry, a vendor number it could not read) is one warning line each on stderr.
///
/// An `http://`, `https://` or `s3://` SLIDE is read with range requests, named by its redacted URL
/// ([`wsiview::remote::redact`]); plain http (an s3 endpoint included) is warned about.
fn open_slide(path: &Path) -> anyhow::Result<Slide> {
    let slide = match path.to_str() {
        Some(url) if wsiview::remote::is_url(url) => {
            if wsiview::remote::is_unencrypted(url) {
                eprintln!("wsiview: warning: URL is not encrypted (http)");
            }
            Slide::open_location(url, wsiview::Limits::DEFAULT)?
        }
        _ => Slide::open(path)?,
    };
    for (key, value) in &slide.properties().values {
        if let Some(what) = key.strip_prefix("wsiview.warning.") {
            let line = format!("{}: {what}: {value}", slide.path().display());
            eprintln!("wsiview: warning: {}", wsiview::error::printable(&line));
        }
    }
    Ok(slide)
}

fn info(path: &Path, json: bool) -> anyhow::Result<()> {
    let slide = open_slide(path)?;
    let p = slide.properties();
    let levels = slide.levels();
    if json {
        let out = InfoJson {
            file: slide.path().display().to_string(),
            format: slide.format_name(),
            vendor: &p.vendor,
            level_count: levels.len(),
            level_dimensions: levels.iter().map(|l| [l.width, l.height]).collect(),
            level_downsamples: levels.iter().map(|l| l.downsample).collect(),
            level_tile_sizes: levels.iter().map(|l| [l.tile_width, l.tile_height]).collect(),
            level_compressions: levels.iter().map(|l| l.compression.name()).collect(),
            mpp_x: p.mpp_x,
            mpp_y: p.mpp_y,
            objective_power: p.objective_power,
            associated_images: slide.associated_names(),
            properties: &p.values,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let opt = |v: Option<f64>, unit: &str| v.map_or("unknown".to_string(), |v| format!("{v}{unit}"));
    println!("{}", slide.path().display());
    println!("  format            {} (vendor {})", slide.format_name(), p.vendor);
    println!("  mpp               {} × {}", opt(p.mpp_x, " µm"), opt(p.mpp_y, " µm"));
    println!("  objective power   {}", opt(p.objective_power, "×"));
    let names = slide.associated_names();
    println!("  associated images {}", if names.is_empty() { "none".into() } else { names.join(", ") });
    println!("  levels            {}", levels.len());
    for (i, l) in levels.iter().enumerate() {
        println!(
            "    {i:>2}  {:>7} × {:<7} downsample {:>9.4}  tiles {}×{} {}",
            l.width,
            l.height,
            l.downsample,
            l.tile_width,
            l.tile_height,
            l.compression.name()
        );
    }
    Ok(())
}

/// Skipped features named on stderr; the rest are counted (`--json` lists them all).
const SKIPPED_NAMED: usize = 3;

/// Warn on stderr, in one line, about what an import could not read: how many features were
/// skipped and the first few, each with its number and reason.
fn warn_skipped(path: &Path, import: &Import) {
    if import.skipped > 0 {
        let named: Vec<&str> = import.problems.iter().take(SKIPPED_NAMED).map(String::as_str).collect();
        let more = import.skipped.saturating_sub(named.len());
        let first = if named.is_empty() { "no details".to_string() } else { named.join("; ") };
        let more = if more > 0 { format!("; {more} more") } else { String::new() };
        eprintln!(
            "wsiview: warning: {}: {} features skipped ({first}{more}); measuring the rest",
            path.display(),
            import.skipped
        );
    }
    if import.truncated {
        eprintln!("wsiview: warning: {}: the file is truncated; measuring the features before the cut", path.display());
    }
}

/// Measurements go into reports: a damaged (truncated) file is an error (exit 1, naming the file
/// and where it broke) unless `partial` asks for what can be read. Features of a kind that cannot
/// be measured are skipped with a warning, as before.
fn measure_annotations(
    file: &Path,
    pixel_size: PixelSize,
    json: bool,
    csv: Option<&Path>,
    partial: bool,
) -> anyhow::Result<()> {
    let import = store::read_any(file)?;
    if import.truncated && !partial {
        anyhow::bail!(
            "{}: damaged: {}; nothing measured ({} complete features before the break; --partial measures those)",
            file.display(),
            import.cut.as_deref().unwrap_or("the file is truncated"),
            import.annotations.len()
        );
    }
    warn_skipped(file, &import);
    let rows = table::measure_all(&import.annotations, Some(pixel_size));
    let totals = table::class_totals(&rows);
    // The unit is the pixel size's, however many features were skipped (none measured included).
    let unit = Unit::for_pixel_size(Some(pixel_size));
    if json {
        let mut value = table::to_json(&rows, &totals, unit);
        value["skipped"] = serde_json::to_value(&import.skipped_features)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if let Some(out) = csv {
        wsiview::files::write_atomic(out, table::to_csv(&rows, &totals, unit).as_bytes())
            .with_context(|| format!("{}: cannot write CSV", out.display()))?;
        println!("{}: {} annotations measured, {} classes", out.display(), rows.len(), totals.len());
    } else {
        print!("{}", text_table(file, pixel_size, &rows, &totals));
    }
    Ok(())
}

fn dicomweb_list(
    url: &str,
    study: Option<String>,
    accession: Option<String>,
    token_file: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    use wsiview::remote::dicomweb::{list_series, valid_uid, Auth, Filter, Server};
    if let Some(uid) = &study {
        if !valid_uid(uid) {
            bail!("--study {}: not a DICOM UID (digits and dots)", wsiview::error::printable(uid));
        }
    }
    let auth = Auth::from_env(token_file).map_err(anyhow::Error::msg)?;
    let server = Server::new(url, auth)?;
    if wsiview::remote::is_unencrypted(url) {
        eprintln!("wsiview: warning: {}: URL is not encrypted (http)", server.display_url());
    }
    let series = list_series(&server, &Filter { study, accession })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&series)?);
        return Ok(());
    }
    if series.is_empty() {
        println!("{}: no slide microscopy series", server.display_url());
        return Ok(());
    }
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut rows =
        vec![["Study UID", "Series UID", "Accession", "Date", "Description", "Instances"].map(str::to_string).to_vec()];
    for s in &series {
        rows.push(vec![
            s.study_instance_uid.clone(),
            s.series_instance_uid.clone(),
            cell(&s.accession_number),
            cell(&s.study_date),
            cell(&s.series_description),
            s.number_of_instances.map_or("-".into(), |n| n.to_string()),
        ]);
    }
    print!("{}", aligned(&rows, &[false, false, false, false, false, true]));
    Ok(())
}

/// Columns padded to their widest cell; numbers right-aligned.
fn aligned(rows: &[Vec<String>], right: &[bool]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if right.get(c).copied().unwrap_or(false) {
                    format!("{s:>w$}", w = widths[c])
                } else {
                    format!("{s:<w$}", w = widths[c])
                }
            })
            .collect();
        out += "  ";
        out += cells.join("  ").trim_end();
        out += "\n";
    }
    out
}

fn text_table(file: &Path, s: PixelSize, rows: &[table::MeasuredRow], totals: &[table::ClassTotal]) -> String {
    let unit = Unit::for_pixel_size(Some(s));
    let (area, len) = if unit == Unit::Microns { ("µm²", "µm") } else { ("px²", "px") };
    let num = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    let clip = |t: &str| {
        if t.chars().count() > 40 {
            format!("{}…", t.chars().take(39).collect::<String>())
        } else {
            t.to_string()
        }
    };
    let mut cells = vec![vec![
        "#".to_string(),
        "name".to_string(),
        "class".to_string(),
        "object".to_string(),
        "type".to_string(),
        format!("area {area}"),
        format!("perimeter {len}"),
        format!("length {len}"),
        "points".to_string(),
    ]];
    for r in rows {
        let m = &r.measurement;
        cells.push(vec![
            r.index.to_string(),
            clip(&r.name),
            clip(r.class.as_deref().unwrap_or("-")),
            r.object.name().to_string(),
            r.kind.to_string(),
            num(m.area),
            num(m.perimeter),
            num(m.length),
            m.points.map(|p| p.to_string()).unwrap_or_default(),
        ]);
    }
    let mut out = format!("{}: {} annotations, {} × {} µm per pixel\n", file.display(), rows.len(), s.x, s.y);
    out += &aligned(&cells, &[true, false, false, false, false, true, true, true, true]);
    out += "\nTotals by class\n";
    let mut sums = vec![vec![
        "class".to_string(),
        "count".to_string(),
        format!("area {area}"),
        format!("perimeter {len}"),
        format!("length {len}"),
        "points".to_string(),
        "objects".to_string(),
    ]];
    for t in totals {
        sums.push(vec![
            clip(t.class.as_deref().unwrap_or("(unclassified)")),
            t.count.to_string(),
            num(Some(t.area)),
            num(Some(t.perimeter)),
            num(Some(t.length)),
            t.points.to_string(),
            t.objects_text(),
        ]);
    }
    let all = |f: fn(&table::ClassTotal) -> f64| totals.iter().map(f).sum::<f64>();
    sums.push(vec![
        "all".to_string(),
        rows.len().to_string(),
        num(Some(all(|t| t.area))),
        num(Some(all(|t| t.perimeter))),
        num(Some(all(|t| t.length))),
        totals.iter().map(|t| t.points).sum::<usize>().to_string(),
        table::ClassTotal {
            objects: totals.iter().fold([0; 4], |mut all, t| {
                all.iter_mut().zip(t.objects).for_each(|(a, n)| *a += n);
                all
            }),
            ..table::ClassTotal::default()
        }
        .objects_text(),
    ]);
    out += &aligned(&sums, &[false, true, true, true, true, true, false]);
    out
}

/// Progress of a long consolidation on stderr: one updating line on a terminal, otherwise (a log)
/// at most ten lines.
struct ReadProgress {
    terminal: bool,
    /// The last step shown (percent on a terminal, tenths otherwise); the lock keeps lines from
    /// worker threads in order.
    shown_step: std::sync::Mutex<usize>,
}

impl ReadProgress {
    /// Below this many files a run is quick enough to need no progress.
    const MIN_FILES: usize = 1000;

    fn update(&self, done: usize, total: usize) {
        if total <= Self::MIN_FILES {
            return;
        }
        let steps = if self.terminal { 100 } else { 10 };
        let step = done * steps / total;
        let Ok(mut shown) = self.shown_step.lock() else { return };
        if step <= *shown {
            return;
        }
        *shown = step;
        if self.terminal {
            eprint!("\rwsiview: reading reports: {done} of {total} ({step} %)");
        } else {
            eprintln!("wsiview: reading reports: {done} of {total}");
        }
    }

    /// End the updating line so what follows starts on its own line.
    fn finish(&self) {
        if self.terminal && self.shown_step.lock().is_ok_and(|shown| *shown > 0) {
            eprintln!();
        }
    }
}

fn consolidate_reports(dirs: &[PathBuf], out: &Path, category_map: Option<&Path>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use wsiview::report::category_map::CategoryMap;
    use wsiview::report::consolidate;
    // A bad map is reported before any report is read.
    let categories = match category_map {
        Some(file) => CategoryMap::built_in_extended_by(file)?,
        None => CategoryMap::built_in(),
    };
    let progress = ReadProgress { terminal: std::io::stderr().is_terminal(), shown_step: Default::default() };
    let summary = consolidate::consolidate_with(dirs, &categories, &|done, total| progress.update(done, total));
    progress.finish();
    if summary.folders_read == 0 {
        let why: Vec<String> = summary.invalid.iter().map(|i| format!("{}: {}", i.file.display(), i.error)).collect();
        bail!("no folder of reports to read ({})", why.join("; "));
    }
    consolidate::write_outputs(&summary, out).map_err(anyhow::Error::new)?;
    println!("{} → {}", summary.headline(), out.display());
    Ok(())
}

fn export_research(dirs: &[PathBuf], db: Option<&str>, out: &Path, key_file: &Path, force: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use wsiview::report::consolidate;
    use wsiview::report::research::{self, Source};
    use wsiview::report::teaching::PseudonymKey;
    let (reports, source) = match db {
        Some(db) => {
            let (reports, invalid) = crate::cli_registry::current_reports(db)?;
            for (row, problem) in &invalid {
                eprintln!("wsiview: {row}: not a valid report, not exported: {problem}");
            }
            let source = Source { kind: "registry".into(), folders_read: 0, invalid: invalid.len(), duplicates: 0 };
            (reports, source)
        }
        None => {
            let progress = ReadProgress { terminal: std::io::stderr().is_terminal(), shown_step: Default::default() };
            let read = consolidate::read_reports(dirs, &|done, total| progress.update(done, total));
            progress.finish();
            if read.folders_read == 0 {
                let why: Vec<String> =
                    read.invalid.iter().map(|i| format!("{}: {}", i.file.display(), i.error)).collect();
                bail!("no folder of reports to read ({})", why.join("; "));
            }
            let source = Source {
                kind: "folders".into(),
                folders_read: read.folders_read,
                invalid: read.invalid.len(),
                duplicates: read.duplicates.len(),
            };
            (read.reports.into_iter().map(|r| r.report).collect(), source)
        }
    };
    // The key is made only once there is something to export.
    let (key, created) = PseudonymKey::load_or_create(key_file)?;
    let dataset = research::research_dataset(&reports, &key);
    research::write_dataset(&dataset, &source, out, force)?;
    let c = dataset.counts();
    println!(
        "{} rows from {} reports ({} drafts not exported, {} invalid files, {} duplicates) → {}",
        c.published(),
        dataset.reports_in,
        dataset.not_signed_out,
        source.invalid,
        source.duplicates,
        out.display()
    );
    println!(
        "  k = {}: {} at month, {} generalised to quarter ({} without IMD quintile, {} without ethnic group either), {} withheld",
        research::K,
        c.month,
        c.quarter + c.quarter_without_imd + c.quarter_without_equity,
        c.quarter_without_imd + c.quarter_without_equity,
        c.quarter_without_equity,
        c.withheld
    );
    let made = if created { "created" } else { "used" };
    println!(
        "  key {made}: {} (id {}); the same key gives the same pseudonyms, keep it private",
        key_file.display(),
        key.id()
    );
    Ok(())
}

/// Annotation formats by extension.
#[derive(Clone, Copy, PartialEq)]
enum AnnotationFormat {
    Asap,
    GeoJson,
}

fn annotation_format(path: &Path) -> Option<AnnotationFormat> {
    let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
    match ext.as_str() {
        "xml" => Some(AnnotationFormat::Asap),
        "geojson" | "json" => Some(AnnotationFormat::GeoJson),
        _ => None,
    }
}

fn convert_annotations(input: &Path, output: &Path) -> anyhow::Result<()> {
    let unknown = |p: &Path| {
        anyhow::anyhow!("{}: unknown annotation format (use .xml for ASAP, .geojson or .json for GeoJSON)", p.display())
    };
    annotation_format(input).ok_or_else(|| unknown(input))?;
    let format = annotation_format(output).ok_or_else(|| unknown(output))?;
    let import = store::read_any(input)?;
    let mut lost = if format == AnnotationFormat::Asap { asap::export_losses(&import.annotations) } else { Vec::new() };
    let unused: Vec<&str> = import
        .classes
        .iter()
        .filter(|c| !import.annotations.iter().any(|a| a.class.as_deref() == Some(c.name.as_str())))
        .map(|c| c.name.as_str())
        .collect();
    if !unused.is_empty() {
        lost.push(format!("{} classes without annotations not kept ({})", unused.len(), unused.join(", ")));
    }
    store::write_any(output, &import.annotations, &import.classes)?;
    let used = import.classes.len() - unused.len();
    println!(
        "{} -> {}: {} annotations, {used} classes, written as {}",
        input.display(),
        output.display(),
        import.annotations.len(),
        if format == AnnotationFormat::Asap { "ASAP XML" } else { "GeoJSON" }
    );
    if import.truncated {
        println!("  truncated: {} stops early; the features before the cut were converted", input.display());
    }
    if import.skipped > 0 {
        println!("  skipped: {} unreadable features ({})", import.skipped, import.problems.join("; "));
    }
    for line in lost {
        println!("  lost: {line}");
    }
    Ok(())
}
