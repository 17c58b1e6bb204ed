//! The version model: what a write, a delete or a metadata change does to a key's versions
//! under the bucket's versioning state, and the object-lock rules that refuse it.
//!
//! Every change is planned on the record a read quorum agrees on and then applied to each
//! agreeing drive's own copy (copies differ only in their shard index and inline bytes); a
//! drive whose copy disagrees does not take the change and is healed instead.

use crate::drive::Commit;
use crate::error::{Result, StorageError};
use crate::meta::{now_ns, ObjectRecord, VersionRecord};
use crate::set::ErasureSet;
use futures::future::join_all;
use uuid::Uuid;

/// A bucket's versioning state, as S3 defines it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Versioning {
    /// Never configured: a key has one `null` version.
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

/// Which version of a key a request addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The newest version (a plain GET).
    Current,
    /// A version by id; `None` is the `null` version.
    Version(Option<Uuid>),
}

/// How a delete is made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `x-amz-bypass-governance-retention`.
    pub bypass_governance: bool,
    /// Delete only while the key's newest versions, down to and including the addressed one
    /// (for `Which::Current`, the newest alone), are still exactly these (version id,
    /// modification time), newest first. Lifecycle judges a version on an earlier read, by
    /// its place among its key's versions (current or not, its successor's time, how many
    /// newer noncurrent versions there are); this keeps its action off a key changed since.
    pub expect: Option<Vec<(Option<Uuid>, i64)>>,
    /// Lifecycle expires the object: a delete marker it places is recorded as its own.
    pub by_lifecycle: bool,
    /// The delete is a replicated one: a delete marker keeps its source's id and time, and
    /// nothing the delete does is replicated onward.
    pub replica: Option<crate::replication::ReplicaOf>,
}

/// What a delete did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    /// The delete marker written, or the version removed (`None` for the `null` version).
    pub version_id: Option<Uuid>,
    /// Whether the version written or removed is a delete marker.
    pub delete_marker: bool,
}

/// Bucket config entry holding `Enabled` or `Suspended`.
pub const VERSIONING_CONFIG: &str = "versioning";

impl crate::meta::BucketRecord {
    /// The bucket's versioning state.
    pub fn versioning(&self) -> Versioning {
        match self.config.get(VERSIONING_CONFIG).map(Vec::as_slice) {
            Some(b"Enabled") => Versioning::Enabled,
            Some(b"Suspended") => Versioning::Suspended,
            _ => Versioning::Unversioned,
        }
    }
}

impl ObjectRecord {
    /// Position of a version in the record (0 = newest).
    pub fn position(&self, id: Option<Uuid>) -> Option<usize> {
        self.versions.iter().position(|v| v.version_id == id)
    }

    /// Adds a new newest version. A `null` version replaces the existing `null` version, which
    /// must not be locked; returns the replaced version. A version never sorts below the
    /// newest one: a replica from a site whose clock runs ahead may carry a later time than
    /// ours, and versions stay ordered by time so both sites agree on the current one.
    fn push_version(
        &mut self,
        mut version: VersionRecord,
        now: i64,
    ) -> Result<Option<VersionRecord>> {
        let mut replaced = None;
        if version.version_id.is_none() {
            if let Some(i) = self.position(None) {
                self.versions[i].check_unlocked(now, false)?;
                replaced = Some(self.versions.remove(i));
            }
        }
        if let Some(newest) = self.versions.first() {
            version.mod_time_ns = version.mod_time_ns.max(newest.mod_time_ns + 1);
        }
        self.versions.insert(0, version);
        Ok(replaced)
    }
}

impl VersionRecord {
    /// Refuses when object lock protects this version: a legal hold, or a retention date not
    /// yet reached (GOVERNANCE yields to `bypass_governance`).
    pub fn check_unlocked(&self, now_ns: i64, bypass_governance: bool) -> Result<()> {
        let Some(obj) = &self.object else {
            return Ok(());
        };
        if obj.legal_hold {
            return Err(StorageError::ObjectLocked(
                "the object version is under legal hold".into(),
            ));
        }
        if let Some(r) = &obj.retention {
            let governance = r.mode == "GOVERNANCE";
            if r.retain_until_ns > now_ns && !(governance && bypass_governance) {
                return Err(StorageError::ObjectLocked(format!(
                    "the object version is locked in {} mode",
                    r.mode
                )));
            }
        }
        Ok(())
    }
}

