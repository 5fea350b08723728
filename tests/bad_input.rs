//! Bad slide files must give a clear error — never a panic, never a hang, never a giant allocation —
//! and one broken tile must not break the rest of the slide.
//!
//! Every error is checked to be one line that starts with the file's path and names the problem.
//! Files are either synthetic slides (`wsiview::synth`) patched in place, tiny TIFFs written byte by
//! byte here, or the real fixtures in `../shared/fixtures/`.

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use wsiview::synth::{generate, Layout, SynthCompression, SynthOptions};
use wsiview::tiff::tags::{self, types};
use wsiview::tiff::{ByteOrder, MemorySource, TiffReader};
use wsiview::{ErrorKind, Slide, SlideError};

// ---------- bounded memory: the largest single allocation of this test binary ----------

/// Records the largest single allocation request, so tests can prove a hostile size was never allocated.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// No scenario here legitimately allocates more than this in one piece (the engine's own bounds:
/// 64 MiB per decoded tile, 400 MB per region or associated image).
const ALLOCATION_LIMIT: usize = 512 << 20;

/// Set in the child process that runs one [`isolated`] test alone.
const CHILD_ENV: &str = "WSIVIEW_BAD_INPUT_ISOLATED";

/// Run the test `name`'s `body` alone in a fresh process (this test binary, filtered to that test),
/// then check the largest single allocation that process made. The allocation record is process-wide,
/// so only a process running one test can say which scenario made a giant allocation.
fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        body();
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest <= ALLOCATION_LIMIT,
            "a single allocation of {largest} bytes was made (limit {ALLOCATION_LIMIT}): a size read from the file \
             reached the allocator"
        );
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run this test binary again");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name}, run alone in a child process, failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child process did not run {name}:\n{stdout}\n{stderr}");
}

// ---------- helpers ----------

/// Run `f` on its own thread; fail if it takes longer than `secs` (a hang). `Err` carries the panic
/// message if `f` panicked.
fn guarded<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => Ok(v),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not finish within {secs} s (hang?)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => Err(panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()),
            Ok(()) => panic!("{what}: worker ended without a result"),
        },
    }
}

/// [`guarded`], failing the test if `f` panicked.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    guarded(secs, what, f).unwrap_or_else(|panic| panic!("{what}: panicked: {panic}"))
}

/// Why an error is not a good message: it must be one line starting with "<path>: " and say something.
fn malformed(err: &SlideError, path: &Path) -> Option<String> {
    let text = err.to_string();
    let prefix = format!("{}: ", path.display());
    if err.path != path {
        Some(format!("the error names another file: {text:?}"))
    } else if !text.starts_with(&prefix) {
        Some(format!("the error does not start with the file path {prefix:?}: {text:?}"))
    } else if text.contains('\n') || text.contains('\r') {
        Some(format!("the error is not one line: {text:?}"))
    } else if text.len() < prefix.len() + 10 {
        Some(format!("the error says too little: {text:?}"))
    } else {
        None
    }
}

/// Check an error is well formed (see [`malformed`]) and mentions every needle (case-insensitive).
#[track_caller]
fn assert_error(err: &SlideError, path: &Path, needles: &[&str]) -> String {
    if let Some(problem) = malformed(err, path) {
        panic!("{problem}");
    }
    let text = err.to_string();
    let lower = text.to_lowercase();
    for needle in needles {
        assert!(lower.contains(&needle.to_lowercase()), "the error does not mention {needle:?}: {text}");
    }
    text
}

/// Open a file that must not open; its error.
#[track_caller]
fn open_err(path: &Path) -> SlideError {
    match Slide::open(path) {
        Ok(slide) => panic!("{} opened ({} levels) but should have been refused", path.display(), slide.levels().len()),
        Err(e) => e,
    }
}

#[track_caller]
fn open_ok(path: &Path) -> Slide {
    match Slide::open(path) {
        Ok(slide) => slide,
        Err(e) => panic!("should open: {e}"),
    }
}

/// The error of an operation that must fail (without printing a large `Ok` value if it did not).
#[track_caller]
fn failed<T>(result: wsiview::Result<T>, what: &str) -> SlideError {
    match result {
        Ok(_) => panic!("succeeded but should have failed: {what}"),
        Err(e) => e,
    }
}

#[track_caller]
fn tile_err(slide: &Slide, level: usize, col: u64, row: u64) -> SlideError {
    match slide.read_tile(level, col, row) {
        Ok(t) => panic!("tile {col},{row} of level {level} decoded ({}×{}) but its data is broken", t.width, t.height),
        Err(e) => e,
    }
}

/// Options for a small, fast synthetic slide: 1024×768, 256-pixel tiles (level 0 is 4×3 tiles).
fn small(compression: SynthCompression) -> SynthOptions {
    SynthOptions { width: 1024, height: 768, tile: 256, compression, ..Default::default() }
}

fn generated(dir: &Path, name: &str, opts: &SynthOptions) -> PathBuf {
    let path = dir.join(name);
    generate(&path, opts).unwrap_or_else(|e| panic!("generating {name}: {e}"));
    path
}

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: fixtures folder {} is absent", dir.display());
        None
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A TIFF file's bytes, with the positions of IFD entries and tag values worked out from the raw
/// layout (classic: u16 count, 12-byte entries; BigTIFF: u64 count, 20-byte entries), for patching.
struct TiffBytes {
    bytes: Vec<u8>,
    order: ByteOrder,
    bigtiff: bool,
}

impl TiffBytes {
    fn read(path: &Path) -> Self {
        let bytes = fs::read(path).expect("read the slide");
        let reader = TiffReader::new(Arc::new(MemorySource(bytes.clone()))).expect("the slide has a TIFF header");
        TiffBytes { order: reader.order, bigtiff: reader.bigtiff, bytes }
    }

    fn write(&self, path: &Path) {
        fs::write(path, &self.bytes).expect("write the patched slide");
    }

    fn reader(&self) -> TiffReader {
        TiffReader::new(Arc::new(MemorySource(self.bytes.clone()))).expect("TIFF header")
    }

    fn uint(&self, pos: u64, size: usize) -> u64 {
        let b = &self.bytes[pos as usize..pos as usize + size];
        match size {
            1 => u64::from(b[0]),
            2 => u64::from(self.order.u16([b[0], b[1]])),
            4 => u64::from(self.order.u32([b[0], b[1], b[2], b[3]])),
            8 => self.order.u64(b.try_into().expect("8 bytes")),
            _ => panic!("no integer of {size} bytes"),
        }
    }

    fn put_uint(&mut self, pos: u64, size: usize, value: u64) {
        let bytes = match size {
            1 => vec![u8::try_from(value).expect("fits a BYTE")],
            2 => self.order.put_u16(u16::try_from(value).expect("fits a SHORT")).to_vec(),
            4 => self.order.put_u32(u32::try_from(value).expect("fits a LONG")).to_vec(),
            8 => self.order.put_u64(value).to_vec(),
            _ => panic!("no integer of {size} bytes"),
        };
        self.bytes[pos as usize..pos as usize + size].copy_from_slice(&bytes);
    }

    /// (size of the entry count, size of one entry, size of an offset).
    fn sizes(&self) -> (u64, u64, usize) {
        if self.bigtiff {
            (8, 20, 8)
        } else {
            (2, 12, 4)
        }
    }

    /// Offsets of the IFDs of the main chain.
    fn chain(&self) -> Vec<u64> {
        let reader = self.reader();
        let mut seen = HashSet::new();
        let ifds = reader.read_chain(reader.first_ifd, &mut seen).expect("a valid IFD chain");
        ifds.iter().map(|ifd| ifd.offset).collect()
    }

    /// Position of an IFD's next-IFD pointer.
    fn next_pointer(&self, ifd: u64) -> u64 {
        let (count_size, entry_size, _) = self.sizes();
        ifd + count_size + self.uint(ifd, count_size as usize) * entry_size
    }

    /// Position of the directory entry of `tag` in the IFD at `ifd`.
    fn entry(&self, ifd: u64, tag: u16) -> u64 {
        let (count_size, entry_size, _) = self.sizes();
        let n = self.uint(ifd, count_size as usize);
        (0..n)
            .map(|i| ifd + count_size + i * entry_size)
            .find(|&pos| self.uint(pos, 2) == u64::from(tag))
            .unwrap_or_else(|| panic!("tag {tag} is not in the IFD at {ifd}"))
    }

    /// Position of the entry's count field and its size.
    fn count_field(&self, ifd: u64, tag: u16) -> (u64, usize) {
        (self.entry(ifd, tag) + 4, self.sizes().2)
    }

    /// Position and size of the `index`-th value of `tag`, inline or out of line.
    fn value_pos(&self, ifd: u64, tag: u16, index: u64) -> (u64, usize) {
        let e = self.entry(ifd, tag);
        let field_type = self.uint(e + 2, 2) as u16;
        let (count_pos, offset_size) = self.count_field(ifd, tag);
        let count = self.uint(count_pos, offset_size);
        assert!(index < count, "tag {tag} has {count} values, not {}", index + 1);
        let size = types::size(field_type).expect("known field type");
        let field = count_pos + offset_size as u64;
        let start = if count * size <= offset_size as u64 { field } else { self.uint(field, offset_size) };
        (start + index * size, size as usize)
    }

    fn value(&self, ifd: u64, tag: u16, index: u64) -> u64 {
        let (pos, size) = self.value_pos(ifd, tag, index);
        self.uint(pos, size)
    }

    fn set_value(&mut self, ifd: u64, tag: u16, index: u64, value: u64) {
        let (pos, size) = self.value_pos(ifd, tag, index);
        self.put_uint(pos, size, value);
    }

    /// File range of the `index`-th tile of the IFD at `ifd`.
    fn tile_range(&self, ifd: u64, index: u64) -> std::ops::Range<usize> {
        let offset = self.value(ifd, tags::TILE_OFFSETS, index) as usize;
        let len = self.value(ifd, tags::TILE_BYTE_COUNTS, index) as usize;
        offset..offset + len
    }
}

/// A tiny classic little-endian TIFF: header, one IFD at offset 8 whose next pointer is `next_ifd`,
/// the IFD's long values right after it, then `data` — IFD first, pixels last, as some writers do.
/// `entries(data_start)` lists (tag, SHORT or LONG, values); it is called twice (once to measure).
fn handmade_tiff(entries: impl Fn(u32) -> Vec<(u16, u16, Vec<u32>)>, next_ifd: u32, data: &[u8]) -> Vec<u8> {
    let encode = |field_type: u16, values: &[u32]| -> Vec<u8> {
        match field_type {
            types::SHORT => values.iter().flat_map(|&v| (v as u16).to_le_bytes()).collect(),
            types::LONG => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
            t => panic!("handmade_tiff writes SHORT and LONG, not type {t}"),
        }
    };
    let measure = entries(0);
    let ifd_len = 2 + 12 * measure.len() + 4;
    let long_values: usize =
        measure.iter().map(|(_, t, v)| encode(*t, v).len()).filter(|&n| n > 4).map(|n| n + n % 2).sum();
    let data_start = (8 + ifd_len + long_values) as u32;
    let mut list = entries(data_start);
    list.sort_by_key(|e| e.0);
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(list.len() as u16).to_le_bytes());
    let mut extra = Vec::new();
    for (tag, field_type, values) in &list {
        let bytes = encode(*field_type, values);
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&field_type.to_le_bytes());
        out.extend_from_slice(&(values.len() as u32).to_le_bytes());
        if bytes.len() <= 4 {
            let mut field = [0u8; 4];
            field[..bytes.len()].copy_from_slice(&bytes);
            out.extend_from_slice(&field);
        } else {
            let at = (8 + ifd_len + extra.len()) as u32;
            out.extend_from_slice(&at.to_le_bytes());
            extra.extend_from_slice(&bytes);
            if extra.len() % 2 == 1 {
                extra.push(0);
            }
        }
    }
    out.extend_from_slice(&next_ifd.to_le_bytes());
    out.extend_from_slice(&extra);
    assert_eq!(out.len(), data_start as usize);
    out.extend_from_slice(data);
    out
}

