//! The S3 client of one replication target (`aws-sdk-s3`): the calls a replica needs, each
//! carrying the source version's identity in Strata's replica headers (signed, so a proxy
//! cannot add them), which a Strata target honours and any other S3 ignores.

use crate::targets::TargetConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkBody;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockRetention, ObjectLockRetentionMode, StorageClass, Tag,
    Tagging,
};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use storage::meta::{version_id_text, ContentHeaders};
use storage::ReplicaOf;

/// The source version id of a replica (`null` for the null version); only a replication
/// identity may send it, in a signed header.
pub const REPLICA_VERSION_HEADER: &str = "x-strata-replica-version-id";
/// The source version's modification time, ns since the epoch.
pub const REPLICA_MTIME_HEADER: &str = "x-strata-replica-mtime";

pub struct TargetClient {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// What a replica is written with besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct ObjectMeta {
    pub headers: ContentHeaders,
    pub user_metadata: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// (mode, retain until as RFC 3339)
    pub retention: Option<(String, String)>,
    pub legal_hold: Option<bool>,
    pub storage_class: Option<String>,
}

/// One part of a multipart replica: number, size, Content-MD5 and body.
pub type SourcePart = (u32, u64, Option<String>, SdkBody);

/// A failed call: the target's error code (if it gave one) and a message for operators.
#[derive(Clone, Debug)]
pub struct SendError(pub String);

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> SendError {
    match &e {
        SdkError::ServiceError(s) => SendError(format!(
            "{}: {} (HTTP {})",
            s.err().code().unwrap_or("error"),
            s.err()
                .message()
                .unwrap_or("the target refused the request"),
            s.raw().status().as_u16()
        )),
        _ => SendError(format!("{}", DisplayErrorContext(&e))),
    }
}

/// A body fed by a channel, so a version's bytes stream into a PUT.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, String>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match self.0.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A streamed request body from a channel of chunks.
pub fn streamed(rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>) -> SdkBody {
    SdkBody::from_body_1_x(ChannelBody(rx))
}

