//! The scanner: on a schedule, and right after a bucket configuration changes, it walks every
//! bucket that has lifecycle rules, set by set, judges each version with `evaluate::due`, and
//! applies what is due through the store's ordinary delete and abort paths (quorum, rollback,
//! object-lock checks, heal), at most `rate` actions a second.
//!
//! Safety: a version is judged on a read and acted on later, so every removal names the
//! version it judged (id and modification time) and the store refuses it under the key's lock
//! when the key has changed since (PreconditionFailed, counted as skipped). An action is
//! therefore idempotent: repeating it after a crash changes nothing. Progress per (bucket,
//! erasure set) is kept in the journal after each batch of keys, so a scan cut off by a crash
//! resumes where it stopped at the next start.
//!
//! Ownership: each erasure set is scanned by exactly one node. With one node, that node scans
//! every set; in a cluster, set `i` belongs to the `i mod n`-th of the `n` nodes in topology
//! order that are up (the cluster issue wires node liveness into `Settings`).

use crate::evaluate::{self, Action, Clock, Due, UploadFacts, VersionFacts};
use crate::journal::{BucketScan, Failure, Journal};
use crate::model::Configuration;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage::list::key_successor;
use storage::meta::{now_ns, BucketRecord, ObjectRecord, VersionRecord};
use storage::{DeleteOptions, ErasureSet, StorageError, Store, Versioning, Which};

/// Hourly, at minute 0 (cron with seconds: sec min hour day-of-month month day-of-week).
pub const DEFAULT_SCHEDULE: &str = "0 0 * * * *";
/// Actions applied per second at most, by default.
pub const DEFAULT_RATE: u32 = 1000;
/// The bucket configuration entry holding the rules (`Configuration::encode`).
pub const CONFIG_KEY: &str = "lifecycle";
/// Keys asked of the drives per batch; the journal records progress after each.
const BATCH: usize = 1000;

/// How the scanner runs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub clock: Clock,
    /// A cron expression with seconds; ignored when the day is shortened.
    pub schedule: String,
    /// Most actions per second.
    pub rate: u32,
}

/// Checks a cron expression (`sec min hour day-of-month month day-of-week [year]`).
pub fn check_schedule(expr: &str) -> Result<(), String> {
    cron::Schedule::from_str(expr).map(drop).map_err(|e| {
        format!(
            "'{expr}' is not a cron schedule (sec min hour day-of-month month day-of-week): {e}"
        )
    })
}

/// How long until the next scan: by the cron schedule with a real day; with a shortened day
/// (tests, demos) every half day, so an action is never more than half a day late (as Ceph's
/// `rgw_lc_debug_interval`).
fn until_next_scan(settings: &Settings) -> Duration {
    if settings.clock.day_ns != evaluate::DAY_NS {
        return Duration::from_nanos((settings.clock.day_ns / 2).max(200_000_000) as u64);
    }
    let next = cron::Schedule::from_str(&settings.schedule)
        .ok()
        .and_then(|s| s.upcoming(chrono::Utc).next());
    match next {
        Some(t) => (t - chrono::Utc::now()).to_std().unwrap_or_default(),
        None => Duration::from_secs(3600),
    }
}

/// A bucket's lifecycle configuration, if it has a readable one.
pub fn config_of(bucket: &BucketRecord) -> Option<Configuration> {
    Configuration::decode(bucket.config.get(CONFIG_KEY)?)
        .inspect_err(|e| tracing::error!(bucket = %bucket.name, error = %e, "unreadable lifecycle configuration"))
        .ok()
}

/// What one version is judged by: the facts `evaluate` needs, from the key's record.
pub fn facts_of<'a>(
    key: &'a str,
    record: &'a ObjectRecord,
    index: usize,
    versioning: Versioning,
) -> VersionFacts<'a> {
    static NO_TAGS: BTreeMap<String, String> = BTreeMap::new();
    let v = &record.versions[index];
    let obj = v.object.as_ref();
    let locked_until_ns = obj.and_then(|o| {
        if o.legal_hold {
            Some(i64::MAX)
        } else {
            o.retention.as_ref().map(|r| r.retain_until_ns)
        }
    });
    VersionFacts {
        key,
        size: obj.map_or(0, |o| o.size),
        tags: obj.map_or(&NO_TAGS, |o| &o.tags),
        mod_time_ns: v.mod_time_ns,
        is_latest: index == 0,
        is_delete_marker: obj.is_none(),
        noncurrent_since_ns: index.checked_sub(1).map(|i| record.versions[i].mod_time_ns),
        newer_noncurrent: index.saturating_sub(1) as u32,
        only_version: record.versions.len() == 1,
        locked_until_ns,
        versioned: versioning != Versioning::Unversioned,
        storage_class: obj.map_or("STANDARD", |o| o.storage_class.as_str()),
    }
}

