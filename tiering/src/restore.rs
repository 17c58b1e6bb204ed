//! Bringing bytes back from a tier: RestoreObject's temporary copies (made in the background,
//! expired by the expirer when their days are over, the version staying on its tier
//! throughout) and `tier drain`, which recalls every version of a tier to the hot tier for
//! good so the tier can be removed.

use crate::journal::RestoreEntry;
use crate::Tiering;
use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use storage::meta::{now_ns, version_id_text, ObjectVersion, VersionRecord};
use storage::{ByteStream, StorageError, VersionEntry, Which};
use uuid::Uuid;

/// What a RestoreObject request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restoring {
    /// A new copy is being made (S3: 202 Accepted).
    Started,
    /// A copy is being made already (S3: 409 RestoreAlreadyInProgress).
    InProgress,
    /// A copy is there; its expiry moved (S3: 200 OK).
    Extended,
}

/// Progress of `tier drain`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DrainStatus {
    pub tier: String,
    /// Versions found on the tier when the drain started.
    pub total: u64,
    pub recalled: u64,
    pub failed: u64,
    pub done: bool,
    /// The last errors, newest last.
    pub errors: Vec<String>,
}

/// `Ok` when the version a restore's bookkeeping is about is gone or has changed since:
/// nothing is left to do for it.
fn version_moved_on(e: StorageError) -> Result<(), StorageError> {
    match e {
        StorageError::PreconditionFailed
        | StorageError::NoSuchKey
        | StorageError::NoSuchBucket
        | StorageError::NoSuchVersion => Ok(()),
        e => Err(e),
    }
}

fn version_of(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text).ok()
}

