//! Prometheus metrics of bucket replication, per target ARN: backlog count and bytes, the age
//! of the oldest entry waiting (replication lag), versions and bytes replicated, failures,
//! and whether the target answers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

#[derive(Default)]
pub struct ReplicationMetrics {
    backlog: Family<TargetLabels, Gauge>,
    backlog_bytes: Family<TargetLabels, Gauge>,
    failed: Family<TargetLabels, Gauge>,
    lag: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    objects: Family<TargetLabels, Counter>,
    bytes: Family<TargetLabels, Counter>,
    failures: Family<TargetLabels, Counter>,
    online: Family<TargetLabels, Gauge>,
}

impl ReplicationMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("replication");
        r.register(
            "backlog",
            "Versions waiting to be replicated to the target",
            self.backlog.clone(),
        );
        r.register(
            "backlog_bytes",
            "Bytes of object versions waiting to be replicated to the target",
            self.backlog_bytes.clone(),
        );
        r.register(
            "failed",
            "Queued versions past their retry budget (FAILED; still retried)",
            self.failed.clone(),
        );
        r.register(
            "lag_seconds",
            "Age of the oldest version waiting for the target (0: none)",
            self.lag.clone(),
        );
        r.register(
            "objects",
            "Object versions replicated to the target",
            self.objects.clone(),
        );
        r.register(
            "bytes",
            "Bytes replicated to the target",
            self.bytes.clone(),
        );
        r.register(
            "failures",
            "Failed attempts to replicate to the target",
            self.failures.clone(),
        );
        r.register(
            "online",
            "1 while the last call to the target worked, 0 after a failure",
            self.online.clone(),
        );
    }

    pub fn set(&self, r: &replicator::Replicator) {
        let now = storage::meta::now_ns();
        let backlog = r.queue().backlog().unwrap_or_default();
        let counters = r.counters();
        for t in r.targets().list() {
            let labels = TargetLabels {
                target: t.arn.clone(),
            };
            let b = backlog
                .iter()
                .find(|(arn, _)| *arn == t.arn)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            self.backlog.get_or_create(&labels).set(b.count as i64);
            self.backlog_bytes
                .get_or_create(&labels)
                .set(b.bytes as i64);
            self.failed.get_or_create(&labels).set(b.failed as i64);
            self.lag
                .get_or_create(&labels)
                .set(b.oldest_ns.map_or(0.0, |o| (now - o).max(0) as f64 / 1e9));
            let c = counters.get(&t.arn).cloned().unwrap_or_default();
            super::metrics::catch_up(&self.objects.get_or_create(&labels), c.replicated_objects);
            super::metrics::catch_up(&self.bytes.get_or_create(&labels), c.replicated_bytes);
            super::metrics::catch_up(&self.failures.get_or_create(&labels), c.failures);
            self.online
                .get_or_create(&labels)
                .set(i64::from(c.online != Some(false)));
        }
    }
}
