//! CBOR encoding with cbor4ii, and the checks that every decoder applies first: the size
//! limit, then the strict subset of CBOR that p2pd accepts ([`check_strict`]).
//!
//! The strict subset exists so that one message has one encoding (up to the order of map
//! keys and keys a decoder ignores), and so that every implementation refuses the same
//! bytes: a lenient decoder next to a strict one is where parser differentials start.

use cbor4ii::core::dec::Read;
use cbor4ii::core::utils::SliceReader;
use serde::{de::DeserializeOwned, Serialize};

/// The deepest nesting of maps and arrays accepted anywhere in a message or record (the
/// top-level item is depth 1; p2pd's own messages reach depth 3).
pub const MAX_NESTING: usize = 16;

/// Why bytes did not decode into a message or record.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than the limit for its kind; nothing was parsed.
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit that applies.
        limit: usize,
    },
    /// The input is not valid CBOR for the expected type (truncated, wrong shape, garbage),
    /// or it is CBOR outside the strict subset.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The CBOR is well formed but its content breaks a rule of the format.
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// Encodes a value as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail and our types have no serializer that errors.
    cbor4ii::serde::to_vec(Vec::new(), value).unwrap_or_default()
}

/// Decodes a value from CBOR after checking the input against `limit` and against the
/// strict subset ([`check_strict`]). The whole input must be one value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    check_strict(bytes)?;
    let mut de = cbor4ii::serde::Deserializer::new(SliceReader::new(bytes));
    let value = T::deserialize(&mut de).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let mut reader = de.into_inner();
    let trailing = reader.fill(1).map(|r| r.as_ref().len()).unwrap_or(0);
    if trailing != 0 {
        return Err(DecodeError::Malformed(
            "trailing bytes after the message".into(),
        ));
    }
    Ok(value)
}

