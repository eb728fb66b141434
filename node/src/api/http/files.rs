//! Shared files: listing, removing, unpublishing, adding a file by path (JSON lines of
//! progress) and browser uploads (streamed to disk). A file's bytes are in `range`.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::stream::{line, ndjson, receiver_stream};
use super::{json_error, query_error, AppState};
use crate::api::types::{
    AddLine, AddProgress, AddRequest, AddResponse, CidResponse, FileBytes, FileInfo,
};
use crate::api::ApiError;

/// Files this node holds (complete or partial).
#[utoipa::path(get, path = "/api/files", tag = "files",
    responses((status = 200, description = "The files.", body = Vec<FileInfo>)))]
pub(super) async fn files(State(s): State<AppState>) -> Result<Json<Vec<FileInfo>>, ApiError> {
    s.api.files().await.map(Json)
}

/// Stop sharing a file and delete the store's copy; for a folder, also the store's copies
/// of its files that belong to no other share (in no other folder, not shared on their own).
#[utoipa::path(delete, path = "/api/files/{cid}", tag = "files",
    params(("cid" = String, Path, description = "The file or folder CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "Removed.", body = CidResponse)))]
pub(super) async fn remove(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<CidResponse>, ApiError> {
    s.api.remove(&cid).await.map(Json)
}

/// Stop announcing a file, or a folder and its files that belong to no other share (they
/// stay in the store).
#[utoipa::path(post, path = "/api/files/{cid}/unpublish", tag = "files",
    params(("cid" = String, Path, description = "The file or folder CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    responses((status = 200, description = "No longer announced.", body = CidResponse)))]
pub(super) async fn unpublish(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<CidResponse>, ApiError> {
    s.api.unpublish(&cid).await.map(Json)
}

/// Share a file on the daemon's machine by path (copy, or track in place with
/// `no_copy`), streaming progress.
#[utoipa::path(post, path = "/api/add", tag = "files", request_body = AddRequest,
    responses((status = 200,
        description = "JSON lines: `progress` (at most every 100 ms), then `done` with the shared file or `error`.",
        content_type = "application/x-ndjson", body = inline(AddLine))))]
pub(super) async fn add(
    State(s): State<AppState>,
    body: Result<Json<AddRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let size = tokio::fs::metadata(&request.path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let progress_tx = tx.clone();
    let mut last = std::time::Instant::now();
    let progress = move |bytes: u64| {
        if last.elapsed().as_millis() >= 100 {
            last = std::time::Instant::now();
            let _ = progress_tx.try_send(line(&AddLine::Progress(AddProgress { bytes, size })));
        }
    };
    let api = s.api.clone();
    s.tasks.spawn_until_stop(async move {
        let out = match api.add(request, progress).await {
            Ok(done) => line(&AddLine::Done(done)),
            Err(e) => line(&AddLine::Error(e.body())),
        };
        let _ = tx.send(out).await;
    });
    Ok(ndjson(receiver_stream(rx)))
}

#[derive(Debug, Deserialize)]
pub(super) struct UploadQuery {
    name: Option<String>,
}

/// Deletes a temporary file when dropped (the upload failed, or was imported).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Share a file uploaded as the raw request body (streamed to disk, size-capped).
#[utoipa::path(post, path = "/api/upload", tag = "files",
    params(("name" = Option<String>, Query, description = "The file's name.")),
    request_body(content = inline(FileBytes), content_type = "application/octet-stream"),
    responses((status = 200, description = "The shared file.", body = AddResponse)))]
pub(super) async fn upload(
    State(s): State<AppState>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AddResponse>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let too_large = || {
        ApiError::too_large(format!(
            "the upload is larger than this daemon accepts ({} bytes; see --max-upload)",
            s.max_upload
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > s.max_upload) {
        return Err(too_large());
    }
    let name = crate::api::upload_name(query.name.as_deref());
    let path = s.api.upload_path().await?;
    let temp = TempFile(path.clone());
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", path.display())))?;
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
        received += chunk.len() as u64;
        if received > s.max_upload {
            return Err(too_large());
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
    }
    if declared.is_some_and(|len| len != received) {
        return Err(ApiError::bad_request("the upload broke off"));
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
    drop(file);
    let response = s
        .api
        .add(
            AddRequest {
                path: path.clone(),
                no_copy: false,
                name: Some(name),
                unlisted: false,
            },
            |_| {},
        )
        .await?;
    drop(temp);
    Ok(Json(response))
}
