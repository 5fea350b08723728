//! DICOMweb: finding slide microscopy series on a PACS by QIDO-RS ([`list_series`]), reading one
//! by WADO-RS ([`SeriesLocation`]: series metadata, frames in batches), and storing instances by
//! STOW-RS ([`stow`]).
//!
//! Requests go over the process-wide agent of [`crate::remote`], with its TLS, retries and
//! redaction. Replies are parsed from the DICOM JSON model (`application/dicom+json`) with
//! bounded sizes ([`QIDO_MAX_BYTES`]); a missing attribute is fine, one of the wrong type is a
//! [`RemoteError::InvalidReply`] naming the redacted URL.

use std::path::Path;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::{redact, RemoteError};

/// Largest QIDO-RS reply read (16 MiB): a larger one is refused, not parsed.
pub const QIDO_MAX_BYTES: u64 = 16 << 20;

/// Largest token file read (64 KiB).
const TOKEN_FILE_MAX_BYTES: u64 = 64 << 10;

/// How requests authenticate.
#[derive(Clone, Default)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// HTTP basic: user and password.
    Basic(String, String),
}

impl std::fmt::Debug for Auth {
    /// Never the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Bearer(_) => "Auth::Bearer(…)",
            Auth::Basic(..) => "Auth::Basic(…)",
        })
    }
}

impl Auth {
    /// The credentials of the environment and the command line: a bearer token from
    /// `token_file` (`--token-file`) or `WSIVIEW_DICOMWEB_TOKEN`; else HTTP basic from
    /// `WSIVIEW_DICOMWEB_USER` and `WSIVIEW_DICOMWEB_PASSWORD`; else none. (User information
    /// in the URL, `https://user:password@host/…`, overrides basic credentials of the
    /// environment: see [`Server::new`].) Errors never quote a secret.
    pub fn from_env(token_file: Option<&Path>) -> Result<Auth, String> {
        if let Some(path) = token_file {
            let shown = crate::error::printable(&path.display().to_string());
            let bytes = crate::files::read_regular(path, TOKEN_FILE_MAX_BYTES)
                .map_err(|e| format!("cannot read the token file {shown}: {e}"))?;
            let token = String::from_utf8(bytes).map_err(|_| format!("the token file {shown} is not text"))?;
            return bearer(token.trim()).ok_or_else(|| format!("the token file {shown} holds no valid token"));
        }
        if let Some(token) = std::env::var("WSIVIEW_DICOMWEB_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
            return bearer(token.trim()).ok_or_else(|| "WSIVIEW_DICOMWEB_TOKEN is not a valid token".to_string());
        }
        let user = std::env::var("WSIVIEW_DICOMWEB_USER").ok().filter(|u| !u.is_empty());
        let password = std::env::var("WSIVIEW_DICOMWEB_PASSWORD").ok();
        match (user, password) {
            (Some(user), Some(password)) => Ok(Auth::Basic(user, password)),
            (Some(_), None) => Err("WSIVIEW_DICOMWEB_USER is set without WSIVIEW_DICOMWEB_PASSWORD".into()),
            (None, Some(p)) if !p.is_empty() => {
                Err("WSIVIEW_DICOMWEB_PASSWORD is set without WSIVIEW_DICOMWEB_USER".into())
            }
            _ => Ok(Auth::None),
        }
    }

    /// The `Authorization` header's value, if any.
    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
            Auth::Basic(user, password) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {encoded}"))
            }
        }
    }
}

/// A token fit for a header: visible ASCII only.
fn bearer(token: &str) -> Option<Auth> {
    (!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())).then(|| Auth::Bearer(token.to_string()))
}

/// A DICOMweb service: its base URL (without credentials) and how to authenticate.
pub struct Server {
    base: url::Url,
    shown: String,
    auth: Auth,
}

