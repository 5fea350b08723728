//! [`HttpSource`]: range reads of one object over the process-wide agent, through the shared
//! block cache.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use quick_cache::sync::{Cache, GuardResult};
use quick_cache::Weighter;
use std::path::PathBuf;
use ureq::tls::{RootCerts, TlsConfig};

use super::s3::{is_s3, S3Object};
use super::{redact, RemoteError};
use crate::tiff::ByteSource;

/// The unit of the block cache and of range requests (32 KiB): tile reads fetch the aligned
/// blocks that cover them, so a view row of tiles (stored one after another) costs little more
/// than its own bytes. Chosen by measurement (BENCHMARKS.md, issue 14): with 16 reads in flight
/// at 20 ms a request, 32 KiB fetched 1.2–1.4× the tile bytes and read 5× as many tiles a second
/// as tiffslide, where 256 KiB fetched 2.8–4×.
pub const BLOCK_BYTES: u64 = 32 << 10;

/// Headers, IFDs and tile tables ([`ByteSource::read_exact_at`]) are read ahead to the aligned
/// span of this many bytes (256 KiB) around them, so that a slide opens in one or two requests.
pub const METADATA_SPAN_BYTES: u64 = 256 << 10;

/// Byte budget of the block cache shared by every remote source in the process (256 MiB).
pub const BLOCK_CACHE_BYTES: u64 = 256 << 20;

/// Largest object accepted from a server that ignores `Range` and sends the whole body (200):
/// kept in memory whole (16 MiB); anything larger is refused.
pub const WHOLE_BODY_MAX_BYTES: u64 = 16 << 20;

/// Retries after a first failed attempt, on 5xx, 429, timeouts, broken connections and short
/// bodies, with exponential backoff and jitter.
pub const MAX_RETRIES: u32 = 4;

/// Largest object opened (1 TiB): a `Content-Range` total beyond it is refused as a bad reply,
/// so that no size from a server is trusted unbounded.
pub const MAX_OBJECT_BYTES: u64 = 1 << 40;

/// Bytes per request of [`HttpSource::stream`] (8 MiB): a whole-object read (a hash) pays one
/// round trip per 8 MiB.
pub const STREAM_CHUNK_BYTES: u64 = 8 << 20;

/// Most consecutive missing blocks fetched in one request (2 MiB of 32 KiB blocks), so that a
/// retry after a broken connection repeats little.
const MAX_RUN_BLOCKS: u64 = 64;
/// First backoff delay; doubled on each retry, plus up to half again of jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest wait a `Retry-After` header can impose.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
/// Connecting, and each socket read: a stalled server fails the request (and it is retried)
/// instead of hanging. `WSIVIEW_NETWORK_TIMEOUT` (whole seconds, 1–600) sets both.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The (connect, read) timeouts: [`CONNECT_TIMEOUT`] and [`READ_TIMEOUT`], or both from
/// `WSIVIEW_NETWORK_TIMEOUT` when it holds a whole number of seconds from 1 to 600.
fn timeouts() -> (Duration, Duration) {
    let seconds = std::env::var("WSIVIEW_NETWORK_TIMEOUT").ok().and_then(|v| v.trim().parse::<u64>().ok());
    match seconds.filter(|s| (1..=600).contains(s)) {
        Some(s) => (Duration::from_secs(s), Duration::from_secs(s)),
        None => (CONNECT_TIMEOUT, READ_TIMEOUT),
    }
}
const MAX_REDIRECTS: u32 = 5;

/// A CA bundle given on the command line (`--ca-cert`), before the first request.
static CA_BUNDLE: OnceLock<PathBuf> = OnceLock::new();

/// Largest CA bundle read (16 MiB).
const CA_BUNDLE_MAX_BYTES: u64 = 16 << 20;

/// Trust the certificate authorities in the PEM file `path` as well as the platform's, for
/// every remote request of the process (a hospital's own PKI). Overrides `WSIVIEW_CA_BUNDLE`.
/// Must be called before the first remote request; returns false if it came too late.
pub fn set_ca_bundle(path: PathBuf) -> bool {
    CA_BUNDLE.set(path).is_ok() && AGENT.get().is_none()
}

/// The process's agent, or why it cannot be made (an unreadable CA bundle).
static AGENT: OnceLock<Result<ureq::Agent, String>> = OnceLock::new();

