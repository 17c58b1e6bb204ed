//! The one interface to a drive. The erasure set above talks only to this trait, so a drive on
//! another node (over the cluster's internal RPC) slots in beside local drives.

use crate::error::Result;
use crate::meta::{BucketRecord, ObjectRecord, UploadRecord};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Identity of a drive in the deployment, written once when the drive is formatted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Format {
    pub version: u32,
    pub deployment_id: Uuid,
    pub set_index: usize,
    pub drive_index: usize,
    pub set_count: usize,
    pub set_drive_count: usize,
}

/// A part staged for a multipart upload, as recorded on one drive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub checksum: Option<String>,
    pub mod_time_ns: i64,
    /// Staging id the part's shard file came from; the part file is replaced as a whole.
    pub staging: Uuid,
}

impl PartRecord {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("records always serialize")
    }

    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        rmp_serde::from_slice(bytes).map_err(|e| format!("corrupt part record: {e}"))
    }
}

/// One atomic change to a key's record on one drive.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Commit {
    pub bucket: String,
    pub key: String,
    /// The key's new record; `None` deletes the key.
    pub record: Option<ObjectRecord>,
    /// Staging directories whose shard files become the data directories of the same ids.
    pub staged: Vec<Uuid>,
    /// Data directories to delete once this commit lands (the previous record's directories
    /// stop being referenced either way; listing them here also deletes their files).
    pub free: Vec<Uuid>,
}

/// Writes one shard file, block by block; `finish` makes it durable.
#[async_trait]
pub trait ShardWriter: Send {
    async fn write(&mut self, framed: Bytes) -> Result<()>;
    async fn finish(self: Box<Self>) -> Result<()>;
}

/// Reads framed shard blocks from one shard file.
#[async_trait]
pub trait ShardReader: Send + Sync {
    /// Reads exactly `len` bytes at `offset`.
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes>;
}

/// A listed key and its record on one drive.
pub type ListedRecord = (String, ObjectRecord);

/// Everything the erasure set needs from one drive.
#[async_trait]
pub trait Drive: Send + Sync + 'static {
    /// Human-readable location, for logs and errors.
    fn label(&self) -> &str;
    /// False while the drive is unreachable or unformatted.
    fn is_online(&self) -> bool;
    /// True for a drive of this node (it collects its own garbage and checks its own format);
    /// false for a drive another node serves.
    fn is_local(&self) -> bool {
        true
    }
    /// The drive's total and free bytes as last measured, if known.
    fn space(&self) -> Option<crate::space::Space>;

    async fn read_format(&self) -> Result<Option<Format>>;
    async fn write_format(&self, format: &Format) -> Result<()>;

    async fn put_bucket(&self, record: &BucketRecord) -> Result<()>;
    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>>;
    async fn delete_bucket(&self, name: &str) -> Result<()>;
    async fn list_buckets(&self) -> Result<Vec<BucketRecord>>;

    async fn read_record(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>>;
    async fn commit(&self, commit: Commit) -> Result<()>;
    /// Records of keys `k` with `lower <= k < upper` (byte order), at most `limit`. Listed
    /// records carry no inline object bytes (metadata only).
    async fn list_records(
        &self,
        bucket: &str,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ListedRecord>>;

    /// Starts shard file `part.N` in staging directory `staging`.
    async fn create_shard(&self, staging: Uuid, part: u32) -> Result<Box<dyn ShardWriter>>;
    /// Opens shard file `part.N` of a committed data directory.
    async fn open_shard(&self, data_dir: Uuid, part: u32) -> Result<Box<dyn ShardReader>>;
    /// Removes a staging directory that will not be committed.
    async fn discard_staging(&self, staging: Uuid) -> Result<()>;

    async fn put_upload(&self, upload: &UploadRecord) -> Result<()>;
    async fn get_upload(&self, upload_id: Uuid) -> Result<Option<UploadRecord>>;
    async fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadRecord>>;
    /// Moves staged `part.N` into the upload and records it, replacing an earlier same-numbered part.
    async fn commit_part(&self, upload_id: Uuid, part: PartRecord) -> Result<()>;
    async fn list_parts(&self, upload_id: Uuid) -> Result<Vec<PartRecord>>;
    async fn abort_upload(&self, upload_id: Uuid) -> Result<()>;
    /// Turns the upload's directory, every part file in it, into the data directory of
    /// `commit.record`'s new version.
    async fn complete_upload(&self, upload_id: Uuid, commit: Commit) -> Result<()>;
    /// Removes the part files a completed object does not list; called once the completion
    /// reached its quorum, so a rolled-back completion still has every part.
    async fn prune_parts(&self, data_dir: Uuid, keep: Vec<u32>) -> Result<()>;
    /// Undoes `complete_upload` after the completion missed its quorum: the key's record goes
    /// back to `commit.record`, and `upload` with its `parts` is open again over the same part
    /// files, so the client can retry the completion.
    async fn reopen_upload(
        &self,
        upload: &UploadRecord,
        parts: Vec<PartRecord>,
        commit: Commit,
    ) -> Result<()>;

    /// Makes sure the drive still carries its format; re-creates an empty, formatted drive when
    /// it was wiped. Returns true when the drive was (re)initialised and needs healing.
    async fn check(&self, expected: &Format) -> Result<bool>;

    /// Deletes the files of data directories that no record on this drive references.
    async fn remove_data(&self, dirs: Vec<Uuid>) -> Result<()>;

    /// Removes data no record references that was written before `before`; returns how many
    /// data directories went.
    async fn collect_garbage(&self, before: std::time::SystemTime) -> Result<usize>;
}
