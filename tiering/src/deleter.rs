//! The deleter: drains the remote-delete journal. For each due entry it first asks the store,
//! under the key's lock, whether a version still references the remote object (a change that
//! released it may have failed, or a transition's commit may have landed); only if none does
//! is the object deleted on its tier. A failure waits out an exponential backoff with jitter
//! and is retried, forever: the journal is never dropped, and a tier that is down delays the
//! remote delete, never the client's delete.

use crate::journal::{Entry, RELEASED};
use crate::remote::TierError;
use crate::Tiering;
use futures::StreamExt;
use std::sync::{Arc, Weak};
use std::time::Duration;
use storage::meta::now_ns;
use storage::{RemoteObject, RemoteReleases};

/// The store's release hook: journals released remote objects.
pub(crate) struct Releases(pub(crate) Weak<Tiering>);

impl RemoteReleases for Releases {
    fn release(&self, objects: &[RemoteObject]) -> Result<(), String> {
        let tiering = self.0.upgrade().ok_or("the tiering service has stopped")?;
        let entries: Vec<_> = objects
            .iter()
            .map(|o| {
                (
                    o.tier.clone(),
                    o.remote_key.clone(),
                    o.bucket.clone(),
                    o.key.clone(),
                )
            })
            .collect();
        tiering.journal.add(&entries, RELEASED, now_ns())?;
        tiering.wake_deleter.notify_one();
        Ok(())
    }
}

/// The longest one entry may take (a tier that accepts the connection but never answers).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Entries settled at once.
const DELETES_IN_FLIGHT: usize = 8;

pub(crate) fn start(tiering: &Arc<Tiering>) {
    let tiering = tiering.clone();
    tokio::spawn(async move {
        loop {
            let settled = tiering.drain_due().await;
            if settled == 0 {
                tokio::select! {
                    _ = tiering.wake_deleter.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    });
}

impl Tiering {
    /// Settles the entries due now; returns how many were tried.
    pub async fn drain_due(&self) -> usize {
        let due = match self.journal.due(now_ns(), 256) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "tiering journal unreadable");
                return 0;
            }
        };
        let due: Vec<Entry> = {
            let uploading = self.uploading.lock().expect("lock");
            due.into_iter()
                .filter(|e| !uploading.contains(&e.id))
                .collect()
        };
        let n = due.len();
        futures::stream::iter(due)
            .for_each_concurrent(DELETES_IN_FLIGHT, |e| self.settle(e))
            .await;
        n
    }

    async fn settle(&self, e: Entry) {
        let set = self.store.set_for(&e.bucket, &e.key);
        let outcome = tokio::time::timeout(SETTLE_TIMEOUT, self.try_settle(set, &e))
            .await
            .unwrap_or_else(|_| Err(format!("tier {}: no answer in {SETTLE_TIMEOUT:?}", e.tier)));
        self.settled(e, outcome);
    }

    /// `Ok(true)`: deleted remotely; `Ok(false)`: still referenced, nothing to delete.
    async fn try_settle(&self, set: &storage::ErasureSet, e: &Entry) -> Result<bool, String> {
        match set
            .references_remote(&e.bucket, &e.key, &e.tier, &e.remote_key)
            .await
        {
            Ok(true) => Ok(false),
            Ok(false) => match self.registry.get(&e.tier) {
                None => Err(format!("tier {} is not configured", e.tier)),
                Some(t) => match t.remote.delete(&e.remote_key).await {
                    Ok(()) => {
                        self.reached(&e.tier, true);
                        Ok(true)
                    }
                    Err(err) => {
                        self.reached(&e.tier, !matches!(err, TierError::Unavailable(_)));
                        Err(format!("tier {}: {err}", e.tier))
                    }
                },
            },
            Err(err) => Err(format!("the version's record is unreadable: {err}")),
        }
    }

    fn settled(&self, e: Entry, outcome: Result<bool, String>) {
        match outcome {
            Ok(deleted) => {
                if deleted {
                    self.count(&e.tier, |c| c.remote_deletes += 1);
                    tracing::debug!(tier = %e.tier, remote_key = %e.remote_key, "remote object deleted");
                }
                if let Err(err) = self.journal.remove(e.id) {
                    tracing::warn!(error = %err, "tiering journal");
                }
            }
            Err(error) => {
                self.count(&e.tier, |c| c.remote_delete_failures += 1);
                let delay = crate::backoff(e.attempts);
                tracing::warn!(tier = %e.tier, remote_key = %e.remote_key, %error, retry_in = ?delay, "remote delete failed");
                let next = now_ns() + delay.as_nanos() as i64;
                if let Err(err) = self.journal.failed(e.id, &error, next) {
                    tracing::warn!(error = %err, "tiering journal");
                }
            }
        }
    }
}
