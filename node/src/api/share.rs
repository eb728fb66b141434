//! The control API's side of shares: the wire types of `/api/shares`,
//! `/api/tickets/open` and `/api/files/{cid}/publish`, and the facade's operations on
//! them, converting from [`crate::share`]'s domain types at this edge.

use std::time::Duration;

use dht_proto::ticket::{looks_like_ticket, Ticket, SHARE_ID_LEN};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::types::{CidResponse, LiveEvent};
use super::{parse_cid, Api, ApiError};
use crate::share::open::OpenError;
use crate::share::{Revoke, Share, ShareError};

/// `POST /api/shares`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShareRequest {
    /// The file CID.
    pub cid: String,
    /// The share ends this many seconds from now (default: never).
    #[serde(default)]
    pub expires_secs: Option<u64>,
    /// A password the fetcher must prove it knows; the file then becomes private (not
    /// announced, served only to peers that proved it). It is not kept, only a key
    /// derived from it.
    #[serde(default)]
    pub password: Option<String>,
}

/// A share and its ticket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShareInfo {
    /// The share id (16 hex digits), also inside the ticket.
    pub id: String,
    /// The file CID.
    pub cid: String,
    /// The file's name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether the CID names a folder.
    pub directory: bool,
    /// Whether fetchers need the password.
    pub password: bool,
    /// When it was made (Unix seconds).
    pub created_unix: u64,
    /// When it ends (Unix seconds), if it does.
    pub expires_unix: Option<u64>,
    /// Whether it has ended (it is refused, but listed until revoked).
    pub expired: bool,
    /// The ticket, with this node's current addresses.
    pub ticket: String,
}

/// `POST /api/tickets/open`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenTicketRequest {
    /// The ticket (`p2pd1…`, any case, whitespace ignored).
    pub ticket: String,
    /// The share's password, if it needs one.
    #[serde(default)]
    pub password: Option<String>,
}

/// A ticket the provider let us fetch: what it names.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenedTicket {
    /// The file CID (fetch it now: the provider is connected).
    pub cid: String,
    /// The name in the ticket.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether the CID names a folder.
    pub directory: bool,
    /// The provider's peer id.
    pub provider: String,
    /// How long the provider serves us under this ticket, in seconds.
    pub valid_secs: u64,
}

impl ShareInfo {
    fn new(share: &Share, ticket: &Ticket) -> Self {
        ShareInfo {
            id: share.id_hex(),
            cid: share.cid.to_string(),
            name: share.name.clone(),
            size: share.size,
            directory: share.directory,
            password: share.secret.is_some(),
            created_unix: share.created_unix,
            expires_unix: share.expires_unix,
            expired: share.is_expired_at(crate::share::unix_now()),
            ticket: ticket.encode().unwrap_or_default(),
        }
    }
}

impl From<ShareError> for ApiError {
    fn from(e: ShareError) -> Self {
        match e {
            ShareError::Engine(e) => e.into(),
            ShareError::NoShare(_) => ApiError::not_found(e.to_string()),
            ShareError::BadInput(_) => ApiError::bad_request(e.to_string()),
            ShareError::TooMany | ShareError::Private(_) => ApiError::conflict(e.to_string()),
            ShareError::Io(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> Self {
        let status = match e {
            OpenError::BadTicket(_) => 400,
            OpenError::NeedsPassword => 401,
            OpenError::WrongPassword => 403,
            OpenError::Unknown => 404,
            OpenError::Expired => 410,
            OpenError::RateLimited(secs) => {
                return ApiError::too_many_requests(e.to_string(), secs.into())
            }
            OpenError::Unreachable { .. } | OpenError::Protocol(_) => 502,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Parses a ticket given by a user: a clear 400 for every kind of damage.
pub fn parse_ticket(text: &str) -> Result<Ticket, ApiError> {
    Ticket::decode(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

impl Api {
    /// Shares a complete file; see [`ShareRequest`].
    pub async fn share(&self, request: ShareRequest) -> Result<ShareInfo, ApiError> {
        let cid = parse_cid(&request.cid)?;
        let expires = request.expires_secs.map(Duration::from_secs);
        let had_password = request.password.is_some();
        let (share, ticket) = self.shares.create(cid, expires, request.password).await?;
        if had_password {
            self.emit(LiveEvent::FileChanged {
                cid: cid.to_string(),
                change: "unpublished".into(),
            });
        }
        Ok(ShareInfo::new(&share, &ticket))
    }

    /// Every share with its ticket, oldest first.
    pub async fn shares(&self) -> Vec<ShareInfo> {
        self.shares
            .list()
            .await
            .iter()
            .map(|(share, ticket)| ShareInfo::new(share, ticket))
            .collect()
    }

    /// Revokes a share by id, ticket or CID (every share of the file); returns what was
    /// revoked.
    pub async fn unshare(&self, what: &str) -> Result<Vec<ShareInfo>, ApiError> {
        let what = what.trim();
        let revoke = if looks_like_ticket(what) {
            Revoke::Id(parse_ticket(what)?.share_id)
        } else if what.len() == SHARE_ID_LEN * 2 && what.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut id = [0u8; SHARE_ID_LEN];
            data_encoding::HEXLOWER_PERMISSIVE
                .decode_mut(what.as_bytes(), &mut id)
                .map_err(|_| ApiError::bad_request(format!("bad share id {what:?}")))?;
            Revoke::Id(id)
        } else {
            Revoke::File(parse_cid(what)?)
        };
        let removed = self.shares.revoke(revoke).await?;
        Ok(removed
            .iter()
            .map(|s| ShareInfo::new(s, &s.ticket(self.net.local_peer_id(), Vec::new())))
            .collect())
    }

    /// The QR code (SVG) of a share's ticket.
    pub async fn share_qr(&self, id: &str) -> Result<String, ApiError> {
        let info = self
            .shares()
            .await
            .into_iter()
            .find(|s| s.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| ApiError::not_found(format!("no share {id}")))?;
        dht_proto::qr::qr_svg(&info.ticket.to_ascii_uppercase())
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Dials a ticket's provider and asks it for access (proving the password if it
    /// needs one); the file can then be fetched by its CID.
    pub async fn open_ticket(&self, request: OpenTicketRequest) -> Result<OpenedTicket, ApiError> {
        let ticket = parse_ticket(&request.ticket)?;
        let opened =
            crate::share::open::open(&self.net, &ticket, request.password.as_deref()).await?;
        // The fetch of the CID follows this call: keep the grant while it runs.
        self.shares.keep_granted(ticket.cid, &opened);
        Ok(OpenedTicket {
            cid: ticket.cid.to_string(),
            name: ticket.name,
            size: ticket.size,
            directory: ticket.directory,
            provider: opened.provider.to_string(),
            valid_secs: opened.valid_for.as_secs(),
        })
    }

    /// Announces a file again after it was unpublished. Refused while a password share
    /// keeps it private.
    pub async fn publish(&self, cid: &str) -> Result<CidResponse, ApiError> {
        let cid = parse_cid(cid)?;
        if self.shares.is_private(&cid) {
            return Err(ShareError::Private(cid).into());
        }
        self.transfers.publish(cid).await?;
        self.emit(LiveEvent::FileChanged {
            cid: cid.to_string(),
            change: "published".into(),
        });
        Ok(CidResponse {
            cid: cid.to_string(),
            changed: true,
        })
    }
}
