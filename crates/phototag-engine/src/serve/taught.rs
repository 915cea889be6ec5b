//! Tags taught by example on the web page: `GET /api/taught` (the taught tags), `GET
//! /api/taught/{name}` (a tag's page: its figures, examples, best and borderline matches),
//! `POST /api/taught` (teach or refine a tag: `name`, `yes` and `no` content hashes,
//! `replace`) and `POST /api/taught/{name}/examples` (one correction: `hash` as `yes` or
//! not, then refitted). Fitting is what `phototag teach` does (`taught::refine`), with its
//! refusals (a bad name, no yes example, no no example, examples of one kind) answered as
//! 4xx JSON errors: `error` says why in words, `reason` names it for a program.
//!
//! The writes open the catalog writable for the request, on the blocking pool, one at a
//! time (`AppState::teaching`): two corrections at once must not lose one. They pass the
//! same token and Origin checks as every write (`auth`, `guard`).
//!
//! May not: take anything from a request but a tag name (checked as `teach` checks it)
//! and content hashes (parsed; only photos with a stored embedding become examples), or
//! write anything but taught tags.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{rejected, ApiError};
use super::routes::body_rejected;
use super::views::{links, merge, with_catalog};
use super::{blocking, AppState};
use phototag_light::catalog::{hex, parse_hash, Catalog, CatalogError, Hash, TaughtRow};
use phototag_light::output::{applied_json, taught_json};
use phototag_light::taught::apply::ApplyError;
use phototag_light::taught::refine::{matches, refine, Match, NewExample};
use phototag_light::taught::{check_name, warnings, Figures, TeachError};

/// Best and borderline matches on a tag's page when the request names no limit, and the most.
const MATCHES: usize = 24;
const MAX_MATCHES: usize = 200;

/// A 4xx answer: `error` in words, `reason` for a program.
fn refused(status: StatusCode, reason: &str, message: impl Into<String>) -> ApiError {
    ApiError::with_body(status, json!({ "error": message.into(), "reason": reason }))
}

fn no_tag(name: &str) -> ApiError {
    refused(
        StatusCode::NOT_FOUND,
        "no-tag",
        format!("no taught tag `{name}`"),
    )
}

/// The refusals of `teach`, in the page's words.
fn teach_refused(e: TeachError) -> ApiError {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    match e {
        TeachError::NoYes(n) => refused(
            status,
            "no-yes",
            format!("no yes example of `{n}` could be used: select photos of it and mark them yes"),
        ),
        TeachError::NoNo(n) => refused(
            status,
            "no-no",
            format!("no no example for `{n}`: a tag learns what sets its photos apart, so it also needs photos that are not `{n}`: mark some as no (best those it could be taken for)"),
        ),
        TeachError::OneClass(n) => refused(
            status,
            "one-class",
            format!("the examples of `{n}` are all of one kind: every yes is also a no (or their embeddings are of different models)"),
        ),
    }
}

fn catalog_refused(e: CatalogError) -> ApiError {
    match e {
        CatalogError::TooManyTaught(_) => refused(StatusCode::CONFLICT, "too-many", e.to_string()),
        e => e.into(),
    }
}

/// A tag's figures as stored.
fn figures(t: &TaughtRow) -> Option<Figures> {
    serde_json::from_str(&t.figures).ok()
}

