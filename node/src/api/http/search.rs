//! Search, browse, listing and the catalog's setting (their wire types and operations
//! are in `api/search.rs`). A search answers with JSON lines: a `progress` line for each
//! result as it arrives (new, or with more publishers), then `done` with every result
//! ranked.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use tokio::sync::mpsc;

use super::stream::{line, ndjson, receiver_stream};
use super::{json_error, AppState};
use crate::api::search::*;
use crate::api::ApiError;

/// Keyword search across the network: all words must be in a file's name, in any
/// letter case. Every entry is checked to be signed by the peer that sent it.
#[utoipa::path(post, path = "/api/search", tag = "search", request_body = SearchRequest,
    responses((status = 200,
        description = "JSON lines: a `progress` line per result as it arrives (new, or with more publishers), then `done` with every result ranked (most publishers first) and what the search cost.",
        content_type = "application/x-ndjson", body = inline(SearchLine))))]
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
                SearchUpdate::Result(r) => line(&SearchLine::Progress(r)),
                SearchUpdate::Done(d) => line(&SearchLine::Done(d)),
            };
            if tx.send(out).await.is_err() {
                return; // the client went away: dropping `updates` ends the search
            }
        }
    });
    Ok(ndjson(receiver_stream(rx)))
}

/// A peer's listed files, by peer id or address.
#[utoipa::path(post, path = "/api/browse", tag = "search", request_body = BrowseRequest,
    responses((status = 200, description = "Its listed files, newest first.", body = BrowseResponse),
        (status = 404, description = "The peer's catalog is not to be had: browsing turned off, refused, the peer unreachable or silent (the message says which).", body = crate::api::types::ErrorBody)))]
pub(super) async fn browse(
    State(s): State<AppState>,
    body: Result<Json<BrowseRequest>, JsonRejection>,
) -> Result<Json<BrowseResponse>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.browse(request).await.map(Json)
}

/// List a file or folder in this node's catalog (found by search, shown to peers that
/// browse).
#[utoipa::path(post, path = "/api/files/{cid}/list", tag = "files",
    params(("cid" = String, Path, description = "The file or folder CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "Listed; whether it is in the catalog now, and why not.", body = ListingResponse)))]
pub(super) async fn list(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<ListingResponse>, ApiError> {
    s.api.set_listed(&cid, true).await.map(Json)
}

/// Take a file or folder out of the catalog: fetchable by CID only.
#[utoipa::path(post, path = "/api/files/{cid}/unlist", tag = "files",
    params(("cid" = String, Path, description = "The file or folder CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "Unlisted.", body = ListingResponse)))]
pub(super) async fn unlist(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<ListingResponse>, ApiError> {
    s.api.set_listed(&cid, false).await.map(Json)
}

/// This node's catalog: files listed, keywords announced, whether peers may browse it.
#[utoipa::path(get, path = "/api/catalog", tag = "search",
    responses((status = 200, description = "The catalog's state and setting.", body = CatalogInfo)))]
pub(super) async fn catalog(State(s): State<AppState>) -> Result<Json<CatalogInfo>, ApiError> {
    s.api.catalog_info().await.map(Json)
}

/// Allow or refuse browsing of the whole catalog (search works either way).
#[utoipa::path(put, path = "/api/catalog", tag = "search", request_body = CatalogSettingsRequest,
    responses((status = 200, description = "The catalog's state and the new setting.", body = CatalogInfo)))]
pub(super) async fn set_catalog(
    State(s): State<AppState>,
    body: Result<Json<CatalogSettingsRequest>, JsonRejection>,
) -> Result<Json<CatalogInfo>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.set_catalog(request).await.map(Json)
}
