//! The bytes of one class list, little-endian:
//!
//! ```text
//! format u8 (1 or 2) | mark count u32 | marks | records
//! mark   = probability f32 | offset u64        (of every 64th record, into records)
//! record = probability f32 | hash [32] | tag count u16 | tag* | file count u32 | file*
//! tag    = class u16 | probability f32          (all the image's tags, by rank)
//! file   = mtime_ns i64 | path length u32 | path bytes                     (format 1)
//! file   = mtime_ns i64 | host length u16 | host bytes | path length u32 | path bytes
//!                                                          (format 2, PostgreSQL's lists)
//! ```
//!
//! Records are ordered by probability descending, then hash; an image's files by host,
//! then path.
//! The marks let a reader with a minimum probability read only the records that can meet
//! it: everything from the first mark below the minimum on is lower. Each record carries
//! all its image's tags, so a query is evaluated on one record, without the other lists.
//!
//! May not: run SQL beyond the one query that lists a class, or index a slice without a
//! bounds check (stored bytes are not trusted).

use rusqlite::Connection;

use crate::catalog::rows::blob;
use crate::catalog::rows::Hash;
use crate::catalog::CatalogError;
use crate::labels::IMAGENET_CLASSES;

/// The first byte of a list whose files have no host (SQLite: one host per catalog).
pub const FORMAT: u8 = 1;

/// The first byte of a list whose files carry their host (PostgreSQL: many hosts).
pub const FORMAT_HOSTS: u8 = 2;

/// Bytes before the marks: the format and the mark count.
pub const HEAD: usize = 5;

/// Bytes of one mark.
pub const MARK: usize = 12;

/// A mark every this many records.
const MARK_EVERY: usize = 64;

/// The list of one ImageNet class as the catalog has it now (its records hold the
/// images' ImageNet tags).
pub fn build(conn: &Connection, class: usize) -> Result<Vec<u8>, CatalogError> {
    // One row per (image, file, tag of the image): an image's rows are side by side, its
    // first file's rows give its tags by rank.
    let mut stmt = conn.prepare_cached(
        "SELECT t.probability, t.hash, f.path, f.mtime_ns, a.class_index, a.probability
         FROM tags t JOIN files f ON f.hash = t.hash JOIN tags a ON a.hash = t.hash
         WHERE t.class_index = ?1 AND a.class_index < ?2
         ORDER BY t.probability DESC, t.hash, f.path, a.rank",
    )?;
    let mut out = Builder::new(false);
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
    /// A list of format [`FORMAT_HOSTS`] when `hosts`, else [`FORMAT`].
    pub fn new(hosts: bool) -> Self {
        Builder {
            out: Layout::new(hosts),
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
    /// (mtime_ns, host, path); the host is left out of a list without hosts.
    files: Vec<(i64, Vec<u8>, Vec<u8>)>,
}

/// A list being laid out: its marks and records.
struct Layout {
    hosts: bool,
    marks: Vec<u8>,
    records: Vec<u8>,
    count: usize,
}

impl Layout {
    fn new(hosts: bool) -> Self {
        Layout {
            hosts,
            marks: Vec::new(),
            records: Vec::new(),
            count: 0,
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
        out.extend_from_slice(&r.hash);
        let tags = &r.tags[..r.tags.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
        for &(c, p) in tags {
            out.extend_from_slice(&c.to_le_bytes());
            out.extend_from_slice(&p.to_le_bytes());
        }
        out.extend_from_slice(&(r.files.len() as u32).to_le_bytes());
        for (mtime, host, path) in &r.files {
            out.extend_from_slice(&mtime.to_le_bytes());
            if self.hosts {
                let host = &host[..host.len().min(usize::from(u16::MAX))];
                out.extend_from_slice(&(host.len() as u16).to_le_bytes());
                out.extend_from_slice(host);
            }
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path);
        }
    }

    fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + self.marks.len() + self.records.len());
        out.push(if self.hosts { FORMAT_HOSTS } else { FORMAT });
        out.extend_from_slice(&((self.marks.len() / MARK) as u32).to_le_bytes());
        out.extend_from_slice(&self.marks);
        out.extend_from_slice(&self.records);
        out
    }
}

/// How many bytes of marks follow a list's first [`HEAD`] bytes, and whether its files
/// carry their host; `None` for an unknown format.
pub fn marks_len(head: &[u8]) -> Option<(usize, bool)> {
    let mut c = Cursor(head);
    let hosts = match c.take(1)? {
        [FORMAT] => false,
        [FORMAT_HOSTS] => true,
        _ => return None,
    };
    Some(((c.u32()? as usize).checked_mul(MARK)?, hosts))
}

/// Where, after the marks, the records that may reach `min` end, in a list of
/// `records_len` bytes of records; `None` when a mark is out of bounds.
pub fn records_end(marks: &[u8], records_len: usize, min: f32) -> Option<usize> {
    let mut c = Cursor(marks);
    while !c.0.is_empty() {
        let p = c.f32()?;
        let at = usize::try_from(c.u64()?).ok()?;
        if at > records_len {
            return None;
        }
        if p < min {
            return Some(at);
        }
    }
    Some(records_len)
}

/// The records of a whole list that may reach `min`, and whether its files carry their
/// host; `None` when it does not parse.
pub fn records_of(list: &[u8], min: f32) -> Option<(&[u8], bool)> {
    let (marks, hosts) = marks_len(list.get(..HEAD)?)?;
    let records = list.get(HEAD.checked_add(marks)?..)?;
    let end = records_end(&list[HEAD..HEAD + marks], records.len(), min)?;
    Some((records.get(..end)?, hosts))
}

/// One image in a list.
pub struct Record<'a> {
    pub probability: f32,
    pub hash: &'a Hash,
    /// The image's tags' bytes (checked to hold `tags` entries).
    pub tags: u16,
    pub tag_bytes: &'a [u8],
    pub files: u32,
    /// The files' bytes (checked to hold `files` entries).
    pub file_bytes: &'a [u8],
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

    /// One file: its mtime, host (empty in a list without hosts) and path.
    pub fn file(&mut self, hosts: bool) -> Option<File<'a>> {
        let mtime_ns = i64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let host = if hosts {
            let len = u16::from_le_bytes(self.take(2)?.try_into().ok()?);
            self.take(usize::from(len))?
        } else {
            &[]
        };
        let len = self.u32()? as usize;
        Some(File {
            mtime_ns,
            host,
            path: self.take(len)?,
        })
    }
}

