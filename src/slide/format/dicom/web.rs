//! A DICOM WSI series read from a DICOMweb server (PS3.18): the series metadata once (WADO-RS,
//! the DICOM JSON model, read into data sets with dicom-json), then frames by WADO-RS
//! `…/instances/{uid}/frames/{list}`, batched.
//!
//! - Batches: frame `j` of an instance is fetched with its neighbours in one request, because
//!   servers parse an instance per request: for a TILED_FULL instance, the other frames of its
//!   aligned block of [`BLOCK_COLS`] × [`BLOCK_ROWS`] tiles; otherwise its aligned run of
//!   [`BATCH_FRAMES`] frame numbers. The batch's frames wait in a per-slide cache of
//!   [`FRAME_CACHE_BYTES`] until their tiles are decoded; threads wanting frames of a batch
//!   already on its way wait for it instead of asking again.
//! - Transfer syntax: frames are asked for as stored (`transfer-syntax=*`). A server that refuses
//!   (400, 406, 415) is asked for explicit VR little endian, then for rendered frames (JPEG, one a
//!   request); the change is said once, on standard error and in the slide's
//!   `wsiview.warning.dicomweb.frames` property when it happened while opening. Each frame is
//!   decoded by the transfer syntax its reply part names.
//! - The metadata has no transfer syntax (it is not an attribute of the data set): the first
//!   batch of the coarsest level, fetched while opening, gives the series' syntax for
//!   [`LevelInfo::compression`](crate::slide::LevelInfo).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use dicom_object::InMemDicomObject;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::instance::{compression_of, Instance, PixelModule};
pub(super) use crate::remote::dicomweb::FrameAccept;
use crate::remote::dicomweb::{Auth, Frame, SeriesLocation};
use crate::remote::RemoteError;
use crate::tiles::codec::{decode_chunk, decode_planes, ChunkFormat, Compression, Photometric};

/// Frames fetched in one request when the tile grid is not known: an aligned run of this many
/// frame numbers.
pub(super) const BATCH_FRAMES: u64 = 16;

/// Frames fetched in one request from a TILED_FULL instance: an aligned block of this many
/// tiles across and down (32 frames: a server's cost is mostly per request, measured in
/// BENCHMARKS.md, and a view wants neighbours both ways).
pub(super) const BLOCK_COLS: u64 = 8;
pub(super) const BLOCK_ROWS: u64 = 4;

/// Most bytes of one frames reply (a batch), whatever its frames' sizes.
const BATCH_REPLY_MAX_BYTES: u64 = 64 << 20;

/// Frames of an uncompressed batch (large frames: 196 KiB each for 256², 3 MiB for 1024²).
const UNCOMPRESSED_BATCH_FRAMES: u64 = 4;

/// Frames requests of one slide on their way at once.
const MAX_REQUESTS_IN_FLIGHT: usize = 4;

/// Bytes of fetched frames kept per slide until their tiles are decoded (and for re-decoding).
const FRAME_CACHE_BYTES: u64 = 64 << 20;

#[derive(Clone)]
struct FrameWeighter;

/// The frame cache: few shards, so that one large frame (an uncompressed 1024² tile is 3 MiB)
/// still fits a shard (quick_cache refuses an item heavier than a shard).
fn frame_cache() -> Cache<(usize, u64), Arc<Frame>, FrameWeighter> {
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(4096)
        .weight_capacity(FRAME_CACHE_BYTES)
        .shards(2)
        .build();
    match options {
        Ok(options) => Cache::with_options(
            options,
            FrameWeighter,
            quick_cache::DefaultHashBuilder::default(),
            quick_cache::sync::DefaultLifecycle::default(),
        ),
        Err(_) => Cache::with_weighter(4096, FRAME_CACHE_BYTES, FrameWeighter),
    }
}

impl Weighter<(usize, u64), Arc<Frame>> for FrameWeighter {
    fn weight(&self, _key: &(usize, u64), frame: &Arc<Frame>) -> u64 {
        frame.data.len() as u64 + 64
    }
}

/// A batch on its way: its frames with their numbers, or the reason it failed.
type Slot = Arc<(Mutex<Option<Batch>>, Condvar)>;

/// A fetched batch: its frames with their numbers, or why it failed.
type Batch = Result<Vec<(u64, Arc<Frame>)>, String>;

/// One instance's address on the server.
pub(super) struct WebInstance {
    pub uid: String,
    pub frames: u64,
    /// Tiles a row when the instance is TILED_FULL with every frame (2-D batches), else 0.
    pub across: std::sync::atomic::AtomicU64,
}