/// One agent for the process: its connection pool is shared by every source and thread.
/// Redirects are followed by [`HttpSource`] itself, so that https → http is never followed.
/// TLS is rustls's, verifying against the platform's roots, plus the CA bundle of
/// [`set_ca_bundle`] or `WSIVIEW_CA_BUNDLE` if one is given.
fn agent(shown: &str) -> Result<&'static ureq::Agent, RemoteError> {
    let agent = AGENT.get_or_init(|| {
        let bundle = CA_BUNDLE
            .get()
            .cloned()
            .or_else(|| std::env::var_os("WSIVIEW_CA_BUNDLE").filter(|v| !v.is_empty()).map(PathBuf::from));
        let roots = match bundle {
            Some(path) => platform_roots_and(&path)?,
            None => RootCerts::PlatformVerifier,
        };
        let (connect, read) = timeouts();
        Ok(ureq::Agent::config_builder()
            .timeout_connect(Some(connect))
            .timeout_per_read(Some(read))
            .max_redirects(0)
            .http_status_as_error(false)
            // Ranges are of the stored bytes; a compressed transfer would not be.
            .accept_encoding("identity")
            .user_agent(concat!("wsiview/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(16)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent())
    });
    agent.as_ref().map_err(|what| RemoteError::Tls { url: shown.to_string(), what: what.clone() })
}

/// The platform's root certificates and those of the PEM bundle at `path`.
fn platform_roots_and(path: &std::path::Path) -> Result<RootCerts, String> {
    let shown = crate::error::printable(&path.display().to_string());
    let pem = crate::files::read_regular(path, CA_BUNDLE_MAX_BYTES)
        .map_err(|e| format!("cannot read the CA bundle {shown}: {e}"))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert.to_owned()),
            Ok(_) => {}
            Err(e) => return Err(format!("the CA bundle {shown} is not valid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!("the CA bundle {shown} holds no certificate"));
    }
    // Unreadable platform certificates are skipped, as the platform verifier does.
    let platform = rustls_native_certs::load_native_certs().certs;
    certs.extend(platform.iter().map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned()));
    Ok(RootCerts::Specific(Arc::new(certs)))
}

#[derive(Clone)]
struct BlockWeighter;

impl Weighter<(u64, u64), Arc<Vec<u8>>> for BlockWeighter {
    fn weight(&self, _key: &(u64, u64), block: &Arc<Vec<u8>>) -> u64 {
        block.len() as u64 + 64
    }
}

/// Blocks of every remote source, keyed by (source id, block index).
type BlockCache = Cache<(u64, u64), Arc<Vec<u8>>, BlockWeighter>;

/// The process-wide [`BlockCache`], of [`BLOCK_CACHE_BYTES`].
fn block_cache() -> &'static BlockCache {
    static BLOCKS: OnceLock<BlockCache> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        Cache::with_weighter((BLOCK_CACHE_BYTES / BLOCK_BYTES) as usize, BLOCK_CACHE_BYTES, BlockWeighter)
    })
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static TOTAL_REQUESTS: AtomicU64 = AtomicU64::new(0);
static TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);

/// HTTP requests sent and body bytes received by every remote source of the process so far
/// (for benchmarks).
pub fn totals() -> (u64, u64) {
    (TOTAL_REQUESTS.load(Ordering::Relaxed), TOTAL_BYTES.load(Ordering::Relaxed))
}

/// What pins the object first read: later replies must carry the same.
#[derive(Clone, Debug)]
enum Validator {
    ETag(String),
    LastModified(String),
    None,
}

/// One object on an HTTP(S) server, read with range requests in aligned blocks
/// ([`BLOCK_BYTES`]) through a block cache shared by all sources; adjacent missing blocks of one
/// read are fetched by one request. Its length and ETag (else Last-Modified) are pinned when it
/// is opened, and every later request is conditional on them (`If-Match`,
/// `If-Unmodified-Since`): a changed object is [`RemoteError::Changed`]. Safe to read from many
/// threads at once.
pub struct HttpSource {
    /// Where requests go: never shown.
    target: Target,
    /// [`redact`]ed: the only form in messages.
    shown: String,
    id: u64,
    len: u64,
    validator: Validator,
    /// The ETag of the first reply, if any: every reply's must be the same.
    etag: Option<String>,
    /// The whole object, when the server ignored `Range` and it was small enough.
    whole: Option<Vec<u8>>,
    requests: AtomicU64,
    bytes_fetched: AtomicU64,
    /// The highest block index this source has put in the block cache (dropped with it).
    highest_block: AtomicU64,
}

/// Where an [`HttpSource`]'s requests go.
enum Target {
    /// An http(s) URL as given, credentials and query included.
    Url(String),
    /// An S3 object: each request is presigned just before it is sent.
    S3(Box<S3Object>),
}

