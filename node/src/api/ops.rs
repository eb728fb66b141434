//! The operator's API operations and their wire types: clearing the download history
//! (the daemon-managed downloads themselves are in the facade and [`super::transfers`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Api, ApiError};

/// `DELETE /api/downloads`: what clearing the history did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClearedHistory {
    /// Ended downloads (done, failed, cancelled) forgotten.
    pub cleared: usize,
}

impl Api {
    /// Forgets the ended downloads (paused and running ones stay).
    pub async fn clear_download_history(&self) -> Result<ClearedHistory, ApiError> {
        let cleared = self.transfers.clear_download_history().await?;
        Ok(ClearedHistory { cleared })
    }
}