/// The frames of a series on a DICOMweb server, shared by its instances.
pub(super) struct WebFrames {
    location: SeriesLocation,
    shown: String,
    pub instances: Vec<WebInstance>,
    accept: Mutex<FrameAccept>,
    cache: Cache<(usize, u64), Arc<Frame>, FrameWeighter>,
    in_flight: Mutex<HashMap<(usize, u64), Slot>>,
    /// Most bytes of one frame (the reply of a batch is bounded by this times its frames).
    frame_bytes: u64,
    /// Whether any frames request was answered (a later 400 is not about the media type).
    answered: std::sync::atomic::AtomicBool,
    /// Frames requests on their way now (at most [`MAX_REQUESTS_IN_FLIGHT`]).
    sending: (Mutex<usize>, Condvar),
}

impl WebFrames {
    fn new(location: SeriesLocation, instances: Vec<WebInstance>, frame_bytes: u64) -> WebFrames {
        let shown = location.display_url();
        WebFrames {
            location,
            shown,
            instances,
            accept: Mutex::new(FrameAccept::Stored),
            cache: frame_cache(),
            in_flight: Mutex::new(HashMap::new()),
            frame_bytes,
            answered: std::sync::atomic::AtomicBool::new(false),
            sending: (Mutex::new(0), Condvar::new()),
        }
    }

