//! The replication hook on the commit path: every change of a key's versions is compared
//! with the record it replaces; each new version, metadata change or removed version that a
//! bucket's rules send to a target is stamped PENDING in the version itself and handed to a
//! durable queue *before* the change commits, so no write path can skip replication and no
//! acknowledged write can be missed by it. Also the writes of replicas themselves, which keep
//! their source's version id and modification time.

use crate::error::{Result, StorageError};
use crate::meta::{
    now_ns, ObjectRecord, ReplicationState, Retention, TargetReplication, VersionRecord,
};
use crate::set::ErasureSet;
use crate::versions::Which;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// What a change did to one version, as replication sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReplicationOp {
    /// Tags, retention or legal hold of a version changed in place.
    Metadata,
    /// A new object version: its data and all its metadata.
    Object,
    /// A new delete marker.
    DeleteMarker,
    /// A version (or delete marker) was deleted by id.
    VersionDelete,
}

impl ReplicationOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::Object => "object",
            Self::DeleteMarker => "delete-marker",
            Self::VersionDelete => "version-delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Metadata,
            Self::Object,
            Self::DeleteMarker,
            Self::VersionDelete,
        ]
        .into_iter()
        .find(|op| op.as_str() == s)
    }
}

/// One version change that must reach one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationEntry {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<Uuid>,
    /// The version's modification time, ns since the epoch.
    pub mod_time_ns: i64,
    /// The target's ARN.
    pub target: String,
    pub op: ReplicationOp,
    /// Bytes the entry will send (the object's size for `Object`, else 0).
    pub size: u64,
    /// For a `VersionDelete`: the id the target gave its copy, if it is not ours.
    pub remote_version_id: Option<String>,
}

/// Decides which targets a change must reach and stores the work durably.
#[async_trait::async_trait]
pub trait ReplicationHook: Send + Sync {
    /// The targets (ARNs) that `op` on `version` of `bucket/key` must reach under the
    /// bucket's rules. Runs under the key's lock on every change, so it answers from memory.
    fn targets(
        &self,
        bucket: &str,
        key: &str,
        op: ReplicationOp,
        version: &VersionRecord,
    ) -> Vec<String>;

    /// Stores `entries` durably. Runs while the change commits, and the change is answered
    /// only once both are done, so every acknowledged change has its entries (the versions
    /// say PENDING, so where storing fails the hook must have them found again, by a scan).
    /// An entry may outlive a change that then failed to commit, so whoever sends it checks
    /// the version first, under the key's lock.
    async fn enqueue(&self, entries: Vec<ReplicationEntry>);
}

pub(crate) type Hook = Arc<OnceLock<Arc<dyn ReplicationHook>>>;

/// Entries being queued, awaited together with the commit they stem from.
pub(crate) type Queueing = futures::future::BoxFuture<'static, ()>;

/// A replica's identity at its source: it is written with the source's version id and
/// modification time, so both sites name and order it alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaOf {
    pub version_id: Option<Uuid>,
    pub mod_time_ns: i64,
}

/// A record's versions by id.
fn by_id(record: &ObjectRecord) -> HashMap<Option<Uuid>, &VersionRecord> {
    record.versions.iter().map(|v| (v.version_id, v)).collect()
}

/// What a replicated metadata change covers: tags, retention and legal hold.
fn lock_or_tags(
    v: &VersionRecord,
) -> Option<(&BTreeMap<String, String>, &Option<Retention>, bool)> {
    v.object
        .as_ref()
        .map(|o| (&o.tags, &o.retention, o.legal_hold))
}

