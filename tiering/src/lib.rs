//! Cloud tiering for Strata: lifecycle transitions move cold versions to a remote object
//! store (S3, Google Cloud Storage, Azure Blob) while they stay readable through Strata.
//!
//! - [`remote`]: the one trait every kind of tier implements (put a stream, get a range,
//!   head, delete) and the probe `check`; [`s3`], [`gcs`] and [`azure`] implement it.
//! - [`config`] and [`registry`]: tiers' settings, stored in the cluster configuration.
//! - [`journal`]: the durable remote-delete journal and the restored copies' expiries.
//! - [`transition`]: streams a version to its tier, verifies it, commits, frees the shards.
//! - [`deleter`]: drains the journal with retries and exponential backoff with jitter.
//! - [`restore`]: RestoreObject's temporary copies, their expiry, and `tier drain`.
//!
//! Every remote object belongs to exactly one version, under a key made for that version's
//! transition, so the remote bucket needs no versioning and no two versions share an object.

pub mod azure;
pub mod config;
pub mod deleter;
pub mod gcs;
pub mod journal;
pub mod registry;
pub mod remote;
pub mod restore;
pub mod s3;
pub mod transition;

pub use config::{Kind, TierConfig, TierEdit};
pub use remote::{ByteStream, RemoteTier, TierError};

use journal::Journal;
use registry::Registry;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage::Store;

/// Counters of one tier, for `/metrics` and `strata admin tier ls`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TierCounters {
    pub transitioned_objects: u64,
    pub transitioned_bytes: u64,
    pub transition_failures: u64,
    pub restored_objects: u64,
    pub restored_bytes: u64,
    pub recalled_objects: u64,
    pub recalled_bytes: u64,
    pub remote_deletes: u64,
    pub remote_delete_failures: u64,
    pub read_failures: u64,
    /// Whether the last call to the tier worked (`None`: not called yet).
    pub reachable: Option<bool>,
}

/// The tiering service of a node.
pub struct Tiering {
    store: Arc<Store>,
    registry: Registry,
    journal: Journal,
    clock: lifecycle::Clock,
    /// Transitions waiting for a worker.
    queue: tokio::sync::mpsc::Sender<lifecycle::scanner::TransitionJob>,
    queue_rx: Mutex<Option<tokio::sync::mpsc::Receiver<lifecycle::scanner::TransitionJob>>>,
    /// Transitions queued or running, with their last failure.
    jobs: Mutex<HashMap<lifecycle::scanner::TransitionJob, Option<transition::Failed>>>,
    /// Journal entries of uploads in flight: not orphans (yet).
    uploading: Mutex<HashSet<i64>>,
    counters: Mutex<BTreeMap<String, TierCounters>>,
    /// Wakes the deleter (new entries, a tier back).
    wake_deleter: tokio::sync::Notify,
    /// Wakes the restore expirer (a new restored copy).
    wake_expirer: tokio::sync::Notify,
    /// `tier drain` runs, by tier.
    drains: Mutex<BTreeMap<String, restore::DrainStatus>>,
}

/// How long the orphan of a transition that did not commit waits before it is deleted: a
/// completion the tier received just before a crash or a timeout may still land meanwhile.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(20);

/// Transitions running at once.
pub const TRANSITION_WORKERS: usize = 4;
/// Transitions that may wait for a worker; the scanner hands over more at its next pass.
pub(crate) const QUEUE_DEPTH: usize = 10_000;

impl Tiering {
    /// Opens the service: the registry from the cluster configuration, the journal at
    /// `journal_path`; installs the store's release hook.
    pub async fn open(
        store: Arc<Store>,
        journal_path: &Path,
        clock: lifecycle::Clock,
    ) -> Result<Arc<Self>, String> {
        let registry = Registry::load(store.clone()).await?;
        let journal = Journal::open(journal_path)?;
        let (queue, rx) = tokio::sync::mpsc::channel(QUEUE_DEPTH);
        let tiering = Arc::new(Self {
            store: store.clone(),
            registry,
            journal,
            clock,
            queue,
            queue_rx: Mutex::new(Some(rx)),
            jobs: Mutex::new(HashMap::new()),
            uploading: Mutex::new(HashSet::new()),
            counters: Mutex::new(BTreeMap::new()),
            wake_deleter: tokio::sync::Notify::new(),
            wake_expirer: tokio::sync::Notify::new(),
            drains: Mutex::new(BTreeMap::new()),
        });
        store.set_remote_releases(Arc::new(deleter::Releases(Arc::downgrade(&tiering))));
        Ok(tiering)
    }

