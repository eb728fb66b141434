//! Shares: a file handed to someone as a ticket (`p2pd1…`, docs/protocol.md §12) that
//! holds its CID, name, size, this node's peer id and current addresses, an optional
//! expiry and whether a password is needed. This module owns the share table (persisted
//! in `<data dir>/shares.json`), making tickets from it, and revoking; [`gate`] the
//! serving side's check of private files; [`serve`] the `/p2pd/access/1.0.0` server
//! that enforces expiry and passwords; [`open`] the fetcher's side of that protocol.
//!
//! A password-protected share makes its file private: it is no longer announced in the
//! DHT, and its content goes only to peers that proved the password. For a folder that
//! holds for the folder and its own files (see [`gate`]). Only the Argon2id key and its
//! salt are stored, never the password.

pub mod gate;
pub mod open;
mod renew;
pub mod serve;
mod table;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chunk_store::StoreError;
use dht_proto::access::{derive_key, KdfParams, SALT_LEN};
use dht_proto::ticket::{Ticket, MAX_TICKET_ADDRS, SHARE_ID_LEN};
use dht_proto::Cid;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use crate::network::{is_loopback, is_relayed, Network};
use crate::transfer::{EngineError, Transfers};
pub use gate::Gate;
use table::Table;
pub use table::{Secret, Share, SHARES_FILE};

/// Shares kept at once.
pub const MAX_SHARES: usize = 1024;
/// Longest expiry a share may have (ten years).
pub const MAX_EXPIRY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Relay circuit addresses a ticket carries at most (direct ones go first).
const MAX_CIRCUIT_ADDRS: usize = 2;

/// Why a share operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The file is not here, or not complete.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No share matches.
    #[error("no share matches {0}")]
    NoShare(String),
    /// The input is wrong.
    #[error("{0}")]
    BadInput(String),
    /// Too many shares.
    #[error("{MAX_SHARES} shares exist already; revoke some first")]
    TooMany,
    /// The file is private: it cannot be published while a password share exists.
    #[error("{0} has a password-protected share: revoke it (`p2pd unshare`) before publishing")]
    Private(Cid),
    /// Saving the table failed.
    #[error("saving the shares: {0}")]
    Io(String),
}

/// The share table and the serving side's state (cheap to clone).
#[derive(Clone)]
pub struct Shares {
    inner: Arc<Inner>,
}

