//! Drives and lock tables on other nodes, reached over the internal RPC ([`crate::rpc`]).
//!
//! A [`Peer`] is one other node: a pooled HTTP client that signs every call, and its
//! liveness. A peer that fails a call is marked offline and its drives refuse calls at once
//! (a write goes on with the drives it has instead of waiting on a dead node) until the prober,
//! once a second, hears from it again. A [`RemoteDrive`] is one of the peer's drives behind
//! the same [`Drive`] trait as a local one, so the erasure set cannot tell them apart.

use crate::dlock::Locker;
use crate::drive::{Commit, Drive, Format, ListedRecord, PartRecord, ShardReader, ShardWriter};
use crate::error::{Result, StorageError};
use crate::meta::{BucketRecord, ObjectRecord, UploadRecord};
use crate::rpc::{self, DriveCall, Hello, LockCall, ReadShard};
use crate::rpc_auth;
use crate::space::Space;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

type Body = BoxBody<Bytes, std::io::Error>;

/// How long a node may take to accept a connection before it counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one metadata call or shard read may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a peer is probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a probe may take before the node counts as down (a probe touches no disk).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a lock call may take: well inside a lock's lease, so a slow node cannot make a
/// renewal outlast the grants it renews.
const LOCK_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Shard blocks in flight to one remote shard file (bounds the memory of a streamed write).
const SHARD_BLOCKS_IN_FLIGHT: usize = 4;

/// Counters of the calls made to one peer, for the operator's metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerStats {
    pub calls: u64,
    pub errors: u64,
    /// Sum of the calls' latencies, microseconds.
    pub latency_us: u64,
}

/// Another node of the cluster.
pub struct Peer {
    /// `HOST:PORT`, as the topology names it.
    pub node: String,
    base: String,
    client: Client<HttpConnector, Body>,
    secret: Arc<[u8]>,
    fingerprint: String,
    online: AtomicBool,
    /// Counts the times the node went offline: calls in flight to it give up at once (a
    /// partitioned node's TCP connections hang rather than fail).
    went_offline: tokio::sync::watch::Sender<u64>,
    /// Counts the times the node came (back) online: notices it sent meanwhile may be lost.
    came_online: tokio::sync::watch::Sender<u64>,
    /// What the node said about itself when last probed.
    hello: Mutex<Option<Hello>>,
    /// Why the last call failed, for `admin info`.
    last_error: Mutex<Option<String>>,
    calls: AtomicU64,
    errors: AtomicU64,
    latency_us: AtomicU64,
}

