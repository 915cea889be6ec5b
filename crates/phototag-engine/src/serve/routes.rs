//! The router: the page (no token needed: it holds no data), the login, and the data
//! routes behind the token: `POST /api/classify`, `GET /api/search`, `GET /api/labels`,
//! `GET /api/photos/{hash}`, `GET /api/library`, `GET /api/similar/{hash}`, `GET
//! /api/dupes`, `GET /api/taught`, `GET /api/taught/{name}`, `POST /api/taught`, `POST
//! /api/taught/{name}/examples`, `GET /thumb/{hash}`, `GET /photo/{hash}`. Errors are JSON
//! `{"error": ...}` with a 4xx status for what the client did wrong, 503 with `Retry-After`
//! while the server is busy. Every request first passes `guard` (its host and origin).
//!
//! Uploads are held in memory, bounded as a whole: an upload reserves its size (from
//! `Content-Length`, else the largest allowed) from a budget of two largest uploads before
//! its body is read, and keeps it until it is classified; one that cannot reserve in time
//! is answered 503 with `Retry-After`.
//!
//! May not: touch a file whose path did not come from the catalog (see `files`), or run
//! blocking work (SQLite, decoding, reading files) on the async runtime's threads.

use std::path::Path;
use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{rejected, ApiError};
use super::server::too_slow;
use super::worker::WorkError;
use super::{assets, auth, blocking, guard, library, taught, views, AppState};
use crate::classify::FileError;
use crate::imaging::DecodeError;

use phototag_light::output;

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
        .route("/api/search", get(views::search))
        .route("/api/labels", get(views::labels))
        .route("/api/photos/{hash}", get(views::photo_info))
        .route("/api/library", get(library::library))
        .route("/api/similar/{hash}", get(library::similar))
        .route("/api/dupes", get(library::dupes))
        .route("/api/taught", get(taught::list).post(taught::teach))
        .route("/api/taught/{name}", get(taught::page))
        .route("/api/taught/{name}/examples", post(taught::correct))
        .route("/thumb/{hash}", get(views::thumb))
        .route("/photo/{hash}", get(views::photo))
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
        .layer(middleware::map_response(guard::json_errors))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::check_host,
        ))
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

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such page: {method} {}", uri.path()),
    )
}

// ---- session ----

async fn session(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Json<Value> {
    Json(json!({
        "token_required": state.settings.token.is_some(),
        "authorized": auth::access(&state, &headers) == auth::Access::Granted,
        "model": state.worker.model(),
    }))
}

/// A body that could not be read: 408 when it came too slowly, else the rejection's own
/// status, as JSON.
pub(super) fn body_rejected(e: JsonRejection) -> ApiError {
    if too_slow(&e) {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            super::server::TooSlow.to_string(),
        );
    }
    rejected(e)
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

async fn login(
    State(state): State<Arc<AppState>>,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Some(token) = &state.settings.token else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let Json(login) = body.map_err(body_rejected)?;
    // Throttled for the whole server: a flood of parallel guesses gets 429s.
    state.throttle.take().map_err(auth::throttled)?;
    if !token.matches(login.token.trim()) {
        // Slows down guessing one at a time (the throttle bounds guessing in parallel).
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token"));
    }
    state.throttle.give_back();
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000",
        auth::COOKIE,
        token.cookie_value()
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
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
        FileError::Read(_) => StatusCode::BAD_REQUEST,
        FileError::Classify(_) | FileError::NoOutput => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The answer for an upload the model could not take: 503 with `Retry-After` for what
/// passes (the model loading, a full queue), plain 503 for no model at all.
fn work_error(e: WorkError) -> ApiError {
    match e {
        WorkError::Input(f) => ApiError::new(input_status(&f), f.to_string()),
        WorkError::Stopped => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        WorkError::Loading | WorkError::Busy => ApiError::busy(e.to_string()),
        WorkError::NoModel(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `POST /api/classify`, multipart field `file`: the top-k as `phototag classify --json`
/// prints it (`file` is the upload's name). The upload stays in memory.
async fn classify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form = form.map_err(rejected)?;
    let max = state.settings.max_upload_bytes;
    // Reserve the memory the upload may take before reading it (held until classified).
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let expect = declared.unwrap_or(max).min(max);
    let kib = u32::try_from(expect.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let _memory = tokio::time::timeout(blocking::WAIT, state.upload_kib.acquire_many(kib))
        .await
        .map_err(|_| ApiError::busy("busy with other uploads; try again in a moment"))?
        .map_err(ApiError::internal)?;
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload is over the limit of {max} bytes (config key serve.max_upload_bytes)"
            ),
        )
    };
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if too_slow(&e) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                super::server::TooSlow.to_string(),
            )
        } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
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
        let mut bytes = Vec::with_capacity(expect as usize);
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
            let v = output::classified_json(file, &model, &c.predictions, &c.warnings);
            Ok(Json(v).into_response())
        }
        Err(WorkError::Input(e)) => Err(ApiError::with_body(
            input_status(&e),
            output::file_error_json(file, &e),
        )),
        Err(e) => Err(work_error(e)),
    }
}
