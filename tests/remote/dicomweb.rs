//! DICOMweb (`wsiview dicomweb list`) against a real Orthanc with its DICOMweb plugin (Debian's
//! `orthanc` and `orthanc-dicomweb`), on 127.0.0.1 with authentication on, started once for the
//! test binary with its own config, ports and storage folder (never the system service). The
//! DICOM WSI fixture series (`../shared/fixtures/vendors/dicom-dev/`) is uploaded to it.
//!
//! Without Orthanc, its plugin or the fixtures the tests skip with a message, unless
//! `WSIVIEW_REQUIRE_ORTHANC=1` (CI), then they fail. Bad replies come from a tiny server here.

use super::*;

use dicom_dictionary_std::tags;

const USER: &str = "wsiview";
const PASSWORD: &str = "orthanc-test-pw-5e1d";

fn require() -> bool {
    std::env::var("WSIVIEW_REQUIRE_ORTHANC").as_deref() == Ok("1")
}

fn orthanc_binary() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/sbin/Orthanc");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("Orthanc")).find(|p| p.is_file())
}

/// The DICOMweb plugin: where Debian puts it, else what `dpkg -L orthanc-dicomweb` lists.
fn dicomweb_plugin() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/share/orthanc/plugins/libOrthancDicomWeb.so");
    if fixed.is_file() {
        return Some(fixed);
    }
    let out = Command::new("dpkg").args(["-L", "orthanc-dicomweb"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .find(|p| p.to_string_lossy().contains("libOrthancDicomWeb.so") && p.is_file())
}

/// The fixture series' instance files, sorted.
fn fixture_instances() -> Option<Vec<PathBuf>> {
    let dir = common::fixtures()?.join("vendors/dicom-dev");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    (!files.is_empty()).then_some(files)
}

/// (StudyInstanceUID, SeriesInstanceUID) of a fixture instance, read with dicom-object.
fn fixture_uids(path: &Path) -> (String, String) {
    let object = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = |tag| {
        let element = object.element(tag).unwrap_or_else(|e| panic!("{e}"));
        let value = element.to_str().unwrap_or_else(|e| panic!("{e}"));
        value.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string()
    };
    (text(tags::STUDY_INSTANCE_UID), text(tags::SERIES_INSTANCE_UID))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn start_orthanc(binary: &Path, plugin: &Path, instances: &[PathBuf]) -> u16 {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Both ports held at once, so that they differ.
    let listeners: Vec<TcpListener> =
        (0..2).map(|_| TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"))).collect();
    let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap_or_else(|e| panic!("{e}")).port()).collect();
    drop(listeners);
    let (http_port, dicom_port) = (ports[0], ports[1]);
    let storage = dir.path().join("storage");
    let config = serde_json::json!({
        "Name": "wsiview-test",
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        // Orthanc 1.10 cannot bind to loopback only: without remote access it refuses others.
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": true,
        "RegisteredUsers": { USER: PASSWORD },
        "Plugins": [plugin],
        "DicomWeb": { "Enable": true, "Root": "/dicom-web/" },
    });
    let config_path = dir.path().join("orthanc.json");
    std::fs::write(&config_path, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let log_path = dir.path().join("orthanc.log");
    let log = std::fs::File::create(&log_path).unwrap_or_else(|e| panic!("{e}"));
    let log_err = log.try_clone().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(binary);
    command
        .arg(&config_path)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap_or_else(|e| panic!("Orthanc: {e}"));
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let base = format!("http://127.0.0.1:{http_port}");
    let auth = basic(USER, PASSWORD);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("Orthanc exited ({status}): {log}");
        }
        let answer = agent.get(format!("{base}/system")).header("Authorization", &auth).call();
        if answer.as_ref().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "Orthanc does not answer on port {http_port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for path in instances {
        let body = std::fs::read(path).unwrap_or_else(|e| panic!("{e}"));
        let reply = agent
            .post(format!("{base}/instances"))
            .header("Authorization", &auth)
            .header("Content-Type", "application/dicom")
            .send(&body[..])
            .unwrap_or_else(|e| panic!("uploading {}: {e}", path.display()));
        assert_eq!(reply.status(), 200, "uploading {}", path.display());
    }
    std::mem::forget(dir);
    // The child dies with the thread that spawned it (PDEATHSIG), which never exits.
    std::mem::forget(child);
    http_port
}

/// The port of this run's Orthanc, holding the fixture series; `None` (skip) when Orthanc, its
/// DICOMweb plugin or the fixtures are missing, unless `WSIVIEW_REQUIRE_ORTHANC=1`.
fn orthanc() -> Option<u16> {
    static SERVER: OnceLock<Option<u16>> = OnceLock::new();
    *SERVER.get_or_init(|| {
        let missing = |what: &str| {
            assert!(!require(), "Orthanc is required (WSIVIEW_REQUIRE_ORTHANC=1) but {what}");
            eprintln!("skipped: {what}");
            None
        };
        let Some(binary) = orthanc_binary() else {
            return missing("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)");
        };
        let Some(plugin) = dicomweb_plugin() else {
            return missing("the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)");
        };
        let Some(instances) = fixture_instances() else {
            return missing("the DICOM fixtures (../shared/fixtures/vendors/dicom-dev) are absent");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(start_orthanc(&binary, &plugin, &instances));
            loop {
                std::thread::park();
            }
        });
        Some(rx.recv().unwrap_or_else(|_| panic!("Orthanc did not start (see the panic above)")))
    })
}

/// Run wsiview with only the DICOMweb credentials given here.
fn wsiview_dicomweb(args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsiview"));
    command.arg("dicomweb").args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("WSIVIEW_DICOMWEB_") {
            command.env_remove(name);
        }
    }
    // No netrc file of the machine's either.
    command.env("NETRC", "/nonexistent/netrc");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().unwrap_or_else(|e| panic!("{e}"))
}

