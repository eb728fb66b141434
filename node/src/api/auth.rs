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
//! Around both, [`guard_origin`] refuses cross-origin requests (an `Origin` that is not
//! this server, `Sec-Fetch-Site: cross-site`) and, while the API listens on loopback only,
//! any `Host` that is not a loopback name (DNS rebinding).
//!
//! The password is stored as an argon2id hash (PHC string) in the data directory's
//! password file ([`crate::password`]), written by `p2pd passwd` or through the one-time
//! setup link the daemon prints while no password is set; the link expires after
//! [`SETUP_TTL`], or as soon as a password is set. A changed file is noticed at the next
//! request (`stored.rs`: one `stat` per request, a read only when it changed), so `p2pd
//! passwd` takes effect without a restart, and a new password ends every session made
//! with the old. argon2 runs only for a login or a new password, one at a time, on a
//! blocking thread. Failed logins are throttled (`throttle.rs`): after [`FREE_ATTEMPTS`]
//! failures in a row, each further attempt must wait twice as long as the last, up to
//! [`MAX_LOCKOUT`]; attempts during the wait, or beyond what the throttle lets be
//! checked at once, are answered 429.

mod stored;
mod throttle;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::types::SessionInfo;
use super::ApiError;
use crate::password::{self, PASSWORD_FILE};
use stored::StoredPassword;
use throttle::{Refused, Throttle};
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

struct Session {
    csrf: String,
    expires: Instant,
    /// The password (hash file) it logged in with: a new password ends the session.
    password: Option<[u8; 32]>,
}

/// The one-time token of the setup link.
struct SetupToken {
    token: String,
    expires: Instant,
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

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn session_key(token: &str) -> [u8; 32] {
    // Sessions are looked up by a hash of the cookie, so the lookup's timing says
    // nothing about the secret.
    *blake3::hash(token.as_bytes()).as_bytes()
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

    /// The link that lets whoever reads the daemon's output set the first password, while
    /// none is set. The token is in the fragment, so it never reaches a log or a
    /// `Referer` header.
    pub fn setup_link(&self, addr: SocketAddr) -> Option<String> {
        let token = self.setup_token()?;
        let host = if addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", addr.port())
        } else {
            addr.to_string()
        };
        Some(format!("http://{host}/#/setup/{token}"))
    }

    /// Whether the owner has set a password.
    pub fn password_set(&self) -> bool {
        self.inner.password.current().is_some()
    }

