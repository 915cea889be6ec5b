//! A search answered from the class lists: for each class a match must have (the query's
//! positive classes), the records that can meet its minimum probability are read
//! (incremental BLOB I/O into one reused buffer, so only that prefix of the list is
//! copied). Each record carries all its image's tags, so the query is evaluated on the
//! record itself, once per image (at the first list read that holds it): no other list,
//! and no table of the images seen, is needed. The matching files come out best first,
//! then by path.
//!
//! May not: write, or decide what a term means (it takes a compiled query).

use std::sync::mpsc;

use rusqlite::blob::Blob;
use rusqlite::{Connection, MAIN_DB};

use super::format::{self, Format, Part, HEAD};
use crate::catalog::listing::{Entry, Listing};
use crate::catalog::rows::in_scope;
use crate::catalog::rows::{under_range, Hash};
use crate::catalog::CatalogError;
use crate::search::{ClassSet, Request};

/// The files matching `q`, best first then by path, read from the lists of the query's
/// classes; `None` when the query matches images without its classes (`NOT cat`: the
/// lists do not hold them), when more lists are absent than `build_limit` (or one in eight
/// of the query's classes, when that is more) allows, when it names a taught tag, or when
/// a stored list is damaged.
/// Absent lists are built in memory. `keep` says what is kept of the files found, and
/// `done` makes the answer of them ([`Found::finish`] or [`Found::count`]).
pub fn find<'q, T: Send>(
    conn: &Connection,
    q: &'q Request,
    build_limit: Option<usize>,
    keep: Keep,
    done: impl FnOnce(Found<'q>) -> T + Send,
) -> Result<Option<T>, CatalogError> {
    let query = &q.query;
    if !answerable(query) {
        return Ok(None);
    }
    // A match has a tag of one of these with at least its minimum (see
    // `positive_classes`), and each record holds all its image's tags: these lists alone
    // answer the query.
    let classes = query.positive_classes();
    // Which lists are stored (a rowid lookup each; `length` reads no overflow page).
    let mut stored = Vec::with_capacity(classes.len());
    {
        let mut stmt =
            conn.prepare_cached("SELECT length(data) FROM class_lists WHERE class_index = ?1")?;
        for &(class, _) in &classes {
            stored.push(stmt.exists([class as i64])?);
        }
    }
    let absent = stored.iter().filter(|s| !**s).count();
    if too_many_absent(build_limit, absent, classes.len()) {
        tracing::debug!(
            absent,
            "search: too many class lists absent; reading the index instead"
        );
        return Ok(None);
    }
    let found = Found::new(q, &classes, None, keep);
    // The lists are read here (the connection stays on this thread) while a second thread
    // takes in those already read; buffers go back and forth.
    let (to_worker, inbox) = mpsc::sync_channel::<(usize, f32, Vec<u8>, bool)>(2);
    let (recycle, spare) = mpsc::channel::<Vec<u8>>();
    let (listing, bytes) = std::thread::scope(|scope| -> Result<_, CatalogError> {
        let worker = scope.spawn(move || {
            let mut found = found;
            for (class, min, buf, whole) in inbox {
                let ok = if whole {
                    format::records_of(&buf, min).is_some_and(|part| found.add(class, part))
                } else {
                    found.add(
                        class,
                        Part {
                            format: Format::Local,
                            records: &buf,
                            hashes: &[],
                        },
                    )
                };
                let _ = recycle.send(buf);
                if !ok {
                    tracing::warn!(class, "search list unreadable: reading the index instead");
                    return None;
                }
            }
            let files = found.found();
            Some((done(found), files))
        });
        let mut blob: Option<Blob<'_>> = None;
        let mut bytes = 0;
        for (&(class, min), &stored) in classes.iter().zip(&stored) {
            let mut buf = spare.try_recv().unwrap_or_default();
            let read = if stored {
                let b = match &mut blob {
                    Some(b) => {
                        b.reopen(class as i64)?;
                        b
                    }
                    None => blob.insert(conn.blob_open(
                        MAIN_DB,
                        "class_lists",
                        "data",
                        class as i64,
                        true,
                    )?),
                };
                read_records(b, min, &mut buf)?
            } else {
                false
            };
            if !read {
                // Absent, or stored in another format: built now, whole.
                buf = format::build(conn, class)?;
            }
            bytes += buf.len();
            if to_worker.send((class, min, buf, !read)).is_err() {
                break; // the worker met a damaged list
            }
        }
        drop(to_worker);
        let listing = worker.join().unwrap_or_else(|_| {
            tracing::error!("the search list reader failed: reading the index instead");
            None
        });
        Ok((listing, bytes))
    })?;
    let Some((answer, files)) = listing else {
        return Ok(None);
    };
    tracing::debug!(
        lists = classes.len(),
        absent,
        bytes,
        files,
        "search: read from the class lists"
    );
    Ok(Some(answer))
}

