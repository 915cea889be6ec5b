//! Per-class search lists on PostgreSQL (`class_lists`, migration `pg/0007`): SQLite's
//! lists (`catalog::lists`) in format 3, whose files carry their host and whose hashes lie
//! after the records, so that a full listing or a count reads one row per class of the
//! query instead of gathering every tag and file of its matches on the server. The
//! `marks` column holds a list's head and marks, `records` its records then its hashes: a
//! search reads the first bytes of the records its minimums need, and of the hashes only
//! when its answer shows them (`find`: JSON and table output). A list of another format
//! (an older phototag's format 2) counts as missing and is rebuilt.
//!
//! Many hosts write at once, so a list is not deleted by each change as in SQLite. The
//! migration's triggers record each change as (class, writer's transaction id) in
//! `class_changes`; a list records the snapshot it was built from, and is true for a
//! reader while every change of its class the reader sees was visible in that snapshot
//! ([`TRUE_LIST`]). A builder holds the class's advisory lock (so builders of one class
//! take turns, each from a snapshot taken after the last one committed), stores the list
//! and deletes the changes it holds, in one transaction. [`PgCatalog::refresh_class_lists`]
//! builds what is missing or stale; a search builds the few it lacks in memory, or answers
//! without lists when many are missing.
//!
//! May not: decide what a query means (it takes a compiled one), or write outside
//! `class_lists` and `class_changes`.

use std::time::{Duration, Instant};

use postgres::GenericClient;

use super::{hash_of, split_read, PgCatalog};
use crate::catalog::lists::format::{self, Builder, Format, Row, HASH};
use crate::catalog::lists::{answerable, too_many_absent, Found, Keep, ListsRefresh};
use crate::catalog::CatalogError;
use crate::labels::IMAGENET_CLASSES;
use crate::search::Request;

/// The first key of the advisory locks builders hold; the second is the class.
const LOCK_SPACE: i32 = 0x7074_6c73; // "ptls"

/// Condition on `class_lists l`: the list holds every change of its class this snapshot
/// sees.
const TRUE_LIST: &str = "NOT EXISTS (
    SELECT 1 FROM class_changes ch
    WHERE ch.class_index = l.class_index AND NOT pg_visible_in_snapshot(ch.xid, l.built_in))";

/// Condition on `class_lists l`: the list is of the format this phototag writes (3); one of
/// another (an older phototag's) counts as missing, and is rebuilt.
const IN_FORMAT: &str = "substring(l.marks FROM 1 FOR 1) = '\\x03'::bytea";

/// One row per (image tagged with the class, file, ImageNet tag of the image), an image's
/// rows side by side, its first file's rows giving its tags by rank; and the snapshot
/// read (one row of NULLs when the class has no image).
const BUILD: &str = "SELECT x.probability, x.hash, x.host, x.path, x.mtime_ns, x.class_index,
        x.tag_probability, s.snap::text
 FROM (SELECT pg_current_snapshot() AS snap) s
 LEFT JOIN LATERAL (
     SELECT t.probability, t.hash, f.host, f.path, f.mtime_ns, a.class_index,
            a.probability AS tag_probability
     FROM tags t JOIN files f ON f.hash = t.hash JOIN tags a ON a.hash = t.hash
     WHERE t.class_index = $1 AND a.class_index < $2
     ORDER BY t.probability DESC, t.hash, f.host, f.path, a.rank
 ) x ON true";

/// The list of one class as the statement's snapshot sees it, and that snapshot.
fn build(
    c: &mut impl GenericClient,
    class: usize,
    error: impl Fn(postgres::Error) -> CatalogError,
) -> Result<(Vec<u8>, String), CatalogError> {
    let rows = c
        .query(BUILD, &[&(class as i32), &(IMAGENET_CLASSES as i32)])
        .map_err(error)?;
    let mut out = Builder::new(Format::Shared);
    let mut snap = String::new();
    for r in &rows {
        if snap.is_empty() {
            snap = r.get(7);
        }
        let Some(probability) = r.get::<_, Option<f32>>(0) else {
            continue; // the class has no image
        };
        out.row(
            Row {
                probability,
                hash: hash_of(r, 1)?,
                host: r.get::<_, &str>(2).as_bytes(),
                path: r.get(3),
                mtime_ns: r.get(4),
            },
            i64::from(r.get::<_, i32>(5)),
            r.get(6),
        );
    }
    Ok((out.finish(), snap))
}

