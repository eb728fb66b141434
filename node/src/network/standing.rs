//! The standing protocol `/p2pd/standing/1.0.0` ("how do you see me?",
//! `dht_proto::standing`) on plain streams, served outside the swarm task like the
//! access protocol: one message each way per stream, the request read no further than
//! its limit, written and closed, the answer read to the end. [`serve`] answers peers
//! with what the caller's `answer` says (the node's ledger), at most
//! [`MAX_STANDING_STREAMS`] at once and [`ASKS_PER_WINDOW`] per peer per [`ASK_WINDOW`];
//! a malformed request is answered with nothing and costs its sender the rest of the
//! window. [`ask`] is the asking side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dht_proto::standing::{
    StandingRequest, StandingResponse, MAX_STANDING_REQUEST_LEN, MAX_STANDING_RESPONSE_LEN,
    STANDING_PROTOCOL,
};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::Semaphore;

use super::handle::Network;

/// Standing streams answered at once; more are dropped unanswered.
pub const MAX_STANDING_STREAMS: usize = 32;
/// Longest one exchange may take, on either side.
pub const STANDING_TIMEOUT: Duration = Duration::from_secs(5);
/// Questions one peer may ask per [`ASK_WINDOW`]; past them it is answered
/// `RateLimited`.
pub const ASKS_PER_WINDOW: u32 = 6;
/// See [`ASKS_PER_WINDOW`].
pub const ASK_WINDOW: Duration = Duration::from_secs(60);
/// Peers whose questions are counted at once; past this, the oldest window goes.
const MAX_COUNTED: usize = 4096;

/// How many questions each peer asked in its current window.
#[derive(Debug, Default)]
pub struct AskLimiter {
    windows: Mutex<HashMap<PeerId, (Instant, u32)>>,
}

impl AskLimiter {
    /// Counts `cost` questions of `peer` at `now`: `Ok` if they fit its window, else
    /// the seconds until the window ends.
    pub fn charge(&self, peer: PeerId, cost: u32, now: Instant) -> Result<(), u32> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if !windows.contains_key(&peer) && windows.len() >= MAX_COUNTED {
            let oldest = windows.iter().min_by_key(|(_, (t, _))| *t).map(|(p, _)| *p);
            if let Some(oldest) = oldest {
                windows.remove(&oldest);
            }
        }
        let (start, asked) = windows.entry(peer).or_insert((now, 0));
        if now.saturating_duration_since(*start) >= ASK_WINDOW {
            *start = now;
            *asked = 0;
        }
        let left = (*start + ASK_WINDOW).saturating_duration_since(now);
        if asked.saturating_add(cost) > ASKS_PER_WINDOW {
            // A refused question still counts: asking faster only lengthens the wait.
            *asked = ASKS_PER_WINDOW;
            return Err(u32::try_from(left.as_secs().max(1)).unwrap_or(u32::MAX));
        }
        *asked += cost;
        Ok(())
    }
}

/// Answers one question on `stream` from `peer`: reads the request (at most
/// [`MAX_STANDING_REQUEST_LEN`] bytes), and writes `answer`'s response, or
/// `RateLimited` past the peer's budget. A request over the limit or that does not
/// decode is answered with nothing and spends the sender's whole window.
pub async fn exchange<S, F>(
    peer: PeerId,
    stream: &mut S,
    limiter: &AskLimiter,
    answer: &F,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(PeerId, StandingRequest) -> StandingResponse,
{
    let mut bytes = Vec::new();
    (&mut *stream)
        .take(MAX_STANDING_REQUEST_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .await?;
    let now = Instant::now();
    let Ok(request) = StandingRequest::decode(&bytes) else {
        tracing::debug!(%peer, len = bytes.len(), "malformed standing request: no answer");
        let _ = limiter.charge(peer, ASKS_PER_WINDOW, now);
        return Ok(());
    };
    let response = match limiter.charge(peer, 1, now) {
        Ok(()) => answer(peer, request),
        Err(retry_after_secs) => StandingResponse::RateLimited { retry_after_secs },
    };
    stream.write_all(&response.encode()).await?;
    stream.close().await
}

/// Serves the standing protocol until the daemon stops (the caller bounds it), with
/// `answer` saying what this node keeps about the asking peer.
pub async fn serve<F>(net: Network, answer: F)
where
    F: Fn(PeerId, StandingRequest) -> StandingResponse + Send + Sync + 'static,
{
    let mut control = net.streams();
    let mut incoming = match control.accept(StreamProtocol::new(STANDING_PROTOCOL)) {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::error!("cannot serve the standing protocol: {e}");
            return;
        }
    };
    let answer = Arc::new(answer);
    let limiter = Arc::new(AskLimiter::default());
    let slots = Arc::new(Semaphore::new(MAX_STANDING_STREAMS));
    while let Some((peer, mut stream)) = incoming.next().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "standing stream dropped: too many at once");
            continue;
        };
        let (answer, limiter) = (answer.clone(), limiter.clone());
        tokio::spawn(async move {
            let answered = tokio::time::timeout(
                STANDING_TIMEOUT,
                exchange(peer, &mut stream, &limiter, &*answer),
            );
            match answered.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "standing stream failed: {e}"),
                Err(_) => tracing::debug!(%peer, "standing stream timed out"),
            }
            drop(slot);
        });
    }
}

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// No stream could be opened, or it broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Nothing came back (the peer does not speak the protocol, or refused to answer).
    #[error("no answer")]
    NoAnswer,
    /// The answer did not decode.
    #[error("bad answer: {0}")]
    BadAnswer(String),
    /// No answer within [`STANDING_TIMEOUT`].
    #[error("no answer within {}s", STANDING_TIMEOUT.as_secs())]
    Timeout,
}

