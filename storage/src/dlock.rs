//! Per-object write locks across nodes, as MinIO's dsync: every node keeps a lock table with
//! leases; a writer holds a key's lock when a majority of the nodes granted it, so two writers
//! through different nodes cannot both hold it, a crashed holder's grants expire with their
//! lease, and a partitioned minority never gathers a majority.

use async_trait::async_trait;
use futures::future::join_all;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// One node's grants: resource → (owner, lease end in ms since the epoch).
#[derive(Default)]
pub struct LockTable {
    grants: Mutex<HashMap<String, (Uuid, i64)>>,
    /// Owners that gave a resource back, until their lease would have ended: a renewal sent
    /// before the release but arriving after it must not take the resource again.
    released: Mutex<HashMap<Uuid, i64>>,
}

impl LockTable {
    /// Grants `resource` to `owner` until `now_ms + lease_ms` when it is free, its lease ran
    /// out, or `owner` holds it already (a refresh). Returns whether it was granted.
    pub fn acquire(&self, resource: &str, owner: Uuid, lease_ms: i64, now_ms: i64) -> bool {
        if self.released.lock().expect("lock").contains_key(&owner) {
            return false;
        }
        let mut grants = self.grants.lock().expect("lock");
        match grants.get(resource) {
            Some((holder, until)) if *holder != owner && *until > now_ms => false,
            _ => {
                grants.insert(resource.to_owned(), (owner, now_ms + lease_ms));
                true
            }
        }
    }

    /// Gives `resource` back if `owner` holds it.
    pub fn release(&self, resource: &str, owner: Uuid) -> bool {
        let mut grants = self.grants.lock().expect("lock");
        if let Some((holder, until)) = grants.get(resource).copied() {
            if holder == owner {
                grants.remove(resource);
                self.released.lock().expect("lock").insert(owner, until);
                return true;
            }
        }
        false
    }

    /// Forgets leases that ran out (a crashed holder's).
    pub fn expire(&self, now_ms: i64) {
        self.grants
            .lock()
            .expect("lock")
            .retain(|_, (_, until)| *until > now_ms);
        self.released
            .lock()
            .expect("lock")
            .retain(|_, until| *until > now_ms);
    }
}

/// A node's lock table as another node reaches it (in process, or over the internal RPC).
#[async_trait]
pub trait Locker: Send + Sync {
    /// Asks for a grant; `false` when refused or the node does not answer.
    async fn lock(&self, resource: &str, owner: Uuid, lease_ms: i64) -> bool;
    async fn unlock(&self, resource: &str, owner: Uuid);
    /// False while the node is known to be unreachable (a lock then fails at once rather
    /// than waiting for grants that cannot come).
    fn is_online(&self) -> bool {
        true
    }
}

/// This node's own table, called in process.
#[async_trait]
impl Locker for LockTable {
    async fn lock(&self, resource: &str, owner: Uuid, lease_ms: i64) -> bool {
        let now = crate::rpc::now_ms();
        self.expire(now);
        self.acquire(resource, owner, lease_ms, now)
    }

    async fn unlock(&self, resource: &str, owner: Uuid) {
        self.release(resource, owner);
    }
}

/// Why a lock was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoLockQuorum {
    pub granted: usize,
    pub needed: usize,
}

impl std::fmt::Display for NoLockQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the object's lock was granted by {} node(s); {} are needed",
            self.granted, self.needed
        )
    }
}