/// An uncompressed RGB tiled TIFF of `width`×`height` with `tile`-pixel tiles, IFD first. Tile i is
/// filled with the colour (i, 100, 200).
fn ifd_first_tiled(width: u32, height: u32, tile: u32) -> Vec<u8> {
    let tiles = width.div_ceil(tile) * height.div_ceil(tile);
    let tile_bytes = tile * tile * 3;
    let data: Vec<u8> = (0..tiles).flat_map(|i| [i as u8, 100, 200].repeat((tile * tile) as usize)).collect();
    handmade_tiff(
        |data_start| {
            vec![
                (tags::IMAGE_WIDTH, types::LONG, vec![width]),
                (tags::IMAGE_LENGTH, types::LONG, vec![height]),
                (tags::BITS_PER_SAMPLE, types::SHORT, vec![8, 8, 8]),
                (tags::COMPRESSION, types::SHORT, vec![1]),
                (tags::PHOTOMETRIC, types::SHORT, vec![2]),
                (tags::SAMPLES_PER_PIXEL, types::SHORT, vec![3]),
                (tags::TILE_WIDTH, types::SHORT, vec![tile]),
                (tags::TILE_LENGTH, types::SHORT, vec![tile]),
                (tags::TILE_OFFSETS, types::LONG, (0..tiles).map(|i| data_start + i * tile_bytes).collect()),
                (tags::TILE_BYTE_COUNTS, types::LONG, vec![tile_bytes; tiles as usize]),
            ]
        },
        0,
        &data,
    )
}

// ---------- not a slide at all ----------

#[test]
fn zero_byte_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.svs");
    fs::write(&path, b"").expect("write");
    let err = open_err(&path);
    assert!(matches!(err.kind, ErrorKind::Empty), "{err:?}");
    assert_error(&err, &path, &["empty", "0 bytes"]);
}

#[test]
fn text_file_is_not_a_tiff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.tif");
    fs::write(&path, "These are not pixels.\nJust some notes about the slide.\n").expect("write");
    let err = open_err(&path);
    assert!(matches!(err.kind, ErrorKind::NotTiff(_)), "{err:?}");
    // "Th" = 54 68: the message shows what the file starts with.
    assert_error(&err, &path, &["not a TIFF", "54 68"]);
}

#[test]
fn png_renamed_to_tif_is_recognised_as_png() {
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("picture.png");
    image::RgbaImage::new(4, 4).save(&png).expect("save PNG");
    let path = dir.path().join("picture.tif");
    fs::rename(&png, &path).expect("rename");
    let err = open_err(&path);
    assert!(matches!(err.kind, ErrorKind::NotTiff(_)), "{err:?}");
    assert_error(&err, &path, &["not a TIFF", "PNG"]);
}

#[test]
fn broken_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[u8], &[&str]); 6] = [
        ("short.tif", b"II*\0", &["truncated", "TIFF header", "0..8", "4 bytes"]),
        ("short-big.tif", b"MM\0+\0\x08\0\0", &["truncated", "BigTIFF header", "0..16", "8 bytes"]),
        ("version.tif", b"II\x2C\0\x08\0\0\0", &["not a TIFF", "version 44"]),
        ("no-ifd.tif", b"II*\0\0\0\0\0", &["invalid TIFF", "no IFDs"]),
        ("ifd-in-header.tif", b"II*\0\x03\0\0\0", &["invalid TIFF", "IFD offset 3"]),
        ("bad-offset-size.tif", b"II+\0\x04\0\0\0\x10\0\0\0\0\0\0\0", &["BigTIFF offset size 4"]),
    ];
    for (name, bytes, needles) in cases {
        let path = dir.path().join(name);
        fs::write(&path, bytes).expect("write");
        assert_error(&open_err(&path), &path, needles);
    }
}

#[test]
fn directory_instead_of_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slide.svs");
    fs::create_dir(&path).expect("mkdir");
    let err = open_err(&path);
    assert!(matches!(err.kind, ErrorKind::Io(_)), "{err:?}");
    assert_error(&err, &path, &["directory"]);
}

#[test]
fn nonexistent_path_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-such-slide.svs");
    let err = open_err(&path);
    match &err.kind {
        ErrorKind::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{err}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_error(&err, &path, &["no-such-slide.svs", "cannot read"]);
}

// ---------- truncated files ----------

#[test]
fn truncated_generated_slide_fails_to_open_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bigtiff in [false, true] {
        let full = generated(dir.path(), "full.tif", &SynthOptions { bigtiff, ..small(SynthCompression::Jpeg) });
        let t = TiffBytes::read(&full);
        let chain = t.chain();
        assert_eq!(chain.len(), 3, "the synthetic pyramid has 3 levels");
        let last = *chain.last().expect("IFDs");
        let len = t.bytes.len();
        // The writer puts IFDs after the pixels: every cut loses an IFD.
        let cuts = [
            ("first-100-bytes", 100, chain[0]),
            ("first-half", len / 2, chain[0]),
            ("all-but-last-ifd", last as usize, last),
            ("all-but-last-byte", len - 1, last),
        ];
        for (name, keep, missing_ifd) in cuts {
            let path = dir.path().join(format!("{name}-{bigtiff}.tif"));
            fs::write(&path, &t.bytes[..keep]).expect("write");
            let err = open_err(&path);
            assert!(matches!(err.kind, ErrorKind::Truncated { .. }), "{name}: {err:?}");
            let text = assert_error(&err, &path, &["truncated", &format!("IFD at offset {missing_ifd}")]);
            assert!(text.contains(&format!("has only {keep} bytes")), "{name}: {text}");
        }
    }
}

#[test]
fn truncated_tile_data_fails_that_tile_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 64×48 with 16-pixel tiles: 4×3 tiles of 768 bytes, IFD first.
    let full = ifd_first_tiled(64, 48, 16);
    let path = dir.path().join("cut.tif");
    // Cut in the middle of the last tile (11), so tiles 0..=10 are whole.
    let keep = full.len() - 768 / 2;
    fs::write(&path, &full[..keep]).expect("write");
    let slide = open_ok(&path);
    assert_eq!(slide.levels().len(), 1);
    let err = tile_err(&slide, 0, 3, 2);
    assert!(matches!(err.kind, ErrorKind::CorruptTile { level: 0, col: 3, row: 2, .. }), "{err:?}");
    assert_error(&err, &path, &["tile 3,2 of level 0", "truncated", &format!("has only {keep} bytes")]);
    // Every other tile reads, with its own colour.
    for i in 0..11u64 {
        let tile = slide.read_tile(0, i % 4, i / 4).unwrap_or_else(|e| panic!("tile {i}: {e}"));
        assert_eq!((tile.width, tile.height), (16, 16));
        assert_eq!(&tile.rgba[..4], &[i as u8, 100, 200, 255], "tile {i}");
    }
    // A region touching the cut tile fails naming it; one beside it still reads.
    let region_err = failed(slide.read_region(0, 40, 24, 24, 24), "region over the cut tile fails");
    assert_error(&region_err, &path, &["tile 3,2 of level 0"]);
    let region = slide.read_region(0, 0, 0, 48, 48).expect("region of whole tiles");
    assert_eq!(region.get_pixel(47, 47).0, [10, 100, 200, 255]);
    // The failure is not cached as a success and repeats.
    assert_error(&tile_err(&slide, 0, 3, 2), &path, &["tile 3,2 of level 0", "truncated"]);
}

// ---------- bad tile tables ----------

/// Generate a slide, let `patch` change its bytes (given the level-0 IFD offset), write it.
fn patched(dir: &Path, name: &str, opts: &SynthOptions, patch: impl FnOnce(&mut TiffBytes, u64)) -> PathBuf {
    let path = generated(dir, name, opts);
    let mut t = TiffBytes::read(&path);
    let level0 = t.chain()[0];
    patch(&mut t, level0);
    t.write(&path);
    path
}

/// Tile (1,0) of level 0 fails, naming itself and `needles`; other tiles of level 0, the other
/// levels and a region beside the bad tile still read; a region over it fails; asked again, it fails
/// again (a failure is not cached as pixels).
#[track_caller]
fn only_tile_1_0_fails(path: &Path, needles: &[&str]) {
    let slide = open_ok(path);
    let err = tile_err(&slide, 0, 1, 0);
    assert!(matches!(err.kind, ErrorKind::CorruptTile { level: 0, col: 1, row: 0, .. }), "{err:?}");
    let mut all = vec!["tile 1,0 of level 0"];
    all.extend_from_slice(needles);
    assert_error(&err, path, &all);
    for (col, row) in [(0, 0), (2, 0), (0, 1), (3, 2)] {
        let tile = slide.read_tile(0, col, row).unwrap_or_else(|e| panic!("tile {col},{row} after the bad one: {e}"));
        assert_eq!((tile.width, tile.height), (256, 256));
    }
    slide.read_region(0, 0, 256, 1024, 512).expect("the rows below the bad tile read");
    let region_err = failed(slide.read_region(0, 0, 0, 1024, 256), "a region over the bad tile fails");
    assert_error(&region_err, path, &["tile 1,0 of level 0"]);
    assert_error(&tile_err(&slide, 0, 1, 0), path, &all);
    for level in 1..slide.levels().len() {
        slide.read_tile(level, 0, 0).unwrap_or_else(|e| panic!("level {level} after the bad tile: {e}"));
    }
}

#[test]
fn tile_offset_past_end_of_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bigtiff in [false, true] {
        let opts = SynthOptions { bigtiff, ..small(SynthCompression::Jpeg) };
        let mut past = 0;
        let path = patched(dir.path(), &format!("offset-{bigtiff}.tif"), &opts, |t, ifd| {
            past = t.bytes.len() as u64 + 1000;
            t.set_value(ifd, tags::TILE_OFFSETS, 1, past);
        });
        only_tile_1_0_fails(&path, &["truncated", "tile data", &format!("needs bytes {past}..")]);
    }
}

#[test]
fn tile_byte_count_past_end_of_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file_len = 0;
    let path = patched(dir.path(), "count.tif", &small(SynthCompression::Jpeg), |t, ifd| {
        file_len = t.bytes.len() as u64;
        t.set_value(ifd, tags::TILE_BYTE_COUNTS, 1, file_len);
    });
    only_tile_1_0_fails(&path, &["truncated", &format!("has only {file_len} bytes")]);
}

#[test]
fn absurd_tile_byte_count_is_not_allocated() {
    isolated("absurd_tile_byte_count_is_not_allocated", || {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, count) in [("4g.tif", 0xFFFF_FFF0u64), ("100m.tif", 100 << 20)] {
            let path = patched(dir.path(), name, &small(SynthCompression::Jpeg), |t, ifd| {
                t.set_value(ifd, tags::TILE_BYTE_COUNTS, 1, count);
            });
            let checked = path.clone();
            within(10, name, move || only_tile_1_0_fails(&checked, &[&format!("byte count {count}")]));
        }
        // In BigTIFF the count can exceed 4 GiB, so that offset + count overflows u64.
        let opts = SynthOptions { bigtiff: true, ..small(SynthCompression::Jpeg) };
        let path = patched(dir.path(), "overflow.tif", &opts, |t, ifd| {
            t.set_value(ifd, tags::TILE_BYTE_COUNTS, 1, u64::MAX - 7);
        });
        let checked = path.clone();
        within(10, "overflow", move || only_tile_1_0_fails(&checked, &["byte count"]));
    });
}

