//! Reading a file being imported: each chunk is read at its offset, hashed, and (in copy
//! mode) written at the same offset of the store's copy. A file of several chunks is
//! done by several threads at once, each taking the next chunk, so that reading,
//! hashing and writing overlap and hashing uses every core; the copy is written with
//! direct I/O from page-aligned buffers where the file system allows it, so that its
//! bytes go to the disk as they are written instead of piling up as dirty pages for the
//! final sync. A file of one chunk is done on the calling thread (a folder imports
//! thousands of small files). The file is never held in memory whole: each thread holds
//! one chunk.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Mutex};

use dht_proto::cid::HASH_LEN;

use crate::buffer::PAGE;
use crate::platform::{open_direct, read_exact_at, refuses_direct_io, write_all_at};
use crate::Store;

/// Files up to this size are copied without direct I/O (see [`CopyTarget::open`]): one
/// chunk of the default size.
const DIRECT_MIN: u64 = dht_proto::manifest::DEFAULT_CHUNK_SIZE as u64;

/// Most threads one import uses. Above the core count: a thread waiting for its direct
/// write leaves its core to another that hashes.
const MAX_THREADS: usize = 8;

/// Where copy mode writes: the temporary file, and the same file opened for direct I/O
/// when the file system allows it.
pub(crate) struct CopyTarget {
    buffered: File,
    direct: Option<File>,
}

impl CopyTarget {
    /// Opens the new file at `path` (created by the caller) for the copy, pre-sized to
    /// `size` so that the chunks can land in any order. A file of one chunk at most is
    /// written through the page cache: a direct write waits for the disk on the calling
    /// thread, one small file after the other, where a batch of imports syncs its
    /// copies together on several threads (`import_batch`).
    pub(crate) fn open(store: &Store, path: &Path, size: u64) -> io::Result<Self> {
        let buffered = std::fs::OpenOptions::new().write(true).open(path)?;
        buffered.set_len(size)?;
        let direct = if store.direct_io.load(Ordering::Relaxed) && size > DIRECT_MIN {
            match open_direct(path) {
                Ok(file) => Some(file),
                Err(e) if refuses_direct_io(&e) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        Ok(CopyTarget { buffered, direct })
    }

    /// Writes `data` at `offset`: directly when both are whole pages (and `data` is
    /// page-aligned), through the page cache otherwise (the tail of the file).
    fn write(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let whole_pages = (data.as_ptr() as usize).is_multiple_of(PAGE)
            && data.len().is_multiple_of(PAGE)
            && offset.is_multiple_of(PAGE as u64);
        if let (Some(direct), true) = (&self.direct, whole_pages) {
            match write_all_at(direct, data, offset) {
                // Opened, but refused at the first write (some file systems do that).
                Err(e) if refuses_direct_io(&e) => {}
                other => return other,
            }
        }
        write_all_at(&self.buffered, data, offset)
    }
}

/// Reads the `size` bytes of `input` in chunks of `chunk_size`, returns the chunk hashes,
/// writes every chunk to `copy` if given, and reports the bytes done to `progress`.
/// Fails if the file turns out shorter (`UnexpectedEof`) or longer (`FileTooLarge`)
/// than `size`.
pub(crate) fn read_chunks(
    store: &Store,
    input: &File,
    size: u64,
    chunk_size: u32,
    copy: Option<&CopyTarget>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Vec<[u8; HASH_LEN]>> {
    let count = u32::try_from(size.div_ceil(u64::from(chunk_size)))
        .map_err(|_| io::Error::other("too many chunks"))?;
    let hashes = if count <= 1 {
        let mut buf = store.buffers().get(size as usize);
        let data = &mut buf.as_mut_slice()[..size as usize];
        read_exact_at(input, data, 0)?;
        if let Some(copy) = copy {
            copy.write(data, 0)?;
        }
        vec![*blake3::hash(data).as_bytes(); count as usize]
    } else {
        read_in_parallel(store, input, size, chunk_size, count, copy, progress)?
    };
    // The file must end where its metadata said it would.
    let mut probe = [0u8; 1];
    if read_exact_at(input, &mut probe, size).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "file grew while it was being read",
        ));
    }
    progress(size);
    Ok(hashes)
}

