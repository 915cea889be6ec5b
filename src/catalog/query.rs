//! Search: which files have an image tagged with any of some classes, best first. The
//! query is built in one place ([`search_sql`]) so that a fuller language (AND/OR/NOT,
//! the WordNet hierarchy) can replace it without touching the rest of the catalog; the
//! mapping from words to class indexes belongs to the caller.
//!
//! May not: write, or know about labels or words (it takes class indexes).

use std::collections::HashMap;
use std::path::PathBuf;

use rusqlite::types::Value;

use super::read::tags_of;
use super::rows::{path_from, ser_hash, ser_path, Hash, TagRow};
use super::{Catalog, CatalogError};

/// What to look for: files whose image has a tag with a class in `classes` (any of them)
/// and probability at least `min_probability`.
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
    /// The best probability among the image's tags that matched.
    pub score: f32,
    /// All the image's tags, rank 1 first.
    pub tags: Vec<TagRow>,
}

/// The SQL and parameters of a search: one row (path, hash, score) per file, ordered by
/// score (descending) then path bytes. `None` when nothing can match.
pub(super) fn search_sql(q: &SearchQuery) -> Option<(String, Vec<Value>)> {
    let mut classes: Vec<usize> = q.classes.clone();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() || q.limit == Some(0) {
        return None;
    }
    let mut params: Vec<Value> = classes.iter().map(|&c| Value::Integer(c as i64)).collect();
    let placeholders = (1..=classes.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    params.push(Value::Real(f64::from(q.min_probability)));
    let min = params.len();
    // The inner query walks tags_by_class (class_index, probability) and never the files.
    let mut sql = format!(
        "SELECT f.path, f.hash, m.score
         FROM (SELECT hash, max(probability) AS score FROM tags
               WHERE class_index IN ({placeholders}) AND probability >= ?{min}
               GROUP BY hash) AS m
         JOIN files f ON f.hash = m.hash
         ORDER BY m.score DESC, f.path"
    );
    if let Some(limit) = q.limit {
        params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" LIMIT ?{}", params.len()));
    }
    Some((sql, params))
}

impl Catalog {
    /// Files matching `q`, best score first, then by path; each with all its image's tags.
    /// Runs in one read snapshot: a hit never lacks tags written in the same transaction.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>, CatalogError> {
        let Some((sql, params)) = search_sql(q) else {
            return Ok(Vec::new());
        };
        let tx = self.snapshot()?;
        let mut stmt = tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
            Ok((
                path_from(r.get(0)?),
                r.get::<_, Hash>(1)?,
                r.get::<_, f64>(2)? as f32,
            ))
        })?;
        let mut tags: HashMap<Hash, Vec<TagRow>> = HashMap::new();
        let mut hits = Vec::new();
        for row in rows {
            let (path, hash, score) = row?;
            let image_tags = match tags.get(&hash) {
                Some(t) => t.clone(),
                None => {
                    let t = tags_of(&tx, &hash)?;
                    tags.insert(hash, t.clone());
                    t
                }
            };
            hits.push(Hit {
                path,
                hash,
                score,
                tags: image_tags,
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_match_builds_no_query() {
        assert!(search_sql(&SearchQuery::default()).is_none());
        let q = SearchQuery {
            classes: vec![1],
            limit: Some(0),
            ..Default::default()
        };
        assert!(search_sql(&q).is_none());
    }

    #[test]
    fn classes_are_deduplicated_and_bound() {
        let q = SearchQuery {
            classes: vec![207, 151, 207],
            min_probability: 0.25,
            limit: Some(5),
        };
        let (sql, params) = search_sql(&q).unwrap();
        assert!(sql.contains("IN (?1, ?2)"), "{sql}");
        assert!(sql.contains(">= ?3"), "{sql}");
        assert!(sql.ends_with("LIMIT ?4"), "{sql}");
        assert_eq!(
            params,
            vec![
                Value::Integer(151),
                Value::Integer(207),
                Value::Real(0.25),
                Value::Integer(5)
            ]
        );
    }

    #[test]
    fn search_uses_the_class_and_hash_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("c.db")).unwrap();
        let q = SearchQuery {
            classes: vec![151, 207],
            min_probability: 0.1,
            limit: None,
        };
        let (sql, params) = search_sql(&q).unwrap();
        let mut stmt = cat
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("USING COVERING INDEX tags_by_class"),
            "{plan}"
        );
        assert!(plan.contains("files_by_hash"), "{plan}");
    }
}
