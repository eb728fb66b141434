//! The HTTP handlers of search, browse, listing and the catalog's setting (their wire
//! types and operations are in `api/search.rs`). A search answers with JSON lines: a
//! `progress` line for each result as it arrives (new, or with more publishers), then
//! `done` with every result ranked, or `error`.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use tokio::sync::mpsc;

use super::{json_error, line, ndjson, AppState};
use crate::api::search::*;
use crate::api::types::StreamLine;
use crate::api::ApiError;

pub(super) async fn search(
    State(s): State<AppState>,
    body: Result<Json<SearchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let mut updates = s.api.search(request)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    s.tasks.spawn_until_stop(async move {
        while let Some(update) = updates.next().await {
            let out = match update {
                SearchUpdate::Result(r) => line(&StreamLine::<_, ()>::Progress(r)),
                SearchUpdate::Done(d) => line(&StreamLine::<(), _>::Done(d)),
            };
            if tx.send(out).await.is_err() {
                return; // the client went away: dropping `updates` ends the search
            }
        }
    });
    Ok(ndjson(rx))
}

pub(super) async fn browse(
    State(s): State<AppState>,
    body: Result<Json<BrowseRequest>, JsonRejection>,
) -> Result<Json<BrowseResponse>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.browse(request).await.map(Json)
}

pub(super) async fn list(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<ListingResponse>, ApiError> {
    s.api.set_listed(&cid, true).await.map(Json)
}

pub(super) async fn unlist(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<ListingResponse>, ApiError> {
    s.api.set_listed(&cid, false).await.map(Json)
}

pub(super) async fn catalog(State(s): State<AppState>) -> Result<Json<CatalogInfo>, ApiError> {
    s.api.catalog_info().await.map(Json)
}

pub(super) async fn set_catalog(
    State(s): State<AppState>,
    body: Result<Json<CatalogSettingsRequest>, JsonRejection>,
) -> Result<Json<CatalogInfo>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.set_catalog(request).await.map(Json)
}
