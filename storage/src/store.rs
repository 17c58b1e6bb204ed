//! The store: all erasure sets of the deployment. It places each key in one set by a keyed
//! hash, keeps bucket records on every drive, merges listings across sets and runs the
//! background work (heal queue, drive monitor, garbage collection).

use crate::drive::{Drive, Format};
use crate::error::{Result, StorageError};
use crate::heal_queue::{HealKey, HealQueue, HealQueueStats};
use crate::layout::ErasureLayout;
use crate::list::{key_successor, prefix_successor, ListPage, ListedObject};
use crate::meta::{now_ns, BucketRecord, ObjectRecord, UploadRecord, VersionRecord};
use crate::set::ErasureSet;
use futures::future::join_all;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use uuid::Uuid;

/// The largest erasure set.
pub const MAX_SET_DRIVES: usize = 16;

/// All erasure sets of the deployment.
pub struct Store {
    pub deployment_id: Uuid,
    sets: Vec<Arc<ErasureSet>>,
    drives: Vec<Arc<dyn Drive>>,
    heal_queue: Arc<HealQueue>,
    heal_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<HealKey>>>,
    /// Bucket records read from a quorum, by name, with when they were read.
    bucket_cache: std::sync::RwLock<std::collections::HashMap<String, (BucketRecord, Instant)>>,
    /// In a cluster: how other nodes learn that a bucket record changed.
    peers_notifier: std::sync::OnceLock<BucketNotifier>,
    /// In a cluster: where bucket records live instead of the drives (the control plane).
    catalog: std::sync::OnceLock<Arc<dyn crate::catalog::BucketCatalog>>,
    /// One full heal at a time; a second caller waits, then runs its own pass.
    pub(crate) healing: tokio::sync::Mutex<()>,
    pub(crate) heal_progress: std::sync::Mutex<crate::heal::HealProgress>,
    /// Counts bucket configuration changes, so background work (lifecycle) reacts at once.
    config_changes: tokio::sync::watch::Sender<u64>,
    remote_releases: crate::tiered::ReleaseHook,
    replication: crate::replication::Hook,
}

/// The lock names of bucket records (no bucket name starts with a dot, so no object's lock
/// shares one).
const BUCKET_LOCKS: &str = ".strata-bucket";

/// How long a node trusts a cached bucket record in a cluster, should a peer's notice of a
/// change be lost.
const CLUSTER_BUCKET_CACHE: Duration = Duration::from_secs(5);

/// Tells the other nodes that the named bucket's record changed; resolves once they were told
/// (or could not be).
pub type BucketNotifier =
    Box<dyn Fn(String) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// How [`Store::open_with`] treats drives that do not answer and a deployment not formatted yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Every drive is this node's: any error opening one is the caller's to see.
    SingleNode,
    /// Drives on other nodes may not answer yet; only the node with `formats_new` formats a
    /// new deployment (MinIO's rule: the first node of the topology).
    Cluster { formats_new: bool },
}

/// The erasure set (of `sets`) that holds `bucket/key`: xxh3 of `bucket/key` keyed by the
/// deployment id, so every node places a key alike and placement never changes for the
/// life of the deployment (MinIO's SipHash placement, with xxh3).
pub fn placement(deployment_id: Uuid, bucket: &str, key: &str, sets: usize) -> usize {
    let seed = u64::from_le_bytes(deployment_id.as_bytes()[..8].try_into().expect("8 bytes"));
    let mut h = xxhash_rust::xxh3::Xxh3::with_seed(seed);
    h.update(bucket.as_bytes());
    h.update(b"/");
    h.update(key.as_bytes());
    (h.digest() % sets as u64) as usize
}

/// Splits `drives` drives into equal sets of at most 16.
pub fn set_drive_count(drives: usize) -> Result<usize, String> {
    if drives == 0 {
        return Err("no drives configured".into());
    }
    if drives <= MAX_SET_DRIVES {
        return Ok(drives);
    }
    (4..=MAX_SET_DRIVES)
        .rev()
        .find(|size| drives.is_multiple_of(*size))
        .ok_or_else(|| {
            format!("{drives} drives cannot be split into equal erasure sets of 4 to 16 drives")
        })
}

