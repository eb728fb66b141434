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
//! The password is stored as an argon2id hash (PHC string) in [`PASSWORD_FILE`] in the
//! data directory, written by `p2pd passwd` or by the one-time setup link the daemon
//! prints while no password is set. It is read at every login, so `p2pd passwd` takes
//! effect without a restart, and a new password ends every session made with the old. Failed logins are throttled: after [`FREE_ATTEMPTS`]
//! failures in a row, each further attempt must wait twice as long as the last, up to
//! [`MAX_LOCKOUT`]; attempts during the wait are answered 429.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::types::SessionInfo;
use super::ApiError;

/// File in the data directory holding the argon2 hash of the owner's password.
pub const PASSWORD_FILE: &str = "web-password";
/// How long a web session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins in a row answered without delay.
pub const FREE_ATTEMPTS: u32 = 3;
/// Longest wait imposed after failed logins.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(60);
/// Most sessions kept at once; the oldest goes first.
const MAX_SESSIONS: usize = 64;
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (argon2 hashes any length, but a bound keeps requests small).
pub const MAX_PASSWORD_LEN: usize = 1024;
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

#[derive(Default)]
struct Throttle {
    failures: u32,
    until: Option<Instant>,
}

/// Authentication state of one daemon: the CLI token, web sessions, the setup token and
/// the login throttle. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    token: String,
    password_path: PathBuf,
    cookie_name: String,
    loopback_only: bool,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    setup_token: Mutex<Option<String>>,
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

/// Checks a new password's length.
pub fn check_new_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(ApiError::bad_request(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::bad_request(format!(
            "the password must have at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

/// The argon2id hash of a password, as a PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| anyhow::anyhow!("making a password salt: {e}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a stored PHC hash (false for a malformed hash).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc.trim()) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashes `password` and stores it in the data directory (mode 0600, via a temporary
/// file and a rename, so a crash leaves the old password or the new one).
pub fn store_password(data_dir: &Path, password: &str) -> anyhow::Result<()> {
    check_new_password(password).map_err(|e| crate::UsageError(e.message))?;
    let hash = hash_password(password)?;
    chunk_store::fsutil::write_private(
        &data_dir.join(PASSWORD_FILE),
        format!("{hash}\n").as_bytes(),
    )?;
    Ok(())
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
        let password_path = data_dir.join(PASSWORD_FILE);
        let setup_token = (!password_path.exists()).then(random_hex);
        Auth {
            inner: Arc::new(Inner {
                token,
                password_path,
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
        let token = lock(&self.inner.setup_token).clone()?;
        let host = if addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", addr.port())
        } else {
            addr.to_string()
        };
        Some(format!("http://{host}/#/setup/{token}"))
    }

    /// Whether the owner has set a password.
    pub fn password_set(&self) -> bool {
        self.inner.password_path.exists()
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

    /// A fingerprint of the stored password hash (`None` while there is none). The hash
    /// has a random salt, so setting any password, even the same one, changes it.
    fn password_version(&self) -> Option<[u8; 32]> {
        fs::read(&self.inner.password_path)
            .ok()
            .map(|bytes| *blake3::hash(&bytes).as_bytes())
    }

    fn new_session(&self) -> (String, SessionInfo) {
        let token = random_hex();
        let csrf = random_hex();
        let password = self.password_version();
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
    /// value. Failures are throttled.
    pub async fn login(&self, password: &str) -> Result<(String, SessionInfo), ApiError> {
        {
            let throttle = lock(&self.inner.throttle);
            if let Some(until) = throttle.until {
                let wait = until.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    return Err(ApiError::too_many_requests(
                        format!(
                            "too many failed logins: try again in {} s",
                            wait.as_secs() + 1
                        ),
                        wait.as_secs() + 1,
                    ));
                }
            }
        }
        let stored = match fs::read_to_string(&self.inner.password_path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::conflict(
                "no password is set: run `p2pd passwd`, or open the setup link the daemon printed",
            )),
            Err(e) => return Err(ApiError::internal(format!("reading the password: {e}"))),
        };
        let ok = {
            let _permit = self.hashing_permit().await?;
            let password = password.to_string();
            tokio::task::spawn_blocking(move || verify_password(&password, &stored))
                .await
                .unwrap_or(false)
        };
        let mut throttle = lock(&self.inner.throttle);
        if !ok {
            throttle.failures += 1;
            if throttle.failures >= FREE_ATTEMPTS {
                let doublings = (throttle.failures - FREE_ATTEMPTS).min(16);
                let wait = Duration::from_secs(1u64 << doublings).min(MAX_LOCKOUT);
                throttle.until = Some(Instant::now() + wait);
            }
            tracing::warn!(failures = throttle.failures, "failed web login");
            return Err(ApiError::unauthorized("wrong password"));
        }
        *throttle = Throttle::default();
        drop(throttle);
        tracing::info!("web login");
        Ok(self.new_session())
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
        check_new_password(password)?;
        {
            let expected = lock(&self.inner.setup_token);
            let valid = expected
                .as_deref()
                .is_some_and(|t| constant_time_eq(t.as_bytes(), token.trim().as_bytes()));
            if self.password_set() {
                return Err(ApiError::conflict(
                    "a password is already set: log in, or change it with `p2pd passwd`",
                ));
            }
            if !valid {
                return Err(ApiError::forbidden("this setup link is not valid"));
            }
        }
        let _permit = self.hashing_permit().await?;
        let data_dir = self
            .inner
            .password_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || store_password(&data_dir, &password))
            .await
            .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
            .map_err(|e| ApiError::internal(format!("storing the password: {e}")))?;
        *lock(&self.inner.setup_token) = None;
        tracing::info!("web password set through the setup link");
        Ok(self.new_session())
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
    fn hashes_verify_only_their_password() {
        let hash = hash_password("correct horse").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

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