/// What a change did to the versions replication cares about, from `before` to `after`:
/// new versions (objects and delete markers), in-place metadata changes, removed versions.
/// New replicas, changes to replicas and lifecycle's delete markers never count (AWS leaves
/// the latter alone too).
pub fn changes(before: &ObjectRecord, after: &ObjectRecord) -> Vec<(ReplicationOp, VersionRecord)> {
    // Keys hold up to thousands of versions and this runs on every write: compare by id.
    let (old_versions, new_versions) = (by_id(before), by_id(after));
    let mut out = Vec::new();
    for v in &after.versions {
        if v.replication.replica || v.lifecycle_marker {
            continue;
        }
        if let Some(old) = old_versions
            .get(&v.version_id)
            .filter(|old| old.mod_time_ns == v.mod_time_ns)
        {
            if lock_or_tags(old) != lock_or_tags(v) {
                out.push((ReplicationOp::Metadata, v.clone()));
            }
            continue;
        }
        // A new version, or the null version replaced by a new null version.
        let op = if v.object.is_some() {
            ReplicationOp::Object
        } else {
            ReplicationOp::DeleteMarker
        };
        out.push((op, v.clone()));
    }
    // A removed replica counts too: with version deletes replicated both ways, deleting a
    // version at either site removes it at the other (the replicated delete itself is not
    // sent on, see `Plan::not_replicated`).
    for old in &before.versions {
        let gone = new_versions
            .get(&old.version_id)
            .is_none_or(|v| v.mod_time_ns != old.mod_time_ns);
        if gone && old.version_id.is_some() {
            out.push((ReplicationOp::VersionDelete, old.clone()));
        }
    }
    out
}

impl ErasureSet {
    /// Stamps PENDING on the versions a planned change sends to targets and returns their
    /// queueing, to be awaited with the commit. `previous` and `records` are every drive's
    /// record before and after the change; one agreeing drive's pair tells what changed.
    pub(crate) fn replicate(
        &self,
        bucket: &str,
        key: &str,
        previous: &[Option<Option<ObjectRecord>>],
        records: &mut [Option<Option<ObjectRecord>>],
    ) -> Option<Queueing> {
        let hook = self.replication.get()?.clone();
        let d = records.iter().position(Option::is_some)?;
        let empty = ObjectRecord::default();
        let before = previous[d]
            .as_ref()
            .and_then(Option::as_ref)
            .unwrap_or(&empty);
        let after = records[d]
            .as_ref()
            .and_then(Option::as_ref)
            .unwrap_or(&empty);
        let changed = changes(before, after);
        let mut entries = Vec::new();
        for (op, version) in changed {
            for target in hook.targets(bucket, key, op, &version) {
                // A version delete goes only where the version went (a replica's source has
                // it too); a target that never had it has nothing to delete.
                if op == ReplicationOp::VersionDelete
                    && !version.replication.replica
                    && !version.replication.targets.contains_key(&target)
                {
                    continue;
                }
                // A version the target never got (written before the rule, or before a tag
                // change made it match) goes whole, not as a metadata change.
                let op = match op {
                    ReplicationOp::Metadata
                        if !version.replication.targets.contains_key(&target) =>
                    {
                        ReplicationOp::Object
                    }
                    op => op,
                };
                entries.push(ReplicationEntry {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    version_id: version.version_id,
                    mod_time_ns: version.mod_time_ns,
                    op,
                    size: match op {
                        ReplicationOp::Object => version.object.as_ref().map_or(0, |o| o.size),
                        _ => 0,
                    },
                    remote_version_id: version
                        .replication
                        .targets
                        .get(&target)
                        .and_then(|t| t.remote_version_id.clone()),
                    target,
                });
            }
        }
        if entries.is_empty() {
            return None;
        }
        for rec in records.iter_mut().flatten().flatten() {
            for e in entries
                .iter()
                .filter(|e| e.op != ReplicationOp::VersionDelete)
            {
                if let Some(v) = rec
                    .versions
                    .iter_mut()
                    .find(|v| v.version_id == e.version_id && v.mod_time_ns == e.mod_time_ns)
                {
                    let remote_version_id = v
                        .replication
                        .targets
                        .get(&e.target)
                        .and_then(|t| t.remote_version_id.clone());
                    v.replication.targets.insert(
                        e.target.clone(),
                        TargetReplication {
                            status: ReplicationState::Pending,
                            remote_version_id,
                        },
                    );
                }
            }
        }
        Some(Box::pin(async move { hook.enqueue(entries).await }))
    }

