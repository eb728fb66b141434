//! Answers peers' catalog requests: "your listed entries matching these words" and
//! "your listed entries, page N", from the index in memory (never the disk, never an
//! unlisted file), one request at a time, each peer held to its rate (`limiter.rs`).
//! Browsing is answered `BrowseDisabled` while the owner turned it off.

use std::time::Instant;

use dht_proto::catalog::{CatalogRequest, CatalogResponse};
use tokio::sync::mpsc;

use super::limiter::Limiter;
use super::{lock, Catalog};
use crate::network::InboundCatalogRequest;

/// Requests waiting for the server; past it the swarm task answers `RateLimited` itself.
pub(super) const QUEUE: usize = 256;

/// Serves requests until the network stops handing them over.
pub(super) async fn run(catalog: Catalog, mut inbound: mpsc::Receiver<InboundCatalogRequest>) {
    let mut limiter = Limiter::default();
    while let Some(InboundCatalogRequest {
        peer,
        request,
        channel,
    }) = inbound.recv().await
    {
        let response = match limiter.check(peer, Instant::now()) {
            Ok(()) => catalog.answer(&request),
            Err(wait) => CatalogResponse::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u32,
            },
        };
        tracing::debug!(%peer, ?request, answer = kind(&response), "catalog request");
        #[cfg(feature = "test-faults")]
        let response = match &catalog.inner.forgery {
            Some(forgery) => forgery.apply(response),
            None => response,
        };
        #[cfg(feature = "test-faults")]
        if let Some(delay) = catalog.inner.answer_delay {
            // A slow peer: the answer goes out late, the server goes on with others.
            let net = catalog.inner.net.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                net.respond_catalog(channel, response).await;
            });
            continue;
        }
        catalog.inner.net.respond_catalog(channel, response).await;
    }
}

fn kind(response: &CatalogResponse) -> String {
    match response {
        CatalogResponse::Results { entries, .. } => format!("{} results", entries.len()),
        CatalogResponse::Page { entries, .. } => format!("page of {}", entries.len()),
        CatalogResponse::BrowseDisabled => "browse disabled".into(),
        CatalogResponse::RateLimited { .. } => "rate limited".into(),
        CatalogResponse::Error { .. } => "error".into(),
    }
}

impl Catalog {
    /// The answer to one request, from the index.
    pub fn answer(&self, request: &CatalogRequest) -> CatalogResponse {
        match request {
            CatalogRequest::Search { words } => {
                let (entries, more) = lock(&self.inner.index).search(words);
                CatalogResponse::Results { entries, more }
            }
            CatalogRequest::Browse { page } => {
                if !self.settings().browse {
                    return CatalogResponse::BrowseDisabled;
                }
                let (entries, total) = lock(&self.inner.index).page(*page);
                CatalogResponse::Page {
                    entries,
                    page: *page,
                    total: u32::try_from(total).unwrap_or(u32::MAX),
                }
            }
        }
    }
}
