//! Search and duplicates: which files have an image matching a compiled query, best first,
//! and which paths share a content.
//!
//! A search takes the cheapest of three ways ([`Strategy`]):
//! - with a small limit, it reads the tags best first (a merge of the per-class ranges of
//!   `tags_by_class`, already ordered by probability) and stops as soon as nothing unread
//!   can rank in;
//! - for a full listing, it reads the class lists of the query's classes (`lists`), when
//!   few of them are missing;
//! - otherwise it reads, through `tags_by_class` only, the tags of the classes the query
//!   mentions, keeps per image the best probability satisfying each term, evaluates the
//!   query on each image, then finds the files of the matches: one `files_by_hash` lookup
//!   per image when few match, one pass over `files` (or its `--under` ranges) when many do.
//!
//! Only a query that matches images with none of its classes (`NOT cat`) reads every image.
//! Path and date filters apply to the file rows.
//!
//! May not: write, or know about words and labels (it takes a [`Compiled`] query over
//! class indexes).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::Transaction;

use super::listing::Listing;
use super::read::tags_of;
use super::rows::{get_u64, path_bytes, path_from, ser_hash, ser_path, under_range, Hash, TagRow};
use super::{Catalog, CatalogError};
use crate::search::matching::NONE;
use crate::search::{ClassSet, Compiled, Condition, Node, Request};

/// Files whose image has a tag of any of `classes` with at least `min_probability`: the
/// class-index form of a search, for callers without a query (the command line compiles
/// one and uses [`Catalog::find`]). Every hit carries its image's tags.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchQuery {
    pub classes: Vec<usize>,
    /// In [0, 1].
    pub min_probability: f32,
    /// At most this many hits (the best ones); all when `None`.
    pub limit: Option<usize>,
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

/// Paths that share one content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DupeGroup {
    #[serde(serialize_with = "ser_hash")]
    pub hash: Hash,
    /// The size of each copy, in bytes.
    pub size: u64,
    /// Sorted by bytes; at least two.
    #[serde(serialize_with = "ser_paths")]
    pub paths: Vec<PathBuf>,
}

fn ser_paths<S: serde::Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

/// The images the query was evaluated on, sorted by hash, with their scores; `order`
/// lists the matching ones best first (ties by hash, for a stable order).
#[derive(Default)]
struct Matches {
    hashes: Vec<Hash>,
    /// Per image; negative when it does not match.
    scores: Vec<f32>,
    order: Vec<u32>,
}

impl Matches {
    /// The score of an image, if it matched.
    fn score_of(&self, hash: &[u8]) -> Option<f32> {
        let i = self
            .hashes
            .binary_search_by(|h| h.as_slice().cmp(hash))
            .ok()?;
        Some(self.scores[i]).filter(|s| *s >= 0.0)
    }
}

/// What a strategy found.
enum Located {
    /// Ranked and cut to the limit.
    Listed(Listing),
    /// In no order.
    Hits(Vec<Hit>),
}

/// How a search finds its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(super) enum Strategy {
    /// The cheapest for the request: the best-first merge for a small limit, the class
    /// lists when few of them are absent, else the index and lookups or a scan.
    Auto,
    /// The class lists, building every absent one (the index when the query matches
    /// untagged images).
    Lists,
    /// The index, then one pass over `files`.
    Scan,
    /// The index, then one `files_by_hash` lookup per image.
    Lookup,
}

/// What reading one file row through `files_by_hash` costs, against one row of a scan of
/// `files` (measured: ~1.6 µs and ~0.15 µs on 1M files): past the ratio, scanning wins.
const LOOKUP_VS_SCAN: usize = 10;

impl Catalog {
    /// Files whose image has a tag of one of `q.classes`, best first, each with its
    /// image's tags (see [`Catalog::find`]).
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>, CatalogError> {
        let query = Compiled::new(
            Node::Cond(0),
            vec![Condition {
                classes: ClassSet::from_indexes(q.classes.iter().copied()),
                min_prob: q.min_probability,
            }],
        );
        let mut r = Request::new(query);
        r.limit = q.limit;
        r.with_tags = true;
        self.find(&r)
    }

