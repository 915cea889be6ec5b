//! The bytes of one class list, little-endian, in one of two formats:
//!
//! ```text
//! format 1 (SQLite: one host per catalog)
//!   list   = 1 u8 | mark count u32 | marks | records
//!   record = probability f32 | hash [32] | tag count u16 | tag* | file count u32 | file*
//!   file   = mtime_ns i64 | path length u32 | path bytes
//! format 3 (PostgreSQL: files of many hosts)
//!   list   = 3 u8 | mark count u32 | record count u32 | marks | records | hashes
//!   record = probability f32 | tag count u8 | tag* | file count var | file*
//!   file   = mtime_ns i64 | host: name | folder: name | file name length var | its bytes
//!   name   = 0 var | length var | bytes   (first met in this list: numbered 1, 2, ...)
//!          | its number var               (met before in this list)
//!   hashes = hash [32] per record, in the records' order
//! both
//!   mark   = probability f32 | offset u64          (of every 64th record, into records)
//!   tag    = class u16 | probability f32           (all the image's tags, by rank)
//!   var    = unsigned LEB128 (`integer-encoding`)
//! ```
//!
//! Records are ordered by probability descending, then hash; an image's files by host,
//! then path. A file's folder is its path up to and including its last `/`.
//! The marks let a reader with a minimum probability read only the records that can meet
//! it: everything from the first mark below the minimum on is lower. Each record carries
//! all its image's tags, so a query is evaluated on one record, without the other lists.
//!
//! Format 3 is what a PostgreSQL server sends a search: its hashes lie apart, read only
//! when the answer shows them (`find`, not a listing of paths or a count), and hosts and
//! folders are written once per list. A record of the 1,000,000-image bench took 107
//! bytes in format 2 (format 1 with a host per file, PostgreSQL's before), 53 in
//! format 3 with its hash read, 21 fewer without. Format 2 is no longer read: such a list
//! is of another format, rebuilt.
//!
//! May not: run SQL beyond the one query that lists a class, or index a slice without a
//! bounds check (stored bytes are not trusted).

use std::collections::HashMap;

use integer_encoding::VarInt;
use rusqlite::Connection;

use crate::catalog::rows::blob;
use crate::catalog::rows::Hash;
use crate::catalog::CatalogError;
use crate::labels::IMAGENET_CLASSES;

/// The first byte of a list of format 1.
pub const LOCAL: u8 = 1;

/// The first byte of a list of format 3.
pub const SHARED: u8 = 3;

/// Bytes of format 1's head (the format and the mark count), the shortest head.
pub const HEAD: usize = 5;

/// Bytes of one mark.
pub const MARK: usize = 12;

/// Bytes of one hash.
pub const HASH: usize = 32;

/// A mark every this many records.
const MARK_EVERY: usize = 64;

/// How a list lays out its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Format 1: each record holds its hash; files have no host.
    Local,
    /// Format 3: hashes apart; files carry their host; names and counts compact.
    Shared,
}

impl Format {
    /// Bytes before the marks.
    pub fn head_len(self) -> usize {
        match self {
            Format::Local => HEAD,
            Format::Shared => HEAD + 4,
        }
    }
}

/// The list of one ImageNet class as the catalog has it now, in format 1 (its records
/// hold the images' ImageNet tags).
pub fn build(conn: &Connection, class: usize) -> Result<Vec<u8>, CatalogError> {
    // One row per (image, file, tag of the image): an image's rows are side by side, its
    // first file's rows give its tags by rank.
    let mut stmt = conn.prepare_cached(
        "SELECT t.probability, t.hash, f.path, f.mtime_ns, a.class_index, a.probability
         FROM tags t JOIN files f ON f.hash = t.hash JOIN tags a ON a.hash = t.hash
         WHERE t.class_index = ?1 AND a.class_index < ?2
         ORDER BY t.probability DESC, t.hash, f.path, a.rank",
    )?;
    let mut out = Builder::new(Format::Local);
    // Taught tags are left out: their scores change without the image's other tags
    // changing, and a list must stay true (queries naming them do not use lists).
    let mut rows = stmt.query([class as i64, IMAGENET_CLASSES as i64])?;
    while let Some(r) = rows.next()? {
        out.row(
            Row {
                probability: r.get::<_, f64>(0)? as f32,
                hash: r.get(1)?,
                host: &[],
                path: blob(r, 2)?,
                mtime_ns: r.get(3)?,
            },
            r.get(4)?,
            r.get::<_, f64>(5)? as f32,
        );
    }
    Ok(out.finish())
}

