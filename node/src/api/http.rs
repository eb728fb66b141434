//! HTTP/JSON over the [`Api`] facade, and the web UI.
//!
//! Every route is one row of the route table ([`routes`]): method, path, who may call
//! it, what it takes and answers, and its handler. The router and the OpenAPI document
//! (`GET /api/openapi.json`, [`super::openapi`]) are both made from that table, so the
//! document cannot list a route the server lacks or miss one it has.
//!
//! Owner routes need the CLI's bearer token or a web session ([`super::auth`]); every
//! route refuses cross-origin requests. Errors are JSON [`ErrorBody`]s with a 4xx or 5xx
//! status, whatever produced them (a handler, a body or path that does not parse, an
//! unknown route or method). JSON bodies are limited to [`MAX_BODY`]; browser uploads,
//! streamed to disk, to the daemon's `--max-upload`. Long operations answer with streams:
//! JSON lines for the CLI (`add`, `fetch`, `events`) and server-sent events for the web
//! UI (`events/live`).

use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc, watch};

mod search;

use super::auth::{self, Auth};
use super::types::*;
use super::{Api, ApiError};

/// Largest JSON request body accepted.
pub const MAX_BODY: usize = 64 << 10;
/// Longest the server waits for open streams after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the control API is served.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The CLI's bearer token.
    pub token: String,
    /// The address the API listens on.
    pub addr: SocketAddr,
    /// Whether it may listen on a non-loopback address (`--api-public`).
    pub public: bool,
    /// Largest browser upload, in bytes.
    pub max_upload: u64,
    /// The daemon's task tree: streamed answers run in it and end when it stops.
    pub tasks: crate::tasks::Tasks,
}