    /// Records how replication of version `version_id` (modified at `mod_time_ns`) to
    /// `target` went, once `first` (awaited under the key's lock, before anything is read)
    /// says so: the queue retires or adds the entry there, so no change committing meanwhile
    /// can come between the queue and the status. Returns `first`'s answer;
    /// `PreconditionFailed` when the version is gone or was replaced.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_replication_status(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<Uuid>,
        mod_time_ns: i64,
        target: &str,
        state: TargetReplication,
        first: impl std::future::Future<Output = bool> + Send,
    ) -> Result<bool> {
        let _guard = self.locks.lock(bucket, key).await?;
        if !first.await {
            return Ok(false);
        }
        let records = self.read_records(bucket, key).await;
        let plan = self.plan(&records, |_, rec| {
            let v = rec
                .versions
                .iter_mut()
                .find(|v| v.version_id == version_id && v.mod_time_ns == mod_time_ns)
                .ok_or(StorageError::PreconditionFailed)?;
            v.replication
                .targets
                .insert(target.to_owned(), state.clone());
            Ok(())
        })?;
        self.apply(bucket, key, &records, plan, &[]).await?;
        Ok(true)
    }

    /// An object version as [`ErasureSet::view`] gives it, read under the key's lock (as
    /// [`ErasureSet::version_record`]): what a replication send streams from.
    pub async fn locked_view(
        &self,
        bucket: &str,
        key: &str,
        which: Which,
    ) -> Result<crate::set::ObjectView> {
        let _guard = self.locks.lock(bucket, key).await?;
        self.view(bucket, key, which).await
    }

    /// One version's record as a read quorum sees it (delete markers included); `None` when
    /// the key or the version does not exist. Read under the key's lock: a change queued for
    /// replication just before it commits has committed (or failed) when this answers.
    pub async fn version_record(
        &self,
        bucket: &str,
        key: &str,
        which: Which,
    ) -> Result<Option<VersionRecord>> {
        let _guard = self.locks.lock(bucket, key).await?;
        let records = self.read_records(bucket, key).await;
        let agreement = self.agree(&records)?;
        let rec = records
            .iter()
            .zip(&agreement.agree)
            .find_map(|(r, ok)| if *ok { r.clone().flatten() } else { None })
            .unwrap_or_default();
        Ok(match which {
            Which::Current => rec.versions.first().cloned(),
            Which::Version(id) => rec.versions.into_iter().find(|v| v.version_id == id),
        })
    }
}

impl ObjectRecord {
    /// Adds a replica version in its place by modification time (newest first). A copy of
    /// the same version written before (a retried send) is kept as it is; any other version
    /// of that id is refused, so a replica can never replace a local or a locked version.
    pub(crate) fn insert_replica(&mut self, version: VersionRecord, now: i64) -> Result<()> {
        if let Some(i) = self.position(version.version_id) {
            let old = &self.versions[i];
            if old.replication.replica && old.fingerprint() == version.fingerprint() {
                return Ok(());
            }
            if !old.replication.replica || old.mod_time_ns != version.mod_time_ns {
                return Err(StorageError::Refused(
                    "a different version with the replica's id exists".into(),
                ));
            }
            old.check_unlocked(now, false)?;
            self.versions.remove(i);
        }
        let key = |v: &VersionRecord| (v.mod_time_ns, v.version_id);
        let at = self
            .versions
            .iter()
            .position(|v| key(v) < key(&version))
            .unwrap_or(self.versions.len());
        self.versions.insert(at, version);
        Ok(())
    }
}

/// A replica's modification time cannot be in the future by more than this (clock skew).
pub const MAX_REPLICA_SKEW_NS: i64 = 15 * 60 * 1_000_000_000;

