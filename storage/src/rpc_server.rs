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
/// Bytes of a streamed shard gathered before one write to the file.
const SHARD_WRITE_CHUNK: usize = 1 << 20;

/// What a node does when another node says a bucket record changed.
pub type BucketChanged = Box<dyn Fn(&str) + Send + Sync>;

/// A node's answers to internal calls.
pub struct RpcServer {
    drives: HashMap<usize, Arc<dyn Drive>>,
    locks: Arc<LockTable>,
    verifier: Verifier,
    fingerprint: String,
    topology: String,
    started: Instant,
    bucket_changed: OnceLock<BucketChanged>,
    control: OnceLock<Arc<crate::raft::ControlPlane>>,
    /// Whether the control plane was ever joined, as last seen (hello must not wait on Raft).
    raft_initialized: std::sync::atomic::AtomicBool,
}

impl RpcServer {
    /// Serves `drives` (by topology index) and `locks`, for callers that know `secret` and
    /// run the topology `fingerprint` (described by `topology` in refusals).
    pub fn new(
        drives: HashMap<usize, Arc<dyn Drive>>,
        locks: Arc<LockTable>,
        secret: &[u8],
        fingerprint: String,
        topology: String,
    ) -> Self {
        Self {
            drives,
            locks,
            verifier: Verifier::new(secret),
            fingerprint,
            topology,
            started: Instant::now(),
            bucket_changed: OnceLock::new(),
            control: OnceLock::new(),
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
        match req.headers().get(rpc::TOPOLOGY_HEADER).and_then(|v| v.to_str().ok()) {
            Some(f) if f == self.fingerprint => {}
            theirs => {
                return plain(
                    StatusCode::CONFLICT,
                    &format!(
                        "the calling node runs another topology (fingerprint {}); this node's is {} ({})",
                        theirs.unwrap_or("none"),
                        self.fingerprint,
                        self.topology
                    ),
                )
            }
        }
        let streamed = call.contains("/shard/");
        let (parts, body) = req.into_parts();
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        if streamed {
            if let Err(e) = self.verifier.verify(
                "POST",
                &path,
                rpc_auth::UNSIGNED_BODY,
                header,
                rpc::now_ms(),
            ) {
                return plain(StatusCode::FORBIDDEN, &e.to_string());
            }
            return ok(rpc::encode_result(self.write_shard(&call, body).await));
        }
        let body = match Limited::new(body, MAX_CALL_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("unreadable call: {e}")),
        };
        if let Err(e) = self.verifier.verify(
            "POST",
            &path,
            &rpc_auth::body_hash(&body),
            header,
            rpc::now_ms(),
        ) {
            return plain(StatusCode::FORBIDDEN, &e.to_string());
        }
        match self.dispatch(&call, &body).await {
            Ok(answer) => ok(answer),
            Err(e) => ok(rpc::encode_result::<()>(Err(e))),
        }
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
                Ok(drive_call(drive.as_ref(), rpc::decode(body)?).await)
            }
            ["drive", index, "read"] => {
                let drive = self.drive(index)?;
                let read: ReadShard = rpc::decode(body)?;
                let bytes = match drive.open_shard(read.data_dir, read.part).await {
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
        while let Some(frame) = body.frame().await {
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
