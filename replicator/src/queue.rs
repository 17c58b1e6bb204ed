//! The node's replication queue (SQLite in WAL mode): one entry per (version, target) still
//! to be sent. It survives a crash of the process; it is not fsynced per commit
//! (`synchronous=NORMAL`), because it is never the only copy of a fact: every version it names
//! says PENDING in its own record (written with the drives' `synchronous=FULL`), and the
//! start-up scan queues such versions again, so a power cut costs a scan, not a write. An entry is written before the change it stems
//! from commits, so a crash can leave an entry for a change that never happened (the sender
//! finds the version absent and drops it) but never a change without its entry.
//!
//! A later change to the same version merges into the waiting entry (a new object version
//! beats a metadata change, a version delete beats both) and bumps its `seq`, so a send that
//! raced with the change does not retire it. Entries of one key and target go out in the
//! order they were queued.
//!
//! Writes go through a group-committing writer thread (`storage::group_commit`): the writes
//! that every replicated PUT makes share fsyncs, and nobody on the async runtime waits on one.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;
use storage::group_commit::GroupCommit;
use storage::meta::version_id_text;
use storage::{ReplicationEntry, ReplicationOp};
use uuid::Uuid;

/// A queued entry as the sender takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub id: i64,
    pub seq: i64,
    pub bucket: String,
    pub key: String,
    /// `None`: the null version.
    #[serde(serialize_with = "version_text")]
    pub version_id: Option<Uuid>,
    pub mod_time_ns: i64,
    pub target: String,
    #[serde(serialize_with = "op_text")]
    pub op: ReplicationOp,
    pub size: u64,
    pub remote_version_id: Option<String>,
    pub enqueued_ns: i64,
    pub attempts: u32,
    pub due_ns: i64,
    /// Whether the retry budget ran out (the version shows FAILED); it is still retried.
    pub failed: bool,
    pub last_error: Option<String>,
}

fn version_text<S: serde::Serializer>(v: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&version_id_text(*v))
}

fn op_text<S: serde::Serializer>(op: &ReplicationOp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.as_str())
}

/// Backlog of one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    pub count: u64,
    pub bytes: u64,
    pub failed: u64,
    /// When the oldest entry was queued, ns since the epoch.
    pub oldest_ns: Option<i64>,
}

pub struct Queue {
    writer: GroupCommit,
    reader: Mutex<Connection>,
}

const COLUMNS: &str = "id, seq, bucket, key, version, mod_time, target, op, size, remote_version, enqueued, attempts, due, failed, last_error";

/// Adds an entry, or merges it into the waiting one of the same version and target: a version
/// delete or an object beats a metadata change; the merged entry starts its budget afresh.
const UPSERT: &str = "INSERT INTO queue (bucket, key, version, mod_time, target, op, size, remote_version, enqueued, due)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
    ON CONFLICT (bucket, key, version, target) DO UPDATE SET
        seq = seq + 1,
        op = CASE WHEN excluded.op = 'version-delete' OR op = 'metadata' THEN excluded.op ELSE op END,
        mod_time = excluded.mod_time,
        size = max(size, excluded.size),
        remote_version = coalesce(excluded.remote_version, remote_version),
        attempts = 0,
        failed = 0,
        due = min(due, excluded.due)";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Queued> {
    let version: String = r.get(4)?;
    let op: String = r.get(7)?;
    Ok(Queued {
        id: r.get(0)?,
        seq: r.get(1)?,
        bucket: r.get(2)?,
        key: r.get(3)?,
        version_id: Uuid::parse_str(&version).ok(),
        mod_time_ns: r.get(5)?,
        target: r.get(6)?,
        op: ReplicationOp::parse(&op).unwrap_or(ReplicationOp::Object),
        size: r.get::<_, i64>(8)? as u64,
        remote_version_id: r.get(9)?,
        enqueued_ns: r.get(10)?,
        attempts: r.get::<_, i64>(11)? as u32,
        due_ns: r.get(12)?,
        failed: r.get(13)?,
        last_error: r.get(14)?,
    })
}

fn err(e: rusqlite::Error) -> String {
    format!("replication queue: {e}")
}