    /// Starts the transition workers, the deleter and the restore expirer.
    pub fn start(self: &Arc<Self>) {
        // Uploads cut off by a stop: a request the tier had received may still complete, so
        // their orphans are deleted only after a grace.
        let later = storage::meta::now_ns() + ORPHAN_GRACE.as_nanos() as i64;
        if let Err(e) = self.journal.postpone_all(journal::TRANSITION, later) {
            tracing::warn!(error = %e, "tiering journal");
        }
        transition::start_workers(self);
        deleter::start(self);
        restore::start_expirer(self);
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether `class` names a tier (lifecycle rules may transition to it).
    pub fn is_tier(&self, class: &str) -> bool {
        self.registry.contains(class)
    }

    /// Each tier's counters.
    pub fn counters(&self) -> BTreeMap<String, TierCounters> {
        let mut all = self.counters.lock().expect("lock").clone();
        for t in self.registry.list() {
            all.entry(t.name).or_default();
        }
        all
    }

    fn count(&self, tier: &str, f: impl FnOnce(&mut TierCounters)) {
        f(self
            .counters
            .lock()
            .expect("lock")
            .entry(tier.to_owned())
            .or_default());
    }

    /// Notes whether a call to `tier` worked.
    pub fn reached(&self, tier: &str, ok: bool) {
        let was = self
            .counters
            .lock()
            .expect("lock")
            .get(tier)
            .and_then(|c| c.reachable);
        self.count(tier, |c| c.reachable = Some(ok));
        if ok && was == Some(false) {
            // Back: whatever waits on it need not wait out its backoff.
            if let Err(e) = self.journal.retry_now(tier, storage::meta::now_ns()) {
                tracing::warn!(%tier, error = %e, "tiering journal");
            }
            self.wake_deleter.notify_one();
        }
    }

    /// Bytes `start..end` of a tiered version, streamed from its tier. Errors name the tier.
    pub async fn read(
        &self,
        tier: &str,
        remote_key: &str,
        start: u64,
        end: u64,
    ) -> Result<ByteStream, String> {
        if start >= end {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let t = self
            .registry
            .get(tier)
            .ok_or_else(|| format!("the object is on tier {tier}, which is not configured"))?;
        match t.remote.get_range(remote_key, start, end).await {
            Ok(stream) => {
                self.reached(tier, true);
                Ok(stream)
            }
            Err(e) => {
                self.reached(tier, !matches!(e, TierError::Unavailable(_)));
                self.count(tier, |c| c.read_failures += 1);
                // The details (endpoints, remote keys) are for the operator, not the client.
                tracing::warn!(%tier, %remote_key, error = %e, "tiered read failed");
                Err(match e {
                    TierError::NotFound => format!(
                        "The object is on tier {tier}, which no longer holds its data"
                    ),
                    _ => format!(
                        "The object is on tier {tier}, which cannot be read now; please try again later"
                    ),
                })
            }
        }
    }

    /// Proves a tier works: writes, reads and deletes a probe.
    pub async fn check(&self, name: &str) -> Result<(), String> {
        let t = self
            .registry
            .get(name)
            .ok_or_else(|| format!("no tier {name}"))?;
        let probe = format!("strata-check/{}", uuid::Uuid::now_v7());
        let result = remote::check(t.remote.as_ref(), &probe).await;
        self.reached(name, result.is_ok());
        result
    }

    /// Removes a tier, refused while a bucket's lifecycle rules transition to it, versions
    /// live on it or remote deletes wait on it.
    pub async fn remove(&self, name: &str) -> Result<(), String> {
        if !self.registry.contains(name) {
            return Err(format!("no tier {name}"));
        }
        if let Some(bucket) = self.bucket_with_rules_for(name).await? {
            return Err(format!(
                "the lifecycle rules of bucket {bucket} transition to tier {name}; change them first"
            ));
        }
        let used = restore::versions_on(self, name, 1).await?;
        if let Some((bucket, key, _)) = used.first() {
            return Err(format!(
                "tier {name} still holds versions (e.g. {bucket}/{key}); `strata admin tier drain {name}` brings them back first"
            ));
        }
        let pending = self.journal.pending_on(name)?;
        if pending > 0 {
            return Err(format!(
                "tier {name} has {pending} remote deletes waiting; retry once they are done"
            ));
        }
        self.registry.remove(name).await
    }
}

impl Tiering {
    /// A bucket whose lifecycle rules transition to `tier`, if any.
    async fn bucket_with_rules_for(&self, tier: &str) -> Result<Option<String>, String> {
        for bucket in self.store.list_buckets().await.map_err(|e| e.to_string())? {
            let Some(config) = lifecycle::scanner::config_of(&bucket) else {
                continue;
            };
            let names_tier = config.rules.iter().any(|r| {
                r.transitions.iter().any(|t| t.storage_class == tier)
                    || r.noncurrent_transitions
                        .iter()
                        .any(|t| t.storage_class == tier)
            });
            if names_tier {
                return Ok(Some(bucket.name));
            }
        }
        Ok(None)
    }
}

/// The delay before attempt `attempts + 1` of a failed remote call: exponential from 1 s,
/// at most 5 min, with jitter (backon's exponential backoff).
pub fn backoff(attempts: u32) -> Duration {
    backoff_from(Duration::from_secs(1), attempts)
}

/// As [`backoff`], exponential from `min` (tests shorten it).
pub fn backoff_from(min: Duration, attempts: u32) -> Duration {
    use backon::BackoffBuilder;
    let max = Duration::from_secs(300);
    backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempts as usize)
        .unwrap_or(max)
}
