//! The download queue: at most `slots` downloads run at once, and the others get a
//! slot in the order they were started. A place in the queue is taken synchronously
//! when a download is started, so two downloads started one after the other run in
//! that order whatever order their tasks are first polled in.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The run slots and who waits for them.
pub(crate) struct RunQueue {
    state: Mutex<QueueState>,
    changed: Notify,
}

struct QueueState {
    free: usize,
    next: u64,
    waiting: BTreeSet<u64>,
}

/// A download's place in the queue; leaving it (dropped) before its turn gives the
/// place up.
pub(crate) struct QueuePlace {
    queue: Arc<RunQueue>,
    number: u64,
    served: bool,
}

/// A run slot, given back when dropped.
pub(crate) struct RunSlot {
    queue: Arc<RunQueue>,
}

impl RunQueue {
    pub(crate) fn new(slots: usize) -> Arc<RunQueue> {
        Arc::new(RunQueue {
            state: Mutex::new(QueueState {
                free: slots,
                next: 0,
                waiting: BTreeSet::new(),
            }),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next place at the back of the queue.
    pub(crate) fn join(self: &Arc<Self>) -> QueuePlace {
        let mut state = self.state();
        let number = state.next;
        state.next += 1;
        state.waiting.insert(number);
        QueuePlace {
            queue: self.clone(),
            number,
            served: false,
        }
    }
}

impl QueuePlace {
    /// Waits until this place is the first in the queue and a slot is free.
    pub(crate) async fn slot(mut self) -> RunSlot {
        loop {
            let notified = self.queue.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.queue.state();
                if state.free > 0 && state.waiting.first() == Some(&self.number) {
                    state.free -= 1;
                    state.waiting.remove(&self.number);
                    self.served = true;
                    if state.free > 0 {
                        // The next in line is first now, and there is a slot for it.
                        self.queue.changed.notify_waiters();
                    }

                    return RunSlot {
                        queue: self.queue.clone(),
                    };
                }
            }
            notified.await;
        }
    }
}

impl Drop for QueuePlace {
    fn drop(&mut self) {
        if !self.served {
            self.queue.state().waiting.remove(&self.number);
            // The next in line may be first now.
            self.queue.changed.notify_waiters();
        }
    }
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        self.queue.state().free += 1;
        self.queue.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn granted_within(place: QueuePlace, ms: u64) -> Option<RunSlot> {
        tokio::time::timeout(Duration::from_millis(ms), place.slot())
            .await
            .ok()
    }

    #[tokio::test]
    async fn slots_go_in_the_order_places_were_taken_not_the_order_of_asking() {
        let queue = RunQueue::new(1);
        let first = queue.join();
        let second = queue.join();
        let third = queue.join();
        // The third asks first, and waits: the first two are ahead of it.
        let third = tokio::spawn(third.slot());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!third.is_finished());
        let second = tokio::spawn(second.slot());
        let first = granted_within(first, 1000).await.expect("first in line");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.is_finished() && !third.is_finished(), "one slot");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), second)
            .await
            .expect("second after first")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!third.is_finished());
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("third after second")
            .unwrap();
    }

    #[tokio::test]
    async fn a_place_given_up_lets_the_next_one_through() {
        let queue = RunQueue::new(1);
        let running = granted_within(queue.join(), 1000).await.expect("free");
        let leaving = queue.join();
        let next = queue.join();
        let next = tokio::spawn(next.slot());
        // The one ahead stops waiting (its download was paused or cancelled).
        assert!(granted_within(leaving, 20).await.is_none());
        drop(running);
        tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("next in line")
            .unwrap();
    }

    #[tokio::test]
    async fn waiters_that_asked_before_their_turn_all_get_the_free_slots() {
        let queue = RunQueue::new(4);
        let places: Vec<QueuePlace> = (0..4).map(|_| queue.join()).collect();
        // Asked in reverse order: each waits for the ones ahead of it, which then go
        // through one after another.
        let waiting: Vec<_> = places
            .into_iter()
            .rev()
            .map(|p| tokio::spawn(p.slot()))
            .collect();
        for w in waiting {
            tokio::time::timeout(Duration::from_secs(1), w)
                .await
                .expect("a free slot")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn as_many_run_at_once_as_there_are_slots() {
        let queue = RunQueue::new(3);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(granted_within(queue.join(), 1000).await.expect("free"));
        }
        assert!(granted_within(queue.join(), 50).await.is_none());
        held.pop();
        assert!(granted_within(queue.join(), 1000).await.is_some());
    }
}
