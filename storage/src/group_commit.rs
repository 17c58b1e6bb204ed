//! A SQLite writer thread that commits whatever is queued in one transaction (group commit:
//! one fsync for many writes), each write in its own savepoint so a failing one does not undo
//! the others. The drives' metadata and the replication queue write through it, so callers on
//! the async runtime never block on an fsync and concurrent writers share one.

use rusqlite::Connection;
use std::sync::{mpsc, Mutex};
use tokio::sync::oneshot;

/// A write: runs on the writer thread inside the batch's transaction.
pub type Job = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

struct WriteRequest {
    job: Job,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Why a write did not commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The writer thread has stopped (its database was closed).
    Stopped,
    /// SQLite's error.
    Sqlite(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stopped => f.write_str("the database writer has stopped"),
            Self::Sqlite(e) => f.write_str(e),
        }
    }
}

/// Writes queued together in one transaction at most.
const BATCH: usize = 256;

pub struct GroupCommit {
    writer: Mutex<mpsc::Sender<WriteRequest>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for GroupCommit {
    /// Closes the writer's connection before returning: SQLite removes the `-wal` file by
    /// name when its last connection closes, and would remove a re-created database's.
    fn drop(&mut self) {
        *self.writer.lock().expect("lock") = mpsc::channel().0;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl GroupCommit {
    /// Starts the writer thread (named `name`) on `conn`.
    pub fn start(conn: Connection, name: &str) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<WriteRequest>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || group_commit_loop(conn, rx))?;
        Ok(Self {
            writer: Mutex::new(tx),
            thread: Some(thread),
        })
    }

    /// Runs `job` in the next batch; answers once the batch committed.
    pub async fn write(&self, job: Job) -> Result<(), WriteError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .lock()
            .expect("lock")
            .send(WriteRequest { job, reply })
            .map_err(|_| WriteError::Stopped)?;
        rx.await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Sqlite)
    }
}

fn group_commit_loop(mut conn: Connection, rx: mpsc::Receiver<WriteRequest>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        let outcome = (|| -> rusqlite::Result<()> {
            let mut tx = conn.transaction()?;
            for req in batch {
                let sp = tx.savepoint()?;
                let r = (req.job)(&sp);
                if r.is_ok() {
                    sp.commit()?;
                }
                results.push(r.map_err(|e| e.to_string()));
                replies.push(req.reply);
            }
            tx.commit()
        })();
        for (i, reply) in replies.into_iter().enumerate() {
            let r = match &outcome {
                Ok(()) => results[i].clone(),
                Err(e) => Err(e.to_string()),
            };
            let _ = reply.send(r);
        }
    }
}
