//! Chunk buffers: page-aligned memory for one chunk, reused through a bounded pool.
//!
//! Every chunk a node sends or receives passes through one of these. Page alignment is
//! what direct I/O needs ([`crate::Store::write_chunk`] writes a whole-page chunk from it
//! without the kernel copying it into the page cache); reuse means moving a chunk costs no
//! allocation, no zeroing and no page faults once the pool is warm, and that the memory
//! chunks take is bounded by how many are in use at once, not by how many have passed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

/// The alignment and granularity of chunk buffers, and of direct I/O.
pub const PAGE: usize = 4096;

/// One page of a buffer; a `Vec` of these is page-aligned.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(4096))]
struct Page([u8; PAGE]);

/// The bytes of one chunk, `len` long, in page-aligned memory. Returns to its pool when
/// dropped.
pub struct ChunkBuf {
    pages: Vec<Page>,
    len: usize,
    pool: Option<Arc<PoolInner>>,
}

impl ChunkBuf {
    /// A buffer holding a copy of `data`, outside any pool (tests, rare paths).
    pub fn copy_from(data: &[u8]) -> Self {
        let mut buf = Self {
            pages: bytemuck::zeroed_vec(data.len().div_ceil(PAGE)),
            len: data.len(),
            pool: None,
        };
        buf.as_mut_slice().copy_from_slice(data);
        buf
    }

    /// The chunk's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.pages)[..self.len]
    }

    /// The chunk's bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.pages)[..self.len]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::ops::Deref for ChunkBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for ChunkBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for ChunkBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for ChunkBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ChunkBuf {}

impl PartialEq<[u8]> for ChunkBuf {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for ChunkBuf {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl fmt::Debug for ChunkBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkBuf({} bytes)", self.len)
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(std::mem::take(&mut self.pages));
        }
    }
}

/// A bounded free list of chunk buffers, shared by everything that moves chunks (cheap
/// to clone). Buffers come in power-of-two sizes so that the chunks of different files
/// reuse each other's buffers; at most `max_kept_bytes` of free buffers are kept, the rest
/// are freed when dropped.
#[derive(Clone)]
pub struct BufferPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    max_kept_bytes: usize,
    free: Mutex<Free>,
}

#[derive(Default)]
struct Free {
    /// Free buffers by size in pages.
    by_pages: HashMap<usize, Vec<Vec<Page>>>,
    kept_bytes: usize,
}

impl PoolInner {
    fn give_back(&self, pages: Vec<Page>) {
        let bytes = pages.len() * PAGE;
        let mut free = self.lock();
        if free.kept_bytes + bytes <= self.max_kept_bytes {
            free.kept_bytes += bytes;
            free.by_pages.entry(pages.len()).or_default().push(pages);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Free> {
        // A panic while holding the lock cannot leave the lists inconsistent.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BufferPool {
    /// A pool keeping at most `max_kept_bytes` of free buffers.
    pub fn new(max_kept_bytes: usize) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                max_kept_bytes,
                free: Mutex::new(Free::default()),
            }),
        }
    }

    /// A buffer of `len` bytes, reused if one is free. Its contents are unspecified
    /// (zeroes, or a chunk that passed through before): fill it before reading it.
    pub fn get(&self, len: usize) -> ChunkBuf {
        let pages = len.div_ceil(PAGE).max(1).next_power_of_two();
        let reused = {
            let mut free = self.inner.lock();
            let found = free.by_pages.get_mut(&pages).and_then(Vec::pop);
            if found.is_some() {
                free.kept_bytes -= pages * PAGE;
            }
            found
        };
        ChunkBuf {
            // Fresh memory comes zeroed from the allocator (calloc), without a memset.
            pages: reused.unwrap_or_else(|| bytemuck::zeroed_vec(pages)),
            len,
            pool: Some(self.inner.clone()),
        }
    }

    /// Bytes of free buffers kept now.
    pub fn kept_bytes(&self) -> usize {
        self.inner.lock().kept_bytes
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("max_kept_bytes", &self.inner.max_kept_bytes)
            .field("kept_bytes", &self.kept_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_and_reused_up_to_the_bound() {
        let pool = BufferPool::new(2 << 20);
        let mut a = pool.get(1 << 20);
        assert_eq!(a.as_ptr() as usize % PAGE, 0);
        assert_eq!(a.len(), 1 << 20);
        a.as_mut_slice().fill(7);
        let address = a.as_ptr() as usize;
        drop(a);
        assert_eq!(pool.kept_bytes(), 1 << 20);
        // The same memory comes back, for a chunk of a size in the same class.
        let b = pool.get((1 << 20) - 100);
        assert_eq!(b.as_ptr() as usize, address);
        assert_eq!(b.len(), (1 << 20) - 100);
        assert_eq!(pool.kept_bytes(), 0);
        // Past the bound, dropped buffers are freed, not kept.
        let bufs: Vec<ChunkBuf> = (0..4).map(|_| pool.get(1 << 20)).collect();
        drop(bufs);
        drop(b);
        assert_eq!(pool.kept_bytes(), 2 << 20);
    }

    #[test]
    fn small_and_empty_buffers_work() {
        let pool = BufferPool::new(1 << 20);
        let empty = pool.get(0);
        assert!(empty.is_empty());
        assert_eq!(empty.as_slice(), b"");
        let copy = ChunkBuf::copy_from(b"hello");
        assert_eq!(copy, &b"hello"[..]);
        assert_eq!(copy.as_ptr() as usize % PAGE, 0);
    }
}
