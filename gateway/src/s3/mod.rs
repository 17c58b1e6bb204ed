//! The S3 API: s3s parses requests, checks signatures and writes responses; this module maps
//! each operation onto the store. One file per operation family:
//! `bucket` (create, delete, head, list, location), `put`, `post` (browser-form uploads, whose
//! form `crate::post_form` settles first), `get` (GET and HEAD), `list`, `delete`, `copy`,
//! `multipart`, `versioning` (bucket state, version listing), `lock` (object lock), `tagging`,
//! `acl` (owner-only ACLs), `attributes` (GetObjectAttributes); `checksum` and `error` are
//! shared.

mod acl;
mod attributes;
mod bucket;
mod bucket_lifecycle;
pub use bucket::REGION;
pub use bucket_lifecycle::lifecycle_configuration;
pub use put::content_md5;
pub use tagging::parse_tagging;
pub mod checksum;
mod copy;
mod delete;
pub mod error;
mod get;
mod list;
mod lock;
mod multipart;
mod post;
mod put;
pub mod replication;
mod restore;
mod tagging;
mod versioning;

use crate::s3::error::s3_err;
use bytes::Bytes;
use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};
use std::collections::BTreeMap;
use std::sync::Arc;
use storage::meta::{ContentHeaders, ObjectVersion};
use storage::{ByteStream, StorageError, Store};

/// Largest object a single PUT may carry (AWS: 5 GiB).
pub const MAX_PUT_SIZE: i64 = 5 * 1024 * 1024 * 1024;
/// Largest user metadata (AWS: 2 KiB of `x-amz-meta-*` names and values).
pub const MAX_USER_METADATA: usize = 2 * 1024;
/// Bucket names the gateway keeps for its own API paths.
pub const RESERVED_BUCKETS: [&str; 1] = ["strata"];

/// The S3 front of a node.
#[derive(Clone)]
pub struct Gateway {
    pub store: Arc<Store>,
    /// The length of a lifecycle day (due times in `x-amz-expiration` and abort headers).
    pub lifecycle_clock: lifecycle::Clock,
    /// Remote tiers: where transitioned versions are read from, restores.
    pub tiering: Arc<tiering::Tiering>,
    /// Bucket replication: configurations, targets, the queue.
    pub replicator: Arc<replicator::Replicator>,
}

/// Nanoseconds since the epoch as an S3 timestamp (second precision, as S3 reports).
pub fn timestamp(ns: i64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t.replace_nanosecond(0).expect("0 is valid"))
}

/// A timestamp as an HTTP date, the form of `Expires` and `Last-Modified`.
pub fn http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// A `Last-Modified` header value for a modification time.
pub fn last_modified(mod_time_ns: i64) -> Option<http::HeaderValue> {
    http::HeaderValue::try_from(http_date(&timestamp(mod_time_ns))?).ok()
}

pub fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

/// A request body as the store's byte stream.
pub fn body_stream(body: Option<StreamingBlob>) -> ByteStream {
    match body {
        Some(blob) => Box::pin(blob.map(|r| r.map_err(|e| StorageError::Body(e.to_string())))),
        None => Box::pin(futures::stream::empty::<storage::Result<Bytes>>()),
    }
}

/// Standard headers a PUT, copy or multipart create stores.
pub fn content_headers(
    content_type: Option<ContentType>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
    website_redirect_location: Option<String>,
) -> S3Result<ContentHeaders> {
    Ok(ContentHeaders {
        content_type: content_type.map(|c| c.to_string()),
        content_encoding: content_encoding.and_then(|e| stored_encoding(&e)),
        content_disposition,
        content_language,
        cache_control,
        expires: expires.as_ref().and_then(http_date),
        website_redirect_location: redirect_location(website_redirect_location)?,
    })
}

/// The `Content-Encoding` an object keeps: the client's list without `aws-chunked`, which only
/// describes how the request body was framed (`gzip, aws-chunked` is stored as `gzip`;
/// `aws-chunked` alone leaves none), as S3 stores it.
fn stored_encoding(sent: &str) -> Option<String> {
    if !sent.to_ascii_lowercase().contains("aws-chunked") {
        return Some(sent.to_owned());
    }
    let kept: Vec<&str> = sent
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// Checks an `x-amz-website-redirect-location` as S3 does: a path in the bucket or a URL.
pub fn redirect_location(value: Option<String>) -> S3Result<Option<String>> {
    const MAX_LEN: usize = 2048;
    match value {
        Some(v)
            if !["/", "http://", "https://"].iter().any(|p| v.starts_with(p))
                || v.len() > MAX_LEN =>
        {
            Err(custom_error(
                "InvalidRedirectLocation",
                http::StatusCode::BAD_REQUEST,
                "The website redirect location must have a prefix of 'http://' or 'https://' or '/'.",
            ))
        }
        v => Ok(v),
    }
}

/// Validates and normalises `x-amz-meta-*` pairs.
pub fn user_metadata(metadata: Option<Metadata>) -> S3Result<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> = metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let size: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size."
        ));
    }
    Ok(map)
}