#[test]
fn absurd_tile_table_length_is_refused_without_allocating() {
    isolated("absurd_tile_table_length_is_refused_without_allocating", || {
        let dir = tempfile::tempdir().expect("tempdir");
        // TileOffsets claiming 0xFFFF_FFF0 values (64 GiB as BigTIFF LONG8): refused before reading.
        for bigtiff in [false, true] {
            let opts = SynthOptions { bigtiff, ..small(SynthCompression::Jpeg) };
            let path = patched(dir.path(), &format!("table-{bigtiff}.tif"), &opts, |t, ifd| {
                let (pos, size) = t.count_field(ifd, tags::TILE_OFFSETS);
                t.put_uint(pos, size, 0xFFFF_FFF0);
            });
            let checked = path.clone();
            let err = within(10, "huge tile table", move || {
                let slide = open_ok(&checked);
                tile_err(&slide, 0, 0, 0)
            });
            assert_error(&err, &path, &["tag 324", "4294967280 values"]);
        }
        // A table shorter than the tile grid needs.
        let path = patched(dir.path(), "short-table.tif", &small(SynthCompression::Jpeg), |t, ifd| {
            let (pos, size) = t.count_field(ifd, tags::TILE_BYTE_COUNTS);
            t.put_uint(pos, size, 5);
        });
        let slide = open_ok(&path);
        assert_error(&tile_err(&slide, 0, 0, 0), &path, &["tag 325", "lists 5 chunks", "needs 12"]);
        // Other levels are unaffected.
        slide.read_tile(1, 0, 0).expect("level 1 has its own table");
    });
}

// ---------- corrupt compressed data ----------

/// Position of the first JPEG marker `marker` (0xFF, marker) in `data`.
fn find_marker(data: &[u8], marker: u8) -> usize {
    data.windows(2).position(|w| w == [0xFF, marker]).unwrap_or_else(|| panic!("no FF {marker:02X} marker"))
}

#[test]
fn corrupt_jpeg_tile_start_fails_that_tile_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = patched(dir.path(), "garbage.tif", &small(SynthCompression::Jpeg), |t, ifd| {
        let range = t.tile_range(ifd, 1);
        for (i, b) in t.bytes[range.start..range.start + 64].iter_mut().enumerate() {
            *b = if i % 2 == 0 { 0xFF } else { 0x00 };
        }
    });
    only_tile_1_0_fails(&path, &["JPEG", "SOI"]);
}

#[test]
fn corrupt_jpeg_headers_fail_that_tile_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    type Patch = fn(&mut [u8]);
    let patches: [(&str, Patch); 4] = [
        // SOF segment length 0xFFFF: runs past the data ("Bogus marker length" in libjpeg).
        ("sof-length", |d| {
            let sof = find_marker(d, 0xC0);
            d[sof + 2..sof + 4].copy_from_slice(&[0xFF, 0xFF]);
        }),
        // SOF with no components.
        ("sof-components", |d| {
            let sof = find_marker(d, 0xC0);
            d[sof + 9] = 0;
        }),
        // SOS naming a component that does not exist, with bad table selectors.
        ("sos-component", |d| {
            let sos = find_marker(d, 0xDA);
            d[sos + 5] = 0x77;
            d[sos + 6] = 0xEE;
        }),
        // No SOS at all: the scan header is overwritten.
        ("sos-gone", |d| {
            let sos = find_marker(d, 0xDA);
            d[sos..sos + 14].fill(0);
        }),
    ];
    for (name, patch) in patches {
        let path = patched(dir.path(), &format!("{name}.tif"), &small(SynthCompression::Jpeg), |t, ifd| {
            let range = t.tile_range(ifd, 1);
            patch(&mut t.bytes[range]);
        });
        let checked = path.clone();
        within(10, name, move || only_tile_1_0_fails(&checked, &["JPEG"]));
    }
}

#[test]
fn jpeg_tile_cut_short_by_its_byte_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Keep only the first bytes of tile (1,0): inside the SOF, inside the SOS, inside the scan data.
    for keep in [20u64, 120, 400, 1000] {
        let path = patched(dir.path(), &format!("cut-{keep}.tif"), &small(SynthCompression::Jpeg), |t, ifd| {
            t.set_value(ifd, tags::TILE_BYTE_COUNTS, 1, keep);
        });
        only_tile_1_0_fails(&path, &["JPEG"]);
    }
}

#[test]
fn jpeg_claiming_a_huge_size_is_not_allocated() {
    isolated("jpeg_claiming_a_huge_size_is_not_allocated", || {
        let dir = tempfile::tempdir().expect("tempdir");
        // The tile's SOF says 16000×16000 (1 GB as RGBA) though the tile is 256×256 and its data tiny:
        // decoding must be refused (or bounded by the tile) before the decoder allocates the output.
        let path = patched(dir.path(), "huge-sof.tif", &small(SynthCompression::Jpeg), |t, ifd| {
            let range = t.tile_range(ifd, 1);
            let sof = range.start + find_marker(&t.bytes[range], 0xC0);
            t.bytes[sof + 5..sof + 9].copy_from_slice(&[0x3E, 0x80, 0x3E, 0x80]);
        });
        let checked = path.clone();
        let result = within(30, "huge SOF", move || {
            let slide = open_ok(&checked);
            let tile = slide.read_tile(0, 1, 0).map(|t| (t.width, t.height));
            let neighbour = slide.read_tile(0, 0, 0).map(|t| (t.width, t.height));
            (tile.map_err(|e| e.to_string()), neighbour.map_err(|e| e.to_string()))
        });
        eprintln!("tile with a 16000×16000 SOF: {:?}", result.0);
        assert_eq!(result.1, Ok((256, 256)), "the neighbouring tile still reads");
        match result.0 {
            Err(text) => {
                assert!(text.starts_with(&format!("{}: tile 1,0 of level 0", path.display())), "{text}");
            }
            Ok(size) => assert_eq!(size, (256, 256), "a decoded tile keeps the tile size"),
        }
    });
}

#[test]
fn garbage_inside_jpeg_entropy_data_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clean = generated(dir.path(), "clean.tif", &small(SynthCompression::Jpeg));
    let pristine = open_ok(&clean);
    let reference = pristine.read_tile(0, 0, 0).expect("clean tile");
    let mut rng = Rng(0x5EED);
    for round in 0..8 {
        let path = patched(dir.path(), &format!("noise-{round}.tif"), &small(SynthCompression::Jpeg), |t, ifd| {
            let range = t.tile_range(ifd, 1);
            let scan = range.start + find_marker(&t.bytes[range.clone()], 0xDA) + 14;
            let (from, to) = (scan, range.end - 2);
            for _ in 0..64 {
                let at = from + rng.below((to - from) as u64) as usize;
                t.bytes[at] = rng.next_u64() as u8;
            }
        });
        let slide = open_ok(&path);
        // The decoder may tolerate noise in the entropy-coded data; it must never panic.
        match slide.read_tile(0, 1, 0) {
            Ok(tile) => assert_eq!((tile.width, tile.height), (256, 256)),
            Err(e) => {
                assert_error(&e, &path, &["tile 1,0 of level 0", "JPEG"]);
            }
        }
        let same = slide.read_tile(0, 0, 0).expect("an untouched tile reads");
        assert!(same.rgba == reference.rgba, "round {round}: the untouched tile decodes exactly as before");
    }
}

#[test]
fn corrupt_deflate_and_lzw_tiles_fail_that_tile_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (compression, needle) in [(SynthCompression::Deflate, "Deflate"), (SynthCompression::Lzw, "LZW")] {
        let path = patched(dir.path(), &format!("{needle}.tif"), &small(compression), |t, ifd| {
            let range = t.tile_range(ifd, 1);
            // Garbage from the start: no zlib header for Deflate, invalid codes for LZW.
            for (i, b) in t.bytes[range].iter_mut().enumerate() {
                *b = [0xFF, 0xFE, 0x13, 0x00][i % 4];
            }
        });
        only_tile_1_0_fails(&path, &[]);
        let slide = open_ok(&path);
        let text = assert_error(&tile_err(&slide, 0, 1, 0), &path, &[]);
        assert!(text.contains(needle) || text.contains("bytes of pixel data"), "{text}");
    }
    // An uncompressed tile cut short by its byte count.
    let path = patched(dir.path(), "raw.tif", &small(SynthCompression::None), |t, ifd| {
        t.set_value(ifd, tags::TILE_BYTE_COUNTS, 1, 1000);
    });
    only_tile_1_0_fails(&path, &["1000 bytes of pixel data", "196608"]);
}

// ---------- IFD loops ----------

#[test]
fn ifd_pointing_to_itself_is_a_loop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = handmade_tiff(
        |_| {
            vec![
                (tags::IMAGE_WIDTH, types::LONG, vec![16]),
                (tags::IMAGE_LENGTH, types::LONG, vec![16]),
                (tags::TILE_WIDTH, types::SHORT, vec![16]),
                (tags::TILE_LENGTH, types::SHORT, vec![16]),
            ]
        },
        8,
        &[],
    );
    let path = dir.path().join("self-loop.tif");
    fs::write(&path, bytes).expect("write");
    let checked = path.clone();
    let err = within(10, "self loop", move || open_err(&checked));
    assert!(matches!(err.kind, ErrorKind::IfdLoop(8)), "{err:?}");
    assert_error(&err, &path, &["IFD loop", "offset 8"]);
}

#[test]
fn ifd_chain_looping_back_is_refused_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (bigtiff, order) in [(false, ByteOrder::Little), (true, ByteOrder::Big)] {
        let opts = SynthOptions { bigtiff, byte_order: order, ..small(SynthCompression::Jpeg) };
        let mut targets = Vec::new();
        for to in ["first", "self"] {
            let path = patched(dir.path(), &format!("loop-{to}-{bigtiff}.tif"), &opts, |t, first| {
                let last = *t.chain().last().expect("IFDs");
                let target = if to == "first" { first } else { last };
                let (pos, size) = (t.next_pointer(last), t.sizes().2);
                t.put_uint(pos, size, target);
                targets.push(target);
            });
            let target = *targets.last().expect("patched");
            let checked = path.clone();
            let err = within(10, "IFD loop", move || open_err(&checked));
            assert!(matches!(err.kind, ErrorKind::IfdLoop(at) if at == target), "{err:?}");
            assert_error(&err, &path, &["IFD loop", &format!("offset {target}")]);
        }
    }
}

/// The levels of a slide, and a sub-level's pixels.
fn levels_and_pixels(path: &Path) -> (Vec<(u64, u64)>, Vec<u8>) {
    let slide = Slide::open(path).unwrap_or_else(|e| panic!("{e}"));
    let levels: Vec<(u64, u64)> = slide.levels().iter().map(|l| (l.width, l.height)).collect();
    let last = slide.levels().len() - 1;
    let region = slide.read_region(last, 0, 0, 64, 64).unwrap_or_else(|e| panic!("{e}"));
    (levels, region.into_raw())
}

/// tifffile and libtiff list every sub-level in `SubIFDs` and also chain them through their next
/// pointers; the same IFDs reached by two legal paths are one pyramid, not a loop.
#[test]
fn subifds_listed_and_chained_are_one_pyramid() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 1,024 px with 256-px tiles: 2 sub-levels; 4,096 px with 128-px tiles: 5.
    for (width, height, tile, subs) in [(1024, 768, 256, 2), (4096, 3072, 128, 5)] {
        for layout in [Layout::Subifd, Layout::Ome] {
            for (byte_order, bigtiff) in [(ByteOrder::Little, false), (ByteOrder::Big, false), (ByteOrder::Big, true)] {
                let opts = SynthOptions {
                    width,
                    height,
                    tile,
                    layout,
                    byte_order,
                    bigtiff,
                    compression: SynthCompression::Jpeg,
                    ..Default::default()
                };
                let name = format!("{width}-{layout:?}-{byte_order:?}-{bigtiff}");
                let listed = generated(dir.path(), &format!("{name}-listed.tif"), &opts);
                let expected = levels_and_pixels(&listed);
                assert_eq!(expected.0.len(), subs + 1, "{name}");
                // Sub-IFD i's next pointer names sub-IFD i+1 as well.
                let chained = patched(dir.path(), &format!("{name}-chained.tif"), &opts, |t, first| {
                    for i in 0..subs as u64 - 1 {
                        let (this, next) = (t.value(first, tags::SUB_IFDS, i), t.value(first, tags::SUB_IFDS, i + 1));
                        let (pos, size) = (t.next_pointer(this), t.sizes().2);
                        t.put_uint(pos, size, next);
                    }
                });
                let checked = chained.clone();
                let got = within(10, "chained SubIFDs", move || levels_and_pixels(&checked));
                assert_eq!(got, expected, "{name}: chained and listed SubIFDs are the same pyramid");
                // The main chain also runs into the pyramid (IFD 0 → sub-IFD 1): still the same.
                let merged = patched(dir.path(), &format!("{name}-merged.tif"), &opts, |t, first| {
                    let sub = t.value(first, tags::SUB_IFDS, 1);
                    let (pos, size) = (t.next_pointer(first), t.sizes().2);
                    t.put_uint(pos, size, sub);
                });
                let checked = merged.clone();
                let got = within(10, "main chain into SubIFDs", move || levels_and_pixels(&checked));
                assert_eq!(got, expected, "{name}: a level reached from the main chain too");
            }
        }
    }
}

