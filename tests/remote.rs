//! Remote slides over HTTP: a real nginx on 127.0.0.1 serves the test slides (byte-exact against
//! the local files, and the CLI), and a fault-injecting server written here answers range
//! requests itself with 503s, 429s, a changed ETag, a whole body, 403 and 404.
//!
//! nginx (Debian's package) is started once for the whole test binary; without it the nginx
//! tests skip with a message, unless `WSIVIEW_REQUIRE_NGINX=1` (CI), then they fail. The s3://
//! tests (remote/s3.rs) and the DICOMweb tests against Orthanc (remote/dicomweb.rs) do the same
//! with their own servers.

mod common;
#[path = "remote/dicomweb.rs"]
mod dicomweb;
#[path = "remote/registry.rs"]
mod registry;
#[path = "remote/s3.rs"]
mod s3;
#[path = "remote/tls.rs"]
mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wsiview::{Limits, Slide};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-slides/sample.svs")
}

// ---------------------------------------------------------------------------------------------
// nginx

/// A running nginx serving `root` on 127.0.0.1:`port` (http), and on `tls` (https) when the
/// openssl command line could make a private CA; killed on drop.
struct Nginx {
    port: u16,
    root: PathBuf,
    tls: Option<Tls>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/sbin/nginx");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("nginx")).find(|p| p.is_file())
}

/// The slides nginx serves, by the name in the URL.
fn served_slides() -> Vec<(String, PathBuf)> {
    let mut slides = vec![("sample.svs".to_string(), sample())];
    let vendors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/vendors");
    for name in ["hamamatsu.ndpi", "philips.tiff", "ventana.bif", "leica.scn", "aperio-j2k-rgb.svs"] {
        if vendors.join(name).is_file() {
            slides.push((name.to_string(), vendors.join(name)));
        }
    }
    slides
}

/// Served too, but not a slide that reads remotely yet.
fn served_others() -> Vec<(String, PathBuf)> {
    let dicom = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/vendors/dicom-dev/level-0.dcm");
    if dicom.is_file() {
        vec![("level-0.dcm".to_string(), dicom)]
    } else {
        vec![]
    }
}

/// The https side of the test nginx.
#[derive(Clone)]
struct Tls {
    port: u16,
    /// The private CA's certificate (PEM), which signed the server's.
    ca: PathBuf,
}

