//! Answers held back from repeaters. A peer judged a repeater ([`super::repeats`])
//! asks again for what it was sent, as fast as it is answered; answering each at once
//! lets a few hundred such peers keep the node busy with thousands of requests a
//! second (every request a new stream, a timer and an answer to encrypt) while an
//! honest download waits for the CPU. Every answer to a repeater that is not a chunk
//! being sent (a refusal, a manifest, a bitfield, an acknowledgement) is sent after
//! [`HOLD`], so that a peer asking one thing at a time asks at most once a second.
//!
//! Bounded: at most [`MAX_HELD`] answers are held at once; past that, answers go out at
//! once (holding is a brake, not a queue that grows).

use std::sync::Arc;
use std::time::Duration;

use libp2p::request_response::ResponseChannel;
use tokio::sync::Semaphore;

use crate::network::{Network, Reply};

/// How long an answer to a repeater is held before it is sent.
pub const HOLD: Duration = Duration::from_secs(1);
/// Answers held at once.
pub const MAX_HELD: usize = 1024;

/// The answers being held (cheap to clone).
#[derive(Debug, Clone)]
pub(super) struct Tarpit {
    held: Arc<Semaphore>,
}

impl Default for Tarpit {
    fn default() -> Self {
        Tarpit {
            held: Arc::new(Semaphore::new(MAX_HELD)),
        }
    }
}

impl Tarpit {
    /// Sends `response`: after [`HOLD`] if `hold` (the peer is a repeater), else now.
    pub(super) async fn answer(
        &self,
        net: &Network,
        channel: ResponseChannel<Reply>,
        response: impl Into<Reply> + Send + 'static,
        hold: bool,
    ) {
        if hold {
            self.answer_later(net.clone(), channel, response);
        } else {
            net.respond(channel, response).await;
        }
    }

    /// Sends `response` after [`HOLD`] (at once if [`MAX_HELD`] answers are held).
    fn answer_later(
        &self,
        net: Network,
        channel: ResponseChannel<Reply>,
        response: impl Into<Reply> + Send + 'static,
    ) {
        let permit = self.held.clone().try_acquire_owned().ok();
        tokio::spawn(async move {
            if permit.is_some() {
                tokio::time::sleep(HOLD).await;
            }
            net.respond(channel, response).await;
            drop(permit);
        });
    }
}