impl Tiering {
    /// Starts a restore of a transitioned version for `days` days. `InvalidObjectState` for a
    /// version that is not on a tier.
    pub async fn restore(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        which: Which,
        days: u32,
    ) -> Result<Restoring, StorageError> {
        let set = self.store.set_for(bucket, key);
        let view = set.view(bucket, key, which).await?;
        if view.object().transition.is_none() {
            return Err(StorageError::InvalidObjectState);
        }
        let (id, mod_time_ns) = (view.version.version_id, view.version.mod_time_ns);
        // A restore the tier cannot serve is refused now (503), not accepted and lost.
        if let Some(t) = view
            .object()
            .transition
            .as_ref()
            .filter(|_| view.object().reads_remote())
        {
            let tier = self.registry.get(&t.tier).ok_or_else(|| {
                StorageError::Unavailable(format!("tier {} is not configured", t.tier))
            })?;
            if let Err(e) = tier.remote.head(&t.remote_key).await {
                tracing::warn!(tier = %t.tier, error = %e, "restore refused: the tier does not answer");
                return Err(StorageError::Unavailable(format!(
                    "The object is on tier {}, which cannot be read now; please try again later",
                    t.tier
                )));
            }
        }
        let expiry_ns = self.clock.days_after(now_ns(), days);
        let journal_error = |e: String| StorageError::Io(std::io::Error::other(e));
        let mut entry = RestoreEntry {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: version_id_text(id),
            mod_time_ns,
            days,
            expiry_ns: 0,
        };
        // Journaled before the version says "ongoing": a stop in between leaves a journal
        // entry whose restore is made again (or found not wanted) at start, never a version
        // stuck "ongoing" that nothing will finish.
        self.journal.save_restore(&entry).map_err(journal_error)?;
        let before = match set
            .begin_restore(bucket, key, id, mod_time_ns, days, expiry_ns)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                let _ = self.journal.remove_restore(bucket, key, &entry.version, 0);
                return Err(e);
            }
        };
        match before {
            Some(r) if r.ongoing => Ok(Restoring::InProgress),
            Some(_) => {
                entry.expiry_ns = expiry_ns;
                self.journal.save_restore(&entry).map_err(journal_error)?;
                Ok(Restoring::Extended)
            }
            None => {
                let me = self.clone();
                tokio::spawn(async move { me.make_restored_copy(entry).await });
                Ok(Restoring::Started)
            }
        }
    }

    /// Stages the version's bytes from its tier, part by part, into local shards.
    async fn stage_from_tier(
        &self,
        bucket: &str,
        key: &str,
        obj: &ObjectVersion,
    ) -> Result<storage::Staged, String> {
        let t = obj
            .transition
            .as_ref()
            .ok_or("the version is not on a tier")?;
        let tier = self
            .registry
            .get(&t.tier)
            .ok_or_else(|| format!("tier {} is not configured", t.tier))?;
        let remote_key = t.remote_key.clone();
        let set = self.store.set_for(bucket, key);
        set.stage_version(bucket, key, &obj.parts, |start, end| {
            let (remote, remote_key, name) =
                (tier.remote.clone(), remote_key.clone(), t.tier.clone());
            async move {
                if start == end {
                    return Ok(Box::pin(futures::stream::empty()) as ByteStream);
                }
                let stream = remote
                    .get_range(&remote_key, start, end)
                    .await
                    .map_err(|e| StorageError::Body(format!("tier {name}: {e}")))?;
                Ok(stream
                    .map(|c| c.map_err(|e| StorageError::Body(e.to_string())))
                    .boxed())
            }
        })
        .await
        .map_err(|e| e.to_string())
    }

    async fn make_restored_copy(&self, entry: RestoreEntry) {
        let (bucket, key) = (&entry.bucket, &entry.key);
        let id = version_of(&entry.version);
        let set = self.store.set_for(bucket, key);
        let result = async {
            let view = set
                .view(bucket, key, Which::Version(id))
                .await
                .map_err(|e| e.to_string())?;
            if view.version.mod_time_ns != entry.mod_time_ns {
                return Err("the version changed".to_string());
            }
            let obj = view.into_object();
            let staged = self.stage_from_tier(bucket, key, &obj).await?;
            let expiry_ns = self.clock.days_after(now_ns(), entry.days);
            set.commit_restore(bucket, key, id, entry.mod_time_ns, staged, expiry_ns)
                .await
                .map_err(|e| e.to_string())?;
            Ok((obj, expiry_ns))
        }
        .await;
        match result {
            Ok((obj, expiry_ns)) => {
                let tier = obj.transition.map(|t| t.tier).unwrap_or_default();
                self.count(&tier, |c| {
                    c.restored_objects += 1;
                    c.restored_bytes += obj.size;
                });
                let done = RestoreEntry { expiry_ns, ..entry };
                if let Err(e) = self.journal.save_restore(&done) {
                    tracing::warn!(error = %e, "tiering journal");
                }
                self.wake_expirer.notify_one();
            }
            Err(error) => {
                tracing::warn!(%bucket, %key, %error, "restore failed; it can be asked for again");
                match set
                    .abandon_restore(bucket, key, id, entry.mod_time_ns)
                    .await
                    .or_else(version_moved_on)
                {
                    Ok(()) => {
                        if let Err(e) = self.journal.remove_restore(bucket, key, &entry.version, 0)
                        {
                            tracing::warn!(error = %e, "tiering journal");
                        }
                    }
                    // Still marked ongoing: the journal keeps it, and the next start tries again.
                    Err(e) => {
                        tracing::warn!(%bucket, %key, error = %e, "could not give up the restore")
                    }
                }
            }
        }
    }

    /// Drops the restored copies whose time is over.
    async fn expire_restores(&self) {
        let due = match self.journal.restores(false, now_ns()) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "tiering journal unreadable");
                return;
            }
        };
        for r in due {
            let set = self.store.set_for(&r.bucket, &r.key);
            let id = version_of(&r.version);
            match set
                .expire_restore(&r.bucket, &r.key, id, r.mod_time_ns, r.expiry_ns)
                .await
                .or_else(version_moved_on)
            {
                Ok(()) => {
                    if let Err(e) =
                        self.journal
                            .remove_restore(&r.bucket, &r.key, &r.version, r.expiry_ns)
                    {
                        tracing::warn!(error = %e, "tiering journal");
                    }
                }
                Err(e) => {
                    tracing::warn!(bucket = %r.bucket, key = %r.key, error = %e, "could not drop an expired restored copy; retrying")
                }
            }
        }
    }

    /// Starts bringing every version on `tier` back to the hot tier, in the background;
    /// `drain_status` follows it.
    pub async fn drain(self: &Arc<Self>, tier: &str) -> Result<(), String> {
        // First: no new transitions to the tier, so the rules still naming it cannot undo
        // the drain.
        self.registry.set_draining(tier).await?;
        {
            let mut drains = self.drains.lock().expect("lock");
            if drains.get(tier).is_some_and(|d| !d.done) {
                return Ok(());
            }
            drains.insert(
                tier.to_owned(),
                DrainStatus {
                    tier: tier.to_owned(),
                    ..Default::default()
                },
            );
        }
        let (me, tier) = (self.clone(), tier.to_owned());
        tokio::spawn(async move {
            let total = versions_on(&me, &tier, usize::MAX).await;
            let update = |f: &dyn Fn(&mut DrainStatus)| {
                if let Some(d) = me.drains.lock().expect("lock").get_mut(&tier) {
                    f(d)
                }
            };
            match total {
                Err(e) => update(&|d| {
                    d.errors.push(e.clone());
                    d.done = true;
                }),
                Ok(found) => {
                    update(&|d| d.total = found.len() as u64);
                    for (bucket, key, version) in found {
                        let result = me.recall(&bucket, &key, &version).await;
                        update(&|d| match &result {
                            Ok(()) => d.recalled += 1,
                            Err(e) => {
                                d.failed += 1;
                                if d.errors.len() >= 10 {
                                    d.errors.remove(0);
                                }
                                d.errors.push(format!("{bucket}/{key}: {e}"));
                            }
                        });
                        if result.is_ok() {
                            me.count(&tier, |c| {
                                c.recalled_objects += 1;
                                c.recalled_bytes += version.object.as_ref().map_or(0, |o| o.size);
                            });
                        }
                    }
                    update(&|d| d.done = true);
                }
            }
        });
        Ok(())
    }

    pub fn drain_status(&self, tier: &str) -> Option<DrainStatus> {
        self.drains.lock().expect("lock").get(tier).cloned()
    }

    /// Brings one tiered version back to the hot tier for good.
    async fn recall(&self, bucket: &str, key: &str, version: &VersionRecord) -> Result<(), String> {
        let set = self.store.set_for(bucket, key);
        let view = set
            .view(bucket, key, Which::Version(version.version_id))
            .await
            .map_err(|e| e.to_string())?;
        if view.version.mod_time_ns != version.mod_time_ns || view.object().transition.is_none() {
            return Ok(()); // changed or recalled since it was listed
        }
        let obj = view.into_object();
        let staged = self.stage_from_tier(bucket, key, &obj).await?;
        match set
            .commit_recall(bucket, key, version.version_id, version.mod_time_ns, staged)
            .await
        {
            Ok(()) | Err(StorageError::PreconditionFailed) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Up to `limit` versions that live on `tier`, as (bucket, key, version).
pub async fn versions_on(
    tiering: &Tiering,
    tier: &str,
    limit: usize,
) -> Result<Vec<(String, String, VersionRecord)>, String> {
    let store = tiering.store();
    let mut found = Vec::new();
    for bucket in store.list_buckets().await.map_err(|e| e.to_string())? {
        let mut marker: Option<(String, Option<Uuid>)> = None;
        loop {
            let (key_marker, version_marker) = match &marker {
                Some((k, v)) => (k.as_str(), Some(*v)),
                None => ("", None),
            };
            let page = store
                .list_versions(&bucket.name, "", "", key_marker, version_marker, 1000)
                .await
                .map_err(|e| e.to_string())?;
            for entry in &page.entries {
                if let VersionEntry::Version { key, version, .. } = entry {
                    let on_tier = version
                        .object
                        .as_ref()
                        .and_then(|o| o.transition.as_ref())
                        .is_some_and(|t| t.tier == tier);
                    if on_tier {
                        found.push((bucket.name.clone(), key.clone(), (**version).clone()));
                        if found.len() >= limit {
                            return Ok(found);
                        }
                    }
                }
            }
            marker = match page.entries.last() {
                Some(VersionEntry::Version { key, version, .. }) if page.truncated => {
                    Some((key.clone(), version.version_id))
                }
                _ => break,
            };
        }
    }
    Ok(found)
}

pub(crate) fn start_expirer(tiering: &Arc<Tiering>) {
    let tiering = tiering.clone();
    tokio::spawn(async move {
        // Restores cut off by a stop are made again.
        match tiering.journal.restores(true, 0) {
            Ok(ongoing) => {
                for entry in ongoing {
                    let me = tiering.clone();
                    tokio::spawn(async move { me.make_restored_copy(entry).await });
                }
            }
            Err(e) => tracing::warn!(error = %e, "tiering journal unreadable"),
        }
        loop {
            tiering.expire_restores().await;
            tokio::select! {
                _ = tiering.wake_expirer.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
}