/// Only the storage classes of the hot tier are accepted.
pub fn storage_class(class: Option<StorageClass>) -> S3Result<String> {
    match class.as_ref().map(|c| c.as_str()) {
        None | Some("STANDARD") => Ok("STANDARD".into()),
        Some("REDUCED_REDUNDANCY") => Ok("REDUCED_REDUNDANCY".into()),
        Some(other) => Err(S3Error::with_message(
            S3ErrorCode::InvalidStorageClass,
            format!("The storage class {other} is not valid."),
        )),
    }
}

/// An AWS error code s3s has no variant for.
pub fn custom_error(
    code: &'static str,
    status: http::StatusCode,
    message: &'static str,
) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into()), message);
    e.set_status_code(status);
    e
}

impl Gateway {
    /// The version of a key that a `versionId` parameter addresses (the current one without).
    pub async fn version_view(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<storage::ObjectView> {
        self.store
            .set_for(bucket, key)
            .view(bucket, key, versioning::which(version_id)?)
            .await
            .map_err(s3_err)
    }
}

/// Fails with `NoSuchBucket` unless the bucket exists.
pub async fn require_bucket(store: &Store, bucket: &str) -> S3Result<()> {
    store.bucket(bucket).await.map(drop).map_err(s3_err)
}

/// The checksum stored with a version, as response fields, when the client asked for it.
pub fn stored_checksum(
    obj: &ObjectVersion,
    mode: Option<&ChecksumMode>,
) -> (Checksum, Option<ChecksumType>) {
    let enabled = mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED);
    match obj.checksum.as_ref().filter(|_| enabled) {
        Some(c) => (
            checksum::of_stored(c),
            Some(ChecksumType::from(c.kind.clone())),
        ),
        None => (Checksum::default(), None),
    }
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.list_buckets_op(req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.create_bucket_op(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.head_bucket_op(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.delete_bucket_op(req).await
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        self.get_bucket_acl_op(req).await
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        self.put_bucket_acl_op(req).await
    }

    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        self.get_object_acl_op(req).await
    }

    async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        self.put_object_acl_op(req).await
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        self.get_object_attributes_op(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.get_bucket_location_op(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.put_object_op(req).await
    }

    async fn post_object(
        &self,
        req: S3Request<PostObjectInput>,
    ) -> S3Result<S3Response<PostObjectOutput>> {
        self.post_object_op(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.get_object_op(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.head_object_op(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.delete_object_op(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.delete_objects_op(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.copy_object_op(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.list_objects_op(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.list_objects_v2_op(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.create_multipart_upload_op(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.upload_part_op(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.upload_part_copy_op(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.complete_multipart_upload_op(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.abort_multipart_upload_op(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.list_parts_op(req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.list_multipart_uploads_op(req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        self.put_bucket_versioning_op(req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.get_bucket_versioning_op(req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        self.list_object_versions_op(req).await
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        self.put_object_lock_configuration_op(req).await
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        self.get_object_lock_configuration_op(req).await
    }

    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        self.put_object_retention_op(req).await
    }

    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        self.get_object_retention_op(req).await
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        self.put_object_legal_hold_op(req).await
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        self.get_object_legal_hold_op(req).await
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        self.put_object_tagging_op(req).await
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        self.get_object_tagging_op(req).await
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        self.delete_object_tagging_op(req).await
    }

    async fn restore_object(
        &self,
        req: S3Request<RestoreObjectInput>,
    ) -> S3Result<S3Response<RestoreObjectOutput>> {
        self.restore_object_op(req).await
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        self.put_bucket_lifecycle_configuration_op(req).await
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        self.get_bucket_lifecycle_configuration_op(req).await
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        self.delete_bucket_lifecycle_op(req).await
    }

    async fn put_bucket_replication(
        &self,
        req: S3Request<PutBucketReplicationInput>,
    ) -> S3Result<S3Response<PutBucketReplicationOutput>> {
        self.put_bucket_replication_op(req).await
    }

    async fn get_bucket_replication(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        self.get_bucket_replication_op(req).await
    }

    async fn delete_bucket_replication(
        &self,
        req: S3Request<DeleteBucketReplicationInput>,
    ) -> S3Result<S3Response<DeleteBucketReplicationOutput>> {
        self.delete_bucket_replication_op(req).await
    }

    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        self.put_bucket_tagging_op(req).await
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        self.get_bucket_tagging_op(req).await
    }

    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        self.delete_bucket_tagging_op(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_not_a_stored_encoding() {
        assert_eq!(
            stored_encoding("gzip, aws-chunked").as_deref(),
            Some("gzip")
        );
        assert_eq!(stored_encoding("aws-chunked,gzip").as_deref(), Some("gzip"));
        assert_eq!(stored_encoding("aws-chunked"), None);
        assert_eq!(stored_encoding("gzip,br").as_deref(), Some("gzip,br"));
    }

    #[test]
    fn metadata_is_lower_cased_and_bounded() {
        let mut m = Metadata::new();
        m.insert("Color".into(), "blue".into());
        assert_eq!(user_metadata(Some(m)).unwrap()["color"], "blue");
        let mut big = Metadata::new();
        big.insert("k".into(), "v".repeat(MAX_USER_METADATA));
        assert!(user_metadata(Some(big)).is_err());
    }
}
