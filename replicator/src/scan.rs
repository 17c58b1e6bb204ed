//! Walking a bucket's versions: the scan that re-queues versions whose record says PENDING or
//! FAILED but the queue lacks (a lost or rebuilt queue) and existing objects where a rule's
//! ExistingObjectReplication asks for them; `resync`, which queues every version a target
//! lacks, resumable from a cursor; and `diff`, which lists versions whose copy on a target is
//! missing or differs.

use crate::Replicator;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use storage::meta::{now_ns, version_id_text, ReplicationState, TargetReplication, VersionRecord};
use storage::{ReplicationEntry, ReplicationOp, VersionEntry};
use uuid::Uuid;

/// Versions listed per page.
const PAGE: usize = 500;

/// A walk over every version of a bucket after a key, page by page.
struct Walk {
    bucket: String,
    key_marker: String,
    version_marker: Option<Option<Uuid>>,
    finished: bool,
}

/// One page: its versions, and the last key whose versions are all in this or earlier pages.
type Page = (Vec<(String, VersionRecord)>, String);

impl Walk {
    fn new(bucket: &str, after: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            key_marker: after.to_owned(),
            version_marker: None,
            finished: false,
        }
    }

    async fn next(&mut self, r: &Replicator) -> Result<Option<Page>, String> {
        if self.finished {
            return Ok(None);
        }
        let page = r
            .store
            .list_versions(
                &self.bucket,
                "",
                "",
                &self.key_marker,
                self.version_marker,
                PAGE,
            )
            .await
            .map_err(|e| e.to_string())?;
        let versions: Vec<(String, VersionRecord)> = page
            .entries
            .into_iter()
            .filter_map(|e| match e {
                VersionEntry::Version { key, version, .. } => Some((key, *version)),
                VersionEntry::Prefix(_) => None,
            })
            .collect();
        let mut complete = self.key_marker.clone();
        match versions.last() {
            Some((last, v)) if page.truncated => {
                // The last key may go on in the next page.
                if let Some((k, _)) = versions.iter().rev().find(|(k, _)| k != last) {
                    complete = k.clone();
                }
                self.key_marker = last.clone();
                self.version_marker = Some(v.version_id);
            }
            Some((last, _)) => {
                complete = last.clone();
                self.finished = true;
            }
            None => self.finished = true,
        }
        Ok(Some((versions, complete)))
    }
}

fn entry(
    bucket: &str,
    key: &str,
    v: &VersionRecord,
    target: &str,
    op: ReplicationOp,
) -> ReplicationEntry {
    ReplicationEntry {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: v.version_id,
        mod_time_ns: v.mod_time_ns,
        target: target.to_owned(),
        op,
        size: v.object.as_ref().map_or(0, |o| o.size),
        remote_version_id: v
            .replication
            .targets
            .get(target)
            .and_then(|t| t.remote_version_id.clone()),
    }
}

fn op_of(v: &VersionRecord) -> ReplicationOp {
    if v.object.is_some() {
        ReplicationOp::Object
    } else {
        ReplicationOp::DeleteMarker
    }
}

/// Queues `e` and marks its version PENDING for the target, both under the key's lock (the
/// entry first, as on the commit path), so a send cannot finish in between.
async fn queue_and_mark(r: &Replicator, e: ReplicationEntry) -> Result<(), String> {
    let set = r.store.set_for(&e.bucket, &e.key);
    let marked = set
        .set_replication_status(
            &e.bucket,
            &e.key,
            e.version_id,
            e.mod_time_ns,
            &e.target,
            TargetReplication {
                status: ReplicationState::Pending,
                remote_version_id: e.remote_version_id.clone(),
            },
            async {
                match r.queue.push(vec![e.clone()], now_ns()).await {
                    Ok(()) => true,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot queue a version for replication");
                        false
                    }
                }
            },
        )
        .await;
    match marked {
        Ok(true) | Err(storage::StorageError::PreconditionFailed) => {}
        Ok(false) => return Err("cannot queue a version for replication".into()),
        Err(err) => return Err(err.to_string()),
    }
    r.wake.notify_one();
    Ok(())
}

/// Whether `v` of `key` goes to `target` under the bucket's rules, and by which rule.
fn rule_for<'c>(
    config: &'c crate::Configuration,
    key: &str,
    v: &VersionRecord,
    target: &str,
) -> Option<&'c crate::Rule> {
    if v.replication.replica || v.lifecycle_marker {
        return None;
    }
    let empty = BTreeMap::new();
    let tags = v.object.as_ref().map_or(&empty, |o| &o.tags);
    config
        .deciding_rules(key, tags)
        .into_iter()
        .find(|rule| rule.destination == target)
        .filter(|rule| v.object.is_some() || rule.delete_markers || rule.is_v1())
}

