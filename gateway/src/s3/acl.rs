//! Access control lists as S3 has them with ACLs disabled (Object Ownership
//! `BucketOwnerEnforced`, the default for new buckets): the owner has full control of every
//! bucket and object. ACLs can be read, and "set" only to what they already are; anything that
//! would grant more is refused rather than silently ignored, so nobody believes an object is
//! public when it is not.

use super::bucket::owner;
use super::{custom_error, require_bucket, Gateway};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

/// Canned ACLs that mean "the owner has full control, nobody else anything".
const OWNER_ONLY: [&str; 2] = ["private", "bucket-owner-full-control"];

fn acls_disabled() -> S3Error {
    custom_error(
        "AccessControlListNotSupported",
        http::StatusCode::BAD_REQUEST,
        "The bucket does not allow ACLs",
    )
}

/// The one grant every bucket and object has.
fn owner_full_control() -> Grants {
    let o = owner();
    vec![Grant {
        grantee: Some(Grantee {
            display_name: o.display_name,
            id: o.id,
            type_: Type::from_static(Type::CANONICAL_USER),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }]
}

/// Whether an `x-amz-grant-full-control` value names only the owner (`id="…"`).
fn names_only_owner(grant: &str) -> bool {
    let id = owner().id.unwrap_or_default();
    grant.split(',').all(|g| {
        g.trim()
            .strip_prefix("id=")
            .is_some_and(|v| v.trim_matches('"') == id)
    })
}

/// The ACL headers of a write: a canned ACL and `x-amz-grant-*` values.
pub struct AclHeaders<'a> {
    pub canned: Option<&'a str>,
    pub full_control: Option<&'a str>,
    /// Grants of READ, READ_ACP or WRITE_ACP (and WRITE on buckets).
    pub others: [Option<&'a str>; 4],
}

impl AclHeaders<'_> {
    /// Refuses headers that would grant anything beyond the owner's full control.
    pub fn check(&self) -> S3Result<()> {
        let canned_ok = self.canned.is_none_or(|c| OWNER_ONLY.contains(&c));
        let full_ok = self.full_control.is_none_or(names_only_owner);
        if canned_ok && full_ok && self.others.iter().all(Option::is_none) {
            Ok(())
        } else {
            Err(acls_disabled())
        }
    }
}

/// Checks the ACL headers of an object write (PUT, copy, multipart create, PutObjectAcl).
pub fn check_object_write(
    canned: Option<&ObjectCannedACL>,
    full_control: Option<&str>,
    read: Option<&str>,
    read_acp: Option<&str>,
    write_acp: Option<&str>,
) -> S3Result<()> {
    AclHeaders {
        canned: canned.map(ObjectCannedACL::as_str),
        full_control,
        others: [read, read_acp, write_acp, None],
    }
    .check()
}

/// Checks the ACL headers of an object write's input (`PutObjectInput`, `CopyObjectInput`,
/// `CreateMultipartUploadInput`: s3s types that share no trait).
macro_rules! check_object_acl {
    ($input:expr) => {
        $crate::s3::acl::check_object_write(
            $input.acl.as_ref(),
            $input.grant_full_control.as_deref(),
            $input.grant_read.as_deref(),
            $input.grant_read_acp.as_deref(),
            $input.grant_write_acp.as_deref(),
        )
    };
}
pub(crate) use check_object_acl;

/// Refuses an `AccessControlPolicy` document that grants anything beyond the owner's full
/// control.
fn check_policy(policy: Option<&AccessControlPolicy>) -> S3Result<()> {
    let Some(policy) = policy else { return Ok(()) };
    let id = owner().id;
    let grants = policy.grants.as_deref().unwrap_or_default();
    let only_owner = !grants.is_empty()
        && grants.iter().all(|g| {
            g.permission.as_ref().map(Permission::as_str) == Some(Permission::FULL_CONTROL)
                && g.grantee
                    .as_ref()
                    .is_some_and(|e| e.type_.as_str() == Type::CANONICAL_USER && e.id == id)
        });
    if only_owner {
        Ok(())
    } else {
        Err(acls_disabled())
    }
}

/// The ACL headers of a bucket request's input (`CreateBucketInput`, `PutBucketAclInput`).
macro_rules! bucket_acl_headers {
    ($input:expr) => {
        AclHeaders {
            canned: $input.acl.as_ref().map(BucketCannedACL::as_str),
            full_control: $input.grant_full_control.as_deref(),
            others: [
                $input.grant_read.as_deref(),
                $input.grant_read_acp.as_deref(),
                $input.grant_write.as_deref(),
                $input.grant_write_acp.as_deref(),
            ],
        }
    };
}

/// Checks the ACL headers of CreateBucket: a new bucket can only be private, with ACLs
/// disabled.
pub fn check_new_bucket(input: &CreateBucketInput) -> S3Result<()> {
    if let Some(o) = input
        .object_ownership
        .as_ref()
        .filter(|o| o.as_str() != ObjectOwnership::BUCKET_OWNER_ENFORCED)
    {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("Object ownership {} needs ACLs, which Strata does not support; use BucketOwnerEnforced", o.as_str()),
        ));
    }
    bucket_acl_headers!(input).check().map_err(|_| {
        custom_error(
            "InvalidBucketAclWithObjectOwnership",
            http::StatusCode::BAD_REQUEST,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
        )
    })
}