    /// Files matching a compiled query within the request's folders and dates, best score
    /// first, then by path bytes. Runs in one read snapshot: a hit never lacks tags
    /// written in the same transaction.
    pub fn find(&self, q: &Request) -> Result<Vec<Hit>, CatalogError> {
        self.search_using(q, Strategy::Auto)
    }

    /// The files matching a compiled query, as [`Catalog::find`] gives them but without
    /// tags (`with_tags` is ignored), in the compact form a long listing needs.
    pub fn list(&self, q: &Request) -> Result<Listing, CatalogError> {
        if q.limit == Some(0) {
            return Ok(Listing::default());
        }
        let tx = self.snapshot()?;
        match self.locate(&tx, q, Strategy::Auto)? {
            Located::Listed(l) => Ok(l),
            Located::Hits(hits) => Ok(Listing::from_hits(&rank(q.limit, hits))),
        }
    }

    /// [`Catalog::find`] by a chosen strategy (tests compare them).
    pub(super) fn search_using(
        &self,
        q: &Request,
        strategy: Strategy,
    ) -> Result<Vec<Hit>, CatalogError> {
        if q.limit == Some(0) {
            return Ok(Vec::new());
        }
        let tx = self.snapshot()?;
        let hits = match self.locate(&tx, q, strategy)? {
            Located::Listed(l) => l.to_hits(),
            Located::Hits(hits) => rank(q.limit, hits),
        };
        if q.with_tags {
            add_tags(&tx, q, hits)
        } else {
            Ok(hits)
        }
    }

    /// The matching files, by the strategy: ranked and cut to the limit when listed, in
    /// no order otherwise.
    fn locate(
        &self,
        tx: &Transaction<'_>,
        q: &Request,
        strategy: Strategy,
    ) -> Result<Located, CatalogError> {
        // Index pages are read in place rather than copied through the page cache.
        self.conn.pragma_update(None, "mmap_size", 1i64 << 32)?;
        let started = std::time::Instant::now();
        if let (Some(limit), Strategy::Auto) = (q.limit, strategy) {
            if limit <= STREAM_MAX && !q.query.matches_untagged() {
                if let Some(hits) = top_files(tx, q, limit)? {
                    tracing::debug!(
                        files = hits.len(),
                        "search: best files read in {:.1} ms",
                        started.elapsed().as_secs_f64() * 1e3
                    );
                    return Ok(Located::Hits(hits));
                }
            }
        }
        let build_limit = match strategy {
            Strategy::Auto => Some(super::lists::BUILD_IN_SEARCH),
            Strategy::Lists => None,
            Strategy::Scan | Strategy::Lookup => Some(0),
        };
        if build_limit != Some(0) {
            if let Some(listing) = super::lists::find(tx, q, build_limit)? {
                tracing::debug!(
                    files = listing.len(),
                    "search: files listed in {:.1} ms",
                    started.elapsed().as_secs_f64() * 1e3
                );
                return Ok(Located::Listed(listing));
            }
        }
        let m = matches(tx, &q.query)?;
        let matched_at = started.elapsed();
        let files: usize = tx.query_row("SELECT count(*) FROM files", [], |r| {
            super::rows::get_usize(r, 0)
        })?;
        let wanted = q
            .limit
            .map_or(m.order.len(), |l| m.order.len().min(l.saturating_mul(4)));
        let scan = match strategy {
            Strategy::Scan => true,
            Strategy::Lookup => false,
            _ => wanted.saturating_mul(LOOKUP_VS_SCAN) > files,
        };
        let hits = if scan {
            scan_files(tx, q, &m)?
        } else {
            look_up_files(tx, q, &m)?
        };
        tracing::debug!(
            images = m.order.len(),
            files = hits.len(),
            scan,
            "search: images matched in {:.1} ms, files found in {:.1} ms more",
            matched_at.as_secs_f64() * 1e3,
            (started.elapsed() - matched_at).as_secs_f64() * 1e3
        );
        Ok(Located::Hits(hits))
    }