impl Target {
    /// The URL of the next request (secret: sent, never shown).
    fn request_url(&self) -> String {
        match self {
            Target::Url(url) => url.clone(),
            Target::S3(object) => object.presigned_get(),
        }
    }
}

/// The outcome of one attempt: retry (after the wait the server asked for, if any) or give up.
enum Failure {
    Retry(RemoteError, Option<Duration>),
    Fatal(RemoteError),
}

/// A reply to a range GET.
enum Reply {
    /// 206 with exactly the bytes asked for.
    Range(Vec<u8>, ureq::http::HeaderMap),
    /// 200: the whole object (only when asked at open, bounded).
    Whole(Vec<u8>, ureq::http::HeaderMap),
}

impl HttpSource {
    /// Open the object at `location`: an `http://` or `https://` URL, or `s3://bucket/key`
    /// (configured from the environment, see [`super::is_url`]). The first block is fetched,
    /// which pins the object's length and validator. Errors name the [`redact`]ed URL.
    pub fn open(location: &str) -> Result<Self, RemoteError> {
        let (target, shown) = if is_s3(location) {
            let object = S3Object::from_env(location)?;
            let shown = object.shown().to_string();
            (Target::S3(Box::new(object)), shown)
        } else {
            let shown = redact(location);
            if !super::is_http(location) || location.parse::<ureq::http::Uri>().is_err() {
                return Err(RemoteError::BadUrl { url: shown });
            }
            (Target::Url(location.to_string()), shown)
        };
        let mut source = HttpSource {
            target,
            shown,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            len: 0,
            validator: Validator::None,
            etag: None,
            whole: None,
            requests: AtomicU64::new(0),
            bytes_fetched: AtomicU64::new(0),
            highest_block: AtomicU64::new(0),
        };
        let (first, headers, whole) = match source.with_retries(|s| s.get(0, METADATA_SPAN_BYTES - 1, true))? {
            Reply::Range(bytes, headers) => (bytes, headers, false),
            Reply::Whole(bytes, headers) => (bytes, headers, true),
        };
        source.etag = header(&headers, "etag");
        // If-Match compares strongly: a weak ETag (`W/…`) would never match, so it is only
        // compared on each reply, and Last-Modified is the condition.
        source.validator = if let Some(tag) = source.etag.clone().filter(|t| !t.starts_with("W/")) {
            Validator::ETag(tag)
        } else if let Some(date) = header(&headers, "last-modified") {
            Validator::LastModified(date)
        } else {
            Validator::None
        };
        if whole {
            source.len = first.len() as u64;
            source.whole = Some(first);
        } else {
            let range = header(&headers, "content-range").unwrap_or_default();
            source.len = parse_content_range(&range)
                .map(|(_, _, total)| total)
                .ok_or_else(|| source.bad_reply(format!("Content-Range {range:?}")))?;
            if source.len > MAX_OBJECT_BYTES {
                return Err(source.bad_reply(format!(
                    "an object of {} bytes, over the {} GiB wsiview opens",
                    source.len,
                    MAX_OBJECT_BYTES >> 30
                )));
            }
            for (i, chunk) in first.chunks(BLOCK_BYTES as usize).enumerate() {
                block_cache().insert((source.id, i as u64), Arc::new(chunk.to_vec()));
                source.highest_block.fetch_max(i as u64, Ordering::Relaxed);
            }
        }
        Ok(source)
    }

    /// The URL as it may be shown ([`redact`]ed).
    pub fn display_url(&self) -> &str {
        &self.shown
    }

    /// HTTP requests this source has sent (retries and redirects included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes this source has received.
    pub fn bytes_fetched(&self) -> u64 {
        self.bytes_fetched.load(Ordering::Relaxed)
    }

    /// The whole object, in order, [`STREAM_CHUNK_BYTES`] per request, to `each` (the piece and
    /// the bytes read so far); the block cache is not used, so a stream neither evicts the
    /// blocks of open slides nor stays in memory. Stops early, returning `Ok(false)`, when `each`
    /// returns false (a cancelled hash). Every request is conditional on the pinned validator,
    /// so a slide that changes during the stream is [`RemoteError::Changed`].
    pub fn stream(&self, mut each: impl FnMut(&[u8], u64) -> bool) -> Result<bool, RemoteError> {
        if let Some(whole) = &self.whole {
            return Ok(each(whole, whole.len() as u64));
        }
        let mut start = 0;
        while start < self.len {
            let end = start.saturating_add(STREAM_CHUNK_BYTES).min(self.len) - 1;
            let bytes = match self.with_retries(|s| s.get(start, end, false))? {
                Reply::Range(bytes, _) => bytes,
                Reply::Whole(..) => return Err(self.bad_reply("a whole body for a range".into())),
            };
            if !each(&bytes, end + 1) {
                return Ok(false);
            }
            start = end + 1;
        }
        Ok(true)
    }

