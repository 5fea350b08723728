//! Where the registry is and how to reach it: libpq's connection parameters, read as libpq reads
//! them, and a connection with TLS by rustls.
//!
//! Rules (PostgreSQL documentation, "libpq — Connection Strings", "Environment Variables", "The
//! Connection Service File", "The Password File", "SSL Support"):
//! - A target is a URI (`postgresql://user@host:port/dbname?sslmode=verify-full`) or keyword
//!   pairs (`host=db.example dbname=registry`); parameters it leaves out come from the service
//!   named by `service` (or `PGSERVICE`) in `PGSERVICEFILE` or `~/.pg_service.conf`, then
//!   `PGSYSCONFDIR/pg_service.conf`; then from the `PG*` environment variables; then the
//!   defaults (the socket folder `/var/run/postgresql`, port 5432, the system user's name as
//!   user and database, `sslmode=prefer`).
//! - The password comes from the target, `PGPASSWORD`, or the password file (`passfile`,
//!   `PGPASSFILE` or `~/.pgpass`, `host:port:database:user:password` lines with `*` wildcards,
//!   ignored when others may read it). It is never shown: [`Target::shown`] is the URI without it.
//! - `sslmode`: `disable`; `allow` and `prefer` (TLS when the server offers it, its certificate
//!   not checked, as libpq); `require` (TLS, certificate not checked unless a root certificate
//!   file is given or `~/.postgresql/root.crt` exists, then as `verify-ca`); `verify-ca` (the chain
//!   must lead to `sslrootcert`, `~/.postgresql/root.crt`, or with `sslrootcert=system` the
//!   platform's roots); `verify-full` (also the host name).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::RegistryError;
use crate::error::printable;

/// The keywords wsiview understands; any other is refused, as libpq does.
const KEYWORDS: [&str; 12] = [
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "service",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "options",
];

/// The environment variable of each keyword (libpq's).
const ENVIRONMENT: [(&str, &str); 11] = [
    ("host", "PGHOST"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("passfile", "PGPASSFILE"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
];

/// Service and password files are small; anything larger is not one.
const SMALL_FILE_BYTES: u64 = 1 << 20;
/// Unless the target says otherwise: a registry that does not answer in this long is down.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a target was given: a password written on the command line is visible to every user of
/// the machine (`ps`), so it is refused there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `--db` on the command line, or the viewer's settings file.
    CommandLine,
    /// An environment variable (`WSIVIEW_REGISTRY`).
    Environment,
}

/// TLS as `sslmode` asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it; the certificate is not checked.
    Prefer,
    /// TLS; the certificate is not checked.
    Require,
    /// TLS; the chain must lead to a trusted root.
    VerifyCa,
    /// TLS; the chain must lead to a trusted root and name the host.
    VerifyFull,
}

