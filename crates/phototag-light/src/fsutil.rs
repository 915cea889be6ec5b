//! Writing a file whole: the one atomic write every writer of phototag uses (model
//! manifests, the daemon's status record, XMP sidecars, cached thumbnails); and the one
//! way a file named by the catalog (or found by a walk) is opened for reading,
//! [`open_regular`], which never blocks on a FIFO or a device.
//!
//! May not: know what the files hold.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Opens `path` for reading only if it is a regular file, without ever blocking: the open
/// is non-blocking (`O_NONBLOCK`: opening a FIFO that has no writer would otherwise wait
/// forever, and a device could hang), then the *open handle* is checked with `fstat` (no
/// race with a path swapped between a check and the open), then blocking reads are
/// restored. Anything else (a FIFO, socket, device or folder) is an `InvalidInput` error
/// saying "not a regular file". Returns the file and its metadata.
pub fn open_regular(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    // SAFETY: fcntl on a descriptor this function owns; only the status flags change.
    let restored = unsafe {
        let fd = file.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if !restored {
        return Err(std::io::Error::last_os_error());
    }
    Ok((file, meta))
}

/// How [`write_atomic_with`] writes.
#[derive(Debug, Clone, Copy)]
pub struct Atomic {
    /// Permission bits for the new file (e.g. those of the file it replaces); `None` for
    /// the process's default.
    pub mode: Option<u32>,
    /// Flush the data to disk before the rename (what a cache can do without).
    pub sync: bool,
}

/// Writes `bytes` to `path` so that a reader never sees half a file: synced, with the
/// default permissions. See [`write_atomic_with`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(
        path,
        bytes,
        Atomic {
            mode: None,
            sync: true,
        },
    )
}

/// Writes `bytes` to a temporary file in the same folder, then renames it over `path`. The
/// temporary name is hidden and ends in `.tmp` (walkers skip it), unique to this process
/// and write, and removed again when anything fails.
pub fn write_atomic_with(path: &Path, bytes: &[u8], how: Atomic) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(
        ".phototag-{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if let Some(m) = how.mode {
            f.set_permissions(std::fs::Permissions::from_mode(m))?;
        }
        if how.sync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open_and_a_fifo_never_blocks() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("photo.jpg");
        std::fs::write(&f, b"bytes").unwrap();
        let (mut file, meta) = open_regular(&f).unwrap();
        assert_eq!(meta.len(), 5);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut file, &mut s).unwrap();
        assert_eq!(s, "bytes");
        // A FIFO with no writer: a plain open would wait forever.
        let fifo = d.path().join("fifo.jpg");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let started = std::time::Instant::now();
        let e = open_regular(&fifo).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("not a regular file"));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(open_regular(d.path()).is_err(), "a folder");
        assert!(open_regular(Path::new("/dev/null")).is_err(), "a device");
        assert_eq!(
            open_regular(&d.path().join("missing")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }

    #[test]
    fn replaces_whole_with_the_mode_asked_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.txt");
        write_atomic(&p, b"one").unwrap();
        let how = Atomic {
            mode: Some(0o600),
            sync: false,
        };
        write_atomic_with(&p, b"two", how).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // A folder in the way: the error comes back and no temporary file is left.
        let blocked = d.path().join("dir");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"").unwrap();
        assert!(write_atomic(&blocked, b"x").is_err());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }
}
