//! GetObjectAttributes: what HeadObject and ListParts tell about a version, in one request,
//! limited to the attributes asked for.

use super::checksum::{of_stored, Algorithm};
use super::{etag, timestamp, Gateway};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use storage::meta::ObjectVersion;

/// The default, and the most one page lists.
const DEFAULT_MAX_PARTS: i32 = 1000;

/// The attributes a request names.
#[derive(Default)]
struct Wanted {
    etag: bool,
    checksum: bool,
    parts: bool,
    storage_class: bool,
    size: bool,
}

impl Wanted {
    fn parse(list: &[ObjectAttributes]) -> S3Result<Self> {
        let mut w = Wanted::default();
        // One header, comma-separated; s3s may hand it over as one element.
        for a in list.iter().flat_map(|a| a.as_str().split(',')) {
            let flag = match a.trim() {
                ObjectAttributes::ETAG => &mut w.etag,
                ObjectAttributes::CHECKSUM => &mut w.checksum,
                ObjectAttributes::OBJECT_PARTS => &mut w.parts,
                ObjectAttributes::STORAGE_CLASS => &mut w.storage_class,
                ObjectAttributes::OBJECT_SIZE => &mut w.size,
                _ => {
                    return Err(s3_error!(
                        InvalidArgument,
                        "Invalid attribute name specified."
                    ))
                }
            };
            *flag = true;
        }
        Ok(w)
    }
}

/// The whole-object checksum; a composite one without its `-N` part count, as S3 shows it here.
fn whole_checksum(obj: &ObjectVersion) -> Option<Checksum> {
    let stored = obj.checksum.as_ref()?;
    let mut shown = stored.clone();
    if let Some((value, _count)) = stored.value.rsplit_once('-') {
        shown.value = value.to_owned();
    }
    Some(Checksum {
        checksum_type: Some(ChecksumType::from(stored.kind.clone())),
        ..of_stored(&shown)
    })
}

/// A page of a multipart object's parts; none for an object written in one PUT. Parts are
/// listed only when the object carries an additional checksum, as in S3.
fn object_parts(
    obj: &ObjectVersion,
    marker: Option<i32>,
    max: Option<i32>,
) -> S3Result<Option<GetObjectAttributesParts>> {
    if !obj.from_multipart() {
        return Ok(None);
    }
    let max = max.unwrap_or(DEFAULT_MAX_PARTS).min(DEFAULT_MAX_PARTS);
    let marker = marker.unwrap_or(0);
    if max < 0 || marker < 0 {
        return Err(s3_error!(
            InvalidArgument,
            "max-parts and part-number-marker must not be negative"
        ));
    }
    let algorithm = obj
        .checksum
        .as_ref()
        .and_then(|c| Algorithm::from_name(&c.algorithm));
    let after: Vec<_> = obj
        .parts
        .iter()
        .filter(|p| p.number as i32 > marker)
        .collect();
    let page = &after[..after.len().min(max as usize)];
    let truncated = page.len() < after.len();
    let parts = algorithm.map(|a| {
        page.iter()
            .map(|p| {
                let c = p
                    .checksum
                    .clone()
                    .map(|v| super::checksum::single(a, v))
                    .unwrap_or_default();
                ObjectPart {
                    part_number: Some(p.number as i32),
                    size: Some(p.size as i64),
                    checksum_crc32: c.checksum_crc32,
                    checksum_crc32c: c.checksum_crc32c,
                    checksum_crc64nvme: c.checksum_crc64nvme,
                    checksum_sha1: c.checksum_sha1,
                    checksum_sha256: c.checksum_sha256,
                }
            })
            .collect()
    });
    Ok(Some(GetObjectAttributesParts {
        is_truncated: Some(truncated),
        max_parts: Some(max),
        // An empty page (max-parts 0) resumes where it started.
        next_part_number_marker: Some(page.last().map_or(marker, |p| p.number as i32)),
        part_number_marker: Some(marker),
        parts,
        total_parts_count: Some(obj.parts.len() as i32),
    }))
}

impl Gateway {
    pub(super) async fn get_object_attributes_op(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        let input = req.input;
        let wanted = Wanted::parse(&input.object_attributes)?;
        let (view, version_id, _) = self
            .read_view(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        let obj = view.object();
        Ok(S3Response::new(GetObjectAttributesOutput {
            checksum: wanted.checksum.then(|| whole_checksum(obj)).flatten(),
            delete_marker: None,
            e_tag: wanted.etag.then(|| etag(&obj.etag)),
            last_modified: Some(timestamp(view.version.mod_time_ns)),
            object_parts: if wanted.parts {
                object_parts(obj, input.part_number_marker, input.max_parts)?
            } else {
                None
            },
            object_size: wanted.size.then_some(obj.size as i64),
            request_charged: None,
            storage_class: wanted
                .storage_class
                .then(|| StorageClass::from(obj.storage_class.clone())),
            version_id,
        }))
    }
}