/// A registry to connect to: libpq's parameters with every source applied.
#[derive(Clone)]
pub struct Target {
    params: BTreeMap<String, String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Target {
    /// The target `text` (a URI or keyword pairs; empty for "the environment only") with the
    /// service file, the environment and the defaults applied. A password in `text` is refused
    /// when `origin` is the command line.
    pub fn parse(text: &str, origin: Origin) -> Result<Target, RegistryError> {
        Target::parse_with(text, origin, &|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`Target::parse`] with the environment given by `env` (tests).
    pub fn parse_with(
        text: &str,
        origin: Origin,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Target, RegistryError> {
        let text = text.trim();
        let mut params = if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            parse_uri(text)?
        } else {
            parse_keywords(text)?
        };
        for key in params.keys() {
            if !KEYWORDS.contains(&key.as_str()) {
                return Err(config(format!("unknown connection parameter {:?}", printable(key))));
            }
        }
        if origin == Origin::CommandLine && params.contains_key("password") {
            return Err(config(
                "a password on the command line can be read by every user of this machine: put it in \
                 ~/.pgpass (or PGPASSFILE), or in PGPASSWORD"
                    .into(),
            ));
        }
        if let Some(service) = params.get("service").cloned().or_else(|| env("PGSERVICE")) {
            for (key, value) in read_service(&service, env)? {
                params.entry(key).or_insert(value);
            }
        }
        for (key, var) in ENVIRONMENT {
            if let Some(value) = env(var) {
                params.entry(key.to_string()).or_insert(value);
            }
        }
        let system_user = env("USER").or_else(|| env("LOGNAME")).unwrap_or_else(|| "postgres".into());
        params.entry("host".into()).or_insert_with(|| "/var/run/postgresql".into());
        params.entry("port".into()).or_insert_with(|| "5432".into());
        params.entry("user".into()).or_insert(system_user);
        let user = params.get("user").cloned().unwrap_or_default();
        params.entry("dbname".into()).or_insert(user);
        params.entry("sslmode".into()).or_insert_with(|| "prefer".into());
        if !params.contains_key("password") {
            let home = env("HOME").map(PathBuf::from);
            let file = params.get("passfile").map(PathBuf::from).or_else(|| home.map(|h| h.join(".pgpass")));
            if let Some(password) = file.and_then(|f| password_from_file(&f, &params)) {
                params.insert("password".into(), password);
            }
        }
        if let Some(root) = env("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt")) {
            if !params.contains_key("sslrootcert") && root.is_file() {
                params.insert("sslrootcert".into(), root.display().to_string());
            }
        }
        let target = Target { params };
        target.ssl_mode()?;
        target.port()?;
        Ok(target)
    }

    fn get(&self, key: &str) -> &str {
        self.params.get(key).map(String::as_str).unwrap_or_default()
    }

    /// The target for people: `postgresql://user@host:port/dbname`, never the password.
    pub fn shown(&self) -> String {
        let host = self.get("host");
        let host = if host.starts_with('/') { format!("[{host}]") } else { host.to_string() };
        printable(&format!("postgresql://{}@{}:{}/{}", self.get("user"), host, self.get("port"), self.get("dbname")))
    }

    /// The role wsiview connects as.
    pub fn user(&self) -> &str {
        self.get("user")
    }

    /// Whether a password was found (from the target, `PGPASSWORD` or the password file).
    pub fn has_password(&self) -> bool {
        self.params.contains_key("password")
    }

    fn port(&self) -> Result<u16, RegistryError> {
        self.get("port")
            .parse()
            .map_err(|_| config(format!("port {:?} is not a port number", printable(self.get("port")))))
    }

    /// The `sslmode`, checked.
    pub fn ssl_mode(&self) -> Result<SslMode, RegistryError> {
        Ok(match self.get("sslmode") {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" if self.params.contains_key("sslrootcert") => SslMode::VerifyCa,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(config(format!(
                    "sslmode {:?} is not one of disable, allow, prefer, require, verify-ca, verify-full",
                    printable(other)
                )))
            }
        })
    }

    fn client_config(&self) -> Result<postgres::Config, RegistryError> {
        let mut c = postgres::Config::new();
        let host = self.get("host");
        if host.starts_with('/') {
            c.host_path(host);
        } else {
            c.host(host);
        }
        c.port(self.port()?).user(self.get("user")).dbname(self.get("dbname"));
        if let Some(password) = self.params.get("password") {
            c.password(password);
        }
        c.application_name(self.params.get("application_name").map_or("wsiview", String::as_str));
        if let Some(options) = self.params.get("options") {
            c.options(options);
        }
        let timeout = match self.params.get("connect_timeout") {
            Some(t) => Duration::from_secs(
                t.parse::<u64>()
                    .map_err(|_| config(format!("connect_timeout {:?} is not whole seconds", printable(t))))?
                    .max(2),
            ),
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        c.connect_timeout(timeout);
        // A registry that vanishes mid-push (no reset) is noticed within about a minute, not hours.
        c.keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(60));
        c.ssl_mode(match self.ssl_mode()? {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        Ok(c)
    }

    /// Connect. The error names [`Target::shown`] and says what failed, never the password.
    ///
    /// The whole connection (socket, TLS, authentication) must succeed within the connect timeout
    /// (the client's own timeout covers only the socket): a server that accepts and then never
    /// answers is reported as unreachable, and the thread left waiting ends with its socket.
    pub fn connect(&self) -> Result<postgres::Client, RegistryError> {
        let client_config = self.client_config()?;
        let timeout = client_config.get_connect_timeout().copied().unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls_config()?);
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("registry-connect".into())
            .spawn(move || {
                let _ = sender.send(client_config.connect(tls));
            })
            .map_err(|e| config(format!("cannot start a thread: {e}")))?;
        match receiver.recv_timeout(timeout) {
            Ok(result) => result.map_err(|error| RegistryError::Connect { target: self.shown(), error }),
            Err(_) => Err(RegistryError::Unreachable { target: self.shown(), seconds: timeout.as_secs() }),
        }
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, RegistryError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config(format!("TLS: {e}")))?;
        let mode = self.ssl_mode()?;
        let verifier: Arc<dyn ServerCertVerifier> = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(Unchecked(provider)),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = self.roots()?;
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| config(format!("TLS: {e}")))?;
                if mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
    }

    /// The roots `sslrootcert` names: a PEM file, or `system` for the platform's.
    fn roots(&self) -> Result<rustls::RootCertStore, RegistryError> {
        let mut roots = rustls::RootCertStore::empty();
        let Some(file) = self.params.get("sslrootcert") else {
            return Err(config(format!(
                "sslmode={} needs the registry's CA certificate: give sslrootcert=FILE (or sslrootcert=system)",
                self.get("sslmode")
            )));
        };
        if file == "system" {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            return Ok(roots);
        }
        let shown = printable(file);
        let pem = crate::files::read_regular(Path::new(file), SMALL_FILE_BYTES)
            .map_err(|e| config(format!("cannot read sslrootcert {shown}: {e}")))?;
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => roots
                    .add(CertificateDer::from(cert.der().to_vec()))
                    .map_err(|e| config(format!("sslrootcert {shown}: {e}")))?,
                Ok(_) => {}
                Err(e) => return Err(config(format!("sslrootcert {shown} is not valid PEM: {e}"))),
            }
        }
        if roots.is_empty() {
            return Err(config(format!("sslrootcert {shown} holds no certificate")));
        }
        Ok(roots)
    }
}

