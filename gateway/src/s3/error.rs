//! One mapping from storage errors to the S3 error a client sees.

use crate::idle_body::IDLE_MESSAGE;
use s3s::{s3_error, S3Error, S3ErrorCode};
use storage::StorageError;

/// Converts a storage error to the AWS error code, status and message.
pub fn s3_err(e: StorageError) -> S3Error {
    match e {
        StorageError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        StorageError::BucketExists => {
            s3_error!(BucketAlreadyOwnedByYou, "Your previous request to create the named bucket succeeded and you already own it.")
        }
        StorageError::BucketNotEmpty => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"),
        StorageError::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        StorageError::NoSuchVersion => s3_error!(NoSuchVersion, "The specified version does not exist."),
        StorageError::DeleteMarker {
            version_id,
            mod_time_ns,
            addressed,
        } => {
            let mut e = if addressed {
                s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource.")
            } else {
                s3_error!(NoSuchKey, "The specified key does not exist.")
            };
            let mut headers = http::HeaderMap::new();
            headers.insert("x-amz-delete-marker", http::HeaderValue::from_static("true"));
            let id = version_id.map_or_else(|| "null".to_owned(), |id| id.to_string());
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                headers.insert("x-amz-version-id", v);
            }
            if addressed {
                if let Some(v) = super::last_modified(mod_time_ns) {
                    headers.insert(http::header::LAST_MODIFIED, v);
                }
            }
            e.set_headers(headers);
            e
        }
        StorageError::MethodNotAllowed => {
            s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource.")
        }
        StorageError::ObjectLocked(m) => S3Error::with_message(S3ErrorCode::AccessDenied, format!("Access Denied because object protected by object lock: {m}")),
        StorageError::NoSuchUpload => s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        StorageError::InvalidPart(m) => S3Error::with_message(S3ErrorCode::InvalidPart, m),
        StorageError::InvalidPartOrder => s3_error!(InvalidPartOrder, "The list of parts was not in ascending order. Parts must be ordered by part number."),
        StorageError::EntityTooSmall(n) => {
            s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size (part {n}).")
        }
        StorageError::Unavailable(m) => {
            let mut e = S3Error::with_message(S3ErrorCode::ServiceUnavailable, m);
            e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
            e
        }
        StorageError::InvalidObjectState => s3_error!(InvalidObjectState, "Restore is not allowed for the object's current storage class"),
        StorageError::PreconditionFailed => s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"),
        StorageError::BadDigest(m) => S3Error::with_message(S3ErrorCode::BadDigest, m),
        StorageError::IncompleteBody(m) => S3Error::with_message(S3ErrorCode::IncompleteBody, m),
        StorageError::Body(m) => body_error(m),
        StorageError::StorageFull => super::custom_error(
            "XStrataStorageFull",
            http::StatusCode::INSUFFICIENT_STORAGE,
            "Storage backend has reached its minimum free drive threshold. Please delete a few objects to proceed.",
        ),
        e @ StorageError::Quorum { what, .. } => {
            tracing::warn!(error = %e, "quorum not reached");
            // MinIO's wording (SlowDownRead / SlowDownWrite) under S3's code, which SDKs retry.
            let state = if what.contains("read") || what.contains("listing") { "unreadable" } else { "unwritable" };
            S3Error::with_message(S3ErrorCode::SlowDown, format!("Resource requested is {state}, please reduce your request rate: {e}"))
        }
        e => {
            tracing::error!(error = %e, "internal error");
            S3Error::with_message(S3ErrorCode::InternalError, "We encountered an internal error. Please try again.")
        }
    }
}

/// What S3 answers when a client stops sending its request.
pub fn request_timeout() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::RequestTimeout,
        "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
    )
}

/// Errors found while s3s decodes a request body (payload hash, chunk signatures, framing, a
/// client that stopped sending), told apart by the message of s3s's stream error.
fn body_error(message: String) -> S3Error {
    if message.contains(IDLE_MESSAGE) {
        request_timeout()
    } else if message.contains("Sha256Mismatch") {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        e.set_status_code(http::StatusCode::BAD_REQUEST);
        e
    } else if message.contains("SignatureMismatch") {
        S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided (chunk signature).",
        )
    } else {
        S3Error::with_message(S3ErrorCode::IncompleteBody, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn codes_and_statuses_match_aws() {
        let cases = [
            (StorageError::NoSuchBucket, "NoSuchBucket", 404),
            (StorageError::NoSuchKey, "NoSuchKey", 404),
            (StorageError::BucketNotEmpty, "BucketNotEmpty", 409),
            (StorageError::BucketExists, "BucketAlreadyOwnedByYou", 409),
            (StorageError::NoSuchUpload, "NoSuchUpload", 404),
            (StorageError::InvalidPartOrder, "InvalidPartOrder", 400),
            (StorageError::EntityTooSmall(1), "EntityTooSmall", 400),
            (StorageError::PreconditionFailed, "PreconditionFailed", 412),
            (StorageError::BadDigest("x".into()), "BadDigest", 400),
            (StorageError::NoSuchVersion, "NoSuchVersion", 404),
            (StorageError::ObjectLocked("x".into()), "AccessDenied", 403),
            (
                StorageError::DeleteMarker {
                    version_id: None,
                    mod_time_ns: 0,
                    addressed: true,
                },
                "MethodNotAllowed",
                405,
            ),
            (
                StorageError::Quorum {
                    what: "x",
                    got: 1,
                    needed: 2,
                },
                "SlowDown",
                503,
            ),
        ];
        for (e, code, status) in cases {
            let s = s3_err(e);
            assert_eq!(s.code().as_str(), code);
            assert_eq!(
                s.status_code(),
                Some(StatusCode::from_u16(status).unwrap()),
                "{code}"
            );
        }
    }
}