#[derive(Clone)]
struct AppState {
    api: Api,
    tasks: crate::tasks::Tasks,
    auth: Auth,
    openapi: Arc<serde_json::Value>,
    max_upload: u64,
    /// Becomes `true` when the daemon shuts down: live streams end.
    closing: watch::Receiver<bool>,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who reaches the port (login, the UI's static files).
    Public,
    /// The owner: bearer token or web session.
    Owner,
}

/// What a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Nothing.
    None,
    /// A JSON body of the named schema.
    Json(&'static str),
    /// The raw bytes of a file.
    Raw,
}

/// What a route answers (with 200, unless an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A JSON value of the named schema.
    Json(&'static str),
    /// A JSON array of the named schema.
    JsonList(&'static str),
    /// JSON lines (`application/x-ndjson`): progress, then `done` or `error`; the name is
    /// the schema of the final result.
    Ndjson(&'static str),
    /// Server-sent events, each `data:` a JSON `LiveEvent`.
    EventStream,
    /// The bytes of a file (`application/octet-stream`, as an attachment).
    File,
    /// An HTML page.
    Html,
    /// A static file of the web UI.
    Asset,
}

/// One row of the route table, without its handler.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The path, with `{name}` parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line on what it does.
    pub summary: &'static str,
    /// Its request body.
    pub input: Input,
    /// Its answer.
    pub output: Output,
    /// Query parameters: name and description (all optional).
    pub query: &'static [(&'static str, &'static str)],
}

struct Route {
    spec: RouteSpec,
    handler: MethodRouter<AppState>,
}

#[allow(clippy::too_many_arguments)]
fn route<H, T>(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    input: Input,
    output: Output,
    query: &'static [(&'static str, &'static str)],
    handler: H,
) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = match method {
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        _ => MethodFilter::GET,
    };
    Route {
        spec: RouteSpec {
            method,
            path,
            access,
            summary,
            input,
            output,
            query,
        },
        handler: on(filter, handler),
    }
}

/// The route table. (Kept one row per route, as a table, rather than as rustfmt would
/// lay it out.)
#[rustfmt::skip]
fn routes() -> Vec<Route> {
    use Access::{Owner, Public};
    use Input::Json as In;
    use Output::{Json as Out, JsonList, Ndjson};
    vec![
        // The web UI.
        route("GET", "/", Public, "The web UI (a single page).", Input::None, Output::Html, &[], index),
        route("GET", "/assets/{file}", Public, "A static file of the web UI.", Input::None, Output::Asset, &[], asset),
        // Logging in.
        route("GET", "/api/session", Public, "Whether this request is authenticated, and the session's CSRF token.", Input::None, Out("SessionInfo"), &[], session),
        route("POST", "/api/login", Public, "Log in with the owner's password: sets an HttpOnly session cookie. Failed attempts are throttled (429).", In("LoginRequest"), Out("SessionInfo"), &[], login),
        route("POST", "/api/logout", Public, "End this session.", Input::None, Out("SessionInfo"), &[], logout),
        route("POST", "/api/setup", Public, "Set the first password with the one-time token of the setup link the daemon printed.", In("SetupRequest"), Out("SessionInfo"), &[], setup),
        // The node.
        route("GET", "/api/openapi.json", Owner, "This document.", Input::None, Out("OpenApi"), &[], openapi),
        route("GET", "/api/id", Owner, "Peer id and full addresses (to bootstrap from).", Input::None, Out("IdResponse"), &[], id),
        route("GET", "/api/status", Owner, "Version, uptime, display name, identity and reach, file count, downloads.", Input::None, Out("StatusResponse"), &[], status),
        route("GET", "/api/stats", Owner, "Upload and download rates now and over the last five minutes.", Input::None, Out("StatsResponse"), &[], stats),
        route("GET", "/api/settings", Owner, "The owner's settings (display name).", Input::None, Out("Settings"), &[], get_settings),
        route("PUT", "/api/settings", Owner, "Change the settings.", In("Settings"), Out("Settings"), &[], put_settings),
        route("GET", "/api/peers", Owner, "Connected peers: direct or relayed, RTT, bytes and rates each way, reputation, ban.", Input::None, JsonList("PeerView"), &[], peers),
        route("GET", "/api/reputation", Owner, "This node's scores for every peer it has dealt with, best first.", Input::None, JsonList("PeerReputation"), &[], reputation),
        // Files.
        route("GET", "/api/files", Owner, "Files this node holds (complete or partial).", Input::None, JsonList("FileInfo"), &[], files),
        route("DELETE", "/api/files/{cid}", Owner, "Stop sharing a file and delete the store's copy.", Input::None, Out("CidResponse"), &[], remove),
        route("POST", "/api/files/{cid}/unpublish", Owner, "Stop announcing a file (it stays in the store).", Input::None, Out("CidResponse"), &[], unpublish),
        route("POST", "/api/files/{cid}/list", Owner, "List a file in this node's catalog (found by search, shown to peers that browse).", Input::None, Out("ListingResponse"), &[], search::list),
        route("POST", "/api/files/{cid}/unlist", Owner, "Take a file out of the catalog: fetchable by CID only.", Input::None, Out("ListingResponse"), &[], search::unlist),
        route("GET", "/api/files/{cid}/content", Owner, "The bytes of a complete file, verified as they are read, as an attachment.", Input::None, Output::File, &[], content),
        route("POST", "/api/add", Owner, "Share a file on the daemon's machine by path (copy, or track in place with no_copy).", In("AddRequest"), Ndjson("AddResponse"), &[], add),
        route("POST", "/api/upload", Owner, "Share a file uploaded as the raw request body (streamed to disk, size-capped).", Input::Raw, Out("AddResponse"), &[("name", "the file's name")], upload),
        // Downloads.
        route("POST", "/api/fetch", Owner, "Download a file to a path on the daemon's machine, streaming progress.", In("FetchRequest"), Ndjson("Progress"), &[], fetch),
        route("GET", "/api/downloads", Owner, "Downloads run since the daemon started.", Input::None, JsonList("DownloadInfo"), &[], downloads),
        route("POST", "/api/downloads", Owner, "Start downloading a file into the store (or attach to its download).", In("StartDownload"), Out("DownloadInfo"), &[], start_download),
        route("POST", "/api/downloads/{cid}/pause", Owner, "Pause a download, keeping its verified chunks.", Input::None, Out("DownloadInfo"), &[], pause),
        route("POST", "/api/downloads/{cid}/resume", Owner, "Resume a paused or failed download.", Input::None, Out("DownloadInfo"), &[], resume),
        route("DELETE", "/api/downloads/{cid}", Owner, "Cancel a download and delete what it fetched.", Input::None, Out("DownloadInfo"), &[], cancel),
        // Search and browse.
        route("POST", "/api/search", Owner, "Keyword search across the network (all words must match): a progress line per result as it arrives, then every result ranked.", In("SearchRequest"), Ndjson("SearchDone"), &[], search::search),
        route("POST", "/api/browse", Owner, "A peer's listed files, by peer id or address.", In("BrowseRequest"), Out("BrowseResponse"), &[], search::browse),
        route("GET", "/api/catalog", Owner, "This node's catalog: files listed, keywords announced, whether peers may browse it.", Input::None, Out("CatalogInfo"), &[], search::catalog),
        route("PUT", "/api/catalog", Owner, "Allow or refuse browsing of the whole catalog (search works either way).", In("CatalogSettingsRequest"), Out("CatalogInfo"), &[], search::set_catalog),
        // Events.
        route("GET", "/api/events", Owner, "Network events as JSON lines (peer_connected, peer_disconnected, external_address).", Input::None, Ndjson("NetEvent"), &[], events),
        route("GET", "/api/events/live", Owner, "Live events for the web UI as server-sent events: network, downloads, files, bandwidth, settings.", Input::None, Output::EventStream, &[], live),
    ]
}

/// The route table without handlers: what the OpenAPI document describes.
#[cfg(test)]
pub fn route_specs() -> Vec<RouteSpec> {
    routes().into_iter().map(|r| r.spec).collect()
}

/// The HTTP application of a daemon, ready to serve.
pub struct App {
    router: Router,
    closing: watch::Sender<bool>,
    /// The one-time link that sets the first web password, while none is set. A secret:
    /// the daemon hands it to the owner, never to a log.
    pub setup_link: Option<String>,
}

/// Builds the control API and web UI over `api`.
pub fn app(api: Api, config: ServerConfig) -> App {
    let auth = Auth::new(config.token, api.data_dir(), config.addr, config.public);
    let setup_link = auth.setup_link(config.addr);
    let (closing_tx, closing) = watch::channel(false);
    let table = routes();
    let specs: Vec<RouteSpec> = table.iter().map(|r| r.spec.clone()).collect();
    let state = AppState {
        api,
        tasks: config.tasks.clone(),
        auth: auth.clone(),
        openapi: Arc::new(super::openapi::document(&specs)),
        max_upload: config.max_upload,
        closing,
    };
    let mut router = Router::new();
    for r in table {
        let mut handler = r.handler;
        if r.spec.input == Input::Raw {
            // Uploads are streamed to disk and capped by the handler.
            handler = handler.layer(DefaultBodyLimit::disable());
        }
        if r.spec.access == Access::Owner {
            handler = handler.route_layer(middleware::from_fn_with_state(
                auth.clone(),
                auth::require_owner,
            ));
        }
        router = router.route(r.spec.path, handler);
    }
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            auth.clone(),
            auth::guard_origin,
        ))
        .layer(middleware::from_fn(finish_response))
        .with_state(state);
    App {
        router,
        closing: closing_tx,
        setup_link,
    }
}

