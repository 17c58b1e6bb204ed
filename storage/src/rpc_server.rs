//! The serving side of the internal RPC ([`crate::rpc`]): a node answers other nodes' calls on
//! its own drives and lock table. Calls are refused unless signed with the cluster secret
//! ([`crate::rpc_auth`]) and made by a node with the same topology.

use crate::dlock::LockTable;
use crate::drive::Drive;
use crate::error::{Result, StorageError};
use crate::rpc::{self, DriveCall, Hello, LockCall, ReadShard};
use crate::rpc_auth::{self, Verifier};
use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use uuid::Uuid;

/// The largest signed call body (a key's record with all its versions and inline data).
const MAX_CALL_BODY: usize = 256 << 20;
/// How long a streamed shard may send nothing before the call is dropped.
const SHARD_IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// Bytes of a streamed shard gathered before one write to the file.
const SHARD_WRITE_CHUNK: usize = 1 << 20;

/// How long an opened shard file stays open for further block reads after its last one. A
/// GET holds its shards open from its start: a version overwritten or deleted meanwhile stays
/// readable to it, on remote drives as on local ones.
const READER_IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// Most shard files kept open for readers.
const MAX_READERS: usize = 4096;

/// Shard files open for reading, by drive index, data directory and part.
type OpenReaders = HashMap<(usize, Uuid, u32), (Arc<dyn crate::drive::ShardReader>, Instant)>;

/// What a node does when another node says a bucket record changed.
pub type BucketChanged = Box<dyn Fn(&str) + Send + Sync>;

/// A node's answers to internal calls.
pub struct RpcServer {
    me: String,
    drives: HashMap<usize, Arc<dyn Drive>>,
    locks: Arc<LockTable>,
    verifier: Verifier,
    fingerprint: String,
    topology: String,
    started: Instant,
    bucket_changed: OnceLock<BucketChanged>,
    control: OnceLock<Arc<crate::raft::ControlPlane>>,
    readers: std::sync::Mutex<OpenReaders>,
    /// Whether the control plane was ever joined, as last seen (hello must not wait on Raft).
    raft_initialized: std::sync::atomic::AtomicBool,
}

impl RpcServer {
    /// Serves `drives` (by topology index) and `locks` as node `me` (`HOST:PORT`), for callers
    /// that know `secret` and run the topology `fingerprint` (described by `topology` in
    /// refusals).
    pub fn new(
        me: String,
        drives: HashMap<usize, Arc<dyn Drive>>,
        locks: Arc<LockTable>,
        secret: &[u8],
        fingerprint: String,
        topology: String,
    ) -> Self {
        Self {
            me,
            drives,
            locks,
            verifier: Verifier::new(secret),
            fingerprint,
            topology,
            started: Instant::now(),
            bucket_changed: OnceLock::new(),
            control: OnceLock::new(),
            readers: Default::default(),
            raft_initialized: Default::default(),
        }
    }

    /// Installs what a `bucket-changed` call does (once the store is open).
    pub fn on_bucket_changed(&self, f: BucketChanged) {
        let _ = self.bucket_changed.set(f);
    }

    /// Serves the control plane's calls (once, when it started).
    pub fn serve_control_plane(&self, control: Arc<crate::raft::ControlPlane>) {
        let _ = self.control.set(control);
    }

    /// Records whether this node joined the control plane (shown in `hello`).
    pub fn set_raft_initialized(&self, joined: bool) {
        self.raft_initialized
            .store(joined, std::sync::atomic::Ordering::SeqCst);
    }