/// The classes whose list is missing or stale, ascending.
fn stale(c: &mut impl GenericClient) -> Result<Vec<usize>, postgres::Error> {
    let sql = format!(
        "SELECT c FROM generate_series(0, $1 - 1) c
         WHERE NOT EXISTS (SELECT 1 FROM class_lists l
                           WHERE l.class_index = c AND {TRUE_LIST} AND {IN_FORMAT})
         ORDER BY c"
    );
    let rows = c.query(sql.as_str(), &[&(IMAGENET_CLASSES as i32)])?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, i32>(0).max(0) as usize)
        .collect())
}

impl PgCatalog {
    /// Builds the lists that are missing or that changes made stale, one class per
    /// transaction, until none is left or `budget` is spent (checked after each class, so
    /// at least one is built). A class another process is building is left to it and not
    /// counted as missing: `missing` is what the budget left, so that a caller looping
    /// until nothing is missing stops even while other hosts keep writing.
    pub fn refresh_class_lists(
        &self,
        budget: Option<Duration>,
    ) -> Result<ListsRefresh, CatalogError> {
        let started = Instant::now();
        let mut c = self.conn()?;
        let todo = stale(&mut *c).map_err(|e| self.error(e))?;
        let (mut rebuilt, mut skipped) = (0, 0);
        for &class in &todo {
            if rebuilt > 0 && budget.is_some_and(|b| started.elapsed() >= b) {
                break;
            }
            let mut tx = c.transaction().map_err(|e| self.error(e))?;
            let mine: bool = tx
                .query_one(
                    "SELECT pg_try_advisory_xact_lock($1, $2)",
                    &[&LOCK_SPACE, &(class as i32)],
                )
                .map_err(|e| self.error(e))?
                .get(0);
            if !mine {
                skipped += 1; // another process builds it (the rollback releases nothing)
                continue;
            }
            // READ COMMITTED: the build's snapshot is taken after the lock was granted,
            // so it sees the list the last builder committed and everything before it.
            let (data, snap) = build(&mut tx, class, |e| self.error(e))?;
            let (marks, records) = split(&data);
            tx.execute(
                "INSERT INTO class_lists (class_index, built_in, marks, records)
                 VALUES ($1, $2::text::pg_snapshot, $3, $4)
                 ON CONFLICT (class_index) DO UPDATE SET built_in = excluded.built_in,
                     marks = excluded.marks, records = excluded.records",
                &[&(class as i32), &snap, &marks, &records],
            )
            .map_err(|e| self.error(e))?;
            tx.execute(
                "DELETE FROM class_changes
                 WHERE class_index = $1 AND pg_visible_in_snapshot(xid, $2::text::pg_snapshot)",
                &[&(class as i32), &snap],
            )
            .map_err(|e| self.error(e))?;
            tx.commit().map_err(|e| self.error(e))?;
            rebuilt += 1;
        }
        let missing = todo.len() - rebuilt - skipped;
        if rebuilt > 0 {
            tracing::debug!(
                rebuilt,
                skipped,
                missing,
                "search lists rebuilt in {:.0} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        Ok(ListsRefresh { rebuilt, missing })
    }

    /// How many classes have no true search list.
    pub fn missing_class_lists(&self) -> Result<usize, CatalogError> {
        let mut c = self.conn()?;
        Ok(stale(&mut *c).map_err(|e| self.error(e))?.len())
    }

    /// The files matching `q`, ranked and cut to its limit, read from the lists of the
    /// query's positive classes in `c`'s snapshot; `None` when lists cannot answer (as
    /// SQLite's `lists::find`: a query matching images without its classes, a taught tag,
    /// a damaged list) or when more lists are missing than `build_limit` (or one in eight
    /// of the query's classes, when more) allows. Missing lists are built in memory.
    /// `keep` says what is kept of the files found, and `done` makes the answer of them
    /// ([`Found::finish`] or [`Found::count`]).
    pub(super) fn list_from_lists<'s, T>(
        &'s self,
        c: &mut impl GenericClient,
        q: &'s Request,
        build_limit: Option<usize>,
        keep: Keep,
        done: impl FnOnce(Found<'s>) -> T,
    ) -> Result<Option<T>, CatalogError> {
        let query = &q.query;
        if !answerable(query) {
            return Ok(None);
        }
        let started = Instant::now();
        let classes = query.positive_classes();
        let ids: Vec<i32> = classes.iter().map(|&(c, _)| c as i32).collect();
        // The marks of the true lists: how many bytes of records (and of hashes) each query
        // minimum needs.
        let sql = format!(
            "SELECT l.class_index, l.marks, length(l.records)::bigint FROM class_lists l
             WHERE l.class_index = ANY ($1) AND {TRUE_LIST}"
        );
        let rows = c.query(sql.as_str(), &[&ids]).map_err(|e| self.error(e))?;
        let mut wanted: Vec<Option<Wanted>> = vec![None; classes.len()];
        for r in &rows {
            let class = r.get::<_, i32>(0);
            let Some(i) = ids.iter().position(|&c| c == class) else {
                continue;
            };
            let marks: &[u8] = r.get(1);
            let len = usize::try_from(r.get::<_, i64>(2)).unwrap_or(0);
            wanted[i] = records_wanted(marks, len, classes[i].1, keep == Keep::Hashes);
        }
        let absent = wanted.iter().filter(|w| w.is_none()).count();
        if too_many_absent(build_limit, absent, classes.len()) {
            tracing::debug!(
                absent,
                "search: too many class lists missing; asking the server instead"
            );
            return Ok(None);
        }
        let mut found = Found::new(q, &classes, Some(&self.host), keep);
        let mut reads = split_read::Reads::default();
        for (w, &class) in wanted.iter().zip(&ids) {
            if let Some(w) = w {
                reads.classes.push(class);
                reads.lens.push(w.records);
                reads.hashes_at.push(w.hashes_from);
                reads.hashes_lens.push(w.hashes);
            }
        }
        let read = split_read::read(
            c,
            &self.connector,
            reads,
            self.split_read_from.get(),
            &mut found,
        )
        .map_err(|e| self.error(e))?;
        let (mut bytes, mut readable) = (read.bytes, read.readable);
        if read.split {
            self.split_reads.set(self.split_reads.get() + 1);
        }
        for (&(class, min), w) in classes.iter().zip(&wanted) {
            if w.is_none() && readable {
                let (list, _) = build(c, class, |e| self.error(e))?;
                bytes += list.len();
                readable =
                    format::records_of(&list, min).is_some_and(|part| found.add(class, part));
            }
        }
        if !readable {
            tracing::warn!("a search list is unreadable: asking the server instead");
            return Ok(None);
        }
        let files = found.found();
        let answer = done(found);
        tracing::debug!(
            lists = classes.len(),
            absent,
            bytes,
            files,
            "search: read from the class lists in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(Some(answer))
    }
}

/// A list's bytes as stored: its head and marks (`marks`), then its records and hashes
/// (`records`).
fn split(list: &[u8]) -> (&[u8], &[u8]) {
    let marks = format::head(list).map_or(0, |h| h.len() + h.marks);
    list.split_at(marks.min(list.len()))
}

/// What a search reads of a stored list's `records` column, in `substring`'s terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    /// How many of the first bytes: the records that may reach the minimum.
    records: i32,
    /// Where the hashes start (from 1), and how many bytes of them to read (those of the
    /// records read, or none).
    hashes_from: i32,
    hashes: i32,
}

/// What to read of a stored list whose `records` column is `len` bytes long, for `min`
/// (and the hashes of what it reads when `hashes`); `None` when its marks do not parse, or
/// are not of format 3, or point past what a `bytea` holds.
fn records_wanted(marks: &[u8], len: usize, min: f32, hashes: bool) -> Option<Wanted> {
    let h = format::head(marks)?;
    if h.format != Format::Shared || marks.len() != h.len().checked_add(h.marks)? {
        return None;
    }
    let records_len = len.checked_sub(h.records.checked_mul(HASH)?)?;
    let cut = format::records_end(&marks[h.len()..], records_len, min)?;
    let hashes = if hashes {
        cut.records.unwrap_or(h.records).checked_mul(HASH)?
    } else {
        0
    };
    Some(Wanted {
        records: i32::try_from(cut.end).ok()?,
        hashes_from: i32::try_from(records_len.checked_add(1)?).ok()?,
        hashes: i32::try_from(hashes).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::catalog::fixtures::{self, file, image};
    use crate::catalog::query::Strategy;
    use crate::catalog::{test_server, Catalog, Listing, PgTarget};

    /// A catalog at `url` recorded under host `host`.
    fn as_host(url: &str, host: &str) -> Catalog {
        let mut t = PgTarget::new(url);
        t.options.host_name = Some(host.into());
        Catalog::open(t).unwrap()
    }

    /// Every query of the fixtures, with and without filters and limits: the lists alone,
    /// the statements alone and the automatic choice give the same files in the same
    /// order, and a listing gives them too.
    fn agrees(cat: &Catalog) {
        for query in fixtures::queries() {
            for (under, mtime) in fixtures::filters() {
                for limit in [None, Some(1), Some(5), Some(1000)] {
                    let mut sq = Request::new(query.clone());
                    sq.under = under.clone();
                    sq.mtime_ns = mtime.clone();
                    sq.limit = limit;
                    let want = cat.search_using(&sq, Strategy::Scan).unwrap();
                    let lists = cat.search_using(&sq, Strategy::Lists).unwrap();
                    assert_eq!(lists, want, "{query:?} {limit:?}");
                    assert_eq!(cat.search_using(&sq, Strategy::Auto).unwrap(), want);
                    assert_eq!(cat.list(&sq).unwrap(), Listing::from_hits(&want));
                    assert_eq!(cat.count(&sq).unwrap(), want.len());
                }
            }
        }
    }

    /// Which of `classes` lack a true list, as a reader sees them now.
    fn stale_of(url: &str, classes: &[usize]) -> Vec<usize> {
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        let stale = stale(&mut c).unwrap();
        classes
            .iter()
            .copied()
            .filter(|c| stale.contains(c))
            .collect()
    }

    /// The classes of an image of the random fixture.
    fn classes_of(url: &str, hash: &[u8]) -> Vec<usize> {
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        let mut v: Vec<usize> = c
            .query(
                "SELECT class_index FROM tags WHERE hash = $1 ORDER BY class_index",
                &[&hash],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, i32>(0) as usize)
            .collect();
        v.dedup();
        v
    }

    const CLASSES: [usize; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    #[test]
    fn lists_answer_as_the_statements_do_on_many_hosts() {
        let Some(db) = test_server::database("lists_answer_as_the_statements_do_on_many_hosts")
        else {
            return;
        };
        let mut cat = fixtures::random(PgTarget::new(&db.url));
        // Another host holds copies of some images, one under a path this host also
        // filters on (`--under /r/a` means this host's folders only), and an image of its
        // own.
        let mut desk = as_host(&db.url, "desk");
        let model = desk.register_model("m", "00", "resnet18").unwrap();
        let mut w = desk.begin().unwrap();
        let root = w.root_id(Path::new("/r")).unwrap();
        for i in (0..300u32).step_by(11) {
            let hash = crate::catalog::hash_bytes(&i.to_le_bytes());
            w.put_file(&file(&format!("/r/a/desk-{i}.jpg"), root, hash, 1, 2))
                .unwrap();
        }
        let own = crate::catalog::hash_bytes(b"desk's own");
        w.put_image(&image(own, model, &[(3, 0.95), (4, 0.5)]))
            .unwrap();
        w.put_file(&file("/r/b/own.jpg", root, own, 1, 1)).unwrap();
        w.commit().unwrap();

        assert_eq!(cat.missing_class_lists().unwrap(), IMAGENET_CLASSES);
        agrees(&cat); // every list built in memory
        let r = cat.refresh_class_lists(None).unwrap();
        assert_eq!(
            (r.rebuilt, r.missing),
            (IMAGENET_CLASSES, 0),
            "every class, the empty ones too"
        );
        assert_eq!(cat.missing_class_lists().unwrap(), 0);
        agrees(&cat); // every list stored

        // Every list stored, and each search of two lists or more read on two
        // connections.
        assert_eq!(cat.pg_split_reads(0), 0);
        agrees(&cat);
        let split = cat.pg_split_reads(0);
        assert!(split > 0, "a second connection read lists");
        // A server that refuses the second connection: the first reads every list.
        let mut admin = db.server.superuser("postgres").unwrap();
        let allow = |on: bool| format!("ALTER DATABASE {} ALLOW_CONNECTIONS {on}", db.name);
        admin.batch_execute(&allow(false)).unwrap();
        agrees(&cat);
        admin.batch_execute(&allow(true)).unwrap();
        assert_eq!(cat.pg_split_reads(0), split, "no second connection");

        // Stored lists are what a build gives now; another host's files are in them.
        let mut c = db.client();
        for class in [0, 3, 11, 12] {
            let row = c
                .query_one(
                    "SELECT marks || records FROM class_lists WHERE class_index = $1",
                    &[&class],
                )
                .unwrap();
            let stored: Vec<u8> = row.get(0);
            let (built, _) = build(&mut c, class as usize, |e| panic!("{e}")).unwrap();
            assert_eq!(stored, built, "class {class}");
            let part = format::records_of(&stored, 0.0).unwrap();
            assert_eq!(part.format, Format::Shared);
            assert_eq!(part.records.is_empty(), class == 12, "class {class}");
            assert_eq!(part.hashes.len() % HASH, 0);
            assert_eq!(part.hashes.is_empty(), class == 12, "class {class}");
        }
        let shown: Vec<PathBuf> = cat
            .search_using(
                &Request::new(fixtures::queries()[0].clone()),
                Strategy::Lists,
            )
            .unwrap()
            .into_iter()
            .map(|h| h.path)
            .collect();
        assert!(
            shown.iter().any(|p| p.starts_with("desk:/r/a/")),
            "{shown:?}"
        );
    }

    /// A change makes the lists of the classes it touches stale and no other, for every
    /// reader at once; a list built while a change is under way (not yet committed) is
    /// stale once that change commits: never believed without it.
    #[test]
    fn changes_make_their_classes_stale_even_mid_build() {
        let Some(db) = test_server::database("changes_make_their_classes_stale_even_mid_build")
        else {
            return;
        };
        let url = db.url.clone();
        let mut cat = fixtures::random(PgTarget::new(&url));
        cat.refresh_class_lists(None).unwrap();
        assert!(stale_of(&url, &CLASSES).is_empty());
        let hash = |i: u32| crate::catalog::hash_bytes(&i.to_le_bytes());
        let (a, b) = (hash(4), hash(5));

        // A rescan that finds nothing new changes nothing.
        let mut w = cat.begin().unwrap();
        w.touch_files(&[Path::new("/r/a/nothing.jpg")], 9).unwrap();
        w.commit().unwrap();
        let mut c = db.client();
        c.batch_execute("UPDATE files SET last_seen = 77").unwrap();
        assert!(stale_of(&url, &CLASSES).is_empty());

        // Another host's new file of `a`: exactly a's classes.
        let mut desk = as_host(&url, "desk");
        let mut w = desk.begin().unwrap();
        let root = w.root_id(Path::new("/d")).unwrap();
        w.put_file(&file("/d/a.jpg", root, a, 1, 1)).unwrap();
        w.commit().unwrap();
        assert_eq!(stale_of(&url, &CLASSES), classes_of(&url, &a));
        agrees(&cat);
        cat.refresh_class_lists(None).unwrap();
        assert!(stale_of(&url, &CLASSES).is_empty());

        // A new file of b under way on the other host while this one builds: the build
        // cannot see it, so the list it stores is stale as soon as the file commits.
        let mut w = desk.begin().unwrap();
        w.put_file(&file("/d/b.jpg", root, b, 1, 3)).unwrap();
        assert!(
            stale_of(&url, &CLASSES).is_empty(),
            "an uncommitted change is invisible"
        );
        // Force a build of every class (as a writer whose lists were stale would).
        c.batch_execute("DELETE FROM class_lists").unwrap();
        let r = cat.refresh_class_lists(None).unwrap();
        assert_eq!(r.missing, 0);
        assert!(stale_of(&url, &CLASSES).is_empty());
        w.commit().unwrap();
        assert_eq!(stale_of(&url, &CLASSES), classes_of(&url, &b));
        let sq = Request::new(fixtures::queries()[0].clone());
        let listed = cat.search_using(&sq, Strategy::Lists).unwrap();
        let has_b = classes_of(&url, &b)
            .iter()
            .any(|c| fixtures::queries()[0].conditions[0].classes.contains(*c));
        assert_eq!(
            listed.iter().any(|h| h.path == Path::new("desk:/d/b.jpg")),
            has_b
        );
        agrees(&cat);

        // Retagging an image and removing one: their classes, then lists true again.
        let model = cat.register_model("m", "00", "resnet18").unwrap();
        let mut w = cat.begin().unwrap();
        w.put_image(&image(a, model, &[(11, 0.4)])).unwrap();
        w.commit().unwrap();
        let mut want = classes_of(&url, &b);
        want.extend([11]);
        let mut touched = stale_of(&url, &CLASSES);
        touched.retain(|c| !want.contains(c));
        assert!(!touched.is_empty(), "a's old classes");
        agrees(&cat);
        cat.refresh_class_lists(None).unwrap();
        assert!(stale_of(&url, &CLASSES).is_empty());
        // The changes a list holds are forgotten with its build.
        let left: i64 = c
            .query_one("SELECT count(*) FROM class_changes", &[])
            .unwrap()
            .get(0);
        assert_eq!(left, 0);
    }

    /// A class another process is building is left to it: not built twice, not waited
    /// for, not reported missing; built by the next refresh once free.
    #[test]
    fn a_class_being_built_elsewhere_is_left_to_it() {
        let Some(db) = test_server::database("a_class_being_built_elsewhere_is_left_to_it") else {
            return;
        };
        let mut cat = fixtures::random(PgTarget::new(&db.url));
        let mut other = db.client();
        let mut tx = other.transaction().unwrap();
        tx.execute("SELECT pg_advisory_xact_lock($1, 5)", &[&LOCK_SPACE])
            .unwrap();
        let r = cat.refresh_class_lists(None).unwrap();
        assert_eq!((r.rebuilt, r.missing), (IMAGENET_CLASSES - 1, 0));
        assert_eq!(stale_of(&db.url, &CLASSES), [5]);
        agrees(&cat);
        tx.rollback().unwrap();
        let r = cat.refresh_class_lists(None).unwrap();
        assert_eq!((r.rebuilt, r.missing), (1, 0));
        assert!(stale_of(&db.url, &CLASSES).is_empty());
    }

    /// What a search asks the server for is the records and hashes a whole list's reader
    /// takes: the same prefix of the records, the hashes of those records or none.
    #[test]
    fn a_search_asks_for_the_records_it_reads_and_their_hashes() {
        let mut b = Builder::new(Format::Shared);
        for i in 0..1000u16 {
            let path = format!("/p/{i}.jpg");
            let row = Row {
                probability: 1.0 - f32::from(i) / 1000.0,
                hash: [(i % 256) as u8; 32],
                host: b"nas",
                path: path.as_bytes(),
                mtime_ns: 0,
            };
            b.row(row, 1, 0.5);
        }
        let list = b.finish();
        let (marks, records) = split(&list);
        for min in [0.0, 0.3, 0.5, 0.999, 2.0] {
            let whole = format::records_of(&list, min).unwrap();
            let at = records.len() - 1000 * HASH;
            for hashes in [false, true] {
                let w = records_wanted(marks, records.len(), min, hashes).unwrap();
                let from = w.hashes_from as usize - 1;
                assert_eq!(
                    (
                        &records[..w.records as usize],
                        &records[from..from + w.hashes as usize]
                    ),
                    (whole.records, if hashes { whole.hashes } else { &[][..] }),
                    "min {min}"
                );
                assert_eq!(from, at);
            }
        }
        // Format 1 (SQLite's), or marks cut short: not read.
        let local = {
            let mut b = Builder::new(Format::Local);
            let row = Row {
                probability: 0.5,
                hash: [1; 32],
                host: b"",
                path: b"/p",
                mtime_ns: 0,
            };
            b.row(row, 1, 0.5);
            b.finish()
        };
        let (m, r) = split(&local);
        assert_eq!(records_wanted(m, r.len(), 0.0, false), None);
        assert_eq!(
            records_wanted(&marks[..marks.len() - 1], records.len(), 0.0, false),
            None
        );
        assert_eq!(
            records_wanted(marks, 10, 0.0, false),
            None,
            "fewer bytes than hashes"
        );
    }

    /// A list an older phototag stored (format 2) counts as missing, is not read (answers
    /// stay right), and the next refresh rebuilds it in format 3.
    #[test]
    fn a_list_of_an_older_format_is_rebuilt() {
        let Some(db) = test_server::database("pg_a_list_of_an_older_format_is_rebuilt") else {
            return;
        };
        let mut cat = fixtures::random(PgTarget::new(&db.url));
        cat.refresh_class_lists(None).unwrap();
        assert_eq!(cat.missing_class_lists().unwrap(), 0);
        let mut c = db.client();
        let older = c
            .execute(
                "UPDATE class_lists SET marks = overlay(marks PLACING '\\x02'::bytea FROM 1 FOR 1)
                 WHERE class_index IN (1, 2, 3)",
                &[],
            )
            .unwrap();
        assert_eq!(older, 3);
        assert_eq!(cat.missing_class_lists().unwrap(), 3);
        agrees(&cat);
        assert_eq!(cat.refresh_class_lists(None).unwrap().rebuilt, 3);
        assert_eq!(cat.missing_class_lists().unwrap(), 0);
        let formats: Vec<Vec<u8>> = c
            .query(
                "SELECT DISTINCT substring(marks FROM 1 FOR 1) FROM class_lists",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(formats, [vec![format::SHARED]]);
        agrees(&cat);
    }

    #[test]
    fn a_damaged_list_is_not_believed() {
        let Some(db) = test_server::database("pg_a_damaged_list_is_not_believed") else {
            return;
        };
        let mut cat = fixtures::random(PgTarget::new(&db.url));
        cat.refresh_class_lists(None).unwrap();
        let mut c = db.client();
        for (marks, records) in [
            (&[format::SHARED, 0xff][..], None),
            (&[9, 1, 2, 3, 4], None),
            (&[][..], None),
            (&[format::LOCAL, 0, 0, 0, 0], None),
            // Format 2, PostgreSQL's before format 3: another format.
            (&[2, 0, 0, 0, 0], Some(&[1u8, 2, 3][..])),
            // No marks and no records, and 3 bytes in records that do not parse.
            (
                &[format::SHARED, 0, 0, 0, 0, 0, 0, 0, 0],
                Some(&[1u8, 2, 3][..]),
            ),
            // One record: more hashes than bytes.
            (
                &[format::SHARED, 0, 0, 0, 0, 1, 0, 0, 0],
                Some(&[1u8, 2, 3][..]),
            ),
        ] {
            for class in [1, 2, 3, 4, 7] {
                c.execute(
                    "UPDATE class_lists SET marks = $2, records = COALESCE($3, records)
                     WHERE class_index = $1",
                    &[&class, &marks, &records],
                )
                .unwrap();
            }
            agrees(&cat);
        }
    }
}