    fn bad_reply(&self, what: String) -> RemoteError {
        RemoteError::BadReply { url: self.shown.clone(), what: crate::error::printable(&what) }
    }

    fn changed(&self, what: &str) -> RemoteError {
        RemoteError::Changed { url: self.shown.clone(), what: what.to_string() }
    }

    /// Run `attempt` until it succeeds, fails for good, or [`MAX_RETRIES`] retries are spent.
    fn with_retries<T>(&self, mut attempt: impl FnMut(&Self) -> Result<T, Failure>) -> Result<T, RemoteError> {
        retrying(|| attempt(self))
    }

    /// One GET of bytes `start..=end`, following redirects. At open (`opening`), a 200 with the
    /// whole object is accepted up to [`WHOLE_BODY_MAX_BYTES`] and nothing is pinned yet.
    fn get(&self, start: u64, end: u64, opening: bool) -> Result<Reply, Failure> {
        let mut url = self.target.request_url();
        let mut redirects = 0;
        let mut response = loop {
            let mut request =
                agent(&self.shown).map_err(Failure::Fatal)?.get(&url).header("Range", format!("bytes={start}-{end}"));
            match &self.validator {
                Validator::ETag(tag) => request = request.header("If-Match", tag),
                Validator::LastModified(date) => request = request.header("If-Unmodified-Since", date),
                Validator::None => {}
            }
            self.count(1, 0);
            let response = request.call().map_err(|e| self.transport(e, &url))?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                break response;
            }
            redirects += 1;
            let redirect =
                |what: &str| Failure::Fatal(RemoteError::Redirect { url: self.shown.clone(), what: what.into() });
            if redirects > MAX_REDIRECTS {
                return Err(redirect("too many redirects"));
            }
            // S3 answers a request to the wrong region with a 301 naming the bucket's region.
            if let Some(region) = header(response.headers(), "x-amz-bucket-region") {
                let region = crate::error::printable(&region);
                return Err(redirect(&format!("the bucket is in region {region}: set AWS_REGION={region}")));
            }
            let location =
                header(response.headers(), "location").ok_or_else(|| redirect("a redirect without a Location"))?;
            let next = resolve(&url, &location).ok_or_else(|| redirect("a redirect to an invalid location"))?;
            if is_downgrade(&url, &next) {
                return Err(redirect("redirected from https to an unencrypted URL, which wsiview does not follow"));
            }
            url = next;
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let retry_after = header(&headers, "retry-after")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP));
        let shown = || self.shown.clone();
        match status {
            206 => {}
            200 if opening => {
                let mut body = Vec::new();
                let read = response
                    .body_mut()
                    .as_reader()
                    .take(WHOLE_BODY_MAX_BYTES + 1)
                    .read_to_end(&mut body)
                    .map_err(|e| self.io_failure(e))?;
                self.count(0, read as u64);
                if body.len() as u64 > WHOLE_BODY_MAX_BYTES {
                    return Err(Failure::Fatal(RemoteError::NoRangeSupport { url: shown() }));
                }
                return Ok(Reply::Whole(body, headers));
            }
            200 => return Err(Failure::Fatal(self.bad_reply("the server stopped answering range requests".into()))),
            401 | 403 => return Err(Failure::Fatal(RemoteError::AccessDenied { url: shown(), status })),
            404 | 410 => return Err(Failure::Fatal(RemoteError::NotFound { url: shown(), status })),
            412 => return Err(Failure::Fatal(self.changed("its ETag or date no longer matches"))),
            416 if !opening => return Err(Failure::Fatal(self.changed("it is shorter than before"))),
            429 | 500..=599 => return Err(Failure::Retry(RemoteError::Status { url: shown(), status }, retry_after)),
            _ => return Err(Failure::Fatal(RemoteError::Status { url: shown(), status })),
        }
        // 206: the bytes asked for (the last block may end early), of the same object.
        let range = header(&headers, "content-range").unwrap_or_default();
        let (got_start, got_end, total) = parse_content_range(&range)
            .ok_or_else(|| Failure::Fatal(self.bad_reply(format!("Content-Range {range:?}"))))?;
        if !opening {
            if total != self.len {
                return Err(Failure::Fatal(self.changed(&format!("its length is {total} bytes, was {}", self.len))));
            }
            if let (Some(pinned), Some(tag)) = (&self.etag, header(&headers, "etag")) {
                if *pinned != tag {
                    return Err(Failure::Fatal(self.changed("its ETag differs")));
                }
            }
        }
        let expected_end = end.min(total.saturating_sub(1));
        if got_start != start || got_end != expected_end {
            return Err(Failure::Fatal(
                self.bad_reply(format!("bytes {got_start}-{got_end} sent for bytes {start}-{expected_end}")),
            ));
        }
        let expected = expected_end - start + 1;
        let mut body = Vec::with_capacity(expected as usize);
        // Never read past what was asked, whatever the server sends. A body cut short (the
        // connection closing early, which ureq reports as an error) is retried.
        let read = response.body_mut().as_reader().take(expected).read_to_end(&mut body);
        self.count(0, body.len() as u64);
        if read.is_err() || (body.len() as u64) < expected {
            return Err(Failure::Retry(
                RemoteError::ShortBody { url: shown(), got: body.len() as u64, expected },
                None,
            ));
        }
        Ok(Reply::Range(body, headers))
    }

    fn count(&self, requests: u64, bytes: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
        TOTAL_REQUESTS.fetch_add(requests, Ordering::Relaxed);
        TOTAL_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }

    fn io_failure(&self, e: io::Error) -> Failure {
        Failure::Retry(
            RemoteError::Transport { url: self.shown.clone(), reason: format!("reading the reply: {e}") },
            None,
        )
    }

    /// A failed request: a timeout or broken connection is retried. ureq's own text may quote
    /// the URL, so only texts without one are kept.
    fn transport(&self, e: ureq::Error, url: &str) -> Failure {
        transport_failure(e, url, &self.shown)
    }

    /// Blocks `first..=last`, from the cache or fetched (runs of missing blocks, one request
    /// each). A block another thread is fetching is waited for, not fetched twice: the tile
    /// workers often want tiles of one block at once. No thread waits while it holds a block
    /// to fetch, so two readers cannot wait on each other.
    fn blocks(&self, first: u64, last: u64) -> Result<Vec<Arc<Vec<u8>>>, RemoteError> {
        let cache = block_cache();
        self.highest_block.fetch_max(last, Ordering::Relaxed);
        let mut slots: Vec<_> =
            (first..=last).map(|i| cache.get_value_or_guard(&(self.id, i), Some(Duration::ZERO))).collect();
        let mine = |slot: &GuardResult<_, _, _, _, _>| matches!(slot, GuardResult::Guard(_));
        let mut i = 0;
        while i < slots.len() {
            if !mine(&slots[i]) {
                i += 1;
                continue;
            }
            let run_start = i;
            while i < slots.len() && mine(&slots[i]) && (i - run_start) < MAX_RUN_BLOCKS as usize {
                i += 1;
            }
            // On an error the guards are dropped, and a thread waiting for them fetches itself.
            let bytes = self.fetch_blocks(first + run_start as u64, first + i as u64 - 1)?;
            for (k, chunk) in bytes.chunks(BLOCK_BYTES as usize).enumerate() {
                let block = Arc::new(chunk.to_vec());
                let slot = std::mem::replace(&mut slots[run_start + k], GuardResult::Value(block.clone()));
                if let GuardResult::Guard(guard) = slot {
                    let _ = guard.insert(block);
                }
            }
        }
        let mut out = Vec::with_capacity(slots.len());
        for (k, slot) in slots.into_iter().enumerate() {
            let index = first + k as u64;
            let slot = match slot {
                GuardResult::Timeout => cache.get_value_or_guard(&(self.id, index), None),
                other => other,
            };
            out.push(match slot {
                GuardResult::Value(block) => block,
                GuardResult::Guard(guard) => {
                    let block = Arc::new(self.fetch_blocks(index, index)?);
                    let _ = guard.insert(block.clone());
                    block
                }
                GuardResult::Timeout => return Err(self.bad_reply("a block is missing".into())),
            });
        }
        Ok(out)
    }

    /// The bytes of blocks `first..=last` in one request (with retries).
    fn fetch_blocks(&self, first: u64, last: u64) -> Result<Vec<u8>, RemoteError> {
        let start = first.saturating_mul(BLOCK_BYTES);
        let end = (last.saturating_add(1)).saturating_mul(BLOCK_BYTES).min(self.len) - 1;
        match self.with_retries(|s| s.get(start, end, false))? {
            Reply::Range(bytes, _) => Ok(bytes),
            Reply::Whole(..) => Err(self.bad_reply("a whole body for a range".into())),
        }
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        // Its blocks can never be read again (ids are not reused).
        if self.whole.is_none() {
            for i in 0..=self.highest_block.load(Ordering::Relaxed) {
                block_cache().remove(&(self.id, i));
            }
        }
    }
}

