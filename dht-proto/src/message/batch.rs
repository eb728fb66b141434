//! The batch of small files: `Request::Chunks` asks one peer for the single chunk of
//! many files of one chunk at once, and `Response::Chunks` answers each file in the
//! order asked. One exchange then carries what took one stream, one protocol
//! negotiation and one request per file.
//!
//! Limits, checked while decoding (a list is refused as soon as it passes its limit, so
//! a hostile response never builds a long list first): at most [`MAX_BATCH_FILES`]
//! CIDs in a request and answers in a response, and at most [`MAX_BATCH_DATA`] bytes of
//! file data in all of a response's answers. With its framing the largest response fits
//! the chunk protocol's response limit (`MAX_CHUNK_RESPONSE_LEN`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_bytes::ByteBuf;

use crate::manifest::DEFAULT_CHUNK_SIZE;

/// The most files one `Chunks` request may name (and one response may answer).
pub const MAX_BATCH_FILES: usize = 128;
/// The most file bytes one `Chunks` response may carry, all answers together: one chunk
/// of the default size, so that a file of one chunk always fits a batch of its own.
pub const MAX_BATCH_DATA: usize = DEFAULT_CHUNK_SIZE as usize;

/// The answer about one file of a `Chunks` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchAnswer {
    /// The whole file: its only chunk (empty for the empty file).
    Data(ByteBuf),
    /// The responder does not hold the file, or it is not a file of one chunk of at
    /// most [`MAX_BATCH_DATA`] bytes (ask for it with `Chunk`).
    NotFound,
    /// Not answered now (no room left in this response, or in the responder's budget):
    /// ask again later, in another batch or alone.
    Choked,
}

impl BatchAnswer {
    /// The file bytes this answer carries.
    pub fn data_len(&self) -> usize {
        match self {
            BatchAnswer::Data(data) => data.len(),
            _ => 0,
        }
    }
}

/// Reads a list of at most [`MAX_BATCH_FILES`] items, failing at the first item past it.
pub(super) fn deserialize_batch<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {MAX_BATCH_FILES} items")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BATCH_FILES));
            while let Some(item) = seq.next_element()? {
                if out.len() == MAX_BATCH_FILES {
                    return Err(serde::de::Error::custom(format!(
                        "more than {MAX_BATCH_FILES} items in a batch"
                    )));
                }
                out.push(item);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_seq(Bounded(PhantomData))
}

/// Checks a decoded batch's answers: the total of their file bytes.
pub(super) fn check_answers(answers: &[BatchAnswer]) -> Result<(), String> {
    let total: usize = answers.iter().map(BatchAnswer::data_len).sum();
    if total > MAX_BATCH_DATA {
        return Err(format!(
            "{total} bytes of file data in a batch, more than {MAX_BATCH_DATA}"
        ));
    }
    Ok(())
}