/// Each drive's new record for one change, and what the change removed.
pub(crate) struct Plan<T> {
    /// Per drive: the new record (`Some(None)` deletes the key), or `None` when the drive does
    /// not take the change.
    pub records: Vec<Option<Option<ObjectRecord>>>,
    /// Per drive: data directories of versions the change removed.
    pub removed: Vec<Vec<Uuid>>,
    /// Whether any drive's record changes at all.
    pub changed: bool,
    /// Remote objects (tier, remote key) the change stops referencing.
    pub released: Vec<(String, String)>,
    /// The change is not replicated: a replica's own write or delete (never sent on), or
    /// lifecycle's action (AWS replicates neither).
    pub not_replicated: bool,
    pub outcome: T,
}

impl ErasureSet {
    /// Plans a change: `change` runs once on the agreed record (its error refuses the change)
    /// and then on each agreeing drive's copy, with the drive's position.
    pub(crate) fn plan<T>(
        &self,
        records: &[Option<Option<ObjectRecord>>],
        change: impl Fn(usize, &mut ObjectRecord) -> Result<T>,
    ) -> Result<Plan<T>> {
        let agreement = self.agree(records)?;
        let first = agreement
            .agree
            .iter()
            .position(|a| *a)
            .expect("a quorum agrees");
        let mut model = records[first].clone().flatten().unwrap_or_default();
        let referenced = crate::tiered::remote_refs(&model);
        let outcome = change(first, &mut model)?;
        let still = crate::tiered::remote_refs(&model);
        let mut plan = Plan {
            records: Vec::with_capacity(records.len()),
            removed: Vec::with_capacity(records.len()),
            changed: false,
            released: referenced
                .into_iter()
                .filter(|r| !still.contains(r))
                .collect(),
            not_replicated: false,
            outcome,
        };
        for (d, rec) in records.iter().enumerate() {
            if !agreement.agree[d] {
                plan.records.push(None);
                plan.removed.push(vec![]);
                continue;
            }
            let before = rec.clone().flatten().unwrap_or_default();
            let mut after = before.clone();
            change(d, &mut after)?;
            plan.changed |= after != before;
            let kept = after.data_dirs();
            plan.removed.push(
                before
                    .data_dirs()
                    .into_iter()
                    .filter(|id| !kept.contains(id))
                    .collect(),
            );
            plan.records
                .push(Some((!after.versions.is_empty()).then_some(after)));
        }
        Ok(plan)
    }

    /// What every change does in the same durable step as its commit: remote objects it
    /// stops referencing are journaled first (after a crash the journal still knows them, and
    /// its deleter checks that nothing references them any more; failing refuses the change),
    /// and versions sent to replication targets are stamped PENDING in the records about to
    /// commit; their queueing is returned, for the caller to await together with the commit
    /// (it answers once both are durable).
    pub(crate) fn before_commit<T>(
        &self,
        bucket: &str,
        key: &str,
        previous: &[Option<Option<ObjectRecord>>],
        plan: &mut Plan<T>,
    ) -> Result<Option<crate::replication::Queueing>> {
        self.release_remote(bucket, key, &plan.released)?;
        if plan.not_replicated {
            return Ok(None);
        }
        Ok(self.replicate(bucket, key, previous, &mut plan.records))
    }

