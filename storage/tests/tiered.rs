//! Tiered versions over real local drives: a transition's commit, the release hook every change
//! calls before it commits, restored copies and their expiry, recall, and the cluster
//! configuration record.

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use storage::meta::{DataLocation, Transition};
use storage::{
    ByteStream, ClusterConfig, DeleteOptions, Drive, LocalDrive, PutOptions, RemoteObject,
    RemoteReleases, Result, StorageError, Store, Versioning, Which,
};

/// Records what is released; refuses while `fail` is set.
#[derive(Default)]
struct Journal {
    released: Mutex<Vec<RemoteObject>>,
    fail: std::sync::atomic::AtomicBool,
}

impl RemoteReleases for Journal {
    fn release(&self, objects: &[RemoteObject]) -> std::result::Result<(), String> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("journal unwritable".into());
        }
        self.released.lock().unwrap().extend_from_slice(objects);
        Ok(())
    }
}

async fn fixture() -> (tempfile::TempDir, Arc<Store>, Arc<Journal>) {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<Arc<dyn Drive>> = (0..4)
        .map(|i| Arc::new(LocalDrive::open(dir.path().join(format!("d{i}"))).unwrap()) as _)
        .collect();
    let (store, _) = Store::open(drives, None).await.unwrap();
    store.make_bucket("bkt").await.unwrap();
    let journal = Arc::new(Journal::default());
    assert!(store.set_remote_releases(journal.clone()));
    (dir, store, journal)
}

fn body(data: Vec<u8>) -> ByteStream {
    Box::pin(futures::stream::once(async move { Ok(Bytes::from(data)) }))
}

async fn put(store: &Store, key: &str, data: &[u8]) {
    let set = store.set_for("bkt", key);
    let staged = set
        .stage("bkt", key, body(data.to_vec()), 1, true)
        .await
        .unwrap();
    let opts = PutOptions {
        storage_class: "STANDARD".into(),
        ..Default::default()
    };
    set.commit_object("bkt", key, staged, opts).await.unwrap();
}

