//! Search and duplicates on PostgreSQL: one statement per search, built from the compiled
//! query, that the server answers from its indexes (see `migrations/pg/0003_*.sql`):
//!
//! 1. `tags_by_class`, one index range per class the query mentions (class, at least the
//!    lowest probability any term asks of it), read in place (index-only);
//! 2. per image, for each term, the best probability satisfying it
//!    (`max(probability) FILTER (WHERE ...)`): the `best` slice [`Compiled::eval_best`]
//!    takes;
//! 3. the query's tree as SQL over those: `b0 IS NOT NULL` for a term, `NOT`, `AND`, `OR`;
//!    the score as `eval_best` has it (a term's best, `LEAST` for `AND`, `GREATEST` of the
//!    matching parts for `OR`, nothing for `NOT`, 0 when nothing scored);
//! 4. the files of the matches (`files_by_hash`, covering), filtered by folder and date,
//!    ordered by score, then path bytes, and cut to the limit.
//!
//! A page (`--limit N`, the web's pages) is found first from the top of the index instead
//! ([`page_sql`]): the `k`-th best probability `t` among the top `k` of each class a term
//! names positively, the images with such a tag at `t` or more, their exact score from all
//! their tags, and their files at `t` or more. A score is always some positive term's best
//! probability, so every file scoring `t` or more is among them: when they are at least
//! `N`, they are the page (ties included); otherwise `k` grows, and after that the whole
//! statement above answers. `dog --limit 20` reads a few thousand index rows, not 354,000.
//!
//! A full listing or a count (no limit, or a page the top of the index could not prove)
//! is read from the per-class search lists instead when they are true (`lists.rs`): one
//! row per class of the query rather than every tag and file of the matches; the statement
//! above answers what lists cannot (a lone `NOT`, a taught tag, too many stale lists).
//!
//! A query that matches images without any of its classes (`NOT cat`) starts from every
//! image instead. The order and the scores are those of the SQLite strategies (tested on
//! the same data). Another host's file is shown as `host:path`; `--under` means this
//! host's folders.
//!
//! May not: write, or know about words and labels.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use postgres::types::ToSql;
use postgres::GenericClient;

use super::{hash_of, PgCatalog};
use crate::catalog::listing::{Entry, Listing};
use crate::catalog::lists::{Found, Keep, BUILD_IN_SEARCH};
use crate::catalog::query::{matched_ranks, DupeGroup};
use crate::catalog::rows::{path_bytes, path_from, under_range, Hash, Hit, TagRow};
use crate::catalog::CatalogError;
use crate::search::{Compiled, Node, Request};

/// A statement and its parameters.
struct Sql {
    text: String,
    params: Vec<Box<dyn ToSql + Sync>>,
}

impl Sql {
    /// Adds a parameter; returns its placeholder.
    fn param(&mut self, v: impl ToSql + Sync + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as _).collect()
    }
}

/// The match (`true` when an image matches) and score (`NULL` when nothing scored) of a
/// node, over the per-term columns `b0`, `b1`...
fn node_sql(n: &Node) -> (String, String) {
    match n {
        Node::Cond(i) => (format!("b{i} IS NOT NULL"), format!("b{i}")),
        Node::Not(inner) => {
            let (m, _) = node_sql(inner);
            (format!("NOT ({m})"), "NULL::real".into())
        }
        Node::And(items) => {
            let parts: Vec<(String, String)> = items.iter().map(node_sql).collect();
            if parts.is_empty() {
                return ("true".into(), "NULL::real".into());
            }
            let m: Vec<String> = parts.iter().map(|(m, _)| format!("({m})")).collect();
            let s: Vec<String> = parts.iter().map(|(_, s)| s.clone()).collect();
            (m.join(" AND "), format!("LEAST({})", s.join(", ")))
        }
        Node::Or(items) => {
            let parts: Vec<(String, String)> = items.iter().map(node_sql).collect();
            if parts.is_empty() {
                return ("false".into(), "NULL::real".into());
            }
            let m: Vec<String> = parts.iter().map(|(m, _)| format!("({m})")).collect();
            let s: Vec<String> = parts
                .iter()
                .map(|(m, s)| format!("CASE WHEN {m} THEN {s} END"))
                .collect();
            (m.join(" OR "), format!("GREATEST({})", s.join(", ")))
        }
    }
}

