//! Node wiring of a multi-node deployment: this node's drives served to the others, the other
//! nodes' drives and lock tables reached over the internal RPC, start-up that waits for its
//! peers, and what the operator sees of the nodes.

use crate::config::ClusterSettings;
use anyhow::{Context, Result};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use storage::dlock::{LockTable, Locker};
use storage::locks::ClusterLocks;
use storage::raft::ControlPlane;
use storage::remote::{Peer, RemoteDrive, RemoteLocker};
use storage::rpc_server::RpcServer;
use storage::store::OpenMode;
use storage::{Drive, LocalDrive, StorageError, Store};

/// This node's view of the cluster.
pub struct Cluster {
    pub settings: ClusterSettings,
    /// When this node's drives became reachable to other nodes (before its port opened).
    pub serving_since: std::time::SystemTime,
    pub rpc: Arc<RpcServer>,
    /// The other nodes, in topology order.
    pub peers: Vec<Arc<Peer>>,
    locks: Arc<LockTable>,
    /// Every drive of the deployment by topology index: this node's local, the rest remote.
    drives: Vec<Arc<dyn Drive>>,
    /// This node's member of the control plane, once started.
    control: std::sync::OnceLock<Arc<ControlPlane>>,
}

impl Cluster {
    /// Opens this node's drives and prepares the peers (probed once a second from now on).
    pub fn new(settings: ClusterSettings) -> Result<Self> {
        let topology = &settings.topology;
        let fingerprint = topology.fingerprint();
        let secret: Arc<[u8]> = Arc::from(settings.secret.as_bytes());
        let mut peers: HashMap<String, Arc<Peer>> = HashMap::new();
        let mut local: HashMap<usize, Arc<dyn Drive>> = HashMap::new();
        let mut drives: Vec<Arc<dyn Drive>> = Vec::new();
        for (i, endpoint) in topology.drives.iter().enumerate() {
            let node = endpoint.node();
            let drive: Arc<dyn Drive> = if node == settings.me {
                let d = LocalDrive::open(&endpoint.path)
                    .with_context(|| format!("cannot open drive {}", endpoint.path))?;
                let d: Arc<dyn Drive> = Arc::new(d);
                local.insert(i, d.clone());
                d
            } else {
                let peer = peers
                    .entry(node.clone())
                    .or_insert_with(|| Peer::new(&node, secret.clone(), fingerprint.clone()))
                    .clone();
                Arc::new(RemoteDrive::new(peer, i, endpoint.to_string()))
            };
            drives.push(drive);
        }
        let locks = Arc::new(LockTable::default());
        let rpc = Arc::new(RpcServer::new(
            settings.me.clone(),
            local,
            locks.clone(),
            settings.secret.as_bytes(),
            fingerprint,
            topology.describe(),
        ));
        let peers: Vec<Arc<Peer>> = topology
            .nodes()
            .iter()
            .filter_map(|n| peers.get(n).cloned())
            .collect();
        for peer in &peers {
            peer.start_prober();
        }
        Ok(Self {
            settings,
            serving_since: std::time::SystemTime::now(),
            rpc,
            peers,
            locks,
            drives,
            control: Default::default(),
        })
    }

