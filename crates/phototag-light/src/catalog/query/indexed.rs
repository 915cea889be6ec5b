//! A search through the index alone: the tags of the query's classes from
//! `tags_by_class`, the query evaluated per image, then the files of the matches by one
//! `files_by_hash` lookup per image or by one pass over `files`.
//!
//! May not: write.

use rusqlite::Transaction;

use crate::catalog::rows::{blob, hit, in_scope, under_range, Hash, Hit};
use crate::catalog::CatalogError;
use crate::search::matching::NONE;
use crate::search::{ClassSet, Compiled, Request};

/// The images the query was evaluated on, sorted by hash, with their scores; `order`
/// lists the matching ones best first (ties by hash, for a stable order).
#[derive(Default)]
pub(super) struct Matches {
    hashes: Vec<Hash>,
    /// Per image; negative when it does not match.
    scores: Vec<f32>,
    pub order: Vec<u32>,
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

/// What reading one file row through `files_by_hash` costs, against one row of a scan of
/// `files` (measured: ~1.6 µs and ~0.15 µs on 1M files): past the ratio, scanning wins.
pub(super) const LOOKUP_VS_SCAN: usize = 10;

/// The files of the matching images, one `files_by_hash` lookup per image, best first;
/// with a limit, stops once no further image can rank in.
pub(super) fn look_up_files(
    tx: &Transaction<'_>,
    q: &Request,
    m: &Matches,
) -> Result<Vec<Hit>, CatalogError> {
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
pub(super) fn scan_files(
    tx: &Transaction<'_>,
    q: &Request,
    m: &Matches,
) -> Result<Vec<Hit>, CatalogError> {
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

/// Evaluates the query on every image that has a tag of a class it mentions (read from
/// `tags_by_class`, one index range per class), and on every other image too when the
/// query can match an image without such tags (`NOT cat`).
pub(super) fn matches(tx: &Transaction<'_>, query: &Compiled) -> Result<Matches, CatalogError> {
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

    #[test]
    fn overlapping_ranges_are_read_once() {
        let r = |a: &str, b: &str| (a.as_bytes().to_vec(), b.as_bytes().to_vec());
        assert_eq!(
            merge_ranges(vec![r("/b/", "/b0"), r("/a/", "/a0"), r("/a/x/", "/a/x0")]),
            vec![r("/a/", "/a0"), r("/b/", "/b0")]
        );
    }
}
