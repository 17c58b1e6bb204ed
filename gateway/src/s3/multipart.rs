//! Multipart uploads: create, upload part (and part copy), complete, abort, list parts and
//! list uploads.

use super::acl::check_object_acl;
use super::bucket::owner;
use super::bucket_lifecycle::{abort_of_upload, expiration_of_version};
use super::checksum::{self, checksums_of, fill_checksums, Algorithm};
use super::copy::SourceConditions;
use super::list::{encode_name, wants_url};
use super::lock::new_version_lock;
use super::put::{write_precondition, IncomingBody, StagedBody};
use super::versioning::{versioning, written_version_header};
use super::{
    content_headers, etag, parse_tagging, require_bucket, storage_class, timestamp, user_metadata,
    Gateway,
};
use crate::s3::error::s3_err;
use s3s::dto::*;
use s3s::{s3_error, S3ErrorCode, S3Request, S3Response, S3Result};
use storage::drive::PartRecord;
use storage::meta::{StoredChecksum, UploadRecord, VersionRecord};
use storage::set::etag_matches;
use storage::{PutOptions, StorageError};
use uuid::Uuid;

/// Largest part (AWS: 5 GiB).
const MAX_PART_SIZE: i64 = 5 * 1024 * 1024 * 1024;
/// Highest part number.
const MAX_PART_NUMBER: i32 = 10_000;

fn part_number(n: i32) -> S3Result<u32> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(n as u32)
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ))
    }
}

fn upload_id(id: &str) -> S3Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| s3_err(StorageError::NoSuchUpload))
}

/// `x-amz-mp-object-size`, when sent, must be the sum of the listed parts.
fn check_object_size(want: Option<i64>, chosen: &[Option<&PartRecord>]) -> S3Result<()> {
    let Some(want) = want else { return Ok(()) };
    let total: u64 = chosen.iter().flatten().map(|p| p.size).sum();
    if u64::try_from(want).ok() != Some(total) {
        return Err(s3_error!(
            InvalidRequest,
            "The provided x-amz-mp-object-size ({want}) does not match the size of the parts ({total})"
        ));
    }
    Ok(())
}

/// The part checksums a completion lists must be the ones the parts were uploaded with.
fn check_part_checksums(
    a: Algorithm,
    completed: &[CompletedPart],
    chosen: &[Option<&PartRecord>],
) -> S3Result<()> {
    for (listed, stored) in completed.iter().zip(chosen) {
        let (Some(listed), Some(stored)) = (a.pick(&checksums_of!(listed)), stored) else {
            continue;
        };
        if stored.checksum.as_deref() != Some(listed.as_str()) {
            return Err(s3_error!(
                InvalidPart,
                "The {} checksum of part {} does not match the uploaded part",
                a.name(),
                stored.number
            ));
        }
    }
    Ok(())
}

/// The whole object's checksum, of the upload's type, from the parts' checksums; checked
/// against the value the client sent with the completion, when it sent one.
fn whole_checksum(
    a: Algorithm,
    upload: &UploadRecord,
    sent: &Checksum,
    sent_type: Option<&ChecksumType>,
    chosen: &[Option<&PartRecord>],
) -> S3Result<Option<StoredChecksum>> {
    let kind = upload
        .checksum_type
        .as_deref()
        .unwrap_or(ChecksumType::COMPOSITE);
    if let Some(t) = sent_type.filter(|t| t.as_str() != kind) {
        return Err(s3_error!(
            InvalidRequest,
            "The upload was created using the {kind} checksum mode. The complete request must use the same checksum mode, not {}",
            t.as_str()
        ));
    }
    let parts: Option<Vec<(String, u64)>> = chosen
        .iter()
        .map(|p| p.and_then(|p| Some((p.checksum.clone()?, p.size))))
        .collect();
    let value = parts.and_then(|parts| match kind {
        ChecksumType::FULL_OBJECT => checksum::full_object(a, &parts),
        _ => {
            let values: Vec<String> = parts.into_iter().map(|(v, _)| v).collect();
            checksum::composite(a, &values)
        }
    });
    let Some(value) = value else {
        return Ok(None);
    };
    if let Some(claimed) = a.pick(sent) {
        // A composite value may come with or without its `-N` suffix.
        let bare = |v: &str| v.split('-').next().unwrap_or_default().to_owned();
        if bare(&claimed) != bare(&value) {
            return Err(s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum",
                a.name()
            ));
        }
    }
    Ok(Some(StoredChecksum {
        algorithm: a.name().into(),
        value,
        kind: kind.to_owned(),
    }))
}

