//! The report registry against a real PostgreSQL (Debian's 15): a throwaway cluster on
//! 127.0.0.1, made by `initdb` and run as the `postgres` user when the tests run as root, started
//! once for the test binary (with TLS, from a private CA) and killed with it; each test has its
//! own database. The "goes away mid-push" test runs its own second cluster, which it stops and
//! starts again. Without PostgreSQL the tests skip, unless `WSIVIEW_REQUIRE_POSTGRES=1` (CI).
//!
//! Roles (cluster-wide): `owner` owns every test database and runs `registry init`; `site_rlh`,
//! `site_nbt`, `site_gwh` publish for RLH, NBT and GWH; `manager` reads the network; `intruder`
//! has no site. Passwords are checked (scram-sha-256 over TCP).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use wsiview::report::synth;
use wsiview::report::{Report, Status};

const SITES: [&str; 3] = ["RLH", "NBT", "GWH"];

fn require() -> bool {
    std::env::var("WSIVIEW_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

fn password(role: &str) -> String {
    format!("{role}-secret-pw")
}

fn site_role(site: &str) -> String {
    format!("site_{}", site.to_lowercase())
}

/// The binaries of the newest PostgreSQL installed the Debian way.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// The postgres user's (uid, gid) when running as root (PostgreSQL refuses to run as root).
fn postgres_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").ok()?;
    // SAFETY: getpwnam returns null or a pointer to a static record, read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        panic!("running as root, but there is no postgres user to run PostgreSQL as");
    }
    // SAFETY: checked non-null above.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// A cluster on 127.0.0.1:`port` with its socket in `dir`.
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    tls: bool,
    child: Option<Child>,
    /// The private CA that signed the server's certificate (TLS clusters).
    pub ca: Option<PathBuf>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_immediately();
    }
}