/// Environment variables of one run.
type Vars = Vec<(&'static str, &'static str)>;

fn credentials() -> [(&'static str, &'static str); 2] {
    [("WSIVIEW_DICOMWEB_USER", USER), ("WSIVIEW_DICOMWEB_PASSWORD", PASSWORD)]
}

fn expected_uids() -> (String, String) {
    let instances = fixture_instances().unwrap_or_else(|| panic!("fixtures are present when Orthanc runs"));
    let uids = fixture_uids(&instances[0]);
    for other in &instances[1..] {
        assert_eq!(fixture_uids(other), uids, "the fixture is one series");
    }
    uids
}

fn json_list(args: &[&str], vars: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let out = wsiview_dicomweb(&[&["list"], args, &["--json"]].concat(), vars);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    match serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}")) {
        serde_json::Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

#[test]
fn dicomweb_list_finds_the_uploaded_series() {
    let Some(port) = orthanc() else { return };
    let (study, series) = expected_uids();
    let url = format!("http://127.0.0.1:{port}/dicom-web");

    let items = json_list(&[&url], &credentials());
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item["StudyInstanceUID"], study.as_str());
    assert_eq!(item["SeriesInstanceUID"], series.as_str());
    assert_eq!(item["StudyDate"], "20260115");
    assert_eq!(item["NumberOfSeriesRelatedInstances"], fixture_instances().map_or(0, |f| f.len()));
    // Absent on the server: null, but always there.
    assert_eq!(item["AccessionNumber"], serde_json::Value::Null);
    let mut keys: Vec<&String> = item.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    keys.sort();
    assert_eq!(
        keys,
        [
            "AccessionNumber",
            "NumberOfSeriesRelatedInstances",
            "SeriesDescription",
            "SeriesInstanceUID",
            "StudyDate",
            "StudyInstanceUID"
        ]
    );

    // The table: a header and one aligned row. Credentials in the URL work as well.
    let out = wsiview_dicomweb(&["list", &format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}/dicom-web/")], &[]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("Study UID") && lines[0].contains("Series UID"), "{text}");
    assert!(lines[1].contains(&study) && lines[1].contains(&series) && lines[1].contains("20260115"), "{text}");
    assert_eq!(lines[0].find("Series UID"), lines[1].find(&series), "columns are aligned:\n{text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(PASSWORD));
}

#[test]
fn dicomweb_list_filters_by_study_and_accession() {
    let Some(port) = orthanc() else { return };
    let (study, series) = expected_uids();
    let url = format!("http://127.0.0.1:{port}/dicom-web");
    let items = json_list(&[&url, "--study", &study], &credentials());
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["SeriesInstanceUID"], series.as_str());
    assert!(json_list(&[&url, "--study", "1.2.3.4.5"], &credentials()).is_empty());
    assert!(json_list(&[&url, "--accession", "NO-SUCH-ACCESSION"], &credentials()).is_empty());
    // Nothing found: said in the table form.
    let out = wsiview_dicomweb(&["list", &url, "--study", "1.2.3.4.5"], &credentials());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no slide microscopy series"));
    // Not a UID: refused before any request.
    let out = wsiview_dicomweb(&["list", &url, "--study", "1.2/../x"], &credentials());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a DICOM UID"));
}

#[test]
fn a_wrong_password_is_access_denied_and_never_printed() {
    let Some(port) = orthanc() else { return };
    let wrong = "wrong-Secret-93b1";
    let url = format!("http://127.0.0.1:{port}/dicom-web");
    let in_url = format!("http://{USER}:{wrong}@127.0.0.1:{port}/dicom-web");
    let token = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(token.path(), format!("{wrong}\n")).unwrap_or_else(|e| panic!("{e}"));
    let token_path = token.path().display().to_string();
    let cases: Vec<(Vec<&str>, Vars)> = vec![
        (vec!["list", &url], vec![("WSIVIEW_DICOMWEB_USER", USER), ("WSIVIEW_DICOMWEB_PASSWORD", wrong)]),
        (vec!["list", &in_url], vec![]),
        (vec!["list", &url, "--json"], vec![("WSIVIEW_DICOMWEB_TOKEN", wrong)]),
        (vec!["list", &url, "--token-file", &token_path], vec![]),
        // No credentials at all.
        (vec!["list", &url], vec![]),
    ];
    for (args, vars) in cases {
        let out = wsiview_dicomweb(&args, &vars);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("{url}/studies: access denied (HTTP 401)")), "{args:?}: {stderr}");
        assert!(!stdout.contains(wrong) && !stderr.contains(wrong), "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
}

// ---------------------------------------------------------------------------------------------
// A server that answers every request with one DICOM JSON body

struct JsonServer {
    port: u16,
    /// The Authorization header of each request (empty when absent).
    authorization: Arc<std::sync::Mutex<Vec<String>>>,
}

fn json_server(body: Vec<u8>) -> JsonServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let authorization = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = authorization.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // Errors are the client hanging up early (as it must on an oversized body).
            let _ = answer_json(stream, &body, &seen);
        }
    });
    JsonServer { port, authorization }
}

fn answer_json(stream: TcpStream, body: &[u8], seen: &std::sync::Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_string();
            }
        }
    }
    if let Ok(mut seen) = seen.lock() {
        seen.push(authorization);
    }
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(body)?;
    out.flush()
}

