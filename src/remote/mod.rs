//! Remote slides: a [`ByteSource`](crate::tiff::ByteSource) that reads an object on a web server
//! with HTTP(S) range requests ([`HttpSource`]), so every format reader works on a URL as on a
//! file, without knowing where its bytes come from.
//!
//! This module owns the network: one pooled HTTP agent for the process, the block cache shared by
//! all remote sources, retries, consistency (a slide that changes on the server is an error, never
//! a mix of old and new bytes) and the redaction of URLs in every message ([`redact`]). It imports
//! the TIFF container's `ByteSource` trait and nothing of `slide`, `tiles` or the viewer; opening a
//! slide by location lives in [`crate::slide::open_location`].

#![warn(missing_docs)]

pub mod dicomweb;
mod http;
pub mod multipart;
mod s3;

pub use http::{
    set_ca_bundle, totals, HttpSource, BLOCK_BYTES, BLOCK_CACHE_BYTES, MAX_OBJECT_BYTES, MAX_RETRIES,
    METADATA_SPAN_BYTES, STREAM_CHUNK_BYTES, WHOLE_BODY_MAX_BYTES,
};

/// Why a remote read failed. Every message names the object by its [`redact`]ed URL (no
/// credentials, no query string), so it can be printed and logged as it is.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Not an `http://` or `https://` URL, or one that cannot be parsed.
    #[error("{url}: not a valid http:// or https:// URL")]
    BadUrl {
        /// The redacted URL.
        url: String,
    },
    /// HTTP 401 or 403.
    #[error("{url}: access denied (HTTP {status})")]
    AccessDenied {
        /// The redacted URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// HTTP 404 or 410.
    #[error("{url}: not found (HTTP {status})")]
    NotFound {
        /// The redacted URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The object is not the one first opened: another ETag, Last-Modified or length, or a 412.
    #[error("{url}: the slide changed on the server ({what})")]
    Changed {
        /// The redacted URL.
        url: String,
        /// What differs.
        what: String,
    },
    /// The server sends the whole object instead of a range, and it is too large to keep.
    #[error(
        "{url}: the server ignores range requests (it sent the whole file, over {} MiB); \
         remote slides need a server that answers HTTP range requests",
        WHOLE_BODY_MAX_BYTES >> 20
    )]
    NoRangeSupport {
        /// The redacted URL.
        url: String,
    },
    /// A 206 reply for other bytes than those asked for, or a malformed one.
    #[error("{url}: invalid reply to a range request ({what})")]
    BadReply {
        /// The redacted URL.
        url: String,
        /// What is wrong.
        what: String,
    },
    /// The body ended before the bytes announced (after all retries).
    #[error("{url}: the reply ended after {got} of {expected} bytes")]
    ShortBody {
        /// The redacted URL.
        url: String,
        /// Bytes received.
        got: u64,
        /// Bytes asked for.
        expected: u64,
    },
    /// An `s3://` location that cannot be addressed: no key, a bad endpoint, an unreadable
    /// shared config file.
    #[error("{url}: {what}")]
    S3Config {
        /// The `s3://bucket/key` location.
        url: String,
        /// What is wrong.
        what: String,
    },
    /// A reply that is not what was asked for: not the JSON expected, or too large.
    #[error("{url}: invalid reply ({what})")]
    InvalidReply {
        /// The redacted URL.
        url: String,
        /// What is wrong.
        what: String,
    },
    /// Any other HTTP status (after retries, for 5xx and 429).
    #[error("{url}: the server answered HTTP {status}")]
    Status {
        /// The redacted URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// TLS cannot be set up: an unreadable or empty CA bundle.
    #[error("{url}: {what}")]
    Tls {
        /// The redacted URL.
        url: String,
        /// What is wrong.
        what: String,
    },
    /// A redirect from https to http (never followed), or too many redirects.
    #[error("{url}: {what}")]
    Redirect {
        /// The redacted URL.
        url: String,
        /// What went wrong.
        what: String,
    },
    /// The connection failed, timed out or broke (after retries).
    #[error("{url}: {reason}")]
    Transport {
        /// The redacted URL.
        url: String,
        /// Why, without any URL.
        reason: String,
    },
}

impl RemoteError {
    /// The redacted URL (or `s3://` location) the error is about.
    pub fn url(&self) -> &str {
        match self {
            RemoteError::BadUrl { url }
            | RemoteError::AccessDenied { url, .. }
            | RemoteError::NotFound { url, .. }
            | RemoteError::Changed { url, .. }
            | RemoteError::NoRangeSupport { url }
            | RemoteError::BadReply { url, .. }
            | RemoteError::ShortBody { url, .. }
            | RemoteError::S3Config { url, .. }
            | RemoteError::InvalidReply { url, .. }
            | RemoteError::Status { url, .. }
            | RemoteError::Tls { url, .. }
            | RemoteError::Redirect { url, .. }
            | RemoteError::Transport { url, .. } => url,
        }
    }

