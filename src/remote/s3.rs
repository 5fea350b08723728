//! `s3://bucket/key`: an object in an S3-compatible store, read over HTTP(S) with requests
//! presigned by AWS Signature Version 4 (the `rusty-s3` crate), each signed anew just before it is
//! sent. Where the bucket is, and as whom, follows the AWS command line's conventions:
//!
//! - credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`); else the
//!   profile (`AWS_PROFILE`, default `default`) of the shared credentials file
//!   (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`), then of the config file
//!   (`AWS_CONFIG_FILE`, default `~/.aws/config`, sections `[default]` and `[profile NAME]`);
//!   with none, requests are unsigned (a public bucket);
//! - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`;
//! - endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`, with
//!   path-style addressing (`ENDPOINT/bucket/key`, what S3-compatible servers expect); else
//!   AWS's regional endpoint with virtual-host addressing (path style for bucket names with dots,
//!   which a TLS certificate for `*.s3…` cannot cover).
//!
//! Only the `s3://bucket/key` form is ever shown: presigned URLs carry the access key id and the
//! signature in their query string.

use std::borrow::Cow;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::RemoteError;

/// How long a presigned request stays valid. Every request is signed just before it is sent, so
/// this only needs to cover clock skew and retries.
const PRESIGN_FOR: Duration = Duration::from_secs(15 * 60);

/// Largest shared config or credentials file read (1 MiB).
const CONFIG_MAX_BYTES: u64 = 1 << 20;

/// One object in an S3-compatible store, with what it takes to sign requests for it.
pub(super) struct S3Object {
    bucket: Bucket,
    credentials: Option<Credentials>,
    key: String,
    /// `s3://bucket/key`, [`printable`](crate::error::printable).
    shown: String,
}

impl std::fmt::Debug for S3Object {
    // Never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Object").field("object", &self.shown).finish_non_exhaustive()
    }
}

/// Whether `location` is an `s3://` URL (any case).
pub(super) fn is_s3(location: &str) -> bool {
    location.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("s3://"))
}

impl S3Object {
    /// The object named by `s3://bucket/key`, configured from the process's environment.
    pub(super) fn from_env(location: &str) -> Result<Self, RemoteError> {
        Self::configure(location, &|name| std::env::var(name).ok())
    }