impl Gateway {
    pub(super) async fn get_bucket_acl_op(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        require_bucket(&self.store, &req.input.bucket).await?;
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(owner_full_control()),
            owner: Some(owner()),
        }))
    }

    pub(super) async fn put_bucket_acl_op(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        bucket_acl_headers!(input).check()?;
        check_policy(input.access_control_policy.as_ref())?;
        Ok(S3Response::new(PutBucketAclOutput {}))
    }

    pub(super) async fn get_object_acl_op(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        self.version_view(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        Ok(S3Response::new(GetObjectAclOutput {
            grants: Some(owner_full_control()),
            owner: Some(owner()),
            request_charged: None,
        }))
    }

    pub(super) async fn put_object_acl_op(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        self.version_view(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        // WRITE means nothing on an object; S3 refuses it like any other grant.
        check_object_write(
            input.acl.as_ref(),
            input.grant_full_control.as_deref(),
            input.grant_read.as_deref().or(input.grant_write.as_deref()),
            input.grant_read_acp.as_deref(),
            input.grant_write_acp.as_deref(),
        )?;
        check_policy(input.access_control_policy.as_ref())?;
        Ok(S3Response::new(PutObjectAclOutput {
            request_charged: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(canned: Option<&'a str>, full: Option<&'a str>) -> AclHeaders<'a> {
        AclHeaders {
            canned,
            full_control: full,
            others: [None; 4],
        }
    }

    #[test]
    fn only_owner_full_control_is_accepted() {
        let id = owner().id.unwrap();
        assert!(headers(None, None).check().is_ok());
        assert!(headers(Some("private"), None).check().is_ok());
        assert!(headers(Some("bucket-owner-full-control"), None)
            .check()
            .is_ok());
        assert!(headers(None, Some(&format!("id=\"{id}\""))).check().is_ok());
        assert!(headers(Some("public-read"), None).check().is_err());
        assert!(headers(None, Some("id=\"someone-else\"")).check().is_err());
        assert!(headers(
            None,
            Some(&format!(
                "id={id}, uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""
            ))
        )
        .check()
        .is_err());
        let read = AclHeaders {
            others: [
                Some("uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""),
                None,
                None,
                None,
            ],
            ..headers(None, None)
        };
        assert!(read.check().is_err());
    }

    #[test]
    fn policies_granting_more_than_owner_control_are_refused() {
        let mut policy = AccessControlPolicy {
            grants: Some(owner_full_control()),
            owner: Some(owner()),
        };
        assert!(check_policy(Some(&policy)).is_ok());
        policy.grants.as_mut().unwrap()[0].permission =
            Some(Permission::from_static(Permission::READ));
        assert!(check_policy(Some(&policy)).is_err());
        policy.grants = Some(vec![]);
        assert!(check_policy(Some(&policy)).is_err());
    }
}
