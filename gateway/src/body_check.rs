//! Integrity of the XML bodies that s3s reads whole before an operation runs: DeleteObjects,
//! CompleteMultipartUpload, tagging, and object-lock and bucket settings. s3s does not check
//! their Content-MD5 or `x-amz-checksum-*`, and the operations never see the bytes, so the
//! check happens here, before s3s. A corrupted DeleteObjects body must not delete the wrong
//! keys. Object bodies are checked as they stream, in the PUT path.

use crate::idle_body::IDLE_MESSAGE;
use crate::query::{has, names};
use crate::s3::checksum;
use crate::s3::content_md5;
use crate::s3::error::request_timeout;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use md5::{Digest, Md5};
use s3s::{s3_error, Body, S3Error, S3ErrorCode, S3Result};

/// Query parameters that make a PUT carry a settings document, not object data.
const SETTINGS: &[&str] = &[
    "tagging",
    "legal-hold",
    "retention",
    "object-lock",
    "versioning",
    "lifecycle",
    "replication",
    "cors",
    "policy",
    "acl",
    "encryption",
    "notification",
    "website",
    "logging",
    "ownershipControls",
    "publicAccessBlock",
    "accelerate",
    "requestPayment",
];

/// Query parameters that make a POST carry an XML document.
const DOCUMENTS: &[&str] = &["delete", "uploadId", "restore", "select"];

/// Bytes all checked documents together may hold at once; unauthenticated clients cannot
/// make the server buffer more than this, however many connections they open.
static BUFFERED: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(BUFFER_BUDGET);
const BUFFER_BUDGET: usize = 64 * 1024 * 1024;

/// Largest document checked. The largest real ones (1,000 keys to delete, 10,000 parts to
/// complete) stay under 2 MiB; the cap bounds what one request buffers before
/// authentication, and `BUFFERED` what they all do. Streaming (aws-chunked) documents are not
/// buffered here; their checksum travels in a trailer and is left to s3s.
const LIMIT: usize = 4 * 1024 * 1024;

fn carries_document(method: &Method, query: Option<&str>) -> bool {
    match *method {
        Method::POST => names(query).any(|n| DOCUMENTS.contains(&n)),
        Method::PUT => names(query).any(|n| SETTINGS.contains(&n)),
        _ => false,
    }
}

/// The request with its body read whole and checked against its Content-MD5 and
/// `x-amz-checksum-*` headers when it is an XML document (not aws-chunked); any other request
/// passes through unread.
pub async fn checked<B>(req: Request<B>) -> S3Result<Request<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    Box<dyn std::error::Error + Send + Sync>: From<B::Error>,
{
    if !carries_document(req.method(), req.uri().query()) {
        return Ok(req.map(Body::http_body));
    }
    let headers = req.headers();
    let md5 = content_md5(headers.get("content-md5").and_then(|v| v.to_str().ok()))?;
    // A completion's x-amz-checksum-* is the whole object's, which the operation checks.
    let completion = req.method() == Method::POST && has(req.uri().query(), "uploadId");
    let sum = checksum::requested(headers)
        .map_err(|m| S3Error::with_message(S3ErrorCode::InvalidRequest, m))?
        .filter(|r| r.expected.is_some() && !completion);
    let streaming = headers
        .get("x-amz-content-sha256")
        .is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"));
    // Documents without a digest are read here too: a client that stalls sending one gets
    // RequestTimeout, where s3s would answer InternalError.
    if streaming {
        return Ok(req.map(Body::http_body));
    }
    let too_big = || s3_error!(MaxMessageLengthExceeded, "Your request was too big.");
    let length = headers.get(http::header::CONTENT_LENGTH);
    let length = length.and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if length > Some(LIMIT) {
        return Err(too_big());
    }
    // Room in the shared budget for the bytes this body may hold; clients that hold it by
    // sending slowly make others retry, never wait forever.
    let _room = BUFFERED
        .try_acquire_many(length.unwrap_or(LIMIT).max(1) as u32)
        .map_err(|_| s3_error!(SlowDown, "Please reduce your request rate."))?;
    let (parts, body) = req.into_parts();
    let bytes: Bytes = Limited::new(body, LIMIT)
        .collect()
        .await
        .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
            Some(_) => too_big(),
            None if e.to_string() == IDLE_MESSAGE => request_timeout(),
            None => s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            ),
        })?
        .to_bytes();
    if md5.is_some_and(|want| Md5::digest(&bytes)[..] != want[..]) {
        return Err(s3_error!(
            BadDigest,
            "The Content-MD5 you specified did not match what we received."
        ));
    }
    if let Some(sum) = sum {
        let mut h = sum.algorithm.hasher();
        h.update(&bytes);
        if sum.algorithm.pick(&h.finalize()) != sum.expected {
            return Err(s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum.",
                sum.algorithm.name()
            ));
        }
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Text as XML element content or attribute value.
pub fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The XML answer of an error raised before s3s (the caller adds the request id).
pub fn response(e: &S3Error) -> Response<Body> {
    // Messages may quote what the client sent (a POST policy's conditions).
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>{}</Message></Error>",
        e.code().as_str(),
        escape_xml(e.message().unwrap_or_default())
    );
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = e.status_code().unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_told_from_object_data() {
        assert!(carries_document(&Method::POST, Some("delete")));
        assert!(carries_document(&Method::POST, Some("uploadId=abc")));
        assert!(carries_document(&Method::PUT, Some("tagging&versionId=1")));
        assert!(carries_document(&Method::PUT, Some("legal-hold=")));
        assert!(!carries_document(
            &Method::PUT,
            Some("partNumber=1&uploadId=abc")
        ));
        assert!(!carries_document(&Method::PUT, None));
        assert!(!carries_document(
            &Method::PUT,
            Some("X-Amz-Algorithm=AWS4-HMAC-SHA256")
        ));
        assert!(!carries_document(&Method::POST, Some("uploads")));
        assert!(!carries_document(&Method::GET, Some("tagging")));
    }
}
