//! The scanner's node-local journal (SQLite, WAL): where an interrupted scan resumes, what
//! the last scans did, and the actions that failed with their last error. Never the only copy
//! of a fact: lose it and the next scan starts from the beginning, and evaluating a version
//! again decides the same.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// What one scan of a bucket did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketScan {
    pub bucket: String,
    /// ns since the epoch.
    pub started_ns: i64,
    /// `None` while the scan runs (or when it was cut off by a stop).
    pub finished_ns: Option<i64>,
    pub versions_scanned: u64,
    pub uploads_scanned: u64,
    pub actions_done: u64,
    pub actions_failed: u64,
    /// Due removals that object lock refused.
    pub actions_blocked: u64,
}

/// An action that failed, kept until it succeeds or is no longer due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub bucket: String,
    pub key: String,
    /// The version's id (`null` for the null version), or the upload id.
    pub version: String,
    pub action: String,
    pub error: String,
    pub at_ns: i64,
    /// When the action became due.
    pub due_ns: i64,
}

/// Where a full scan stands on one erasure set of one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// Not started in this run.
    Start,
    /// Every key up to and including this one is done.
    After(String),
    /// The whole set is done in this run.
    Done,
}

/// The scanner's journal: one SQLite database on the node.
pub struct Journal {
    conn: Mutex<Connection>,
}

fn io(e: rusqlite::Error) -> String {
    format!("lifecycle journal: {e}")
}

