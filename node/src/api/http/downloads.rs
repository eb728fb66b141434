//! Downloads: fetching to a path with streamed progress, and the daemon-managed
//! downloads into the store (list, start, pause, resume, cancel).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use tokio::sync::mpsc;

use super::stream::{line, ndjson, receiver_stream};
use super::{json_error, AppState};
use crate::api::types::{DownloadInfo, ErrorBody, FetchLine, FetchRequest, StartDownload};
use crate::api::ApiError;

/// Download a file to a path on the daemon's machine, streaming progress.
#[utoipa::path(post, path = "/api/fetch", tag = "downloads", request_body = FetchRequest,
    responses((status = 200,
        description = "JSON lines: `progress` at every change, then `done` or `error` (status 400: the caller's input was at fault; 507: this node's disk is full; 502: the network could not deliver). A `done` with `folder: true` says the CID names a folder: nothing was written; fetch it with `POST /api/folders/fetch`. If the client goes away, the download goes on.",
        content_type = "application/x-ndjson", body = inline(FetchLine))))]
pub(super) async fn fetch(
    State(s): State<AppState>,
    body: Result<Json<FetchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    if let Some(folder) = s.api.known_folder(&request.cid).await {
        let _ = tx.send(line(&FetchLine::Done(folder))).await;
        return Ok(ndjson(receiver_stream(rx)));
    }
    let mut progress = s.api.fetch(request).await?;
    s.tasks.spawn_until_stop(async move {
        loop {
            let snapshot = progress.latest();
            if snapshot.is_finished() {
                let out = match &snapshot.error {
                    Some(_) if snapshot.folder => line(&FetchLine::Done(snapshot)),
                    // 400: the caller's input; 507: this node's disk is full; 502: the
                    // network could not deliver.
                    Some(message) => line(&FetchLine::Error(ErrorBody {
                        status: match (snapshot.bad_input, snapshot.no_space) {
                            (true, _) => 400,
                            (_, true) => 507,
                            _ => 502,
                        },
                        message: message.clone(),
                    })),
                    None => line(&FetchLine::Done(snapshot)),
                };
                let _ = tx.send(out).await;
                return;
            }
            if tx.send(line(&FetchLine::Progress(snapshot))).await.is_err() {
                return; // the client went away; the download goes on
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
    });
    Ok(ndjson(receiver_stream(rx)))
}

/// Downloads run since the daemon started.
#[utoipa::path(get, path = "/api/downloads", tag = "downloads",
    responses((status = 200, description = "The downloads, oldest run first.", body = Vec<DownloadInfo>)))]
pub(super) async fn downloads(State(s): State<AppState>) -> Json<Vec<DownloadInfo>> {
    Json(s.api.downloads())
}

/// Start downloading a file into the store (or attach to its download).
#[utoipa::path(post, path = "/api/downloads", tag = "downloads", request_body = StartDownload,
    responses((status = 200, description = "The download.", body = DownloadInfo)))]
pub(super) async fn start_download(
    State(s): State<AppState>,
    body: Result<Json<StartDownload>, JsonRejection>,
) -> Result<Json<DownloadInfo>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.start_download(request).map(Json)
}

/// Pause a download, keeping its verified chunks.
#[utoipa::path(post, path = "/api/downloads/{cid}/pause", tag = "downloads",
    params(("cid" = String, Path, description = "The file CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "The paused download.", body = DownloadInfo)))]
pub(super) async fn pause(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<DownloadInfo>, ApiError> {
    s.api.pause(&cid).await.map(Json)
}

/// Resume a paused or failed download.
#[utoipa::path(post, path = "/api/downloads/{cid}/resume", tag = "downloads",
    params(("cid" = String, Path, description = "The file CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "The running download.", body = DownloadInfo)))]
pub(super) async fn resume(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<DownloadInfo>, ApiError> {
    s.api.resume(&cid).map(Json)
}

/// Cancel a download and delete what it fetched.
#[utoipa::path(delete, path = "/api/downloads/{cid}", tag = "downloads",
    params(("cid" = String, Path, description = "The file CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "The cancelled download.", body = DownloadInfo)))]
pub(super) async fn cancel(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<DownloadInfo>, ApiError> {
    s.api.cancel(&cid).await.map(Json)
}