fn read_in_parallel(
    store: &Store,
    input: &File,
    size: u64,
    chunk_size: u32,
    count: u32,
    copy: Option<&CopyTarget>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Vec<[u8; HASH_LEN]>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores * 2).clamp(2, MAX_THREADS).min(count as usize);
    let next = AtomicU32::new(0);
    let failed = AtomicBool::new(false);
    let hashes = Mutex::new(vec![[0u8; HASH_LEN]; count as usize]);
    let (done_tx, done_rx) = mpsc::channel::<u64>();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let done_tx = done_tx.clone();
                let (next, failed, hashes) = (&next, &failed, &hashes);
                scope.spawn(move || -> io::Result<()> {
                    let mut buf = store.buffers().get(chunk_size as usize);
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count || failed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let offset = u64::from(index) * u64::from(chunk_size);
                        let len = (size - offset).min(u64::from(chunk_size)) as usize;
                        let data = &mut buf.as_mut_slice()[..len];
                        let result = read_exact_at(input, data, offset).and_then(|()| {
                            let hash = blake3::hash(data);
                            if let Some(copy) = copy {
                                copy.write(data, offset)?;
                            }
                            Ok(hash)
                        });
                        match result {
                            Ok(hash) => {
                                hashes.lock().unwrap_or_else(|p| p.into_inner())[index as usize] =
                                    *hash.as_bytes();
                                let _ = done_tx.send(len as u64);
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        drop(done_tx);
        // Progress is told here, on the caller's thread, as chunks finish.
        let mut read = 0u64;
        for len in done_rx {
            read += len;
            if read < size {
                progress(read);
            }
        }
        for worker in workers {
            worker
                .join()
                .map_err(|_| io::Error::other("an import thread panicked"))??;
        }
        Ok::<(), io::Error>(())
    })?;
    Ok(hashes.into_inner().unwrap_or_else(|p| p.into_inner()))
}

#[cfg(test)]
mod tests {
    use dht_proto::manifest::DEFAULT_CHUNK_SIZE;
    use dht_proto::{Cid, Manifest};

    use crate::{ImportMode, Store};

    /// A copy of one chunk goes through the page cache (its batch syncs it), a larger
    /// one with direct I/O where the file system takes it.
    #[test]
    fn only_copies_larger_than_a_chunk_are_written_with_direct_io() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let direct = |size: u64| {
            let path = dir.path().join(format!("copy-{size}"));
            std::fs::File::create(&path).unwrap();
            super::CopyTarget::open(&store, &path, size)
                .unwrap()
                .direct
                .is_some()
        };
        for size in [4096, 64 << 10, u64::from(DEFAULT_CHUNK_SIZE)] {
            assert!(!direct(size), "{size} bytes");
        }
        let probe = dir.path().join("probe");
        std::fs::File::create(&probe).unwrap();
        if crate::platform::open_direct(&probe).is_ok() {
            assert!(direct(u64::from(DEFAULT_CHUNK_SIZE) * 2));
        }
    }

    /// Chunks read, hashed and copied by several threads give the CID and the bytes a
    /// plain sequential reading gives, copy mode and in place alike.
    #[test]
    fn a_file_of_many_chunks_imports_to_the_same_cid_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let chunk = DEFAULT_CHUNK_SIZE as usize;
        for (i, size) in [chunk * 6 + 123, chunk * 3, chunk + 4096]
            .into_iter()
            .enumerate()
        {
            let bytes: Vec<u8> = (0..size)
                .map(|n| (n * 31 + i) as u8 ^ (n >> 12) as u8)
                .collect();
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, &bytes).unwrap();
            let hashes = bytes
                .chunks(chunk)
                .map(|c| *blake3::hash(c).as_bytes())
                .collect();
            let manifest = Manifest::new(size as u64, DEFAULT_CHUNK_SIZE, hashes).unwrap();
            let expected = Cid::for_manifest_bytes(&manifest.encode());
            let mut reported = Vec::new();
            let added = store
                .import(&path, ImportMode::Copy, None, &mut |n| reported.push(n))
                .unwrap();
            assert_eq!(added.cid, expected);
            assert_eq!(reported.last(), Some(&(size as u64)));
            assert!(reported.windows(2).all(|w| w[0] < w[1]), "{reported:?}");
            let out = dir.path().join(format!("out{i}"));
            store.export(&added.cid, &out).unwrap();
            assert!(std::fs::read(&out).unwrap() == bytes);
            assert!(store.remove(&added.cid).unwrap());
            let in_place = store
                .import(&path, ImportMode::Reference, None, &mut |_| {})
                .unwrap();
            assert_eq!(in_place.cid, expected);
            assert!(store.verify(&expected).unwrap().is_ok());
        }
    }
}
