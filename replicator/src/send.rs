//! The workers: a dispatcher takes due entries from the queue (first of their key and
//! target, paused targets left out) and sends up to [`WORKERS`](crate::WORKERS) at once; each
//! send checks the version as it is now, streams it to the target, then retires the entry and
//! records COMPLETED. A failure is retried with exponential backoff with jitter (`backon`,
//! 1 s to 5 min); after the budget the version shows FAILED and the entry is still retried,
//! and at once when the prober sees its target come back.

use crate::client::{streamed, ObjectMeta, SendError};
use crate::queue::Queued;
use crate::targets::Target;
use crate::{Replicator, RETRY_BUDGET, WORKERS};
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::meta::{
    now_ns, version_id_text, ObjectVersion, ReplicationState, TargetReplication, VersionRecord,
};
use storage::versions::Which;
use storage::{ReplicaOf, ReplicationOp, StorageError};

/// The shortest time between two passes of the dispatcher.
const PASS_GAP: Duration = Duration::from_millis(10);

/// How often the prober calls targets that have a backlog and did not answer.
const PROBE_EVERY: Duration = Duration::from_secs(3);

/// What a send found.
enum Sent {
    /// Done; the id the target gave the copy, if it is not ours.
    Done(Option<String>),
    /// The version is not (or no longer) what the entry names: nothing to send.
    Gone,
}

/// Runs the dispatcher for ever.
pub(crate) async fn dispatch(r: Arc<Replicator>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(WORKERS));
    loop {
        // Targets whose entries go out: registered and not paused.
        let active: Vec<String> = r
            .targets
            .list()
            .into_iter()
            .filter(|t| !t.paused)
            .map(|t| t.arn)
            .collect();
        let free = slots.available_permits();
        let batch = if free == 0 {
            Vec::new()
        } else {
            let sending = r.sending.lock().expect("lock").clone();
            r.queue
                .due(now_ns(), free, &active, |id| sending.contains(&id))
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot read the replication queue");
                    Vec::new()
                })
        };
        for entry in batch {
            let permit = slots.clone().acquire_owned().await.expect("never closed");
            r.sending.lock().expect("lock").insert(entry.id);
            let r = r.clone();
            tokio::spawn(async move {
                let id = entry.id;
                send_entry(&r, entry).await;
                r.sending.lock().expect("lock").remove(&id);
                drop(permit);
                r.wake.notify_one();
            });
        }
        // Passes come at most every PASS_GAP: a wake per write would run the queue's queries
        // per write. Then sleep until woken (new entries, a send done) or the next entry falls
        // due; due entries that wait behind an earlier one of their key are looked at again
        // after a while.
        tokio::time::sleep(PASS_GAP).await;
        let next = r.queue.next_due(&active).ok().flatten();
        let wait = match next {
            Some(due) if due > now_ns() => Duration::from_nanos((due - now_ns()) as u64),
            Some(_) if slots.available_permits() > 0 => Duration::from_millis(200),
            _ => Duration::from_secs(1),
        };
        let _ = tokio::time::timeout(wait.min(Duration::from_secs(1)), r.wake.notified()).await;
    }
}

/// Calls targets that have entries waiting and were last seen offline, so they resume as
/// soon as they answer again.
pub(crate) async fn probe(r: Arc<Replicator>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let backlog = r.queue.backlog().unwrap_or_default();
        let counters = r.counters();
        for (arn, b) in backlog {
            let offline = counters.get(&arn).is_some_and(|c| c.online == Some(false));
            let Some(target) = r.targets.get(&arn).filter(|_| offline && b.count > 0) else {
                continue;
            };
            // Coming back makes the target's entries due at once (`reached`).
            r.reached(&arn, target.client.check().await.is_ok()).await;
        }
    }
}

/// How long one send may take before it counts as failed: a target that accepts a
/// connection and then stops reading must not hold a worker for ever. Two minutes plus the
/// object's bytes at 1 MiB/s (or the target's bandwidth limit, if lower).
fn send_deadline(entry: &Queued, target: &Target) -> Duration {
    let floor = target.config.bandwidth.unwrap_or(1 << 20).min(1 << 20);
    Duration::from_secs(120 + entry.size / floor)
}

