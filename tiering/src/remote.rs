//! The one interface every kind of remote tier implements, and the probe that proves a tier
//! works.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

/// A stream of bytes going to or coming from a tier.
pub type ByteStream = BoxStream<'static, Result<Bytes, TierError>>;

/// Why a tier call failed.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// The remote object does not exist.
    #[error("the remote object does not exist")]
    NotFound,
    /// The tier could not be reached or answered with an error: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The tier refused the credentials or the request (fix the tier's settings).
    #[error("{0}")]
    Refused(String),
    /// The bytes written were not the bytes sent.
    #[error("verification failed: {0}")]
    Mismatch(String),
    /// The bytes to send could not be read.
    #[error("reading the data to send failed: {0}")]
    Source(String),
}

/// What a tier reports about an object it stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The remote ETag (S3, Azure) or generation (GCS).
    pub etag: Option<String>,
    /// The MD5 of the whole object as the remote computed it, when it reports one.
    pub md5: Option<[u8; 16]>,
}

/// What a tier reports about an object on a HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteHead {
    pub size: u64,
    pub etag: Option<String>,
}

/// A remote object store holding transitioned versions, one remote object per version.
#[async_trait]
pub trait RemoteTier: Send + Sync {
    /// Stores exactly `size` bytes of `body` under `key` with the tier's storage class, in
    /// parts or blocks when large; memory stays bounded by one part per call.
    async fn put(&self, key: &str, body: ByteStream, size: u64) -> Result<Written, TierError>;
    /// Bytes `start..end` of the object under `key` (`end` exclusive, `start < end`).
    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<ByteStream, TierError>;
    /// The object's size and ETag; `NotFound` when there is none.
    async fn head(&self, key: &str) -> Result<RemoteHead, TierError>;
    /// Removes the object; removing an object that is not there succeeds.
    async fn delete(&self, key: &str) -> Result<(), TierError>;
}

/// Proves a tier works with its settings: writes a small probe under `key`, reads it back,
/// compares, and deletes it. Returns what failed, step by step.
pub async fn check(tier: &dyn RemoteTier, key: &str) -> Result<(), String> {
    let probe = Bytes::from(format!("strata tier check {key}"));
    let len = probe.len() as u64;
    let body: ByteStream = futures::stream::once(async move { Ok(probe) }).boxed();
    tier.put(key, body, len)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut read = Vec::new();
    let mut stream = tier
        .get_range(key, 0, len)
        .await
        .map_err(|e| format!("read: {e}"))?;
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.map_err(|e| format!("read: {e}"))?);
    }
    if read != format!("strata tier check {key}").as_bytes() {
        return Err(format!(
            "read: got {} bytes that differ from the probe",
            read.len()
        ));
    }
    tier.delete(key).await.map_err(|e| format!("delete: {e}"))?;
    match tier.head(key).await {
        Err(TierError::NotFound) => Ok(()),
        Ok(_) => Err("delete: the probe is still there".into()),
        Err(e) => Err(format!("head after delete: {e}")),
    }
}

/// Splits a byte stream into parts of exactly `size` bytes (the last one shorter), buffering
/// one part at a time.
pub(crate) async fn next_part(
    body: &mut ByteStream,
    carry: &mut Bytes,
    size: usize,
) -> Result<Bytes, TierError> {
    let mut part = bytes::BytesMut::with_capacity(size.min(64 << 20));
    while part.len() < size {
        if carry.is_empty() {
            match body.next().await {
                Some(chunk) => *carry = chunk?,
                None => break,
            }
        }
        let take = (size - part.len()).min(carry.len());
        part.extend_from_slice(&carry.split_to(take));
    }
    Ok(part.freeze())
}
