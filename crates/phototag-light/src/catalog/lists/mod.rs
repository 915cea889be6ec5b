//! Per-class search lists (`class_lists`, migration 0003): for each class, one BLOB with
//! every image tagged with it, best probability first, and the path and mtime of each of
//! its files. A search that lists everything reads the lists of its classes (a few MB read
//! in one piece each) instead of one index row per tag and one lookup per file, which is
//! what bounded a full listing on a large catalog (~200 ns a row).
//!
//! A list is true or absent: the migration's triggers delete a class's row in the same
//! transaction as any change to a tag of the class or to a file of an image tagged with
//! it. [`Catalog::refresh_class_lists`] (the writer) rebuilds absent rows; a search builds
//! the few absent ones it needs in memory, with the same code, or, when many are absent,
//! returns `None` and is answered without lists.
//!
//! Layout, little-endian: one format byte, then records ordered by probability descending,
//! then hash, then path: `probability f32 | hash [32] | file count u32 | (mtime_ns i64 |
//! path length u32 | path bytes)*`.
//!
//! May not: trust a stored list's bytes (every read is bounds-checked; a list that does not
//! parse is rebuilt in memory), or evaluate a query beyond its terms' best probabilities
//! (`search::matching` does).

mod find;
pub(super) mod format;

use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};

use super::{CatalogError, Sqlite};
use crate::labels::IMAGENET_CLASSES;
pub(super) use find::{answerable, find, too_many_absent, Found, Keep};
use format::build;

/// Classes rebuilt per write transaction by [`Catalog::refresh_class_lists`].
const CLASSES_PER_TRANSACTION: usize = 16;

/// A search builds at most this many absent lists itself (each costs about one index
/// lookup per file of the class), or one in eight of its classes when that is more.
pub(super) const BUILD_IN_SEARCH: usize = 4;

/// What [`Catalog::refresh_class_lists`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListsRefresh {
    pub rebuilt: usize,
    /// Classes still without a list (the budget ran out).
    pub missing: usize,
}

impl Sqlite {
    /// Rebuilds the lists that changes removed, a few classes per write transaction, until
    /// none is missing or `budget` is spent (checked after each class, so at least one is
    /// rebuilt).
    pub fn refresh_class_lists(
        &mut self,
        budget: Option<Duration>,
    ) -> Result<ListsRefresh, CatalogError> {
        let started = Instant::now();
        let spent = || budget.is_some_and(|b| started.elapsed() >= b);
        // A build looks up every file and image of its class, all over the file: pages
        // read in place cost a fraction of copies into a 2 MB cache that keeps missing.
        self.conn.pragma_update(None, "mmap_size", 1i64 << 32)?;
        let mut rebuilt = 0;
        loop {
            let missing = missing(&self.conn)?;
            if missing.is_empty() || (rebuilt > 0 && spent()) {
                if rebuilt > 0 {
                    tracing::debug!(
                        rebuilt,
                        missing = missing.len(),
                        "search lists rebuilt in {:.0} ms",
                        started.elapsed().as_secs_f64() * 1e3
                    );
                }
                return Ok(ListsRefresh {
                    rebuilt,
                    missing: missing.len(),
                });
            }
            // Built under the write lock: nothing can change a class between its build and
            // its row (a change after the commit deletes the row again).
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for &class in missing.iter().take(CLASSES_PER_TRANSACTION) {
                let data = build(&tx, class)?;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO class_lists (class_index, data) VALUES (?1, ?2)",
                )?
                .execute(params![class as i64, data])?;
                rebuilt += 1;
                if spent() {
                    break;
                }
            }
            tx.commit()?;
        }
    }

    /// How many classes have no search list (they are rebuilt by
    /// [`Catalog::refresh_class_lists`]).
    pub fn missing_class_lists(&self) -> Result<usize, CatalogError> {
        Ok(missing(&self.conn)?.len())
    }
}

