//! Transitions: a version judged due by lifecycle is streamed from its shards to its tier
//! under a key of its own, verified (size, and the MD5 where the tier reports one), recorded in
//! the version's metadata by a quorum commit, and only then are its local shards freed.
//!
//! Crash safety: before the upload starts, the remote key is in the journal as a transition
//! in flight. Whatever happens next, the version is wholly local (the commit did not land:
//! the deleter removes the orphaned upload) or wholly tiered (it landed: the entry is dropped,
//! by us or by the deleter, which finds the version referencing it).

use crate::journal::TRANSITION;
use crate::remote::{ByteStream, TierError};
use crate::Tiering;
use futures::StreamExt;
use lifecycle::scanner::{TransitionJob, Transitions};
use md5::{Digest, Md5};
use std::sync::{Arc, Mutex};
use storage::meta::{now_ns, Transition};
use storage::{StorageError, Which};

/// The last failure of a transition that waits for its next attempt.
#[derive(Clone, Debug)]
pub struct Failed {
    pub attempts: u32,
    pub error: String,
    pub next_attempt_ns: i64,
}

impl Transitions for Tiering {
    fn submit(&self, job: TransitionJob) -> Result<(), String> {
        match self.registry.get(&job.tier) {
            None => return Err(format!("tier {} is not configured", job.tier)),
            Some(t) if t.config.draining => {
                return Err(format!(
                    "tier {} is drained: it takes no new versions (remove the rule, or add the tier anew)",
                    job.tier
                ))
            }
            Some(_) => {}
        }
        let mut jobs = self.jobs.lock().expect("lock");
        match jobs.get(&job) {
            Some(Some(f)) => {
                let next = lifecycle::report::rfc3339(f.next_attempt_ns);
                return Err(format!(
                    "transition to {} failed {} time(s), last: {}; next attempt at {next}",
                    job.tier, f.attempts, f.error
                ));
            }
            Some(None) => return Ok(()),
            None => {}
        }
        // A full queue (or as many jobs waiting out failures) takes the job at the scanner's
        // next pass: memory stays bounded however many versions are due.
        if jobs.len() < crate::QUEUE_DEPTH && self.queue.try_send(job.clone()).is_ok() {
            jobs.insert(job, None);
        }
        Ok(())
    }
}

pub(crate) fn start_workers(tiering: &Arc<Tiering>) {
    let Some(rx) = tiering.queue_rx.lock().expect("lock").take() else {
        return;
    };
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..crate::TRANSITION_WORKERS {
        let (tiering, rx) = (tiering.clone(), rx.clone());
        tokio::spawn(async move {
            loop {
                let Some(job) = rx.lock().await.recv().await else {
                    return;
                };
                tiering.work(job).await;
            }
        });
    }
}

