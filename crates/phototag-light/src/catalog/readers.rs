//! Parallel readers of a catalog's embeddings: row-id ranges of the embeddings table, each
//! read on a connection of its own (the first on the caller's), at once. `similar` and
//! taught tags' scoring read the whole table this way.
//!
//! May not: write, or know what the readers compute.

use super::{Catalog, CatalogError, Location};

/// Below this many rows one reader is as quick as several.
pub const ROWS_PER_READER: i64 = 20_000;

/// Row-id ranges for the readers of `[start, end)`.
pub fn parts(start: i64, end: i64, threads: usize) -> Vec<(i64, i64)> {
    let readers = if threads > 0 {
        threads as i64
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores as i64).min((end - start) / ROWS_PER_READER)
    };
    let readers = readers.min(end - start).clamp(1, 16);
    let step = (end - start + readers - 1) / readers;
    (0..readers)
        .map(|i| (start + i * step, (start + (i + 1) * step).min(end)))
        .collect()
}

/// Runs `f` on each part, the first on `catalog` and the others each on its own
/// read-only connection to `db`, at once; the results in part order.
pub fn in_parts<T: Send>(
    catalog: &Catalog,
    db: &Location,
    parts: &[(i64, i64)],
    f: impl Fn(&Catalog, (i64, i64)) -> Result<T, CatalogError> + Sync,
) -> Result<Vec<T>, CatalogError> {
    std::thread::scope(|s| {
        let f = &f;
        let others: Vec<_> = parts[1..]
            .iter()
            .map(|&ids| {
                s.spawn(move || {
                    let c = Catalog::open_readonly(db)?;
                    f(&c, ids)
                })
            })
            .collect();
        let mut out = vec![f(catalog, parts[0])?];
        for h in others {
            out.push(h.join().expect("a reader thread panicked")?);
        }
        Ok(out)
    })
}
