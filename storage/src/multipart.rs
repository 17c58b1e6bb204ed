//! Multipart uploads. Parts are staged like any object body and moved into the upload's
//! directory; completing turns that directory into the object's data directory, so no part
//! is ever copied.

use crate::drive::{Commit, PartRecord};
use crate::error::{Result, StorageError};
use crate::meta::{
    now_ns, v7_time_ns, DataLocation, ErasureInfo, ObjectRecord, ObjectVersion, PartInfo,
    UploadRecord, VersionRecord,
};
use crate::set::{etag_matches, ErasureSet, PutOptions, Staged};
use futures::future::join_all;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Smallest size of every part but the last, as AWS requires.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

impl ErasureSet {
    fn count_ok<T>(&self, results: &[Result<T>], what: &'static str) -> Result<()> {
        let ok = results.iter().filter(|r| r.is_ok()).count();
        if ok < self.layout.write_quorum() {
            return Err(StorageError::Quorum {
                what,
                got: ok,
                needed: self.layout.write_quorum(),
            });
        }
        Ok(())
    }

    /// Starts an upload; the options become the object's metadata when it completes.
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        opts: &PutOptions,
        checksum_type: Option<String>,
    ) -> Result<UploadRecord> {
        // Time-ordered ids, initiated at the id's own time: ordering uploads by (initiation,
        // id), as ListMultipartUploads does, is ordering them by id, so an upload-id marker
        // keeps its place even after its upload ends.
        let upload_id = Uuid::now_v7();
        let upload = UploadRecord {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id,
            initiated_ns: v7_time_ns(upload_id).unwrap_or_else(now_ns),
            headers: opts.headers.clone(),
            user_metadata: opts.user_metadata.clone(),
            storage_class: opts.storage_class.clone(),
            checksum_algorithm: opts.checksum.as_ref().map(|c| c.algorithm.clone()),
            checksum_type,
            tags: opts.tags.clone(),
            retention: opts.retention.clone(),
            legal_hold: opts.legal_hold,
            erasure: ErasureInfo {
                layout: self.layout,
                shard_index: 0,
            },
        };
        let results = join_all(self.drives.iter().enumerate().map(|(d, drive)| {
            let u = self.drive_upload(&upload, d);
            async move { drive.put_upload(&u).await }
        }))
        .await;
        self.count_ok(&results, "upload create")?;
        Ok(upload)
    }

    /// Drive `d`'s copy of an upload record: the shard index is the drive's own.
    fn drive_upload(&self, upload: &UploadRecord, d: usize) -> UploadRecord {
        let mut u = upload.clone();
        u.erasure.shard_index = self.shard_of(d, &upload.bucket, &upload.key);
        u
    }

    /// The upload as a quorum of drives knows it; `NoSuchUpload` if it is not for this key.
    pub async fn upload(&self, bucket: &str, key: &str, upload_id: Uuid) -> Result<UploadRecord> {
        let answers = join_all(self.drives.iter().map(|d| d.get_upload(upload_id))).await;
        let found: Vec<UploadRecord> = answers
            .into_iter()
            .filter_map(|a| a.ok().flatten())
            .collect();
        match found.first() {
            Some(u)
                if u.bucket == bucket
                    && u.key == key
                    && found.len() >= self.layout.read_quorum() =>
            {
                Ok(u.clone())
            }
            _ => Err(StorageError::NoSuchUpload),
        }
    }

    /// Records a staged part in the upload, replacing an earlier part with the same number.
    pub async fn commit_part(
        &self,
        upload_id: Uuid,
        mut staged: Staged,
        checksum: Option<String>,
    ) -> Result<PartRecord> {
        let part = PartRecord {
            number: staged.part,
            size: staged.size,
            etag: staged.etag(),
            checksum,
            mod_time_ns: now_ns(),
            staging: staged.staging,
        };
        let results = join_all(
            self.drives
                .iter()
                .map(|d| d.commit_part(upload_id, part.clone())),
        )
        .await;
        staged.mark_committed();
        let missed = results.iter().enumerate().filter(|(_, r)| r.is_err());
        self.drop_missed(missed.map(|(d, _)| d), &[part.staging]);
        self.count_ok(&results, "part commit")?;
        Ok(part)
    }

    /// The upload's parts that a read quorum of drives agrees on, by number.
    pub async fn parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>> {
        let answers = join_all(self.drives.iter().map(|d| d.list_parts(upload_id))).await;
        let mut counts: BTreeMap<u32, Vec<(PartRecord, usize)>> = BTreeMap::new();
        for part in answers.into_iter().flatten().flatten() {
            let groups = counts.entry(part.number).or_default();
            match groups.iter_mut().find(|(p, _)| *p == part) {
                Some((_, n)) => *n += 1,
                None => groups.push((part, 1)),
            }
        }
        Ok(counts
            .into_values()
            .filter_map(|groups| {
                groups
                    .into_iter()
                    .filter(|(_, n)| *n >= self.layout.read_quorum())
                    .max_by_key(|(p, _)| p.mod_time_ns)
            })
            .map(|(p, _)| p)
            .collect())
    }

    /// Completes an upload from the client's list of (part number, ETag).
    pub async fn complete_upload(
        &self,
        upload: &UploadRecord,
        requested: &[(u32, String)],
        opts: PutOptions,
    ) -> Result<VersionRecord> {
        let (bucket, key) = (upload.bucket.as_str(), upload.key.as_str());
        let _guard = self.locks.lock(bucket, key).await?;
        // A completion (or abort) that held the lock before may have ended the upload: then
        // this one is NoSuchUpload, which a retried completion turns into the first answer.
        self.upload(bucket, key, upload.upload_id).await?;
        let available: BTreeMap<u32, PartRecord> = self
            .parts(upload.upload_id)
            .await?
            .into_iter()
            .map(|p| (p.number, p))
            .collect();
        if requested.is_empty() {
            return Err(StorageError::InvalidPart(
                "you must specify at least one part".into(),
            ));
        }
        let mut parts = Vec::with_capacity(requested.len());
        let mut md5s = Md5::new();
        if requested.windows(2).any(|w| w[1].0 <= w[0].0) {
            return Err(StorageError::InvalidPartOrder);
        }
        for (i, (number, etag)) in requested.iter().enumerate() {
            let part = available
                .get(number)
                .filter(|p| etag_matches(etag, &p.etag) && etag.trim() != "*")
                .ok_or_else(|| {
                    StorageError::InvalidPart(format!(
                        "part {number} was not uploaded or its ETag does not match"
                    ))
                })?;
            if i + 1 < requested.len() && part.size < MIN_PART_SIZE {
                return Err(StorageError::EntityTooSmall(*number));
            }
            md5s.update(
                hex::decode(&part.etag)
                    .map_err(|_| StorageError::Corrupt("part etag is not hex".into()))?,
            );
            parts.push(PartInfo {
                number: part.number,
                size: part.size,
                etag: part.etag.clone(),
                checksum: part.checksum.clone(),
            });
        }
        let records = self.read_records(bucket, key).await;
        self.check_precondition(records.clone(), &opts.precondition)?;
        let keep: Vec<u32> = parts.iter().map(|p| p.number).collect();
        let object = ObjectVersion {
            size: parts.iter().map(|p| p.size).sum(),
            etag: format!("{}-{}", hex::encode(md5s.finalize()), parts.len()),
            headers: upload.headers.clone(),
            user_metadata: upload.user_metadata.clone(),
            checksum: opts.checksum,
            storage_class: upload.storage_class.clone(),
            erasure: ErasureInfo {
                layout: upload.erasure.layout,
                shard_index: 0,
            },
            parts,
            data: DataLocation::Dir(upload.upload_id),
            tags: upload.tags.clone(),
            retention: opts.retention,
            legal_hold: opts.legal_hold == Some(true),
            legal_hold_set: opts.legal_hold.is_some(),
            transition: None,
            restore: None,
            metadata_changed_ns: 0,
        };
        let version = VersionRecord {
            version_id: None,
            mod_time_ns: now_ns(),
            object: Some(object),
            lifecycle_marker: false,
            replication: Default::default(),
        };
        let mut plan =
            self.plan_new_version(&records, opts.versioning, opts.replica, version, |d, v| {
                v.object.as_mut().expect("object").erasure.shard_index =
                    self.shard_of(d, bucket, key);
            })?;
        let queueing = self.before_commit(bucket, key, &records, &mut plan)?;
        let sent: Vec<bool> = plan.records.iter().map(Option::is_some).collect();
        let commits = join_all(self.drives.iter().enumerate().map(|(d, drive)| {
            let commit = plan.records[d].clone().map(|record| Commit {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                record,
                staged: vec![],
                free: vec![],
            });
            async move {
                match commit {
                    Some(c) => drive.complete_upload(upload.upload_id, c).await.is_ok(),
                    None => false,
                }
            }
        }));
        let (results, ()) = tokio::join!(commits, async {
            if let Some(q) = queueing {
                q.await
            }
        });
        let ok = results.iter().filter(|r| **r).count();
        if ok < self.layout.write_quorum() {
            let parts: Vec<PartRecord> = available.into_values().collect();
            self.roll_back_completion(upload, &parts, &records, &sent)
                .await;
            return Err(StorageError::Quorum {
                what: "complete",
                got: ok,
                needed: self.layout.write_quorum(),
            });
        }
        if available.len() > keep.len() {
            let prune = results
                .iter()
                .enumerate()
                .filter(|(_, ok)| **ok)
                .map(|(d, _)| self.drives[d].prune_parts(upload.upload_id, keep.clone()));
            for r in join_all(prune).await {
                if let Err(e) = r {
                    tracing::warn!(%bucket, %key, error = %e, "could not remove unlisted parts");
                }
            }
        }
        self.release_removed(bucket, key, &results, plan.removed)
            .await;
        Ok(plan.outcome)
    }

    /// The version a completed upload became, while it exists: its data directory is the
    /// upload's, so the object record itself remembers which upload made it, durably and with
    /// no table to expire. A completion's retry is answered from it (SDKs retry a completion
    /// whose answer was lost). `None` when no version of the key came from `upload_id`.
    pub async fn completed_version(
        &self,
        bucket: &str,
        key: &str,
        upload_id: Uuid,
    ) -> Result<Option<VersionRecord>> {
        let records = self.read_records(bucket, key).await;
        let agreement = self.agree(&records)?;
        let made_by_upload = |v: &VersionRecord| {
            v.object
                .as_ref()
                .is_some_and(|o| o.data == DataLocation::Dir(upload_id))
        };
        Ok(records
            .into_iter()
            .zip(&agreement.agree)
            .find_map(|(r, ok)| if *ok { r.flatten() } else { None })
            .and_then(|model| model.versions.into_iter().find(made_by_upload)))
    }

    /// Rolls back a completion that missed its quorum on every drive it was sent to (one that
    /// answered with an error may still have committed): the record is the previous one
    /// again and the upload, with all its parts, is open for a retry.
    async fn roll_back_completion(
        &self,
        upload: &UploadRecord,
        parts: &[PartRecord],
        previous: &[Option<Option<ObjectRecord>>],
        sent: &[bool],
    ) {
        let (bucket, key) = (&upload.bucket, &upload.key);
        let undo = sent.iter().enumerate().filter(|(_, s)| **s).map(|(d, _)| {
            let commit = Commit {
                bucket: bucket.clone(),
                key: key.clone(),
                record: previous[d].clone().flatten(),
                staged: vec![],
                free: vec![],
            };
            let u = self.drive_upload(upload, d);
            async move {
                self.drives[d]
                    .reopen_upload(&u, parts.to_vec(), commit)
                    .await
            }
        });
        let mut failed = false;
        for r in join_all(undo).await {
            if let Err(e) = r {
                tracing::warn!(%bucket, %key, error = %e, "could not roll back a failed completion on a drive");
                failed = true;
            }
        }
        if failed {
            self.heal_queue.push(bucket, key);
        }
    }

    /// Aborts an upload under its key's lock, so it never interleaves with a completion (or
    /// that completion's rollback); `NoSuchUpload` when a completion got there first.
    pub async fn abort_upload(&self, upload: &UploadRecord) -> Result<()> {
        let (bucket, key, id) = (&upload.bucket, &upload.key, upload.upload_id);
        let _guard = self.locks.lock(bucket, key).await?;
        self.upload(bucket, key, id).await?;
        let results = join_all(self.drives.iter().map(|d| d.abort_upload(id))).await;
        self.count_ok(&results, "abort")
    }

    /// Uploads in progress in `bucket` that a read quorum of drives knows.
    pub async fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadRecord>> {
        let answers = join_all(self.drives.iter().map(|d| d.list_uploads(bucket))).await;
        let mut counts: BTreeMap<Uuid, (UploadRecord, usize)> = BTreeMap::new();
        for u in answers.into_iter().flatten().flatten() {
            counts.entry(u.upload_id).or_insert((u, 0)).1 += 1;
        }
        Ok(counts
            .into_values()
            .filter(|(_, n)| *n >= self.layout.read_quorum())
            .map(|(u, _)| u)
            .collect())
    }
}
