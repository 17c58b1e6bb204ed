//! RestoreObject: a temporary local copy of a version that lives on a remote tier, for
//! `Days` days, as S3 restores archived objects (202 Accepted when the copy starts, 200 when
//! a copy is there and its expiry moves, 409 RestoreAlreadyInProgress while it is being made,
//! 403 InvalidObjectState for a version that is not on a tier).

use super::versioning::which;
use super::{custom_error, Gateway};
use crate::s3::error::s3_err;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use tiering::restore::Restoring;

/// The retrieval tiers S3 accepts; a copy from a Strata tier is made at the tier's speed
/// whichever is named.
const TIERS: [&str; 3] = ["Standard", "Bulk", "Expedited"];

impl Gateway {
    pub(super) async fn restore_object_op(
        &self,
        req: S3Request<RestoreObjectInput>,
    ) -> S3Result<S3Response<RestoreObjectOutput>> {
        let input = req.input;
        self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        let request = input
            .restore_request
            .ok_or_else(|| s3_error!(MalformedXML, "The RestoreRequest element is missing"))?;
        if request.type_.is_some() || request.select_parameters.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Select restores (Type SELECT) are not supported"
            ));
        }
        let tier = request
            .tier
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .or_else(|| {
                request
                    .glacier_job_parameters
                    .map(|g| g.tier.as_str().to_owned())
            });
        if let Some(t) = tier.filter(|t| !TIERS.contains(&t.as_str())) {
            return Err(s3_error!(
                MalformedXML,
                "Tier '{t}' is not one of Standard, Bulk, Expedited"
            ));
        }
        let days = match request.days {
            Some(d) if d >= 1 => d as u32,
            Some(_) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "Days must be a positive integer"
                ))
            }
            None => return Err(s3_error!(MalformedXML, "The Days element is missing")),
        };
        let addressed = which(input.version_id.as_deref())?;
        let restoring = self
            .tiering
            .restore(&input.bucket, &input.key, addressed, days)
            .await
            .map_err(s3_err)?;
        let status = match restoring {
            Restoring::Started => http::StatusCode::ACCEPTED,
            Restoring::Extended => http::StatusCode::OK,
            Restoring::InProgress => {
                return Err(custom_error(
                    "RestoreAlreadyInProgress",
                    http::StatusCode::CONFLICT,
                    "Object restore is already in progress",
                ))
            }
        };
        let mut resp = S3Response::new(RestoreObjectOutput::default());
        resp.headers.insert(
            crate::http_fixups::STATUS_HEADER,
            http::HeaderValue::from(status.as_u16()),
        );
        Ok(resp)
    }
}