/// One row of a list's build query: an image tagged with the class, and one of its files.
pub struct Row<'a> {
    pub probability: f32,
    pub hash: Hash,
    pub host: &'a [u8],
    pub path: &'a [u8],
    pub mtime_ns: i64,
}

/// Lays out a list from the rows of its build query, one per (image, file, tag of the
/// image), in the list's order: an image's rows side by side, its first file's rows giving
/// its tags by rank.
pub struct Builder {
    out: Layout,
    rec: Option<Pending>,
}

impl Builder {
    pub fn new(format: Format) -> Self {
        Builder {
            out: Layout::new(format),
            rec: None,
        }
    }

    /// Takes in a row and one tag (class, probability) of its image.
    pub fn row(&mut self, r: Row<'_>, class: i64, probability: f32) {
        if self
            .rec
            .as_ref()
            .is_none_or(|x| x.probability.to_bits() != r.probability.to_bits() || x.hash != r.hash)
        {
            if let Some(done) = self.rec.take() {
                self.out.record(&done);
            }
            self.rec = Some(Pending {
                probability: r.probability,
                hash: r.hash,
                tags: Vec::new(),
                files: Vec::new(),
            });
        }
        let x = self.rec.as_mut().expect("set above");
        if x.files
            .last()
            .is_none_or(|(_, host, path)| host.as_slice() != r.host || path.as_slice() != r.path)
        {
            x.files.push((r.mtime_ns, r.host.to_vec(), r.path.to_vec()));
        }
        if x.files.len() == 1 {
            x.tags
                .push((u16::try_from(class).unwrap_or(u16::MAX), probability));
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        if let Some(done) = self.rec.take() {
            self.out.record(&done);
        }
        self.out.finish()
    }
}

/// An image's record before it is laid out.
struct Pending {
    probability: f32,
    hash: Hash,
    tags: Vec<(u16, f32)>,
    /// (mtime_ns, host, path); the host is left out of format 1.
    files: Vec<(i64, Vec<u8>, Vec<u8>)>,
}

/// A list being laid out: its marks, records and (format 3) hashes.
struct Layout {
    format: Format,
    marks: Vec<u8>,
    records: Vec<u8>,
    hashes: Vec<u8>,
    count: usize,
    /// Format 3: the hosts and folders written so far, by number.
    hosts: HashMap<Vec<u8>, u64>,
    folders: HashMap<Vec<u8>, u64>,
}

impl Layout {
    fn new(format: Format) -> Self {
        Layout {
            format,
            marks: Vec::new(),
            records: Vec::new(),
            hashes: Vec::new(),
            count: 0,
            hosts: HashMap::new(),
            folders: HashMap::new(),
        }
    }

