//! HTTP/JSON over the [`Api`] facade. Every route needs `Authorization: Bearer <token>`
//! (the token the daemon writes into its data directory). Long operations (add, fetch)
//! answer with a stream of JSON lines: progress, then the result or an error.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::mpsc;

use super::types::*;
use super::{Api, ApiError};

/// Largest request body accepted.
const MAX_BODY: usize = 64 << 10;

#[derive(Clone)]
struct AppState {
    api: Api,
    token: Arc<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    ApiError {
        status: rejection.status().as_u16().clamp(400, 499),
        message: format!("bad request body: {}", rejection.body_text()),
    }
}

/// The router of the control API.
pub fn router(api: Api, token: String) -> Router {
    let state = AppState {
        api,
        token: Arc::new(token),
    };
    Router::new()
        .route("/api/id", get(id))
        .route("/api/status", get(status))
        .route("/api/files", get(files))
        .route("/api/files/{cid}", delete(remove))
        .route("/api/files/{cid}/unpublish", post(unpublish))
        .route("/api/add", post(add))
        .route("/api/fetch", post(fetch))
        .route("/api/downloads", get(downloads))
        .route("/api/peers", get(peers))
        .route("/api/reputation", get(reputation))
        .route("/api/events", get(events))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), state.token.as_bytes()) => {
            next.run(request).await
        }
        _ => ApiError {
            status: 401,
            message: "missing or wrong API token".into(),
        }
        .into_response(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API route")
}

async fn id(State(s): State<AppState>) -> Result<Json<IdResponse>, ApiError> {
    s.api.id().await.map(Json)
}

async fn status(State(s): State<AppState>) -> Result<Json<StatusResponse>, ApiError> {
    s.api.status().await.map(Json)
}

async fn files(State(s): State<AppState>) -> Result<Json<Vec<FileInfo>>, ApiError> {
    s.api.files().await.map(Json)
}

async fn peers(State(s): State<AppState>) -> Result<Json<Vec<PeerInfo>>, ApiError> {
    s.api.peers().await.map(Json)
}

async fn reputation(State(s): State<AppState>) -> Json<Vec<PeerReputation>> {
    Json(s.api.reputation())
}

async fn downloads(State(s): State<AppState>) -> Json<Vec<Progress>> {
    Json(s.api.downloads())
}

async fn remove(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<CidResponse>, ApiError> {
    s.api.remove(&cid).await.map(Json)
}

async fn unpublish(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<CidResponse>, ApiError> {
    s.api.unpublish(&cid).await.map(Json)
}

fn line<T: Serialize>(value: &T) -> Bytes {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn ndjson(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

async fn add(
    State(s): State<AppState>,
    body: Result<Json<AddRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let size = std::fs::metadata(&request.path)
        .map(|m| m.len())
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let progress_tx = tx.clone();
    let mut last = std::time::Instant::now();
    let progress = move |bytes: u64| {
        if last.elapsed().as_millis() >= 100 {
            last = std::time::Instant::now();
            let _ = progress_tx.try_send(line(&StreamLine::<_, ()>::Progress(AddProgress {
                bytes,
                size,
            })));
        }
    };
    let api = s.api.clone();
    tokio::spawn(async move {
        let result = api.add(request, progress).await;
        let out = match result {
            Ok(done) => line(&StreamLine::<(), _>::Done(done)),
            Err(e) => line(&StreamLine::<(), ()>::Error(e.body())),
        };
        let _ = tx.send(out).await;
    });
    Ok(ndjson(rx))
}

async fn fetch(
    State(s): State<AppState>,
    body: Result<Json<FetchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let mut progress = s.api.fetch(request)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        loop {
            let snapshot = progress.borrow_and_update().clone();
            if snapshot.is_finished() {
                let out = if snapshot.error.is_some() {
                    // 400: the caller's input; 502: the network could not deliver.
                    let status = if snapshot.bad_input { 400 } else { 502 };
                    line(&StreamLine::<(), ()>::Error(ErrorBody {
                        status,
                        message: snapshot.error.clone().unwrap_or_default(),
                    }))
                } else {
                    line(&StreamLine::<(), _>::Done(snapshot))
                };
                let _ = tx.send(out).await;
                return;
            }
            if tx
                .send(line(&StreamLine::<_, ()>::Progress(snapshot)))
                .await
                .is_err()
            {
                return; // the client went away; the download goes on
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
    });
    Ok(ndjson(rx))
}

/// Live network events as JSON lines, until the client goes away.
async fn events(State(s): State<AppState>) -> Response {
    let mut events = s.api.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if tx.send(line(&event)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    ndjson(rx)
}
