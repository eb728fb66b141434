//! [`ApiError`]: an error that carries its HTTP status, and how the store's and the
//! engine's errors map to statuses.

use chunk_store::StoreError;

use super::types::ErrorBody;
use crate::transfer::EngineError;

/// An error that carries its HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// One line.
    pub message: String,
    /// Seconds the caller should wait before trying again (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The request was bad (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// No credentials, or wrong ones (401).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// Refused whoever asks (403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// The thing asked about does not exist (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// The request does not fit the current state (409).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    /// The body is larger than allowed (413).
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }

    /// Too many attempts; try again after `secs` (429).
    pub fn too_many_requests(message: impl Into<String>, secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs),
            ..Self::new(429, message)
        }
    }

    /// The daemon failed (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.status,
            message: self.message.clone(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Invalid(_) | StoreError::Changed(_) | StoreError::AlreadyComplete(_) => {
                ApiError::bad_request(e.to_string())
            }
            StoreError::Io { ref source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                ApiError::bad_request(e.to_string())
            }
            // 507 Insufficient Storage: freeing space (`rm`, `cancel`) and trying again
            // may succeed; the message says how much is needed and free where.
            _ if e.is_disk_full() => ApiError::new(507, e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(e) => e.into(),
            EngineError::NoDownload(_) => ApiError::not_found(e.to_string()),
            EngineError::Downloading(_) | EngineError::DownloadingElsewhere { .. } => {
                ApiError::bad_request(e.to_string())
            }
            EngineError::Running(_)
            | EngineError::NotRunning(_)
            | EngineError::Complete(_)
            | EngineError::Cancelled(_)
            | EngineError::NotComplete(_)
            | EngineError::TooManyDownloads(_) => ApiError::conflict(e.to_string()),
            EngineError::StopTimeout(_) => ApiError::internal(e.to_string()),
            // The network could not deliver, as for a fetch.
            // Before any byte is sent: the file is not to be had (yet) from the network.
            EngineError::StreamFailed(_) => ApiError::new(404, e.to_string()),
        }
    }
}
