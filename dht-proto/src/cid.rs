//! Content identifiers: CIDv1 with a BLAKE3-256 multihash, written in multibase base32
//! lower case (`b…`). A CID of codec `raw` names one chunk's bytes; a CID of codec
//! `dag-cbor` names a file manifest. Both are valid IPFS CIDs.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;

/// Multicodec code of the BLAKE3 hash function.
pub const MULTIHASH_BLAKE3: u64 = 0x1e;
/// Length in bytes of a BLAKE3-256 digest.
pub const HASH_LEN: usize = 32;
/// Length in bytes of a binary CID as p2pd writes it: version, codec, hash code, length, digest.
pub const CID_BYTES_LEN: usize = 4 + HASH_LEN;
/// The longest CID string accepted by [`Cid::from_str`]: far above a real one (59 chars),
/// so that an absurd argument is refused before it is decoded.
pub const MAX_CID_STR_LEN: usize = 256;

/// What a CID's bytes are: one chunk, or a file manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// `raw` (0x55): the bytes of one chunk.
    Raw,
    /// `dag-cbor` (0x71): a file manifest encoded as CBOR.
    DagCbor,
}

impl Codec {
    /// The multicodec code.
    pub fn code(self) -> u64 {
        match self {
            Codec::Raw => 0x55,
            Codec::DagCbor => 0x71,
        }
    }

    fn from_code(code: u64) -> Result<Self, CidError> {
        match code {
            0x55 => Ok(Codec::Raw),
            0x71 => Ok(Codec::DagCbor),
            other => Err(CidError::UnsupportedCodec(other)),
        }
    }
}

/// A content identifier: a codec and the BLAKE3-256 digest of the content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid {
    codec: Codec,
    hash: [u8; HASH_LEN],
}

/// Why a string or byte sequence is not a p2pd CID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidError {
    /// The input is empty.
    #[error("empty CID")]
    Empty,
    /// The input is far longer than any CID.
    #[error("CID is too long ({0} characters)")]
    TooLong(usize),
    /// The multibase prefix is not `b` (base32 lower case).
    #[error("CID must be base32 lower case starting with 'b' (got prefix {0:?})")]
    UnsupportedMultibase(char),
    /// The base32 text does not decode.
    #[error("CID is not valid base32: {0}")]
    Base32(String),
    /// A varint is truncated or overlong.
    #[error("CID has a malformed varint")]
    Varint,
    /// The CID version is not 1.
    #[error("unsupported CID version {0} (only CIDv1)")]
    UnsupportedVersion(u64),
    /// The content codec is neither `raw` nor `dag-cbor`.
    #[error("unsupported CID codec 0x{0:x} (expected raw 0x55 or dag-cbor 0x71)")]
    UnsupportedCodec(u64),
    /// The multihash is not BLAKE3.
    #[error("unsupported multihash 0x{0:x} (expected blake3 0x1e)")]
    UnsupportedHash(u64),
    /// The digest is not 32 bytes.
    #[error("CID digest has length {0}, expected 32")]
    DigestLength(u64),
    /// Bytes follow the digest.
    #[error("CID has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl Cid {
    /// A CID from a codec and a BLAKE3 digest.
    pub fn new(codec: Codec, hash: [u8; HASH_LEN]) -> Self {
        Cid { codec, hash }
    }

    /// The CID of a chunk's bytes.
    pub fn for_chunk(bytes: &[u8]) -> Self {
        Cid::new(Codec::Raw, *blake3::hash(bytes).as_bytes())
    }

    /// The CID of an encoded manifest.
    pub fn for_manifest_bytes(encoded: &[u8]) -> Self {
        Cid::new(Codec::DagCbor, *blake3::hash(encoded).as_bytes())
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The BLAKE3 digest.
    pub fn hash(&self) -> &[u8; HASH_LEN] {
        &self.hash
    }

    /// The multihash bytes (`0x1e 0x20 digest`). This is the Kademlia provider key of a
    /// file, the same key an IPFS node looks up for this CID.
    pub fn multihash_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + HASH_LEN);
        out.push(MULTIHASH_BLAKE3 as u8);
        out.push(HASH_LEN as u8);
        out.extend_from_slice(&self.hash);
        out
    }

    /// The binary CID (`0x01 codec 0x1e 0x20 digest`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CID_BYTES_LEN);
        write_varint(&mut out, 1);
        write_varint(&mut out, self.codec.code());
        out.extend_from_slice(&self.multihash_bytes());
        out
    }

    /// Parses a binary CID.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CidError> {
        if bytes.is_empty() {
            return Err(CidError::Empty);
        }
        let mut rest = bytes;
        let version = read_varint(&mut rest)?;
        if version != 1 {
            return Err(CidError::UnsupportedVersion(version));
        }
        let codec = Codec::from_code(read_varint(&mut rest)?)?;
        let hash_code = read_varint(&mut rest)?;
        if hash_code != MULTIHASH_BLAKE3 {
            return Err(CidError::UnsupportedHash(hash_code));
        }
        let len = read_varint(&mut rest)?;
        if len != HASH_LEN as u64 {
            return Err(CidError::DigestLength(len));
        }
        if rest.len() < HASH_LEN {
            return Err(CidError::DigestLength(rest.len() as u64));
        }
        let (digest, trailing) = rest.split_at(HASH_LEN);
        if !trailing.is_empty() {
            return Err(CidError::TrailingBytes(trailing.len()));
        }
        let mut hash = [0u8; HASH_LEN];
        hash.copy_from_slice(digest);
        Ok(Cid { codec, hash })
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = BASE32_NOPAD.encode(&self.to_bytes()).to_ascii_lowercase();
        write!(f, "b{text}")
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