impl Peer {
    /// A peer at `node` (`HOST:PORT`, plain HTTP), starting offline until the first probe.
    pub fn new(node: &str, secret: Arc<[u8]>, fingerprint: String) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Arc::new(Self {
            node: node.to_owned(),
            base: format!("http://{node}"),
            client,
            secret,
            fingerprint,
            online: AtomicBool::new(false),
            went_offline: tokio::sync::watch::Sender::new(0),
            came_online: tokio::sync::watch::Sender::new(0),
            hello: Mutex::new(None),
            last_error: Mutex::new(None),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
        })
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::SeqCst)
    }

    /// The node's last answer to a probe (version, uptime, drive states).
    pub fn hello(&self) -> Option<Hello> {
        self.hello.lock().expect("lock").clone()
    }

    /// Why the last call to the node failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("lock").clone()
    }

    pub fn stats(&self) -> PeerStats {
        PeerStats {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_us: self.latency_us.load(Ordering::Relaxed),
        }
    }

    fn request(&self, path: &str, body_hash: &str, body: Body) -> http::Request<Body> {
        let path = format!("{}{path}", rpc::PREFIX);
        let mut req = http::Request::post(format!("{}{path}", self.base))
            .header(rpc::TOPOLOGY_HEADER, &self.fingerprint);
        // Signed for this node only: the same call sent to another node is refused there.
        let signed = format!("{}{path}", self.node);
        for (name, value) in rpc_auth::sign(&self.secret, "POST", &signed, body_hash, rpc::now_ms())
        {
            req = req.header(name, value);
        }
        req.body(body).expect("valid request")
    }

    /// A signed call with a body held in memory (signed with its hash).
    fn call_request(&self, path: &str, body: Vec<u8>) -> http::Request<Body> {
        let hash = rpc_auth::body_hash(&body);
        let body = Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed();
        self.request(path, &hash, body)
    }

    /// Sends a signed call and returns the answer's body when the node answered 200.
    async fn send(&self, path: &str, body: Vec<u8>) -> Result<Bytes> {
        self.send_within(path, body, CALL_TIMEOUT).await
    }

    /// `send` with its own time limit.
    async fn send_within(&self, path: &str, body: Vec<u8>, limit: Duration) -> Result<Bytes> {
        if !self.is_online() && path != "hello" {
            return Err(StorageError::DriveOffline(format!(
                "node {} is offline",
                self.node
            )));
        }
        let req = self.call_request(path, body);
        let started = Instant::now();
        let limit = if path == "hello" {
            PROBE_TIMEOUT
        } else {
            limit
        };
        let call = tokio::time::timeout(limit, async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        });
        let answer = match self.unless_offline(call).await {
            Some(Ok(answer)) => answer,
            Some(Err(_)) => Err(format!("no answer within {} s", limit.as_secs())),
            None => Err("the node went offline during the call".into()),
        };
        self.record(started, answer.is_err());
        match answer {
            Ok((status, bytes)) if status.is_success() => Ok(bytes),
            Ok((status, bytes)) => {
                let why = String::from_utf8_lossy(&bytes).into_owned();
                self.failed(format!("{status}: {why}"));
                Err(StorageError::Refused(format!(
                    "node {} refused the call: {why}",
                    self.node
                )))
            }
            Err(e) => {
                self.failed(e.clone());
                Err(StorageError::DriveOffline(format!(
                    "node {}: {e}",
                    self.node
                )))
            }
        }
    }

    /// A call that leaves the node's liveness alone (the control plane's own timing decides
    /// what a slow answer means): the answer's body, or why there is none and whether the
    /// node could not be reached at all.
    pub async fn call_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        limit: Duration,
    ) -> std::result::Result<Bytes, (bool, String)> {
        if !self.is_online() {
            return Err((true, format!("node {} is offline", self.node)));
        }
        let req = self.call_request(path, body);
        let started = Instant::now();
        let answer = tokio::time::timeout(limit, async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| (e.is_connect(), e.to_string()))?;
            let ok = resp.status().is_success();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| (false, e.to_string()))?
                .to_bytes();
            if !ok {
                return Err((false, String::from_utf8_lossy(&bytes).into_owned()));
            }
            Ok(bytes)
        })
        .await
        .unwrap_or_else(|_| Err((false, format!("no answer within {limit:?}"))));
        self.record(started, answer.is_err());
        answer
    }

    /// Runs `call` unless the node goes offline first (`None`).
    async fn unless_offline<F: std::future::Future>(&self, call: F) -> Option<F::Output> {
        let mut offline = self.went_offline.subscribe();
        tokio::select! {
            answer = call => Some(answer),
            _ = offline.changed() => None,
        }
    }

    /// A call whose answer is an [`rpc::encode_result`] body.
    async fn call<T: DeserializeOwned>(&self, path: &str, body: Vec<u8>) -> Result<T> {
        rpc::decode_result(&self.send(path, body).await?)
    }

    fn record(&self, started: Instant, failed: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn failed(&self, why: String) {
        let went_offline = self.online.swap(false, Ordering::SeqCst);
        if went_offline {
            self.went_offline.send_modify(|n| *n += 1);
        }
        let mut last = self.last_error.lock().expect("lock");
        // Said once per reason, not once per probe while the node stays away.
        if went_offline || last.as_deref() != Some(&why) {
            tracing::warn!(node = %self.node, error = %why, "node offline");
        }
        *last = Some(why);
    }

    /// Asks the node how it is; marks it online when it answers with our topology.
    pub async fn probe(&self) -> Result<Hello> {
        let hello: Hello = rpc::decode(&self.send("hello", Vec::new()).await?)?;
        if hello.fingerprint != self.fingerprint {
            let why = format!(
                "node {} runs another topology (fingerprint {}, ours {})",
                self.node, hello.fingerprint, self.fingerprint
            );
            self.failed(why.clone());
            return Err(StorageError::Refused(why));
        }
        *self.hello.lock().expect("lock") = Some(hello.clone());
        *self.last_error.lock().expect("lock") = None;
        if !self.online.swap(true, Ordering::SeqCst) {
            tracing::info!(node = %self.node, "node online");
            self.came_online.send_modify(|n| *n += 1);
        }
        Ok(hello)
    }

    /// Wakes each time the node comes (back) online.
    pub fn watch_online(&self) -> tokio::sync::watch::Receiver<u64> {
        self.came_online.subscribe()
    }

    /// Probes the peer every second for as long as the process runs.
    pub fn start_prober(self: &Arc<Self>) {
        let peer = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(peer) = peer.upgrade() else { return };
                let _ = peer.probe().await;
            }
        });
    }

    /// Tells the node a bucket record changed, so it forgets its cached copy.
    pub async fn bucket_changed(&self, name: &str) -> Result<()> {
        self.call("bucket-changed", rpc::encode(&name)).await
    }
}

