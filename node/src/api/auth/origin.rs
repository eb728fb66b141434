//! Refusing requests from elsewhere: a cross-origin `Origin` or `Sec-Fetch-Site`, and,
//! while the API listens on loopback only, a `Host` that is not a loopback name (DNS
//! rebinding).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Auth;
use crate::api::ApiError;

impl Auth {
    /// Checks `Host`, `Origin` and `Sec-Fetch-Site`.
    pub(super) fn check_origin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
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
pub(super) fn is_loopback_host(host: &str) -> bool {
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
}