    /// Starts this node's member of the control plane (its Raft state in the node's state
    /// directory `state_dir`), and serves its calls. Node ids follow the topology's node order
    /// from 1.
    pub async fn start_control_plane(&self, state_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
        let nodes = self.settings.topology.nodes();
        let control = ControlPlane::start(
            &nodes,
            &self.settings.me,
            &self.peers,
            &state_dir.join("raft.db"),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.rpc.serve_control_plane(control.clone());
        let _ = self.control.set(control.clone());
        // Every node says whether it joined; the first node forms the control plane when none
        // has (a new deployment, or one whose first start stopped before forming it).
        let (rpc, peers) = (self.rpc.clone(), self.peers.clone());
        let first = nodes[0] == self.settings.me;
        tokio::spawn(async move {
            loop {
                if control.is_initialized().await {
                    rpc.set_raft_initialized(true);
                    return;
                }
                let all_up = peers.iter().all(|p| p.is_online());
                let none_joined = peers
                    .iter()
                    .all(|p| p.hello().is_some_and(|h| !h.raft_initialized));
                if first && all_up && none_joined {
                    if let Err(e) = control.initialize().await {
                        tracing::warn!(error = %e, "could not form the control plane");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(())
    }

    /// True while this node's control plane has a reachable leader and this node applied
    /// what it committed (its bucket records are current).
    pub fn control_is_current(&self) -> bool {
        self.control.get().is_some_and(|c| c.is_current())
    }

    /// Opens the store once enough drives answer (and the first node formatted a new
    /// deployment), trying again every second and saying what it waits for. A refusal (a
    /// foreign drive, another deployment) ends the wait with its reason.
    pub async fn open_store(
        &self,
        parity: Option<usize>,
        waiting: impl Fn(&str),
    ) -> Result<(Arc<Store>, Vec<usize>)> {
        let first = self.settings.topology.nodes()[0] == self.settings.me;
        let in_set_order: Vec<Arc<dyn Drive>> = self
            .settings
            .topology
            .sets
            .iter()
            .flatten()
            .map(|i| self.drives[*i].clone())
            .collect();
        loop {
            match Store::open_with(
                in_set_order.clone(),
                parity,
                OpenMode::Cluster { formats_new: first },
            )
            .await
            {
                Ok(opened) => return Ok(opened),
                Err(StorageError::NotReady(why)) => waiting(&why),
                Err(e @ StorageError::Refused(_)) => return Err(anyhow::anyhow!("{e}")),
                Err(e) => waiting(&e.to_string()),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Makes `store` a node of the cluster: object locks on a majority of nodes, bucket
    /// changes told to every node, and other nodes' notices heard.
    pub fn join(&self, store: &Arc<Store>) {
        let mut lockers: Vec<Arc<dyn Locker>> = vec![self.locks.clone()];
        lockers.extend(
            self.peers
                .iter()
                .map(|p| Arc::new(RemoteLocker(p.clone())) as Arc<dyn Locker>),
        );
        let peers = self.peers.clone();
        let catalog = self
            .control
            .get()
            .expect("the control plane starts first")
            .clone();
        store.join_cluster(
            Arc::new(ClusterLocks { lockers }),
            Box::new(move |name: String| {
                let peers = peers.clone();
                Box::pin(async move {
                    let told = peers.iter().map(|p| p.bucket_changed(&name));
                    futures::future::join_all(told).await;
                })
            }),
            catalog,
        );
        // A node that was cut off may have changed buckets while its notices could not arrive
        // (or missed ours); reconnecting drops every cached record on both sides.
        for peer in &self.peers {
            let (mut online, store) = (peer.watch_online(), Arc::downgrade(store));
            tokio::spawn(async move {
                while online.changed().await.is_ok() {
                    match store.upgrade() {
                        Some(store) => store.forget_buckets(),
                        None => return,
                    }
                }
            });
        }
        let forget = Arc::downgrade(store);
        self.rpc.on_bucket_changed(Box::new(move |name| {
            if let Some(store) = forget.upgrade() {
                store.forget_bucket(name);
            }
        }));
    }

    /// Nodes reachable from here, this one included.
    pub fn nodes_online(&self) -> usize {
        1 + self.peers.iter().filter(|p| p.is_online()).count()
    }

    /// Every node as the operator sees it: address, online, version, uptime, drives, and the
    /// last error of a node that does not answer.
    pub fn describe_nodes(&self) -> Vec<serde_json::Value> {
        let me = self.rpc.hello();
        let mut out = vec![json!({
            "node": self.settings.me,
            "this_node": true,
            "online": true,
            "version": me.version,
            "uptime_seconds": me.uptime_ms / 1000,
            "raft_role": me.raft_role,
        })];
        for peer in &self.peers {
            let hello = peer.hello();
            out.push(json!({
                "node": peer.node,
                "this_node": false,
                "online": peer.is_online(),
                "version": hello.as_ref().map(|h| h.version.clone()),
                "uptime_seconds": hello.as_ref().map(|h| h.uptime_ms / 1000),
                "raft_role": hello.as_ref().filter(|_| peer.is_online()).and_then(|h| h.raft_role.clone()),
                "error": peer.last_error(),
            }));
        }
        out
    }
}
