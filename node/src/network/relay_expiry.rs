//! When our reservation on each relay expires. libp2p's relay client reads the relay's
//! `Reservation.expire` but does not hand it on, so after each reservation (and each
//! renewal) libp2p reports accepted, the swarm task asks the relay itself: one
//! `RESERVE` (`dht_proto::relay_hop`) on a stream of the hop protocol, whose
//! answer names the expiry. The exchange runs in a spawned task, bounded by
//! [`EXPIRY_PROBE_TIMEOUT`], one at a time per relay, and reports back to the swarm task
//! as a [`Command::RelayExpiry`](super::handle::Command).
//!
//! A `RESERVE` on the connection that holds the reservation is a refresh (circuit relay
//! v2 specification: "refreshing the reservation as needed"), not a second slot:
//! libp2p-relay 0.22's server keeps one reservation per connection (a map from
//! connection id to reservation, in which the refresh replaces its own entry, and
//! `renewed` set because the connection's handler already has an active reservation,
//! so the per-peer limit is not applied to it). It does spend one token of the
//! server's reservation rate limiters (by default a bucket of 30 per peer, one more
//! every 2 minutes; libp2p's own renewals spend them the same way), and it restarts
//! the server's timer, so the expiry we read is the reservation's from then on.
//!
//! So the stream must go over that connection (`hop_stream.rs` opens it there): the
//! relay client reserves on the first of its direct connections to the relay, in the
//! order they were established, and a reservation lives only as long as its
//! connection, so while one is held it is on the earliest direct connection still
//! open. The book keeps that order from the same connection events.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dht_proto::relay_hop::{self, HopDecodeError, HopStatus};
use futures::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use libp2p::swarm::Stream;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use super::actor::NetworkActor;
use super::handle::Command;

/// Longest one expiry probe may take (open, ask, answer).
pub const EXPIRY_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after libp2p's own request the probe starts: the relay has sent its answer
/// by then and finished handling it (a request arriving while the relay still handles
/// one on the same connection replaces that one).
const PROBE_DELAY: Duration = Duration::from_secs(1);

/// Why the expiry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    /// The stream could not be opened (or its connection closed first).
    #[error("cannot open a hop stream: {0}")]
    Open(String),
    /// The stream broke.
    #[error("the exchange failed: {0}")]
    Io(#[from] std::io::Error),
    /// The answer is not a hop `STATUS` we can read.
    #[error("unreadable answer: {0}")]
    Answer(#[from] HopDecodeError),
    /// The relay refused the refresh.
    #[error("the relay refused the refresh (status {})", .0.code())]
    Refused(HopStatus),
    /// An accepted answer without an expiry.
    #[error("the relay named no expiry")]
    NoExpiry,
    /// No answer within [`EXPIRY_PROBE_TIMEOUT`].
    #[error("no answer within {} s", EXPIRY_PROBE_TIMEOUT.as_secs())]
    Timeout,
}

/// Reads one unsigned-varint length-prefixed frame: the prefix a byte at a time (at
/// most 10), then exactly the length `frame_length` allows.
pub(super) async fn read_frame<S, E>(
    stream: &mut S,
    frame_length: impl Fn(&[u8]) -> Result<Option<(usize, usize)>, E>,
) -> Result<Vec<u8>, E>
where
    S: AsyncRead + Unpin,
    E: From<std::io::Error>,
{
    let mut prefix = Vec::with_capacity(10);
    let (len, _) = loop {
        let mut byte = [0u8];
        stream.read_exact(&mut byte).await?;
        prefix.push(byte[0]);
        if let Some(frame) = frame_length(&prefix)? {
            break frame;
        }
    };
    let mut message = vec![0u8; len];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

/// Sends `RESERVE` on the stream `opened` brings and returns the expiry the answer
/// names.
pub async fn read_expiry(
    opened: oneshot::Receiver<Result<Stream, String>>,
) -> Result<SystemTime, ExpiryError> {
    let exchange = async {
        let mut stream = opened
            .await
            .map_err(|_| ExpiryError::Open("the connection closed".into()))?
            .map_err(ExpiryError::Open)?;
        stream.write_all(&relay_hop::encode_reserve()).await?;
        stream.flush().await?;
        let message = read_frame(&mut stream, |b| {
            relay_hop::frame_length(b).map_err(ExpiryError::from)
        })
        .await?;
        let _ = stream.close().await;
        let answer = relay_hop::decode_answer(&message)?;
        if answer.status != HopStatus::Ok {
            return Err(ExpiryError::Refused(answer.status));
        }
        let expire = answer.accepted_expiry().ok_or(ExpiryError::NoExpiry)?;
        Ok(UNIX_EPOCH + Duration::from_secs(expire))
    };
    tokio::time::timeout(EXPIRY_PROBE_TIMEOUT, exchange)
        .await
        .unwrap_or(Err(ExpiryError::Timeout))
}

impl NetworkActor {
    /// libp2p's relay client reported an event: book it and, on an accepted
    /// reservation or renewal, read the expiry soon.
    pub(super) fn on_relay_client_event(&mut self, event: libp2p::relay::client::Event) {
        if let libp2p::relay::client::Event::ReservationReqAccepted { relay_peer_id, .. } = &event {
            (self.relays.expiry_wanted).insert(*relay_peer_id, Instant::now() + PROBE_DELAY);
        }
        self.relays.on_client_event(event);
    }

    /// Starts the expiry probes that are due (on every tick).
    pub(super) fn start_expiry_probes(&mut self, now: Instant) {
        let due: Vec<PeerId> = (self.relays.expiry_wanted.iter())
            .filter(|(relay, not_before)| {
                now >= **not_before && !self.relays.expiry_in_flight.contains(relay)
            })
            .map(|(relay, _)| *relay)
            .collect();
        for relay in due {
            self.relays.expiry_wanted.remove(&relay);
            let Some(connection) = self.relays.reservation_connection(&relay) else {
                continue;
            };
            let Some(reports) = self.relays.reports.clone() else {
                continue;
            };
            self.relays.expiry_in_flight.insert(relay);
            let (opened, stream) = oneshot::channel();
            (self.swarm.behaviour_mut().hop_streams).open(relay, connection, opened);
            tokio::spawn(async move {
                let expiry = read_expiry(stream).await.map_err(|e| {
                    tracing::debug!(%relay, "relay reservation expiry not read: {e}");
                    e.to_string()
                });
                // The network task may be gone (shutting down): then nobody needs it.
                if let Some(commands) = reports.upgrade() {
                    let _ = commands.send(Command::RelayExpiry { relay, expiry }).await;
                }
            });
        }
    }
}

/// Where the spawned probes report: the command channel, held weakly so that the
/// network task still ends when every handle is dropped.
pub(super) type ExpiryReports = mpsc::WeakSender<Command>;
