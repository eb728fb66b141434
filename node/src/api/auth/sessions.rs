//! Web sessions: the session cookie, starting one at login, what a session may know of
//! itself, and ending it.

use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

use super::{lock, random_hex, Auth, Principal, MAX_SESSIONS, SESSION_TTL};
use crate::api::types::SessionInfo;

pub(super) struct Session {
    pub(super) csrf: String,
    pub(super) expires: Instant,
    /// The password (hash file) it logged in with: a new password ends the session.
    pub(super) password: Option<[u8; 32]>,
}

pub(super) fn session_key(token: &str) -> [u8; 32] {
    // Sessions are looked up by a hash of the cookie, so the lookup's timing says
    // nothing about the secret.
    *blake3::hash(token.as_bytes()).as_bytes()
}

pub(super) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

impl Auth {
    /// What `GET /api/session` answers.
    pub fn session_info(&self, headers: &HeaderMap) -> SessionInfo {
        let principal = self.identify(headers);
        SessionInfo {
            authenticated: principal.is_some(),
            via: principal.as_ref().map(|p| match p {
                Principal::Token => "token".into(),
                Principal::Session { .. } => "session".into(),
            }),
            password_set: self.password_set(),
            csrf_token: match &principal {
                Some(Principal::Session { csrf, .. }) => Some(csrf.clone()),
                _ => None,
            },
            expires_in_secs: match &principal {
                Some(Principal::Session { expires, .. }) => {
                    Some(expires.saturating_duration_since(Instant::now()).as_secs())
                }
                _ => None,
            },
        }
    }

    /// Starts a session of the password whose version is `password`.
    pub(super) fn new_session(&self, password: Option<[u8; 32]>) -> (String, SessionInfo) {
        let token = random_hex();
        let csrf = random_hex();
        let mut sessions = lock(&self.inner.sessions);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            session_key(&token),
            Session {
                csrf: csrf.clone(),
                expires: Instant::now() + SESSION_TTL,
                password,
            },
        );
        let cookie = format!(
            "{}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            self.inner.cookie_name,
            SESSION_TTL.as_secs()
        );
        let info = SessionInfo {
            authenticated: true,
            via: Some("session".into()),
            password_set: true,
            csrf_token: Some(csrf),
            expires_in_secs: Some(SESSION_TTL.as_secs()),
        };
        (cookie, info)
    }

    /// Ends the request's session, if it has one; returns the `Set-Cookie` that clears
    /// the cookie.
    pub fn logout(&self, headers: &HeaderMap) -> String {
        if let Some(cookie) = cookie_value(headers, &self.inner.cookie_name) {
            lock(&self.inner.sessions).remove(&session_key(cookie));
        }
        format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
            self.inner.cookie_name
        )
    }
}

/// A response that sets a cookie.
pub fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; p2pd_session_1=abc; b=2"),
        );
        assert_eq!(cookie_value(&headers, "p2pd_session_1"), Some("abc"));
        assert_eq!(cookie_value(&headers, "p2pd_session_2"), None);
    }
}