impl Journal {
    /// Opens (creating) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let conn = Connection::open(path).map_err(io)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(io)?;
        // A lost last commit only repeats a batch's judgement, which changes nothing.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(io)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, finished INTEGER);
             CREATE TABLE IF NOT EXISTS cursors (bucket TEXT, set_index INTEGER, after_key TEXT,
                done INTEGER, PRIMARY KEY (bucket, set_index));
             CREATE TABLE IF NOT EXISTS scans (bucket TEXT PRIMARY KEY, report TEXT);
             CREATE TABLE IF NOT EXISTS failures (bucket TEXT, key TEXT, version TEXT,
                action TEXT, error TEXT, at_ns INTEGER, due_ns INTEGER,
                PRIMARY KEY (bucket, key, version));",
        )
        .map_err(io)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, String> {
        f(&self.conn.lock().expect("journal lock")).map_err(io)
    }

    /// Starts a full scan, or resumes the one a crash cut off: `true` when resumed, and the
    /// cursors then say what is done.
    pub fn begin_run(&self) -> Result<bool, String> {
        self.with(|c| {
            let open: Option<i64> = c
                .query_row("SELECT id FROM runs WHERE finished = 0", [], |r| r.get(0))
                .optional()?;
            if open.is_some() {
                return Ok(true);
            }
            c.execute_batch(
                "DELETE FROM cursors; DELETE FROM runs; INSERT INTO runs (finished) VALUES (0);",
            )?;
            Ok(false)
        })
    }

    /// Ends the full scan: the next starts from the beginning.
    pub fn finish_run(&self) -> Result<(), String> {
        self.with(|c| c.execute_batch("UPDATE runs SET finished = 1; DELETE FROM cursors;"))
    }

    /// Whether a full scan was cut off.
    pub fn interrupted(&self) -> Result<bool, String> {
        self.with(|c| {
            c.query_row("SELECT COUNT(*) FROM runs WHERE finished = 0", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n > 0)
    }

    /// Where the run stands on one erasure set of a bucket.
    pub fn cursor(&self, bucket: &str, set: usize) -> Result<Cursor, String> {
        let row: Option<(Option<String>, i64)> = self.with(|c| {
            c.query_row(
                "SELECT after_key, done FROM cursors WHERE bucket = ?1 AND set_index = ?2",
                params![bucket, set as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        Ok(match row {
            Some((_, 1)) => Cursor::Done,
            Some((Some(k), _)) => Cursor::After(k),
            _ => Cursor::Start,
        })
    }

    /// Records progress on a set: `After(key)` after each batch, `Done` at its end.
    pub fn set_cursor(&self, bucket: &str, set: usize, at: &Cursor) -> Result<(), String> {
        let (key, done) = match at {
            Cursor::Start => (None, 0),
            Cursor::After(k) => (Some(k.as_str()), 0),
            Cursor::Done => (None, 1),
        };
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?1, ?2, ?3, ?4)",
                params![bucket, set as i64, key, done],
            )
            .map(drop)
        })
    }

    /// Stores a bucket's scan report (replacing its previous one).
    pub fn save_scan(&self, scan: &BucketScan) -> Result<(), String> {
        let text = serde_json::to_string(scan).expect("reports serialize");
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO scans VALUES (?1, ?2)",
                params![scan.bucket, text],
            )
            .map(drop)
        })
    }

    /// Forgets the scan reports of buckets not in `keep` (deleted, or without rules now).
    pub fn keep_scans(&self, keep: &[String]) -> Result<(), String> {
        let names: Vec<String> = self.scans()?.into_iter().map(|s| s.bucket).collect();
        for gone in names.iter().filter(|n| !keep.contains(n)) {
            self.with(|c| {
                c.execute("DELETE FROM scans WHERE bucket = ?1", params![gone])
                    .map(drop)
            })?;
        }
        Ok(())
    }

    /// The last scan of each bucket, by name.
    pub fn scans(&self) -> Result<Vec<BucketScan>, String> {
        let texts: Vec<String> = self.with(|c| {
            let mut s = c.prepare("SELECT report FROM scans ORDER BY bucket")?;
            let rows = s.query_map([], |r| r.get(0))?;
            rows.collect()
        })?;
        Ok(texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    /// Records (or updates) an action that failed.
    pub fn record_failure(&self, f: &Failure) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO failures VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![f.bucket, f.key, f.version, f.action, f.error, f.at_ns, f.due_ns],
            )
            .map(drop)
        })
    }

    /// Forgets a failure: its action succeeded or is no longer due.
    pub fn clear_failure(&self, bucket: &str, key: &str, version: &str) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                "DELETE FROM failures WHERE bucket = ?1 AND key = ?2 AND version = ?3",
                params![bucket, key, version],
            )
            .map(drop)
        })
    }

    /// The due time of the oldest failed action, if any.
    pub fn oldest_failure_due(&self) -> Result<Option<i64>, String> {
        self.with(|c| c.query_row("SELECT MIN(due_ns) FROM failures", [], |r| r.get(0)))
    }

    /// How many actions have failed and wait for the next scan.
    pub fn failure_count(&self) -> Result<u64, String> {
        self.with(|c| c.query_row("SELECT COUNT(*) FROM failures", [], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
    }

    /// Failures of one bucket, or of every bucket.
    pub fn failures(&self, bucket: Option<&str>) -> Result<Vec<Failure>, String> {
        self.with(|c| {
            let mut s = c.prepare(
                "SELECT bucket, key, version, action, error, at_ns, due_ns FROM failures
                 WHERE ?1 IS NULL OR bucket = ?1 ORDER BY due_ns",
            )?;
            let rows = s.query_map(params![bucket], |r| {
                Ok(Failure {
                    bucket: r.get(0)?,
                    key: r.get(1)?,
                    version: r.get(2)?,
                    action: r.get(3)?,
                    error: r.get(4)?,
                    at_ns: r.get(5)?,
                    due_ns: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cursors_scans_and_failures_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lifecycle.db");
        {
            let j = Journal::open(&path).unwrap();
            assert!(!j.begin_run().unwrap());
            j.set_cursor("b", 0, &Cursor::After("k/1".into())).unwrap();
            j.set_cursor("b", 1, &Cursor::Done).unwrap();
            j.save_scan(&BucketScan {
                bucket: "b".into(),
                versions_scanned: 3,
                ..Default::default()
            })
            .unwrap();
            j.record_failure(&Failure {
                bucket: "b".into(),
                key: "k".into(),
                version: "null".into(),
                action: "expire_current".into(),
                error: "quorum".into(),
                at_ns: 2,
                due_ns: 1,
            })
            .unwrap();
        }
        // A crash: the run resumes where its cursors say.
        let j = Journal::open(&path).unwrap();
        assert!(j.interrupted().unwrap());
        assert!(j.begin_run().unwrap());
        assert_eq!(j.cursor("b", 0).unwrap(), Cursor::After("k/1".into()));
        assert_eq!(j.cursor("b", 1).unwrap(), Cursor::Done);
        assert_eq!(j.cursor("b", 2).unwrap(), Cursor::Start);
        j.finish_run().unwrap();
        assert!(!j.interrupted().unwrap());
        assert!(!j.begin_run().unwrap());
        assert_eq!(j.cursor("b", 0).unwrap(), Cursor::Start);
        assert_eq!(j.scans().unwrap()[0].versions_scanned, 3);
        assert_eq!(j.failures(Some("b")).unwrap().len(), 1);
        assert_eq!(j.oldest_failure_due().unwrap(), Some(1));
        assert_eq!(j.failure_count().unwrap(), 1);
        assert_eq!(j.failures(Some("other")).unwrap().len(), 0);
        j.clear_failure("b", "k", "null").unwrap();
        assert!(j.failures(None).unwrap().is_empty());
        assert_eq!(j.oldest_failure_due().unwrap(), None);
    }
}
