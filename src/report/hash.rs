//! SHA-256 of a whole slide file: what makes two reports "of the same slide" across sites,
//! whatever the file is called there.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Read size: large enough that a multi-gigabyte slide hashes at disk speed.
const CHUNK: usize = 1 << 20;

/// Lower-case hex SHA-256 of the file. `progress(done, total)` is called after every chunk and
/// may return false to stop (the result is then an `Interrupted` error). Call from a worker.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64, u64) -> bool) -> std::io::Result<String> {
    let file = crate::files::open_regular(path)?;
    let total = file.metadata()?.len();
    let mut hasher = Sha256::new();
    hash_reader(&mut hasher, file, |done| progress(done, total))?;
    Ok(to_hex(&hasher.finalize()))
}

/// Feed `reader` to `hasher` in [`CHUNK`]s; `each(bytes so far)` after every chunk may return
/// false to stop (an `Interrupted` error).
fn hash_reader(hasher: &mut Sha256, mut reader: impl Read, mut each: impl FnMut(u64) -> bool) -> std::io::Result<()> {
    let mut buffer = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        done += n as u64;
        if !each(done) {
            return Err(cancelled());
        }
    }
}

fn cancelled() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Interrupted, "hashing cancelled")
}

/// [`sha256_file`] of a slide named by a path or a URL (`http(s)://`, `s3://`): a remote object
/// is streamed ([`crate::remote::HttpSource::stream`]), not downloaded to disk, and `progress`
/// can stop it in the same way. An error from the network reads like the file's (kind and
/// reason; the caller names the slide).
pub fn sha256_location(location: &str, mut progress: impl FnMut(u64, u64) -> bool) -> std::io::Result<String> {
    if !crate::remote::is_url(location) {
        return sha256_file(Path::new(location), progress);
    }
    let source = crate::remote::HttpSource::open(location)?;
    let total = crate::tiff::ByteSource::len(&source);
    let mut hasher = Sha256::new();
    let finished = source.stream(|piece, done| {
        hasher.update(piece);
        progress(done, total)
    })?;
    if !finished {
        return Err(cancelled());
    }
    Ok(to_hex(&hasher.finalize()))
}

/// The SHA-256 that identifies a slide in reports, whatever its form:
/// - a DICOM series (a DICOMweb series URL, a folder of instance files, or one of them): the
///   series' instance files, ordered by SOPInstanceUID, hashed one after the other (so a series
///   gives the same hash from a folder and from a PACS, which keeps the files as sent);
///   `progress` counts instances;
/// - anything else: [`sha256_location`] of the one file or object.
///
/// Call from a worker.
pub fn sha256_slide(location: &str, mut progress: impl FnMut(u64, u64) -> bool) -> std::io::Result<String> {
    if crate::remote::dicomweb::is_series_url(location) {
        let auth = crate::remote::dicomweb::Auth::from_env(None).map_err(std::io::Error::other)?;
        let series = crate::remote::dicomweb::SeriesLocation::new(location, auth)?;
        let uids = series.instance_uids()?;
        let mut hasher = Sha256::new();
        for (k, uid) in uids.iter().enumerate() {
            let whole = series.stream_instance(uid, |bytes| {
                hasher.update(bytes);
                progress(k as u64, uids.len() as u64)
            })?;
            if !whole || !progress(k as u64 + 1, uids.len() as u64) {
                return Err(cancelled());
            }
        }
        return Ok(to_hex(&hasher.finalize()));
    }
    if crate::remote::is_url(location) {
        return sha256_location(location, progress);
    }
    sha256_slide_path(Path::new(location), progress)
}

/// [`sha256_slide`] of a local path (which need not be UTF-8): a DICOM folder or instance file
/// hashes its series, anything else the file.
pub fn sha256_slide_path(path: &Path, mut progress: impl FnMut(u64, u64) -> bool) -> std::io::Result<String> {
    if is_dicom(path) {
        let (_, files) = crate::slide::dicom_series_files(path, &crate::Limits::DEFAULT)
            .map_err(|e| std::io::Error::other(e.kind.to_string()))?;
        let mut hasher = Sha256::new();
        for (k, (_, file)) in files.iter().enumerate() {
            let file = crate::files::open_regular(file)?;
            hash_reader(&mut hasher, file, |_| progress(k as u64, files.len() as u64))?;
            if !progress(k as u64 + 1, files.len() as u64) {
                return Err(cancelled());
            }
        }
        return Ok(to_hex(&hasher.finalize()));
    }
    sha256_file(path, progress)
}

/// A folder, or a file with DICOM's "DICM" at byte 128.
fn is_dicom(path: &Path) -> bool {
    if path.is_dir() {
        return true;
    }
    let Ok(mut file) = crate::files::open_regular(path) else { return false };
    let mut head = [0u8; 132];
    file.read_exact(&mut head).is_ok() && &head[128..] == b"DICM"
}

/// SHA-256 of bytes in memory, lower-case hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lower-case hex of bytes (a digest).
pub fn to_hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_and_progress() {
        // FIPS 180-2 test vector.
        assert_eq!(sha256_bytes(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut calls = Vec::new();
        let hex = sha256_file(&path, |done, total| {
            calls.push((done, total));
            true
        })
        .unwrap();
        assert_eq!(hex, sha256_bytes(&data));
        assert_eq!(calls.len(), 4);
        assert_eq!(calls.last(), Some(&(data.len() as u64, data.len() as u64)));
        let err = sha256_file(&path, |_, _| false).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted);
    }
}
