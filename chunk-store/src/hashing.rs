//! Chunk hashing on several threads: the one place where import, resume and verify turn
//! bytes into BLAKE3 chunk hashes. Blocks (CPU and disk).

use std::fs::File;
use std::sync::OnceLock;

use dht_proto::cid::HASH_LEN;
use dht_proto::Manifest;

use crate::platform::read_exact_at;

/// Chunks read and hashed together; their hashing is spread over the available cores.
pub(crate) const BATCH_CHUNKS: usize = 8;

fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(BATCH_CHUNKS)
    })
}

/// The BLAKE3 hash of every chunk, computed on up to [`BATCH_CHUNKS`] threads.
pub(crate) fn hash_chunks(chunks: &[&[u8]]) -> Vec<[u8; HASH_LEN]> {
    let threads = threads().min(chunks.len());
    if threads <= 1 {
        return chunks.iter().map(|c| *blake3::hash(c).as_bytes()).collect();
    }
    let per_thread = chunks.len().div_ceil(threads);
    std::thread::scope(|scope| {
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
            // A hashing thread cannot panic short of running out of memory; if one did,
            // its chunks hash to nothing and so never verify.
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// What reading and hashing one chunk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkCheck {
    /// The bytes match the manifest.
    Good,
    /// The bytes were read and do not match.
    Bad,
    /// The bytes could not be read (the file is shorter, or reading failed).
    Unreadable,
}

/// Reads chunks `indices` (ascending) of `file`, laid out as `manifest` says, a batch at
/// a time, hashes each batch on several threads and reports each chunk to `each`.
pub(crate) fn check_chunks(
    file: &File,
    manifest: &Manifest,
    indices: impl IntoIterator<Item = u32>,
    each: &mut dyn FnMut(u32, ChunkCheck),
) {
    let chunk_size = manifest.chunk_size() as usize;
    let mut buf = Vec::new();
    let mut indices = indices.into_iter().peekable();
    while indices.peek().is_some() {
        let batch: Vec<u32> = indices.by_ref().take(BATCH_CHUNKS).collect();
        buf.resize(chunk_size * batch.len(), 0);
        let mut read = Vec::with_capacity(batch.len());
        for (slot, &index) in buf.chunks_mut(chunk_size).zip(&batch) {
            let bytes = &mut slot[..manifest.chunk_len(index) as usize];
            let ok = read_exact_at(file, bytes, manifest.chunk_offset(index)).is_ok();
            read.push(ok.then_some(&*bytes));
        }
        let readable: Vec<&[u8]> = read.iter().flatten().copied().collect();
        let mut hashes = hash_chunks(&readable).into_iter();
        for (&index, bytes) in batch.iter().zip(&read) {
            let check = match bytes {
                None => ChunkCheck::Unreadable,
                Some(_) => match (hashes.next(), manifest.chunk_hash(index)) {
                    (Some(got), Some(want)) if got == *want => ChunkCheck::Good,
                    _ => ChunkCheck::Bad,
                },
            };
            each(index, check);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_hashes_come_back_in_chunk_order() {
        let data: Vec<Vec<u8>> = (0..13u8).map(|i| vec![i; 1000 + i as usize]).collect();
        let chunks: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let expected: Vec<_> = chunks.iter().map(|c| *blake3::hash(c).as_bytes()).collect();
        assert_eq!(hash_chunks(&chunks), expected);
        assert!(hash_chunks(&[]).is_empty());
    }

    #[test]
    fn checks_tell_good_bad_and_unreadable_chunks_apart() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = 16usize << 10;
        let data: Vec<u8> = (0..chunk * 20 + 7).map(|i| (i * 7 % 251) as u8).collect();
        let hashes = data
            .chunks(chunk)
            .map(|c| *blake3::hash(c).as_bytes())
            .collect();
        let manifest = Manifest::new(data.len() as u64, chunk as u32, hashes).unwrap();
        let mut on_disk = data.clone();
        on_disk[3 * chunk + 5] ^= 1;
        on_disk.truncate(18 * chunk + 100); // chunks 18, 19 and 20 cut short
        let path = dir.path().join("f");
        std::fs::write(&path, &on_disk).unwrap();
        let file = File::open(&path).unwrap();
        let mut seen = Vec::new();
        check_chunks(
            &file,
            &manifest,
            (0..21).filter(|i| *i != 7),
            &mut |i, c| seen.push((i, c)),
        );
        assert_eq!(seen.len(), 20);
        for (i, check) in seen {
            let want = match i {
                3 => ChunkCheck::Bad,
                18.. => ChunkCheck::Unreadable,
                _ => ChunkCheck::Good,
            };
            assert_eq!(check, want, "chunk {i}");
        }
    }
}
