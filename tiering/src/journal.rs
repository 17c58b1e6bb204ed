//! The remote-delete journal (SQLite, WAL, synchronous = FULL): every remote object that may
//! have to go, written before the change that stops referencing it commits. An entry is
//! either a released object (a version deleted, overwritten, expired or recalled) or a
//! transition's upload in flight (an orphan unless its commit lands). Entries leave only once
//! the remote object is deleted or a version is found still referencing it.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// Why an entry is in the journal.
pub const RELEASED: &str = "released";
/// A transition's upload: deleted unless the version ends up referencing it.
pub const TRANSITION: &str = "transition";

/// One remote object that may have to be deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: i64,
    pub tier: String,
    pub remote_key: String,
    pub bucket: String,
    pub key: String,
    pub reason: String,
    pub created_ns: i64,
    pub attempts: u32,
    /// ns since the epoch.
    pub next_attempt_ns: i64,
    pub last_error: Option<String>,
}

/// The backlog of one tier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    pub entries: u64,
    pub failing: u64,
    pub oldest_ns: Option<i64>,
}

pub struct Journal {
    conn: Mutex<Connection>,
}

fn db(e: rusqlite::Error) -> String {
    format!("tiering journal: {e}")
}

impl Journal {
    /// Opens (creating) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        // An entry must survive a power cut once its change committed.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS remote_deletes (id INTEGER PRIMARY KEY AUTOINCREMENT,
                tier TEXT NOT NULL, remote_key TEXT NOT NULL, bucket TEXT NOT NULL,
                key TEXT NOT NULL, reason TEXT NOT NULL, created_ns INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ns INTEGER NOT NULL DEFAULT 0,
                last_error TEXT);
             CREATE INDEX IF NOT EXISTS remote_deletes_due ON remote_deletes (next_attempt_ns);
             CREATE TABLE IF NOT EXISTS restores (bucket TEXT NOT NULL, key TEXT NOT NULL,
                version TEXT NOT NULL, mod_time_ns INTEGER NOT NULL, days INTEGER NOT NULL,
                expiry_ns INTEGER NOT NULL, PRIMARY KEY (bucket, key, version));",
        )
        .map_err(db)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Adds entries in one transaction; returns their ids in order.
    pub fn add(
        &self,
        entries: &[(String, String, String, String)],
        reason: &str,
        now_ns: i64,
    ) -> Result<Vec<i64>, String> {
        let mut conn = self.conn.lock().expect("lock");
        let tx = conn.transaction().map_err(db)?;
        let mut ids = Vec::with_capacity(entries.len());
        for (tier, remote_key, bucket, key) in entries {
            tx.execute(
                "INSERT INTO remote_deletes (tier, remote_key, bucket, key, reason, created_ns,
                    next_attempt_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![tier, remote_key, bucket, key, reason, now_ns],
            )
            .map_err(db)?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit().map_err(db)?;
        Ok(ids)
    }

    /// Entries due at `now_ns`, oldest first.
    pub fn due(&self, now_ns: i64, limit: usize) -> Result<Vec<Entry>, String> {
        self.query(
            "SELECT id, tier, remote_key, bucket, key, reason, created_ns, attempts,
                next_attempt_ns, last_error FROM remote_deletes WHERE next_attempt_ns <= ?1
                ORDER BY next_attempt_ns, id LIMIT ?2",
            params![now_ns, limit as i64],
        )
    }

    /// Every entry, oldest first (the admin listing).
    pub fn all(&self, limit: usize) -> Result<Vec<Entry>, String> {
        self.query(
            "SELECT id, tier, remote_key, bucket, key, reason, created_ns, attempts,
                next_attempt_ns, last_error FROM remote_deletes ORDER BY id LIMIT ?1",
            params![limit as i64],
        )
    }

    fn query(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Entry>, String> {
        let conn = self.conn.lock().expect("lock");
        let mut stmt = conn.prepare_cached(sql).map_err(db)?;
        let rows = stmt
            .query_map(args, |r| {
                Ok(Entry {
                    id: r.get(0)?,
                    tier: r.get(1)?,
                    remote_key: r.get(2)?,
                    bucket: r.get(3)?,
                    key: r.get(4)?,
                    reason: r.get(5)?,
                    created_ns: r.get(6)?,
                    attempts: r.get(7)?,
                    next_attempt_ns: r.get(8)?,
                    last_error: r.get(9)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// The entry is settled: deleted remotely, or still referenced.
    pub fn remove(&self, id: i64) -> Result<(), String> {
        let conn = self.conn.lock().expect("lock");
        conn.execute("DELETE FROM remote_deletes WHERE id = ?1", [id])
            .map_err(db)?;
        Ok(())
    }

    /// An attempt failed: try again at `next_attempt_ns`.
    pub fn failed(&self, id: i64, error: &str, next_attempt_ns: i64) -> Result<(), String> {
        let conn = self.conn.lock().expect("lock");
        conn.execute(
            "UPDATE remote_deletes SET attempts = attempts + 1, last_error = ?2,
                next_attempt_ns = ?3 WHERE id = ?1",
            params![id, error, next_attempt_ns],
        )
        .map_err(db)?;
        Ok(())
    }

    /// Moves an entry's next attempt without counting a failure.
    pub fn postpone(&self, id: i64, next_attempt_ns: i64) -> Result<(), String> {
        let conn = self.conn.lock().expect("lock");
        conn.execute(
            "UPDATE remote_deletes SET next_attempt_ns = MAX(next_attempt_ns, ?2) WHERE id = ?1",
            params![id, next_attempt_ns],
        )
        .map_err(db)?;
        Ok(())
    }

    /// Moves the next attempt of every entry with `reason` to at least `next_attempt_ns`.
    pub fn postpone_all(&self, reason: &str, next_attempt_ns: i64) -> Result<(), String> {
        let conn = self.conn.lock().expect("lock");
        conn.execute(
            "UPDATE remote_deletes SET next_attempt_ns = MAX(next_attempt_ns, ?2)
                WHERE reason = ?1",
            params![reason, next_attempt_ns],
        )
        .map_err(db)?;
        Ok(())
    }

    /// Makes the released objects of `tier` due now: the tier is back. Orphans of transitions
    /// keep their grace (a late completion must not land after their delete).
    pub fn retry_now(&self, tier: &str, now_ns: i64) -> Result<usize, String> {
        let conn = self.conn.lock().expect("lock");
        conn.execute(
            "UPDATE remote_deletes SET next_attempt_ns = ?2 WHERE tier = ?1 AND reason = ?3",
            params![tier, now_ns, RELEASED],
        )
        .map_err(db)
    }

    /// Entries per tier.
    pub fn backlog(&self) -> Result<Vec<(String, Backlog)>, String> {
        let conn = self.conn.lock().expect("lock");
        let mut stmt = conn
            .prepare_cached(
                "SELECT tier, COUNT(*), SUM(attempts > 0), MIN(created_ns) FROM remote_deletes
                    GROUP BY tier ORDER BY tier",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Backlog {
                        entries: r.get::<_, i64>(1)? as u64,
                        failing: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                        oldest_ns: r.get(3)?,
                    },
                ))
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// How many entries wait on `tier`.
    pub fn pending_on(&self, tier: &str) -> Result<u64, String> {
        let conn = self.conn.lock().expect("lock");
        conn.query_row(
            "SELECT COUNT(*) FROM remote_deletes WHERE tier = ?1",
            [tier],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(db)
        .map(|n| n.unwrap_or(0) as u64)
    }
}

/// A restored copy, made or being made (`expiry_ns` 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreEntry {
    pub bucket: String,
    pub key: String,
    /// The version id, `null` for the null version.
    pub version: String,
    pub mod_time_ns: i64,
    pub days: u32,
    pub expiry_ns: i64,
}

impl Journal {
    /// Records a restore: being made (`expiry_ns` 0) or made, expiring at `expiry_ns`.
    pub fn save_restore(&self, r: &RestoreEntry) -> Result<(), String> {
        let conn = self.conn.lock().expect("lock");
        conn.execute(
            "INSERT INTO restores (bucket, key, version, mod_time_ns, days, expiry_ns)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (bucket, key, version) DO UPDATE
                SET mod_time_ns = ?4, days = ?5, expiry_ns = ?6",
            params![
                r.bucket,
                r.key,
                r.version,
                r.mod_time_ns,
                r.days,
                r.expiry_ns
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    /// Forgets a restore, only while its expiry is still `expiry_ns` (a request that extended
    /// the copy meanwhile keeps it).
    pub fn remove_restore(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
        expiry_ns: i64,
    ) -> Result<(), String> {
        let conn = self.conn.lock().expect("lock");
        conn.execute(
            "DELETE FROM restores WHERE bucket = ?1 AND key = ?2 AND version = ?3
                AND expiry_ns = ?4",
            params![bucket, key, version, expiry_ns],
        )
        .map_err(db)?;
        Ok(())
    }

    /// Restores being made (to run again after a restart), or made and expired at `now_ns`.
    pub fn restores(&self, ongoing: bool, now_ns: i64) -> Result<Vec<RestoreEntry>, String> {
        let conn = self.conn.lock().expect("lock");
        let sql = if ongoing {
            "SELECT bucket, key, version, mod_time_ns, days, expiry_ns FROM restores
                WHERE expiry_ns = 0 AND ?1 = ?1"
        } else {
            "SELECT bucket, key, version, mod_time_ns, days, expiry_ns FROM restores
                WHERE expiry_ns > 0 AND expiry_ns <= ?1 ORDER BY expiry_ns LIMIT 256"
        };
        let mut stmt = conn.prepare_cached(sql).map_err(db)?;
        let rows = stmt
            .query_map([now_ns], |r| {
                Ok(RestoreEntry {
                    bucket: r.get(0)?,
                    key: r.get(1)?,
                    version: r.get(2)?,
                    mod_time_ns: r.get(3)?,
                    days: r.get(4)?,
                    expiry_ns: r.get(5)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tier: &str, key: &str) -> (String, String, String, String) {
        (tier.into(), key.into(), "b".into(), "k".into())
    }

    #[test]
    fn entries_survive_reopening_and_wait_for_their_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiering.db");
        let ids = {
            let j = Journal::open(&path).unwrap();
            j.add(&[entry("COLD", "r1"), entry("COLD", "r2")], RELEASED, 100)
                .unwrap()
        };
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.due(100, 10).unwrap().len(), 2);
        j.failed(ids[0], "connection refused", 500).unwrap();
        let due: Vec<i64> = j.due(200, 10).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(due, [ids[1]]);
        let all = j.all(10).unwrap();
        assert_eq!(all[0].attempts, 1);
        assert_eq!(all[0].last_error.as_deref(), Some("connection refused"));
        let backlog = j.backlog().unwrap();
        assert_eq!(backlog[0].1.entries, 2);
        assert_eq!(backlog[0].1.failing, 1);
        assert_eq!(j.retry_now("COLD", 200).unwrap(), 2);
        let orphan = j.add(&[entry("COLD", "r3")], TRANSITION, 100).unwrap()[0];
        j.postpone(orphan, 900).unwrap();
        assert_eq!(
            j.retry_now("COLD", 200).unwrap(),
            2,
            "an orphan keeps its grace"
        );
        j.remove(orphan).unwrap();
        assert_eq!(j.due(200, 10).unwrap().len(), 2);
        j.remove(ids[0]).unwrap();
        j.remove(ids[1]).unwrap();
        assert_eq!(j.pending_on("COLD").unwrap(), 0);
    }
}