/// A damaged `SubIFDs` entry (offsets zeroed, or the tag retyped) must not make a 3-level slide
/// open silently as one level: the levels that remain open, and a warning property says why.
#[test]
fn damaged_subifds_are_reported_not_hidden() {
    let dir = tempfile::tempdir().expect("tempdir");
    for layout in [Layout::Subifd, Layout::Ome] {
        let opts = SynthOptions { layout, ..small(SynthCompression::Jpeg) };
        let zeroed = patched(dir.path(), &format!("zeroed-{layout:?}.tif"), &opts, |t, first| {
            for i in 0..2 {
                t.set_value(first, tags::SUB_IFDS, i, 0);
            }
        });
        let retyped = patched(dir.path(), &format!("retyped-{layout:?}.tif"), &opts, |t, first| {
            // The entry's type field (2 bytes after the tag) becomes RATIONAL: unreadable as offsets.
            let pos = t.entry(first, tags::SUB_IFDS) + 2;
            t.put_uint(pos, 2, u64::from(types::RATIONAL));
        });
        for (path, needle) in [(zeroed, "entry 0 is offset 0"), (retyped, "SubIFDs tag is unreadable")] {
            let slide = Slide::open(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(slide.levels().len(), 1, "{}", path.display());
            let warning = slide.properties().values.get("wsiview.warning.tiff.SubIFDs").cloned().unwrap_or_default();
            assert!(warning.contains(needle), "{}: {warning:?}", path.display());
            // The command line says so too, and still succeeds.
            let out = wsiview_within(10, &["info".as_ref(), path.as_os_str()]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            assert!(stderr.starts_with("wsiview: warning: ") && stderr.contains(needle), "{stderr}");
        }
    }
}

#[test]
fn tifffile_chained_subifd_fixture() {
    let Some(dir) = fixtures() else { return };
    let path = dir.join("bugreports/ome-subifds-chained.ome.tif");
    let slide = Slide::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let levels: Vec<(u64, u64)> = slide.levels().iter().map(|l| (l.width, l.height)).collect();
    assert_eq!(levels, vec![(2048, 1536), (1024, 768), (512, 384)]);
    let downsamples: Vec<f64> = slide.levels().iter().map(|l| l.downsample).collect();
    assert_eq!(downsamples, vec![1.0, 2.0, 4.0]);
    assert_eq!((slide.properties().mpp_x, slide.properties().mpp_y), (Some(0.25), Some(0.25)));
    // Each level is the one above it, halved (JPEG and resampling tolerance).
    for level in 1..3 {
        let ds = 1u32 << level;
        let (w, h) = (256 / ds, 256 / ds);
        let fine = slide.read_region(0, 512, 512, 256, 256).unwrap_or_else(|e| panic!("{e}"));
        let coarse = slide.read_region(level, 512, 512, w, h).unwrap_or_else(|e| panic!("{e}"));
        let shrunk = image::imageops::resize(&fine, w, h, image::imageops::FilterType::Triangle);
        let mean = shrunk.as_raw().iter().zip(coarse.as_raw()).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>()
            / shrunk.as_raw().len() as f64;
        assert!(mean < 12.0, "level {level} differs from level 0 halved: mean difference {mean}");
    }
}

#[test]
fn subifd_pointing_back_to_the_main_ifd() {
    let dir = tempfile::tempdir().expect("tempdir");
    for layout in [Layout::Subifd, Layout::Ome] {
        let opts = SynthOptions { layout, ..small(SynthCompression::Jpeg) };
        // (a) The chain of the last SubIFD continues into the main IFD.
        let path = patched(dir.path(), &format!("sub-chain-{layout:?}.tif"), &opts, |t, first| {
            let last_sub = t.value(first, tags::SUB_IFDS, 1);
            let (pos, size) = (t.next_pointer(last_sub), t.sizes().2);
            t.put_uint(pos, size, first);
        });
        let checked = path.clone();
        let err = within(10, "SubIFD chain loop", move || open_err(&checked));
        assert!(matches!(err.kind, ErrorKind::IfdLoop(_)), "{err:?}");
        assert_error(&err, &path, &["IFD loop"]);

        // (b) A SubIFD that points to itself.
        let path = patched(dir.path(), &format!("sub-self-{layout:?}.tif"), &opts, |t, first| {
            let sub = t.value(first, tags::SUB_IFDS, 0);
            let (pos, size) = (t.next_pointer(sub), t.sizes().2);
            t.put_uint(pos, size, sub);
        });
        let checked = path.clone();
        let err = within(10, "SubIFD self loop", move || open_err(&checked));
        assert!(matches!(err.kind, ErrorKind::IfdLoop(_)), "{err:?}");
        assert_error(&err, &path, &["IFD loop"]);

        // (c) The SubIFD list itself names the main IFD: it must not become a second level 0, nor
        // recurse. Refusing it as a loop is fine; so is skipping it.
        let path = patched(dir.path(), &format!("sub-list-{layout:?}.tif"), &opts, |t, first| {
            t.set_value(first, tags::SUB_IFDS, 0, first);
        });
        let checked = path.clone();
        let outcome = within(10, "SubIFD list loop", move || {
            Slide::open(&checked).map(|s| s.levels().iter().map(|l| (l.width, l.height)).collect::<Vec<_>>())
        });
        match outcome {
            Err(err) => {
                assert!(matches!(err.kind, ErrorKind::IfdLoop(_)), "{err:?}");
                assert_error(&err, &path, &["IFD loop"]);
            }
            Ok(levels) => assert_eq!(levels, vec![(1024, 768), (256, 192)], "the looping entry is skipped"),
        }
    }
}

// ---------- files that are not files ----------

/// Run the `wsiview` binary, killing it after `secs` (a hang fails the test).
fn wsiview_within(secs: u64, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsiview"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run wsiview");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("wsiview {args:?} did not finish within {secs} s (blocked?)");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `mkfifo x.svs; wsiview info x.svs` blocked forever: a FIFO (or a folder) named as a slide,
/// annotation file or report is a clear error at once.
#[cfg(unix)]
#[test]
fn a_fifo_or_folder_named_as_input_is_an_error_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slide = generated(dir.path(), "real.tif", &small(SynthCompression::Jpeg));
    for name in ["x.svs", "x.geojson", "x.report.json"] {
        let status = Command::new("mkfifo").arg(dir.path().join(name)).status().expect("mkfifo");
        assert!(status.success());
    }
    let folder = dir.path().join("folder.svs");
    fs::create_dir(&folder).expect("mkdir");
    let p = |name: &str| dir.path().join(name).into_os_string();
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (vec!["info".into(), p("x.svs")], "FIFO"),
        (vec!["thumbnail".into(), p("x.svs"), "--max-size".into(), "64".into(), "-o".into(), p("t.png")], "FIFO"),
        (vec!["info".into(), folder.clone().into_os_string()], "folder"),
        (vec!["annotations".into(), "measure".into(), p("x.geojson"), "--mpp".into(), "0.25".into()], "FIFO"),
        (vec!["verify".into(), p("x.report.json"), slide.clone().into_os_string()], "FIFO"),
        (vec!["verify".into(), p("x.report.json"), p("x.svs")], "FIFO"),
    ];
    for (args, needle) in cases {
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let out = wsiview_within(10, &refs);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle) && stderr.lines().count() == 1, "{args:?}: {stderr}");
    }
}

/// Messages that quote a file's content escape its control bytes: one clean line on a terminal.
#[test]
fn messages_never_carry_raw_control_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slide = generated(dir.path(), "s.tif", &small(SynthCompression::Jpeg));
    let report = dir.path().join("r.report.json");
    fs::write(&report, "{\"schema\": \"wsiview.report/1\", \"status\": \"fi\\u001enal\\u001b[31m\"}").expect("write");
    let geojson = dir.path().join("a.geojson");
    fs::write(&geojson, "{\"type\": \"Feat\\u001eure\"}").expect("write");
    let out_dir = dir.path().join("out");
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["verify".into(), report.clone().into_os_string(), slide.into_os_string()],
        vec!["annotations".into(), "measure".into(), geojson.into_os_string(), "--mpp".into(), "0.25".into()],
        vec!["consolidate".into(), dir.path().as_os_str().to_owned(), "--out".into(), out_dir.clone().into_os_string()],
    ];
    for args in cases {
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let out = wsiview_within(10, &refs);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains('\u{1e}') && !stderr.contains('\u{1b}'), "{args:?}: {stderr:?}");
    }
    let summary = fs::read_to_string(out_dir.join("summary.json")).expect("summary");
    let v: serde_json::Value = serde_json::from_str(&summary).expect("json");
    let reason = v["invalid"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("\\u{1e}") && !reason.contains('\u{1e}'), "{reason:?}");
}

// ---------- absurd sizes and unsupported pixels ----------

#[test]
fn absurd_image_dimensions_are_refused() {
    isolated("absurd_image_dimensions_are_refused", || {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, width, height, needle) in [
            ("wide.tif", 0xFFFF_FFFFu64, 768u64, "image size 4294967295×768"),
            ("zero.tif", 1024, 0, "image size 1024×0"),
        ] {
            let path = patched(dir.path(), name, &small(SynthCompression::Jpeg), |t, ifd| {
                t.set_value(ifd, tags::IMAGE_WIDTH, 0, width);
                t.set_value(ifd, tags::IMAGE_LENGTH, 0, height);
            });
            let checked = path.clone();
            let err = within(10, name, move || open_err(&checked));
            assert!(matches!(err.kind, ErrorKind::Unsupported { ifd: 0, .. }), "{err:?}");
            assert_error(&err, &path, &["unsupported", "IFD 0", needle]);
        }
    });
}

#[test]
fn huge_but_legal_dimensions_with_a_tiny_tile_table() {
    isolated("huge_but_legal_dimensions_with_a_tiny_tile_table", || {
        let dir = tempfile::tempdir().expect("tempdir");
        // 16777216 × 16777216 with 256-pixel tiles needs 2^32 tiles; the table holds 12.
        let path = patched(dir.path(), "huge.tif", &small(SynthCompression::Jpeg), |t, ifd| {
            t.set_value(ifd, tags::IMAGE_WIDTH, 0, 1 << 24);
            t.set_value(ifd, tags::IMAGE_LENGTH, 0, 1 << 24);
        });
        let checked = path.clone();
        let (levels, tile, region, other_level) = within(20, "huge dimensions", move || {
            let slide = open_ok(&checked);
            let levels = slide.levels().iter().map(|l| (l.width, l.height)).collect::<Vec<_>>();
            let tile = tile_err(&slide, 0, 0, 0);
            let region = slide.read_region(0, 0, 0, 512, 512).err();
            let other = slide.read_tile(1, 0, 0).map(|t| t.width).map_err(|e| e.to_string());
            (levels, tile, region, other)
        });
        assert_eq!(levels[0], (1 << 24, 1 << 24));
        assert_error(&tile, &path, &["lists 12 chunks", "needs 4294967296"]);
        let region = region.expect("a region of the huge level fails");
        assert_error(&region, &path, &["needs 4294967296"]);
        assert_eq!(other_level, Ok(256), "the other levels still read");
    });
}