impl Server {
    /// The service at `url` (`https://host/dicom-web`), authenticating with `auth`, or with the
    /// user and password in the URL if it has them (taken out of it: they are sent only as an
    /// `Authorization` header, and never shown), or, when neither gives credentials, with the
    /// host's login in the netrc file ([`netrc_login`]).
    pub fn new(url: &str, auth: Auth) -> Result<Server, RemoteError> {
        let shown = redact(url);
        let bad = || RemoteError::BadUrl { url: shown.clone() };
        if !super::is_http(url) {
            return Err(bad());
        }
        let mut base = url::Url::parse(url).map_err(|_| bad())?;
        let mut auth = auth;
        if !base.username().is_empty() || base.password().is_some() {
            let user = crate::text::percent_decode(base.username()).ok_or_else(bad)?;
            let password = crate::text::percent_decode(base.password().unwrap_or("")).ok_or_else(bad)?;
            auth = Auth::Basic(user, password);
            base.set_username("").map_err(|_| bad())?;
            base.set_password(None).map_err(|_| bad())?;
        }
        if matches!(auth, Auth::None) {
            if let Some((user, password)) = base.host_str().and_then(netrc_login) {
                auth = Auth::Basic(user, password);
            }
        }
        base.set_query(None);
        base.set_fragment(None);
        // Paths are appended to it: no trailing slash.
        let trimmed = base.path().trim_end_matches('/').to_string();
        base.set_path(&trimmed);
        Ok(Server { shown: redact(base.as_str()), base, auth })
    }

    /// The base URL as it may be shown.
    pub fn display_url(&self) -> &str {
        &self.shown
    }

    /// GET `path` (under the base) with `query`, as DICOM JSON: the reply's array of data sets.
    fn qido(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<DataSet>, RemoteError> {
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path()));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let shown = redact(url.as_str());
        let authorization = self.auth.header();
        let mut headers = vec![("Accept", "application/dicom+json, application/json")];
        if let Some(value) = authorization.as_deref() {
            headers.push(("Authorization", value));
        }
        let body = super::http::get_small(url.as_str(), &shown, &headers, QIDO_MAX_BYTES)?;
        parse_data_sets(&body).map_err(|what| RemoteError::InvalidReply { url: shown, what })
    }
}

/// Largest STOW-RS reply read (1 MiB).
const STOW_REPLY_MAX_BYTES: u64 = 1 << 20;

/// Store one DICOM file on `server` by STOW-RS (PS3.18 10.5): a POST to `…/studies` of a
/// `multipart/related; type="application/dicom"` body with the file as its one part, streamed
/// from disk (a level of several GB is never held in memory). A 409, or a 202 whose reply lists
/// failed instances, is [`RemoteError::InvalidReply`] with the server's reason when it gives one.
pub fn stow(server: &Server, file: &Path) -> Result<(), RemoteError> {
    let url = format!("{}/studies", server.base);
    let shown = redact(&url);
    let local = |e: std::io::Error| RemoteError::Transport {
        url: shown.clone(),
        reason: format!("cannot read {}: {e}", crate::error::printable(&file.display().to_string())),
    };
    let opened = crate::files::open_regular(file).map_err(local)?;
    let length = opened.metadata().map_err(local)?.len();
    let boundary = format!("wsiview-{}", uuid::Uuid::new_v4().simple());
    let head = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n");
    let tail = format!("\r\n--{boundary}--\r\n");
    let total = head.len() as u64 + length + tail.len() as u64;
    let mut body = std::io::Read::chain(std::io::Read::chain(head.as_bytes(), opened), tail.as_bytes());
    let content_type = format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    let authorization = server.auth.header();
    let mut headers =
        vec![("Content-Type", content_type.as_str()), ("Accept", "application/dicom+json, application/json")];
    if let Some(value) = authorization.as_deref() {
        headers.push(("Authorization", value));
    }
    let (status, reply) = super::http::post_stream(&url, &shown, &headers, &mut body, total, STOW_REPLY_MAX_BYTES)?;
    // The reply's FailedSOPSequence (0008,1198) lists the instances refused, with a reason.
    let failed = serde_json::from_slice::<Value>(&reply)
        .ok()
        .and_then(|v| v.get("00081198").and_then(|f| f.get("Value")).and_then(Value::as_array).map(Vec::len))
        .unwrap_or(0);
    if status == 409 || failed > 0 {
        return Err(RemoteError::InvalidReply {
            url: shown,
            what: format!("the server refused the instance (HTTP {status}, {failed} failed)"),
        });
    }
    Ok(())
}

/// Filters of [`list_series`].
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this study.
    pub study: Option<String>,
    /// Only studies with this accession number.
    pub accession: Option<String>,
}

