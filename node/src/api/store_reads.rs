//! Reads of the store for the answers the web UI and monitors poll (`GET /api/status`,
//! `/api/files`, `/api/folders`, `/metrics`), with a deadline, so that a busy disk does
//! not stall them.
//!
//! Measured: while a 1 GiB add and a 1 GiB fetch ran, a read of the store's tables took
//! up to 90 ms (redb waits behind the commits and the page writes of the add), while
//! routes that do not read the store answered within 11 ms. So each request starts its
//! own read and waits for it at most [`STORE_WAIT`]; past that it answers with the
//! newest read that did finish, and its own read, still running, refreshes that for the
//! requests that follow.
//!
//! An older read is used only while it is known to be exact about the store's entries:
//! when no entry has changed (added, removed, downloaded, a flag set:
//! [`chunk_store::Store::entry_changes`]) since that read began. A list asked right
//! after an add therefore always has the added file, however busy the store; what may
//! lag is only what changes without an entry change (a partial download's chunk count).
//!
//! Commands and answers about one file (`rm`, `publish`, a folder's tree) read the store
//! themselves, on blocking threads, and wait for it: they must be exact.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::error::ApiError;

/// How long a polled request waits for its own read of the store.
pub(crate) const STORE_WAIT: Duration = Duration::from_millis(20);

/// Reads of one kind at once; a request past that uses the newest result.
const MAX_READS: usize = 4;

/// A read that finished: in which order it started, the count of entry changes before
/// it began, and what it read.
struct Finished<T> {
    number: u64,
    changes: u64,
    value: T,
}

/// The newest finished read of one kind, shared by the requests that poll it.
pub(crate) struct StoreReads<T> {
    latest: Arc<Mutex<Option<Finished<T>>>>,
    reads: Arc<Semaphore>,
    started: AtomicU64,
}

impl<T> Default for StoreReads<T> {
    fn default() -> Self {
        StoreReads {
            latest: Arc::new(Mutex::new(None)),
            reads: Arc::new(Semaphore::new(MAX_READS)),
            started: AtomicU64::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Clone + Send + 'static> StoreReads<T> {
    /// `read`'s answer if it comes within `wait`; else the newest read that finished,
    /// if no entry changed since it began (`changes` counts the store's entry changes);
    /// else `read`'s answer, however long it takes.
    pub(crate) async fn get(
        &self,
        wait: Duration,
        changes: impl Fn() -> u64,
        read: impl Future<Output = Result<T, ApiError>> + Send + 'static,
    ) -> Result<T, ApiError> {
        let changes_before = changes();
        let Ok(permit) = self.reads.clone().try_acquire_owned() else {
            if let Some(value) = self.exact_as_of(changes()) {
                return Ok(value);
            }
            return read.await;
        };
        let number = self.started.fetch_add(1, Ordering::Relaxed);
        let latest = self.latest.clone();
        let mut own = tokio::spawn(async move {
            let result = read.await;
            if let Ok(value) = &result {
                let mut slot = lock(&latest);
                // A read that started later may have finished first: keep the newer.
                if slot.as_ref().is_none_or(|f| f.number < number) {
                    *slot = Some(Finished {
                        number,
                        changes: changes_before,
                        value: value.clone(),
                    });
                }
            }
            drop(permit);
            result
        });
        let joined = match tokio::time::timeout(wait, &mut own).await {
            Ok(joined) => joined,
            Err(_) => {
                if let Some(value) = self.exact_as_of(changes()) {
                    tracing::debug!(?wait, "the store is slow: answering its last read");
                    return Ok(value);
                }
                own.await
            }
        };
        joined.unwrap_or_else(|e| Err(ApiError::internal(e.to_string())))
    }

    /// The newest finished read, if no entry changed since it began.
    fn exact_as_of(&self, changes_now: u64) -> Option<T> {
        lock(&self.latest)
            .as_ref()
            .filter(|f| f.changes == changes_now)
            .map(|f| f.value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_after(delay: Duration, files: usize) -> Result<usize, ApiError> {
        tokio::time::sleep(delay).await;
        Ok(files)
    }

    const SLOW: Duration = Duration::from_millis(500);

    #[tokio::test(start_paused = true)]
    async fn a_slow_store_is_answered_with_the_newest_finished_read() {
        let reads = StoreReads::default();
        let wait = Duration::from_millis(20);
        let unchanged = || 0;
        // The first read has nothing to fall back on: it waits for the store.
        let first = reads
            .get(wait, unchanged, read_after(SLOW, 1))
            .await
            .unwrap();
        assert_eq!(first, 1);

        // The store is slow now: the answer comes after `wait`, from the last read.
        let start = tokio::time::Instant::now();
        let second = reads
            .get(wait, unchanged, read_after(SLOW, 2))
            .await
            .unwrap();
        assert_eq!(second, 1);
        assert_eq!(start.elapsed(), wait);

        // That read goes on and refreshes the answer for the next request.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let third = reads
            .get(wait, unchanged, read_after(SLOW, 3))
            .await
            .unwrap();
        assert_eq!(third, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_since_the_last_read_makes_a_request_wait_for_its_own() {
        let reads = StoreReads::default();
        let wait = Duration::from_millis(20);
        reads.get(wait, || 0, read_after(SLOW, 1)).await.unwrap();

        // An entry changed (a file was added): the last read may lack it.
        let start = tokio::time::Instant::now();
        let got = reads.get(wait, || 1, read_after(SLOW, 2)).await.unwrap();
        assert_eq!(got, 2, "the answer is read after the change");
        assert_eq!(start.elapsed(), SLOW);

        // That read began after the change: it may answer for the next slow one.
        let start = tokio::time::Instant::now();
        let got = reads.get(wait, || 1, read_after(SLOW, 3)).await.unwrap();
        assert_eq!(got, 2);
        assert_eq!(start.elapsed(), wait);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_answers_in_time_gives_a_fresh_answer() {
        let reads = StoreReads::default();
        let wait = Duration::from_millis(20);
        for files in 0..3 {
            let got = reads
                .get(wait, || 0, read_after(Duration::from_millis(1), files))
                .await
                .unwrap();
            assert_eq!(got, files);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_in_flight_are_bounded() {
        let reads = StoreReads::default();
        let wait = Duration::from_millis(20);
        reads
            .get(wait, || 0, read_after(Duration::ZERO, 7))
            .await
            .unwrap();
        // Requests whose reads hang: each leaves one running, up to MAX_READS.
        for _ in 0..MAX_READS + 3 {
            let got = reads
                .get(wait, || 0, read_after(Duration::from_secs(3600), 99))
                .await
                .unwrap();
            assert_eq!(got, 7);
        }
        assert_eq!(reads.reads.available_permits(), 0);
        assert_eq!(reads.started.load(Ordering::Relaxed), 1 + MAX_READS as u64);
    }
}
