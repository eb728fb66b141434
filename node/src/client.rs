//! The CLI's side of the control API: finds the daemon through the file it writes in the
//! data directory and calls it over HTTP with its token.

use std::path::Path;

use anyhow::Context as _;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::types::ErrorBody;
use crate::control::ApiEndpoint;
use crate::UsageError;

/// A client of one daemon's API.
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Turns an error body into the CLI's error: a 4xx other than 404 is the user's input
/// (exit 2); anything else is a failure (exit 1).
fn api_failure(body: ErrorBody) -> anyhow::Error {
    if (400..500).contains(&body.status) && body.status != 404 {
        UsageError(body.message).into()
    } else {
        anyhow::anyhow!(body.message)
    }
}

impl ApiClient {
    /// Connects to the daemon of `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> anyhow::Result<Self> {
        let endpoint = ApiEndpoint::read(data_dir)?;
        Ok(ApiClient {
            base: format!("http://{}", endpoint.addr),
            token: endpoint.token,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .context("building the HTTP client")?,
        })
    }

    fn connect_error(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow::anyhow!(
                "the p2pd daemon is not running (no API answers at {}; start it with `p2pd daemon`)",
                self.base
            )
        } else {
            anyhow::anyhow!("control API request failed: {e}")
        }
    }

    async fn check(&self, response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: ErrorBody = response.json().await.unwrap_or(ErrorBody {
            status,
            message: format!("the daemon answered HTTP {status}"),
        });
        Err(api_failure(body))
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.connect_error(e))?;
        Ok(self.check(response).await?.json().await?)
    }

    /// `method path` with an optional JSON body.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<T> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.connect_error(e))?;
        Ok(self.check(response).await?.json().await?)
    }

    /// `POST path` answered by a stream of JSON lines: calls `on_progress` with each
    /// progress line and returns the final result.
    pub async fn stream<B: Serialize, P: DeserializeOwned, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        mut on_progress: impl FnMut(P),
    ) -> anyhow::Result<R> {
        use crate::api::types::StreamLine;
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| self.connect_error(e))?;
        let response = self.check(response).await?;
        let mut stream = response.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| anyhow::anyhow!("lost the connection to the daemon"))?;
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let parsed: StreamLine<P, R> = serde_json::from_slice(&line)
                    .context("the daemon sent a malformed progress line")?;
                match parsed {
                    StreamLine::Progress(p) => on_progress(p),
                    StreamLine::Done(r) => return Ok(r),
                    StreamLine::Error(e) => return Err(api_failure(e)),
                }
            }
        }
        anyhow::bail!("the daemon closed the connection before finishing")
    }
}