async fn send_entry(r: &Arc<Replicator>, entry: Queued) {
    let Some(target) = r.targets.get(&entry.target) else {
        postpone(
            r,
            &entry,
            "the replication target is not loaded (see the node's log)",
        )
        .await;
        return;
    };
    let sent = tokio::time::timeout(send_deadline(&entry, &target), send(r, &target, &entry))
        .await
        .unwrap_or_else(|_| Err(SendError("the target did not finish in time".into())));
    match sent {
        Ok(Sent::Gone) => {
            r.reached(&entry.target, true).await;
            retire(r, &entry).await;
        }
        Ok(Sent::Done(remote_version_id)) => {
            r.reached(&entry.target, true).await;
            r.count(&entry.target, |c| {
                if entry.op == ReplicationOp::Object {
                    c.replicated_objects += 1;
                    c.replicated_bytes += entry.size;
                    let sec = now_ns() / 1_000_000_000;
                    c.recent.push_back((sec, entry.size));
                    while c.recent.front().is_some_and(|(t, _)| sec - t >= 60) {
                        c.recent.pop_front();
                    }
                }
            });
            if entry.op == ReplicationOp::VersionDelete {
                retire(r, &entry).await;
                return;
            }
            // Retired and marked COMPLETED under the key's lock, so a change committing now
            // (which queues before it commits) cannot be marked done by this send. A change
            // merged meanwhile keeps the entry (and the version PENDING): the object is there,
            // so only its metadata is left to send, to the copy just written.
            let retired = set_status(
                r,
                &entry,
                ReplicationState::Completed,
                remote_version_id.clone(),
                retire(r, &entry),
            )
            .await;
            if retired == Some(false) {
                let _ = r.queue.delivered(entry.id, entry.mod_time_ns).await;
                if remote_version_id.is_some() {
                    set_status(
                        r,
                        &entry,
                        ReplicationState::Pending,
                        remote_version_id,
                        async { true },
                    )
                    .await;
                }
            }
        }
        Err(e) => {
            r.reached(&entry.target, false).await;
            r.count(&entry.target, |c| {
                c.failures += 1;
                c.last_error = Some(e.0.clone());
            });
            postpone(r, &entry, &e.0).await;
        }
    }
}

async fn postpone(r: &Arc<Replicator>, entry: &Queued, error: &str) {
    let attempts = entry.attempts + 1;
    let failed = attempts >= RETRY_BUDGET;
    let due = now_ns()
        + tiering::backoff_from(r.min_backoff, attempts.saturating_sub(1)).as_nanos() as i64;
    tracing::debug!(bucket = %entry.bucket, key = %entry.key, target_arn = %entry.target, %error, attempts, "replication failed");
    if let Err(e) = r
        .queue
        .postpone(entry.id, entry.seq, entry.attempts, due, failed, error)
        .await
    {
        tracing::error!(error = %e, "cannot reschedule a replication entry");
    }
    if failed && !entry.failed && entry.op != ReplicationOp::VersionDelete {
        tracing::warn!(bucket = %entry.bucket, key = %entry.key, target_arn = %entry.target, %error, "replication FAILED; still retried");
        set_status(r, entry, ReplicationState::Failed, None, async { true }).await;
    }
}

/// Retires a sent entry; `false` when a change merged into it meanwhile (it stays).
async fn retire(r: &Replicator, entry: &Queued) -> bool {
    r.queue
        .finish(entry.id, entry.seq)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot retire a replication entry");
            false
        })
}

/// Records the entry's version's status towards its target once `first` (awaited under the
/// key's lock) says so; returns `first`'s answer, `None` when the version is gone or the
/// status could not be written (logged).
async fn set_status(
    r: &Replicator,
    entry: &Queued,
    status: ReplicationState,
    remote_version_id: Option<String>,
    first: impl std::future::Future<Output = bool> + Send,
) -> Option<bool> {
    let result = r
        .store
        .set_for(&entry.bucket, &entry.key)
        .set_replication_status(
            &entry.bucket,
            &entry.key,
            entry.version_id,
            entry.mod_time_ns,
            &entry.target,
            TargetReplication {
                status,
                remote_version_id: remote_version_id.or(entry.remote_version_id.clone()),
            },
            first,
        )
        .await;
    match result {
        Ok(said) => Some(said),
        Err(StorageError::PreconditionFailed) => None,
        Err(e) => {
            tracing::warn!(bucket = %entry.bucket, key = %entry.key, error = %e, "could not record the replication status");
            None
        }
    }
}

