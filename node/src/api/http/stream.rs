//! Streamed answers: JSON lines (`application/x-ndjson`), one JSON object per line.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Serialize;

/// The media type of JSON lines.
pub(super) const NDJSON: &str = "application/x-ndjson";

/// One JSON line.
pub(super) fn line<T: Serialize>(value: &T) -> Bytes {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// An answer whose body is the given JSON lines, sent as they come.
pub(super) fn ndjson(lines: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    use futures::StreamExt;
    let mut response = Body::from_stream(lines.map(Ok::<_, Infallible>)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    response
}

/// The lines a bounded channel receives, as a stream.
pub(super) fn receiver_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
}
