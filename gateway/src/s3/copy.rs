//! CopyObject, and reading a copy source (shared with UploadPartCopy). Copies stream the
//! source through the write path: new shards, same bytes.

use super::acl::check_object_acl;
use super::bucket_lifecycle::expiration_of_version;
use super::checksum::{fill_checksums, Algorithm};
use super::lock::new_version_lock;
use super::put::write_precondition;
use super::put::StagedBody;
use super::versioning::{version_header, versioning, which, written_version_header};
use super::{
    content_headers, etag, parse_tagging, redirect_location, storage_class, timestamp,
    user_metadata, Gateway,
};
use crate::s3::error::s3_err;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::meta::{ContentHeaders, ObjectVersion, StoredChecksum};
use storage::{ByteStream, PutOptions, StorageError};

/// Conditions on the copy source (`x-amz-copy-source-if-*`); any failure is a 412.
pub struct SourceConditions {
    pub if_match: Option<ETagCondition>,
    pub if_none_match: Option<ETagCondition>,
    pub if_modified_since: Option<Timestamp>,
    pub if_unmodified_since: Option<Timestamp>,
}

fn secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn matches(c: &ETagCondition, etag: &str) -> bool {
    match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

impl SourceConditions {
    fn check(&self, obj: &ObjectVersion, mod_time_ns: i64) -> S3Result<()> {
        let modified = mod_time_ns.div_euclid(1_000_000_000);
        let failed = self
            .if_match
            .as_ref()
            .is_some_and(|c| !matches(c, &obj.etag))
            || self
                .if_none_match
                .as_ref()
                .is_some_and(|c| matches(c, &obj.etag))
            || (self.if_match.is_none()
                && self
                    .if_unmodified_since
                    .as_ref()
                    .is_some_and(|t| modified > secs(t)))
            || (self.if_none_match.is_none()
                && self
                    .if_modified_since
                    .as_ref()
                    .is_some_and(|t| modified <= secs(t)));
        if failed {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
        Ok(())
    }
}

/// A copy source opened for reading.
pub struct Source {
    pub object: ObjectVersion,
    /// The source version's `x-amz-version-id`, as a GET of it would show.
    pub version_id: Option<String>,
    pub body: ByteStream,
    pub len: u64,
}

/// Parses `x-amz-copy-source-range: bytes=a-b` against the source size.
pub fn source_range(range: Option<&str>, size: u64) -> S3Result<Option<(u64, u64)>> {
    let Some(r) = range else { return Ok(None) };
    // A malformed range is InvalidArgument; a well-formed one outside the source InvalidRange.
    let malformed = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (a, b) = r
        .strip_prefix("bytes=")
        .and_then(|spec| spec.split_once('-'))
        .ok_or_else(malformed)?;
    let (a, b): (u64, u64) = (
        a.parse().map_err(|_| malformed())?,
        b.parse().map_err(|_| malformed())?,
    );
    if a > b {
        return Err(malformed());
    }
    if b >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        ));
    }
    Ok(Some((a, b + 1)))
}

