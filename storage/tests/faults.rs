//! The store over real local drives with faults injected at the drive trait: failed commits,
//! drives that stop answering. Checks atomicity (a write below quorum is rolled back), degraded
//! reads, healing, and listing across the quorum.

use async_trait::async_trait;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use storage::drive::{Commit, Drive, Format, ListedRecord, PartRecord, ShardReader, ShardWriter};
use storage::meta::{BucketRecord, ObjectRecord, UploadRecord};
use storage::{ByteStream, LocalDrive, PutOptions, Result, StorageError, Store, Which};
use uuid::Uuid;

/// A local drive whose commits can be made to fail (before or after they land) and which
/// can be taken offline.
struct Faulty {
    inner: LocalDrive,
    fail_commits: AtomicBool,
    /// Completions land, then answer with an error (as when the rename after the commit fails).
    fail_after_commit: AtomicBool,
    offline: AtomicBool,
}

fn injected() -> StorageError {
    StorageError::Io(std::io::Error::other("injected commit failure"))
}

impl Faulty {
    fn fault(&self) -> Result<()> {
        if self.offline.load(Ordering::SeqCst) {
            return Err(StorageError::DriveOffline("injected".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Drive for Faulty {
    fn label(&self) -> &str {
        self.inner.label()
    }
    fn is_online(&self) -> bool {
        !self.offline.load(Ordering::SeqCst) && self.inner.is_online()
    }
    fn space(&self) -> Option<storage::space::Space> {
        self.inner.space()
    }
    async fn read_format(&self) -> Result<Option<Format>> {
        self.inner.read_format().await
    }
    async fn write_format(&self, f: &Format) -> Result<()> {
        self.inner.write_format(f).await
    }
    async fn put_bucket(&self, r: &BucketRecord) -> Result<()> {
        self.fault()?;
        self.inner.put_bucket(r).await
    }
    async fn get_bucket(&self, n: &str) -> Result<Option<BucketRecord>> {
        self.fault()?;
        self.inner.get_bucket(n).await
    }
    async fn delete_bucket(&self, n: &str) -> Result<()> {
        self.fault()?;
        self.inner.delete_bucket(n).await
    }
    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.fault()?;
        self.inner.list_buckets().await
    }
    async fn read_record(&self, b: &str, k: &str) -> Result<Option<ObjectRecord>> {
        self.fault()?;
        self.inner.read_record(b, k).await
    }
    async fn commit(&self, c: Commit) -> Result<()> {
        self.fault()?;
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.commit(c).await
    }
    async fn list_records(
        &self,
        b: &str,
        lo: &[u8],
        hi: Option<&[u8]>,
        n: usize,
    ) -> Result<Vec<ListedRecord>> {
        self.fault()?;
        self.inner.list_records(b, lo, hi, n).await
    }
    async fn create_shard(&self, s: Uuid, p: u32) -> Result<Box<dyn ShardWriter>> {
        self.fault()?;
        self.inner.create_shard(s, p).await
    }
    async fn open_shard(&self, d: Uuid, p: u32) -> Result<Box<dyn ShardReader>> {
        self.fault()?;
        self.inner.open_shard(d, p).await
    }
    async fn discard_staging(&self, s: Uuid) -> Result<()> {
        self.inner.discard_staging(s).await
    }
    async fn put_upload(&self, u: &UploadRecord) -> Result<()> {
        self.fault()?;
        self.inner.put_upload(u).await
    }
    async fn get_upload(&self, id: Uuid) -> Result<Option<UploadRecord>> {
        self.fault()?;
        self.inner.get_upload(id).await
    }
    async fn list_uploads(&self, b: &str) -> Result<Vec<UploadRecord>> {
        self.fault()?;
        self.inner.list_uploads(b).await
    }
    async fn commit_part(&self, id: Uuid, p: PartRecord) -> Result<()> {
        self.fault()?;
        self.inner.commit_part(id, p).await
    }
    async fn list_parts(&self, id: Uuid) -> Result<Vec<PartRecord>> {
        self.fault()?;
        self.inner.list_parts(id).await
    }
    async fn abort_upload(&self, id: Uuid) -> Result<()> {
        self.fault()?;
        self.inner.abort_upload(id).await
    }
    async fn complete_upload(&self, id: Uuid, c: Commit) -> Result<()> {
        self.fault()?;
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.complete_upload(id, c).await?;
        match self.fail_after_commit.load(Ordering::SeqCst) {
            true => Err(injected()),
            false => Ok(()),
        }
    }
    async fn prune_parts(&self, id: Uuid, keep: Vec<u32>) -> Result<()> {
        self.fault()?;
        self.inner.prune_parts(id, keep).await
    }
    async fn reopen_upload(&self, u: &UploadRecord, p: Vec<PartRecord>, c: Commit) -> Result<()> {
        self.fault()?;
        self.inner.reopen_upload(u, p, c).await
    }
    async fn check(&self, f: &Format) -> Result<bool> {
        self.inner.check(f).await
    }
    async fn remove_data(&self, dirs: Vec<Uuid>) -> Result<()> {
        self.inner.remove_data(dirs).await
    }
    async fn collect_garbage(&self, before: SystemTime) -> Result<usize> {
        self.inner.collect_garbage(before).await
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    drives: Vec<Arc<Faulty>>,
    store: Arc<Store>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<Arc<Faulty>> = (0..4)
        .map(|i| {
            Arc::new(Faulty {
                inner: LocalDrive::open(dir.path().join(format!("d{i}"))).unwrap(),
                fail_commits: AtomicBool::new(false),
                fail_after_commit: AtomicBool::new(false),
                offline: AtomicBool::new(false),
            })
        })
        .collect();
    let dyn_drives: Vec<Arc<dyn Drive>> =
        drives.iter().map(|d| d.clone() as Arc<dyn Drive>).collect();
    let (store, fresh) = Store::open(dyn_drives, None).await.unwrap();
    assert!(fresh.is_empty());
    store.make_bucket("bkt").await.unwrap();
    Fixture { dir, drives, store }
}

fn body(data: &[u8]) -> ByteStream {
    let chunks: Vec<Result<Bytes>> = data
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn put(store: &Store, key: &str, data: &[u8]) -> Result<()> {
    let set = store.set_for("bkt", key);
    let staged = set.stage("bkt", key, body(data), 1, true).await?;
    set.commit_object(
        "bkt",
        key,
        staged,
        PutOptions {
            storage_class: "STANDARD".into(),
            ..Default::default()
        },
    )
    .await
    .map(drop)
}

async fn get(store: &Store, key: &str) -> Result<Vec<u8>> {
    let set = store.set_for("bkt", key);
    let view = set.view("bkt", key, Which::Current).await?;
    let size = view.object().size;
    let mut rx = set.read_range("bkt", key, view, 0, size);
    let mut out = Vec::new();
    while let Some(chunk) = rx.recv().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn heal(store: &Store, key: &str) -> storage::ObjectHeal {
    store
        .set_for("bkt", key)
        .heal_object("bkt", key)
        .await
        .unwrap()
}

/// Reads `key` with two drives offline, for several pairs: every read must give `want`.
async fn reads_with_pairs_offline(f: &Fixture, key: &str, want: &[u8]) {
    for pair in [[0, 1], [2, 3], [1, 2]] {
        for d in pair {
            f.drives[d].offline.store(true, Ordering::SeqCst);
        }
        assert_eq!(get(&f.store, key).await.unwrap(), want, "offline {pair:?}");
        for d in pair {
            f.drives[d].offline.store(false, Ordering::SeqCst);
        }
    }
}

fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn a_write_below_quorum_is_rolled_back() {
    let f = fixture().await;
    for size in [1000, 3 * 1024 * 1024 + 5] {
        let key = format!("obj-{size}");
        let old = sample(size, 1);
        put(&f.store, &key, &old).await.unwrap();
        f.drives[0].fail_commits.store(true, Ordering::SeqCst);
        f.drives[1].fail_commits.store(true, Ordering::SeqCst);
        let err = put(&f.store, &key, &sample(size, 2)).await.unwrap_err();
        assert!(matches!(err, StorageError::Quorum { .. }), "{err}");
        f.drives[0].fail_commits.store(false, Ordering::SeqCst);
        f.drives[1].fail_commits.store(false, Ordering::SeqCst);
        assert_eq!(
            get(&f.store, &key).await.unwrap(),
            old,
            "old version must stay whole"
        );
        // The two drives that took the failed write hold the old version again, shards
        // included: they alone give the old bytes back.
        f.drives[0].offline.store(true, Ordering::SeqCst);
        f.drives[1].offline.store(true, Ordering::SeqCst);
        assert_eq!(get(&f.store, &key).await.unwrap(), old);
        f.drives[0].offline.store(false, Ordering::SeqCst);
        f.drives[1].offline.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_completion_below_quorum_is_rolled_back_and_can_be_retried() {
    let f = fixture().await;
    let old = sample(3 * 1024 * 1024 + 1, 7);
    put(&f.store, "mp", &old).await.unwrap();
    let set = f.store.set_for("bkt", "mp");
    let upload = set
        .create_upload("bkt", "mp", &PutOptions::default(), None)
        .await
        .unwrap();
    let mb5 = 5 * 1024 * 1024;
    let data = [sample(mb5, 8), sample(mb5, 9), sample(1234, 10)];
    let mut etags = Vec::new();
    for (number, part) in (1..).zip(&data) {
        let staged = set.stage("bkt", "mp", body(part), number, false).await;
        let part = set.commit_part(upload.upload_id, staged.unwrap(), None);
        etags.push((number, part.await.unwrap().etag));
    }
    // Drives 0 and 1 commit and then answer with an error; drive 2 fails before committing.
    f.drives[0].fail_after_commit.store(true, Ordering::SeqCst);
    f.drives[1].fail_after_commit.store(true, Ordering::SeqCst);
    f.drives[2].fail_commits.store(true, Ordering::SeqCst);
    let first_try = set.complete_upload(&upload, &etags[..2], PutOptions::default());
    let err = first_try.await.unwrap_err();
    assert!(matches!(err, StorageError::Quorum { .. }), "{err}");
    for d in &f.drives {
        d.fail_after_commit.store(false, Ordering::SeqCst);
        d.fail_commits.store(false, Ordering::SeqCst);
    }
    // Every drive holds the old object again, data included: any two give it back.
    reads_with_pairs_offline(&f, "mp", &old).await;
    // The upload is open again with every part, so a retry may even list another set.
    let retry = set.complete_upload(&upload, &etags, PutOptions::default());
    retry.await.unwrap();
    let new = data.concat();
    reads_with_pairs_offline(&f, "mp", &new).await;

    // A part file no version lists (a crash between quorum and pruning) goes at the next heal.
    let id = upload.upload_id.to_string();
    let dir = f.dir.path().join("d0/data").join(&id[..2]).join(&id);
    std::fs::write(dir.join("part.9"), b"left behind").unwrap();
    set.heal_object("bkt", "mp").await.unwrap();
    assert!(!dir.join("part.9").exists());
    assert!(dir.join("part.3").exists());
    reads_with_pairs_offline(&f, "mp", &new).await;
}

#[tokio::test]
async fn one_failed_drive_is_tolerated_and_healed() {
    let f = fixture().await;
    f.drives[3].fail_commits.store(true, Ordering::SeqCst);
    let data = sample(2 * 1024 * 1024 + 9, 3);
    put(&f.store, "k", &data).await.unwrap();
    f.drives[3].fail_commits.store(false, Ordering::SeqCst);
    assert!(f.drives[3]
        .inner
        .read_record("bkt", "k")
        .await
        .unwrap()
        .is_none());
    let healed = heal(&f.store, "k").await;
    assert_eq!(healed.rebuilt, 1);
    assert!(f.drives[3]
        .inner
        .read_record("bkt", "k")
        .await
        .unwrap()
        .is_some());
    f.drives[0].offline.store(true, Ordering::SeqCst);
    f.drives[1].offline.store(true, Ordering::SeqCst);
    assert_eq!(get(&f.store, "k").await.unwrap(), data);
}

#[tokio::test]
async fn reads_survive_parity_drives_offline_and_fail_beyond() {
    let f = fixture().await;
    let data = sample(5 * 1024 * 1024 + 77, 4);
    put(&f.store, "k", &data).await.unwrap();
    for pair in [[0, 1], [1, 2], [2, 3], [0, 3]] {
        for d in pair {
            f.drives[d].offline.store(true, Ordering::SeqCst);
        }
        assert_eq!(get(&f.store, "k").await.unwrap(), data, "offline {pair:?}");
        for d in pair {
            f.drives[d].offline.store(false, Ordering::SeqCst);
        }
    }
    for d in 0..3 {
        f.drives[d].offline.store(true, Ordering::SeqCst);
    }
    assert!(matches!(
        get(&f.store, "k").await,
        Err(StorageError::Quorum { .. })
    ));
}

#[tokio::test]
async fn small_objects_are_read_in_place_with_parity_drives_offline() {
    let f = fixture().await;
    let data = sample(100_003, 5);
    put(&f.store, "small", &data).await.unwrap();
    put(&f.store, "large", &sample(200_000, 6)).await.unwrap();
    let set = f.store.set_for("bkt", "small");
    for pair in [[0, 1], [2, 3], [0, 3]] {
        for d in pair {
            f.drives[d].offline.store(true, Ordering::SeqCst);
        }
        let view = set.view("bkt", "small", Which::Current).await.unwrap();
        for (start, end) in [(0, 100_003), (17, 50_000), (100_002, 100_003)] {
            let got = set.read_inline("bkt", "small", &view, start, end).await;
            let got = got.expect("small objects are inline").unwrap();
            assert_eq!(
                got,
                data[start as usize..end as usize],
                "{pair:?} {start}..{end}"
            );
        }
        for d in pair {
            f.drives[d].offline.store(false, Ordering::SeqCst);
        }
    }
    let set = f.store.set_for("bkt", "large");
    let view = set.view("bkt", "large", Which::Current).await.unwrap();
    assert!(set
        .read_inline("bkt", "large", &view, 0, 10)
        .await
        .is_none());
}

#[tokio::test]
async fn listing_pages_in_order_with_a_drive_offline() {
    let f = fixture().await;
    let mut keys: Vec<String> = (0..300).map(|i| format!("dir{}/k{i:03}", i % 3)).collect();
    keys.push("top".into());
    for k in &keys {
        put(&f.store, k, b"x").await.unwrap();
    }
    keys.sort();
    f.drives[2].offline.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    let mut start = Vec::new();
    loop {
        let page = f
            .store
            .list_objects("bkt", "", "", &start, 37)
            .await
            .unwrap();
        seen.extend(page.objects.iter().map(|o| o.key.clone()));
        match page.next {
            Some(n) => start = n,
            None => break,
        }
    }
    assert_eq!(seen, keys);
    let page = f
        .store
        .list_objects("bkt", "", "/", b"", 1000)
        .await
        .unwrap();
    assert_eq!(page.common_prefixes, ["dir0/", "dir1/", "dir2/"]);
    assert_eq!(
        page.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["top"]
    );
}

#[tokio::test]
async fn a_drive_that_misses_a_commit_or_its_heal_keeps_nothing_staged() {
    let f = fixture().await;
    f.drives[3].fail_commits.store(true, Ordering::SeqCst);
    put(&f.store, "k", &sample(2 * 1024 * 1024 + 9, 4))
        .await
        .unwrap();
    let d3 = f.dir.path().join("d3");
    let nothing_left = async || {
        let count = |dir: &str| walkdir_count(&d3.join(dir));
        count(".strata/tmp") == 0 && count("data") == 0
    };
    assert!(eventually(nothing_left).await, "after the write");
    let healed = heal(&f.store, "k").await;
    assert_eq!((healed.rebuilt, healed.failed), (0, 1));
    assert!(eventually(nothing_left).await, "after the heal");
}

/// Files below `dir`.
fn walkdir_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type().map(|t| t.is_dir()) {
                    Ok(true) => walkdir_count(&e.path()),
                    _ => 1,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Waits up to ten seconds for `done`, letting background tasks run.
async fn eventually(mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_failed_heal_is_retried_until_the_drive_takes_it() {
    let f = fixture().await;
    f.store.start_background(vec![]);
    f.drives[3].fail_commits.store(true, Ordering::SeqCst);
    let data = sample(300_000, 5);
    put(&f.store, "k", &data).await.unwrap();
    assert!(eventually(async || f.store.heal_queue_stats().failed_attempts >= 2).await);
    let on_d3 = async || f.drives[3].inner.read_record("bkt", "k").await.unwrap();
    assert!(on_d3().await.is_none());
    assert_eq!(f.store.heal_queue_stats().pending, 1);

    f.drives[3].fail_commits.store(false, Ordering::SeqCst);
    assert!(eventually(async || on_d3().await.is_some()).await);
    // The heal is counted once it returns, just after its commit landed.
    assert!(eventually(async || f.store.heal_queue_stats().healed == 1).await);
    let stats = f.store.heal_queue_stats();
    assert_eq!((stats.healed, stats.pending, stats.given_up), (1, 0, 0));
    for d in [0, 1] {
        f.drives[d].offline.store(true, Ordering::SeqCst);
    }
    assert_eq!(get(&f.store, "k").await.unwrap(), data);
}

/// Lifecycle's guard: a delete that names the versions it judged changes nothing once the key
/// has changed since, e.g. a noncurrent version that became current again.
#[tokio::test]
async fn an_expected_delete_refuses_a_changed_key() {
    use storage::{DeleteOptions, Versioning};
    let f = fixture().await;
    let set = f.store.set_for("bkt", "k");
    let put_version = |data: &'static [u8]| async move {
        let staged = set.stage("bkt", "k", body(data), 1, true).await.unwrap();
        set.commit_object(
            "bkt",
            "k",
            staged,
            PutOptions {
                storage_class: "STANDARD".into(),
                versioning: Versioning::Enabled,
                ..Default::default()
            },
        )
        .await
        .unwrap()
    };
    let v1 = put_version(b"one").await;
    let v2 = put_version(b"two").await;
    let judged = vec![
        (v2.version_id, v2.mod_time_ns),
        (v1.version_id, v1.mod_time_ns),
    ];
    // The client deletes v2: v1 is current again, no longer the noncurrent version judged.
    let plain = DeleteOptions::default();
    set.delete_version(
        "bkt",
        "k",
        Which::Version(v2.version_id),
        Versioning::Enabled,
        plain,
    )
    .await
    .unwrap();
    let guarded = DeleteOptions {
        expect: Some(judged),
        ..Default::default()
    };
    let refused = set
        .delete_version(
            "bkt",
            "k",
            Which::Version(v1.version_id),
            Versioning::Enabled,
            guarded.clone(),
        )
        .await;
    assert!(
        matches!(refused, Err(StorageError::PreconditionFailed)),
        "{refused:?}"
    );
    assert_eq!(get(&f.store, "k").await.unwrap(), b"one");
    // Unchanged, the same guarded delete goes through.
    let v3 = put_version(b"three").await;
    let judged = vec![
        (v3.version_id, v3.mod_time_ns),
        (v1.version_id, v1.mod_time_ns),
    ];
    let guarded = DeleteOptions {
        expect: Some(judged),
        ..Default::default()
    };
    set.delete_version(
        "bkt",
        "k",
        Which::Version(v1.version_id),
        Versioning::Enabled,
        guarded,
    )
    .await
    .unwrap();
    let view = set.view("bkt", "k", Which::Version(v1.version_id)).await;
    assert!(matches!(view, Err(StorageError::NoSuchVersion)));
}

#[tokio::test]
async fn a_full_heal_reports_its_progress() {
    let f = fixture().await;
    for i in 0..5 {
        put(&f.store, &format!("k{i}"), &sample(300_000, i))
            .await
            .unwrap();
    }
    f.drives[2].fail_commits.store(true, Ordering::SeqCst);
    put(&f.store, "missed", &sample(300_000, 9)).await.unwrap();
    f.drives[2].fail_commits.store(false, Ordering::SeqCst);
    assert!(!f.store.heal_progress().running);
    let report = f.store.heal_all().await.unwrap();
    let progress = f.store.heal_progress();
    assert!(!progress.running);
    assert_eq!(progress.objects_total, 6);
    assert_eq!(progress.objects_scanned, 6);
    assert_eq!(progress.objects_healed, report.objects_healed as u64);
    assert!(progress.objects_healed >= 1, "{report:?}");
}
