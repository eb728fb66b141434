//! Adapts the chunk protocol of `dht-proto` to libp2p request-response: one message per
//! stream, read to the end of the stream but never past the message-size limit. Chunk
//! bytes travel in pooled, page-aligned buffers ([`ChunkBuf`]): read straight off the
//! stream into one, and written from one, without passing through CBOR.

use std::io;

use chunk_store::{BufferPool, ChunkBuf};
use dht_proto::manifest::MAX_CHUNK_SIZE;
use dht_proto::message::{
    chunk_response_header, parse_chunk_response_header, MAX_CHUNK_HEADER_LEN, MAX_REQUEST_LEN,
};
use dht_proto::{Request, Response};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The request-response codec of the transfer protocols; `max_response` is the
/// response-size limit of the protocol it serves.
#[derive(Debug, Clone)]
pub struct ChunkCodec {
    /// Largest response accepted, in bytes.
    pub max_response: usize,
    /// Where received chunks' buffers come from.
    pub buffers: BufferPool,
}

/// An answer on the transfer protocols: a chunk's bytes, or any other message.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `Response::Chunk`, its bytes in a pooled buffer.
    Chunk(ChunkBuf),
    /// Any other response (never `Response::Chunk`, see [`Reply::from`]).
    Message(Response),
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        match response {
            Response::Chunk { data } => Reply::Chunk(ChunkBuf::copy_from(&data)),
            other => Reply::Message(other),
        }
    }
}