/// Per image (tags `t` grouped by hash), each term's best probability: `, ... AS b0, ...`.
fn bests_sql(sql: &mut Sql, query: &Compiled) -> String {
    let mut bests = String::new();
    for (i, c) in query.conditions.iter().enumerate() {
        let ids: Vec<i32> = c.classes.iter().map(|c| c as i32).collect();
        let p_ids = sql.param(ids);
        let p_min = sql.param(c.min_prob);
        let _ = write!(
            bests,
            ", max(t.probability) FILTER (WHERE t.class_index = ANY ({p_ids}) AND t.probability >= {p_min}) AS b{i}"
        );
    }
    bests
}

/// The statement of a search: `shown` path, hash, score (and nothing else), ranked.
fn search_sql(host: &str, q: &Request) -> Sql {
    let query: &Compiled = &q.query;
    let mut sql = Sql {
        text: String::new(),
        params: Vec::new(),
    };
    let classes = query.classes();
    let class_ids: Vec<i32> = classes.iter().map(|(c, _)| *c as i32).collect();
    let mins: Vec<f32> = classes.iter().map(|(_, m)| *m).collect();
    let bests = bests_sql(&mut sql, query);
    let p_classes = sql.param(class_ids);
    let p_mins = sql.param(mins);
    // One index range per class (LATERAL: the planner cannot turn it into a scan of tags).
    let per_image = format!(
        "SELECT t.hash{bests}
         FROM unnest({p_classes}::integer[], {p_mins}::real[]) AS q (class, min)
         CROSS JOIN LATERAL (
             SELECT hash, class_index, probability FROM tags
             WHERE class_index = q.class AND probability >= q.min
         ) t
         GROUP BY t.hash"
    );
    let (matches, score) = node_sql(&query.root);
    let candidates = if query.matches_untagged() {
        // Every image is a candidate: those without a tag the index found have no bests.
        let nulls: String = (0..query.conditions.len())
            .map(|i| format!(", b.b{i}"))
            .collect();
        format!("SELECT i.hash{nulls} FROM images i LEFT JOIN ({per_image}) b ON b.hash = i.hash")
    } else {
        per_image
    };
    let p_host = sql.param(host.to_string());
    let filter = file_filters(&mut sql, q, &p_host, "WHERE");
    let limit = match q.limit {
        Some(n) => format!("LIMIT {}", sql.param(n.min(i64::MAX as usize) as i64)),
        None => String::new(),
    };
    sql.text = format!(
        "WITH m AS MATERIALIZED (
             SELECT hash, COALESCE({score}, 0)::real AS score
             FROM ({candidates}) c WHERE {matches}
         )
         SELECT CASE WHEN f.host = {p_host} THEN f.path
                     ELSE convert_to(f.host || ':', 'UTF8') || f.path END AS shown,
                m.hash, m.score
         FROM m JOIN files f ON f.hash = m.hash
         {filter}
         ORDER BY m.score DESC, shown
         {limit}"
    );
    sql
}

