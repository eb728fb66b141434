//! The daemon's task tree. Two kinds of tasks hang under `daemon::run`:
//!
//! - **Essential** tasks ([`Essentials`]): the swarm task, the upload server, the control
//!   API, the live monitor, the reputation saver. The daemon is only itself while all of
//!   them run, so one that ends (returns, fails or panics) before shutdown stops the
//!   daemon with an error, and a supervisor such as systemd restarts it.
//! - **Child** tasks ([`Tasks`]): one per download, one per streamed HTTP answer. They
//!   come and go; each is tracked, so that a stopping daemon waits for them (bounded),
//!   and is told to stop through one cancellation token.
//!
//! Built on tokio-util's `CancellationToken` and `TaskTracker` and tokio's `JoinSet`.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns and stops the daemon's child tasks. Cheap to clone; every clone spawns into
/// the same tree.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// An empty tree.
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Runs `task` to its end; a stopping daemon waits for it (see [`Tasks::wait`]). For
    /// work that must end its own way, such as a download that saves what it verified.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Runs `task` until it ends or the daemon stops, whichever is first (a streamed
    /// answer ends with the daemon instead of holding it up).
    pub fn spawn_until_stop<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// Tells every task of the tree that the daemon stops.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Completes once the daemon stops.
    pub async fn stopping(&self) {
        self.stop.cancelled().await;
    }

    /// Whether the daemon is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Waits until every child task has ended, or until `deadline`; returns how many were
    /// still running then. Nothing may be spawned after this is called.
    pub async fn wait(&self, deadline: Instant) -> usize {
        self.tracker.close();
        match tokio::time::timeout_at(deadline, self.tracker.wait()).await {
            Ok(()) => 0,
            Err(_) => self.tracker.len(),
        }
    }
}

/// How long, after an essential task returned, another ending with an error is taken
/// for the cause.
pub const CAUSE_GRACE: Duration = Duration::from_millis(500);

/// How an essential task ended.
#[derive(Debug)]
pub struct Ended {
    /// The task's name.
    pub name: &'static str,
    /// Why, in words: "returned", "failed: …", "panicked: …".
    pub why: String,
    /// Whether it ended without an error of its own (it returned `Ok` or was stopped).
    pub cleanly: bool,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} task {}", self.name, self.why)
    }
}

/// The essential tasks, each with a name for the log.
#[derive(Default)]
pub struct Essentials {
    set: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, &'static str>,
}

impl Essentials {
    /// No tasks yet.
    pub fn new() -> Essentials {
        Essentials::default()
    }

    /// Starts an essential task.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits for the next essential task to end (forever if there is none). A task that
    /// returned may only have lost its input to another that panicked or failed at the
    /// same moment (the upload server returns when the network task's channel closes):
    /// if another ends with an error within [`CAUSE_GRACE`], that one is reported.
    pub async fn next_end(&mut self) -> Ended {
        let first = match self.set.join_next_with_id().await {
            Some(joined) => self.describe(joined),
            None => std::future::pending().await,
        };
        if !first.cleanly {
            return first;
        }
        let deadline = Instant::now() + CAUSE_GRACE;
        while let Ok(Some(joined)) =
            tokio::time::timeout_at(deadline, self.set.join_next_with_id()).await
        {
            let next = self.describe(joined);
            if !next.cleanly {
                return next;
            }
        }
        first
    }

    /// Waits until every essential task has ended, or until `deadline`; then aborts
    /// those left and returns their names.
    pub async fn finish(&mut self, deadline: Instant) -> Vec<&'static str> {
        loop {
            match tokio::time::timeout_at(deadline, self.set.join_next_with_id()).await {
                Ok(Some(joined)) => {
                    let ended = self.describe(joined);
                    if !ended.cleanly {
                        tracing::warn!("while stopping, {ended}");
                    }
                }
                Ok(None) => return Vec::new(),
                Err(_) => break,
            }
        }
        let left: Vec<&'static str> = self.names.values().copied().collect();
        self.set.shutdown().await;
        self.names.clear();
        left
    }

    fn describe(&mut self, joined: Result<(Id, anyhow::Result<()>), JoinError>) -> Ended {
        let (id, why, cleanly) = match joined {
            Ok((id, Ok(()))) => (id, "returned".to_string(), true),
            Ok((id, Err(e))) => (id, format!("failed: {e:#}"), false),
            Err(e) if e.is_panic() => {
                let id = e.id();
                (
                    id,
                    format!("panicked: {}", panic_message(e.into_panic())),
                    false,
                )
            }
            Err(e) => (e.id(), "was aborted".to_string(), true),
        };
        let name = self.names.remove(&id).unwrap_or("unnamed");
        Ended { name, why, cleanly }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_panicking_essential_task_is_named_with_its_message() {
        let mut essentials = Essentials::new();
        essentials.spawn("quiet", std::future::pending());
        essentials.spawn("network", async { panic!("the swarm broke") });
        let ended = essentials.next_end().await;
        assert_eq!(ended.name, "network");
        assert!(!ended.cleanly);
        assert_eq!(
            ended.to_string(),
            "the network task panicked: the swarm broke"
        );
        let left = essentials
            .finish(Instant::now() + Duration::from_millis(50))
            .await;
        assert_eq!(left, vec!["quiet"]);
    }

    #[tokio::test]
    async fn a_task_that_returns_as_another_panics_is_not_taken_for_the_cause() {
        // The upload server returns as soon as the network task's channel closes, which
        // its panic does: the panic is what the daemon reports.
        let mut essentials = Essentials::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        essentials.spawn("upload server", async move {
            let _ = rx.recv().await;
            Ok(())
        });
        essentials.spawn("network", async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(tx);
            tokio::time::sleep(Duration::from_millis(20)).await;
            panic!("the swarm broke")
        });
        let ended = essentials.next_end().await;
        assert_eq!(
            ended.to_string(),
            "the network task panicked: the swarm broke"
        );
    }

    #[tokio::test]
    async fn a_failing_essential_task_says_why() {
        let mut essentials = Essentials::new();
        essentials.spawn("saver", async { Err(anyhow::anyhow!("disk gone")) });
        let ended = essentials.next_end().await;
        assert_eq!(ended.to_string(), "the saver task failed: disk gone");
        assert!(!ended.cleanly);
    }

    #[tokio::test]
    async fn stop_ends_streams_and_waits_for_tasks_that_end_their_own_way() {
        let tasks = Tasks::new();
        tasks.spawn_until_stop(std::future::pending());
        let saved = Arc::new(AtomicBool::new(false));
        {
            let (tasks2, saved) = (tasks.clone(), saved.clone());
            tasks.spawn(async move {
                tasks2.stopping().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                saved.store(true, Ordering::SeqCst);
            });
        }
        assert!(!tasks.is_stopping());
        tasks.stop();
        let left = tasks.wait(Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(left, 0);
        assert!(saved.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn wait_gives_up_at_its_deadline() {
        let tasks = Tasks::new();
        tasks.spawn(std::future::pending());
        tasks.stop();
        let left = tasks.wait(Instant::now() + Duration::from_millis(20)).await;
        assert_eq!(left, 1);
    }
}
