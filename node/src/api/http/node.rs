//! The node's own routes: the OpenAPI document, identity, status, bandwidth, settings,
//! peers and reputation.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;

use super::{json_error, AppState};
use crate::api::types::{
    IdResponse, PeerReputation, PeerView, Settings, StatsResponse, StatusResponse,
};
use crate::api::ApiError;

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "node",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object)))]
pub(super) async fn openapi(State(s): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        s.openapi.clone(),
    )
}

/// Peer id and full addresses (to bootstrap from).
#[utoipa::path(get, path = "/api/id", tag = "node",
    responses((status = 200, description = "Who this node is.", body = IdResponse)))]
pub(super) async fn id(State(s): State<AppState>) -> Result<Json<IdResponse>, ApiError> {
    s.api.id().await.map(Json)
}

/// Version, uptime, display name, identity and reach, file count, downloads.
#[utoipa::path(get, path = "/api/status", tag = "node",
    responses((status = 200, description = "The daemon's state.", body = StatusResponse)))]
pub(super) async fn status(State(s): State<AppState>) -> Result<Json<StatusResponse>, ApiError> {
    s.api.status().await.map(Json)
}

/// Upload and download rates now and over the last five minutes.
#[utoipa::path(get, path = "/api/stats", tag = "node",
    responses((status = 200, description = "Bandwidth (bytes per second).", body = StatsResponse)))]
pub(super) async fn stats(State(s): State<AppState>) -> Json<StatsResponse> {
    Json(s.api.stats())
}

/// The owner's settings (display name).
#[utoipa::path(get, path = "/api/settings", tag = "node",
    responses((status = 200, description = "The settings.", body = Settings)))]
pub(super) async fn get_settings(State(s): State<AppState>) -> Json<Settings> {
    Json(s.api.settings())
}

/// Change the settings.
#[utoipa::path(put, path = "/api/settings", tag = "node", request_body = Settings,
    responses((status = 200, description = "The settings now.", body = Settings)))]
pub(super) async fn put_settings(
    State(s): State<AppState>,
    body: Result<Json<Settings>, JsonRejection>,
) -> Result<Json<Settings>, ApiError> {
    let Json(settings) = body.map_err(json_error)?;
    s.api.set_settings(settings).await.map(Json)
}

/// Connected peers: direct or relayed, RTT, bytes and rates each way, reputation, ban.
#[utoipa::path(get, path = "/api/peers", tag = "node",
    responses((status = 200, description = "Connected peers.", body = Vec<PeerView>)))]
pub(super) async fn peers(State(s): State<AppState>) -> Result<Json<Vec<PeerView>>, ApiError> {
    s.api.peers().await.map(Json)
}

/// This node's scores for every peer it has dealt with, best first.
#[utoipa::path(get, path = "/api/reputation", tag = "node",
    responses((status = 200, description = "Every peer's record.", body = Vec<PeerReputation>)))]
pub(super) async fn reputation(State(s): State<AppState>) -> Json<Vec<PeerReputation>> {
    Json(s.api.reputation())
}