impl ByteSource for HttpSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_at(offset, buf, true)
    }

    fn read_data_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_at(offset, buf, false)
    }
}

impl HttpSource {
    /// Fill `buf` from `offset` out of the blocks that cover it; with `read_ahead` (metadata),
    /// when any of them is missing, the missing blocks of the whole aligned
    /// [`METADATA_SPAN_BYTES`] span around them come in the same request.
    fn read_at(&self, offset: u64, buf: &mut [u8], read_ahead: bool) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= self.len);
        let Some(end) = end else { return Err(io::ErrorKind::UnexpectedEof.into()) };
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(whole) = &self.whole {
            buf.copy_from_slice(&whole[offset as usize..end as usize]);
            return Ok(());
        }
        let (first, last) = (offset / BLOCK_BYTES, (end - 1) / BLOCK_BYTES);
        let (fetch_first, fetch_last) =
            if read_ahead && (first..=last).any(|i| !block_cache().contains_key(&(self.id, i))) {
                let per_span = METADATA_SPAN_BYTES / BLOCK_BYTES;
                let last_block = (self.len - 1) / BLOCK_BYTES;
                (first / per_span * per_span, ((last / per_span + 1) * per_span - 1).min(last_block))
            } else {
                (first, last)
            };
        let blocks = self.blocks(fetch_first, fetch_last)?;
        let mut written = 0;
        for (k, block) in blocks.iter().enumerate().skip((first - fetch_first) as usize) {
            if written == buf.len() {
                break;
            }
            let block_start = (fetch_first + k as u64) * BLOCK_BYTES;
            let from = (offset + written as u64 - block_start) as usize;
            let n = (block.len() - from).min(buf.len() - written);
            let piece = block.get(from..from + n).ok_or(io::ErrorKind::UnexpectedEof)?;
            buf[written..written + n].copy_from_slice(piece);
            written += n;
        }
        Ok(())
    }
}