    /// Commits a plan to the drives that take it, moving `staged` directories into place;
    /// below write quorum the drives that took it get their previous records back. After
    /// quorum, removed versions' data is deleted.
    pub(crate) async fn apply<T>(
        &self,
        bucket: &str,
        key: &str,
        previous: &[Option<Option<ObjectRecord>>],
        mut plan: Plan<T>,
        staged: &[Uuid],
    ) -> Result<T> {
        if !plan.changed {
            return Ok(plan.outcome);
        }
        let queueing = self.before_commit(bucket, key, previous, &mut plan)?;
        let commits = join_all(plan.records.iter().enumerate().map(|(d, rec)| {
            let drive = self.drives[d].clone();
            let take = rec.is_some();
            let commit = Commit {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                record: rec.clone().flatten(),
                staged: staged.to_vec(),
                free: vec![],
            };
            async move { take && drive.commit(commit).await.is_ok() }
        }));
        let (results, ()) = tokio::join!(commits, async {
            if let Some(q) = queueing {
                q.await
            }
        });
        let ok = results.iter().filter(|r| **r).count();
        if ok < self.layout.write_quorum() {
            let undo = results
                .iter()
                .enumerate()
                .filter(|(_, ok)| **ok)
                .map(|(d, _)| {
                    self.drives[d].commit(Commit {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                        record: previous[d].clone().flatten(),
                        staged: vec![],
                        free: staged.to_vec(),
                    })
                });
            for r in join_all(undo).await {
                if let Err(e) = r {
                    tracing::warn!(%bucket, %key, error = %e, "could not roll back a failed write on a drive");
                }
            }
            return Err(StorageError::Quorum {
                what: "commit",
                got: ok,
                needed: self.layout.write_quorum(),
            });
        }
        let missed = results.iter().enumerate().filter(|(_, ok)| !**ok);
        self.drop_missed(missed.map(|(d, _)| d), staged);
        self.release_removed(bucket, key, &results, plan.removed)
            .await;
        Ok(plan.outcome)
    }

    /// After a change reached its quorum: frees the data of the versions it removed on the
    /// drives that took it, and queues the key for healing when some drive did not.
    pub(crate) async fn release_removed(
        &self,
        bucket: &str,
        key: &str,
        took: &[bool],
        removed: Vec<Vec<Uuid>>,
    ) {
        // Removed versions' directories lost their rows in the commit; their files go now
        // (after a crash they are unreferenced and the start-up collector takes them).
        let release = took
            .iter()
            .zip(removed)
            .enumerate()
            .filter(|(_, (ok, removed))| **ok && !removed.is_empty())
            .map(|(d, (_, removed))| self.drives[d].remove_data(removed));
        for r in join_all(release).await {
            if let Err(e) = r {
                tracing::warn!(%bucket, %key, error = %e, "could not remove replaced data");
            }
        }
        if took.iter().any(|ok| !ok) {
            self.heal_queue.push(bucket, key);
        }
    }

    /// Plans adding `version` as the newest version under `versioning`; `per_drive` fills in
    /// each drive's own fields (shard index, inline bytes).
    /// A `replica` keeps its source's version id and time, takes its place
    /// among the versions by that time, and needs versioning enabled.
    pub(crate) fn plan_new_version(
        &self,
        records: &[Option<Option<ObjectRecord>>],
        versioning: Versioning,
        replica: Option<crate::replication::ReplicaOf>,
        mut version: VersionRecord,
        per_drive: impl Fn(usize, &mut VersionRecord),
    ) -> Result<Plan<VersionRecord>> {
        version.version_id = (versioning == Versioning::Enabled).then(Uuid::now_v7);
        let now = now_ns();
        if let Some(of) = replica {
            crate::replication::check_replica(&of)?;
            if versioning != Versioning::Enabled {
                return Err(StorageError::Refused(
                    "the destination bucket of a replica must have versioning enabled".into(),
                ));
            }
            version.version_id = of.version_id;
            version.mod_time_ns = of.mod_time_ns;
            version.replication.replica = true;
            let mut plan = self.plan(records, |d, rec| {
                let mut v = version.clone();
                per_drive(d, &mut v);
                rec.insert_replica(v, now)?;
                Ok(version.clone())
            })?;
            plan.not_replicated = true;
            return Ok(plan);
        }
        self.plan(records, |d, rec| {
            let mut v = version.clone();
            per_drive(d, &mut v);
            if versioning == Versioning::Unversioned {
                // An unversioned key keeps one version: the new one replaces all.
                for old in &rec.versions {
                    old.check_unlocked(now, false)?;
                }
                rec.versions.clear();
            }
            rec.push_version(v, now)?;
            Ok(VersionRecord {
                mod_time_ns: rec.versions[0].mod_time_ns,
                ..version.clone()
            })
        })
    }

