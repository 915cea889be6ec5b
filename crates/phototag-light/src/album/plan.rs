//! What an album folder should hold, and the changes that get it there.
//!
//! Each matching content gets one link, named after its file (the first path by bytes
//! when several copies match). Names are kept as they are unless two different contents
//! share one, or a file phototag did not make already has it: then the name gets a short
//! content-hash suffix (`IMG_0001-1a2b3c4d.jpg`). A recorded link that is still what
//! phototag made is kept when it is still wanted, removed otherwise; a record whose file
//! is gone or was replaced by someone else is forgotten (the file is left alone).
//!
//! May not: change anything (it only reads the album folder to tell its own links from
//! other files).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::links::{self, State};
use super::Album;
use crate::catalog::{hex, Hash, LinkRow};

/// One change to an album folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Make this link (and record it).
    Create(LinkRow),
    /// Remove this link phototag made (and its record).
    Remove(LinkRow),
    /// Drop this record; its file is gone or not phototag's any more (left alone).
    Forget(LinkRow),
}

/// The changes, removals before creations, and how many links stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub kept: usize,
}

/// How many hex digits of the hash a colliding name gets.
const SUFFIX_HEX: usize = 8;

/// `stem-1a2b3c4d.ext` (the suffix before the last extension, if any).
pub fn suffixed(name: &OsStr, hash: &Hash) -> OsString {
    let bytes = name.as_bytes();
    let h = &hex(hash)[..SUFFIX_HEX];
    let (stem, ext) = match bytes.iter().rposition(|&b| b == b'.') {
        Some(i) if i > 0 => (&bytes[..i], &bytes[i..]),
        _ => (bytes, &b""[..]),
    };
    let mut out = stem.to_vec();
    out.push(b'-');
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(ext);
    OsString::from_vec(out)
}

/// The links an album should have, by name: (link path, (target, hash)). `foreign` says whether a
/// path in the album folder holds a file phototag did not make.
pub fn desired(
    folder: &Path,
    matched: &[(PathBuf, Hash)],
    foreign: &dyn Fn(&Path) -> bool,
) -> Vec<(PathBuf, (PathBuf, Hash))> {
    // One target per content: its first path by bytes.
    let mut by_hash: HashMap<Hash, &PathBuf> = HashMap::new();
    for (path, hash) in matched {
        by_hash
            .entry(*hash)
            .and_modify(|p| {
                if path < *p {
                    *p = path;
                }
            })
            .or_insert(path);
    }
    // Contents by file name.
    let mut by_name: BTreeMap<OsString, Vec<(Hash, &PathBuf)>> = BTreeMap::new();
    for (hash, path) in by_hash {
        let Some(name) = path.file_name() else {
            continue;
        };
        by_name
            .entry(name.to_os_string())
            .or_default()
            .push((hash, path));
    }
    let mut out = Vec::with_capacity(matched.len());
    for (name, mut contents) in by_name {
        contents.sort();
        let collide = contents.len() > 1;
        for (hash, target) in contents {
            let plain = folder.join(&name);
            let path = if !collide && !foreign(&plain) {
                plain
            } else {
                let s = folder.join(suffixed(&name, &hash));
                if foreign(&s) {
                    tracing::warn!(path = %s.display(), "a file phototag did not make has this name; no link for {}", target.display());
                    continue;
                }
                s
            };
            out.push((path, (target.clone(), hash)));
        }
    }
    out
}