fn version_text(v: &VersionRecord) -> String {
    v.version_id
        .map_or_else(|| "null".into(), |id| id.to_string())
}

/// How an action ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// The key changed since it was judged, or the action waits for another issue.
    Skipped,
    /// Object lock refused the removal.
    Blocked,
    Failed(String),
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Skipped => "skipped",
            Outcome::Blocked => "blocked",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// The scan in progress.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Progress {
    pub bucket: String,
    pub set: usize,
    pub sets: usize,
    pub key: String,
    pub versions_scanned: u64,
    pub started_ns: i64,
}

/// Counters for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub versions_scanned: u64,
    /// (action, result) → count.
    pub actions: BTreeMap<(&'static str, &'static str), u64>,
    /// Length of the last complete scan of all buckets, seconds.
    pub last_scan_seconds: f64,
    /// Age of the oldest action that is due but not applied (failed, or waiting its turn),
    /// seconds; 0 when none.
    pub oldest_due_seconds: f64,
}

/// What `strata admin lifecycle status` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub scans: Vec<BucketScan>,
    pub in_progress: Option<Progress>,
    pub failures: Vec<Failure>,
}

/// The lifecycle scanner of a node.
pub struct Scanner {
    store: Arc<Store>,
    settings: Settings,
    journal: Journal,
    progress: Mutex<Option<Progress>>,
    versions_scanned: AtomicU64,
    actions: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    last_scan_ns: AtomicI64,
    /// Due time of the action waiting for its turn (0: none).
    waiting_since_ns: AtomicI64,
    /// When the next action may run (rate limit).
    next_slot: tokio::sync::Mutex<tokio::time::Instant>,
    /// One scan at a time.
    scanning: tokio::sync::Mutex<()>,
    /// Each bucket's configuration as last scanned: a change scans only what changed.
    seen: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl Scanner {
    /// Opens the scanner with its journal at `journal_path`.
    pub fn open(
        store: Arc<Store>,
        settings: Settings,
        journal_path: &Path,
    ) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            store,
            settings,
            journal: Journal::open(journal_path)?,
            progress: Mutex::new(None),
            versions_scanned: AtomicU64::new(0),
            actions: Mutex::new(BTreeMap::new()),
            last_scan_ns: AtomicI64::new(0),
            waiting_since_ns: AtomicI64::new(0),
            next_slot: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            scanning: tokio::sync::Mutex::new(()),
            seen: Mutex::new(BTreeMap::new()),
        }))
    }

    pub fn clock(&self) -> Clock {
        self.settings.clock
    }

    /// Runs scans in the background: at once when a scan was cut off (or the day is
    /// shortened), then on the schedule and after every configuration change.
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut changes = me.store.watch_config();
            let mut now = me.journal.interrupted().unwrap_or(false)
                || me.settings.clock.day_ns != evaluate::DAY_NS;
            loop {
                let mut only_changed = false;
                if !now {
                    tokio::select! {
                        _ = tokio::time::sleep(until_next_scan(&me.settings)) => {}
                        changed = changes.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            // Let a burst of changes settle into one scan.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            changes.borrow_and_update();
                            only_changed = true;
                        }
                    }
                }
                now = false;
                me.scan(only_changed).await;
            }
        });
    }

    /// Scans every bucket that has lifecycle rules once (`only_changed`: those whose rules
    /// changed since their last scan).
    pub async fn scan(&self, only_changed: bool) {
        let _one = self.scanning.lock().await;
        let started = now_ns();
        let buckets = match self.store.list_buckets().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "lifecycle scan cannot list buckets");
                return;
            }
        };
        for bucket in buckets {
            let Some(config) = config_of(&bucket) else {
                continue;
            };
            let encoded = config.encode();
            let seen = self.seen.lock().expect("lock").get(&bucket.name) == Some(&encoded);
            if only_changed && seen {
                continue;
            }
            self.scan_bucket(&bucket, &config).await;
            self.seen
                .lock()
                .expect("lock")
                .insert(bucket.name.clone(), encoded);
        }
        if !only_changed {
            self.last_scan_ns
                .store(now_ns() - started, Ordering::Relaxed);
        }
        *self.progress.lock().expect("lock") = None;
    }

    async fn scan_bucket(&self, bucket: &BucketRecord, config: &Configuration) {
        let name = bucket.name.as_str();
        let mut report = BucketScan {
            bucket: name.to_owned(),
            started_ns: now_ns(),
            ..Default::default()
        };
        self.note(|j| j.save_scan(&report));
        let sets = self.store.sets();
        for (index, set) in sets.iter().enumerate() {
            let mut lower = match self.journal.cursor(name, index) {
                Ok(Some(after)) => key_successor(after.as_bytes()),
                _ => Vec::new(),
            };
            *self.progress.lock().expect("lock") = Some(Progress {
                bucket: name.to_owned(),
                set: index,
                sets: sets.len(),
                key: String::from_utf8_lossy(&lower).into_owned(),
                versions_scanned: report.versions_scanned,
                started_ns: report.started_ns,
            });
            loop {
                let (entries, next) = match set.list_resolved(name, &lower, None, BATCH).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(bucket = %name, set = index, error = %e, "lifecycle scan cannot list; the next scan resumes here");
                        report.actions_failed += 1;
                        break;
                    }
                };
                let mut last = None;
                for (key, record) in &entries {
                    self.judge_key(bucket, config, set, key, record, &mut report)
                        .await;
                    last = Some(key.clone());
                }
                if let Some(key) = &last {
                    lower = key_successor(key.as_bytes());
                    self.note(|j| j.set_cursor(name, index, Some(key)));
                    if let Some(p) = self.progress.lock().expect("lock").as_mut() {
                        p.key.clone_from(key);
                        p.versions_scanned = report.versions_scanned;
                    }
                }
                match next {
                    Some(h) if h > lower => lower = h,
                    Some(_) => {}
                    None => {
                        self.note(|j| j.set_cursor(name, index, None));
                        break;
                    }
                }
            }
        }
        self.abort_uploads(bucket, config, &mut report).await;
        report.finished_ns = Some(now_ns());
        self.note(|j| j.save_scan(&report));
    }

    /// Journal writes that fail are logged, not fatal: the journal only saves work.
    fn note(&self, write: impl FnOnce(&Journal) -> Result<(), String>) {
        if let Err(e) = write(&self.journal) {
            tracing::warn!(error = %e, "lifecycle journal write failed");
        }
    }

    async fn judge_key(
        &self,
        bucket: &BucketRecord,
        config: &Configuration,
        set: &ErasureSet,
        key: &str,
        record: &ObjectRecord,
        report: &mut BucketScan,
    ) {
        let versioning = bucket.versioning();
        let clock = self.settings.clock;
        for i in 0..record.versions.len() {
            report.versions_scanned += 1;
            self.versions_scanned.fetch_add(1, Ordering::Relaxed);
            let facts = facts_of(key, record, i, versioning);
            let now = now_ns();
            let Some(due) = evaluate::due(config, &facts, clock, now) else {
                if facts.locked_until_ns.is_some_and(|t| t > now) {
                    let blocked = evaluate::schedule(config, &facts, clock)
                        .iter()
                        .any(|d| d.at_ns <= now && d.action.removes_data(facts.versioned));
                    report.actions_blocked += u64::from(blocked);
                }
                continue;
            };
            let version = &record.versions[i];
            let outcome = self
                .apply(&bucket.name, key, set, version, &due, versioning)
                .await;
            self.count(&due.action, &outcome);
            let id = version_text(version);
            match &outcome {
                Outcome::Done => report.actions_done += 1,
                Outcome::Skipped => {}
                Outcome::Blocked => report.actions_blocked += 1,
                Outcome::Failed(_) => report.actions_failed += 1,
            }
            match outcome {
                Outcome::Failed(error) => self.note(|j| {
                    j.record_failure(&Failure {
                        bucket: bucket.name.clone(),
                        key: key.to_owned(),
                        version: id,
                        action: due.action.name().into(),
                        error,
                        at_ns: now_ns(),
                        due_ns: due.at_ns,
                    })
                }),
                _ => self.note(|j| j.clear_failure(&bucket.name, key, &id)),
            }
            // A current version expired in a versioned bucket now sits behind a marker; the
            // older versions' ages changed too: the next scan judges them afresh.
            if due.action == Action::ExpireCurrent {
                break;
            }
        }
    }

    /// Waits for the rate limit's next slot.
    async fn take_slot(&self, due_ns: i64) {
        self.waiting_since_ns.store(due_ns, Ordering::Relaxed);
        let mut next = self.next_slot.lock().await;
        tokio::time::sleep_until(*next).await;
        let step = Duration::from_secs_f64(1.0 / f64::from(self.settings.rate.max(1)));
        *next = tokio::time::Instant::now().max(*next) + step;
        self.waiting_since_ns.store(0, Ordering::Relaxed);
    }

    async fn apply(
        &self,
        bucket: &str,
        key: &str,
        set: &ErasureSet,
        version: &VersionRecord,
        due: &Due,
        versioning: Versioning,
    ) -> Outcome {
        let which = match due.action {
            Action::ExpireCurrent => Which::Current,
            Action::DeleteNoncurrent | Action::DeleteMarker => Which::Version(version.version_id),
            // Transitions are carried out by tiering; uploads are judged apart.
            Action::Transition { .. } | Action::AbortUpload => return Outcome::Skipped,
        };
        self.take_slot(due.at_ns).await;
        let opts = DeleteOptions {
            bypass_governance: false,
            expect: Some((version.version_id, version.mod_time_ns)),
            by_lifecycle: true,
        };
        match set
            .delete_version(bucket, key, which, versioning, opts)
            .await
        {
            Ok(_) => Outcome::Done,
            Err(StorageError::PreconditionFailed) => Outcome::Skipped,
            Err(StorageError::ObjectLocked(_)) => Outcome::Blocked,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    async fn abort_uploads(
        &self,
        bucket: &BucketRecord,
        config: &Configuration,
        report: &mut BucketScan,
    ) {
        if config
            .rules
            .iter()
            .all(|r| r.abort_incomplete_upload_days.is_none())
        {
            return;
        }
        let uploads = match self.store.list_uploads(&bucket.name).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(bucket = %bucket.name, error = %e, "lifecycle scan cannot list uploads");
                report.actions_failed += 1;
                return;
            }
        };
        for upload in uploads {
            report.uploads_scanned += 1;
            let facts = UploadFacts {
                key: &upload.key,
                initiated_ns: upload.initiated_ns,
            };
            let Some(due) = evaluate::upload_abort(config, &facts, self.settings.clock)
                .filter(|d| d.at_ns <= now_ns())
            else {
                continue;
            };
            self.take_slot(due.at_ns).await;
            let set = self.store.set_for(&bucket.name, &upload.key);
            let outcome = match set.abort_upload(&upload).await {
                Ok(()) => Outcome::Done,
                Err(StorageError::NoSuchUpload) => Outcome::Skipped,
                Err(e) => Outcome::Failed(e.to_string()),
            };
            self.count(&Action::AbortUpload, &outcome);
            let id = upload.upload_id.to_string();
            match outcome {
                Outcome::Done => report.actions_done += 1,
                Outcome::Failed(ref error) => {
                    report.actions_failed += 1;
                    self.note(|j| {
                        j.record_failure(&Failure {
                            bucket: bucket.name.clone(),
                            key: upload.key.clone(),
                            version: id.clone(),
                            action: Action::AbortUpload.name().into(),
                            error: error.clone(),
                            at_ns: now_ns(),
                            due_ns: due.at_ns,
                        })
                    });
                    continue;
                }
                _ => {}
            }
            self.note(|j| j.clear_failure(&bucket.name, &upload.key, &id));
        }
    }

    fn count(&self, action: &Action, outcome: &Outcome) {
        *self
            .actions
            .lock()
            .expect("lock")
            .entry((action.name(), outcome.name()))
            .or_default() += 1;
    }

    /// Counters for `/metrics`.
    pub fn stats(&self) -> Stats {
        let now = now_ns();
        let waiting = self.waiting_since_ns.load(Ordering::Relaxed);
        let failed = self
            .journal
            .failures(None)
            .ok()
            .and_then(|f| f.iter().map(|f| f.due_ns).min());
        let oldest = [failed, (waiting > 0).then_some(waiting)]
            .into_iter()
            .flatten()
            .min();
        Stats {
            versions_scanned: self.versions_scanned.load(Ordering::Relaxed),
            actions: self.actions.lock().expect("lock").clone(),
            last_scan_seconds: self.last_scan_ns.load(Ordering::Relaxed) as f64 / 1e9,
            oldest_due_seconds: oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1e9),
        }
    }

    /// The last scan of each bucket, the scan in progress and the failed actions.
    pub fn status(&self) -> Result<Status, String> {
        Ok(Status {
            scans: self.journal.scans()?,
            in_progress: self.progress.lock().expect("lock").clone(),
            failures: self.journal.failures(None)?,
        })
    }

    /// Failures recorded for one key.
    pub fn failures_of(&self, bucket: &str, key: &str) -> Vec<Failure> {
        self.journal
            .failures(Some(bucket))
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.key == key)
            .collect()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}
