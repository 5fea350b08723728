//! Opening files a user names (slides, annotation files, reports, keys, category maps): only
//! regular files. A FIFO, a device or a folder given by mistake is a clear error at once — opening
//! a FIFO for reading would otherwise wait forever for a writer.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

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