/// Compares what is wanted with the records and, with `verify`, with the album folder
/// (every recorded link looked at: one missing is made again, one replaced is forgotten).
/// Without it the records are trusted, which makes a resync of a large album cheap; a
/// link is still looked at before it is removed.
pub fn plan(
    album: &Album,
    matched: &[(PathBuf, Hash)],
    records: Vec<LinkRow>,
    verify: bool,
) -> Plan {
    let mut changes = Vec::new();
    // Records whose file is still phototag's (or missing, to be made again), by path
    // bytes (cheaper to hash than paths).
    let mut live: HashMap<Vec<u8>, (LinkRow, State)> = HashMap::with_capacity(records.len());
    for r in records {
        let state = if verify {
            links::state(&r)
        } else {
            State::Ours
        };
        match state {
            State::Foreign => changes.push(Change::Forget(r)),
            s => {
                live.insert(r.path.as_os_str().as_bytes().to_vec(), (r, s));
            }
        }
    }
    let foreign = |p: &Path| -> bool {
        !live.contains_key(p.as_os_str().as_bytes()) && std::fs::symlink_metadata(p).is_ok()
    };
    let want = desired(&album.folder, matched, &foreign);
    let mut kept = 0;
    let mut creates = Vec::new();
    for (path, (target, hash)) in want {
        let rec = live.remove(path.as_os_str().as_bytes());
        if let Some((r, State::Ours)) = &rec {
            if r.target == target && r.hash == hash {
                kept += 1;
                continue;
            }
        }
        if let Some((r, State::Ours)) = rec {
            changes.push(Change::Remove(r));
        }
        creates.push(Change::Create(LinkRow {
            path,
            album: album.name.clone(),
            target,
            hash,
            inode: None,
        }));
    }
    let mut rest: Vec<(LinkRow, State)> = live.into_values().collect();
    rest.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    for (r, s) in rest {
        changes.push(match s {
            State::Ours => Change::Remove(r),
            _ => Change::Forget(r),
        });
    }
    changes.extend(creates);
    Plan { changes, kept }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        [n; 32]
    }

    #[test]
    fn suffix_goes_before_the_extension() {
        assert_eq!(
            suffixed(OsStr::new("IMG_1.jpg"), &h(0xab)),
            "IMG_1-abababab.jpg"
        );
        assert_eq!(suffixed(OsStr::new("README"), &h(1)), "README-01010101");
        assert_eq!(suffixed(OsStr::new(".hidden"), &h(2)), ".hidden-02020202");
        assert_eq!(suffixed(OsStr::new("a.tar.gz"), &h(3)), "a.tar-03030303.gz");
    }

    #[test]
    fn names_get_a_suffix_only_when_they_collide() {
        let f = Path::new("/albums/dogs");
        let matched = vec![
            (PathBuf::from("/p/2023/IMG_1.jpg"), h(1)),
            (PathBuf::from("/p/2024/IMG_1.jpg"), h(2)),
            (PathBuf::from("/p/2024/IMG_2.jpg"), h(3)),
            // A copy of the same content: one link, to the first path.
            (PathBuf::from("/p/copy/IMG_2.jpg"), h(3)),
            (PathBuf::from("/p/a/other_name.jpg"), h(3)),
        ];
        let d = desired(f, &matched, &|_| false);
        let names: Vec<String> = d
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["IMG_1-01010101.jpg", "IMG_1-02020202.jpg", "IMG_2.jpg"]
        );
        assert_eq!(
            d[2],
            (
                f.join("IMG_2.jpg"),
                (PathBuf::from("/p/2024/IMG_2.jpg"), h(3))
            )
        );
    }

    #[test]
    fn a_foreign_file_keeps_its_name() {
        let f = Path::new("/albums/dogs");
        let matched = vec![(PathBuf::from("/p/IMG_1.jpg"), h(1))];
        let taken = f.join("IMG_1.jpg");
        let d = desired(f, &matched, &|p| p == taken);
        assert_eq!(d[0].0, f.join("IMG_1-01010101.jpg"));
        let d = desired(f, &matched, &|_| true);
        assert!(d.is_empty(), "both names taken: no link");
    }

    #[test]
    fn verify_looks_at_the_folder_incremental_trusts_the_records() {
        let d = tempfile::tempdir().unwrap();
        let folder = d.path().join("album");
        std::fs::create_dir(&folder).unwrap();
        let photo = d.path().join("p.jpg");
        std::fs::write(&photo, b"x").unwrap();
        let album = Album {
            name: "a".into(),
            query: "dog".into(),
            folder: folder.clone(),
            links: Default::default(),
            source: super::super::Source::Catalog,
        };
        let matched = vec![(photo.clone(), h(1))];
        let rec = LinkRow {
            path: folder.join("p.jpg"),
            album: "a".into(),
            target: photo.clone(),
            hash: h(1),
            inode: None,
        };
        // The link was deleted by hand: only a verifying plan makes it again.
        let p = plan(&album, &matched, vec![rec.clone()], false);
        assert_eq!((p.kept, p.changes.len()), (1, 0));
        let p = plan(&album, &matched, vec![rec.clone()], true);
        assert_eq!(p.changes, [Change::Create(rec.clone())]);
        // Replaced by someone's file: forgotten, and the link takes the suffixed name.
        std::fs::write(&rec.path, b"theirs").unwrap();
        let p = plan(&album, &matched, vec![rec.clone()], true);
        assert_eq!(p.changes.len(), 2);
        assert_eq!(p.changes[0], Change::Forget(rec.clone()));
        assert!(
            matches!(&p.changes[1], Change::Create(r) if r.path == folder.join("p-01010101.jpg"))
        );
        // No longer matched: a remove (the file is looked at again before it goes).
        let p = plan(&album, &[], vec![rec.clone()], false);
        assert_eq!(p.changes, [Change::Remove(rec)]);
    }
}