/// Checks that `bytes` is exactly one CBOR item of the strict subset p2pd accepts:
///
/// - every head uses the shortest form of its argument (RFC 8949 §4.2.1 "preferred
///   serialization"): integers, and the lengths of byte strings, text strings, arrays and
///   maps;
/// - every length is definite (no indefinite-length items, no `break`);
/// - no tags; of the simple values only `false`, `true` and `null`; no floats;
/// - text strings are valid UTF-8;
/// - map keys are text strings, and distinct within a map;
/// - maps and arrays nest at most [`MAX_NESTING`] deep;
/// - nothing follows the item.
pub fn check_strict(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut cursor = Cursor { bytes, pos: 0 };
    cursor.item(1)?;
    if cursor.pos != bytes.len() {
        return Err(malformed("trailing bytes after the message"));
    }
    Ok(())
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::Malformed(why.to_string())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let rest = &self.bytes[self.pos..];
        if len > rest.len() as u64 {
            return Err(malformed("truncated input"));
        }
        let len = len as usize;
        self.pos += len;
        Ok(&rest[..len])
    }

    /// Reads a head: its major type and its argument, refusing non-shortest arguments and
    /// the reserved and indefinite-length forms.
    fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let (value, shortest) = match info {
            0..=23 => (u64::from(info), true),
            24 => {
                let v = u64::from(self.take(1)?[0]);
                (v, v >= 24)
            }
            25 => {
                let v = u64::from(u16::from_be_bytes(self.array()?));
                (v, v > 0xff)
            }
            26 => {
                let v = u64::from(u32::from_be_bytes(self.array()?));
                (v, v > 0xffff)
            }
            27 => {
                let v = u64::from_be_bytes(self.array()?);
                (v, v > 0xffff_ffff)
            }
            31 => return Err(malformed("indefinite-length item")),
            _ => return Err(malformed("reserved additional information")),
        };
        // Simple values and floats share major type 7; their "argument" is not a length.
        if major != 7 && !shortest {
            return Err(malformed("integer or length not in its shortest form"));
        }
        Ok((major, value))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn item(&mut self, depth: usize) -> Result<(), DecodeError> {
        let start = self.pos;
        let (major, value) = self.head()?;
        match major {
            0 | 1 => Ok(()),
            2 => self.take(value).map(drop),
            3 => {
                let text = self.take(value)?;
                std::str::from_utf8(text)
                    .map(drop)
                    .map_err(|_| malformed("text string is not valid UTF-8"))
            }
            4 => {
                self.nest(depth)?;
                for _ in 0..value {
                    self.item(depth + 1)?;
                }
                Ok(())
            }
            5 => {
                self.nest(depth)?;
                let mut keys: Vec<&[u8]> = Vec::new();
                for _ in 0..value {
                    let key_start = self.pos;
                    let (key_major, key_len) = self.head()?;
                    if key_major != 3 {
                        return Err(malformed("map key is not a text string"));
                    }
                    let key = self.take(key_len)?;
                    if std::str::from_utf8(key).is_err() {
                        return Err(malformed("text string is not valid UTF-8"));
                    }
                    keys.push(&self.bytes[key_start..self.pos]);
                    self.item(depth + 1)?;
                }
                keys.sort_unstable();
                if keys.windows(2).any(|pair| pair[0] == pair[1]) {
                    return Err(malformed("duplicate map key"));
                }
                Ok(())
            }
            6 => Err(malformed("tags are not allowed")),
            _ => match self.bytes[start] {
                0xf4..=0xf6 => Ok(()),
                _ => Err(malformed(
                    "only false, true and null are allowed among simple values and floats",
                )),
            },
        }
    }

    fn nest(&self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_NESTING {
            return Err(malformed("maps and arrays nested too deep"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let clean: String = text.split_whitespace().collect();
        data_encoding::HEXLOWER.decode(clean.as_bytes()).unwrap()
    }

    #[test]
    fn shortest_definite_items_pass() {
        for ok in [
            "00",
            "17",
            "1818",
            "18ff",
            "190100",
            "1a00010000",
            "1b0000000100000000",
            "20",
            "3818",
            "40",
            "4401020304",
            "60",
            "6161",
            "80",
            "8301820203a0",
            "a0",
            "a2616101616202",
            "f4",
            "f5",
            "f6",
        ] {
            check_strict(&hex(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn everything_outside_the_subset_is_refused() {
        for bad in [
            // Non-shortest integers, of every width.
            "1800",
            "1817",
            "1900ff",
            "1a0000ffff",
            "1b00000000ffffffff",
            "3800",
            // Non-shortest lengths of byte strings, text strings, arrays and maps.
            "5801ff",
            "590001ff",
            "780161",
            "9800",
            "b800",
            "ba00000000",
            // Indefinite lengths and a stray break.
            "5fff",
            "7fff",
            "9fff",
            "bfff",
            "ff",
            // Reserved additional information.
            "1c",
            "5d",
            // Tags, floats, undefined and other simple values.
            "c240",
            "d82a4100",
            "f7",
            "f0",
            "f820",
            "f93c00",
            "fa3f800000",
            "fb3ff0000000000000",
            "fb7ff8000000000000",
            // Map keys that are not text, or repeated.
            "a10101",
            "a1400a",
            "a2616101616102",
            // Invalid UTF-8, as a value and as a key.
            "61ff",
            "a161ff00",
            // Truncated, and trailing bytes.
            "",
            "19",
            "4201",
            "8201",
            "0000",
        ] {
            assert!(check_strict(&hex(bad)).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            let mut bytes = vec![0x81; depth - 1];
            bytes.push(0x80);
            bytes
        };
        assert!(check_strict(&nested(MAX_NESTING)).is_ok());
        assert!(check_strict(&nested(MAX_NESTING + 1)).is_err());
        // Far deeper than any stack would allow for recursion, refused without recursing.
        assert!(check_strict(&vec![0x81; 1 << 20]).is_err());
    }

    #[test]
    fn a_huge_declared_count_is_refused_without_looping_on_it() {
        // An array claiming 2^63 items, with one item present.
        assert!(check_strict(&hex("9b800000000000000000")).is_err());
        assert!(check_strict(&hex("bb800000000000000061610a")).is_err());
    }

    #[test]
    fn decode_applies_the_subset() {
        assert_eq!(decode::<u64>(&hex("1818"), 16).unwrap(), 24);
        assert!(matches!(
            decode::<u64>(&hex("1817"), 16),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode::<u64>(&hex("1818"), 1),
            Err(DecodeError::TooLarge { len: 2, limit: 1 })
        ));
    }
}
