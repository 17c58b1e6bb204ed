//! S3 tiers: any S3 endpoint through `aws-sdk-s3`. Objects up to one part are sent in one
//! PUT with `Content-MD5`; larger ones as a multipart upload of fixed parts, each with
//! `Content-MD5`, and the completed ETag is compared with the MD5-of-MD5s we expect.

use crate::config::{resolve_secret, TierConfig};
use crate::remote::{next_part, ByteStream, RemoteHead, RemoteTier, TierError, Written};
use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkBody;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, StorageClass};
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};

/// The part size of multipart transitions: memory per transition in flight.
pub const PART_SIZE: usize = 16 << 20;

/// The part size for `size` bytes: 16 MiB, or larger (whole MiB) where S3's 10,000 parts
/// would not hold the object.
fn part_size(size: u64) -> usize {
    let needed = size.div_ceil(10_000).div_ceil(1 << 20) << 20;
    (needed as usize).max(PART_SIZE)
}

pub struct S3Tier {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    class: Option<StorageClass>,
}

/// Where and as whom an S3 client talks.
pub struct Connection<'a> {
    /// `None`: AWS's endpoint for the region.
    pub endpoint: Option<&'a str>,
    /// `None`: us-east-1.
    pub region: Option<&'a str>,
    pub access_key: String,
    /// The secret itself (already resolved from `env:NAME`).
    pub secret_key: String,
    pub path_style: bool,
    /// Names the credentials in the SDK's logs.
    pub name: &'static str,
}

/// The settings of every S3 client Strata makes (tiers, replication targets): 10 s to
/// connect and 120 s to read (a call whose answer never comes must not hold a worker for
/// ever), and checksums only where S3 requires them (we send Content-MD5 ourselves; not every
/// S3 endpoint takes checksum trailers).
pub fn client_config(c: &Connection) -> aws_sdk_s3::config::Builder {
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(120))
        .build();
    let conf = aws_sdk_s3::config::Builder::new()
        .timeout_config(timeouts)
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(c.region.unwrap_or("us-east-1").to_owned()))
        .credentials_provider(Credentials::new(
            c.access_key.clone(),
            c.secret_key.clone(),
            None,
            None,
            c.name,
        ))
        .force_path_style(c.path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    match c.endpoint {
        Some(e) => conf.endpoint_url(e),
        None => conf,
    }
}

/// Aborts a multipart upload after a failure, as well as the store lets it (an upload left
/// behind is the bucket's lifecycle rule's to expire).
pub async fn abort_upload(client: &aws_sdk_s3::Client, bucket: &str, key: &str, upload_id: &str) {
    let _ = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
}

