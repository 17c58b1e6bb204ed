//! The per-key metadata record each drive of a set keeps: every version of the key with its
//! erasure layout, parts, checksums, user metadata and the state that versioning, object lock,
//! tiering and replication will need. Records are MessagePack with named fields, so fields can
//! be added without breaking records already on disk.

use crate::layout::ErasureLayout;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// All versions of one key as stored on one drive, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub versions: Vec<VersionRecord>,
}

impl ObjectRecord {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("records always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        rmp_serde::from_slice(bytes).map_err(|e| format!("corrupt object record: {e}"))
    }

    /// Moves every version's inline bytes out of the record, leaving empty inline data, so the
    /// record stays small where only metadata is needed (listings). Returns the bytes in
    /// version order (empty for versions stored in data directories), encoded.
    pub fn take_inline(&mut self) -> Option<Vec<u8>> {
        let mut any = false;
        let data: Vec<serde_bytes::ByteBuf> = self
            .versions
            .iter_mut()
            .map(|v| match v.object.as_mut().map(|o| &mut o.data) {
                Some(DataLocation::Inline(bytes)) => {
                    any = true;
                    serde_bytes::ByteBuf::from(std::mem::take(bytes))
                }
                _ => serde_bytes::ByteBuf::new(),
            })
            .collect();
        any.then(|| rmp_serde::to_vec(&data).expect("bytes always serialize"))
    }

    /// Puts back inline bytes taken by [`ObjectRecord::take_inline`].
    pub fn restore_inline(&mut self, encoded: &[u8]) -> Result<(), String> {
        let data: Vec<serde_bytes::ByteBuf> =
            rmp_serde::from_slice(encoded).map_err(|e| format!("corrupt inline data: {e}"))?;
        for (v, bytes) in self.versions.iter_mut().zip(data) {
            if let Some(DataLocation::Inline(slot)) = v.object.as_mut().map(|o| &mut o.data) {
                *slot = bytes.into_vec();
            }
        }
        Ok(())
    }

    /// Data directories the record's versions keep their shards in.
    pub fn data_dirs(&self) -> Vec<Uuid> {
        self.versions
            .iter()
            .filter_map(|v| match v.object.as_ref().map(|o| &o.data) {
                Some(DataLocation::Dir(id)) => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// The version a plain GET sees, if it is not a delete marker.
    pub fn latest(&self) -> Option<&VersionRecord> {
        self.versions.first()
    }
}

/// One version of a key: an object or a delete marker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// `None` is the S3 `null` version (unversioned or suspended buckets).
    pub version_id: Option<Uuid>,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mod_time_ns: i64,
    /// `None` for a delete marker.
    pub object: Option<ObjectVersion>,
    /// A delete marker that lifecycle placed (an expiration), not a client: replication
    /// leaves these where they are, as AWS does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lifecycle_marker: bool,
    /// Where replication stands for this version (objects and delete markers alike).
    #[serde(default, skip_serializing_if = "VersionReplication::is_empty")]
    pub replication: VersionReplication,
}

impl VersionRecord {
    /// What must agree across drives for two copies to be the same version (a metadata
    /// change counts: a drive that missed a retention extension must not look current).
    pub fn fingerprint(&self) -> (Option<Uuid>, i64, Option<&str>, Option<u64>, i64) {
        let obj = self.object.as_ref();
        (
            self.version_id,
            self.mod_time_ns,
            obj.map(|o| o.etag.as_str()),
            obj.map(|o| o.size),
            obj.map_or(0, |o| o.metadata_changed_ns),
        )
    }
}

/// An object version's data and metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectVersion {
    pub size: u64,
    /// Quoted-free ETag: hex MD5 for single-part objects, `md5-of-md5s-N` for multipart.
    pub etag: String,
    pub headers: ContentHeaders,
    /// `x-amz-meta-*` pairs, names lower-case without the prefix.
    pub user_metadata: BTreeMap<String, String>,
    pub checksum: Option<StoredChecksum>,
    pub storage_class: String,
    pub erasure: ErasureInfo,
    /// Parts in order; a single PUT has one part numbered 1.
    pub parts: Vec<PartInfo>,
    pub data: DataLocation,
    pub tags: BTreeMap<String, String>,
    pub retention: Option<Retention>,
    pub legal_hold: bool,
    pub transition: Option<Transition>,
    /// A restored local copy of a transitioned version, or one being made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
    /// When tags, retention or legal hold last changed in place (0: never).
    #[serde(default)]
    pub metadata_changed_ns: i64,
    /// Whether a legal hold status (ON or OFF) was ever given for this version; S3 answers
    /// GetObjectLegalHold with NoSuchObjectLockConfiguration until one is.
    #[serde(default)]
    pub legal_hold_set: bool,
}

impl ObjectVersion {
    /// Whether the version was completed from a multipart upload (its ETag is `md5-N`), even
    /// with one part.
    pub fn from_multipart(&self) -> bool {
        self.etag.contains('-')
    }

