//! The file system as wsiview uses it, for every module above `tiff`:
//! - reading files a user names (slides, annotation files, reports, keys, category maps): only
//!   regular files ([`open_regular`], [`read_regular`] with a size cap). A FIFO, a device or a
//!   folder given by mistake is a clear error at once — opening a FIFO for reading would otherwise
//!   wait forever for a writer;
//! - writing what the user made: [`write_atomic`] (readers see the old file or the new one, never
//!   a part), [`folder_writable`];
//! - the per-user data folder ([`app_data_dir`]) where annotations, reports and the teaching key go
//!   when the slide's folder is read-only.
//!
//! Imports nothing of the crate.

#![warn(missing_docs)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Open `path` for reading if it is a regular file (following symbolic links); otherwise an
/// error saying what it is. On Unix the open itself does not wait (`O_NONBLOCK`), and the check
/// is made on the opened file, so nothing can swap it in between.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let what = if kind.is_dir() {
        "a folder (directory)"
    } else if is_fifo(&kind) {
        "a FIFO (named pipe)"
    } else {
        "a device or other special file"
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a regular file: it is {what}")))
}

#[cfg(unix)]
fn is_fifo(kind: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(kind)
}

#[cfg(not(unix))]
fn is_fifo(_: &std::fs::FileType) -> bool {
    false
}

/// The whole of a regular file of at most `max` bytes; a larger file is an error before it is
/// read into memory.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("too large: {len} bytes (at most {max} are read)"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("too large: more than {max} bytes")));
    }
    Ok(bytes)
}

/// The per-user data folder (`$XDG_DATA_HOME/wsiview`, `~/.local/share/wsiview`,
/// `%APPDATA%\wsiview`, `~/Library/Application Support/wsiview`).
pub fn app_data_dir() -> Option<PathBuf> {
    if let Some(dir) = APP_DATA_DIR.get() {
        return Some(dir.clone());
    }
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        var("APPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library/Application Support"))
    } else {
        var("XDG_DATA_HOME").or_else(|| var("HOME").map(|h| h.join(".local/share")))
    };
    base.map(|b| b.join("wsiview"))
}

/// The app data folder [`set_app_data_dir`] chose for this process, if it did.
static APP_DATA_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Use `dir` as [`app_data_dir`] for the rest of this process, whatever the environment says: a
/// test's scratch folder, so that what a user or an earlier run left in the real one is never
/// read. The first call wins; false when a folder was set already.
pub fn set_app_data_dir(dir: PathBuf) -> bool {
    APP_DATA_DIR.set(dir).is_ok()
}

/// Write `bytes` to `path` atomically: readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Write `path` atomically from `write`, which streams the contents into the new file (for files
/// too large to build in memory): a temporary file beside `path` is written, synced and renamed
/// over it, so readers see the old file or the new one, never a part. If `write` fails, the
/// temporary file is removed and `path` is unchanged.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}-{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        write(&mut file)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        // The rename itself is durable once the folder is synced (POSIX); Windows has no such call.
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Whether a file can be created in `dir` (the slide's folder may be read-only, e.g. a share).
pub fn folder_writable(dir: &Path) -> bool {
    // A name of this call's own: two threads probing one folder at once (a case's slides
    // opening together) must not take each other's probe for a refusal.
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let probe = dir.join(format!(".wsiview-write-test-{}-{n}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_probed_by_many_threads_at_once_is_writable_to_each() {
        let dir = tempfile::tempdir().unwrap();
        let results: Vec<bool> = std::thread::scope(|s| {
            let probes: Vec<_> = (0..16).map(|_| s.spawn(|| (0..50).all(|_| folder_writable(dir.path())))).collect();
            probes.into_iter().map(|p| p.join().unwrap()).collect()
        });
        assert!(results.iter().all(|w| *w), "{results:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no probe is left behind");
    }

    #[test]
    fn folders_and_fifos_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_regular(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a folder"), "{err}");
        #[cfg(unix)]
        {
            let fifo = dir.path().join("x.svs");
            let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
            assert!(status.success());
            let err = open_regular(&fifo).unwrap_err().to_string();
            assert!(err.contains("FIFO"), "{err}");
            assert!(read_regular(&fifo, 10).is_err());
        }
        let file = dir.path().join("ok");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"12345");
        assert!(read_regular(&file, 4).unwrap_err().to_string().contains("too large"));
    }
}
