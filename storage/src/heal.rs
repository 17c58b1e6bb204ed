//! Healing: bring every drive of a set back to the version a quorum agrees on, rebuilding
//! missing or corrupt shards from the others. Used on read (a bad shard queues the key), by
//! the drive monitor after a wipe, and by `strata admin heal`.

use crate::bitrot;
use crate::drive::{Commit, ShardWriter};
use crate::error::{Result, StorageError};
use crate::list::{key_successor, merge_batches};
use crate::meta::{BucketRecord, DataLocation, ObjectRecord};
use crate::read::BlockReader;
use crate::set::ErasureSet;
use crate::store::Store;
use bytes::Bytes;
use futures::future::join_all;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// What a heal run found and fixed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HealReport {
    pub drives_reinitialised: usize,
    pub buckets_healed: usize,
    pub objects_scanned: usize,
    pub objects_healed: usize,
    /// Drive copies of objects rebuilt (an object rebuilt on two drives counts two).
    pub shards_rebuilt: usize,
    /// Stale records removed from drives that missed a delete.
    pub records_removed: usize,
    pub failures: Vec<String>,
}

/// How far the heal in progress (or the last one) got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealProgress {
    pub running: bool,
    /// Keys to look at, counted when the heal started.
    pub objects_total: u64,
    pub objects_scanned: u64,
    pub objects_healed: u64,
}

/// What healing one key changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectHeal {
    pub rebuilt: usize,
    pub removed: usize,
    /// Drive copies that could not be written or removed.
    pub failed: usize,
}

impl ErasureSet {
    /// Removes part files that no version lists from each agreeing drive's data directories:
    /// a completion prunes unlisted parts only after its quorum, so a crash in between
    /// leaves them.
    async fn prune_unlisted_parts(
        &self,
        bucket: &str,
        key: &str,
        agreeing: &[Option<ObjectRecord>],
    ) {
        let prunes = agreeing.iter().enumerate().flat_map(|(d, rec)| {
            let versions = rec.iter().flat_map(|r| &r.versions);
            versions
                .filter_map(|v| v.object.as_ref())
                .filter_map(move |obj| {
                    let DataLocation::Dir(id) = obj.data else {
                        return None;
                    };
                    let keep = obj.parts.iter().map(|p| p.number).collect();
                    Some(self.drives[d].prune_parts(id, keep))
                })
        });
        for r in join_all(prunes).await {
            if let Err(e) = r {
                tracing::debug!(%bucket, %key, error = %e, "could not prune a data directory");
            }
        }
    }

    /// Heals one key on every online drive of the set.
    pub async fn heal_object(self: &Arc<Self>, bucket: &str, key: &str) -> Result<ObjectHeal> {
        let _guard = self.locks.lock(bucket, key).await?;
        let records = self.read_records(bucket, key).await;
        let agreement = self.agree(&records)?;
        let mut result = ObjectHeal::default();
        if agreement.value.is_none() {
            // The key is gone by quorum; drop it from drives that missed the delete.
            for (d, rec) in records.iter().enumerate() {
                if let Some(Some(rec)) = rec {
                    let commit = Commit {
                        bucket: bucket.into(),
                        key: key.into(),
                        record: None,
                        staged: vec![],
                        free: rec.data_dirs(),
                    };
                    match self.drives[d].commit(commit).await {
                        Ok(()) => result.removed += 1,
                        Err(_) => result.failed += 1,
                    }
                }
            }
            return Ok(result);
        }
        let agreeing: Vec<Option<ObjectRecord>> = records
            .iter()
            .zip(&agreement.agree)
            .map(|(r, ok)| if *ok { r.clone().flatten() } else { None })
            .collect();
        let model = agreeing
            .iter()
            .flatten()
            .next()
            .cloned()
            .expect("quorum has a record");

        // Which drives hold a bad or missing copy of any version?
        let mut bad = vec![false; self.drives.len()];
        for (vi, version) in model.versions.iter().enumerate() {
            // A tiered version has no shards here: its record is all there is to heal.
            let Some(obj) = version.object.as_ref().filter(|o| !o.reads_remote()) else {
                continue;
            };
            let mut reader = BlockReader::for_version(self.clone(), &agreeing, vi);
            for part in &obj.parts {
                for index in 0..self.layout.block_count(part.size) {
                    reader.read_all_shards(part, index).await?;
                }
            }
            for (d, b) in bad.iter_mut().enumerate() {
                *b |= reader.bad[self.shard_of(d, bucket, key)];
            }
        }
        for (d, b) in bad.iter_mut().enumerate() {
            *b |= !agreement.agree[d];
            // Only a drive that answered: the copy it has must be known to be freed when the
            // healed one replaces it (a drive that just came back may have a copy already).
            *b &= self.drives[d].is_online() && records[d].is_some();
        }
        self.prune_unlisted_parts(bucket, key, &agreeing).await;
        let targets: Vec<usize> = (0..self.drives.len()).filter(|d| bad[*d]).collect();
        if targets.is_empty() {
            return Ok(result);
        }

        // Rebuild each target's copy of every version, then commit it in one step per drive.
        let mut new_records: BTreeMap<usize, ObjectRecord> =
            targets.iter().map(|d| (*d, model.clone())).collect();
        let mut staged: BTreeMap<usize, Vec<Uuid>> = BTreeMap::new();
        let rebuilt = self
            .rebuild_copies(
                bucket,
                key,
                &model,
                &agreeing,
                &targets,
                &mut new_records,
                &mut staged,
            )
            .await;
        if let Err(e) = rebuilt {
            for (d, ids) in &staged {
                self.drop_missed([*d], ids);
            }
            return Err(e);
        }
        let commits = targets.iter().map(|d| {
            let commit = Commit {
                bucket: bucket.into(),
                key: key.into(),
                record: new_records.remove(d),
                staged: staged.get(d).cloned().unwrap_or_default(),
                free: records[*d]
                    .clone()
                    .flatten()
                    .map(|r| r.data_dirs())
                    .unwrap_or_default(),
            };
            self.drives[*d].commit(commit)
        });
        for (d, r) in targets.iter().zip(join_all(commits).await) {
            match r {
                Ok(()) => result.rebuilt += 1,
                Err(e) => {
                    tracing::warn!(%bucket, %key, error = %e, "could not write a healed copy");
                    result.failed += 1;
                    self.drop_missed([*d], staged.get(d).map_or(&[][..], |ids| ids));
                }
            }
        }
        Ok(result)
    }

