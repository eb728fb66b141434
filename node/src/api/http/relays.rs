//! The relays routes: the relays in use and this node's load as a relay
//! (`GET /api/relays`), adding one (`POST`) and dropping one (`DELETE …/{peer}`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;

use super::{json_error, AppState};
use crate::api::relays::{AddRelay, RelaysView};
use crate::api::ApiError;

/// The relays in use (reservations, circuits) and, on a relay node, what it carries
/// against its limits.
#[utoipa::path(get, path = "/api/relays", tag = "node",
    responses((status = 200, description = "Relays in use and this node's relay load.", body = RelaysView)))]
pub(super) async fn relays(State(s): State<AppState>) -> Result<Json<RelaysView>, ApiError> {
    s.api.relays().await.map(Json)
}

/// Hold a reservation on a relay from now on, even while reachable directly (until
/// dropped or the daemon restarts).
#[utoipa::path(post, path = "/api/relays", tag = "node", request_body = AddRelay,
    responses((status = 200, description = "The relays now (the new one's reservation is requested).", body = RelaysView)))]
pub(super) async fn add(
    State(s): State<AppState>,
    body: Result<Json<AddRelay>, JsonRejection>,
) -> Result<Json<RelaysView>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.add_relay(request).await.map(Json)
}

/// Give back the reservation on a relay; it is not picked again until added.
#[utoipa::path(delete, path = "/api/relays/{peer}", tag = "node",
    params(("peer" = String, Path, description = "The relay's peer id.", example = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN")),
    responses((status = 200, description = "The relays now.", body = RelaysView)))]
pub(super) async fn drop_relay(
    State(s): State<AppState>,
    Path(peer): Path<String>,
) -> Result<Json<RelaysView>, ApiError> {
    s.api.drop_relay(&peer).await.map(Json)
}
