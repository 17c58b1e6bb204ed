//! POST Object (browser-form uploads): a PutObject whose `Content-MD5` and checksum came as
//! form fields. The policy, `${filename}` and an invalid `success_action_status` are settled
//! before s3s (`crate::post_form`); s3s writes the 200, 201, 204 or 303 answer from the output
//! returned here, with the headers returned here.

use super::checksum::{checksums_of, ALL};
use super::Gateway;
use http::{HeaderMap, HeaderName, HeaderValue};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

impl Gateway {
    pub(super) async fn post_object_op(
        &self,
        req: S3Request<PostObjectInput>,
    ) -> S3Result<S3Response<PostObjectOutput>> {
        let mut req = req.map_input(put_input);
        integrity_headers(&req.input, &mut req.headers)?;
        let put = self.put_object_op(req).await?.output;
        let mut headers = HeaderMap::new();
        if let Some(v) = put.e_tag.as_ref().and_then(|e| e.to_http_header().ok()) {
            headers.insert(http::header::ETAG, v);
        }
        if let Some(v) = put.version_id.as_deref().and_then(|v| v.parse().ok()) {
            headers.insert("x-amz-version-id", v);
        }
        if let Some(v) = put.expiration.as_deref().and_then(|v| v.parse().ok()) {
            headers.insert("x-amz-expiration", v);
        }
        let sums = checksums_of!(put);
        for a in ALL {
            if let Some(v) = a.pick(&sums).and_then(|v| v.parse().ok()) {
                headers.insert(a.header(), v);
            }
        }
        let out = PostObjectOutput {
            // s3s writes this value as it is into the 201 body and the 303 redirect, where S3
            // puts the quoted ETag.
            e_tag: put
                .e_tag
                .map(|e| ETag::Strong(format!("\"{}\"", e.value()))),
            version_id: put.version_id,
            expiration: put.expiration,
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: put.checksum_type,
            ..Default::default()
        };
        let mut resp = S3Response::new(out);
        resp.headers = headers;
        Ok(resp)
    }
}

/// The form's `Content-MD5`, checksum and conditional-write (`If-Match`, `If-None-Match`)
/// fields as the headers the PUT path checks. A form field and a request header of the same
/// name must agree.
fn integrity_headers(input: &PutObjectInput, headers: &mut HeaderMap) -> S3Result<()> {
    let sums = checksums_of!(input);
    let condition = |c: &Option<ETagCondition>| {
        c.as_ref().map(|c| match c {
            ETagCondition::Any => "*".to_owned(),
            ETagCondition::ETag(e) => format!("\"{}\"", e.value()),
        })
    };
    let fields = [
        ("if-match", condition(&input.if_match)),
        ("if-none-match", condition(&input.if_none_match)),
        ("content-md5", input.content_md5.clone()),
        (
            "x-amz-sdk-checksum-algorithm",
            input
                .checksum_algorithm
                .as_ref()
                .map(|a| a.as_str().to_owned()),
        ),
    ]
    .into_iter()
    .chain(ALL.iter().map(|a| (a.header(), a.pick(&sums))));
    for (name, value) in fields {
        let Some(value) = value else { continue };
        let value = HeaderValue::from_str(&value)
            .map_err(|_| s3_error!(InvalidArgument, "The {name} field is not valid."))?;
        match headers.get(name) {
            Some(sent) if *sent != value => {
                return Err(s3_error!(
                    InvalidRequest,
                    "The {name} form field and the {name} header differ."
                ));
            }
            _ => {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
    Ok(())
}

/// The PutObject a form describes (s3s's own conversion is private to it).
fn put_input(post: PostObjectInput) -> PutObjectInput {
    let PostObjectInput {
        acl,
        body,
        bucket,
        bucket_key_enabled,
        cache_control,
        checksum_algorithm,
        checksum_crc32,
        checksum_crc32c,
        checksum_crc64nvme,
        checksum_sha1,
        checksum_sha256,
        content_disposition,
        content_encoding,
        content_language,
        content_length,
        content_md5,
        content_type,
        expected_bucket_owner,
        expires,
        grant_full_control,
        grant_read,
        grant_read_acp,
        grant_write_acp,
        if_match,
        if_none_match,
        key,
        metadata,
        object_lock_legal_hold_status,
        object_lock_mode,
        object_lock_retain_until_date,
        request_payer,
        sse_customer_algorithm,
        sse_customer_key,
        sse_customer_key_md5,
        ssekms_encryption_context,
        ssekms_key_id,
        server_side_encryption,
        storage_class,
        tagging,
        website_redirect_location,
        write_offset_bytes,
        success_action_redirect: _,
        success_action_status: _,
        policy: _,
    } = post;
    PutObjectInput {
        acl,
        body,
        bucket,
        bucket_key_enabled,
        cache_control,
        checksum_algorithm,
        checksum_crc32,
        checksum_crc32c,
        checksum_crc64nvme,
        checksum_sha1,
        checksum_sha256,
        content_disposition,
        content_encoding,
        content_language,
        content_length,
        content_md5,
        content_type,
        expected_bucket_owner,
        expires,
        grant_full_control,
        grant_read,
        grant_read_acp,
        grant_write_acp,
        if_match,
        if_none_match,
        key,
        metadata,
        object_lock_legal_hold_status,
        object_lock_mode,
        object_lock_retain_until_date,
        request_payer,
        sse_customer_algorithm,
        sse_customer_key,
        sse_customer_key_md5,
        ssekms_encryption_context,
        ssekms_key_id,
        server_side_encryption,
        storage_class,
        tagging,
        website_redirect_location,
        write_offset_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_integrity_fields_become_headers() {
        let input = PutObjectInput {
            content_md5: Some("1B2M2Y8AsgTpgAmY7PhCfg==".into()),
            checksum_crc32: Some("AAAAAA==".into()),
            ..Default::default()
        };
        let mut headers = HeaderMap::new();
        integrity_headers(&input, &mut headers).unwrap();
        assert_eq!(headers["content-md5"], "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(headers["x-amz-checksum-crc32"], "AAAAAA==");
        assert!(
            integrity_headers(&input, &mut headers).is_ok(),
            "the same value agrees"
        );
        headers.insert("x-amz-checksum-crc32", "BBBBBB==".parse().unwrap());
        let e = integrity_headers(&input, &mut headers).unwrap_err();
        assert_eq!(e.code(), &s3s::S3ErrorCode::InvalidRequest);
    }
}
