//! Event streams: network events as JSON lines for scripts, and everything the web UI
//! shows live as server-sent events. Both end when the daemon shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, watch};

use super::stream::{line, ndjson};
use super::AppState;
use crate::api::types::{LiveEvent, NetEvent};

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

/// Network events as JSON lines (peer_connected, peer_disconnected, external_address),
/// until the client goes away.
#[utoipa::path(get, path = "/api/events", tag = "events",
    responses((status = 200, description = "JSON lines, one network event each; the stream does not end by itself.",
        content_type = "application/x-ndjson", body = NetEvent)))]
pub(super) async fn events(State(s): State<AppState>) -> Response {
    ndjson(
        until_closing(s.api.subscribe(), s.closing.clone())
            .map(|event| line(&NetEvent::from(event))),
    )
}

/// Live events for the web UI as server-sent events: network, downloads, files,
/// bandwidth, settings.
#[utoipa::path(get, path = "/api/events/live", tag = "events",
    responses((status = 200, description = "Server-sent events; each `data:` is one JSON live event. A comment line every 15 s keeps the connection open.",
        content_type = "text/event-stream", body = LiveEvent)))]
pub(super) async fn live(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
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
