//! An erasure set: a fixed group of drives that together hold every object hashed to it.
//! This file has the write path (stage, then commit under the key's lock) and record reads
//! with quorum; reading data, listing, multipart and healing live beside it.

use crate::drive::{Drive, Format, ShardWriter};
use crate::erasure::Erasure;
use crate::error::{Result, StorageError};
use crate::heal_queue::HealQueue;
use crate::layout::{self, ErasureLayout, INLINE_LIMIT};
use crate::locks::KeyLocks;
use crate::meta::{
    now_ns, ContentHeaders, DataLocation, ErasureInfo, ObjectRecord, ObjectVersion, PartInfo,
    Retention, StoredChecksum, VersionRecord,
};
use crate::quorum::{self, Agreement};
use crate::versions::{Versioning, Which};
use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// A request body or other byte source being written.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// What a PUT stores besides the bytes.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub headers: ContentHeaders,
    pub user_metadata: BTreeMap<String, String>,
    pub storage_class: String,
    pub tags: BTreeMap<String, String>,
    pub checksum: Option<StoredChecksum>,
    pub precondition: Precondition,
    pub versioning: Versioning,
    pub retention: Option<Retention>,
    /// The legal hold status the request gave, if it gave one.
    pub legal_hold: Option<bool>,
    /// The version is a replica of another site's version (a replication target's write).
    pub replica: Option<crate::replication::ReplicaOf>,
}

/// Conditional-write headers (`If-None-Match: *`, `If-Match`).
#[derive(Clone, Debug, Default)]
pub struct Precondition {
    pub if_none_match_any: bool,
    pub if_match: Option<String>,
}

/// Shards written to every drive's staging area, not yet visible. Dropping it discards them.
pub struct Staged {
    pub staging: Uuid,
    pub part: u32,
    pub size: u64,
    pub md5: [u8; 16],
    /// Per drive position: framed shard bytes when the object is small enough to inline.
    inline: Option<Vec<Vec<u8>>>,
    /// Per drive position: whether the drive holds its shard.
    pub(crate) written: Vec<bool>,
    drives: Vec<Arc<dyn Drive>>,
    committed: bool,
}

impl Staged {
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }

    /// The shards now belong to a committed record or part; do not discard them.
    pub(crate) fn mark_committed(&mut self) {
        self.committed = true;
    }

    /// Per drive position, the framed shard bytes to inline in the record, when the staged
    /// bytes are small enough (taken: a second call answers `None`).
    pub(crate) fn take_inline(&mut self) -> Option<Vec<Vec<u8>>> {
        self.inline.take()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.committed || self.inline.is_some() {
            return;
        }
        let (drives, staging) = (self.drives.clone(), self.staging);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                join_all(drives.iter().map(|d| d.discard_staging(staging))).await;
            });
        }
    }
}

/// A version as a quorum of drives sees it, with each agreeing drive's own record.
#[derive(Clone)]
pub struct ObjectView {
    pub version: VersionRecord,
    /// Position of the version in the records (0 = newest).
    pub index: usize,
    /// Per drive position: the drive's record when it agrees with the quorum.
    pub records: Vec<Option<ObjectRecord>>,
}

impl ObjectView {
    pub fn object(&self) -> &ObjectVersion {
        self.version
            .object
            .as_ref()
            .expect("views are only built for objects")
    }

    pub fn into_object(self) -> ObjectVersion {
        self.version
            .object
            .expect("views are only built for objects")
    }
}

/// Which record version fields must match across drives.
type Fingerprint = Vec<(Option<Uuid>, i64, Option<String>, Option<u64>, i64)>;

fn fingerprint(r: &ObjectRecord) -> Fingerprint {
    r.versions
        .iter()
        .map(|v| {
            let (id, t, etag, size, changed) = v.fingerprint();
            (id, t, etag.map(str::to_owned), size, changed)
        })
        .collect()
}

/// A fixed group of drives holding the objects hashed to it.
pub struct ErasureSet {
    pub index: usize,
    pub(crate) drives: Vec<Arc<dyn Drive>>,
    pub(crate) formats: Vec<Format>,
    pub(crate) layout: ErasureLayout,
    pub(crate) erasure: Arc<Erasure>,
    pub(crate) locks: KeyLocks,
    pub(crate) heal_queue: Arc<HealQueue>,
    /// Where changes hand remote objects they stop referencing (shared by the store's sets).
    pub(crate) remote_releases: crate::tiered::ReleaseHook,
    /// Where changes queue the versions they send to replication targets (shared too).
    pub(crate) replication: crate::replication::Hook,
    /// Bytes each drive keeps free; `u64::MAX` means each drive's default reserve.
    min_free: AtomicU64,
}

