//! The HTTP routes: the service's archiving API under `/v2/project/{apiKey}` (and the older
//! `/v2/partner/{apiKey}`), download URLs, and the emulator's own `/_emulator/...` test hooks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::{HooksPatch, Shared};

/// Every route of the emulator.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v2/{kind}/{id}/archive", post(start).get(list))
        .route("/v2/{kind}/{id}/archive/storage", put(set_storage))
        .route(
            "/v2/{kind}/{id}/archive/{archive_id}",
            get(get_one).delete(delete_one),
        )
        .route("/v2/{kind}/{id}/archive/{archive_id}/stop", post(stop))
        .route(
            "/v2/{kind}/{id}/archive/{archive_id}/streams",
            patch(change_streams),
        )
        .route(
            "/v2/{kind}/{id}/archive/{archive_id}/layout",
            put(set_layout),
        )
        .route(
            "/download/{project}/{archive_id}/{file}",
            get(crate::download::download),
        )
        .route("/_emulator/health", get(|| async { "ok" }))
        .route("/_emulator/state", get(state))
        .route(
            "/_emulator/hooks",
            get(get_hooks).post(patch_hooks).delete(reset_hooks),
        )
        .route("/_emulator/projects/{id}/callback", put(set_callback))
        .fallback(|| async { ApiError::no_such_resource() })
        .with_state(shared)
}

/// A request to the archiving API whose path prefix (`/v2/project/{id}` or `/v2/partner/{id}`) was checked and
/// whose token was verified for project `id`: an axum extractor, so that no route can forget the check. It
/// runs before the body is read.
struct Authorized {
    /// The project (API key or application id) of the path.
    project: String,
    /// The path's `{archive_id}`, on the routes that have one (`""` on the others).
    archive_id: String,
}

impl axum::extract::FromRequestParts<Arc<Shared>> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, shared)
            .await
            .map_err(IntoResponse::into_response)?;
        let kind = params.remove("kind").unwrap_or_default();
        let project = params.remove("id").unwrap_or_default();
        if kind != "project" && kind != "partner" {
            return Err(ApiError::no_such_resource().into_response());
        }
        let now = opentok_rest::auth::unix_now().map_err(|_| {
            ApiError::internal("the emulator's clock is before 1970").into_response()
        })?;
        crate::auth::authenticate(&parts.headers, &project, |p| shared.project(p), now)
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            project,
            archive_id: params.remove("archive_id").unwrap_or_default(),
        })
    }
}

async fn set_storage(
    State(shared): State<Arc<Shared>>,
    Authorized { project: id, .. }: Authorized,
    body: Bytes,
) -> Result<Response, ApiError> {
    let stored = crate::storage::parse_storage_body(&body)?;
    let described = crate::storage::describe(&stored);
    tracing::info!(project = %id, target = %described, "upload target set");
    shared.lock().storage.insert(id, stored);
    shared.bump();
    Ok(StatusCode::OK.into_response())
}

async fn start(
    State(shared): State<Arc<Shared>>,
    Authorized { project: id, .. }: Authorized,
    body: Bytes,
) -> Result<Response, ApiError> {
    Ok(Json(shared.start_archive(&id, &body)?).into_response())
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Authorized { project: id, .. }: Authorized,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    Ok(Json(shared.list_archives(&id, &query)?).into_response())
}

async fn get_one(
    State(shared): State<Arc<Shared>>,
    Authorized {
        project: id,
        archive_id,
    }: Authorized,
) -> Result<Response, ApiError> {
    Ok(Json(shared.get_archive(&id, &archive_id)?).into_response())
}

async fn delete_one(
    State(shared): State<Arc<Shared>>,
    Authorized {
        project: id,
        archive_id,
    }: Authorized,
) -> Result<Response, ApiError> {
    shared.delete_archive(&id, &archive_id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn stop(
    State(shared): State<Arc<Shared>>,
    Authorized {
        project: id,
        archive_id,
    }: Authorized,
) -> Result<Response, ApiError> {
    Ok(Json(shared.stop_archive(&id, &archive_id)?).into_response())
}

async fn change_streams(
    State(shared): State<Arc<Shared>>,
    Authorized {
        project: id,
        archive_id,
    }: Authorized,
    body: Bytes,
) -> Result<Response, ApiError> {
    shared.change_streams(&id, &archive_id, &body)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_layout(
    State(shared): State<Arc<Shared>>,
    Authorized {
        project: id,
        archive_id,
    }: Authorized,
    body: Bytes,
) -> Result<Response, ApiError> {
    Ok(Json(shared.set_layout(&id, &archive_id, &body)?).into_response())
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.snapshot()).into_response()
}

async fn get_hooks(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.lock().hooks.clone()).into_response()
}

async fn patch_hooks(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let patch: HooksPatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid hooks: {e}")))?;
    patch.check(&shared.media)?;
    let hooks = {
        let mut inner = shared.lock();
        patch.apply(&mut inner.hooks);
        inner.hooks.clone()
    };
    tracing::info!(?hooks, "hooks changed");
    Ok(Json(hooks).into_response())
}

async fn reset_hooks(State(shared): State<Arc<Shared>>) -> Response {
    let hooks = {
        let mut inner = shared.lock();
        inner.hooks = Default::default();
        inner.hooks.clone()
    };
    Json(hooks).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackBody {
    url: Option<String>,
}

async fn set_callback(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if shared.project(&id).is_none() {
        return Err(ApiError::no_such_resource());
    }
    let body: CallbackBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("Invalid JSON: {e} (expected {{\"url\": ...}})"))
    })?;
    if let Some(url) = &body.url
        && url::Url::parse(url)
            .map(|u| u.scheme() != "http" && u.scheme() != "https")
            .unwrap_or(true)
    {
        return Err(ApiError::bad_request(format!(
            "{url:?} is not an http(s) URL"
        )));
    }
    tracing::info!(project = %id, url = ?body.url, "callback URL set");
    shared.lock().callback_urls.insert(id, body.url);
    Ok(StatusCode::NO_CONTENT.into_response())
}
