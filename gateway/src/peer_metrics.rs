//! Prometheus metrics of the other nodes of a cluster, per peer (`HOST:PORT`): online, and the
//! internal calls made to it (count, errors, total latency; rate(latency) / rate(calls) is the
//! mean call latency).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

#[derive(Default)]
pub struct PeerMetrics {
    online: Family<PeerLabels, Gauge>,
    calls: Family<PeerLabels, Counter>,
    errors: Family<PeerLabels, Counter>,
    latency: Family<PeerLabels, Counter<f64, AtomicU64>>,
}

impl PeerMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("peer");
        r.register(
            "online",
            "1 while the node answers internal calls",
            self.online.clone(),
        );
        r.register(
            "rpc_calls",
            "Internal calls made to the node",
            self.calls.clone(),
        );
        r.register(
            "rpc_errors",
            "Internal calls to the node that failed (no answer, refused, timed out)",
            self.errors.clone(),
        );
        r.register(
            "rpc_latency_seconds",
            "Total time internal calls to the node took",
            self.latency.clone(),
        );
    }

    pub fn set(&self, cluster: &crate::cluster::Cluster) {
        for peer in &cluster.peers {
            let labels = PeerLabels {
                peer: peer.node.clone(),
            };
            let stats = peer.stats();
            self.online
                .get_or_create(&labels)
                .set(i64::from(peer.is_online()));
            crate::metrics::catch_up(&self.calls.get_or_create(&labels), stats.calls);
            crate::metrics::catch_up(&self.errors.get_or_create(&labels), stats.errors);
            let latency = self.latency.get_or_create(&labels);
            let total = stats.latency_us as f64 / 1e6;
            latency.inc_by((total - latency.get()).max(0.0));
        }
    }
}