/// How long after a completion its retry is answered as the completion was (1 hour; AWS
/// documents no figure, only that a retried completion succeeds).
const COMPLETION_RETRY_WINDOW_NS: i64 = 3_600 * 1_000_000_000;

/// The (part number, ETag) list of a CompleteMultipartUpload body.
fn requested_parts(completed: &[CompletedPart]) -> S3Result<Vec<(u32, String)>> {
    let requested: Vec<(u32, String)> = completed
        .iter()
        .map(|p| {
            let n = part_number(p.part_number.unwrap_or(0))?;
            let e = p
                .e_tag
                .as_ref()
                .map(|e| e.value().to_owned())
                .ok_or_else(|| s3_error!(InvalidPart, "Every part needs an ETag"))?;
            Ok((n, e))
        })
        .collect::<S3Result<_>>()?;
    if requested.is_empty() {
        return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"));
    }
    Ok(requested)
}

/// CompleteMultipartUpload's answer for the version a completion made.
fn completion_output(
    input: &CompleteMultipartUploadInput,
    version: &VersionRecord,
) -> CompleteMultipartUploadOutput {
    let obj = version.object.as_ref();
    let mut out = CompleteMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        e_tag: obj.map(|o| etag(&o.etag)),
        version_id: written_version_header(version),
        ..Default::default()
    };
    if let Some(c) = obj.and_then(|o| o.checksum.as_ref()) {
        fill_checksums!(out, checksum::of_stored(c));
        out.checksum_type = Some(ChecksumType::from(c.kind.clone()));
    }
    out
}

fn upload_algorithm(u: &UploadRecord) -> Option<Algorithm> {
    u.checksum_algorithm
        .as_deref()
        .and_then(Algorithm::from_name)
}

/// The checksum type of a new upload: FULL_OBJECT (a CRC of the whole object, combined from
/// the parts' CRCs) or COMPOSITE (a checksum of the parts' checksums), as AWS allows them.
fn checksum_type(
    algorithm: Option<Algorithm>,
    asked: Option<&ChecksumType>,
) -> S3Result<Option<String>> {
    let Some(a) = algorithm else {
        return match asked {
            None => Ok(None),
            Some(_) => Err(s3_error!(
                InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header"
            )),
        };
    };
    let kind = match asked.map(ChecksumType::as_str) {
        None if a == Algorithm::Crc64Nvme => ChecksumType::FULL_OBJECT,
        None => ChecksumType::COMPOSITE,
        Some(ChecksumType::FULL_OBJECT) if !a.has_full_object_form() => {
            return Err(s3_error!(
                InvalidRequest,
                "The FULL_OBJECT checksum type cannot be used with the {} checksum algorithm",
                a.name()
            ));
        }
        Some(ChecksumType::COMPOSITE) if a == Algorithm::Crc64Nvme => {
            return Err(s3_error!(
                InvalidRequest,
                "The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm"
            ));
        }
        Some(t @ (ChecksumType::FULL_OBJECT | ChecksumType::COMPOSITE)) => t,
        Some(other) => {
            return Err(s3_error!(
                InvalidRequest,
                "Value for x-amz-checksum-type header is invalid: {other}"
            ));
        }
    };
    Ok(Some(kind.to_owned()))
}

