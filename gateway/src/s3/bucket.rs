//! Bucket operations: create, head, delete, list, location.

use super::acl::check_new_bucket;
use super::lock::{LockConfig, OBJECT_LOCK};
use super::versioning::VERSIONING;
use super::{require_bucket, timestamp, Gateway, RESERVED_BUCKETS};
use crate::s3::error::s3_err;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::StorageError;

/// The region this deployment reports.
pub const REGION: &str = "us-east-1";

/// The owner reported in listings (one root account for now).
pub fn owner() -> Owner {
    Owner {
        display_name: Some("strata".into()),
        id: Some("02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4".into()),
    }
}

/// Why a new bucket's name breaks AWS's general-purpose bucket naming rules
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>), beyond
/// the length, character, first/last character, `..`, IP-address and `xn--` checks s3s makes
/// before a request reaches us: names S3 keeps for its own features (access point aliases,
/// Object Lambda, multi-region access points, directory and table buckets, documentation
/// examples), a dash next to a dot (not a valid DNS label), and anything shaped like an IPv4
/// address, leading zeros included.
fn naming_error(name: &str) -> Option<&'static str> {
    const PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    let labels: Vec<&str> = name.split('.').collect();
    let ip_like = labels.len() == 4
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    if PREFIXES.iter().any(|p| name.starts_with(p)) || SUFFIXES.iter().any(|s| name.ends_with(s)) {
        Some("The specified bucket is not valid: its prefix or suffix is reserved by S3")
    } else if name.contains(".-") || name.contains("-.") {
        Some("The specified bucket is not valid: a dash may not be next to a dot")
    } else if ip_like {
        Some("The specified bucket is not valid: it must not be formatted as an IP address")
    } else {
        None
    }
}

/// Whether creating a bucket one already owns succeeds and changes nothing: AWS's legacy
/// behaviour in us-east-1; every other region answers 409 BucketAlreadyOwnedByYou.
fn recreate_succeeds(region: &str) -> bool {
    region == "us-east-1"
}

impl Gateway {
    pub(super) async fn list_buckets_op(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let input = req.input;
        let max = match input.max_buckets {
            None => usize::MAX,
            Some(n @ 1..=10_000) => n as usize,
            Some(_) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "max-buckets must be between 1 and 10000"
                ))
            }
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        // The continuation token is the last name of the previous page.
        let after = input.continuation_token.clone().unwrap_or_default();
        let mut buckets = self.store.list_buckets().await.map_err(s3_err)?;
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        let mut page: Vec<Bucket> = buckets
            .into_iter()
            .filter(|b| b.name.starts_with(&prefix) && b.name > after)
            .take(max.saturating_add(1))
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ns)),
                bucket_region: Some(REGION.into()),
            })
            .collect();
        let more = page.len() > max;
        page.truncate(max);
        let next = more
            .then(|| page.last().and_then(|b| b.name.clone()))
            .flatten();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(page),
            owner: Some(owner()),
            prefix: input.prefix,
            continuation_token: next,
        }))
    }

    pub(super) async fn create_bucket_op(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        if RESERVED_BUCKETS.contains(&input.bucket.as_str()) {
            return Err(s3_error!(
                InvalidBucketName,
                "The bucket name {} is reserved by Strata",
                input.bucket
            ));
        }
        check_new_bucket(&input)?;
        if let Some(why) = naming_error(&input.bucket) {
            return Err(s3_error!(InvalidBucketName, "{why}"));
        }
        let constraint = input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|c| c.as_str().to_owned());
        if let Some(c) = constraint.filter(|c| !c.is_empty() && c != REGION) {
            return Err(s3_error!(
                InvalidLocationConstraint,
                "The specified location-constraint {c} is not valid for this endpoint (region {REGION})"
            ));
        }
        let mut config = std::collections::BTreeMap::new();
        if input.object_lock_enabled_for_bucket == Some(true) {
            config.insert(VERSIONING.to_owned(), b"Enabled".to_vec());
            config.insert(OBJECT_LOCK.to_owned(), LockConfig::default().encode());
        }
        match self.store.make_bucket_with(&input.bucket, config).await {
            Err(StorageError::BucketExists) if recreate_succeeds(REGION) => {}
            r => r.map_err(s3_err)?,
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", input.bucket)),
        }))
    }

    pub(super) async fn head_bucket_op(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        require_bucket(&self.store, &req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(REGION.into()),
            ..Default::default()
        }))
    }

    pub(super) async fn delete_bucket_op(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.store
            .delete_bucket(&req.input.bucket)
            .await
            .map_err(s3_err)?;
        self.replicator.configured(&req.input.bucket, None);
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(super) async fn get_bucket_location_op(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        require_bucket(&self.store, &req.input.bucket).await?;
        // us-east-1 is reported as an empty LocationConstraint, as AWS does.
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_rules_beyond_s3s() {
        for bad in [
            "xn--abc",
            "sthree-bucket",
            "sthree-configurator-x",
            "amzn-s3-demo-bucket",
            "bucket-s3alias",
            "bucket--ol-s3",
            "bucket.mrap",
            "bucket--x-s3",
            "bucket--table-s3",
            "my-.bucket",
            "my.-bucket",
            "192.168.5.4",
            "192.168.05.004",
            "999.1.1.1",
        ] {
            assert!(naming_error(bad).is_some(), "{bad}");
        }
        for good in [
            "my-bucket",
            "my.bucket.1",
            "1.2.3",
            "1.2.3.4.5",
            "a-b.c-d",
            "s3alias-x",
        ] {
            assert_eq!(naming_error(good), None, "{good}");
        }
    }

    #[test]
    fn only_us_east_1_lets_an_owner_create_again() {
        assert!(recreate_succeeds("us-east-1"));
        assert!(!recreate_succeeds("eu-west-1"));
    }
}
