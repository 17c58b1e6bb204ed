//! Asynchronous site-to-site bucket replication.
//!
//! - [`config`]: the S3 replication configuration, its validation and rule choice (pure);
//! - [`targets`]: the registered targets, stored in the cluster configuration;
//! - [`client`]: a target's S3 client and Strata's replica headers;
//! - [`queue`]: the node's durable queue of versions still to send;
//! - [`send`]: the workers that send entries, with backoff, budgets and status updates;
//! - [`scan`]: the start-up scan that re-queues what the queue lacks, `resync` and `diff`.
//!
//! Every change reaches the queue through storage's commit path ([`storage::ReplicationHook`]),
//! in the same step as the change: no S3 handler can forget it, and the version's own record
//! says PENDING, so a lost queue is rebuilt by the scan.

pub mod client;
pub mod config;
pub mod queue;
pub mod scan;
pub mod send;
pub mod targets;

pub use client::{REPLICA_MTIME_HEADER, REPLICA_VERSION_HEADER};
pub use config::{Configuration, Filter, Rule, CONFIG_KEY};
pub use targets::TargetConfig;

use queue::Queue;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, Weak};
use storage::meta::{now_ns, BucketRecord, VersionRecord};
use storage::{ReplicationEntry, ReplicationHook, ReplicationOp, Store};
use targets::Targets;

/// Entries sent at once.
pub const WORKERS: usize = 32;
/// Failed attempts before an entry (and its version) shows FAILED; it is still retried.
pub const RETRY_BUDGET: u32 = 6;

/// Counters of one target since the node started.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetCounters {
    pub replicated_objects: u64,
    pub replicated_bytes: u64,
    pub failures: u64,
    /// Whether the last call to the target worked (`None`: not called yet).
    pub online: Option<bool>,
    pub last_error: Option<String>,
    /// (second, bytes) of the last minute, for throughput.
    #[serde(skip)]
    recent: VecDeque<(i64, u64)>,
}

impl TargetCounters {
    /// Bytes per second over the last minute.
    pub fn throughput(&self) -> u64 {
        let now = now_ns() / 1_000_000_000;
        self.recent
            .iter()
            .filter(|(t, _)| now - t < 60)
            .map(|(_, b)| b)
            .sum::<u64>()
            / 60
    }
}

/// The replication service of a node.
pub struct Replicator {
    store: Arc<Store>,
    tiering: Arc<tiering::Tiering>,
    targets: Targets,
    queue: Queue,
    /// Decoded configurations of buckets that have one.
    configs: RwLock<HashMap<String, Arc<Configuration>>>,
    /// Entries being sent (queue ids).
    sending: Mutex<HashSet<i64>>,
    counters: Mutex<BTreeMap<String, TargetCounters>>,
    /// Wakes the dispatcher (new entries, a target back, a retry).
    wake: tokio::sync::Notify,
    /// Per target: when the bandwidth limit lets the next byte go.
    pacing: Mutex<HashMap<String, std::time::Instant>>,
    /// Resyncs running, by (bucket, target), with the versions the bucket had when each began.
    resyncs: Mutex<HashMap<(String, String), u64>>,
    /// The first retry delay; it doubles per failure up to 5 min.
    min_backoff: std::time::Duration,
}

/// The configuration a bucket record holds, if any.
pub fn config_of(bucket: &BucketRecord) -> Option<Configuration> {
    let bytes = bucket.config.get(CONFIG_KEY)?;
    match serde_json::from_slice(bytes) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(bucket = %bucket.name, error = %e, "unreadable replication configuration");
            None
        }
    }
}

struct Hook(Weak<Replicator>);

#[async_trait::async_trait]
impl ReplicationHook for Hook {
    fn targets(
        &self,
        bucket: &str,
        key: &str,
        op: ReplicationOp,
        version: &VersionRecord,
    ) -> Vec<String> {
        let Some(r) = self.0.upgrade() else {
            return Vec::new();
        };
        let Some(config) = r.configs.read().expect("lock").get(bucket).cloned() else {
            return Vec::new();
        };
        let empty = BTreeMap::new();
        let tags = version.object.as_ref().map_or(&empty, |o| &o.tags);
        config
            .targets_for(key, tags, op, |arn| {
                r.targets.get(arn).is_some_and(|t| t.config.version_deletes)
            })
            // A target the node could not load (an unset secret) still gets its entries: they
            // wait in the queue until it is fixed.
            .into_iter()
            .collect()
    }

    async fn enqueue(&self, entries: Vec<ReplicationEntry>) {
        let Some(r) = self.0.upgrade() else { return };
        let buckets: HashSet<String> = entries.iter().map(|e| e.bucket.clone()).collect();
        match r.queue.push(entries, now_ns()).await {
            Ok(()) => r.wake.notify_one(),
            Err(e) => {
                // The versions say PENDING: a scan of their buckets queues them again.
                tracing::error!(error = %e, "cannot queue versions for replication; rescanning");
                for bucket in buckets {
                    r.rescan(bucket, std::time::Duration::from_secs(5));
                }
            }
        }
    }
}