/// The version the entry names, as it is now (same id and modification time).
async fn current(r: &Replicator, entry: &Queued) -> Result<Option<VersionRecord>, SendError> {
    let set = r.store.set_for(&entry.bucket, &entry.key);
    let v = set
        .version_record(&entry.bucket, &entry.key, Which::Version(entry.version_id))
        .await
        .map_err(|e| SendError(format!("cannot read the source version: {e}")))?;
    Ok(v.filter(|v| v.mod_time_ns == entry.mod_time_ns))
}

async fn send(r: &Arc<Replicator>, target: &Target, entry: &Queued) -> Result<Sent, SendError> {
    let of = ReplicaOf {
        version_id: entry.version_id,
        mod_time_ns: entry.mod_time_ns,
    };
    let remote_id = |v: Option<&VersionRecord>| {
        v.and_then(|v| v.replication.targets.get(&entry.target))
            .and_then(|t| t.remote_version_id.clone())
            .or(entry.remote_version_id.clone())
            .unwrap_or_else(|| version_id_text(entry.version_id))
    };
    match entry.op {
        ReplicationOp::Object => {
            // One read: the object's view is what the send streams from.
            let set = r.store.set_for(&entry.bucket, &entry.key);
            match set
                .locked_view(&entry.bucket, &entry.key, Which::Version(entry.version_id))
                .await
            {
                Ok(view) if view.version.mod_time_ns == entry.mod_time_ns => {
                    send_object(r, target, entry, of, view).await
                }
                Ok(_)
                | Err(
                    StorageError::NoSuchVersion
                    | StorageError::NoSuchKey
                    | StorageError::DeleteMarker { .. },
                ) => Ok(Sent::Gone),
                Err(e) => Err(SendError(format!("cannot read the source version: {e}"))),
            }
        }
        ReplicationOp::VersionDelete => {
            // Still there: the delete that queued this did not commit.
            if current(r, entry).await?.is_some() {
                return Ok(Sent::Gone);
            }
            target
                .client
                .delete_version(&entry.key, &remote_id(None), of)
                .await?;
            Ok(Sent::Done(None))
        }
        ReplicationOp::DeleteMarker => match current(r, entry).await? {
            Some(v) if v.object.is_none() => {
                let id = target.client.delete_marker(&entry.key, of).await?;
                Ok(Sent::Done(foreign(id, entry)))
            }
            _ => Ok(Sent::Gone),
        },
        ReplicationOp::Metadata => match current(r, entry).await? {
            Some(v) => match &v.object {
                Some(obj) => {
                    let meta = object_meta(r, entry, obj);
                    target
                        .client
                        .put_metadata(&entry.key, &remote_id(Some(&v)), &meta)
                        .await?;
                    Ok(Sent::Done(None))
                }
                None => Ok(Sent::Gone),
            },
            None => Ok(Sent::Gone),
        },
    }
}

/// The target's id for its copy when it is not ours (a plain S3 target).
fn foreign(id: Option<String>, entry: &Queued) -> Option<String> {
    id.filter(|id| *id != version_id_text(entry.version_id))
}

fn object_meta(r: &Replicator, entry: &Queued, obj: &ObjectVersion) -> ObjectMeta {
    let storage_class = r.config(&entry.bucket).and_then(|c| {
        c.deciding_rules(&entry.key, &obj.tags)
            .into_iter()
            .find(|rule| rule.destination == entry.target)
            .and_then(|rule| rule.storage_class.clone())
    });
    ObjectMeta {
        headers: obj.headers.clone(),
        user_metadata: obj.user_metadata.clone(),
        tags: obj.tags.clone(),
        retention: obj.retention.as_ref().map(|ret| {
            (
                ret.mode.clone(),
                lifecycle::report::rfc3339(ret.retain_until_ns),
            )
        }),
        legal_hold: obj.legal_hold_set.then_some(obj.legal_hold),
        storage_class,
    }
}

