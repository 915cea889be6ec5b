//! [`Listing`]: matching files best first, in the compact form a long result needs (one
//! buffer of paths, one entry per content), where a `Vec<Hit>` costs an allocation per
//! file.
//!
//! May not: run SQL.

use super::rows::{hit, path_bytes, Hash, Hit};
use super::CatalogError;

/// Matching files, best first then by path.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Every path, one after the other (in any order).
    paths: Vec<u8>,
    /// The files, in any order, and the listing's order of them.
    files: Vec<Entry>,
    order: Vec<u32>,
    /// The files' contents; empty when the listing was read without them (a listing of
    /// paths or a count has no use for them).
    hashes: Vec<Hash>,
}

/// A file of a listing: its score and where its path and hash are.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub score: f32,
    pub start: usize,
    pub len: u32,
    /// Index into the hashes (`u32::MAX`: read without).
    pub image: u32,
}

/// Two listings are equal when they list the same files with the same scores in the same
/// order, however their bytes are laid out and whether or not they were read with hashes.
impl PartialEq for Listing {
    fn eq(&self, other: &Listing) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| (a.path, a.score) == (b.path, b.score))
    }
}

/// One file of a [`Listing`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Listed<'a> {
    pub path: &'a [u8],
    /// `None` when the listing was read without hashes.
    pub hash: Option<&'a Hash>,
    /// As [`Hit::score`].
    pub score: f32,
}

impl Listing {
    /// A listing of `files` in the order `order` gives (indexes into `files`), their
    /// paths in `paths` and hashes in `hashes`.
    pub(super) fn from_parts(
        paths: Vec<u8>,
        files: Vec<Entry>,
        order: Vec<u32>,
        hashes: Vec<Hash>,
    ) -> Listing {
        Listing {
            paths,
            files,
            order,
            hashes,
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// File `i`.
    pub fn get(&self, i: usize) -> Option<Listed<'_>> {
        let e = self.files.get(*self.order.get(i)? as usize)?;
        Some(Listed {
            path: self.paths.get(e.start..e.start + e.len as usize)?,
            hash: self.hashes.get(e.image as usize),
            score: e.score,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = Listed<'_>> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The same files as hits (without tags); an error when the listing was read without
    /// hashes (a caller that makes hits asks for them).
    pub fn to_hits(&self) -> Result<Vec<Hit>, CatalogError> {
        self.iter()
            .map(|f| {
                let hash = f.hash.ok_or_else(|| {
                    CatalogError::Corrupt("a search listing was read without its hashes".into())
                })?;
                Ok(hit(f.path.to_vec(), *hash, f.score))
            })
            .collect()
    }

    /// Hits, in their order, as a listing.
    pub fn from_hits(hits: &[Hit]) -> Listing {
        let mut l = Listing::default();
        for h in hits {
            let path = path_bytes(&h.path);
            if l.hashes.last() != Some(&h.hash) {
                l.hashes.push(h.hash);
            }
            l.order.push(l.files.len() as u32);
            l.files.push(Entry {
                score: h.score,
                start: l.paths.len(),
                len: path.len() as u32,
                image: l.hashes.len() as u32 - 1,
            });
            l.paths.extend_from_slice(path);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn files_keep_their_order_path_hash_and_score() {
        let hits = vec![
            hit(b"/a/1.jpg".to_vec(), [1; 32], 0.9),
            hit(b"/a/2.jpg".to_vec(), [1; 32], 0.9),
            hit(b"/b/\xff.jpg".to_vec(), [2; 32], 0.5),
            hit(b"/c.jpg".to_vec(), [1; 32], 0.1),
        ];
        let l = Listing::from_hits(&hits);
        assert_eq!(l.len(), 4);
        assert_eq!(l.hashes.len(), 3, "neighbours of one content share a hash");
        assert_eq!(l.to_hits().unwrap(), hits);
        let f = l.get(2).unwrap();
        assert_eq!(
            (f.path, f.hash, f.score),
            (&b"/b/\xff.jpg"[..], Some(&[2; 32]), 0.5)
        );
        // Read without hashes: the same files, and no hits to make of them.
        let mut bare = l.clone();
        bare.hashes.clear();
        assert_eq!(bare, l);
        assert_eq!(bare.get(2).unwrap().hash, None);
        assert!(bare.to_hits().is_err());
        assert!(l.get(4).is_none());
        assert!(Listing::default().is_empty());
        assert_eq!(
            l.iter().map(|f| f.path.len()).sum::<usize>(),
            hits.iter()
                .map(|h| h.path.as_os_str().as_bytes().len())
                .sum::<usize>()
        );
    }
}
