//! HTTP/JSON over the [`Api`] facade, and the web UI: the route table, the server and
//! what every answer gets (security headers, JSON errors).
//!
//! Every route is one row of the route table ([`routes`]): who may call it, and its
//! handler. A handler's `#[utoipa::path]` attribute says its method, path, parameters,
//! body and answers; the router and the OpenAPI document (`GET /api/openapi.json`,
//! [`super::openapi`]) are both built from the rows, so the document cannot list a
//! route the server lacks or miss one it has, and it says who may call each route
//! because the same row puts the authentication layer on it.
//!
//! Owner routes need the CLI's bearer token or a web session ([`super::auth`]); every
//! route refuses cross-origin requests. Errors are JSON [`ErrorBody`]s with a 4xx or 5xx
//! status, whatever produced them (a handler, a body or path that does not parse, an
//! unknown route or method). JSON bodies are limited to [`MAX_BODY`]; browser uploads,
//! streamed to disk, to the daemon's `--max-upload`. Long operations answer with streams:
//! JSON lines for the CLI (`add`, `fetch`, `events`) and server-sent events for the web
//! UI (`events/live`).
//!
//! The handlers live by subject: `web.rs` (the UI's files), `session.rs` (login),
//! `node.rs` (identity, status, settings, peers), `files.rs` (shared files, add,
//! upload), `downloads.rs`, `folders.rs`, `events.rs`, `search.rs` (search, browse,
//! listing, the catalog's setting), `share.rs` (shares, tickets, publish), `doctor.rs`
//! (the self-check), `relays.rs` (relays in use, add, drop); `stream.rs` writes JSON
//! lines.

mod doctor;
mod downloads;
mod events;
mod files;
mod folders;
mod node;
pub mod ops;
mod range;
mod relays;
mod search;
mod session;
mod share;
mod standing;
mod store;
mod stream;
mod web;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tokio::sync::watch;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use super::auth::{self, Auth};
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
    /// The OpenAPI document as JSON text, ready to send: 101 KiB, where a
    /// `serde_json::Value` of it held 1.03 MiB of heap (measured).
    openapi: axum::body::Bytes,
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
    /// The owner, with a body that is streamed to disk rather than held (no JSON body
    /// limit; the handler caps it).
    OwnerUpload,
}

/// One row of the route table: who may call the route, and its handler with what its
/// `#[utoipa::path]` attribute documents.
pub struct Route {
    access: Access,
    handler: UtoipaMethodRouter<AppState>,
}

fn row(access: Access, handler: UtoipaMethodRouter<AppState>) -> Route {
    Route { access, handler }
}

/// The route table. (Kept one row per route, as a table.)
#[rustfmt::skip]
fn routes() -> Vec<Route> {
    use Access::{Owner, OwnerUpload, Public};
    vec![
        // The web UI.
        row(Public, routes!(web::index)),
        row(Public, routes!(web::asset)),
        // Logging in.
        row(Public, routes!(session::session)),
        row(Public, routes!(session::login)),
        row(Public, routes!(session::logout)),
        row(Public, routes!(session::setup)),
        // The node.
        row(Owner, routes!(node::openapi)),
        row(Owner, routes!(node::id)),
        row(Owner, routes!(node::status)),
        row(Owner, routes!(node::stats)),
        row(Owner, routes!(node::get_settings)),
        row(Owner, routes!(node::put_settings)),
        row(Owner, routes!(node::peers)),
        row(Owner, routes!(node::reputation)),
        row(Owner, routes!(standing::mine)),
        row(Owner, routes!(ops::metrics)),
        row(Owner, routes!(doctor::doctor)),
        row(Owner, routes!(relays::relays, relays::add)),
        row(Owner, routes!(relays::drop_relay)),
        // Files.
        row(Owner, routes!(files::files)),
        row(Owner, routes!(files::remove)),
        row(Owner, routes!(files::unpublish)),
        row(Owner, routes!(share::publish)),
        row(Owner, routes!(range::content)),
        row(Owner, routes!(files::add)),
        row(OwnerUpload, routes!(files::upload)),
        row(Owner, routes!(store::verify)),
        row(Owner, routes!(search::list)),
        row(Owner, routes!(search::unlist)),
        row(Owner, routes!(folders::add, folders::folders)),
        row(Owner, routes!(folders::fetch)),
        row(Owner, routes!(folders::folder)),
        // Downloads.
        row(Owner, routes!(downloads::fetch)),
        row(Owner, routes!(downloads::downloads)),
        row(Owner, routes!(downloads::start_download)),
        row(Owner, routes!(downloads::pause)),
        row(Owner, routes!(downloads::resume)),
        row(Owner, routes!(downloads::cancel)),
        row(Owner, routes!(ops::clear_history)),
        // Shares.
        row(Owner, routes!(share::shares, share::share)),
        row(Owner, routes!(share::unshare)),
        row(Owner, routes!(share::qr)),
        row(Owner, routes!(share::open_ticket)),
        // Events.
        // Search and browse.
        row(Owner, routes!(search::search)),
        row(Owner, routes!(search::browse)),
        row(Owner, routes!(search::catalog)),
        row(Owner, routes!(search::set_catalog)),
        row(Owner, routes!(events::events)),
        row(Owner, routes!(events::live)),
    ]
}

/// The router of the route table, and the document of the same rows. `auth` is the
/// authentication layer owner routes get (none when only the document is wanted).
fn build(auth: Option<&Auth>) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut router = OpenApiRouter::with_openapi(super::openapi::base());
    for Route { access, handler } in routes() {
        let (schemas, mut paths, mut method_router) = handler;
        super::openapi::describe(&mut paths, access != Access::Public);
        if access == Access::OwnerUpload {
            // Uploads are streamed to disk and capped by the handler.
            method_router = method_router.layer(DefaultBodyLimit::disable());
        }
        if let (Some(auth), true) = (auth, access != Access::Public) {
            method_router = method_router.route_layer(middleware::from_fn_with_state(
                auth.clone(),
                auth::require_owner,
            ));
        }
        router = router.routes((schemas, paths, method_router));
    }
    router.split_for_parts()
}

/// The OpenAPI document of the route table.
pub fn document() -> utoipa::openapi::OpenApi {
    build(None).1
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
    let (router, document) = build(Some(&auth));
    let state = AppState {
        api,
        tasks: config.tasks.clone(),
        auth: auth.clone(),
        openapi: serde_json::to_vec(&document).unwrap_or_default().into(),
        max_upload: config.max_upload,
        closing,
    };
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