/// Serves `app` on `listener` until `signal` completes; then ends the live streams and
/// waits at most a few seconds for requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let App {
        router, closing, ..
    } = app;
    let (stopped_tx, mut stopped) = watch::channel(false);
    let served = axum::serve(listener, router).with_graceful_shutdown(async move {
        signal.await;
        let _ = closing.send(true);
        let _ = stopped_tx.send(true);
    });
    tokio::select! {
        result = served.into_future() => result,
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    ApiError::new(
        rejection.status().as_u16().clamp(400, 499),
        format!("bad request body: {}", rejection.body_text()),
    )
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("bad query string: {}", rejection.body_text()))
}

/// Security headers on every answer, and a JSON body on every error (axum answers some
/// errors itself, in plain text).
async fn finish_response(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut response = if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (parts, body) = response.into_parts();
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_string();
        let message = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        };
        let mut fixed = ApiError::new(status.as_u16(), message).into_response();
        for name in [header::RETRY_AFTER, header::ALLOW, header::SET_COOKIE] {
            for value in parts.headers.get_all(&name) {
                fixed.headers_mut().append(name.clone(), value.clone());
            }
        }
        fixed
    } else {
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ));
    if is_api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(405, "method not allowed on this route")
}

// ---- the web UI -------------------------------------------------------------------