#[test]
fn a_bad_dicom_json_reply_is_a_clear_error_not_a_panic() {
    let mut huge = b"[".to_vec();
    huge.resize((17 << 20) - 1, b' ');
    huge.push(b']');
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"<html>not json</html>".to_vec(), "not JSON"),
        (br#"{"0020000D": {}}"#.to_vec(), "must be an array"),
        (br#"[{"0020000D": {"vr": "UI", "Value": "1.2.3"}}]"#.to_vec(), "0020000D"),
        (br#"[{"0020000D": {"vr": "UI", "Value": [{"Alphabetic": "x"}]}}]"#.to_vec(), "not a string"),
        (br#"[{"00080020": {"vr": "DA", "Value": ["20260101"]}}]"#.to_vec(), "without a StudyInstanceUID"),
        (br#"[{"0020000D": {"vr": "UI", "Value": ["1.2/../../x"]}}]"#.to_vec(), "invalid StudyInstanceUID"),
        (huge, "over 16 MiB"),
    ];
    for (body, what) in cases {
        let server = json_server(body);
        let url = format!("http://{USER}:{PASSWORD}@127.0.0.1:{}/dicom-web?key=SECRETQUERY", server.port);
        let out = wsiview_dicomweb(&["list", &url], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        // The warning that http:// is not encrypted, then the error on one line.
        let errors: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("wsiview: warning:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        let named = format!("wsiview: http://127.0.0.1:{}/dicom-web/studies: invalid reply (", server.port);
        assert!(errors[0].starts_with(&named), "{what}: {stderr}");
        assert!(stderr.contains(what), "{what}: {stderr}");
        assert!(!stderr.contains("internal error") && !stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains(PASSWORD) && !stderr.contains("SECRETQUERY"), "{stderr}");
    }
}

#[test]
fn a_series_reply_of_the_wrong_shape_names_the_series_url() {
    // The same body for both queries: a study with a UID, whose series reply has none.
    let server = json_server(br#"[{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}]"#.to_vec());
    let out = wsiview_dicomweb(&["list", &format!("http://127.0.0.1:{}/dw", server.port)], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{}/dw/studies/1.2.3/series: invalid reply", server.port))
            && stderr.contains("without a SeriesInstanceUID"),
        "{stderr}"
    );
}

#[test]
fn credentials_are_sent_as_an_authorization_header() {
    let server = json_server(b"[]".to_vec());
    let url = format!("http://127.0.0.1:{}/dicom-web", server.port);
    let token = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(token.path(), "file-token\n").unwrap_or_else(|e| panic!("{e}"));
    let runs: Vec<(Vec<String>, Vars, String)> = vec![
        (vec![url.clone()], vec![("WSIVIEW_DICOMWEB_TOKEN", "env-token")], "Bearer env-token".into()),
        (
            vec![url.clone(), "--token-file".into(), token.path().display().to_string()],
            vec![("WSIVIEW_DICOMWEB_TOKEN", "env-token")],
            "Bearer file-token".into(),
        ),
        (
            vec![url.clone()],
            vec![("WSIVIEW_DICOMWEB_USER", "u"), ("WSIVIEW_DICOMWEB_PASSWORD", "p w")],
            basic("u", "p w"),
        ),
        (vec![format!("http://a%40b:p%3Aw@127.0.0.1:{}/dicom-web", server.port)], vec![], basic("a@b", "p:w")),
        (vec![url.clone()], vec![], String::new()),
    ];
    for (args, vars, expected) in runs {
        let args: Vec<&str> = std::iter::once("list").chain(args.iter().map(String::as_str)).collect();
        let out = wsiview_dicomweb(&args, &vars);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let seen = server.authorization.lock().map(|mut s| s.drain(..).collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(seen, [expected], "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Opening a series by its WADO-RS URL

fn series_url(port: u16, userinfo: &str) -> String {
    let (study, series) = expected_uids();
    format!("http://{userinfo}127.0.0.1:{port}/dicom-web/studies/{study}/series/{series}")
}

fn dicom_folder() -> PathBuf {
    common::fixtures().map(|f| f.join("vendors/dicom-dev")).unwrap_or_default()
}

/// Every tile of every level and every associated image of `web` against the folder's reading:
/// the largest and the mean difference over all of them.
fn compare_with_folder(web: &Slide) -> (u8, f64) {
    let local = Slide::open(&dicom_folder()).unwrap_or_else(|e| panic!("{e}"));
    // Levels as the folder's; their compression is what the frames come in.
    let shape = |s: &Slide| -> Vec<_> {
        s.levels().iter().map(|l| (l.width, l.height, l.downsample, l.tile_width, l.tile_height)).collect()
    };
    assert_eq!(shape(web), shape(&local), "levels");
    assert_eq!(web.properties().mpp_x, local.properties().mpp_x);
    assert_eq!(web.properties().mpp_y, local.properties().mpp_y);
    assert_eq!(web.properties().objective_power, local.properties().objective_power);
    assert_eq!(web.associated_names(), local.associated_names());
    let (mut max, mut sum, mut n) = (0u8, 0.0, 0.0);
    for (level, info) in local.levels().iter().enumerate() {
        for row in 0..info.tiles_down() {
            for col in 0..info.tiles_across() {
                let a = local.read_tile(level, col, row).unwrap_or_else(|e| panic!("{e}"));
                let b = web.read_tile(level, col, row).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!((a.width, a.height), (b.width, b.height));
                let (m, mean) = common::diff(&a.rgba, &b.rgba);
                max = max.max(m);
                sum += mean;
                n += 1.0;
            }
        }
    }
    for name in local.associated_names() {
        let a = local.read_associated(&name).unwrap_or_else(|e| panic!("{e}"));
        let b = web.read_associated(&name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.dimensions(), b.dimensions(), "{name}");
        let (m, mean) = common::diff(a.as_raw(), b.as_raw());
        max = max.max(m);
        sum += mean;
        n += 1.0;
    }
    (max, sum / n)
}

#[test]
fn a_series_opens_by_its_url_with_the_pixels_of_its_folder() {
    let Some(port) = orthanc() else { return };
    let url = series_url(port, &format!("{USER}:{PASSWORD}@"));
    let web = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(web.path(), Path::new(&series_url(port, "")), "named by the URL without credentials");
    assert_eq!(web.format_name(), "dicom");
    // Frames come as stored: decoding the same JPEG bytes gives the same pixels.
    assert_eq!(compare_with_folder(&web), (0, 0.0));
    assert_eq!(web.levels(), Slide::open(&dicom_folder()).unwrap_or_else(|e| panic!("{e}")).levels());
    let warnings: Vec<_> = web.properties().values.keys().filter(|k| k.starts_with("wsiview.warning")).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn a_series_url_with_a_wrong_password_is_access_denied_and_never_printed() {
    let Some(port) = orthanc() else { return };
    let wrong = "wrong-Secret-7c2e";
    let thumbnail = std::env::temp_dir().join(format!("wsiview-denied-{}.png", std::process::id()));
    let cases: Vec<(Vec<String>, Vars)> = vec![
        (vec!["info".into(), series_url(port, &format!("{USER}:{wrong}@"))], vec![]),
        (
            vec!["thumbnail".into(), series_url(port, ""), "-o".into(), thumbnail.display().to_string()],
            vec![("WSIVIEW_DICOMWEB_USER", USER), ("WSIVIEW_DICOMWEB_PASSWORD", wrong)],
        ),
    ];
    for (args, vars) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsiview"));
        command.args(&args).envs(vars);
        let out = command.output().unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("access denied (HTTP 401)"), "{stderr}");
        assert!(stderr.contains(&series_url(port, "")), "names the series: {stderr}");
        assert!(!stderr.contains(wrong) && !String::from_utf8_lossy(&out.stdout).contains(wrong));
        assert!(!thumbnail.exists());
    }
}

/// What the proxy does with a request.
#[derive(Clone, Copy)]
enum Proxy {
    /// Forward everything.
    Pass,
    /// 406 for frames asked for as stored (`transfer-syntax=*`).
    NoStored,
    /// 406 for every multipart frames request (only rendered frames work).
    RenderedOnly,
    /// Frames replies cut short by 100 bytes (with a Content-Length that says so).
    Truncate,
    /// 400 for the second frames request only (the first is the probe while opening).
    SecondIs400,
}

/// A proxy on 127.0.0.1 in front of Orthanc that does `what`; returns its port and the frames
/// requests it saw ("ACCEPT PATH").
fn proxy(orthanc_port: u16, what: Proxy) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = forward(stream, orthanc_port, what, &log);
            });
        }
    });
    (port, seen)
}

fn forward(
    stream: TcpStream,
    orthanc_port: u16,
    what: Proxy,
    log: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
        let accept = get("accept");
        let frames = path.contains("/frames/");
        if frames {
            if let Ok(mut log) = log.lock() {
                log.push(format!("{accept} {path}"));
            }
        }
        let nth = if frames { log.lock().map(|l| l.len()).unwrap_or(0) } else { 0 };
        if frames && matches!(what, Proxy::SecondIs400) && nth == 2 {
            write!(out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
            out.flush()?;
            continue;
        }
        let refuse = frames
            && !path.ends_with("/rendered")
            && match what {
                Proxy::NoStored => accept.contains("transfer-syntax=*"),
                Proxy::RenderedOnly => true,
                _ => false,
            };
        if refuse {
            write!(out, "HTTP/1.1 406 Not Acceptable\r\nContent-Length: 0\r\n\r\n")?;
            out.flush()?;
            continue;
        }
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let mut request = agent.get(format!("http://127.0.0.1:{orthanc_port}{path}"));
        for name in ["accept", "authorization"] {
            if !get(name).is_empty() {
                request = request.header(name, get(name));
            }
        }
        let Ok(mut reply) = request.call() else { return Ok(()) };
        let status = reply.status().as_u16();
        let content_type = reply.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let mut body = reply.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap_or_default();
        if frames && matches!(what, Proxy::Truncate) {
            body.truncate(body.len().saturating_sub(100));
        }
        write!(out, "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len())?;
        out.write_all(&body)?;
        out.flush()?;
    }
}

#[test]
fn frames_come_in_batches_of_neighbours() {
    let Some(port) = orthanc() else { return };
    let (proxy_port, seen) = proxy(port, Proxy::Pass);
    let url = series_url(proxy_port, &format!("{USER}:{PASSWORD}@"));
    let web = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    let opening = seen.lock().map(|s| s.len()).unwrap_or(0);
    assert_eq!(opening, 1, "one batch of the coarsest level while opening");
    // Every tile of level 0 (12 × 9 = 108 frames), wanted by many threads at once.
    let level = &web.levels()[0];
    let tiles: Vec<(u64, u64)> =
        (0..level.tiles_down()).flat_map(|r| (0..level.tiles_across()).map(move |c| (c, r))).collect();
    assert_eq!(tiles.len(), 108);
    for tile in web.read_tiles(0, &tiles) {
        tile.unwrap_or_else(|e| panic!("{e}"));
    }
    let requests: Vec<String> = seen.lock().map(|s| s[opening..].to_vec()).unwrap_or_default();
    // 108 frames in aligned blocks of 8 × 4 tiles: 2 × 3 requests, each for its own block, none twice.
    assert_eq!(requests.len(), 6, "{requests:#?}");
    let mut lists: Vec<&str> = requests.iter().filter_map(|p| p.rsplit_once("/frames/").map(|(_, l)| l)).collect();
    lists.sort_by_key(|l| l.split(',').next().and_then(|n| n.parse::<u64>().ok()));
    // Frame numbers are 1-based, row-major over 12 tiles a row.
    let block = |c0: u64, r0: u64, w: u64| -> String {
        (r0..(r0 + 4).min(9))
            .flat_map(|r| (c0..c0 + w).map(move |c| (r * 12 + c + 1).to_string()))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(lists[0], block(0, 0, 8));
    assert_eq!(lists[1], block(8, 0, 4));
    assert_eq!(lists[5], block(8, 8, 4));
}

#[test]
fn a_server_refusing_stored_frames_sends_them_uncompressed_and_it_is_said() {
    let Some(port) = orthanc() else { return };
    let (proxy_port, seen) = proxy(port, Proxy::NoStored);
    let url = series_url(proxy_port, &format!("{USER}:{PASSWORD}@"));
    let web = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    let said = web.properties().values.get("wsiview.warning.dicom.frames").cloned().unwrap_or_default();
    assert!(said.contains("uncompressed"), "{:?}", web.properties().values);
    // Orthanc decodes the JPEG frames itself: its decoder rounds a little differently.
    let (max, mean) = compare_with_folder(&web);
    assert!(mean < 1.0 && max <= 8, "max {max}, mean {mean}");
    let asked: Vec<String> = seen.lock().map(|s| s.clone()).unwrap_or_default();
    // Refused once, then every batch uncompressed (never asked as stored again).
    let stored = asked.iter().filter(|a| a.contains("transfer-syntax=*")).count();
    assert_eq!(stored, 1, "{asked:#?}");
    assert!(
        asked.len() > 5 && asked[1..].iter().all(|a| a.contains("transfer-syntax=1.2.840.10008.1.2.1")),
        "{asked:#?}"
    );
}

#[test]
fn a_server_sending_only_rendered_frames_is_read_too() {
    let Some(port) = orthanc() else { return };
    let (proxy_port, _) = proxy(port, Proxy::RenderedOnly);
    let url = series_url(proxy_port, &format!("{USER}:{PASSWORD}@"));
    let web = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    let said = web.properties().values.get("wsiview.warning.dicom.frames").cloned().unwrap_or_default();
    assert!(said.contains("rendered"), "{:?}", web.properties().values);
    // Rendered frames are JPEG again: close, not equal.
    let (max, mean) = compare_with_folder(&web);
    assert!(mean < 4.0, "max {max}, mean {mean}");
}

#[test]
fn a_truncated_frames_reply_is_a_tile_error_not_a_panic() {
    let Some(port) = orthanc() else { return };
    let (proxy_port, _) = proxy(port, Proxy::Truncate);
    let url = series_url(proxy_port, &format!("{USER}:{PASSWORD}@"));
    let err = Slide::open_location(&url, Limits::DEFAULT).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("truncated") && err.contains(&series_url(proxy_port, "")), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[test]
fn a_series_hashes_the_same_from_its_folder_and_from_the_pacs() {
    let Some(port) = orthanc() else { return };
    // The definition, computed here: the instance files by SOPInstanceUID, one after the other.
    let mut files: Vec<(String, PathBuf)> = fixture_instances()
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let object = dicom_object::OpenFileOptions::new()
                .read_until(tags::PIXEL_DATA)
                .open_file(&path)
                .unwrap_or_else(|e| panic!("{e}"));
            let element = object.element(tags::SOP_INSTANCE_UID).unwrap_or_else(|e| panic!("{e}"));
            let uid = element.to_str().unwrap_or_else(|e| panic!("{e}")).to_string();
            (uid.trim_end_matches('\0').to_string(), path)
        })
        .collect();
    files.sort();
    let mut all = Vec::new();
    for (_, path) in &files {
        all.extend(std::fs::read(path).unwrap_or_else(|e| panic!("{e}")));
    }
    let expected = wsiview::report::hash::sha256_bytes(&all);
    let hash = |location: &str| {
        wsiview::report::hash::sha256_slide(location, |_, _| true).unwrap_or_else(|e| panic!("{location}: {e}"))
    };
    let folder = dicom_folder();
    assert_eq!(hash(&folder.display().to_string()), expected, "the folder");
    assert_eq!(hash(&files[0].1.display().to_string()), expected, "one instance file of the folder");
    let url = series_url(port, &format!("{USER}:{PASSWORD}@"));
    assert_eq!(hash(&url), expected, "the series from Orthanc");

    // A report of the series from the PACS records its UIDs, and verify accepts both forms.
    let web = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    let mut report = wsiview::report::Report::default();
    wsiview::report::store::describe_slide(&mut report, &web);
    let (study, series) = expected_uids();
    assert_eq!(report.slide.study_instance_uid.as_deref(), Some(study.as_str()));
    assert_eq!(report.slide.series_instance_uid.as_deref(), Some(series.as_str()));
    assert_eq!(report.slide.url.as_deref(), Some(series_url(port, "").as_str()));
    report.slide.sha256 = expected;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report_path = dir.path().join("report.json");
    std::fs::write(&report_path, serde_json::to_vec(&report).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    for slide in [url.clone(), folder.display().to_string()] {
        let out = Command::new(env!("CARGO_BIN_EXE_wsiview"))
            .args(["verify", &report_path.display().to_string(), &slide])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.starts_with("OK:"),
            "{slide}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.contains(PASSWORD));
    }
}

#[test]
fn basic_credentials_come_from_a_netrc_file() {
    let Some(port) = orthanc() else { return };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let netrc = dir.path().join("netrc");
    let url = format!("http://127.0.0.1:{port}/dicom-web");
    std::fs::write(
        &netrc,
        format!("machine elsewhere login x password y\nmachine 127.0.0.1 login {USER} password {PASSWORD}\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let netrc_path = netrc.display().to_string();
    let items = json_list(&[&url], &[("NETRC", netrc_path.as_str())]);
    assert_eq!(items.len(), 1, "{items:?}");
    // A wrong one is access denied, its password never printed.
    std::fs::write(&netrc, "machine 127.0.0.1 login wsiview password netrc-Wrong-11\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = wsiview_dicomweb(&["list", &url], &[("NETRC", netrc_path.as_str())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("access denied") && !stderr.contains("netrc-Wrong-11"), "{stderr}");
}
// File > Open from PACS… in the viewer (egui_kittest), against the same Orthanc

#[cfg(feature = "gui")]
mod open_from_pacs {
    use super::*;

    use egui::accesskit::Role;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;
    use wsiview::viewer::pacs::short_uid;
    use wsiview::viewer::ViewerApp;

    fn window() -> Harness<'static, ViewerApp> {
        crate::common::isolate_app_data();
        Harness::builder()
            .with_size([1200.0, 800.0])
            .with_step_dt(1.0 / 60.0)
            .build_ui_state(|ui, app: &mut ViewerApp| app.ui(ui), ViewerApp::new(128 << 20))
    }

    fn open_window(h: &mut Harness<'static, ViewerApp>) {
        h.step();
        h.get_by_label("File").click();
        h.step();
        h.step();
        h.get_by_label("Open from PACS…").click();
        h.step();
        h.step();
        assert!(h.state().pacs.is_some(), "the window is open");
    }

    fn searching(app: &ViewerApp) -> bool {
        app.pacs.as_ref().is_some_and(|p| p.is_searching())
    }

    /// Search (Enter in the focused field, or the button), see the busy state, wait for the answer.
    fn search(h: &mut Harness<'static, ViewerApp>, with_enter: bool) {
        if with_enter {
            h.key_press(egui::Key::Enter);
            h.step();
        } else {
            h.get_by_label("Search").click();
            h.step();
        }
        // The answer may already be in (a frame can run twice): the busy state is tested with a
        // server that never answers.
        assert!(common::step_until(h, 30, |app| !searching(app)), "the search did not end");
        h.step();
        h.step();
    }

    /// No text of the window (labels, tooltips, field values) holds `secret`.
    fn shown_nowhere(h: &Harness<'static, ViewerApp>, secret: &str) {
        let found: Vec<String> = h
            .query_all_by(|node| {
                node.label().is_some_and(|l| l.contains(secret)) || node.value().is_some_and(|v| v.contains(secret))
            })
            .map(|n| format!("{n:?}"))
            .collect();
        assert!(found.is_empty(), "shown: {found:?}");
    }

    fn persisted_json(app: &ViewerApp) -> String {
        serde_json::to_string(&app.persisted()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn open_from_pacs_lists_the_fixture_series_and_opens_it_like_a_url() {
        let Some(port) = orthanc() else { return };
        let (study, series) = expected_uids();
        let base = format!("http://127.0.0.1:{port}/dicom-web");
        let mut h = window();
        open_window(&mut h);

        // Credentials in the address, and a study filter that matches nothing.
        h.get_by_role_and_label(Role::TextInput, "Server")
            .type_text(&format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}/dicom-web/"));
        h.step();
        h.get_by_role_and_label(Role::TextInput, "Study UID").click();
        h.step();
        h.get_by_role_and_label(Role::TextInput, "Study UID").type_text("1.2.3.4.5");
        h.step();
        search(&mut h, true);
        assert!(h.query_by_label_contains("No slide microscopy series found").is_some(), "empty result said");
        // The credentials left the field at once; the address is remembered without them.
        let field = h.get_by_role_and_label(Role::TextInput, "Server").value();
        assert_eq!(field.as_deref(), Some(base.as_str()));
        assert_eq!(h.state().pacs_server, base);
        shown_nowhere(&h, PASSWORD);

        // Without the filter: the session's credentials still apply to this server.
        if let Some(pacs) = h.state_mut().pacs.as_mut() {
            pacs.study.clear();
        }
        h.step();
        search(&mut h, false);
        let found = h.state().pacs.as_ref().map(|p| p.series().to_vec()).unwrap_or_default();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].study_instance_uid.as_str(), found[0].series_instance_uid.as_str()), (&*study, &*series));
        let instances = fixture_instances().map_or(0, |f| f.len()).to_string();
        for text in [short_uid(&study).as_str(), "2026-01-15", instances.as_str(), "Study UID", "Instances"] {
            assert!(h.query_all_by_label(text).next().is_some(), "the table shows {text:?}");
        }
        shown_nowhere(&h, PASSWORD);

        // Select the row, Open: a tab opens by the series' redacted URL.
        h.get_by_label(&short_uid(&study)).click();
        h.step();
        h.get_by_label("Open").click();
        h.step();
        assert!(h.state().pacs.is_none(), "the window closes");
        let shown = format!("{base}/studies/{study}/series/{series}");
        assert!(
            common::step_until(&mut h, 60, |app| app.active_view().is_some()
                || app.active_tab().is_some_and(|t| matches!(t.state, wsiview::viewer::app::TabState::Failed(_)))),
            "the series did not open"
        );
        let tab = h.state().active_tab().unwrap_or_else(|| panic!("no tab"));
        assert_eq!(tab.path, PathBuf::from(&shown));
        let view = tab.view().unwrap_or_else(|| match &tab.state {
            wsiview::viewer::app::TabState::Failed(e) => panic!("the series failed to open: {e}"),
            _ => panic!("not open"),
        });
        let dir = common::fixtures().unwrap_or_else(|| panic!("fixtures")).join("vendors/dicom-dev");
        let local = Slide::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(view.slide.levels(), local.levels(), "the same levels as the local folder");
        assert_eq!(view.slide.levels().len(), 4);
        assert_eq!((view.slide.levels()[0].width, view.slide.levels()[0].height), (3000, 2200));
        assert!(common::step_until(&mut h, 60, |app| app.active_view().is_some_and(|v| v.is_complete())));
        assert_eq!(h.state().recent, vec![PathBuf::from(&shown)]);
        h.step();
        shown_nowhere(&h, PASSWORD);
        let saved = persisted_json(h.state());
        assert!(!saved.contains(PASSWORD) && !saved.contains(USER), "{saved}");
        assert!(saved.contains(&format!("\"pacs_server\":\"{base}\"")), "{saved}");

        // Opened again, the window has the address, and the credentials typed earlier still
        // apply to it (kept in memory for this run); a double-click on the row opens it too.
        open_window(&mut h);
        let field = h.get_by_role_and_label(Role::TextInput, "Server").value();
        assert_eq!(field.as_deref(), Some(base.as_str()));
        search(&mut h, false);
        assert_eq!(h.state().pacs.as_ref().map_or(0, |p| p.series().len()), 1, "found with the session's credentials");
        let row = h.get_by_label(&short_uid(&study)).rect().center();
        h.hover_at(row);
        // Past egui's double-click time since the click on Search (else a triple click).
        for _ in 0..30 {
            h.step();
        }
        for _ in 0..2 {
            for pressed in [true, false] {
                h.event(egui::Event::PointerButton {
                    pos: row,
                    button: egui::PointerButton::Primary,
                    pressed,
                    modifiers: egui::Modifiers::NONE,
                });
                h.step();
            }
        }
        h.step();
        assert!(h.state().pacs.is_none(), "a double-click opens the series");
        // The same series: its tab again, not a second one.
        assert_eq!(h.state().tabs.len(), 1);
        shown_nowhere(&h, PASSWORD);
    }

    #[test]
    fn a_wrong_password_in_open_from_pacs_is_access_denied_and_never_shown_or_kept() {
        let Some(port) = orthanc() else { return };
        let wrong = "wrong-Secret-7c2a";
        let mut h = window();
        open_window(&mut h);
        h.get_by_role_and_label(Role::TextInput, "Server")
            .type_text(&format!("http://{USER}:{wrong}@127.0.0.1:{port}/dicom-web"));
        h.step();
        search(&mut h, true);
        let denied = format!("http://127.0.0.1:{port}/dicom-web/studies: access denied (HTTP 401)");
        assert!(h.query_by_label(&denied).is_some(), "the window says {denied:?}");
        assert!(h.state().pacs.as_ref().is_some_and(|p| p.series().is_empty()));
        shown_nowhere(&h, wrong);
        let saved = persisted_json(h.state());
        assert!(!saved.contains(wrong) && !saved.contains(USER), "{saved}");
        assert_eq!(h.state().pacs_server, format!("http://127.0.0.1:{port}/dicom-web"));

        // Reopened, the window starts with the remembered address; Escape closes it.
        h.key_press(egui::Key::Escape);
        h.step();
        assert!(h.state().pacs.is_none());
        open_window(&mut h);
        let field = h.get_by_role_and_label(Role::TextInput, "Server").value();
        assert_eq!(field, Some(format!("http://127.0.0.1:{port}/dicom-web")));
    }

    #[test]
    fn open_from_pacs_is_busy_while_the_server_is_silent_and_the_search_can_be_cancelled() {
        // Accepts connections and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                held.push(stream);
            }
        });
        let mut h = window();
        open_window(&mut h);
        h.get_by_role_and_label(Role::TextInput, "Server").type_text(&format!("http://127.0.0.1:{port}/dicom-web"));
        h.step();
        h.key_press(egui::Key::Enter);
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            h.step();
            slowest = slowest.max(t.elapsed());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(searching(h.state()));
        assert!(h.query_by_label("Searching…").is_some(), "the window says it is searching");
        assert!(slowest < Duration::from_millis(500), "the window never waits on the server: {slowest:?}");
        h.get_by_label("Cancel search").click();
        h.step();
        h.step();
        assert!(!searching(h.state()));
        assert!(h.query_by_label("Search cancelled.").is_some());
    }
}

/// OrthancWSIDicomizer (Debian `orthanc-wsi`), another writer of DICOM WSI.
fn orthanc_wsi_dicomizer() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/OrthancWSIDicomizer");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("OrthancWSIDicomizer"))
        .find(|p| p.is_file())
}

#[test]
fn a_series_written_by_orthanc_wsi_dicomizer_reads_like_its_tiff() {
    if orthanc().is_none() {
        return;
    }
    let (Some(binary), Some(plugin)) = (orthanc_binary(), dicomweb_plugin()) else { return };
    let Some(tool) = orthanc_wsi_dicomizer() else {
        assert!(!require(), "OrthancWSIDicomizer is required with Orthanc (apt-get install orthanc-wsi)");
        eprintln!("skipped: OrthancWSIDicomizer is not installed (apt-get install orthanc-wsi)");
        return;
    };
    // Small concatenations (1 MB), so that levels span several instances.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(&tool)
        .args(["--max-size", "1", "--folder"])
        .arg(dir.path())
        .arg(sample())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(files.len() > 4, "concatenations expected: {files:?}");
    // Its own Orthanc, so that the fixture series stays alone in the shared one.
    let (tx, rx) = std::sync::mpsc::channel();
    let upload = files.clone();
    std::thread::spawn(move || {
        let _ = tx.send(start_orthanc(&binary, &plugin, &upload));
        loop {
            std::thread::park();
        }
    });
    let port = rx.recv().unwrap_or_else(|_| panic!("the second Orthanc did not start"));
    let (study, series) = fixture_uids(&files[0]);
    let url = format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}/dicom-web/studies/{study}/series/{series}");
    let web = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    let tiff = Slide::open(&sample()).unwrap_or_else(|e| panic!("{e}"));
    let shape = |s: &Slide| -> Vec<_> {
        s.levels().iter().map(|l| (l.width, l.height, l.downsample, l.tile_width, l.tile_height)).collect()
    };
    assert_eq!(shape(&web), shape(&tiff));
    // The JPEG tiles were copied: the same pixels, level by level, at the centre and the edge.
    for (level, info) in tiff.levels().iter().enumerate() {
        let (w0, h0) = (tiff.levels()[0].width as i64, tiff.levels()[0].height as i64);
        let ds = info.downsample;
        for (x, y) in [(w0 / 3, h0 / 3), (w0 - (150.0 * ds) as i64, h0 - (100.0 * ds) as i64)] {
            let a = tiff.read_region(level, x, y, 300, 200).unwrap_or_else(|e| panic!("{e}"));
            let b = web.read_region(level, x, y, 300, 200).unwrap_or_else(|e| panic!("{e}"));
            assert!(a.as_raw() == b.as_raw(), "level {level} at {x},{y} differs");
        }
    }
}

/// `wsiview dicomize --stow URL`: every instance written is stored by STOW-RS on an Orthanc of
/// its own (empty, authentication on), where `dicomweb list` finds the one series with all its
/// instances; a wrong password is "access denied" and is never printed.
#[test]
fn dicomize_stow_stores_the_series() {
    if orthanc().is_none() {
        return;
    }
    let (Some(binary), Some(plugin)) = (orthanc_binary(), dicomweb_plugin()) else { return };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(start_orthanc(&binary, &plugin, &[]));
        loop {
            std::thread::park();
        }
    });
    let port = rx.recv().unwrap_or_else(|_| panic!("the second Orthanc did not start"));
    let url = format!("http://127.0.0.1:{port}/dicom-web");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = wsiview::synth::SynthOptions {
        width: 1200,
        height: 900,
        layout: wsiview::synth::Layout::Svs,
        ..Default::default()
    };
    let slide = common::synth(dir.path(), "stow.svs", &opts);
    let series = wsiview::dicomize::new_uid();
    let dicomize = |out: &str, vars: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsiview"));
        command.args(["dicomize", &slide.to_string_lossy(), &dir.path().join(out).to_string_lossy()]);
        command.args(["--series-uid", &series, "--accession", "STOW-1", "--stow", &url]);
        for (name, _) in std::env::vars() {
            if name.starts_with("WSIVIEW_DICOMWEB_") {
                command.env_remove(name);
            }
        }
        command.envs(vars.iter().copied());
        command.output().unwrap_or_else(|e| panic!("{e}"))
    };
    let out = dicomize("dicom", &credentials());
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    let files = std::fs::read_dir(dir.path().join("dicom")).map(|d| d.count()).unwrap_or(0);
    assert!(files >= 4, "{printed}");
    assert_eq!(
        printed.lines().filter(|l| l.contains("stored on") && l.contains("STOW-RS")).count(),
        files,
        "{printed}"
    );
    let items = json_list(&[&url], &credentials());
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["SeriesInstanceUID"], series.as_str());
    assert_eq!(items[0]["AccessionNumber"], "STOW-1");
    assert_eq!(items[0]["NumberOfSeriesRelatedInstances"], files);

    // Opened by its URL: the TIFF's levels, mpp and pixels (its JPEG tiles were copied); and the
    // same series hash from the PACS as from the folder written.
    let study = items[0]["StudyInstanceUID"].as_str().unwrap_or_default().to_string();
    let series_url = format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}/dicom-web/studies/{study}/series/{series}");
    let web = Slide::open_location(&series_url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    let tiff = Slide::open(&slide).unwrap_or_else(|e| panic!("{e}"));
    let shape = |s: &Slide| -> Vec<_> { s.levels().iter().map(|l| (l.width, l.height, l.tile_width)).collect() };
    assert_eq!(shape(&web), shape(&tiff));
    assert_eq!((web.properties().mpp_x, web.properties().mpp_y), (tiff.properties().mpp_x, tiff.properties().mpp_y));
    for level in 0..tiff.levels().len() {
        let a = tiff.read_region(level, 100, 80, 400, 300).unwrap_or_else(|e| panic!("{e}"));
        let b = web.read_region(level, 100, 80, 400, 300).unwrap_or_else(|e| panic!("{e}"));
        assert!(a.as_raw() == b.as_raw(), "level {level} differs");
    }
    let hash =
        |location: &str| wsiview::report::hash::sha256_slide(location, |_, _| true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hash(&series_url), hash(&dir.path().join("dicom").display().to_string()));

    let wrong = [("WSIVIEW_DICOMWEB_USER", USER), ("WSIVIEW_DICOMWEB_PASSWORD", "not-the-password-91c")];
    let out = dicomize("again", &wrong);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access denied") && !err.contains("not-the-password-91c"), "{err}");
}

#[test]
fn a_400_after_frames_came_fails_that_batch_only() {
    let Some(port) = orthanc() else { return };
    let (proxy_port, seen) = proxy(port, Proxy::SecondIs400);
    let url = series_url(proxy_port, &format!("{USER}:{PASSWORD}@"));
    let web = Slide::open_location(&url, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}"));
    let err = web.read_tile(0, 0, 0).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("HTTP 400"), "{err}");
    // Asked again, as stored: the same pixels as the folder's, and nothing said about frames.
    let again = web.read_tile(0, 0, 0).unwrap_or_else(|e| panic!("{e}"));
    let local = Slide::open(&dicom_folder()).unwrap_or_else(|e| panic!("{e}"));
    assert!(again.rgba == local.read_tile(0, 0, 0).unwrap_or_else(|e| panic!("{e}")).rgba);
    assert!(!web.properties().values.contains_key("wsiview.warning.dicom.frames"));
    let asked: Vec<String> = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(asked.iter().all(|a| a.contains("transfer-syntax=*")), "{asked:#?}");
}
