//! DeleteObject and DeleteObjects.

use super::versioning::{version_id_text, versioning, which};
use super::{checksum, Gateway};
use crate::s3::error::s3_err;
use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::{DeleteOptions, Deleted, Versioning};

/// Most keys one DeleteObjects request may name.
const MAX_DELETE_KEYS: usize = 1000;

impl Gateway {
    pub(super) async fn delete_object_op(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let replica =
            super::replication::replica_of(&req.headers, &req.uri, req.credentials.is_some())?;
        let input = req.input;
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        let state = versioning(&bucket);
        let deleted = self
            .store
            .set_for(&input.bucket, &input.key)
            .delete_version(
                &input.bucket,
                &input.key,
                which(input.version_id.as_deref())?,
                state,
                DeleteOptions {
                    bypass_governance: input.bypass_governance_retention.unwrap_or(false),
                    replica,
                    ..Default::default()
                },
            )
            .await
            .map_err(s3_err)?;
        let shown = state != Versioning::Unversioned || input.version_id.is_some();
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: deleted.delete_marker.then_some(true),
            version_id: shown.then(|| version_id_text(deleted.version_id)),
            ..Default::default()
        }))
    }

    pub(super) async fn delete_objects_op(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        checksum::require_integrity(&req.headers)?;
        let input = req.input;
        let record = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        let state = versioning(&record);
        let options = DeleteOptions {
            bypass_governance: input.bypass_governance_retention.unwrap_or(false),
            ..Default::default()
        };
        let objects = input.delete.objects;
        if objects.is_empty() || objects.len() > MAX_DELETE_KEYS {
            return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let bucket = input.bucket.as_str();
        let options = &options;
        let results: Vec<(ObjectIdentifier, S3Result<Deleted>)> = futures::stream::iter(objects)
            .map(|o| async move {
                let r = match which(o.version_id.as_deref()) {
                    Ok(w) => self
                        .store
                        .set_for(bucket, &o.key)
                        .delete_version(bucket, &o.key, w, state, options.clone())
                        .await
                        .map_err(s3_err),
                    Err(e) => Err(e),
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
                Ok(_) if quiet => {}
                Ok(d) => {
                    let marker = d.delete_marker.then_some(true);
                    // Removing a delete marker by its id names it as DeleteObject's
                    // headers do: DeleteMarker and DeleteMarkerVersionId.
                    let (version_id, marker_version) = match o.version_id {
                        Some(v) if d.delete_marker => (Some(v.clone()), Some(v)),
                        Some(v) => (Some(v), None),
                        None if state != Versioning::Unversioned => {
                            (None, Some(version_id_text(d.version_id)))
                        }
                        None => (None, None),
                    };
                    deleted.push(DeletedObject {
                        key: Some(o.key),
                        version_id,
                        delete_marker: marker,
                        delete_marker_version_id: marker_version,
                    })
                }
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
