//! Sending `ADD_PROVIDER` messages to chosen DHT servers: a request-response behaviour
//! that only ever opens outbound streams on our Kademlia protocol, writes a batch of
//! framed `ADD_PROVIDER` messages (from `dht_proto::kademlia`) and closes the stream.
//! The receiver's own Kademlia reads them one after another on that stream (libp2p-kad
//! keeps reading an inbound stream after an `ADD_PROVIDER`), so a batch of keys costs
//! one stream, not one per key. `ADD_PROVIDER` has no answer: a batch succeeds when the
//! peer accepted the protocol (it is a DHT server) and every byte was written.
//!
//! Being outbound only, the behaviour never claims inbound Kademlia streams (libp2p-kad
//! answers those) and never makes identify advertise the protocol.

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::StreamProtocol;

use super::behaviour::KAD_PROTOCOL;

/// Most keys written on one stream. Each message is about 100 bytes plus our
/// addresses; a few hundred keep a stream short-lived and a peer's share of a large
/// reprovide spread over several streams.
pub(super) const MAX_BATCH_KEYS: usize = 256;
/// Streams this behaviour keeps open at once on one connection: far below the 32
/// inbound Kademlia streams a libp2p peer keeps per connection (past those it drops the
/// oldest idle one, which could be a batch between two of its messages).
pub(super) const STREAMS_PER_CONNECTION: usize = 4;
/// Longest a batch may take, dial included.
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Framed `ADD_PROVIDER` messages to write on one stream.
#[derive(Debug, Clone)]
pub struct AddProviderBatch(pub Vec<Vec<u8>>);

/// The codec: writes a batch, reads nothing back.
#[derive(Debug, Clone, Default)]
pub struct AddProviderCodec;

fn outbound_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "ADD_PROVIDER batches are only ever sent",
    )
}

impl request_response::Codec for AddProviderCodec {
    type Protocol = StreamProtocol;
    type Request = AddProviderBatch;
    type Response = ();

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(outbound_only())
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<()>
    where
        T: AsyncRead + Unpin + Send,
    {
        // ADD_PROVIDER has no answer; the batch is done once written and closed.
        Ok(())
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        AddProviderBatch(messages): AddProviderBatch,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        for message in &messages {
            io.write_all(message).await?;
        }
        io.close().await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, _: &mut T, _: ()) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(outbound_only())
    }
}

/// The behaviour that sends batches.
pub(super) fn add_provider_behaviour() -> request_response::Behaviour<AddProviderCodec> {
    request_response::Behaviour::with_codec(
        AddProviderCodec,
        [(KAD_PROTOCOL, ProtocolSupport::Outbound)],
        request_response::Config::default()
            .with_request_timeout(BATCH_TIMEOUT)
            .with_max_concurrent_streams(STREAMS_PER_CONNECTION),
    )
}