async fn read(store: &Store, key: &str) -> Result<Vec<u8>> {
    let set = store.set_for("bkt", key);
    let view = set.view("bkt", key, Which::Current).await?;
    let size = view.object().size;
    let mut rx = set.clone().read_range("bkt", key, view, 0, size);
    let mut out = Vec::new();
    while let Some(chunk) = rx.recv().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn transition(remote_key: &str) -> Transition {
    Transition {
        tier: "COLD".into(),
        remote_key: remote_key.into(),
        remote_etag: None,
        transitioned_ns: 1,
    }
}

/// Moves the current version of `key` to tier COLD under `remote_key`.
async fn tier(store: &Store, key: &str, remote_key: &str) {
    let set = store.set_for("bkt", key);
    let v = set.view("bkt", key, Which::Current).await.unwrap().version;
    set.commit_transition(
        "bkt",
        key,
        v.version_id,
        v.mod_time_ns,
        transition(remote_key),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_transition_moves_the_data_out_and_a_later_overwrite_releases_it() {
    let (_dir, store, journal) = fixture().await;
    let data = vec![7u8; 3 << 20];
    put(&store, "k", &data).await;
    tier(&store, "k", "r1").await;
    let set = store.set_for("bkt", "k");
    let view = set.view("bkt", "k", Which::Current).await.unwrap();
    let obj = view.object();
    assert_eq!(obj.data, DataLocation::Remote);
    assert_eq!(obj.storage_class, "COLD");
    assert_eq!(
        obj.size,
        data.len() as u64,
        "the record keeps size and ETag"
    );
    assert!(set
        .references_remote("bkt", "k", "COLD", "r1")
        .await
        .unwrap());
    assert!(!set
        .references_remote("bkt", "k", "COLD", "r2")
        .await
        .unwrap());
    // A second transition of the same version is refused.
    let v = view.version.clone();
    let again = set
        .commit_transition("bkt", "k", v.version_id, v.mod_time_ns, transition("r9"))
        .await;
    assert!(matches!(again, Err(StorageError::PreconditionFailed)));
    assert!(journal.released.lock().unwrap().is_empty());

    put(&store, "k", b"new bytes").await;
    let released = journal.released.lock().unwrap().clone();
    assert_eq!(released.len(), 1);
    assert_eq!(
        (released[0].tier.as_str(), released[0].remote_key.as_str()),
        ("COLD", "r1")
    );
    assert!(!set
        .references_remote("bkt", "k", "COLD", "r1")
        .await
        .unwrap());
    assert_eq!(read(&store, "k").await.unwrap(), b"new bytes");
}

#[tokio::test]
async fn a_change_whose_release_cannot_be_journaled_is_refused() {
    let (_dir, store, journal) = fixture().await;
    put(&store, "k", b"tiered").await;
    tier(&store, "k", "r1").await;
    journal
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let set = store.set_for("bkt", "k");
    let deleted = set
        .delete_version(
            "bkt",
            "k",
            Which::Current,
            Versioning::Unversioned,
            DeleteOptions::default(),
        )
        .await;
    assert!(
        deleted.is_err(),
        "the delete must not orphan the remote object"
    );
    assert!(set
        .references_remote("bkt", "k", "COLD", "r1")
        .await
        .unwrap());
    journal
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    set.delete_version(
        "bkt",
        "k",
        Which::Current,
        Versioning::Unversioned,
        DeleteOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(journal.released.lock().unwrap().len(), 1);
    assert!(!set
        .references_remote("bkt", "k", "COLD", "r1")
        .await
        .unwrap());
}

/// Stages `source` (a tiered version's bytes) back along its part table.
async fn stage_from(
    set: &storage::ErasureSet,
    parts: &[storage::meta::PartInfo],
    source: &[u8],
) -> Result<storage::Staged> {
    set.stage_version("bkt", "k", parts, |start, end| {
        let bytes = source[start as usize..end as usize].to_vec();
        async move { Ok(body(bytes)) }
    })
    .await
}

#[tokio::test]
async fn a_restored_copy_is_read_locally_until_it_expires_and_a_recall_keeps_it() {
    let (_dir, store, journal) = fixture().await;
    let data: Vec<u8> = (0..(2 << 20)).map(|i| (i % 251) as u8).collect();
    put(&store, "k", &data).await;
    tier(&store, "k", "r1").await;
    let set = store.set_for("bkt", "k");
    let v = set.view("bkt", "k", Which::Current).await.unwrap().version;
    let (id, t) = (v.version_id, v.mod_time_ns);
    let parts = v.object.unwrap().parts;
    assert_eq!(
        set.begin_restore("bkt", "k", id, t, 1, 0).await.unwrap(),
        None
    );
    let again = set.begin_restore("bkt", "k", id, t, 1, 0).await.unwrap();
    assert!(
        again.is_some_and(|r| r.ongoing),
        "a second request sees the restore under way"
    );
    let staged = stage_from(set, &parts, &data).await.unwrap();
    set.commit_restore("bkt", "k", id, t, staged, 1234)
        .await
        .unwrap();
    assert_eq!(
        read(&store, "k").await.unwrap(),
        data,
        "the copy is read locally"
    );
    let obj = set
        .view("bkt", "k", Which::Current)
        .await
        .unwrap()
        .into_object();
    assert_eq!(
        obj.restore.map(|r| (r.ongoing, r.expiry_ns)),
        Some((false, 1234))
    );
    assert!(obj.transition.is_some(), "the version stays on its tier");
    // An expiry judged on another copy's time changes nothing; the right one drops the copy.
    assert!(set.expire_restore("bkt", "k", id, t, 99).await.is_err());
    set.expire_restore("bkt", "k", id, t, 1234).await.unwrap();
    let obj = set
        .view("bkt", "k", Which::Current)
        .await
        .unwrap()
        .into_object();
    assert_eq!((obj.data, obj.restore), (DataLocation::Remote, None));
    assert!(
        journal.released.lock().unwrap().is_empty(),
        "expiring a copy releases nothing"
    );

    // Bytes that do not match the part table are refused.
    let wrong = stage_from(set, &parts, &vec![0u8; data.len()]).await;
    assert!(matches!(wrong, Err(StorageError::BadDigest(_))));
    // A recall makes it a hot version again and releases the remote object.
    let staged = stage_from(set, &parts, &data).await.unwrap();
    set.commit_recall("bkt", "k", id, t, staged).await.unwrap();
    let obj = set
        .view("bkt", "k", Which::Current)
        .await
        .unwrap()
        .into_object();
    assert_eq!(
        (obj.storage_class.as_str(), obj.transition.is_none()),
        ("STANDARD", true)
    );
    assert_eq!(read(&store, "k").await.unwrap(), data);
    assert_eq!(journal.released.lock().unwrap()[0].remote_key, "r1");
}

#[tokio::test]
async fn cluster_configuration_is_no_bucket() {
    let (_dir, store, _) = fixture().await;
    assert_eq!(store.get("tiers").await.unwrap(), None);
    store.set("tiers", Some(b"[1]".to_vec())).await.unwrap();
    store.set("other", Some(b"x".to_vec())).await.unwrap();
    assert_eq!(
        store.get("tiers").await.unwrap().as_deref(),
        Some(&b"[1]"[..])
    );
    let names: Vec<String> = store
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["bkt"]);
    assert!(matches!(
        store.bucket(".cluster").await,
        Err(StorageError::NoSuchBucket)
    ));
    assert!(matches!(
        store.delete_bucket(".cluster").await,
        Err(StorageError::NoSuchBucket)
    ));
    store.set("tiers", None).await.unwrap();
    assert_eq!(store.get("tiers").await.unwrap(), None);
    assert_eq!(
        store.get("other").await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
}
