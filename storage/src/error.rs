//! The storage layer's errors; the gateway maps each to an S3 error code.

use std::io;

/// What can go wrong below the S3 API.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("the bucket already exists")]
    BucketExists,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("the key does not exist")]
    NoSuchKey,
    #[error("the version does not exist")]
    NoSuchVersion,
    /// The addressed version is a delete marker (or the current version is one).
    #[error("the object is a delete marker")]
    DeleteMarker {
        version_id: Option<uuid::Uuid>,
        mod_time_ns: i64,
        /// Addressed by version id (S3 answers 405) rather than as the current version (404).
        addressed: bool,
    },
    #[error("the operation does not apply to a delete marker")]
    MethodNotAllowed,
    #[error("{0}")]
    ObjectLocked(String),
    #[error("the multipart upload does not exist")]
    NoSuchUpload,
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("part {0} is smaller than the 5 MiB minimum")]
    EntityTooSmall(u32),
    #[error("the precondition failed")]
    PreconditionFailed,
    /// The operation does not apply to the version in its storage class (a restore of a
    /// version that is not on a tier).
    #[error("the object's storage class does not allow this operation")]
    InvalidObjectState,
    /// Something outside the store (a remote tier) cannot serve the request now.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    BadDigest(String),
    #[error("the request body ended early: {0}")]
    IncompleteBody(String),
    #[error("the request body could not be read: {0}")]
    Body(String),
    #[error("quorum not reached: {got} of {needed} needed ({what})")]
    Quorum {
        what: &'static str,
        got: usize,
        needed: usize,
    },
    #[error("fewer than a write quorum of drives have room above their free-space reserve")]
    StorageFull,
    #[error("drive {0} is offline")]
    DriveOffline(String),
    #[error("{0}")]
    Refused(String),
    /// The cluster cannot be opened yet (peers not up, the deployment not formatted yet).
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("metadata database error: {0}")]
    Db(#[from] rusqlite::Error),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
