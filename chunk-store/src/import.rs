//! Streaming import: read a file once, cut it into chunks, hash each chunk with BLAKE3,
//! and either copy the bytes into the store or leave them where they are. The file is
//! never held in memory whole: at most one batch of chunks is.

use std::fs::File;
use std::io::{Read, Write};

use dht_proto::cid::HASH_LEN;

use crate::StoreError;

/// How an imported file's bytes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Copy the bytes into the store.
    Copy,
    /// Track the file in place (`--no-copy`); it is re-verified whenever it is served.
    Reference,
}

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The file CID.
    pub cid: dht_proto::Cid,
    /// File size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// The name the store keeps for it.
    pub name: Option<String>,
    /// Whether the store already had these bytes (same CID) before this import.
    pub already_present: bool,
}

/// Chunks read and hashed together; their hashing is spread over the available cores.
const BATCH_CHUNKS: usize = 8;

/// Reads `size` bytes from `input` in chunks of `chunk_size`, returns the chunk hashes,
/// passes every batch of bytes to `sink` (the copy target, if any) and reports the bytes
/// done to `progress`. Fails if the file turns out shorter or longer than `size`.
pub(crate) fn hash_stream(
    input: &mut File,
    size: u64,
    chunk_size: u32,
    mut sink: Option<&mut File>,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<[u8; HASH_LEN]>, std::io::Error> {
    let chunk_size = chunk_size as usize;
    let mut hashes = Vec::with_capacity(size.div_ceil(chunk_size as u64) as usize);
    let mut buf = vec![0u8; chunk_size * BATCH_CHUNKS];
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(BATCH_CHUNKS);
    let mut done: u64 = 0;
    while done < size {
        let want = ((size - done) as usize).min(buf.len());
        input.read_exact(&mut buf[..want])?;
        let batch = &buf[..want];
        let chunks: Vec<&[u8]> = batch.chunks(chunk_size).collect();
        if chunks.len() == 1 || threads == 1 {
            hashes.extend(chunks.iter().map(|c| *blake3::hash(c).as_bytes()));
        } else {
            let per_thread = chunks.len().div_ceil(threads);
            let parts: Vec<Vec<[u8; HASH_LEN]>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunks
                    .chunks(per_thread)
                    .map(|group| {
                        scope.spawn(move || {
                            group
                                .iter()
                                .map(|c| *blake3::hash(c).as_bytes())
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            for part in parts {
                hashes.extend(part);
            }
        }
        if let Some(out) = sink.as_deref_mut() {
            out.write_all(batch)?;
        }
        done += want as u64;
        progress(done);
    }
    if hashes.len() != size.div_ceil(chunk_size as u64) as usize {
        return Err(std::io::Error::other("a hashing thread failed"));
    }
    // The file must end where its metadata said it would.
    let mut probe = [0u8; 1];
    if input.read(&mut probe)? != 0 {
        return Err(std::io::Error::other("file grew while it was being read"));
    }
    Ok(hashes)
}

/// Converts an I/O error during import into a store error naming the file.
pub(crate) fn import_error(path: &std::path::Path, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        StoreError::Changed(path.to_path_buf())
    } else {
        StoreError::io("reading", path, e)
    }
}
