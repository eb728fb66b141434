//! Hops of provider lookups. libp2p-kad reports no path lengths, but at TRACE level it
//! traces each answer a query gets (`Request to peer in query succeeded`, naming the
//! peer) and each peer such an answer names (`Peer reported by source in query`, naming
//! both). [`HopLayer`] reads exactly those two events, only from nodes with a lookup
//! being watched: a peer the querier took from its own routing table is hop 1, a peer
//! first named by a hop-n peer is hop n + 1, and a lookup's hops are those of the peer
//! whose answer first carried a provider (0 when the querier's own store had one).
//! This leans on libp2p-kad 0.49's trace messages: the smoke test fails if they change.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use libp2p::{kad, PeerId};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::probe::Probe;

/// The span each node's swarm task runs in (field `node`: its index).
pub const NODE_SPAN: &str = "sim_node";
/// Where libp2p-kad's query traces come from.
const KAD_TARGET: &str = "libp2p_kad::behaviour";
const ANSWERED: &str = "Request to peer in query succeeded";
const REPORTED: &str = "Peer reported by source in query";

/// One watched query: the hop of each peer it met, and whose answer came last.
#[derive(Default)]
struct QueryTrace {
    hop: HashMap<PeerId, u32>,
    last_answer: Option<PeerId>,
}

/// Queries by the debug form of their id (`QueryId(7)`), the only form a trace gives
/// and one the observer can make from the id it gets.
type Queries = HashMap<String, QueryTrace>;

/// The queries of the nodes being watched, by node.
#[derive(Default)]
pub struct HopTracker {
    watched: Mutex<HashMap<usize, Queries>>,
}

impl HopTracker {
    fn lock(&self) -> MutexGuard<'_, HashMap<usize, Queries>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts following the queries of `node`.
    pub fn watch(&self, node: usize) {
        self.lock().insert(node, HashMap::new());
    }

    /// Stops following them and forgets them.
    pub fn unwatch(&self, node: usize) {
        self.lock().remove(&node);
    }

    fn is_watched(&self, node: usize) -> bool {
        self.lock().contains_key(&node)
    }

    /// The hop of the peer whose answer to `query` came last (the one Kademlia is
    /// reporting now); 0 if no peer answered yet.
    pub fn hops_to_last_answer(&self, node: usize, query: &kad::QueryId) -> u32 {
        let watched = self.lock();
        let Some(trace) = watched
            .get(&node)
            .and_then(|q| q.get(&format!("{query:?}")))
        else {
            return 0;
        };
        match trace.last_answer {
            Some(peer) => trace.hop.get(&peer).copied().unwrap_or(1),
            None => 0,
        }
    }

    fn on_answer(&self, node: usize, query: String, source: PeerId) {
        if let Some(queries) = self.lock().get_mut(&node) {
            queries.entry(query).or_default().last_answer = Some(source);
        }
    }

    fn on_reported(&self, node: usize, query: String, peer: PeerId, source: PeerId) {
        if let Some(queries) = self.lock().get_mut(&node) {
            let trace = queries.entry(query).or_default();
            let next = trace.hop.get(&source).copied().unwrap_or(1) + 1;
            trace.hop.entry(peer).or_insert(next);
        }
    }
}

/// Which callsites [`HopLayer`] wants: the node span and libp2p-kad's query traces.
pub fn hop_filter(meta: &Metadata<'_>) -> bool {
    (meta.is_span() && meta.name() == NODE_SPAN)
        || (meta.is_event()
            && meta.target() == KAD_TARGET
            && *meta.level() == Level::TRACE
            && meta.fields().field("query").is_some()
            && meta.fields().field("peer").is_some())
}

/// The tracing layer feeding [`HopTracker`]; install it with [`hop_filter`].
pub struct HopLayer(pub Arc<Probe>);

struct NodeIndex(usize);

impl<S> Layer<S> for HopLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != NODE_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(node), Some(span)) = (fields.node, ctx.span(id)) {
            span.extensions_mut().insert(NodeIndex(node as usize));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(node) = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<NodeIndex>().map(|n| n.0))
        }) else {
            return;
        };
        let hops = &self.0.hops;
        if !hops.is_watched(node) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(query) = fields.query else {
            return;
        };
        match fields.message.as_deref() {
            Some(ANSWERED) => {
                if let Some(source) = fields.peer.as_deref().and_then(parse_peer) {
                    hops.on_answer(node, query, source);
                }
            }
            Some(REPORTED) => {
                let peer = fields.peer.as_deref().and_then(parse_peer);
                let source = fields.source.as_deref().and_then(parse_peer);
                if let (Some(peer), Some(source)) = (peer, source) {
                    hops.on_reported(node, query, peer, source);
                }
            }
            _ => {}
        }
    }
}

/// The per-layer filter type of [`HopLayer`].
pub type HopFilter = tracing_subscriber::filter::FilterFn<fn(&Metadata<'_>) -> bool>;

/// [`hop_filter`] as a per-layer filter.
pub fn filter() -> HopFilter {
    tracing_subscriber::filter::filter_fn(hop_filter as fn(&Metadata<'_>) -> bool)
}

#[derive(Default)]
struct Fields {
    node: Option<u64>,
    message: Option<String>,
    peer: Option<String>,
    source: Option<String>,
    query: Option<String>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "node" {
            self.node = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "node" {
            self.node = u64::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let slot = match field.name() {
            "message" => &mut self.message,
            "peer" => &mut self.peer,
            "source" => &mut self.source,
            "query" => &mut self.query,
            _ => return,
        };
        *slot = Some(format!("{value:?}"));
    }
}

/// A peer id as traced: its text (`%peer`) or a `KadPeer`'s debug form, which holds
/// `node_id: PeerId("…")`.
fn parse_peer(text: &str) -> Option<PeerId> {
    let id = match text.find("PeerId(\"") {
        Some(at) => {
            let rest = &text[at + "PeerId(\"".len()..];
            &rest[..rest.find('"')?]
        }
        None => text,
    };
    PeerId::from_str(id).ok()
}