#[test]
fn absurd_tile_size_is_unsupported() {
    isolated("absurd_tile_size_is_unsupported", || {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, tile_width, needle) in
            [("65536.tif", 65536u64, "tile size 65536×256"), ("zero.tif", 0, "tile size 0×256")]
        {
            let path = patched(dir.path(), name, &small(SynthCompression::Jpeg), |t, ifd| {
                t.set_value(ifd, tags::TILE_WIDTH, 0, tile_width);
            });
            let err = open_err(&path);
            assert!(matches!(err.kind, ErrorKind::Unsupported { ifd: 0, .. }), "{err:?}");
            assert_error(&err, &path, &["unsupported", needle]);
        }
    });
}

#[test]
fn unsupported_compression_names_the_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (bigtiff, order) in
        [(false, ByteOrder::Little), (false, ByteOrder::Big), (true, ByteOrder::Little), (true, ByteOrder::Big)]
    {
        let opts = SynthOptions { bigtiff, byte_order: order, ..small(SynthCompression::Jpeg) };
        // JPEG 2000 outside Aperio's codes (34712, as tifffile writes it) is not read.
        let path = patched(dir.path(), &format!("j2k-{bigtiff}-{order:?}.tif"), &opts, |t, ifd| {
            t.set_value(ifd, tags::COMPRESSION, 0, 34712);
        });
        let err = open_err(&path);
        assert!(matches!(err.kind, ErrorKind::UnsupportedCompression { ifd: 0, value: 34712, .. }), "{err:?}");
        assert_error(&err, &path, &["unsupported", "compression 34712", "JPEG 2000"]);
    }
}

// ---------- associated images ----------

/// Offset of the main-chain IFD whose ImageDescription contains `word` (the SVS label or macro).
fn ifd_described(t: &TiffBytes, word: &str) -> u64 {
    let reader = t.reader();
    t.chain()
        .into_iter()
        .find(|&offset| {
            let ifd = reader.read_ifd(offset).expect("IFD");
            reader.get_string(&ifd, tags::IMAGE_DESCRIPTION).ok().flatten().is_some_and(|d| d.contains(word))
        })
        .unwrap_or_else(|| panic!("no IFD described as {word:?}"))
}

fn svs(bigtiff: bool) -> SynthOptions {
    SynthOptions { layout: Layout::Svs, bigtiff, ..small(SynthCompression::Jpeg) }
}

#[test]
fn corrupt_associated_image_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut past = 0;
    let path = patched(dir.path(), "label.svs", &svs(false), |t, _| {
        let label = ifd_described(t, "label");
        past = t.bytes.len() as u64 + 10;
        t.set_value(label, tags::STRIP_OFFSETS, 0, past);
    });
    let slide = open_ok(&path);
    assert_eq!(slide.associated_names(), ["thumbnail", "label", "macro"]);
    let err = failed(slide.read_associated("label"), "the label's strip is past the end");
    assert!(matches!(&err.kind, ErrorKind::CorruptAssociated { name, .. } if name == "label"), "{err:?}");
    assert_error(&err, &path, &["associated image \"label\"", "truncated", &format!("needs bytes {past}..")]);
    // The rest of the slide is unaffected.
    assert_eq!(slide.read_associated("macro").expect("macro reads").dimensions(), (1280, 431));
    slide.read_associated("thumbnail").expect("thumbnail reads");
    slide.read_tile(0, 0, 0).expect("tiles read");
    let err = failed(slide.read_associated("barcode"), "no such image");
    assert_error(&err, &path, &["\"barcode\"", "available: thumbnail, label, macro"]);
}

#[test]
fn absurd_associated_image_sizes_are_refused() {
    isolated("absurd_associated_image_sizes_are_refused", || {
        let dir = tempfile::tempdir().expect("tempdir");
        // A label claiming 4294967295×463 pixels.
        let path = patched(dir.path(), "wide-label.svs", &svs(false), |t, _| {
            let label = ifd_described(t, "label");
            t.set_value(label, tags::IMAGE_WIDTH, 0, 0xFFFF_FFFF);
        });
        let slide = open_ok(&path);
        let err = failed(slide.read_associated("label"), "a 4294967295-wide label is refused");
        assert_error(&err, &path, &["associated image \"label\"", "4294967295×463"]);
        slide.read_associated("macro").expect("macro reads");

        // A BigTIFF label turned into a tiled image whose LONG8 tile size is 2^40 × 2^40: the tile
        // area overflows u64. Two entries that do not matter here (NewSubfileType, PlanarConfiguration)
        // are rewritten as TileWidth and TileLength.
        let path = patched(dir.path(), "tiled-label.svs", &svs(true), |t, _| {
            let label = ifd_described(t, "label");
            for (old, new) in
                [(tags::NEW_SUBFILE_TYPE, tags::TILE_WIDTH), (tags::PLANAR_CONFIGURATION, tags::TILE_LENGTH)]
            {
                let e = t.entry(label, old);
                t.put_uint(e, 2, u64::from(new));
                t.put_uint(e + 2, 2, u64::from(types::LONG8));
                t.put_uint(e + 4, 8, 1);
                t.put_uint(e + 12, 8, 1 << 40);
            }
        });
        let checked = path.clone();
        let result = within(10, "tiled label", move || {
            let slide = open_ok(&checked);
            let label = slide.read_associated("label").map(|i| i.dimensions());
            let tile = slide.read_tile(0, 0, 0).map(|t| t.width);
            (label, tile.map_err(|e| e.to_string()))
        });
        let err = failed(result.0, "a label with 2^40-pixel tiles is refused");
        assert_error(&err, &path, &["associated image \"label\""]);
        assert_eq!(result.1, Ok(256), "level 0 still reads");
    });
}

// ---------- bad requests on a good slide ----------

#[test]
fn extreme_region_requests_do_not_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = generated(dir.path(), "good.tif", &small(SynthCompression::Jpeg));
    let slide = open_ok(&path);
    // Far outside the slide: transparent, whatever the level.
    for level in 0..slide.levels().len() {
        for (x, y) in [(i64::MIN, 0), (0, i64::MIN), (-1_000_000, -1_000_000), (1 << 40, 0), (i64::MAX, i64::MAX)] {
            let checked = path.clone();
            let outcome = within(10, "extreme region", move || {
                let slide = open_ok(&checked);
                slide.read_region(level, x, y, 64, 64).map(|img| img.pixels().all(|p| p.0 == [0, 0, 0, 0]))
            });
            match outcome {
                Ok(transparent) => assert!(transparent, "a region outside the slide is transparent ({x}, {y})"),
                Err(e) => panic!("a region outside the slide at ({x}, {y}) should be transparent, not {e}"),
            }
        }
    }
    let err = failed(slide.read_region(0, 0, 0, 100_000, 100_000), "10^10 pixels are refused");
    assert!(matches!(err.kind, ErrorKind::TooLarge(_)), "{err:?}");
    assert_error(&err, &path, &["too large", "100000×100000"]);
    let err = failed(slide.read_region(7, 0, 0, 10, 10), "no level 7");
    assert_error(&err, &path, &["level 7 does not exist", "3 levels"]);
    let err = failed(slide.read_tile(0, 4, 0), "no column 4");
    assert_error(&err, &path, &["tile 4,0 is outside level 0", "4×3 tiles"]);
    let err = failed(slide.read_tile(0, u64::MAX, u64::MAX), "no such tile");
    assert!(matches!(err.kind, ErrorKind::NoSuchTile { .. }), "{err:?}");
}

// ---------- fuzz-style sweeps: many small corruptions, no panic, no hang ----------

/// Open `path` and read every tile of every level (up to 8×8 per level), a small region and the
/// associated images; the malformed error messages met on the way.
fn read_everything(path: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |result: Result<(), SlideError>| {
        if let Err(e) = result {
            problems.extend(malformed(&e, path));
        }
    };
    let slide = match Slide::open(path) {
        Ok(s) => s,
        Err(e) => {
            check(Err(e));
            return problems;
        }
    };
    for (level, info) in slide.levels().iter().enumerate() {
        for row in 0..info.tiles_down().min(8) {
            for col in 0..info.tiles_across().min(8) {
                check(slide.read_tile(level, col, row).map(drop));
            }
        }
    }
    check(slide.read_region(0, 0, 0, 300, 300).map(drop));
    for name in slide.associated_names() {
        check(slide.read_associated(&name).map(drop));
    }
    problems
}

/// Fail listing the problems found, a few of each kind.
#[track_caller]
fn assert_no_problems(problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let mut shown: Vec<&String> = Vec::new();
    for p in problems {
        let kind = p.split(':').next().unwrap_or_default();
        if shown.iter().filter(|s| s.split(':').next().unwrap_or_default() == kind).count() < 3 {
            shown.push(p);
        }
    }
    let list: Vec<&str> = shown.iter().map(|s| s.as_str()).collect();
    panic!("{} problems, for example:\n{}", problems.len(), list.join("\n"));
}

#[test]
fn random_damage_to_tile_data_spares_other_tiles() {
    isolated("random_damage_to_tile_data_spares_other_tiles", || {
        let dir = tempfile::tempdir().expect("tempdir");
        let compressions =
            [SynthCompression::Jpeg, SynthCompression::Deflate, SynthCompression::Lzw, SynthCompression::None];
        let mut rng = Rng(0xDA7A);
        let mut problems = Vec::new();
        for compression in compressions {
            let opts = SynthOptions { width: 512, height: 512, tile: 128, compression, ..Default::default() };
            let clean = generated(dir.path(), "clean.tif", &opts);
            let reference = open_ok(&clean);
            let pristine: Vec<Arc<_>> =
                (0..16).map(|i| reference.read_tile(0, i % 4, i / 4).expect("clean tile")).collect();
            let t = TiffBytes::read(&clean);
            let level0 = t.chain()[0];
            for round in 0..25 {
                let victim = rng.below(16);
                let mut damaged = TiffBytes { bytes: t.bytes.clone(), order: t.order, bigtiff: t.bigtiff };
                let range = t.tile_range(level0, victim);
                for _ in 0..1 + rng.below(32) {
                    let at = range.start + rng.below(range.len() as u64) as usize;
                    damaged.bytes[at] = rng.next_u64() as u8;
                }
                let path = dir.path().join(format!("damaged-{compression:?}-{round}.tif"));
                damaged.write(&path);
                let what = format!("{compression:?} round {round} (tile {victim} damaged)");
                let checked = path.clone();
                let read = guarded(20, &what, move || {
                    let slide = open_ok(&checked);
                    (0..16u64).map(|i| slide.read_tile(0, i % 4, i / 4)).collect::<Vec<_>>()
                });
                let tiles = match read {
                    Ok(tiles) => tiles,
                    Err(panic) => {
                        problems.push(format!("{what}: PANIC {panic}"));
                        continue;
                    }
                };
                for (i, tile) in (0..16u64).zip(tiles) {
                    match tile {
                        Ok(tile) if i != victim => {
                            assert!(tile.rgba == pristine[i as usize].rgba, "{what}: tile {i} changed")
                        }
                        Ok(tile) => assert_eq!((tile.width, tile.height), (128, 128)),
                        Err(e) => {
                            assert_eq!(i, victim, "{what}: an undamaged tile failed: {e}");
                            let names_tile = e.to_string().contains(&format!("tile {},{} of level 0", i % 4, i / 4));
                            let problem =
                                malformed(&e, &path).or((!names_tile).then(|| format!("does not name the tile: {e}")));
                            problems.extend(problem.map(|p| format!("{what}: {p}")));
                        }
                    }
                }
            }
        }
        assert_no_problems(&problems);
    });
}

