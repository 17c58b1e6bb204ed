//! The cluster's control plane: bucket records (and the cluster configuration record) in a
//! replicated state machine on `openraft` 0.9, persisted per node in SQLite ([`log_store`],
//! [`state_machine`]), its messages over the internal RPC ([`network`]).
//!
//! Every node up to [`MAX_VOTERS`] votes; more nodes follow as learners. A change goes to the
//! leader (forwarded from any node), is answered once a majority stored it and the leader
//! applied it, and the node that took it then waits until it and every node it can reach
//! applied it too, so a bucket change is visible through any node as soon as it is answered
//! (an apply-index wait done at write time; reads are local). A node that cannot reach a
//! majority of the voters refuses changes at once with [`StorageError::Quorum`].

pub mod log_store;
pub mod network;
pub mod state_machine;

use crate::catalog::{BucketCatalog, CatalogAnswer, CatalogChange};
use crate::error::{Result, StorageError};
use crate::meta::BucketRecord;
use crate::remote::Peer;
use crate::rpc;
use async_trait::async_trait;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, ServerState};
use state_machine::Records;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

openraft::declare_raft_types!(
    /// The control plane's Raft types: changes to bucket records, node ids by topology order.
    pub Types:
        D = CatalogChange,
        R = CatalogAnswer,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<Types>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Most voters (Raft's usual bound: more voters only slow commits down).
pub const MAX_VOTERS: u64 = 7;
/// How long a change may take before the node answers that the cluster cannot take it now.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a node waits for another node to apply a change it answers.
const APPLY_WAIT: Duration = Duration::from_secs(3);

fn sqlite_error(e: impl std::fmt::Display) -> openraft::AnyError {
    openraft::AnyError::error(e.to_string())
}

/// This node's member of the control plane.
pub struct ControlPlane {
    id: u64,
    raft: Raft<Types>,
    records: Records,
    peers: Arc<HashMap<u64, Arc<Peer>>>,
    /// Every node by id, with its address.
    nodes: BTreeMap<u64, BasicNode>,
    /// Whether this node applied everything the leader had committed when it last checked
    /// (false from start, and again whenever it lost its leader, until it checks).
    caught_up: std::sync::atomic::AtomicBool,
}

impl ControlPlane {
    /// Starts this node's Raft on its database at `db`. `nodes` are every node's `HOST:PORT`
    /// in topology order (node ids count from 1 in that order), `me` is this node's, and
    /// `peers` reach the others. A node that never joined stays pristine until
    /// [`ControlPlane::initialize`] runs on one node.
    pub async fn start(
        nodes: &[String],
        me: &str,
        peers: &[Arc<Peer>],
        db: &Path,
    ) -> Result<Arc<Self>> {
        let ids = (1u64..).zip(nodes);
        let id = ids
            .clone()
            .find(|(_, n)| *n == me)
            .map(|(id, _)| id)
            .ok_or_else(|| StorageError::Refused(format!("{me} is not a node of the topology")))?;
        let peers: HashMap<u64, Arc<Peer>> = ids
            .clone()
            .filter_map(|(id, n)| Some((id, peers.iter().find(|p| &p.node == n)?.clone())))
            .collect();
        let nodes: BTreeMap<u64, BasicNode> = ids.map(|(id, n)| (id, BasicNode::new(n))).collect();
        let open = |what: &str| {
            log_store::open_db(db).map_err(|e| {
                StorageError::Refused(format!(
                    "cannot open the Raft {what} at {}: {e}",
                    db.display()
                ))
            })
        };
        let log = log_store::LogStore::new(open("log")?);
        let machine = state_machine::StateMachine::open(open("state machine")?)
            .map_err(|e| StorageError::Refused(format!("cannot load the Raft state: {e}")))?;
        let records = machine.records();
        // Heartbeats and elections sized for HTTP calls and fsyncs on busy machines, not for a
        // LAN's best case: a leader is re-elected within seconds.
        let config = Config {
            cluster_name: "strata".into(),
            heartbeat_interval: 500,
            election_timeout_min: 2500,
            election_timeout_max: 5000,
            install_snapshot_timeout: 10_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(2000),
            ..Default::default()
        }
        .validate()
        .map_err(|e| StorageError::Refused(format!("Raft configuration: {e}")))?;
        let peers = Arc::new(peers);
        let network = network::Network {
            peers: peers.clone(),
        };
        let raft = Raft::new(id, Arc::new(config), network, log, machine)
            .await
            .map_err(|e| StorageError::Refused(format!("cannot start Raft: {e}")))?;
        let control = Arc::new(Self {
            id,
            raft,
            records,
            peers,
            nodes,
            caught_up: Default::default(),
        });
        control.clone().keep_caught_up();
        Ok(control)
    }

    /// Twice a second: a node without a reachable leader is not caught up; one with a leader
    /// that is not caught up asks the leader how far the log is committed (a read index) and
    /// waits until it applied that far. A node that restarted or was cut off serves nothing
    /// stale as current once it says it is.
    fn keep_caught_up(self: Arc<Self>) {
        let me = Arc::downgrade(&self);
        drop(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Some(me) = me.upgrade() else { return };
                if !me.has_leader() {
                    me.caught_up
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                } else if !me.caught_up.load(std::sync::atomic::Ordering::SeqCst) {
                    let done = me.catch_up().await;
                    me.caught_up
                        .store(done, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
    }

    /// Applies everything the leader had committed when asked; false when that cannot be
    /// learned or reached in time.
    async fn catch_up(&self) -> bool {
        let leader = self.raft.metrics().borrow().current_leader;
        let index = match leader {
            Some(l) if l == self.id => match self.raft.get_read_log_id().await {
                Ok((read, _)) => read.map(|l| l.index),
                Err(_) => return false,
            },
            Some(l) => {
                let Some(peer) = self.peers.get(&l) else {
                    return false;
                };
                match peer
                    .call_raw("raft/read-index", Vec::new(), APPLY_WAIT)
                    .await
                {
                    Ok(bytes) => match rpc::decode_result::<Option<u64>>(&bytes) {
                        Ok(index) => index,
                        Err(_) => return false,
                    },
                    Err(_) => return false,
                }
            }
            None => return false,
        };
        match index {
            Some(i) => self.applied(i, APPLY_WAIT).await,
            None => true,
        }
    }

    /// True while this node has a reachable leader and applied what it had committed when
    /// the node last caught up: its reads of bucket records are current.
    pub fn is_current(&self) -> bool {
        self.has_leader() && self.caught_up.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether this node ever joined the control plane (its log or vote is not empty).
    pub async fn is_initialized(&self) -> bool {
        self.raft.is_initialized().await.unwrap_or(true)
    }

    /// Forms the control plane: the first [`MAX_VOTERS`] nodes vote, the rest are added as
    /// learners. Called on one node only, when no node has joined one yet.
    pub async fn initialize(self: &Arc<Self>) -> Result<()> {
        let voters: BTreeMap<u64, BasicNode> = self
            .nodes
            .iter()
            .filter(|(id, _)| **id <= MAX_VOTERS)
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        match self.raft.initialize(voters).await {
            Ok(()) => tracing::info!(
                voters = self.nodes.len().min(MAX_VOTERS as usize),
                "control plane formed"
            ),
            Err(e) => tracing::info!(error = %e, "control plane was formed already"),
        }
        let learners: Vec<(u64, BasicNode)> = self
            .nodes
            .iter()
            .filter(|(id, _)| **id > MAX_VOTERS)
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        if !learners.is_empty() {
            let me = self.clone();
            tokio::spawn(async move {
                for (id, node) in learners {
                    while me.raft.add_learner(id, node.clone(), false).await.is_err() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            });
        }
        Ok(())
    }

    /// This node's Raft role: `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub fn role(&self) -> &'static str {
        match self.raft.metrics().borrow().state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        }
    }

    /// True while the node knows a leader (itself or another) that it can reach.
    pub fn has_leader(&self) -> bool {
        let leader = self.raft.metrics().borrow().current_leader;
        leader.is_some_and(|l| l == self.id || self.peers.get(&l).is_some_and(|p| p.is_online()))
    }

    fn voters_reachable(&self) -> (usize, usize) {
        let voters: Vec<u64> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| *id <= MAX_VOTERS)
            .collect();
        let reachable = voters
            .iter()
            .filter(|id| **id == self.id || self.peers.get(id).is_some_and(|p| p.is_online()))
            .count();
        (reachable, voters.len() / 2 + 1)
    }

    /// Commits `change` on the leader (this node, or forwarded): the log index and the answer.
    /// While there is no leader, or the one known does not answer (an election is due), it
    /// tries again until [`CHANGE_TIMEOUT`].
    async fn commit(&self, change: &CatalogChange) -> Result<(u64, CatalogAnswer)> {
        let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
        let pause = Duration::from_millis(250);
        loop {
            let written =
                tokio::time::timeout_at(deadline, self.raft.client_write(change.clone())).await;
            let leader = match written {
                Ok(Ok(done)) => return Ok((done.log_id.index, done.data)),
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => f.leader_id,
                Ok(Err(e)) => {
                    return Err(StorageError::Unavailable(format!(
                        "the control plane refused the change: {e}"
                    )))
                }
                // This node leads but no majority stored the entry in time: it may still.
                Err(_) => return Err(self.unknown_outcome("no majority stored it in time")),
            };
            if let Some(peer) = leader.and_then(|l| self.peers.get(&l)) {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match peer.call_raw("raft/write", rpc::encode(change), left).await {
                    // The node stopped leading before it took the change: ask again.
                    Ok(bytes) => match rpc::decode_result(&bytes) {
                        Err(StorageError::NotReady(_)) => {}
                        answer => return answer,
                    },
                    // Unreachable: the change was not sent, so it can be sent again.
                    Err((true, _)) => {}
                    // Sent, but no answer: it may or may not commit; say so.
                    Err((false, why)) => {
                        return Err(
                            self.unknown_outcome(&format!("the leader did not answer: {why}"))
                        )
                    }
                }
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(self.no_quorum());
            }
            tokio::time::sleep(pause).await;
        }
    }

    fn unknown_outcome(&self, why: &str) -> StorageError {
        StorageError::Unavailable(format!(
            "the control plane did not confirm the change ({why}); it may or may not have been made"
        ))
    }

    fn no_quorum(&self) -> StorageError {
        let (got, needed) = self.voters_reachable();
        if got >= needed {
            return StorageError::Unavailable(
                "the control plane has no leader yet (an election is under way); try again".into(),
            );
        }
        StorageError::Quorum {
            what: "configuration change: voters reachable",
            got,
            needed,
        }
    }

    /// Waits until this node applied log index `index`.
    async fn applied(&self, index: u64, limit: Duration) -> bool {
        self.raft
            .wait(Some(limit))
            .applied_index_at_least(Some(index), "change applied")
            .await
            .is_ok()
    }

    /// Answers another node's control-plane call (`raft/{op}`).
    pub async fn handle(&self, op: &str, body: &[u8]) -> Result<Vec<u8>> {
        Ok(match op {
            "append" => rpc::encode(&self.raft.append_entries(rpc::decode(body)?).await),
            "vote" => rpc::encode(&self.raft.vote(rpc::decode(body)?).await),
            "snapshot" => rpc::encode(&self.raft.install_snapshot(rpc::decode(body)?).await),
            "write" => {
                let change: CatalogChange = rpc::decode(body)?;
                let answer = match tokio::time::timeout(
                    CHANGE_TIMEOUT,
                    self.raft.client_write(change),
                )
                .await
                {
                    Ok(Ok(done)) => Ok((done.log_id.index, done.data)),
                    Ok(Err(e)) => Err(StorageError::Unavailable(format!("the leader moved: {e}"))),
                    Err(_) => Err(self.no_quorum()),
                };
                rpc::encode_result(answer)
            }
            "read-index" => {
                let index = match self.raft.get_read_log_id().await {
                    Ok((read, _)) => Ok(read.map(|l| l.index)),
                    Err(_) => Err(StorageError::NotReady("this node does not lead".into())),
                };
                rpc::encode_result(index)
            }
            "applied" => {
                let index: u64 = rpc::decode(body)?;
                rpc::encode_result(Ok(self.applied(index, APPLY_WAIT).await))
            }
            _ => {
                return Err(StorageError::Refused(format!(
                    "unknown control-plane call {op}"
                )))
            }
        })
    }
}

#[async_trait]
impl BucketCatalog for ControlPlane {
    fn get(&self, name: &str) -> Option<BucketRecord> {
        self.records.read().expect("lock").get(name).cloned()
    }

    fn list(&self) -> Vec<BucketRecord> {
        self.records
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect()
    }

    async fn change(&self, change: CatalogChange) -> Result<()> {
        let (reachable, needed) = self.voters_reachable();
        if reachable < needed {
            return Err(self.no_quorum());
        }
        let (index, answer) = self.commit(&change).await?;
        // Visible through this node, and every node it can reach, before it is answered.
        if !self.applied(index, CHANGE_TIMEOUT).await {
            return Err(StorageError::Unavailable(
                "the change was made but this node has not applied it yet; try again".into(),
            ));
        }
        let others = self.peers.values().filter(|p| p.is_online()).map(|p| {
            p.call_raw(
                "raft/applied",
                rpc::encode(&index),
                APPLY_WAIT + Duration::from_secs(1),
            )
        });
        futures::future::join_all(others).await;
        answer.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::storage::{RaftLogStorage, RaftStateMachine};
    use openraft::{
        CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, Vote,
    };

    fn entry(index: u64, change: Option<CatalogChange>) -> Entry<Types> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: change.map_or(EntryPayload::Blank, EntryPayload::Normal),
        }
    }

    async fn last_index(log: &mut log_store::LogStore) -> u64 {
        log.get_log_state()
            .await
            .unwrap()
            .last_log_id
            .unwrap()
            .index
    }

    fn create(name: &str) -> CatalogChange {
        CatalogChange::CreateBucket(BucketRecord {
            name: name.into(),
            created_ns: 1,
            config: BTreeMap::new(),
            updated_ns: 1,
        })
    }

    #[tokio::test]
    async fn the_log_and_vote_survive_reopening_and_truncate_and_purge_as_raft_asks() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("raft.db");
        let mut log = log_store::LogStore::new(log_store::open_db(&db).unwrap());
        let entries: Vec<Entry<Types>> = (1..=5)
            .map(|i| entry(i, Some(create(&format!("b{i}")))))
            .collect();
        // `append` reports through a callback only a running Raft core can make: the entries go
        // in as `append` writes them (the integration tests drive `append` itself).
        let conn = log_store::open_db(&db).unwrap();
        for e in &entries {
            conn.execute(
                "INSERT INTO log(idx, entry) VALUES (?1, ?2)",
                rusqlite::params![e.log_id.index as i64, rmp_serde::to_vec_named(e).unwrap()],
            )
            .unwrap();
        }
        log.save_vote(&Vote::new(3, 2)).await.unwrap();
        let mut log = log_store::LogStore::new(log_store::open_db(&db).unwrap());
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        let got = log.try_get_log_entries(2..4).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(last_index(&mut log).await, 5);
        log.truncate(entries[3].log_id).await.unwrap(); // drops 4 and 5
        assert_eq!(last_index(&mut log).await, 3);
        log.purge(entries[1].log_id).await.unwrap(); // drops 1 and 2
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.unwrap().index, 2);
        assert_eq!(log.try_get_log_entries(0..10).await.unwrap().len(), 1);
        log.purge(entries[2].log_id).await.unwrap(); // the log is empty: its last id is the purged one
        assert_eq!(last_index(&mut log).await, 3);
    }

    #[tokio::test]
    async fn the_state_machine_applies_persists_and_moves_by_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("raft.db");
        let mut sm = state_machine::StateMachine::open(log_store::open_db(&db).unwrap()).unwrap();
        let answers = sm
            .apply(vec![
                entry(1, None),
                entry(2, Some(create("a"))),
                entry(3, Some(create("a"))),
                entry(4, Some(create("b"))),
                entry(5, Some(CatalogChange::DeleteBucket("b".into()))),
            ])
            .await
            .unwrap();
        assert_eq!(
            answers,
            [
                CatalogAnswer::Done,
                CatalogAnswer::Done,
                CatalogAnswer::BucketExists,
                CatalogAnswer::Done,
                CatalogAnswer::Done
            ]
        );
        // Reopened: the same records and applied log id.
        let mut again =
            state_machine::StateMachine::open(log_store::open_db(&db).unwrap()).unwrap();
        assert_eq!(
            again.records().read().unwrap().keys().collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(again.applied_state().await.unwrap().0.unwrap().index, 5);
        // A snapshot of it installed on an empty node gives that node the same state.
        let snapshot = again.build_snapshot().await.unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let mut other = state_machine::StateMachine::open(
            log_store::open_db(&other_dir.path().join("raft.db")).unwrap(),
        )
        .unwrap();
        other
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(
            other.records().read().unwrap().keys().collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(other.applied_state().await.unwrap().0.unwrap().index, 5);
        assert!(other.get_current_snapshot().await.unwrap().is_some());
    }

    #[test]
    fn raft_messages_cross_the_wire() {
        let req = openraft::raft::AppendEntriesRequest::<Types> {
            vote: Vote::new(2, 1),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(2, 1), 7)),
            entries: vec![entry(8, Some(create("x")))],
            leader_commit: None,
        };
        let back: openraft::raft::AppendEntriesRequest<Types> =
            rpc::decode(&rpc::encode(&req)).unwrap();
        assert_eq!(back.entries[0].log_id.index, 8);
        assert_eq!(back.vote, req.vote);
        let refused: std::result::Result<openraft::raft::VoteResponse<u64>, RaftError<u64>> =
            Err(RaftError::Fatal(openraft::error::Fatal::Stopped));
        let back: std::result::Result<openraft::raft::VoteResponse<u64>, RaftError<u64>> =
            rpc::decode(&rpc::encode(&refused)).unwrap();
        assert!(back.is_err());
    }
}