/// A failed request to `url` (shown as `shown`): a timeout or broken connection is retried.
/// ureq's own text may quote the URL, so only texts without one are kept.
fn transport_failure(e: ureq::Error, url: &str, shown: &str) -> Failure {
    let (reason, retry) = match &e {
        ureq::Error::Timeout(t) => (format!("timed out ({t})"), true),
        // rustls reports a certificate it does not trust through the socket's I/O error.
        ureq::Error::Io(io) if io.to_string().contains("certificate") => (
            format!(
                "TLS: {io} (is the server's certificate from a hospital's own authority? \
                 give its CA bundle with --ca-cert FILE or WSIVIEW_CA_BUNDLE)"
            ),
            false,
        ),
        ureq::Error::Io(io) => (format!("connection error: {io}"), true),
        ureq::Error::ConnectionFailed => ("the connection failed".to_string(), true),
        ureq::Error::HostNotFound => ("host not found".to_string(), false),
        ureq::Error::Protocol(p) => (format!("HTTP protocol error: {p}"), true),
        ureq::Error::Tls(t) => (format!("TLS: {t}"), false),
        ureq::Error::Rustls(r) => (format!("TLS: {r}"), false),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => ("not a valid URL".to_string(), false),
        _ => ("the request failed".to_string(), false),
    };
    let error = RemoteError::Transport { url: shown.to_string(), reason: scrub(&reason, url) };
    if retry {
        Failure::Retry(error, None)
    } else {
        Failure::Fatal(error)
    }
}

/// Run `attempt` until it succeeds, fails for good, or [`MAX_RETRIES`] retries are spent.
fn retrying<T>(mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T, RemoteError> {
    let mut retry = 0;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry(e, _)) if retry >= MAX_RETRIES => return Err(e),
            Err(Failure::Retry(_, wait)) => {
                std::thread::sleep(wait.unwrap_or_else(|| backoff(retry)));
                retry += 1;
            }
        }
    }
}

