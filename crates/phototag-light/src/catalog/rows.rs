//! The values the catalog takes and gives back, and how paths and hashes are stored:
//! paths as the raw bytes of the `OsStr` (so non-UTF-8 names survive), hashes as
//! 32-byte BLOBs, shown as lowercase hex.
//!
//! May not: run SQL.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::Serializer;

use crate::search::Request;
use crate::vectors::Embedding;

/// BLAKE3 of a file's bytes: the key of an image.
pub type Hash = [u8; 32];

/// Lowercase hex of a hash (64 characters), as JSON and people see it.
pub fn hex(h: &Hash) -> String {
    use std::fmt::Write;
    h.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A hash written as 64 hex digits (either case); anything else is `None` (so a request
/// or an argument can never be a path in disguise).
pub fn parse_hash(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut h = [0u8; 32];
    for (i, byte) in h.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(h)
}

/// The hash of some bytes, as the indexer computes it.
pub fn hash_bytes(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

/// A stored file: where content was seen, and the stat that lets a rescan skip it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileRow {
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    pub root_id: i64,
    #[serde(serialize_with = "ser_hash")]
    pub hash: Hash,
    pub size: u64,
    pub mtime_ns: i64,
    /// When a scan last saw it (Unix seconds).
    pub last_seen: i64,
}

/// A file that could not be tagged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailureRow {
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub error: String,
    pub attempts: u32,
    pub last_attempt: i64,
}

/// A distinct content and the model that tagged it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageRow {
    #[serde(serialize_with = "ser_hash")]
    pub hash: Hash,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub model_id: i64,
    pub model_name: String,
    pub classified_at: i64,
}

/// One of an image's top-k classes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TagRow {
    /// 1 for the most likely class.
    pub rank: u32,
    /// Model output index (0..1000 for ImageNet).
    pub class_index: usize,
    pub label: String,
    /// Softmax probability in [0, 1].
    pub probability: f32,
}

/// What [`super::Writer::put_image`] stores for a newly classified content.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImage {
    pub hash: Hash,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub model_id: i64,
    pub classified_at: i64,
    /// Any number (top 3 by default); ranks must be distinct and start at 1.
    pub tags: Vec<NewTag>,
    /// What the model saw, when it gives embeddings: stored with the image, by its model.
    pub embedding: Option<Embedding>,
}

/// A tag of a [`NewImage`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewTag {
    pub rank: u32,
    pub class_index: usize,
    pub label: String,
    pub probability: f32,
}

/// What [`super::Writer::put_file`] stores for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub path: PathBuf,
    pub root_id: i64,
    pub hash: Hash,
    pub size: u64,
    pub mtime_ns: i64,
    pub seen: i64,
}

/// Counts for `phototag stats`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub files: u64,
    /// Distinct contents (several files may share one).
    pub images: u64,
    /// Of the images, those recorded but waiting to be classified (schedule, load).
    pub queued: u64,
    pub failures: u64,
    pub models: Vec<ModelStats>,
    /// The most frequent first-ranked labels, most frequent first.
    pub top_labels: Vec<LabelCount>,
    pub roots: Vec<RootRow>,
}

impl std::fmt::Display for Stats {
    /// The text form of `phototag stats`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "files     {}", self.files)?;
        writeln!(f, "images    {} (distinct contents)", self.images)?;
        if self.queued > 0 {
            writeln!(
                f,
                "queued    {} (recorded, waiting to be classified)",
                self.queued
            )?;
        }
        write!(f, "failures  {}", self.failures)?;
        if !self.roots.is_empty() {
            write!(f, "\nroots")?;
            for r in &self.roots {
                write!(f, "\n  {:<8} {}", r.state, r.path.display())?;
            }
        }
        if !self.models.is_empty() {
            write!(f, "\nmodels")?;
            for m in &self.models {
                write!(
                    f,
                    "\n  {} ({}, sha256 {}): {} images",
                    m.name, m.architecture, m.sha256_prefix, m.images
                )?;
            }
        }
        if !self.top_labels.is_empty() {
            write!(f, "\ntop labels (images where it ranks first)")?;
            for l in &self.top_labels {
                write!(f, "\n  {:>8}  {}", l.images, l.label)?;
            }
        }
        Ok(())
    }
}

/// A registered model and how many images its tags are on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelStats {
    pub id: i64,
    pub name: String,
    pub architecture: String,
    /// The first 12 hex digits of the TorchScript file's SHA-256.
    pub sha256_prefix: String,
    pub images: u64,
}

/// How many images have `label` as their rank-1 tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LabelCount {
    pub class_index: usize,
    pub label: String,
    pub images: u64,
}

/// An indexed folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootRow {
    pub id: i64,
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    /// `online`, `offline`, ...
    pub state: String,
    /// When a scan last recorded the state (Unix seconds); none before the first.
    pub last_scan: Option<i64>,
}

/// The stored form of a path: its raw bytes.
pub(crate) fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// A path back from its stored bytes.
pub(crate) fn path_from(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes))
}

