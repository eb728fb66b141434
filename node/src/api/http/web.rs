//! The web UI's files: the page at `/` and its assets, embedded in the binary.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;

/// The web UI (a single page).
#[utoipa::path(get, path = "/", tag = "web UI",
    responses((status = 200, description = "The web UI.", content_type = "text/html", body = String)))]
pub(super) async fn index() -> Response {
    match crate::web::asset("index.html") {
        Some((bytes, mime)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => ApiError::not_found("the web UI is missing").into_response(),
    }
}

/// A static file of the web UI.
#[utoipa::path(get, path = "/assets/{file}", tag = "web UI",
    params(("file" = String, Path, description = "The file's name, e.g. `app.js`.")),
    responses((status = 200, description = "The file.", content_type = "*/*", body = String)))]
pub(super) async fn asset(Path(file): Path<String>) -> Response {
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