/// The base64 Content-MD5 of a part or single-part object from its hex ETag.
fn content_md5(etag: &str) -> Option<String> {
    let md5 = hex::decode(etag).ok().filter(|b| b.len() == 16)?;
    Some(base64::engine::general_purpose::STANDARD.encode(md5))
}

async fn send_object(
    r: &Arc<Replicator>,
    target: &Target,
    entry: &Queued,
    of: ReplicaOf,
    view: storage::ObjectView,
) -> Result<Sent, SendError> {
    let obj = view.object().clone();
    let meta = object_meta(r, entry, &obj);
    if !obj.from_multipart() {
        let body = r.body(target, entry, view, 0, obj.size).await?;
        let id = target
            .client
            .put_object(
                &entry.key,
                of,
                &meta,
                obj.size,
                content_md5(&obj.etag),
                body,
            )
            .await?;
        return Ok(Sent::Done(foreign(id, entry)));
    }
    // Part by part with the source's sizes, so the replica's ETag is the source's.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let producer = {
        let (r, target, entry) = (r.clone(), target.clone(), entry.clone());
        let parts = obj.parts.clone();
        async move {
            let mut start = 0;
            for part in parts {
                let end = start + part.size;
                let body = r.body(&target, &entry, view.clone(), start, end).await;
                let item = body.map(|b| (part.number, part.size, content_md5(&part.etag), b));
                if tx.send(item).await.is_err() {
                    return;
                }
                start = end;
            }
        }
    };
    let (_, id) = tokio::join!(
        producer,
        target.client.put_multipart(&entry.key, of, &meta, rx)
    );
    Ok(Sent::Done(foreign(id?, entry)))
}

impl Replicator {
    /// Bytes `start..end` of a version (from its tier if it was transitioned) as a streamed
    /// request body, paced by the target's bandwidth limit.
    async fn body(
        self: &Arc<Self>,
        target: &Target,
        entry: &Queued,
        view: storage::ObjectView,
        start: u64,
        end: u64,
    ) -> Result<aws_sdk_s3::primitives::ByteStream, SendError> {
        let obj = view.object();
        let mut source: futures::stream::BoxStream<'static, Result<Bytes, String>> =
            match obj.transition.as_ref().filter(|_| obj.reads_remote()) {
                Some(t) => self
                    .tiering
                    .read(&t.tier, &t.remote_key, start, end)
                    .await
                    .map_err(|e| SendError(format!("cannot read the source from its tier: {e}")))?
                    .map(|c| c.map_err(|e| e.to_string()))
                    .boxed(),
                None => {
                    let set = self.store.set_for(&entry.bucket, &entry.key).clone();
                    let rx = set.read_range(&entry.bucket, &entry.key, view, start, end);
                    futures::stream::unfold(rx, |mut rx| async move {
                        rx.recv().await.map(|c| (c.map_err(|e| e.to_string()), rx))
                    })
                    .boxed()
                }
            };
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let bandwidth = target.config.bandwidth;
        let (r, arn) = (self.clone(), target.config.arn.clone());
        tokio::spawn(async move {
            while let Some(chunk) = source.next().await {
                if let (Some(bw), Ok(c)) = (bandwidth, &chunk) {
                    let wait = r.pace(&arn, bw, c.len());
                    tokio::time::sleep(wait).await;
                }
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        Ok(streamed(rx))
    }

    /// How long to wait before sending `len` bytes to `arn` at `bandwidth` bytes/s: until the
    /// target's budget has room for all of them (a chunk waits its own time at that rate, so
    /// an object sent as one chunk is paced too).
    fn pace(&self, arn: &str, bandwidth: u64, len: usize) -> Duration {
        let now = Instant::now();
        let mut pacing = self.pacing.lock().expect("lock");
        let next = pacing.entry(arn.to_owned()).or_insert(now);
        *next = (*next).max(now) + Duration::from_secs_f64(len as f64 / bandwidth as f64);
        *next - now
    }
}