    /// Writes every target drive's copy of every version of `model`: shards into staging
    /// directories (listed in `staged` as they are created), inline data into `new_records`.
    #[allow(clippy::too_many_arguments)]
    async fn rebuild_copies(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        model: &ObjectRecord,
        agreeing: &[Option<ObjectRecord>],
        targets: &[usize],
        new_records: &mut BTreeMap<usize, ObjectRecord>,
        staged: &mut BTreeMap<usize, Vec<Uuid>>,
    ) -> Result<()> {
        for (vi, version) in model.versions.iter().enumerate() {
            let Some(obj) = version.object.as_ref().filter(|o| !o.reads_remote()) else {
                continue;
            };
            let inline = matches!(obj.data, DataLocation::Inline(_));
            let mut reader = BlockReader::for_version(self.clone(), agreeing, vi);
            let ids: BTreeMap<usize, Uuid> = targets.iter().map(|d| (*d, Uuid::new_v4())).collect();
            if !inline {
                // Recorded before any shard is written, so a failure can discard them.
                for d in targets {
                    staged.entry(*d).or_default().push(ids[d]);
                }
            }
            let mut inline_bytes: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
            for part in &obj.parts {
                let mut writers: BTreeMap<usize, Box<dyn ShardWriter>> = BTreeMap::new();
                if !inline {
                    for d in targets {
                        writers
                            .insert(*d, self.drives[*d].create_shard(ids[d], part.number).await?);
                    }
                }
                for index in 0..self.layout.block_count(part.size) {
                    let shards = reader.read_all_shards(part, index).await?;
                    for d in targets {
                        let shard = shards[self.shard_of(*d, bucket, key)]
                            .as_ref()
                            .expect("reconstructed");
                        let mut framed = Vec::with_capacity(shard.len() + 16);
                        bitrot::frame_into(&mut framed, shard);
                        match writers.get_mut(d) {
                            Some(w) => w.write(Bytes::from(framed)).await?,
                            None => inline_bytes
                                .entry(*d)
                                .or_default()
                                .extend_from_slice(&framed),
                        }
                    }
                }
                for (_, w) in writers {
                    w.finish().await?;
                }
            }
            for d in targets {
                let o = new_records.get_mut(d).expect("target").versions[vi]
                    .object
                    .as_mut()
                    .expect("object");
                o.erasure.shard_index = self.shard_of(*d, bucket, key);
                o.data = if inline {
                    DataLocation::Inline(inline_bytes.remove(d).unwrap_or_default())
                } else {
                    DataLocation::Dir(ids[d])
                };
            }
        }
        Ok(())
    }

