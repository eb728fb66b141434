//! How the CLI finds its daemon: the `api.json` file the daemon writes in its data
//! directory (where the control API listens, the bearer token it wants, its pid). The
//! daemon writes it and the CLI reads it, so its format lives here, below both.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::paths;

/// What the daemon writes for the CLI: where its API is and the token it wants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiEndpoint {
    /// `host:port` of the control API.
    pub addr: SocketAddr,
    /// Bearer token.
    pub token: String,
    /// The daemon's process id.
    pub pid: u32,
}

/// Why the endpoint file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// There is no file (or it cannot be read): no daemon runs for this directory.
    #[error("the p2pd daemon is not running for {0} (start it with `p2pd daemon`)")]
    NotRunning(String),
    /// The file is there but is not an endpoint.
    #[error("{path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: String,
        /// What did not parse.
        source: serde_json::Error,
    },
}

impl ApiEndpoint {
    /// Reads the endpoint of the daemon of `data_dir`.
    pub fn read(data_dir: &Path) -> Result<Self, EndpointError> {
        let path = data_dir.join(paths::API_FILE);
        let bytes = std::fs::read(&path)
            .map_err(|_| EndpointError::NotRunning(data_dir.display().to_string()))?;
        serde_json::from_slice(&bytes).map_err(|source| EndpointError::Corrupt {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes it into `data_dir` (mode 0600: the token is a credential).
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        chunk_store::fsutil::write_private(&data_dir.join(paths::API_FILE), &bytes)
    }
}