    /// This node's `hello`: its topology and drive states.
    pub fn hello(&self) -> Hello {
        let mut drives: Vec<_> = self
            .drives
            .iter()
            .map(|(i, d)| (*i, d.is_online(), d.space()))
            .collect();
        drives.sort_by_key(|(i, _, _)| *i);
        Hello {
            fingerprint: self.fingerprint.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            drives,
            raft_role: self.control.get().map(|c| c.role().to_owned()),
            raft_initialized: self
                .raft_initialized
                .load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Answers one call (a request whose path starts with [`rpc::PREFIX`]).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Bytes>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
    {
        let path = req.uri().path().to_owned();
        let call = path
            .strip_prefix(rpc::PREFIX)
            .unwrap_or_default()
            .to_owned();
        if req.method() != http::Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "internal calls are POSTs");
        }
        let (parts, body) = req.into_parts();
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        if let Err(e) = self.verifier.precheck(header, rpc::now_ms()) {
            return plain(StatusCode::FORBIDDEN, &e.to_string());
        }
        // Calls are signed for the node they are sent to.
        let signed = format!("{}{path}", self.me);
        if call.contains("/shard/") {
            if let Err(e) = self.verifier.verify(
                "POST",
                &signed,
                rpc_auth::UNSIGNED_BODY,
                header,
                rpc::now_ms(),
            ) {
                return plain(StatusCode::FORBIDDEN, &e.to_string());
            }
            if let Some(refusal) = self.other_topology(header(rpc::TOPOLOGY_HEADER)) {
                return refusal;
            }
            return ok(rpc::encode_result(self.write_shard(&call, body).await));
        }
        let body = match Limited::new(body, MAX_CALL_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("unreadable call: {e}")),
        };
        let hash = rpc_auth::body_hash(&body);
        if let Err(e) = self
            .verifier
            .verify("POST", &signed, &hash, header, rpc::now_ms())
        {
            return plain(StatusCode::FORBIDDEN, &e.to_string());
        }
        if let Some(refusal) = self.other_topology(header(rpc::TOPOLOGY_HEADER)) {
            return refusal;
        }
        match self.dispatch(&call, &body).await {
            Ok(answer) => ok(answer),
            Err(e) => ok(rpc::encode_result::<()>(Err(e))),
        }
    }

    /// The refusal of a caller (already authenticated) that runs another topology.
    fn other_topology(&self, theirs: Option<&str>) -> Option<Response<Bytes>> {
        if theirs == Some(self.fingerprint.as_str()) {
            return None;
        }
        Some(plain(
            StatusCode::CONFLICT,
            &format!(
                "the calling node runs another topology (fingerprint {}); this node's is {} ({})",
                theirs.unwrap_or("none"),
                self.fingerprint,
                self.topology
            ),
        ))
    }

    async fn dispatch(&self, call: &str, body: &[u8]) -> Result<Vec<u8>> {
        let segments: Vec<&str> = call.split('/').collect();
        match segments.as_slice() {
            ["hello"] => Ok(rpc::encode(&self.hello())),
            ["lock"] => {
                let now = rpc::now_ms();
                self.locks.expire(now);
                let granted = match rpc::decode::<LockCall>(body)? {
                    LockCall::Lock {
                        resource,
                        owner,
                        lease_ms,
                    } => self.locks.acquire(&resource, owner, lease_ms, now),
                    LockCall::Unlock { resource, owner } => self.locks.release(&resource, owner),
                };
                Ok(rpc::encode_result(Ok(granted)))
            }
            ["bucket-changed"] => {
                let name: String = rpc::decode(body)?;
                if let Some(f) = self.bucket_changed.get() {
                    f(&name);
                }
                Ok(rpc::encode_result(Ok(())))
            }
            ["raft", op] => match self.control.get() {
                Some(control) => control.handle(op, body).await,
                None => Err(StorageError::Refused(
                    "the control plane is not running on this node yet".into(),
                )),
            },
            ["drive", index, "call"] => {
                let drive = self.drive(index)?;
                match rpc::decode(body)? {
                    DriveCall::OpenShard { data_dir, part } => {
                        let opened = self.reader(index, data_dir, part).await.map(drop);
                        Ok(rpc::encode_result(opened))
                    }
                    call => Ok(drive_call(drive.as_ref(), call).await),
                }
            }
            ["drive", index, "read"] => {
                let read: ReadShard = rpc::decode(body)?;
                let bytes = match self.reader(index, read.data_dir, read.part).await {
                    Ok(reader) => reader.read_at(read.offset, read.len).await,
                    Err(e) => Err(e),
                };
                Ok(rpc::encode_result(
                    bytes.map(|b| serde_bytes::ByteBuf::from(b.to_vec())),
                ))
            }
            _ => Err(StorageError::Refused(format!(
                "unknown internal call {call}"
            ))),
        }
    }

    /// The open shard file, opened now if no reader holds it open.
    async fn reader(
        &self,
        index: &str,
        data_dir: Uuid,
        part: u32,
    ) -> Result<Arc<dyn crate::drive::ShardReader>> {
        let drive = self.drive(index)?;
        let key = (index.parse::<usize>().unwrap_or_default(), data_dir, part);
        if let Some((reader, used)) = self.readers.lock().expect("lock").get_mut(&key) {
            *used = Instant::now();
            return Ok(reader.clone());
        }
        let reader: Arc<dyn crate::drive::ShardReader> =
            Arc::from(drive.open_shard(data_dir, part).await?);
        let mut readers = self.readers.lock().expect("lock");
        // Idle files close as new ones open (a few thousand at most: one pass is cheap).
        readers.retain(|_, (_, used)| used.elapsed() < READER_IDLE);
        if readers.len() >= MAX_READERS {
            readers.clear();
        }
        readers.insert(key, (reader.clone(), Instant::now()));
        Ok(reader)
    }

    fn drive(&self, index: &str) -> Result<&Arc<dyn Drive>> {
        index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.drives.get(&i))
            .ok_or_else(|| StorageError::Refused(format!("this node serves no drive {index}")))
    }

    /// Writes a streamed shard: `drive/{index}/shard/{staging}/{part}`.
    async fn write_shard<B>(&self, call: &str, mut body: B) -> Result<()>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
    {
        let segments: Vec<&str> = call.split('/').collect();
        let ["drive", index, "shard", staging, part] = segments.as_slice() else {
            return Err(StorageError::Refused(format!(
                "unknown internal call {call}"
            )));
        };
        let drive = self.drive(index)?;
        let staging: Uuid = staging
            .parse()
            .map_err(|_| StorageError::Refused("bad staging id".into()))?;
        let part: u32 = part
            .parse()
            .map_err(|_| StorageError::Refused("bad part number".into()))?;
        let mut writer = drive.create_shard(staging, part).await?;
        let mut pending = BytesMut::new();
        loop {
            let frame = match tokio::time::timeout(SHARD_IDLE, body.frame()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => return Err(StorageError::Body("the shard's sender went quiet".into())),
            };
            let frame = frame.map_err(|e| StorageError::Body(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                pending.extend_from_slice(&data);
                if pending.len() >= SHARD_WRITE_CHUNK {
                    writer.write(pending.split().freeze()).await?;
                }
            }
        }
        if !pending.is_empty() {
            writer.write(pending.freeze()).await?;
        }
        writer.finish().await
    }
}

