//! `POST /api/doctor`: the node's self-check. POST because it does network work (it
//! asks DHT servers for our provider records).

use axum::extract::State;
use axum::Json;

use super::AppState;
use crate::api::doctor::DoctorReport;
use crate::api::ApiError;

/// Check reachability, the DHT and whether other peers can find each shared file's
/// provider record (asking a connected DHT server); every check with advice.
#[utoipa::path(post, path = "/api/doctor", tag = "node",
    responses((status = 200, description = "Every check; `healthy` is false when one failed.", body = DoctorReport)))]
pub(super) async fn doctor(State(s): State<AppState>) -> Result<Json<DoctorReport>, ApiError> {
    s.api.doctor().await.map(Json)
}
