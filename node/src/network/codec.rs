//! Adapts the chunk protocol of `dht-proto` to libp2p request-response: one message per
//! stream, read to the end of the stream but never past the message-size limit.

use std::io;

use dht_proto::manifest::MAX_CHUNK_SIZE;
use dht_proto::message::{
    chunk_response_header, parse_chunk_response_header, MAX_CHUNK_HEADER_LEN, MAX_REQUEST_LEN,
};
use dht_proto::{Request, Response};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde_bytes::ByteBuf;

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
            let mut data = Vec::with_capacity(data_len);
            data.extend_from_slice(&head[header_len.min(head.len())..]);
            if data.len() > data_len {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "trailing bytes"));
            }
            let missing = (data_len - data.len()) as u64;
            // One byte more than announced reveals trailing garbage.
            (&mut *io).take(missing + 1).read_to_end(&mut data).await?;
            if data.len() != data_len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk shorter or longer than announced",
                ));
            }
            return Ok(Response::Chunk {
                data: ByteBuf::from(data),
            });
        }
        let mut rest = read_limited(io, self.max_response.saturating_sub(head.len())).await?;
        head.append(&mut rest);
        Response::decode_limited(&head, self.max_response).map_err(invalid)
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
        match res {
            // Same bytes as `res.encode()`, without copying the chunk into them.
            Response::Chunk { data } => {
                io.write_all(&chunk_response_header(data.len())).await?;
                io.write_all(&data).await?;
            }
            other => io.write_all(&other.encode()).await?,
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

    const PROTOCOL: StreamProtocol = StreamProtocol::new("/test");

    fn codec() -> ChunkCodec {
        ChunkCodec {
            max_response: MAX_CHUNK_RESPONSE_LEN,
        }
    }

    async fn write(response: Response) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        codec()
            .write_response(&PROTOCOL, &mut out, response)
            .await
            .unwrap();
        out.into_inner()
    }

    async fn read(bytes: Vec<u8>, max_response: usize) -> io::Result<Response> {
        ChunkCodec { max_response }
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
            assert_eq!(read(bytes, MAX_CHUNK_RESPONSE_LEN).await.unwrap(), response);
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