impl Gateway {
    async fn open_upload(&self, bucket: &str, key: &str, id: &str) -> S3Result<UploadRecord> {
        require_bucket(&self.store, bucket).await?;
        let id = upload_id(id)?;
        self.store
            .set_for(bucket, key)
            .upload(bucket, key, id)
            .await
            .map_err(s3_err)
    }

    pub(super) async fn create_multipart_upload_op(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        check_object_acl!(input)?;
        let (retention, legal_hold) = new_version_lock(
            &bucket,
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.as_ref(),
            None,
        )?;
        let algorithm = input.checksum_algorithm.as_ref().map(|a| {
            Algorithm::from_name(a.as_str()).ok_or_else(|| {
                s3_error!(
                    InvalidRequest,
                    "Checksum algorithm {} is not supported",
                    a.as_str()
                )
            })
        });
        let algorithm = algorithm.transpose()?;
        let checksum_type = checksum_type(algorithm, input.checksum_type.as_ref())?;
        let opts = PutOptions {
            headers: content_headers(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.expires,
                input.website_redirect_location,
            )?,
            user_metadata: user_metadata(input.metadata)?,
            storage_class: storage_class(input.storage_class)?,
            tags: parse_tagging(input.tagging.as_deref())?,
            checksum: algorithm
                .zip(checksum_type.clone())
                .map(|(a, kind)| StoredChecksum {
                    algorithm: a.name().into(),
                    value: String::new(),
                    kind,
                }),
            retention,
            legal_hold,
            ..Default::default()
        };
        let set = self.store.set_for(&input.bucket, &input.key);
        let upload = set
            .create_upload(&input.bucket, &input.key, &opts, checksum_type.clone())
            .await
            .map_err(s3_err)?;
        let abort = abort_of_upload(
            &bucket,
            &input.key,
            upload.initiated_ns,
            self.lifecycle_clock,
        );
        Ok(S3Response::new(CreateMultipartUploadOutput {
            abort_date: abort.as_ref().map(|a| a.0.clone()),
            abort_rule_id: abort.map(|a| a.1),
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload.upload_id.to_string()),
            checksum_algorithm: algorithm.map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
            checksum_type: checksum_type.map(ChecksumType::from),
            ..Default::default()
        }))
    }

    pub(super) async fn upload_part_op(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let S3Request {
            input,
            headers,
            trailing_headers,
            ..
        } = req;
        let number = part_number(input.part_number)?;
        let upload = self
            .open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        if input.content_length.is_some_and(|l| l > MAX_PART_SIZE) {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size."
            ));
        }
        let (staged, checksum) = self
            .stage_verified(
                &input.bucket,
                &input.key,
                IncomingBody {
                    body: input.body,
                    headers: &headers,
                    trailers: trailing_headers,
                },
                upload_algorithm(&upload),
                number,
            )
            .await?;
        let set = self.store.set_for(&input.bucket, &input.key);
        let part = set
            .commit_part(
                upload.upload_id,
                staged,
                checksum.as_ref().map(|c| c.value.clone()),
            )
            .await
            .map_err(s3_err)?;
        let mut out = UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
            ..Default::default()
        };
        if let Some(c) = checksum {
            fill_checksums!(out, checksum::of_stored(&c));
        }
        let mut resp = S3Response::new(out);
        // UploadPart's answer names the abort rule too; s3s's output has no field for it.
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        if let Some((date, rule)) = abort_of_upload(
            &bucket,
            &input.key,
            upload.initiated_ns,
            self.lifecycle_clock,
        ) {
            let date = super::http_date(&date).unwrap_or_default();
            for (name, value) in [("x-amz-abort-date", date), ("x-amz-abort-rule-id", rule)] {
                if let Ok(v) = http::HeaderValue::try_from(value) {
                    resp.headers.insert(name, v);
                }
            }
        }
        Ok(resp)
    }

    pub(super) async fn upload_part_copy_op(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let number = part_number(input.part_number)?;
        let upload = self
            .open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let conditions = SourceConditions {
            if_match: input.copy_source_if_match,
            if_none_match: input.copy_source_if_none_match,
            if_modified_since: input.copy_source_if_modified_since,
            if_unmodified_since: input.copy_source_if_unmodified_since,
        };
        let source = self
            .open_source(
                &input.copy_source,
                &conditions,
                input.copy_source_range.as_deref(),
            )
            .await?;
        if source.len as i64 > MAX_PART_SIZE {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size."
            ));
        }
        let algorithm = upload_algorithm(&upload);
        let StagedBody { staged, computed } = self
            .stage_body(
                &input.bucket,
                &input.key,
                source.body,
                algorithm,
                number,
                false,
            )
            .await?;
        if staged.size != source.len {
            return Err(s3_err(StorageError::IncompleteBody(
                "the copy source changed while it was read".into(),
            )));
        }
        let set = self.store.set_for(&input.bucket, &input.key);
        let part = set
            .commit_part(
                upload.upload_id,
                staged,
                computed.as_ref().map(|(_, v)| v.clone()),
            )
            .await
            .map_err(s3_err)?;
        let copy_source_version_id = source.version_id;
        let mut result = CopyPartResult {
            e_tag: Some(etag(&part.etag)),
            last_modified: Some(timestamp(part.mod_time_ns)),
            ..Default::default()
        };
        if let Some((a, v)) = computed {
            fill_checksums!(result, checksum::single(a, v));
        }
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(result),
            copy_source_version_id,
            ..Default::default()
        }))
    }

    pub(super) async fn complete_multipart_upload_op(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let mut input = req.input;
        let completed = input
            .multipart_upload
            .take()
            .and_then(|m| m.parts)
            .unwrap_or_default();
        let upload = match self
            .open_upload(&input.bucket, &input.key, &input.upload_id)
            .await
        {
            Err(e) if *e.code() == S3ErrorCode::NoSuchUpload => {
                let retried = self.repeated_completion(&input, &completed).await?;
                return retried.map(S3Response::new).ok_or(e);
            }
            r => r?,
        };
        let requested = requested_parts(&completed)?;
        let set = self.store.set_for(&input.bucket, &input.key);
        let algorithm = upload_algorithm(&upload);
        let checksum = match (algorithm, input.mpu_object_size) {
            (None, None) => None,
            (algorithm, size) => {
                let parts = set.parts(upload.upload_id).await.map_err(s3_err)?;
                let chosen: Vec<Option<&PartRecord>> = requested
                    .iter()
                    .map(|(n, etag)| {
                        let p = parts.iter().find(|p| p.number == *n);
                        p.filter(|p| etag_matches(etag, &p.etag))
                    })
                    .collect();
                // A missing part or a bad order is the storage layer's InvalidPart or
                // InvalidPartOrder, which the client should see first.
                let ordered = requested.windows(2).all(|w| w[0].0 < w[1].0);
                if ordered && chosen.iter().all(Option::is_some) {
                    check_object_size(size, &chosen)?;
                }
                match algorithm {
                    None => None,
                    Some(a) => {
                        check_part_checksums(a, &completed, &chosen)?;
                        let sent = checksums_of!(input);
                        let sent_type = input.checksum_type.as_ref();
                        whole_checksum(a, &upload, &sent, sent_type, &chosen)?
                    }
                }
            }
        };
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        let state = versioning(&bucket);
        let opts = PutOptions {
            checksum,
            precondition: write_precondition(&req.headers)?,
            versioning: state,
            retention: upload.retention.clone(),
            legal_hold: upload.legal_hold,
            replica: super::replication::replica_of(
                &req.headers,
                &req.uri,
                req.credentials.is_some(),
            )?,
            ..Default::default()
        };
        let version = match set.complete_upload(&upload, &requested, opts).await {
            // A retry that overlapped the first completion: answer as the first did.
            Err(StorageError::NoSuchUpload) => {
                let retried = self.repeated_completion(&input, &completed).await?;
                return retried
                    .map(S3Response::new)
                    .ok_or_else(|| s3_err(StorageError::NoSuchUpload));
            }
            r => r.map_err(s3_err)?,
        };
        let mut out = completion_output(&input, &version);
        out.expiration = version.object.as_ref().and_then(|o| {
            expiration_of_version(
                &bucket,
                &input.key,
                o,
                version.mod_time_ns,
                self.lifecycle_clock,
            )
        });
        Ok(S3Response::new(out))
    }

    /// The answer to a completion of an upload that already completed, with the same part
    /// list, within `COMPLETION_RETRY_WINDOW`: the same as the first answer (SDKs retry a
    /// completion whose answer was lost, and must not report a failed upload of an object
    /// that exists). `None` (so NoSuchUpload) otherwise.
    async fn repeated_completion(
        &self,
        input: &CompleteMultipartUploadInput,
        completed: &[CompletedPart],
    ) -> S3Result<Option<CompleteMultipartUploadOutput>> {
        let (Ok(id), Ok(requested)) = (upload_id(&input.upload_id), requested_parts(completed))
        else {
            return Ok(None);
        };
        let version = self
            .store
            .set_for(&input.bucket, &input.key)
            .completed_version(&input.bucket, &input.key, id)
            .await
            .map_err(s3_err)?;
        let Some(version) = version else {
            return Ok(None);
        };
        let recent = storage::meta::now_ns() - version.mod_time_ns < COMPLETION_RETRY_WINDOW_NS;
        let same_parts = version.object.as_ref().is_some_and(|o| {
            o.parts.len() == requested.len()
                && o.parts
                    .iter()
                    .zip(&requested)
                    .all(|(p, (n, e))| p.number == *n && etag_matches(e, &p.etag))
        });
        Ok((recent && same_parts).then(|| completion_output(input, &version)))
    }

    pub(super) async fn abort_multipart_upload_op(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let upload = self
            .open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        self.store
            .set_for(&input.bucket, &input.key)
            .abort_upload(&upload)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn list_parts_op(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let upload = self
            .open_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let max = input.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
        let parts = self
            .store
            .set_for(&input.bucket, &input.key)
            .parts(upload.upload_id)
            .await
            .map_err(s3_err)?;
        let after: Vec<_> = parts.into_iter().filter(|p| p.number > marker).collect();
        let truncated = after.len() > max;
        let page: Vec<_> = after.into_iter().take(max).collect();
        let algorithm = upload_algorithm(&upload);
        let next = page.last().map(|p| p.number as i32);
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        let abort = abort_of_upload(
            &bucket,
            &input.key,
            upload.initiated_ns,
            self.lifecycle_clock,
        );
        let parts = page
            .into_iter()
            .map(|p| {
                let fields = match (algorithm, p.checksum.clone()) {
                    (Some(a), Some(v)) => checksum::single(a, v),
                    _ => Checksum::default(),
                };
                Part {
                    part_number: Some(p.number as i32),
                    e_tag: Some(etag(&p.etag)),
                    size: Some(p.size as i64),
                    last_modified: Some(timestamp(p.mod_time_ns)),
                    checksum_crc32: fields.checksum_crc32,
                    checksum_crc32c: fields.checksum_crc32c,
                    checksum_crc64nvme: fields.checksum_crc64nvme,
                    checksum_sha1: fields.checksum_sha1,
                    checksum_sha256: fields.checksum_sha256,
                }
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max as i32),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: if truncated { next } else { None },
            is_truncated: Some(truncated),
            parts: Some(parts),
            initiator: Some(Initiator {
                id: owner().id,
                display_name: owner().display_name,
            }),
            owner: Some(owner()),
            storage_class: Some(StorageClass::from(upload.storage_class)),
            checksum_algorithm: algorithm.map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
            checksum_type: upload.checksum_type.clone().map(ChecksumType::from),
            abort_date: abort.as_ref().map(|a| a.0.clone()),
            abort_rule_id: abort.map(|a| a.1),
            ..Default::default()
        }))
    }

    pub(super) async fn list_multipart_uploads_op(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        require_bucket(&self.store, &input.bucket).await?;
        let max = input.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().unwrap_or_default();
        let key_marker = input.key_marker.clone().unwrap_or_default();
        let id_marker = input.upload_id_marker.clone().unwrap_or_default();
        let url = wants_url(&input.encoding_type)?;
        let mut all = self
            .store
            .list_uploads(&input.bucket)
            .await
            .map_err(s3_err)?;
        // AWS lists by key, and one key's uploads oldest first (by initiation time).
        all.sort_by(|a, b| {
            (&a.key, a.initiated_ns, a.upload_id).cmp(&(&b.key, b.initiated_ns, b.upload_id))
        });
        // An upload-id marker continues after that upload in this order, found by the time
        // its id carries even when the upload has ended since; an unreadable one skips all of
        // the marker key's uploads.
        let marker_place = Uuid::parse_str(&id_marker).ok().and_then(|id| {
            let listed = all
                .iter()
                .find(|u| u.upload_id == id)
                .map(|u| u.initiated_ns);
            Some((listed.or_else(|| storage::meta::v7_time_ns(id))?, id))
        });
        let mut uploads = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut truncated = false;
        let mut last: Option<(String, String)> = None;
        for u in all {
            if !u.key.starts_with(&prefix) {
                continue;
            }
            let after_marker = if id_marker.is_empty() {
                u.key > key_marker || key_marker.is_empty()
            } else {
                u.key > key_marker
                    || (u.key == key_marker
                        && marker_place.is_some_and(|m| (u.initiated_ns, u.upload_id) > m))
            };
            if !after_marker {
                continue;
            }
            let rolled = (!delimiter.is_empty())
                .then(|| u.key[prefix.len()..].find(&delimiter))
                .flatten();
            if let Some(i) = rolled {
                let cp = u.key[..prefix.len() + i + delimiter.len()].to_owned();
                if prefixes.last() == Some(&cp) {
                    continue;
                }
                if uploads.len() + prefixes.len() == max {
                    truncated = true;
                    break;
                }
                last = Some((cp.clone(), String::new()));
                prefixes.push(cp);
                continue;
            }
            if uploads.len() + prefixes.len() == max {
                truncated = true;
                break;
            }
            last = Some((u.key.clone(), u.upload_id.to_string()));
            uploads.push(MultipartUpload {
                key: Some(encode_name(&u.key, url)),
                upload_id: Some(u.upload_id.to_string()),
                initiated: Some(timestamp(u.initiated_ns)),
                storage_class: Some(StorageClass::from(u.storage_class.clone())),
                owner: Some(owner()),
                initiator: Some(Initiator {
                    id: owner().id,
                    display_name: owner().display_name,
                }),
                checksum_algorithm: upload_algorithm(&u)
                    .map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
                checksum_type: u.checksum_type.clone().map(ChecksumType::from),
            });
        }
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix.map(|p| encode_name(&p, url)),
            delimiter: input.delimiter.filter(|d| !d.is_empty()),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: truncated
                .then(|| last.as_ref().map(|l| l.0.clone()))
                .flatten(),
            next_upload_id_marker: truncated
                .then(|| last.as_ref().map(|l| l.1.clone()))
                .flatten(),
            uploads: Some(uploads),
            common_prefixes: Some(
                prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(encode_name(&p, url)),
                    })
                    .collect(),
            ),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}
