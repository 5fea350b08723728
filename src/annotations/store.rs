//! Where a slide's annotations live and how they are written: a sidecar next to the slide (or in
//! the app data folder when the slide's folder is read-only), replaced atomically (temp file in
//! the same folder, fsync, rename, fsync of the folder), by a background thread so the UI never
//! serialises or writes.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::error::AnnotationFileError;
use super::geojson::{read_geojson_file, to_geojson_bytes, Import};
use super::model::{Annotation, AnnotationClass};
use crate::files::{app_data_dir, folder_writable, write_atomic};

/// Appended to the slide's whole file name to name its annotation sidecar (QuPath GeoJSON):
/// `slide.svs` → `slide.svs.annotations.geojson`.
pub const SIDECAR_SUFFIX: &str = ".annotations.geojson";

/// `slide.svs` → `slide.svs.annotations.geojson`, beside it. The whole file name is kept so
/// `case.svs` and `case.tif` in one folder do not share annotations.
pub fn sidecar_path(slide: &Path) -> PathBuf {
    let mut name = slide.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(SIDECAR_SUFFIX);
    slide.with_file_name(name)
}

/// Whether a slide "path" is a remote slide's (redacted) URL: its annotations live only in the
/// app data folder, never beside it.
fn is_remote(slide: &Path) -> bool {
    slide.to_str().is_some_and(crate::remote::is_url)
}

/// The fallback sidecar for a slide in a read-only folder (and for every remote slide): named
/// after the slide, with a hash of its full path (a remote slide's redacted URL) so two
/// `slide.svs` in different folders or on different servers stay apart.
pub fn fallback_path(slide: &Path, data_dir: &Path) -> PathBuf {
    let absolute = if is_remote(slide) {
        PathBuf::from(crate::remote::redact(&slide.to_string_lossy()))
    } else {
        std::path::absolute(slide).unwrap_or_else(|_| slide.to_path_buf())
    };
    // FNV-1a: stable across runs and Rust versions, unlike the std hasher.
    let hash = absolute
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    let name = slide.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    data_dir.join("annotations").join(format!("{name}.{hash:016x}{SIDECAR_SUFFIX}"))
}

/// What opening a slide's annotations found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Where autosave writes: the sidecar beside the slide, or the fallback in the app data
    /// folder when the slide's folder is read-only; empty when autosave is off (a damaged file
    /// could not be copied aside).
    pub save_path: PathBuf,
    /// The file read, if any.
    pub read_from: Option<PathBuf>,
    /// What was read from `read_from`: empty when there was no file or nothing could be read,
    /// partial (with the skipped features) when the file was damaged.
    pub import: Import,
    /// A problem with the file read (it is kept as a `.corrupt-…` copy before anything is saved).
    pub warning: Option<String>,
}

/// Find and read a slide's annotations. Call from a worker: this reads files. Never fails: an
/// unreadable sidecar is copied aside, reported in `warning`, and whatever could be read is used.
pub fn load_for_slide(slide: &Path) -> Loaded {
    load_for_slide_in(slide, app_data_dir().as_deref())
}