    /// Groups of at least two paths with the same content (only paths strictly under
    /// `under` when given), ordered by their first path.
    pub fn duplicates(&self, under: Option<&Path>) -> Result<Vec<DupeGroup>, CatalogError> {
        let tx = self.snapshot()?;
        let range = under.map(under_range);
        // Counting per hash reads `files_by_hash` alone (or the path range of `under`).
        let hashes: Vec<Hash> = match &range {
            None => {
                let mut stmt =
                    tx.prepare("SELECT hash FROM files GROUP BY hash HAVING count(*) > 1")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            }
            Some((lo, hi)) => {
                let mut stmt = tx.prepare(
                    "SELECT hash FROM files WHERE path >= ?1 AND path < ?2
                     GROUP BY hash HAVING count(*) > 1",
                )?;
                let rows = stmt.query_map([lo, hi], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            }
        };
        let mut stmt =
            tx.prepare_cached("SELECT path, size FROM files WHERE hash = ?1 ORDER BY path")?;
        let mut groups = Vec::with_capacity(hashes.len());
        for hash in hashes {
            let mut paths = Vec::new();
            let mut size = 0;
            let mut rows = stmt.query([hash])?;
            while let Some(r) = rows.next()? {
                let path: Vec<u8> = r.get(0)?;
                if let Some((lo, hi)) = &range {
                    if path < *lo || path >= *hi {
                        continue;
                    }
                }
                paths.push(path_from(path));
                size = get_u64(r, 1)?;
            }
            if paths.len() > 1 {
                groups.push(DupeGroup { hash, size, paths });
            }
        }
        groups.sort_by(|a, b| path_bytes(&a.paths[0]).cmp(path_bytes(&b.paths[0])));
        Ok(groups)
    }
}

/// Best first (score, then path bytes), cut to the limit.
fn rank(limit: Option<usize>, mut hits: Vec<Hit>) -> Vec<Hit> {
    let by_rank = |a: &Hit, b: &Hit| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| path_bytes(&a.path).cmp(path_bytes(&b.path)))
    };
    if let Some(limit) = limit {
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit, by_rank);
            hits.truncate(limit);
        }
    }
    hits.sort_unstable_by(by_rank);
    hits
}

/// Each hit's tags, and the ranks of those that matched.
fn add_tags(
    tx: &Transaction<'_>,
    q: &Request,
    mut hits: Vec<Hit>,
) -> Result<Vec<Hit>, CatalogError> {
    {
        let mut cache: HashMap<Hash, (Vec<TagRow>, Vec<u32>)> = HashMap::new();
        for h in &mut hits {
            let (tags, ranks) = match cache.entry(h.hash) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => {
                    let tags = tags_of(tx, &h.hash)?;
                    let mut matched: Vec<&TagRow> = tags
                        .iter()
                        .filter(|t| q.query.is_matching_tag(t.class_index, t.probability))
                        .collect();
                    matched.sort_by(|a, b| b.probability.total_cmp(&a.probability));
                    let ranks = matched.iter().map(|t| t.rank).collect();
                    v.insert((tags, ranks))
                }
            };
            h.tags = tags.clone();
            h.matched = ranks.clone();
        }
    }
    Ok(hits)
}

