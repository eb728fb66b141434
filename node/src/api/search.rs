//! The control API's side of search and browsing: the wire types (JSON, their OpenAPI
//! schemas derived) of search results, browse answers, listing changes and the catalog's
//! state and setting, and the [`Api`] operations over the catalog. Domain types from
//! `crate::catalog` are converted here, at the edge.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::types::StreamLine;
use super::{parse_cid, Api, ApiError};
use crate::catalog::{
    BrowseError, BrowseTarget, Browsed, Catalog, CatalogSettings, CatalogStatus, SearchEvent,
    SearchHit, SearchSummary,
};

/// Default time a search runs at most.
pub const DEFAULT_SEARCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a browse runs at most.
pub const DEFAULT_BROWSE_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /api/search`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchRequest {
    /// What the user typed: its words (3 letters or digits or more, at most 8) must all
    /// be in a file's name, in any letter case.
    #[schema(example = "holiday photos")]
    pub query: String,
    /// Longest the search runs, in seconds (default 10, at most 300).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 300, example = 2)]
    pub timeout_secs: Option<u64>,
}

/// One file found: by search (any number of publishers) or by browse (one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    /// The file CID (what `fetch` takes).
    pub cid: String,
    /// Its name, as most of its publishers give it.
    pub name: String,
    /// Its size in bytes, as most of its publishers give it.
    pub size: u64,
    /// Its media type, guessed by the publisher from the name.
    pub media_type: String,
    /// When a publisher first added it (Unix seconds).
    pub added_unix: u64,
    /// Peer ids of the peers that list it, each verified to have signed its entry.
    pub publishers: Vec<String>,
    /// How many publishers (sources) it has.
    pub sources: usize,
    /// Whether the CID names a folder (media type `inode/directory`); `fetch` writes
    /// its tree.
    #[serde(default)]
    pub folder: bool,
}

/// The end of a search: every result, best first, and what it cost.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchDone {
    /// The words searched for (lower case).
    pub words: Vec<String>,
    /// Every result, most publishers first, then the closest name (at most 200).
    pub results: Vec<SearchResult>,
    /// Distinct peers the DHT named as providers of the words.
    pub peers_found: usize,
    /// Peers asked over the catalog protocol.
    pub peers_asked: usize,
    /// Peers that answered.
    pub peers_answered: usize,
    /// Peers that failed, refused or did not answer in time.
    pub peers_failed: usize,
    /// Entries dropped because their sender did not sign them or they did not match.
    pub rejected_entries: usize,
    /// DHT requests sent by the lookups.
    pub dht_requests: u32,
    /// Catalog requests sent.
    pub catalog_requests: u32,
    /// Milliseconds from the start to the first result (none if nothing was found).
    pub first_result_ms: Option<u64>,
    /// Milliseconds from the start to the last new result or publisher.
    pub last_result_ms: Option<u64>,
    /// Milliseconds the search ran.
    pub elapsed_ms: u64,
    /// Whether it ended at its deadline with peers still to hear from.
    pub timed_out: bool,
}

/// `POST /api/browse`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowseRequest {
    /// A peer id, or an address (`/ip4/…/tcp/…`, with or without `/p2p/<peer id>`).
    #[schema(example = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq")]
    pub peer: String,
    /// Longest the browse runs, in seconds (default 30, at most 300).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 300, example = 2)]
    pub timeout_secs: Option<u64>,
}

/// A peer's listed files.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowseResponse {
    /// The peer.
    pub peer_id: String,
    /// Its files, newest first.
    pub files: Vec<SearchResult>,
    /// How many files it says it lists.
    pub total: u32,
    /// Whether every page was read (at most 10,000 files are).
    pub complete: bool,
    /// Entries dropped because the peer did not sign them.
    pub rejected_entries: usize,
}

/// The answer to listing or unlisting a file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListingResponse {
    /// The file.
    pub cid: String,
    /// Whether it is marked listed now.
    pub listed: bool,
    /// Whether it is in the catalog now (listed, published and complete).
    pub in_catalog: bool,
    /// Why it is not in the catalog, when it is not.
    pub reason: Option<String>,
}

/// The catalog's state and its setting (`GET`/`PUT /api/catalog`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CatalogInfo {
    /// Files in the catalog.
    pub listed: usize,
    /// Distinct keywords of their names (one DHT key each).
    pub keywords: usize,
    /// Keyword keys whose last announcement reached a DHT server.
    pub keywords_announced: usize,
    /// Keyword keys whose last announcement reached none (retried).
    pub keywords_unannounced: usize,
    /// Whether peers may browse the whole catalog (search works either way).
    pub browse: bool,
}

/// `PUT /api/catalog`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CatalogSettingsRequest {
    /// Whether peers may browse the whole catalog.
    pub browse: bool,
}

/// The lines of `POST /api/search`: a `progress` line per result as it arrives (new, or
/// with more publishers), then `done`, or `error`.
pub type SearchLine = StreamLine<SearchResult, SearchDone>;

fn result(hit: SearchHit) -> SearchResult {
    SearchResult {
        cid: hit.cid.to_string(),
        name: hit.name,
        size: hit.size,
        added_unix: hit.added,
        folder: hit.media_type == crate::catalog::FOLDER_MEDIA_TYPE,
        media_type: hit.media_type,
        sources: hit.publishers.len(),
        publishers: hit.publishers.iter().map(|p| p.to_string()).collect(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn done(summary: SearchSummary) -> SearchDone {
    SearchDone {
        words: summary.words,
        results: summary.results.into_iter().map(result).collect(),
        peers_found: summary.peers_found,
        peers_asked: summary.peers_asked,
        peers_answered: summary.peers_answered,
        peers_failed: summary.peers_failed,
        rejected_entries: summary.rejected_entries,
        dht_requests: summary.dht_requests,
        catalog_requests: summary.catalog_requests,
        first_result_ms: summary.first_result.map(millis),
        last_result_ms: summary.last_result.map(millis),
        elapsed_ms: millis(summary.elapsed),
        timed_out: summary.timed_out,
    }
}

fn browsed(b: Browsed) -> BrowseResponse {
    BrowseResponse {
        peer_id: b.peer.to_string(),
        files: b.files.into_iter().map(result).collect(),
        total: b.total,
        complete: b.complete,
        rejected_entries: b.rejected_entries,
    }
}

fn info(status: CatalogStatus) -> CatalogInfo {
    CatalogInfo {
        listed: status.listed,
        keywords: status.keywords,
        keywords_announced: status.announcements.announced,
        keywords_unannounced: status.announcements.unannounced,
        browse: status.browse,
    }
}

fn timeout(secs: Option<u64>, default: Duration, max: Duration) -> Result<Duration, ApiError> {
    match secs {
        None => Ok(default),
        Some(0) => Err(ApiError::bad_request("timeout must be at least 1 second")),
        Some(secs) if Duration::from_secs(secs) > max => Err(ApiError::bad_request(format!(
            "timeout must be at most {} seconds",
            max.as_secs()
        ))),
        Some(secs) => Ok(Duration::from_secs(secs)),
    }
}

/// What a running search sends to its HTTP stream.
pub enum SearchUpdate {
    /// A result, new or with more publishers.
    Result(SearchResult),
    /// The end.
    Done(SearchDone),
}

/// A running search, read as wire types. Dropping it ends the search.
pub struct SearchStream(mpsc::Receiver<SearchEvent>);

impl SearchStream {
    /// The next update; `None` after [`SearchUpdate::Done`].
    pub async fn next(&mut self) -> Option<SearchUpdate> {
        Some(match self.0.recv().await? {
            SearchEvent::Hit(hit) => SearchUpdate::Result(result(hit)),
            SearchEvent::Done(summary) => SearchUpdate::Done(done(summary)),
        })
    }
}

impl Api {
    /// The facade with the node's catalog: search, browse and listing work.
    pub fn with_catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    fn catalog(&self) -> Result<&Catalog, ApiError> {
        self.catalog
            .as_ref()
            .ok_or_else(|| ApiError::new(503, "the catalog is not running"))
    }

    /// Starts a search; its results and its end are read from the returned stream.
    pub fn search(&self, request: SearchRequest) -> Result<SearchStream, ApiError> {
        let timeout = timeout(
            request.timeout_secs,
            DEFAULT_SEARCH_TIMEOUT,
            crate::catalog::search::MAX_TIMEOUT,
        )?;
        self.catalog()?
            .search(&request.query, timeout)
            .map(SearchStream)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// A peer's listed files.
    pub async fn browse(&self, request: BrowseRequest) -> Result<BrowseResponse, ApiError> {
        let target = BrowseTarget::from_str(&request.peer).map_err(ApiError::bad_request)?;
        let timeout = timeout(
            request.timeout_secs,
            DEFAULT_BROWSE_TIMEOUT,
            crate::catalog::browse::MAX_TIMEOUT,
        )?;
        self.catalog()?
            .browse(target, timeout)
            .await
            .map(browsed)
            // Not the caller's input and nothing failed on this node: the peer's catalog is
            // not to be had (turned off, refused, unreachable, silent), said in the message.
            .map_err(|e: BrowseError| ApiError::new(404, e.to_string()))
    }

    /// Lists a stored file in the catalog, or takes it out.
    pub async fn set_listed(&self, cid: &str, listed: bool) -> Result<ListingResponse, ApiError> {
        let cid = parse_cid(cid)?;
        let not_in = self.catalog()?.set_listed(cid, listed).await?;
        Ok(ListingResponse {
            cid: cid.to_string(),
            listed,
            in_catalog: not_in.is_none(),
            reason: not_in.map(|r| r.to_string()),
        })
    }

    /// Whether a file is in the catalog now.
    pub fn in_catalog(&self, cid: &dht_proto::Cid) -> bool {
        self.catalog.as_ref().is_some_and(|c| c.contains(cid))
    }

    /// The catalog's state and setting.
    pub async fn catalog_info(&self) -> Result<CatalogInfo, ApiError> {
        Ok(info(self.catalog()?.status().await))
    }

    /// Changes the catalog's setting.
    pub async fn set_catalog(
        &self,
        request: CatalogSettingsRequest,
    ) -> Result<CatalogInfo, ApiError> {
        let catalog = self.catalog()?;
        catalog
            .set_settings(CatalogSettings {
                browse: request.browse,
            })
            .await
            .map_err(|e| ApiError::internal(format!("saving the catalog settings: {e}")))?;
        Ok(info(catalog.status().await))
    }
}