/// One GET of a small body (a JSON reply) from `url` (secret: sent, never shown; messages name
/// `shown`), with `headers`, over the process-wide agent and with the retries of remote slides:
/// the body of a 200, or empty for a 204. Redirects are not followed (an error naming the
/// status); a body over `max_bytes` is [`RemoteError::InvalidReply`]. 401/403 are
/// [`RemoteError::AccessDenied`].
pub(crate) fn get_small(
    url: &str,
    shown: &str,
    headers: &[(&str, &str)],
    max_bytes: u64,
) -> Result<Vec<u8>, RemoteError> {
    get_reply(url, shown, headers, max_bytes).map(|reply| reply.body)
}

/// A reply of [`get_reply`]: its `Content-Type` (if any) and body.
pub(crate) struct SmallReply {
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// [`get_small`] with the reply's `Content-Type`.
pub(crate) fn get_reply(
    url: &str,
    shown: &str,
    headers: &[(&str, &str)],
    max_bytes: u64,
) -> Result<SmallReply, RemoteError> {
    retrying(|| {
        let Some(mut response) = send_get(url, shown, headers)? else {
            return Ok(SmallReply { content_type: None, body: Vec::new() });
        };
        let url = shown.to_string();
        let mut body = Vec::new();
        let read = response.body_mut().as_reader().take(max_bytes + 1).read_to_end(&mut body);
        TOTAL_BYTES.fetch_add(body.len() as u64, Ordering::Relaxed);
        if let Err(e) = read {
            return Err(Failure::Retry(
                RemoteError::Transport { url, reason: format!("reading the reply: {e}") },
                None,
            ));
        }
        if body.len() as u64 > max_bytes {
            return Err(Failure::Fatal(RemoteError::InvalidReply {
                url,
                what: format!("a reply over {} MiB", max_bytes >> 20),
            }));
        }
        Ok(SmallReply { content_type: header(response.headers(), "content-type"), body })
    })
}

/// GET `url` (shown as `shown`) and pass the body of its 200 to `each` (with the reply's
/// `Content-Type`) as it arrives, in pieces of at most 1 MiB, until `each` returns false. Retried like [`get_small`] until the reply's
/// status; a failure while the body streams is an error. Returns the `Content-Type` and
/// whether the body was read to its end.
pub(crate) fn get_streamed(
    url: &str,
    shown: &str,
    headers: &[(&str, &str)],
    mut each: impl FnMut(Option<&str>, &[u8]) -> bool,
) -> Result<(Option<String>, bool), RemoteError> {
    let Some(mut response) = retrying(|| send_get(url, shown, headers))? else {
        return Ok((None, true));
    };
    let content_type = header(response.headers(), "content-type");
    let mut reader = response.body_mut().with_config().limit(MAX_OBJECT_BYTES).reader();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok((content_type, true)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(RemoteError::Transport {
                    url: shown.to_string(),
                    reason: scrub(&format!("reading the reply: {e}"), url),
                })
            }
        };
        TOTAL_BYTES.fetch_add(n as u64, Ordering::Relaxed);
        if !each(content_type.as_deref(), &buffer[..n]) {
            return Ok((content_type, false));
        }
    }
}

/// Send one GET and sort its status: `Some` response for a 200, `None` for a 204, else the
/// failure (5xx and 429 retried, honouring Retry-After; redirects not followed).
fn send_get(
    url: &str,
    shown: &str,
    headers: &[(&str, &str)],
) -> Result<Option<ureq::http::Response<ureq::Body>>, Failure> {
    let mut request = agent(shown).map_err(Failure::Fatal)?.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed);
    let response = request.call().map_err(|e| transport_failure(e, url, shown))?;
    let status = response.status().as_u16();
    let retry_after = header(response.headers(), "retry-after")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP));
    let url = shown.to_string();
    match status {
        200 => Ok(Some(response)),
        204 => Ok(None),
        301 | 302 | 303 | 307 | 308 => Err(Failure::Fatal(RemoteError::Redirect {
            url,
            what: format!("the server redirects (HTTP {status}); give the address it redirects to"),
        })),
        401 | 403 => Err(Failure::Fatal(RemoteError::AccessDenied { url, status })),
        404 | 410 => Err(Failure::Fatal(RemoteError::NotFound { url, status })),
        429 | 500..=599 => Err(Failure::Retry(RemoteError::Status { url, status }, retry_after)),
        _ => Err(Failure::Fatal(RemoteError::Status { url, status })),
    }
}