fn run_openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A private CA and a certificate it signed for 127.0.0.1, in `dir`: (ca.pem, server.pem,
/// server.key); None when the openssl command line is missing (then CI fails, see [`nginx_tls`]).
fn make_test_pki(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = [&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]].concat();
    let ca_ext = [
        "-subj",
        "/CN=wsiview test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    let csr = [&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .ok()?;
    let sign = [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ];
    let ok = run_openssl(dir, &[&ca[..], &ca_ext].concat()) && run_openssl(dir, &csr) && run_openssl(dir, &sign);
    ok.then(|| (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key")))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"))
}

fn start_nginx() -> Nginx {
    let binary = nginx_binary().unwrap_or_else(|| panic!("nginx is not installed"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().join("www");
    std::fs::create_dir(&root).unwrap_or_else(|e| panic!("{e}"));
    for (name, path) in served_slides().into_iter().chain(served_others()) {
        std::os::unix::fs::symlink(&path, root.join(&name)).unwrap_or_else(|e| panic!("{e}"));
    }
    // A copy that one test rewrites while a slide is open.
    std::fs::copy(sample(), root.join("mutable.svs")).unwrap_or_else(|e| panic!("{e}"));
    let port = free_port();
    let pki = make_test_pki(dir.path());
    let tls = pki.as_ref().map(|(ca, _, _)| Tls { port: free_port(), ca: ca.clone() });
    // https: the slides, and a redirect to plain http that must never be followed.
    let tls_server = match (&pki, &tls) {
        (Some((_, cert, key)), Some(tls)) => format!(
            "  server {{\n    listen 127.0.0.1:{tls_port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
               root {root};\n    location = /downgrade.svs {{ return 301 http://127.0.0.1:{port}/sample.svs; }}\n  }}\n",
            tls_port = tls.port,
            cert = cert.display(),
            key = key.display(),
            root = root.display()
        ),
        _ => String::new(),
    };
    let d = dir.path().display();
    let config = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  default_type application/octet-stream;\n\
           client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n{tls_server}}}\n",
        root = root.display()
    );
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config).unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(binary);
    command
        .args(["-p", &d.to_string(), "-e", &format!("{d}/error.log"), "-c", &conf.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // The server outlives no test run: statics are never dropped, so it dies with this process
    // (the thread that spawns it never exits; PDEATHSIG is per thread).
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap_or_else(|e| panic!("nginx: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("nginx exited ({status}): {stderr}{log}");
        }
        assert!(Instant::now() < deadline, "nginx does not answer on port {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Nginx { port, root, tls, child, _dir: dir }
}

/// The nginx of this test run, started on first use; `None` (skip) when nginx is not installed,
/// unless `WSIVIEW_REQUIRE_NGINX=1`.
fn nginx() -> Option<u16> {
    nginx_server().map(|(port, _)| port)
}

/// The port and the served folder of [`nginx`].
fn nginx_server() -> Option<(u16, &'static Path)> {
    nginx_full().map(|(port, root, _)| (port, root))
}

/// The https side of [`nginx`]: `None` (skip) without nginx or the openssl command line, unless
/// `WSIVIEW_REQUIRE_NGINX=1`.
fn nginx_tls() -> Option<Tls> {
    let (_, _, tls) = nginx_full()?;
    assert!(
        tls.is_some() || std::env::var("WSIVIEW_REQUIRE_NGINX").as_deref() != Ok("1"),
        "https tests need the openssl command line (WSIVIEW_REQUIRE_NGINX=1)"
    );
    if tls.is_none() {
        eprintln!("skipped: no openssl command line to make a test CA");
    }
    tls.clone()
}

fn nginx_full() -> Option<(u16, &'static Path, &'static Option<Tls>)> {
    static SERVER: OnceLock<Option<(u16, PathBuf, Option<Tls>)>> = OnceLock::new();
    let server = SERVER.get_or_init(|| {
        if nginx_binary().is_none() {
            assert!(
                std::env::var("WSIVIEW_REQUIRE_NGINX").as_deref() != Ok("1"),
                "nginx is required (WSIVIEW_REQUIRE_NGINX=1) but not installed"
            );
            eprintln!("skipped: nginx is not installed (apt-get install nginx)");
            return None;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let server = start_nginx();
            let _ = tx.send((server.port, server.root.clone(), server.tls.clone()));
            // Keep the server (and this thread, its PDEATHSIG parent) for the whole run.
            loop {
                std::thread::park();
            }
            #[allow(unreachable_code)]
            drop(server);
        });
        Some(rx.recv().unwrap_or_else(|_| panic!("nginx did not start (see the panic above)")))
    });
    server.as_ref().map(|(port, root, tls)| (*port, root.as_path(), tls))
}

fn url(port: u16, name: &str) -> String {
    format!("http://127.0.0.1:{port}/{name}")
}

// ---------------------------------------------------------------------------------------------
// byte-exact against the local files

fn same_slide(name: &str, local_path: &Path, port: u16) {
    let local = Slide::open(local_path).unwrap_or_else(|e| panic!("{e}"));
    let remote = Slide::open_location(&url(port, name), Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(remote.path(), Path::new(&url(port, name)), "{name}: the remote slide is named by its URL");
    assert_eq!(remote.format_name(), local.format_name(), "{name}");
    assert_eq!(remote.properties(), local.properties(), "{name}: properties");
    assert_eq!(remote.levels(), local.levels(), "{name}: levels");
    assert_eq!(remote.associated_names(), local.associated_names(), "{name}");
    for level in 0..local.levels().len() {
        let l = &local.levels()[level];
        let ds = l.downsample;
        let (w0, h0) = (local.levels()[0].width as i64, local.levels()[0].height as i64);
        // The centre, and a region over the bottom-right edge (partly outside the slide).
        for (x, y) in [(w0 / 2, h0 / 2), (w0 - (200.0 * ds) as i64, h0 - (150.0 * ds) as i64)] {
            let a = local.read_region(level, x, y, 300, 300).unwrap_or_else(|e| panic!("{e}"));
            let b = remote.read_region(level, x, y, 300, 300).unwrap_or_else(|e| panic!("{e}"));
            assert!(a.as_raw() == b.as_raw(), "{name}: level {level} region at {x},{y} differs");
        }
    }
    let a = local.thumbnail(400).unwrap_or_else(|e| panic!("{e}"));
    let b = remote.thumbnail(400).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.dimensions(), b.dimensions(), "{name}: thumbnail size");
    assert!(a.as_raw() == b.as_raw(), "{name}: thumbnail differs");
    for assoc in local.associated_names() {
        let a = local.read_associated(&assoc).unwrap_or_else(|e| panic!("{e}"));
        let b = remote.read_associated(&assoc).unwrap_or_else(|e| panic!("{e}"));
        assert!(a == b, "{name}: associated image {assoc} differs");
    }
}

#[test]
fn remote_slides_read_the_same_bytes_as_local_files() {
    let Some(port) = nginx() else { return };
    let slides = served_slides();
    if common::fixtures().is_some() {
        assert!(slides.len() >= 4, "vendor fixtures missing: {slides:?}");
    }
    for (name, path) in slides {
        same_slide(&name, &path, port);
    }
}

#[test]
fn a_dicom_instance_at_a_url_is_refused_clearly() {
    let Some(port) = nginx() else { return };
    if common::fixtures().is_none() {
        return;
    }
    let err = Slide::open_location(&url(port, "level-0.dcm"), Limits::DEFAULT).err().map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(err.contains("open the series by its DICOMweb URL") && err.contains(&url(port, "level-0.dcm")), "{err}");
}

#[test]
fn a_slide_rewritten_on_nginx_is_an_error_not_mixed_pixels() {
    let Some((port, root)) = nginx_server() else { return };
    let slide = Slide::open_location(&url(port, "mutable.svs"), Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    // Same length, other bytes and modification time: nginx's ETag (mtime-length) changes, and
    // the If-Match of the next request fails with 412.
    let path = root.join("mutable.svs");
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let file = std::fs::File::options().write(true).open(&path).unwrap_or_else(|e| panic!("{e}"));
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    drop(file);
    // Level-0 tiles at the centre: bytes not fetched at open.
    let (w, h) = (slide.levels()[0].width as i64, slide.levels()[0].height as i64);
    let err = slide.read_region(0, w / 2, h / 2, 1024, 1024).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("changed on the server") && err.contains(&url(port, "mutable.svs")), "{err}");
}

#[test]
fn a_missing_object_says_not_found_and_never_prints_credentials() {
    let Some(port) = nginx() else { return };
    let secret_url = format!("http://user:pass@127.0.0.1:{port}/missing.svs?X-Amz-Signature=SECRET");
    let err = Slide::open_location(&secret_url, Limits::DEFAULT).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("not found"), "{err}");
    assert!(err.contains(&format!("http://127.0.0.1:{port}/missing.svs")), "{err}");
    assert!(!err.contains("pass") && !err.contains("SECRET") && !err.contains("user"), "{err}");
}

#[test]
fn cli_info_of_a_url_equals_info_of_the_file() {
    let Some(port) = nginx() else { return };
    let run = |slide: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_wsiview"))
            .args(["info", slide, "--json"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
        (json, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let address = url(port, "sample.svs");
    let (mut remote, stderr) = run(&address);
    let (mut local, local_stderr) = run(&sample().display().to_string());
    assert_eq!(remote["file"], address.as_str());
    assert_eq!(stderr.trim(), "wsiview: warning: URL is not encrypted (http)");
    assert!(!local_stderr.contains("not encrypted"));
    remote["file"].take();
    local["file"].take();
    assert_eq!(remote, local);

    // A failing command names the redacted URL in its one error line.
    let out = Command::new(env!("CARGO_BIN_EXE_wsiview"))
        .args(["thumbnail", &format!("http://u:pw@127.0.0.1:{port}/nope.svs?sig=SECRET"), "-o", "/dev/null"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("http://127.0.0.1:{port}/nope.svs")) && stderr.contains("not found"), "{stderr}");
    assert!(!stderr.contains("pw") && !stderr.contains("SECRET"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// A server that answers range requests from memory, with faults

/// What the fault server does with one request (numbered from 0).
enum Answer {
    /// 206 with the bytes asked for, under this ETag (ignoring any If-Match).
    Serve(&'static str),
    /// This status with these headers and no body.
    Status(u16, &'static [(&'static str, &'static str)]),
    /// 200 with the whole body, ignoring Range.
    Whole,
    /// 206 announcing the range asked for, but the connection closes after half of it.
    Short,
    /// 206 with the bytes one further on than asked for.
    Shifted,
    /// The connection closes without a reply.
    Hangup,
    /// [`Answer::Serve`] after 100 ms.
    Slow(&'static str),
    /// No reply at all, the connection kept open for 10 s (a server that stalls).
    Stall,
}

struct FaultServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    /// Requests that carried an `If-Match` header.
    if_match: Arc<AtomicUsize>,
}

fn fault_server(body: Arc<Vec<u8>>, answer: impl Fn(usize) -> Answer + Send + 'static) -> FaultServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let requests = Arc::new(AtomicUsize::new(0));
    let if_match = Arc::new(AtomicUsize::new(0));
    let (counter, conditional) = (requests.clone(), if_match.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            // Errors here are the client hanging up early (as it must on an oversized body).
            let _ = answer_one(stream, &body, answer(n), &conditional);
        }
    });
    FaultServer { port, requests, if_match }
}

fn answer_one(stream: TcpStream, body: &[u8], answer: Answer, if_match: &AtomicUsize) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if line.to_ascii_lowercase().starts_with("if-match:") {
            if_match.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            let (a, b) = v.trim().split_once('-').unwrap_or(("0", "0"));
            range = Some((a.parse::<usize>().unwrap_or(0), b.parse::<usize>().unwrap_or(0)));
        }
    }
    let mut out = stream;
    match answer {
        Answer::Hangup => return out.shutdown(std::net::Shutdown::Both),
        Answer::Stall => {
            // Held open on another thread, so that the server goes on answering.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(10));
                drop(out);
            });
            return Ok(());
        }
        Answer::Slow(etag) => {
            std::thread::sleep(Duration::from_millis(100));
            return answer_one_serve(out, body, range, etag);
        }
        Answer::Serve(etag) => return answer_one_serve(out, body, range, etag),
        Answer::Status(status, headers) => {
            write!(out, "HTTP/1.1 {status} Fault\r\nContent-Length: 0\r\nConnection: close\r\n")?;
            for (k, v) in headers {
                write!(out, "{k}: {v}\r\n")?;
            }
            write!(out, "\r\n")?;
        }
        Answer::Short => {
            let (start, end) = range.unwrap_or((0, body.len() - 1));
            let end = end.min(body.len() - 1);
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len(),
                end + 1 - start
            )?;
            out.write_all(&body[start..start + (end + 1 - start) / 2])?;
        }
        Answer::Shifted => {
            let (start, end) = range.unwrap_or((0, body.len() - 2));
            let (start, end) = (start + 1, (end + 1).min(body.len() - 1));
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len(),
                end + 1 - start
            )?;
            out.write_all(&body[start..=end])?;
        }
        Answer::Whole => {
            write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
            out.write_all(body)?;
        }
    }
    out.flush()
}

fn answer_one_serve(mut out: TcpStream, body: &[u8], range: Option<(usize, usize)>, etag: &str) -> std::io::Result<()> {
    let etag = if etag.starts_with("W/") { etag.to_string() } else { format!("\"{etag}\"") };
    let (start, end) = range.unwrap_or((0, body.len() - 1));
    let end = end.min(body.len() - 1);
    write!(
        out,
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{}\r\nContent-Length: {}\r\n\
         ETag: {etag}\r\nConnection: close\r\n\r\n",
        body.len(),
        end + 1 - start
    )?;
    out.write_all(&body[start..=end])?;
    out.flush()
}

fn sample_bytes() -> Arc<Vec<u8>> {
    Arc::new(std::fs::read(sample()).unwrap_or_else(|e| panic!("{e}")))
}

/// Open the URL and read a thumbnail; the error's text if any step fails.
fn open_and_read(url: &str) -> Result<(), String> {
    let slide = Slide::open_location(url, Limits::DEFAULT).map_err(|e| e.to_string())?;
    slide.thumbnail(256).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn a_503_is_retried() {
    let server = fault_server(sample_bytes(), |n| if n == 0 { Answer::Status(503, &[]) } else { Answer::Serve("a") });
    let url = format!("http://127.0.0.1:{}/s.svs", server.port);
    let local =
        Slide::open(&sample()).unwrap_or_else(|e| panic!("{e}")).thumbnail(256).unwrap_or_else(|e| panic!("{e}"));
    let remote = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    assert!(remote.thumbnail(256).unwrap_or_else(|e| panic!("{e}")) == local);
    assert!(server.requests.load(Ordering::SeqCst) >= 2);
    // Every request after the first is conditional on the pinned (strong) ETag.
    assert_eq!(server.if_match.load(Ordering::SeqCst), server.requests.load(Ordering::SeqCst) - 2);
}

#[test]
fn a_429_waits_for_retry_after() {
    let server = fault_server(sample_bytes(), |n| {
        if n == 0 {
            Answer::Status(429, &[("Retry-After", "1")])
        } else {
            Answer::Serve("a")
        }
    });
    let started = Instant::now();
    open_and_read(&format!("http://127.0.0.1:{}/s.svs", server.port)).unwrap_or_else(|e| panic!("{e}"));
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
}

#[test]
fn persistent_5xx_fails_after_the_retries() {
    let server = fault_server(sample_bytes(), |_| Answer::Status(502, &[]));
    let err = open_and_read(&format!("http://127.0.0.1:{}/s.svs", server.port)).err().unwrap_or_default();
    assert!(err.contains("HTTP 502"), "{err}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1 + wsiview::remote::MAX_RETRIES as usize);
}

#[test]
fn a_slide_that_changes_on_the_server_is_an_error() {
    let server = fault_server(sample_bytes(), |n| Answer::Serve(if n == 0 { "old" } else { "new" }));
    let url = format!("http://127.0.0.1:{}/s.svs?token=SECRET", server.port);
    let err = open_and_read(&url).err().unwrap_or_default();
    assert!(err.contains(&format!("http://127.0.0.1:{}/s.svs", server.port)), "{err}");
    assert!(err.contains("changed on the server") && !err.contains("SECRET"), "{err}");
}

#[test]
fn a_weak_etag_is_compared_but_not_sent_as_if_match() {
    // The fault server ignores If-Match, so what is checked is that a weak ETag that stays the
    // same reads fine, and one that changes is caught.
    let server = fault_server(sample_bytes(), |_| Answer::Serve("W/\"w1\""));
    open_and_read(&format!("http://127.0.0.1:{}/s.svs", server.port)).unwrap_or_else(|e| panic!("{e}"));
    assert!(server.requests.load(Ordering::SeqCst) > 1);
    assert_eq!(server.if_match.load(Ordering::SeqCst), 0, "a weak ETag is not an If-Match");
    let server = fault_server(sample_bytes(), |n| Answer::Serve(if n == 0 { "W/\"w1\"" } else { "W/\"w2\"" }));
    let err = open_and_read(&format!("http://127.0.0.1:{}/s.svs", server.port)).err().unwrap_or_default();
    assert!(err.contains("changed on the server"), "{err}");
}

#[test]
fn a_412_is_a_changed_slide() {
    let server = fault_server(sample_bytes(), |n| if n == 0 { Answer::Serve("a") } else { Answer::Status(412, &[]) });
    let err = open_and_read(&format!("http://127.0.0.1:{}/s.svs", server.port)).err().unwrap_or_default();
    assert!(err.contains("changed on the server"), "{err}");
}

#[test]
fn a_server_without_ranges_is_refused_for_a_big_file() {
    let big = Arc::new(vec![0u8; (wsiview::remote::WHOLE_BODY_MAX_BYTES + 1024) as usize]);
    let server = fault_server(big, |_| Answer::Whole);
    let err = open_and_read(&format!("http://127.0.0.1:{}/s.svs", server.port)).err().unwrap_or_default();
    assert!(err.contains("ignores range requests"), "{err}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1, "refused, not retried");
}

#[test]
fn a_server_without_ranges_is_accepted_for_a_small_file() {
    let server = fault_server(sample_bytes(), |_| Answer::Whole);
    open_and_read(&format!("http://127.0.0.1:{}/s.svs", server.port)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.requests.load(Ordering::SeqCst), 1, "the whole body is kept");
}

#[test]
fn denied_and_missing_objects_say_so() {
    for (status, words) in [(403, "access denied (HTTP 403)"), (401, "access denied (HTTP 401)"), (404, "not found")] {
        let server = fault_server(sample_bytes(), move |_| Answer::Status(status, &[]));
        let url = format!("http://user:pass@127.0.0.1:{}/s.svs?X-Amz-Signature=SECRET", server.port);
        let err = open_and_read(&url).err().unwrap_or_default();
        assert!(err.contains(words) && err.contains(&format!("127.0.0.1:{}/s.svs", server.port)), "{err}");
        assert!(!err.contains("pass") && !err.contains("SECRET"), "{err}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 1, "{status} is not retried");
    }
}

#[test]
fn redirects_are_followed() {
    // A redirect on http is followed to its target (https → http is refused: tests/remote/tls.rs).
    let target = fault_server(sample_bytes(), |_| Answer::Serve("a"));
    let location: &'static str = Box::leak(format!("http://127.0.0.1:{}/s.svs", target.port).into_boxed_str());
    let leaked: &'static [(&'static str, &'static str)] = Box::leak(vec![("Location", location)].into_boxed_slice());
    let redirect = fault_server(sample_bytes(), move |_| Answer::Status(302, leaked));
    open_and_read(&format!("http://127.0.0.1:{}/r.svs", redirect.port)).unwrap_or_else(|e| panic!("{e}"));
    assert!(target.requests.load(Ordering::SeqCst) >= 1);
}

#[test]
fn a_stalled_server_times_out_and_is_retried() {
    // The first request stalls until the read timeout (1 s here), then the retry succeeds; a
    // server that always stalls fails with "timed out" after the retries.
    let server = fault_server(sample_bytes(), |n| if n == 0 { Answer::Stall } else { Answer::Serve("a") });
    let run = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_wsiview"))
            .args(["info", &format!("http://127.0.0.1:{port}/s.svs")])
            .env("WSIVIEW_NETWORK_TIMEOUT", "1")
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let out = run(server.port);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(server.requests.load(Ordering::SeqCst) >= 2);
    let stalled = fault_server(sample_bytes(), |_| Answer::Stall);
    let out = run(stalled.port);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("timed out"), "{stderr}");
    assert_eq!(stalled.requests.load(Ordering::SeqCst), 1 + wsiview::remote::MAX_RETRIES as usize);
}

#[test]
fn a_short_body_is_retried() {
    let server = fault_server(sample_bytes(), |n| if n == 1 { Answer::Short } else { Answer::Serve("a") });
    let url = format!("http://127.0.0.1:{}/s.svs", server.port);
    let local =
        Slide::open(&sample()).unwrap_or_else(|e| panic!("{e}")).thumbnail(256).unwrap_or_else(|e| panic!("{e}"));
    let remote = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    assert!(remote.thumbnail(256).unwrap_or_else(|e| panic!("{e}")) == local, "the retried bytes are the right ones");
}

#[test]
fn a_dropped_connection_is_retried() {
    let server = fault_server(sample_bytes(), |n| if n == 0 || n == 2 { Answer::Hangup } else { Answer::Serve("a") });
    open_and_read(&format!("http://127.0.0.1:{}/s.svs", server.port)).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn short_bodies_fail_after_the_retries() {
    use wsiview::remote::{HttpSource, MAX_RETRIES, METADATA_SPAN_BYTES};
    use wsiview::tiff::ByteSource;
    let server = fault_server(sample_bytes(), |n| if n == 0 { Answer::Serve("a") } else { Answer::Short });
    let source = HttpSource::open(&format!("http://127.0.0.1:{}/s.svs", server.port)).unwrap_or_else(|e| panic!("{e}"));
    let mut buf = vec![0; 100];
    let err = source.read_data_at(2 * METADATA_SPAN_BYTES, &mut buf).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("the reply ended after"), "{err}");
    assert_eq!(source.requests(), 2 + u64::from(MAX_RETRIES));
}

#[test]
fn a_reply_for_other_bytes_is_an_error() {
    use wsiview::remote::{HttpSource, BLOCK_BYTES, METADATA_SPAN_BYTES};
    use wsiview::tiff::ByteSource;
    let server = fault_server(sample_bytes(), |n| if n == 0 { Answer::Serve("a") } else { Answer::Shifted });
    let source = HttpSource::open(&format!("http://127.0.0.1:{}/s.svs", server.port)).unwrap_or_else(|e| panic!("{e}"));
    let mut buf = vec![0; 100];
    let at = 2 * METADATA_SPAN_BYTES;
    let err = source.read_data_at(at, &mut buf).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("invalid reply to a range request"), "{err}");
    assert_eq!(source.requests(), 2, "not retried");
    // The block asked for and what came: one request, block-aligned.
    assert!(err.contains(&format!("for bytes {at}-{}", at + BLOCK_BYTES - 1)), "{err}");
}

#[test]
fn adjacent_blocks_of_one_read_come_in_one_request_and_are_cached() {
    use wsiview::remote::{HttpSource, BLOCK_BYTES, METADATA_SPAN_BYTES};
    use wsiview::tiff::ByteSource;
    let bytes = sample_bytes();
    let server = fault_server(bytes.clone(), |_| Answer::Serve("a"));
    let source = HttpSource::open(&format!("http://127.0.0.1:{}/s.svs", server.port)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(source.len(), bytes.len() as u64);
    // The first span is cached at open. Data bytes over the span's last block and the next
    // three blocks: one request for the three blocks.
    let (start, len) = (METADATA_SPAN_BYTES as usize - 10, 2 * BLOCK_BYTES as usize + 20);
    let mut buf = vec![0; len];
    source.read_data_at(start as u64, &mut buf).unwrap_or_else(|e| panic!("{e}"));
    assert!(buf == bytes[start..start + len]);
    assert_eq!(source.requests(), 2);
    assert_eq!(source.bytes_fetched(), METADATA_SPAN_BYTES + 3 * BLOCK_BYTES);
    source.read_data_at(start as u64 + 5, &mut buf[..100]).unwrap_or_else(|e| panic!("{e}"));
    source.read_exact_at(start as u64 + 5, &mut buf[..100]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(source.requests(), 2, "read again from the block cache, without read-ahead");
    // A metadata read where nothing is cached brings its whole aligned span in one request,
    // and data reads inside that span need none.
    let span = 3 * METADATA_SPAN_BYTES;
    let before = source.bytes_fetched();
    source.read_exact_at(span + 1000, &mut buf[..100]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((source.requests(), source.bytes_fetched() - before), (3, METADATA_SPAN_BYTES));
    source.read_data_at(span + METADATA_SPAN_BYTES - 50, &mut buf[..50]).unwrap_or_else(|e| panic!("{e}"));
    assert!(buf[..50] == bytes[(span + METADATA_SPAN_BYTES - 50) as usize..(span + METADATA_SPAN_BYTES) as usize]);
    assert_eq!(source.requests(), 3);
    // The last block ends with the object; reads past it are errors without a request.
    let tail = bytes.len() - 7;
    source.read_data_at(tail as u64, &mut buf[..7]).unwrap_or_else(|e| panic!("{e}"));
    assert!(buf[..7] == bytes[tail..]);
    assert!(source.read_exact_at(tail as u64, &mut buf[..8]).is_err());
    assert_eq!(source.requests(), 4);
    // A metadata read at the start of the last, partial span reads ahead only to the end of the
    // object, without the last block, which is cached: one request.
    let len = bytes.len() as u64;
    let (span_start, last_block_start) =
        ((len - 1) / METADATA_SPAN_BYTES * METADATA_SPAN_BYTES, (len - 1) / BLOCK_BYTES * BLOCK_BYTES);
    assert!(last_block_start > span_start, "the sample's last span has several blocks");
    let before = source.bytes_fetched();
    source.read_exact_at(span_start + 10, &mut buf[..100]).unwrap_or_else(|e| panic!("{e}"));
    assert!(buf[..100] == bytes[span_start as usize + 10..span_start as usize + 110]);
    assert_eq!((source.requests(), source.bytes_fetched() - before), (5, last_block_start - span_start));
}

#[test]
fn threads_wanting_one_block_fetch_it_once() {
    use wsiview::remote::{HttpSource, METADATA_SPAN_BYTES};
    use wsiview::tiff::ByteSource;
    let bytes = sample_bytes();
    let server = fault_server(bytes.clone(), |_| Answer::Slow("a"));
    let source = HttpSource::open(&format!("http://127.0.0.1:{}/s.svs", server.port)).unwrap_or_else(|e| panic!("{e}"));
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let (source, bytes) = (&source, &bytes);
            scope.spawn(move || {
                let offset = 3 * METADATA_SPAN_BYTES + t * 1000;
                let mut buf = vec![0; 500];
                source.read_data_at(offset, &mut buf).unwrap_or_else(|e| panic!("{e}"));
                assert!(buf == bytes[offset as usize..offset as usize + 500]);
            });
        }
    });
    assert_eq!(source.requests(), 2, "block 3 fetched once for 8 readers");
}
