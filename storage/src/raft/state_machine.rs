//! The replicated state: bucket records, changed only by applying committed log entries, kept
//! in SQLite (the records, the last applied log id and membership in one transaction) with a
//! copy in memory that the node reads from.

use super::{sqlite_error, Types};
use crate::catalog::{self, CatalogAnswer, CatalogChange};
use crate::meta::BucketRecord;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex, RwLock};

/// The records as this node applied them; what reads see.
pub type Records = Arc<RwLock<BTreeMap<String, BucketRecord>>>;

/// A snapshot as it is kept and sent: its description and its bytes.
type StoredSnapshot = (SnapshotMeta<u64, BasicNode>, Vec<u8>);

/// Everything a snapshot carries.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    records: BTreeMap<String, BucketRecord>,
}

struct Applied {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
}

/// The state machine; clones share everything (the snapshot builder is a clone).
#[derive(Clone)]
pub struct StateMachine {
    conn: Arc<Mutex<Connection>>,
    records: Records,
    applied: Arc<Mutex<Applied>>,
    /// The last snapshot built or installed.
    current: Arc<Mutex<Option<StoredSnapshot>>>,
}

fn read_meta<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    key: &str,
) -> rusqlite::Result<Option<T>> {
    let bytes: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    // A value that does not decode is a corrupt database, not a fresh one.
    bytes
        .map(|b| {
            rmp_serde::from_slice(&b).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                )
            })
        })
        .transpose()
}

fn write_meta<T: Serialize>(conn: &Connection, key: &str, value: &T) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, rmp_serde::to_vec_named(value).expect("serializable")],
    )
    .map(drop)
}

impl StateMachine {
    /// Loads the applied state from `conn` (the node's Raft database).
    pub fn open(conn: Connection) -> rusqlite::Result<Self> {
        let mut records = BTreeMap::new();
        {
            let mut stmt = conn.prepare("SELECT record FROM records")?;
            for row in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))? {
                if let Ok(r) = BucketRecord::decode(&row?) {
                    records.insert(r.name.clone(), r);
                }
            }
        }
        let applied = Applied {
            last_applied: read_meta(&conn, "sm_last_applied")?.flatten(),
            membership: read_meta(&conn, "sm_membership")?.unwrap_or_default(),
        };
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            records: Arc::new(RwLock::new(records)),
            applied: Arc::new(Mutex::new(applied)),
            current: Arc::new(Mutex::new(None)),
        })
    }

    /// The records reads see.
    pub fn records(&self) -> Records {
        self.records.clone()
    }

    fn snapshot_now(&self) -> StoredSnapshot {
        // Records and applied state are changed together under the `applied` lock.
        let applied = self.applied.lock().expect("lock");
        let data = SnapshotData {
            last_applied: applied.last_applied,
            membership: applied.membership.clone(),
            records: self.records.read().expect("lock").clone(),
        };
        let id = match applied.last_applied {
            Some(l) => format!(
                "{}-{}-{}",
                l.leader_id,
                l.index,
                uuid::Uuid::new_v4().simple()
            ),
            None => format!("none-{}", uuid::Uuid::new_v4().simple()),
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
            snapshot_id: id,
        };
        (meta, rmp_serde::to_vec_named(&data).expect("serializable"))
    }
}

impl RaftSnapshotBuilder<Types> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Types>, StorageError<u64>> {
        let (meta, bytes) = self.snapshot_now();
        *self.current.lock().expect("lock") = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<Types> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let applied = self.applied.lock().expect("lock");
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CatalogAnswer>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Types>> + Send,
        I::IntoIter: Send,
    {
        let mut applied = self.applied.lock().expect("lock");
        let mut records = self.records.read().expect("lock").clone();
        let mut answers = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => answers.push(CatalogAnswer::Done),
                EntryPayload::Normal(change) => {
                    answers.push(catalog::apply(&mut records, &change));
                    touched.push(match &change {
                        CatalogChange::CreateBucket(r) => r.name.clone(),
                        CatalogChange::SetConfig { bucket, .. } => bucket.clone(),
                        CatalogChange::DeleteBucket(name) => name.clone(),
                    });
                }
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    answers.push(CatalogAnswer::Done);
                }
            }
        }
        {
            let mut conn = self.conn.lock().expect("lock");
            let written = (|| {
                let tx = conn.transaction()?;
                for name in &touched {
                    match records.get(name) {
                        Some(r) => tx
                            .prepare_cached(
                                "INSERT INTO records(name, record) VALUES (?1, ?2)
                                 ON CONFLICT(name) DO UPDATE SET record = excluded.record",
                            )?
                            .execute(params![name, r.encode()])?,
                        None => tx
                            .prepare_cached("DELETE FROM records WHERE name = ?1")?
                            .execute([name])?,
                    };
                }
                write_meta(&tx, "sm_last_applied", &applied.last_applied)?;
                write_meta(&tx, "sm_membership", &applied.membership)?;
                tx.commit()
            })();
            written.map_err(|e| StorageIOError::write_state_machine(sqlite_error(e)))?;
        }
        *self.records.write().expect("lock") = records;
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = rmp_serde::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), sqlite_error(e)))?;
        let mut applied = self.applied.lock().expect("lock");
        {
            let mut conn = self.conn.lock().expect("lock");
            let written = (|| {
                let tx = conn.transaction()?;
                tx.execute("DELETE FROM records", [])?;
                for (name, r) in &data.records {
                    tx.execute(
                        "INSERT INTO records(name, record) VALUES (?1, ?2)",
                        params![name, r.encode()],
                    )?;
                }
                write_meta(&tx, "sm_last_applied", &meta.last_log_id)?;
                write_meta(&tx, "sm_membership", &meta.last_membership)?;
                tx.commit()
            })();
            written.map_err(|e| StorageIOError::write_state_machine(sqlite_error(e)))?;
        }
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        *self.records.write().expect("lock") = data.records;
        *self.current.lock().expect("lock") = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Types>>, StorageError<u64>> {
        let current = self.current.lock().expect("lock").clone();
        Ok(current.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