/// Nodes whose grants make a lock held: a strict majority.
pub fn lock_quorum(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// Takes `resource` for `owner` on a majority of `lockers`, or gives back the grants it got
/// and says how many it had.
pub async fn acquire(
    lockers: &[Arc<dyn Locker>],
    resource: &str,
    owner: Uuid,
    lease_ms: i64,
) -> Result<(), NoLockQuorum> {
    let granted: Vec<bool> =
        join_all(lockers.iter().map(|l| l.lock(resource, owner, lease_ms))).await;
    let got = granted.iter().filter(|g| **g).count();
    let needed = lock_quorum(lockers.len());
    if got >= needed {
        return Ok(());
    }
    release(lockers, resource, owner).await;
    Err(NoLockQuorum {
        granted: got,
        needed,
    })
}

/// Renews `owner`'s grants of `resource` on every locker, giving nothing back when some
/// refuse or do not answer (the grants it keeps still count); how many renewed.
pub async fn renew(
    lockers: &[Arc<dyn Locker>],
    resource: &str,
    owner: Uuid,
    lease_ms: i64,
) -> usize {
    join_all(lockers.iter().map(|l| l.lock(resource, owner, lease_ms)))
        .await
        .into_iter()
        .filter(|g| *g)
        .count()
}

/// Gives `resource` back on every locker (those that never granted it ignore the call).
pub async fn release(lockers: &[Arc<dyn Locker>], resource: &str, owner: Uuid) {
    join_all(lockers.iter().map(|l| l.unlock(resource, owner))).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    /// A node's table behind a switch that cuts it off (a partition) and a shared clock.
    struct Node {
        table: LockTable,
        reachable: AtomicBool,
        clock: Arc<AtomicI64>,
    }

    #[async_trait]
    impl Locker for Node {
        async fn lock(&self, resource: &str, owner: Uuid, lease_ms: i64) -> bool {
            self.reachable.load(Ordering::SeqCst)
                && self
                    .table
                    .acquire(resource, owner, lease_ms, self.clock.load(Ordering::SeqCst))
        }

        async fn unlock(&self, resource: &str, owner: Uuid) {
            if self.reachable.load(Ordering::SeqCst) {
                self.table.release(resource, owner);
            }
        }
    }

    /// The nodes, the same nodes as lockers, and their clock.
    type Cluster = (Vec<Arc<Node>>, Vec<Arc<dyn Locker>>, Arc<AtomicI64>);

    fn cluster(n: usize) -> Cluster {
        let clock = Arc::new(AtomicI64::new(0));
        let nodes: Vec<Arc<Node>> = (0..n)
            .map(|_| {
                Arc::new(Node {
                    table: LockTable::default(),
                    reachable: AtomicBool::new(true),
                    clock: clock.clone(),
                })
            })
            .collect();
        let lockers = nodes.iter().map(|n| n.clone() as Arc<dyn Locker>).collect();
        (nodes, lockers, clock)
    }

    #[tokio::test]
    async fn one_of_two_writers_holds_the_lock() {
        let (_, lockers, _) = cluster(4);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(acquire(&lockers, "bucket/key", a, 30_000).await.is_ok());
        let refused = acquire(&lockers, "bucket/key", b, 30_000)
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            NoLockQuorum {
                granted: 0,
                needed: 3
            }
        );
        release(&lockers, "bucket/key", a).await;
        assert!(acquire(&lockers, "bucket/key", b, 30_000).await.is_ok());
    }

    #[tokio::test]
    async fn a_crashed_holders_lock_expires_with_its_lease() {
        let (_, lockers, clock) = cluster(3);
        let (crashed, next) = (Uuid::new_v4(), Uuid::new_v4());
        acquire(&lockers, "k", crashed, 10_000).await.unwrap();
        clock.store(9_999, Ordering::SeqCst);
        assert!(acquire(&lockers, "k", next, 10_000).await.is_err());
        clock.store(10_001, Ordering::SeqCst);
        assert!(acquire(&lockers, "k", next, 10_000).await.is_ok());
    }

    #[tokio::test]
    async fn a_minority_never_holds_a_lock_and_gives_back_what_it_got() {
        let (nodes, lockers, _) = cluster(5);
        for n in &nodes[2..] {
            n.reachable.store(false, Ordering::SeqCst); // this writer sees only 2 of 5
        }
        let minority = Uuid::new_v4();
        let e = acquire(&lockers, "k", minority, 30_000).await.unwrap_err();
        assert_eq!(
            e,
            NoLockQuorum {
                granted: 2,
                needed: 3
            }
        );
        for n in &nodes {
            n.reachable.store(true, Ordering::SeqCst);
        }
        // Its two grants were given back: the majority side takes the lock at once.
        assert!(acquire(&lockers, "k", Uuid::new_v4(), 30_000).await.is_ok());
    }

    #[test]
    fn a_renewal_arriving_after_the_release_takes_nothing() {
        let table = LockTable::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(table.acquire("k", a, 1000, 0));
        assert!(table.acquire("k", a, 1000, 10), "the holder renews");
        assert!(table.release("k", a));
        assert!(
            !table.acquire("k", a, 1000, 20),
            "a late renewal of a released lock"
        );
        assert!(table.acquire("k", b, 1000, 30), "another writer gets it");
        table.expire(5000);
        assert!(table.released.lock().unwrap().is_empty());
    }

    #[test]
    fn quorum_is_a_strict_majority() {
        assert_eq!(lock_quorum(1), 1);
        assert_eq!(lock_quorum(2), 2);
        assert_eq!(lock_quorum(4), 3);
        assert_eq!(lock_quorum(5), 3);
        let t = LockTable::default();
        let o = Uuid::new_v4();
        assert!(t.acquire("r", o, 10, 0));
        assert!(t.acquire("r", o, 10, 5), "the holder refreshes its lease");
        t.expire(100);
        assert!(!t.release("r", o), "an expired lease is gone");
    }
}