/// A drive served by another node.
pub struct RemoteDrive {
    peer: Arc<Peer>,
    index: usize,
    label: String,
}

impl RemoteDrive {
    /// The drive at topology index `index`, served by `peer`, labelled as the topology names it.
    pub fn new(peer: Arc<Peer>, index: usize, label: String) -> Self {
        Self { peer, index, label }
    }

    async fn call<T: DeserializeOwned>(&self, call: DriveCall) -> Result<T> {
        self.peer
            .call(&format!("drive/{}/call", self.index), rpc::encode(&call))
            .await
    }

    fn state(&self) -> Option<(bool, Option<Space>)> {
        let hello = self.peer.hello.lock().expect("lock");
        hello
            .as_ref()?
            .drives
            .iter()
            .find(|(i, _, _)| *i == self.index)
            .map(|(_, online, space)| (*online, *space))
    }
}

struct RemoteShardWriter {
    blocks: Option<mpsc::Sender<std::result::Result<Frame<Bytes>, std::io::Error>>>,
    /// The call's answer; taken once the body can no longer be sent.
    answer: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl RemoteShardWriter {
    /// The call's outcome once the body ended (or the node stopped reading it).
    async fn outcome(&mut self) -> Result<()> {
        self.blocks = None;
        match self.answer.take() {
            Some(mut answer) => match tokio::time::timeout(CALL_TIMEOUT, &mut answer).await {
                Ok(done) => {
                    done.unwrap_or_else(|e| Err(StorageError::Io(std::io::Error::other(e))))
                }
                Err(_) => {
                    answer.abort();
                    Err(StorageError::DriveOffline(format!(
                        "the node did not finish the shard within {} s",
                        CALL_TIMEOUT.as_secs()
                    )))
                }
            },
            None => Err(StorageError::Io(std::io::Error::other(
                "the shard's call already failed",
            ))),
        }
    }
}

#[async_trait]
impl ShardWriter for RemoteShardWriter {
    async fn write(&mut self, framed: Bytes) -> Result<()> {
        let sent = match &self.blocks {
            Some(tx) => {
                match tokio::time::timeout(CALL_TIMEOUT, tx.send(Ok(Frame::data(framed)))).await {
                    Ok(sent) => sent.is_ok(),
                    Err(_) => {
                        return Err(StorageError::DriveOffline(format!(
                            "the node took no shard block for {} s",
                            CALL_TIMEOUT.as_secs()
                        )))
                    }
                }
            }
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The node stopped reading: its answer says why.
        match self.outcome().await {
            Err(e) => Err(e),
            Ok(()) => Err(StorageError::Io(std::io::Error::other(
                "the node stopped receiving the shard",
            ))),
        }
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        // The body ends: the node makes the file durable and answers.
        self.outcome().await
    }
}

impl Drop for RemoteShardWriter {
    fn drop(&mut self) {
        // Dropped before `finish`: the call is cut off (the connection reset), so the node
        // never takes the body as complete and never makes a partial file durable.
        if let Some(tx) = self.blocks.take() {
            let _ = tx.try_send(Err(std::io::Error::other("shard write abandoned")));
        }
        if let Some(answer) = self.answer.take() {
            answer.abort();
        }
    }
}

struct RemoteShardReader {
    drive: Arc<Peer>,
    index: usize,
    data_dir: Uuid,
    part: u32,
}

#[async_trait]
impl ShardReader for RemoteShardReader {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let call = ReadShard {
            data_dir: self.data_dir,
            part: self.part,
            offset,
            len,
        };
        let bytes: serde_bytes::ByteBuf = self
            .drive
            .call(&format!("drive/{}/read", self.index), rpc::encode(&call))
            .await?;
        if bytes.len() != len {
            return Err(StorageError::Corrupt("short shard read".into()));
        }
        Ok(Bytes::from(bytes.into_vec()))
    }
}

#[async_trait]
impl Drive for RemoteDrive {
    fn label(&self) -> &str {
        &self.label
    }

