//! Object tags (per version, `x-amz-tagging` on writes, Put/Get/DeleteObjectTagging) and
//! bucket tags (Put/Get/DeleteBucketTagging), with AWS's limits.

use super::versioning::{version_id_text, which};
use super::{custom_error, Gateway};
use crate::s3::error::s3_err;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};
use std::collections::BTreeMap;

/// Bucket config entry holding the bucket's tags (JSON object).
const BUCKET_TAGS: &str = "tagging";

const MAX_OBJECT_TAGS: usize = 10;
const MAX_BUCKET_TAGS: usize = 50;

fn invalid_tag(message: &'static str) -> S3Error {
    custom_error("InvalidTag", http::StatusCode::BAD_REQUEST, message)
}

/// Checks tags against AWS's rules: at most `max`, keys of 1–128 and values of up to 256
/// characters, no key twice, no key in the `aws:` namespace S3 keeps for itself.
fn validate(
    pairs: impl IntoIterator<Item = (String, String)>,
    max: usize,
) -> S3Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for (k, v) in pairs {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid_tag("The TagValue you have provided is invalid"));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid_tag("Your TagKey cannot be prefixed with aws:"));
        }
        if tags.insert(k, v).is_some() {
            return Err(invalid_tag(
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    if tags.len() > max {
        return Err(invalid_tag(if max == MAX_OBJECT_TAGS {
            "Object tags cannot be greater than 10"
        } else {
            "Bucket tag count cannot be greater than 50"
        }));
    }
    Ok(tags)
}

/// Parses an `x-amz-tagging` header (URL query form).
pub fn parse_tagging(header: Option<&str>) -> S3Result<BTreeMap<String, String>> {
    let Some(h) = header.filter(|h| !h.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    validate(
        form_urlencoded::parse(h.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        MAX_OBJECT_TAGS,
    )
}

fn from_tag_set(set: TagSet, max: usize) -> S3Result<BTreeMap<String, String>> {
    validate(
        set.into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())),
        max,
    )
}

fn to_tag_set(tags: &BTreeMap<String, String>) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

impl Gateway {
    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> S3Result<String> {
        let version = self
            .store
            .set_for(bucket, key)
            .update_version(bucket, key, which(version_id)?, |v| {
                v.object.as_mut().expect("object version").tags = tags.clone();
                Ok(())
            })
            .await
            .map_err(s3_err)?;
        Ok(version_id_text(version.version_id))
    }

    pub(super) async fn put_object_tagging_op(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let input = req.input;
        let tags = from_tag_set(input.tagging.tag_set, MAX_OBJECT_TAGS)?;
        let version_id = self
            .set_object_tags(&input.bucket, &input.key, input.version_id.as_deref(), tags)
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput {
            version_id: Some(version_id),
        }))
    }

    pub(super) async fn delete_object_tagging_op(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        let version_id = self
            .set_object_tags(
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                BTreeMap::new(),
            )
            .await?;
        Ok(S3Response::new(DeleteObjectTaggingOutput {
            version_id: Some(version_id),
        }))
    }

    pub(super) async fn get_object_tagging_op(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        super::require_bucket(&self.store, &input.bucket).await?;
        let view = self
            .version_view(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: to_tag_set(&view.object().tags),
            version_id: Some(version_id_text(view.version.version_id)),
        }))
    }

    pub(super) async fn put_bucket_tagging_op(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        let input = req.input;
        let tags = from_tag_set(input.tagging.tag_set, MAX_BUCKET_TAGS)?;
        let json = serde_json::to_vec(&tags).expect("serializes");
        self.store
            .set_bucket_config(&input.bucket, BUCKET_TAGS, Some(json))
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(PutBucketTaggingOutput {}))
    }

    pub(super) async fn get_bucket_tagging_op(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let bucket = self.store.bucket(&req.input.bucket).await.map_err(s3_err)?;
        let tags: BTreeMap<String, String> = bucket
            .config
            .get(BUCKET_TAGS)
            .and_then(|raw| serde_json::from_slice(raw).ok())
            .ok_or_else(|| s3_error!(NoSuchTagSet, "The TagSet does not exist"))?;
        Ok(S3Response::new(GetBucketTaggingOutput {
            tag_set: to_tag_set(&tags),
        }))
    }

    pub(super) async fn delete_bucket_tagging_op(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        self.store
            .set_bucket_config(&req.input.bucket, BUCKET_TAGS, None)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(DeleteBucketTaggingOutput {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_header_limits() {
        assert_eq!(
            parse_tagging(Some("a=1&b=two%20words")).unwrap()["b"],
            "two words"
        );
        let ten: String = (0..10).map(|i| format!("k{i}=v&")).collect();
        assert_eq!(parse_tagging(Some(&ten)).unwrap().len(), 10);
        let eleven: String = (0..11).map(|i| format!("k{i}=v&")).collect();
        assert!(parse_tagging(Some(&eleven)).is_err());
        assert!(parse_tagging(Some(&format!("{}=v", "k".repeat(128)))).is_ok());
        assert!(parse_tagging(Some("aws%3Aowner=me")).is_err());
        assert!(parse_tagging(Some("AWS:x=1")).is_err());
        assert!(parse_tagging(Some(&format!("{}=v", "k".repeat(129)))).is_err());
        assert!(parse_tagging(Some(&format!("k={}", "v".repeat(257)))).is_err());
        assert!(parse_tagging(Some("a=1&a=2")).is_err());
    }

    #[test]
    fn bucket_tags_allow_fifty() {
        let fifty = (0..50).map(|i| (format!("k{i}"), "v".to_string()));
        assert!(validate(fifty, MAX_BUCKET_TAGS).is_ok());
        let many = (0..51).map(|i| (format!("k{i}"), "v".to_string()));
        assert!(validate(many, MAX_BUCKET_TAGS).is_err());
    }
}
