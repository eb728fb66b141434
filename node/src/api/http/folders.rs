//! Folders: sharing a directory, fetching a folder (both streamed as JSON lines), and
//! listing folders and one folder's tree.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use tokio::sync::mpsc;

use super::stream::{line, ndjson, receiver_stream};
use super::{json_error, AppState};
use crate::api::folders::{
    FolderAddLine, FolderAddRequest, FolderFetchLine, FolderListing, FolderSummary,
};
use crate::api::types::{ErrorBody, FetchRequest};
use crate::api::ApiError;

/// Share a directory on the daemon's machine as one folder (copy, or track in place
/// with `no_copy`), streaming progress.
#[utoipa::path(post, path = "/api/folders", tag = "folders", request_body = FolderAddRequest,
    responses((status = 200,
        description = "JSON lines: `progress` (at most every 100 ms; one with `skipped` for each symbolic link or special file left out), then `done` with the folder or `error`.",
        content_type = "application/x-ndjson", body = inline(FolderAddLine))))]
pub(super) async fn add(
    State(s): State<AppState>,
    body: Result<Json<FolderAddRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    // Skipped-entry lines are few and must not be lost; progress lines may be.
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let progress_tx = tx.clone();
    let progress = move |p: crate::api::folders::FolderAddProgress| {
        let _ = progress_tx.try_send(line(&FolderAddLine::Progress(p)));
    };
    let api = s.api.clone();
    s.tasks.spawn_until_stop(async move {
        let out = match api.add_folder(request, progress).await {
            Ok(done) => line(&FolderAddLine::Done(done)),
            Err(e) => line(&FolderAddLine::Error(e.body())),
        };
        let _ = tx.send(out).await;
    });
    Ok(ndjson(receiver_stream(rx)))
}

/// Fetch a folder into a new directory on the daemon's machine, streaming progress for
/// the whole and for each file being fetched.
#[utoipa::path(post, path = "/api/folders/fetch", tag = "folders", request_body = FetchRequest,
    responses((status = 200,
        description = "JSON lines: `progress` at most every 200 ms, then `done` or `error` (status 400: the caller's input or the folder's names were at fault; 502: the network could not deliver; 507: this node's disk is full). If the client goes away, the fetch goes on; fetching again into the same directory resumes.",
        content_type = "application/x-ndjson", body = inline(FolderFetchLine))))]
pub(super) async fn fetch(
    State(s): State<AppState>,
    body: Result<Json<FetchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let mut progress = s.api.fetch_folder(request).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    s.tasks.spawn_until_stop(async move {
        loop {
            let snapshot = progress.latest();
            if snapshot.is_finished() {
                let out = match &snapshot.error {
                    Some(message) => line(&FolderFetchLine::Error(ErrorBody {
                        status: if snapshot.bad_input { 400 } else { 502 },
                        message: message.clone(),
                    })),
                    None => line(&FolderFetchLine::Done(snapshot)),
                };
                let _ = tx.send(out).await;
                return;
            }
            if tx
                .send(line(&FolderFetchLine::Progress(snapshot)))
                .await
                .is_err()
            {
                return; // the client went away; the fetch goes on
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
    });
    Ok(ndjson(receiver_stream(rx)))
}

/// The folders this node knows: added, fetched, or with a fetch begun.
#[utoipa::path(get, path = "/api/folders", tag = "folders",
    responses((status = 200, description = "The folders, oldest first.", body = Vec<FolderSummary>)))]
pub(super) async fn folders(
    State(s): State<AppState>,
) -> Result<Json<Vec<FolderSummary>>, ApiError> {
    s.api.folders().await.map(Json)
}

/// One folder and its tree: every file (path, CID, size, executable bit) and empty
/// directory.
#[utoipa::path(get, path = "/api/folders/{cid}", tag = "folders",
    params(("cid" = String, Path, description = "The directory CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "The folder.", body = FolderListing)))]
pub(super) async fn folder(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<FolderListing>, ApiError> {
    s.api.folder(&cid).await.map(Json)
}
