//! The file manifest: what a file CID (codec `dag-cbor`) names.
//!
//! A manifest records the file size, the chunk size and the BLAKE3 hash of each chunk,
//! and nothing else: no name, no timestamp, so identical bytes always give the same CID.
//! The chunk size is a function of the file size alone ([`chunk_size_for`]) for the same
//! reason.
//!
//! Encoding: a CBOR map with keys in dag-cbor canonical order (shorter first):
//! `{"v": 1, "size": u64, "chunks": bytes(32 × n), "chunk_size": u32}`. The chunk hashes
//! are one byte string, not an array of arrays, so a manifest is compact and fast to decode.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::cid::{Cid, HASH_LEN};
use crate::codec::{self, DecodeError};

/// The chunk size of files up to 512 GiB: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
/// The smallest chunk size a manifest may declare.
pub const MIN_CHUNK_SIZE: u32 = 16 << 10;
/// The largest chunk size a manifest may declare: bounds the memory of one chunk message.
pub const MAX_CHUNK_SIZE: u32 = 4 << 20;
/// The most chunks a manifest may list: 2^19, so a manifest is at most 16 MiB and a file
/// at most 2 TiB (with 4 MiB chunks).
pub const MAX_CHUNKS: u64 = 1 << 19;
/// The largest encoded manifest accepted from a peer or a disk.
pub const MAX_MANIFEST_LEN: usize = HASH_LEN * MAX_CHUNKS as usize + 64;
/// The largest file p2pd can describe.
pub const MAX_FILE_SIZE: u64 = MAX_CHUNKS * MAX_CHUNK_SIZE as u64;
/// The manifest format version written into every manifest.
pub const MANIFEST_VERSION: u32 = 1;

/// The chunk size p2pd uses for a file of `size` bytes: 1 MiB, doubled until the file
/// fits in [`MAX_CHUNKS`] chunks. `None` if the file is larger than [`MAX_FILE_SIZE`].
pub fn chunk_size_for(size: u64) -> Option<u32> {
    let mut chunk = DEFAULT_CHUNK_SIZE;
    while size.div_ceil(u64::from(chunk)) > MAX_CHUNKS {
        chunk = chunk.checked_mul(2).filter(|c| *c <= MAX_CHUNK_SIZE)?;
    }
    Some(chunk)
}

/// A file's size, chunk size and chunk hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    size: u64,
    chunk_size: u32,
    chunks: Vec<[u8; HASH_LEN]>,
}

/// Why a manifest is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The chunk size is out of range or not a power of two.
    #[error("invalid chunk size {0}")]
    ChunkSize(u32),
    /// The number of chunk hashes does not match the size.
    #[error("manifest lists {got} chunks, a file of {size} bytes has {expected}")]
    ChunkCount {
        /// File size.
        size: u64,
        /// Chunks the size implies.
        expected: u64,
        /// Chunks listed.
        got: u64,
    },
    /// The file is larger than a manifest can describe.
    #[error("file of {0} bytes is larger than the maximum of {MAX_FILE_SIZE}")]
    TooLarge(u64),
    /// The manifest version is unknown.
    #[error("unsupported manifest version {0}")]
    Version(u32),
    /// The chunk-hash byte string is not a multiple of 32 bytes.
    #[error("chunk hash list has {0} bytes, not a multiple of 32")]
    HashList(usize),
}

#[derive(Serialize, Deserialize)]
struct WireManifest {
    v: u32,
    size: u64,
    chunks: ByteBuf,
    chunk_size: u32,
}

