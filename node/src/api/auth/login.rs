//! The owner's password: the one-time setup link that sets the first one, and login.
//! argon2 runs one hash at a time on a blocking thread, and failed logins are throttled.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::throttle::{Refused, Throttle};
use super::{constant_time_eq, lock, Auth, SETUP_TTL};
use crate::api::types::SessionInfo;
use crate::api::ApiError;
use crate::password::{self};

/// The one-time token of the setup link.
pub(super) struct SetupToken {
    pub(super) token: String,
    pub(super) expires: Instant,
}

impl Auth {
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
    pub(super) fn setup_token(&self) -> Option<String> {
        let mut setup = lock(&self.inner.setup_token);
        let valid = setup
            .as_ref()
            .is_some_and(|s| s.expires > Instant::now() && !self.password_set());
        if !valid {
            *setup = None;
        }
        setup.as_ref().map(|s| s.token.clone())
    }

    /// A fingerprint of the stored password (`None` while there is none).
    pub(super) fn password_version(&self) -> Option<[u8; 32]> {
        self.inner.password.current().map(|s| s.version)
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
    pub(super) async fn hashing_permit(
        &self,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
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
}

/// A login attempt the throttle counts until it is finished or dropped.
pub(super) struct Attempt<'a> {
    throttle: &'a Mutex<Throttle>,
    open: bool,
}

impl Attempt<'_> {
    /// Records the outcome; returns the failures in a row now.
    pub(super) fn finish(&mut self, ok: bool) -> u32 {
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
pub(super) fn setup_ttl() -> Duration {
    #[cfg(feature = "test-faults")]
    if let Some(ms) = std::env::var("P2PD_TEST_SETUP_TTL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    SETUP_TTL
}