/// Re-queues `bucket`'s versions marked PENDING or FAILED that the queue lacks, and
/// versions no target has seen where their rule replicates existing objects.
pub async fn requeue(r: &Arc<Replicator>, bucket: &str) -> Result<(), String> {
    let Some(config) = r.config(bucket) else {
        return Ok(());
    };
    let mut queued = 0u64;
    let mut walk = Walk::new(bucket, "");
    while let Some((versions, _)) = walk.next(r).await? {
        for (key, v) in &versions {
            for (target, state) in &v.replication.targets {
                if state.status != ReplicationState::Completed
                    && !r.queue.contains(bucket, key, v.version_id, target)?
                {
                    r.queue
                        .push(vec![entry(bucket, key, v, target, op_of(v))], now_ns())
                        .await?;
                    queued += 1;
                }
            }
            for arn in config.destinations() {
                let existing =
                    rule_for(&config, key, v, arn).is_some_and(|rule| rule.existing_objects);
                if existing && !v.replication.targets.contains_key(arn) {
                    queue_and_mark(r, entry(bucket, key, v, arn, op_of(v))).await?;
                    queued += 1;
                }
            }
        }
    }
    if queued > 0 {
        tracing::info!(%bucket, versions = queued, "replication scan queued versions");
        r.wake.notify_one();
    }
    Ok(())
}

/// Progress of a resync.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ResyncStatus {
    pub bucket: String,
    pub target: String,
    /// Versions checked so far.
    pub done: u64,
    /// Versions the target lacked (queued).
    pub queued: u64,
    /// Versions in the bucket when the resync started (0 while they are being counted).
    pub total: u64,
    /// The last key fully checked (a restarted resync continues after it).
    pub cursor: String,
    pub finished: bool,
    pub running: bool,
}

async fn count_versions(r: &Replicator, bucket: &str) -> Result<u64, String> {
    let mut n = 0;
    let mut walk = Walk::new(bucket, "");
    while let Some((versions, _)) = walk.next(r).await? {
        n += versions.len() as u64;
    }
    Ok(n)
}

impl Replicator {
    /// Starts (or continues from its cursor) a resync of `bucket` to `target`: every
    /// version a rule sends there that the target lacks, or holds with other bytes, is
    /// queued. Returns at once; `resync_status` follows it.
    pub async fn resync(self: &Arc<Self>, bucket: &str, target: &str) -> Result<(), String> {
        let config = self
            .config(bucket)
            .ok_or_else(|| format!("bucket {bucket} has no replication configuration"))?;
        if !config.destinations().contains(&target) {
            return Err(format!("no rule of bucket {bucket} names {target}"));
        }
        if self.targets.get(target).is_none() {
            return Err(format!("no replication target {target}"));
        }
        let job = (bucket.to_owned(), target.to_owned());
        {
            let mut running = self.resyncs.lock().expect("lock");
            if running.contains_key(&job) {
                return Ok(());
            }
            running.insert(job.clone(), 0);
        }
        // A finished resync starts over; a stopped one goes on from its cursor.
        let (cursor, done, queued) = match self.queue.resync_state(bucket, target)? {
            Some((cursor, done, queued, false)) => (cursor, done, queued),
            _ => (String::new(), 0, 0),
        };
        if let Err(e) = self
            .queue
            .set_resync(bucket, target, &cursor, done, queued, false)
            .await
        {
            self.resyncs.lock().expect("lock").remove(&job);
            return Err(e);
        }
        let (r, bucket, target) = (self.clone(), bucket.to_owned(), target.to_owned());
        tokio::spawn(async move {
            match count_versions(&r, &bucket).await {
                Ok(total) => {
                    r.resyncs.lock().expect("lock").insert(job.clone(), total);
                }
                Err(e) => tracing::warn!(%bucket, error = %e, "cannot count versions"),
            }
            if let Err(e) = r.run_resync(&bucket, &target, &config).await {
                tracing::warn!(%bucket, target_arn = %target, error = %e, "resync stopped");
            }
            r.resyncs.lock().expect("lock").remove(&job);
        });
        Ok(())
    }