/// Whether `text` may be kept in the viewer's settings: a well-formed URI or keyword list with
/// known parameters and no password. Reads no file and no environment (the UI thread may call
/// it); [`Target::parse`] checks the rest.
pub fn check_setting(text: &str) -> Result<(), RegistryError> {
    let text = text.trim();
    let params = if text.starts_with("postgresql://") || text.starts_with("postgres://") {
        parse_uri(text)?
    } else {
        parse_keywords(text)?
    };
    if let Some(key) = params.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
        return Err(config(format!("unknown connection parameter {:?}", printable(key))));
    }
    if params.contains_key("password") {
        return Err(config(
            "a password is never kept in the settings: put it in ~/.pgpass (or PGPASSFILE), or in PGPASSWORD".into(),
        ));
    }
    Ok(())
}

fn config(what: String) -> RegistryError {
    RegistryError::Config(what)
}

/// `postgresql://[user[:password]@][host][:port][/dbname][?keyword=value&…]`.
fn parse_uri(text: &str) -> Result<BTreeMap<String, String>, RegistryError> {
    let url = url::Url::parse(text).map_err(|e| config(format!("not a postgresql:// URI: {e}")))?;
    let decode =
        |s: &str| crate::text::percent_decode(s).ok_or_else(|| config("the URI has a malformed percent escape".into()));
    let mut params = BTreeMap::new();
    if !url.username().is_empty() {
        params.insert("user".into(), decode(url.username())?);
    }
    if let Some(password) = url.password() {
        params.insert("password".into(), decode(password)?);
    }
    if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
        params.insert("host".into(), host.trim_start_matches('[').trim_end_matches(']').to_string());
    }
    if let Some(port) = url.port() {
        params.insert("port".into(), port.to_string());
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() {
        params.insert("dbname".into(), decode(path)?);
    }
    for (key, value) in url.query_pairs() {
        params.insert(key.into_owned(), value.into_owned());
    }
    Ok(params)
}

/// `keyword = value …`, values optionally in single quotes with `\'` and `\\` escapes.
fn parse_keywords(text: &str) -> Result<BTreeMap<String, String>, RegistryError> {
    let mut params = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(params);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(config(format!("{:?} has no value (keyword=value)", printable(&key))));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(config(format!("the value of {:?} has no closing quote", printable(&key)))),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        params.insert(key, value);
    }
}

/// The parameters of `service` from the first service file that defines it.
fn read_service(service: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, RegistryError> {
    let mut files: Vec<PathBuf> = Vec::new();
    match env("PGSERVICEFILE") {
        Some(file) => files.push(file.into()),
        None => files.extend(env("HOME").map(|h| PathBuf::from(h).join(".pg_service.conf"))),
    }
    files.push(
        PathBuf::from(env("PGSYSCONFDIR").unwrap_or_else(|| "/etc/postgresql-common".into())).join("pg_service.conf"),
    );
    for file in files {
        let Ok(bytes) = crate::files::read_regular(&file, SMALL_FILE_BYTES) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        let mut in_service = false;
        let mut found: Option<Vec<(String, String)>> = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_service = name == service;
                if in_service {
                    found = Some(Vec::new());
                }
            } else if in_service {
                let (key, value) = line.split_once('=').ok_or_else(|| {
                    config(format!("service file {}: line {:?} is not keyword=value", file.display(), printable(line)))
                })?;
                let key = key.trim();
                if !KEYWORDS.contains(&key) {
                    return Err(config(format!(
                        "service file {}: unknown connection parameter {:?} in service {:?}",
                        file.display(),
                        printable(key),
                        printable(service)
                    )));
                }
                if let Some(list) = found.as_mut() {
                    list.push((key.to_string(), value.trim().to_string()));
                }
            }
        }
        if let Some(list) = found {
            return Ok(list);
        }
    }
    Err(config(format!("service {:?} is not defined in any service file", printable(service))))
}