    fn is_online(&self) -> bool {
        self.peer.is_online() && self.state().is_some_and(|(online, _)| online)
    }

    fn is_local(&self) -> bool {
        false
    }

    fn space(&self) -> Option<Space> {
        self.state().and_then(|(_, space)| space)
    }

    async fn read_format(&self) -> Result<Option<Format>> {
        self.call(DriveCall::ReadFormat).await
    }

    async fn write_format(&self, format: &Format) -> Result<()> {
        self.call(DriveCall::WriteFormat(format.clone())).await
    }

    async fn put_bucket(&self, record: &BucketRecord) -> Result<()> {
        self.call(DriveCall::PutBucket(record.clone())).await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        self.call(DriveCall::GetBucket(name.to_owned())).await
    }

    async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.call(DriveCall::DeleteBucket(name.to_owned())).await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.call(DriveCall::ListBuckets).await
    }

    async fn read_record(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        self.call(DriveCall::ReadRecord {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
        .await
    }

    async fn commit(&self, commit: Commit) -> Result<()> {
        self.call(DriveCall::Commit(commit)).await
    }

    async fn list_records(
        &self,
        bucket: &str,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>> {
        self.call(DriveCall::ListRecords {
            bucket: bucket.to_owned(),
            lower: lower.to_vec(),
            upper: upper.map(<[u8]>::to_vec),
            limit,
        })
        .await
    }

    async fn create_shard(&self, staging: Uuid, part: u32) -> Result<Box<dyn ShardWriter>> {
        if !self.is_online() {
            return Err(StorageError::DriveOffline(self.label.clone()));
        }
        let (tx, rx) = mpsc::channel(SHARD_BLOCKS_IN_FLIGHT);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|frame| (frame, rx))
        });
        let path = format!("drive/{}/shard/{staging}/{part}", self.index);
        let req = self.peer.request(
            &path,
            rpc_auth::UNSIGNED_BODY,
            BodyExt::boxed(StreamBody::new(stream)),
        );
        let peer = self.peer.clone();
        let answer = tokio::spawn(async move {
            let started = Instant::now();
            let resp = match peer.unless_offline(peer.client.request(req)).await {
                Some(resp) => resp,
                None => {
                    return Err(StorageError::DriveOffline(format!(
                        "node {} went offline during the call",
                        peer.node
                    )))
                }
            };
            let answer = match resp {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    match resp.into_body().collect().await {
                        Ok(body) if ok => rpc::decode_result(&body.to_bytes()),
                        Ok(body) => Err(StorageError::Refused(
                            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                        )),
                        Err(e) => Err(StorageError::Io(std::io::Error::other(e))),
                    }
                }
                Err(e) => {
                    peer.failed(e.to_string());
                    Err(StorageError::DriveOffline(format!(
                        "node {}: {e}",
                        peer.node
                    )))
                }
            };
            peer.record(started, answer.is_err());
            answer
        });
        Ok(Box::new(RemoteShardWriter {
            blocks: Some(tx),
            answer: Some(answer),
        }))
    }

    async fn open_shard(&self, data_dir: Uuid, part: u32) -> Result<Box<dyn ShardReader>> {
        self.call::<()>(DriveCall::OpenShard { data_dir, part })
            .await?;
        Ok(Box::new(RemoteShardReader {
            drive: self.peer.clone(),
            index: self.index,
            data_dir,
            part,
        }))
    }

    async fn discard_staging(&self, staging: Uuid) -> Result<()> {
        self.call(DriveCall::DiscardStaging(staging)).await
    }

    async fn put_upload(&self, upload: &UploadRecord) -> Result<()> {
        self.call(DriveCall::PutUpload(upload.clone())).await
    }

    async fn get_upload(&self, upload_id: Uuid) -> Result<Option<UploadRecord>> {
        self.call(DriveCall::GetUpload(upload_id)).await
    }

    async fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadRecord>> {
        self.call(DriveCall::ListUploads(bucket.to_owned())).await
    }

    async fn commit_part(&self, upload_id: Uuid, part: PartRecord) -> Result<()> {
        self.call(DriveCall::CommitPart(upload_id, part)).await
    }

    async fn list_parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>> {
        self.call(DriveCall::ListParts(upload_id)).await
    }

    async fn abort_upload(&self, upload_id: Uuid) -> Result<()> {
        self.call(DriveCall::AbortUpload(upload_id)).await
    }

    async fn complete_upload(&self, upload_id: Uuid, commit: Commit) -> Result<()> {
        self.call(DriveCall::CompleteUpload(upload_id, commit))
            .await
    }

    async fn prune_parts(&self, data_dir: Uuid, keep: Vec<u32>) -> Result<()> {
        self.call(DriveCall::PruneParts(data_dir, keep)).await
    }

    async fn reopen_upload(
        &self,
        upload: &UploadRecord,
        parts: Vec<PartRecord>,
        commit: Commit,
    ) -> Result<()> {
        self.call(DriveCall::ReopenUpload(upload.clone(), parts, commit))
            .await
    }

    async fn check(&self, expected: &Format) -> Result<bool> {
        self.call(DriveCall::Check(expected.clone())).await
    }

    async fn remove_data(&self, dirs: Vec<Uuid>) -> Result<()> {
        self.call(DriveCall::RemoveData(dirs)).await
    }

    /// The drive's own node collects its garbage (it alone knows what it is writing).
    async fn collect_garbage(&self, _before: std::time::SystemTime) -> Result<usize> {
        Ok(0)
    }
}

/// Another node's lock table.
pub struct RemoteLocker(pub Arc<Peer>);

#[async_trait]
impl Locker for RemoteLocker {
    async fn lock(&self, resource: &str, owner: Uuid, lease_ms: i64) -> bool {
        let call = LockCall::Lock {
            resource: resource.to_owned(),
            owner,
            lease_ms,
        };
        self.0
            .call("lock", rpc::encode(&call))
            .await
            .unwrap_or(false)
    }

    async fn unlock(&self, resource: &str, owner: Uuid) {
        let call = LockCall::Unlock {
            resource: resource.to_owned(),
            owner,
        };
        let _ = self
            .0
            .send_within("lock", rpc::encode(&call), LOCK_CALL_TIMEOUT)
            .await;
    }

    fn is_online(&self) -> bool {
        self.0.is_online()
    }
}

/// Peers by node (`HOST:PORT`).
pub type Peers = HashMap<String, Arc<Peer>>;
