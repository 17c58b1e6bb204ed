//! The Raft log, vote and commit index of this node, in SQLite (WAL, synchronous=FULL: an
//! entry or vote is on disk before Raft is told so).

use super::{sqlite_error, Types};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};
use rusqlite::{params, Connection, OptionalExtension};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Opens (creating) the node's Raft database with the tables the log and state machine use.
pub fn open_db(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA busy_timeout=10000;
         CREATE TABLE IF NOT EXISTS log(idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS records(name TEXT PRIMARY KEY, record BLOB NOT NULL);",
    )?;
    Ok(conn)
}

/// The log; clones share the connection (one per replication task reads through it too).
#[derive(Clone)]
pub struct LogStore {
    conn: Arc<Mutex<Connection>>,
}

// openraft's traits fix the error type; the helpers return the same.
#[allow(clippy::result_large_err)]
impl LogStore {
    pub fn new(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    fn meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError<u64>> {
        let conn = self.conn.lock().expect("lock");
        let bytes: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| StorageIOError::read(sqlite_error(e)))?;
        bytes
            .map(|b| rmp_serde::from_slice(&b))
            .transpose()
            .map_err(|e| StorageIOError::read(sqlite_error(e)).into())
    }

    fn set_meta<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError<u64>> {
        let bytes = rmp_serde::to_vec_named(value).expect("serializable");
        self.conn
            .lock()
            .expect("lock")
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, bytes],
            )
            .map(drop)
            .map_err(|e| StorageIOError::write(sqlite_error(e)).into())
    }
}

fn bound(b: Bound<&u64>) -> (i64, bool) {
    match b {
        Bound::Included(i) => (*i as i64, true),
        Bound::Excluded(i) => (*i as i64, false),
        Bound::Unbounded => (-1, false),
    }
}

impl RaftLogReader<Types> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<Types>>, StorageError<u64>> {
        let (start, start_in) = bound(range.start_bound());
        let start = if start < 0 {
            0
        } else if start_in {
            start
        } else {
            start + 1
        };
        let end = match range.end_bound() {
            Bound::Included(i) => *i as i64 + 1,
            Bound::Excluded(i) => *i as i64,
            Bound::Unbounded => i64::MAX,
        };
        let conn = self.conn.lock().expect("lock");
        let mut stmt = conn
            .prepare_cached("SELECT entry FROM log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
            .map_err(|e| StorageIOError::read_logs(sqlite_error(e)))?;
        let rows = stmt
            .query_map(params![start, end], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| StorageIOError::read_logs(sqlite_error(e)))?;
        let mut out = Vec::new();
        for row in rows {
            let bytes = row.map_err(|e| StorageIOError::read_logs(sqlite_error(e)))?;
            out.push(
                rmp_serde::from_slice(&bytes)
                    .map_err(|e| StorageIOError::read_logs(sqlite_error(e)))?,
            );
        }
        Ok(out)
    }
}

impl RaftLogStorage<Types> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Types>, StorageError<u64>> {
        let last_purged: Option<LogId<u64>> = self.meta("last_purged")?;
        let last: Option<Vec<u8>> = {
            let conn = self.conn.lock().expect("lock");
            conn.query_row("SELECT entry FROM log ORDER BY idx DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| StorageIOError::read_logs(sqlite_error(e)))?
        };
        let last = match last {
            Some(bytes) => {
                let entry: Entry<Types> = rmp_serde::from_slice(&bytes)
                    .map_err(|e| StorageIOError::read_logs(sqlite_error(e)))?;
                Some(entry.log_id)
            }
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.set_meta("vote", vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.meta("vote")
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.set_meta("committed", &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.meta::<Option<LogId<u64>>>("committed")?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<Types>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Types>> + Send,
        I::IntoIter: Send,
    {
        let written = {
            let mut conn = self.conn.lock().expect("lock");
            (|| {
                let tx = conn.transaction()?;
                for entry in entries {
                    let bytes = rmp_serde::to_vec_named(&entry).expect("serializable");
                    tx.prepare_cached("INSERT OR REPLACE INTO log(idx, entry) VALUES (?1, ?2)")?
                        .execute(params![entry.log_id.index as i64, bytes])?;
                }
                tx.commit()
            })()
        };
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(sqlite_error(e)).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.conn
            .lock()
            .expect("lock")
            .execute("DELETE FROM log WHERE idx >= ?1", [log_id.index as i64])
            .map(drop)
            .map_err(|e| StorageIOError::write_logs(sqlite_error(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.set_meta("last_purged", &Some(log_id))?;
        self.conn
            .lock()
            .expect("lock")
            .execute("DELETE FROM log WHERE idx <= ?1", [log_id.index as i64])
            .map(drop)
            .map_err(|e| StorageIOError::write_logs(sqlite_error(e)).into())
    }
}
