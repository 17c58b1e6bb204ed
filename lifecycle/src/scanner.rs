//! The scanner: on a schedule, and right after a bucket configuration changes, it walks every
//! bucket that has lifecycle rules, set by set, judges each version with `evaluate::due`, and
//! applies what is due through the store's ordinary delete and abort paths (quorum, rollback,
//! object-lock checks, heal), at most `rate` actions a second.
//!
//! Safety: a version is judged on a read and acted on later, so every removal names the
//! versions its judgement rests on (id and modification time of each, from the newest down to
//! the one acted on) and the store refuses it under the key's lock when any has changed since
//! (PreconditionFailed, counted as skipped); a key's actions run oldest version first so they
//! do not invalidate each other. An action is therefore idempotent: repeating it after a crash
//! changes nothing. A full scan's progress per (bucket, erasure set) is kept in the journal
//! after each batch of keys, so a scan cut off by a crash resumes where it stopped.
//!
//! Ownership: each erasure set is to be scanned by exactly one node. With one node (all that
//! exists today), that node scans every set; for the cluster, set `i` is planned to belong to
//! the `i mod n`-th of the `n` nodes in topology order that are up (not built yet).

use crate::evaluate::{self, Action, Clock, Due, UploadFacts, VersionFacts};
use crate::journal::{BucketScan, Cursor, Failure, Journal};
use crate::model::Configuration;
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage::list::{key_successor, SetWalk};
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
    /// Seconds of pause after each batch per second the batch took, so a scan leaves the
    /// node's CPU and drives to client requests (0: scan flat out).
    pub pause: f64,
}

/// By default a scan pauses as long as it works: half the node's time at most.
pub const DEFAULT_PAUSE: f64 = 1.0;

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
    storage::meta::version_id_text(v.version_id)
}

/// Carries out due transitions (the tiering crate): the scanner judges, tiering moves bytes.
pub trait Transitions: Send + Sync {
    /// Hands over a due transition and returns at once; the upload runs in the background.
    /// `Err` says why it cannot run now (an unknown tier, or the last failure and when the
    /// next attempt is), and is recorded as the action's failure.
    fn submit(&self, job: TransitionJob) -> Result<(), String>;
}

/// A transition judged due.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransitionJob {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<uuid::Uuid>,
    /// The version's modification time, ns: with the id, the version as judged.
    pub mod_time_ns: i64,
    pub tier: String,
}

/// Actions applied at once (different keys; each key's in order).
const ACTIONS_IN_FLIGHT: usize = 32;