    async fn run_resync(
        self: &Arc<Self>,
        bucket: &str,
        target: &str,
        config: &crate::Configuration,
    ) -> Result<(), String> {
        let (cursor, mut done, mut queued, _) = self
            .queue
            .resync_state(bucket, target)?
            .ok_or("the resync has no state")?;
        let client = self
            .targets
            .get(target)
            .ok_or_else(|| format!("no replication target {target}"))?
            .client;
        let mut walk = Walk::new(bucket, &cursor);
        while let Some((versions, complete)) = walk.next(self).await? {
            for (key, v) in &versions {
                done += 1;
                if rule_for(config, key, v, target).is_none() {
                    continue;
                }
                let remote = v
                    .replication
                    .targets
                    .get(target)
                    .and_then(|t| t.remote_version_id.clone())
                    .unwrap_or_else(|| version_id_text(v.version_id));
                let lacks = match &v.object {
                    Some(obj) => match client.head_version(key, &remote).await {
                        Ok(Some((etag, size))) => etag != obj.etag || size != obj.size,
                        Ok(None) => true,
                        Err(e) => return Err(format!("the target does not answer: {e}")),
                    },
                    None => v
                        .replication
                        .targets
                        .get(target)
                        .is_none_or(|t| t.status != ReplicationState::Completed),
                };
                if lacks && !self.queue.contains(bucket, key, v.version_id, target)? {
                    queue_and_mark(self, entry(bucket, key, v, target, op_of(v))).await?;
                    queued += 1;
                }
            }
            self.queue
                .set_resync(bucket, target, &complete, done, queued, false)
                .await?;
        }
        let state = self.queue.resync_state(bucket, target)?;
        let cursor = state.map(|s| s.0).unwrap_or_default();
        self.queue
            .set_resync(bucket, target, &cursor, done, queued, true)
            .await
    }

    /// Where the resync of `bucket` to `target` stands.
    pub async fn resync_status(&self, bucket: &str, target: &str) -> Result<ResyncStatus, String> {
        let total = self
            .resyncs
            .lock()
            .expect("lock")
            .get(&(bucket.to_owned(), target.to_owned()))
            .copied();
        let (cursor, done, queued, finished) = self
            .queue
            .resync_state(bucket, target)?
            .ok_or_else(|| format!("no resync of {bucket} to {target} has run"))?;
        Ok(ResyncStatus {
            bucket: bucket.to_owned(),
            target: target.to_owned(),
            done,
            queued,
            total: total.unwrap_or(done).max(done),
            running: total.is_some(),
            cursor,
            finished,
        })
    }

    /// Versions of `bucket` whose copy on a target of its rules is missing or differs (at
    /// most `limit` listed), with the counts of versions compared and differing.
    pub async fn diff(&self, bucket: &str, limit: usize) -> Result<Diff, String> {
        let config = self
            .config(bucket)
            .ok_or_else(|| format!("bucket {bucket} has no replication configuration"))?;
        let mut diff = Diff::default();
        let mut walk = Walk::new(bucket, "");
        while let Some((versions, _)) = walk.next(self).await? {
            for (key, v) in &versions {
                let Some(obj) = &v.object else { continue };
                for arn in config.destinations() {
                    if rule_for(&config, key, v, arn).is_none() {
                        continue;
                    }
                    let Some(target) = self.targets.get(arn) else {
                        continue;
                    };
                    let remote = v
                        .replication
                        .targets
                        .get(arn)
                        .and_then(|t| t.remote_version_id.clone())
                        .unwrap_or_else(|| version_id_text(v.version_id));
                    diff.compared += 1;
                    let problem = match target.client.head_version(key, &remote).await {
                        Ok(Some((etag, size))) if etag == obj.etag && size == obj.size => None,
                        Ok(Some((etag, size))) => {
                            Some(format!("differs: ETag {etag}, {size} bytes on the target"))
                        }
                        Ok(None) => Some("missing on the target".to_owned()),
                        Err(e) => Some(format!("target error: {e}")),
                    };
                    if let Some(problem) = problem {
                        diff.differing += 1;
                        if diff.versions.len() < limit {
                            diff.versions.push(DiffEntry {
                                key: key.clone(),
                                version_id: version_id_text(v.version_id),
                                target: arn.to_owned(),
                                status: v.replication.overall().unwrap_or("").to_owned(),
                                problem,
                            });
                        }
                    }
                }
            }
        }
        Ok(diff)
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    pub compared: u64,
    pub differing: u64,
    pub versions: Vec<DiffEntry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DiffEntry {
    pub key: String,
    pub version_id: String,
    pub target: String,
    pub status: String,
    pub problem: String,
}
