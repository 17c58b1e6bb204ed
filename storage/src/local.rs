//! A drive that is a directory on this node.
//!
//! ```text
//! <root>/.strata/format.json          identity of the drive (written atomically)
//! <root>/.strata/meta.db              SQLite (WAL): buckets, object records, uploads, parts,
//!                                     and the set of referenced data directories
//! <root>/.strata/tmp/<id>/part.N      staged shard files; anything here at start is garbage
//! <root>/.strata/multipart/<id>/      parts of an upload in progress
//! <root>/data/<id[..2]>/<id>/part.N   committed shard files
//! ```
//! Object keys never become paths: data directories are named by random ids, so no key can
//! reach outside the drive. A record and the data directories it references change in one
//! SQLite transaction; all record writes of a drive go through one writer thread that commits
//! whatever is queued in a single transaction (group commit: one fsync for many PUTs).

use crate::drive::{Commit, Drive, Format, ListedRecord, PartRecord, ShardReader, ShardWriter};
use crate::error::{Result, StorageError};
use crate::meta::{BucketRecord, ObjectRecord, UploadRecord};
use crate::space::{Space, SpaceGauge};
use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use uuid::Uuid;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS buckets(name TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS objects(bucket TEXT NOT NULL, key BLOB NOT NULL, record BLOB NOT NULL,
    inline BLOB, PRIMARY KEY(bucket, key));
CREATE TABLE IF NOT EXISTS data_dirs(id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads(id BLOB PRIMARY KEY, bucket TEXT NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS parts(upload BLOB NOT NULL, number INTEGER NOT NULL, record BLOB NOT NULL,
    PRIMARY KEY(upload, number)) WITHOUT ROWID;
";

use crate::group_commit::{GroupCommit, Job, WriteError};

/// Read connections per drive: enough for concurrent requests not to queue on one.
const READERS: usize = 4;

/// The open metadata database of a drive: a group-committing writer thread and a small pool
/// of read connections (WAL lets them read while the writer commits).
struct MetaDb {
    writer: GroupCommit,
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
}

impl MetaDb {
    fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open(path)?;
                reader.pragma_update(None, "query_only", "ON")?;
                Ok(Mutex::new(reader))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Self {
            writer: GroupCommit::start(conn, "strata-meta-writer")?,
            readers,
            next_reader: Default::default(),
        })
    }
}

impl MetaDb {
    /// A free read connection, or the next one in turn when all are busy.
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        for r in &self.readers {
            if let Ok(guard) = r.try_lock() {
                return guard;
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[i].lock().expect("lock")
    }
}

/// Data directories that lost their `data_dirs` row since the drive opened, kept until the
/// start-up collector has run. A rollback may give such a directory its row back (a failed
/// write restores the record it replaced), so the collector must leave it alone; a directory
/// that stays unreferenced is removed by the write that released it, or at the next start.
#[derive(Default)]
struct Released(Mutex<Option<HashSet<Uuid>>>);

impl Released {
    fn tracking() -> Self {
        Self(Mutex::new(Some(HashSet::new())))
    }

    fn note(&self, ids: impl IntoIterator<Item = Uuid>) {
        if let Some(set) = self.0.lock().expect("lock").as_mut() {
            set.extend(ids);
        }
    }

    fn contains(&self, id: &Uuid) -> bool {
        let set = self.0.lock().expect("lock");
        set.as_ref().is_some_and(|s| s.contains(id))
    }

    fn stop(&self) {
        *self.0.lock().expect("lock") = None;
    }
}

/// A drive backed by a local directory.
pub struct LocalDrive {
    root: PathBuf,
    label: String,
    db: RwLock<Option<Arc<MetaDb>>>,
    released: Arc<Released>,
    online: AtomicBool,
    /// Serialises format checks, so two callers never both wipe a re-initialised drive.
    checking: tokio::sync::Mutex<()>,
    space: SpaceGauge,
}

impl LocalDrive {
    /// Opens (creating if needed) the drive at `root` and clears its staging area.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?; // before its space is first measured
        let drive = Self {
            label: root.display().to_string(),
            root: root.clone(),
            db: RwLock::new(None),
            released: Arc::new(Released::tracking()),
            online: AtomicBool::new(false),
            checking: tokio::sync::Mutex::new(()),
            space: SpaceGauge::new(root.clone()),
        };
        drive.init()?;
        Ok(drive)
    }

    fn sys(&self) -> PathBuf {
        self.root.join(".strata")
    }

    fn tmp_dir(&self, id: Uuid) -> PathBuf {
        self.sys().join("tmp").join(id.to_string())
    }

    fn upload_dir(&self, id: Uuid) -> PathBuf {
        self.sys().join("multipart").join(id.to_string())
    }

    fn data_dir(&self, id: Uuid) -> PathBuf {
        let s = id.to_string();
        self.root.join("data").join(&s[..2]).join(s)
    }

    fn init(&self) -> Result<()> {
        for dir in ["tmp", "multipart"] {
            fs::create_dir_all(self.sys().join(dir))?;
        }
        fs::create_dir_all(self.root.join("data"))?;
        // A crash can leave staged files behind; nothing in tmp was ever committed.
        for entry in fs::read_dir(self.sys().join("tmp"))? {
            let _ = fs::remove_dir_all(entry?.path());
        }
        let db = Arc::new(MetaDb::open(&self.sys().join("meta.db"))?);
        self.recover_uploads(&db)?;
        *self.db.write().expect("lock") = Some(db);
        self.online.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Finishes what a crash interrupted in the multipart area: an upload directory whose
    /// upload row is gone was either completed (its id is a referenced data directory: move
    /// it into place) or aborted (remove it).
    fn recover_uploads(&self, db: &MetaDb) -> Result<()> {
        let reader = db.reader();
        for entry in fs::read_dir(self.sys().join("multipart"))? {
            let entry = entry?;
            let Ok(id) = Uuid::parse_str(&entry.file_name().to_string_lossy()) else {
                let _ = fs::remove_dir_all(entry.path());
                continue;
            };
            if has_row(&reader, OPEN_UPLOAD, id)? {
                continue;
            }
            if has_row(&reader, REFERENCED, id)? {
                move_into_place(&entry.path(), &self.data_dir(id))?;
            } else {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        // A reopened upload (its completion was rolled back) whose directory had not moved
        // back from the data area yet.
        let open: Vec<Vec<u8>> = reader
            .prepare("SELECT id FROM uploads")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in open {
            let id = Uuid::from_slice(&id).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            let (dir, data) = (self.upload_dir(id), self.data_dir(id));
            if !dir.exists() && data.exists() {
                move_into_place(&data, &dir)?;
            }
        }
        Ok(())
    }

    fn db(&self) -> Result<Arc<MetaDb>> {
        self.db
            .read()
            .expect("lock")
            .clone()
            .ok_or_else(|| StorageError::DriveOffline(self.label.clone()))
    }

    async fn write(&self, job: Job) -> Result<()> {
        let db = self.db()?;
        self.write_to(&db, job).await
    }

    /// Writes through one database generation: a commit whose shards were staged before a
    /// re-initialisation must not land in the new, empty database.
    async fn write_to(&self, db: &MetaDb, job: Job) -> Result<()> {
        db.writer.write(job).await.map_err(|e| match e {
            WriteError::Stopped => StorageError::DriveOffline(self.label.clone()),
            WriteError::Sqlite(e) => StorageError::Io(io::Error::other(e)),
        })
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db()?;
        tokio::task::spawn_blocking(move || f(&db.reader()))
            .await
            .map_err(|e| StorageError::Io(io::Error::other(e)))?
            .map_err(StorageError::from)
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> Result<T> {
        Ok(tokio::task::spawn_blocking(f)
            .await
            .map_err(io::Error::other)??)
    }
}

/// Removes data directories that no record references and that are older than `before`
/// (a crash between moving shards into place and committing the record leaves these).
fn collect_orphans(
    root: &Path,
    db: &MetaDb,
    released: &Released,
    before: std::time::SystemTime,
) -> Result<usize> {
    let mut removed = 0;
    for fan in fs::read_dir(root.join("data"))? {
        let fan = fan?;
        for entry in fs::read_dir(fan.path())? {
            let entry = entry?;
            let Ok(id) = Uuid::parse_str(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            if entry.metadata()?.modified()? >= before {
                continue;
            }
            // An upload's id counts too: a rolled-back completion's directory is on its way
            // back to the multipart area.
            let referenced = {
                let reader = db.reader();
                has_row(&reader, REFERENCED, id)? || has_row(&reader, OPEN_UPLOAD, id)?
            };
            // Asked after the query: a commit notes what it releases before its transaction
            // lands, so a directory the query saw lose its row is already noted here.
            if !referenced && !released.contains(&id) {
                fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Whether `sql`, a `SELECT 1 … WHERE id = ?1` query, finds a row for `id`.
fn has_row(conn: &Connection, sql: &str, id: Uuid) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id.as_bytes()], |_| Ok(()))
        .optional()?
        .is_some())
}

const REFERENCED: &str = "SELECT 1 FROM data_dirs WHERE id = ?1";
const OPEN_UPLOAD: &str = "SELECT 1 FROM uploads WHERE id = ?1";

/// Renames `from` to `to` (creating `to`'s parent) and makes the rename durable.
fn move_into_place(from: &Path, to: &Path) -> io::Result<()> {
    let parent = to.parent().expect("data dirs have parents");
    fs::create_dir_all(parent)?;
    fs::rename(from, to)?;
    fs::File::open(parent)?.sync_all()
}

fn decode<T>(r: std::result::Result<T, String>) -> rusqlite::Result<T> {
    r.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into())
    })
}

/// Replaces a key's record. The `data_dirs` rows follow the records exactly: the previous
/// record's directories lose their rows and the new record's gain theirs, in the same
/// transaction, so a directory without a row is never referenced and may be collected.
/// Inline object bytes live in their own column after the record, so listings, which read
/// only the record, never load them.
fn apply_commit(conn: &Connection, c: &Commit, released: &Released) -> rusqlite::Result<()> {
    let previous: Option<Vec<u8>> = conn
        .prepare_cached("SELECT record FROM objects WHERE bucket = ?1 AND key = ?2")?
        .query_row(params![c.bucket, c.key.as_bytes()], |r| r.get(0))
        .optional()?;
    if let Some(previous) = previous {
        let dirs = decode(ObjectRecord::decode(&previous))?.data_dirs();
        for id in &dirs {
            conn.prepare_cached("DELETE FROM data_dirs WHERE id = ?1")?
                .execute([id.as_bytes()])?;
        }
        released.note(dirs);
    }
    match &c.record {
        Some(rec) => {
            let mut slim = rec.clone();
            let inline = slim.take_inline();
            conn.prepare_cached(
                "INSERT INTO objects(bucket, key, record, inline) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(bucket, key) DO UPDATE SET record = excluded.record, inline = excluded.inline",
            )?
            .execute(params![c.bucket, c.key.as_bytes(), slim.encode(), inline])?;
            for id in rec.data_dirs() {
                conn.prepare_cached("INSERT OR IGNORE INTO data_dirs(id) VALUES (?1)")?
                    .execute([id.as_bytes()])?;
            }
        }
        None => {
            conn.prepare_cached("DELETE FROM objects WHERE bucket = ?1 AND key = ?2")?
                .execute(params![c.bucket, c.key.as_bytes()])?;
        }
    }
    Ok(())
}

struct LocalShardWriter {
    file: Arc<fs::File>,
    written: u64,
}

#[async_trait]
impl ShardWriter for LocalShardWriter {
    async fn write(&mut self, framed: Bytes) -> Result<()> {
        let (file, offset) = (self.file.clone(), self.written);
        self.written += framed.len() as u64;
        LocalDrive::blocking(move || {
            file.write_all_at(&framed, offset)?;
            start_writeback(&file, offset, framed.len() as u64);
            Ok(())
        })
        .await
    }

    async fn finish(self: Box<Self>) -> Result<()> {
        let file = self.file.clone();
        LocalDrive::blocking(move || file.sync_all()).await
    }
}

/// Asks the kernel to start writing a range out now, so the disk works while the rest of the
/// object arrives and the final fsync finds little left to do (instead of one burst per object).
#[cfg(target_os = "linux")]
fn start_writeback(file: &fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open for
    // the duration of the call because `file` is borrowed. A failure only loses the hint.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &fs::File, _offset: u64, _len: u64) {}

struct LocalShardReader {
    file: Arc<fs::File>,
}

#[async_trait]
impl ShardReader for LocalShardReader {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let file = self.file.clone();
        LocalDrive::blocking(move || {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset)?;
            Ok(Bytes::from(buf))
        })
        .await
    }
}

#[async_trait]
impl Drive for LocalDrive {
    fn label(&self) -> &str {
        &self.label
    }

    fn is_online(&self) -> bool {
        self.online.load(Ordering::SeqCst)
    }

    fn space(&self) -> Option<Space> {
        self.space.get()
    }

    async fn read_format(&self) -> Result<Option<Format>> {
        let path = self.sys().join("format.json");
        Self::blocking(move || match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn write_format(&self, format: &Format) -> Result<()> {
        let sys = self.sys();
        let bytes = serde_json::to_vec_pretty(format).map_err(io::Error::other)?;
        Self::blocking(move || {
            fs::create_dir_all(&sys)?;
            let tmp = sys.join("format.json.tmp");
            fs::write(&tmp, bytes)?;
            fs::File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, sys.join("format.json"))?;
            fs::File::open(&sys)?.sync_all()
        })
        .await
    }

    async fn put_bucket(&self, record: &BucketRecord) -> Result<()> {
        let (name, bytes) = (record.name.clone(), record.encode());
        self.write(Box::new(move |c| {
            c.execute(
                "INSERT INTO buckets(name, record) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET record = excluded.record",
                params![name, bytes],
            )
            .map(drop)
        }))
        .await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let name = name.to_owned();
        self.read(move |c| {
            c.query_row("SELECT record FROM buckets WHERE name = ?1", [name], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()?
            .map(|b| decode(BucketRecord::decode(&b)))
            .transpose()
        })
        .await
    }

    async fn delete_bucket(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.write(Box::new(move |c| {
            c.execute("DELETE FROM buckets WHERE name = ?1", [name])
                .map(drop)
        }))
        .await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT record FROM buckets ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|b| decode(BucketRecord::decode(&b?))).collect()
        })
        .await
    }

    async fn read_record(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        // A point lookup by primary key is a few page-cache hits: it runs on the calling task,
        // because handing it to the blocking pool costs more (thread wake-ups) than the read.
        let db = self.db()?;
        let reader = db.reader();
        let row = reader
            .prepare_cached("SELECT record, inline FROM objects WHERE bucket = ?1 AND key = ?2")?
            .query_row(params![bucket, key.as_bytes()], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .optional()?;
        let Some((record, inline)) = row else {
            return Ok(None);
        };
        let mut record = ObjectRecord::decode(&record).map_err(StorageError::Corrupt)?;
        if let Some(inline) = inline {
            record
                .restore_inline(&inline)
                .map_err(StorageError::Corrupt)?;
        }
        Ok(Some(record))
    }

    async fn commit(&self, commit: Commit) -> Result<()> {
        let db = self.db()?;
        let moves: Vec<(PathBuf, PathBuf)> = commit
            .staged
            .iter()
            .map(|id| (self.tmp_dir(*id), self.data_dir(*id)))
            .collect();
        if !moves.is_empty() {
            Self::blocking(move || {
                moves
                    .iter()
                    .try_for_each(|(from, to)| move_into_place(from, to))
            })
            .await?;
        }
        let free: Vec<PathBuf> = commit.free.iter().map(|id| self.data_dir(*id)).collect();
        let released = self.released.clone();
        self.write_to(&db, Box::new(move |c| apply_commit(c, &commit, &released)))
            .await?;
        Self::blocking(move || {
            for dir in free {
                let _ = fs::remove_dir_all(dir);
            }
            Ok(())
        })
        .await
    }

    async fn list_records(
        &self,
        bucket: &str,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>> {
        let (bucket, lower, upper) = (bucket.to_owned(), lower.to_vec(), upper.map(<[u8]>::to_vec));
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT key, record FROM objects WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
                 ORDER BY key LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![bucket, lower, upper, limit as i64], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            rows.map(|row| {
                let (key, rec) = row?;
                let key = decode(String::from_utf8(key).map_err(|e| e.to_string()))?;
                Ok((key, decode(ObjectRecord::decode(&rec))?))
            })
            .collect()
        })
        .await
    }

    async fn create_shard(&self, staging: Uuid, part: u32) -> Result<Box<dyn ShardWriter>> {
        if !self.is_online() {
            return Err(StorageError::DriveOffline(self.label.clone()));
        }
        let dir = self.tmp_dir(staging);
        let file = Self::blocking(move || {
            fs::create_dir_all(&dir)?;
            fs::File::create(dir.join(format!("part.{part}")))
        })
        .await?;
        Ok(Box::new(LocalShardWriter {
            file: Arc::new(file),
            written: 0,
        }))
    }

    async fn open_shard(&self, data_dir: Uuid, part: u32) -> Result<Box<dyn ShardReader>> {
        let path = self.data_dir(data_dir).join(format!("part.{part}"));
        let file = Self::blocking(move || fs::File::open(path)).await?;
        Ok(Box::new(LocalShardReader {
            file: Arc::new(file),
        }))
    }

    async fn discard_staging(&self, staging: Uuid) -> Result<()> {
        let dir = self.tmp_dir(staging);
        Self::blocking(move || match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }

    async fn put_upload(&self, upload: &UploadRecord) -> Result<()> {
        let (id, bucket, bytes) = (upload.upload_id, upload.bucket.clone(), upload.encode());
        let dir = self.upload_dir(id);
        Self::blocking(move || fs::create_dir_all(dir)).await?;
        self.write(Box::new(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO uploads(id, bucket, record) VALUES (?1, ?2, ?3)",
                params![id.as_bytes(), bucket, bytes],
            )
            .map(drop)
        }))
        .await
    }

    async fn get_upload(&self, upload_id: Uuid) -> Result<Option<UploadRecord>> {
        self.read(move |c| {
            c.query_row(
                "SELECT record FROM uploads WHERE id = ?1",
                [upload_id.as_bytes()],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .map(|b| decode(UploadRecord::decode(&b)))
            .transpose()
        })
        .await
    }

    async fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadRecord>> {
        let bucket = bucket.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare("SELECT record FROM uploads WHERE bucket = ?1")?;
            let rows = stmt.query_map([bucket], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|b| decode(UploadRecord::decode(&b?))).collect()
        })
        .await
    }

    async fn commit_part(&self, upload_id: Uuid, part: PartRecord) -> Result<()> {
        let db = self.db()?;
        let from = self
            .tmp_dir(part.staging)
            .join(format!("part.{}", part.number));
        let dir = self.upload_dir(upload_id);
        let to = dir.join(format!("part.{}", part.number));
        let staging_dir = self.tmp_dir(part.staging);
        Self::blocking(move || {
            if !dir.exists() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "upload directory missing",
                ));
            }
            fs::rename(&from, &to)?;
            fs::File::open(&dir)?.sync_all()?;
            let _ = fs::remove_dir(staging_dir);
            Ok(())
        })
        .await?;
        let (number, bytes) = (part.number, part.encode());
        self.write_to(
            &db,
            Box::new(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO parts(upload, number, record) VALUES (?1, ?2, ?3)",
                    params![upload_id.as_bytes(), number, bytes],
                )
                .map(drop)
            }),
        )
        .await
    }

    async fn list_parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>> {
        self.read(move |c| {
            let mut stmt =
                c.prepare("SELECT record FROM parts WHERE upload = ?1 ORDER BY number")?;
            let rows = stmt.query_map([upload_id.as_bytes()], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|b| decode(PartRecord::decode(&b?))).collect()
        })
        .await
    }

    async fn abort_upload(&self, upload_id: Uuid) -> Result<()> {
        self.write(Box::new(move |c| {
            c.execute("DELETE FROM uploads WHERE id = ?1", [upload_id.as_bytes()])?;
            c.execute(
                "DELETE FROM parts WHERE upload = ?1",
                [upload_id.as_bytes()],
            )
            .map(drop)
        }))
        .await?;
        let dir = self.upload_dir(upload_id);
        Self::blocking(move || {
            let _ = fs::remove_dir_all(dir);
            Ok(())
        })
        .await
    }

    async fn complete_upload(&self, upload_id: Uuid, commit: Commit) -> Result<()> {
        let db = self.db()?;
        let dir = self.upload_dir(upload_id);
        let free: Vec<PathBuf> = commit.free.iter().map(|id| self.data_dir(*id)).collect();
        let mut commit = commit;
        commit.staged = vec![upload_id];
        let released = self.released.clone();
        self.write_to(
            &db,
            Box::new(move |c| {
                apply_commit(c, &commit, &released)?;
                c.execute("DELETE FROM uploads WHERE id = ?1", [upload_id.as_bytes()])?;
                c.execute(
                    "DELETE FROM parts WHERE upload = ?1",
                    [upload_id.as_bytes()],
                )
                .map(drop)
            }),
        )
        .await?;
        // Committed: the record now references the data directory; a crash before this
        // rename is finished by `recover_uploads` at the next start.
        let to = self.data_dir(upload_id);
        Self::blocking(move || {
            move_into_place(&dir, &to)?;
            for d in free {
                let _ = fs::remove_dir_all(d);
            }
            Ok(())
        })
        .await
    }

    async fn prune_parts(&self, data_dir: Uuid, keep: Vec<u32>) -> Result<()> {
        let dir = self.data_dir(data_dir);
        Self::blocking(move || {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let number = name
                    .strip_prefix("part.")
                    .and_then(|n| n.parse::<u32>().ok());
                if number.is_none_or(|n| !keep.contains(&n)) {
                    fs::remove_file(entry.path())?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn reopen_upload(
        &self,
        upload: &UploadRecord,
        parts: Vec<PartRecord>,
        commit: Commit,
    ) -> Result<()> {
        let db = self.db()?;
        let (id, bucket, bytes) = (upload.upload_id, upload.bucket.clone(), upload.encode());
        let released = self.released.clone();
        self.write_to(
            &db,
            Box::new(move |c| {
                // Only a drive whose record is the completion has anything to undo; on any
                // other the upload is untouched and may have gained parts since.
                if !has_row(c, REFERENCED, id)? {
                    return Ok(());
                }
                apply_commit(c, &commit, &released)?;
                c.execute(
                    "INSERT OR REPLACE INTO uploads(id, bucket, record) VALUES (?1, ?2, ?3)",
                    params![id.as_bytes(), bucket, bytes],
                )?;
                for p in &parts {
                    c.execute(
                        "INSERT OR REPLACE INTO parts(upload, number, record) VALUES (?1, ?2, ?3)",
                        params![id.as_bytes(), p.number, p.encode()],
                    )?;
                }
                Ok(())
            }),
        )
        .await?;
        // The upload's row is back; a crash before this rename is finished by
        // `recover_uploads` at the next start.
        let (from, to) = (self.data_dir(id), self.upload_dir(id));
        Self::blocking(move || match from.exists() {
            true => move_into_place(&from, &to),
            false => Ok(()),
        })
        .await
    }

    async fn check(&self, expected: &Format) -> Result<bool> {
        let _one_at_a_time = self.checking.lock().await;
        match self.read_format().await {
            Ok(Some(found)) if &found == expected => return Ok(false),
            Ok(Some(found)) => {
                self.online.store(false, Ordering::SeqCst);
                return Err(StorageError::Corrupt(format!(
                    "drive {} belongs to deployment {} (set {}, drive {}), expected deployment {} (set {}, drive {})",
                    self.label,
                    found.deployment_id,
                    found.set_index,
                    found.drive_index,
                    expected.deployment_id,
                    expected.set_index,
                    expected.drive_index
                )));
            }
            Ok(None) => {}
            // An unreadable format (too many open files, an I/O error) is not a wipe, and
            // re-initialising would destroy data that may well be intact.
            Err(e) => return Err(e),
        }
        // Wiped or replaced: nothing left on it can be trusted (a heal may even have written
        // into the old, unlinked database), so start over with an empty drive of the same
        // identity and let healing fill it.
        tracing::warn!(drive = %self.label, "drive lost its format; re-initialising it for healing");
        self.online.store(false, Ordering::SeqCst);
        let old = self.db.write().expect("lock").take();
        if let Some(mut old) = old {
            // Every connection to the old files must be closed before the files are removed
            // and created anew (SQLite shares per-inode state and may remove the new `-wal`).
            // Requests still holding it finish: the writer serves them until it is dropped.
            let waiting = std::time::Instant::now();
            let mut warned = false;
            let db = loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => break db,
                    Err(shared) => old = shared,
                }
                if !warned && waiting.elapsed() > std::time::Duration::from_secs(30) {
                    tracing::warn!(drive = %self.label, "re-initialisation still waits for requests using the old metadata database");
                    warned = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            };
            Self::blocking(move || {
                drop(db);
                Ok(())
            })
            .await?;
        }
        let root = self.root.clone();
        Self::blocking(move || {
            fs::create_dir_all(&root)?;
            for dir in [".strata", "data"] {
                // Requests that started before the drive went offline may still create
                // files for a moment; retry until the directory is really gone.
                let mut attempts = 0;
                loop {
                    match fs::remove_dir_all(root.join(dir)) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                        Err(_) if attempts < 20 => {
                            attempts += 1;
                            std::thread::sleep(std::time::Duration::from_millis(10));
                        }
                        Err(e) => return Err(e),
                        Ok(()) => break,
                    }
                }
            }
            Ok(())
        })
        .await?;
        self.init()?;
        self.write_format(expected).await?;
        Ok(true)
    }

    async fn remove_data(&self, dirs: Vec<Uuid>) -> Result<()> {
        let db = self.db()?;
        let paths: Vec<(Uuid, PathBuf)> =
            dirs.into_iter().map(|id| (id, self.data_dir(id))).collect();
        Self::blocking(move || {
            for (id, path) in paths {
                let referenced = has_row(&db.reader(), REFERENCED, id).map_err(io::Error::other)?;
                if !referenced {
                    let _ = fs::remove_dir_all(path);
                }
            }
            Ok(())
        })
        .await
    }

    async fn collect_garbage(&self, before: std::time::SystemTime) -> Result<usize> {
        // Runs the directory walk off the async threads; the drive outlives the call.
        let (root, released) = (self.root.clone(), self.released.clone());
        let result = match self.db() {
            Ok(db) => {
                let walk = move || {
                    collect_orphans(&root, &db, &released, before).map_err(io::Error::other)
                };
                Self::blocking(walk).await
            }
            Err(e) => Err(e),
        };
        // The collector has run (or cannot): released directories need no more tracking.
        self.released.stop();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::VersionRecord;

    /// A record whose one version keeps its shards in data directory `dir`.
    fn record_in(dir: Uuid) -> ObjectRecord {
        use crate::meta::{DataLocation, ErasureInfo, ObjectVersion};
        let object = ObjectVersion {
            size: 1,
            etag: "e".into(),
            headers: Default::default(),
            user_metadata: Default::default(),
            checksum: None,
            storage_class: "STANDARD".into(),
            erasure: ErasureInfo {
                layout: crate::layout::ErasureLayout::new(1, 0).unwrap(),
                shard_index: 0,
            },
            parts: vec![],
            data: DataLocation::Dir(dir),
            tags: Default::default(),
            retention: None,
            legal_hold: false,
            legal_hold_set: false,
            transition: None,
            restore: None,
            metadata_changed_ns: 0,
        };
        ObjectRecord {
            versions: vec![VersionRecord {
                version_id: None,
                mod_time_ns: 1,
                object: Some(object),
                lifecycle_marker: false,
                replication: Default::default(),
            }],
        }
    }

    fn record(t: i64) -> ObjectRecord {
        ObjectRecord {
            versions: vec![VersionRecord {
                version_id: None,
                mod_time_ns: t,
                object: None,
                lifecycle_marker: false,
                replication: Default::default(),
            }],
        }
    }

    /// A commit that sets `key`'s record and stages nothing.
    fn commit_of(bucket: &str, key: &str, record: ObjectRecord) -> Commit {
        Commit {
            bucket: bucket.into(),
            key: key.into(),
            record: Some(record),
            staged: vec![],
            free: vec![],
        }
    }

    #[tokio::test]
    async fn commits_and_lists_in_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path()).unwrap();
        for key in ["b", "a/2", "a/1", "é", "Z"] {
            drive.commit(commit_of("bk", key, record(1))).await.unwrap();
        }
        let all = drive.list_records("bk", b"", None, 100).await.unwrap();
        let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["Z", "a/1", "a/2", "b", "é"]);
        let some = drive
            .list_records("bk", b"a/", Some(b"a0"), 100)
            .await
            .unwrap();
        assert_eq!(some.len(), 2);
        let del = Commit {
            bucket: "bk".into(),
            key: "b".into(),
            record: None,
            staged: vec![],
            free: vec![],
        };
        drive.commit(del).await.unwrap();
        assert!(drive.read_record("bk", "b").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn staged_shards_move_into_place_on_commit_and_tmp_is_cleared_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        let mut w = drive.create_shard(id, 1).await.unwrap();
        w.write(Bytes::from_static(b"hello")).await.unwrap();
        w.finish().await.unwrap();
        let c = Commit {
            bucket: "b".into(),
            key: "k".into(),
            record: Some(record(1)),
            staged: vec![id],
            free: vec![],
        };
        drive.commit(c).await.unwrap();
        let r = drive.open_shard(id, 1).await.unwrap();
        assert_eq!(&r.read_at(1, 3).await.unwrap()[..], b"ell");

        // An uncommitted staging directory disappears when the drive is opened again.
        let orphan = Uuid::new_v4();
        let mut w = drive.create_shard(orphan, 1).await.unwrap();
        w.write(Bytes::from_static(b"x")).await.unwrap();
        w.finish().await.unwrap();
        drop(drive);
        let _drive = LocalDrive::open(dir.path()).unwrap();
        assert!(!dir
            .path()
            .join(".strata/tmp")
            .join(orphan.to_string())
            .exists());
    }

    #[tokio::test]
    async fn only_a_missing_format_counts_as_a_wiped_drive() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path()).unwrap();
        let format = Format {
            version: 1,
            deployment_id: Uuid::new_v4(),
            set_index: 0,
            drive_index: 0,
            set_count: 1,
            set_drive_count: 1,
        };
        drive.write_format(&format).await.unwrap();
        drive.commit(commit_of("b", "k", record(1))).await.unwrap();
        assert!(!drive.check(&format).await.unwrap());

        // A format that cannot be read leaves the drive and its records alone.
        let path = dir.path().join(".strata/format.json");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(drive.check(&format).await.is_err());
        fs::remove_dir(&path).unwrap();
        drive.write_format(&format).await.unwrap();
        assert!(drive.read_record("b", "k").await.unwrap().is_some());

        // A missing one means the drive was wiped or replaced: it starts over, empty.
        fs::remove_file(&path).unwrap();
        assert!(drive.check(&format).await.unwrap());
        assert!(drive.read_record("b", "k").await.unwrap().is_none());
        assert_eq!(drive.read_format().await.unwrap(), Some(format));
    }

    #[tokio::test]
    async fn orphan_data_dirs_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path()).unwrap();
        let orphan = Uuid::new_v4();
        let path = drive.data_dir(orphan);
        fs::create_dir_all(&path).unwrap();
        let stage = |id| {
            let drive = &drive;
            async move {
                let mut w = drive.create_shard(id, 1).await.unwrap();
                w.write(Bytes::from_static(b"x")).await.unwrap();
                w.finish().await.unwrap();
            }
        };
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        stage(first).await;
        let commit = |id| Commit {
            bucket: "b".into(),
            key: "k".into(),
            record: Some(record_in(id)),
            staged: vec![id],
            free: vec![],
        };
        drive.commit(commit(first)).await.unwrap();
        // Replacing the record without freeing: the first directory is no longer referenced,
        // as after a crash between a PUT's commit and the removal of the replaced data.
        stage(second).await;
        drive.commit(commit(second)).await.unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        // Until the drive opens again the first directory might still get its row back (a
        // rollback), so only the orphan from before goes; after a restart both go.
        assert_eq!(drive.collect_garbage(later).await.unwrap(), 1);
        assert!(!path.exists());
        assert!(drive.data_dir(first).exists());
        drop(drive);
        let drive = LocalDrive::open(dir.path()).unwrap();
        assert_eq!(drive.collect_garbage(later).await.unwrap(), 1);
        assert!(!path.exists());
        assert!(!drive.data_dir(first).exists());
        assert!(drive.data_dir(second).exists());
        drive.remove_data(vec![second]).await.unwrap();
        assert!(
            drive.data_dir(second).exists(),
            "a referenced directory is never removed"
        );
    }

    #[tokio::test]
    async fn a_reopened_upload_keeps_its_part_files_even_across_a_crash() {
        use crate::meta::{ErasureInfo, UploadRecord};
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        let upload = UploadRecord {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: id,
            initiated_ns: 1,
            headers: Default::default(),
            user_metadata: Default::default(),
            storage_class: "STANDARD".into(),
            checksum_algorithm: None,
            checksum_type: None,
            tags: Default::default(),
            retention: None,
            legal_hold: None,
            erasure: ErasureInfo {
                layout: crate::layout::ErasureLayout::new(1, 0).unwrap(),
                shard_index: 0,
            },
        };
        drive.put_upload(&upload).await.unwrap();
        let staging = Uuid::new_v4();
        let mut w = drive.create_shard(staging, 1).await.unwrap();
        w.write(Bytes::from_static(b"part")).await.unwrap();
        w.finish().await.unwrap();
        let part = PartRecord {
            number: 1,
            size: 4,
            etag: "e".into(),
            checksum: None,
            mod_time_ns: 1,
            staging,
        };
        drive.commit_part(id, part.clone()).await.unwrap();
        let commit = |record| Commit {
            bucket: "b".into(),
            key: "k".into(),
            record,
            staged: vec![],
            free: vec![],
        };
        // The key had an object whose directory, made before the drive opened, the
        // completion replaces.
        let previous = Uuid::new_v4();
        fs::create_dir_all(drive.data_dir(previous)).unwrap();
        let first = Commit {
            staged: vec![],
            ..commit(Some(record_in(previous)))
        };
        drive.commit(first).await.unwrap();
        // Undoing on a drive that never took the completion changes nothing.
        let stray = commit(None);
        drive.reopen_upload(&upload, vec![], stray).await.unwrap();
        assert_eq!(
            drive.read_record("b", "k").await.unwrap(),
            Some(record_in(previous))
        );
        assert_eq!(
            drive.list_parts(id).await.unwrap(),
            std::slice::from_ref(&part)
        );
        let completed = commit(Some(record_in(id)));
        drive.complete_upload(id, completed).await.unwrap();
        assert!(drive.get_upload(id).await.unwrap().is_none());
        // The start-up collector runs while the previous directory has no row: a rollback
        // is about to give it back, so it stays.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        assert_eq!(drive.collect_garbage(later).await.unwrap(), 0);
        let undo = commit(Some(record_in(previous)));
        drive
            .reopen_upload(&upload, vec![part], undo)
            .await
            .unwrap();
        assert!(drive.data_dir(previous).exists());
        assert_eq!(
            drive.read_record("b", "k").await.unwrap(),
            Some(record_in(previous))
        );
        assert_eq!(drive.get_upload(id).await.unwrap(), Some(upload));
        assert_eq!(drive.list_parts(id).await.unwrap().len(), 1);
        let part_file = drive.upload_dir(id).join("part.1");
        assert_eq!(fs::read(&part_file).unwrap(), b"part");

        // A crash between the reopening transaction and the directory's move back: the
        // collector leaves the directory of an open upload alone, and the next start moves it.
        move_into_place(&drive.upload_dir(id), &drive.data_dir(id)).unwrap();
        assert_eq!(drive.collect_garbage(later).await.unwrap(), 0);
        drop(drive);
        let drive = LocalDrive::open(dir.path()).unwrap();
        assert!(drive.upload_dir(id).join("part.1").exists());
        assert!(!drive.data_dir(id).exists());
    }

    #[tokio::test]
    async fn pruning_a_completed_object_keeps_only_listed_parts() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        let data = drive.data_dir(id);
        fs::create_dir_all(&data).unwrap();
        for name in ["part.1", "part.2", "part.3"] {
            fs::write(data.join(name), b"x").unwrap();
        }
        drive.prune_parts(id, vec![1, 3]).await.unwrap();
        let mut left: Vec<String> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["part.1", "part.3"]);
    }
}
