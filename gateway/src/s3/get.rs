//! GetObject and HeadObject: conditional headers, ranges and part numbers, response header
//! overrides, and the streamed body.

use super::bucket_lifecycle::expiration_of_version;
use super::checksum::{self, Algorithm};
use super::last_modified;
use super::versioning::{version_header, versioning};
use super::{etag, stored_checksum, timestamp, Gateway};
use crate::s3::error::s3_err;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};
use std::sync::Arc;
use storage::meta::{ContentHeaders, ObjectVersion};
use storage::ObjectView;

/// The byte range a GET or HEAD serves, and whether it was asked for (206).
struct Served {
    start: u64,
    end: u64,
    partial: bool,
    parts_count: Option<i32>,
    /// The part a `partNumber` request asked for (1-based).
    part: Option<usize>,
}

impl Served {
    /// The `Content-Range` of a partial answer.
    fn content_range(&self, size: u64) -> Option<String> {
        self.partial.then(|| {
            format!(
                "bytes {}-{}/{}",
                self.start,
                self.end.saturating_sub(1),
                size
            )
        })
    }

    /// The checksum a GET or HEAD reports when the client asked for it (`checksum_mode`): the
    /// stored one for the whole object; for `partNumber=N` of an object uploaded in parts with
    /// checksums, that part's checksum and the object's checksum type, as S3 answers; none
    /// for a byte range.
    fn checksum(
        &self,
        obj: &ObjectVersion,
        mode: Option<&ChecksumMode>,
    ) -> (Checksum, Option<ChecksumType>) {
        let whole = stored_checksum(obj, mode);
        match self.part {
            None if self.partial => Default::default(),
            Some(n) if obj.from_multipart() => {
                let value = obj.parts[n - 1]
                    .checksum
                    .clone()
                    .filter(|_| whole.1.is_some());
                let algorithm = obj
                    .checksum
                    .as_ref()
                    .and_then(|c| Algorithm::from_name(&c.algorithm));
                match (algorithm, value) {
                    (Some(a), Some(v)) => (checksum::single(a, v), whole.1),
                    _ => Default::default(),
                }
            }
            _ => whole,
        }
    }
}

/// Conditional request headers.
struct Conditions {
    if_match: Option<IfMatch>,
    if_none_match: Option<IfNoneMatch>,
    if_modified_since: Option<IfModifiedSince>,
    if_unmodified_since: Option<IfUnmodifiedSince>,
}

/// The conditions of a `GetObjectInput` or `HeadObjectInput` (s3s types that share no trait).
macro_rules! conditions_of {
    ($input:expr) => {
        Conditions {
            if_match: $input.if_match,
            if_none_match: $input.if_none_match,
            if_modified_since: $input.if_modified_since,
            if_unmodified_since: $input.if_unmodified_since,
        }
    };
}

fn condition_matches(cond: &ETagCondition, current: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == current,
    }
}

fn seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

/// Evaluates conditions in the order RFC 9110 and S3 use: If-Match, else If-Unmodified-Since
/// (412); then If-None-Match, else If-Modified-Since (304).
fn check_conditions(c: &Conditions, obj: &ObjectVersion, mod_time_ns: i64) -> S3Result<()> {
    let modified = mod_time_ns.div_euclid(1_000_000_000);
    match (&c.if_match, &c.if_unmodified_since) {
        (Some(m), _) if !condition_matches(m, &obj.etag) => {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
        (None, Some(t)) if modified > seconds(t) => {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
        _ => {}
    }
    match (&c.if_none_match, &c.if_modified_since) {
        (Some(m), _) if condition_matches(m, &obj.etag) => Err(not_modified(obj, mod_time_ns)),
        (None, Some(t)) if modified <= seconds(t) => Err(not_modified(obj, mod_time_ns)),
        _ => Ok(()),
    }
}

/// A 304 carries the validators a cache needs to refresh its copy (RFC 9110 §15.4.5).
fn not_modified(obj: &ObjectVersion, mod_time_ns: i64) -> S3Error {
    let mut e = s3_error!(NotModified);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", obj.etag)) {
        headers.insert(http::header::ETAG, v);
    }
    if let Some(v) = last_modified(mod_time_ns) {
        headers.insert(http::header::LAST_MODIFIED, v);
    }
    e.set_headers(headers);
    e
}

fn served(
    obj: &ObjectVersion,
    range: Option<Range>,
    part_number: Option<PartNumber>,
) -> S3Result<Served> {
    if let Some(n) = part_number {
        if range.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter"
            ));
        }
        let index = usize::try_from(n)
            .ok()
            .filter(|i| *i >= 1 && *i <= obj.parts.len())
            .ok_or_else(|| {
                super::custom_error(
                    "InvalidPartNumber",
                    http::StatusCode::RANGE_NOT_SATISFIABLE,
                    "The requested partnumber is not satisfiable",
                )
            })?;
        let start: u64 = obj.parts[..index - 1].iter().map(|p| p.size).sum();
        let end = start + obj.parts[index - 1].size;
        return Ok(Served {
            start,
            end,
            partial: true,
            // S3 counts parts only of objects uploaded in parts.
            parts_count: obj.from_multipart().then_some(obj.parts.len() as i32),
            part: Some(index),
        });
    }
    match range {
        None => Ok(Served {
            start: 0,
            end: obj.size,
            partial: false,
            parts_count: None,
            part: None,
        }),
        Some(r) => {
            // An empty span (a suffix range of a 0-byte object) is unsatisfiable too.
            let span = r
                .check(obj.size)
                .ok()
                .filter(|span| span.start < span.end)
                .ok_or_else(|| s3_error!(InvalidRange, "The requested range is not satisfiable"))?;
            Ok(Served {
                start: span.start,
                end: span.end,
                partial: true,
                parts_count: None,
                part: None,
            })
        }
    }
}