#[test]
fn random_damage_to_ifds_never_panics_or_hangs() {
    isolated("random_damage_to_ifds_never_panics_or_hangs", || {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = Rng(0x1FD5);
        let mut problems = Vec::new();
        let variants = [
            (Layout::Chain, false, ByteOrder::Little),
            (Layout::Subifd, true, ByteOrder::Big),
            (Layout::Ome, false, ByteOrder::Big),
            (Layout::Svs, true, ByteOrder::Little),
        ];
        for (layout, bigtiff, byte_order) in variants {
            let opts = SynthOptions { layout, bigtiff, byte_order, ..small(SynthCompression::Jpeg) };
            let clean = generated(dir.path(), "clean.tif", &opts);
            let t = TiffBytes::read(&clean);
            // Everything from the first IFD-related byte on: IFDs and their long values (written after pixels).
            let chain = t.chain();
            let level0 = chain[0];
            let tiles = t.reader().read_ifd(level0).expect("level 0").get(tags::TILE_OFFSETS).map(|e| e.count);
            let table = t.value_pos(level0, tags::TILE_OFFSETS, 0).0;
            let meta_start = chain.iter().copied().chain([table]).min().expect("offsets") as usize;
            assert!(tiles.is_some() && meta_start < t.bytes.len());
            for round in 0..150 {
                let mut damaged = t.bytes.clone();
                for _ in 0..1 + rng.below(6) {
                    let at = meta_start + rng.below((damaged.len() - meta_start) as u64) as usize;
                    damaged[at] = match rng.below(4) {
                        0 => 0xFF,
                        1 => 0,
                        _ => rng.next_u64() as u8,
                    };
                }
                let path = dir.path().join(format!("ifd-{layout:?}-{round}.tif"));
                fs::write(&path, &damaged).expect("write");
                let checked = path.clone();
                let what = format!("{layout:?} round {round}");
                match guarded(20, &what, move || read_everything(&checked)) {
                    Ok(found) => problems.extend(found.into_iter().map(|p| format!("{what}: {p}"))),
                    Err(panic) => problems.push(format!("{what}: PANIC {panic}")),
                }
            }
        }
        assert_no_problems(&problems);
    });
}

// ---------- real files from other tools ----------

#[test]
fn fixture_unopenable_tiff_names_the_compression() {
    let Some(fixtures) = fixtures() else { return };
    let path = fixtures.join("openslide-python/unopenable.tiff");
    let err = open_err(&path);
    assert!(matches!(err.kind, ErrorKind::UnsupportedCompression { value: 52479, .. }), "{err:?}");
    assert_error(&err, &path, &["unsupported", "52479"]);
}

#[test]
fn fixture_unreadable_svs_opens_but_its_tile_fails() {
    let Some(fixtures) = fixtures() else { return };
    let path = fixtures.join("openslide-python/unreadable.svs");
    let slide = open_ok(&path);
    assert_eq!(slide.format_name(), "aperio-svs");
    let err = tile_err(&slide, 0, 0, 0);
    assert!(matches!(err.kind, ErrorKind::CorruptTile { level: 0, col: 0, row: 0, .. }), "{err:?}");
    assert_error(&err, &path, &["tile 0,0 of level 0", "JPEG"]);
    let region = failed(slide.read_region(0, 0, 0, 16, 16), "a region over the corrupt tile fails");
    assert_error(&region, &path, &["tile 0,0 of level 0"]);
    // Its intact twin reads, so the failure is the data, not the format.
    let twin = fixtures.join("openslide-python/small.svs");
    open_ok(&twin).read_tile(0, 0, 0).expect("small.svs reads");
}

#[test]
fn fixture_stripped_bigtiff_is_refused_as_not_tiled() {
    let Some(fixtures) = fixtures() else { return };
    for name in ["BigTIFF.tif", "BigTIFFLong.tif", "BigTIFFMotorola.tif", "tiled-jpeg-ycbcr.tif"] {
        let path = fixtures.join("image-tiff").join(name);
        let err = open_err(&path);
        let text = assert_error(&err, &path, &["tiled"]);
        assert!(text.contains("strip"), "{name}: the message says the image is stripped: {text}");
    }
}

// ---------- the binary ----------

fn wsiview<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wsiview")).args(args).output().expect("run the wsiview binary")
}

#[track_caller]
fn assert_one_line_failure(out: &std::process::Output, file_name: &str, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit code 1 for a bad file; stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "exactly one line on stderr: {stderr:?}");
    assert!(stderr.contains(file_name), "stderr names the file: {stderr}");
    assert!(stderr.contains(needle), "stderr says {needle:?}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "no panic: {stderr}");
    assert!(!stderr.contains("internal error"), "no caught panic either: {stderr}");
}

#[test]
fn binary_reports_a_bad_file_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes-not-a-slide.tif");
    fs::write(&path, "hello\n").expect("write");
    let out = wsiview(&[Path::new("info"), &path]);
    assert_one_line_failure(&out, "notes-not-a-slide.tif", "not a TIFF");
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));

    // A slide with one corrupt tile: `region` over it fails the same way.
    let slide = patched(dir.path(), "one-bad-tile.tif", &small(SynthCompression::Jpeg), |t, ifd| {
        let range = t.tile_range(ifd, 1);
        t.bytes[range.start..range.start + 8].fill(0);
    });
    let png = dir.path().join("out.png");
    let mut argv = vec![PathBuf::from("region"), slide];
    argv.extend(["--x", "0", "--y", "0", "--width", "600", "--height", "100", "-o"].map(PathBuf::from));
    argv.push(png.clone());
    let out = wsiview(&argv);
    assert_one_line_failure(&out, "one-bad-tile.tif", "tile 1,0 of level 0");
    assert!(!png.exists(), "no PNG is written for a failed region");
}

#[test]
fn binary_reports_a_cut_jpeg_tile_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slide = patched(dir.path(), "cut-tile.tif", &small(SynthCompression::Jpeg), |t, ifd| {
        t.set_value(ifd, tags::TILE_BYTE_COUNTS, 1, 20);
    });
    let png = dir.path().join("out.png");
    let mut argv = vec![PathBuf::from("region"), slide];
    argv.extend(["--x", "256", "--y", "0", "--width", "10", "--height", "10", "-o"].map(PathBuf::from));
    argv.push(png);
    assert_one_line_failure(&wsiview(&argv), "cut-tile.tif", "tile 1,0 of level 0");
}

