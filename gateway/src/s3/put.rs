//! PutObject, and the staging of request bodies that UploadPart and the copies share:
//! stream the body into the erasure set while computing MD5 and the requested checksum once,
//! then verify `Content-MD5` and `x-amz-checksum-*` before anything becomes visible.

use super::acl::check_object_acl;
use super::bucket_lifecycle::expiration_of_version;
use super::checksum::{self, fill_checksums, Algorithm, Requested};
use super::lock::new_version_lock;
use super::versioning::{versioning, written_version_header};
use super::{
    body_stream, content_headers, etag, parse_tagging, storage_class, user_metadata, Gateway,
    MAX_PUT_SIZE,
};
use crate::s3::error::s3_err;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::StreamExt;
use s3s::checksum::ChecksumHasher;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, TrailingHeaders};
use std::sync::{Arc, Mutex};
use storage::meta::StoredChecksum;
use storage::{ByteStream, Precondition, PutOptions, Staged};

/// A staged body with the checksum computed while it streamed.
pub struct StagedBody {
    pub staged: Staged,
    pub computed: Option<(Algorithm, String)>,
}

/// A request body with the headers and trailers that describe it.
pub struct IncomingBody<'a> {
    pub body: Option<StreamingBlob>,
    pub headers: &'a http::HeaderMap,
    pub trailers: Option<TrailingHeaders>,
}

/// Decodes a `Content-MD5` header; `InvalidDigest` when it is not base64 of 16 bytes.
pub fn content_md5(header: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(h) = header else { return Ok(None) };
    let bytes = B64
        .decode(h.trim())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok());
    match bytes {
        Some(b) => Ok(Some(b)),
        None => Err(s3_error!(
            InvalidDigest,
            "The Content-MD5 you specified was invalid."
        )),
    }
}

/// The conditional-write headers of any request that writes a key (PutObject, CopyObject,
/// CompleteMultipartUpload, POST object), read from the headers in this one place so every
/// write path checks them alike. AWS supports only `*` for `If-None-Match` on writes
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>).
/// The check itself happens in storage, under the key's lock, with the commit.
pub fn write_precondition(headers: &http::HeaderMap) -> S3Result<Precondition> {
    let text = |name: http::header::HeaderName| -> S3Result<Option<String>> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map(|s| s.trim().to_owned()).map_err(|_| {
                    s3_error!(InvalidArgument, "A conditional header is not valid text")
                })
            })
            .transpose()
    };
    let if_none_match_any = match text(http::header::IF_NONE_MATCH)?.as_deref() {
        None => false,
        Some("*") => true,
        Some(_) => {
            return Err(s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented"
            ));
        }
    };
    let if_match = text(http::header::IF_MATCH)?;
    Ok(Precondition {
        if_none_match_any,
        if_match,
    })
}

impl Gateway {
    /// Streams `body` into the staging area of the key's set, computing `algorithm` too.
    pub(super) async fn stage_body(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        algorithm: Option<Algorithm>,
        part: u32,
        inline: bool,
    ) -> S3Result<StagedBody> {
        let hasher: Option<Arc<Mutex<ChecksumHasher>>> =
            algorithm.map(|a| Arc::new(Mutex::new(a.hasher())));
        let feed = hasher.clone();
        let body: ByteStream = Box::pin(body.inspect(move |chunk| {
            if let (Some(h), Ok(bytes)) = (&feed, chunk) {
                h.lock().expect("lock").update(bytes);
            }
        }));
        let set = self.store.set_for(bucket, key);
        let staged = set
            .stage(bucket, key, body, part, inline)
            .await
            .map_err(s3_err)?;
        let computed = match (algorithm, hasher) {
            (Some(a), Some(h)) => {
                let h = Arc::try_unwrap(h)
                    .ok()
                    .expect("stream dropped")
                    .into_inner()
                    .expect("lock");
                Some((a, a.pick(&h.finalize()).expect("enabled algorithm")))
            }
            _ => None,
        };
        Ok(StagedBody { staged, computed })
    }

