//! Who may call the control API, and how the web UI logs in.
//!
//! Two kinds of caller are let in:
//! - **The CLI and scripts** send `Authorization: Bearer <token>`, the random token the
//!   daemon writes into `api.json` in its data directory. A bearer token is never sent
//!   by a browser on its own, so these requests need no CSRF protection.
//! - **The web UI** logs in with the owner's password and gets a session cookie
//!   (`HttpOnly`, `SameSite=Strict`, expiring after [`SESSION_TTL`]). Because a browser
//!   attaches cookies by itself, every state-changing request of a session must also
//!   carry the session's CSRF token in the `X-CSRF-Token` header, which a page of
//!   another origin cannot read.
//!
//! Around both, [`guard_origin`] (`origin.rs`) refuses cross-origin requests (an
//! `Origin` that is not this server, `Sec-Fetch-Site: cross-site`) and, while the API
//! listens on loopback only, any `Host` that is not a loopback name (DNS rebinding).
//!
//! The password is stored as an argon2id hash (PHC string) in the data directory's
//! password file ([`crate::password`]), written by `p2pd passwd` or through the one-time
//! setup link the daemon prints while no password is set; the link expires after
//! [`SETUP_TTL`], or as soon as a password is set. A changed file is noticed at the next
//! request (`stored.rs`: one `stat` per request, a read only when it changed), so `p2pd
//! passwd` takes effect without a restart, and a new password ends every session made
//! with the old (`sessions.rs`). argon2 runs only for a login or a new password
//! (`login.rs`), one at a time, on a blocking thread. Failed logins are throttled
//! (`throttle.rs`): after [`FREE_ATTEMPTS`] failures in a row, each further attempt must
//! wait twice as long as the last, up to [`MAX_LOCKOUT`]; attempts during the wait, or
//! beyond what the throttle lets be checked at once, are answered 429.

mod login;
mod origin;
mod sessions;
mod stored;
mod throttle;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::password::PASSWORD_FILE;
use login::{setup_ttl, SetupToken};
pub use origin::guard_origin;
pub use sessions::with_cookie;
use sessions::{cookie_value, session_key, Session};
use stored::StoredPassword;
use throttle::Throttle;
pub use throttle::{FREE_ATTEMPTS, MAX_LOCKOUT};

/// How long a web session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long the one-time setup link works after the daemon starts.
pub const SETUP_TTL: Duration = Duration::from_secs(3600);
/// Most sessions kept at once; the oldest goes first.
const MAX_SESSIONS: usize = 64;
/// The header a session's state-changing requests carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who made a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The CLI's bearer token.
    Token,
    /// A web session.
    Session {
        /// Its CSRF token.
        csrf: String,
        /// When it expires.
        expires: Instant,
    },
}

/// Authentication state of one daemon: the CLI token, web sessions, the setup token and
/// the login throttle. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    token: String,
    data_dir: PathBuf,
    password: StoredPassword,
    cookie_name: String,
    loopback_only: bool,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    setup_token: Mutex<Option<SetupToken>>,
    throttle: Mutex<Throttle>,
    /// One password hash at a time: argon2 is meant to be expensive.
    hashing: tokio::sync::Semaphore,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// 32 random bytes as hex.
pub fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    data_encoding::HEXLOWER.encode(&bytes)
}

/// Compares secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// The authentication state of a daemon whose API listens on `addr`, with the CLI
    /// `token`, and the password kept in `data_dir`. While no password is set, a one-time
    /// setup token is made; see [`Auth::setup_link`].
    pub fn new(token: String, data_dir: &Path, addr: SocketAddr, public: bool) -> Self {
        let password = StoredPassword::new(data_dir.join(PASSWORD_FILE));
        let setup_token = password.current().is_none().then(|| SetupToken {
            token: random_hex(),
            expires: Instant::now() + setup_ttl(),
        });
        Auth {
            inner: Arc::new(Inner {
                token,
                data_dir: data_dir.to_path_buf(),
                password,
                // Cookies are not told apart by port: two daemons on one host need names
                // of their own.
                cookie_name: format!("p2pd_session_{}", addr.port()),
                loopback_only: !public && addr.ip().is_loopback(),
                sessions: Mutex::new(HashMap::new()),
                setup_token: Mutex::new(setup_token),
                throttle: Mutex::new(Throttle::default()),
                hashing: tokio::sync::Semaphore::new(1),
            }),
        }
    }

    /// Who made this request, if anyone we know.
    pub fn identify(&self, headers: &HeaderMap) -> Option<Principal> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(token) = bearer {
            return constant_time_eq(token.trim().as_bytes(), self.inner.token.as_bytes())
                .then_some(Principal::Token);
        }
        let cookie = cookie_value(headers, &self.inner.cookie_name)?;
        let key = session_key(cookie);
        let password = self.password_version();
        let mut sessions = lock(&self.inner.sessions);
        let now = Instant::now();
        // Expired sessions go, and so do all sessions once the password changed.
        sessions.retain(|_, s| s.expires > now && s.password == password);
        sessions.get(&key).map(|s| Principal::Session {
            csrf: s.csrf.clone(),
            expires: s.expires,
        })
    }
}

/// Middleware on the owner's routes: the bearer token, or a session (with its CSRF token
/// on anything but a read).
pub async fn require_owner(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    match auth.identify(request.headers()) {
        Some(Principal::Token) => next.run(request).await,
        Some(Principal::Session { csrf, .. }) => {
            let safe = matches!(
                *request.method(),
                Method::GET | Method::HEAD | Method::OPTIONS
            );
            let presented = request
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if safe || constant_time_eq(presented.as_bytes(), csrf.as_bytes()) {
                next.run(request).await
            } else {
                ApiError::forbidden("missing or wrong X-CSRF-Token header").into_response()
            }
        }
        None => ApiError::unauthorized(
            "log in, or send the API token from the data directory (Authorization: Bearer …)",
        )
        .into_response(),
    }
}