#[test]
fn binary_missing_argument_is_a_usage_error() {
    let out = wsiview(&["info"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2; stderr: {stderr}");
    assert!(stderr.to_lowercase().contains("usage"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---------- vendor formats (copies of ../shared/fixtures/vendors, patched) ----------

/// A vendor fixture copied into `dir` with `patch` applied to its bytes; `None` without fixtures.
fn vendor_copy(dir: &Path, name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/vendors").join(name);
    if !source.is_file() {
        eprintln!("skipped: {} is absent", source.display());
        return None;
    }
    let mut bytes = fs::read(&source).expect("read the fixture");
    patch(&mut bytes);
    let path = dir.join(name);
    fs::write(&path, &bytes).expect("write the copy");
    Some(path)
}

/// Replace the first `from` in `bytes` by `to` (same length, so every offset stays right).
fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len(), "a patch must keep the length");
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap_or_else(|| panic!("{from:?} not found"));
    bytes[at..at + to.len()].copy_from_slice(to);
}

/// The byte range of tile `index` of the `ifd`-th IFD of the main chain.
fn tiff_tile_range(path: &Path, ifd: usize, index: usize) -> std::ops::Range<usize> {
    let source = fs::read(path).expect("read");
    let reader = TiffReader::new(Arc::new(MemorySource(source))).expect("a TIFF");
    let chain = reader.read_chain(reader.first_ifd, &mut HashSet::new()).expect("its IFDs");
    let entry = |tag| chain[ifd].get(tag).expect("tile tags");
    let offsets = reader.entry_u64s(entry(tags::TILE_OFFSETS)).expect("offsets");
    let counts = reader.entry_u64s(entry(tags::TILE_BYTE_COUNTS)).expect("counts");
    offsets[index] as usize..(offsets[index] + counts[index]) as usize
}

#[test]
fn vendor_xml_that_is_malformed_or_inconsistent_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    /// (file, bytes replaced, replacement, what the error must say)
    type Case = (&'static str, &'static [u8], &'static [u8], &'static [&'static str]);
    let cases: [Case; 5] = [
        // Philips: the root element's start tag broken.
        ("philips.tiff", b"ObjectType=\"DPUfsImport\">", b"ObjectType=\"DPUfsImport\"!", &["Philips XML"]),
        // Leica: a dimension naming an IFD the file does not have.
        ("leica.scn", b"r=\"2\" ifd=\"4\"", b"r=\"2\" ifd=\"9\"", &["Leica XML", "IFD 9"]),
        // Leica: the view of the main image has no offset.
        ("leica.scn", b"offsetX=\"200000\"", b"offsetQ=\"200000\"", &["Leica XML", "offsetX"]),
        // Ventana: a joint naming a tile outside its AOI.
        ("ventana.bif", b"Tile1=\"29\" Tile2=\"30\"", b"Tile1=\"29\" Tile2=\"99\"", &["Ventana XML", "tile number 99"]),
        // Ventana: a joint in a direction that does not join its tiles.
        (
            "ventana.bif",
            b"Direction=\"RIGHT\" Tile1=\"1\"",
            b"Direction=\"UP\"    Tile1=\"1\"",
            &["Ventana XML", "joint"],
        ),
    ];
    for (name, from, to, needles) in cases {
        let Some(path) = vendor_copy(dir.path(), name, |b| replace_once(b, from, to)) else { return };
        let opened = within(10, name, {
            let path = path.clone();
            move || Slide::open(&path).map(|_| ())
        });
        let err = failed(opened, name);
        assert_error(&err, &path, needles);
    }
}

#[test]
fn philips_label_that_is_not_jpeg_is_left_out_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    // "/9j/" is base64 for the JPEG SOI marker; "AAAA" decodes to zeros.
    let marker = b"PMSVR=\"IString\">/9j/";
    let Some(path) = vendor_copy(dir.path(), "philips.tiff", |b| {
        replace_once(b, marker, b"PMSVR=\"IString\">AAAA");
    }) else {
        return;
    };
    let slide = open_ok(&path);
    let names = slide.associated_names();
    assert_eq!(names.len(), 1, "{names:?}");
    let warning = slide.properties().values.iter().find(|(k, _)| k.starts_with("wsiview.warning.philips."));
    let (key, text) = warning.unwrap_or_else(|| panic!("no warning in {:?}", slide.properties().values.keys()));
    assert!(text.contains("not a JPEG"), "{key}: {text}");
    let other = slide.read_associated(&names[0]).expect("the other associated image reads");
    assert!(other.width() > 0);
    // Base64 that is not base64 at all.
    let Some(path) = vendor_copy(dir.path(), "philips.tiff", |b| {
        replace_once(b, marker, b"PMSVR=\"IString\">*#!?");
    }) else {
        return;
    };
    let slide = open_ok(&path);
    assert_eq!(slide.associated_names().len(), 1);
    assert!(slide.properties().values.values().any(|v| v.contains("base64")));
}

#[test]
fn corrupt_jpeg2000_tile_fails_that_tile_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["aperio-j2k-ycbcr.svs", "aperio-j2k-rgb.svs"] {
        let Some(clean) = vendor_copy(dir.path(), name, |_| {}) else { return };
        let range = tiff_tile_range(&clean, 0, 1);
        let bad = dir.path().join(format!("bad-{name}"));
        let mut bytes = fs::read(&clean).expect("read");
        // Keep SOC and SIZ (so the size is read), then garbage through the rest of the codestream.
        for (i, b) in bytes[range.start + 60..range.end].iter_mut().enumerate() {
            *b = [0xFF, 0x90, 0x13, 0x00, 0xFF][i % 5];
        }
        fs::write(&bad, &bytes).expect("write");
        let slide = open_ok(&bad);
        let tile = within(20, name, {
            let bad = bad.clone();
            move || Slide::open(&bad).expect("opens").read_tile(0, 1, 0).map(|t| t.rgba.len())
        });
        if let Err(e) = tile {
            assert_error(&e, &bad, &["tile 1,0 of level 0", "JPEG 2000"]);
        }
        // A codestream whose SIZ claims more than the tile is refused before decoding.
        let mut bytes = fs::read(&clean).expect("read");
        bytes[range.start + 8..range.start + 12].copy_from_slice(&100_000u32.to_be_bytes());
        fs::write(&bad, &bytes).expect("write");
        let slide2 = open_ok(&bad);
        assert_error(&tile_err(&slide2, 0, 1, 0), &bad, &["tile 1,0 of level 0", "JPEG 2000", "codestream"]);
        for (col, row) in [(0, 0), (2, 0), (0, 1)] {
            slide.read_tile(0, col, row).unwrap_or_else(|e| panic!("{name}: tile {col},{row}: {e}"));
        }
    }
}

#[test]
fn truncated_vendor_files_give_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["aperio-j2k-ycbcr.svs", "aperio-j2k-rgb.svs", "philips.tiff", "ventana.bif", "leica.scn"] {
        for keep in [0.3, 0.6, 0.9] {
            let Some(path) = vendor_copy(dir.path(), name, |b| {
                let len = (b.len() as f64 * keep) as usize;
                b.truncate(len);
            }) else {
                return;
            };
            let what = format!("{name} cut to {keep}");
            let outcome = guarded(20, &what, {
                let path = path.clone();
                move || -> wsiview::Result<()> {
                    let slide = Slide::open(&path)?;
                    // Every tile of every level, and every associated image.
                    for (level, l) in slide.levels().to_vec().iter().enumerate() {
                        slide.read_region(level, 0, 0, l.width as u32, l.height as u32)?;
                    }
                    for assoc in slide.associated_names() {
                        slide.read_associated(&assoc)?;
                    }
                    Ok(())
                }
            })
            .unwrap_or_else(|panic| panic!("{what}: panicked: {panic}"));
            let err = failed(outcome, &what);
            let text = assert_error(&err, &path, &[]);
            assert!(text.contains("truncated") || text.contains("bytes"), "{what}: {text}");
        }
    }
}

// ---------- Hamamatsu NDPI: the vendor fixture copied and patched ----------

/// Facts of the NDPI fixture's level-0 IFD, read with the TIFF reader in NDPI mode.
struct NdpiFacts {
    bytes: Vec<u8>,
    /// IFD 0 and where its next-IFD pointer is.
    ifd0: wsiview::tiff::Ifd,
    next_at: usize,
    strip_offset: u64,
    strip_len: u64,
    /// Where IFD 0's McuStarts (tag 65426) values are, and their values (offsets within the strip).
    mcu_starts_at: usize,
    mcu_starts: Vec<u64>,
}

/// A patched copy of the NDPI fixture in `dir`; `None` when the fixtures are absent.
fn ndpi_copy(dir: &Path, name: &str, patch: impl FnOnce(&mut NdpiFacts)) -> Option<PathBuf> {
    let original = fixtures()?.join("vendors/hamamatsu.ndpi");
    let bytes = fs::read(&original).unwrap_or_else(|e| panic!("{}: {e}", original.display()));
    let reader = TiffReader::new(Arc::new(MemorySource(bytes.clone()))).expect("the fixture parses");
    assert!(reader.ndpi, "the fixture is read in NDPI layout");
    let ifd0 = reader.read_ifd(reader.first_ifd).expect("IFD 0");
    let u64_of = |tag| reader.get_u64(&ifd0, tag).expect("tag readable").expect("tag present");
    let starts = ifd0.get(65426).expect("McuStarts");
    let mut facts = NdpiFacts {
        next_at: reader.next_pointer_offset(&ifd0) as usize,
        strip_offset: u64_of(tags::STRIP_OFFSETS),
        strip_len: u64_of(tags::STRIP_BYTE_COUNTS),
        mcu_starts_at: reader.value_range(starts).expect("range").expect("out of line").start as usize,
        mcu_starts: reader.entry_u64s(starts).expect("McuStarts values"),
        ifd0,
        bytes,
    };
    patch(&mut facts);
    let path = dir.join(name);
    fs::write(&path, &facts.bytes).expect("write the patched copy");
    Some(path)
}

impl NdpiFacts {
    fn put_u32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn set_mcu_start(&mut self, k: usize, v: u32) {
        self.put_u32(self.mcu_starts_at + 4 * k, v);
    }
    /// The file range of restart interval `k` of level 0 (without the marker after it).
    fn interval(&self, k: usize) -> Range<usize> {
        let start = (self.strip_offset + self.mcu_starts[k]) as usize;
        start..(self.strip_offset + self.mcu_starts[k + 1]) as usize - 2
    }
}

use std::ops::Range;

/// A change made to a copy of the NDPI fixture.
type NdpiPatch = Box<dyn FnOnce(&mut NdpiFacts)>;

/// Level 0 of a slide, whole.
fn ndpi_level0(path: &Path) -> Vec<u8> {
    let path = path.to_path_buf();
    within(30, "read NDPI level 0", move || {
        let slide = open_ok(&path);
        slide.read_region(0, 0, 0, 3072, 2304).unwrap_or_else(|e| panic!("{e}")).into_raw()
    })
}

/// A McuStarts table that is wrong — an entry past the end of the strip and of the file, one
/// shifted off its marker, or the whole table's offset past the file — is checked against the
/// restart markers and the strip scanned instead: the same pixels as the intact file.
#[test]
fn ndpi_wrong_mcu_starts_fall_back_to_the_markers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(intact) = ndpi_copy(dir.path(), "intact.ndpi", |_| {}) else { return };
    let want = ndpi_level0(&intact);
    let cases: Vec<(&str, NdpiPatch)> = vec![
        ("past-the-file.ndpi", Box::new(|f: &mut NdpiFacts| f.set_mcu_start(500, u32::MAX - 7))),
        (
            "shifted.ndpi",
            Box::new(|f: &mut NdpiFacts| {
                let v = f.mcu_starts[1000] as u32 + 3;
                f.set_mcu_start(1000, v);
            }),
        ),
        (
            "all-zero.ndpi",
            Box::new(|f: &mut NdpiFacts| {
                for k in 0..f.mcu_starts.len() {
                    f.set_mcu_start(k, 0);
                }
            }),
        ),
        (
            "table-past-the-file.ndpi",
            Box::new(|f: &mut NdpiFacts| {
                // The high half of McuStarts' value offset: the table "is" 4 GiB further on.
                let e = f.ifd0.get(65426).expect("McuStarts").clone();
                let index = (e.entry_offset() - f.ifd0.offset - 2) / 12;
                let high_at = f.next_at + 8 + 4 * index as usize;
                f.put_u32(high_at, 1);
            }),
        ),
    ];
    for (name, patch) in cases {
        let path = ndpi_copy(dir.path(), name, patch).expect("fixture");
        assert!(ndpi_level0(&path) == want, "{name}: level 0 differs from the intact file's");
    }
    // Without the tag at all (renamed to an unknown one), the same.
    let path = ndpi_copy(dir.path(), "no-table.ndpi", |f| {
        let at = f.ifd0.get(65426).expect("McuStarts").entry_offset() as usize;
        f.bytes[at..at + 2].copy_from_slice(&65425u16.to_le_bytes());
    })
    .expect("fixture");
    assert!(ndpi_level0(&path) == want, "no McuStarts: level 0 differs from the intact file's");
}

/// A restart interval of garbage: the tile holding it is a clear error, the rest of the level
/// and the other levels read.
#[test]
fn ndpi_garbage_interval_fails_its_tile_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Interval (column 2, row 10) of level 0: 12 intervals of 256×8 a row, so pixels 512..768
    // across, 80..88 down.
    let Some(path) = ndpi_copy(dir.path(), "garbage.ndpi", |f| {
        let r = f.interval(10 * 12 + 2);
        // 0xFF 0x00 is a stuffed 0xFF byte: all one bits, never a valid Huffman code.
        for pair in f.bytes[r].chunks_exact_mut(2) {
            pair.copy_from_slice(&[0xFF, 0x00]);
        }
    }) else {
        return;
    };
    let p = path.clone();
    within(30, "garbage interval", move || {
        let slide = open_ok(&p);
        let l0 = slide.levels()[0].clone();
        let (tw, th) = (u64::from(l0.tile_width), u64::from(l0.tile_height));
        let (col, row) = (512 / tw, 80 / th);
        let (x0, x1) = (col * tw, (col + 1) * tw);
        let (y0, y1) = (row * th, (row + 1) * th);
        let err = tile_err(&slide, 0, col, row);
        assert!(matches!(err.kind, ErrorKind::CorruptTile { level: 0, .. }), "{err:?}");
        assert_error(&err, &p, &[&format!("tile {col},{row} of level 0"), "JPEG"]);
        // Everything around the bad tile reads.
        let region = |x: u64, y: u64, w: u64, h: u64| slide.read_region(0, x as i64, y as i64, w as u32, h as u32);
        if x0 > 0 {
            region(0, 0, x0, 2304).expect("the columns left of the bad tile read");
        }
        region(x1, 0, 3072 - x1, 2304).expect("the columns right of it read");
        if y0 > 0 {
            region(0, 0, 3072, y0).expect("the rows above it read");
        }
        region(0, y1, 3072, 2304 - y1).expect("the rows below it read");
        for level in 1..slide.levels().len() {
            let l = &slide.levels()[level];
            slide.read_region(level, 0, 0, l.width as u32, l.height as u32).expect("other levels read");
        }
        failed(region(512, 80, 256, 8), "a region over the bad interval");
        // Asked again, it fails again (a failure is not cached as pixels).
        tile_err(&slide, 0, col, row);
    });
}

/// A level-0 strip cut short (its byte count halved): the tiles within it read, those past it
/// are a clear error naming the missing restart interval; no panic, no hang.
#[test]
fn ndpi_strip_cut_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(path) = ndpi_copy(dir.path(), "cut.ndpi", |f| {
        let count_at = f.ifd0.get(tags::STRIP_BYTE_COUNTS).expect("byte count").entry_offset() as usize + 8;
        let half = (f.strip_len / 2) as u32;
        f.put_u32(count_at, half);
    }) else {
        return;
    };
    let p = path.clone();
    within(30, "cut strip", move || {
        let slide = open_ok(&p);
        slide.read_region(0, 0, 0, 3072, 512).expect("the first rows read");
        let rows = slide.levels()[0].tiles_down();
        let err = tile_err(&slide, 0, 0, rows - 1);
        assert_error(&err, &p, &["level 0", "restart interval", "not found"]);
        slide.read_region(1, 0, 0, 1536, 1152).expect("level 1 is whole");
    });
}

/// Offsets past the end of the file — IFD 0's next IFD, level 0's strip (through the NDPI high
/// half of its offset) — and a level JPEG without restart markers too large to decode whole are
/// refused at open with a clear error.
#[test]
fn ndpi_bad_offsets_and_sizes_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(next) = ndpi_copy(dir.path(), "next-past-end.ndpi", |f| {
        let at = f.next_at;
        f.bytes[at..at + 8].copy_from_slice(&(5u64 << 30).to_le_bytes());
    }) else {
        return;
    };
    assert_error(&open_err(&next), &next, &["truncated", "IFD"]);
    let strip = ndpi_copy(dir.path(), "strip-past-end.ndpi", |f| {
        let e = f.ifd0.get(tags::STRIP_OFFSETS).expect("strip offset").clone();
        let index = (e.entry_offset() - f.ifd0.offset - 2) / 12;
        let high_at = f.next_at + 8 + 4 * index as usize;
        f.put_u32(high_at, 1);
    })
    .expect("fixture");
    assert_error(&open_err(&strip), &strip, &["truncated", "strip of IFD 0"]);
    // Level 2 (768×576, no restart markers): its SOF made to claim 60000×60000.
    let huge = ndpi_copy(dir.path(), "huge-whole.ndpi", |f| {
        let ifd2 = TiffReader::new(Arc::new(MemorySource(f.bytes.clone())))
            .and_then(|r| {
                let mut seen = HashSet::new();
                let chain = r.read_chain(r.first_ifd, &mut seen)?;
                r.get_u64(&chain[2], tags::STRIP_OFFSETS)
            })
            .expect("IFD 2")
            .expect("strip offset") as usize;
        let sof = ifd2 + f.bytes[ifd2..ifd2 + 4096].windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
        f.bytes[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    })
    .expect("fixture");
    let p = huge.clone();
    isolated("ndpi_bad_offsets_and_sizes_are_refused", move || {
        assert_error(&open_err(&p), &p, &["60000×60000", "restart markers", "too large"]);
    });
}

