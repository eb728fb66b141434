//! Logging in to the web UI: the session, login, logout and first-password setup
//! routes, over [`crate::api::auth`].

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{json_error, AppState};
use crate::api::auth;
use crate::api::types::{LoginRequest, SessionInfo, SetupRequest};
use crate::api::ApiError;

/// Whether this request is authenticated, and the session's CSRF token.
#[utoipa::path(get, path = "/api/session", tag = "session",
    responses((status = 200, description = "This request's credentials.", body = SessionInfo)))]
pub(super) async fn session(State(s): State<AppState>, headers: HeaderMap) -> Json<SessionInfo> {
    Json(s.auth.session_info(&headers))
}

/// Log in with the owner's password: sets an HttpOnly session cookie. Failed attempts
/// are throttled (429).
#[utoipa::path(post, path = "/api/login", tag = "session", request_body = LoginRequest,
    responses((status = 200, description = "Logged in; the cookie is set.", body = SessionInfo)))]
pub(super) async fn login(
    State(s): State<AppState>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let (cookie, info) = s.auth.login(&request.password).await?;
    Ok(auth::with_cookie(Json(info).into_response(), &cookie))
}

/// Set the first password with the one-time token of the setup link the daemon printed.
#[utoipa::path(post, path = "/api/setup", tag = "session", request_body = SetupRequest,
    responses((status = 200, description = "The password is set and this browser logged in.", body = SessionInfo)))]
pub(super) async fn setup(
    State(s): State<AppState>,
    body: Result<Json<SetupRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let (cookie, info) = s.auth.setup(&request.token, &request.password).await?;
    Ok(auth::with_cookie(Json(info).into_response(), &cookie))
}

/// End this session.
#[utoipa::path(post, path = "/api/logout", tag = "session",
    responses((status = 200, description = "Logged out; the cookie is cleared.", body = SessionInfo)))]
pub(super) async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
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