/// Whether lists can answer `query` (on either backend): not when it matches images
/// without its classes (`NOT cat`: the lists do not hold them), nor when it names a taught
/// tag (lists are kept for ImageNet classes and hold only their tags, see `format::build`).
pub(in crate::catalog) fn answerable(query: &crate::search::Compiled) -> bool {
    !query.matches_untagged()
        && query
            .classes()
            .iter()
            .all(|&(c, _)| c < crate::labels::IMAGENET_CLASSES)
}

/// Whether `absent` lists of a query's `classes` are more than a search builds itself:
/// `build_limit`, or one in eight of the classes when that is more (`None`: no limit).
pub(in crate::catalog) fn too_many_absent(
    build_limit: Option<usize>,
    absent: usize,
    classes: usize,
) -> bool {
    build_limit.is_some_and(|l| absent > l.max(classes / 8))
}

/// Reads into `buf` the records of a stored list that may reach `min`. False when the
/// list is of another format or its marks are out of bounds.
fn read_records(b: &Blob<'_>, min: f32, buf: &mut Vec<u8>) -> Result<bool, CatalogError> {
    let len = b.len();
    let mut head = [0u8; HEAD];
    if len < HEAD {
        return Ok(false);
    }
    b.read_at_exact(&mut head, 0)?;
    // SQLite's lists are of format 1: a list of another format is rebuilt.
    let Some(format::Head {
        format: Format::Local,
        marks: marks_len,
        ..
    }) = format::head(&head)
    else {
        return Ok(false);
    };
    let Some(records_at) = HEAD.checked_add(marks_len).filter(|&a| a <= len) else {
        return Ok(false);
    };
    let mut marks = vec![0u8; marks_len];
    b.read_at_exact(&mut marks, HEAD)?;
    let Some(format::Cut { end, .. }) = format::records_end(&marks, len - records_at, min) else {
        return Ok(false);
    };
    buf.clear();
    buf.resize(end, 0);
    b.read_at_exact(buf, records_at)?;
    Ok(true)
}

/// What a search keeps of the files it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::catalog) enum Keep {
    /// Their paths and scores (a listing).
    Paths,
    /// Their paths, scores and contents' hashes (`find`: JSON and table output).
    Hashes,
    /// How many there are (`--count`): nothing kept, nothing ranked.
    Count,
}

/// The matching files met so far.
pub(in crate::catalog) struct Found<'r> {
    q: &'r Request,
    /// On a catalog of many hosts, this one's name: its files are shown as their path and
    /// are the only ones `--under` keeps; another host's as `host:path`.
    host: Option<&'r str>,
    /// Per class: the minimum its list is read down to (`INFINITY`: not read).
    min_of: Vec<f32>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every matching file's path, one after the other (when counting, the last one).
    paths: Vec<u8>,
    counting: bool,
    /// Files counted (when counting).
    counted: usize,
    files: Vec<Entry>,
    /// The matching images' hashes, when the answer shows them.
    hashes: Option<Vec<Hash>>,
    /// Scratch: a record's tags, and the query's per-condition bests.
    tags: Vec<(usize, f32)>,
    best: Vec<f32>,
}

impl<'r> Found<'r> {
    /// `classes`: the query's positive classes with their minimums.
    pub fn new(
        q: &'r Request,
        classes: &[(usize, f32)],
        host: Option<&'r str>,
        keep: Keep,
    ) -> Self {
        let mut min_of = vec![f32::INFINITY; ClassSet::CAPACITY];
        for &(c, min) in classes {
            if let Some(m) = min_of.get_mut(c) {
                *m = min;
            }
        }
        Found {
            q,
            host,
            min_of,
            ranges: q.under.iter().map(|p| under_range(p)).collect(),
            paths: Vec::new(),
            counting: keep == Keep::Count,
            counted: 0,
            files: Vec::new(),
            hashes: (keep == Keep::Hashes).then(Vec::new),
            tags: Vec::new(),
            best: Vec::new(),
        }
    }