/// The statement of a page of `limit` files found from the top `k` rows of each positive
/// class (see the module's documentation): `shown` path, hash, score, ranked, every file
/// scoring at least the threshold, at most `limit`. Fewer than `limit` rows mean the
/// threshold was too high, not that there are no more matches. `None` when no term is
/// positive (nothing scores).
fn page_sql(host: &str, q: &Request, limit: usize, k: usize) -> Option<Sql> {
    let query: &Compiled = &q.query;
    let positive = query.positive_classes();
    if positive.is_empty() {
        return None;
    }
    let mut sql = Sql {
        text: String::new(),
        params: Vec::new(),
    };
    let bests = bests_sql(&mut sql, query);
    let p_classes = sql.param(
        positive
            .iter()
            .map(|(c, _)| *c as i32)
            .collect::<Vec<i32>>(),
    );
    let p_mins = sql.param(positive.iter().map(|(_, m)| *m).collect::<Vec<f32>>());
    let p_k = sql.param(k.min(i64::MAX as usize) as i64);
    let (matches, score) = node_sql(&query.root);
    let p_host = sql.param(host.to_string());
    let filter = file_filters(&mut sql, q, &p_host, "AND");
    let p_limit = sql.param(limit.min(i64::MAX as usize) as i64);
    sql.text = format!(
        "WITH th AS MATERIALIZED (
             SELECT t.p FROM unnest({p_classes}::integer[], {p_mins}::real[]) AS q (class, min)
             CROSS JOIN LATERAL (
                 SELECT probability AS p FROM tags
                 WHERE class_index = q.class AND probability >= q.min
                 ORDER BY probability DESC LIMIT {p_k}
             ) t
             ORDER BY t.p DESC OFFSET {p_k} - 1 LIMIT 1
         ),
         cand AS MATERIALIZED (
             SELECT DISTINCT t.hash FROM th
             CROSS JOIN unnest({p_classes}::integer[], {p_mins}::real[]) AS q (class, min)
             CROSS JOIN LATERAL (
                 SELECT hash FROM tags
                 WHERE class_index = q.class AND probability >= GREATEST(q.min, th.p)
             ) t
             WHERE th.p > 0
         ),
         m AS MATERIALIZED (
             SELECT hash, COALESCE({score}, 0)::real AS score
             FROM (SELECT t.hash{bests} FROM tags t
                   WHERE t.hash IN (SELECT hash FROM cand) GROUP BY t.hash) c
             WHERE {matches}
         )
         SELECT CASE WHEN f.host = {p_host} THEN f.path
                     ELSE convert_to(f.host || ':', 'UTF8') || f.path END AS shown,
                m.hash, m.score
         FROM m CROSS JOIN LATERAL (
             -- Per image through files_by_hash (OFFSET 0 keeps the subquery from being
             -- flattened): misled by the estimates of the CTEs, the planner would
             -- otherwise hash all the files (0.7 s on 1,000,000 instead of 7 ms).
             SELECT host, path, mtime_ns FROM files WHERE hash = m.hash OFFSET 0
         ) f
         WHERE m.score >= (SELECT p FROM th) {filter}
         ORDER BY m.score DESC, shown
         LIMIT {p_limit}"
    );
    Some(sql)
}

/// The folder and date conditions on files `f` of a request, joined by `AND`, after
/// `keyword` (`WHERE`, or `AND` after other conditions); empty when there are none.
fn file_filters(sql: &mut Sql, q: &Request, p_host: &str, keyword: &str) -> String {
    let mut filters: Vec<String> = Vec::new();
    if !q.under.is_empty() {
        let mut ranges = Vec::new();
        for dir in &q.under {
            let (lo, hi) = under_range(dir);
            let lo = sql.param(lo);
            let hi = sql.param(hi);
            ranges.push(format!("(f.path >= {lo} AND f.path < {hi})"));
        }
        filters.push(format!("f.host = {p_host} AND ({})", ranges.join(" OR ")));
    }
    if let Some(r) = &q.mtime_ns {
        let (a, b) = (sql.param(r.start), sql.param(r.end));
        filters.push(format!("f.mtime_ns >= {a} AND f.mtime_ns < {b}"));
    }
    if filters.is_empty() {
        String::new()
    } else {
        format!("{keyword} {}", filters.join(" AND "))
    }
}

/// The top of the index read for a page of `limit`: `limit` rows per class, then 16 times
/// as many, then the whole search.
const PAGE_DEPTHS: [usize; 2] = [1, 16];

/// How a search is answered (tests compare them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::catalog) enum Way {
    /// A page from the top of the index, else the class lists (a few missing ones built
    /// in memory), else the statement.
    Auto,
    /// The class lists, every missing one built in memory (the statement for what lists
    /// cannot answer).
    Lists,
    /// The statements alone: a page from the top of the index, else the whole statement.
    Statement,
}

impl PgCatalog {
    /// Files matching a compiled query, best score first, then by path bytes, in one
    /// snapshot (see the module's documentation).
    pub fn find(&self, q: &Request) -> Result<Vec<Hit>, CatalogError> {
        self.find_using(q, Way::Auto)
    }

    /// [`PgCatalog::find`] answered one way.
    pub(in crate::catalog) fn find_using(
        &self,
        q: &Request,
        way: Way,
    ) -> Result<Vec<Hit>, CatalogError> {
        if q.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut c = self.conn()?;
        let mut tx = self.snapshot(&mut c)?;
        let mut hits = Vec::new();
        let listed = self.each_hit(&mut tx, q, way, Keep::Hashes, |path, hash, score| {
            hits.push(Hit {
                path: path_from(path.to_vec()),
                hash,
                score,
                matched: Vec::new(),
                tags: Vec::new(),
            });
        })?;
        if let Some(listing) = listed {
            hits = listing.to_hits()?;
        }
        if q.with_tags {
            self.add_tags(&mut tx, q, &mut hits)?;
        }
        tx.commit().map_err(|e| self.error(e))?;
        Ok(hits)
    }

