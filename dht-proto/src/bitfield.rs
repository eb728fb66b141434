//! Which chunks of a file a peer holds: one bit per chunk, most significant bit first in
//! each byte (the BitTorrent convention).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::manifest::MAX_CHUNKS;

/// A fixed-length set of chunk indices. Decoding checks that the bytes match the
/// length, so a bitfield from a peer can be indexed safely.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireBitfield")]
pub struct Bitfield {
    len: u32,
    bits: ByteBuf,
    /// Chunks set, kept up to date so that `count` and `is_complete` cost nothing (a
    /// download asks after every chunk, and a bitfield can hold 2^19 bits).
    #[serde(skip)]
    ones: u32,
}

#[derive(Deserialize)]
struct WireBitfield {
    len: u32,
    bits: ByteBuf,
}

impl TryFrom<WireBitfield> for Bitfield {
    type Error = String;

    fn try_from(wire: WireBitfield) -> Result<Self, Self::Error> {
        Bitfield::from_parts(wire.len, wire.bits.into_vec())
            .ok_or_else(|| "bitfield bytes do not match its length".to_string())
    }
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitfield({}/{})", self.count(), self.len)
    }
}

impl Bitfield {
    /// An empty bitfield for `len` chunks.
    pub fn new(len: u32) -> Self {
        Bitfield {
            len,
            bits: ByteBuf::from(vec![0u8; (len as usize).div_ceil(8)]),
            ones: 0,
        }
    }

    /// A bitfield with every chunk set.
    pub fn full(len: u32) -> Self {
        let mut field = Bitfield::new(len);
        for i in 0..len {
            field.set(i);
        }
        field
    }

    /// Number of chunks the bitfield covers.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether it covers no chunks at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether chunk `index` is set.
    pub fn get(&self, index: u32) -> bool {
        index < self.len && self.bits[(index / 8) as usize] & (0x80 >> (index % 8)) != 0
    }

    /// Sets chunk `index`; ignored if out of range.
    pub fn set(&mut self, index: u32) {
        if index < self.len && !self.get(index) {
            self.bits[(index / 8) as usize] |= 0x80 >> (index % 8);
            self.ones += 1;
        }
    }

    /// Clears chunk `index`; ignored if out of range.
    pub fn clear(&mut self, index: u32) {
        if self.get(index) {
            self.bits[(index / 8) as usize] &= !(0x80 >> (index % 8));
            self.ones -= 1;
        }
    }

    /// Number of chunks set.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// Whether every chunk is set.
    pub fn is_complete(&self) -> bool {
        self.count() == self.len
    }

    /// Indices of the chunks set.
    pub fn iter_set(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|i| self.get(*i))
    }

    /// The raw bytes (for storage).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// Rebuilds a bitfield from stored or received parts, checking that they agree and
    /// that no bit past `len` is set.
    pub fn from_parts(len: u32, bits: Vec<u8>) -> Option<Self> {
        if u64::from(len) > MAX_CHUNKS || bits.len() != (len as usize).div_ceil(8) {
            return None;
        }
        if !len.is_multiple_of(8) {
            let last = *bits.last()?;
            if last & (0xff >> (len % 8)) != 0 {
                return None;
            }
        }
        let ones = bits.iter().map(|b| b.count_ones()).sum();
        Some(Bitfield {
            len,
            bits: ByteBuf::from(bits),
            ones,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count() {
        let mut b = Bitfield::new(13);
        assert_eq!(b.as_bytes().len(), 2);
        b.set(0);
        b.set(12);
        b.set(99);
        assert!(b.get(0) && b.get(12) && !b.get(5) && !b.get(99));
        assert_eq!(b.count(), 2);
        assert_eq!(b.iter_set().collect::<Vec<_>>(), vec![0, 12]);
        b.clear(0);
        assert_eq!(b.count(), 1);
        // Setting a set bit or clearing a clear one changes nothing, the count included.
        b.set(12);
        b.clear(0);
        b.clear(99);
        assert_eq!(b.count(), 1);
        assert!(!b.is_complete());
        assert!(Bitfield::full(13).is_complete());
        assert_eq!(
            Bitfield::from_parts(13, vec![0xf0, 0x08]).unwrap().count(),
            5
        );
        assert!(Bitfield::full(0).is_complete());
    }

    #[test]
    fn from_parts_rejects_bad_lengths_and_stray_bits() {
        assert!(Bitfield::from_parts(13, vec![0xff, 0xf8]).is_some());
        assert!(Bitfield::from_parts(13, vec![0xff, 0xfc]).is_none());
        assert!(Bitfield::from_parts(13, vec![0xff]).is_none());
        assert!(Bitfield::from_parts(u32::MAX, vec![]).is_none());
    }

    #[test]
    fn decoding_checks_the_length() {
        let good = Bitfield::full(13);
        let bytes = crate::codec::encode(&good);
        let decoded = crate::codec::decode::<Bitfield>(&bytes, 1024).unwrap();
        assert_eq!(decoded, good);
        assert!(decoded.is_complete());
        #[derive(Serialize)]
        struct Lying {
            len: u32,
            bits: ByteBuf,
        }
        let lie = crate::codec::encode(&Lying {
            len: 100,
            bits: ByteBuf::new(),
        });
        assert!(crate::codec::decode::<Bitfield>(&lie, 1024).is_err());
    }
}