impl ErasureSet {
    pub(crate) fn new(
        index: usize,
        drives: Vec<Arc<dyn Drive>>,
        formats: Vec<Format>,
        layout: ErasureLayout,
        heal_queue: Arc<HealQueue>,
        remote_releases: crate::tiered::ReleaseHook,
        replication: crate::replication::Hook,
    ) -> Self {
        Self {
            index,
            drives,
            formats,
            erasure: Arc::new(Erasure::new(layout)),
            layout,
            locks: KeyLocks::default(),
            heal_queue,
            remote_releases,
            replication,
            min_free: AtomicU64::new(u64::MAX),
        }
    }

    /// Sets the bytes every drive keeps free (`None`: 1 % of the drive, at most 1 GiB).
    pub fn set_min_free(&self, bytes: Option<u64>) {
        self.min_free
            .store(bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Refuses new data when fewer than a write quorum of online drives have room above
    /// their reserve: writes stop with a clear error before drives fill up, while reads,
    /// deletes and metadata changes go on. A drive whose space is unknown counts as roomy.
    pub(crate) fn check_space(&self) -> Result<()> {
        let min_free = self.min_free.load(Ordering::Relaxed);
        let online = self.drives.iter().filter(|d| d.is_online()).count();
        if online < self.layout.write_quorum() {
            // Not a full drive but lost ones (a node or drives down): say so.
            return Err(Self::quorum_error(
                "write: drives online",
                online,
                self.layout.write_quorum(),
            ));
        }
        let roomy = self
            .drives
            .iter()
            .filter(|d| d.is_online())
            .filter(|d| {
                d.space().is_none_or(|s| {
                    let reserve = if min_free == u64::MAX {
                        s.default_reserve()
                    } else {
                        min_free
                    };
                    s.free > reserve
                })
            })
            .count();
        if roomy < self.layout.write_quorum() {
            return Err(StorageError::StorageFull);
        }
        Ok(())
    }

    pub fn layout(&self) -> ErasureLayout {
        self.layout
    }

    pub fn drives(&self) -> &[Arc<dyn Drive>] {
        &self.drives
    }

    /// Hash of a key that rotates shard placement.
    pub(crate) fn key_hash(bucket: &str, key: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(format!("{bucket}/{key}").as_bytes())
    }

    pub(crate) fn shard_of(&self, position: usize, bucket: &str, key: &str) -> usize {
        layout::shard_index(position, self.drives.len(), Self::key_hash(bucket, key))
    }

    fn quorum_error(what: &'static str, got: usize, needed: usize) -> StorageError {
        StorageError::Quorum { what, got, needed }
    }

    /// Streams `body` into the staging area of every drive as erasure-coded, bitrot-framed
    /// shard blocks of part `part`, computing the MD5 on the way. Small bodies stay in memory
    /// to be inlined into the record when `allow_inline`.
    pub async fn stage(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        part: u32,
        allow_inline: bool,
    ) -> Result<Staged> {
        self.stage_into(bucket, key, body, part, allow_inline, Uuid::new_v4())
            .await
    }

    /// Stages a version's bytes again, part by part as its part table lays them out, into one
    /// staging directory (a restore or recall from a tier). `open(start, end)` gives the
    /// bytes of each part; each part's MD5 must match the part's ETag.
    pub async fn stage_version<F, Fut>(
        &self,
        bucket: &str,
        key: &str,
        parts: &[PartInfo],
        mut open: F,
    ) -> Result<Staged>
    where
        F: FnMut(u64, u64) -> Fut,
        Fut: std::future::Future<Output = Result<ByteStream>>,
    {
        let staging = Uuid::new_v4();
        let allow_inline = parts.len() == 1;
        let mut done: Option<Staged> = None;
        let mut start = 0u64;
        for part in parts {
            let end = start + part.size;
            let staged = match open(start, end).await {
                Ok(body) => {
                    self.stage_into(bucket, key, body, part.number, allow_inline, staging)
                        .await
                }
                Err(e) => Err(e),
            };
            let mut staged = match staged {
                Ok(s) if s.size == part.size && s.etag() == part.etag => s,
                Ok(s) => Err(StorageError::BadDigest(format!(
                    "part {} read back as {} bytes with MD5 {}, not {} bytes with {}",
                    part.number,
                    s.size,
                    s.etag(),
                    part.size,
                    part.etag
                )))?,
                // Dropping `done` (the only earlier part not marked committed) discards
                // the shared directory.
                Err(e) => return Err(e),
            };
            if let Some(mut previous) = done.take() {
                for (w, p) in staged.written.iter_mut().zip(&previous.written) {
                    *w &= *p;
                }
                previous.mark_committed();
            }
            done = Some(staged);
            start = end;
        }
        match done {
            Some(d) => Ok(d),
            None => Err(StorageError::Corrupt("a version without parts".into())),
        }
    }

    /// [`ErasureSet::stage`] into the staging directory `staging` (several parts may share one).
    pub async fn stage_into(
        &self,
        bucket: &str,
        key: &str,
        mut body: ByteStream,
        part: u32,
        allow_inline: bool,
        staging: Uuid,
    ) -> Result<Staged> {
        self.check_space()?;
        let n = self.drives.len();
        let shard_of: Vec<usize> = (0..n).map(|d| self.shard_of(d, bucket, key)).collect();
        let mut staged = Staged {
            staging,
            part,
            size: 0,
            md5: [0; 16],
            inline: None,
            written: self.drives.iter().map(|d| d.is_online()).collect(),
            drives: self.drives.clone(),
            committed: false,
        };
        let bs = self.layout.block_size;
        let mut md5 = Md5::new();
        let mut carry = Bytes::new();
        let mut writers: Option<Vec<Option<Box<dyn ShardWriter>>>> = None;
        let mut block = read_block(&mut body, &mut carry, bs).await?;
        // Per block: MD5 and erasure coding run on two blocking threads at once, and the next
        // block is read from the network while this one's shards are written.
        loop {
            let last = block.len() < bs;
            staged.size += block.len() as u64;
            let (hashing, encoding) = if block.len() <= HASH_IN_PLACE_LIMIT {
                // Cheaper here than the two thread hand-offs of the blocking pool.
                md5.update(&block);
                (Work::Done(md5), Work::Done(encode(&self.erasure, &block)))
            } else {
                let (b, mut h) = (block.clone(), md5);
                let hashing = tokio::task::spawn_blocking(move || {
                    h.update(&b);
                    h
                });
                let (b, erasure) = (block.clone(), self.erasure.clone());
                let encoding = tokio::task::spawn_blocking(move || encode(&erasure, &b));
                (Work::Pending(hashing), Work::Pending(encoding))
            };
            let shards: Vec<Bytes> = encoding
                .wait()
                .await?
                .into_iter()
                .map(Bytes::from)
                .collect();
            if last && writers.is_none() && allow_inline && staged.size <= INLINE_LIMIT {
                md5 = hashing.wait().await?;
                let inline = (0..n)
                    .map(|d| {
                        shards
                            .get(shard_of[d])
                            .map(|s| s.to_vec())
                            .unwrap_or_default()
                    })
                    .collect();
                staged.inline = Some(inline);
                break;
            }
            if writers.is_none() {
                let created = join_all(self.drives.iter().enumerate().map(|(d, drive)| {
                    let online = staged.written[d];
                    async move {
                        if online {
                            drive.create_shard(staged.staging, part).await.ok()
                        } else {
                            None
                        }
                    }
                }))
                .await;
                writers = Some(created);
            }
            let ws = writers.as_mut().expect("created above");
            let write_shards = join_all(ws.iter_mut().enumerate().map(|(d, w)| {
                let framed = shards.get(shard_of[d]).cloned();
                async move {
                    match (w, framed) {
                        (Some(w), Some(framed)) => w.write(framed).await.is_ok(),
                        (Some(_), None) => true, // an empty object has no blocks
                        (None, _) => false,
                    }
                }
            }));
            let read_next = async {
                if last {
                    Ok(Bytes::new())
                } else {
                    read_block(&mut body, &mut carry, bs).await
                }
            };
            let (results, next) = tokio::join!(write_shards, read_next);
            md5 = hashing.wait().await?;
            for (d, ok) in results.into_iter().enumerate() {
                if !ok {
                    ws[d] = None;
                }
            }
            let alive = ws.iter().filter(|w| w.is_some()).count();
            if alive < self.layout.write_quorum() {
                // Drives that filled up while this write ran say so.
                self.check_space()?;
                return Err(Self::quorum_error(
                    "shard write",
                    alive,
                    self.layout.write_quorum(),
                ));
            }
            if last {
                break;
            }
            block = next?;
        }
        staged.md5 = md5.finalize().into();
        if let Some(ws) = writers {
            let finished = join_all(ws.into_iter().map(|w| async move {
                match w {
                    Some(w) => w.finish().await.is_ok(),
                    None => false,
                }
            }))
            .await;
            staged.written = finished;
            let alive = staged.written.iter().filter(|w| **w).count();
            if alive < self.layout.write_quorum() {
                self.check_space()?;
                return Err(Self::quorum_error(
                    "shard write",
                    alive,
                    self.layout.write_quorum(),
                ));
            }
        }
        Ok(staged)
    }

    /// Reads every drive's record of a key; `None` where the drive did not answer.
    pub(crate) async fn read_records(
        &self,
        bucket: &str,
        key: &str,
    ) -> Vec<Option<Option<ObjectRecord>>> {
        join_all(self.drives.iter().map(|d| async move {
            if !d.is_online() {
                return None;
            }
            d.read_record(bucket, key).await.ok()
        }))
        .await
    }

    /// Resolves per-drive records to the one a read quorum agrees on.
    pub(crate) fn agree(
        &self,
        records: &[Option<Option<ObjectRecord>>],
    ) -> Result<Agreement<Fingerprint>> {
        let answers: Vec<Option<Option<Fingerprint>>> = records
            .iter()
            .map(|r| r.as_ref().map(|r| r.as_ref().map(fingerprint)))
            .collect();
        let newest =
            |a: &Fingerprint, b: &Fingerprint| a.first().map(|v| v.1) > b.first().map(|v| v.1);
        quorum::resolve(&answers, self.layout.read_quorum(), newest)
            .map_err(|got| Self::quorum_error("metadata read", got, self.layout.read_quorum()))
    }

    /// A version of the key as a quorum sees it: `NoSuchKey` / `NoSuchVersion` when there is
    /// none, `DeleteMarker` when the addressed (or current) version is one.
    pub async fn view(&self, bucket: &str, key: &str, which: Which) -> Result<ObjectView> {
        let records = self.read_records(bucket, key).await;
        self.view_of(records, which)
    }

    fn view_of(
        &self,
        records: Vec<Option<Option<ObjectRecord>>>,
        which: Which,
    ) -> Result<ObjectView> {
        let agreement = self.agree(&records)?;
        let missing = match which {
            Which::Current => StorageError::NoSuchKey,
            Which::Version(_) => StorageError::NoSuchVersion,
        };
        if agreement.value.is_none() {
            return Err(missing);
        }
        let records: Vec<Option<ObjectRecord>> = records
            .into_iter()
            .zip(&agreement.agree)
            .map(|(r, ok)| if *ok { r.flatten() } else { None })
            .collect();
        let model = records
            .iter()
            .flatten()
            .next()
            .ok_or(StorageError::NoSuchKey)?;
        let index = match which {
            Which::Current => 0,
            Which::Version(id) => model.position(id).ok_or(missing)?,
        };
        let version = model
            .versions
            .get(index)
            .cloned()
            .ok_or(StorageError::NoSuchKey)?;
        if version.object.is_none() {
            return Err(StorageError::DeleteMarker {
                version_id: version.version_id,
                mod_time_ns: version.mod_time_ns,
                addressed: which != Which::Current,
            });
        }
        Ok(ObjectView {
            version,
            index,
            records,
        })
    }

    pub(crate) fn check_precondition(
        &self,
        records: Vec<Option<Option<ObjectRecord>>>,
        p: &Precondition,
    ) -> Result<()> {
        if !p.if_none_match_any && p.if_match.is_none() {
            return Ok(());
        }
        let current = match self.view_of(records, Which::Current) {
            Ok(view) => Some(view.object().etag.clone()),
            Err(StorageError::NoSuchKey | StorageError::DeleteMarker { .. }) => None,
            Err(e) => return Err(e),
        };
        if p.if_none_match_any && current.is_some() {
            return Err(StorageError::PreconditionFailed);
        }
        if let Some(want) = &p.if_match {
            match &current {
                None => return Err(StorageError::NoSuchKey),
                Some(etag) if !etag_matches(want, etag) => {
                    return Err(StorageError::PreconditionFailed)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Makes a staged object the key's current (unversioned, `null`) version.
    pub async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        mut staged: Staged,
        opts: PutOptions,
    ) -> Result<VersionRecord> {
        let part = PartInfo {
            number: 1,
            size: staged.size,
            etag: staged.etag(),
            checksum: None,
        };
        let object = ObjectVersion {
            size: staged.size,
            etag: staged.etag(),
            headers: opts.headers,
            user_metadata: opts.user_metadata,
            checksum: opts.checksum,
            storage_class: opts.storage_class,
            erasure: ErasureInfo {
                layout: self.layout,
                shard_index: 0,
            },
            parts: vec![part],
            data: DataLocation::Dir(staged.staging),
            tags: opts.tags,
            retention: opts.retention,
            legal_hold: opts.legal_hold == Some(true),
            legal_hold_set: opts.legal_hold.is_some(),
            transition: None,
            restore: None,
            metadata_changed_ns: 0,
        };
        let _guard = self.locks.lock(bucket, key).await?;
        let records = self.read_records(bucket, key).await;
        self.check_precondition(records.clone(), &opts.precondition)?;
        let version = VersionRecord {
            version_id: None,
            mod_time_ns: now_ns(),
            object: Some(object),
            lifecycle_marker: false,
            replication: Default::default(),
        };
        let inline = staged.inline.take();
        let new_dirs: Vec<Uuid> = if inline.is_none() {
            vec![staged.staging]
        } else {
            vec![]
        };
        let mut plan =
            self.plan_new_version(&records, opts.versioning, opts.replica, version, |d, v| {
                let obj = v.object.as_mut().expect("object version");
                obj.erasure.shard_index = self.shard_of(d, bucket, key);
                if let Some(inline) = &inline {
                    obj.data = DataLocation::Inline(inline[d].clone());
                }
            })?;
        // A drive whose shards were not staged takes no record (it is healed).
        for (d, written) in staged.written.iter().enumerate() {
            if !written {
                plan.records[d] = None;
            }
        }
        let version = self.apply(bucket, key, &records, plan, &new_dirs).await?;
        staged.committed = true;
        Ok(version)
    }
}

impl ErasureSet {
    /// Drops, in the background, what `drives` staged for a commit they missed (or a heal
    /// that failed before committing): the staging directories, and the data directories of
    /// a commit that failed after moving them into place (only when no record references
    /// them). Healing writes the drives' copies anew.
    pub(crate) fn drop_missed(&self, drives: impl IntoIterator<Item = usize>, staged: &[Uuid]) {
        let missed: Vec<Arc<dyn Drive>> =
            drives.into_iter().map(|d| self.drives[d].clone()).collect();
        if missed.is_empty() || staged.is_empty() {
            return;
        }
        let staged = staged.to_vec();
        tokio::spawn(async move {
            for drive in missed {
                for id in &staged {
                    if let Err(e) = drive.discard_staging(*id).await {
                        tracing::debug!(drive = drive.label(), error = %e, "could not discard staged shards");
                    }
                }
                if let Err(e) = drive.remove_data(staged.clone()).await {
                    tracing::debug!(drive = drive.label(), error = %e, "could not remove unreferenced data");
                }
            }
        });
    }
}

/// Compares an `If-Match`-style value (quoted or not, or `*`) with a stored ETag.
pub fn etag_matches(want: &str, etag: &str) -> bool {
    want.split(',')
        .map(|w| w.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|w| w == "*" || w == etag)
}

/// Blocks up to this size are hashed and encoded on the request's own task.
const HASH_IN_PLACE_LIMIT: usize = 64 * 1024;

/// A result computed in place or on the blocking pool.
enum Work<T> {
    Done(T),
    Pending(tokio::task::JoinHandle<T>),
}

impl<T> Work<T> {
    async fn wait(self) -> Result<T> {
        match self {
            Work::Done(v) => Ok(v),
            Work::Pending(handle) => handle.await.map_err(join_error),
        }
    }
}

/// The framed shards of one block; an empty object has none.
fn encode(erasure: &Erasure, block: &[u8]) -> Vec<Vec<u8>> {
    if block.is_empty() {
        Vec::new()
    } else {
        erasure.encode_block(block)
    }
}

fn join_error(e: tokio::task::JoinError) -> StorageError {
    StorageError::Io(std::io::Error::other(e))
}

/// Reads the next block of `size` bytes (less only at the end of the body) into one buffer
/// of exactly that size; `carry` holds what the last network chunk had beyond the block.
async fn read_block(body: &mut ByteStream, carry: &mut Bytes, size: usize) -> Result<Bytes> {
    let mut block = BytesMut::with_capacity(size);
    while block.len() < size {
        if carry.is_empty() {
            match body.next().await {
                Some(chunk) => *carry = chunk?,
                None => break,
            }
        }
        let take = (size - block.len()).min(carry.len());
        block.extend_from_slice(&carry.split_to(take));
    }
    Ok(block.freeze())
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn etag_matching_accepts_quotes_lists_and_star() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("abc", "abc"));
        assert!(etag_matches("\"x\", \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}
