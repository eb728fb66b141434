//! The daemon's Prometheus metrics: one `prometheus-client` registry holding libp2p's
//! own families (recorded by the swarm task, see `network::metrics`, and the transport's
//! bandwidth layer) and the daemon's (`p2pd_*`), read from the engine, the store and the
//! network when scraped. [`Metrics::render`] writes the text exposition format that
//! `GET /metrics` serves (on the API behind the token, and on `--metrics ADDR` without).

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// One label set: `[("state", "done")]`.
type Labels = Vec<(&'static str, &'static str)>;

/// The media type of the OpenMetrics text format prometheus-client writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the daemon knows at a scrape, gathered by the API facade.
#[derive(Debug, Default, Clone)]
pub struct Reading {
    /// Verified bytes received from the peers the reputation ledger keeps.
    pub received_bytes: u64,
    /// Bytes sent to them.
    pub sent_bytes: u64,
    /// Chunks verified and stored since start.
    pub chunks_verified: u64,
    /// Chunks that failed verification since start.
    pub chunks_corrupt: u64,
    /// Downloads by wire state name.
    pub downloads: Vec<(&'static str, i64)>,
    /// Connected peers over a direct connection.
    pub peers_direct: i64,
    /// Connected peers over relayed connections only.
    pub peers_relayed: i64,
    /// Peers in the DHT routing table.
    pub routing_table_peers: i64,
    /// Whether the node is a DHT server.
    pub dht_server: bool,
    /// Provider announcements started since start.
    pub provider_announcements: u64,
    /// Files announced (to at least one peer).
    pub files_announced: i64,
    /// Files whose latest announcement reached no peer yet.
    pub files_unannounced: i64,
    /// Peers that stored the latest provider record, summed over the files.
    pub announcement_peers: i64,
    /// Files in the store by state (`complete`, `partial`, `changed`).
    pub store_files: Vec<(&'static str, i64)>,
    /// Bytes of the files in the store (complete ones at full size, partial ones at
    /// their verified chunks).
    pub store_bytes: i64,
    /// Peers banned now.
    pub banned_peers: i64,
    /// Relay reservations held now.
    pub relay_reservations: i64,
}

/// The daemon's families, registered beside libp2p's.
struct Families {
    received_bytes: Counter,
    sent_bytes: Counter,
    chunks_verified: Counter,
    chunks_corrupt: Counter,
    downloads: Family<Labels, Gauge>,
    connected_peers: Family<Labels, Gauge>,
    routing_table_peers: Gauge,
    dht_server: Gauge,
    provider_announcements: Counter,
    provided_files: Family<Labels, Gauge>,
    announcement_peers: Gauge,
    store_files: Family<Labels, Gauge>,
    store_bytes: Gauge,
    banned_peers: Gauge,
    relay_reservations: Gauge,
}

/// The registry and the daemon's families in it.
pub struct Metrics {
    registry: Registry,
    families: Families,
    /// One scrape at a time sets and encodes the values.
    scraping: Mutex<()>,
}

impl Metrics {
    /// Adds the daemon's families to `registry` (which holds libp2p's).
    pub fn new(mut registry: Registry) -> Self {
        let families = Families {
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
            chunks_verified: Counter::default(),
            chunks_corrupt: Counter::default(),
            downloads: Family::default(),
            connected_peers: Family::default(),
            routing_table_peers: Gauge::default(),
            dht_server: Gauge::default(),
            provider_announcements: Counter::default(),
            provided_files: Family::default(),
            announcement_peers: Gauge::default(),
            store_files: Family::default(),
            store_bytes: Gauge::default(),
            banned_peers: Gauge::default(),
            relay_reservations: Gauge::default(),
        };
        let f = &families;
        let r = registry.sub_registry_with_prefix("p2pd");
        let counters = [
            (
                "received_bytes",
                "Verified file bytes received from the peers in the reputation ledger",
                &f.received_bytes,
            ),
            (
                "sent_bytes",
                "File bytes sent to the peers in the reputation ledger",
                &f.sent_bytes,
            ),
            (
                "chunks_verified",
                "Chunks received, verified against their manifest and stored",
                &f.chunks_verified,
            ),
            (
                "chunks_corrupt",
                "Chunks received that failed verification (their sender is banned)",
                &f.chunks_corrupt,
            ),
            (
                "provider_announcements",
                "Provider announcements started",
                &f.provider_announcements,
            ),
        ];
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        let gauges = [
            (
                "routing_table_peers",
                "Peers in the DHT routing table",
                &f.routing_table_peers,
            ),
            (
                "dht_server",
                "1 when the node answers DHT queries (server mode), 0 as a client",
                &f.dht_server,
            ),
            (
                "announcement_peers",
                "Peers that stored the latest provider record, summed over the files",
                &f.announcement_peers,
            ),
            (
                "store_bytes",
                "Bytes of file content the store holds",
                &f.store_bytes,
            ),
            ("banned_peers", "Peers banned now", &f.banned_peers),
            (
                "relay_reservations",
                "Relay reservations this node holds",
                &f.relay_reservations,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
        let labelled = [
            ("downloads", "Downloads by state", &f.downloads),
            (
                "connected_peers",
                "Connected peers, by path (direct, or relayed only)",
                &f.connected_peers,
            ),
            (
                "provided_files",
                "Files this node announces, by whether the latest announcement reached a peer",
                &f.provided_files,
            ),
            (
                "store_files",
                "Files in the store, by state",
                &f.store_files,
            ),
        ];
        for (name, help, family) in labelled {
            r.register(name, help, family.clone());
        }
        Metrics {
            registry,
            families,
            scraping: Mutex::new(()),
        }
    }

    /// Sets the daemon's values from `reading` and encodes every family.
    pub fn render(&self, reading: &Reading) -> String {
        let _one_at_a_time = self.scraping.lock().unwrap_or_else(|p| p.into_inner());
        let f = &self.families;
        for (counter, value) in [
            (&f.received_bytes, reading.received_bytes),
            (&f.sent_bytes, reading.sent_bytes),
            (&f.chunks_verified, reading.chunks_verified),
            (&f.chunks_corrupt, reading.chunks_corrupt),
            (&f.provider_announcements, reading.provider_announcements),
        ] {
            // Totals kept elsewhere (some across restarts): the counter shows them.
            counter.inner().store(value, Ordering::Relaxed);
        }
        for (state, n) in &reading.downloads {
            f.downloads.get_or_create(&vec![("state", *state)]).set(*n);
        }
        f.connected_peers
            .get_or_create(&vec![("path", "direct")])
            .set(reading.peers_direct);
        f.connected_peers
            .get_or_create(&vec![("path", "relayed")])
            .set(reading.peers_relayed);
        f.routing_table_peers.set(reading.routing_table_peers);
        f.dht_server.set(i64::from(reading.dht_server));
        f.provided_files
            .get_or_create(&vec![("announced", "yes")])
            .set(reading.files_announced);
        f.provided_files
            .get_or_create(&vec![("announced", "not_yet")])
            .set(reading.files_unannounced);
        f.announcement_peers.set(reading.announcement_peers);
        for (state, n) in &reading.store_files {
            f.store_files
                .get_or_create(&vec![("state", *state)])
                .set(*n);
        }
        f.store_bytes.set(reading.store_bytes);
        f.banned_peers.set(reading.banned_peers);
        f.relay_reservations.set(reading.relay_reservations);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_rendered_with_its_labels_and_totals() {
        let metrics = Metrics::new(Registry::default());
        let reading = Reading {
            received_bytes: 1234,
            chunks_verified: 5,
            downloads: vec![("done", 2), ("paused", 0)],
            peers_relayed: 1,
            store_files: vec![("complete", 3)],
            ..Reading::default()
        };
        let text = metrics.render(&reading);
        assert!(text.contains("p2pd_received_bytes_total 1234"), "{text}");
        assert!(text.contains("p2pd_chunks_verified_total 5"), "{text}");
        assert!(text.contains("p2pd_downloads{state=\"done\"} 2"), "{text}");
        assert!(
            text.contains("p2pd_connected_peers{path=\"relayed\"} 1"),
            "{text}"
        );
        assert!(text.contains("p2pd_store_files{state=\"complete\"} 3"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        // A total that went down (a restart) is shown as it is now.
        let text = metrics.render(&Reading::default());
        assert!(text.contains("p2pd_received_bytes_total 0"), "{text}");
    }
}