/// One POST of a streamed body of `length` bytes to `url` (secret: sent, never shown; messages
/// name `shown`), with `headers`: the status (200 and 202 are answers; anything else an error as
/// for [`get_small`]) and the reply, up to `max_reply` bytes. Not retried: the body is read once.
pub(crate) fn post_stream(
    url: &str,
    shown: &str,
    headers: &[(&str, &str)],
    body: &mut dyn Read,
    length: u64,
    max_reply: u64,
) -> Result<(u16, Vec<u8>), RemoteError> {
    let length_text = length.to_string();
    let mut request = agent(shown)?.post(url).header("Content-Length", &length_text);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed);
    let mut response =
        request.send(ureq::SendBody::from_reader(body)).map_err(|e| match transport_failure(e, url, shown) {
            Failure::Retry(e, _) | Failure::Fatal(e) => e,
        })?;
    let status = response.status().as_u16();
    let url = shown.to_string();
    match status {
        200 | 202 | 409 => {}
        401 | 403 => return Err(RemoteError::AccessDenied { url, status }),
        404 | 410 => return Err(RemoteError::NotFound { url, status }),
        _ => return Err(RemoteError::Status { url, status }),
    }
    let mut reply = Vec::new();
    let _ = response.body_mut().as_reader().take(max_reply).read_to_end(&mut reply);
    Ok((status, reply))
}

/// A header's value as text, if present and valid.
fn header(headers: &ureq::http::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// `bytes START-END/TOTAL` → (START, END, TOTAL); `None` for anything else (`*` totals included).
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (start.trim().parse().ok()?, end.trim().parse().ok()?, total.trim().parse().ok()?);
    (start <= end && end < total).then_some((start, end, total))
}

/// Exponential backoff with jitter for retry number `retry` (0-based).
fn backoff(retry: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = BACKOFF_FIRST * 2u32.pow(retry.min(10));
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    base + base.mul_f64((random % 1000) as f64 / 2000.0)
}

/// A redirect's Location against the URL it answered: absolute, scheme-relative (`//host/p`) or
/// path-absolute (`/p`). Relative paths are resolved against the directory of `base`.
fn resolve(base: &str, location: &str) -> Option<String> {
    if super::is_http(location) {
        return Some(location.to_string());
    }
    let scheme_end = base.find("://")? + 3;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{}{rest}", &base[..scheme_end]));
    }
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let origin = &base[..path_start];
    if location.starts_with('/') {
        return Some(format!("{origin}{location}"));
    }
    let path = base[path_start..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Some(format!("{origin}{dir}{location}"))
}

/// Whether a redirect from `from` to `to` leaves https (never followed).
fn is_downgrade(from: &str, to: &str) -> bool {
    let https = |u: &str| u.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("https:"));
    https(from) && !https(to)
}

/// `text` without any copy of the secret parts of `url`.
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact(url));
    if let Some(q) = url.find('?') {
        out = out.replace(&url[q..], "");
    }
    crate::error::printable(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_parsed_strictly() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 99, 1000)));
        assert_eq!(parse_content_range("bytes 10-9/1000"), None);
        assert_eq!(parse_content_range("bytes 0-99/*"), None);
        assert_eq!(parse_content_range("bytes 0-1000/1000"), None);
        assert_eq!(parse_content_range("items 0-9/10"), None);
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        assert_eq!(resolve("https://h/a/b.svs", "/c.svs").as_deref(), Some("https://h/c.svs"));
        assert_eq!(resolve("https://h/a/b.svs?x=1", "c.svs").as_deref(), Some("https://h/a/c.svs"));
        assert_eq!(resolve("https://h/a/b.svs", "//g/c.svs").as_deref(), Some("https://g/c.svs"));
        assert_eq!(resolve("https://h/a", "http://g/c").as_deref(), Some("http://g/c"));
    }

    #[test]
    fn https_is_never_left_by_a_redirect() {
        assert!(is_downgrade("https://h/a", "http://h/a"));
        assert!(is_downgrade("HTTPS://h/a", "HTTP://g/a"));
        assert!(!is_downgrade("https://h/a", "https://g/a"));
        assert!(!is_downgrade("http://h/a", "http://g/a"));
        assert!(!is_downgrade("http://h/a", "https://g/a"));
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        for retry in 0..4 {
            let wait = backoff(retry);
            let base = BACKOFF_FIRST * 2u32.pow(retry);
            assert!(wait >= base && wait <= base.mul_f64(1.5), "{wait:?} for retry {retry}");
        }
    }

    #[test]
    fn scrub_removes_the_secret_parts() {
        let url = "https://u:pw@h/x?sig=SECRET";
        assert!(!scrub(&format!("bad uri: {url}"), url).contains("SECRET"));
        assert!(!scrub(&format!("bad uri: {url}"), url).contains("pw"));
    }
}
