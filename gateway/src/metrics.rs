//! Prometheus metrics: requests by API and status, latency, bytes in and out, drive state,
//! the heal queue, the lifecycle scanner, the remote tiers, replication targets.

use http::{Method, Uri};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriveLabels {
    drive: String,
}

/// The node's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<ApiLabels, Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    drive_online: Family<DriveLabels, Gauge>,
    drive_total: Family<DriveLabels, Gauge>,
    drive_free: Family<DriveLabels, Gauge>,
    heal_pending: Gauge,
    heals: Family<HealLabels, Counter>,
    lifecycle_scanned: Counter,
    lifecycle_actions: Family<ActionLabels, Counter>,
    lifecycle_scan_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    lifecycle_oldest_due: Gauge<f64, std::sync::atomic::AtomicU64>,
    tier: TierMetrics,
    replication: crate::replication_metrics::ReplicationMetrics,
    peers: crate::peer_metrics::PeerMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierFailureLabels {
    tier: String,
    operation: &'static str,
}

/// Per tier: what moved, what failed, the remote-delete backlog and reachability.
#[derive(Default)]
struct TierMetrics {
    objects: Family<TierMoveLabels, Counter>,
    bytes: Family<TierMoveLabels, Counter>,
    remote_deletes: Family<TierLabels, Counter>,
    failures: Family<TierFailureLabels, Counter>,
    backlog: Family<TierLabels, Gauge>,
    backlog_oldest: Family<TierLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    reachable: Family<TierLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierMoveLabels {
    tier: String,
    /// `transitioned`, `restored` or `recalled`.
    direction: &'static str,
}

impl TierMetrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("tier");
        r.register(
            "objects",
            "Versions moved per tier: transitioned to it, restored or recalled from it",
            self.objects.clone(),
        );
        r.register(
            "bytes",
            "Bytes moved per tier: transitioned to it, restored or recalled from it",
            self.bytes.clone(),
        );
        r.register("remote_deletes", "Remote objects deleted from the tier (versions deleted, overwritten, expired or recalled)", self.remote_deletes.clone());
        r.register(
            "failures",
            "Failed calls to the tier, by operation (transition, remote_delete, read)",
            self.failures.clone(),
        );
        r.register(
            "remote_delete_backlog",
            "Remote deletes waiting in the journal",
            self.backlog.clone(),
        );
        r.register("remote_delete_oldest_seconds", "Age of the oldest remote delete waiting (0: none); a growing value is a tier that does not answer", self.backlog_oldest.clone());
        r.register(
            "reachable",
            "1 while the last call to the tier worked, 0 after a failure",
            self.reachable.clone(),
        );
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealLabels {
    result: &'static str,
}

/// Raises a counter to a total kept elsewhere (totals only grow).
pub(crate) fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("strata");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<ApiLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let drive_online = Family::<DriveLabels, Gauge>::default();
        let drive_total = Family::<DriveLabels, Gauge>::default();
        let drive_free = Family::<DriveLabels, Gauge>::default();
        let heal_pending = Gauge::default();
        let heals = Family::<HealLabels, Counter>::default();
        let lifecycle_scanned = Counter::default();
        let lifecycle_actions = Family::<ActionLabels, Counter>::default();
        let lifecycle_scan_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let lifecycle_oldest_due = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let tier = TierMetrics::default();
        tier.register(&mut registry);
        let replication = crate::replication_metrics::ReplicationMetrics::default();
        replication.register(&mut registry);
        let peers = crate::peer_metrics::PeerMetrics::default();
        peers.register(&mut registry);
        registry.register(
            "lifecycle_versions_scanned",
            "Versions the lifecycle scanner has judged",
            lifecycle_scanned.clone(),
        );
        registry.register(
            "lifecycle_actions",
            "Lifecycle actions by kind and result: done, skipped (the key changed since it was judged), blocked (object lock), failed (retried next scan)",
            lifecycle_actions.clone(),
        );
        registry.register(
            "lifecycle_scan_duration_seconds",
            "Length of the last complete lifecycle scan",
            lifecycle_scan_seconds.clone(),
        );
        registry.register(
            "lifecycle_oldest_due_action_age_seconds",
            "Age of the oldest lifecycle action that is due but not applied (0: none); a growing value is a stalled engine",
            lifecycle_oldest_due.clone(),
        );
        registry.register(
            "s3_requests",
            "S3 requests by API and HTTP status",
            requests.clone(),
        );
        registry.register(
            "s3_request_duration_seconds",
            "S3 request latency by API",
            latency.clone(),
        );
        registry.register(
            "s3_received_bytes",
            "Bytes received in request bodies",
            bytes_in.clone(),
        );
        registry.register(
            "s3_sent_bytes",
            "Bytes sent in response bodies",
            bytes_out.clone(),
        );
        registry.register(
            "drive_online",
            "1 when the drive is online",
            drive_online.clone(),
        );
        registry.register(
            "drive_total_bytes",
            "Size of the drive's file system",
            drive_total.clone(),
        );
        registry.register(
            "drive_free_bytes",
            "Bytes still free on the drive's file system",
            drive_free.clone(),
        );
        registry.register(
            "heal_queue_pending",
            "Keys waiting to be healed or for a retry of a failed heal",
            heal_pending.clone(),
        );
        registry.register(
            "heal_queue_heals",
            "Queued heals by result: healed, failed (retried later), given_up (left for the next full heal)",
            heals.clone(),
        );
        Self {
            registry,
            drive_total,
            drive_free,
            heal_pending,
            heals,
            lifecycle_scanned,
            lifecycle_actions,
            lifecycle_scan_seconds,
            lifecycle_oldest_due,
            requests,
            latency,
            bytes_in,
            bytes_out,
            drive_online,
            tier,
            replication,
            peers,
        }
    }
}