struct Inner {
    table: Mutex<Table>,
    path: Option<PathBuf>,
    /// Held while the table is written, so that writes land in order.
    saving: tokio::sync::Mutex<()>,
    transfers: Transfers,
    net: Network,
    gate: Arc<Gate>,
    access: serve::AccessState,
    grant_duration: Duration,
    renewals: renew::Renewals,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Shares {
    /// The shares of a node, loaded from `path` (none when it is absent; an unreadable
    /// table is logged and started afresh, so that a damaged file cannot stop the
    /// daemon, and is kept beside as `shares.json.bad`). Grants to peers last
    /// `grant_duration` ([`serve::GRANT_DURATION`] in the daemon).
    pub fn new(
        transfers: Transfers,
        net: Network,
        path: Option<PathBuf>,
        grant_duration: Duration,
    ) -> Self {
        let table = path.as_deref().map(Table::load).unwrap_or_default();
        let shares = Shares {
            inner: Arc::new(Inner {
                gate: transfers.share_gate(),
                table: Mutex::new(table),
                path,
                saving: tokio::sync::Mutex::new(()),
                transfers,
                net,
                access: serve::AccessState::default(),
                grant_duration,
                renewals: renew::Renewals::default(),
            }),
        };
        shares.update_gate();
        shares
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the files (and folders with their own files) of password shares private.
    fn update_gate(&self) {
        let table = self.table();
        self.inner
            .gate
            .set_private(
                table
                    .iter()
                    .filter(|s| s.secret.is_some())
                    .map(|s| gate::Covered {
                        root: s.cid,
                        members: &s.members,
                    }),
            );
    }

    /// Whether a file has a password share (and so must not be announced).
    pub fn is_private(&self, cid: &Cid) -> bool {
        self.inner.gate.is_private(cid)
    }

    /// Shares a complete file. With a password the file becomes private (see the
    /// module's documentation).
    pub async fn create(
        &self,
        cid: Cid,
        expires_in: Option<Duration>,
        password: Option<String>,
    ) -> Result<(Share, Ticket), ShareError> {
        if let Some(after) = expires_in {
            if after.is_zero() || after > MAX_EXPIRY {
                return Err(ShareError::BadInput(
                    "the expiry must be 1 second to 10 years away".into(),
                ));
            }
        }
        let content = match self.inner.transfers.content(cid).await {
            Err(EngineError::Store(StoreError::NotFound(_))) => {
                self.inner.transfers.folder_content(cid).await?
            }
            other => other?,
        };
        // A folder's files are fetched by their own CIDs, so a password share of a
        // folder keeps its own files private with it. Files it has in common with
        // another folder or that were shared on their own stay as public as they were.
        let members = if content.directory && password.is_some() {
            self.inner.transfers.folder_own_files(cid).await?
        } else {
            Vec::new()
        };
        if self.table().len() >= MAX_SHARES {
            return Err(ShareError::TooMany);
        }
        let secret = match password {
            None => None,
            Some(password) => Some(make_secret(password).await?),
        };
        let private = secret.is_some();
        let share = Share {
            id: rand::random::<[u8; SHARE_ID_LEN]>(),
            cid,
            name: content.name,
            size: content.size,
            directory: content.directory,
            created_unix: unix_now(),
            expires_unix: expires_in.map(|d| unix_now() + d.as_secs()),
            secret,
            members,
        };
        if private {
            // Private first, then withdrawn: no peer may fetch it by bare CID from now on.
            self.table().push(share.clone());
            self.update_gate();
            self.inner.transfers.unpublish(cid).await?;
        } else {
            self.table().push(share.clone());
        }
        self.save().await?;
        tracing::info!(%cid, id = %share.id_hex(), password = private, expires = ?share.expires_unix, "file shared");
        let ticket = self.ticket(&share).await;
        Ok((share, ticket))
    }

    /// Every share, with its ticket (made with this node's current addresses), oldest
    /// first.
    pub async fn list(&self) -> Vec<(Share, Ticket)> {
        let shares: Vec<Share> = self.table().iter().cloned().collect();
        let addrs = self.ticket_addrs().await;
        shares
            .into_iter()
            .map(|s| {
                let ticket = s.ticket(self.inner.net.local_peer_id(), addrs.clone());
                (s, ticket)
            })
            .collect()
    }

    /// One share by id.
    pub fn get(&self, id: &[u8; SHARE_ID_LEN]) -> Option<Share> {
        self.table().iter().find(|s| &s.id == id).cloned()
    }

    /// Revokes the share with this id, or every share of a file. The file's grants end
    /// at once; a file that was private stays unannounced until it is published again.
    pub async fn revoke(&self, what: Revoke) -> Result<Vec<Share>, ShareError> {
        let removed = {
            let mut table = self.table();
            match what {
                Revoke::Id(id) => table.remove(|s| s.id == id),
                Revoke::File(cid) => table.remove(|s| s.cid == cid),
            }
        };
        if removed.is_empty() {
            return Err(ShareError::NoShare(match what {
                Revoke::Id(id) => data_encoding::HEXLOWER.encode(&id),
                Revoke::File(cid) => cid.to_string(),
            }));
        }
        self.update_gate();
        for share in &removed {
            self.inner.gate.revoke(&share.cid);
            tracing::info!(cid = %share.cid, id = %share.id_hex(), "share revoked");
        }
        self.save().await?;
        Ok(removed)
    }

    /// A ticket for a share with this node's current addresses.
    pub async fn ticket(&self, share: &Share) -> Ticket {
        share.ticket(self.inner.net.local_peer_id(), self.ticket_addrs().await)
    }

    /// The addresses a ticket carries: confirmed external ones, then the specific
    /// addresses we listen on (loopback ones last), then up to [`MAX_CIRCUIT_ADDRS`]
    /// relay circuits; each without our own `/p2p/<id>`, at most [`MAX_TICKET_ADDRS`].
    async fn ticket_addrs(&self) -> Vec<Multiaddr> {
        let Ok(info) = self.inner.net.info().await else {
            return Vec::new();
        };
        let mut direct = Vec::new();
        let mut circuits = Vec::new();
        let candidates = info
            .external_addrs
            .iter()
            .chain(&info.listen_addrs)
            .chain(&info.relay_reservations);
        for addr in candidates {
            let addr = without_own_id(addr);
            if is_unspecified(&addr) {
                continue;
            }
            let list = if is_relayed(&addr) {
                &mut circuits
            } else {
                &mut direct
            };
            if !list.contains(&addr) {
                list.push(addr);
            }
        }
        // Loopback addresses last: they reach only this machine. (A stable sort keeps
        // confirmed external addresses first among the rest.)
        direct.sort_by_key(is_loopback);
        circuits.truncate(MAX_CIRCUIT_ADDRS);
        direct.truncate(MAX_TICKET_ADDRS - circuits.len());
        direct.extend(circuits);
        direct
    }

    /// Writes the table (atomically, one write at a time).
    async fn save(&self) -> Result<(), ShareError> {
        let Some(path) = self.inner.path.clone() else {
            return Ok(());
        };
        let _one_at_a_time = self.inner.saving.lock().await;
        let bytes = self.table().to_json();
        tokio::task::spawn_blocking(move || chunk_store::fsutil::write_atomic(&path, &bytes))
            .await
            .map_err(|e| ShareError::Io(e.to_string()))?
            .map_err(|e| ShareError::Io(e.to_string()))
    }

    pub(crate) fn net(&self) -> &Network {
        &self.inner.net
    }

    pub(crate) fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    pub(crate) fn access(&self) -> &serve::AccessState {
        &self.inner.access
    }

    pub(crate) fn grant_duration(&self) -> Duration {
        self.inner.grant_duration
    }
}

/// What `revoke` removes.
#[derive(Debug, Clone, Copy)]
pub enum Revoke {
    /// One share.
    Id([u8; SHARE_ID_LEN]),
    /// Every share of a file.
    File(Cid),
}

/// The key of a new password share, derived on a blocking thread (Argon2id takes
/// tens of milliseconds and 19 MiB).
async fn make_secret(password: String) -> Result<Secret, ShareError> {
    let salt: [u8; SALT_LEN] = rand::random();
    let key = tokio::task::spawn_blocking(move || derive_key(&password, &salt, KdfParams::DEFAULT))
        .await
        .map_err(|e| ShareError::Io(e.to_string()))?
        .map_err(|e| ShareError::BadInput(e.to_string()))?;
    Ok(Secret {
        salt,
        key: key.to_bytes(),
        kdf: KdfParams::DEFAULT,
    })
}

/// `addr` without a trailing `/p2p/<id>` (ours).
fn without_own_id(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// `0.0.0.0` or `::`: where we listen, not where anyone can reach us.
fn is_unspecified(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}