impl Replicator {
    /// Opens the service: targets from the cluster configuration, the queue at
    /// `queue_path`, every bucket's configuration; installs the store's replication hook.
    pub async fn open(
        store: Arc<Store>,
        tiering: Arc<tiering::Tiering>,
        queue_path: &Path,
        min_backoff: std::time::Duration,
    ) -> Result<Arc<Self>, String> {
        let targets = Targets::load(store.clone()).await?;
        let queue = Queue::open(queue_path)?;
        let mut configs = HashMap::new();
        for b in store.list_buckets().await.map_err(|e| e.to_string())? {
            if let Some(c) = config_of(&b) {
                configs.insert(b.name.clone(), Arc::new(c));
            }
        }
        let r = Arc::new(Self {
            store: store.clone(),
            tiering,
            targets,
            queue,
            configs: RwLock::new(configs),
            sending: Mutex::new(HashSet::new()),
            counters: Mutex::new(BTreeMap::new()),
            wake: tokio::sync::Notify::new(),
            pacing: Mutex::new(HashMap::new()),
            resyncs: Mutex::new(HashMap::new()),
            min_backoff,
        });
        if !store.set_replication(Arc::new(Hook(Arc::downgrade(&r)))) {
            return Err("a replication hook is installed already".into());
        }
        Ok(r)
    }

    /// Starts the dispatcher, the target prober and the start-up scan.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(send::dispatch(self.clone()));
        tokio::spawn(send::probe(self.clone()));
        let r = self.clone();
        tokio::spawn(async move {
            let buckets: Vec<String> = r.configs.read().expect("lock").keys().cloned().collect();
            for bucket in buckets {
                r.requeue(&bucket).await;
            }
        });
    }

    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The configuration of `bucket`, if it has one.
    pub fn config(&self, bucket: &str) -> Option<Arc<Configuration>> {
        self.configs.read().expect("lock").get(bucket).cloned()
    }

    /// Takes a bucket's new configuration (after it is stored) and queues the versions it
    /// covers that the queue lacks (existing objects where a rule asks for them).
    pub fn configured(self: &Arc<Self>, bucket: &str, config: Option<Configuration>) {
        let mut configs = self.configs.write().expect("lock");
        match config {
            Some(c) => {
                configs.insert(bucket.to_owned(), Arc::new(c));
                self.rescan(bucket.to_owned(), std::time::Duration::ZERO);
            }
            None => {
                configs.remove(bucket);
            }
        }
    }

    /// Runs the scan that queues `bucket`'s versions the queue lacks, after `delay`, in the
    /// background.
    fn rescan(self: &Arc<Self>, bucket: String, delay: std::time::Duration) {
        let r = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            r.requeue(&bucket).await;
        });
    }

    /// The scan of `scan::requeue`, its failure logged (the next start scans again).
    async fn requeue(self: &Arc<Self>, bucket: &str) {
        if let Err(e) = scan::requeue(self, bucket).await {
            tracing::warn!(%bucket, error = %e, "replication scan failed");
        }
    }

    /// Buckets whose configuration names `arn`.
    pub fn buckets_using(&self, arn: &str) -> Vec<String> {
        self.configs
            .read()
            .expect("lock")
            .iter()
            .filter(|(_, c)| c.rules.iter().any(|r| r.destination == arn))
            .map(|(b, _)| b.clone())
            .collect()
    }

    pub fn counters(&self) -> BTreeMap<String, TargetCounters> {
        self.counters.lock().expect("lock").clone()
    }

    fn count(&self, target: &str, f: impl FnOnce(&mut TargetCounters)) {
        f(self
            .counters
            .lock()
            .expect("lock")
            .entry(target.to_owned())
            .or_default());
    }

    /// Records whether the target answered; coming back makes its waiting entries due.
    pub async fn reached(&self, target: &str, ok: bool) {
        let mut was = None;
        self.count(target, |c| {
            was = c.online;
            c.online = Some(ok);
        });
        if ok && was == Some(false) {
            match self.queue.retry_now(Some(target), false, now_ns()).await {
                Ok(n) if n > 0 => {
                    tracing::info!(target_arn = %target, entries = n, "replication target is back");
                    self.wake.notify_one();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not reschedule replication"),
            }
        }
    }

    /// Makes failed entries due now (`failed retry`): one by id, or all (of a target).
    pub async fn retry(&self, id: Option<i64>, target: Option<&str>) -> Result<usize, String> {
        let n = match id {
            Some(id) => usize::from(self.queue.retry_one(id, now_ns()).await?),
            None => self.queue.retry_now(target, true, now_ns()).await?,
        };
        self.wake.notify_one();
        Ok(n)
    }

    /// Pauses or resumes sending to a target (its entries stay queued).
    pub async fn set_paused(&self, arn: &str, paused: bool) -> Result<(), String> {
        self.targets.edit(arn, |t| t.paused = paused).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Removes a target no rule names.
    pub async fn remove_target(&self, arn: &str) -> Result<(), String> {
        let users = self.buckets_using(arn);
        if !users.is_empty() {
            return Err(format!(
                "the replication configuration of bucket(s) {} names {arn}; change it first",
                users.join(", ")
            ));
        }
        self.targets.remove(arn).await
    }
}
