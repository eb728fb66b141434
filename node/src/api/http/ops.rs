//! The operator's routes: clearing the download history, and the Prometheus metrics,
//! served on the API (behind the token) and, with `--metrics ADDR`, on a listener of
//! their own without authentication (they hold counts, no secrets), for a scraper that
//! cannot read the token.

use std::future::Future;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use crate::api::ops::ClearedHistory;
use crate::api::{Api, ApiError};

/// Forget the ended downloads (done, failed, cancelled); paused and running ones stay.
#[utoipa::path(delete, path = "/api/downloads", tag = "downloads",
    responses((status = 200, description = "How many were forgotten.", body = ClearedHistory)))]
pub(super) async fn clear_history(
    State(s): State<AppState>,
) -> Result<Json<ClearedHistory>, ApiError> {
    s.api.clear_download_history().await.map(Json)
}

/// Prometheus metrics: libp2p's (`libp2p_*`) and the daemon's (`p2pd_*`).
#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, description = "The OpenMetrics text format.",
        content_type = "application/openmetrics-text", body = String)))]
pub(super) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    scrape(&s.api).await
}

async fn scrape(api: &Api) -> Result<Response, ApiError> {
    let text = api.metrics_text().await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

/// Serves `GET /metrics` alone on `listener`, without authentication, until `stop`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    api: Api,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route(
            "/metrics",
            get(|State(api): State<Api>| async move { scrape(&api).await }),
        )
        .with_state(api);
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}