impl Tiering {
    /// Runs one transition; a failure goes back to the queue after its backoff.
    async fn work(self: &Arc<Self>, job: TransitionJob) {
        match self.transition(&job).await {
            Ok(_) => {
                self.jobs.lock().expect("lock").remove(&job);
            }
            Err(error) => {
                self.count(&job.tier, |c| c.transition_failures += 1);
                let attempts = {
                    let jobs = self.jobs.lock().expect("lock");
                    jobs.get(&job).cloned().flatten().map_or(0, |f| f.attempts)
                };
                let delay = crate::backoff(attempts);
                tracing::warn!(bucket = %job.bucket, key = %job.key, tier = %job.tier, %error, retry_in = ?delay, "transition failed");
                self.jobs.lock().expect("lock").insert(
                    job.clone(),
                    Some(Failed {
                        attempts: attempts + 1,
                        error,
                        next_attempt_ns: now_ns() + delay.as_nanos() as i64,
                    }),
                );
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if me.queue.send(job.clone()).await.is_err() {
                        me.jobs.lock().expect("lock").remove(&job);
                    }
                });
            }
        }
    }

    /// Moves one version to its tier. `Ok(false)` when there is nothing to do any more (the
    /// version is gone, changed, or tiered already).
    pub async fn transition(&self, job: &TransitionJob) -> Result<bool, String> {
        let tier = self
            .registry
            .get(&job.tier)
            .ok_or_else(|| format!("tier {} is not configured", job.tier))?;
        let set = self.store.set_for(&job.bucket, &job.key).clone();
        let view = match set
            .view(&job.bucket, &job.key, Which::Version(job.version_id))
            .await
        {
            Ok(v) => v,
            Err(
                StorageError::NoSuchKey
                | StorageError::NoSuchVersion
                | StorageError::DeleteMarker { .. },
            ) => return Ok(false),
            Err(e) => return Err(e.to_string()),
        };
        if view.version.mod_time_ns != job.mod_time_ns || view.object().transition.is_some() {
            return Ok(false);
        }
        let size = view.object().size;
        let remote_key = format!("{}/{}", self.store.deployment_id, uuid::Uuid::now_v7());
        // Added and marked as uploading in one step: the deleter, which filters due entries
        // under the same lock, never sees the entry unmarked.
        let id = {
            let mut uploading = self.uploading.lock().expect("lock");
            let id = self.journal.add(
                &[(
                    job.tier.clone(),
                    remote_key.clone(),
                    job.bucket.clone(),
                    job.key.clone(),
                )],
                TRANSITION,
                now_ns(),
            )?[0];
            uploading.insert(id);
            id
        };

        let md5 = Arc::new(Mutex::new(Md5::new()));
        let hashing = md5.clone();
        let body: ByteStream = match set.read_inline(&job.bucket, &job.key, &view, 0, size).await {
            Some(bytes) => futures::stream::once(async move { bytes }).boxed(),
            None => {
                let mut rx = set.read_range(&job.bucket, &job.key, view, 0, size);
                futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
            }
        }
        .map(move |chunk| {
            let chunk = chunk.map_err(|e| TierError::Source(e.to_string()))?;
            hashing.lock().expect("lock").update(&chunk);
            Ok(chunk)
        })
        .boxed();
        let uploaded = async {
            let written = tier.remote.put(&remote_key, body, size).await?;
            let ours: [u8; 16] = std::mem::take(&mut *md5.lock().expect("lock"))
                .finalize()
                .into();
            if let Some(theirs) = written.md5.filter(|m| *m != ours) {
                return Err(TierError::Mismatch(format!(
                    "the tier reports MD5 {} for bytes whose MD5 is {}",
                    hex::encode(theirs),
                    hex::encode(ours)
                )));
            }
            let head = tier.remote.head(&remote_key).await?;
            if head.size != size {
                return Err(TierError::Mismatch(format!(
                    "the tier holds {} bytes of {size}",
                    head.size
                )));
            }
            Ok(written)
        }
        .await;
        let result = match uploaded {
            Err(e) => {
                self.reached(&job.tier, !matches!(e, TierError::Unavailable(_)));
                Err(format!("tier {}: {e}", job.tier))
            }
            Ok(written) => {
                self.reached(&job.tier, true);
                let record = Transition {
                    tier: job.tier.clone(),
                    remote_key: remote_key.clone(),
                    remote_etag: written.etag,
                    transitioned_ns: now_ns(),
                };
                match set
                    .commit_transition(
                        &job.bucket,
                        &job.key,
                        job.version_id,
                        job.mod_time_ns,
                        record,
                    )
                    .await
                {
                    Ok(()) => Ok(true),
                    Err(StorageError::PreconditionFailed) => Ok(false),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match result {
            Ok(true) => {
                // The version references the object now; a failure here only leaves the
                // entry for the deleter to drop.
                if let Err(e) = self.journal.remove(id) {
                    tracing::warn!(error = %e, "tiering journal");
                }
                self.count(&job.tier, |c| {
                    c.transitioned_objects += 1;
                    c.transitioned_bytes += size;
                });
                tracing::debug!(bucket = %job.bucket, key = %job.key, tier = %job.tier, %remote_key, "transitioned");
            }
            _ => {
                // A request the tier received but had not answered (a completion that timed
                // out) may still create the object: its delete waits a little.
                let later = now_ns() + crate::ORPHAN_GRACE.as_nanos() as i64;
                if let Err(e) = self.journal.postpone(id, later) {
                    tracing::warn!(error = %e, "tiering journal");
                }
            }
        }
        self.uploading.lock().expect("lock").remove(&id);
        result
    }
}