    fn record(&mut self, r: &Pending) {
        let out = &mut self.records;
        if self.count.is_multiple_of(MARK_EVERY) {
            self.marks.extend_from_slice(&r.probability.to_le_bytes());
            self.marks
                .extend_from_slice(&(out.len() as u64).to_le_bytes());
        }
        self.count += 1;
        out.extend_from_slice(&r.probability.to_le_bytes());
        match self.format {
            Format::Local => {
                out.extend_from_slice(&r.hash);
                let tags = &r.tags[..r.tags.len().min(usize::from(u16::MAX))];
                out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
                put_tags(out, tags);
                out.extend_from_slice(&(r.files.len() as u32).to_le_bytes());
                for (mtime, _, path) in &r.files {
                    out.extend_from_slice(&mtime.to_le_bytes());
                    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
                    out.extend_from_slice(path);
                }
            }
            Format::Shared => {
                self.hashes.extend_from_slice(&r.hash);
                let tags = &r.tags[..r.tags.len().min(usize::from(u8::MAX))];
                out.push(tags.len() as u8);
                put_tags(out, tags);
                put_var(out, r.files.len() as u64);
                for (mtime, host, path) in &r.files {
                    out.extend_from_slice(&mtime.to_le_bytes());
                    let (folder, name) = split_path(path);
                    put_name(out, &mut self.hosts, host);
                    put_name(out, &mut self.folders, folder);
                    put_var(out, name.len() as u64);
                    out.extend_from_slice(name);
                }
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        let head = self.format.head_len();
        let mut out =
            Vec::with_capacity(head + self.marks.len() + self.records.len() + self.hashes.len());
        out.push(match self.format {
            Format::Local => LOCAL,
            Format::Shared => SHARED,
        });
        out.extend_from_slice(&((self.marks.len() / MARK) as u32).to_le_bytes());
        if self.format == Format::Shared {
            out.extend_from_slice(&(self.count as u32).to_le_bytes());
        }
        out.extend_from_slice(&self.marks);
        out.extend_from_slice(&self.records);
        out.extend_from_slice(&self.hashes);
        out
    }
}

fn put_tags(out: &mut Vec<u8>, tags: &[(u16, f32)]) {
    for &(c, p) in tags {
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&p.to_le_bytes());
    }
}

fn put_var(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 10];
    let len = n.encode_var(&mut buf);
    out.extend_from_slice(&buf[..len]);
}

/// A name by its number when `known` has it; else whole, and numbered.
fn put_name(out: &mut Vec<u8>, known: &mut HashMap<Vec<u8>, u64>, name: &[u8]) {
    if let Some(&n) = known.get(name) {
        put_var(out, n);
    } else {
        put_var(out, 0);
        put_var(out, name.len() as u64);
        out.extend_from_slice(name);
        known.insert(name.to_vec(), known.len() as u64 + 1);
    }
}

/// A path's folder (up to and including its last `/`) and file name.
fn split_path(path: &[u8]) -> (&[u8], &[u8]) {
    let at = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    path.split_at(at)
}

/// What a list's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub format: Format,
    /// Bytes of marks after the head.
    pub marks: usize,
    /// Records in the list (format 3; 0 in format 1, which does not say).
    pub records: usize,
}

impl Head {
    /// Bytes of the head itself.
    pub fn len(&self) -> usize {
        self.format.head_len()
    }
}

/// The head at the start of `bytes` (which may go on past it); `None` for an unknown
/// format, or too few bytes for its head.
pub fn head(bytes: &[u8]) -> Option<Head> {
    let mut c = Cursor(bytes);
    let format = match c.take(1)? {
        [LOCAL] => Format::Local,
        [SHARED] => Format::Shared,
        _ => return None,
    };
    let marks = (c.u32()? as usize).checked_mul(MARK)?;
    let records = match format {
        Format::Local => 0,
        Format::Shared => c.u32()? as usize,
    };
    Some(Head {
        format,
        marks,
        records,
    })
}

/// Where the records that may reach a minimum end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Bytes into the records.
    pub end: usize,
    /// How many records come before `end` when a mark cut them (a multiple of 64);
    /// `None` when every record may reach it.
    pub records: Option<usize>,
}

/// Where, after the marks, the records that may reach `min` end, in a list of
/// `records_len` bytes of records; `None` when a mark is out of bounds.
pub fn records_end(marks: &[u8], records_len: usize, min: f32) -> Option<Cut> {
    let mut c = Cursor(marks);
    let mut i = 0;
    while !c.0.is_empty() {
        let p = c.f32()?;
        let at = usize::try_from(c.u64()?).ok()?;
        if at > records_len {
            return None;
        }
        if p < min {
            return Some(Cut {
                end: at,
                records: Some(i * MARK_EVERY),
            });
        }
        i += 1;
    }
    Some(Cut {
        end: records_len,
        records: None,
    })
}

/// The records of a list that a reader takes in, and (format 3) the hashes of the first
/// of them: all, or none when the answer shows no hash.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub format: Format,
    pub records: &'a [u8],
    pub hashes: &'a [u8],
}