/// The annotation file a slide's annotations are read from, if there is one: the sidecar beside
/// it or the fallback in `data_dir`, the newer when both exist (the folder may have become
/// writable again).
pub fn existing_annotations(slide: &Path, data_dir: Option<&Path>) -> Option<PathBuf> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [(!is_remote(slide)).then(|| sidecar_path(slide)), data_dir.map(|d| fallback_path(slide, d))]
        .into_iter()
        .flatten()
        .filter(|p| p.is_file())
        .max_by_key(|p| modified(p).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// [`load_for_slide`] with the app data folder given: `data_dir` holds the fallback sidecars
/// (`data_dir/annotations/`), None when there is no such folder (then only the sidecar beside the
/// slide is read and written). Never fails, as [`load_for_slide`].
pub fn load_for_slide_in(slide: &Path, data_dir: Option<&Path>) -> Loaded {
    let beside = sidecar_path(slide);
    let fallback = data_dir.map(|d| fallback_path(slide, d));
    let read_from = existing_annotations(slide, data_dir);
    let dir = beside.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let save_path = match (&fallback, is_remote(slide) || !folder_writable(dir)) {
        (Some(f), true) => f.clone(),
        // A remote slide without an app data folder: autosave is off (empty path).
        (None, true) if is_remote(slide) => PathBuf::new(),
        _ => beside,
    };
    if !save_path.as_os_str().is_empty() {
        remove_stale_temp_files(&save_path);
    }
    let mut loaded = Loaded { save_path, read_from: read_from.clone(), ..Default::default() };
    let Some(path) = read_from else { return loaded };
    let (import, problem) = match read_geojson_file(&path) {
        Ok(import) if import.skipped == 0 && !import.truncated => (import, None),
        Ok(import) => {
            let summary = import.summary();
            (import, Some(summary))
        }
        Err(e) => (Import::default(), Some(e.reason())),
    };
    if let Some(problem) = problem {
        // Keep the damaged file before autosave replaces it: nothing is ever lost.
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut backup = path.clone().into_os_string();
        backup.push(format!(".corrupt-{stamp}"));
        let kept = std::fs::copy(&path, &backup).map(|_| PathBuf::from(&backup));
        loaded.warning = Some(match kept {
            Ok(b) => format!("{}: {problem}. The file was kept as {}", path.display(), b.display()),
            Err(e) => format!("{}: {problem}. It could not be kept aside ({e}); autosave is off", path.display()),
        });
        if loaded.warning.as_deref().is_some_and(|w| w.ends_with("autosave is off")) {
            loaded.save_path = PathBuf::new();
        }
    }
    loaded.import = import;
    loaded
}

/// Temp files of [`write_atomic`] for `path` left by a process killed mid-write: older than a
/// minute, so a save in progress in another process is never touched.
fn remove_stale_temp_files(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
        if file.starts_with(&prefix) && file.ends_with(".tmp") && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A document state to write.
struct Snapshot {
    revision: u64,
    annotations: Vec<Arc<Annotation>>,
    classes: Vec<AnnotationClass>,
}

/// How saving is going, for the status bar.
#[derive(Clone, Debug, Default)]
pub struct SaveStatus {
    /// The newest [`crate::annotations::Document::revision`] on disk; the document has unsaved
    /// changes while its revision differs.
    pub saved_revision: u64,
    /// When the last successful write finished; None until one has in this session.
    pub saved_at: Option<Instant>,
    /// The last write's failure ("cannot save annotations to PATH: …"), retried every two
    /// seconds; None once a write succeeds.
    pub error: Option<String>,
}

/// Writes a document's snapshots on its own thread. Snapshots queue up; only the newest is
/// written. Dropping the autosaver writes the last snapshot and waits for it.
pub struct Autosaver {
    path: PathBuf,
    sender: Option<Sender<Snapshot>>,
    status: Arc<Mutex<SaveStatus>>,
    thread: Option<std::thread::JoinHandle<()>>,
    queued_revision: u64,
}

impl Autosaver {
    /// `saved_revision` is the revision already on disk (the loaded state).
    pub fn new(path: PathBuf, saved_revision: u64) -> Self {
        let (sender, receiver) = channel::<Snapshot>();
        let status = Arc::new(Mutex::new(SaveStatus { saved_revision, ..Default::default() }));
        let worker_status = status.clone();
        let worker_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("annotation-autosave".into())
            .spawn(move || save_loop(&worker_path, &receiver, &worker_status))
            .ok();
        Autosaver { path, sender: Some(sender), status, thread, queued_revision: saved_revision }
    }

    /// The file this autosaver writes (empty when autosave is off: submissions are ignored).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queue the document's state if it changed since the last call. Cheap: the annotations are
    /// shared pointers.
    pub fn submit(&mut self, revision: u64, annotations: Vec<Arc<Annotation>>, classes: &[AnnotationClass]) {
        if revision == self.queued_revision || self.path.as_os_str().is_empty() {
            return;
        }
        self.queued_revision = revision;
        if let Some(sender) = &self.sender {
            let _ = sender.send(Snapshot { revision, annotations, classes: classes.to_vec() });
        }
    }

    /// The revision of the last state queued by [`Autosaver::submit`] (initially the one given
    /// to [`Autosaver::new`]), whether or not it is written yet.
    pub fn queued_revision(&self) -> u64 {
        self.queued_revision
    }

    /// A copy of how saving is going: what is on disk, when, and the last error.
    pub fn status(&self) -> SaveStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Write what is queued and wait (closing a tab, quitting).
    pub fn flush(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Autosaver {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Failed writes are retried after this long (a share may come back).
const RETRY_AFTER: Duration = Duration::from_secs(2);

fn save_loop(path: &Path, receiver: &Receiver<Snapshot>, status: &Mutex<SaveStatus>) {
    let mut pending: Option<Snapshot> = None;
    loop {
        // Wait for work (or, after a failure, for the retry time); take the newest snapshot.
        let next = if pending.is_some() { receiver.recv_timeout(RETRY_AFTER).ok() } else { receiver.recv().ok() };
        let disconnected = next.is_none() && pending.is_none();
        if let Some(s) = next {
            pending = Some(s);
        }
        while let Ok(newer) = receiver.try_recv() {
            pending = Some(newer);
        }
        let Some(snapshot) = pending.take() else {
            if disconnected {
                return;
            }
            continue;
        };
        let bytes = to_geojson_bytes(&snapshot.annotations, &snapshot.classes);
        let result =
            path.parent()
                .map_or(Ok(()), |d| if d.as_os_str().is_empty() { Ok(()) } else { std::fs::create_dir_all(d) });
        let result = result.and_then(|()| write_atomic(path, &bytes));
        let mut st = status.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                st.saved_revision = snapshot.revision;
                st.saved_at = Some(Instant::now());
                st.error = None;
            }
            Err(e) => {
                st.error = Some(format!("cannot save annotations to {}: {e}", path.display()));
                drop(st);
                pending = Some(snapshot);
                // On shutdown, one failed attempt is all we can do.
                if receiver_is_closed(receiver) {
                    return;
                }
            }
        }
    }
}

fn receiver_is_closed(receiver: &Receiver<Snapshot>) -> bool {
    matches!(receiver.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected))
}

/// Read an annotation file of either format by its extension (`.xml` is ASAP, the rest GeoJSON).
pub fn read_any(path: &Path) -> Result<Import, AnnotationFileError> {
    let is_xml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    if is_xml {
        super::asap::read_asap_file(path)
    } else {
        read_geojson_file(path)
    }
}

/// Write an annotation file of either format by its extension, atomically.
pub fn write_any(
    path: &Path,
    annotations: &[impl AsRef<Annotation>],
    classes: &[AnnotationClass],
) -> Result<(), AnnotationFileError> {
    let is_xml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    let bytes = if is_xml {
        super::asap::to_asap_xml(annotations, classes).into_bytes()
    } else {
        to_geojson_bytes(annotations, classes)
    };
    write_atomic(path, &bytes).map_err(|error| AnnotationFileError::Write { path: path.to_path_buf(), error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::Geometry;

    #[test]
    fn a_remote_slide_keeps_its_annotations_in_the_app_data_folder_only() {
        let data = tempfile::tempdir().unwrap();
        let url = Path::new("https://slides.example/cases/a.svs");
        let loaded = load_for_slide_in(url, Some(data.path()));
        assert!(loaded.save_path.starts_with(data.path().join("annotations")), "{}", loaded.save_path.display());
        assert!(loaded.read_from.is_none());
        // Another server's a.svs is kept apart; the same URL finds what was saved.
        let other = load_for_slide_in(Path::new("https://other.example/cases/a.svs"), Some(data.path()));
        assert_ne!(other.save_path, loaded.save_path);
        std::fs::create_dir_all(loaded.save_path.parent().unwrap()).unwrap();
        std::fs::write(&loaded.save_path, br#"{"type":"FeatureCollection","features":[]}"#).unwrap();
        assert_eq!(load_for_slide_in(url, Some(data.path())).read_from.as_deref(), Some(loaded.save_path.as_path()));
        // Without an app data folder nothing is written anywhere (autosave off).
        assert_eq!(load_for_slide_in(url, None).save_path, PathBuf::new());
    }

    #[test]
    fn sidecar_names() {
        assert_eq!(sidecar_path(Path::new("/a/b/case 1.svs")), Path::new("/a/b/case 1.svs.annotations.geojson"));
        let f1 = fallback_path(Path::new("/x/slide.svs"), Path::new("/data"));
        let f2 = fallback_path(Path::new("/y/slide.svs"), Path::new("/data"));
        assert_ne!(f1, f2);
        assert!(f1.starts_with("/data/annotations"));
    }

    #[test]
    fn stale_temp_files_of_a_killed_save_are_removed_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let slide = dir.path().join("s.svs");
        let stale = dir.path().join(".s.svs.annotations.geojson.123-4.tmp");
        let fresh = dir.path().join(".s.svs.annotations.geojson.456-7.tmp");
        let other = dir.path().join(".other.svs.annotations.geojson.1-1.tmp");
        for p in [&stale, &fresh, &other] {
            std::fs::write(p, b"{").unwrap();
        }
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for p in [&stale, &other] {
            std::fs::File::options().write(true).open(p).unwrap().set_modified(an_hour_ago).unwrap();
        }
        load_for_slide_in(&slide, None);
        assert!(!stale.exists(), "an old temp file of this sidecar goes");
        assert!(fresh.exists(), "a save in progress elsewhere is left alone");
        assert!(other.exists(), "other slides' files are left alone");
    }

    #[test]
    fn autosave_writes_the_newest_state_and_flushes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let slide = dir.path().join("s.svs");
        let loaded = load_for_slide_in(&slide, None);
        assert_eq!(loaded.save_path, sidecar_path(&slide));
        assert!(loaded.read_from.is_none());
        let mut saver = Autosaver::new(loaded.save_path.clone(), 0);
        let mut anns = Vec::new();
        for i in 1..=50u32 {
            anns.push(Arc::new(Annotation::new(Geometry::Points { points: vec![[f64::from(i), 0.0]] })));
            saver.submit(u64::from(i), anns.clone(), &[]);
        }
        drop(saver);
        let again = load_for_slide_in(&slide, None);
        assert_eq!(again.read_from.as_deref(), Some(sidecar_path(&slide).as_path()));
        assert_eq!(again.import.annotations.len(), 50);
        assert!(again.warning.is_none());
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn damaged_sidecar_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let slide = dir.path().join("s.svs");
        std::fs::write(sidecar_path(&slide), b"{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[1,2]},\"properties\":{}},{\"type\":").unwrap();
        let loaded = load_for_slide_in(&slide, None);
        assert_eq!(loaded.import.annotations.len(), 1);
        let warning = loaded.warning.unwrap();
        assert!(warning.contains("truncated") && warning.contains(".corrupt-"), "{warning}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn read_only_folder_falls_back_to_the_data_folder() {
        // /proc refuses new files even to root (CI runs as root, which ignores permission bits).
        let slide = Path::new("/proc/s.svs");
        let dir = tempfile::tempdir().unwrap();
        let loaded = load_for_slide_in(slide, Some(dir.path()));
        assert_eq!(loaded.save_path, fallback_path(slide, dir.path()));
        let mut saver = Autosaver::new(loaded.save_path.clone(), 0);
        saver.submit(1, vec![Arc::new(Annotation::new(Geometry::Points { points: vec![[1.0, 2.0]] }))], &[]);
        drop(saver);
        let again = load_for_slide_in(slide, Some(dir.path()));
        assert_eq!(again.read_from.as_deref(), Some(fallback_path(slide, dir.path()).as_path()));
        assert_eq!(again.import.annotations.len(), 1);
    }
}