/// Pushes the next tag of stream `i`, if any, onto the merge's heap.
fn advance(
    streams: &mut [rusqlite::Rows<'_>],
    heads: &mut BinaryHeap<(u32, usize, Hash)>,
    i: usize,
) -> Result<(), CatalogError> {
    if let Some(r) = streams[i].next()? {
        let p = r.get::<_, f64>(1)? as f32;
        heads.push((p.max(0.0).to_bits(), i, r.get(0)?));
    }
    Ok(())
}

/// Limits up to this use [`top_files`].
const STREAM_MAX: usize = 5_000;

/// The best `limit` files without evaluating every candidate: reads the tags of the
/// query's positive classes best first (a merge of one `tags_by_class` range per class,
/// each already in descending probability), evaluates each new image on all its tags and
/// looks up its files, and stops once `limit` files are found and no unread image can
/// score above the last of them (an image's score is at most its best tag read here).
/// `None` when that takes too many images (a rare term, strict filters): then evaluating
/// every candidate at once is cheaper.
fn top_files(
    tx: &Transaction<'_>,
    q: &Request,
    limit: usize,
) -> Result<Option<Vec<Hit>>, CatalogError> {
    let budget = 20_000 + 4 * limit;
    let classes = q.query.positive_classes();
    let mut stmts = Vec::with_capacity(classes.len());
    for _ in &classes {
        stmts.push(tx.prepare(
            "SELECT hash, probability FROM tags WHERE class_index = ?1 AND probability >= ?2
             ORDER BY probability DESC",
        )?);
    }
    let mut streams = Vec::with_capacity(classes.len());
    for (stmt, &(class, min)) in stmts.iter_mut().zip(&classes) {
        streams.push(stmt.query(rusqlite::params![class as i64, f64::from(min)])?);
    }
    // Probabilities are >= 0, so their bit patterns order as they do.
    let mut heads: BinaryHeap<(u32, usize, Hash)> = BinaryHeap::new();
    for i in 0..streams.len() {
        advance(&mut streams, &mut heads, i)?;
    }
    let ranges: Vec<(Vec<u8>, Vec<u8>)> = q.under.iter().map(|p| under_range(p)).collect();
    let mut files = tx.prepare_cached("SELECT path, mtime_ns FROM files WHERE hash = ?1")?;
    let mut seen: HashSet<Hash> = HashSet::new();
    let mut hits: Vec<Hit> = Vec::new();
    // The scores of the best `limit` files so far (a min-heap).
    let mut best: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
    while let Some((p, i, hash)) = heads.pop() {
        if best.len() >= limit && best.peek().is_some_and(|Reverse(kth)| p < *kth) {
            break;
        }
        advance(&mut streams, &mut heads, i)?;
        if !seen.insert(hash) {
            continue;
        }
        if seen.len() > budget {
            return Ok(None);
        }
        let tags: Vec<(usize, f32)> = tags_of(tx, &hash)?
            .iter()
            .map(|t| (t.class_index, t.probability))
            .collect();
        let Some(score) = q.query.eval(&tags) else {
            continue;
        };
        let mut rows = files.query([&hash])?;
        while let Some(r) = rows.next()? {
            let path: Vec<u8> = r.get(0)?;
            if in_scope(q, &ranges, &path, r.get(1)?) {
                hits.push(hit(path, hash, score));
                best.push(Reverse(score.max(0.0).to_bits()));
                if best.len() > limit {
                    best.pop();
                }
            }
        }
    }
    Ok(Some(hits))
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

/// The files of the matching images, one `files_by_hash` lookup per image, best first;
/// with a limit, stops once no further image can rank in.
fn look_up_files(tx: &Transaction<'_>, q: &Request, m: &Matches) -> Result<Vec<Hit>, CatalogError> {
    let ranges: Vec<(Vec<u8>, Vec<u8>)> = q.under.iter().map(|p| under_range(p)).collect();
    // Without a date filter the path comes from `files_by_hash` alone (covering).
    let sql = if q.mtime_ns.is_some() {
        "SELECT path, mtime_ns FROM files WHERE hash = ?1"
    } else {
        "SELECT path, NULL FROM files WHERE hash = ?1"
    };
    let mut stmt = tx.prepare_cached(sql)?;
    let mut hits: Vec<Hit> = Vec::new();
    let mut last = f32::INFINITY;
    for &slot in &m.order {
        let score = m.scores[slot as usize];
        if q.limit.is_some_and(|limit| hits.len() >= limit) && score < last {
            break;
        }
        last = score;
        let hash = m.hashes[slot as usize];
        let mut rows = stmt.query([&hash])?;
        while let Some(r) = rows.next()? {
            let path: Vec<u8> = r.get(0)?;
            if in_scope(q, &ranges, &path, r.get(1)?) {
                hits.push(hit(path, hash, score));
            }
        }
    }
    Ok(hits)
}

/// The files of the matching images, by one pass over `files_by_hash` merged with the
/// matches (both sorted by hash), or over `files` (or the path ranges of `--under`) when
/// dates are filtered too: cheaper than a lookup per image when many images match.
fn scan_files(tx: &Transaction<'_>, q: &Request, m: &Matches) -> Result<Vec<Hit>, CatalogError> {
    let mut hits = Vec::new();
    if q.under.is_empty() && q.mtime_ns.is_none() {
        let matched: Vec<usize> = (0..m.hashes.len())
            .filter(|&i| m.scores[i] >= 0.0)
            .collect();
        let mut next = matched.iter().peekable();
        let mut stmt = tx.prepare_cached("SELECT hash, path FROM files ORDER BY hash")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let h = blob(r, 0)?;
            let Ok(h) = <&Hash>::try_from(h) else {
                continue;
            };
            while next
                .peek()
                .is_some_and(|&&i| hash_cmp(&m.hashes[i], h).is_lt())
            {
                next.next();
            }
            let Some(&&i) = next.peek() else {
                break;
            };
            if m.hashes[i] == *h {
                hits.push(hit(blob(r, 1)?.to_vec(), m.hashes[i], m.scores[i]));
            }
        }
        return Ok(hits);
    }
    // Most rows do not match: a bitmap on the hashes' first bits turns them away before
    // the (slower) binary search among the matches.
    let bits = (m.order.len() * 16)
        .next_power_of_two()
        .clamp(1 << 16, 1 << 23);
    let shift = 64 - bits.trailing_zeros();
    let bit = |h: &[u8]| -> usize {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[..8]);
        (u64::from_le_bytes(b) >> shift) as usize
    };
    let mut filter = vec![0u64; bits / 64];
    for &slot in &m.order {
        let i = bit(&m.hashes[slot as usize]);
        filter[i / 64] |= 1 << (i % 64);
    }
    let mut visit = |rows: &mut rusqlite::Rows<'_>| -> Result<(), CatalogError> {
        while let Some(r) = rows.next()? {
            let h = blob(r, 1)?;
            if h.len() != 32 || filter[bit(h) / 64] & (1 << (bit(h) % 64)) == 0 {
                continue;
            }
            let Some(score) = m.score_of(h) else {
                continue;
            };
            let path = blob(r, 0)?;
            if in_scope(q, &[], path, r.get(2)?) {
                let hash = <Hash>::try_from(h).expect("32 bytes");
                hits.push(hit(path.to_vec(), hash, score));
            }
        }
        Ok(())
    };
    let ranges: Vec<(Vec<u8>, Vec<u8>)> = q.under.iter().map(|p| under_range(p)).collect();
    if ranges.is_empty() {
        let mut stmt = tx.prepare_cached("SELECT path, hash, mtime_ns FROM files")?;
        visit(&mut stmt.query([])?)?;
    } else {
        let mut stmt = tx.prepare_cached(
            "SELECT path, hash, mtime_ns FROM files WHERE path >= ?1 AND path < ?2",
        )?;
        for (lo, hi) in merge_ranges(ranges) {
            visit(&mut stmt.query([lo, hi])?)?;
        }
    }
    Ok(hits)
}