    /// Whether the version's bytes must be read from its tier (transitioned, with no restored
    /// copy here).
    pub fn reads_remote(&self) -> bool {
        self.data == DataLocation::Remote
    }
}

/// Standard HTTP headers stored with an object and returned on GET/HEAD.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-website-redirect-location`; each object's own, never copied from a source.
    #[serde(default)]
    pub website_redirect_location: Option<String>,
}

/// A client-supplied `x-amz-checksum-*`, verified on write and returned on request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1` or `SHA256`.
    pub algorithm: String,
    /// Base64 digest; for composite multipart checksums, followed by `-N`.
    pub value: String,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub kind: String,
}

/// How a version is erasure coded and which shard this drive holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureInfo {
    pub layout: ErasureLayout,
    /// Shard held by the drive this record lives on.
    pub shard_index: usize,
}

/// One part of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub checksum: Option<String>,
}

/// Where a version's shards are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataLocation {
    /// This drive's framed shards, concatenated, kept in the record (small objects).
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Shard files `part.N` in the data directory named by this id.
    Dir(Uuid),
    /// No bytes on this node: they live on the version's tier ([`ObjectVersion::transition`]).
    Remote,
}

/// Object-lock retention of a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    pub retain_until_ns: i64,
}

/// Where a transitioned version's data lives on a remote tier. The remote object holds the
/// version's bytes as one object (parts concatenated), so any byte range of the version is the
/// same range of the remote object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The tier's name (the storage class clients see).
    pub tier: String,
    /// The remote object's key, unique to this version and this transition.
    pub remote_key: String,
    /// The remote store's ETag (or GCS generation) of the object, when it reports one.
    #[serde(default)]
    pub remote_etag: Option<String>,
    /// When the transition committed, ns since the Unix epoch.
    #[serde(default)]
    pub transitioned_ns: i64,
}

/// A temporary local copy of a transitioned version (RestoreObject).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    /// The copy is still being made (`x-amz-restore: ongoing-request="true"`).
    pub ongoing: bool,
    /// When the copy expires, ns since the Unix epoch (0 while ongoing).
    pub expiry_ns: i64,
    /// The `Days` the restore asked for.
    pub days: u32,
}

/// Replication progress of a version towards one target (`x-amz-replication-status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReplicationState {
    Pending,
    Completed,
    Failed,
}

impl ReplicationState {
    /// The name S3 uses in `x-amz-replication-status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }
}

/// A version's replication towards one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReplication {
    pub status: ReplicationState,
    /// The version id the target gave its copy (a plain S3 target; a Strata target keeps
    /// ours), so later tag, retention and legal-hold changes reach the same copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_version_id: Option<String>,
}

/// Where replication stands for a version: its status per target ARN, or that it is itself a
/// replica written by another site's replication (never replicated onward).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReplication {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, TargetReplication>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replica: bool,
}

impl VersionReplication {
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && !self.replica
    }

    /// The overall status S3 reports on the source (`x-amz-replication-status`): REPLICA on a
    /// replica; else FAILED when any target failed, COMPLETED once all completed, PENDING
    /// otherwise (as AWS and MinIO aggregate several destinations); `None` for versions no rule made eligible.
    pub fn overall(&self) -> Option<&'static str> {
        if self.replica {
            return Some("REPLICA");
        }
        let states = self.targets.values().map(|t| t.status);
        if self.targets.is_empty() {
            None
        } else if states.clone().any(|s| s == ReplicationState::Failed) {
            Some("FAILED")
        } else if states.clone().all(|s| s == ReplicationState::Completed) {
            Some("COMPLETED")
        } else {
            Some("PENDING")
        }
    }
}

