//! Adapts the chunk protocol of `dht-proto` to libp2p request-response: one message per
//! stream, read to the end of the stream but never past the message-size limit.

use std::io;

use dht_proto::message::MAX_REQUEST_LEN;
use dht_proto::{Request, Response};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The request-response codec of the transfer protocols; `max_response` is the
/// response-size limit of the protocol it serves.
#[derive(Debug, Clone)]
pub struct ChunkCodec {
    /// Largest response accepted, in bytes.
    pub max_response: usize,
}

/// Reads the whole stream, failing as soon as it exceeds `limit` bytes, so a peer cannot
/// make us buffer more than one maximal message.
async fn read_limited<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(limit as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message exceeds the limit of {limit} bytes"),
        ));
    }
    Ok(buf)
}

fn invalid(e: dht_proto::DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl libp2p::request_response::Codec for ChunkCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_limited(io, MAX_REQUEST_LEN).await?;
        Request::decode(&bytes).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_limited(io, self.max_response).await?;
        Response::decode_limited(&bytes, self.max_response).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req.encode()).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res.encode()).await?;
        io.close().await
    }
}
