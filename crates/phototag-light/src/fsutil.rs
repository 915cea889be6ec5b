//! Writing a file whole: the one atomic write every writer of phototag uses (model
//! manifests, the daemon's status record, XMP sidecars, cached thumbnails).
//!
//! May not: know what the files hold.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

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
