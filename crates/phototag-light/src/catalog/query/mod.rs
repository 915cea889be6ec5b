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
//! Layout: here the choice, ranking and tags; `top` the best-first merge; `indexed` the
//! index with lookups or a scan (the lists are `catalog::lists`).
//!
//! May not: write, or know about words and labels (it takes a [`Compiled`] query over
//! class indexes).

mod indexed;
mod top;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::Transaction;

use super::listing::Listing;
use super::lists::{Found, Keep};
use super::read::tags_of;
use super::rows::{get_u64, path_bytes, path_from, ser_hash, under_range, Hash, Hit, TagRow};
use super::{CatalogError, Sqlite};
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

impl SearchQuery {
    /// The search as a compiled request (one term over the classes, tags wanted).
    pub fn request(&self) -> Request {
        let query = Compiled::new(
            Node::Cond(0),
            vec![Condition {
                classes: ClassSet::from_indexes(self.classes.iter().copied()),
                min_prob: self.min_probability,
            }],
        );
        let mut r = Request::new(query);
        r.limit = self.limit;
        r.with_tags = true;
        r
    }
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

impl Sqlite {
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
        match self.locate(&tx, q, Strategy::Auto, Keep::Paths)? {
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
        let hits = match self.locate(&tx, q, strategy, Keep::Hashes)? {
            Located::Listed(l) => l.to_hits()?,
            Located::Hits(hits) => rank(q.limit, hits),
        };
        if q.with_tags {
            add_tags(&tx, q, hits)
        } else {
            Ok(hits)
        }
    }

    /// How many files [`Sqlite::list`] gives: counted on the class lists without keeping or
    /// ranking them when the lists answer and there is no limit.
    pub fn count(&self, q: &Request) -> Result<usize, CatalogError> {
        if q.limit.is_none() {
            let tx = self.snapshot()?;
            self.conn.pragma_update(None, "mmap_size", 1i64 << 32)?;
            let build_limit = Some(super::lists::BUILD_IN_SEARCH);
            if let Some(n) = super::lists::find(&tx, q, build_limit, Keep::Count, Found::count)? {
                return Ok(n);
            }
        }
        Ok(self.list(q)?.len())
    }

    /// The matching files, by the strategy: ranked and cut to the limit when listed (with
    /// what `keep` says), in no order otherwise.
    fn locate(
        &self,
        tx: &Transaction<'_>,
        q: &Request,
        strategy: Strategy,
        keep: Keep,
    ) -> Result<Located, CatalogError> {
        // Index pages are read in place rather than copied through the page cache.
        self.conn.pragma_update(None, "mmap_size", 1i64 << 32)?;
        let started = std::time::Instant::now();
        if let (Some(limit), Strategy::Auto) = (q.limit, strategy) {
            if limit <= top::STREAM_MAX && !q.query.matches_untagged() {
                if let Some(hits) = top::top_files(tx, q, limit)? {
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
            if let Some(listing) = super::lists::find(tx, q, build_limit, keep, Found::finish)? {
                tracing::debug!(
                    files = listing.len(),
                    "search: files listed in {:.1} ms",
                    started.elapsed().as_secs_f64() * 1e3
                );
                return Ok(Located::Listed(listing));
            }
        }
        let m = indexed::matches(tx, &q.query)?;
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
            _ => wanted.saturating_mul(indexed::LOOKUP_VS_SCAN) > files,
        };
        let hits = if scan {
            indexed::scan_files(tx, q, &m)?
        } else {
            indexed::look_up_files(tx, q, &m)?
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

/// The ranks of the tags that satisfy a term that is not negated, best first.
pub(super) fn matched_ranks(query: &Compiled, tags: &[TagRow]) -> Vec<u32> {
    let mut matched: Vec<&TagRow> = tags
        .iter()
        .filter(|t| query.is_matching_tag(t.class_index, t.probability))
        .collect();
    matched.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    matched.iter().map(|t| t.rank).collect()
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
                    let ranks = matched_ranks(&q.query, &tags);
                    v.insert((tags, ranks))
                }
            };
            h.tags = tags.clone();
            h.matched = ranks.clone();
        }
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::{self, three_images as catalog};
    use crate::catalog::Catalog;

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
        on_each("ranked_by_score_then_path_with_filters_and_limit", |cat| {
            for strategy in ALL {
                ranked_by(cat, strategy);
            }
        });
    }

    /// Runs `f` on the three-image catalog in each backend (they must agree).
    fn on_each(test: &str, f: impl Fn(&Catalog)) {
        for place in fixtures::places(test) {
            f(&catalog(&place.location));
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
    fn a_class_list_query_brings_tags() {
        on_each("a_class_list_query_brings_tags", |cat| {
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
        });
    }

    #[test]
    fn a_negation_alone_reads_every_image() {
        on_each("a_negation_alone_reads_every_image", |cat| {
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
        });
    }

    #[test]
    fn duplicates_are_grouped() {
        on_each("duplicates_are_grouped", |cat| {
            let g = cat.duplicates(None).unwrap();
            assert_eq!(g.len(), 1);
            assert_eq!(
                g[0].paths,
                [PathBuf::from("/p/x/a1.jpg"), "/p/y/a2.jpg".into()]
            );
            assert_eq!(g[0].size, 10);
            assert!(cat.duplicates(Some(Path::new("/p/x"))).unwrap().is_empty());
            assert_eq!(cat.duplicates(Some(Path::new("/p"))).unwrap(), g);
        });
    }

    /// Random tags with many ties: every strategy gives the first `limit` results of the
    /// full, unlimited search (the streaming top-N included).
    #[test]
    fn every_strategy_ranks_alike() {
        let places = fixtures::places("every_strategy_ranks_alike");
        let cats: Vec<Catalog> = places
            .iter()
            .map(|p| fixtures::random(&p.location))
            .collect();
        // SQLite's plain scan is the reference; every strategy of every backend agrees.
        let reference = &cats[0];
        for query in fixtures::queries() {
            for (under, mtime) in fixtures::filters() {
                let mut sq = Request::new(query.clone());
                sq.under = under;
                sq.mtime_ns = mtime;
                let all = reference.search_using(&sq, Strategy::Scan).unwrap();
                assert!(!all.is_empty());
                for (cat, place) in cats.iter().zip(&places) {
                    let name = place.name();
                    for strategy in ALL {
                        let got = cat.search_using(&sq, strategy).unwrap();
                        assert_eq!(all, got, "{name} {query:?} {strategy:?}");
                    }
                    assert_eq!(cat.list(&sq).unwrap(), Listing::from_hits(&all), "{name}");
                    assert_eq!(cat.count(&sq).unwrap(), all.len(), "{name}");
                }
                for limit in [1, 2, 5, 17, 1000] {
                    sq.limit = Some(limit);
                    let want = &all[..limit.min(all.len())];
                    for (cat, place) in cats.iter().zip(&places) {
                        let name = place.name();
                        for strategy in ALL {
                            let got = cat.search_using(&sq, strategy).unwrap();
                            assert_eq!(got, want, "{name} {query:?} limit {limit} {strategy:?}");
                        }
                        assert_eq!(cat.list(&sq).unwrap(), Listing::from_hits(want), "{name}");
                        assert_eq!(cat.count(&sq).unwrap(), want.len(), "{name}");
                    }
                }
            }
        }
    }

    fn plan(cat: &Catalog, sql: &str, params: impl rusqlite::Params) -> String {
        let mut stmt = cat
            .sqlite()
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
        let cat = catalog(dir.path().join("c.db"));
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
