//! What `GET /api/status` reports of the store (how many files it holds, which changed
//! on disk), read with a deadline so that a busy disk does not stall the status route.
//!
//! Measured: while a 1 GiB add and a 1 GiB fetch ran, a read of the store's tables took
//! up to 90 ms (redb waits behind the commits and the page writes of the add), while
//! routes that do not read the store answered within 11 ms. So each status request
//! starts its own read and waits for it at most [`STORE_WAIT`]; past that it answers
//! with the newest read that did finish, and its own read, still running, refreshes that
//! for the requests that follow. A request on an idle daemon always gets its own read,
//! so a status asked right after an add counts the added file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::transfer::Transfers;

/// How long a status request waits for its own read of the store.
pub(crate) const STORE_WAIT: Duration = Duration::from_millis(20);

/// Reads of the store for status at once; a request past that uses the newest result.
const MAX_READS: usize = 4;

/// The store's part of a status answer.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    pub(crate) files: usize,
    pub(crate) changed: Vec<String>,
}

/// The newest finished read, shared by the status requests.
pub(crate) struct StoreSummary {
    latest: Arc<Mutex<Option<(u64, Summary)>>>,
    reads: Arc<Semaphore>,
    started: std::sync::atomic::AtomicU64,
}

impl Default for StoreSummary {
    fn default() -> Self {
        StoreSummary {
            latest: Arc::new(Mutex::new(None)),
            reads: Arc::new(Semaphore::new(MAX_READS)),
            started: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl StoreSummary {
    /// The store's summary: read now if the store answers within `wait`, else the
    /// newest read that finished (and, before any read finished, this one's answer).
    pub(crate) async fn get(
        &self,
        transfers: &Transfers,
        wait: Duration,
    ) -> Result<Summary, ApiError> {
        let transfers = transfers.clone();
        self.get_with(wait, async move { read(&transfers).await })
            .await
    }

    /// [`StoreSummary::get`] with the read given: the tests give a slow one.
    async fn get_with(
        &self,
        wait: Duration,
        read: impl std::future::Future<Output = Result<Summary, ApiError>> + Send + 'static,
    ) -> Result<Summary, ApiError> {
        let Ok(permit) = self.reads.clone().try_acquire_owned() else {
            if let Some((_, summary)) = self.newest() {
                return Ok(summary);
            }
            return read.await;
        };
        let number = self
            .started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let latest = self.latest.clone();
        let mut own = tokio::spawn(async move {
            let result = read.await;
            if let Ok(summary) = &result {
                let mut slot = latest.lock().unwrap_or_else(|p| p.into_inner());
                // A read that started later may have finished first: keep the newer.
                if slot.as_ref().is_none_or(|(n, _)| *n < number) {
                    *slot = Some((number, summary.clone()));
                }
            }
            drop(permit);
            result
        });
        match tokio::time::timeout(wait, &mut own).await {
            Ok(joined) => joined.unwrap_or_else(|e| Err(ApiError::internal(e.to_string()))),
            Err(_) => match self.newest() {
                Some((_, summary)) => {
                    tracing::debug!(?wait, "status: the store is slow, answering its last read");
                    Ok(summary)
                }
                None => own
                    .await
                    .unwrap_or_else(|e| Err(ApiError::internal(e.to_string()))),
            },
        }
    }

    fn newest(&self) -> Option<(u64, Summary)> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn read(transfers: &Transfers) -> Result<Summary, ApiError> {
    let files = transfers.file_count().await? as usize;
    let changed = super::store::changed_files(transfers).await?;
    Ok(Summary { files, changed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(files: usize) -> Summary {
        Summary {
            files,
            changed: Vec::new(),
        }
    }

    async fn read_after(delay: Duration, files: usize) -> Result<Summary, ApiError> {
        tokio::time::sleep(delay).await;
        Ok(summary(files))
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_store_is_answered_with_the_newest_finished_read() {
        let cache = StoreSummary::default();
        let wait = Duration::from_millis(20);
        // The first read has nothing to fall back on: it waits for the store.
        let first = cache
            .get_with(wait, read_after(Duration::from_millis(500), 1))
            .await
            .unwrap();
        assert_eq!(first.files, 1);

        // The store is slow now: the answer comes after `wait`, from the last read.
        let start = tokio::time::Instant::now();
        let second = cache
            .get_with(wait, read_after(Duration::from_millis(500), 2))
            .await
            .unwrap();
        assert_eq!(second.files, 1);
        assert_eq!(start.elapsed(), wait);

        // That read goes on and refreshes the summary for the next request.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let third = cache
            .get_with(wait, read_after(Duration::from_millis(500), 3))
            .await
            .unwrap();
        assert_eq!(third.files, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_answers_in_time_gives_a_fresh_summary() {
        let cache = StoreSummary::default();
        let wait = Duration::from_millis(20);
        for files in 0..3 {
            let got = cache
                .get_with(wait, read_after(Duration::from_millis(1), files))
                .await
                .unwrap();
            assert_eq!(got.files, files);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_in_flight_are_bounded() {
        let cache = StoreSummary::default();
        let wait = Duration::from_millis(20);
        cache
            .get_with(wait, read_after(Duration::ZERO, 7))
            .await
            .unwrap();
        // Requests whose reads hang: each leaves one running, up to MAX_READS.
        for _ in 0..MAX_READS + 3 {
            let got = cache
                .get_with(wait, read_after(Duration::from_secs(3600), 99))
                .await
                .unwrap();
            assert_eq!(got.files, 7);
        }
        assert_eq!(cache.reads.available_permits(), 0);
        assert_eq!(
            cache.started.load(std::sync::atomic::Ordering::Relaxed),
            1 + MAX_READS as u64
        );
    }
}
