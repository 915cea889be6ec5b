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

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// The links an album should have: link path → (target, hash). `foreign` says whether a
/// path in the album folder holds a file phototag did not make.
pub fn desired(
    folder: &Path,
    matched: &[(PathBuf, Hash)],
    foreign: &dyn Fn(&Path) -> bool,
) -> BTreeMap<PathBuf, (PathBuf, Hash)> {
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
    let mut out = BTreeMap::new();
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
            out.insert(path, (target.clone(), hash));
        }
    }
    out
}

/// Compares what is wanted with the records and the album folder.
pub fn plan(album: &Album, matched: &[(PathBuf, Hash)], records: Vec<LinkRow>) -> Plan {
    let mut changes = Vec::new();
    // Records whose file is still phototag's (or missing, to be made again).
    let mut live: HashMap<PathBuf, (LinkRow, State)> = HashMap::new();
    for r in records {
        match links::state(&r) {
            State::Foreign => changes.push(Change::Forget(r)),
            s => {
                live.insert(r.path.clone(), (r, s));
            }
        }
    }
    let foreign =
        |p: &Path| -> bool { !live.contains_key(p) && std::fs::symlink_metadata(p).is_ok() };
    let want = desired(&album.folder, matched, &foreign);
    let mut kept = 0;
    let mut creates = Vec::new();
    let mut handled: HashSet<PathBuf> = HashSet::new();
    for (path, (target, hash)) in &want {
        let new = LinkRow {
            path: path.clone(),
            album: album.name.clone(),
            target: target.clone(),
            hash: *hash,
            inode: None,
        };
        match live.get(path) {
            Some((r, State::Ours)) if r.target == *target && r.hash == *hash => {
                kept += 1;
            }
            Some((r, State::Ours)) => {
                changes.push(Change::Remove(r.clone()));
                creates.push(Change::Create(new));
            }
            Some((_, _missing)) => creates.push(Change::Create(new)),
            None => creates.push(Change::Create(new)),
        }
        handled.insert(path.clone());
    }
    let mut rest: Vec<(LinkRow, State)> = live
        .into_iter()
        .filter(|(p, _)| !handled.contains(p))
        .map(|(_, v)| v)
        .collect();
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
            .keys()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["IMG_1-01010101.jpg", "IMG_1-02020202.jpg", "IMG_2.jpg"]
        );
        assert_eq!(
            d[&f.join("IMG_2.jpg")].0,
            PathBuf::from("/p/2024/IMG_2.jpg")
        );
    }

    #[test]
    fn a_foreign_file_keeps_its_name() {
        let f = Path::new("/albums/dogs");
        let matched = vec![(PathBuf::from("/p/IMG_1.jpg"), h(1))];
        let taken = f.join("IMG_1.jpg");
        let d = desired(f, &matched, &|p| p == taken);
        assert_eq!(d.keys().next().unwrap(), &f.join("IMG_1-01010101.jpg"));
        let d = desired(f, &matched, &|_| true);
        assert!(d.is_empty(), "both names taken: no link");
    }
}