impl Gateway {
    /// Opens the source of a copy, checking its conditions; `range` is `start..end`.
    pub(super) async fn open_source(
        &self,
        source: &CopySource,
        conditions: &SourceConditions,
        range: Option<&str>,
    ) -> S3Result<Source> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(s3_error!(
                NotImplemented,
                "Copying from an access point is not supported"
            ));
        };
        let record = self.store.bucket(bucket).await.map_err(s3_err)?;
        let set = self.store.set_for(bucket, key);
        let view = match set.view(bucket, key, which(version_id.as_deref())?).await {
            Err(StorageError::DeleteMarker { addressed: true, .. }) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "The source of a copy request may not specifically refer to a delete marker by version id."
                ))
            }
            r => r.map_err(s3_err)?,
        };
        let source_version = version_header(versioning(&record), &view.version);
        let object = view.object().clone();
        let mod_time_ns = view.version.mod_time_ns;
        conditions.check(&object, mod_time_ns)?;
        let (start, end) = source_range(range, object.size)?.unwrap_or((0, object.size));
        let mut rx = self.version_body(bucket, key, view, start, end).await?;
        let body: ByteStream = Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        Ok(Source {
            object,
            version_id: source_version,
            body,
            len: end - start,
        })
    }

    pub(super) async fn copy_object_op(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let target = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        check_object_acl!(input)?;
        let precondition = write_precondition(&req.headers)?;
        let state = versioning(&target);
        let (retention, legal_hold) = new_version_lock(
            &target,
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.as_ref(),
            None,
        )?;
        let conditions = SourceConditions {
            if_match: input.copy_source_if_match,
            if_none_match: input.copy_source_if_none_match,
            if_modified_since: input.copy_source_if_modified_since,
            if_unmodified_since: input.copy_source_if_unmodified_since,
        };
        let replace_meta = match input.metadata_directive.as_ref().map(|d| d.as_str()) {
            None | Some(MetadataDirective::COPY) => false,
            Some(MetadataDirective::REPLACE) => true,
            Some(_) => return Err(s3_error!(InvalidArgument, "Unknown metadata directive.")),
        };
        let replace_tags = match input.tagging_directive.as_ref().map(|d| d.as_str()) {
            None | Some(TaggingDirective::COPY) => false,
            Some(TaggingDirective::REPLACE) => true,
            Some(_) => return Err(s3_error!(InvalidArgument, "Unknown tagging directive.")),
        };
        if let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = &input.copy_source
        {
            // Copying an older version onto its own key is how a version is restored.
            let same = **bucket == *input.bucket && **key == *input.key && version_id.is_none();
            let changes = replace_meta
                || replace_tags
                || input.storage_class.is_some()
                || input.website_redirect_location.is_some();
            if same && !changes {
                return Err(s3_error!(
                    InvalidRequest,
                    "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
                ));
            }
        }
        let source = self
            .open_source(&input.copy_source, &conditions, None)
            .await?;
        let src = source.object.clone();
        let (headers, user_meta) = if replace_meta {
            let h = content_headers(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.expires,
                input.website_redirect_location,
            )?;
            (h, user_metadata(input.metadata)?)
        } else {
            let headers = ContentHeaders {
                website_redirect_location: redirect_location(input.website_redirect_location)?,
                ..src.headers.clone()
            };
            (headers, src.user_metadata.clone())
        };
        let tags = if replace_tags {
            parse_tagging(input.tagging.as_deref())?
        } else {
            src.tags.clone()
        };
        let class = match input.storage_class {
            Some(c) => storage_class(Some(c))?,
            // A copy of a tiered version is a new hot version.
            None if src.transition.is_some() => "STANDARD".into(),
            None => src.storage_class.clone(),
        };
        let algorithm = input
            .checksum_algorithm
            .as_ref()
            .and_then(|a| Algorithm::from_name(a.as_str()))
            .or_else(|| {
                src.checksum
                    .as_ref()
                    .and_then(|c| Algorithm::from_name(&c.algorithm))
            });
        let StagedBody { staged, computed } = self
            .stage_body(&input.bucket, &input.key, source.body, algorithm, 1, true)
            .await?;
        if staged.size != source.len {
            return Err(s3_err(StorageError::IncompleteBody(
                "the copy source changed while it was read".into(),
            )));
        }
        let checksum = computed.map(|(a, v)| StoredChecksum {
            algorithm: a.name().into(),
            value: v,
            kind: "FULL_OBJECT".into(),
        });
        let opts = PutOptions {
            headers,
            user_metadata: user_meta,
            storage_class: class,
            tags,
            checksum: checksum.clone(),
            versioning: state,
            retention,
            legal_hold,
            precondition,
            replica: None,
        };
        let set = self.store.set_for(&input.bucket, &input.key);
        let version = set
            .commit_object(&input.bucket, &input.key, staged, opts)
            .await
            .map_err(s3_err)?;
        let mut result = CopyObjectResult {
            e_tag: version.object.as_ref().map(|o| etag(&o.etag)),
            last_modified: Some(timestamp(version.mod_time_ns)),
            ..Default::default()
        };
        if let Some(c) = checksum {
            fill_checksums!(result, super::checksum::of_stored(&c));
            result.checksum_type = Some(ChecksumType::from(c.kind));
        }
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(result),
            copy_source_version_id: source.version_id,
            version_id: written_version_header(&version),
            expiration: version.object.as_ref().and_then(|o| {
                expiration_of_version(
                    &target,
                    &input.key,
                    o,
                    version.mod_time_ns,
                    self.lifecycle_clock,
                )
            }),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_ranges() {
        assert_eq!(source_range(None, 10).unwrap(), None);
        assert_eq!(source_range(Some("bytes=0-9"), 10).unwrap(), Some((0, 10)));
        assert_eq!(source_range(Some("bytes=2-2"), 10).unwrap(), Some((2, 3)));
        let code = |r| {
            source_range(Some(r), 10)
                .unwrap_err()
                .code()
                .as_str()
                .to_owned()
        };
        assert_eq!(code("bytes=5-10"), "InvalidRange");
        for malformed in ["bytes=5-4", "0-4", "bytes=0", "bytes=0-2,3-5", "bytes=a-b"] {
            assert_eq!(code(malformed), "InvalidArgument", "{malformed}");
        }
    }
}
