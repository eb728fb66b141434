//! The store's health: `POST /api/verify`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;

use super::{json_error, AppState};
use crate::api::store::{VerifyRequest, VerifyResponse};
use crate::api::ApiError;

/// Re-hash everything the store holds and report bad or missing chunks and files tracked
/// in place that changed on disk; with `repair`, drop what is bad so that a later fetch
/// gets it again. Answers when done (it reads every byte the store holds).
#[utoipa::path(post, path = "/api/verify", tag = "files", request_body = VerifyRequest,
    responses((status = 200, description = "What was found (and repaired).", body = VerifyResponse)))]
pub(super) async fn verify(
    State(s): State<AppState>,
    body: Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.verify(request).await.map(Json)
}
