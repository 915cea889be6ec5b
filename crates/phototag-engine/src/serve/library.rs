//! The library and visual memory views: `GET /api/library` (every photo, newest first, a
//! page at a time), `GET /api/similar/{hash}` ("more like this", from the stored
//! embeddings) and `GET /api/dupes` (groups of exact and near copies). Each reads a
//! per-request read-only catalog off the runtime, like the other views.
//!
//! May not: turn anything in a request into a path (hashes are parsed; a page cursor is a
//! position in the catalog's order, compared, never opened).

use std::collections::HashSet;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{rejected, ApiError};
use super::views::{links, merge, with_catalog};
use super::AppState;
use phototag_light::catalog::{hex, parse_hash, Catalog, Hash};
use phototag_light::output::tags_json;
use phototag_light::similar::dupes::{near_duplicates, round4};
use phototag_light::similar::{most_similar, Options, Query as Similar};

/// Photos per library page when the request names no limit, and the most it may ask for.
const PAGE: usize = 60;
const MAX_PAGE: usize = 500;
/// "More like this" when the request names no limit, and the most.
const SIMILAR: usize = 24;
const MAX_SIMILAR: usize = 200;
/// Near-duplicate groups answered at most.
const MAX_GROUPS: usize = 500;

#[derive(Deserialize)]
pub(super) struct PageParams {
    /// Where the previous page ended (`next` of its answer).
    after: Option<String>,
    limit: Option<usize>,
}

/// A page position: the last file's mtime and path bytes, as `MTIME.HEXPATH`.
fn cursor(mtime_ns: i64, path: &std::path::Path) -> String {
    let hex_path: String = path
        .as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{mtime_ns}.{hex_path}")
}