/// One file of a record.
#[derive(Debug, PartialEq, Eq)]
pub struct File<'a> {
    pub mtime_ns: i64,
    pub host: &'a [u8],
    pub path: &'a [u8],
}

/// The records in some bytes of records; an item is `None` where the bytes stop making
/// sense, and nothing follows it.
pub struct Records<'a> {
    c: Cursor<'a>,
    hosts: bool,
    failed: bool,
}

/// The records of a list whose files carry their host when `hosts`.
pub fn records(bytes: &[u8], hosts: bool) -> Records<'_> {
    Records {
        c: Cursor(bytes),
        hosts,
        failed: false,
    }
}

impl<'a> Records<'a> {
    fn record(&mut self) -> Option<Record<'a>> {
        let c = &mut self.c;
        let probability = c.f32()?;
        let hash: &Hash = c.take(32)?.try_into().ok()?;
        let tags = u16::from_le_bytes(c.take(2)?.try_into().ok()?);
        let tag_bytes = c.take(usize::from(tags) * 6)?;
        let files = c.u32()?;
        let start = c.0;
        for _ in 0..files {
            c.file(self.hosts)?;
        }
        Some(Record {
            probability,
            hash,
            tags,
            tag_bytes,
            files,
            file_bytes: &start[..start.len() - c.0.len()],
        })
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

/// Fills `out` with a record's tags: (class, probability), by rank.
pub fn tags_into(r: &Record<'_>, out: &mut Vec<(usize, f32)>) {
    out.clear();
    for t in r.tag_bytes.chunks_exact(6).take(usize::from(r.tags)) {
        let class = u16::from_le_bytes([t[0], t[1]]);
        let p = f32::from_le_bytes([t[2], t[3], t[4], t[5]]);
        out.push((usize::from(class), p));
    }
}

/// The files in the bytes of a record's files.
pub fn files(bytes: &[u8], count: u32, hosts: bool) -> impl Iterator<Item = File<'_>> {
    let mut c = Cursor(bytes);
    (0..count).map_while(move |_| c.file(hosts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of `n` one-file records with probabilities n-1/n, ..., 0 (by hand, as
    /// `build` lays it out).
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
        let mut out = vec![FORMAT];
        out.extend_from_slice(&((marks.len() / MARK) as u32).to_le_bytes());
        out.extend(marks);
        out.extend(records);
        (out, probs)
    }

    #[test]
    fn marks_cut_the_records_that_cannot_reach_the_minimum() {
        let (l, probs) = list(1000);
        for min in [0.0, 0.001, 0.25, 0.5, 0.937, 0.999, 1.0, 2.0] {
            let (bytes, hosts) = records_of(&l, min).unwrap();
            assert!(!hosts);
            let recs: Vec<f32> = records(bytes, hosts)
                .map(|r| r.unwrap().probability)
                .collect();
            let reaching = probs.iter().filter(|&&p| p >= min).count();
            assert!(recs.len() >= reaching, "min {min}");
            assert!(
                recs.len() < reaching + MARK_EVERY,
                "min {min}: {}",
                recs.len()
            );
            assert_eq!(recs[..], probs[..recs.len()]);
        }
        let r = records(records_of(&l, 0.0).unwrap().0, false)
            .nth(7)
            .unwrap()
            .unwrap();
        let files: Vec<File<'_>> = files(r.file_bytes, r.files, false).collect();
        assert_eq!(
            files,
            [File {
                mtime_ns: 7,
                host: b"",
                path: b"/p/7.jpg"
            }]
        );
        let mut tags = Vec::new();
        tags_into(&r, &mut tags);
        assert_eq!(tags, [(7, probs[7])]);
    }

    #[test]
    fn damaged_bytes_are_refused_not_trusted() {
        let (l, _) = list(200);
        assert!(records_of(&l[..3], 0.0).is_none(), "short head");
        let mut other = l.clone();
        other[0] = 3;
        assert!(records_of(&other, 0.0).is_none(), "another format");
        let mut marks = l.clone();
        marks[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(records_of(&marks, 0.0).is_none(), "more marks than bytes");
        let mut far = l.clone();
        far[HEAD + 4..HEAD + 12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(records_of(&far, 0.0).is_none(), "a mark past the end");
        // Records cut anywhere: the iterator stops with a `None`, never panics.
        let whole = records_of(&l, 0.0).unwrap().0;
        for cut in [1, 4, 36, 37, 39, 43, 47, 50, whole.len() - 1] {
            let items: Vec<bool> = records(&whole[..cut], false).map(|r| r.is_some()).collect();
            assert_eq!(items.last(), Some(&false), "cut {cut}");
            assert!(items[..items.len() - 1].iter().all(|&ok| ok));
        }
        for (at, width) in [(36, 2), (44, 4)] {
            let mut huge = whole.to_vec();
            huge[at..at + width].fill(0xff);
            assert_eq!(
                records(&huge, false).next().map(|r| r.is_some()),
                Some(false),
                "a count of {width} bytes at {at}"
            );
        }
    }

    /// A list whose files carry their host (PostgreSQL's) reads back as it was laid out,
    /// and its cut bytes are refused as the others are.
    #[test]
    fn files_with_hosts_read_back() {
        let mut out = Layout::new(true);
        for i in 0..100u8 {
            out.record(&Pending {
                probability: 1.0 - f32::from(i) / 100.0,
                hash: [i; 32],
                tags: vec![(u16::from(i), 0.5), (999, 0.25)],
                files: vec![
                    (
                        i64::from(i),
                        b"nas".to_vec(),
                        format!("/a/{i}").into_bytes(),
                    ),
                    (-1, b"desk".to_vec(), b"/b".to_vec()),
                ],
            });
        }
        let list = out.finish();
        assert_eq!(list[0], FORMAT_HOSTS);
        let (bytes, hosts) = records_of(&list, 0.5).unwrap();
        assert!(hosts);
        let recs: Vec<Record<'_>> = records(bytes, hosts).map(Option::unwrap).collect();
        assert!(recs.len() >= 51 && recs.len() < 51 + MARK_EVERY);
        let r = &recs[42];
        assert_eq!((r.probability, r.hash), (1.0 - 0.42, &[42; 32]));
        let mut tags = Vec::new();
        tags_into(r, &mut tags);
        assert_eq!(tags, [(42, 0.5), (999, 0.25)]);
        let files: Vec<File<'_>> = files(r.file_bytes, r.files, hosts).collect();
        assert_eq!(
            files,
            [
                File {
                    mtime_ns: 42,
                    host: b"nas",
                    path: b"/a/42"
                },
                File {
                    mtime_ns: -1,
                    host: b"desk",
                    path: b"/b"
                }
            ]
        );
        // Read as a list without hosts, the same bytes do not parse: never a panic.
        assert!(records(bytes, false).any(|r| r.is_none()));
        for cut in [1, 40, 47, 51, 60, bytes.len() - 1] {
            let items: Vec<bool> = records(&bytes[..cut], true).map(|r| r.is_some()).collect();
            assert_eq!(items.last(), Some(&false), "cut {cut}");
        }
    }
}