/// `GET /api/taught`: every taught tag with its figures and how many photos have it.
pub(super) async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let v = with_catalog(&state, |c, _| {
        let mut tags = Vec::new();
        for t in c.taught_tags()? {
            let matches = c.taught_match_count(t.id)?;
            tags.push(taught_json(&t, figures(&t).as_ref(), matches));
        }
        Ok(json!({ "tags": tags }))
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
pub(super) struct PageParams {
    limit: Option<usize>,
}

/// A photo on a tag's page: its hash, first path (null when no file holds it any more),
/// links, and what the tag says of it.
fn row(c: &Catalog, hash: &Hash, extra: Value) -> Result<Value, ApiError> {
    let h = hex(hash);
    let path = c
        .files_with(hash)?
        .into_iter()
        .next()
        .map(|f| f.path.to_string_lossy().into_owned());
    Ok(merge(
        merge(json!({ "hash": h, "path": path }), extra),
        links(&h),
    ))
}

fn match_row(c: &Catalog, m: &Match) -> Result<Value, ApiError> {
    let example = m.example.map(|yes| if yes { "yes" } else { "no" });
    row(
        c,
        &m.hash,
        json!({
            "probability": (m.probability * 1e4).round() / 1e4,
            "tagged": m.tagged,
            "example": example,
        }),
    )
}

/// `GET /api/taught/{name}[?limit=N]`: a tag's page: `teach --show --json`'s figures,
/// `warnings` (what examples to add), `examples` (`yes` true or false), `best` (the photos
/// that have it, most probable first) and `borderline` (photos that are not examples,
/// those nearest its threshold on either side), each photo with `probability`, `tagged`,
/// `example` and links.
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    p: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = p.map_err(rejected)?;
    let limit = p.limit.unwrap_or(MATCHES).clamp(1, MAX_MATCHES);
    let v = with_catalog(&state, move |c, state| {
        let t = c.taught_tag(&name)?.ok_or_else(|| no_tag(&name))?;
        let examples = c.taught_examples(t.id)?;
        let m = matches(c, &state.settings.db, &t, &examples, limit)?;
        let f = figures(&t);
        let mut v = taught_json(&t, f.as_ref(), m.matches as u64);
        v["scored"] = json!(m.scored);
        v["warnings"] = json!(f.map(|f| warnings(&t.name, &f)).unwrap_or_default());
        v["examples"] = examples
            .iter()
            .map(|e| row(c, &e.hash, json!({ "yes": e.positive })))
            .collect::<Result<Vec<_>, _>>()?
            .into();
        for (key, list) in [("best", &m.best), ("borderline", &m.borderline)] {
            v[key] = list
                .iter()
                .map(|m| match_row(c, m))
                .collect::<Result<Vec<_>, _>>()?
                .into();
        }
        Ok(v)
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TeachBody {
    name: String,
    #[serde(default)]
    yes: Vec<String>,
    #[serde(default)]
    no: Vec<String>,
    /// Forget the tag's stored examples first (`teach --replace`).
    #[serde(default)]
    replace: bool,
}

/// `POST /api/taught` with `{"name", "yes": [HASH...], "no": [HASH...], "replace"}`: teaches
/// a new tag or refines one (its stored examples kept unless `replace`; a new example of a
/// content overrides the stored one), as `phototag teach NAME --yes HASH... --no HASH...`.
/// Answers the fit: figures, `matches`, `scored`, `corrected`, `lost`, `warnings`, `created`.
pub(super) async fn teach(
    State(state): State<Arc<AppState>>,
    body: Result<Json<TeachBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(body_rejected)?;
    let name = b.name.trim().to_string();
    check_name(&name).map_err(|e| refused(StatusCode::BAD_REQUEST, "name", e))?;
    let mut given: HashMap<Hash, bool> = HashMap::new();
    for (positive, list) in [(true, &b.yes), (false, &b.no)] {
        for s in list {
            let h = parse_hash(s.trim()).ok_or_else(|| {
                refused(
                    StatusCode::BAD_REQUEST,
                    "hash",
                    format!(
                        "`{}` is not a content hash (64 hex digits)",
                        s.chars().take(80).collect::<String>()
                    ),
                )
            })?;
            if given.insert(h, positive).is_some_and(|p| p != positive) {
                return Err(refused(
                    StatusCode::BAD_REQUEST,
                    "both",
                    format!("{} is given both as yes and as no", hex(&h)),
                ));
            }
        }
    }
    let v = write(&state, move |c| {
        let existing = c.taught_tag(&name)?;
        let any_yes = given.values().any(|&p| p);
        if !any_yes && (existing.is_none() || b.replace || given.is_empty()) {
            return Err(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no-yes",
                format!("no yes example: select photos of `{name}` and mark them yes (a tag that exists can be corrected with no examples alone)"),
            ));
        }
        fit(c, &name, existing, given, b.replace)
    })
    .await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Correction {
    hash: String,
    /// True: the photo is one of the tag's; false: it is not.
    yes: bool,
}

/// `POST /api/taught/{name}/examples` with `{"hash", "yes"}`: one photo added to an existing
/// tag's examples (or turned around), and the tag refitted: the ✓ and ✗ of its page.
/// Answers as `POST /api/taught`.
pub(super) async fn correct(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    body: Result<Json<Correction>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(body_rejected)?;
    let h = parse_hash(b.hash.trim()).ok_or_else(|| {
        refused(
            StatusCode::BAD_REQUEST,
            "hash",
            "`hash` is not a content hash (64 hex digits)",
        )
    })?;
    let v = write(&state, move |c| {
        let t = c.taught_tag(&name)?.ok_or_else(|| no_tag(&name))?;
        let name = t.name.clone();
        fit(c, &name, Some(t), HashMap::from([(h, b.yes)]), false)
    })
    .await?;
    Ok(Json(v))
}

/// The examples' embeddings, the fit, and its answer.
fn fit(
    c: &mut Catalog,
    name: &str,
    existing: Option<TaughtRow>,
    given: HashMap<Hash, bool>,
    replace: bool,
) -> Result<Value, ApiError> {
    let name = existing.as_ref().map_or(name, |t| t.name.as_str());
    let mut new = HashMap::new();
    for (hash, positive) in given {
        let Some(s) = c.embedding(&hash)? else {
            let (reason, why) = if c.image(&hash)?.is_none() {
                (
                    "unknown-photo",
                    "no photo with this content hash is in the catalog",
                )
            } else {
                (
                    "no-embedding",
                    "this photo has no embedding yet: `phototag retag --embeddings` adds it",
                )
            };
            return Err(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                reason,
                format!("{}: {why}", hex(&hash)),
            ));
        };
        new.insert(
            hash,
            NewExample {
                positive,
                model_id: s.model_id,
                embedding: s.embedding,
            },
        );
    }
    let r = refine(c, name, existing.as_ref(), new, replace).map_err(|e| match e {
        ApplyError::Teach(e) => teach_refused(e),
        ApplyError::Catalog(e) => catalog_refused(e),
    })?;
    let a = &r.applied;
    let mut v = applied_json(a, r.corrected);
    v["lost"] = json!(r.lost);
    v["warnings"] = json!(a.warnings);
    v["created"] = json!(existing.is_none());
    Ok(v)
}

/// Runs `f` on a writable catalog opened for this request, on the blocking pool, one
/// write at a time (503 with `Retry-After` when the one before takes longer than
/// `blocking::WAIT`). The catalog must exist (it is not created here).
async fn write<T, F>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Catalog) -> Result<T, ApiError> + Send + 'static,
{
    let _one = tokio::time::timeout(blocking::WAIT, state.teaching.lock())
        .await
        .map_err(|_| ApiError::busy("busy teaching another tag; try again in a moment"))?;
    let st = Arc::clone(state);
    state
        .blocking
        .run(move || {
            drop(Catalog::open_readonly(&st.settings.db)?);
            let mut catalog = Catalog::open(&st.settings.db)?;
            f(&mut catalog)
        })
        .await
}
