//! The operator's routes: clearing the download history.

use axum::extract::State;
use axum::Json;

use super::AppState;
use crate::api::ops::ClearedHistory;
use crate::api::ApiError;

/// Forget the ended downloads (done, failed, cancelled); paused and running ones stay.
#[utoipa::path(delete, path = "/api/downloads", tag = "downloads",
    responses((status = 200, description = "How many were forgotten.", body = ClearedHistory)))]
pub(super) async fn clear_history(
    State(s): State<AppState>,
) -> Result<Json<ClearedHistory>, ApiError> {
    s.api.clear_download_history().await.map(Json)
}