/// The records of a whole list that may reach `min`, with their hashes; `None` when it
/// does not parse.
pub fn records_of(list: &[u8], min: f32) -> Option<Part<'_>> {
    let h = head(list)?;
    let marks_at = h.len();
    let body = list.get(marks_at.checked_add(h.marks)?..)?;
    let hashes_len = h.records.checked_mul(HASH)?;
    let (records, hashes) = body.split_at_checked(body.len().checked_sub(hashes_len)?)?;
    let cut = records_end(&list[marks_at..marks_at + h.marks], records.len(), min)?;
    let hashes = match h.format {
        Format::Local => &[][..],
        Format::Shared => hashes.get(..cut.records.unwrap_or(h.records).checked_mul(HASH)?)?,
    };
    Some(Part {
        format: h.format,
        records: &records[..cut.end],
        hashes,
    })
}

/// One image in a list.
pub struct Record<'a> {
    pub probability: f32,
    /// `None` in format 3 when its hashes were not read.
    pub hash: Option<&'a Hash>,
    /// The image's tags' bytes (checked to hold `tags` entries).
    pub tags: u16,
    pub tag_bytes: &'a [u8],
}

/// Reads little-endian values front to back.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn f32(&mut self) -> Option<f32> {
        Some(f32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A var. (One or two bytes, nearly always, are read here: `decode_var` is not inlined
    /// across crates, and took a sixth of a listing's time.)
    #[inline]
    fn var(&mut self) -> Option<usize> {
        match *self.0 {
            [a, ref rest @ ..] if a < 0x80 => {
                self.0 = rest;
                return Some(usize::from(a));
            }
            [a, b, ref rest @ ..] if b < 0x80 => {
                self.0 = rest;
                return Some(usize::from(a & 0x7f) | usize::from(b) << 7);
            }
            _ => {}
        }
        let (n, len) = usize::decode_var(self.0)?;
        self.0 = &self.0[len..];
        Some(n)
    }

    /// A name of format 3: a new one (true) or one of `known`.
    #[inline]
    fn name(&mut self, known: &[&'a [u8]]) -> Option<(&'a [u8], bool)> {
        match self.var()? {
            0 => {
                let len = self.var()?;
                Some((self.take(len)?, true))
            }
            n => Some((known.get(n - 1)?, false)),
        }
    }
}

/// One file of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct File<'a> {
    pub mtime_ns: i64,
    /// Empty in format 1.
    pub host: &'a [u8],
    /// The path is the folder, then the name (format 1: the folder is empty).
    pub folder: &'a [u8],
    pub name: &'a [u8],
}

/// The hosts and folders of format 3 met so far in a list, by number (from 1).
#[derive(Default)]
struct Names<'a> {
    hosts: Vec<&'a [u8]>,
    folders: Vec<&'a [u8]>,
}

/// The records in some records of a list; an item is `None` where the bytes stop making
/// sense, and nothing follows it.
pub struct Records<'a> {
    c: Cursor<'a>,
    format: Format,
    hashes: &'a [u8],
    /// The next record's place in the list.
    at: usize,
    names: Names<'a>,
    /// The files of the record last read.
    files: Vec<File<'a>>,
    failed: bool,
}

/// The records of `part`.
pub fn records(part: Part<'_>) -> Records<'_> {
    Records {
        c: Cursor(part.records),
        format: part.format,
        hashes: part.hashes,
        at: 0,
        names: Names::default(),
        files: Vec::new(),
        failed: false,
    }
}

impl<'a> Records<'a> {
    fn record(&mut self) -> Option<Record<'a>> {
        let c = &mut self.c;
        let probability = c.f32()?;
        let (hash, tags, files) = match self.format {
            Format::Local => {
                let hash: &Hash = c.take(HASH)?.try_into().ok()?;
                let tags = u16::from_le_bytes(c.take(2)?.try_into().ok()?);
                let tag_bytes = c.take(usize::from(tags) * 6)?;
                (Some(hash), (tags, tag_bytes), c.u32()?)
            }
            Format::Shared => {
                let at = self.at * HASH;
                let hash = self
                    .hashes
                    .get(at..at + HASH)
                    .and_then(|h| <&Hash>::try_from(h).ok());
                let tags = c.take(1)?[0];
                let tag_bytes = c.take(usize::from(tags) * 6)?;
                (
                    hash,
                    (u16::from(tags), tag_bytes),
                    u32::try_from(c.var()?).ok()?,
                )
            }
        };
        self.at += 1;
        self.files.clear();
        for _ in 0..files {
            let (f, new_host, new_folder) = file(&mut self.c, self.format, &self.names)?;
            if new_host {
                self.names.hosts.push(f.host);
            }
            if new_folder {
                self.names.folders.push(f.folder);
            }
            self.files.push(f);
        }
        Some(Record {
            probability,
            hash,
            tags: tags.0,
            tag_bytes: tags.1,
        })
    }

    /// The files of the record last read.
    pub fn files(&self) -> &[File<'a>] {
        &self.files
    }
}

