//! The best-first search for a page of results: a merge of the per-class ranges of
//! `tags_by_class` (each already in descending probability) that stops as soon as nothing
//! unread can rank in.
//!
//! May not: write.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use rusqlite::Transaction;

use crate::catalog::read::tags_of;
use crate::catalog::rows::{hit, in_scope, under_range, Hash, Hit};
use crate::catalog::CatalogError;
use crate::search::Request;

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
pub(super) const STREAM_MAX: usize = 5_000;

/// The best `limit` files without evaluating every candidate: reads the tags of the
/// query's positive classes best first (a merge of one `tags_by_class` range per class,
/// each already in descending probability), evaluates each new image on all its tags and
/// looks up its files, and stops once `limit` files are found and no unread image can
/// score above the last of them (an image's score is at most its best tag read here).
/// `None` when that takes too many images (a rare term, strict filters): then evaluating
/// every candidate at once is cheaper.
pub(super) fn top_files(
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
