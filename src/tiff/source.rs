//! Where a TIFF's bytes come from. Reads are positional (`read_exact_at`) so many threads can read
//! one file at once without a lock; a remote source (HTTP range requests) implements the same trait.

use std::fs::File;
use std::io;
use std::path::Path;

/// Random-access bytes, safe to read from many threads at once.
pub trait ByteSource: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Whether the source has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` from `offset`; an error if the range is not wholly inside the source. Used for
    /// headers, IFDs and tables: a remote source reads ahead around it.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// [`read_exact_at`](Self::read_exact_at) for bulk data (a tile, a strip, a frame), whose
    /// neighbours are not likely to be wanted next: a remote source fetches only what covers it.
    fn read_data_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_exact_at(offset, buf)
    }
}

/// A local file read with `pread` (Unix) or `seek_read` (Windows), which do not move a shared cursor.
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Open a regular file for reading (anything else, a directory or a FIFO, is an error; see
    /// [`crate::files::open_regular`]); its length is taken now.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file: File = crate::files::open_regular(path)?;
        let meta = file.metadata()?;
        Ok(FileSource { len: meta.len(), file })
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.file.seek_read(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Bytes held in memory (tests, and slides received whole over a network).
pub struct MemorySource(pub Vec<u8>);

impl ByteSource for MemorySource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let end = start.checked_add(buf.len()).filter(|&e| e <= self.0.len());
        match end {
            Some(end) => {
                buf.copy_from_slice(&self.0[start..end]);
                Ok(())
            }
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}