impl Store {
    /// Opens the deployment on `drives` (in configuration order): formats new drives, refuses
    /// foreign or misplaced ones, and returns the store plus the drives that need healing.
    pub async fn open(
        drives: Vec<Arc<dyn Drive>>,
        parity: Option<usize>,
    ) -> Result<(Arc<Store>, Vec<usize>)> {
        Self::open_with(drives, parity, OpenMode::SingleNode).await
    }

    /// Opens the deployment as `open` does; in a cluster, drives that do not answer are left
    /// for later (they count as offline) and a new deployment is formatted only by the node
    /// `mode` allows, once every drive answers. Until the deployment can be opened the answer
    /// is [`StorageError::NotReady`] saying what it waits for; the caller tries again.
    pub async fn open_with(
        drives: Vec<Arc<dyn Drive>>,
        parity: Option<usize>,
        mode: OpenMode,
    ) -> Result<(Arc<Store>, Vec<usize>)> {
        let per_set = set_drive_count(drives.len()).map_err(StorageError::Refused)?;
        let set_count = drives.len() / per_set;
        let parity = parity.unwrap_or_else(|| ErasureLayout::default_parity(per_set));
        let layout = ErasureLayout::new(per_set, parity).map_err(StorageError::Refused)?;

        let answers: Vec<Result<Option<Format>>> =
            join_all(drives.iter().map(|d| d.read_format())).await;
        let reached: Vec<bool> = answers.iter().map(|a| a.is_ok()).collect();
        let found: Vec<Option<Format>> = match mode {
            OpenMode::SingleNode => answers.into_iter().collect::<Result<_>>()?,
            OpenMode::Cluster { .. } => {
                let answered = answers.iter().filter(|a| a.is_ok()).count();
                let majority = drives.len() / 2 + 1;
                if answered < majority {
                    return Err(StorageError::NotReady(format!(
                        "{answered} of {} drives answer; waiting for {majority}",
                        drives.len()
                    )));
                }
                answers.into_iter().map(|a| a.ok().flatten()).collect()
            }
        };
        let mut ids: BTreeMap<Uuid, usize> = BTreeMap::new();
        for f in found.iter().flatten() {
            *ids.entry(f.deployment_id).or_default() += 1;
        }
        if let OpenMode::Cluster { formats_new, .. } = mode {
            let unreachable = reached.iter().filter(|r| !**r).count();
            if ids.is_empty() && (!formats_new || unreachable > 0) {
                return Err(StorageError::NotReady(if formats_new {
                    format!(
                        "a new deployment: waiting for all drives ({unreachable} do not answer)"
                    )
                } else {
                    "a new deployment: waiting for the first node to format it".into()
                }));
            }
        }
        let deployment_id = ids
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(id, _)| *id)
            .unwrap_or_else(Uuid::new_v4);
        let mut fresh = Vec::new();
        for (i, drive) in drives.iter().enumerate() {
            let expected = Format {
                version: 1,
                deployment_id,
                set_index: i / per_set,
                drive_index: i % per_set,
                set_count,
                set_drive_count: per_set,
            };
            match &found[i] {
                Some(f) if *f == expected => {}
                Some(f) => {
                    return Err(StorageError::Refused(format!(
                        "drive {} belongs to deployment {} as set {} drive {} (of {} sets x {} drives), \
                         but this configuration expects deployment {} set {} drive {} (of {} x {}); \
                         refusing to start. Fix the drive order in the configuration or wipe the foreign drive.",
                        drive.label(),
                        f.deployment_id,
                        f.set_index,
                        f.drive_index,
                        f.set_count,
                        f.set_drive_count,
                        expected.deployment_id,
                        expected.set_index,
                        expected.drive_index,
                        expected.set_count,
                        expected.set_drive_count
                    )));
                }
                // A drive of another node that did not answer is formatted by its own node's
                // drive check when it comes back.
                None if !reached[i] => {}
                None => {
                    drive.write_format(&expected).await?;
                    if !ids.is_empty() {
                        fresh.push(i);
                    }
                }
            }
        }
        let (heal_queue, heal_rx) = HealQueue::new();
        let remote_releases = crate::tiered::ReleaseHook::default();
        let replication = crate::replication::Hook::default();
        let sets = (0..set_count)
            .map(|s| {
                let range = s * per_set..(s + 1) * per_set;
                let formats = range
                    .clone()
                    .map(|i| Format {
                        version: 1,
                        deployment_id,
                        set_index: s,
                        drive_index: i % per_set,
                        set_count,
                        set_drive_count: per_set,
                    })
                    .collect();
                Arc::new(ErasureSet::new(
                    s,
                    drives[range].to_vec(),
                    formats,
                    layout,
                    heal_queue.clone(),
                    remote_releases.clone(),
                    replication.clone(),
                ))
            })
            .collect();
        let store = Arc::new(Store {
            deployment_id,
            sets,
            drives,
            heal_queue,
            heal_rx: std::sync::Mutex::new(Some(heal_rx)),
            healing: tokio::sync::Mutex::new(()),
            heal_progress: Default::default(),
            config_changes: tokio::sync::watch::Sender::new(0),
            bucket_cache: Default::default(),
            peers_notifier: Default::default(),
            catalog: Default::default(),
            remote_releases,
            replication,
        });
        Ok((store, fresh))
    }

    /// Installs where changes hand the remote objects they stop referencing (once, at
    /// start-up, before any tiered version changes); `false` if one was installed already.
    /// Installs the replication hook every change goes through; `false` when one is already.
    pub fn set_replication(&self, hook: Arc<dyn crate::replication::ReplicationHook>) -> bool {
        self.replication.set(hook).is_ok()
    }

    pub fn set_remote_releases(&self, hook: Arc<dyn crate::tiered::RemoteReleases>) -> bool {
        self.remote_releases.set(hook).is_ok()
    }

    pub fn sets(&self) -> &[Arc<ErasureSet>] {
        &self.sets
    }

    pub fn drives(&self) -> &[Arc<dyn Drive>] {
        &self.drives
    }

    /// The set that holds `bucket/key`.
    pub fn set_for(&self, bucket: &str, key: &str) -> &Arc<ErasureSet> {
        &self.sets[placement(self.deployment_id, bucket, key, self.sets.len())]
    }

    fn bucket_read_quorum(&self) -> usize {
        self.drives.len().div_ceil(2)
    }

    fn bucket_write_quorum(&self) -> usize {
        self.drives.len() / 2 + 1
    }

    /// The bucket's record, if a quorum of drives has it. Served from memory once known: every
    /// bucket change goes through this store, which updates the cache with it.
    pub async fn bucket(&self, name: &str) -> Result<BucketRecord> {
        if name == crate::cluster_config::RECORD {
            return Err(StorageError::NoSuchBucket);
        }
        self.bucket_record(name).await
    }

    /// A bucket record by name, the reserved cluster record included.
    pub(crate) async fn bucket_record(&self, name: &str) -> Result<BucketRecord> {
        if let Some(catalog) = self.catalog.get() {
            return catalog.get(name).ok_or(StorageError::NoSuchBucket);
        }
        // Alone, this node makes every change and its cache is always right; in a cluster a
        // peer's notice can be lost (the peer died after its write), so a cached record is
        // re-read after a while.
        let fresh_for = match self.peers_notifier.get() {
            Some(_) => CLUSTER_BUCKET_CACHE,
            None => Duration::MAX,
        };
        if let Some((b, read)) = self.bucket_cache.read().expect("lock").get(name) {
            if read.elapsed() < fresh_for {
                return Ok(b.clone());
            }
        }
        let record = self.read_bucket(name).await?;
        self.bucket_cache
            .write()
            .expect("lock")
            .insert(name.to_owned(), (record.clone(), Instant::now()));
        Ok(record)
    }

    async fn read_bucket(&self, name: &str) -> Result<BucketRecord> {
        let answers = join_all(self.drives.iter().map(|d| async move {
            if d.is_online() {
                d.get_bucket(name).await.ok()
            } else {
                None
            }
        }))
        .await;
        let answered = answers.iter().filter(|a| a.is_some()).count();
        if answered < self.bucket_read_quorum() {
            return Err(StorageError::Quorum {
                what: "bucket read",
                got: answered,
                needed: self.bucket_read_quorum(),
            });
        }
        let present: Vec<BucketRecord> = answers.into_iter().flatten().flatten().collect();
        if present.len() < self.bucket_read_quorum() {
            return Err(StorageError::NoSuchBucket);
        }
        let newest = present
            .into_iter()
            .max_by_key(BucketRecord::age_key)
            .expect("a quorum answered");
        Ok(newest)
    }

    /// Wakes whenever a bucket or a bucket configuration changes (created, configured,
    /// deleted): the one place callers learn of configuration changes.
    pub fn watch_config(&self) -> tokio::sync::watch::Receiver<u64> {
        self.config_changes.subscribe()
    }

    fn config_changed(&self) {
        self.config_changes.send_modify(|n| *n += 1);
    }

    /// Writes a whole bucket record (the reserved cluster record among them) to every drive.
    pub(crate) async fn put_bucket_record(&self, record: &BucketRecord) -> Result<()> {
        self.put_bucket_everywhere(record).await
    }

    async fn put_bucket_everywhere(&self, record: &BucketRecord) -> Result<()> {
        let result = self.write_bucket_everywhere(record).await;
        self.config_changed();
        self.tell_peers(&record.name).await;
        result
    }

    /// Tells the other nodes (in a cluster) that a bucket record changed.
    async fn tell_peers(&self, name: &str) {
        if let Some(notify) = self.peers_notifier.get() {
            notify(name.to_owned()).await;
        }
    }

    /// Makes this store a node of a cluster: every key lock is also taken on a majority of
    /// the nodes, bucket records live in `catalog` (the control plane) instead of the drives,
    /// and `notifier` tells the other nodes of bucket record changes (their
    /// [`Store::forget_bucket`]). Once, at start.
    pub fn join_cluster(
        &self,
        locks: Arc<crate::locks::ClusterLocks>,
        notifier: BucketNotifier,
        catalog: Arc<dyn crate::catalog::BucketCatalog>,
    ) {
        for set in &self.sets {
            set.locks.set_cluster(locks.clone());
        }
        let _ = self.peers_notifier.set(notifier);
        let _ = self.catalog.set(catalog);
    }

    /// Makes a change through the catalog, then tells this node's watchers and the other
    /// nodes' (their lifecycle and replication react to configuration changes).
    async fn change_catalog(
        &self,
        catalog: &Arc<dyn crate::catalog::BucketCatalog>,
        name: &str,
        change: crate::catalog::CatalogChange,
    ) -> Result<()> {
        let result = catalog.change(change).await;
        self.config_changed();
        self.tell_peers(name).await;
        result
    }

    /// Forgets every cached bucket record (a node came back: its notices may have been lost).
    pub fn forget_buckets(&self) {
        self.bucket_cache.write().expect("lock").clear();
        self.config_changed();
    }

    /// Forgets the cached record of a bucket another node changed.
    pub fn forget_bucket(&self, name: &str) {
        self.bucket_cache.write().expect("lock").remove(name);
        self.config_changed();
    }

    async fn write_bucket_everywhere(&self, record: &BucketRecord) -> Result<()> {
        self.bucket_cache
            .write()
            .expect("lock")
            .remove(&record.name);
        let ok = join_all(self.drives.iter().map(|d| d.put_bucket(record)))
            .await
            .iter()
            .filter(|r| r.is_ok())
            .count();
        if ok < self.bucket_write_quorum() {
            return Err(StorageError::Quorum {
                what: "bucket write",
                got: ok,
                needed: self.bucket_write_quorum(),
            });
        }
        Ok(())
    }

    pub async fn make_bucket(&self, name: &str) -> Result<()> {
        self.make_bucket_with(name, BTreeMap::new()).await
    }

    /// Creates a bucket with its first configuration documents (e.g. versioning and object
    /// lock for a bucket created with object lock), in one write.
    pub async fn make_bucket_with(
        &self,
        name: &str,
        config: BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        let _one_writer = self.bucket_lock(name).await?;
        match self.fresh_bucket(name).await {
            Ok(_) => return Err(StorageError::BucketExists),
            Err(StorageError::NoSuchBucket) => {}
            Err(e) => return Err(e),
        }
        let now = now_ns();
        let record = BucketRecord {
            name: name.to_owned(),
            created_ns: now,
            config,
            updated_ns: now,
        };
        if let Some(catalog) = self.catalog.get() {
            let change = crate::catalog::CatalogChange::CreateBucket(record);
            return self.change_catalog(catalog, name, change).await;
        }
        self.put_bucket_everywhere(&record).await
    }

    /// Stores (or with `None` removes) a named configuration document of a bucket.
    pub async fn set_bucket_config(
        &self,
        name: &str,
        config: &str,
        value: Option<Vec<u8>>,
    ) -> Result<()> {
        let _one_writer = self.bucket_lock(name).await?;
        self.set_bucket_config_locked(name, config, value).await
    }

    /// Takes the lock that orders the changes of one bucket's record (across the nodes of a
    /// cluster): every change reads the record, changes it and writes it back.
    pub(crate) async fn bucket_lock(&self, name: &str) -> Result<crate::locks::KeyGuard<'_>> {
        self.sets[0].locks.lock(BUCKET_LOCKS, name).await
    }

    /// Whether bucket records live in a cluster's control plane (not on the drives).
    pub(crate) fn has_catalog(&self) -> bool {
        self.catalog.get().is_some()
    }

    /// The bucket's record as a quorum of drives has it now (never a cached copy).
    async fn fresh_bucket(&self, name: &str) -> Result<BucketRecord> {
        self.bucket_cache.write().expect("lock").remove(name);
        self.bucket_record(name).await
    }

    /// `set_bucket_config` for a caller holding the bucket's lock.
    pub(crate) async fn set_bucket_config_locked(
        &self,
        name: &str,
        config: &str,
        value: Option<Vec<u8>>,
    ) -> Result<()> {
        let reserved = name == crate::cluster_config::RECORD;
        if !reserved {
            self.bucket(name).await?; // a user bucket of the reserved name does not exist
        }
        if let Some(catalog) = self.catalog.get() {
            let change = crate::catalog::CatalogChange::SetConfig {
                bucket: name.to_owned(),
                document: config.to_owned(),
                value,
                create: reserved,
                now_ns: now_ns(),
            };
            return self.change_catalog(catalog, name, change).await;
        }
        let mut record = self.fresh_bucket(name).await?;
        record.updated_ns = now_ns().max(record.updated_ns + 1);
        match value {
            Some(v) => record.config.insert(config.to_owned(), v),
            None => record.config.remove(config),
        };
        self.put_bucket_everywhere(&record).await
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.bucket(name).await?; // never the reserved cluster configuration record
        let _one_writer = self.bucket_lock(name).await?;
        self.fresh_bucket(name).await?;
        let page = self.list_versions(name, "", "", "", None, 1).await?;
        if !page.entries.is_empty() {
            return Err(StorageError::BucketNotEmpty);
        }
        for upload in self.list_uploads(name).await? {
            match self.set_for(name, &upload.key).abort_upload(&upload).await {
                Ok(()) | Err(StorageError::NoSuchUpload) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(catalog) = self.catalog.get() {
            let change = crate::catalog::CatalogChange::DeleteBucket(name.to_owned());
            self.change_catalog(catalog, name, change).await?;
            // Rows a drive keeps for the bucket (none are needed) go too, where reachable.
            join_all(self.drives.iter().map(|d| d.delete_bucket(name))).await;
            return Ok(());
        }
        self.bucket_cache.write().expect("lock").remove(name);
        self.config_changed();
        let ok = join_all(self.drives.iter().map(|d| d.delete_bucket(name)))
            .await
            .iter()
            .filter(|r| r.is_ok())
            .count();
        self.tell_peers(name).await;
        if ok < self.bucket_write_quorum() {
            return Err(StorageError::Quorum {
                what: "bucket delete",
                got: ok,
                needed: self.bucket_write_quorum(),
            });
        }
        Ok(())
    }

    /// Multipart uploads in progress in a bucket, ordered by key then start time.
    pub async fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadRecord>> {
        let mut all = Vec::new();
        for set in &self.sets {
            all.extend(set.list_uploads(bucket).await?);
        }
        all.sort_by(|a, b| (&a.key, a.initiated_ns).cmp(&(&b.key, b.initiated_ns)));
        Ok(all)
    }

    /// Every bucket record a read quorum of drives knows, the reserved one included.
    pub(crate) async fn bucket_records(&self) -> Result<Vec<BucketRecord>> {
        if let Some(catalog) = self.catalog.get() {
            return Ok(catalog.list());
        }
        let answers = join_all(self.drives.iter().map(|d| async move {
            if d.is_online() {
                d.list_buckets().await.ok()
            } else {
                None
            }
        }))
        .await;
        let mut seen: BTreeMap<String, (BucketRecord, usize)> = BTreeMap::new();
        for rec in answers.into_iter().flatten().flatten() {
            let entry = seen.entry(rec.name.clone()).or_insert((rec.clone(), 0));
            entry.1 += 1;
            if rec.age_key() > entry.0.age_key() {
                entry.0 = rec;
            }
        }
        Ok(seen
            .into_values()
            .filter(|(_, n)| *n >= self.bucket_read_quorum())
            .map(|(r, _)| r)
            .collect())
    }

    /// Buckets a read quorum of drives knows, by name: the clients' buckets, without the
    /// reserved cluster configuration record.
    pub async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        let mut all = self.bucket_records().await?;
        all.retain(|b| b.name != crate::cluster_config::RECORD);
        Ok(all)
    }

    /// One page of keys under `prefix`, starting at the inclusive lower bound `start`, with keys
    /// that contain `delimiter` after the prefix rolled up into common prefixes. Keys whose
    /// current version is a delete marker are not listed.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        start: &[u8],
        max_keys: usize,
    ) -> Result<ListPage> {
        let mut page = ListPage::default();
        if max_keys == 0 {
            return Ok(page);
        }
        page.next = self
            .walk(bucket, prefix, delimiter, start, max_keys, |entry| {
                let full = page.objects.len() + page.common_prefixes.len() == max_keys;
                match entry {
                    Walked::Prefix(p) => {
                        if full {
                            return Visit::Stop;
                        }
                        page.common_prefixes.push(p);
                    }
                    Walked::Key(key, record) => {
                        let Some(version) = record.latest().filter(|v| v.object.is_some()) else {
                            return Visit::Next;
                        };
                        if full {
                            return Visit::Stop;
                        }
                        let version = version.clone();
                        page.objects.push(ListedObject { key, version });
                    }
                }
                Visit::Next
            })
            .await?;
        Ok(page)
    }

    /// One page of versions (delete markers included), newest first within a key, starting
    /// after `key_marker` (or, with `version_marker`, after that version of that key).
    pub async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        key_marker: &str,
        version_marker: Option<Option<Uuid>>,
        max_keys: usize,
    ) -> Result<VersionPage> {
        let mut page = VersionPage::default();
        if max_keys == 0 {
            return Ok(page);
        }
        let start = match version_marker {
            Some(_) => key_marker.as_bytes().to_vec(),
            None if key_marker.is_empty() => Vec::new(),
            None => key_successor(key_marker.as_bytes()),
        };
        let mut count = 0;
        let truncated = self
            .walk(bucket, prefix, delimiter, &start, max_keys, |entry| {
                match entry {
                    Walked::Prefix(p) => {
                        if count == max_keys {
                            return Visit::Stop;
                        }
                        count += 1;
                        page.entries.push(VersionEntry::Prefix(p));
                    }
                    Walked::Key(key, record) => {
                        let skip = match version_marker {
                            Some(marker) if key == key_marker => versions_after(&record, marker),
                            _ => 0,
                        };
                        for (i, v) in record.versions.iter().enumerate().skip(skip) {
                            if count == max_keys {
                                return Visit::Stop;
                            }
                            count += 1;
                            page.entries.push(VersionEntry::Version {
                                key: key.clone(),
                                version: Box::new(v.clone()),
                                latest: i == 0,
                            });
                        }
                    }
                }
                Visit::Next
            })
            .await?
            .is_some();
        page.truncated = truncated;
        Ok(page)
    }

    /// Walks the keys under `prefix` from the inclusive lower bound `start` in order, rolling
    /// keys up into common prefixes at `delimiter`, until `visit` stops; returns the lower
    /// bound of the entry it stopped at. `page` sizes the batches asked of the drives.
    async fn walk(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        start: &[u8],
        page: usize,
        mut visit: impl FnMut(Walked) -> Visit,
    ) -> Result<Option<Vec<u8>>> {
        let mut lower: Vec<u8> = start.max(prefix.as_bytes()).to_vec();
        let upper = prefix_successor(prefix.as_bytes());
        let batch = (page + 1).clamp(100, 1001); // one more than a page: truncation is known in one round
        loop {
            let results = join_all(
                self.sets
                    .iter()
                    .map(|s| s.list_resolved(bucket, &lower, upper.as_deref(), batch)),
            )
            .await;
            let mut entries = Vec::new();
            let mut horizon: Option<Vec<u8>> = None;
            for r in results {
                let (e, next) = r?;
                entries.extend(e);
                if let Some(n) = next {
                    horizon = Some(match horizon {
                        Some(h) if h < n => h,
                        _ => n,
                    });
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, record) in entries {
                if horizon
                    .as_ref()
                    .is_some_and(|h| key.as_bytes() >= h.as_slice())
                {
                    break;
                }
                if key.as_bytes() < lower.as_slice() || record.versions.is_empty() {
                    continue;
                }
                let rest = &key[prefix.len()..];
                let rolled = (!delimiter.is_empty())
                    .then(|| rest.find(delimiter))
                    .flatten();
                match rolled.map(|i| key[..prefix.len() + i + delimiter.len()].to_owned()) {
                    Some(cp) => {
                        let after = prefix_successor(cp.as_bytes())
                            .unwrap_or_else(|| key_successor(cp.as_bytes()));
                        // A prefix before the start (a V1 marker equal to it) was already returned.
                        if cp.as_bytes() >= lower.as_slice()
                            && visit(Walked::Prefix(cp)) == Visit::Stop
                        {
                            return Ok(Some(lower));
                        }
                        lower = after;
                    }
                    None => {
                        let after = key_successor(key.as_bytes());
                        if visit(Walked::Key(key, record)) == Visit::Stop {
                            return Ok(Some(lower));
                        }
                        lower = after;
                    }
                }
            }
            match horizon {
                Some(h) => {
                    if h > lower {
                        lower = h;
                    }
                }
                None => return Ok(None),
            }
        }
    }

    /// Starts the background work: healing keys found damaged, watching drives for wipes and
    /// replacement, and removing leftovers of interrupted writes.
    pub fn start_background(self: &Arc<Self>, fresh: Vec<usize>) {
        self.start_background_since(fresh, SystemTime::now());
    }

    /// `start_background` where this node's drives were reachable by other nodes since
    /// `serving_since`: garbage collection spares everything written from then on (another
    /// node's commit may be between moving its shards into place and recording them).
    pub fn start_background_since(self: &Arc<Self>, fresh: Vec<usize>, serving_since: SystemTime) {
        let started = serving_since;
        if let Some(mut rx) = self.heal_rx.lock().expect("lock").take() {
            let store = self.clone();
            tokio::spawn(async move {
                while let Some(k) = rx.recv().await {
                    store.heal_queued(k).await;
                }
            });
        }
        let store = self.clone();
        tokio::spawn(async move {
            // Collect first: drives track released directories until the collector ran.
            for drive in store.drives.iter() {
                match drive.collect_garbage(started).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        drive = drive.label(),
                        removed = n,
                        "removed leftovers of interrupted writes"
                    ),
                    Err(e) => {
                        tracing::warn!(drive = drive.label(), error = %e, "garbage collection failed")
                    }
                }
            }
            if !fresh.is_empty() {
                tracing::info!(drives = ?fresh, "new or wiped drives found at start; healing");
                match store.heal_all().await {
                    Ok(report) => tracing::info!(?report, "start-up heal finished"),
                    Err(e) => tracing::warn!(error = %e, "start-up heal failed"),
                }
            }
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                match store.check_drives().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::warn!(drives = n, "drives were wiped or replaced; healing");
                        if let Err(e) = store.heal_all().await {
                            tracing::warn!(error = %e, "heal failed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "drive check failed"),
                }
            }
        });
    }

    /// Heals one queued key; a failure is retried later by the queue.
    async fn heal_queued(&self, k: HealKey) {
        let attempts = self.heal_queue.start(&k);
        let (bucket, key) = (&k.0, &k.1);
        let error = match self.set_for(bucket, key).heal_object(bucket, key).await {
            Ok(heal) if heal.failed == 0 => {
                self.heal_queue.healed();
                return;
            }
            Ok(heal) => format!("{} drive copies could not be written", heal.failed),
            Err(e) => e.to_string(),
        };
        match self.heal_queue.failed(k.clone(), attempts) {
            Some(delay) => {
                tracing::warn!(bucket = %k.0, key = %k.1, %error, attempt = attempts + 1, retry_in = ?delay, "heal failed")
            }
            None => {
                tracing::error!(bucket = %k.0, key = %k.1, %error, "heal failed too often; left for the next full heal")
            }
        }
    }

    /// Sets the bytes every drive keeps free (`None`: 1 % of the drive, at most 1 GiB).
    pub fn set_min_free(&self, bytes: Option<u64>) {
        for set in &self.sets {
            set.set_min_free(bytes);
        }
    }

    /// The heal queue's counters, for metrics.
    pub fn heal_queue_stats(&self) -> HealQueueStats {
        self.heal_queue.stats()
    }

    /// Checks every drive's format, re-initialising wiped ones; returns how many were.
    pub async fn check_drives(&self) -> Result<usize> {
        let mut reinitialised = 0;
        for set in &self.sets {
            let drives = set.drives.iter().zip(&set.formats);
            // Another node checks its own drives (and re-formats them when wiped).
            for (drive, format) in drives.filter(|(d, _)| d.is_local()) {
                match drive.check(format).await {
                    Ok(true) => reinitialised += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(drive = drive.label(), error = %e, "drive check failed")
                    }
                }
            }
        }
        Ok(reinitialised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_stable_and_even() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        // Fixed answers: a change of the hash would move every object of every deployment.
        let fixed: Vec<usize> = ["a", "b", "photos/2024/x.jpg", ""]
            .iter()
            .map(|k| placement(id, "bucket", k, 8))
            .collect();
        assert_eq!(fixed, PLACED, "placement of known keys changed");
        assert_eq!(placement(id, "bucket", "a", 1), 0);
        // Another deployment places differently; one key always lands in one set.
        let other = Uuid::from_u128(7);
        let moved = (0..100)
            .filter(|i| {
                let key = format!("k{i}");
                placement(id, "b", &key, 8) != placement(other, "b", &key, 8)
            })
            .count();
        assert!(moved > 50, "{moved}");
        let mut counts = [0usize; 8];
        for i in 0..80_000 {
            counts[placement(id, "b", &format!("obj-{i}"), 8)] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_000..11_000).contains(c)),
            "{counts:?}"
        );
    }

    const PLACED: [usize; 4] = [2, 0, 7, 6];

    #[test]
    fn sets_are_equal_and_at_most_sixteen() {
        assert_eq!(set_drive_count(4), Ok(4));
        assert_eq!(set_drive_count(16), Ok(16));
        assert_eq!(set_drive_count(32), Ok(16));
        assert_eq!(set_drive_count(24), Ok(12));
        assert!(set_drive_count(17).is_err());
        assert!(set_drive_count(0).is_err());
    }

    #[test]
    fn a_version_marker_keeps_its_place_after_its_version_is_gone() {
        let ids: Vec<Uuid> = (0..4)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(2));
                Uuid::now_v7()
            })
            .collect();
        let version = |id: Uuid| VersionRecord {
            version_id: Some(id),
            mod_time_ns: 0,
            object: None,
            lifecycle_marker: false,
            replication: Default::default(),
        };
        // Newest first: ids[3], ids[2], ids[0]; ids[1] was deleted after it was a marker.
        let rec = ObjectRecord {
            versions: vec![version(ids[3]), version(ids[2]), version(ids[0])],
        };
        assert_eq!(
            versions_after(&rec, Some(ids[2])),
            2,
            "found: skip it and newer"
        );
        assert_eq!(
            versions_after(&rec, Some(ids[1])),
            2,
            "gone: skip the newer ones"
        );
        assert_eq!(versions_after(&rec, Some(ids[3])), 1);
    }
}

/// What a walk over a bucket's keys meets.
enum Walked {
    Prefix(String),
    Key(String, ObjectRecord),
}

/// Whether a walk goes on past an entry.
#[derive(PartialEq, Eq)]
enum Visit {
    Next,
    /// The page is full: the entry was not taken.
    Stop,
}

/// One entry of a version listing.
#[derive(Clone, Debug)]
pub enum VersionEntry {
    Prefix(String),
    Version {
        key: String,
        version: Box<VersionRecord>,
        latest: bool,
    },
}

/// One page of a version listing.
#[derive(Debug, Default)]
pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    pub truncated: bool,
}

/// How many of a key's versions (newest first) a version-id marker has already listed. When
/// the marker version is gone (deleted between pages), versions newer than its time are.
fn versions_after(record: &ObjectRecord, marker: Option<Uuid>) -> usize {
    if let Some(i) = record.position(marker) {
        return i + 1;
    }
    let Some(ms) = marker.and_then(crate::meta::v7_time_ns) else {
        return 0;
    };
    record
        .versions
        .iter()
        .take_while(|v| match v.version_id {
            Some(id) => marker.is_some_and(|m| id >= m),
            None => v.mod_time_ns >= ms,
        })
        .count()
}