/// One slide microscopy series found on the server. Attributes the server did not send are
/// `None`. Serialised with the DICOM keywords as names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeriesEntry {
    /// The study's UID.
    #[serde(rename = "StudyInstanceUID")]
    pub study_instance_uid: String,
    /// The series' UID.
    #[serde(rename = "SeriesInstanceUID")]
    pub series_instance_uid: String,
    /// The study's accession number.
    #[serde(rename = "AccessionNumber")]
    pub accession_number: Option<String>,
    /// The study date (DICOM DA, `YYYYMMDD`).
    #[serde(rename = "StudyDate")]
    pub study_date: Option<String>,
    /// The series description.
    #[serde(rename = "SeriesDescription")]
    pub series_description: Option<String>,
    /// Instances in the series.
    #[serde(rename = "NumberOfSeriesRelatedInstances")]
    pub number_of_instances: Option<u64>,
}

const STUDY_INSTANCE_UID: &str = "0020000D";
const SERIES_INSTANCE_UID: &str = "0020000E";
const ACCESSION_NUMBER: &str = "00080050";
const STUDY_DATE: &str = "00080020";
const SERIES_DESCRIPTION: &str = "0008103E";
const NUMBER_OF_SERIES_RELATED_INSTANCES: &str = "00201209";

/// The slide microscopy series on `server`: studies with `ModalitiesInStudy=SM` (and the
/// filter's study UID and accession number), then each study's series with `Modality=SM`.
/// In the server's order.
pub fn list_series(server: &Server, filter: &Filter) -> Result<Vec<SeriesEntry>, RemoteError> {
    let mut query = vec![
        ("ModalitiesInStudy", "SM"),
        ("includefield", "StudyInstanceUID"),
        ("includefield", "AccessionNumber"),
        ("includefield", "StudyDate"),
    ];
    // Query values are percent-encoded; study UIDs put in a path are the server's, checked.
    if let Some(study) = &filter.study {
        query.push(("StudyInstanceUID", study));
    }
    if let Some(accession) = &filter.accession {
        query.push(("AccessionNumber", accession));
    }
    let studies = server.qido("/studies", &query)?;
    let mut out = Vec::new();
    for study in &studies {
        let shown = || redact(&format!("{}/studies", server.base));
        let invalid = |what: String| RemoteError::InvalidReply { url: shown(), what };
        let Some(study_uid) = study.string(STUDY_INSTANCE_UID).map_err(invalid)? else {
            return Err(invalid("a study without a StudyInstanceUID".into()));
        };
        if !valid_uid(&study_uid) {
            return Err(invalid(format!("an invalid StudyInstanceUID {study_uid:?}")));
        }
        // A server that ignores a filter must not widen the list.
        if filter.study.as_ref().is_some_and(|s| *s != study_uid) {
            continue;
        }
        let accession = study.string(ACCESSION_NUMBER).map_err(invalid)?;
        let date = study.string(STUDY_DATE).map_err(invalid)?;
        let path = format!("/studies/{study_uid}/series");
        let series = server.qido(
            &path,
            &[
                ("Modality", "SM"),
                ("includefield", "SeriesInstanceUID"),
                ("includefield", "SeriesDescription"),
                ("includefield", "NumberOfSeriesRelatedInstances"),
            ],
        )?;
        let series_url = || redact(&format!("{}{path}", server.base));
        let invalid = |what: String| RemoteError::InvalidReply { url: series_url(), what };
        for one in &series {
            let Some(series_uid) = one.string(SERIES_INSTANCE_UID).map_err(invalid)? else {
                return Err(invalid("a series without a SeriesInstanceUID".into()));
            };
            out.push(SeriesEntry {
                study_instance_uid: study_uid.clone(),
                series_instance_uid: series_uid,
                accession_number: accession.clone(),
                study_date: date.clone(),
                series_description: one.string(SERIES_DESCRIPTION).map_err(invalid)?,
                number_of_instances: one.integer(NUMBER_OF_SERIES_RELATED_INSTANCES).map_err(invalid)?,
            });
        }
    }
    Ok(out)
}

/// Largest WADO-RS series metadata reply read (128 MiB: a sparse level's per-frame functional
/// groups make large replies).
pub const METADATA_MAX_BYTES: u64 = 128 << 20;

/// Explicit VR little endian: what every server can send frames as (PS3.18 §8.7.3.5.2).
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Whether `location` names a DICOMweb series: an http(s) URL whose path ends
/// `/studies/{StudyInstanceUID}/series/{SeriesInstanceUID}` (a trailing `/` allowed).
pub fn is_series_url(location: &str) -> bool {
    super::is_http(location) && split_series_path(location).is_some()
}

