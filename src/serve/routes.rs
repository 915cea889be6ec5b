//! The router: the page (no token needed: it holds no data), the login, and the data
//! routes behind the token: `POST /api/classify`, `GET /api/search`, `GET /api/labels`,
//! `GET /api/photos/{hash}`, `GET /thumb/{hash}`, `GET /photo/{hash}`. Errors are JSON
//! `{"error": ...}` with a 4xx status for what the client did wrong.
//!
//! May not: touch a file whose path did not come from the catalog (see `files`), or run
//! blocking work (SQLite, decoding, reading files) on the async runtime's threads.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::files::{self, parse_hash};
use super::worker::WorkError;
use super::{assets, auth, thumbs, AppState};
use crate::catalog::{hex, Catalog, CatalogError};
use crate::imaging::DecodeError;
use crate::pipeline::FileError;
use crate::search::{Query as SearchQuery, Request};

/// Search results returned when the request names no limit, and the most it may ask for.
const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 5000;
/// Labels in the tag cloud when the request names no limit, and the most it may ask for.
const DEFAULT_LABELS: usize = 40;
const MAX_LABELS: usize = 1000;

/// An error answered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({ "error": message.into() }),
        }
    }

    fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{what} is not in the catalog"),
        )
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!("{e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> ApiError {
        match e {
            CatalogError::Missing { .. } | CatalogError::TooOld { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            e => ApiError::internal(e),
        }
    }
}

/// Every route. The data routes sit behind [`auth::require`].
pub fn router(state: Arc<AppState>) -> Router {
    // Room for the multipart framing around a file of the largest size accepted.
    let upload_limit = usize::try_from(state.settings.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let data = Router::new()
        .route(
            "/api/classify",
            post(classify).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/search", get(search))
        .route("/api/labels", get(labels))
        .route("/api/photos/{hash}", get(photo_info))
        .route("/thumb/{hash}", get(thumb))
        .route("/photo/{hash}", get(photo))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require,
        ));
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/style.css", get(assets::style))
        .route("/api/session", get(session))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .merge(data)
        .fallback(not_found)
        .layer(middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// Headers every answer carries: no framing, no sniffing, no referrer, same-origin only.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

/// An extractor's rejection (bad query string, not multipart) as a JSON error.
fn rejected(e: impl IntoResponse + std::fmt::Display) -> ApiError {
    let message = e.to_string();
    ApiError::new(e.into_response().status(), message)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such page: {method} {}", uri.path()),
    )
}

/// Runs `f` on a read-only catalog connection opened for this request, off the runtime.
async fn with_catalog<T, F>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Catalog, &AppState) -> Result<T, ApiError> + Send + 'static,
{
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let catalog = Catalog::open_readonly(&state.settings.db)?;
        f(&catalog, &state)
    })
    .await
    .map_err(ApiError::internal)?
}

// ---- session ----

async fn session(State(state): State<Arc<AppState>>, headers: header::HeaderMap) -> Json<Value> {
    Json(json!({
        "token_required": state.settings.token.is_some(),
        "authorized": auth::authorized(&state, &headers),
        "model": state.worker.model(),
    }))
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

async fn login(
    State(state): State<Arc<AppState>>,
    body: Option<Json<Login>>,
) -> Result<Response, ApiError> {
    let Some(token) = &state.settings.token else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    match body {
        Some(Json(l)) if token.matches(l.token.trim()) => {
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000",
                auth::COOKIE,
                token.cookie_value()
            );
            Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
        }
        _ => {
            // Slows down guessing.
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token"))
        }
    }
}

async fn logout() -> Response {
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        auth::COOKIE
    );
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

// ---- classify ----

