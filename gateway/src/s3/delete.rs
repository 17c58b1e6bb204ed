//! DeleteObject and DeleteObjects.

use super::{require_bucket, Gateway};
use crate::s3::error::s3_err;
use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

/// Most keys one DeleteObjects request may name.
const MAX_DELETE_KEYS: usize = 1000;

impl Gateway {
    pub(super) async fn delete_object_op(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        if input.version_id.as_deref().is_some_and(|v| v != "null") {
            return Err(s3_error!(
                NoSuchVersion,
                "The specified version does not exist."
            ));
        }
        let set = self.store.set_for(&input.bucket, &input.key);
        set.delete_object(&input.bucket, &input.key)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    pub(super) async fn delete_objects_op(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        let objects = input.delete.objects;
        if objects.is_empty() || objects.len() > MAX_DELETE_KEYS {
            return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let bucket = input.bucket.as_str();
        let results: Vec<(ObjectIdentifier, S3Result<()>)> = futures::stream::iter(objects)
            .map(|o| async move {
                let r = if o.version_id.as_deref().is_some_and(|v| v != "null") {
                    Err(s3_error!(
                        NoSuchVersion,
                        "The specified version does not exist."
                    ))
                } else {
                    self.store
                        .set_for(bucket, &o.key)
                        .delete_object(bucket, &o.key)
                        .await
                        .map_err(s3_err)
                };
                (o, r)
            })
            .buffered(16)
            .collect()
            .await;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (o, r) in results {
            match r {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(o.key),
                    version_id: o.version_id,
                    ..Default::default()
                }),
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                    key: Some(o.key),
                    version_id: o.version_id,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }
}