    /// [`PgCatalog::find`] without tags, in compact form.
    pub fn list(&self, q: &Request) -> Result<Listing, CatalogError> {
        if q.limit == Some(0) {
            return Ok(Listing::default());
        }
        let mut c = self.conn()?;
        let mut tx = self.snapshot(&mut c)?;
        let (mut paths, mut files, mut hashes) = (Vec::new(), Vec::new(), Vec::<Hash>::new());
        let listed = self.each_hit(&mut tx, q, Way::Auto, Keep::Paths, |path, hash, score| {
            if hashes.last() != Some(&hash) {
                hashes.push(hash);
            }
            files.push(Entry {
                score,
                start: paths.len(),
                len: path.len() as u32,
                image: hashes.len() as u32 - 1,
            });
            paths.extend_from_slice(path);
        })?;
        tx.commit().map_err(|e| self.error(e))?;
        if let Some(listing) = listed {
            return Ok(listing);
        }
        let order = (0..files.len() as u32).collect();
        Ok(Listing::from_parts(paths, files, order, hashes))
    }

    /// How many files [`PgCatalog::list`] gives: counted on the class lists without keeping
    /// or ranking them when the lists answer and there is no limit.
    pub fn count(&self, q: &Request) -> Result<usize, CatalogError> {
        if q.limit.is_none() {
            let mut c = self.conn()?;
            let mut tx = self.snapshot(&mut c)?;
            tx.batch_execute("SET LOCAL jit = off")
                .map_err(|e| self.error(e))?;
            let build_limit = Some(BUILD_IN_SEARCH);
            let counted =
                self.list_from_lists(&mut tx, q, build_limit, Keep::Count, Found::count)?;
            tx.commit().map_err(|e| self.error(e))?;
            if let Some(n) = counted {
                return Ok(n);
            }
        }
        Ok(self.list(q)?.len())
    }