// ---------- DICOM WSI (copies of ../shared/fixtures/vendors/dicom-dev patched in a tempdir) ----------

/// Copy the DICOM fixture series into `dir/name/`; `None` when the fixtures are absent.
fn dicom_series(dir: &Path, name: &str) -> Option<PathBuf> {
    let src = fixtures()?.join("vendors/dicom-dev");
    let dst = dir.join(name);
    fs::create_dir(&dst).expect("mkdir");
    for entry in fs::read_dir(&src).expect("read the fixture folder") {
        let path = entry.expect("entry").path();
        let to = dst.join(path.file_name().expect("name"));
        fs::copy(&path, &to).expect("copy");
        // The fixtures are read-only; the copies are patched.
        let mut perms = fs::metadata(&to).expect("metadata").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&to, perms).expect("chmod");
    }
    Some(dst)
}

/// Where the Basic Offset Table item of an instance starts (the fixture's PixelData is OB of
/// undefined length: tag, "OB", 2 reserved bytes, FFFFFFFF).
fn dicom_bot_at(bytes: &[u8]) -> usize {
    let header = [0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    bytes.windows(header.len()).position(|w| w == header).expect("encapsulated PixelData") + header.len()
}

/// Frame `i`'s item (header position) and data range, from the Basic Offset Table.
fn dicom_frame(bytes: &[u8], i: usize) -> (usize, std::ops::Range<usize>) {
    let bot = dicom_bot_at(bytes);
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
    let first = bot + 8 + u32_at(bot + 4);
    let item = first + u32_at(bot + 8 + 4 * i);
    assert_eq!(&bytes[item..item + 4], &[0xFE, 0xFF, 0x00, 0xE0], "frame {i} item");
    (item, item + 8..item + 8 + u32_at(item + 4))
}

/// Tile (col, row) of `level` reads, with the pixels of the same tile of the intact fixture.
#[track_caller]
fn tile_ok(slide: &Slide, level: usize, col: u64, row: u64) {
    let tile = slide.read_tile(level, col, row).unwrap_or_else(|e| panic!("tile {col},{row} should read: {e}"));
    let intact = open_ok(&fixtures().expect("fixtures").join("vendors/dicom-dev/level-0.dcm"));
    let want = intact.read_tile(level, col, row).unwrap_or_else(|e| panic!("intact tile {col},{row}: {e}"));
    assert!(tile.rgba == want.rgba, "tile {col},{row} differs from the intact fixture's");
}

#[test]
fn dicom_offset_table_pointing_outside_the_file_fails_that_tile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(series) = dicom_series(dir.path(), "s") else { return };
    let path = series.join("level-0.dcm");
    let mut bytes = fs::read(&path).expect("read");
    // Level 0 is 12×9 tiles of 256: frame 5 is tile 5,0.
    let bot = dicom_bot_at(&bytes);
    bytes[bot + 8 + 4 * 5..bot + 8 + 4 * 6].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    fs::write(&path, &bytes).expect("write");
    let slide = within(10, "open", {
        let path = path.clone();
        move || open_ok(&path)
    });
    let err = tile_err(&slide, 0, 5, 0);
    assert!(matches!(err.kind, ErrorKind::CorruptTile { level: 0, col: 5, row: 0, .. }), "{err:?}");
    assert_error(&err, &path, &["tile 5,0 of level 0", "level-0.dcm", "frame 6 is at byte", "bad offset table"]);
    for col in [4, 6] {
        tile_ok(&slide, 0, col, 0);
    }
    // The other levels, from the sibling instances, are whole.
    assert_eq!(slide.levels().len(), 4);
    slide.read_region(1, 0, 0, 1500, 1100).expect("level 1 reads");
}

#[test]
fn dicom_truncated_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(series) = dicom_series(dir.path(), "s") else { return };
    let path = series.join("level-0.dcm");
    let full = fs::read(&path).expect("read");
    // Cut inside frame 60 (tile 0,5): earlier frames read, later ones fail naming the cut.
    let (_, data) = dicom_frame(&full, 60);
    let keep = data.start + 100;
    fs::write(&path, &full[..keep]).expect("write");
    let slide = open_ok(&path);
    tile_ok(&slide, 0, 0, 0);
    tile_ok(&slide, 0, 11, 4);
    for (col, row) in [(0, 5), (11, 8)] {
        let err = tile_err(&slide, 0, col, row);
        assert!(matches!(err.kind, ErrorKind::CorruptTile { .. }), "{err:?}");
        assert_error(
            &err,
            &path,
            &[&format!("tile {col},{row} of level 0"), "truncated", &format!("has only {keep} bytes")],
        );
    }
    // Cut inside the data set, before PixelData: the instance named fails to open, clearly.
    fs::write(&path, &full[..1000]).expect("write");
    let err = open_err(&path);
    assert!(matches!(err.kind, ErrorKind::Truncated { .. }), "{err:?}");
    assert_error(&err, &path, &["truncated", "has only 1000 bytes"]);
    // As a sibling it is skipped with a warning; the other levels open.
    let other = series.join("level-1.dcm");
    let slide = open_ok(&other);
    assert_eq!(slide.levels().len(), 3);
    assert_eq!(slide.levels()[0].width, 1500);
    let warning =
        slide.properties().values.get("wsiview.warning.dicom.level-0.dcm").expect("a warning for level-0.dcm");
    assert!(warning.contains("truncated"), "{warning}");
}

#[test]
fn dicom_garbage_in_a_frame_fails_that_tile_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(series) = dicom_series(dir.path(), "s") else { return };
    let path = series.join("level-0.dcm");
    let mut bytes = fs::read(&path).expect("read");
    // Frame 3 (tile 3,0): its JPEG headers after the SOI overwritten with garbage.
    let (_, data) = dicom_frame(&bytes, 3);
    let mut rng = Rng(7);
    for b in &mut bytes[data.start + 2..data.start + 300] {
        *b = rng.next_u64() as u8 & 0x7F;
    }
    fs::write(&path, &bytes).expect("write");
    let slide = open_ok(&path);
    let err = tile_err(&slide, 0, 3, 0);
    assert!(matches!(err.kind, ErrorKind::CorruptTile { level: 0, col: 3, row: 0, .. }), "{err:?}");
    assert_error(&err, &path, &["tile 3,0 of level 0", "level-0.dcm frame 4", "JPEG"]);
    for col in [2, 4] {
        tile_ok(&slide, 0, col, 0);
    }
    let region_err = failed(slide.read_region(0, 700, 0, 200, 200), "a region over the bad tile");
    assert_error(&region_err, &path, &["tile 3,0 of level 0"]);
    // The failure repeats (not cached as a success).
    assert_error(&tile_err(&slide, 0, 3, 0), &path, &["tile 3,0 of level 0"]);
}

#[test]
fn dicom_siblings_that_are_not_dicom_are_passed_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(series) = dicom_series(dir.path(), "s") else { return };
    fs::write(series.join("notes.txt"), "scanner notes\n").expect("write");
    fs::write(series.join("fake.dcm"), vec![0u8; 4096]).expect("write");
    fs::write(series.join("empty.dcm"), b"").expect("write");
    fs::create_dir(series.join("subfolder")).expect("mkdir");
    let slide = open_ok(&series.join("level-0.dcm"));
    assert_eq!(slide.levels().len(), 4);
    let warnings: Vec<_> = slide.properties().values.keys().filter(|k| k.starts_with("wsiview.warning")).collect();
    assert!(warnings.is_empty(), "non-DICOM files are skipped quietly: {warnings:?}");
    // A file with the DICOM preamble but garbage after it is a damaged sibling: a warning.
    let mut broken = vec![0u8; 128];
    broken.extend_from_slice(b"DICM");
    broken.extend((0..2000u32).map(|i| (i * 7919 % 251) as u8));
    fs::write(series.join("broken.dcm"), &broken).expect("write");
    let slide = open_ok(&series.join("level-0.dcm"));
    assert_eq!(slide.levels().len(), 4);
    let warning = slide.properties().values.get("wsiview.warning.dicom.broken.dcm").expect("a warning for broken.dcm");
    assert!(warning.contains("skipped") && warning.contains("DICOM"), "{warning}");
}

#[test]
fn dicom_folder_without_a_slide() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("no-dicom");
    fs::create_dir(&empty).expect("mkdir");
    fs::write(empty.join("notes.txt"), "nothing here\n").expect("write");
    let err = within(10, "open a folder without DICOM", {
        let empty = empty.clone();
        move || open_err(&empty)
    });
    assert_error(&err, &empty, &["directory"]);
    // A folder whose only DICOM file is damaged: the error names it.
    let damaged = dir.path().join("damaged");
    fs::create_dir(&damaged).expect("mkdir");
    let Some(series) = dicom_series(dir.path(), "s") else { return };
    let level0 = fs::read(series.join("level-0.dcm")).expect("read");
    fs::write(damaged.join("cut.dcm"), &level0[..600]).expect("write");
    let err = open_err(&damaged);
    assert!(matches!(err.kind, ErrorKind::NoLevels(_)), "{err:?}");
    assert_error(&err, &damaged, &["cut.dcm", "truncated"]);
    // A series with only a label: no levels.
    let label_only = dir.path().join("label-only");
    fs::create_dir(&label_only).expect("mkdir");
    fs::copy(series.join("label.dcm"), label_only.join("label.dcm")).expect("copy");
    let err = open_err(&label_only.join("label.dcm"));
    assert_error(&err, &label_only.join("label.dcm"), &["no VOLUME instance"]);
}

#[test]
fn dicom_unsupported_transfer_syntax_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(series) = dicom_series(dir.path(), "s") else { return };
    let path = series.join("level-0.dcm");
    let mut bytes = fs::read(&path).expect("read");
    let ts = b"1.2.840.10008.1.2.4.50";
    let at = bytes.windows(ts.len()).position(|w| w == ts).expect("transfer syntax in the meta group");
    bytes[at..at + ts.len()].copy_from_slice(b"1.2.840.10008.1.2.4.80");
    fs::write(&path, &bytes).expect("write");
    let err = open_err(&path);
    assert!(matches!(err.kind, ErrorKind::UnsupportedDicom(_)), "{err:?}");
    assert_error(&err, &path, &["unsupported", "1.2.840.10008.1.2.4.80", "JPEG-LS"]);
}

#[test]
fn dicom_absurd_sizes_are_not_allocated() {
    isolated("dicom_absurd_sizes_are_not_allocated", || {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(series) = dicom_series(dir.path(), "s") else { return };
        let path = series.join("level-0.dcm");
        let original = fs::read(&path).expect("read");
        // A fragment claiming 2 GiB: that tile fails, nothing that size is allocated.
        let mut bytes = original.clone();
        let (item, _) = dicom_frame(&bytes, 0);
        bytes[item + 4..item + 8].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
        fs::write(&path, &bytes).expect("write");
        let slide = open_ok(&path);
        assert_error(&tile_err(&slide, 0, 0, 0), &path, &["tile 0,0 of level 0", "2147483632"]);
        tile_ok(&slide, 0, 1, 0);
        // A basic offset table claiming 4 GiB, and a total pixel matrix of 4 billion columns.
        let mut bytes = original.clone();
        let bot = dicom_bot_at(&bytes);
        bytes[bot + 4..bot + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        fs::write(&path, &bytes).expect("write");
        assert_error(&open_err(&path), &path, &["invalid DICOM", "basic offset table"]);
        let mut bytes = original.clone();
        // (0048,0006) UL 4: TotalPixelMatrixColumns.
        let tag = [0x48, 0x00, 0x06, 0x00, b'U', b'L', 4, 0];
        let at = bytes.windows(8).position(|w| w == tag).expect("TotalPixelMatrixColumns") + 8;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&path, &bytes).expect("write");
        assert_error(&open_err(&path), &path, &["TotalPixelMatrixColumns", "out of range"]);
    });
}