impl Metrics {
    pub fn record(
        &self,
        api: &'static str,
        status: u16,
        elapsed: Duration,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        self.requests
            .get_or_create(&RequestLabels { api, status })
            .inc();
        self.latency
            .get_or_create(&ApiLabels { api })
            .observe(elapsed.as_secs_f64());
        self.bytes_in.inc_by(bytes_in);
        self.bytes_out.inc_by(bytes_out);
    }

    pub fn set_drive(&self, drive: &str, online: bool, space: Option<storage::space::Space>) {
        let labels = DriveLabels {
            drive: drive.to_owned(),
        };
        self.drive_online
            .get_or_create(&labels)
            .set(i64::from(online));
        if let Some(space) = space {
            let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
            self.drive_total
                .get_or_create(&labels)
                .set(bytes(space.total));
            self.drive_free
                .get_or_create(&labels)
                .set(bytes(space.free));
        }
    }

    pub fn set_heal_queue(&self, stats: storage::HealQueueStats) {
        self.heal_pending.set(stats.pending as i64);
        for (result, total) in [
            ("healed", stats.healed),
            ("failed", stats.failed_attempts),
            ("given_up", stats.given_up),
        ] {
            catch_up(&self.heals.get_or_create(&HealLabels { result }), total);
        }
    }

    pub fn set_lifecycle(&self, stats: &lifecycle::scanner::Stats) {
        catch_up(&self.lifecycle_scanned, stats.versions_scanned);
        for ((action, result), total) in &stats.actions {
            let labels = ActionLabels { action, result };
            catch_up(&self.lifecycle_actions.get_or_create(&labels), *total);
        }
        self.lifecycle_scan_seconds.set(stats.last_scan_seconds);
        self.lifecycle_oldest_due.set(stats.oldest_due_seconds);
    }

    pub fn set_tiering(&self, tiering: &tiering::Tiering) {
        let m = &self.tier;
        let now = storage::meta::now_ns();
        let backlog = tiering.journal().backlog().unwrap_or_default();
        for (name, c) in tiering.counters() {
            let moved = [
                ("transitioned", c.transitioned_objects, c.transitioned_bytes),
                ("restored", c.restored_objects, c.restored_bytes),
                ("recalled", c.recalled_objects, c.recalled_bytes),
            ];
            for (direction, objects, bytes) in moved {
                let labels = TierMoveLabels {
                    tier: name.clone(),
                    direction,
                };
                catch_up(&m.objects.get_or_create(&labels), objects);
                catch_up(&m.bytes.get_or_create(&labels), bytes);
            }
            let tier = TierLabels { tier: name.clone() };
            catch_up(&m.remote_deletes.get_or_create(&tier), c.remote_deletes);
            let failures = [
                ("transition", c.transition_failures),
                ("remote_delete", c.remote_delete_failures),
                ("read", c.read_failures),
            ];
            for (operation, total) in failures {
                let labels = TierFailureLabels {
                    tier: name.clone(),
                    operation,
                };
                catch_up(&m.failures.get_or_create(&labels), total);
            }
            m.reachable
                .get_or_create(&tier)
                .set(i64::from(c.reachable != Some(false)));
            let b = backlog
                .iter()
                .find(|(t, _)| *t == name)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            m.backlog.get_or_create(&tier).set(b.entries as i64);
            m.backlog_oldest
                .get_or_create(&tier)
                .set(b.oldest_ns.map_or(0.0, |t| (now - t).max(0) as f64 / 1e9));
        }
    }

    pub fn set_peers(&self, cluster: &crate::cluster::Cluster) {
        self.peers.set(cluster);
    }

