//! Keeping a grant while its download runs: a provider's grant to a ticket's share ends
//! after [`GRANT_DURATION`](super::serve::GRANT_DURATION), and a fetch of a large file
//! or folder can take longer. After a ticket is opened, one task per provider and share
//! proves again shortly before the grant ends, for as long as a download or folder
//! fetch of the ticket's CID is queued or running, with the key derived the first time.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use dht_proto::ticket::SHARE_ID_LEN;
use dht_proto::Cid;
use libp2p::PeerId;

use super::open::{prove_again, Opened};
use super::Shares;

/// Renewal tasks at once; a ticket opened past this is not renewed (its download goes
/// on while its grant lasts).
pub const MAX_RENEWALS: usize = 64;
/// The longest a grant is kept alive after its ticket was opened.
pub const MAX_RENEWING: Duration = Duration::from_secs(30 * 86_400);

/// The (provider, share) pairs whose grants are being kept.
#[derive(Default)]
pub(super) struct Renewals {
    running: Mutex<HashSet<(PeerId, [u8; SHARE_ID_LEN])>>,
}

impl Renewals {
    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<(PeerId, [u8; SHARE_ID_LEN])>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// When to prove again, for a grant of `valid_for`: a minute before it ends, or halfway
/// through a grant of two minutes or less.
pub fn renew_after(valid_for: Duration) -> Duration {
    const MARGIN: Duration = Duration::from_secs(60);
    if valid_for > 2 * MARGIN {
        valid_for - MARGIN
    } else {
        (valid_for / 2).max(Duration::from_millis(500))
    }
}

impl Shares {
    /// Keeps the grant `opened` describes while `cid` downloads (see the module's
    /// documentation). Does nothing for our own share, a pair already kept, or past
    /// [`MAX_RENEWALS`].
    pub fn keep_granted(&self, cid: Cid, opened: &Opened) {
        let Some(again) = opened.again.clone() else {
            return;
        };
        let pair = (opened.provider, again.share_id);
        {
            let mut running = self.inner.renewals.running();
            if running.len() >= MAX_RENEWALS || !running.insert(pair) {
                return;
            }
        }
        let shares = self.clone();
        let provider = opened.provider;
        let mut valid_for = opened.valid_for;
        tokio::spawn(async move {
            let keep = async {
                loop {
                    tokio::time::sleep(renew_after(valid_for)).await;
                    if !shares.inner.transfers.is_fetching(&cid) {
                        break;
                    }
                    match prove_again(shares.net(), provider, &again).await {
                        Ok(renewed) => {
                            tracing::debug!(%cid, %provider, secs = renewed.valid_for.as_secs(), "grant renewed");
                            valid_for = renewed.valid_for;
                        }
                        Err(e) => {
                            tracing::warn!(%cid, %provider, "cannot renew the grant: {e}");
                            break;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(MAX_RENEWING, keep).await;
            shares.inner.renewals.running().remove(&pair);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_renewed_before_it_ends() {
        let hour = Duration::from_secs(3600);
        assert_eq!(renew_after(hour), Duration::from_secs(3540));
        assert_eq!(renew_after(Duration::from_secs(4)), Duration::from_secs(2));
        assert_eq!(
            renew_after(Duration::ZERO),
            Duration::from_millis(500),
            "a zero grant is not asked for in a loop"
        );
        for secs in [1, 30, 119, 120, 121, 600, 3600] {
            let valid = Duration::from_secs(secs);
            assert!(renew_after(valid) < valid, "{secs} s");
        }
    }
}