impl Manifest {
    /// Builds a manifest and checks that its parts agree.
    pub fn new(
        size: u64,
        chunk_size: u32,
        chunks: Vec<[u8; HASH_LEN]>,
    ) -> Result<Self, ManifestError> {
        let manifest = Manifest {
            size,
            chunk_size,
            chunks,
        };
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size)
            || !self.chunk_size.is_power_of_two()
        {
            return Err(ManifestError::ChunkSize(self.chunk_size));
        }
        if self.size > MAX_FILE_SIZE || self.chunks.len() as u64 > MAX_CHUNKS {
            return Err(ManifestError::TooLarge(self.size));
        }
        let expected = self.size.div_ceil(u64::from(self.chunk_size));
        if expected != self.chunks.len() as u64 {
            return Err(ManifestError::ChunkCount {
                size: self.size,
                expected,
                got: self.chunks.len() as u64,
            });
        }
        Ok(())
    }

    /// File size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Chunk size in bytes (every chunk but the last has this size).
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        // validate() bounds the count by MAX_CHUNKS, which fits in u32.
        self.chunks.len() as u32
    }

    /// The BLAKE3 hash of chunk `index`, if it exists.
    pub fn chunk_hash(&self, index: u32) -> Option<&[u8; HASH_LEN]> {
        self.chunks.get(index as usize)
    }

    /// All chunk hashes in order.
    pub fn chunk_hashes(&self) -> &[[u8; HASH_LEN]] {
        &self.chunks
    }

    /// Byte offset of chunk `index` in the file.
    pub fn chunk_offset(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.chunk_size)
    }

    /// Length of chunk `index` (0 if it does not exist).
    pub fn chunk_len(&self, index: u32) -> u32 {
        if index >= self.chunk_count() {
            return 0;
        }
        let rest = self.size - self.chunk_offset(index);
        rest.min(u64::from(self.chunk_size)) as u32
    }

    /// Whether `data` is exactly chunk `index`.
    pub fn verify_chunk(&self, index: u32, data: &[u8]) -> bool {
        match self.chunk_hash(index) {
            Some(expected) => {
                data.len() == self.chunk_len(index) as usize
                    && blake3::hash(data).as_bytes() == expected
            }
            None => false,
        }
    }

    /// The canonical CBOR encoding; its BLAKE3 hash is the file's CID.
    pub fn encode(&self) -> Vec<u8> {
        let mut flat = Vec::with_capacity(self.chunks.len() * HASH_LEN);
        for hash in &self.chunks {
            flat.extend_from_slice(hash);
        }
        codec::encode(&WireManifest {
            v: MANIFEST_VERSION,
            size: self.size,
            chunks: ByteBuf::from(flat),
            chunk_size: self.chunk_size,
        })
    }

    /// The file CID: `dag-cbor` over the encoded manifest.
    pub fn cid(&self) -> Cid {
        Cid::for_manifest_bytes(&self.encode())
    }

    /// Decodes and validates a manifest of at most [`MAX_MANIFEST_LEN`] bytes, which must
    /// be byte for byte its canonical encoding ([`Manifest::encode`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let wire: WireManifest = codec::decode(bytes, MAX_MANIFEST_LEN)?;
        if wire.v != MANIFEST_VERSION {
            return Err(DecodeError::Invalid(
                ManifestError::Version(wire.v).to_string(),
            ));
        }
        if !wire.chunks.len().is_multiple_of(HASH_LEN) {
            return Err(DecodeError::Invalid(
                ManifestError::HashList(wire.chunks.len()).to_string(),
            ));
        }
        let chunks = wire
            .chunks
            .chunks_exact(HASH_LEN)
            .map(|c| {
                let mut hash = [0u8; HASH_LEN];
                hash.copy_from_slice(c);
                hash
            })
            .collect();
        let manifest = Manifest::new(wire.size, wire.chunk_size, chunks)
            .map_err(|e| DecodeError::Invalid(e.to_string()))?;
        // The CID covers the exact bytes: any other spelling of the same manifest (keys in
        // another order, an extra key) would give the same file a second CID.
        if manifest.encode() != bytes {
            return Err(DecodeError::Invalid(
                "manifest is not in its canonical encoding".into(),
            ));
        }
        Ok(manifest)
    }

    /// Decodes a manifest and checks that it is the one `cid` names.
    pub fn decode_for(cid: &Cid, bytes: &[u8]) -> Result<Self, DecodeError> {
        if Cid::for_manifest_bytes(bytes) != *cid {
            return Err(DecodeError::Invalid(format!(
                "manifest bytes do not hash to {cid}"
            )));
        }
        Manifest::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_of(data: &[u8], chunk_size: u32) -> Manifest {
        let chunks = data
            .chunks(chunk_size as usize)
            .map(|c| *blake3::hash(c).as_bytes())
            .collect();
        Manifest::new(data.len() as u64, chunk_size, chunks).unwrap()
    }

    #[test]
    fn round_trips() {
        for len in [0usize, 1, 16 << 10, (16 << 10) + 1, 100_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let m = manifest_of(&data, MIN_CHUNK_SIZE);
            let bytes = m.encode();
            assert_eq!(Manifest::decode(&bytes).unwrap(), m);
            assert_eq!(Manifest::decode_for(&m.cid(), &bytes).unwrap(), m);
            let total: u64 = (0..m.chunk_count())
                .map(|i| u64::from(m.chunk_len(i)))
                .sum();
            assert_eq!(total, len as u64);
            for (i, chunk) in data.chunks(MIN_CHUNK_SIZE as usize).enumerate() {
                assert!(m.verify_chunk(i as u32, chunk));
            }
        }
    }

    #[test]
    fn chunk_hashes_are_one_byte_string() {
        let m = manifest_of(&[7u8; 100_000], MIN_CHUNK_SIZE);
        let bytes = m.encode();
        // 7 hashes of 32 bytes as one CBOR byte string: header 0x58 0xe0 then 224 bytes.
        assert!(bytes.len() < 7 * 32 + 60, "{} bytes", bytes.len());
        assert!(bytes.windows(2).any(|w| w == [0x58, 0xe0]));
    }

    #[test]
    fn identical_bytes_give_identical_cids() {
        let a = manifest_of(b"same bytes", MIN_CHUNK_SIZE);
        let b = manifest_of(b"same bytes", MIN_CHUNK_SIZE);
        assert_eq!(a.cid(), b.cid());
        assert_ne!(a.cid(), manifest_of(b"other bytes", MIN_CHUNK_SIZE).cid());
    }

    #[test]
    fn verify_chunk_rejects_wrong_data() {
        let m = manifest_of(&[1u8; 40_000], MIN_CHUNK_SIZE);
        assert!(!m.verify_chunk(0, &[2u8; 16 << 10]));
        assert!(!m.verify_chunk(0, &[1u8; 100]));
        assert!(!m.verify_chunk(9, &[1u8; 100]));
    }

    #[test]
    fn rejects_inconsistent_manifests() {
        assert!(matches!(
            Manifest::new(10, 1000, vec![[0; 32]]),
            Err(ManifestError::ChunkSize(1000))
        ));
        assert!(matches!(
            Manifest::new(MIN_CHUNK_SIZE as u64 + 1, MIN_CHUNK_SIZE, vec![[0; 32]]),
            Err(ManifestError::ChunkCount { .. })
        ));
        assert!(matches!(
            Manifest::new(0, MIN_CHUNK_SIZE, vec![[0; 32]]),
            Err(ManifestError::ChunkCount { .. })
        ));
        let too_many = MAX_CHUNKS as usize + 1;
        assert!(matches!(
            Manifest::new(
                too_many as u64 * u64::from(MIN_CHUNK_SIZE),
                MIN_CHUNK_SIZE,
                vec![[0; 32]; too_many]
            ),
            Err(ManifestError::TooLarge(_))
        ));
    }

    #[test]
    fn decoding_garbage_truncated_and_oversized_input_fails() {
        let bytes = manifest_of(&[3u8; 50_000], MIN_CHUNK_SIZE).encode();
        for len in 0..bytes.len() {
            assert!(
                Manifest::decode(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Manifest::decode(&trailing).is_err());
        let huge = vec![0u8; MAX_MANIFEST_LEN + 1];
        assert!(matches!(
            Manifest::decode(&huge),
            Err(DecodeError::TooLarge { .. })
        ));
        for seed in 0..200u32 {
            let garbage: Vec<u8> = (0..seed * 3).map(|i| (i * 31 + seed) as u8).collect();
            assert!(Manifest::decode(&garbage).is_err());
        }
        // A hash list that is not a multiple of 32 bytes.
        let mut odd = WireManifest {
            v: 1,
            size: 1,
            chunks: ByteBuf::from(vec![0u8; 31]),
            chunk_size: MIN_CHUNK_SIZE,
        };
        assert!(Manifest::decode(&codec::encode(&odd)).is_err());
        odd.chunks = ByteBuf::from(vec![0u8; 32]);
        odd.v = 2;
        assert!(Manifest::decode(&codec::encode(&odd)).is_err());
    }

    #[test]
    fn only_the_canonical_encoding_decodes() {
        let m = manifest_of(b"abc", MIN_CHUNK_SIZE);
        let canonical = m.encode();
        assert_eq!(Manifest::decode(&canonical).unwrap(), m);
        #[derive(Serialize)]
        struct Reordered {
            size: u64,
            v: u32,
            chunks: ByteBuf,
            chunk_size: u32,
        }
        #[derive(Serialize)]
        struct Extra {
            v: u32,
            size: u64,
            chunks: ByteBuf,
            chunk_size: u32,
            note: &'static str,
        }
        let hashes = ByteBuf::from(m.chunk_hashes().concat());
        let reordered = codec::encode(&Reordered {
            size: 3,
            v: 1,
            chunks: hashes.clone(),
            chunk_size: MIN_CHUNK_SIZE,
        });
        let extra = codec::encode(&Extra {
            v: 1,
            size: 3,
            chunks: hashes,
            chunk_size: MIN_CHUNK_SIZE,
            note: "x",
        });
        for other in [reordered, extra] {
            assert_ne!(other, canonical);
            assert!(matches!(
                Manifest::decode(&other),
                Err(DecodeError::Invalid(_))
            ));
        }
    }

    #[test]
    fn decode_for_checks_the_cid() {
        let m = manifest_of(b"abc", MIN_CHUNK_SIZE);
        let other = manifest_of(b"abd", MIN_CHUNK_SIZE);
        assert!(Manifest::decode_for(&other.cid(), &m.encode()).is_err());
    }

    #[test]
    fn chunk_size_grows_only_for_huge_files() {
        assert_eq!(chunk_size_for(0), Some(DEFAULT_CHUNK_SIZE));
        assert_eq!(chunk_size_for(10 << 30), Some(DEFAULT_CHUNK_SIZE));
        assert_eq!(chunk_size_for(512 << 30), Some(DEFAULT_CHUNK_SIZE));
        assert_eq!(chunk_size_for((512 << 30) + 1), Some(2 << 20));
        assert_eq!(chunk_size_for(MAX_FILE_SIZE), Some(MAX_CHUNK_SIZE));
        assert_eq!(chunk_size_for(MAX_FILE_SIZE + 1), None);
    }
}
