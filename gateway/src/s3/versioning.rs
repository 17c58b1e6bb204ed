//! Bucket versioning (Put/GetBucketVersioning), ListObjectVersions, and how version ids and
//! a bucket's versioning state appear in requests and responses.

use super::bucket::owner;
use super::list::{encode_name, max_keys, wants_url};
use super::{etag, require_bucket, timestamp, Gateway};
use crate::s3::error::s3_err;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::meta::{BucketRecord, VersionRecord};
use storage::{VersionEntry, Versioning, Which};
use uuid::Uuid;

/// Bucket config entry holding `Enabled` or `Suspended`.
pub const VERSIONING: &str = storage::versions::VERSIONING_CONFIG;

/// A bucket's versioning state from its record.
pub fn versioning(bucket: &BucketRecord) -> Versioning {
    bucket.versioning()
}

/// Parses a `versionId` parameter: absent is the current version, `null` the null version.
pub fn which(version_id: Option<&str>) -> S3Result<Which> {
    match version_id {
        None => Ok(Which::Current),
        Some("null") => Ok(Which::Version(None)),
        Some(v) => Uuid::try_parse(v)
            .map(|id| Which::Version(Some(id)))
            .map_err(|_| s3_error!(InvalidArgument, "Invalid version id specified")),
    }
}

pub use storage::meta::version_id_text;

/// The `x-amz-version-id` a response carries: none in a bucket that was never versioned.
pub fn version_header(versioning: Versioning, version: &VersionRecord) -> Option<String> {
    (versioning != Versioning::Unversioned || version.version_id.is_some())
        .then(|| version_id_text(version.version_id))
}

/// The `x-amz-version-id` a write (PUT, POST, copy, multipart completion) answers with: only a
/// version id the write created. A write into a Suspended bucket makes the `null` version and,
/// as AWS's PutObject reference shows, answers without the header; GET and HEAD of it still
/// name it `null` (`version_header`).
pub fn written_version_header(version: &VersionRecord) -> Option<String> {
    version.version_id.map(|id| id.to_string())
}

impl Gateway {
    pub(super) async fn put_bucket_versioning_op(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        let status = input
            .versioning_configuration
            .status
            .as_ref()
            .map(|s| s.as_str().to_owned());
        let state = match status.as_deref() {
            Some("Enabled") => "Enabled",
            Some("Suspended") => "Suspended",
            _ => return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")),
        };
        if state == "Suspended" && super::lock::lock_enabled(&bucket) {
            return Err(s3_error!(
                InvalidBucketState,
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
            ));
        }
        if state == "Suspended" && bucket.config.contains_key(super::replication::REPLICATION) {
            return Err(s3_error!(
                InvalidBucketState,
                "A replication configuration is present on this bucket, so you cannot change the versioning state. To change the versioning state, first delete the replication configuration."
            ));
        }
        self.store
            .set_bucket_config(&input.bucket, VERSIONING, Some(state.as_bytes().to_vec()))
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(PutBucketVersioningOutput {}))
    }

    pub(super) async fn get_bucket_versioning_op(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = self.store.bucket(&req.input.bucket).await.map_err(s3_err)?;
        let status = match versioning(&bucket) {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            Versioning::Suspended => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..Default::default()
        }))
    }

    pub(super) async fn list_object_versions_op(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        let encode = wants_url(&input.encoding_type)?;
        let limit = max_keys(input.max_keys)?;
        let key_marker = input.key_marker.clone().unwrap_or_default();
        let version_marker = match input.version_id_marker.as_deref() {
            None | Some("") => None,
            Some(_) if key_marker.is_empty() => {
                return Err(s3_error!(
                    InvalidArgument,
                    "A version-id marker cannot be specified without a key marker."
                ))
            }
            Some(v) => match which(Some(v))? {
                Which::Version(id) => Some(id),
                Which::Current => None,
            },
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().unwrap_or_default();
        let page = self
            .store
            .list_versions(
                &input.bucket,
                &prefix,
                &delimiter,
                &key_marker,
                version_marker,
                limit,
            )
            .await
            .map_err(s3_err)?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let mut prefixes = Vec::new();
        let mut last: Option<(String, Option<String>)> = None;
        for entry in page.entries {
            match entry {
                VersionEntry::Prefix(p) => {
                    last = Some((p.clone(), None));
                    prefixes.push(CommonPrefix {
                        prefix: Some(encode_name(&p, encode)),
                    });
                }
                VersionEntry::Version {
                    key,
                    version,
                    latest,
                } => {
                    let id = version_id_text(version.version_id);
                    last = Some((key.clone(), Some(id.clone())));
                    let key = encode_name(&key, encode);
                    let modified = Some(timestamp(version.mod_time_ns));
                    match &version.object {
                        Some(obj) => versions.push(ObjectVersion {
                            e_tag: Some(etag(&obj.etag)),
                            is_latest: Some(latest),
                            key: Some(key),
                            last_modified: modified,
                            owner: Some(owner()),
                            size: Some(obj.size as i64),
                            storage_class: Some(ObjectVersionStorageClass::from(
                                obj.storage_class.clone(),
                            )),
                            version_id: Some(id),
                            ..Default::default()
                        }),
                        None => markers.push(DeleteMarkerEntry {
                            is_latest: Some(latest),
                            key: Some(key),
                            last_modified: modified,
                            owner: Some(owner()),
                            version_id: Some(id),
                        }),
                    }
                }
            }
        }
        let (next_key, next_version) = match (page.truncated, last) {
            (true, Some((k, v))) => (Some(encode_name(&k, encode)), v),
            _ => (None, None),
        };
        Ok(S3Response::new(ListObjectVersionsOutput {
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            delete_markers: (!markers.is_empty()).then_some(markers),
            delimiter: input
                .delimiter
                .filter(|d| !d.is_empty())
                .map(|d| encode_name(&d, encode)),
            encoding_type: input.encoding_type,
            is_truncated: Some(page.truncated),
            key_marker: Some(encode_name(&key_marker, encode)),
            max_keys: Some(input.max_keys.unwrap_or(1000)),
            name: Some(input.bucket),
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            prefix: Some(encode_name(&prefix, encode)),
            version_id_marker: input.version_id_marker,
            versions: (!versions.is_empty()).then_some(versions),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_parse_as_aws_spells_them() {
        assert_eq!(which(None).unwrap(), Which::Current);
        assert_eq!(which(Some("null")).unwrap(), Which::Version(None));
        let id = Uuid::now_v7();
        assert_eq!(
            which(Some(&id.to_string())).unwrap(),
            Which::Version(Some(id))
        );
        assert!(which(Some("not-a-version")).is_err());
        assert_eq!(version_id_text(None), "null");
    }
}