    /// The object named by `s3://bucket/key`, configured from the variables `var` gives (the
    /// environment, in use; a table, in tests) and the files they name.
    pub(super) fn configure(location: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Self, RemoteError> {
        let shown = super::redact(location);
        let bad = |what: &str| RemoteError::S3Config { url: shown.clone(), what: what.to_string() };
        let rest = location.get(5..).filter(|_| is_s3(location)).ok_or_else(|| bad("not an s3:// URL"))?;
        let (bucket_name, key) = rest.split_once('/').ok_or_else(|| bad("no object key after the bucket name"))?;
        if bucket_name.is_empty() || key.is_empty() {
            return Err(bad("expected s3://bucket/key"));
        }
        if bucket_name.contains(['@', ':']) {
            return Err(bad("credentials in an s3:// URL are not used (and not shown): give them in \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile"));
        }
        let var = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let profile_name = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let home = var("HOME");
        let file = |variable: &str, default: &str| {
            var(variable).or_else(|| home.as_ref().map(|h| format!("{h}/.aws/{default}")))
        };
        let read = |path: Option<String>| -> Result<Vec<(String, String, String)>, RemoteError> {
            match path {
                Some(path) => read_ini(std::path::Path::new(&path))
                    .map_err(|e| bad(&format!("cannot read {}: {e}", crate::error::printable(&path)))),
                None => Ok(Vec::new()),
            }
        };
        let credentials_file = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))?;
        let config_file = read(file("AWS_CONFIG_FILE", "config"))?;
        // The config file names profiles `[profile NAME]`; `[default]` (or `[profile default]`).
        let config_section =
            if profile_name == "default" && !config_file.iter().any(|(section, _, _)| section == "profile default") {
                "default".to_string()
            } else {
                format!("profile {profile_name}")
            };
        let from_profile = |key: &str| {
            lookup(&credentials_file, &profile_name, key).or_else(|| lookup(&config_file, &config_section, key))
        };
        let profile_exists = credentials_file.iter().any(|(section, _, _)| *section == profile_name)
            || config_file.iter().any(|(section, _, _)| *section == config_section);
        if var("AWS_PROFILE").is_some() && !profile_exists {
            return Err(bad(&format!(
                "the profile {} (AWS_PROFILE) is in neither the shared credentials nor the config file",
                crate::error::printable(&profile_name)
            )));
        }
        let named = crate::error::printable(&profile_name);
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Some(credentials(id, secret, var("AWS_SESSION_TOKEN"))),
            (Some(_), None) => return Err(bad("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")),
            (None, Some(_)) => return Err(bad("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")),
            (None, None) => match (from_profile("aws_access_key_id"), from_profile("aws_secret_access_key")) {
                (Some(id), Some(secret)) => Some(credentials(id, secret, from_profile("aws_session_token"))),
                (None, None) => {
                    // Credentials got another way than static keys: refused, never sent unsigned.
                    let other =
                        ["credential_process", "sso_session", "sso_start_url", "role_arn", "web_identity_token_file"]
                            .into_iter()
                            .find(|key| from_profile(key).is_some());
                    if let Some(key) = other {
                        return Err(bad(&format!(
                            "the profile {named} gets its credentials by {key}, which wsiview does not support: \
                             give static keys (aws_access_key_id, aws_secret_access_key) or a presigned URL"
                        )));
                    }
                    None
                }
                _ => {
                    return Err(bad(&format!(
                        "the profile {named} has only one of aws_access_key_id and aws_secret_access_key"
                    )))
                }
            },
        };
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| lookup(&config_file, &config_section, "region"))
            .unwrap_or_else(|| "us-east-1".into());
        let custom = var("AWS_ENDPOINT_URL_S3")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| lookup(&config_file, &config_section, "endpoint_url"));
        let (endpoint, style) = match &custom {
            Some(endpoint) => (endpoint.clone(), UrlStyle::Path),
            None if bucket_name.contains('.') => (format!("https://s3.{region}.amazonaws.com"), UrlStyle::Path),
            None => (format!("https://s3.{region}.amazonaws.com"), UrlStyle::VirtualHost),
        };
        let endpoint: url::Url = endpoint.parse().map_err(|_| {
            bad(&format!("the endpoint {} is not a valid URL", super::redact(custom.as_deref().unwrap_or(""))))
        })?;
        let bucket = Bucket::new(endpoint, style, Cow::Owned(bucket_name.to_string()), Cow::Owned(region))
            .map_err(|e| bad(&format!("cannot address bucket {}: {e}", crate::error::printable(bucket_name))))?;
        Ok(S3Object { bucket, credentials, key: key.to_string(), shown })
    }

    /// Whether requests go over plain http (an S3-compatible store's `http://` endpoint).
    pub(super) fn unencrypted(&self) -> bool {
        self.bucket.base_url().scheme() == "http"
    }

    /// `s3://bucket/key`: the only form shown.
    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    /// A GET URL for the object, presigned now for [`PRESIGN_FOR`] (unsigned without
    /// credentials). Holds the access key id and signature: send it, never show it.
    pub(super) fn presigned_get(&self) -> String {
        self.bucket.get_object(self.credentials.as_ref(), &self.key).sign(PRESIGN_FOR).to_string()
    }
}

fn credentials(id: String, secret: String, token: Option<String>) -> Credentials {
    match token {
        Some(token) => Credentials::new_with_token(id, secret, token),
        None => Credentials::new(id, secret),
    }
}