/// One file, and (format 3) whether its host and its folder are new names.
fn file<'a>(
    c: &mut Cursor<'a>,
    format: Format,
    known: &Names<'a>,
) -> Option<(File<'a>, bool, bool)> {
    let mtime_ns = i64::from_le_bytes(c.take(8)?.try_into().ok()?);
    match format {
        Format::Local => {
            let len = c.u32()? as usize;
            let name = c.take(len)?;
            Some((
                File {
                    mtime_ns,
                    host: &[],
                    folder: &[],
                    name,
                },
                false,
                false,
            ))
        }
        Format::Shared => {
            let (host, new_host) = c.name(&known.hosts)?;
            let (folder, new_folder) = c.name(&known.folders)?;
            let len = c.var()?;
            let name = c.take(len)?;
            Some((
                File {
                    mtime_ns,
                    host,
                    folder,
                    name,
                },
                new_host,
                new_folder,
            ))
        }
    }
}

/// Fills `out` with a record's tags: (class, probability), by rank.
pub fn tags_into(r: &Record<'_>, out: &mut Vec<(usize, f32)>) {
    out.clear();
    for t in r.tag_bytes.chunks_exact(6).take(usize::from(r.tags)) {
        let class = u16::from_le_bytes([t[0], t[1]]);
        let p = f32::from_le_bytes([t[2], t[3], t[4], t[5]]);
        out.push((usize::from(class), p));
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Option<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.c.0.is_empty() {
            return None;
        }
        let r = self.record();
        self.failed = r.is_none();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of `n` one-file records with probabilities n-1/n, ..., 0 (by hand, as
    /// `build` lays out format 1).
    fn list(n: usize) -> (Vec<u8>, Vec<f32>) {
        let probs: Vec<f32> = (0..n).rev().map(|i| i as f32 / n as f32).collect();
        let (mut marks, mut records) = (Vec::new(), Vec::new());
        for (i, p) in probs.iter().enumerate() {
            if i.is_multiple_of(MARK_EVERY) {
                marks.extend_from_slice(&p.to_le_bytes());
                marks.extend_from_slice(&(records.len() as u64).to_le_bytes());
            }
            records.extend_from_slice(&p.to_le_bytes());
            records.extend_from_slice(&[i as u8; 32]);
            records.extend_from_slice(&1u16.to_le_bytes());
            records.extend_from_slice(&7u16.to_le_bytes());
            records.extend_from_slice(&p.to_le_bytes());
            records.extend_from_slice(&1u32.to_le_bytes());
            records.extend_from_slice(&(i as i64).to_le_bytes());
            let path = format!("/p/{i}.jpg");
            records.extend_from_slice(&(path.len() as u32).to_le_bytes());
            records.extend_from_slice(path.as_bytes());
        }
        let mut out = vec![LOCAL];
        out.extend_from_slice(&((marks.len() / MARK) as u32).to_le_bytes());
        out.extend(marks);
        out.extend(records);
        (out, probs)
    }

    /// The records of `part`, each with its files, all parsed.
    fn read(part: Part<'_>) -> Vec<(Record<'_>, Vec<File<'_>>)> {
        let mut recs = records(part);
        let mut out = Vec::new();
        while let Some(r) = recs.next() {
            let r = r.expect("parses");
            let files: Vec<File<'_>> = recs.files().to_vec();
            out.push((r, files));
        }
        out
    }

    #[test]
    fn marks_cut_the_records_that_cannot_reach_the_minimum() {
        let (l, probs) = list(1000);
        for min in [0.0, 0.001, 0.25, 0.5, 0.937, 0.999, 1.0, 2.0] {
            let part = records_of(&l, min).unwrap();
            assert_eq!((part.format, part.hashes), (Format::Local, &[][..]));
            let recs: Vec<f32> = records(part).map(|r| r.unwrap().probability).collect();
            let reaching = probs.iter().filter(|&&p| p >= min).count();
            assert!(recs.len() >= reaching, "min {min}");
            assert!(
                recs.len() < reaching + MARK_EVERY,
                "min {min}: {}",
                recs.len()
            );
            assert_eq!(recs[..], probs[..recs.len()]);
        }
        let all = read(records_of(&l, 0.0).unwrap());
        let (r, files) = &all[7];
        assert_eq!(r.hash, Some(&[7; 32]));
        assert_eq!(
            files[..],
            [File {
                mtime_ns: 7,
                host: b"",
                folder: b"",
                name: b"/p/7.jpg"
            }]
        );
        let mut tags = Vec::new();
        tags_into(r, &mut tags);
        assert_eq!(tags, [(7, probs[7])]);
    }

    #[test]
    fn damaged_bytes_are_refused_not_trusted() {
        let (l, _) = list(200);
        assert!(records_of(&l[..3], 0.0).is_none(), "short head");
        for other in [0, 2, 4] {
            let mut l = l.clone();
            l[0] = other;
            assert!(records_of(&l, 0.0).is_none(), "format {other}");
        }
        let mut marks = l.clone();
        marks[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(records_of(&marks, 0.0).is_none(), "more marks than bytes");
        let mut far = l.clone();
        far[HEAD + 4..HEAD + 12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(records_of(&far, 0.0).is_none(), "a mark past the end");
        // Records cut anywhere: the iterator stops with a `None`, never panics.
        let whole = records_of(&l, 0.0).unwrap();
        fn cut_at<'a>(whole: Part<'a>, bytes: &'a [u8]) -> Part<'a> {
            Part {
                records: bytes,
                ..whole
            }
        }
        for cut in [1, 4, 36, 37, 39, 43, 47, 50, whole.records.len() - 1] {
            let items: Vec<bool> = records(cut_at(whole, &whole.records[..cut]))
                .map(|r| r.is_some())
                .collect();
            assert_eq!(items.last(), Some(&false), "cut {cut}");
            assert!(items[..items.len() - 1].iter().all(|&ok| ok));
        }
        for (at, width) in [(36, 2), (44, 4)] {
            let mut huge = whole.records.to_vec();
            huge[at..at + width].fill(0xff);
            assert_eq!(
                records(cut_at(whole, &huge)).next().map(|r| r.is_some()),
                Some(false),
                "a count of {width} bytes at {at}"
            );
        }
    }

    /// 100 images, 2 files each (in the order of the build query: by host, then path): one
    /// in a folder shared by all on "desk", one in a folder of its own on "nas".
    fn shared_list() -> Vec<u8> {
        let mut out = Builder::new(Format::Shared);
        for i in 0..100u8 {
            let files = [
                (&b"desk"[..], "/b/y.jpg".to_string()),
                (&b"nas"[..], format!("/a/{i}/x.jpg")),
            ];
            for (host, path) in &files {
                for (class, p) in [(i64::from(i), 0.5), (999, 0.25)] {
                    out.row(
                        Row {
                            probability: 1.0 - f32::from(i) / 100.0,
                            hash: [i; 32],
                            host,
                            path: path.as_bytes(),
                            mtime_ns: i64::from(i) - 1,
                        },
                        class,
                        p,
                    );
                }
            }
        }
        out.finish()
    }

    /// Format 3 reads back as it was laid out: each host and folder written once, hashes
    /// apart, as many as the records the marks let through.
    #[test]
    fn shared_lists_read_back() {
        let list = shared_list();
        let h = head(&list).unwrap();
        assert_eq!((h.format, h.records, h.len()), (Format::Shared, 100, 9));
        assert_eq!(list[0], SHARED);
        // Names once: "nas" and "desk", 100 folders "/a/i/" and one "/b/".
        let count = |needle: &[u8]| list.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!((count(b"nas"), count(b"desk"), count(b"/b/")), (1, 1, 1));
        assert_eq!(count(b"y.jpg"), 100);

        let part = records_of(&list, 0.5).unwrap();
        let all = read(part);
        assert!(all.len() >= 51 && all.len() < 51 + MARK_EVERY);
        assert_eq!(
            part.hashes.len(),
            all.len() * HASH,
            "hashes of what was read"
        );
        let (r, files) = &all[42];
        assert_eq!((r.probability, r.hash), (1.0 - 0.42, Some(&[42; 32])));
        let mut tags = Vec::new();
        tags_into(r, &mut tags);
        assert_eq!(tags, [(42, 0.5), (999, 0.25)]);
        assert_eq!(
            files[..],
            [
                File {
                    mtime_ns: 41,
                    host: b"desk",
                    folder: b"/b/",
                    name: b"y.jpg"
                },
                File {
                    mtime_ns: 41,
                    host: b"nas",
                    folder: b"/a/42/",
                    name: b"x.jpg"
                },
            ]
        );
        // Read without its hashes (an answer that shows none), a record has none.
        let bare = read(Part {
            hashes: &[],
            ..part
        });
        assert!(bare.iter().all(|(r, _)| r.hash.is_none()));
        assert_eq!(bare[42].1, all[42].1);

        // Past 127 names, their numbers take two bytes: 300 folders, each met twice.
        let paths: Vec<String> = (0..600)
            .map(|i| format!("/f{}/p{i}.jpg", i % 300))
            .collect();
        let mut out = Builder::new(Format::Shared);
        for (i, path) in paths.iter().enumerate() {
            let row = Row {
                probability: 1.0,
                hash: [(i % 256) as u8; 32],
                host: b"nas",
                path: path.as_bytes(),
                mtime_ns: i as i64,
            };
            out.row(row, 1, 1.0);
        }
        let list = out.finish();
        let read_back: Vec<String> = read(records_of(&list, 0.0).unwrap())
            .iter()
            .map(|(_, f)| String::from_utf8([f[0].folder, f[0].name].concat()).unwrap())
            .collect();
        assert_eq!(read_back, paths);
    }

    /// Vars of every width read back (one and two bytes are read by hand); one cut short
    /// does not.
    #[test]
    fn vars_read_back() {
        let values = [0, 1, 127, 128, 300, 16_383, 16_384, 2_097_151, 1 << 40];
        let mut bytes = Vec::new();
        for &v in &values {
            put_var(&mut bytes, v);
        }
        let mut c = Cursor(&bytes);
        let read: Vec<u64> = values.iter().map(|_| c.var().unwrap() as u64).collect();
        assert_eq!(read, values);
        assert!(c.0.is_empty());
        for v in [128u64, 16_384, 1 << 40] {
            let mut one = Vec::new();
            put_var(&mut one, v);
            assert_eq!(Cursor(&one[..one.len() - 1]).var(), None, "{v} cut short");
        }
    }

    /// Damaged format 3 is refused as format 1 is: never a panic, never a wrong name.
    #[test]
    fn damaged_shared_lists_are_refused() {
        let list = shared_list();
        let h = head(&list).unwrap();
        // Short of a head, or of the hashes it announces.
        for cut in [4, 8, h.len() + h.marks + 100 * HASH - 1] {
            assert!(records_of(&list[..cut], 0.0).is_none(), "cut {cut}");
        }
        let mut count = list.clone();
        count[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(records_of(&count, 0.0).is_none(), "more hashes than bytes");
        let whole = records_of(&list, 0.0).unwrap();
        for cut in [1, 4, 5, 23, 24, 33, 34, 40, whole.records.len() - 1] {
            let items: Vec<bool> = records(Part {
                records: &whole.records[..cut],
                ..whole
            })
            .map(|r| r.is_some())
            .collect();
            assert_eq!(items.last(), Some(&false), "cut {cut}");
        }
        // A number no name has: the record does not parse. (The first record's first
        // file's host is at 4 + 1 + 12 + 1 + 8, a new name: 0.)
        let mut unknown = whole.records.to_vec();
        assert_eq!(unknown[26], 0);
        unknown[26] = 9;
        assert_eq!(
            records(Part {
                records: &unknown,
                ..whole
            })
            .next()
            .map(|r| r.is_some()),
            Some(false)
        );
        // As format 1, the same bytes do not parse.
        assert!(records(Part {
            format: Format::Local,
            ..whole
        })
        .any(|r| r.is_none()));
    }
}
