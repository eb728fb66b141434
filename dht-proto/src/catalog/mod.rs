//! The catalog protocol `/p2pd/catalog/1.0.0`: "your listed entries matching these
//! words" and "your listed entries, page N", answered with signed entries.
//!
//! One request, one response per stream (libp2p request-response, CBOR, like the chunk
//! protocol). A decoded response is well formed; its entries are not yet trusted:
//! [`CatalogResponse::into_checked_entries`] keeps those signed by the sender (and, for a
//! search, matching the words) and counts the rest, which cost the sender reputation.

mod entry;

use serde::{Deserialize, Serialize};

pub use entry::MAX_ENTRY_NAME_LEN;
pub use entry::{CatalogEntry, EntryError, EntryInfo, ENTRY_SIGNATURE_DOMAIN, MAX_ENTRY_LEN};

use crate::codec::{self, DecodeError};
use crate::keyword::{is_keyword, keywords, name_matches, MAX_KEYWORD_LEN};

/// The libp2p protocol name.
pub const CATALOG_PROTOCOL: &str = "/p2pd/catalog/1.0.0";
/// Most words in one search; all must match.
pub const MAX_QUERY_WORDS: usize = 8;
/// Entries in one page of a browse answer (every page but the last is full).
pub const PAGE_SIZE: usize = 50;
/// Most entries in a search answer.
pub const MAX_SEARCH_RESULTS: usize = 50;
/// The largest request: 8 words of at most 256 bytes with their framing fit in 2,200.
pub const MAX_CATALOG_REQUEST_LEN: usize = 4096;
/// The largest response: 50 entries of at most [`MAX_ENTRY_LEN`] and framing.
pub const MAX_CATALOG_RESPONSE_LEN: usize = PAGE_SIZE * MAX_ENTRY_LEN + 1024;
/// The longest error message in an answer.
pub const MAX_CATALOG_ERROR_LEN: usize = 512;

/// Why a search could not be asked, or a request or response breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The search text has no word of 3 or more letters or digits.
    #[error("the search needs a word of at least 3 letters or digits")]
    NoSearchWords,
    /// The search has more than [`MAX_QUERY_WORDS`] words.
    #[error("a search takes at most {MAX_QUERY_WORDS} words (got {0})")]
    TooManyWords(usize),
    /// A word in a request is not in keyword form (lower case, NFC, 3 to 64 characters,
    /// letters and digits only).
    #[error("search word {0:?} is not a keyword")]
    BadWord(String),
    /// An answer holds more entries than its kind allows.
    #[error("answer holds {got} entries, at most {limit} allowed")]
    TooManyEntries {
        /// Entries in the answer.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// A page's entries run past the total it states.
    #[error("page {page} with {entries} entries does not fit a total of {total}")]
    PageBeyondTotal {
        /// Page index.
        page: u32,
        /// Entries on it.
        entries: usize,
        /// Stated total.
        total: u32,
    },
    /// An error message over [`MAX_CATALOG_ERROR_LEN`] bytes.
    #[error("error message too long")]
    ErrorTooLong,
}

/// A request of the catalog protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogRequest {
    /// Your listed entries whose names hold every one of these keywords.
    Search {
        /// 1 to 8 keywords, each as [`keywords`] produces them.
        words: Vec<String>,
    },
    /// Page `page` (from 0) of your listed entries, [`PAGE_SIZE`] per page.
    Browse {
        /// Page index.
        page: u32,
    },
}

/// A response of the catalog protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogResponse {
    /// Answers `Search`: matching listed entries, at most [`MAX_SEARCH_RESULTS`].
    Results {
        /// The entries.
        entries: Vec<CatalogEntry>,
        /// Whether the responder had more matches than it sent.
        more: bool,
    },
    /// Answers `Browse`: one page of listed entries, newest first (empty for a page past
    /// the last).
    Page {
        /// The entries, at most [`PAGE_SIZE`].
        entries: Vec<CatalogEntry>,
        /// The page index asked for.
        page: u32,
        /// How many entries the responder lists in all.
        total: u32,
    },
    /// Answers `Browse` when the responder's owner turned browsing off (search still
    /// works).
    BrowseDisabled,
    /// The requester asked too often; it may ask again after this many seconds.
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u32,
    },
    /// The responder failed.
    Error {
        /// What went wrong (no local paths).
        message: String,
    },
}

/// The entries of an answer that passed the checks, and how many did not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckedEntries {
    /// Entries signed by the sender (and matching the search words).
    pub entries: Vec<CatalogEntry>,
    /// Entries dropped: bad signature, signed by another key, or not matching.
    pub rejected: usize,
}