    /// Every key any online drive of the set has in `bucket`, in order, one page at a time.
    async fn union_keys(
        &self,
        bucket: &str,
        lower: &[u8],
    ) -> Result<(Vec<String>, Option<Vec<u8>>)> {
        const PAGE: usize = 1000;
        let answers = join_all(self.drives.iter().map(|d| async move {
            if d.is_online() {
                d.list_records(bucket, lower, None, PAGE).await.ok()
            } else {
                None
            }
        }))
        .await;
        let batches: Vec<(Vec<(String, ())>, bool)> = answers
            .into_iter()
            .map(|a| {
                let keys: Vec<(String, ())> = a
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, _)| (k, ()))
                    .collect();
                let full = keys.len() >= PAGE;
                (keys, full)
            })
            .collect();
        let (merged, horizon) = merge_batches(batches);
        Ok((
            merged.into_keys().collect(),
            horizon.map(|h| key_successor(h.as_bytes())),
        ))
    }
}

impl Store {
    /// Heals every bucket and object of the deployment and reports what it fixed.
    pub async fn heal_all(&self) -> Result<HealReport> {
        let _one_at_a_time = self.healing.lock().await;
        let mut report = HealReport {
            drives_reinitialised: self.check_drives().await?,
            ..Default::default()
        };
        report.buckets_healed = self.heal_buckets().await?;
        let buckets = self.list_buckets().await?;
        let mut total = 0u64;
        for bucket in &buckets {
            for set in self.sets() {
                let mut lower = Vec::new();
                loop {
                    let (keys, next) = set.union_keys(&bucket.name, &lower).await?;
                    total += keys.len() as u64;
                    match next {
                        Some(n) => lower = n,
                        None => break,
                    }
                }
            }
        }
        self.set_heal_progress(HealProgress {
            running: true,
            objects_total: total,
            ..Default::default()
        });
        let healed = self.heal_objects(&buckets, &mut report).await;
        self.set_heal_progress(HealProgress {
            running: false,
            objects_total: total.max(report.objects_scanned as u64),
            objects_scanned: report.objects_scanned as u64,
            objects_healed: report.objects_healed as u64,
        });
        healed?;
        Ok(report)
    }

    fn set_heal_progress(&self, progress: HealProgress) {
        *self.heal_progress.lock().expect("lock") = progress;
    }

    /// How far the heal in progress (or the last one) got.
    pub fn heal_progress(&self) -> HealProgress {
        *self.heal_progress.lock().expect("lock")
    }

    /// Heals every object of `buckets`, adding to `report` (and to the progress) as it goes.
    async fn heal_objects(&self, buckets: &[BucketRecord], report: &mut HealReport) -> Result<()> {
        for bucket in buckets {
            for set in self.sets() {
                let mut lower = Vec::new();
                loop {
                    let (keys, next) = set.union_keys(&bucket.name, &lower).await?;
                    for key in keys {
                        report.objects_scanned += 1;
                        let healed = set.heal_object(&bucket.name, &key).await;
                        match healed {
                            Ok(h) => {
                                report.shards_rebuilt += h.rebuilt;
                                report.records_removed += h.removed;
                                if h.rebuilt > 0 {
                                    report.objects_healed += 1;
                                }
                                if h.failed > 0 {
                                    report.failures.push(format!(
                                        "{}/{key}: {} drive copies could not be written",
                                        bucket.name, h.failed
                                    ));
                                }
                            }
                            Err(e) => report.failures.push(format!("{}/{key}: {e}", bucket.name)),
                        }
                        let mut progress = self.heal_progress.lock().expect("lock");
                        progress.objects_scanned = report.objects_scanned as u64;
                        progress.objects_healed = report.objects_healed as u64;
                    }
                    match next {
                        Some(n) => lower = n,
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }

    /// Copies buckets a quorum knows to drives that lack them or have an older copy, and
    /// drops buckets only a minority still has; returns how many drive copies changed.
    async fn heal_buckets(&self) -> Result<usize> {
        if self.has_catalog() {
            return Ok(0); // the control plane keeps them, not the drives
        }
        let known = self.bucket_records().await?;
        let mut changed = 0;
        for drive in self.drives().iter().filter(|d| d.is_online()) {
            let have = drive.list_buckets().await?;
            for b in &known {
                // Missing, or an older copy (the drive missed a change while offline).
                if !have
                    .iter()
                    .any(|h| h.name == b.name && h.age_key() >= b.age_key())
                {
                    drive.put_bucket(b).await?;
                    changed += 1;
                }
            }
            for h in &have {
                if !known.iter().any(|b| b.name == h.name) {
                    drive.delete_bucket(&h.name).await?;
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }
}

impl From<StorageError> for HealReport {
    fn from(e: StorageError) -> Self {
        HealReport {
            failures: vec![e.to_string()],
            ..Default::default()
        }
    }
}
