//! libp2p's own metrics: the swarm's events (connections by transport, listen and
//! external addresses), the DHT's queries and their durations, identify, the relay
//! server and hole punching, recorded into the daemon's Prometheus registry by
//! `libp2p-metrics`. The transport's bytes (per protocol stack, so direct and relayed
//! apart) are counted by the bandwidth layer [`super::build`] adds.

use libp2p::metrics::{Metrics, Recorder};
use libp2p::swarm::SwarmEvent;

use super::behaviour::BehaviourEvent;

/// Records one swarm event, and the behaviour event inside it when libp2p has metrics
/// for it.
pub(super) fn record(metrics: &Metrics, event: &SwarmEvent<BehaviourEvent>) {
    metrics.record(event);
    if let SwarmEvent::Behaviour(event) = event {
        match event {
            BehaviourEvent::Kad(e) => metrics.record(e),
            BehaviourEvent::Identify(e) => metrics.record(e),
            BehaviourEvent::RelayServer(e) => metrics.record(e),
            BehaviourEvent::Dcutr(e) => metrics.record(e),
            _ => {}
        }
    }
}
