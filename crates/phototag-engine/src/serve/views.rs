//! The catalog views: search, the tag cloud, a photo's record, its thumbnails and its
//! original. Every one reads a per-request read-only catalog connection on the bounded
//! blocking pool, never on the runtime's threads; so does compiling a search (its
//! suggestions cost an edit distance per name).
//!
//! May not: turn anything in a request into a path (hashes are parsed, sizes are chosen
//! from the configuration; paths come from the catalog through `files`).

use phototag_light::output;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{rejected, ApiError};
use super::files;
use super::{thumbs, AppState};
use phototag_light::catalog::{hex, parse_hash, Catalog};
use phototag_light::search::{Query as SearchQuery, Request};

/// Search results returned when the request names no limit, and the most it may ask for.
const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 5000;
/// Labels in the tag cloud when the request names no limit, and the most it may ask for.
const DEFAULT_LABELS: usize = 40;
const MAX_LABELS: usize = 1000;

#[derive(Deserialize)]
pub(super) struct SearchParams {
    q: Option<String>,
    limit: Option<usize>,
    /// In percent, for every term (as `--min-prob`).
    min_prob: Option<f32>,
}

/// Thumbnail, preview and original addresses of a content.
pub(super) fn links(hash: &str) -> Value {
    json!({
        "thumb": format!("/thumb/{hash}"),
        "preview": format!("/thumb/{hash}?size=large"),
        "photo": format!("/photo/{hash}"),
        "info": format!("/api/photos/{hash}"),
    })
}

pub(super) fn merge(mut v: Value, extra: Value) -> Value {
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// `GET /api/search?q=QUERY[&limit=N][&min_prob=P]`: `phototag search --json`'s objects
/// (path, hash, score, matched, tags) with `thumb`, `preview`, `photo` and `info` links.
pub(super) async fn search(
    State(state): State<Arc<AppState>>,
    p: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = p.map_err(rejected)?;
    let text = p.q.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no query: add ?q=WORDS",
        ));
    }
    let min_prob = p.min_prob.unwrap_or(0.0);
    if !(0.0..=100.0).contains(&min_prob) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "min_prob is a percentage between 0 and 100",
        ));
    }
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let q = text.clone();
    let st = Arc::clone(&state);
    let (unknown, results) = state
        .blocking
        .run(move || {
            // Bounded (length, terms, nesting, suggested terms) in `search`, and off the runtime.
            let query = SearchQuery::compile(&q, min_prob / 100.0)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            let unknown: Vec<Value> = query
                .unknown()
                .map(|t| json!({ "term": t.text, "suggestions": t.suggestions }))
                .collect();
            let compiled = query.compiled;
            let runnable = !compiled.classes().is_empty() || compiled.matches_untagged();
            let hits = if runnable {
                let catalog = Catalog::open_readonly(&st.settings.db)?;
                catalog.find(&Request {
                    query: compiled,
                    under: Vec::new(),
                    mtime_ns: None,
                    limit: Some(limit),
                    with_tags: true,
                })?
            } else {
                Vec::new()
            };
            let results: Vec<Value> = hits
                .iter()
                .map(|h| merge(output::hit_json(h), links(&hex(&h.hash))))
                .collect();
            Ok((unknown, results))
        })
        .await?;
    Ok(Json(json!({
        "query": text,
        "count": results.len(),
        "limit": limit,
        "unknown": unknown,
        "results": results,
    })))
}

#[derive(Deserialize)]
pub(super) struct LabelParams {
    limit: Option<usize>,
}

/// `GET /api/labels[?limit=N]`: the most common first-ranked labels, for the tag cloud.
pub(super) async fn labels(
    State(state): State<Arc<AppState>>,
    p: Result<Query<LabelParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = p.map_err(rejected)?;
    let limit = p.limit.unwrap_or(DEFAULT_LABELS).min(MAX_LABELS);
    let labels = with_catalog(&state, move |c, _| Ok(c.top_labels(limit)?)).await?;
    let labels: Vec<Value> = labels
        .iter()
        .map(|l| json!({ "label": l.label, "index": l.class_index, "images": l.images }))
        .collect();
    Ok(Json(json!({ "labels": labels })))
}