impl Queue {
    pub fn open(path: &Path) -> Result<Self, String> {
        let db = Connection::open(path).map_err(err)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS queue (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                seq INTEGER NOT NULL DEFAULT 0,
                bucket TEXT NOT NULL,
                key TEXT NOT NULL,
                version TEXT NOT NULL,
                mod_time INTEGER NOT NULL,
                target TEXT NOT NULL,
                op TEXT NOT NULL,
                size INTEGER NOT NULL,
                remote_version TEXT,
                enqueued INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                due INTEGER NOT NULL,
                failed INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                UNIQUE (bucket, key, version, target)
             );
             CREATE INDEX IF NOT EXISTS queue_order ON queue (bucket, key, target, id);
             CREATE INDEX IF NOT EXISTS queue_target_due ON queue (target, due, id);
             CREATE TABLE IF NOT EXISTS resync (
                bucket TEXT NOT NULL,
                target TEXT NOT NULL,
                cursor TEXT NOT NULL,
                done INTEGER NOT NULL DEFAULT 0,
                queued INTEGER NOT NULL DEFAULT 0,
                finished INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (bucket, target)
             );",
        )
        .map_err(err)?;
        let reader = Connection::open(path).map_err(err)?;
        reader
            .pragma_update(None, "query_only", "ON")
            .map_err(err)?;
        Ok(Self {
            writer: GroupCommit::start(db, "strata-replication-queue")
                .map_err(|e| format!("replication queue: {e}"))?,
            reader: Mutex::new(reader),
        })
    }

    /// Runs `f` in the writer's next batch and hands back its answer once it committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let out = std::sync::Arc::new(Mutex::new(None));
        let slot = out.clone();
        self.writer
            .write(Box::new(move |c| {
                *slot.lock().expect("lock") = Some(f(c)?);
                Ok(())
            }))
            .await
            .map_err(|e| format!("replication queue: {e}"))?;
        let value = out.lock().expect("lock").take();
        value.ok_or_else(|| "replication queue: the write gave no answer".to_owned())
    }

    /// Adds entries in one transaction, merging each into a waiting entry of the same
    /// version and target.
    pub async fn push(&self, entries: Vec<ReplicationEntry>, now_ns: i64) -> Result<(), String> {
        self.write(move |c| {
            let mut upsert = c.prepare_cached(UPSERT)?;
            for e in &entries {
                upsert.execute(params![
                    e.bucket,
                    e.key,
                    version_id_text(e.version_id),
                    e.mod_time_ns,
                    e.target,
                    e.op.as_str(),
                    e.size as i64,
                    e.remote_version_id,
                    now_ns,
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// Up to `limit` entries of the `active` targets due by `now_ns`, each the first of its
    /// key and target, oldest first, leaving out entries `busy` says are being sent. Per
    /// target through the (target, due) index: a paused target's backlog is never walked.
    pub fn due(
        &self,
        now_ns: i64,
        limit: usize,
        active: &[String],
        busy: impl Fn(i64) -> bool,
    ) -> Result<Vec<Queued>, String> {
        let db = self.reader.lock().expect("lock");
        let mut stmt = db
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM queue q WHERE target = ?1 AND due <= ?2
                 AND NOT EXISTS (SELECT 1 FROM queue p WHERE p.bucket = q.bucket AND p.key = q.key
                                 AND p.target = q.target AND p.id < q.id)
                 ORDER BY due, id LIMIT ?3"
            ))
            .map_err(err)?;
        let mut out = Vec::new();
        for target in active {
            let rows = stmt
                .query_map(
                    params![target, now_ns, (limit + crate::WORKERS) as i64],
                    row,
                )
                .map_err(err)?;
            for r in rows {
                let q = r.map_err(err)?;
                if !busy(q.id) {
                    out.push(q);
                }
            }
        }
        out.sort_by_key(|q| (q.due_ns, q.id));
        out.truncate(limit);
        Ok(out)
    }

    /// When the next entry of the `active` targets falls due, if any.
    pub fn next_due(&self, active: &[String]) -> Result<Option<i64>, String> {
        let db = self.reader.lock().expect("lock");
        let mut stmt = db
            .prepare_cached("SELECT min(due) FROM queue WHERE target = ?1")
            .map_err(err)?;
        let mut next: Option<i64> = None;
        for target in active {
            let due: Option<i64> = stmt.query_row([target], |r| r.get(0)).map_err(err)?;
            next = match (next, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(next)
    }

    /// Retires an entry that was sent; `false` when it changed meanwhile (it stays).
    pub async fn finish(&self, id: i64, seq: i64) -> Result<bool, String> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM queue WHERE id = ?1 AND seq = ?2",
                params![id, seq],
            )
            .map(|n| n == 1)
        })
        .await
    }

    /// An object entry whose object reached the target while a later change merged into it
    /// keeps only what is left to send: the metadata (unless a new object took its place).
    pub async fn delivered(&self, id: i64, mod_time_ns: i64) -> Result<(), String> {
        self.write(move |c| {
            c.execute(
                "UPDATE queue SET op = 'metadata' WHERE id = ?1 AND op = 'object' AND mod_time = ?2",
                params![id, mod_time_ns],
            )
            .map(drop)
        })
        .await
    }

    /// Records a failed attempt: due again at `due_ns`; `failed` once the budget ran out.
    /// `attempts` is the count the entry had when it was taken: a `failed retry` that reset
    /// it while the attempt ran wins, and the entry stays due now.
    #[allow(clippy::too_many_arguments)]
    pub async fn postpone(
        &self,
        id: i64,
        seq: i64,
        attempts: u32,
        due_ns: i64,
        failed: bool,
        error: &str,
    ) -> Result<(), String> {
        let error = error.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE queue SET attempts = attempts + 1, due = ?3, failed = failed OR ?4, last_error = ?5
                 WHERE id = ?1 AND seq = ?2 AND attempts = ?6",
                params![id, seq, due_ns, failed, error, attempts],
            )
            .map(drop)
        })
        .await
    }

    /// Makes entries due now: all of `target`'s (it came back) or, with `failed_only`, the
    /// failed ones (`failed retry`). Returns how many.
    pub async fn retry_now(
        &self,
        target: Option<&str>,
        failed_only: bool,
        now_ns: i64,
    ) -> Result<usize, String> {
        let target = target.map(str::to_owned);
        self.write(move |c| {
            c.execute(
                "UPDATE queue SET due = ?1, attempts = CASE WHEN ?3 THEN 0 ELSE attempts END
                 WHERE (?2 IS NULL OR target = ?2) AND (NOT ?3 OR failed) AND due > ?1",
                params![now_ns, target, failed_only],
            )
        })
        .await
    }

    /// Makes one failed entry due now.
    pub async fn retry_one(&self, id: i64, now_ns: i64) -> Result<bool, String> {
        self.write(move |c| {
            c.execute(
                "UPDATE queue SET due = ?2, attempts = 0 WHERE id = ?1",
                params![id, now_ns],
            )
            .map(|n| n == 1)
        })
        .await
    }

    /// Entries whose retry budget ran out, oldest first.
    pub fn failed(&self, target: Option<&str>, limit: usize) -> Result<Vec<Queued>, String> {
        let db = self.reader.lock().expect("lock");
        let mut stmt = db
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM queue WHERE failed AND (?1 IS NULL OR target = ?1) ORDER BY id LIMIT ?2"
            ))
            .map_err(err)?;
        let rows = stmt
            .query_map(params![target, limit as i64], row)
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// Whether an entry waits for `version` of `bucket/key` towards `target`.
    pub fn contains(
        &self,
        bucket: &str,
        key: &str,
        version: Option<Uuid>,
        target: &str,
    ) -> Result<bool, String> {
        let db = self.reader.lock().expect("lock");
        db.query_row(
            "SELECT 1 FROM queue WHERE bucket = ?1 AND key = ?2 AND version = ?3 AND target = ?4",
            params![bucket, key, version_id_text(version), target],
            |_| Ok(()),
        )
        .optional()
        .map(|r| r.is_some())
        .map_err(err)
    }

    /// Backlog per target.
    pub fn backlog(&self) -> Result<Vec<(String, Backlog)>, String> {
        let db = self.reader.lock().expect("lock");
        let mut stmt = db
            .prepare_cached(
                "SELECT target, count(*), sum(size), sum(failed), min(enqueued) FROM queue GROUP BY target",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Backlog {
                        count: r.get::<_, i64>(1)? as u64,
                        bytes: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                        failed: r.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64,
                        oldest_ns: r.get(4)?,
                    },
                ))
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// A resync's cursor (the last key done), count done and queued, and whether it finished.
    pub fn resync_state(
        &self,
        bucket: &str,
        target: &str,
    ) -> Result<Option<(String, u64, u64, bool)>, String> {
        let db = self.reader.lock().expect("lock");
        db.query_row(
            "SELECT cursor, done, queued, finished FROM resync WHERE bucket = ?1 AND target = ?2",
            params![bucket, target],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                    r.get(3)?,
                ))
            },
        )
        .optional()
        .map_err(err)
    }

    /// Stores a resync's progress.
    pub async fn set_resync(
        &self,
        bucket: &str,
        target: &str,
        cursor: &str,
        done: u64,
        queued: u64,
        finished: bool,
    ) -> Result<(), String> {
        let (bucket, target, cursor) = (bucket.to_owned(), target.to_owned(), cursor.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO resync (bucket, target, cursor, done, queued, finished) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (bucket, target) DO UPDATE SET cursor = ?3, done = ?4, queued = ?5, finished = ?6",
                params![bucket, target, cursor, done as i64, queued as i64, finished],
            )
            .map(drop)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active() -> Vec<String> {
        vec!["arn".into()]
    }

    fn entry(key: &str, version: u128, op: ReplicationOp) -> ReplicationEntry {
        ReplicationEntry {
            bucket: "b".into(),
            key: key.into(),
            version_id: Some(Uuid::from_u128(version)),
            mod_time_ns: 1,
            target: "arn".into(),
            op,
            size: 10,
            remote_version_id: None,
        }
    }

    #[tokio::test]
    async fn entries_survive_reopening_and_merge_per_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        {
            let q = Queue::open(&path).unwrap();
            q.push(vec![entry("k", 1, ReplicationOp::Object)], 5)
                .await
                .unwrap();
            q.push(vec![entry("k", 1, ReplicationOp::Metadata)], 6)
                .await
                .unwrap();
        }
        let q = Queue::open(&path).unwrap();
        let due = q.due(10, 10, &active(), |_| false).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(
            due[0].op,
            ReplicationOp::Object,
            "metadata merged into the object"
        );
        assert_eq!(due[0].seq, 1);
        // A send that raced with the merge does not retire the entry.
        assert!(!q.finish(due[0].id, 0).await.unwrap());
        q.push(vec![entry("k", 1, ReplicationOp::VersionDelete)], 7)
            .await
            .unwrap();
        let due = q.due(10, 10, &active(), |_| false).unwrap();
        assert_eq!(due[0].op, ReplicationOp::VersionDelete);
        assert!(q.finish(due[0].id, due[0].seq).await.unwrap());
        assert!(q.due(10, 10, &active(), |_| false).unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_key_goes_in_order_and_failures_stay_listed() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(&dir.path().join("q.db")).unwrap();
        q.push(
            vec![
                entry("k", 1, ReplicationOp::Object),
                entry("k", 2, ReplicationOp::Object),
                entry("other", 3, ReplicationOp::Object),
            ],
            5,
        )
        .await
        .unwrap();
        let due = q.due(10, 10, &active(), |_| false).unwrap();
        let keys: Vec<_> = due.iter().map(|e| (e.key.as_str(), e.version_id)).collect();
        assert_eq!(
            keys,
            [
                ("k", Some(Uuid::from_u128(1))),
                ("other", Some(Uuid::from_u128(3)))
            ],
            "the second version of k waits for the first"
        );
        let first = &due[0];
        q.postpone(
            first.id,
            first.seq,
            first.attempts,
            1000,
            true,
            "target down",
        )
        .await
        .unwrap();
        assert!(
            q.due(10, 10, &active(), |_| false)
                .unwrap()
                .iter()
                .all(|e| e.key != "k"),
            "k's later version waits behind its failed first"
        );
        let failed = q.failed(None, 10).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].last_error.as_deref(), Some("target down"));
        let backlog = q.backlog().unwrap();
        assert_eq!(backlog[0].1.count, 3);
        assert_eq!(backlog[0].1.failed, 1);
        assert_eq!(backlog[0].1.bytes, 30);
        assert_eq!(q.retry_now(None, true, 20).await.unwrap(), 1);
        assert_eq!(q.due(20, 10, &active(), |_| false).unwrap().len(), 2);
        assert!(q.due(20, 10, &[], |_| false).unwrap().is_empty(), "paused");
        // A `failed retry` while an attempt runs wins over that attempt's failure.
        let taken = q
            .due(20, 10, &active(), |_| false)
            .unwrap()
            .into_iter()
            .find(|e| e.id == first.id)
            .expect("due after the retry");
        q.postpone(taken.id, taken.seq, taken.attempts, 1000, true, "down")
            .await
            .unwrap();
        let running = q
            .due(1000, 10, &active(), |_| false)
            .unwrap()
            .into_iter()
            .find(|e| e.id == taken.id)
            .expect("due again");
        assert!(running.attempts > 0);
        assert!(q.retry_one(running.id, 1000).await.unwrap());
        q.postpone(
            running.id,
            running.seq,
            running.attempts,
            9_000,
            true,
            "down",
        )
        .await
        .unwrap();
        assert!(
            q.due(1000, 10, &active(), |_| false)
                .unwrap()
                .iter()
                .any(|e| e.id == running.id),
            "the retried entry stays due"
        );
        // A new change to a failed entry's version starts its budget afresh.
        q.postpone(first.id, first.seq, 0, 1000, true, "down")
            .await
            .unwrap();
        q.push(vec![entry("k", 1, ReplicationOp::Metadata)], 30)
            .await
            .unwrap();
        assert!(q.failed(None, 10).unwrap().is_empty());
    }
}