/// Refuses a replica identity that cannot be a source version's.
pub fn check_replica(of: &ReplicaOf) -> Result<()> {
    if of.mod_time_ns <= 0 || of.mod_time_ns > now_ns() + MAX_REPLICA_SKEW_NS {
        return Err(StorageError::Refused(
            "the replica's modification time is out of range".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::tests_support::object_version;

    fn version(id: u128, t: i64) -> VersionRecord {
        let mut v = object_version();
        v.version_id = Some(Uuid::from_u128(id));
        v.mod_time_ns = t;
        v
    }

    fn ops(before: &ObjectRecord, after: &ObjectRecord) -> Vec<(ReplicationOp, i64)> {
        changes(before, after)
            .into_iter()
            .map(|(op, v)| (op, v.mod_time_ns))
            .collect()
    }

    #[test]
    fn new_versions_markers_metadata_and_removals_are_changes() {
        let before = ObjectRecord {
            versions: vec![version(1, 10)],
        };
        let mut after = before.clone();
        after.versions.insert(0, version(2, 20));
        assert_eq!(ops(&before, &after), [(ReplicationOp::Object, 20)]);

        let mut marker = version(3, 30);
        marker.object = None;
        let mut with_marker = before.clone();
        with_marker.versions.insert(0, marker.clone());
        assert_eq!(
            ops(&before, &with_marker),
            [(ReplicationOp::DeleteMarker, 30)]
        );

        let mut tagged = before.clone();
        tagged.versions[0]
            .object
            .as_mut()
            .unwrap()
            .tags
            .insert("a".into(), "b".into());
        assert_eq!(ops(&before, &tagged), [(ReplicationOp::Metadata, 10)]);

        let empty = ObjectRecord::default();
        assert_eq!(ops(&before, &empty), [(ReplicationOp::VersionDelete, 10)]);
    }

    #[test]
    fn replicas_lifecycle_markers_and_data_moves_are_not_changes() {
        let before = ObjectRecord {
            versions: vec![version(1, 10)],
        };
        let mut replica = version(2, 20);
        replica.replication.replica = true;
        let mut after = before.clone();
        after.versions.insert(0, replica);
        assert!(changes(&before, &after).is_empty());

        let mut marker = version(3, 30);
        marker.object = None;
        marker.lifecycle_marker = true;
        let mut after = before.clone();
        after.versions.insert(0, marker);
        assert!(changes(&before, &after).is_empty());

        // A transition or a status update changes the record, not what replicates.
        let mut moved = before.clone();
        let obj = moved.versions[0].object.as_mut().unwrap();
        obj.storage_class = "COLD".into();
        obj.metadata_changed_ns = 99;
        moved.versions[0].replication.targets.insert(
            "arn".into(),
            TargetReplication {
                status: ReplicationState::Completed,
                remote_version_id: None,
            },
        );
        assert!(changes(&before, &moved).is_empty());
    }

    #[test]
    fn replicas_take_their_place_by_modification_time() {
        let mut rec = ObjectRecord {
            versions: vec![version(3, 30), version(1, 10)],
        };
        let replica = |id, t| {
            let mut v = version(id, t);
            v.replication.replica = true;
            v
        };
        rec.insert_replica(replica(2, 20), 0).unwrap();
        let times: Vec<i64> = rec.versions.iter().map(|v| v.mod_time_ns).collect();
        assert_eq!(times, [30, 20, 10]);
        rec.insert_replica(replica(2, 20), 0).unwrap();
        assert_eq!(rec.versions.len(), 3, "a retried replica keeps its copy");
        rec.insert_replica(replica(4, 40), 0).unwrap();
        assert_eq!(rec.versions[0].mod_time_ns, 40);
        assert!(
            rec.insert_replica(replica(3, 30), 0).is_err(),
            "a local version is never replaced by a replica"
        );
        let mut locked = replica(2, 20);
        locked.object.as_mut().unwrap().etag = "other".into();
        rec.versions[2].object.as_mut().unwrap().legal_hold = true;
        assert!(
            rec.insert_replica(locked, 0).is_err(),
            "a locked replica is not replaced"
        );
    }

    #[test]
    fn overall_status_aggregates_as_s3() {
        let mut r = crate::meta::VersionReplication::default();
        assert_eq!(r.overall(), None);
        let t = |status| TargetReplication {
            status,
            remote_version_id: None,
        };
        r.targets.insert("a".into(), t(ReplicationState::Completed));
        assert_eq!(r.overall(), Some("COMPLETED"));
        r.targets.insert("b".into(), t(ReplicationState::Failed));
        assert_eq!(r.overall(), Some("FAILED"));
        r.targets.insert("c".into(), t(ReplicationState::Pending));
        assert_eq!(
            r.overall(),
            Some("FAILED"),
            "a failure shows while others are pending"
        );
        r.targets.remove("b");
        assert_eq!(r.overall(), Some("PENDING"));
        r.replica = true;
        assert_eq!(r.overall(), Some("REPLICA"));
    }
}