async fn index() -> Response {
    match crate::web::asset("index.html") {
        Some((bytes, mime)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => ApiError::not_found("the web UI is missing").into_response(),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    match crate::web::asset(&file) {
        Some((bytes, mime)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => ApiError::not_found(format!("no asset {file:?}")).into_response(),
    }
}

// ---- logging in -------------------------------------------------------------------

async fn session(State(s): State<AppState>, headers: HeaderMap) -> Json<SessionInfo> {
    Json(s.auth.session_info(&headers))
}

async fn login(
    State(s): State<AppState>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let (cookie, info) = s.auth.login(&request.password).await?;
    Ok(auth::with_cookie(Json(info).into_response(), &cookie))
}

async fn setup(
    State(s): State<AppState>,
    body: Result<Json<SetupRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let (cookie, info) = s.auth.setup(&request.token, &request.password).await?;
    Ok(auth::with_cookie(Json(info).into_response(), &cookie))
}

async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let cookie = s.auth.logout(&headers);
    let info = SessionInfo {
        authenticated: false,
        via: None,
        password_set: s.auth.password_set(),
        csrf_token: None,
        expires_in_secs: None,
    };
    auth::with_cookie(Json(info).into_response(), &cookie)
}

// ---- the node ---------------------------------------------------------------------

async fn openapi(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json((*s.openapi).clone())
}

async fn id(State(s): State<AppState>) -> Result<Json<IdResponse>, ApiError> {
    s.api.id().await.map(Json)
}

async fn status(State(s): State<AppState>) -> Result<Json<StatusResponse>, ApiError> {
    s.api.status().await.map(Json)
}

async fn stats(State(s): State<AppState>) -> Json<StatsResponse> {
    Json(s.api.stats())
}

async fn get_settings(State(s): State<AppState>) -> Json<Settings> {
    Json(s.api.settings())
}

async fn put_settings(
    State(s): State<AppState>,
    body: Result<Json<Settings>, JsonRejection>,
) -> Result<Json<Settings>, ApiError> {
    let Json(settings) = body.map_err(json_error)?;
    s.api.set_settings(settings).await.map(Json)
}

async fn peers(State(s): State<AppState>) -> Result<Json<Vec<PeerView>>, ApiError> {
    s.api.peers().await.map(Json)
}

async fn reputation(State(s): State<AppState>) -> Json<Vec<PeerReputation>> {
    Json(s.api.reputation())
}

// ---- files ------------------------------------------------------------------------

async fn files(State(s): State<AppState>) -> Result<Json<Vec<FileInfo>>, ApiError> {
    s.api.files().await.map(Json)
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

/// `filename*=` value: UTF-8, percent-encoded (RFC 5987).
fn percent_encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn content(State(s): State<AppState>, Path(cid): Path<String>) -> Result<Response, ApiError> {
    let (cid, name, size, chunks) = s.api.content_info(&cid).await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let api = s.api.clone();
    s.tasks.spawn_until_stop(async move {
        for index in 0..chunks {
            let item = api
                .read_chunk(cid, index)
                .await
                .map(Bytes::from_owner)
                .map_err(|e| std::io::Error::other(e.message));
            let failed = item.is_err();
            // A failed read ends the body early, so the browser sees a failed download
            // rather than a short file.
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(&name)
    );
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    // A file from the network is never run as a page of this origin, even if opened.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
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
    s.tasks.spawn_until_stop(async move {
        let result = api.add(request, progress).await;
        let out = match result {
            Ok(done) => line(&StreamLine::<(), _>::Done(done)),
            Err(e) => line(&StreamLine::<(), ()>::Error(e.body())),
        };
        let _ = tx.send(out).await;
    });
    Ok(ndjson(rx))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

/// Deletes a temporary file when dropped (the upload failed, or was imported).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn upload(
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
    let name = super::upload_name(query.name.as_deref());
    let path = s.api.upload_path()?;
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

// ---- downloads --------------------------------------------------------------------

async fn fetch(
    State(s): State<AppState>,
    body: Result<Json<FetchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let mut progress = s.api.fetch(request)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    s.tasks.spawn_until_stop(async move {
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

async fn downloads(State(s): State<AppState>) -> Json<Vec<DownloadInfo>> {
    Json(s.api.downloads())
}

async fn start_download(
    State(s): State<AppState>,
    body: Result<Json<StartDownload>, JsonRejection>,
) -> Result<Json<DownloadInfo>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    s.api.start_download(request).map(Json)
}

async fn pause(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<DownloadInfo>, ApiError> {
    s.api.pause(&cid).await.map(Json)
}

async fn resume(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<DownloadInfo>, ApiError> {
    s.api.resume(&cid).map(Json)
}

async fn cancel(
    State(s): State<AppState>,
    Path(cid): Path<String>,
) -> Result<Json<DownloadInfo>, ApiError> {
    s.api.cancel(&cid).await.map(Json)
}

// ---- events -----------------------------------------------------------------------

/// A broadcast receiver as a stream that skips what it missed and ends when the
/// daemon shuts down.
fn until_closing<T: Clone + Send + 'static>(
    rx: broadcast::Receiver<T>,
    closing: watch::Receiver<bool>,
) -> impl Stream<Item = T> + Send {
    let items = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(item) => return Some((item, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let mut closing = closing;
    items.take_until(async move {
        let _ = closing.wait_for(|c| *c).await;
    })
}

/// Network events as JSON lines, until the client goes away.
async fn events(State(s): State<AppState>) -> Response {
    let stream = until_closing(s.api.subscribe(), s.closing.clone())
        .map(|event| Ok::<_, Infallible>(line(&NetEvent::from(event))));
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// Everything the web UI shows live, as server-sent events.
async fn live(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let net = until_closing(s.api.subscribe(), s.closing.clone()).map(|event| LiveEvent::Net {
        event: event.into(),
    });
    let own = until_closing(s.api.live_events(), s.closing.clone());
    let stream = futures::stream::select(net, own).map(|event| {
        Ok(Event::default()
            .json_data(&event)
            .unwrap_or_else(|_| Event::default().comment("unserializable event")))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