    /// Stages a request body and checks it against `Content-MD5` and the requested checksum
    /// (from a header or the trailer). Returns the staged body and the checksum to store.
    /// `part` 0 is a whole object (inlined when small); 1..=10000 a multipart part, whose
    /// checksum must be of the upload's algorithm (`default_algorithm`) when it has one.
    pub(super) async fn stage_verified(
        &self,
        bucket: &str,
        key: &str,
        incoming: IncomingBody<'_>,
        default_algorithm: Option<Algorithm>,
        part: u32,
    ) -> S3Result<(Staged, Option<StoredChecksum>)> {
        let IncomingBody {
            body,
            headers,
            trailers,
        } = incoming;
        let md5 = content_md5(headers.get("content-md5").and_then(|v| v.to_str().ok()))?;
        let requested = checksum::requested(headers)
            .map_err(|m| S3Error::with_message(S3ErrorCode::InvalidRequest, m))?;
        if let (Some(want), Some(sent)) = (default_algorithm, requested.as_ref()) {
            if sent.algorithm != want {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                        want.name().to_ascii_lowercase(),
                        sent.algorithm.name().to_ascii_lowercase()
                    ),
                ));
            }
        }
        let requested = requested.or(default_algorithm.map(|algorithm| Requested {
            algorithm,
            expected: None,
        }));
        let (part, inline) = if part == 0 { (1, true) } else { (part, false) };
        let algorithm = requested.as_ref().map(|r| r.algorithm);
        let StagedBody { staged, computed } = self
            .stage_body(bucket, key, body_stream(body), algorithm, part, inline)
            .await?;
        if md5.is_some_and(|m| m != staged.md5) {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
        let Some((algorithm, value)) = computed else {
            return Ok((staged, None));
        };
        let expected = requested.and_then(|r| r.expected).or_else(|| {
            let trailers = trailers.and_then(|t| t.take());
            checksum::from_trailer(trailers.as_ref(), algorithm)
        });
        if expected.is_some_and(|e| e != value) {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name()
                ),
            ));
        }
        let stored = StoredChecksum {
            algorithm: algorithm.name().into(),
            value,
            kind: "FULL_OBJECT".into(),
        };
        Ok((staged, Some(stored)))
    }

    pub(super) async fn put_object_op(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let replica =
            super::replication::replica_of(&req.headers, &req.uri, req.credentials.is_some())?;
        let S3Request {
            input,
            headers,
            trailing_headers,
            ..
        } = req;
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        check_object_acl!(input)?;
        if input.content_length.is_some_and(|l| l > MAX_PUT_SIZE) {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size."
            ));
        }
        let state = versioning(&bucket);
        let (retention, legal_hold) = new_version_lock(
            &bucket,
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.as_ref(),
            Some(&headers),
        )?;
        let opts = PutOptions {
            headers: content_headers(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.expires,
                input.website_redirect_location,
            )?,
            user_metadata: user_metadata(input.metadata)?,
            storage_class: storage_class(input.storage_class)?,
            tags: parse_tagging(input.tagging.as_deref())?,
            checksum: None,
            precondition: write_precondition(&headers)?,
            versioning: state,
            retention,
            legal_hold,
            replica,
        };
        // Part 0 marks a whole object: small ones may be inlined into the record.
        let (staged, checksum) = self
            .stage_verified(
                &input.bucket,
                &input.key,
                IncomingBody {
                    body: input.body,
                    headers: &headers,
                    trailers: trailing_headers,
                },
                None,
                0,
            )
            .await?;
        let opts = PutOptions {
            checksum: checksum.clone(),
            ..opts
        };
        let set = self.store.set_for(&input.bucket, &input.key);
        let version = set
            .commit_object(&input.bucket, &input.key, staged, opts)
            .await
            .map_err(s3_err)?;
        let mut out = PutObjectOutput {
            e_tag: version.object.as_ref().map(|o| etag(&o.etag)),
            version_id: written_version_header(&version),
            expiration: version.object.as_ref().and_then(|o| {
                expiration_of_version(
                    &bucket,
                    &input.key,
                    o,
                    version.mod_time_ns,
                    self.lifecycle_clock,
                )
            }),
            ..Default::default()
        };
        if let Some(c) = checksum {
            fill_checksums!(out, super::checksum::of_stored(&c));
            out.checksum_type = Some(ChecksumType::from(c.kind));
        }
        Ok(S3Response::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_md5_must_be_16_bytes_of_base64() {
        assert_eq!(content_md5(None).unwrap(), None);
        assert_eq!(
            content_md5(Some("1B2M2Y8AsgTpgAmY7PhCfg=="))
                .unwrap()
                .unwrap()[0],
            0xd4
        );
        assert!(content_md5(Some("nope")).is_err());
        assert!(content_md5(Some("AAAA")).is_err());
    }
}