fn rfc3339_to_datetime(s: &str) -> Result<aws_sdk_s3::primitives::DateTime, SendError> {
    aws_sdk_s3::primitives::DateTime::from_str(s, aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .map_err(|e| SendError(format!("bad retention date {s}: {e}")))
}

fn http_date(value: Option<&str>) -> Option<aws_sdk_s3::primitives::DateTime> {
    aws_sdk_s3::primitives::DateTime::from_str(
        value?,
        aws_sdk_s3::primitives::DateTimeFormat::HttpDate,
    )
    .ok()
}

fn tag_query(tags: &BTreeMap<String, String>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(tags)
        .finish()
}

macro_rules! replica {
    ($builder:expr, $of:expr) => {{
        let of: Option<ReplicaOf> = $of;
        $builder.customize().mutate_request(move |req| {
            if let Some(of) = of {
                req.headers_mut()
                    .insert(REPLICA_VERSION_HEADER, version_id_text(of.version_id));
                req.headers_mut()
                    .insert(REPLICA_MTIME_HEADER, of.mod_time_ns.to_string());
            }
        })
    }};
}

/// Sets what a replica is written with besides its bytes (the same setters on PutObject and
/// CreateMultipartUpload): content headers, user metadata, storage class, tags, object lock.
macro_rules! with_meta {
    ($req:expr, $meta:expr) => {{
        let meta: &ObjectMeta = $meta;
        let h = &meta.headers;
        let mut req = $req
            .set_content_type(h.content_type.clone())
            .set_content_encoding(h.content_encoding.clone())
            .set_content_disposition(h.content_disposition.clone())
            .set_content_language(h.content_language.clone())
            .set_cache_control(h.cache_control.clone())
            .set_website_redirect_location(h.website_redirect_location.clone())
            .set_metadata(Some(meta.user_metadata.clone().into_iter().collect()))
            .set_storage_class(meta.storage_class.as_deref().map(StorageClass::from));
        if let Some(e) = http_date(h.expires.as_deref()) {
            #[allow(deprecated)]
            {
                req = req.expires(e);
            }
        }
        if !meta.tags.is_empty() {
            req = req.tagging(tag_query(&meta.tags));
        }
        if let Some((mode, until)) = &meta.retention {
            req = req
                .object_lock_mode(mode.as_str().into())
                .object_lock_retain_until_date(rfc3339_to_datetime(until)?);
        }
        if let Some(hold) = meta.legal_hold {
            req = req.object_lock_legal_hold_status(if hold {
                ObjectLockLegalHoldStatus::On
            } else {
                ObjectLockLegalHoldStatus::Off
            });
        }
        req
    }};
}

impl TargetClient {
    pub fn new(cfg: &TargetConfig) -> Result<Self, String> {
        let conf = tiering::s3::client_config(&tiering::s3::Connection {
            endpoint: Some(&cfg.endpoint),
            region: cfg.region.as_deref(),
            access_key: cfg.access_key.clone(),
            secret_key: tiering::config::resolve_secret(&cfg.secret_key)?,
            path_style: cfg.path_style,
            name: "strata-replication",
        })
        // The queue retries with backoff; a streamed body cannot be replayed anyway.
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(conf.build()),
            bucket: cfg.target_bucket.clone(),
        })
    }

    /// Checks that the target answers and its bucket has versioning enabled.
    pub async fn check(&self) -> Result<(), String> {
        let enabled = match self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(v) => v.status() == Some(&BucketVersioningStatus::Enabled),
            // moto answers with a `GetBucketVersioningResponse` root element, which the SDK
            // refuses to parse: read the status from the answer itself.
            Err(SdkError::ServiceError(s)) if s.raw().status().as_u16() == 200 => {
                s.raw().body().bytes().is_some_and(|b| {
                    String::from_utf8_lossy(b).contains("<Status>Enabled</Status>")
                })
            }
            Err(e) => return Err(failed(e).0),
        };
        if !enabled {
            return Err(format!(
                "the target bucket {} does not have versioning enabled",
                self.bucket
            ));
        }
        Ok(())
    }

    /// Writes a single-part object; returns the target's version id.
    pub async fn put_object(
        &self,
        key: &str,
        of: ReplicaOf,
        meta: &ObjectMeta,
        size: u64,
        md5: Option<String>,
        body: SdkBody,
    ) -> Result<Option<String>, SendError> {
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(size as i64)
            .set_content_md5(md5)
            .body(body);
        let req = with_meta!(req, meta);
        let out = replica!(req, Some(of)).send().await.map_err(failed)?;
        Ok(out.version_id().map(str::to_owned))
    }

    /// Writes a multipart object with the source's part numbers and sizes (so its ETag and
    /// `partNumber` reads are the source's); `parts` yields each part's number, size, MD5
    /// (base64, when the part's ETag is one) and body in order.
    pub async fn put_multipart(
        &self,
        key: &str,
        of: ReplicaOf,
        meta: &ObjectMeta,
        mut parts: tokio::sync::mpsc::Receiver<Result<SourcePart, SendError>>,
    ) -> Result<Option<String>, SendError> {
        let req = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key);
        let req = with_meta!(req, meta);
        let created = replica!(req, Some(of)).send().await.map_err(failed)?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = async {
            let mut done = Vec::new();
            while let Some(part) = parts.recv().await {
                let (number, size, md5, body) = part?;
                let number = number as i32;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .content_length(size as i64)
                    .set_content_md5(md5)
                    .body(body)
                    .send()
                    .await
                    .map_err(failed)?;
                done.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .build(),
                );
            }
            let req = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(done))
                        .build(),
                );
            match replica!(req, Some(of)).send().await {
                Ok(out) => Ok(out.version_id().map(str::to_owned)),
                // moto answers with a `CompleteMultipartUploadResponse` root element, which the
                // SDK refuses to parse: a 200 without an `<Error>` is a completion.
                Err(SdkError::ServiceError(s))
                    if s.raw().status().as_u16() == 200
                        && s.raw()
                            .body()
                            .bytes()
                            .is_some_and(|b| !String::from_utf8_lossy(b).contains("<Error>")) =>
                {
                    Ok(s.raw().headers().get("x-amz-version-id").map(str::to_owned))
                }
                Err(e) => Err(failed(e)),
            }
        }
        .await;
        if result.is_err() {
            tiering::s3::abort_upload(&self.client, &self.bucket, key, &upload_id).await;
        }
        result
    }

    /// Places a delete marker; returns the target's version id of it.
    pub async fn delete_marker(
        &self,
        key: &str,
        of: ReplicaOf,
    ) -> Result<Option<String>, SendError> {
        let req = self.client.delete_object().bucket(&self.bucket).key(key);
        let out = replica!(req, Some(of)).send().await.map_err(failed)?;
        Ok(out.version_id().map(str::to_owned))
    }

    /// Deletes one version of `key` on the target.
    pub async fn delete_version(
        &self,
        key: &str,
        version_id: &str,
        of: ReplicaOf,
    ) -> Result<(), SendError> {
        let req = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .bypass_governance_retention(true);
        match replica!(req, Some(of)).send().await {
            Ok(_) => Ok(()),
            // The target never had that version (or no longer has it): nothing to delete.
            Err(SdkError::ServiceError(s))
                if s.raw().status().as_u16() == 404
                    || matches!(s.err().code(), Some("NoSuchVersion" | "InvalidArgument")) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// Sets a replica version's tags, retention and legal hold to the source's.
    pub async fn put_metadata(
        &self,
        key: &str,
        version_id: &str,
        meta: &ObjectMeta,
    ) -> Result<(), SendError> {
        if meta.tags.is_empty() {
            self.client
                .delete_object_tagging()
                .bucket(&self.bucket)
                .key(key)
                .version_id(version_id)
                .send()
                .await
                .map_err(failed)?;
        } else {
            let tags = meta
                .tags
                .iter()
                .map(|(k, v)| {
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .expect("key and value")
                })
                .collect();
            self.client
                .put_object_tagging()
                .bucket(&self.bucket)
                .key(key)
                .version_id(version_id)
                .tagging(
                    Tagging::builder()
                        .set_tag_set(Some(tags))
                        .build()
                        .expect("tags"),
                )
                .send()
                .await
                .map_err(failed)?;
        }
        if let Some((mode, until)) = &meta.retention {
            self.client
                .put_object_retention()
                .bucket(&self.bucket)
                .key(key)
                .version_id(version_id)
                .bypass_governance_retention(true)
                .retention(
                    ObjectLockRetention::builder()
                        .mode(ObjectLockRetentionMode::from(mode.as_str()))
                        .retain_until_date(rfc3339_to_datetime(until)?)
                        .build(),
                )
                .send()
                .await
                .map_err(failed)?;
        }
        if let Some(hold) = meta.legal_hold {
            self.client
                .put_object_legal_hold()
                .bucket(&self.bucket)
                .key(key)
                .version_id(version_id)
                .legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(if hold {
                            ObjectLockLegalHoldStatus::On
                        } else {
                            ObjectLockLegalHoldStatus::Off
                        })
                        .build(),
                )
                .send()
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// The ETag and size of one version on the target; `None` when it has no such version.
    pub async fn head_version(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Option<(String, u64)>, SendError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
        {
            Ok(out) => Ok(Some((
                out.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                out.content_length().unwrap_or(0).max(0) as u64,
            ))),
            Err(SdkError::ServiceError(s)) if s.raw().status().as_u16() == 404 => Ok(None),
            Err(SdkError::ServiceError(s)) if s.raw().status().as_u16() == 400 => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }
}