fn parse_cursor(s: &str) -> Option<(i64, PathBuf)> {
    let (mtime, hex_path) = s.split_once('.')?;
    if hex_path.len() % 2 != 0 || !hex_path.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = (0..hex_path.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_path[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((
        mtime.parse().ok()?,
        PathBuf::from(std::ffi::OsString::from_vec(bytes)),
    ))
}

/// The best tag of an image, for a tile's label.
fn top_tag(c: &Catalog, hash: &Hash) -> Result<Value, ApiError> {
    let tags = c.tags(hash)?;
    Ok(tags_json(&tags[..tags.len().min(1)])
        .as_array()
        .and_then(|a| a.first().cloned())
        .unwrap_or(Value::Null))
}

/// `GET /api/library[?after=CURSOR][&limit=N]`: photos newest first (file mtime), one
/// entry per content within a page: `results` (`hash`, `path`, `mtime_ns`, `top`, links),
/// `next` (the cursor of the following page, null at the end) and `queued` (how many
/// contents wait to be classified: they are listed once they are).
pub(super) async fn library(
    State(state): State<Arc<AppState>>,
    p: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = p.map_err(rejected)?;
    let limit = p.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let after = match p.after.as_deref() {
        None | Some("") => None,
        Some(s) => Some(parse_cursor(s).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "`after` is not a page position")
        })?),
    };
    let v = with_catalog(&state, move |c, _| {
        let files = c.newest_files(after.as_ref().map(|(m, p)| (*m, p.as_path())), limit)?;
        let next = if files.len() == limit {
            files.last().map(|f| cursor(f.mtime_ns, &f.path))
        } else {
            None
        };
        let mut seen = HashSet::new();
        let mut results = Vec::new();
        for f in files {
            if !seen.insert(f.hash) {
                continue;
            }
            let h = hex(&f.hash);
            results.push(merge(
                json!({
                    "hash": h,
                    "path": f.path.to_string_lossy(),
                    "mtime_ns": f.mtime_ns,
                    "top": top_tag(c, &f.hash)?,
                }),
                links(&h),
            ));
        }
        // Photos recorded while classification waits are not listed until they are
        // classified; the page says how many wait.
        let queued = c.queued_count()?;
        Ok(json!({ "results": results, "next": next, "queued": queued }))
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
pub(super) struct SimilarParams {
    limit: Option<usize>,
}

/// `GET /api/similar/{hash}[?limit=N]`: the photos most like a catalogued one, best first:
/// `results` (`hash`, `path`, `score`, `top`, links); `note` says why there are none when
/// the photo has no embedding.
pub(super) async fn similar(
    State(state): State<Arc<AppState>>,
    UrlPath(hash): UrlPath<String>,
    p: Result<Query<SimilarParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = p.map_err(rejected)?;
    let limit = p.limit.unwrap_or(SIMILAR).clamp(1, MAX_SIMILAR);
    let h = parse_hash(&hash).ok_or_else(|| ApiError::not_found("this photo"))?;
    let v = with_catalog(&state, move |c, state| {
        if c.image(&h)?.is_none() {
            return Err(ApiError::not_found("this photo"));
        }
        let Some(stored) = c.embedding(&h)? else {
            return Ok(json!({
                "results": [],
                "note": "this photo has no embedding yet: `phototag retag --embeddings` adds it",
            }));
        };
        let q = Similar {
            model_id: stored.model_id,
            embedding: stored.embedding,
            exclude: Some(h),
        };
        let options = Options {
            limit,
            ..Default::default()
        };
        let found = most_similar(c, &state.settings.db, &q, &options)?;
        let mut results = Vec::new();
        for (score, hash) in found.best {
            let Some(f) = c.files_with(&hash)?.into_iter().next() else {
                continue;
            };
            let hx = hex(&hash);
            results.push(merge(
                json!({
                    "hash": hx,
                    "path": f.path.to_string_lossy(),
                    "score": round4(score),
                    "top": top_tag(c, &hash)?,
                }),
                links(&hx),
            ));
        }
        Ok(json!({ "results": results }))
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
pub(super) struct DupesParams {
    threshold: Option<f32>,
}

/// `GET /api/dupes[?threshold=T]`: groups of exact and near copies, as `dupes --near
/// --json` prints them, each member with its links; `threshold` (0-1) defaults to the
/// configuration's `similar.near_threshold`.
pub(super) async fn dupes(
    State(state): State<Arc<AppState>>,
    p: Result<Query<DupesParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = p.map_err(rejected)?;
    let threshold = p.threshold.unwrap_or(state.settings.near_threshold);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "threshold is a similarity between 0 and 1",
        ));
    }
    let version = catalog_version(&state.settings.db);
    if let Some(hit) = cached(&state, threshold, version) {
        return Ok(Json(hit));
    }
    let v = with_catalog(&state, move |c, _| {
        let report = near_duplicates(c, threshold, None)?;
        let total = report.groups.len();
        let groups: Vec<Value> = report
            .groups
            .iter()
            .take(MAX_GROUPS)
            .map(|g| {
                let mut v = g.to_json();
                if let Some(members) = v["members"].as_array_mut() {
                    for m in members {
                        let h = m["hash"].as_str().unwrap_or_default().to_string();
                        *m = merge(m.take(), links(&h));
                    }
                }
                v
            })
            .collect();
        Ok(json!({
            "threshold": round4(threshold),
            "count": total,
            "groups": groups,
            "without_embedding": report.counts.without(),
        }))
    })
    .await?;
    if let Some(version) = version {
        let mut slot = state.dupes.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(CachedDupes {
            threshold,
            version,
            answer: v.clone(),
        });
    }
    Ok(Json(v))
}

/// A `/api/dupes` answer kept until the catalog changes: grouping a large library takes
/// seconds, and the page asks again each time the view opens.
#[derive(Debug)]
pub(super) struct CachedDupes {
    threshold: f32,
    version: CatalogVersion,
    answer: Value,
}

/// What changes whenever anything is written to the catalog: the size and modification
/// time of its file and of its write-ahead log (every commit appends to the log, a
/// checkpoint writes the file). None when they cannot be read, and for a PostgreSQL
/// catalog, which other hosts write without a trace here (nothing is cached then).
type CatalogVersion = [(u64, std::time::SystemTime); 2];

fn catalog_version(db: &phototag_light::catalog::Location) -> Option<CatalogVersion> {
    let phototag_light::catalog::Location::Sqlite(db) = db else {
        return None;
    };
    let of = |p: &Path| -> Option<(u64, std::time::SystemTime)> {
        match std::fs::metadata(p) {
            Ok(m) => Some((m.len(), m.modified().ok()?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some((0, std::time::SystemTime::UNIX_EPOCH))
            }
            Err(_) => None,
        }
    };
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    Some([of(db)?, of(Path::new(&wal))?])
}

fn cached(state: &AppState, threshold: f32, version: Option<CatalogVersion>) -> Option<Value> {
    let version = version?;
    let slot = state.dupes.lock().unwrap_or_else(|e| e.into_inner());
    slot.as_ref()
        .filter(|c| c.threshold == threshold && c.version == version)
        .map(|c| c.answer.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_positions_round_trip_and_refuse_garbage() {
        let p = PathBuf::from(std::ffi::OsString::from_vec(b"/p/caf\xe9 1.jpg".to_vec()));
        let c = cursor(-5, &p);
        assert_eq!(parse_cursor(&c), Some((-5, p)));
        for bad in ["", "12", "x.00", "1.0", "1.zz", "1.2f/"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