/// The status for an upload that is not a usable image.
fn input_status(e: &FileError) -> StatusCode {
    match e {
        FileError::Decode(d) => match d {
            DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            DecodeError::NotAnImage { .. } | DecodeError::Unsupported { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            DecodeError::Corrupt { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            DecodeError::Io { .. } => StatusCode::BAD_REQUEST,
        },
        FileError::Preprocess(_) => StatusCode::UNPROCESSABLE_ENTITY,
        FileError::Classify(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status for an upload the model could not take.
fn work_status(e: &WorkError) -> StatusCode {
    match e {
        WorkError::Input(e) => input_status(e),
        WorkError::Stopped => StatusCode::INTERNAL_SERVER_ERROR,
        WorkError::Loading | WorkError::NoModel(_) | WorkError::Busy => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// `POST /api/classify`, multipart field `file`: the top-k as `phototag classify --json`
/// prints it (`file` is the upload's name). The upload stays in memory.
async fn classify(
    State(state): State<Arc<AppState>>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form = form.map_err(rejected)?;
    let max = state.settings.max_upload_bytes;
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload is over the limit of {max} bytes (config key serve.max_upload_bytes)"
            ),
        )
    };
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_big()
        } else {
            ApiError::new(e.status(), format!("bad upload: {}", e.body_text()))
        }
    };
    let mut upload = None;
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("upload").to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        upload = Some((name, bytes));
        break;
    }
    let Some((name, bytes)) = upload else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no file: send the image as the multipart field `file`",
        ));
    };
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the upload is empty",
        ));
    }
    let file = Path::new(&name);
    match state.worker.classify(bytes).await {
        Ok((model, c)) => {
            let v = crate::cmd::classify::json_entry(file, &model, &Ok(c));
            Ok(Json(v).into_response())
        }
        Err(WorkError::Input(e)) => Err(ApiError {
            status: input_status(&e),
            body: crate::cmd::classify::json_entry(file, "", &Err(e)),
        }),
        Err(e) => Err(ApiError::new(work_status(&e), e.to_string())),
    }
}

// ---- catalog views ----

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<usize>,
    /// In percent, for every term (as `--min-prob`).
    min_prob: Option<f32>,
}

/// Thumbnail, preview and original addresses of a content.
fn links(hash: &str) -> Value {
    json!({
        "thumb": format!("/thumb/{hash}"),
        "preview": format!("/thumb/{hash}?size=large"),
        "photo": format!("/photo/{hash}"),
        "info": format!("/api/photos/{hash}"),
    })
}

fn merge(mut v: Value, extra: Value) -> Value {
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// `GET /api/search?q=QUERY[&limit=N][&min_prob=P]`: `phototag search --json`'s objects
/// (path, hash, score, matched, tags) with `thumb`, `preview`, `photo` and `info` links.
async fn search(
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
    let query = SearchQuery::compile(&text, min_prob / 100.0)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let unknown: Vec<Value> = query
        .unknown()
        .map(|t| json!({ "term": t.text, "suggestions": t.suggestions }))
        .collect();
    let compiled = query.compiled;
    let runnable = !compiled.classes().is_empty() || compiled.matches_untagged();
    let hits = if runnable {
        with_catalog(&state, move |catalog, _| {
            Ok(catalog.find(&Request {
                query: compiled,
                under: Vec::new(),
                mtime_ns: None,
                limit: Some(limit),
                with_tags: true,
            })?)
        })
        .await?
    } else {
        Vec::new()
    };
    let results: Vec<Value> = hits
        .iter()
        .map(|h| merge(crate::cmd::search::hit_json(h), links(&hex(&h.hash))))
        .collect();
    Ok(Json(json!({
        "query": text,
        "count": results.len(),
        "limit": limit,
        "unknown": unknown,
        "results": results,
    })))
}

#[derive(Deserialize)]
struct LabelParams {
    limit: Option<usize>,
}

/// `GET /api/labels[?limit=N]`: the most common first-ranked labels, for the tag cloud.
async fn labels(
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
async fn photo_info(
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
                "tags": crate::cmd::catalog::tags_json(&tags),
                "paths": paths,
            }),
            links(&hex),
        ))
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
struct ThumbParams {
    size: Option<String>,
}

/// `GET /thumb/{hash}[?size=large]`: a JPEG no larger than `thumb_size` (or
/// `preview_size`), made from the catalog's content and cached.
async fn thumb(
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

fn gone(h: &crate::catalog::Hash) -> ApiError {
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
async fn photo(
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