    /// Answers the search `way`: a listing (keeping what `keep` says) when the class lists
    /// answered it, else `None` after handing each file to `f` in rank order.
    fn each_hit(
        &self,
        c: &mut impl GenericClient,
        q: &Request,
        way: Way,
        keep: Keep,
        mut f: impl FnMut(&[u8], Hash, f32),
    ) -> Result<Option<Listing>, CatalogError> {
        if q.query.classes().is_empty() && !q.query.matches_untagged() {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        // These statements read a few thousand index rows for a page and at most a few
        // hundred thousand for a listing: compiling them with LLVM (the page's estimated
        // cost passes `jit_above_cost`) took 0.4 s of a 0.41 s page on 1,000,000 images.
        c.batch_execute("SET LOCAL jit = off")
            .map_err(|e| self.error(e))?;
        if let Some(limit) = q.limit.filter(|_| way != Way::Lists) {
            for depth in PAGE_DEPTHS {
                let Some(sql) = page_sql(&self.host, q, limit, limit.saturating_mul(depth)) else {
                    break;
                };
                let rows = c
                    .query(sql.text.as_str(), &sql.refs())
                    .map_err(|e| self.error(e))?;
                if rows.len() >= limit {
                    for r in &rows {
                        f(r.get::<_, &[u8]>(0), hash_of(r, 1)?, r.get(2));
                    }
                    tracing::debug!(
                        files = rows.len(),
                        depth,
                        "search: a page from the top of the index in {:.1} ms",
                        started.elapsed().as_secs_f64() * 1e3
                    );
                    return Ok(None);
                }
            }
        }
        if way != Way::Statement {
            let build_limit = (way == Way::Auto).then_some(BUILD_IN_SEARCH);
            if let Some(listing) = self.list_from_lists(c, q, build_limit, keep, Found::finish)? {
                return Ok(Some(listing));
            }
        }
        let sql = search_sql(&self.host, q);
        let mut rows = c
            .query_raw(sql.text.as_str(), sql.refs())
            .map_err(|e| self.error(e))?;
        let mut n = 0usize;
        while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)
            .map_err(|e| self.error(e))?
        {
            f(r.get::<_, &[u8]>(0), hash_of(&r, 1)?, r.get(2));
            n += 1;
        }
        tracing::debug!(
            files = n,
            "search: answered by the server in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(None)
    }

    /// Each hit's tags, and the ranks of those that matched (one statement for all).
    fn add_tags(
        &self,
        c: &mut impl GenericClient,
        q: &Request,
        hits: &mut [Hit],
    ) -> Result<(), CatalogError> {
        let mut wanted: Vec<&[u8]> = hits.iter().map(|h| &h.hash[..]).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let rows = c
            .query(
                "SELECT hash, rank, class_index, label, probability FROM tags
                 WHERE hash = ANY ($1) ORDER BY hash, rank",
                &[&wanted],
            )
            .map_err(|e| self.error(e))?;
        let mut by_hash: HashMap<Hash, (Vec<TagRow>, Vec<u32>)> = HashMap::new();
        for r in &rows {
            by_hash.entry(hash_of(r, 0)?).or_default().0.push(TagRow {
                rank: r.get::<_, i32>(1).max(0) as u32,
                class_index: r.get::<_, i32>(2).max(0) as usize,
                label: r.get(3),
                probability: r.get(4),
            });
        }
        for (tags, ranks) in by_hash.values_mut() {
            *ranks = matched_ranks(&q.query, tags);
        }
        for h in hits {
            if let Some((tags, ranks)) = by_hash.get(&h.hash) {
                h.tags = tags.clone();
                h.matched = ranks.clone();
            }
        }
        Ok(())
    }

    /// Groups of at least two paths with the same content (only this host's paths strictly
    /// under `under` when given; every host's otherwise), ordered by their first path.
    pub fn duplicates(&self, under: Option<&Path>) -> Result<Vec<DupeGroup>, CatalogError> {
        let mut c = self.conn()?;
        let mut tx = self.snapshot(&mut c)?;
        let range = under.map(under_range);
        let (filter, params): (&str, Vec<&(dyn ToSql + Sync)>) = match &range {
            None => ("true", vec![&self.host]),
            Some((lo, hi)) => (
                "host = $1 AND path >= $2 AND path < $3",
                vec![&self.host, lo, hi],
            ),
        };
        let sql = format!(
            "SELECT hash, size, CASE WHEN host = $1 THEN path
                                     ELSE convert_to(host || ':', 'UTF8') || path END AS shown
             FROM files
             WHERE {filter} AND hash IN (SELECT hash FROM files WHERE {filter}
                                         GROUP BY hash HAVING count(*) > 1)
             ORDER BY hash, shown"
        );
        let rows = tx.query(sql.as_str(), &params).map_err(|e| self.error(e))?;
        tx.commit().map_err(|e| self.error(e))?;
        let mut groups: Vec<DupeGroup> = Vec::new();
        for r in &rows {
            let hash = hash_of(r, 0)?;
            let size = u64::try_from(r.get::<_, i64>(1)).unwrap_or(0);
            let path = path_from(r.get(2));
            match groups.last_mut() {
                Some(g) if g.hash == hash => {
                    g.paths.push(path);
                    g.size = size;
                }
                _ => groups.push(DupeGroup {
                    hash,
                    size,
                    paths: vec![path],
                }),
            }
        }
        groups.sort_by(|a, b| path_bytes(&a.paths[0]).cmp(path_bytes(&b.paths[0])));
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{ClassSet, Condition};

    #[test]
    fn the_tree_becomes_sql() {
        let cond = |c: usize| Condition {
            classes: ClassSet::from_indexes([c]),
            min_prob: 0.0,
        };
        let q = Compiled::new(
            Node::Or(vec![
                Node::And(vec![Node::Cond(0), Node::Not(Box::new(Node::Cond(1)))]),
                Node::Cond(2),
            ]),
            vec![cond(1), cond(2), cond(3)],
        );
        let (m, s) = node_sql(&q.root);
        assert_eq!(
            m,
            "((b0 IS NOT NULL) AND (NOT (b1 IS NOT NULL))) OR (b2 IS NOT NULL)"
        );
        assert_eq!(
            s,
            "GREATEST(CASE WHEN (b0 IS NOT NULL) AND (NOT (b1 IS NOT NULL)) THEN LEAST(b0, NULL::real) END, CASE WHEN b2 IS NOT NULL THEN b2 END)"
        );
    }
}