/// The password of the first matching line of a password file, unless others may read it.
fn password_from_file(file: &Path, params: &BTreeMap<String, String>) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: password file {} has group or world access; it is ignored (chmod 0600 it)",
                printable(&file.display().to_string())
            );
            return None;
        }
    }
    let bytes = crate::files::read_regular(file, SMALL_FILE_BYTES).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    // A socket connection matches the host name "localhost" (libpq).
    let host = if get("host").starts_with('/') { "localhost" } else { get("host") };
    let wanted = [host, get("port"), get("dbname"), get("user")];
    text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|line| {
        let fields = split_pgpass(line)?;
        let matches = wanted.iter().zip(&fields).all(|(want, field)| field == "*" || field == want);
        matches.then(|| fields[4].clone())
    })
}

/// The five `:`-separated fields of a password file line, with `\:` and `\\` unescaped.
fn split_pgpass(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut()?.extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    (fields.len() == 5).then_some(fields)
}

/// `sslmode` prefer/require without a root certificate: TLS without checking who answers (as
/// libpq); the handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn uris_keywords_environment_and_defaults() {
        let env = env_of(&[("USER", "alice"), ("PGPORT", "6543"), ("PGSSLMODE", "disable"), ("HOME", "/nonexistent")]);
        let t =
            Target::parse_with("postgresql://bob@db.example/registry?application_name=x", Origin::CommandLine, &env)
                .expect("parse");
        assert_eq!(t.shown(), "postgresql://bob@db.example:6543/registry");
        assert_eq!(t.ssl_mode().unwrap(), SslMode::Disable);
        let t =
            Target::parse_with("host=/tmp/sock dbname='my db' user=o\\'k", Origin::CommandLine, &env).expect("parse");
        assert_eq!((t.get("host"), t.get("dbname"), t.get("user")), ("/tmp/sock", "my db", "o'k"));
        let t = Target::parse_with("", Origin::CommandLine, &env).expect("parse");
        assert_eq!(t.shown(), "postgresql://alice@[/var/run/postgresql]:6543/alice");
        assert!(Target::parse_with("hots=x", Origin::CommandLine, &env).unwrap_err().to_string().contains("hots"));
        assert!(Target::parse_with("sslmode=maybe", Origin::CommandLine, &env).is_err());
        assert!(Target::parse_with("port=http", Origin::CommandLine, &env).is_err());
    }

    #[test]
    fn a_password_is_never_shown_and_refused_on_the_command_line() {
        let env = env_of(&[("USER", "alice"), ("HOME", "/nonexistent")]);
        let err =
            Target::parse_with("postgresql://bob:s3cret@h/db", Origin::CommandLine, &env).unwrap_err().to_string();
        assert!(err.contains("pgpass") && !err.contains("s3cret"), "{err}");
        let t = Target::parse_with("postgresql://bob:s3cret@h/db", Origin::Environment, &env).expect("parse");
        assert!(t.has_password());
        assert!(!t.shown().contains("s3cret") && !format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn password_files_match_with_wildcards_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "# comment\nother:5432:*:bob:wrong\nh:*:db:bob:pa\\:ss\\\\word\n*:*:*:*:fallback\n")
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut params: BTreeMap<String, String> = [("host", "h"), ("port", "5432"), ("dbname", "db"), ("user", "bob")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        assert_eq!(password_from_file(&file, &params).as_deref(), Some("pa:ss\\word"));
        params.insert("user".into(), "carol".into());
        assert_eq!(password_from_file(&file, &params).as_deref(), Some("fallback"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(password_from_file(&file, &params), None, "a file others can read is ignored");
    }

    #[test]
    fn services_fill_what_the_target_leaves_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services.conf");
        std::fs::write(&file, "[other]\nhost=x\n[registry]\nhost=db.example\nport=5999\ndbname=reg\n").unwrap();
        let path: &'static str = Box::leak(file.display().to_string().into_boxed_str());
        let vars: &'static [(&str, &str)] =
            Box::leak(vec![("PGSERVICEFILE", path), ("USER", "u"), ("HOME", "/nonexistent")].into_boxed_slice());
        let env = env_of(vars);
        let t = Target::parse_with("service=registry port=6000", Origin::CommandLine, &env).expect("parse");
        assert_eq!(t.shown(), "postgresql://u@db.example:6000/reg");
        assert!(Target::parse_with("service=nope", Origin::CommandLine, &env)
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }

    #[test]
    fn settings_keep_no_password() {
        assert!(check_setting("postgresql://site_rlh@db.example:5432/registry?sslmode=verify-full").is_ok());
        assert!(check_setting("host=db.example dbname=registry").is_ok());
        for bad in ["postgresql://u:secret@h/db", "host=h password=secret", "postgresql://h/db?password=secret"] {
            let e = check_setting(bad).map(|_| String::new()).unwrap_or_else(|e| e.to_string());
            assert!(e.contains("password") && !e.contains("secret"), "{bad}: {e}");
        }
        assert!(check_setting("host=h frobnicate=1").is_err());
    }
}
