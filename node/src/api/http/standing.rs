//! This node's standing at its peers ("how others see me").

use axum::extract::State;
use axum::Json;

use super::AppState;
use crate::api::standing::StandingAtPeer;

/// How each connected peer sees this node: it is asked now (the standing protocol), and
/// its answer is only its claim.
#[utoipa::path(get, path = "/api/reputation/mine", tag = "node",
    responses((status = 200, description = "Each connected peer's answer, the peers this node exchanged most with first.", body = Vec<StandingAtPeer>)))]
pub(super) async fn mine(State(s): State<AppState>) -> Json<Vec<StandingAtPeer>> {
    Json(s.api.standing_at_peers().await)
}