/// The classes without a list, ascending.
fn missing(conn: &Connection) -> Result<Vec<usize>, CatalogError> {
    let mut present = vec![false; IMAGENET_CLASSES];
    let mut stmt = conn.prepare_cached("SELECT class_index FROM class_lists")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if let Some(p) = usize::try_from(r.get::<_, i64>(0)?)
            .ok()
            .and_then(|c| present.get_mut(c))
        {
            *p = true;
        }
    }
    Ok((0..IMAGENET_CLASSES).filter(|&c| !present[c]).collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::catalog::fixtures::{self, file, image};
    use crate::catalog::query::Strategy;
    use crate::catalog::Catalog;
    use crate::search::Request;

    /// Which of `classes` have a list.
    fn present(cat: &Catalog, classes: &[usize]) -> Vec<usize> {
        let missing = missing(&cat.sqlite().conn).unwrap();
        classes
            .iter()
            .copied()
            .filter(|c| !missing.contains(c))
            .collect()
    }

    /// The lists answer every query of the fixtures as the index does, whether built in
    /// the search (none stored) or stored.
    fn agrees(cat: &Catalog) {
        for query in fixtures::queries() {
            for (under, mtime) in fixtures::filters() {
                let mut sq = Request::new(query.clone());
                sq.under = under;
                sq.mtime_ns = mtime;
                let want = cat.search_using(&sq, Strategy::Scan).unwrap();
                assert_eq!(cat.search_using(&sq, Strategy::Lists).unwrap(), want);
                assert_eq!(cat.search_using(&sq, Strategy::Auto).unwrap(), want);
                assert_eq!(cat.count(&sq).unwrap(), want.len());
            }
        }
    }

    #[test]
    fn lists_answer_as_the_index_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = fixtures::random(dir.path().join("r.db"));
        assert_eq!(cat.missing_class_lists().unwrap(), IMAGENET_CLASSES);
        agrees(&cat);
        let r = cat.refresh_class_lists(None).unwrap();
        assert_eq!(
            r,
            ListsRefresh {
                rebuilt: IMAGENET_CLASSES,
                missing: 0
            }
        );
        agrees(&cat);
        // Stored lists are the lists the catalog gives now.
        for class in [0, 5, 11, 12] {
            let stored: Vec<u8> = cat
                .sqlite()
                .conn
                .query_row(
                    "SELECT data FROM class_lists WHERE class_index = ?1",
                    [class as i64],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(stored, build(&cat.sqlite().conn, class).unwrap());
            let part = format::records_of(&stored, 0.0).unwrap();
            assert_eq!(part.format, format::Format::Local);
            assert_eq!(part.records.is_empty(), class == 12, "class {class}");
        }
    }

    /// Two images whose hashes share their first 8 bytes are still two images.
    #[test]
    fn hashes_alike_in_their_first_bytes_stay_apart() {
        use crate::search::{ClassSet, Compiled, Condition, Node};
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(dir.path().join("c.db")).unwrap();
        let model = cat.register_model("m", "00", "resnet18").unwrap();
        let mut w = cat.begin().unwrap();
        let root = w.root_id(Path::new("/p")).unwrap();
        for (i, tags) in [&[(1, 0.9), (2, 0.05)][..], &[(2, 0.5)], &[(1, 0.2)]]
            .iter()
            .enumerate()
        {
            let mut hash = [7u8; 32];
            hash[31] = i as u8;
            w.put_image(&image(hash, model, tags)).unwrap();
            w.put_file(&file(&format!("/p/{i}.jpg"), root, hash, 1, 0))
                .unwrap();
        }
        w.commit().unwrap();
        cat.refresh_class_lists(None).unwrap();
        let q = Compiled::new(
            Node::And(vec![Node::Cond(0), Node::Cond(1)]),
            vec![
                Condition {
                    classes: ClassSet::from_indexes([1]),
                    min_prob: 0.0,
                },
                Condition {
                    classes: ClassSet::from_indexes([2]),
                    min_prob: 0.0,
                },
            ],
        );
        let hits = cat.search_using(&Request::new(q), Strategy::Lists).unwrap();
        let paths: Vec<_> = hits.iter().map(|h| h.path.display().to_string()).collect();
        assert_eq!(paths, ["/p/0.jpg"], "only image 0 has both classes");
        agrees_on(&cat);
    }

    #[test]
    fn a_change_removes_the_lists_it_touches_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = fixtures::three_images(dir.path().join("c.db"));
        let (a, c) = (
            crate::catalog::hash_bytes(b"a"),
            crate::catalog::hash_bytes(b"c"),
        );
        let classes = [1, 2, 3, 5];
        let refresh = |cat: &mut Catalog| {
            cat.refresh_class_lists(None).unwrap();
            assert_eq!(present(cat, &classes), classes);
        };
        refresh(&mut cat);
        // A file of the catalog's one root, as big as the fixture's.
        let put = |path: &str, hash, mtime_ns| file(path, 1, hash, 10, mtime_ns);

        // A rescan that finds nothing new, and a re-put of an unchanged file: no change.
        let mut w = cat.begin().unwrap();
        w.touch_files(&[Path::new("/p/x/a1.jpg")], 9).unwrap();
        w.put_file(&put("/p/x/a1.jpg", a, 1_000_000_000)).unwrap();
        w.commit().unwrap();
        assert_eq!(present(&cat, &classes), classes);

        // A new path of a (classes 1 and 2).
        let mut w = cat.begin().unwrap();
        w.put_file(&put("/p/z/a3.jpg", a, 7)).unwrap();
        w.commit().unwrap();
        assert_eq!(present(&cat, &classes), [3, 5]);
        agrees_on(&cat);
        refresh(&mut cat);

        // A touched file (new mtime) of c (class 3).
        let mut w = cat.begin().unwrap();
        w.put_file(&put("/p/y/c.jpg", c, 8)).unwrap();
        w.commit().unwrap();
        assert_eq!(present(&cat, &classes), [1, 2, 5]);
        agrees_on(&cat);
        refresh(&mut cat);

        // c retagged as class 5.
        let mut w = cat.begin().unwrap();
        w.put_image(&image(c, 1, &[(5, 0.7)])).unwrap();
        w.commit().unwrap();
        assert_eq!(present(&cat, &classes), [1, 2]);
        agrees_on(&cat);
        refresh(&mut cat);

        // c's only file goes, then c itself (its tags by cascade).
        let mut w = cat.begin().unwrap();
        w.remove_files(&[Path::new("/p/y/c.jpg")]).unwrap();
        w.commit().unwrap();
        assert_eq!(present(&cat, &classes), [1, 2, 3]);
        refresh(&mut cat);
        let mut w = cat.begin().unwrap();
        assert_eq!(w.remove_orphan_images().unwrap(), 1);
        w.commit().unwrap();
        assert_eq!(present(&cat, &classes), [1, 2, 3]);
        agrees_on(&cat);
        refresh(&mut cat);
        agrees_on(&cat);
    }

    /// Every single class and pair of classes 0..6 of the three-image catalog.
    fn agrees_on(cat: &Catalog) {
        use crate::search::{ClassSet, Compiled, Condition, Node};
        for a in 0..6 {
            for b in a..6 {
                let q = Compiled::new(
                    Node::Cond(0),
                    vec![Condition {
                        classes: ClassSet::from_indexes([a, b]),
                        min_prob: 0.0,
                    }],
                );
                let sq = Request::new(q);
                let want = cat.search_using(&sq, Strategy::Scan).unwrap();
                assert_eq!(cat.search_using(&sq, Strategy::Lists).unwrap(), want);
                assert_eq!(cat.search_using(&sq, Strategy::Auto).unwrap(), want);
            }
        }
    }

    #[test]
    fn a_damaged_list_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = fixtures::random(dir.path().join("r.db"));
        cat.refresh_class_lists(None).unwrap();
        for bad in [&[format::LOCAL, 0xff][..], &[9, 1, 2, 3], &[]] {
            for class in [1, 2, 3, 4, 7] {
                cat.sqlite()
                    .conn
                    .execute(
                        "UPDATE class_lists SET data = ?2 WHERE class_index = ?1",
                        params![class, bad],
                    )
                    .unwrap();
            }
            agrees(&cat);
        }
        // A truncated list: its records stop short.
        let whole: Vec<u8> = cat
            .sqlite()
            .conn
            .query_row(
                "SELECT data FROM class_lists WHERE class_index = 5",
                [],
                |r| r.get(0),
            )
            .unwrap();
        for cut in [2, 40, whole.len() / 2, whole.len() - 1] {
            cat.sqlite()
                .conn
                .execute(
                    "UPDATE class_lists SET data = ?1 WHERE class_index = 5",
                    [&whole[..cut]],
                )
                .unwrap();
            agrees(&cat);
        }
    }

    #[test]
    fn a_refresh_stops_at_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = fixtures::random(dir.path().join("r.db"));
        let r = cat.refresh_class_lists(Some(Duration::ZERO)).unwrap();
        assert_eq!(
            r.rebuilt, 1,
            "one class at least, then the budget is checked"
        );
        assert_eq!(r.missing, IMAGENET_CLASSES - 1);
        assert_eq!(cat.missing_class_lists().unwrap(), IMAGENET_CLASSES - 1);
    }
}
