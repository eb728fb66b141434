//! The edge between the lower layers and the API's wire types: each conversion from a
//! type of `network` or `transfer` to its form in [`super::types`]. Nothing below the
//! API layer knows how its values are shown to the CLI or the web UI.

use super::types::{
    DownloadState, NetEvent, NodeInfo, PeerBytes, PeerInfo, PeerReputation, Progress,
};
use crate::network;
use crate::transfer;

impl From<network::NodeInfo> for NodeInfo {
    fn from(n: network::NodeInfo) -> Self {
        NodeInfo {
            peer_id: n.peer_id,
            listen_addrs: n.listen_addrs,
            external_addrs: n.external_addrs,
            nat_status: n.nat_status,
            dht_server: n.dht_server,
            connected_peers: n.connected_peers,
            routing_table_peers: n.routing_table_peers,
            provided_files: n.provided_files,
            relay_reservations: n.relay_reservations,
            provider_announcements: n.provider_announcements,
        }
    }
}

impl From<network::PeerInfo> for PeerInfo {
    fn from(p: network::PeerInfo) -> Self {
        PeerInfo {
            peer_id: p.peer_id,
            addrs: p.addrs,
            direct: p.direct,
            rtt_ms: p.rtt_ms,
            agent: p.agent,
        }
    }
}

impl From<network::NetEvent> for NetEvent {
    fn from(e: network::NetEvent) -> Self {
        match e {
            network::NetEvent::PeerConnected { peer_id } => NetEvent::PeerConnected { peer_id },
            network::NetEvent::PeerDisconnected { peer_id } => {
                NetEvent::PeerDisconnected { peer_id }
            }
            network::NetEvent::ExternalAddress { addr } => NetEvent::ExternalAddress { addr },
        }
    }
}

impl From<transfer::DownloadState> for DownloadState {
    fn from(s: transfer::DownloadState) -> Self {
        match s {
            transfer::DownloadState::Finding => DownloadState::Finding,
            transfer::DownloadState::Downloading => DownloadState::Downloading,
            transfer::DownloadState::Done => DownloadState::Done,
            transfer::DownloadState::Failed => DownloadState::Failed,
        }
    }
}

impl From<transfer::Progress> for Progress {
    fn from(p: transfer::Progress) -> Self {
        Progress {
            cid: p.cid,
            name: p.name,
            state: p.state.into(),
            size: p.size,
            chunks_total: p.chunks_total,
            chunks_done: p.chunks_done,
            bytes_done: p.bytes_done,
            bytes_received: p.bytes_received,
            rate: p.rate,
            eta_secs: p.eta_secs,
            peers: p.peers,
            per_peer: p
                .per_peer
                .into_iter()
                .map(|b| PeerBytes {
                    peer_id: b.peer_id,
                    bytes: b.bytes,
                })
                .collect(),
            elapsed_secs: p.elapsed_secs,
            output: p.output,
            error: p.error,
            bad_input: p.bad_input,
        }
    }
}

impl From<transfer::reputation::PeerReputation> for PeerReputation {
    fn from(r: transfer::reputation::PeerReputation) -> Self {
        PeerReputation {
            peer_id: r.peer_id,
            score: r.score,
            banned: r.banned,
            received: r.record.received,
            sent: r.record.sent,
            corrupt_chunks: r.record.corrupt_chunks,
            failures: r.record.failures,
            refusals: r.record.refusals,
            banned_until: r.record.banned_until,
            last_seen: r.record.last_seen,
        }
    }
}