/// A multipart upload in progress, stored on every drive of the object's set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: String,
    pub upload_id: Uuid,
    pub initiated_ns: i64,
    pub headers: ContentHeaders,
    pub user_metadata: BTreeMap<String, String>,
    pub storage_class: String,
    /// Checksum algorithm announced at create time, if any.
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Object lock the completed version gets.
    #[serde(default)]
    pub retention: Option<Retention>,
    #[serde(default)]
    pub legal_hold: Option<bool>,
    pub erasure: ErasureInfo,
}

impl UploadRecord {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("records always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        rmp_serde::from_slice(bytes).map_err(|e| format!("corrupt upload record: {e}"))
    }
}

/// A bucket as recorded on every drive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub created_ns: i64,
    /// Named configuration documents (versioning, lifecycle, tagging, …), stored as given.
    pub config: BTreeMap<String, Vec<u8>>,
    /// When the record last changed (ns since the epoch; 0 in records written before it was
    /// kept): of two copies on different drives, the newer wins.
    #[serde(default)]
    pub updated_ns: i64,
}

impl BucketRecord {
    /// Which of two copies of a bucket's record is newer: a re-created bucket, then a later
    /// change.
    pub fn age_key(&self) -> (i64, i64) {
        (self.created_ns, self.updated_ns)
    }

    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("records always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        rmp_serde::from_slice(bytes).map_err(|e| format!("corrupt bucket record: {e}"))
    }
}

/// The creation time a UUIDv7 carries (millisecond precision), in ns since the epoch; `None`
/// for ids of other versions.
pub fn v7_time_ns(id: Uuid) -> Option<i64> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs as i64 * 1_000_000_000 + i64::from(nanos))
}

/// How a version id is written: `null` for the null version.
pub fn version_id_text(id: Option<Uuid>) -> String {
    id.map_or_else(|| "null".to_owned(), |id| id.to_string())
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A one-part object version with 1,000 inline bytes.
    pub fn object_version() -> VersionRecord {
        VersionRecord {
            version_id: None,
            mod_time_ns: 42,
            object: Some(ObjectVersion {
                size: 3,
                etag: "abc".into(),
                headers: ContentHeaders {
                    content_type: Some("text/plain".into()),
                    ..Default::default()
                },
                user_metadata: [("k".to_string(), "v".to_string())].into(),
                checksum: None,
                storage_class: "STANDARD".into(),
                erasure: ErasureInfo {
                    layout: ErasureLayout::new(4, 2).unwrap(),
                    shard_index: 1,
                },
                parts: vec![PartInfo {
                    number: 1,
                    size: 3,
                    etag: "abc".into(),
                    checksum: None,
                }],
                data: DataLocation::Inline(vec![200u8; 1000]),
                tags: BTreeMap::new(),
                retention: None,
                legal_hold: false,
                legal_hold_set: false,
                transition: None,
                restore: None,
                metadata_changed_ns: 0,
            }),
            lifecycle_marker: false,
            replication: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_inline_data_is_compact() {
        let rec = ObjectRecord {
            versions: vec![tests_support::object_version()],
        };
        let bytes = rec.encode();
        assert!(
            bytes.len() < 1500, // as an array, 1,000 bytes above 127 would take 2,000
            "inline bytes must be stored as binary, got {}",
            bytes.len()
        );
        assert_eq!(ObjectRecord::decode(&bytes).unwrap(), rec);
        assert!(ObjectRecord::decode(b"\xff\x00garbage").is_err());
        let mut slim = rec.clone();
        let inline = slim.take_inline().unwrap();
        assert!(
            slim.encode().len() + 900 < rec.encode().len(),
            "the inline bytes left the record"
        );
        slim.restore_inline(&inline).unwrap();
        assert_eq!(slim, rec);
    }
}
