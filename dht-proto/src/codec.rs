//! CBOR encoding with cbor4ii and the size check that every decoder applies first.

use cbor4ii::core::dec::Read;
use cbor4ii::core::utils::SliceReader;
use serde::{de::DeserializeOwned, Serialize};

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
    /// The input is not valid CBOR for the expected type (truncated, wrong shape, garbage).
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

/// Decodes a value from CBOR after checking the input against `limit`. The whole input
/// must be one value: trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
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