/// An action judged due, waiting to be applied.
struct Planned {
    key: String,
    /// The version's id as the journal names it (`null` for the null version).
    version: String,
    which: Which,
    /// The key's versions the judgement rests on, newest first down to the one acted on.
    judged: Vec<(Option<uuid::Uuid>, i64)>,
    due: Due,
    versioning: Versioning,
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
    next_slot: Mutex<tokio::time::Instant>,
    /// One scan at a time.
    scanning: tokio::sync::Mutex<()>,
    /// Each bucket's configuration as last scanned: a change scans only what changed.
    seen: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Where due transitions go; without it they wait.
    transitions: std::sync::OnceLock<Arc<dyn Transitions>>,
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
            next_slot: Mutex::new(tokio::time::Instant::now()),
            scanning: tokio::sync::Mutex::new(()),
            seen: Mutex::new(BTreeMap::new()),
            transitions: std::sync::OnceLock::new(),
        }))
    }

    /// Installs where due transitions go (once, before `start`).
    pub fn set_transitions(&self, transitions: Arc<dyn Transitions>) {
        let _ = self.transitions.set(transitions);
    }

    /// The length of a lifecycle day this scanner judges with.
    pub fn clock(&self) -> Clock {
        self.settings.clock
    }

    /// Runs scans in the background: at once when a scan was cut off (or the day is
    /// shortened), then on the schedule, and after a configuration change for the buckets
    /// whose rules changed.
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut changes = me.store.watch_config();
            let mut next_full = tokio::time::Instant::now();
            if !me.journal.interrupted().unwrap_or(false)
                && me.settings.clock.day_ns == evaluate::DAY_NS
            {
                next_full += until_next_scan(&me.settings);
            }
            loop {
                // A deadline, not a sleep restarted by each change: frequent changes must
                // not starve the full scans.
                tokio::select! {
                    _ = tokio::time::sleep_until(next_full) => {
                        me.scan(false).await;
                        next_full = tokio::time::Instant::now() + until_next_scan(&me.settings);
                    }
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // Let a burst of changes settle into one scan.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        changes.borrow_and_update();
                        me.scan(true).await;
                    }
                }
            }
        });
    }

    /// Scans every bucket that has lifecycle rules once. A full scan (`only_changed` false)
    /// keeps its progress in the journal and, after a crash, resumes where it stopped; a scan
    /// after a configuration change covers the buckets whose rules changed since their last
    /// scan and keeps no progress (the next full scan covers whatever it did not finish).
    pub async fn scan(&self, only_changed: bool) {
        let _one = self.scanning.lock().await;
        let started = now_ns();
        let track = !only_changed;
        if track {
            if let Err(e) = self.journal.begin_run() {
                tracing::warn!(error = %e, "lifecycle journal unreadable; scanning from the start");
            }
        }
        let buckets = match self.store.list_buckets().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "lifecycle scan cannot list buckets");
                return;
            }
        };
        // Buckets with rules now: reports of any other (deleted, rules removed) are dropped.
        let mut with_rules = Vec::new();
        for bucket in buckets {
            let Some(config) = config_of(&bucket) else {
                // Rules removed: set again, even unchanged, they are new.
                self.seen.lock().expect("lock").remove(&bucket.name);
                continue;
            };
            with_rules.push(bucket.name.clone());
            let encoded = config.encode();
            let seen = self.seen.lock().expect("lock").get(&bucket.name) == Some(&encoded);
            if only_changed && seen {
                continue;
            }
            if self.scan_bucket(&bucket.name, &encoded, track).await {
                self.seen
                    .lock()
                    .expect("lock")
                    .insert(bucket.name.clone(), encoded);
            }
        }
        if track {
            self.note(|j| j.keep_scans(&with_rules));
            self.note(|j| j.finish_run());
            self.last_scan_ns
                .store(now_ns() - started, Ordering::Relaxed);
        }
        *self.progress.lock().expect("lock") = None;
    }

    /// The bucket's record and rules as they are now, if its rules are still `encoded`.
    async fn still_configured(
        &self,
        name: &str,
        encoded: &[u8],
    ) -> Option<(BucketRecord, Configuration)> {
        let bucket = self.store.bucket(name).await.ok()?;
        let config = config_of(&bucket)?;
        (config.encode() == encoded).then_some((bucket, config))
    }

    /// Scans one bucket, set by set; `false` when it stopped early because its rules changed
    /// or went away (the change itself starts a scan under the new rules).
    async fn scan_bucket(&self, name: &str, encoded: &[u8], track: bool) -> bool {
        let mut report = BucketScan {
            bucket: name.to_owned(),
            started_ns: now_ns(),
            ..Default::default()
        };
        self.note(|j| j.save_scan(&report));
        // Failures recorded for this bucket: those not judged again by a whole scan concern
        // versions that are gone, and are forgotten at its end.
        let mut unjudged: HashSet<(String, String)> = self
            .journal
            .failures(Some(name))
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.key, f.version))
            .collect();
        let mut whole = true;
        let sets = self.store.sets();
        for (index, set) in sets.iter().enumerate() {
            let cursor = if track {
                self.journal.cursor(name, index).unwrap_or(Cursor::Start)
            } else {
                Cursor::Start
            };
            let lower = match &cursor {
                Cursor::Done => continue,
                Cursor::After(key) => {
                    whole = false;
                    key_successor(key.as_bytes())
                }
                Cursor::Start => Vec::new(),
            };
            *self.progress.lock().expect("lock") = Some(Progress {
                bucket: name.to_owned(),
                set: index,
                sets: sets.len(),
                key: String::from_utf8_lossy(&lower).into_owned(),
                versions_scanned: report.versions_scanned,
                started_ns: report.started_ns,
            });
            let mut walk = SetWalk::from(lower);
            loop {
                let batch_started = tokio::time::Instant::now();
                let entries = match walk.next_page(set, name, BATCH).await {
                    Ok(Some(page)) => page,
                    Ok(None) => {
                        if track {
                            self.note(|j| j.set_cursor(name, index, &Cursor::Done));
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(bucket = %name, set = index, error = %e, "lifecycle scan cannot list; the next scan resumes here");
                        report.actions_failed += 1;
                        whole = false;
                        break;
                    }
                };
                // Rules and versioning are read again for every batch: a scan can be long,
                // and must never act on rules removed or a versioning state changed since.
                let Some((bucket, config)) = self.still_configured(name, encoded).await else {
                    return false;
                };
                let mut last = None;
                let mut planned = Vec::new();
                for (key, record) in &entries {
                    planned.extend(self.judge_key(
                        &bucket,
                        &config,
                        key,
                        record,
                        &mut report,
                        &mut unjudged,
                    ));
                    last = Some(key.clone());
                }
                // Applying actions is paced by the rate limit; the pause answers for the
                // reading and judging.
                let worked = batch_started.elapsed();
                self.apply_batch(name, set, planned, &mut report).await;
                if let Some(key) = last {
                    if let Some(p) = self.progress.lock().expect("lock").as_mut() {
                        p.key.clone_from(&key);
                        p.versions_scanned = report.versions_scanned;
                    }
                    if track {
                        self.note(|j| j.set_cursor(name, index, &Cursor::After(key)));
                    }
                }
                tokio::time::sleep(worked.mul_f64(self.settings.pause)).await;
            }
        }
        if let Some((bucket, config)) = self.still_configured(name, encoded).await {
            self.abort_uploads(&bucket, &config, &mut report, &mut unjudged)
                .await;
        }
        if whole {
            for (key, version) in unjudged {
                self.note(|j| j.clear_failure(name, &key, &version));
            }
        }
        report.finished_ns = Some(now_ns());
        self.note(|j| j.save_scan(&report));
        true
    }

    /// Journal writes that fail are logged, not fatal: the journal only saves work.
    fn note(&self, write: impl FnOnce(&Journal) -> Result<(), String>) {
        if let Err(e) = write(&self.journal) {
            tracing::warn!(error = %e, "lifecycle journal write failed");
        }
    }

    /// Records how an action ended: a failure with its error, anything else clears one.
    fn settle(&self, bucket: &str, key: &str, version: String, due: &Due, outcome: &Outcome) {
        match outcome {
            Outcome::Failed(error) => self.note(|j| {
                j.record_failure(&Failure {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    version,
                    action: due.action.name().into(),
                    error: error.clone(),
                    at_ns: now_ns(),
                    due_ns: due.at_ns,
                })
            }),
            _ => self.note(|j| j.clear_failure(bucket, key, &version)),
        }
    }

    /// Judges every version of a key and returns the actions due, oldest version first: a
    /// removal never changes the versions newer than the one removed, so each later action's
    /// expectation (the newer versions it was judged with) still holds when its turn comes,
    /// and the current version's expiration, which adds a marker on top, comes last.
    fn judge_key(
        &self,
        bucket: &BucketRecord,
        config: &Configuration,
        key: &str,
        record: &ObjectRecord,
        report: &mut BucketScan,
        unjudged: &mut HashSet<(String, String)>,
    ) -> Vec<Planned> {
        let versioning = bucket.versioning();
        let clock = self.settings.clock;
        let now = now_ns();
        let mut planned = Vec::new();
        for i in (0..record.versions.len()).rev() {
            report.versions_scanned += 1;
            self.versions_scanned.fetch_add(1, Ordering::Relaxed);
            let facts = facts_of(key, record, i, versioning);
            let version = &record.versions[i];
            let id = version_text(version);
            let had_failed = unjudged.remove(&(key.to_owned(), id.clone()));
            let Some(due) = evaluate::due(config, &facts, clock, now) else {
                if facts.locked_until_ns.is_some_and(|t| t > now) {
                    let blocked = evaluate::schedule(config, &facts, clock)
                        .into_iter()
                        .find(|d| d.at_ns <= now && d.action.removes_data(facts.versioned));
                    if let Some(d) = blocked {
                        report.actions_blocked += 1;
                        self.count(&d.action, &Outcome::Blocked);
                    }
                }
                if had_failed {
                    // No longer due (a legal hold, a changed rule): not a failure any more.
                    self.note(|j| j.clear_failure(&bucket.name, key, &id));
                }
                continue;
            };
            let which = match &due.action {
                Action::ExpireCurrent => Which::Current,
                Action::DeleteNoncurrent | Action::DeleteMarker => {
                    Which::Version(version.version_id)
                }
                Action::Transition { storage_class } => {
                    let outcome = self.hand_over(&bucket.name, key, version, storage_class);
                    self.count(&due.action, &outcome);
                    match &outcome {
                        Outcome::Done => report.actions_done += 1,
                        Outcome::Failed(_) => report.actions_failed += 1,
                        _ => {}
                    }
                    self.settle(&bucket.name, key, id, &due, &outcome);
                    continue;
                }
                // Uploads are judged apart.
                Action::AbortUpload => continue,
            };
            planned.push(Planned {
                key: key.to_owned(),
                version: id,
                which,
                judged: record.versions[..=i]
                    .iter()
                    .map(|v| (v.version_id, v.mod_time_ns))
                    .collect(),
                due,
                versioning,
            });
        }
        planned
    }

    /// Hands a due transition to tiering (done: handed over; the version's storage class
    /// shows when it has moved).
    fn hand_over(&self, bucket: &str, key: &str, version: &VersionRecord, tier: &str) -> Outcome {
        let Some(transitions) = self.transitions.get() else {
            return Outcome::Skipped;
        };
        let job = TransitionJob {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: version.version_id,
            mod_time_ns: version.mod_time_ns,
            tier: tier.to_owned(),
        };
        match transitions.submit(job) {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Applies one batch's actions: keys in parallel (their commits share the drives' group
    /// commits), each key's actions in order.
    async fn apply_batch(
        &self,
        bucket: &str,
        set: &ErasureSet,
        planned: Vec<Planned>,
        report: &mut BucketScan,
    ) {
        let mut by_key: Vec<Vec<Planned>> = Vec::new();
        for p in planned {
            match by_key.last_mut() {
                Some(actions) if actions[0].key == p.key => actions.push(p),
                _ => by_key.push(vec![p]),
            }
        }
        let outcomes: Vec<(Planned, Outcome)> = futures::stream::iter(by_key)
            .map(|actions| async move {
                let mut done = Vec::with_capacity(actions.len());
                for p in actions {
                    let outcome = self.apply(bucket, set, &p).await;
                    done.push((p, outcome));
                }
                done
            })
            .buffer_unordered(ACTIONS_IN_FLIGHT)
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        for (p, outcome) in outcomes {
            self.count(&p.due.action, &outcome);
            match &outcome {
                Outcome::Done => report.actions_done += 1,
                Outcome::Skipped => {}
                Outcome::Blocked => report.actions_blocked += 1,
                Outcome::Failed(_) => report.actions_failed += 1,
            }
            self.settle(bucket, &p.key, p.version.clone(), &p.due, &outcome);
        }
    }

    /// Waits for the rate limit's next slot. Slots are handed out without holding a lock
    /// while sleeping, and a slot already passed costs no sleep (the timer's granularity,
    /// a millisecond, would otherwise cap the rate near 1,000 a second).
    async fn take_slot(&self, due_ns: i64) {
        self.waiting_since_ns.store(due_ns, Ordering::Relaxed);
        let step = Duration::from_secs_f64(1.0 / f64::from(self.settings.rate.max(1)));
        let slot = {
            let mut next = self.next_slot.lock().expect("lock");
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + step;
            slot
        };
        if slot > tokio::time::Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
        self.waiting_since_ns.store(0, Ordering::Relaxed);
    }

    /// Applies an action; the store refuses it if the key changed since it was judged.
    async fn apply(&self, bucket: &str, set: &ErasureSet, p: &Planned) -> Outcome {
        self.take_slot(p.due.at_ns).await;
        let opts = DeleteOptions {
            bypass_governance: false,
            expect: Some(p.judged.clone()),
            by_lifecycle: true,
            replica: None,
        };
        match set
            .delete_version(bucket, &p.key, p.which, p.versioning, opts)
            .await
        {
            Ok(_) => Outcome::Done,
            Err(StorageError::PreconditionFailed) => Outcome::Skipped,
            Err(StorageError::ObjectLocked(_)) => Outcome::Blocked,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// Aborts the bucket's incomplete uploads that an AbortIncompleteMultipartUpload rule
    /// has made due.
    async fn abort_uploads(
        &self,
        bucket: &BucketRecord,
        config: &Configuration,
        report: &mut BucketScan,
        unjudged: &mut HashSet<(String, String)>,
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
            let id = upload.upload_id.to_string();
            unjudged.remove(&(upload.key.clone(), id.clone()));
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
            match outcome {
                Outcome::Done => report.actions_done += 1,
                Outcome::Failed(_) => report.actions_failed += 1,
                _ => {}
            }
            self.settle(&bucket.name, &upload.key, id, &due, &outcome);
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
        let failed = self.journal.oldest_failure_due().ok().flatten();
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

    /// The store the scanner acts on.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}