/// A shared AWS config or credentials file as (section, key, value) triples, sections and keys
/// as written. Indented lines (nested settings such as `s3 =` blocks) and comments are skipped.
fn read_ini(path: &std::path::Path) -> std::io::Result<Vec<(String, String, String)>> {
    let text = match crate::files::read_regular(path, CONFIG_MAX_BYTES) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))?,
        // A missing file is the usual case: configuration from the environment only.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut section = String::new();
    let mut entries = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.split_whitespace().collect::<Vec<_>>().join(" ");
        } else if let Some((key, value)) = line.split_once('=') {
            entries.push((section.clone(), key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    Ok(entries)
}

/// The last non-empty value of `key` in `section`.
fn lookup(entries: &[(String, String, String)], section: &str, key: &str) -> Option<String> {
    entries.iter().rev().find(|(s, k, v)| s == section && k == key && !v.is_empty()).map(|(_, _, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn configure(location: &str, vars: &[(&str, &str)]) -> Result<S3Object, RemoteError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        S3Object::configure(location, &|name| vars.get(name).cloned())
    }

    #[test]
    fn environment_credentials_sign_path_style_requests_to_a_custom_endpoint() {
        let object = configure(
            "s3://slides/cases/H26-1.svs",
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "SECRET"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                ("AWS_REGION", "eu-west-2"),
            ],
        )
        .unwrap();
        let url = object.presigned_get();
        assert!(url.starts_with("http://127.0.0.1:9000/slides/cases/H26-1.svs?"), "{url}");
        assert!(url.contains("X-Amz-Signature="), "{url}");
        assert!(url.contains("%2Feu-west-2%2Fs3%2F"), "{url}");
        assert_eq!(object.shown(), "s3://slides/cases/H26-1.svs");
        assert!(object.unencrypted());
        assert!(!format!("{object:?}").contains("SECRET"));
    }

    #[test]
    fn aws_defaults_virtual_host_and_us_east_1_unsigned_without_credentials() {
        let object = configure("s3://slides/a.svs", &[]).unwrap();
        assert!(!object.unencrypted());
        assert_eq!(object.presigned_get(), "https://slides.s3.us-east-1.amazonaws.com/a.svs");
        let dotted = configure("s3://my.slides/a.svs", &[]).unwrap();
        assert_eq!(dotted.presigned_get(), "https://s3.us-east-1.amazonaws.com/my.slides/a.svs");
    }

    #[test]
    fn profiles_come_from_the_shared_files() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = x\n\n\
             # the lab's profile\n[lab]\naws_access_key_id=LABKEY\naws_secret_access_key = y\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[profile lab]\nregion = eu-central-1\nendpoint_url = https://store.lab.example:8443\ns3 =\n  addressing_style = path\n",
        )
        .unwrap();
        let files = [
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ];
        let default = configure("s3://b/k.svs", &files).unwrap().presigned_get();
        assert!(default.contains("X-Amz-Credential=DEFAULTKEY%2F"), "{default}");
        assert!(default.starts_with("https://b.s3.us-east-1.amazonaws.com/k.svs?"), "{default}");
        let mut with_profile = files.to_vec();
        with_profile.push(("AWS_PROFILE", "lab"));
        let lab = configure("s3://b/k.svs", &with_profile).unwrap().presigned_get();
        assert!(lab.starts_with("https://store.lab.example:8443/b/k.svs?"), "{lab}");
        assert!(lab.contains("X-Amz-Credential=LABKEY%2F") && lab.contains("%2Feu-central-1%2F"), "{lab}");
        // The environment's keys win over the files'.
        with_profile.extend([("AWS_ACCESS_KEY_ID", "ENVKEY"), ("AWS_SECRET_ACCESS_KEY", "z")]);
        let env = configure("s3://b/k.svs", &with_profile).unwrap().presigned_get();
        assert!(env.contains("X-Amz-Credential=ENVKEY%2F"), "{env}");
    }

    #[test]
    fn incomplete_or_unsupported_credentials_are_errors_not_unsigned_requests() {
        let e = configure("s3://b/k", &[("AWS_ACCESS_KEY_ID", "A")]).unwrap_err().to_string();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY is not"), "{e}");
        let e = configure("s3://b/k", &[("AWS_PROFILE", "nowhere")]).unwrap_err().to_string();
        assert!(e.contains("profile nowhere") && e.contains("neither"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(&config, "[profile sso]\nsso_session = hospital\n[profile default]\nregion = eu-west-2\n")
            .unwrap();
        let files = [("AWS_CONFIG_FILE", config.to_str().unwrap()), ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")];
        let mut sso = files.to_vec();
        sso.push(("AWS_PROFILE", "sso"));
        let e = configure("s3://b/k", &sso).unwrap_err().to_string();
        assert!(e.contains("sso_session") && e.contains("not support"), "{e}");
        // `[profile default]` is the default profile too.
        let url = configure("s3://b/k", &files).unwrap().presigned_get();
        assert!(url.starts_with("https://b.s3.eu-west-2.amazonaws.com/"), "{url}");
        // Credentials in the URL are refused, and not repeated.
        let e = configure("s3://KEYID:hunter2@b/k", &[]).unwrap_err().to_string();
        assert!(e.contains("s3://b/k") && !e.contains("hunter2") && !e.contains("KEYID"), "{e}");
    }

    #[test]
    fn bad_locations_and_endpoints_are_named_errors() {
        for location in ["s3://bucket", "s3://bucket/", "s3:///key", "https://h/x"] {
            let e = configure(location, &[]).unwrap_err().to_string();
            assert!(e.contains("s3://") || e.contains("https://h/x"), "{e}");
        }
        let e = configure("s3://b/k", &[("AWS_ENDPOINT_URL", "not a url")]).unwrap_err().to_string();
        assert!(e.contains("endpoint"), "{e}");
    }
}
