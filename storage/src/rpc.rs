//! The cluster's internal RPC: what one node asks of another, as it travels. Every call is an
//! HTTP POST under [`PREFIX`] on the node's S3 port, signed with [`crate::rpc_auth`]; bodies
//! and answers are MessagePack. A call carries the caller's topology fingerprint, so a node
//! started with another topology is refused with both spelled out.
//!
//! Paths:
//! - `hello`: the node's topology and its drives' states (a peer's liveness probe);
//! - `drive/{index}/call`: one [`DriveCall`] on the node's drive at topology index `index`;
//! - `drive/{index}/shard/{staging}/{part}`: a shard file streamed in the request body, made
//!   durable when the body ends (its blocks carry their own bitrot hashes, so the body is not
//!   signed, see [`crate::rpc_auth::UNSIGNED_BODY`]);
//! - `drive/{index}/read`: `len` bytes of a committed shard file, as raw bytes;
//! - `lock`: a [`LockCall`] on the node's lock table;
//! - `bucket-changed`: a bucket record changed; the node forgets its cached copy;
//! - `raft/{append,vote,snapshot,write,applied}`: the control plane's messages
//!   ([`crate::raft`]).

use crate::drive::{Commit, Format, PartRecord};
use crate::error::StorageError;
use crate::meta::{BucketRecord, UploadRecord};
use crate::space::Space;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;

/// Where internal calls live on a node's port.
pub const PREFIX: &str = "/strata/rpc/v1/";
/// `x-strata-topology`: the caller's topology fingerprint ([`crate::topology::Topology::fingerprint`]).
pub const TOPOLOGY_HEADER: &str = "x-strata-topology";

/// One `Drive` method, with its arguments.
#[derive(Debug, Serialize, Deserialize)]
pub enum DriveCall {
    ReadFormat,
    WriteFormat(Format),
    PutBucket(BucketRecord),
    GetBucket(String),
    DeleteBucket(String),
    ListBuckets,
    ReadRecord {
        bucket: String,
        key: String,
    },
    Commit(Commit),
    ListRecords {
        bucket: String,
        lower: Vec<u8>,
        upper: Option<Vec<u8>>,
        limit: usize,
    },
    /// Checks that a committed shard file exists (as opening it locally would).
    OpenShard {
        data_dir: Uuid,
        part: u32,
    },
    DiscardStaging(Uuid),
    PutUpload(UploadRecord),
    GetUpload(Uuid),
    ListUploads(String),
    CommitPart(Uuid, PartRecord),
    ListParts(Uuid),
    AbortUpload(Uuid),
    CompleteUpload(Uuid, Commit),
    PruneParts(Uuid, Vec<u32>),
    ReopenUpload(UploadRecord, Vec<PartRecord>, Commit),
    Check(Format),
    RemoveData(Vec<Uuid>),
}

/// A ranged read of a committed shard file.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReadShard {
    pub data_dir: Uuid,
    pub part: u32,
    pub offset: u64,
    pub len: usize,
}

/// A call on a node's lock table ([`crate::dlock`]).
#[derive(Debug, Serialize, Deserialize)]
pub enum LockCall {
    Lock {
        resource: String,
        owner: Uuid,
        lease_ms: i64,
    },
    Unlock {
        resource: String,
        owner: Uuid,
    },
}

/// A node's answer to `hello`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub fingerprint: String,
    pub version: String,
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
    /// The node's drives by topology index: online, and space when measured.
    pub drives: Vec<(usize, bool, Option<Space>)>,
    /// The node's role in the control plane (`leader`, `follower`, …), once it runs.
    #[serde(default)]
    pub raft_role: Option<String>,
    /// Whether the node ever joined the control plane.
    #[serde(default)]
    pub raft_initialized: bool,
}

/// A storage error as it crosses the wire; the caller sees the same kind of error the drive
/// raised (an I/O error stays an I/O error of the same kind when it is "not found").
#[derive(Debug, Serialize, Deserialize)]
pub enum WireError {
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    NoSuchUpload,
    InvalidPart(String),
    DriveOffline(String),
    Refused(String),
    Corrupt(String),
    NotReady(String),
    NotFound(String),
    Other(String),
}

impl From<&StorageError> for WireError {
    fn from(e: &StorageError) -> Self {
        match e {
            StorageError::NoSuchBucket => Self::NoSuchBucket,
            StorageError::NoSuchKey => Self::NoSuchKey,
            StorageError::NoSuchVersion => Self::NoSuchVersion,
            StorageError::NoSuchUpload => Self::NoSuchUpload,
            StorageError::InvalidPart(m) => Self::InvalidPart(m.clone()),
            StorageError::DriveOffline(m) => Self::DriveOffline(m.clone()),
            StorageError::Refused(m) => Self::Refused(m.clone()),
            StorageError::Corrupt(m) => Self::Corrupt(m.clone()),
            StorageError::NotReady(m) => Self::NotReady(m.clone()),
            StorageError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                Self::NotFound(io.to_string())
            }
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<WireError> for StorageError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::NoSuchBucket => Self::NoSuchBucket,
            WireError::NoSuchKey => Self::NoSuchKey,
            WireError::NoSuchVersion => Self::NoSuchVersion,
            WireError::NoSuchUpload => Self::NoSuchUpload,
            WireError::InvalidPart(m) => Self::InvalidPart(m),
            WireError::DriveOffline(m) => Self::DriveOffline(m),
            WireError::Refused(m) => Self::Refused(m),
            WireError::Corrupt(m) => Self::Corrupt(m),
            WireError::NotReady(m) => Self::NotReady(m),
            WireError::NotFound(m) => {
                Self::Io(std::io::Error::new(std::io::ErrorKind::NotFound, m))
            }
            WireError::Other(m) => Self::Io(std::io::Error::other(m)),
        }
    }
}

/// Milliseconds since the Unix epoch, as calls are signed.
pub fn now_ms() -> i64 {
    crate::meta::now_ns() / 1_000_000
}

/// Encodes a value for the wire.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("wire types always serialize")
}

/// Decodes a value from the wire.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| StorageError::Corrupt(format!("undecodable internal call: {e}")))
}

/// Encodes an answer: the value, or the error the drive raised.
pub fn encode_result<T: Serialize>(result: Result<T, StorageError>) -> Vec<u8> {
    let wire: Result<T, WireError> = result.map_err(|e| WireError::from(&e));
    encode(&wire)
}

/// Decodes an answer made by [`encode_result`].
pub fn decode_result<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    decode::<Result<T, WireError>>(bytes)?.map_err(StorageError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_kind_across_the_wire() {
        let not_found =
            StorageError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "part.1"));
        let back: Result<(), _> = decode_result(&encode_result::<()>(Err(not_found)));
        assert!(
            matches!(back, Err(StorageError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound)
        );
        let back: Result<(), _> =
            decode_result(&encode_result::<()>(Err(StorageError::NoSuchUpload)));
        assert!(matches!(back, Err(StorageError::NoSuchUpload)));
        let ok: Option<u32> = decode_result(&encode_result(Ok(Some(7u32)))).unwrap();
        assert_eq!(ok, Some(7));
    }

    #[test]
    fn calls_round_trip() {
        let call = DriveCall::ListRecords {
            bucket: "b".into(),
            lower: b"a".to_vec(),
            upper: None,
            limit: 10,
        };
        match decode::<DriveCall>(&encode(&call)).unwrap() {
            DriveCall::ListRecords { bucket, limit, .. } => {
                assert_eq!((bucket.as_str(), limit), ("b", 10))
            }
            other => panic!("{other:?}"),
        }
    }
}