    /// Frame `j` (0-based) of instance `index`: from the cache, from a batch on its way, or
    /// fetched with its batch ([`WebFrames::batch`]).
    pub fn frame(&self, index: usize, j: u64) -> Result<Arc<Frame>, String> {
        let Some(instance) = self.instances.get(index) else { return Err("no such instance".into()) };
        if j >= instance.frames {
            return Err(format!("frame {} of {}", j + 1, instance.frames));
        }
        loop {
            if let Some(frame) = self.cache.get(&(index, j)) {
                return Ok(frame);
            }
            let accept = *lock(&self.accept);
            let batch = self.batch(instance, j, accept);
            let key = (index, batch[0]);
            let (slot, mine) = {
                let mut map = lock(&self.in_flight);
                // Landed while this thread looked elsewhere.
                if let Some(frame) = self.cache.get(&(index, j)) {
                    return Ok(frame);
                }
                match map.get(&key) {
                    Some(slot) => (slot.clone(), false),
                    None => {
                        let slot: Slot = Arc::new((Mutex::new(None), Condvar::new()));
                        map.insert(key, slot.clone());
                        (slot, true)
                    }
                }
            };
            let outcome = if mine {
                // Publishes the outcome to the waiters and frees the key, also if fetch panics.
                let mut publish = Publish { frames: self, key, slot: &slot, outcome: None };
                let outcome = self.fetch(index, &batch, j, accept);
                if let Ok(frames) = &outcome {
                    for (n, frame) in frames {
                        self.cache.insert((index, *n), frame.clone());
                    }
                }
                publish.outcome = Some(outcome.clone());
                drop(publish);
                outcome
            } else {
                let mut done = lock(&slot.0);
                while done.is_none() {
                    done = slot.1.wait(done).unwrap_or_else(|p| p.into_inner());
                }
                done.clone().unwrap_or_else(|| Err("the batch was lost".into()))
            };
            match outcome {
                Ok(frames) => match frames.iter().find(|(n, _)| *n == j) {
                    Some((_, frame)) => return Ok(frame.clone()),
                    None => continue, // a batch of another mode: ask again
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// The frames fetched with frame `j` of `instance` (0-based, ascending; the first is the
    /// batch's key): for a TILED_FULL instance whose tile grid is known, its aligned block of
    /// [`BLOCK_COLS`] × [`BLOCK_ROWS`] tiles (a view wants neighbours both ways); else its
    /// aligned run of [`BATCH_FRAMES`] frame numbers; rendered frames one at a time.
    fn batch(&self, instance: &WebInstance, j: u64, accept: FrameAccept) -> Vec<u64> {
        if accept == FrameAccept::Rendered {
            return vec![j];
        }
        if accept == FrameAccept::Uncompressed {
            let start = j / UNCOMPRESSED_BATCH_FRAMES * UNCOMPRESSED_BATCH_FRAMES;
            return (start..(start + UNCOMPRESSED_BATCH_FRAMES).min(instance.frames)).collect();
        }
        let across = instance.across.load(std::sync::atomic::Ordering::Relaxed);
        if across == 0 {
            let start = j / BATCH_FRAMES * BATCH_FRAMES;
            return (start..(start + BATCH_FRAMES).min(instance.frames)).collect();
        }
        let (col, row) = (j % across, j / across);
        let (c0, r0) = (col / BLOCK_COLS * BLOCK_COLS, row / BLOCK_ROWS * BLOCK_ROWS);
        (r0..r0 + BLOCK_ROWS)
            .flat_map(|r| (c0..(c0 + BLOCK_COLS).min(across)).map(move |c| r * across + c))
            .filter(|&n| n < instance.frames)
            .collect()
    }

    /// Fetch frames `batch` of instance `index` as `accept` asks, falling back to the next way of
    /// asking when the server refuses this one (rendered: only `want`). Frames with their numbers.
    fn fetch(
        &self,
        index: usize,
        batch: &[u64],
        want: u64,
        accept: FrameAccept,
    ) -> Result<Vec<(u64, Arc<Frame>)>, String> {
        let uid = &self.instances[index].uid;
        let mut accept = accept;
        loop {
            let wanted: Vec<u64> = match accept {
                FrameAccept::Rendered => vec![want],
                _ => batch.to_vec(),
            };
            let numbers: Vec<u64> = wanted.iter().map(|n| n + 1).collect();
            let max = self
                .frame_bytes
                .saturating_mul(numbers.len() as u64)
                .saturating_add(1 << 20)
                .min(BATCH_REPLY_MAX_BYTES);
            let reply = {
                let _turn = self.turn();
                self.location.frames(uid, &numbers, accept, max)
            };
            match reply {
                Ok(frames) => {
                    self.answered.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok(wanted.into_iter().zip(frames.into_iter().map(Arc::new)).collect());
                }
                // Not acceptable: ask another way. A 400 or 501 means that too while no frames
                // request was ever answered (a server refusing the Accept header); later it is an
                // error of this batch only.
                Err(RemoteError::Status { status, .. })
                    if accept != FrameAccept::Rendered
                        && (matches!(status, 406 | 415)
                            || (matches!(status, 400 | 501)
                                && !self.answered.load(std::sync::atomic::Ordering::Relaxed))) =>
                {
                    accept = self.fall_back(accept, &format!("refused (HTTP {status})"));
                    // The next way asks for a batch of its own size.
                    if accept == FrameAccept::Uncompressed {
                        return self.fetch(index, &self.batch(&self.instances[index], want, accept), want, accept);
                    }
                }
                Err(e) => return Err(e.reason()),
            }
        }
    }

    /// Wait for a turn to send a frames request: at most [`MAX_REQUESTS_IN_FLIGHT`] at once, so
    /// that the batches a view wants first (the scheduler starts them first) are not slowed by
    /// the server working on prefetched ones at the same time.
    fn turn(&self) -> Turn<'_> {
        let (count, ready) = &self.sending;
        let mut n = lock(count);
        while *n >= MAX_REQUESTS_IN_FLIGHT {
            n = ready.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += 1;
        Turn(&self.sending)
    }

    /// Instance `index` is TILED_FULL with `across` tiles a row and a frame for every tile:
    /// fetch its frames in 2-D blocks.
    pub fn set_tile_grid(&self, index: usize, across: u64) {
        if let Some(instance) = self.instances.get(index) {
            instance.across.store(across, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Stop asking for frames as `from` (because they were `why`): the next way of asking, said
    /// once on standard error; frames fetched the old way are dropped. Returns the way now used.
    pub fn fall_back(&self, from: FrameAccept, why: &str) -> FrameAccept {
        let next = match from {
            FrameAccept::Stored => FrameAccept::Uncompressed,
            _ => FrameAccept::Rendered,
        };
        let mut shared = lock(&self.accept);
        if *shared == from {
            *shared = next;
            self.cache.clear();
            eprintln!("{}: frames {} were {why}; asking for them {}", self.shown, from.describe(), next.describe());
        }
        *shared
    }

    /// How frames are asked for now.
    pub fn accept(&self) -> FrameAccept {
        *lock(&self.accept)
    }
}

/// The owner of a batch's fetch: on drop, hands the outcome (or, if none was set, a failure) to
/// the threads waiting for it and frees the batch's key.
struct Publish<'a> {
    frames: &'a WebFrames,
    key: (usize, u64),
    slot: &'a Slot,
    outcome: Option<Batch>,
}

impl Drop for Publish<'_> {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| Err("fetching the frames failed".into()));
        *lock(&self.slot.0) = Some(outcome);
        self.slot.1.notify_all();
        lock(&self.frames.in_flight).remove(&self.key);
    }
}

/// A turn to send a request; ends when dropped.
struct Turn<'a>(&'a (Mutex<usize>, Condvar));

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *lock(&self.0 .0) -= 1;
        self.0 .1.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The series' data sets from the server: each instance's data set, its SOPInstanceUID and
/// NumberOfFrames; data sets that cannot be read are named in the warnings (by position) and
/// left out, and so are other SOP classes and series.
pub(super) struct SeriesMetadata {
    pub frames: Arc<WebFrames>,
    pub data_sets: Vec<InMemDicomObject>,
    pub warnings: Vec<(String, String)>,
}

/// Read the metadata of the series at `location` and make its frame fetcher.
pub(super) fn read_series(location: &str, frame_bytes: u64, max_frames: u64) -> Result<SeriesMetadata, RemoteError> {
    let auth = Auth::from_env(None)
        .map_err(|reason| RemoteError::Transport { url: crate::remote::redact(location), reason })?;
    let series = SeriesLocation::new(location, auth)?;
    let (_, series_uid) = series.uids();
    let series_uid = series_uid.to_string();
    let mut data_sets = Vec::new();
    let mut instances = Vec::new();
    let mut warnings = Vec::new();
    use dicom_dictionary_std::tags;
    let text = |obj: &InMemDicomObject, tag| {
        obj.get(tag)
            .and_then(|e| e.value().to_str().ok())
            .map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string())
    };
    for (i, map) in series.metadata()?.into_iter().enumerate() {
        let obj: InMemDicomObject = match dicom_json::from_value(serde_json::Value::Object(map)) {
            Ok(obj) => obj,
            Err(e) => {
                let reason = crate::error::printable(&e.to_string());
                warnings.push((format!("instance-{}", i + 1), format!("skipped: its metadata is not valid: {reason}")));
                continue;
            }
        };
        if text(&obj, tags::SOP_CLASS_UID).as_deref() != Some(super::instance::WSI_SOP_CLASS)
            || text(&obj, tags::SERIES_INSTANCE_UID).is_some_and(|s| s != series_uid)
        {
            continue;
        }
        let uid = text(&obj, tags::SOP_INSTANCE_UID).unwrap_or_default();
        if !crate::remote::dicomweb::valid_uid(&uid) {
            warnings.push((format!("instance-{}", i + 1), "skipped: no valid SOPInstanceUID".into()));
            continue;
        }
        let frames = obj
            .get(tags::NUMBER_OF_FRAMES)
            .and_then(|e| e.value().to_int::<i64>().ok())
            .unwrap_or(1)
            .clamp(1, i64::try_from(max_frames).unwrap_or(i64::MAX)) as u64;
        instances.push(WebInstance { uid, frames, across: std::sync::atomic::AtomicU64::new(0) });
        data_sets.push(obj);
    }
    Ok(SeriesMetadata { frames: Arc::new(WebFrames::new(series, instances, frame_bytes)), data_sets, warnings })
}

/// Decode a frame from the server into `w`×`h` RGBA: by the transfer syntax its reply part
/// named (the instance's own format when it is the series' syntax), or, rendered, as the
/// consumer image it is.
/// `transcoded`: the frame was asked for uncompressed (the server decoded it).
pub(super) fn decode(
    frame: &Frame,
    instance: &Instance,
    module: &PixelModule,
    transcoded: bool,
    w: u32,
    h: u32,
) -> Result<Vec<u8>, String> {
    let Some(ts) = &frame.transfer_syntax else {
        return decode_rendered(frame, w, h);
    };
    let compression = compression_of(ts).map_err(|e| e.to_string())?;
    let format = if compression == instance.format.compression {
        instance.format.clone()
    } else {
        module.format(compression, ts, transcoded).map_err(|e| e.to_string())?
    };
    let data = &frame.data;
    if format.planar {
        let plane = data.len() / 3;
        let planes: Vec<Option<Vec<u8>>> = data.chunks(plane.max(1)).take(3).map(|c| Some(c.to_vec())).collect();
        return decode_planes(&format, &planes, w, h).map_err(|e| e.to_string());
    }
    decode_chunk(&format, data, w, h).map_err(|e| e.to_string())
}

/// A rendered frame (JPEG or PNG) as `w`×`h` RGBA; a smaller one (an edge frame cut to the
/// image) is padded with transparent pixels.
fn decode_rendered(frame: &Frame, w: u32, h: u32) -> Result<Vec<u8>, String> {
    let format = match frame.media_type.as_str() {
        "image/png" => image::ImageFormat::Png,
        _ => {
            let jpeg = ChunkFormat::simple(Compression::Jpeg, Photometric::YCbCr, 3);
            return decode_chunk(&jpeg, &frame.data, w, h).map_err(|e| e.to_string());
        }
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(&frame.data), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(u64::from(w) * u64::from(h) * 8 + (1 << 20));
    reader.limits(limits);
    let image = reader.decode().map_err(|e| format!("rendered frame: {e}"))?.to_rgba8();
    let mut out = vec![0u8; w as usize * h as usize * 4];
    let (iw, ih) = (image.width() as usize, image.height() as usize);
    for y in 0..ih {
        let src = &image.as_raw()[y * iw * 4..(y + 1) * iw * 4];
        out[y * w as usize * 4..y * w as usize * 4 + iw * 4].copy_from_slice(src);
    }
    Ok(out)
}
