//! The bounded protobuf reader under the libp2p messages p2pd reads itself
//! ([`crate::kad_probe`], [`crate::relay_hop`]): a message's fields in order, by field
//! number and wire type, and the unsigned-varint length prefix that frames each
//! message. It never allocates; a bad varint, an unknown wire type or a field running
//! past the end is an error, and one error ends the reading.

/// Why bytes are not a protobuf message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireError {
    /// The bytes end in the middle of a field.
    Truncated,
    /// A varint longer than 10 bytes, or a wire type protobuf does not have.
    Malformed(&'static str),
}

/// A field's value, by wire type (fixed-width ones are skipped).
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a protobuf message, in order: `(field number, value)`.
pub(crate) struct Fields<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let result = self.read_field();
        if result.is_err() {
            self.0 = &[];
        }
        Some(result)
    }
}

impl<'a> Fields<'a> {
    fn read_field(&mut self) -> Result<(u64, Value<'a>), WireError> {
        let tag = self.varint()?;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(usize::try_from(len).map_err(|_| WireError::Truncated)?)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err(WireError::Malformed("unknown wire type")),
        };
        Ok((tag >> 3, value))
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let (value, used) = read_varint(self.0)?;
        self.0 = &self.0[used..];
        Ok(value)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.0.len() {
            return Err(WireError::Truncated);
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }
}

/// A varint at the start of `bytes` and how many bytes it took.
pub(crate) fn read_varint(bytes: &[u8]) -> Result<(u64, usize), WireError> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if bytes.len() >= 10 {
        Err(WireError::Malformed("varint longer than 10 bytes"))
    } else {
        Err(WireError::Truncated)
    }
}

/// The length prefix at the start of `bytes`: `Ok(Some((message length, prefix
/// length)))`, `Ok(None)` while `bytes` ends inside the prefix, and `Err(length)` for a
/// length over `max`.
pub(crate) fn frame_length(bytes: &[u8], max: usize) -> Result<Option<(usize, usize)>, FrameError> {
    match read_varint(bytes) {
        Ok((len, _)) if len > max as u64 => Err(FrameError::TooLarge(len)),
        Ok((len, used)) => Ok(Some((len as usize, used))),
        Err(WireError::Truncated) => Ok(None),
        Err(e) => Err(FrameError::Wire(e)),
    }
}

/// Why a length prefix is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The announced length is over the limit.
    TooLarge(u64),
    /// The prefix is not a varint.
    Wire(WireError),
}