    /// The message without the URL in front (`not found (HTTP 404)`), for a context that
    /// names the object already (a slide error).
    pub fn reason(&self) -> String {
        let text = self.to_string();
        text.strip_prefix(self.url()).and_then(|t| t.strip_prefix(": ")).map_or(text.clone(), str::to_string)
    }
}

/// As an I/O error, the [`RemoteError::reason`] only: it always reaches the user inside an
/// error that names the slide.
impl From<RemoteError> for std::io::Error {
    fn from(e: RemoteError) -> Self {
        let kind = match e {
            RemoteError::NotFound { .. } => std::io::ErrorKind::NotFound,
            RemoteError::AccessDenied { .. } => std::io::ErrorKind::PermissionDenied,
            RemoteError::ShortBody { .. } => std::io::ErrorKind::UnexpectedEof,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e.reason())
    }
}

/// Whether a SLIDE argument names a remote object rather than a local path: `http://`,
/// `https://` or `s3://bucket/key` (any case).
pub fn is_url(location: &str) -> bool {
    is_http(location) || s3::is_s3(location)
}

/// Whether requests for a remote `location` would travel unencrypted: an `http://` URL, or an
/// `s3://` object whose endpoint (from the environment) is `http://`. Worth a warning.
pub fn is_unencrypted(location: &str) -> bool {
    if s3::is_s3(location) {
        return s3::S3Object::from_env(location).is_ok_and(|o| o.unencrypted());
    }
    location.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("http:"))
}

/// Whether `location` is an `http://` or `https://` URL (any case).
pub fn is_http(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A URL fit to print: without user information (`user:password@`), query string (signed URLs
/// carry their signature there) or fragment, and [`printable`](crate::error::printable). The
/// only form of a URL wsiview ever shows or logs.
pub fn redact(url: &str) -> String {
    let cut = url.find(['?', '#']).map_or(url, |i| &url[..i]);
    let redacted = match cut.find("://") {
        Some(i) => {
            let (scheme, rest) = (&cut[..i + 3], &cut[i + 3..]);
            let end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let host = authority.rfind('@').map_or(authority, |at| &authority[at + 1..]);
            if valid_host(host) {
                format!("{scheme}{host}{path}")
            } else {
                // Not host[:port]: a password with a '/' or '?' in it, say. Show none of it.
                format!("{scheme}(an invalid address)")
            }
        }
        // No scheme: drop anything up to an '@' so that `user:pw@host/x` shows no password.
        None => cut.rfind('@').map_or(cut, |at| &cut[at + 1..]).to_string(),
    };
    crate::error::printable(&redacted)
}

/// Whether `host` is `name`, `name:port` or `[v6]:port` (port digits only): what may follow
/// the user information in a URL that [`redact`] shows.
fn valid_host(host: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(v6) = host.strip_prefix('[') {
        return match v6.split_once(']') {
            Some((address, "")) => !address.is_empty(),
            Some((address, rest)) => !address.is_empty() && rest.strip_prefix(':').is_some_and(port_ok),
            None => false,
        };
    }
    let (name, port) = host.rsplit_once(':').map_or((host, None), |(n, p)| (n, Some(p)));
    !name.is_empty() && !name.contains([':', '@', ' ', '[', ']']) && port.is_none_or(port_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_credentials_query_and_fragment() {
        assert_eq!(redact("https://host/a/b.svs"), "https://host/a/b.svs");
        assert_eq!(redact("https://user:pass@host:8443/a.svs?X-Amz-Signature=SECRET"), "https://host:8443/a.svs");
        assert_eq!(redact("http://u@host/a.svs#frag"), "http://host/a.svs");
        assert_eq!(redact("https://host?sig=1"), "https://host");
        // An '@' in the path is not user information; one in the query is cut with the query.
        assert_eq!(redact("https://host/p@x/a.svs?k=a@b"), "https://host/p@x/a.svs");
        assert_eq!(redact("https://a:b@c@host/x"), "https://host/x");
        assert_eq!(redact("user:pw@host/x?s=SECRET"), "host/x");
        assert!(!redact("https://host/\u{1b}[31mx").contains('\u{1b}'));
        // A password with '/' or '?' in it makes no valid host: none of it is shown.
        assert_eq!(redact("https://u:pa/ss@h/x"), "https://(an invalid address)");
        assert_eq!(redact("https://u:p?ss@h/x"), "https://(an invalid address)");
        assert_eq!(redact("https://[::1]:8443/x?s=1"), "https://[::1]:8443/x");
        assert_eq!(redact("s3://KEY:SECRET@bucket/k.svs"), "s3://bucket/k.svs");
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("https://h/x.svs"));
        assert!(is_url("HTTP://h/x.svs"));
        assert!(!is_url("httpsx/y.svs"));
        assert!(!is_url("/data/http://x"));
        assert!(!is_url("s.svs"));
    }

    #[test]
    fn errors_keep_their_kind_as_io_errors() {
        let e: std::io::Error = RemoteError::NotFound { url: "https://h/x".into(), status: 404 }.into();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "not found (HTTP 404)");
    }
}
