//! Per-key locks so that concurrent writers to one key commit one after the other: within a
//! node an async mutex per key, and in a cluster also the key's lock on a majority of the
//! nodes ([`crate::dlock`]), so writers through different nodes take turns too.

use crate::dlock::{self, Locker};
use crate::error::{Result, StorageError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

/// How long a node's grant lasts unless renewed (a crashed holder's lock frees after this).
const LEASE: Duration = Duration::from_secs(15);
/// How often a held lock's grants are renewed.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long a writer waits for a key another node's writer holds.
const WAIT_FOR_HOLDER: Duration = Duration::from_secs(10);

/// The lock tables of every node of the cluster (this node's in process).
pub struct ClusterLocks {
    pub lockers: Vec<Arc<dyn Locker>>,
}

impl ClusterLocks {
    /// Takes `resource` on a majority of the nodes, waiting (with growing, jittered pauses)
    /// while another writer holds it; fails at once when too few nodes are reachable.
    async fn acquire(&self, resource: &str, owner: Uuid) -> Result<()> {
        let needed = dlock::lock_quorum(self.lockers.len());
        let deadline = tokio::time::Instant::now() + WAIT_FOR_HOLDER;
        let mut pause = Duration::from_millis(5);
        loop {
            let reachable = self.lockers.iter().filter(|l| l.is_online()).count();
            if reachable < needed {
                return Err(StorageError::Quorum {
                    what: "object lock: nodes reachable",
                    got: reachable,
                    needed,
                });
            }
            let lease = LEASE.as_millis() as i64;
            match dlock::acquire(&self.lockers, resource, owner, lease).await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() + pause > deadline => {
                    return Err(StorageError::Quorum {
                        what: "object lock: nodes granting it",
                        got: e.granted,
                        needed: e.needed,
                    })
                }
                Err(_) => {
                    let jitter = u64::from(Uuid::new_v4().as_bytes()[0]) % 8 + 1;
                    tokio::time::sleep(pause * jitter as u32 / 4).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
            }
        }
    }
}

/// A table of async mutexes keyed by `bucket/key`; entries vanish when nobody holds them.
#[derive(Default)]
pub struct KeyLocks {
    table: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    cluster: OnceLock<Arc<ClusterLocks>>,
}

/// A key's lock held on the cluster's nodes, renewed until it is released.
struct HeldAcrossNodes {
    cluster: Arc<ClusterLocks>,
    resource: String,
    owner: Uuid,
    renewer: tokio::task::JoinHandle<()>,
}

/// Holds a key's lock; dropping it releases the key.
pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    name: String,
    guard: Option<OwnedMutexGuard<()>>,
    across_nodes: Option<HeldAcrossNodes>,
}

impl KeyLocks {
    /// Makes every later lock also a lock across the cluster's nodes (once, at start).
    pub fn set_cluster(&self, cluster: Arc<ClusterLocks>) {
        let _ = self.cluster.set(cluster);
    }

    /// Takes the key's lock. In a cluster this fails with [`StorageError::Quorum`] when a
    /// majority of the nodes cannot be reached, or another node's writer holds the key for
    /// longer than a writer waits.
    pub async fn lock(&self, bucket: &str, key: &str) -> Result<KeyGuard<'_>> {
        let name = format!("{bucket}/{key}");
        let mutex = self
            .table
            .lock()
            .expect("lock")
            .entry(name.clone())
            .or_default()
            .clone();
        let guard = mutex.lock_owned().await;
        let mut held = KeyGuard {
            locks: self,
            name,
            guard: Some(guard),
            across_nodes: None,
        };
        if let Some(cluster) = self.cluster.get() {
            let owner = Uuid::new_v4();
            cluster.acquire(&held.name, owner).await?;
            let (renewing, resource) = (cluster.clone(), held.name.clone());
            let renewer = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    let lease = LEASE.as_millis() as i64;
                    // Renewing never gives grants back: a round short of a majority keeps
                    // what it has, and the next round tries again.
                    let renewed = dlock::renew(&renewing.lockers, &resource, owner, lease).await;
                    if renewed < dlock::lock_quorum(renewing.lockers.len()) {
                        tracing::warn!(%resource, renewed, "could not renew an object lock on a majority of nodes");
                    }
                }
            });
            held.across_nodes = Some(HeldAcrossNodes {
                cluster: cluster.clone(),
                resource: held.name.clone(),
                owner,
                renewer,
            });
        }
        Ok(held)
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        if let Some(held) = self.across_nodes.take() {
            held.renewer.abort();
            tokio::spawn(async move {
                dlock::release(&held.cluster.lockers, &held.resource, held.owner).await;
            });
        }
        drop(self.guard.take());
        let mut table = self.locks.table.lock().expect("lock");
        if let Some(m) = table.get(&self.name) {
            // Only the table holds it: nobody waits, so the entry can go.
            if Arc::strong_count(m) == 1 {
                table.remove(&self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serialises_one_key_and_cleans_up() {
        let locks = KeyLocks::default();
        let g = locks.lock("b", "k").await.unwrap();
        assert!(locks.table.lock().unwrap().contains_key("b/k"));
        let other = locks.lock("b", "other").await.unwrap();
        drop(other);
        drop(g);
        assert!(locks.table.lock().unwrap().is_empty());
    }
}