/// Runs one drive method and encodes its answer.
async fn drive_call(drive: &dyn Drive, call: DriveCall) -> Vec<u8> {
    use rpc::encode_result as answer;
    match call {
        DriveCall::ReadFormat => answer(drive.read_format().await),
        DriveCall::WriteFormat(f) => answer(drive.write_format(&f).await),
        DriveCall::PutBucket(b) => answer(drive.put_bucket(&b).await),
        DriveCall::GetBucket(name) => answer(drive.get_bucket(&name).await),
        DriveCall::DeleteBucket(name) => answer(drive.delete_bucket(&name).await),
        DriveCall::ListBuckets => answer(drive.list_buckets().await),
        DriveCall::ReadRecord { bucket, key } => answer(drive.read_record(&bucket, &key).await),
        DriveCall::Commit(c) => answer(drive.commit(c).await),
        DriveCall::ListRecords {
            bucket,
            lower,
            upper,
            limit,
        } => answer(
            drive
                .list_records(&bucket, &lower, upper.as_deref(), limit)
                .await,
        ),
        DriveCall::OpenShard { data_dir, part } => {
            answer(drive.open_shard(data_dir, part).await.map(drop))
        }
        DriveCall::DiscardStaging(id) => answer(drive.discard_staging(id).await),
        DriveCall::PutUpload(u) => answer(drive.put_upload(&u).await),
        DriveCall::GetUpload(id) => answer(drive.get_upload(id).await),
        DriveCall::ListUploads(bucket) => answer(drive.list_uploads(&bucket).await),
        DriveCall::CommitPart(id, part) => answer(drive.commit_part(id, part).await),
        DriveCall::ListParts(id) => answer(drive.list_parts(id).await),
        DriveCall::AbortUpload(id) => answer(drive.abort_upload(id).await),
        DriveCall::CompleteUpload(id, c) => answer(drive.complete_upload(id, c).await),
        DriveCall::PruneParts(dir, keep) => answer(drive.prune_parts(dir, keep).await),
        DriveCall::ReopenUpload(u, parts, c) => answer(drive.reopen_upload(&u, parts, c).await),
        DriveCall::Check(f) => answer(drive.check(&f).await),
        DriveCall::RemoveData(dirs) => answer(drive.remove_data(dirs).await),
    }
}

fn ok(body: Vec<u8>) -> Response<Bytes> {
    Response::new(Bytes::from(body))
}

fn plain(status: StatusCode, text: &str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(format!("{text}\n")));
    *r.status_mut() = status;
    r
}