impl S3Tier {
    pub fn new(cfg: &TierConfig) -> Result<Self, String> {
        let conf = client_config(&Connection {
            endpoint: cfg.endpoint.as_deref(),
            region: cfg.region.as_deref(),
            access_key: cfg.access_key.clone().unwrap_or_default(),
            secret_key: resolve_secret(cfg.secret_key.as_deref().unwrap_or_default())?,
            path_style: cfg.path_style,
            name: "strata-tier",
        });
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(conf.build()),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
            class: cfg.storage_class.as_deref().map(StorageClass::from),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn put_multipart(
        &self,
        key: &str,
        mut body: ByteStream,
        size: u64,
    ) -> Result<Written, TierError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_storage_class(self.class.clone())
            .send()
            .await
            .map_err(classify)?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = async {
            let mut carry = Bytes::new();
            let mut parts = Vec::new();
            let mut md5s = Vec::new();
            let mut sent = 0u64;
            let part_size = part_size(size);
            while sent < size {
                let part = next_part(&mut body, &mut carry, part_size).await?;
                if part.is_empty() {
                    return Err(TierError::Source(format!(
                        "the version ended after {sent} of {size} bytes"
                    )));
                }
                sent += part.len() as u64;
                let md5: [u8; 16] = Md5::digest(&part).into();
                md5s.extend_from_slice(&md5);
                let number = parts.len() as i32 + 1;
                let done = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
                    .body(SdkBody::from(part))
                    .send()
                    .await
                    .map_err(classify)?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(done.e_tag().map(str::to_owned))
                        .build(),
                );
            }
            // Every part was checked by the remote against its Content-MD5; the completed ETag is
            // the MD5 of their MD5s only where the store says so (not under SSE-KMS, say).
            let expected = format!("{}-{}", hex::encode(Md5::digest(&md5s)), parts.len());
            let completed = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await;
            let etag = match completed {
                Ok(done) => done.e_tag().map(|e| e.trim_matches('"').to_owned()),
                // A 200 whose body the SDK cannot parse (moto names the root element
                // `CompleteMultipartUploadResponse`): the object is there; HEAD tells its ETag.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => {
                    self.head(key.strip_prefix(&self.prefix).unwrap_or(key))
                        .await?
                        .etag
                }
                Err(e) => return Err(classify(e)),
            };
            if etag.as_deref().is_some_and(|e| e != expected) {
                tracing::debug!(%key, ?etag, %expected, "remote multipart ETag is no MD5 of MD5s");
            }
            Ok(Written { etag, md5: None })
        }
        .await;
        if result.is_err() {
            abort_upload(&self.client, &self.bucket, key, &upload_id).await;
        }
        result
    }
}

#[async_trait]
impl RemoteTier for S3Tier {
    async fn put(&self, key: &str, mut body: ByteStream, size: u64) -> Result<Written, TierError> {
        let key = self.key(key);
        if size > PART_SIZE as u64 {
            return self.put_multipart(&key, body, size).await;
        }
        let bytes = next_part(&mut body, &mut Bytes::new(), size as usize).await?;
        if bytes.len() as u64 != size {
            return Err(TierError::Source(format!(
                "the version has {} bytes, not {size}",
                bytes.len()
            )));
        }
        let md5: [u8; 16] = Md5::digest(&bytes).into();
        let done = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .set_storage_class(self.class.clone())
            .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
            .body(SdkBody::from(bytes))
            .send()
            .await
            .map_err(classify)?;
        // The remote checked the bytes against Content-MD5; its ETag need not be an MD5 (SSE-KMS).
        Ok(Written {
            etag: done.e_tag().map(|e| e.trim_matches('"').to_owned()),
            md5: None,
        })
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<ByteStream, TierError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(classify)?;
        let stream = futures::stream::unfold(out.body, |mut body| async move {
            let next = body.next().await?;
            Some((
                next.map_err(|e| TierError::Unavailable(DisplayErrorContext(&e).to_string())),
                body,
            ))
        });
        Ok(stream.boxed())
    }

    async fn head(&self, key: &str) -> Result<RemoteHead, TierError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(classify)?;
        Ok(RemoteHead {
            size: out.content_length().unwrap_or_default().max(0) as u64,
            etag: out.e_tag().map(|e| e.trim_matches('"').to_owned()),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), TierError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

/// Sorts an SDK error: missing objects, refusals (fix the settings) and the rest (retry).
fn classify<E>(e: SdkError<E, HttpResponse>) -> TierError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = match &e {
        SdkError::ServiceError(s) => s.err().code().map(str::to_owned),
        _ => None,
    };
    // The SDK's full context carries the raw response: keep the start, which says what failed.
    let text: String = DisplayErrorContext(&e)
        .to_string()
        .chars()
        .take(400)
        .collect();
    match (status, code.as_deref()) {
        (_, Some("NoSuchBucket")) => {
            TierError::Refused(format!("the tier's bucket does not exist: {text}"))
        }
        (Some(404), _) | (_, Some("NoSuchKey" | "NotFound")) => TierError::NotFound,
        (Some(400 | 401 | 403), _) => TierError::Refused(text),
        _ => TierError::Unavailable(text),
    }
}