impl FromStr for Cid {
    type Err = CidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > MAX_CID_STR_LEN {
            return Err(CidError::TooLong(s.len()));
        }
        let mut chars = s.chars();
        let prefix = chars.next().ok_or(CidError::Empty)?;
        if prefix != 'b' {
            return Err(CidError::UnsupportedMultibase(prefix));
        }
        let body = chars.as_str();
        if body.is_empty() {
            return Err(CidError::Empty);
        }
        if let Some(bad) = body
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || ('2'..='7').contains(c)))
        {
            return Err(CidError::Base32(format!("unexpected character {bad:?}")));
        }
        let bytes = BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|e| CidError::Base32(e.to_string()))?;
        Cid::from_bytes(&bytes)
    }
}

impl serde::Serialize for Cid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for Cid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes: serde_bytes::ByteBuf = serde::Deserialize::deserialize(deserializer)?;
        Cid::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// Appends `value` as an unsigned LEB128 varint.
pub(crate) fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned varint of at most 9 bytes (the multiformats limit), minimally encoded.
pub(crate) fn read_varint(input: &mut &[u8]) -> Result<u64, CidError> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let (&byte, rest) = input.split_first().ok_or(CidError::Varint)?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(CidError::Varint); // not minimal
            }
            return Ok(value);
        }
    }
    Err(CidError::Varint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_string_and_bytes() {
        for codec in [Codec::Raw, Codec::DagCbor] {
            let cid = Cid::new(codec, *blake3::hash(b"hello").as_bytes());
            let text = cid.to_string();
            assert!(text.starts_with('b'));
            assert_eq!(text, text.to_ascii_lowercase());
            assert_eq!(text.parse::<Cid>().unwrap(), cid);
            assert_eq!(Cid::from_bytes(&cid.to_bytes()).unwrap(), cid);
            assert_eq!(cid.to_bytes().len(), CID_BYTES_LEN);
        }
    }

    #[test]
    fn matches_the_ipfs_layout() {
        // CIDv1, raw, blake3 multihash of the empty string, computed independently with Python base64.
        let cid = Cid::for_chunk(b"");
        assert_eq!(
            cid.to_string(),
            "bafkr4ifpcne3t5pzugtkaqcn5i3nzskjtpfslsnnyejlpte2spfoihzsmi"
        );
        assert_eq!(&cid.to_bytes()[..4], &[0x01, 0x55, 0x1e, 0x20]);
        assert_eq!(&cid.multihash_bytes()[..2], &[0x1e, 0x20]);
    }

    #[test]
    fn rejects_malformed_strings() {
        let good = Cid::for_chunk(b"x").to_string();
        type Check = fn(&CidError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (String::new(), |e| matches!(e, CidError::Empty)),
            ("b".into(), |e| matches!(e, CidError::Empty)),
            ("z123".into(), |e| {
                matches!(e, CidError::UnsupportedMultibase('z'))
            }),
            (good.to_uppercase(), |e| {
                matches!(e, CidError::UnsupportedMultibase('B'))
            }),
            ("b!!!!".into(), |e| matches!(e, CidError::Base32(_))),
            (good[..good.len() - 3].to_string(), |e| {
                matches!(e, CidError::Base32(_) | CidError::DigestLength(_))
            }),
            (format!("{good}aaaa"), |e| {
                matches!(e, CidError::Base32(_) | CidError::TrailingBytes(_))
            }),
            ("b".to_string() + &"a".repeat(400), |e| {
                matches!(e, CidError::TooLong(_))
            }),
            // QmX… style CIDv0 is base58 and refused by its prefix.
            (
                "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG".into(),
                |e| matches!(e, CidError::UnsupportedMultibase('Q')),
            ),
        ];
        for (input, check) in cases {
            let err = input.parse::<Cid>().unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn rejects_other_hashes_codecs_and_versions() {
        let mut bytes = Cid::for_chunk(b"x").to_bytes();
        bytes[2] = 0x12; // sha2-256
        assert_eq!(
            Cid::from_bytes(&bytes),
            Err(CidError::UnsupportedHash(0x12))
        );
        let mut bytes = Cid::for_chunk(b"x").to_bytes();
        bytes[1] = 0x70; // dag-pb
        assert_eq!(
            Cid::from_bytes(&bytes),
            Err(CidError::UnsupportedCodec(0x70))
        );
        let mut bytes = Cid::for_chunk(b"x").to_bytes();
        bytes[0] = 0x00;
        assert_eq!(
            Cid::from_bytes(&bytes),
            Err(CidError::UnsupportedVersion(0))
        );
        assert_eq!(Cid::from_bytes(&[0x80; 12]), Err(CidError::Varint));
        assert_eq!(Cid::from_bytes(&[]), Err(CidError::Empty));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = Cid::for_chunk(b"x").to_bytes();
        for len in 0..bytes.len() {
            assert!(
                Cid::from_bytes(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
    }
}
