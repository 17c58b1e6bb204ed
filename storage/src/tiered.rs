//! Versions whose bytes live on a remote tier: the commits that move a version's data out
//! (transition) and back (restore, recall), and the hook through which every change that stops
//! referencing a remote object hands it to a durable journal before it commits, so no delete,
//! overwrite or expiration can orphan cloud data.

use crate::error::{Result, StorageError};
use crate::meta::{
    now_ns, DataLocation, ObjectRecord, ObjectVersion, Restore, Transition, VersionRecord,
};
use crate::set::{ErasureSet, Staged};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// A remote object that a change to `bucket/key` stops referencing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteObject {
    pub tier: String,
    pub remote_key: String,
    pub bucket: String,
    pub key: String,
}

/// Takes remote objects that versions stop referencing. `release` runs before the change
/// commits and must have stored them durably when it returns: the change is refused when it
/// fails. A released object may still be referenced (the change can fail after the release),
/// so whoever deletes it checks [`ErasureSet::references_remote`] first.
pub trait RemoteReleases: Send + Sync {
    fn release(&self, objects: &[RemoteObject]) -> std::result::Result<(), String>;
}

/// The hook every set of a store shares, installed once at start-up.
pub(crate) type ReleaseHook = Arc<OnceLock<Arc<dyn RemoteReleases>>>;

/// The remote objects a record's versions reference, as (tier, remote key).
pub(crate) fn remote_refs(record: &ObjectRecord) -> Vec<(String, String)> {
    record
        .versions
        .iter()
        .filter_map(|v| v.object.as_ref()?.transition.as_ref())
        .map(|t| (t.tier.clone(), t.remote_key.clone()))
        .collect()
}

impl ErasureSet {
    /// Hands the remote objects a change stops referencing to the release hook.
    pub(crate) fn release_remote(
        &self,
        bucket: &str,
        key: &str,
        released: &[(String, String)],
    ) -> Result<()> {
        if released.is_empty() {
            return Ok(());
        }
        let hook = self.remote_releases.get().ok_or_else(|| {
            StorageError::Refused("no tiering journal to release remote data to".into())
        })?;
        let objects: Vec<RemoteObject> = released
            .iter()
            .map(|(tier, remote_key)| RemoteObject {
                tier: tier.clone(),
                remote_key: remote_key.clone(),
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            })
            .collect();
        hook.release(&objects).map_err(|e| {
            StorageError::Io(std::io::Error::other(format!(
                "could not journal the remote delete: {e}"
            )))
        })
    }

    /// Whether any version of `bucket/key` references `remote_key` on `tier`, as a read quorum
    /// sees it, read under the key's lock (so a change in flight has committed or failed). An
    /// error, for now, while a drive that disagrees with the quorum still references it.
    pub async fn references_remote(
        &self,
        bucket: &str,
        key: &str,
        tier: &str,
        remote_key: &str,
    ) -> Result<bool> {
        let _guard = self.locks.lock(bucket, key).await?;
        let records = self.read_records(bucket, key).await;
        let agreement = self.agree(&records)?;
        let names = |r: &ObjectRecord| {
            remote_refs(r)
                .iter()
                .any(|(t, k)| t == tier && k == remote_key)
        };
        let agreed = records
            .iter()
            .zip(&agreement.agree)
            .find_map(|(r, ok)| if *ok { r.clone().flatten() } else { None })
            .unwrap_or_default();
        if names(&agreed) {
            return Ok(true);
        }
        // A drive that missed the change still names the object: it must not lose the bytes
        // its copy points at (a later failure could make that copy the majority), so the
        // delete waits until heal has brought it in line.
        if records.iter().flatten().flatten().any(names) {
            self.heal_queue.push(bucket, key);
            return Err(StorageError::Refused(
                "a drive's copy still references the object; waiting for heal".into(),
            ));
        }
        Ok(false)
    }

    /// Records that version `version_id` (modified at `mod_time_ns`) now lives at
    /// `transition` and frees its local shards once a quorum took the change.
    /// `PreconditionFailed` when the version is gone, was replaced, or is already tiered.
    pub async fn commit_transition(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        transition: Transition,
    ) -> Result<()> {
        self.change_data(bucket, key, version_id, mod_time_ns, |v| {
            let obj = v.object.as_mut().ok_or(StorageError::PreconditionFailed)?;
            if obj.transition.is_some() {
                return Err(StorageError::PreconditionFailed);
            }
            obj.storage_class = transition.tier.clone();
            obj.transition = Some(transition.clone());
            obj.data = DataLocation::Remote;
            obj.restore = None;
            Ok(())
        })
        .await
    }

    /// Marks a transitioned version as being restored (`x-amz-restore: ongoing-request="true"`).
    /// A copy already there gets the new `expiry_ns` (as S3 extends a restore), one on its
    /// way is left alone. Returns the restore state the version had before; `InvalidObjectState`
    /// for a version that is not transitioned.
    pub async fn begin_restore(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        days: u32,
        expiry_ns: i64,
    ) -> Result<Option<Restore>> {
        let before = std::sync::Mutex::new(None);
        self.change_data(bucket, key, version_id, mod_time_ns, |v| {
            let obj = v.object.as_mut().ok_or(StorageError::PreconditionFailed)?;
            if obj.transition.is_none() {
                return Err(StorageError::InvalidObjectState);
            }
            *before.lock().expect("lock") = obj.restore;
            match &mut obj.restore {
                // A new request for a restored copy moves its expiry, as S3 does.
                Some(r) if !r.ongoing => {
                    r.days = days;
                    r.expiry_ns = expiry_ns;
                }
                Some(_) => {}
                None => {
                    obj.restore = Some(Restore {
                        ongoing: true,
                        expiry_ns: 0,
                        days,
                    })
                }
            }
            Ok(())
        })
        .await?;
        Ok(before.into_inner().expect("lock"))
    }