/// Asks `peer` how it sees this node, on a fresh stream, within [`STANDING_TIMEOUT`].
pub async fn ask(net: &Network, peer: PeerId) -> Result<StandingResponse, AskError> {
    let round = async {
        let unreachable = |e: std::io::Error| AskError::Unreachable(e.to_string());
        let mut stream = net
            .streams()
            .open_stream(peer, StreamProtocol::new(STANDING_PROTOCOL))
            .await
            .map_err(|e| AskError::Unreachable(e.to_string()))?;
        stream
            .write_all(&StandingRequest::default().encode())
            .await
            .map_err(unreachable)?;
        stream.close().await.map_err(unreachable)?;
        let mut bytes = Vec::new();
        (&mut stream)
            .take(MAX_STANDING_RESPONSE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(unreachable)?;
        if bytes.is_empty() {
            return Err(AskError::NoAnswer);
        }
        StandingResponse::decode(&bytes).map_err(|e| AskError::BadAnswer(e.to_string()))
    };
    tokio::time::timeout(STANDING_TIMEOUT, round)
        .await
        .unwrap_or(Err(AskError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    fn known(_: PeerId, request: StandingRequest) -> StandingResponse {
        StandingResponse::Unknown {
            nonce: request.nonce,
        }
    }

    /// Runs one exchange over an in-memory stream holding `request`; returns what was
    /// written back.
    async fn answer_to(peer: PeerId, limiter: &AskLimiter, request: &[u8]) -> Vec<u8> {
        let mut stream = Cursor::new(request.to_vec());
        exchange(peer, &mut stream, limiter, &known).await.unwrap();
        stream.into_inner()[request.len()..].to_vec()
    }

    #[tokio::test]
    async fn a_question_is_answered_with_its_nonce() {
        let limiter = AskLimiter::default();
        let request = StandingRequest {
            nonce: Some([9; dht_proto::standing::STANDING_NONCE_LEN]),
        };
        let answer = answer_to(PeerId::random(), &limiter, &request.encode()).await;
        assert_eq!(
            StandingResponse::decode(&answer).unwrap(),
            StandingResponse::Unknown {
                nonce: request.nonce
            }
        );
    }

    #[tokio::test]
    async fn a_malformed_request_gets_nothing_and_costs_its_sender_the_window() {
        let limiter = AskLimiter::default();
        let (rude, polite) = (PeerId::random(), PeerId::random());
        let good = StandingRequest::default().encode();
        for garbage in [
            vec![0xff; 8],
            Vec::new(),
            vec![0xa1; MAX_STANDING_REQUEST_LEN + 1],
        ] {
            assert!(answer_to(rude, &limiter, &garbage).await.is_empty());
        }
        // Its next well-formed question is refused for the rest of the window…
        let answer = answer_to(rude, &limiter, &good).await;
        assert!(matches!(
            StandingResponse::decode(&answer).unwrap(),
            StandingResponse::RateLimited { retry_after_secs } if retry_after_secs > 0
        ));
        // …while another peer is answered as usual.
        let answer = answer_to(polite, &limiter, &good).await;
        assert!(matches!(
            StandingResponse::decode(&answer).unwrap(),
            StandingResponse::Unknown { .. }
        ));
    }

    #[test]
    fn each_peer_asks_at_most_its_budget_per_window() {
        let limiter = AskLimiter::default();
        let (peer, other) = (PeerId::random(), PeerId::random());
        let start = Instant::now();
        for _ in 0..ASKS_PER_WINDOW {
            assert_eq!(limiter.charge(peer, 1, start), Ok(()));
        }
        let wait = limiter.charge(peer, 1, start + ASK_WINDOW / 2).unwrap_err();
        assert_eq!(u64::from(wait), (ASK_WINDOW / 2).as_secs());
        assert_eq!(limiter.charge(other, 1, start), Ok(()), "per peer");
        assert_eq!(limiter.charge(peer, 1, start + ASK_WINDOW), Ok(()));
    }

    #[test]
    fn the_counted_peers_are_bounded() {
        let limiter = AskLimiter::default();
        let start = Instant::now();
        for n in 0..MAX_COUNTED as u64 + 100 {
            let _ = limiter.charge(PeerId::random(), 1, start + Duration::from_millis(n));
        }
        assert!(limiter.windows.lock().unwrap().len() <= MAX_COUNTED);
    }
}