impl Postgres {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, command: &mut Command) {
        use std::os::unix::process::CommandExt;
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
    }

    fn new(tls: bool) -> Postgres {
        let bin = binaries().unwrap_or_else(|| panic!("PostgreSQL is not installed"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let user = postgres_user();
        let mut pg = Postgres { port: super::free_port(), dir, bin, user, tls, child: None, ca: None };
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(pg.dir.path(), Some(uid), Some(gid)).unwrap_or_else(|e| panic!("{e}"));
        }
        let mut initdb = Command::new(pg.bin.join("initdb"));
        initdb
            .args(["-D", &pg.data().display().to_string(), "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .stdout(Stdio::null());
        pg.as_postgres(&mut initdb);
        let out = initdb.output().unwrap_or_else(|e| panic!("initdb: {e}"));
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        if tls {
            let pki = pg.dir.path().join("pki");
            std::fs::create_dir(&pki).unwrap_or_else(|e| panic!("{e}"));
            let (ca, cert, key) =
                super::make_test_pki(&pki).unwrap_or_else(|| panic!("openssl is needed for the TLS cluster"));
            for (from, name) in [(&cert, "server.crt"), (&key, "server.key")] {
                let to = pg.data().join(name);
                std::fs::copy(from, &to).unwrap_or_else(|e| panic!("{e}"));
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
                if let Some((uid, gid)) = user {
                    std::os::unix::fs::chown(&to, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("{e}"));
                }
            }
            pg.ca = Some(ca);
        }
        pg.start();
        pg.setup_roles();
        pg
    }

    /// Start the server (again) on the same data and port, and wait until it answers.
    pub fn start(&mut self) {
        let mut command = Command::new(self.bin.join("postgres"));
        let socket = self.dir.path().display().to_string();
        command
            .args(["-D", &self.data().display().to_string(), "-p", &self.port.to_string(), "-k", &socket])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=60", "-c", "shared_buffers=64MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.tls {
            command.args(["-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"]);
        }
        self.as_postgres(&mut command);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; it runs after the uid change, so it is kept.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("postgres: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut client) = self.superuser("postgres") {
                if client.simple_query("SELECT 1").is_ok() {
                    break;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("postgres exited with {status}");
            }
            assert!(Instant::now() < deadline, "postgres did not start in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
    }

    /// What `pg_ctl stop -m immediate` does: SIGQUIT to the postmaster, which ends every
    /// connection at once.
    pub fn stop_immediately(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill with a pid of our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The superuser over the socket (trusted), in `database`.
    pub fn superuser(&self, database: &str) -> Result<postgres::Client, postgres::Error> {
        let mut config = postgres::Config::new();
        config.host_path(self.dir.path()).port(self.port).user("postgres").dbname(database);
        config.connect_timeout(Duration::from_secs(5));
        config.connect(postgres::NoTls)
    }

    fn setup_roles(&self) {
        let mut client = self.superuser("postgres").unwrap_or_else(|e| panic!("{e}"));
        for role in ["owner", "site_rlh", "site_nbt", "site_gwh", "manager", "intruder"] {
            client
                .batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD '{}'", password(role)))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// A new database owned by `owner`, as a URI without a password.
    pub fn database(&self, name: &str) -> String {
        let mut client = self.superuser("postgres").unwrap_or_else(|e| panic!("{e}"));
        client.batch_execute(&format!("CREATE DATABASE {name} OWNER owner")).unwrap_or_else(|e| panic!("{e}"));
        format!("postgresql://127.0.0.1:{}/{name}?sslmode=disable", self.port)
    }

    /// `role` connected to `name` over TCP with its password.
    pub fn client(&self, name: &str, role: &str) -> postgres::Client {
        let mut config = postgres::Config::new();
        config.host("127.0.0.1").port(self.port).user(role).password(password(role)).dbname(name);
        config.connect(postgres::NoTls).unwrap_or_else(|e| panic!("{role}: {e}"))
    }
}

/// The shared cluster (with TLS), or None when PostgreSQL is missing and not required.
fn cluster() -> Option<&'static Postgres> {
    static SERVER: OnceLock<Option<&'static Postgres>> = OnceLock::new();
    *SERVER.get_or_init(|| {
        if binaries().is_none() {
            assert!(!require(), "PostgreSQL is required (WSIVIEW_REQUIRE_POSTGRES=1) but not installed");
            eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
            return None;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        // The server dies with the thread that started it (PDEATHSIG), which never exits.
        std::thread::spawn(move || {
            let pg: &'static Postgres = Box::leak(Box::new(Postgres::new(true)));
            let _ = tx.send(pg);
            loop {
                std::thread::park();
            }
        });
        Some(rx.recv().unwrap_or_else(|_| panic!("PostgreSQL did not start (see the panic above)")))
    })
}

/// A fresh database on the shared cluster, initialised, with the three sites and the manager.
fn registry(name: &str) -> Option<(&'static Postgres, String)> {
    let pg = cluster()?;
    let db = pg.database(name);
    let out = wsiview(&["registry", "init", "--db", &db], "owner");
    assert!(out.status.success(), "init: {}", stderr(&out));
    for site in SITES {
        let out = wsiview(&["registry", "add-site", site, "--role", &site_role(site), "--db", &db], "owner");
        assert!(out.status.success(), "add-site: {}", stderr(&out));
    }
    let out = wsiview(&["registry", "add-reader", "--role", "manager", "--db", &db], "owner");
    assert!(out.status.success(), "add-reader: {}", stderr(&out));
    Some((pg, db))
}

/// Run wsiview as database role `role`: its password in PGPASSWORD, no other PG* variable, no
/// password or service file of the machine's.
fn wsiview(args: &[&str], role: &str) -> Output {
    wsiview_env(args, &[("PGUSER", role.to_string()), ("PGPASSWORD", password(role))])
}

fn wsiview_env(args: &[&str], vars: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsiview"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("PG") || name == "WSIVIEW_REGISTRY" {
            command.env_remove(name);
        }
    }
    command.env("HOME", "/nonexistent").env("PGSYSCONFDIR", "/nonexistent");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().unwrap_or_else(|e| panic!("wsiview: {e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reports `0..count` of the synthetic set over the three sites, as files in `dir/SITE/`.
fn write_reports(dir: &Path, count: u64, seed: u64) -> Vec<Report> {
    synth::write_set(dir, count, &SITES, seed).unwrap_or_else(|e| panic!("{e}"));
    (0..count).map(|n| synth::report(n, &SITES, seed)).collect()
}

fn count(client: &mut postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique(name: &str) -> String {
    format!("{name}_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[test]
fn init_is_idempotent_and_safe_to_run_twice_at_once() {
    let Some(pg) = cluster() else { return };
    let db = pg.database(&unique("init"));
    let runs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..2).map(|_| s.spawn(|| wsiview(&["registry", "init", "--db", &db], "owner"))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| panic!("init thread"))).collect()
    });
    for out in &runs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let applied = runs.iter().filter(|o| stdout(o).contains("applied migration 1")).count();
    let up_to_date = runs.iter().filter(|o| stdout(o).contains("is up to date (schema version 1)")).count();
    assert_eq!((applied, up_to_date), (1, 1), "one run migrates, the other finds nothing to do");
    let again = wsiview(&["registry", "init", "--db", &db], "owner");
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));
    assert!(stdout(&again).contains("row-level security on"), "the set-up is printed: {}", stdout(&again));
    let mut client = pg.client(db_name(&db), "owner");
    assert_eq!(count(&mut client, "SELECT count(*) FROM wsiview.migrations"), 1);
    // A site's role cannot run init: it does not own the database.
    let refused = wsiview(&["registry", "init", "--db", &db], "site_rlh");
    assert!(!refused.status.success() && stderr(&refused).contains("permission denied"), "{}", stderr(&refused));
}

fn db_name(db: &str) -> &str {
    db.rsplit('/').next().and_then(|s| s.split('?').next()).unwrap_or_default()
}

/// Compare two summary.json files on every figure (not the report files' names).
fn assert_same_figures(registry: &Value, folders: &Value) {
    for key in ["reports", "by_site", "by_reviewer", "equity"] {
        assert_eq!(registry[key], folders[key], "{key} differs");
    }
    let (a, b) = (&registry["concordance"], &folders["concordance"]);
    for key in [
        "slides_reviewed_more_than_once",
        "discordant_slides",
        "concordance_pct",
        "slides_compared",
        "slides_not_comparable",
    ] {
        assert_eq!(a[key], b[key], "concordance.{key} differs");
    }
    let pairs = |v: &Value| {
        let mut list: Vec<String> = v["pairs"]
            .as_array()
            .map(|a| a.iter().map(|p| format!("{}{}{}", p["sha256"], p["report_id_a"], p["report_id_b"])).collect())
            .unwrap_or_default();
        list.sort();
        list
    };
    assert_eq!(pairs(a), pairs(b));
    assert!(!pairs(a).is_empty(), "the set has discordant slides to compare");
}

fn summary(dir: &Path) -> Value {
    let bytes = std::fs::read(dir.join("summary.json")).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sites_publish_their_own_reports_once_and_the_registry_consolidates_as_folders_do() {
    let Some((pg, db)) = registry(&unique("network")) else { return };
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let reports = temp.path().join("reports");
    let written = write_reports(&reports, 900, 11);
    let of_site = |site: &str| written.iter().filter(|r| r.site == site).count();
    // Every site pushes its own folder.
    for site in SITES {
        let folder = reports.join(site).display().to_string();
        let out = wsiview(&["registry", "push", &folder, "--db", &db], &site_role(site));
        assert!(out.status.success(), "{site}: {}", stderr(&out));
        assert!(stdout(&out).contains(&format!("{} published", of_site(site))), "{}", stdout(&out));
    }
    // Pushing everything again changes nothing: no duplicates.
    for site in SITES {
        let folder = reports.join(site).display().to_string();
        let out = wsiview(&["registry", "push", &folder, "--db", &db], &site_role(site));
        let unchanged = format!("0 published to postgresql://{}@127.0.0.1", site_role(site));
        assert!(stdout(&out).starts_with(&unchanged), "{}", stdout(&out));
        assert!(stdout(&out).contains(&format!("{} unchanged", of_site(site))), "{}", stdout(&out));
    }
    let mut client = pg.client(db_name(&db), "manager");
    assert_eq!(count(&mut client, "SELECT count(*) FROM wsiview.report_versions"), 900);
    assert_eq!(count(&mut client, "SELECT count(DISTINCT report_id) FROM wsiview.report_versions"), 900);

    // Consolidation from the registry equals consolidation of the folders.
    let from_registry = temp.path().join("registry-summary");
    let out =
        wsiview(&["registry", "consolidate", "--db", &db, "--out", &from_registry.display().to_string()], "manager");
    assert!(out.status.success(), "{}", stderr(&out));
    let from_folders = temp.path().join("folder-summary");
    let out = wsiview_env(
        &["consolidate", &reports.display().to_string(), "--out", &from_folders.display().to_string()],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_figures(&summary(&from_registry), &summary(&from_folders));
    assert_eq!(summary(&from_registry)["reports"], 900);
    assert!(from_registry.join("summary-public.html").is_file());

    // One site, and a period.
    let rlh = temp.path().join("rlh-summary");
    let out = wsiview(
        &["registry", "consolidate", "--db", &db, "--site", "RLH", "--out", &rlh.display().to_string()],
        "manager",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = summary(&rlh);
    assert_eq!(v["reports"], of_site("RLH") as u64);
    assert_eq!(v["by_site"].as_object().map(|m| m.len()), Some(1));
    let period = temp.path().join("period");
    let args = ["--from", "2025-03-01", "--to", "2025-05-31", "--out"];
    let out = wsiview(
        &[&["registry", "consolidate", "--db", &db][..], &args, &[&period.display().to_string()]].concat(),
        "manager",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = written
        .iter()
        .filter(|r| r.received_date.as_deref().is_some_and(|d| ("2025-03-01"..="2025-05-31").contains(&d)))
        .count();
    assert!(expected > 50);
    assert_eq!(summary(&period)["reports"], expected as u64);

    // A site's role sees only its own site; the manager reads all.
    let mut nbt = pg.client(db_name(&db), "site_nbt");
    assert_eq!(count(&mut nbt, "SELECT count(*) FROM wsiview.current_reports"), of_site("NBT") as i64);
    assert_eq!(count(&mut nbt, "SELECT count(*) FROM wsiview.current_reports WHERE site <> 'NBT'"), 0);

    // Pulled back as files, the reports consolidate to the same figures.
    let pulled = temp.path().join("pulled");
    let out = wsiview(&["registry", "pull", "--db", &db, "--out", &pulled.display().to_string()], "manager");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("900 report files written"), "{}", stdout(&out));
    let again = temp.path().join("pulled-summary");
    let out = wsiview_env(&["consolidate", &pulled.display().to_string(), "--out", &again.display().to_string()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_figures(&summary(&again), &summary(&from_folders));
    let sample = &written[4];
    let file = pulled.join(&sample.site).join(format!("{}_{}.report.json", sample.case_id, sample.report_id));
    assert_eq!(std::fs::read(&file).unwrap_or_default(), sample.to_json(), "pulled as stored");

    // The research export reads the registry too.
    let research = temp.path().join("research");
    let key = temp.path().join("research.key");
    let out = wsiview(
        &[
            "export-research",
            "--db",
            &db,
            "--out",
            &research.display().to_string(),
            "--key-file",
            &key.display().to_string(),
        ],
        "manager",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(research.join("manifest.json")).unwrap_or_default()).unwrap_or_default();
    assert_eq!(manifest["source"]["kind"], "registry", "{manifest}");
}

#[test]
fn an_amendment_is_a_new_version_and_history_is_kept() {
    let Some((pg, db)) = registry(&unique("versions")) else { return };
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut report = (0..)
        .map(|n| synth::report(n, &SITES, 5))
        .find(|r| r.status == Status::Final && r.site == "RLH")
        .unwrap_or_else(|| panic!("a final report"));
    let file = temp.path().join("r.report.json");
    let path = file.display().to_string();
    let push = |r: &Report| {
        std::fs::write(&file, r.to_json()).unwrap_or_else(|e| panic!("{e}"));
        wsiview(&["registry", "push", &path, "--db", &db], "site_rlh")
    };
    let original = report.clone();
    assert!(push(&report).status.success());
    report
        .amend("Dr Q", None, "ER status added", "2026-11-30T10:00:00+00:00", |r| r.comments = "ER positive.".into())
        .unwrap_or_else(|e| panic!("{e}"));
    let out = push(&report);
    assert!(stdout(&out).contains("1 new versions"), "{}", stdout(&out));
    let second = report.clone();
    report
        .amend("Dr Q", None, "PR status added", "2026-11-30T11:00:00+00:00", |r| r.comments += " PR positive.")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(push(&report).status.success());
    // The old versions again: already in the registry, nothing changes.
    let out = push(&original);
    assert!(out.status.success() && stdout(&out).contains("1 unchanged"), "{}", stdout(&out));
    // A signed-out report edited without an amendment is refused, as are older versions.
    let out = push(&{
        let mut older = second.clone();
        older.comments = "Changed.".into();
        older
    });
    assert!(stderr(&out).contains("older than the registry's version 3"), "{}", stderr(&out));
    let mut tampered = report.clone();
    tampered.diagnosis.category = "B1".into();
    let out = push(&tampered);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("without a further amendment"), "{}", stderr(&out));
    let mut draft = original.clone();
    draft.status = Status::Draft;
    draft.reported_at = None;
    let out = push(&draft);
    assert!(stderr(&out).contains("older than the registry's version 3"), "{}", stderr(&out));

    let mut client = pg.client(db_name(&db), "manager");
    let rows = client
        .query(
            "SELECT version, status, amendments FROM wsiview.report_versions WHERE report_id = $1::text::uuid ORDER BY version",
            &[&report.report_id],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let versions: Vec<(i32, String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(
        versions,
        vec![(1, "final".into(), 0), (2, "amended".into(), 1), (3, "amended".into(), 2)],
        "every version kept"
    );
    let current: String = client
        .query_one(
            "SELECT report::text FROM wsiview.current_reports WHERE report_id = $1::text::uuid",
            &[&report.report_id],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(current.as_bytes(), &report.to_json()[..], "the current version is the latest");
}

/// An SQL error's SQLSTATE, or a panic when the statement was not refused.
fn refused(result: Result<u64, postgres::Error>) -> String {
    match result {
        Ok(n) => panic!("the database accepted it ({n} rows)"),
        Err(e) => {
            e.as_db_error().map(|d| format!("{} {}", d.code().code(), d.message())).unwrap_or_else(|| e.to_string())
        }
    }
}

#[test]
fn the_database_itself_refuses_a_site_writing_another_sites_reports_or_changing_history() {
    let Some((pg, db)) = registry(&unique("security")) else { return };
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let reports = temp.path().join("reports");
    let written = write_reports(&reports, 30, 3);
    let of_site = |site: &str| written.iter().filter(|r| r.site == site).count();
    let out = wsiview(&["registry", "push", &reports.join("RLH").display().to_string(), "--db", &db], "site_rlh");
    assert!(out.status.success(), "{}", stderr(&out));

    // A teaching copy is never published, even one that is valid and of the role's own site.
    let mut teaching = written.iter().find(|r| r.site == "NBT").cloned().unwrap_or_default();
    teaching.report_id = "00000000-0000-4000-8000-00000000beef".into();
    teaching.extra.insert("teaching_copy".into(), serde_json::json!({"note": "x"}));
    let teaching_file = temp.path().join("teaching.report.json");
    std::fs::write(&teaching_file, teaching.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let out = wsiview(&["registry", "push", &teaching_file.display().to_string(), "--db", &db], "site_nbt");
    assert!(stderr(&out).contains("teaching copy"), "{}", stderr(&out));

    // Through wsiview: another site's reports are listed and skipped, the rest published.
    let out = wsiview(&["registry", "push", &reports.display().to_string(), "--db", &db], "site_nbt");
    assert_eq!(out.status.code(), Some(1), "skipped files make exit 1");
    let (published, skipped) = (of_site("NBT"), 30 - of_site("NBT"));
    assert!(
        stdout(&out).contains(&format!("{published} published"))
            && stdout(&out).contains(&format!("{skipped} skipped")),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("site \"RLH\" is not one this role (site_nbt) publishes for"), "{}", stderr(&out));

    // Directly, as the client would (or psql): the database refuses.
    let mut nbt = pg.client(db_name(&db), "site_nbt");
    let copy_rlh_row = "INSERT INTO wsiview.report_versions (report_id, version, site, case_id, status, amendments, reviewer, \
         reviewer_role, review_type, category, slide_sha256, content_sha256, report) \
         SELECT gen_random_uuid(), 1, site, case_id, status, amendments, reviewer, reviewer_role, review_type, category, \
         slide_sha256, content_sha256, report FROM (VALUES ('RLH', 'X1', 'final', 0, 'Dr X', 'consultant', 'primary', 'B1', \
         '', '', '{\"site\": \"RLH\"}'::json)) AS v(site, case_id, status, amendments, reviewer, reviewer_role, review_type, \
         category, slide_sha256, content_sha256, report)";
    let why = refused(nbt.execute(copy_rlh_row, &[]));
    assert!(why.starts_with("42501") && why.contains("row-level security"), "{why}");
    // Its own site in the column but another in the report itself: refused too.
    let disguised = copy_rlh_row.replacen("VALUES ('RLH'", "VALUES ('NBT'", 1);
    assert!(refused(nbt.execute(disguised.as_str(), &[])).contains("row-level security"));
    // Another site's report id cannot be taken over by a later version, nor can a site skip
    // ahead in its own report's versions; the publish time is the database's.
    let rlh_id = written.iter().find(|r| r.site == "RLH").map(|r| r.report_id.clone()).unwrap_or_default();
    let takeover = copy_rlh_row
        .replacen("gen_random_uuid(), 1,", &format!("'{rlh_id}'::uuid, 2,"), 1)
        .replacen("VALUES ('RLH'", "VALUES ('NBT'", 1)
        .replacen("'{\"site\": \"RLH\"}'", "'{\"site\": \"NBT\"}'", 1);
    let why = refused(nbt.execute(takeover.as_str(), &[]));
    assert!(why.starts_with("42501") && why.contains("belongs to another site"), "{why}");
    let nbt_id = written.iter().find(|r| r.site == "NBT").map(|r| r.report_id.clone()).unwrap_or_default();
    let skip_ahead = takeover.replacen(&format!("'{rlh_id}'::uuid, 2,"), &format!("'{nbt_id}'::uuid, 9,"), 1);
    let why = refused(nbt.execute(skip_ahead.as_str(), &[]));
    assert!(why.starts_with("23505") && why.contains("not the next"), "{why}");
    let why = refused(nbt.execute(
        "INSERT INTO wsiview.report_versions (report_id, version, site, case_id, status, amendments, reviewer, \
         reviewer_role, review_type, category, slide_sha256, content_sha256, report, pushed_at) VALUES \
         (gen_random_uuid(), 1, 'NBT', 'X2', 'final', 0, 'Dr X', 'consultant', 'primary', 'B1', '', '', \
         '{\"site\": \"NBT\"}', '2001-01-01')",
        &[],
    ));
    assert!(why.starts_with("42501"), "pushed_at is not the site's to set: {why}");
    // The schema owner cannot be made a site's role (row-level security would not bind it).
    let out = wsiview(&["registry", "add-site", "OWN", "--role", "owner", "--db", &db], "owner");
    assert!(stderr(&out).contains("owns the registry's tables"), "{}", stderr(&out));
    // History: no update or delete, even of its own rows.
    let why = refused(nbt.execute("UPDATE wsiview.report_versions SET category = 'B5b' WHERE site = 'NBT'", &[]));
    assert!(why.starts_with("42501") && why.contains("permission denied"), "{why}");
    let why = refused(nbt.execute("DELETE FROM wsiview.report_versions WHERE site = 'NBT'", &[]));
    assert!(why.starts_with("42501"), "{why}");
    // The manager reads but never writes; a role without a site reads nothing.
    let mut manager = pg.client(db_name(&db), "manager");
    assert!(refused(manager.execute("DELETE FROM wsiview.report_versions", &[])).starts_with("42501"));
    let mut intruder = pg.client(db_name(&db), "intruder");
    assert!(refused(intruder.execute("SELECT 1 FROM wsiview.report_versions", &[]).map(|_| 0)).starts_with("42501"));
    // Even the schema owner cannot rewrite history: a trigger refuses it.
    let mut owner = pg.client(db_name(&db), "owner");
    let why = refused(owner.execute("UPDATE wsiview.report_versions SET category = 'B5b'", &[]));
    assert!(why.contains("history"), "{why}");
    assert!(refused(owner.execute("TRUNCATE wsiview.report_versions", &[])).contains("history"));
    // Nothing changed.
    assert_eq!(
        count(&mut manager, "SELECT count(*) FROM wsiview.report_versions"),
        (of_site("RLH") + of_site("NBT")) as i64
    );
    assert_eq!(
        count(&mut manager, "SELECT count(*) FROM wsiview.report_versions WHERE category = 'B5b' AND case_id = 'X1'"),
        0
    );
}

#[test]
fn passwords_never_show_and_password_files_are_read() {
    let Some((_pg, db)) = registry(&unique("secrets")) else { return };
    // A wrong password: refused, and neither password appears.
    let out = wsiview_env(
        &["registry", "init", "--db", &db],
        &[("PGUSER", "owner".into()), ("PGPASSWORD", "not-the-right-one".into())],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out) + &stdout(&out);
    assert!(text.contains("password authentication failed") && text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains("not-the-right-one") && !text.contains(&password("owner")), "{text}");
    // A password in --db is refused before anything is sent.
    let with_password = db.replacen("postgresql://", &format!("postgresql://owner:{}@", password("owner")), 1);
    let out = wsiview_env(&["registry", "init", "--db", &with_password], &[]);
    assert!(stderr(&out).contains("~/.pgpass") && !stderr(&out).contains(&password("owner")), "{}", stderr(&out));
    // The same URI from the environment is accepted (not visible to other users).
    let out = wsiview_env(&["registry", "init"], &[("WSIVIEW_REGISTRY", with_password.clone())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains(&password("owner")), "{}", stdout(&out));
    // A password file, owner-only.
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let passfile = temp.path().join("pgpass");
    std::fs::write(&passfile, format!("127.0.0.1:*:*:owner:{}\n", password("owner"))).unwrap_or_else(|e| panic!("{e}"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
    let out = wsiview_env(
        &["registry", "init", "--db", &db],
        &[("PGUSER", "owner".into()), ("PGPASSFILE", passfile.display().to_string())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn tls_is_verified_against_the_registrys_ca() {
    let Some((pg, db)) = registry(&unique("tls")) else { return };
    let Some(ca) = &pg.ca else { return };
    let base = db.replace("?sslmode=disable", "");
    let verify = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    let out = wsiview(&["registry", "init", "--db", &verify], "owner");
    assert!(out.status.success(), "verify-full with the CA: {}", stderr(&out));
    // Another CA: refused.
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (other_ca, _, _) = super::make_test_pki(temp.path()).unwrap_or_else(|| panic!("openssl"));
    let wrong = format!("{base}?sslmode=verify-full&sslrootcert={}", other_ca.display());
    let out = wsiview(&["registry", "init", "--db", &wrong], "owner");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect to the registry"), "{}", stderr(&out));
    // verify-full without a CA file says what is missing.
    let out = wsiview(&["registry", "init", "--db", &format!("{base}?sslmode=verify-full")], "owner");
    assert!(stderr(&out).contains("sslrootcert"), "{}", stderr(&out));
    // require: encrypted, the certificate not checked (libpq's meaning).
    let out = wsiview(&["registry", "init", "--db", &format!("{base}?sslmode=require")], "owner");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_registry_that_goes_away_mid_push_loses_nothing_and_the_retry_completes() {
    if cluster().is_none() {
        return;
    }
    let mut pg = Postgres::new(false);
    let db = pg.database("away");
    assert!(wsiview(&["registry", "init", "--db", &db], "owner").status.success());
    assert!(wsiview(&["registry", "add-site", "RLH", "--role", "site_rlh", "--db", &db], "owner").status.success());
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let reports = temp.path().join("reports");
    synth::write_set(&reports, 30_000, &["RLH"], 9).unwrap_or_else(|e| panic!("{e}"));
    let folder = reports.display().to_string();
    let mut push = Command::new(env!("CARGO_BIN_EXE_wsiview"));
    push.args(["registry", "push", &folder, "--db", &db])
        .env("PGUSER", "site_rlh")
        .env("PGPASSWORD", password("site_rlh"))
        .env("HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = push.spawn().unwrap_or_else(|e| panic!("{e}"));
    // Stop the server once some batches are in.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut client = pg.client("away", "owner");
        if count(&mut client, "SELECT count(*) FROM wsiview.report_versions") > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no batch arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    pg.stop_immediately();
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("run the same push again"), "{}", stderr(&out));
    pg.start();
    let mut client = pg.client("away", "owner");
    let before = count(&mut client, "SELECT count(*) FROM wsiview.report_versions");
    assert!(before > 0 && before < 30_000, "interrupted part-way: {before}");
    assert_eq!(before % 2000, 0, "whole batches only: {before}");
    let out = wsiview(&["registry", "push", &folder, "--db", &db], "site_rlh");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("{} unchanged", before)), "{}", stdout(&out));
    assert_eq!(count(&mut client, "SELECT count(*) FROM wsiview.report_versions"), 30_000);
    assert_eq!(count(&mut client, "SELECT count(DISTINCT report_id) FROM wsiview.report_versions"), 30_000);
}

#[test]
fn the_viewers_queue_is_published_once_and_another_sites_report_is_set_aside() {
    use wsiview::registry::queue::{enqueue_in, publish_queue_in, queued_files};
    let Some((pg, db)) = registry(&unique("queue")) else { return };
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let queue = data.path().join("wsiview/registry-queue");
    let signed = |site: &str| {
        (0..)
            .map(|n| synth::report(n, &SITES, 11))
            .find(|r| r.status == Status::Final && r.site == site)
            .unwrap_or_else(|| panic!("a final report of {site}"))
    };
    let (mine, theirs) = (signed("RLH"), signed("NBT"));
    // Queued by the viewer while the registry could not be reached: publishing then fails and
    // nothing leaves the queue.
    for report in [&mine, &theirs] {
        enqueue_in(&queue, report).unwrap_or_else(|e| panic!("{e}"));
    }
    let data_home = ("XDG_DATA_HOME", data.path().display().to_string());
    let unreachable = "postgresql://site_rlh@127.0.0.1:1/none?connect_timeout=2&sslmode=disable";
    let out = wsiview_env(&["registry", "push", "--db", unreachable], std::slice::from_ref(&data_home));
    assert!(!out.status.success() && stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    assert_eq!(queued_files(&queue).unwrap_or_default().len(), 2, "nothing lost");
    // The registry reached: `registry push` with no PATH publishes the queue.
    let vars = [("PGUSER", "site_rlh".to_string()), ("PGPASSWORD", password("site_rlh")), data_home];
    let out = wsiview_env(&["registry", "push", "--db", &db], &vars);
    assert_eq!(out.status.code(), Some(1), "a refused report is an error: {}", stderr(&out));
    let text = stdout(&out);
    for part in ["1 published", "0 unchanged", "1 refused", "0 still queued"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(stderr(&out).contains("\"NBT\""), "{}", stderr(&out));
    assert!(queued_files(&queue).unwrap_or_default().is_empty(), "the queue is empty");
    let aside: Vec<String> = std::fs::read_dir(queue.join("refused"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let name = aside
        .iter()
        .find(|n| n.ends_with(".report.json"))
        .unwrap_or_else(|| panic!("the refused report is kept: {aside:?}"));
    assert!(name.starts_with(&theirs.report_id.to_lowercase()), "{name}");
    let reason = std::fs::read_to_string(queue.join("refused").join(format!("{name}.reason.txt")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(reason.contains("\"NBT\"") && reason.contains("site_rlh"), "{reason}");
    // Queued again (the viewer retried a save) and published again: nothing twice.
    enqueue_in(&queue, &mine).unwrap_or_else(|e| panic!("{e}"));
    let mut client = pg.client(db_name(&db), "site_rlh");
    let outcome = publish_queue_in(&mut client, &queue).unwrap_or_else(|e| panic!("{e}"));
    assert!(outcome.published.is_empty(), "{outcome:?}");
    assert_eq!(outcome.unchanged, vec![mine.report_id.clone()]);
    assert!(queued_files(&queue).unwrap_or_default().is_empty());
    let again = publish_queue_in(&mut client, &queue).unwrap_or_else(|e| panic!("{e}"));
    assert!(again.published.is_empty() && again.unchanged.is_empty() && again.refused.is_empty());
    let mut manager = pg.client(db_name(&db), "manager");
    let rows = manager
        .query(
            "SELECT content_sha256 FROM wsiview.report_versions WHERE report_id = $1::text::uuid",
            &[&mine.report_id],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 1, "one row in report_versions");
    let stored: String = rows[0].get(0);
    assert_eq!(stored, wsiview::report::hash::sha256_bytes(&mine.to_json()));
    assert_eq!(count(&mut manager, "SELECT count(*) FROM wsiview.report_versions"), 1, "the NBT report is not in");
}

#[test]
fn a_registry_that_accepts_and_never_answers_is_unreachable_in_time() {
    // A socket that is accepted and then left silent (a stuck proxy): the client's own timeout
    // covers only the TCP connect.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
    let held = std::thread::spawn(move || {
        let accepted: Vec<_> = listener.incoming().take(1).flatten().collect();
        std::thread::sleep(Duration::from_secs(6));
        drop(accepted);
    });
    let started = Instant::now();
    let db = format!("postgresql://owner@127.0.0.1:{port}/x?sslmode=disable&connect_timeout=2");
    let out = wsiview(&["registry", "init", "--db", &db], "owner");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("did not answer within 2 s"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(5), "gave up after {took:?}");
    let _ = held.join();
}

/// The case list's question to the registry: the report state of each of a site's cases (the
/// most advanced current report naming it), as the site's own role may read it.
#[test]
fn the_case_list_learns_which_of_a_sites_cases_are_signed_out() {
    use wsiview::report::case::CaseState;
    let Some((pg, db)) = registry(&unique("cases")) else { return };
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let reports = temp.path().join("reports");
    let written = write_reports(&reports, 300, 21);
    for site in ["RLH", "NBT"] {
        let folder = reports.join(site).display().to_string();
        let out = wsiview(&["registry", "push", &folder, "--db", &db], &site_role(site));
        assert!(out.status.success(), "{site}: {}", stderr(&out));
    }
    // Expected, from the files: RLH's reports only, the most advanced state per case id.
    let mut expected = std::collections::HashMap::new();
    for r in written.iter().filter(|r| r.site == "RLH") {
        let state = expected.entry(r.case_id.trim().to_string()).or_insert(CaseState::None);
        *state = (*state).max(CaseState::of(r.status));
    }
    assert!(expected.values().any(|s| *s == CaseState::Draft) && expected.values().any(|s| *s >= CaseState::Final));
    let mut client = pg.client(db_name(&db), &site_role("RLH"));
    let states = wsiview::registry::read::case_states(&mut client, "RLH").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(states, expected);
    // Another site's cases are not RLH's: GWH published nothing.
    let states = wsiview::registry::read::case_states(&mut client, "GWH").unwrap_or_else(|e| panic!("{e}"));
    assert!(states.is_empty(), "{states:?}");
}