/// The URL without its query and fragment, cut at `/studies/S/series/SE`: (base, S, SE).
fn split_series_path(location: &str) -> Option<(&str, &str, &str)> {
    let path = location.split(['?', '#']).next()?.trim_end_matches('/');
    let (rest, series) = path.rsplit_once("/series/")?;
    let (base, study) = rest.rsplit_once("/studies/")?;
    (valid_uid(study) && valid_uid(series) && base.contains("://")).then_some((base, study, series))
}

/// How frames are asked for (PS3.18 §8.7.3.5; tried in this order, each once the one before
/// was refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameAccept {
    /// As stored (`transfer-syntax=*`): no decoding or re-encoding by the server.
    Stored,
    /// Explicit VR little endian, the syntax every server must offer.
    Uncompressed,
    /// Rendered (`…/frames/N/rendered`), one frame a request, as a consumer image (JPEG).
    Rendered,
}

impl FrameAccept {
    /// What the server sends in this mode, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            FrameAccept::Stored => "as stored",
            FrameAccept::Uncompressed => "uncompressed",
            FrameAccept::Rendered => "rendered",
        }
    }
}

/// One frame of a WADO-RS reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The part's media type (lower case), e.g. `image/jpeg`.
    pub media_type: String,
    /// Its transfer syntax: the part's `transfer-syntax` parameter, else implied by the media
    /// type (`image/jpeg` baseline, `image/jp2` JPEG 2000, `application/octet-stream` explicit
    /// VR little endian). `None` for rendered frames.
    pub transfer_syntax: Option<String>,
    /// The frame's bytes.
    pub data: Vec<u8>,
}

/// A series on a DICOMweb server, named by its WADO-RS URL.
pub struct SeriesLocation {
    server: Server,
    study: String,
    series: String,
}

impl SeriesLocation {
    /// The series at `url` (`https://host/dicom-web/studies/S/series/SE`); credentials as for
    /// [`Server::new`].
    pub fn new(url: &str, auth: Auth) -> Result<SeriesLocation, RemoteError> {
        let Some((base, study, series)) = split_series_path(url) else {
            return Err(RemoteError::BadUrl { url: redact(url) });
        };
        let (study, series) = (study.to_string(), series.to_string());
        Ok(SeriesLocation { server: Server::new(base, auth)?, study, series })
    }

    /// The series' URL as it may be shown (no credentials, query or fragment).
    pub fn display_url(&self) -> String {
        format!("{}/studies/{}/series/{}", self.server.display_url(), self.study, self.series)
    }

    /// The StudyInstanceUID and SeriesInstanceUID of the URL.
    pub fn uids(&self) -> (&str, &str) {
        (&self.study, &self.series)
    }

    fn url(&self, tail: &str) -> url::Url {
        let mut url = self.server.base.clone();
        url.set_path(&format!("{}/studies/{}/series/{}{tail}", self.server.base.path(), self.study, self.series));
        url
    }

    fn get(&self, url: &url::Url, accept: &str, max_bytes: u64) -> Result<super::http::SmallReply, RemoteError> {
        let shown = redact(url.as_str());
        let authorization = self.server.auth.header();
        let mut headers = vec![("Accept", accept)];
        if let Some(value) = authorization.as_deref() {
            headers.push(("Authorization", value));
        }
        super::http::get_reply(url.as_str(), &shown, &headers, max_bytes)
    }

