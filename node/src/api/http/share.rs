//! Shares: making, listing and revoking them, a share's QR code, opening a ticket to
//! fetch from it, and publishing a file again.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{json_error, AppState};
use crate::api::share::{OpenTicketRequest, OpenedTicket, ShareInfo, ShareRequest};
use crate::api::types::CidResponse;
use crate::api::ApiError;

/// Active shares, with tickets made with this node's current addresses.
#[utoipa::path(get, path = "/api/shares", tag = "shares",
    responses((status = 200, description = "The shares, oldest first.", body = Vec<ShareInfo>)))]
pub(super) async fn shares(State(s): State<AppState>) -> Json<Vec<ShareInfo>> {
    Json(s.api.shares().await)
}

/// Share a complete file: make a ticket, with an expiry and a password if asked.
#[utoipa::path(post, path = "/api/shares", tag = "shares", request_body = ShareRequest,
    responses((status = 200, description = "The new share and its ticket.", body = ShareInfo)))]
pub(super) async fn share(
    State(s): State<AppState>,
    body: Result<Json<ShareRequest>, JsonRejection>,
) -> Result<Json<ShareInfo>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.share(request).await.map(Json)
}

/// Revoke a share (by id or ticket), or every share of a file (by CID).
#[utoipa::path(delete, path = "/api/shares/{key}", tag = "shares",
    params(("key" = String, Path, description = "A share id (16 hex digits), a ticket, or a file CID.", example = "5e1f0a339c41d207")),
    responses((status = 200, description = "The shares revoked.", body = Vec<ShareInfo>)))]
pub(super) async fn unshare(
    State(s): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Vec<ShareInfo>>, ApiError> {
    s.api.unshare(&key).await.map(Json)
}

/// The QR code of a share's ticket, as SVG.
#[utoipa::path(get, path = "/api/shares/{id}/qr", tag = "shares",
    params(("id" = String, Path, description = "The share id (16 hex digits).", example = "5e1f0a339c41d207")),
    responses((status = 200, description = "The QR code of the ticket (upper case, QR alphanumeric mode).",
        content_type = "image/svg+xml", body = String)))]
pub(super) async fn qr(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let svg = s.api.share_qr(&id).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        )],
        svg,
    )
        .into_response())
}

/// Open a ticket: dial its provider at the ticket's addresses and ask for access
/// (proving the password if the share needs one). Then fetch its CID.
#[utoipa::path(post, path = "/api/tickets/open", tag = "shares", request_body = OpenTicketRequest,
    responses((status = 200, description = "The provider lets this node fetch the file; it is connected.", body = OpenedTicket)))]
pub(super) async fn open_ticket(
    State(s): State<AppState>,
    body: Result<Json<OpenTicketRequest>, JsonRejection>,
) -> Result<Json<OpenedTicket>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.open_ticket(request).await.map(Json)
}

/// Announce a file (or a folder and its files) again after it was unpublished.
#[utoipa::path(post, path = "/api/files/{cid}/publish", tag = "files",
    params(("cid" = String, Path, description = "The file or folder CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "Announced again.", body = CidResponse)))]
pub(super) async fn publish(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<CidResponse>, ApiError> {
    s.api.publish(&cid).await.map(Json)
}