    /// The setup token while it is valid: not expired, and no password set (by the link
    /// or by `p2pd passwd`). Once invalid it is gone for good.
    fn setup_token(&self) -> Option<String> {
        let mut setup = lock(&self.inner.setup_token);
        let valid = setup
            .as_ref()
            .is_some_and(|s| s.expires > Instant::now() && !self.password_set());
        if !valid {
            *setup = None;
        }
        setup.as_ref().map(|s| s.token.clone())
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

    /// A fingerprint of the stored password (`None` while there is none).
    fn password_version(&self) -> Option<[u8; 32]> {
        self.inner.password.current().map(|s| s.version)
    }

    /// Starts a session of the password whose version is `password`.
    fn new_session(&self, password: Option<[u8; 32]>) -> (String, SessionInfo) {
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

    /// Checks the password; on success starts a session and returns its `Set-Cookie`
    /// value. Failures are throttled, and the throttle's budget is taken before the
    /// check waits for its turn, so attempts arriving at once cannot all be checked.
    pub async fn login(&self, password: &str) -> Result<(String, SessionInfo), ApiError> {
        let Some(stored) = self.inner.password.current() else {
            return Err(ApiError::conflict(
                "no password is set: run `p2pd passwd`, or open the setup link the daemon printed",
            ));
        };
        if let Err(Refused(wait)) = lock(&self.inner.throttle).start(Instant::now()) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(ApiError::too_many_requests(
                format!("too many failed logins: try again in {secs} s"),
                secs.max(1),
            ));
        }
        // Ends the attempt if this future is dropped before the check is done.
        let mut attempt = Attempt {
            throttle: &self.inner.throttle,
            open: true,
        };
        let ok = {
            let _permit = self.hashing_permit().await?;
            let password = password.to_string();
            let phc = stored.phc.clone();
            tokio::task::spawn_blocking(move || password::verify(&password, &phc))
                .await
                .unwrap_or(false)
        };
        let failures = attempt.finish(ok);
        if !ok {
            tracing::warn!(failures, "failed web login");
            return Err(ApiError::unauthorized("wrong password"));
        }
        tracing::info!("web login");
        Ok(self.new_session(Some(stored.version)))
    }

    /// Waits for the right to run an argon2 hash (one at a time: each takes memory and
    /// CPU, and login attempts must not be able to pile them up).
    async fn hashing_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.inner
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::internal("shutting down"))
    }

    /// Sets the first password with the one-time setup token and starts a session.
    pub async fn setup(
        &self,
        token: &str,
        password: &str,
    ) -> Result<(String, SessionInfo), ApiError> {
        password::check_new(password).map_err(|e| ApiError::bad_request(e.to_string()))?;
        // One setup at a time, and the token checked by the one that holds the turn: two
        // requests with the same token cannot both set a password.
        let _permit = self.hashing_permit().await?;
        if self.password_set() {
            return Err(ApiError::conflict(
                "a password is already set: log in, or change it with `p2pd passwd`",
            ));
        }
        let expired = lock(&self.inner.setup_token)
            .as_ref()
            .is_some_and(|s| s.expires <= Instant::now());
        let valid = self
            .setup_token()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.trim().as_bytes()));
        if expired {
            return Err(ApiError::forbidden(
                "this setup link has expired: set the password with `p2pd passwd`",
            ));
        }
        if !valid {
            return Err(ApiError::forbidden("this setup link is not valid"));
        }
        let data_dir = self.inner.data_dir.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || password::store(&data_dir, &password))
            .await
            .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
            .map_err(|e| ApiError::internal(e.to_string()))?;
        *lock(&self.inner.setup_token) = None;
        tracing::info!("web password set through the setup link");
        Ok(self.new_session(self.password_version()))
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

    /// Checks `Host`, `Origin` and `Sec-Fetch-Site`.
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if self.inner.loopback_only {
            if let Some(host) = host {
                if !is_loopback_host(host) {
                    return Err(ApiError::forbidden(format!(
                        "refused: Host {host:?} is not this loopback address"
                    )));
                }
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let same = host.is_some_and(|h| {
                origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    .is_some_and(|o| o.eq_ignore_ascii_case(h))
            });
            if !same {
                return Err(ApiError::forbidden(format!(
                    "cross-origin request from {origin:?} refused"
                )));
            }
        }
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            if site == "cross-site" || site == "same-site" {
                return Err(ApiError::forbidden("cross-site request refused"));
            }
        }
        Ok(())
    }
}

/// A login attempt the throttle counts until it is finished or dropped.
struct Attempt<'a> {
    throttle: &'a Mutex<Throttle>,
    open: bool,
}

impl Attempt<'_> {
    /// Records the outcome; returns the failures in a row now.
    fn finish(&mut self, ok: bool) -> u32 {
        self.open = false;
        let mut throttle = lock(self.throttle);
        throttle.finish(ok, Instant::now());
        throttle.failures()
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            lock(self.throttle).abandon();
        }
    }
}

/// How long the setup link lasts ([`SETUP_TTL`]; a test build may shorten it with
/// `P2PD_TEST_SETUP_TTL_MS`).
fn setup_ttl() -> Duration {
    #[cfg(feature = "test-faults")]
    if let Some(ms) = std::env::var("P2PD_TEST_SETUP_TTL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    SETUP_TTL
}

/// `host[:port]` names this machine's loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Middleware on every route: refuses cross-origin requests.
pub async fn guard_origin(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    if let Err(e) = auth.check_origin(request.headers()) {
        return e.into_response();
    }
    next.run(request).await
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
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1:5890",
            "localhost:1",
            "[::1]:80",
            "127.1.2.3",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in ["evil.example:5890", "10.0.0.1:5890", "[fe80::1]:1", ""] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

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