/// The byte range `[lo, hi)` of every path strictly under `root`: `root/` up to `root0`
/// ('0' follows '/'), so `/a/b` covers `/a/b/x` but neither `/a/bc` nor `/a/b` itself.
pub(crate) fn under_range(root: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut lo = path_bytes(root).to_vec();
    while lo.len() > 1 && lo.ends_with(b"/") {
        lo.pop();
    }
    if !lo.ends_with(b"/") {
        lo.push(b'/');
    }
    let mut hi = lo.clone();
    *hi.last_mut().expect("not empty") = b'/' + 1;
    (lo, hi)
}

/// Column `idx` as an unsigned integer (rusqlite reads only signed ones by default).
pub(crate) fn get_u64(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

/// Column `idx` as a `usize` (class indexes, counts).
pub(crate) fn get_usize(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<usize> {
    let v: i64 = row.get(idx)?;
    usize::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

/// Sizes are stored as SQLite integers (i64); no file is 8 EiB.
pub(crate) fn size_to_sql(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// JSON form of a path: the string, with invalid UTF-8 replaced (U+FFFD). Scripts that
/// need exact bytes use `-0` output, not JSON.
pub(crate) fn ser_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

pub(crate) fn ser_hash<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(h))
}

/// One matching file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    #[serde(serialize_with = "ser_hash")]
    pub hash: Hash,
    /// The probability of what matched (see `search::matching`); 0 when only a `NOT` did.
    pub score: f32,
    /// The ranks of the image's tags that matched a term (not a negated one), best first;
    /// empty unless [`Request::with_tags`].
    pub matched: Vec<u32>,
    /// All the image's tags, rank 1 first; empty unless [`Request::with_tags`].
    pub tags: Vec<TagRow>,
}

/// Whether a file row passes the path and date filters.
pub(super) fn in_scope(
    q: &Request,
    ranges: &[(Vec<u8>, Vec<u8>)],
    path: &[u8],
    mtime: Option<i64>,
) -> bool {
    (ranges.is_empty()
        || ranges
            .iter()
            .any(|(lo, hi)| path >= lo.as_slice() && path < hi.as_slice()))
        && match (&q.mtime_ns, mtime) {
            (Some(r), Some(t)) => r.contains(&t),
            _ => true,
        }
}

/// Column `i` as a borrowed BLOB (no copy).
pub(super) fn blob<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r [u8]> {
    r.get_ref(i)?.as_blob().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
    })
}

pub(super) fn hit(path: Vec<u8>, hash: Hash, score: f32) -> Hit {
    Hit {
        path: path_from(path),
        hash,
        score,
        matched: Vec::new(),
        tags: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn hex_is_lowercase_64() {
        let mut h = [0u8; 32];
        h[0] = 0xab;
        h[31] = 0x01;
        let s = hex(&h);
        assert_eq!(s.len(), 64);
        assert!(s.starts_with("ab00"));
        assert!(s.ends_with("0001"));
        assert_eq!(hex(&hash_bytes(b"")), blake3::hash(b"").to_hex().as_str());
    }

    #[test]
    fn only_64_hex_digits_are_a_hash() {
        let hex = "00ff".repeat(16);
        let h = parse_hash(&hex).unwrap();
        assert_eq!((h[0], h[1], h[31]), (0x00, 0xff, 0xff));
        assert_eq!(parse_hash(&hex.to_uppercase()), Some(h));
        for bad in [
            "",
            "../../etc/passwd",
            &hex[..63],
            &format!("{hex}0"),
            &format!("{}/..", &hex[..61]),
            &format!("{}g", &hex[..63]),
            &format!("{}é", &hex[..62]),
        ] {
            assert_eq!(parse_hash(bad), None, "{bad}");
        }
    }

    #[test]
    fn under_range_excludes_siblings() {
        let (lo, hi) = under_range(Path::new("/a/b"));
        assert_eq!(
            (lo.as_slice(), hi.as_slice()),
            (&b"/a/b/"[..], &b"/a/b0"[..])
        );
        let inside = |p: &[u8]| p >= lo.as_slice() && p < hi.as_slice();
        assert!(inside(b"/a/b/x.jpg"));
        assert!(inside(b"/a/b/c/d/\xff.jpg"));
        assert!(!inside(b"/a/bc/x.jpg"));
        assert!(!inside(b"/a/b.jpg"));
        assert!(!inside(b"/a/b"));
        assert_eq!(under_range(Path::new("/a/b/")).0, b"/a/b/");
        assert_eq!(under_range(Path::new("/")), (b"/".to_vec(), b"0".to_vec()));
    }

    #[test]
    fn non_utf8_path_round_trips_and_serialises_lossily() {
        let p = Path::new(OsStr::from_bytes(b"/p/caf\xe9.jpg"));
        assert_eq!(path_from(path_bytes(p).to_vec()), p);
        let row = FailureRow {
            path: p.to_path_buf(),
            size: 1,
            mtime_ns: 2,
            error: "bad".into(),
            attempts: 1,
            last_attempt: 3,
        };
        let json = serde_json::to_string(&row).unwrap();
        assert!(json.contains("\"/p/caf\u{fffd}.jpg\""), "{json}");
    }
}