fn parse_http_date(s: &Option<String>) -> Option<Timestamp> {
    s.as_deref()
        .and_then(|s| Timestamp::parse(TimestampFormat::HttpDate, s).ok())
}

/// The object-lock state GET and HEAD report.
struct LockHeaders {
    mode: Option<ObjectLockMode>,
    until: Option<Timestamp>,
    hold: Option<ObjectLockLegalHoldStatus>,
}

impl LockHeaders {
    fn of(obj: &ObjectVersion) -> Self {
        let r = obj.retention.as_ref();
        Self {
            mode: r.map(|r| ObjectLockMode::from(r.mode.clone())),
            until: r.map(|r| timestamp(r.retain_until_ns)),
            hold: obj
                .legal_hold
                .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
        }
    }
}

/// Response overrides (`response-content-type=…`) replace stored headers.
struct Overrides {
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    content_type: Option<ContentType>,
    expires: Option<Timestamp>,
}

/// The `response-*` overrides of a `GetObjectInput` or `HeadObjectInput`.
macro_rules! overrides_of {
    ($input:expr) => {
        Overrides {
            cache_control: $input.response_cache_control,
            content_disposition: $input.response_content_disposition,
            content_encoding: $input.response_content_encoding,
            content_language: $input.response_content_language,
            content_type: $input.response_content_type,
            expires: $input.response_expires,
        }
    };
}

impl Overrides {
    /// The headers a response carries: each override, else the stored header.
    fn over(self, h: &ContentHeaders) -> Self {
        Self {
            cache_control: self.cache_control.or_else(|| h.cache_control.clone()),
            content_disposition: self
                .content_disposition
                .or_else(|| h.content_disposition.clone()),
            content_encoding: self.content_encoding.or_else(|| h.content_encoding.clone()),
            content_language: self.content_language.or_else(|| h.content_language.clone()),
            // S3 labels an object stored without a type as it was sent: plain bytes.
            content_type: self
                .content_type
                .or_else(|| h.content_type.as_deref().and_then(|t| t.parse().ok()))
                .or_else(|| "binary/octet-stream".parse().ok()),
            expires: self.expires.or_else(|| parse_http_date(&h.expires)),
        }
    }
}

/// `x-amz-restore` of a transitioned version with a restored copy, or one being made, as
/// S3 reports it.
fn restore_header(obj: &ObjectVersion) -> Option<String> {
    let r = obj.restore.as_ref()?;
    if r.ongoing {
        return Some("ongoing-request=\"true\"".into());
    }
    let expiry = super::http_date(&timestamp(r.expiry_ns))?;
    Some(format!(
        "ongoing-request=\"false\", expiry-date=\"{expiry}\""
    ))
}

/// A tier that cannot be read: 503, naming the tier; nothing about the object changes.
fn tier_unavailable(message: String) -> S3Error {
    let mut e = S3Error::with_message(s3s::S3ErrorCode::ServiceUnavailable, message);
    e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
    e
}

