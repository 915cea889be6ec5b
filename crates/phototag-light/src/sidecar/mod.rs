//! XMP sidecars beside photos: `photo.jpg` gets `photo.jpg.xmp` (digiKam's and
//! darktable's naming). An existing sidecar is merged into (see `xmp`), never replaced
//! wholesale; the new text goes to a hidden temporary file in the same folder that is
//! then renamed over the old one, so a reader sees the old sidecar or the new, never half.
//!
//! May not: open a photo for writing, or depend on the model (it takes stored tags).

pub mod merge;
pub mod xmp;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::catalog::TagRow;
use crate::fsutil::{write_atomic_with, Atomic};

/// Why a sidecar was not written.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: left alone: {source}")]
    Xmp {
        path: PathBuf,
        source: xmp::XmpError,
    },
}

/// The sidecar of a photo: its path with `.xmp` appended.
pub fn path_for(photo: &Path) -> PathBuf {
    let mut s: OsString = photo.as_os_str().to_os_string();
    s.push(".xmp");
    PathBuf::from(s)
}

/// What [`write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Merged,
    /// The sidecar already said exactly this.
    Unchanged,
}

/// Writes (or merges) the sidecar at `sidecar` with a model's tags.
pub fn write_to(sidecar: &Path, model: &str, tags: &[TagRow]) -> Result<Written, SidecarError> {
    let io = |source| SidecarError::Io {
        path: sidecar.to_path_buf(),
        source,
    };
    // Never blocks on a FIFO in the sidecar's place (it is refused as not a regular file).
    let read = crate::fsutil::open_regular(sidecar).and_then(|(mut f, m)| {
        let mut bytes = Vec::with_capacity(m.len() as usize);
        std::io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes)
    });
    let (text, how, mode) = match read {
        Ok(bytes) => {
            let old = String::from_utf8(bytes).map_err(|e| SidecarError::Xmp {
                path: sidecar.to_path_buf(),
                source: xmp::XmpError::Xml(format!("not UTF-8: {e}")),
            })?;
            let new = merge::merge(&old, model, tags).map_err(|source| SidecarError::Xmp {
                path: sidecar.to_path_buf(),
                source,
            })?;
            // Nothing of phototag's changed: leave the file (and its mtime) as it is.
            if new == old || xmp::read(&new).ok() == xmp::read(&old).ok() {
                return Ok(Written::Unchanged);
            }
            let mode = std::fs::metadata(sidecar)
                .map(|m| m.permissions().mode())
                .ok();
            (new, Written::Merged, mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (xmp::render(model, tags), Written::Created, None)
        }
        Err(e) => return Err(io(e)),
    };
    let atomic = Atomic { mode, sync: true };
    write_atomic_with(sidecar, text.as_bytes(), atomic).map_err(io)?;
    Ok(how)
}

/// Writes the sidecar beside `photo`.
pub fn write(photo: &Path, model: &str, tags: &[TagRow]) -> Result<Written, SidecarError> {
    write_to(&path_for(photo), model, tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_is_named_like_digikam_and_written_whole() {
        let d = tempfile::tempdir().unwrap();
        let photo = d.path().join("a.jpg");
        std::fs::write(&photo, b"photo bytes").unwrap();
        assert_eq!(path_for(&photo), d.path().join("a.jpg.xmp"));
        let tags = vec![TagRow {
            rank: 1,
            class_index: 1,
            label: "goldfish".into(),
            probability: 0.5,
        }];
        assert_eq!(write(&photo, "m", &tags).unwrap(), Written::Created);
        assert_eq!(write(&photo, "m", &tags).unwrap(), Written::Unchanged);
        assert_eq!(std::fs::read(&photo).unwrap(), b"photo bytes");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        std::fs::write(path_for(&photo), b"<not xml").unwrap();
        assert!(matches!(
            write(&photo, "m", &tags),
            Err(SidecarError::Xmp { .. })
        ));
        assert_eq!(std::fs::read(path_for(&photo)).unwrap(), b"<not xml");
    }
}