impl CatalogRequest {
    /// A search for the words of `text` (split as [`keywords`] splits names).
    pub fn search(text: &str) -> Result<Self, CatalogError> {
        let words = keywords(text);
        if words.is_empty() {
            return Err(CatalogError::NoSearchWords);
        }
        if words.len() > MAX_QUERY_WORDS {
            return Err(CatalogError::TooManyWords(words.len()));
        }
        Ok(CatalogRequest::Search { words })
    }

    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a request of at most [`MAX_CATALOG_REQUEST_LEN`] bytes and checks its words.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let request: CatalogRequest = codec::decode(bytes, MAX_CATALOG_REQUEST_LEN)?;
        request.check().map_err(invalid)?;
        Ok(request)
    }

    fn check(&self) -> Result<(), CatalogError> {
        let CatalogRequest::Search { words } = self else {
            return Ok(());
        };
        if words.is_empty() {
            return Err(CatalogError::NoSearchWords);
        }
        if words.len() > MAX_QUERY_WORDS {
            return Err(CatalogError::TooManyWords(words.len()));
        }
        match words
            .iter()
            .find(|w| w.len() > MAX_KEYWORD_LEN || !is_keyword(w))
        {
            Some(bad) => Err(CatalogError::BadWord(bad.clone())),
            None => Ok(()),
        }
    }
}

impl CatalogResponse {
    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a response of at most [`MAX_CATALOG_RESPONSE_LEN`] bytes and checks its
    /// counts. Entries are decoded well formed, not verified.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let response: CatalogResponse = codec::decode(bytes, MAX_CATALOG_RESPONSE_LEN)?;
        response.check().map_err(invalid)?;
        Ok(response)
    }

    fn check(&self) -> Result<(), CatalogError> {
        match self {
            CatalogResponse::Results { entries, .. } if entries.len() > MAX_SEARCH_RESULTS => {
                Err(CatalogError::TooManyEntries {
                    got: entries.len(),
                    limit: MAX_SEARCH_RESULTS,
                })
            }
            CatalogResponse::Page { entries, .. } if entries.len() > PAGE_SIZE => {
                Err(CatalogError::TooManyEntries {
                    got: entries.len(),
                    limit: PAGE_SIZE,
                })
            }
            CatalogResponse::Page {
                entries,
                page,
                total,
            } => {
                // An empty page past the last is what a responder sends for a page that
                // does not exist; a page with entries must fit the total it states.
                let end = u64::from(*page) * PAGE_SIZE as u64 + entries.len() as u64;
                if !entries.is_empty() && end > u64::from(*total) {
                    return Err(CatalogError::PageBeyondTotal {
                        page: *page,
                        entries: entries.len(),
                        total: *total,
                    });
                }
                Ok(())
            }
            CatalogResponse::Error { message } if message.len() > MAX_CATALOG_ERROR_LEN => {
                Err(CatalogError::ErrorTooLong)
            }
            _ => Ok(()),
        }
    }

    /// The entries of a `Results` or `Page` answer that `sender` (its binary peer id)
    /// signed and, for an answer to `Search { words }`, whose names hold every word;
    /// the others are counted in `rejected`. Other answers give no entries.
    pub fn into_checked_entries(self, sender: &[u8], words: Option<&[String]>) -> CheckedEntries {
        let entries = match self {
            CatalogResponse::Results { entries, .. } | CatalogResponse::Page { entries, .. } => {
                entries
            }
            _ => return CheckedEntries::default(),
        };
        let mut checked = CheckedEntries::default();
        for entry in entries {
            let matches = words.is_none_or(|w| name_matches(entry.name(), w));
            if matches && entry.verify_from(sender).is_ok() {
                checked.entries.push(entry);
            } else {
                checked.rejected += 1;
            }
        }
        checked
    }
}

/// How many pages `total` listed entries make.
pub fn page_count(total: usize) -> usize {
    total.div_ceil(PAGE_SIZE)
}

/// The indices (into a list of `total` entries) that page `page` holds; empty past the
/// last page.
pub fn page_range(page: u32, total: usize) -> std::ops::Range<usize> {
    let start = (page as usize).saturating_mul(PAGE_SIZE).min(total);
    start..start.saturating_add(PAGE_SIZE).min(total)
}

fn invalid(error: CatalogError) -> DecodeError {
    DecodeError::Invalid(error.to_string())
}

#[cfg(test)]
mod tests;