impl Gateway {
    /// Bytes `start..end` of the view's version, streamed through a small channel: from the
    /// hot tier's shards, or from the remote tier a transitioned version lives on (a
    /// restored copy is local).
    pub(super) async fn version_body(
        &self,
        bucket: &str,
        key: &str,
        view: ObjectView,
        start: u64,
        end: u64,
    ) -> S3Result<tokio::sync::mpsc::Receiver<storage::Result<bytes::Bytes>>> {
        use futures::StreamExt;
        let obj = view.object();
        if let Some(t) = obj.transition.as_ref().filter(|_| obj.reads_remote()) {
            let mut stream = self
                .tiering
                .read(&t.tier, &t.remote_key, start, end)
                .await
                .map_err(tier_unavailable)?;
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            tokio::spawn(async move {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| storage::StorageError::Body(e.to_string()));
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                }
            });
            return Ok(rx);
        }
        let set = Arc::clone(self.store.set_for(bucket, key));
        Ok(set.read_range(bucket, key, view, start, end))
    }

    /// The addressed version, the `x-amz-version-id` to show for it, and for the current
    /// version the `x-amz-expiration` a lifecycle rule gives it.
    pub(super) async fn read_view(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<(ObjectView, Option<String>, Option<String>)> {
        let record = self.store.bucket(bucket).await.map_err(s3_err)?;
        let view = self.version_view(bucket, key, version_id).await?;
        let shown = version_header(versioning(&record), &view.version);
        let expiration = (view.index == 0)
            .then(|| {
                expiration_of_version(
                    &record,
                    key,
                    view.object(),
                    view.version.mod_time_ns,
                    self.lifecycle_clock,
                )
            })
            .flatten();
        Ok((view, shown, expiration))
    }

    pub(super) async fn get_object_op(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (view, version_id, expiration) = self
            .read_view(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        let conditions = conditions_of!(input);
        let mod_time = view.version.mod_time_ns;
        let replication_status = view.version.replication.overall();
        check_conditions(&conditions, view.object(), mod_time)?;
        let span = served(view.object(), input.range, input.part_number)?;
        let set = Arc::clone(self.store.set_for(&input.bucket, &input.key));
        let (bucket, key) = (&input.bucket, &input.key);
        let (body, obj) = match set
            .read_inline(bucket, key, &view, span.start, span.end)
            .await
        {
            Some(bytes) => (
                StreamingBlob::from(s3s::Body::from(bytes.map_err(s3_err)?)),
                view.into_object(),
            ),
            None => {
                let obj = view.object().clone();
                let mut rx = self
                    .version_body(bucket, key, view, span.start, span.end)
                    .await?;
                let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
                (StreamingBlob::wrap(stream), obj)
            }
        };
        let (checksum, checksum_type) = span.checksum(&obj, input.checksum_mode.as_ref());
        let o = overrides_of!(input).over(&obj.headers);
        let lock = LockHeaders::of(&obj);
        let out = GetObjectOutput {
            body: Some(body),
            accept_ranges: Some("bytes".into()),
            content_length: Some((span.end - span.start) as i64),
            content_range: span.content_range(obj.size),
            parts_count: span.parts_count,
            e_tag: Some(etag(&obj.etag)),
            last_modified: Some(timestamp(mod_time)),
            metadata: (!obj.user_metadata.is_empty())
                .then(|| obj.user_metadata.clone().into_iter().collect()),
            cache_control: o.cache_control,
            content_disposition: o.content_disposition,
            content_encoding: o.content_encoding,
            content_language: o.content_language,
            content_type: o.content_type,
            expires: o.expires,
            storage_class: (obj.storage_class != "STANDARD")
                .then(|| StorageClass::from(obj.storage_class.clone())),
            tag_count: (!obj.tags.is_empty()).then_some(obj.tags.len() as i32),
            version_id,
            expiration,
            object_lock_mode: lock.mode,
            object_lock_retain_until_date: lock.until,
            object_lock_legal_hold_status: lock.hold,
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_type,
            website_redirect_location: obj.headers.website_redirect_location.clone(),
            restore: restore_header(&obj),
            replication_status: replication_status.map(ReplicationStatus::from_static),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }

    pub(super) async fn head_object_op(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let (view, version_id, expiration) = self
            .read_view(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        let obj = view.object();
        let conditions = conditions_of!(input);
        check_conditions(&conditions, obj, view.version.mod_time_ns)?;
        let span = served(obj, input.range, input.part_number)?;
        let (checksum, checksum_type) = span.checksum(obj, input.checksum_mode.as_ref());
        let o = overrides_of!(input).over(&obj.headers);
        let lock = LockHeaders::of(obj);
        let out = HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some((span.end - span.start) as i64),
            content_range: span.content_range(obj.size),
            parts_count: span.parts_count,
            e_tag: Some(etag(&obj.etag)),
            last_modified: Some(timestamp(view.version.mod_time_ns)),
            metadata: (!obj.user_metadata.is_empty())
                .then(|| obj.user_metadata.clone().into_iter().collect()),
            cache_control: o.cache_control,
            content_disposition: o.content_disposition,
            content_encoding: o.content_encoding,
            content_language: o.content_language,
            content_type: o.content_type,
            expires: o.expires,
            storage_class: (obj.storage_class != "STANDARD")
                .then(|| StorageClass::from(obj.storage_class.clone())),
            version_id,
            expiration,
            object_lock_mode: lock.mode,
            object_lock_retain_until_date: lock.until,
            object_lock_legal_hold_status: lock.hold,
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_type,
            website_redirect_location: obj.headers.website_redirect_location.clone(),
            restore: restore_header(obj),
            replication_status: view
                .version
                .replication
                .overall()
                .map(ReplicationStatus::from_static),
            ..Default::default()
        };
        let mut resp = S3Response::new(out);
        // S3 sends the tag count on HEAD too; s3s's HeadObjectOutput has no field for it.
        if !obj.tags.is_empty() {
            resp.headers.insert(
                "x-amz-tagging-count",
                http::HeaderValue::from(obj.tags.len()),
            );
        }
        Ok(resp)
    }
}