    pub fn set_replication(&self, replicator: &replicator::Replicator) {
        self.replication.set(replicator);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// Names the S3 API a path-style request calls, for metric labels.
pub fn classify(method: &Method, uri: &Uri, copy_source: bool) -> &'static str {
    let path = uri.path().trim_start_matches('/');
    let query = uri.query().unwrap_or("");
    let has = |name: &str| crate::query::has(uri.query(), name);
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (b, Some(k)),
        Some((b, _)) => (b, None),
        None => (path, None),
    };
    if bucket.is_empty() {
        return if method == Method::GET {
            "ListBuckets"
        } else {
            "Unknown"
        };
    }
    match (method.as_str(), key.is_some()) {
        ("GET", false) if has("uploads") => "ListMultipartUploads",
        ("GET", false) if has("location") => "GetBucketLocation",
        ("GET", false) if has("list-type") => "ListObjectsV2",
        ("GET", false)
            if query.is_empty()
                || has("prefix")
                || has("delimiter")
                || has("marker")
                || has("max-keys")
                || has("encoding-type") =>
        {
            "ListObjects"
        }
        ("GET", false) => "GetBucketConfig",
        ("PUT", false) if query.is_empty() => "CreateBucket",
        ("PUT", false) => "PutBucketConfig",
        ("HEAD", false) => "HeadBucket",
        ("DELETE", false) if query.is_empty() => "DeleteBucket",
        ("DELETE", false) => "DeleteBucketConfig",
        ("POST", false) if has("delete") => "DeleteObjects",
        ("GET", true) if has("uploadId") => "ListParts",
        ("GET", true) if has("tagging") => "GetObjectTagging",
        ("GET", true) if has("attributes") => "GetObjectAttributes",
        ("GET", true) if has("acl") => "GetObjectAcl",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("PUT", true) if has("uploadId") && copy_source => "UploadPartCopy",
        ("PUT", true) if has("uploadId") => "UploadPart",
        ("PUT", true) if copy_source => "CopyObject",
        ("PUT", true) if has("tagging") => "PutObjectTagging",
        ("PUT", true) if has("acl") => "PutObjectAcl",
        ("PUT", true) => "PutObject",
        ("POST", true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("POST", true) if has("restore") => "RestoreObject",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(m: Method, u: &str, copy: bool) -> &'static str {
        classify(&m, &u.parse().unwrap(), copy)
    }

    #[test]
    fn classifies_common_calls() {
        assert_eq!(c(Method::GET, "/", false), "ListBuckets");
        assert_eq!(
            c(Method::GET, "/b?list-type=2&prefix=x", false),
            "ListObjectsV2"
        );
        assert_eq!(c(Method::GET, "/b", false), "ListObjects");
        assert_eq!(c(Method::PUT, "/b", false), "CreateBucket");
        assert_eq!(c(Method::PUT, "/b/k", false), "PutObject");
        assert_eq!(c(Method::PUT, "/b/k", true), "CopyObject");
        assert_eq!(
            c(Method::PUT, "/b/k?partNumber=1&uploadId=x", false),
            "UploadPart"
        );
        assert_eq!(
            c(Method::POST, "/b/k?uploads", false),
            "CreateMultipartUpload"
        );
        assert_eq!(c(Method::POST, "/b?delete", false), "DeleteObjects");
        assert_eq!(c(Method::DELETE, "/b/k", false), "DeleteObject");
        assert_eq!(
            c(Method::GET, "/b/k?attributes", false),
            "GetObjectAttributes"
        );
        assert_eq!(c(Method::PUT, "/b/k?acl", false), "PutObjectAcl");
    }

    #[test]
    fn encodes_recorded_requests() {
        let m = Metrics::default();
        m.record("GetObject", 200, Duration::from_millis(3), 0, 10);
        m.set_drive(
            "/d1",
            true,
            Some(storage::space::Space {
                total: 100,
                free: 40,
            }),
        );
        let text = m.encode();
        assert!(
            text.contains("strata_s3_requests_total{api=\"GetObject\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("strata_s3_sent_bytes_total 10"), "{text}");
        assert!(
            text.contains("strata_drive_online{drive=\"/d1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("strata_drive_free_bytes{drive=\"/d1\"} 40"),
            "{text}"
        );
    }

    #[test]
    fn heal_counters_follow_the_queue_totals() {
        let m = Metrics::default();
        let mut stats = storage::HealQueueStats {
            pending: 2,
            healed: 5,
            failed_attempts: 1,
            given_up: 0,
        };
        m.set_heal_queue(stats);
        stats.healed = 7;
        m.set_heal_queue(stats);
        let text = m.encode();
        assert!(text.contains("strata_heal_queue_pending 2"), "{text}");
        assert!(
            text.contains("strata_heal_queue_heals_total{result=\"healed\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("strata_heal_queue_heals_total{result=\"failed\"} 1"),
            "{text}"
        );
    }
}
