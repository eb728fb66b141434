//! Where a node keeps its files: the data directory and what the daemon writes into it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// File holding the node's Ed25519 key (libp2p protobuf encoding).
pub const IDENTITY_FILE: &str = "identity.key";
/// File where the daemon writes its API address and token for the CLI.
pub const API_FILE: &str = "api.json";
/// The daemon's log file.
pub const LOG_FILE: &str = "p2pd.log";
/// Held locked by the running daemon, so two daemons never share a data directory.
pub const LOCK_FILE: &str = "daemon.lock";
/// Peer scores and bans as older versions saved them; read once into the store's peer ledger.
pub const REPUTATION_FILE: &str = "reputation.json";
/// The one-time web setup link, while no web password is set (mode 0600; the link is
/// never logged).
pub const SETUP_LINK_FILE: &str = "setup-link";
/// The store's directory inside the data directory.
pub const STORE_DIR: &str = "store";

/// The data directory: `--data-dir` / `P2PD_DATA_DIR`, else the platform default.
pub fn data_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    directories::ProjectDirs::from("", "", "p2pd")
        .map(|d| d.data_dir().to_path_buf())
        .context("cannot find a home directory; pass --data-dir")
}

/// Makes a user-given path absolute against the current directory (without requiring it
/// to exist), because the daemon resolves paths from its own working directory.
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("invalid path {}", path.display()))
}
