//! Raft's messages between nodes, over the internal RPC (`raft/append`, `raft/vote`,
//! `raft/snapshot`); each call honours the deadline Raft gives it.

use super::Types;
use crate::remote::Peer;
use crate::rpc;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Reaches the other nodes by Raft node id.
#[derive(Clone)]
pub struct Network {
    pub peers: Arc<HashMap<u64, Arc<Peer>>>,
}

pub struct Connection {
    target: u64,
    peer: Option<Arc<Peer>>,
}

#[derive(Debug)]
struct CallFailed(String);

impl std::fmt::Display for CallFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CallFailed {}

impl Connection {
    async fn send<Req, Resp, Err>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, BasicNode, Err>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        Err: std::error::Error + DeserializeOwned,
    {
        let Some(peer) = &self.peer else {
            let e = CallFailed(format!("node {} is not in the topology", self.target));
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        };
        let bytes = match peer
            .call_raw(path, rpc::encode(req), option.hard_ttl())
            .await
        {
            Ok(b) => b,
            Err((true, why)) => {
                return Err(RPCError::Unreachable(Unreachable::new(&CallFailed(why))))
            }
            Err((false, why)) => {
                return Err(RPCError::Network(NetworkError::new(&CallFailed(why))))
            }
        };
        let answer: Result<Resp, Err> = rpc::decode(&bytes)
            .map_err(|e| RPCError::Network(NetworkError::new(&CallFailed(e.to_string()))))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetworkFactory<Types> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Self::Network {
        Connection {
            target,
            peer: self.peers.get(&target).cloned(),
        }
    }
}

impl RaftNetwork<Types> for Connection {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<Types>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send("raft/append", &req, &option).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<Types>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.send("raft/snapshot", &req, &option).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send("raft/vote", &req, &option).await
    }
}
