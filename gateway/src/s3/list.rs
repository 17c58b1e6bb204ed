//! ListObjects (V1) and ListObjectsV2.

use super::bucket::owner;
use super::{etag, require_bucket, timestamp, Gateway};
use crate::s3::error::s3_err;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::list::{key_successor, ListPage};

/// Characters left as they are by `encoding-type=url` (RFC 3986 unreserved, and `/`).
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Encodes a key or prefix for `encoding-type=url`, leaving it as is otherwise.
pub fn encode_name(s: &str, url: bool) -> String {
    if url {
        utf8_percent_encode(s, KEEP).to_string()
    } else {
        s.to_owned()
    }
}

/// Whether names go out URL-encoded; `url` is the only encoding S3 knows.
pub fn wants_url(e: &Option<EncodingType>) -> S3Result<bool> {
    match e.as_ref().map(|e| e.as_str()) {
        None => Ok(false),
        Some(EncodingType::URL) => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

pub fn max_keys(m: Option<MaxKeys>) -> S3Result<usize> {
    match m {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys cannot be negative")),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

fn contents(page: &ListPage, url: bool, fetch_owner: bool) -> Vec<Object> {
    page.objects
        .iter()
        .map(|o| {
            let obj = o
                .version
                .object
                .as_ref()
                .expect("listed objects are objects");
            Object {
                key: Some(encode_name(&o.key, url)),
                last_modified: Some(timestamp(o.version.mod_time_ns)),
                e_tag: Some(etag(&obj.etag)),
                size: Some(obj.size as i64),
                storage_class: Some(ObjectStorageClass::from(obj.storage_class.clone())),
                owner: fetch_owner.then(owner),
                ..Default::default()
            }
        })
        .collect()
}

fn prefixes(page: &ListPage, url: bool) -> Vec<CommonPrefix> {
    page.common_prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(encode_name(p, url)),
        })
        .collect()
}

/// A continuation token is the listing's next lower bound, opaque to the client.
pub fn encode_token(next: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(next)
}

pub fn decode_token(token: &str) -> S3Result<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(token).map_err(|_| {
        s3_error!(
            InvalidArgument,
            "The continuation token provided is incorrect"
        )
    })
}

impl Gateway {
    pub(super) async fn list_objects_v2_op(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        let max = max_keys(input.max_keys)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().unwrap_or_default();
        let start = match (&input.continuation_token, &input.start_after) {
            (Some(t), _) => decode_token(t)?,
            (None, Some(s)) => key_successor(s.as_bytes()),
            (None, None) => Vec::new(),
        };
        let page = self
            .store
            .list_objects(&input.bucket, &prefix, &delimiter, &start, max)
            .await
            .map_err(s3_err)?;
        let url = wants_url(&input.encoding_type)?;
        let objects = contents(&page, url, input.fetch_owner.unwrap_or(false));
        let common = prefixes(&page, url);
        let out = ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode_name(&prefix, url)),
            delimiter: input
                .delimiter
                .filter(|d| !d.is_empty())
                .map(|d| encode_name(&d, url)),
            max_keys: Some(max as i32),
            key_count: Some((objects.len() + common.len()) as i32),
            continuation_token: input.continuation_token,
            start_after: input.start_after.map(|s| encode_name(&s, url)),
            is_truncated: Some(page.next.is_some()),
            next_continuation_token: page.next.as_deref().map(encode_token),
            contents: Some(objects),
            common_prefixes: Some(common),
            encoding_type: input.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }

    pub(super) async fn list_objects_op(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        let max = max_keys(input.max_keys)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().unwrap_or_default();
        let start = input
            .marker
            .as_deref()
            .map(|m| key_successor(m.as_bytes()))
            .unwrap_or_default();
        let page = self
            .store
            .list_objects(&input.bucket, &prefix, &delimiter, &start, max)
            .await
            .map_err(s3_err)?;
        let url = wants_url(&input.encoding_type)?;
        // NextMarker is returned only with a delimiter; it is the last key or prefix returned.
        let last = {
            let k = page.objects.last().map(|o| o.key.clone());
            let p = page.common_prefixes.last().cloned();
            k.max(p)
        };
        let next_marker = (page.next.is_some() && !delimiter.is_empty())
            .then(|| last.map(|l| encode_name(&l, url)))
            .flatten();
        let out = ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encode_name(&prefix, url)),
            delimiter: input
                .delimiter
                .filter(|d| !d.is_empty())
                .map(|d| encode_name(&d, url)),
            marker: Some(
                input
                    .marker
                    .map(|m| encode_name(&m, url))
                    .unwrap_or_default(),
            ),
            max_keys: Some(max as i32),
            is_truncated: Some(page.next.is_some()),
            next_marker,
            contents: Some(contents(&page, url, true)),
            common_prefixes: Some(prefixes(&page, url)),
            encoding_type: input.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes_and_escapes_the_rest() {
        assert_eq!(encode_name("a b+c/é%", true), "a%20b%2Bc/%C3%A9%25");
        assert_eq!(encode_name("a b", false), "a b");
    }

    #[test]
    fn tokens_round_trip_any_bytes() {
        let raw = b"a/\xff\x00";
        assert_eq!(decode_token(&encode_token(raw)).unwrap(), raw.to_vec());
        assert!(decode_token("***").is_err());
    }
}