/// `GET /api/photos/{hash}`: what the catalog holds about a content.
pub(super) async fn photo_info(
    State(state): State<Arc<AppState>>,
    UrlPath(hash): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let h = parse_hash(&hash).ok_or_else(|| ApiError::not_found("this photo"))?;
    let v = with_catalog(&state, move |c, _| {
        let k = files::known(c, &h)?.ok_or_else(|| ApiError::not_found("this photo"))?;
        let tags = c.tags(&h)?;
        let paths: Vec<_> = k.files.iter().map(|f| f.path.to_string_lossy()).collect();
        let hex = hex(&h);
        Ok(merge(
            json!({
                "hash": hex,
                "width": k.image.width,
                "height": k.image.height,
                "format": k.image.format,
                "size": k.files[0].size,
                "model": k.image.model_name,
                "classified_at": k.image.classified_at,
                "tags": output::tags_json(&tags),
                "paths": paths,
            }),
            links(&hex),
        ))
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
pub(super) struct ThumbParams {
    size: Option<String>,
}

/// `GET /thumb/{hash}[?size=large]`: a JPEG no larger than `thumb_size` (or
/// `preview_size`), made from the catalog's content and cached.
pub(super) async fn thumb(
    State(state): State<Arc<AppState>>,
    UrlPath(hash): UrlPath<String>,
    p: Result<Query<ThumbParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = p.map_err(rejected)?;
    let h = parse_hash(&hash).ok_or_else(|| ApiError::not_found("this photo"))?;
    let size = match p.size.as_deref() {
        None | Some("small") => state.settings.thumb_size,
        Some("large") => state.settings.preview_size,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "size is `small` or `large`",
            ))
        }
    };
    let _permit = state
        .thumb_permits
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let jpeg = with_catalog(&state, move |c, state| {
        let s = &state.settings;
        let k = files::known(c, &h)?.ok_or_else(|| ApiError::not_found("this photo"))?;
        if let Some(jpeg) = thumbs::cached(&s.thumb_dir, &h, size) {
            return Ok(jpeg);
        }
        let (_, bytes) =
            files::read_content(&k.files, &h, s.limits.max_file_bytes).ok_or_else(|| gone(&h))?;
        thumbs::make(&s.thumb_dir, &h, size, &bytes, &s.limits)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=604800, immutable"),
        ],
        jpeg,
    )
        .into_response())
}

fn gone(h: &phototag_light::catalog::Hash) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no file holds photo {} any more (moved, changed or offline)",
            hex(h)
        ),
    )
}

/// `GET /photo/{hash}`: the original bytes of a content the catalog knows, from the first
/// of its paths that still holds exactly that content.
pub(super) async fn photo(
    State(state): State<Arc<AppState>>,
    UrlPath(hash): UrlPath<String>,
) -> Result<Response, ApiError> {
    let h = parse_hash(&hash).ok_or_else(|| ApiError::not_found("this photo"))?;
    let (format, path, bytes) = with_catalog(&state, move |c, state| {
        let k = files::known(c, &h)?.ok_or_else(|| ApiError::not_found("this photo"))?;
        let (path, bytes) = files::read_content(&k.files, &h, state.settings.limits.max_file_bytes)
            .ok_or_else(|| gone(&h))?;
        Ok((k.image.format, path, bytes))
    })
    .await?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(['"', '\\', '\r', '\n'], "_"))
        .unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(files::media_type(&format)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=604800, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// Runs `f` on a read-only catalog connection opened for this request, on the bounded
/// blocking pool.
pub(super) async fn with_catalog<T, F>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Catalog, &AppState) -> Result<T, ApiError> + Send + 'static,
{
    let st = Arc::clone(state);
    state
        .blocking
        .run(move || {
            let catalog = Catalog::open_readonly(&st.settings.db)?;
            f(&catalog, &st)
        })
        .await
}