    /// The minimum the list of `class` is read down to (`INFINITY`: not one of the
    /// query's positive classes).
    fn min_of(&self, class: usize) -> f32 {
        self.min_of.get(class).copied().unwrap_or(f32::INFINITY)
    }

    /// Takes in the records of `class` that meet its minimum in the query; false when
    /// they do not parse, or their hashes are wanted and not there. An image is evaluated
    /// once, at the first list read that holds it (the lowest of its classes whose list is
    /// read down to its probability).
    pub fn add(&mut self, class: usize, part: Part<'_>) -> bool {
        let min = self.min_of(class);
        let mut records = format::records(part);
        while let Some(r) = records.next() {
            let Some(r) = r else {
                return false;
            };
            if r.probability < min {
                break;
            }
            format::tags_into(&r, &mut self.tags);
            let first = self
                .tags
                .iter()
                .filter(|&&(c, p)| self.min_of.get(c).is_some_and(|&m| p >= m))
                .map(|&(c, _)| c)
                .min();
            if first != Some(class) {
                continue;
            }
            let Some(score) = self.q.query.eval_with(&self.tags, &mut self.best) else {
                continue;
            };
            let hash = match (&self.hashes, r.hash) {
                (None, _) => None,
                (Some(_), Some(h)) => Some(h),
                (Some(_), None) => return false,
            };
            let mut image = None;
            for f in records.files() {
                let here = self.host.is_none_or(|h| f.host == h.as_bytes());
                if !(here || self.ranges.is_empty()) {
                    continue;
                }
                // The path is laid down, then checked (it is in two pieces in a list).
                let start = self.paths.len();
                if !here {
                    self.paths.extend_from_slice(f.host);
                    self.paths.push(b':');
                }
                let path_at = self.paths.len();
                self.paths.extend_from_slice(f.folder);
                self.paths.extend_from_slice(f.name);
                if !in_scope(
                    self.q,
                    &self.ranges,
                    &self.paths[path_at..],
                    Some(f.mtime_ns),
                ) {
                    self.paths.truncate(start);
                    continue;
                }
                if self.counting {
                    self.paths.truncate(start);
                    self.counted += 1;
                    continue;
                }
                let image = *image.get_or_insert_with(|| match (&mut self.hashes, hash) {
                    (Some(hashes), Some(h)) => {
                        hashes.push(*h);
                        hashes.len() as u32 - 1
                    }
                    _ => u32::MAX,
                });
                self.files.push(Entry {
                    score,
                    start,
                    len: (self.paths.len() - start) as u32,
                    image,
                });
            }
        }
        true
    }

    /// How many files were found (before the request's limit).
    pub fn found(&self) -> usize {
        self.files.len() + self.counted
    }

    /// How many files the listing would hold: those found, at most the request's limit.
    pub fn count(self) -> usize {
        let found = self.found();
        self.q.limit.map_or(found, |l| found.min(l))
    }

    /// The files best first, then by path; the first `limit` when the request has one.
    pub fn finish(mut self) -> Listing {
        let paths = &self.paths;
        let path = |e: &Entry| &paths[e.start..e.start + e.len as usize];
        let order = |a: &Entry, b: &Entry| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| path(a).cmp(path(b)))
        };
        if let Some(limit) = self.q.limit.filter(|&l| l < self.files.len()) {
            self.files.select_nth_unstable_by(limit, order);
            self.files.truncate(limit);
        }
        // By score alone first: a radix sort (in the order of `total_cmp`) of (score,
        // index) pairs, a third the size of the entries; then by path within each run of
        // one score.
        let mut by_score: Vec<(f32, u32)> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, e)| (e.score, i as u32))
            .collect();
        radsort::sort_by_key(&mut by_score, |&(score, _)| score);
        by_score.reverse();
        let files = &self.files;
        for run in by_score.chunk_by_mut(|a, b| a.0.to_bits() == b.0.to_bits()) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| order(&files[a.1 as usize], &files[b.1 as usize]));
            }
        }
        let order: Vec<u32> = by_score.into_iter().map(|(_, i)| i).collect();
        Listing::from_parts(
            self.paths,
            self.files,
            order,
            self.hashes.unwrap_or_default(),
        )
    }
}