    /// Deletes a key as S3 does: without a version, hides it behind a delete marker (or
    /// removes it when unversioned); with one, removes that version if object lock allows.
    /// With `opts.expect`, only while the addressed version is still the one expected
    /// (PreconditionFailed otherwise).
    pub async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        which: Which,
        versioning: Versioning,
        opts: DeleteOptions,
    ) -> Result<Deleted> {
        let bypass_governance = opts.bypass_governance;
        let _guard = self.locks.lock(bucket, key).await?;
        let records = self.read_records(bucket, key).await;
        let now = now_ns();
        let marker_id = (versioning == Versioning::Enabled).then(Uuid::now_v7);
        if let (Some(of), Which::Current) = (&opts.replica, which) {
            crate::replication::check_replica(of)?;
            if versioning != Versioning::Enabled {
                return Err(StorageError::Refused(
                    "the destination bucket of a replica must have versioning enabled".into(),
                ));
            }
            let marker = VersionRecord {
                version_id: of.version_id,
                mod_time_ns: of.mod_time_ns,
                object: None,
                lifecycle_marker: false,
                replication: crate::meta::VersionReplication {
                    replica: true,
                    ..Default::default()
                },
            };
            let mut plan = self.plan(&records, |_, rec| {
                rec.insert_replica(marker.clone(), now)?;
                Ok(Deleted {
                    version_id: of.version_id,
                    delete_marker: true,
                })
            })?;
            plan.not_replicated = true;
            return self.apply(bucket, key, &records, plan, &[]).await;
        }
        let mut plan = self.plan(&records, |_, rec| {
            if let Some(expected) = &opts.expect {
                let addressed = match which {
                    Which::Current => Some(0),
                    Which::Version(id) => rec.position(id),
                };
                let newest: Vec<(Option<Uuid>, i64)> = match addressed {
                    Some(i) if i < rec.versions.len() => rec.versions[..=i]
                        .iter()
                        .map(|v| (v.version_id, v.mod_time_ns))
                        .collect(),
                    _ => Vec::new(),
                };
                if &newest != expected {
                    return Err(StorageError::PreconditionFailed);
                }
            }
            self.delete_in(
                rec,
                which,
                versioning,
                marker_id,
                now,
                bypass_governance,
                opts.by_lifecycle,
            )
        })?;
        // Lifecycle's actions are not replicated (AWS), nor is a replicated delete sent on.
        plan.not_replicated = opts.replica.is_some() || opts.by_lifecycle;
        self.apply(bucket, key, &records, plan, &[]).await
    }

    /// The change a delete makes to a key's record.
    #[allow(clippy::too_many_arguments)]
    fn delete_in(
        &self,
        rec: &mut ObjectRecord,
        which: Which,
        versioning: Versioning,
        marker_id: Option<Uuid>,
        now: i64,
        bypass_governance: bool,
        by_lifecycle: bool,
    ) -> Result<Deleted> {
        match which {
            Which::Version(id) => {
                let Some(i) = rec.position(id) else {
                    return Ok(Deleted {
                        version_id: id,
                        delete_marker: false,
                    });
                };
                rec.versions[i].check_unlocked(now, bypass_governance)?;
                let removed = rec.versions.remove(i);
                Ok(Deleted {
                    version_id: id,
                    delete_marker: removed.object.is_none(),
                })
            }
            Which::Current if versioning == Versioning::Unversioned => {
                if let Some(i) = rec.position(None) {
                    rec.versions[i].check_unlocked(now, false)?;
                    rec.versions.remove(i);
                }
                Ok(Deleted::default())
            }
            Which::Current => {
                let marker = VersionRecord {
                    version_id: marker_id,
                    mod_time_ns: now,
                    object: None,
                    lifecycle_marker: by_lifecycle,
                    replication: Default::default(),
                };
                rec.push_version(marker, now)?;
                Ok(Deleted {
                    version_id: marker_id,
                    delete_marker: true,
                })
            }
        }
    }

    /// Changes one version's metadata in place (tags, retention, legal hold); `change` may
    /// refuse. Returns the version as changed.
    pub async fn update_version(
        &self,
        bucket: &str,
        key: &str,
        which: Which,
        change: impl Fn(&mut VersionRecord) -> Result<()>,
    ) -> Result<VersionRecord> {
        let _guard = self.locks.lock(bucket, key).await?;
        let records = self.read_records(bucket, key).await;
        let now = now_ns();
        let plan = self.plan(&records, |_, rec| {
            let i = match which {
                Which::Current => match rec.versions.first() {
                    Some(v) if v.object.is_some() => 0,
                    _ => return Err(StorageError::NoSuchKey),
                },
                Which::Version(id) => rec.position(id).ok_or(StorageError::NoSuchVersion)?,
            };
            if rec.versions[i].object.is_none() {
                return Err(StorageError::MethodNotAllowed);
            }
            change(&mut rec.versions[i])?;
            if let Some(obj) = rec.versions[i].object.as_mut() {
                obj.metadata_changed_ns = now;
            }
            Ok(rec.versions[i].clone())
        })?;
        self.apply(bucket, key, &records, plan, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Retention;

    fn marker(id: Option<Uuid>, t: i64) -> VersionRecord {
        VersionRecord {
            version_id: id,
            mod_time_ns: t,
            object: None,
            lifecycle_marker: false,
            replication: Default::default(),
        }
    }

    #[test]
    fn a_null_version_replaces_the_null_version_only() {
        let id = Uuid::now_v7();
        let mut rec = ObjectRecord {
            versions: vec![marker(Some(id), 2), marker(None, 1)],
        };
        let replaced = rec.push_version(marker(None, 3), 3).unwrap();
        assert_eq!(replaced.map(|v| v.mod_time_ns), Some(1));
        let ids: Vec<_> = rec.versions.iter().map(|v| v.version_id).collect();
        assert_eq!(ids, [None, Some(id)]);
        assert!(rec
            .push_version(marker(Some(Uuid::now_v7()), 4), 4)
            .unwrap()
            .is_none());
        assert_eq!(rec.versions.len(), 3);
    }

    #[test]
    fn a_new_version_never_sorts_below_a_replica_from_a_clock_ahead() {
        let mut rec = ObjectRecord {
            versions: vec![marker(Some(Uuid::now_v7()), 1_000)],
        };
        rec.push_version(marker(Some(Uuid::now_v7()), 900), 900)
            .unwrap();
        assert_eq!(rec.versions[0].mod_time_ns, 1_001);
    }

    #[test]
    fn retention_and_legal_hold_lock_a_version() {
        let mut rec = crate::meta::tests_support::object_version();
        let obj = rec.object.as_mut().unwrap();
        obj.retention = Some(Retention {
            mode: "GOVERNANCE".into(),
            retain_until_ns: 100,
        });
        assert!(rec.check_unlocked(50, false).is_err());
        assert!(rec.check_unlocked(50, true).is_ok());
        assert!(
            rec.check_unlocked(100, false).is_ok(),
            "expired at its date"
        );
        let obj = rec.object.as_mut().unwrap();
        obj.retention.as_mut().unwrap().mode = "COMPLIANCE".into();
        assert!(rec.check_unlocked(50, true).is_err());
        let obj = rec.object.as_mut().unwrap();
        obj.retention = None;
        obj.legal_hold = true;
        assert!(rec.check_unlocked(50, true).is_err());
        assert!(
            marker(None, 1).check_unlocked(0, false).is_ok(),
            "markers are never locked"
        );
    }
}