    /// Makes `staged` (the version's bytes, read back from its tier) the restored local copy,
    /// expiring at `expiry_ns`. The staged parts must follow the version's part table.
    pub async fn commit_restore(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        staged: Staged,
        expiry_ns: i64,
    ) -> Result<()> {
        self.commit_local_copy(bucket, key, version_id, mod_time_ns, staged, |obj| {
            let Some(r) = obj.restore.as_mut().filter(|r| r.ongoing) else {
                return Err(StorageError::PreconditionFailed);
            };
            r.ongoing = false;
            r.expiry_ns = expiry_ns;
            Ok(())
        })
        .await
    }

    /// Gives up a restore that could not be made, so it can be asked for again.
    pub async fn abandon_restore(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
    ) -> Result<()> {
        self.change_data(bucket, key, version_id, mod_time_ns, |v| {
            let obj = v.object.as_mut().ok_or(StorageError::PreconditionFailed)?;
            match obj.restore {
                Some(r) if r.ongoing => {
                    obj.restore = None;
                    Ok(())
                }
                _ => Err(StorageError::PreconditionFailed),
            }
        })
        .await
    }

    /// Drops a restored copy whose expiry (`expiry_ns`, as judged) has passed; the version
    /// stays on its tier.
    pub async fn expire_restore(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        expiry_ns: i64,
    ) -> Result<()> {
        self.change_data(bucket, key, version_id, mod_time_ns, |v| {
            let obj = v.object.as_mut().ok_or(StorageError::PreconditionFailed)?;
            match obj.restore {
                Some(r) if !r.ongoing && r.expiry_ns == expiry_ns => {
                    obj.restore = None;
                    obj.data = DataLocation::Remote;
                    Ok(())
                }
                _ => Err(StorageError::PreconditionFailed),
            }
        })
        .await
    }

    /// Brings a transitioned version back to the hot tier for good (a tier drain): `staged`
    /// holds its bytes; the remote object is released to the journal.
    pub async fn commit_recall(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        staged: Staged,
    ) -> Result<()> {
        self.commit_local_copy(bucket, key, version_id, mod_time_ns, staged, |obj| {
            if obj.transition.is_none() {
                return Err(StorageError::PreconditionFailed);
            }
            obj.transition = None;
            obj.restore = None;
            obj.storage_class = "STANDARD".into();
            Ok(())
        })
        .await
    }

    /// Commits `staged` as the local data of a tiered version, with `change` (which may
    /// refuse) made to the version in the same step.
    async fn commit_local_copy(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        mut staged: Staged,
        change: impl Fn(&mut ObjectVersion) -> Result<()>,
    ) -> Result<()> {
        let inline = staged.take_inline();
        let dir = staged.staging;
        let new_dirs: Vec<Uuid> = if inline.is_none() { vec![dir] } else { vec![] };
        let written = staged.written.clone();
        let result = self
            .change_data_staged(
                bucket,
                key,
                version_id,
                mod_time_ns,
                &new_dirs,
                &written,
                |d, v| {
                    let obj = v.object.as_mut().ok_or(StorageError::PreconditionFailed)?;
                    change(obj)?;
                    obj.data = match &inline {
                        Some(shards) => DataLocation::Inline(shards[d].clone()),
                        None => DataLocation::Dir(dir),
                    };
                    Ok(())
                },
            )
            .await;
        if result.is_ok() {
            staged.mark_committed();
        }
        result
    }

    async fn change_data(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        change: impl Fn(&mut VersionRecord) -> Result<()>,
    ) -> Result<()> {
        self.change_data_staged(bucket, key, version_id, mod_time_ns, &[], &[], |_, v| {
            change(v)
        })
        .await
    }

    /// Changes where one version's data is, under the key's lock, on the version as it was
    /// judged (same id and modification time; `PreconditionFailed` otherwise). The change
    /// counts as a metadata change, so a drive that missed it is healed rather than trusted.
    /// Drives whose entry in `written` is false (their staged shards failed) take no record
    /// and are healed, as a PUT does.
    #[allow(clippy::too_many_arguments)]
    async fn change_data_staged(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        staged: &[Uuid],
        written: &[bool],
        change: impl Fn(usize, &mut VersionRecord) -> Result<()>,
    ) -> Result<()> {
        let _guard = self.locks.lock(bucket, key).await?;
        let records = self.read_records(bucket, key).await;
        let now = now_ns();
        let plan = self.plan(&records, |d, rec| {
            let i = rec
                .position(version_id)
                .filter(|i| rec.versions[*i].mod_time_ns == mod_time_ns)
                .ok_or(StorageError::PreconditionFailed)?;
            let v = &mut rec.versions[i];
            change(d, v)?;
            if let Some(obj) = v.object.as_mut() {
                obj.metadata_changed_ns = now;
            }
            Ok(())
        })?;
        let mut plan = plan;
        for (d, ok) in written.iter().enumerate() {
            if !ok {
                plan.records[d] = None;
            }
        }
        self.apply(bucket, key, &records, plan, staged).await
    }
}