/// Path ranges sorted, overlapping ones joined (`--under /a --under /a/b` reads `/a` once).
fn merge_ranges(mut ranges: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    ranges.sort();
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1 => {
                if hi > last.1 {
                    last.1 = hi;
                }
            }
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The order of hashes as SQLite sorts BLOBs (bytewise), comparing the first 8 bytes as
/// one integer first: they almost always differ.
fn hash_cmp(a: &Hash, b: &Hash) -> std::cmp::Ordering {
    let head = |h: &Hash| u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    head(a).cmp(&head(b)).then_with(|| a.cmp(b))
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

/// Evaluates the query on every image that has a tag of a class it mentions (read from
/// `tags_by_class`, one index range per class), and on every other image too when the
/// query can match an image without such tags (`NOT cat`).
fn matches(tx: &Transaction<'_>, query: &Compiled) -> Result<Matches, CatalogError> {
    let k = query.conditions.len();
    // Every tag read, then sorted by hash: an image's tags end up side by side.
    let mut found: Vec<(Hash, u16, f32)> = Vec::new();
    let mut conds_of: Vec<Vec<(usize, f32)>> = vec![Vec::new(); ClassSet::CAPACITY];
    {
        let mut stmt = tx.prepare_cached(
            "SELECT hash, probability FROM tags WHERE class_index = ?1 AND probability >= ?2",
        )?;
        for (class, min) in query.classes() {
            conds_of[class] = query
                .conditions_of(class)
                .into_iter()
                .map(|c| (c, query.conditions[c].min_prob))
                .collect();
            let mut rows = stmt.query(rusqlite::params![class as i64, f64::from(min)])?;
            while let Some(r) = rows.next()? {
                if let Ok(hash) = <Hash>::try_from(blob(r, 0)?) {
                    found.push((hash, class as u16, r.get::<_, f64>(1)? as f32));
                }
            }
        }
    }
    found.sort_unstable_by(|a, b| hash_cmp(&a.0, &b.0));
    let mut m = Matches {
        hashes: Vec::new(),
        scores: Vec::new(),
        order: Vec::new(),
    };
    let mut best = vec![NONE; k];
    for group in found.chunk_by(|a, b| a.0 == b.0) {
        best.fill(NONE);
        for &(_, class, p) in group {
            for &(c, min) in &conds_of[class as usize] {
                if p >= min && p > best[c] {
                    best[c] = p;
                }
            }
        }
        m.hashes.push(group[0].0);
        m.scores.push(query.eval_best(&best).unwrap_or(-1.0));
    }
    tracing::debug!(
        tags = found.len(),
        images = m.hashes.len(),
        "search: tags read from the index"
    );
    if let Some(score) = query.eval_best(&vec![NONE; k]) {
        // Images without any tag the index found match too (a query like `NOT cat`):
        // merge them in, in hash order (the order of `images`).
        let tagged = std::mem::take(&mut m);
        let mut t = 0;
        let mut stmt = tx.prepare_cached("SELECT hash FROM images ORDER BY hash")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let hash: Hash = r.get(0)?;
            while t < tagged.hashes.len() && tagged.hashes[t] < hash {
                m.hashes.push(tagged.hashes[t]);
                m.scores.push(tagged.scores[t]);
                t += 1;
            }
            if t < tagged.hashes.len() && tagged.hashes[t] == hash {
                m.hashes.push(hash);
                m.scores.push(tagged.scores[t]);
                t += 1;
                continue;
            }
            m.hashes.push(hash);
            m.scores.push(score);
        }
        m.hashes.extend_from_slice(&tagged.hashes[t..]);
        m.scores.extend_from_slice(&tagged.scores[t..]);
    }
    m.order = (0..m.hashes.len() as u32)
        .filter(|&s| m.scores[s as usize] >= 0.0)
        .collect();
    m.order.sort_unstable_by(|&a, &b| {
        m.scores[b as usize]
            .total_cmp(&m.scores[a as usize])
            .then_with(|| m.hashes[a as usize].cmp(&m.hashes[b as usize]))
    });
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::{self, three_images as catalog};

    fn q(classes: &[usize], min: f32) -> Compiled {
        Compiled::new(
            Node::Cond(0),
            vec![Condition {
                classes: ClassSet::from_indexes(classes.iter().copied()),
                min_prob: min,
            }],
        )
    }

    fn paths(hits: &[Hit]) -> Vec<String> {
        hits.iter().map(|h| h.path.display().to_string()).collect()
    }

    #[test]
    fn ranked_by_score_then_path_with_filters_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path());
        for strategy in ALL {
            ranked_by(&cat, strategy);
        }
    }

    const ALL: [Strategy; 4] = [
        Strategy::Auto,
        Strategy::Lists,
        Strategy::Scan,
        Strategy::Lookup,
    ];

    fn ranked_by(cat: &Catalog, strategy: Strategy) {
        let search = |sq: &Request| cat.search_using(sq, strategy).unwrap();
        let mut sq = Request::new(q(&[2, 3], 0.0));
        let hits = search(&sq);
        assert_eq!(
            paths(&hits),
            ["/p/y/c.jpg", "/p/x/b.jpg", "/p/x/a1.jpg", "/p/y/a2.jpg"]
        );
        assert_eq!(hits[1].score, 0.6);
        assert!(
            hits[1].matched.is_empty() && hits[0].tags.is_empty(),
            "no tags asked"
        );
        sq.with_tags = true;
        let hits = search(&sq);
        assert_eq!(hits[1].matched, vec![1, 2], "best first");
        assert_eq!(hits[2].matched, vec![2]);
        assert_eq!(hits[2].tags.len(), 2);
        assert_eq!(hits[2].tags[0].label, "class1");
        sq.with_tags = false;
        sq.query = q(&[2, 3], 0.5);
        assert_eq!(paths(&search(&sq)), ["/p/y/c.jpg", "/p/x/b.jpg"]);
        sq.under = vec!["/p/x".into()];
        assert_eq!(paths(&search(&sq)), ["/p/x/b.jpg"]);
        sq.query = q(&[1, 2], 0.0);
        sq.under = vec!["/p/y".into(), "/p/z".into(), "/p/y/".into()];
        assert_eq!(paths(&search(&sq)), ["/p/y/a2.jpg"]);
        sq.under.clear();
        sq.mtime_ns = Some(2_000_000_000..4_000_000_000);
        assert_eq!(paths(&search(&sq)), ["/p/y/a2.jpg", "/p/x/b.jpg"]);
        sq.mtime_ns = None;
        for (limit, expect) in [
            (1, &["/p/x/a1.jpg"][..]),
            (2, &["/p/x/a1.jpg", "/p/y/a2.jpg"]),
            (3, &["/p/x/a1.jpg", "/p/y/a2.jpg", "/p/x/b.jpg"]),
        ] {
            sq.limit = Some(limit);
            assert_eq!(paths(&search(&sq)), expect, "limit {limit}, {strategy:?}");
        }
        sq.limit = Some(0);
        assert!(search(&sq).is_empty());
    }

    #[test]
    fn overlapping_ranges_are_read_once() {
        let r = |a: &str, b: &str| (a.as_bytes().to_vec(), b.as_bytes().to_vec());
        assert_eq!(
            merge_ranges(vec![r("/b/", "/b0"), r("/a/", "/a0"), r("/a/x/", "/a/x0")]),
            vec![r("/a/", "/a0"), r("/b/", "/b0")]
        );
    }

    #[test]
    fn a_class_list_query_brings_tags() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path());
        let hits = cat
            .search(&SearchQuery {
                classes: vec![3, 2],
                min_probability: 0.5,
                limit: Some(5),
            })
            .unwrap();
        assert_eq!(paths(&hits), ["/p/y/c.jpg", "/p/x/b.jpg"]);
        assert_eq!(hits[1].tags.len(), 2);
        assert_eq!(hits[1].matched, vec![1]);
        assert!(cat.search(&SearchQuery::default()).unwrap().is_empty());
    }

    #[test]
    fn a_negation_alone_reads_every_image() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path());
        let not3 = Compiled::new(
            Node::Not(Box::new(Node::Cond(0))),
            vec![Condition {
                classes: ClassSet::from_indexes([3]),
                min_prob: 0.5,
            }],
        );
        let sq = Request::new(not3);
        for strategy in ALL {
            assert_eq!(
                cat.search_using(&sq, strategy).unwrap(),
                cat.find(&sq).unwrap()
            );
        }
        let hits = cat.find(&sq).unwrap();
        assert_eq!(
            paths(&hits),
            ["/p/x/a1.jpg", "/p/x/b.jpg", "/p/y/a2.jpg"],
            "b's class 3 is below 0.5"
        );
        assert!(hits.iter().all(|h| h.score == 0.0 && h.matched.is_empty()));
    }

    #[test]
    fn duplicates_are_grouped() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path());
        let g = cat.duplicates(None).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(
            g[0].paths,
            [PathBuf::from("/p/x/a1.jpg"), "/p/y/a2.jpg".into()]
        );
        assert_eq!(g[0].size, 10);
        assert!(cat.duplicates(Some(Path::new("/p/x"))).unwrap().is_empty());
        assert_eq!(cat.duplicates(Some(Path::new("/p"))).unwrap(), g);
    }

    /// Random tags with many ties: every strategy gives the first `limit` results of the
    /// full, unlimited search (the streaming top-N included).
    #[test]
    fn every_strategy_ranks_alike() {
        let dir = tempfile::tempdir().unwrap();
        let cat = fixtures::random(&dir.path().join("r.db"));
        for query in fixtures::queries() {
            for (under, mtime) in fixtures::filters() {
                let mut sq = Request::new(query.clone());
                sq.under = under;
                sq.mtime_ns = mtime;
                let all = cat.search_using(&sq, Strategy::Scan).unwrap();
                assert!(!all.is_empty());
                for strategy in ALL {
                    assert_eq!(all, cat.search_using(&sq, strategy).unwrap());
                }
                assert_eq!(cat.list(&sq).unwrap(), Listing::from_hits(&all));
                for limit in [1, 2, 5, 17, 1000] {
                    sq.limit = Some(limit);
                    let want = &all[..limit.min(all.len())];
                    for strategy in ALL {
                        let got = cat.search_using(&sq, strategy).unwrap();
                        assert_eq!(got, want, "{query:?} limit {limit} {strategy:?}");
                    }
                    assert_eq!(cat.list(&sq).unwrap(), Listing::from_hits(want));
                }
            }
        }
    }

    fn plan(cat: &Catalog, sql: &str, params: impl rusqlite::Params) -> String {
        let mut stmt = cat
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map(params, |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.join("\n")
    }

    #[test]
    fn search_uses_the_class_and_hash_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path());
        let p = plan(
            &cat,
            "SELECT hash, rank, probability FROM tags WHERE class_index = ?1 AND probability >= ?2",
            rusqlite::params![1, 0.5],
        );
        assert!(p.contains("USING COVERING INDEX tags_by_class"), "{p}");
        let p = plan(
            &cat,
            "SELECT path, NULL FROM files WHERE hash = ?1",
            [[0u8; 32]],
        );
        assert!(p.contains("USING COVERING INDEX files_by_hash"), "{p}");
        let p = plan(
            &cat,
            "SELECT path, mtime_ns FROM files WHERE hash = ?1",
            [[0u8; 32]],
        );
        assert!(p.contains("files_by_hash"), "{p}");
    }
}