    /// WADO-RS series metadata: one JSON object (the DICOM JSON model) per instance.
    pub fn metadata(&self) -> Result<Vec<serde_json::Map<String, Value>>, RemoteError> {
        let url = self.url("/metadata");
        let reply = self.get(&url, "application/dicom+json, application/json", METADATA_MAX_BYTES)?;
        let invalid = |what: String| RemoteError::InvalidReply { url: redact(url.as_str()), what };
        let value: Value = serde_json::from_slice(&reply.body).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let Value::Array(items) = value else {
            return Err(invalid(format!("series metadata must be an array of data sets, not {}", kind(&value))));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(map),
                other => Err(invalid(format!("data set {i} is {}, not an object", kind(&other)))),
            })
            .collect()
    }

    /// The SOPInstanceUIDs of every instance of the series (any SOP class), from its metadata,
    /// sorted. An instance without a valid UID is [`RemoteError::InvalidReply`].
    pub fn instance_uids(&self) -> Result<Vec<String>, RemoteError> {
        let mut uids = Vec::new();
        for map in self.metadata()? {
            let uid = DataSet(map).string("00080018");
            match uid {
                Ok(Some(uid)) if valid_uid(&uid) => uids.push(uid),
                _ => {
                    return Err(RemoteError::InvalidReply {
                        url: format!("{}/metadata", self.display_url()),
                        what: "an instance without a valid SOPInstanceUID".into(),
                    })
                }
            }
        }
        uids.sort();
        Ok(uids)
    }

    /// Retrieve instance `instance` (WADO-RS, as stored: the file the server keeps) and pass
    /// its bytes to `each` as they arrive, until it returns false. Returns whether the
    /// instance was passed whole. The multipart reply must hold exactly one part.
    pub fn stream_instance(&self, instance: &str, mut each: impl FnMut(&[u8]) -> bool) -> Result<bool, RemoteError> {
        if !valid_uid(instance) {
            return Err(RemoteError::InvalidReply {
                url: self.display_url(),
                what: format!("an invalid SOPInstanceUID {:?}", crate::error::printable(instance)),
            });
        }
        let url = self.url(&format!("/instances/{instance}"));
        let shown = redact(url.as_str());
        let invalid = |what: String| RemoteError::InvalidReply { url: shown.clone(), what };
        let authorization = self.server.auth.header();
        let mut headers = vec![("Accept", r#"multipart/related; type="application/dicom"; transfer-syntax=*"#)];
        if let Some(value) = authorization.as_deref() {
            headers.push(("Authorization", value));
        }
        let mut part: Option<super::multipart::SinglePart> = None;
        let mut failure: Option<String> = None;
        let mut stopped = false;
        let (_, read_whole) = super::http::get_streamed(url.as_str(), &shown, &headers, |content_type, bytes| {
            if part.is_none() {
                let media = content_type
                    .and_then(super::multipart::MediaType::parse)
                    .filter(|t| t.essence == "multipart/related");
                let made = match media.as_ref().and_then(|m| m.param("boundary")) {
                    Some(boundary) => super::multipart::SinglePart::new(boundary),
                    None => Err("an instance not sent as multipart/related with a boundary".to_string()),
                };
                match made {
                    Ok(stream) => part = Some(stream),
                    Err(e) => {
                        failure = Some(e);
                        return false;
                    }
                }
            }
            let Some(stream) = part.as_mut() else { return false };
            let fed = stream.feed(bytes, &mut |b| {
                if !stopped && !each(b) {
                    stopped = true;
                }
            });
            if let Err(e) = fed {
                failure = Some(e);
                return false;
            }
            !stopped
        })?;
        if let Some(what) = failure {
            return Err(invalid(what));
        }
        if stopped || !read_whole {
            return Ok(false);
        }
        match part {
            Some(stream) => stream.finish().map_err(invalid)?,
            None => return Err(invalid("an empty reply".into())),
        }
        Ok(true)
    }

    /// Frames `numbers` (1-based) of instance `instance` in one WADO-RS request, in that order,
    /// as `accept` asks ([`FrameAccept::Rendered`]: exactly one number). The reply is read up to
    /// `max_bytes`; a reply whose parts do not match the request (count, media type) is
    /// [`RemoteError::InvalidReply`]. A server refusing the request's media type answers
    /// [`RemoteError::Status`] 400, 406 or 415: try the next [`FrameAccept`].
    pub fn frames(
        &self,
        instance: &str,
        numbers: &[u64],
        accept: FrameAccept,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, RemoteError> {
        let bad_uid = || RemoteError::InvalidReply {
            url: self.display_url(),
            what: format!("an invalid SOPInstanceUID {:?}", crate::error::printable(instance)),
        };
        if !valid_uid(instance) {
            return Err(bad_uid());
        }
        let list: Vec<String> = numbers.iter().map(u64::to_string).collect();
        if accept == FrameAccept::Rendered {
            let url = self.url(&format!("/instances/{instance}/frames/{}/rendered", list.join(",")));
            // One type: some servers (Orthanc) refuse a list with q-values.
            let reply = self.get(&url, "image/jpeg", max_bytes)?;
            let invalid = |what: String| RemoteError::InvalidReply { url: redact(url.as_str()), what };
            let media = reply
                .content_type
                .as_deref()
                .and_then(super::multipart::MediaType::parse)
                .map(|t| t.essence)
                .ok_or_else(|| invalid("a rendered frame without a valid Content-Type".into()))?;
            if media != "image/jpeg" && media != "image/png" {
                return Err(invalid(format!("a rendered frame of type {media:?} (image/jpeg or image/png expected)")));
            }
            return Ok(vec![Frame { media_type: media, transfer_syntax: None, data: reply.body }]);
        }
        let url = self.url(&format!("/instances/{instance}/frames/{}", list.join(",")));
        let accept_header = match accept {
            FrameAccept::Stored => {
                r#"multipart/related; type="application/octet-stream"; transfer-syntax=*"#.to_string()
            }
            _ => format!(r#"multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_VR_LE}"#),
        };
        let reply = self.get(&url, &accept_header, max_bytes)?;
        let invalid = |what: String| RemoteError::InvalidReply { url: redact(url.as_str()), what };
        let whole = reply
            .content_type
            .as_deref()
            .and_then(super::multipart::MediaType::parse)
            .filter(|t| t.essence == "multipart/related")
            .ok_or_else(|| invalid("frames not sent as multipart/related".into()))?;
        let boundary = whole.param("boundary").ok_or_else(|| invalid("a multipart reply without a boundary".into()))?;
        let default_type = whole.param("type").and_then(super::multipart::MediaType::parse);
        let parts = super::multipart::parse(&reply.body, boundary).map_err(&invalid)?;
        if parts.len() != numbers.len() {
            return Err(invalid(format!("{} frames sent for the {} asked for", parts.len(), numbers.len())));
        }
        let mut body = reply.body;
        let mut frames = Vec::with_capacity(parts.len());
        // Parts in reverse, so that each can be cut off the end of the body without a copy of it.
        for part in parts.iter().rev() {
            let media = match part.header("content-type") {
                Some(value) => super::multipart::MediaType::parse(value)
                    .ok_or_else(|| invalid("a part with an invalid Content-Type".into()))?,
                None => default_type.clone().ok_or_else(|| invalid("a part without a Content-Type".into()))?,
            };
            let implied = match media.essence.as_str() {
                "image/jpeg" => "1.2.840.10008.1.2.4.50",
                "image/jp2" | "image/jpx" => "1.2.840.10008.1.2.4.90",
                "application/octet-stream" => EXPLICIT_VR_LE,
                other => return Err(invalid(format!("a frame of type {other:?}"))),
            };
            let syntax = match media.param("transfer-syntax") {
                Some(ts) if valid_uid(ts) => ts.to_string(),
                Some(ts) => {
                    return Err(invalid(format!("a frame of transfer syntax {:?}", crate::error::printable(ts))))
                }
                None => implied.to_string(),
            };
            let data = body.split_off(part.body.start);
            body.truncate(part.body.start);
            let mut data = data;
            data.truncate(part.body.len());
            frames.push(Frame { media_type: media.essence, transfer_syntax: Some(syntax), data });
        }
        frames.reverse();
        Ok(frames)
    }
}

/// A DICOM UID: digits and dots, at most 64 characters.
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// One data set of a DICOM JSON reply: attributes by tag (`"0020000D"`).
#[derive(Debug)]
pub struct DataSet(serde_json::Map<String, Value>);

/// The data sets of a DICOM JSON reply: an array of objects (an empty body is none).
pub fn parse_data_sets(body: &[u8]) -> Result<Vec<DataSet>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err(format!("DICOM JSON must be an array of data sets, not {}", kind(&value)));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => Ok(DataSet(map)),
            other => Err(format!("data set {i} is {}, not an object", kind(&other))),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl DataSet {
    /// The first value of attribute `tag`, if the data set has one (`Value` missing, empty, or
    /// its first item null: `None`).
    fn first(&self, tag: &str) -> Result<Option<&Value>, String> {
        let Some(attribute) = self.0.get(tag).or_else(|| self.0.get(&tag.to_ascii_lowercase())) else {
            return Ok(None);
        };
        let Value::Object(attribute) = attribute else {
            return Err(format!("attribute {tag} is {}, not an object", kind(attribute)));
        };
        match attribute.get("Value") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(values)) => Ok(values.first().filter(|v| !v.is_null())),
            Some(other) => Err(format!("the Value of attribute {tag} is {}, not an array", kind(other))),
        }
    }

    /// The first value of `tag` as text (a string; numbers are written out), made printable;
    /// an empty string is `None`.
    pub fn string(&self, tag: &str) -> Result<Option<String>, String> {
        let text = match self.first(tag)? {
            None => return Ok(None),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => return Err(format!("the value of attribute {tag} is {}, not a string", kind(other))),
        };
        Ok((!text.is_empty()).then(|| crate::error::printable(&text)))
    }

    /// The first value of `tag` as a non-negative integer (a JSON number, or a string of digits
    /// as some servers send IS values).
    pub fn integer(&self, tag: &str) -> Result<Option<u64>, String> {
        let wrong = |v: &Value| format!("the value of attribute {tag} is {}, not a whole number", kind(v));
        match self.first(tag)? {
            None => Ok(None),
            Some(v @ Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| wrong(v)),
            Some(v @ Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| wrong(v)),
            Some(other) => Err(wrong(other)),
        }
    }
}

/// Largest netrc file read (1 MiB).
const NETRC_MAX_BYTES: u64 = 1 << 20;

/// The login and password for `host` in the netrc file (`NETRC`, else `~/.netrc`), as curl
/// reads it: `machine HOST login USER password PASS`, else the `default` entry. A file that
/// is missing, unreadable or not text gives none (it is optional).
pub fn netrc_login(host: &str) -> Option<(String, String)> {
    let path = match std::env::var_os("NETRC") {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => Path::new(&std::env::var_os("HOME")?).join(".netrc"),
    };
    let bytes = crate::files::read_regular(&path, NETRC_MAX_BYTES).ok()?;
    parse_netrc(std::str::from_utf8(&bytes).ok()?, host)
}

/// [`netrc_login`] of the text of a netrc file. Macro definitions (`macdef`, up to an empty
/// line) are skipped; quoted tokens are not supported (curl's older rule).
fn parse_netrc(text: &str, host: &str) -> Option<(String, String)> {
    // Entries: (machine, login, password); machine None is `default`.
    let mut entries: Vec<(Option<String>, Option<String>, Option<String>)> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut tokens = line.split_whitespace();
        while let Some(token) = tokens.next() {
            match token {
                "machine" => entries.push((Some(tokens.next()?.to_string()), None, None)),
                "default" => entries.push((None, None, None)),
                "login" => entries.last_mut()?.1 = Some(tokens.next()?.to_string()),
                "password" => entries.last_mut()?.2 = Some(tokens.next()?.to_string()),
                "account" => {
                    tokens.next();
                }
                "macdef" => {
                    for rest in lines.by_ref() {
                        if rest.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    let found = entries
        .iter()
        .find(|(m, _, _)| m.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(host)))
        .or_else(|| entries.iter().find(|(m, _, _)| m.is_none()))?;
    Some((found.1.clone()?, found.2.clone()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORTHANC_SERIES: &str = r#"[{
        "00080020": {"Value": ["20260115"], "vr": "DA"},
        "00080050": {"vr": "SH"},
        "0008103E": {"Value": ["HE \u001b[31mstain"], "vr": "LO"},
        "00100010": {"Value": [{"Alphabetic": "Synthetic^Slide"}], "vr": "PN"},
        "0020000D": {"Value": ["1.2.3"], "vr": "UI"},
        "0020000E": {"Value": ["1.2.3.4"], "vr": "UI"},
        "00201209": {"Value": [7], "vr": "IS"}
    }]"#;

    #[test]
    fn dicom_json_attributes_are_read() {
        let sets = parse_data_sets(ORTHANC_SERIES.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sets.len(), 1);
        let set = &sets[0];
        assert_eq!(set.string(STUDY_INSTANCE_UID), Ok(Some("1.2.3".into())));
        assert_eq!(set.string(SERIES_INSTANCE_UID), Ok(Some("1.2.3.4".into())));
        assert_eq!(set.string(STUDY_DATE), Ok(Some("20260115".into())));
        // Present without a value, or absent: none.
        assert_eq!(set.string(ACCESSION_NUMBER), Ok(None));
        assert_eq!(set.string("00204000"), Ok(None));
        assert_eq!(set.integer(NUMBER_OF_SERIES_RELATED_INSTANCES), Ok(Some(7)));
        // Server text cannot reach the terminal as control codes.
        let description = set.string(SERIES_DESCRIPTION).ok().flatten().unwrap_or_default();
        assert!(description.starts_with("HE") && !description.contains('\u{1b}'), "{description:?}");
        // A person name is an object: the wrong type for text.
        assert!(set.string("00100010").is_err_and(|e| e.contains("00100010")));
    }

    #[test]
    fn integers_may_come_as_strings_and_lowercase_tags_are_found() {
        let sets =
            parse_data_sets(br#"[{"00201209": {"vr": "IS", "Value": [" 12 "]}, "0020000d": {"Value": ["9.8"]}}]"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sets[0].integer(NUMBER_OF_SERIES_RELATED_INSTANCES), Ok(Some(12)));
        assert_eq!(sets[0].string(STUDY_INSTANCE_UID), Ok(Some("9.8".into())));
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        assert_eq!(parse_data_sets(b"").map(|v| v.len()), Ok(0));
        assert_eq!(parse_data_sets(b"[]").map(|v| v.len()), Ok(0));
        assert!(parse_data_sets(b"<html>").is_err_and(|e| e.contains("not JSON")));
        assert!(parse_data_sets(b"{}").is_err_and(|e| e.contains("array")));
        assert!(parse_data_sets(b"[1]").is_err_and(|e| e.contains("data set 0")));
        let set = |json: &str| parse_data_sets(json.as_bytes()).unwrap_or_else(|e| panic!("{e}")).remove(0);
        assert!(set(r#"[{"0020000D": "1.2"}]"#).string(STUDY_INSTANCE_UID).is_err());
        assert!(set(r#"[{"0020000D": {"Value": "1.2"}}]"#).string(STUDY_INSTANCE_UID).is_err());
        assert!(set(r#"[{"0020000D": {"Value": [true]}}]"#).string(STUDY_INSTANCE_UID).is_err());
        assert!(set(r#"[{"00201209": {"Value": [-1]}}]"#).integer(NUMBER_OF_SERIES_RELATED_INSTANCES).is_err());
        assert!(set(r#"[{"00201209": {"Value": ["x"]}}]"#).integer(NUMBER_OF_SERIES_RELATED_INSTANCES).is_err());
        assert_eq!(set(r#"[{"0020000D": {"Value": []}}]"#).string(STUDY_INSTANCE_UID), Ok(None));
        assert_eq!(set(r#"[{"0020000D": {"Value": [null]}}]"#).string(STUDY_INSTANCE_UID), Ok(None));
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_are_never_shown() {
        let server = Server::new("https://ann:p%40ss@pacs.example:8443/dicom-web/?x=1", Auth::Bearer("t".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(server.display_url(), "https://pacs.example:8443/dicom-web");
        assert!(matches!(&server.auth, Auth::Basic(u, p) if u == "ann" && p == "p@ss"));
        assert!(!format!("{:?}", server.auth).contains("p@ss"));
        assert!(Server::new("ftp://h/x", Auth::None).is_err());
        assert_eq!(Auth::Basic("a".into(), "b".into()).header().as_deref(), Some("Basic YTpi"));
    }

    #[test]
    fn uids_are_checked() {
        assert!(valid_uid("2.25.338442516557130060480796277156051759519"));
        assert!(!valid_uid("1.2/../x"));
        assert!(!valid_uid(""));
        assert!(!valid_uid(&"1".repeat(65)));
    }

    #[test]
    fn netrc_entries_by_host_then_default() {
        let text = "machine other.example login a password b\n\
                    macdef init\nmachine pacs.example login evil password x\n\n\
                    machine PACS.example\n  login ann\n  password s3cret\n\
                    default login anon password guest\n";
        assert_eq!(parse_netrc(text, "pacs.example"), Some(("ann".into(), "s3cret".into())));
        assert_eq!(parse_netrc(text, "other.example"), Some(("a".into(), "b".into())));
        assert_eq!(parse_netrc(text, "unknown.example"), Some(("anon".into(), "guest".into())));
        assert_eq!(parse_netrc("machine h login only", "h"), None);
        assert_eq!(parse_netrc("login x password y", "h"), None);
    }
}