/// Reads the whole stream, failing as soon as it exceeds `limit` bytes, so a peer cannot
/// make us buffer more than one maximal message; `what` names the message in the error.
/// The catalog codec reads with it too.
pub(super) async fn read_limited<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
    what: &str,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(limit as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} exceeds the limit of {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// A peer's message that did not decode.
pub(super) fn invalid(e: dht_proto::DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl libp2p::request_response::Codec for ChunkCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Reply;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_limited(io, MAX_REQUEST_LEN, "message").await?;
        Request::decode(&bytes).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Reply>
    where
        T: AsyncRead + Unpin + Send,
    {
        // A chunk (the bulk of all traffic) is read straight into a buffer of its size;
        // anything else is read whole and decoded.
        let mut head = Vec::with_capacity(MAX_CHUNK_HEADER_LEN);
        (&mut *io)
            .take(MAX_CHUNK_HEADER_LEN as u64)
            .read_to_end(&mut head)
            .await?;
        if let Some((header_len, data_len)) = parse_chunk_response_header(&head) {
            if header_len as u64 + data_len > self.max_response as u64
                || data_len > u64::from(MAX_CHUNK_SIZE)
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("message exceeds the limit of {} bytes", self.max_response),
                ));
            }
            let data_len = data_len as usize;
            let early = &head[header_len.min(head.len())..];
            if early.len() > data_len {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "trailing bytes"));
            }
            let mut data = self.buffers.get(data_len);
            data[..early.len()].copy_from_slice(early);
            if let Err(e) = io.read_exact(&mut data[early.len()..]).await {
                return Err(match e.kind() {
                    io::ErrorKind::UnexpectedEof => {
                        io::Error::new(io::ErrorKind::InvalidData, "chunk shorter than announced")
                    }
                    _ => e,
                });
            }
            // The stream must end here: one more byte is trailing garbage.
            if io.read(&mut [0u8; 1]).await? != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk longer than announced",
                ));
            }
            return Ok(Reply::Chunk(data));
        }
        let mut rest =
            read_limited(io, self.max_response.saturating_sub(head.len()), "message").await?;
        head.append(&mut rest);
        Response::decode_limited(&head, self.max_response)
            .map(Reply::from)
            .map_err(invalid)
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
        res: Reply,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match res {
            // Same bytes as `Response::Chunk { data }.encode()`, without copying the chunk
            // into them.
            Reply::Chunk(data) => {
                io.write_all(&chunk_response_header(data.len())).await?;
                io.write_all(&data).await?;
            }
            Reply::Message(other) => io.write_all(&other.encode()).await?,
        }
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dht_proto::message::{MAX_CHUNK_RESPONSE_LEN, MAX_MANIFEST_RESPONSE_LEN};
    use dht_proto::{Bitfield, Cid};
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;
    use serde_bytes::ByteBuf;

    const PROTOCOL: StreamProtocol = StreamProtocol::new("/test");

    fn codec() -> ChunkCodec {
        ChunkCodec {
            max_response: MAX_CHUNK_RESPONSE_LEN,
            buffers: BufferPool::new(8 << 20),
        }
    }

    async fn write(response: Response) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        codec()
            .write_response(&PROTOCOL, &mut out, Reply::from(response))
            .await
            .unwrap();
        out.into_inner()
    }

    async fn read(bytes: Vec<u8>, max_response: usize) -> io::Result<Reply> {
        ChunkCodec {
            max_response,
            buffers: BufferPool::new(8 << 20),
        }
        .read_response(&PROTOCOL, &mut Cursor::new(bytes))
        .await
    }

    #[tokio::test]
    async fn responses_cross_the_codec_unchanged_and_as_encoded() {
        let mut have = Bitfield::new(9);
        have.set(4);
        let responses = vec![
            Response::Chunk {
                data: ByteBuf::from(vec![7u8; 1 << 20]),
            },
            Response::Chunk {
                data: ByteBuf::from(vec![1u8; 5]),
            },
            Response::Chunk {
                data: ByteBuf::new(),
            },
            Response::Bitfield { have },
            Response::Manifest {
                manifest: ByteBuf::from(vec![1, 2, 3]),
                name: Some("x".into()),
            },
            Response::Ack,
            Response::NotFound,
            Response::Choked,
            Response::Error {
                message: "e".into(),
            },
        ];
        for response in responses {
            let bytes = write(response.clone()).await;
            assert_eq!(bytes, response.encode());
            let reply = read(bytes, MAX_CHUNK_RESPONSE_LEN).await.unwrap();
            if let Reply::Chunk(data) = &reply {
                // Received chunks land in page-aligned buffers, ready for direct I/O.
                assert_eq!(data.as_ptr() as usize % chunk_store::buffer::PAGE, 0);
            }
            assert_eq!(reply, Reply::from(response));
        }
        let request = Request::Chunk {
            cid: Cid::for_manifest_bytes(b"m"),
            index: 3,
        };
        let mut out = Cursor::new(Vec::new());
        codec()
            .write_request(&PROTOCOL, &mut out, request.clone())
            .await
            .unwrap();
        let decoded = codec()
            .read_request(&PROTOCOL, &mut Cursor::new(out.into_inner()))
            .await
            .unwrap();
        assert_eq!(decoded, request);
    }

    #[tokio::test]
    async fn oversized_short_long_and_padded_chunks_are_refused() {
        // Larger than the chunk protocol allows, though the manifest protocol would take it.
        let big = Response::Chunk {
            data: ByteBuf::from(vec![0u8; MAX_CHUNK_SIZE as usize + 1]),
        }
        .encode();
        assert!(read(big.clone(), MAX_CHUNK_RESPONSE_LEN).await.is_err());
        assert!(read(big, MAX_MANIFEST_RESPONSE_LEN).await.is_err());
        let good = Response::Chunk {
            data: ByteBuf::from(vec![9u8; 1000]),
        }
        .encode();
        let mut short = good.clone();
        short.truncate(good.len() - 1);
        assert!(read(short, MAX_CHUNK_RESPONSE_LEN).await.is_err());
        let mut padded = good.clone();
        padded.push(0);
        assert!(read(padded, MAX_CHUNK_RESPONSE_LEN).await.is_err());
        // A header that claims more than the stream holds.
        let mut lying = chunk_response_header(1 << 20);
        lying.extend_from_slice(&[0u8; 10]);
        assert!(read(lying, MAX_CHUNK_RESPONSE_LEN).await.is_err());
        // Garbage is an error, not a panic.
        assert!(read(vec![0xff; 40], MAX_CHUNK_RESPONSE_LEN).await.is_err());
        assert!(read(Vec::new(), MAX_CHUNK_RESPONSE_LEN).await.is_err());
    }
}
