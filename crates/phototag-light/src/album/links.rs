//! The links in an album folder: make one (never over an existing file), tell whether a
//! recorded one is still what phototag made, remove it only then.
//!
//! A symbolic link is phototag's while it still points at the recorded target; a hard
//! link while it still has the recorded inode.
//!
//! May not: follow a link into its target, write to a photo, or remove anything that is
//! not a recorded link in its recorded state.

use std::io;
use std::os::unix::fs::MetadataExt;

use crate::catalog::LinkRow;
use crate::config::LinkKind;

/// What is at a recorded link's path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The link phototag made.
    Ours,
    /// Nothing.
    Missing,
    /// Something else (replaced by someone): left alone.
    Foreign,
}

/// Looks at a recorded link without following it.
pub fn state(r: &LinkRow) -> State {
    let meta = match std::fs::symlink_metadata(&r.path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return State::Missing,
        Err(_) => return State::Foreign,
    };
    if meta.file_type().is_symlink() {
        match std::fs::read_link(&r.path) {
            Ok(t) if t == r.target && r.inode.is_none() => State::Ours,
            _ => State::Foreign,
        }
    } else if meta.is_file() && r.inode == Some(meta.ino()) {
        State::Ours
    } else {
        State::Foreign
    }
}

/// Makes a link; fails (AlreadyExists) rather than replace anything. Returns the inode of
/// a hard link.
///
/// Where another phototag process (the daemon, or `album sync`) made the very same link
/// a moment before, that link is taken as made: it is exactly what this one would be.
pub fn create(r: &LinkRow, kind: LinkKind) -> io::Result<Option<u64>> {
    let made = match kind {
        LinkKind::Symlink => std::os::unix::fs::symlink(&r.target, &r.path).map(|()| None),
        LinkKind::Hardlink => std::fs::hard_link(&r.target, &r.path)
            .and_then(|()| Ok(Some(std::fs::symlink_metadata(&r.path)?.ino()))),
    };
    match made {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match same_link(r, kind) {
            Some(inode) => Ok(inode),
            None => Err(e),
        },
        other => other,
    }
}

/// `Some` when the file at the link's path is already the link wanted.
fn same_link(r: &LinkRow, kind: LinkKind) -> Option<Option<u64>> {
    let meta = std::fs::symlink_metadata(&r.path).ok()?;
    match kind {
        LinkKind::Symlink => (meta.file_type().is_symlink()
            && std::fs::read_link(&r.path).ok()? == r.target)
            .then_some(None),
        LinkKind::Hardlink => {
            let target = std::fs::metadata(&r.target).ok()?;
            (meta.is_file() && meta.dev() == target.dev() && meta.ino() == target.ino())
                .then_some(Some(meta.ino()))
        }
    }
}

/// Removes a recorded link if it is still phototag's.
pub fn remove(r: &LinkRow) -> io::Result<()> {
    match state(r) {
        State::Ours => std::fs::remove_file(&r.path),
        State::Missing => Ok(()),
        State::Foreign => Err(io::Error::other(
            "no longer the link phototag made; left alone",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(dir: &std::path::Path, name: &str, target: &std::path::Path) -> LinkRow {
        LinkRow {
            path: dir.join(name),
            album: "a".into(),
            target: target.to_path_buf(),
            hash: [0; 32],
            inode: None,
        }
    }

    #[test]
    fn a_symlink_is_ours_until_replaced() {
        let d = tempfile::tempdir().unwrap();
        let photo = d.path().join("p.jpg");
        std::fs::write(&photo, b"x").unwrap();
        let r = row(d.path(), "l.jpg", &photo);
        assert_eq!(state(&r), State::Missing);
        assert_eq!(create(&r, LinkKind::Symlink).unwrap(), None);
        assert_eq!(state(&r), State::Ours);
        // The same link made a moment before by another phototag process is taken as made.
        assert_eq!(create(&r, LinkKind::Symlink).unwrap(), None);
        std::fs::remove_file(&r.path).unwrap();
        std::fs::write(&r.path, b"mine").unwrap();
        assert!(create(&r, LinkKind::Symlink).is_err(), "never over a file");
        assert_eq!(state(&r), State::Foreign);
        assert!(remove(&r).is_err());
        assert_eq!(std::fs::read(&r.path).unwrap(), b"mine");
    }

    #[test]
    fn a_hard_link_is_ours_by_inode() {
        let d = tempfile::tempdir().unwrap();
        let photo = d.path().join("p.jpg");
        std::fs::write(&photo, b"x").unwrap();
        let mut r = row(d.path(), "l.jpg", &photo);
        r.inode = create(&r, LinkKind::Hardlink).unwrap();
        assert_eq!(state(&r), State::Ours);
        remove(&r).unwrap();
        assert!(photo.exists(), "the photo stays");
        assert_eq!(state(&r), State::Missing);
    }
}
