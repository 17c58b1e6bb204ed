//! Browser-form uploads (S3 POST Object) as AWS answers them. s3s parses the form, verifies its
//! signature and stores the file (through `S3::post_object`, `s3::post`); before it does, this
//! module reads the fields the form sends before its file and, once their signature verifies
//! with the root key:
//! - checks the policy with AWS's rules and messages (`policy`);
//! - expands `${filename}` in every field, as AWS does before checking the policy;
//! - ignores a `success_action_status` other than 200, 201 or 204, as AWS does (s3s refuses
//!   one that is not a number);
//! - refuses an `x-amz-checksum-algorithm` without the checksum field it names (s3s ignores
//!   the field, so the upload would be stored unchecked).
//!
//! More than 20 KiB before the file is refused before any of this (AWS's
//! MaxPostPreDataLengthExceededError): only that much of a form is ever buffered here.
//!
//! s3s checks every policy again with rules of its own, which differ from AWS's (it refuses
//! the `success_action_status` AWS ignores, or a quoted `content-length-range`), so it gets
//! the fields to act on with a policy restating exactly them (and the original
//! `content-length-range`, which only s3s can check, once it has read the file), signed with
//! the key the form was signed with. The file streams through unread (s3s itself reads it
//! whole into memory before the upload starts). A form whose signature does not verify here
//! reaches s3s unchanged, so a signature error is s3s's. After s3s, a 201's `PostResponse`
//! gets AWS's `Location`: the object's absolute URL.
//!
//! Sources: RESTObjectPOST, sigv4-HTTPPOSTForms and sigv4-HTTPPOSTConstructPolicy (developer
//! guide) for the fields, `${filename}`, the statuses and the 20 KiB of fields allowed before
//! the file; HTTPPOSTForms (SigV2) for its signature fields.

mod form;
mod policy;

use crate::auth::RootKey;
use crate::body_check;
use crate::s3::checksum::Algorithm;
use crate::s3::custom_error;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use form::{Field, Prefix, Scan};
use futures::{StreamExt, TryStreamExt};
use hmac::{Hmac, KeyInit, Mac};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::StreamBody;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use policy::{field, Condition, Policy};
use s3s::dto::{Timestamp, TimestampFormat};
use s3s::service::S3Service;
use s3s::{s3_error, Body, HttpError, S3Error, S3ErrorCode, StdError};
use sha1::Sha1;
use sha2::Sha256;
use time::OffsetDateTime;

/// Bytes a form may send before its file (AWS: 20 KiB), which are buffered to read them.
const MAX_FIELDS: usize = 20 * 1024;

/// Characters of a key kept as they are in the `Location` URL.
const KEY_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Passes a request to s3s; a browser-form upload (POST of `multipart/form-data` to a
/// bucket, without a query) is settled first as the module doc says. `virtual_bucket` is the
/// bucket the Host header names, for virtual-host-style requests.
pub async fn call(
    s3: &S3Service,
    root: &RootKey,
    virtual_bucket: Option<String>,
    req: Request<Body>,
) -> Result<Response<Body>, HttpError> {
    let Some(target) = Target::of(&req, virtual_bucket.as_deref()) else {
        return s3.call(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let mut body = Box::pin(body);
    let (prefix, mut read) = match read_fields(&mut body, &target.boundary).await {
        Fields::TooLong => {
            return Ok(body_check::response(&custom_error(
                "MaxPostPreDataLengthExceededError",
                StatusCode::BAD_REQUEST,
                "Your POST request fields preceding the upload file were too large.",
            )))
        }
        Fields::Other(read, error) => {
            let body = resumed(read, error, body);
            return s3.call(Request::from_parts(parts, body)).await;
        }
        Fields::Read(prefix, read) => (prefix, read),
    };
    let fields = match settle(&prefix, &target.bucket, root, OffsetDateTime::now_utc()) {
        Settled::Unverified => {
            let body = resumed(read, None, body);
            return s3.call(Request::from_parts(parts, body)).await;
        }
        Settled::Refused(e) => return Ok(body_check::response(&e)),
        Settled::Forward(fields) => fields,
    };
    let head = form::write(&fields, &prefix.file_headers, &target.boundary);
    let length = parts.headers.get(header::CONTENT_LENGTH);
    if let Some(length) = length.and_then(|l| l.to_str().ok()?.parse::<usize>().ok()) {
        let length = length.saturating_sub(prefix.len) + head.len();
        let length = HeaderValue::from(length);
        parts.headers.insert(header::CONTENT_LENGTH, length);
    }
    let location = object_url(&parts, &target, &fields);
    let file = read.split_off(prefix.len).freeze();
    let body = futures::stream::iter([Ok(Bytes::from(head)), Ok(file)]).chain(body);
    let resp = s3.call(Request::from_parts(parts, streamed(body))).await?;
    Ok(match location {
        Some(url) if resp.status() == StatusCode::CREATED => {
            crate::server::patch_body(resp, |xml| with_location(xml, &url)).await
        }
        _ => resp,
    })
}

/// Where a browser form uploads to.
struct Target {
    bucket: String,
    /// `/bucket` in the path (not the Host header).
    path_style: bool,
    boundary: String,
}

impl Target {
    fn of(req: &Request<Body>, virtual_bucket: Option<&str>) -> Option<Self> {
        if req.method() != Method::POST || req.uri().query().is_some_and(|q| !q.is_empty()) {
            return None;
        }
        let content_type = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
        let boundary = form::boundary(content_type)?;
        let path = percent_decode_str(req.uri().path()).decode_utf8().ok()?;
        let (bucket, path_style) = match virtual_bucket {
            Some(bucket) => ((path == "/").then(|| bucket.to_owned())?, false),
            None => {
                let name = path.strip_prefix('/')?;
                let name = name.strip_suffix('/').unwrap_or(name);
                let is_bucket = !name.is_empty() && !name.contains('/');
                (is_bucket.then(|| name.to_owned())?, true)
            }
        };
        Some(Self {
            bucket,
            path_style,
            boundary,
        })
    }
}

/// What reading the start of a form gave.
enum Fields {
    /// The fields and the file part's header, with every byte read (the file's first ones
    /// among them).
    Read(Prefix, BytesMut),
    /// More than `MAX_FIELDS` before the file.
    TooLong,
    /// Not a form `form` reads, or a body that failed: what was read, and the failure.
    Other(BytesMut, Option<StdError>),
}

async fn read_fields<S>(body: &mut S, boundary: &str) -> Fields
where
    S: futures::Stream<Item = Result<Bytes, StdError>> + Unpin,
{
    let mut read = BytesMut::new();
    loop {
        match form::scan(&read, boundary) {
            Scan::Complete(prefix) if prefix.len > MAX_FIELDS => return Fields::TooLong,
            Scan::Complete(prefix) => return Fields::Read(prefix, read),
            Scan::Partial if read.len() > MAX_FIELDS => return Fields::TooLong,
            Scan::Partial => {}
            Scan::Unreadable => return Fields::Other(read, None),
        }
        match body.next().await {
            Some(Ok(chunk)) => read.extend_from_slice(&chunk),
            Some(Err(e)) => return Fields::Other(read, Some(e)),
            None => return Fields::Other(read, None),
        }
    }
}

/// A body whose first bytes were read: they come first again, then the failure of the read
/// if there was one, then the rest.
fn resumed<S>(read: BytesMut, error: Option<StdError>, rest: S) -> Body
where
    S: futures::Stream<Item = Result<Bytes, StdError>> + Send + Sync + 'static,
{
    let items = [Ok(read.freeze())].into_iter().chain(error.map(Err));
    streamed(futures::stream::iter(items).chain(rest))
}

/// The largest piece of a form body given to s3s. Its form reader keeps the bytes that may
/// start a boundary (a chunk ending in `\r`) and adds the next chunk to them, failing past
/// 64 KiB; hyper's chunks reach 64 KiB, so a file holding `\r` bytes failed at random.
const MAX_CHUNK: usize = 32 * 1024;

/// A byte stream as a request body for s3s, in pieces of at most `MAX_CHUNK`.
fn streamed<S>(stream: S) -> Body
where
    S: futures::Stream<Item = Result<Bytes, StdError>> + Send + Sync + 'static,
{
    let pieces = stream.flat_map(|item| {
        let mut pieces = Vec::new();
        match item {
            Ok(mut chunk) => {
                while chunk.len() > MAX_CHUNK {
                    pieces.push(Ok(chunk.split_to(MAX_CHUNK)));
                }
                pieces.push(Ok(chunk));
            }
            Err(e) => pieces.push(Err(e)),
        }
        futures::stream::iter(pieces)
    });
    Body::http_body(StreamBody::new(pieces.map_ok(Frame::data)))
}

/// What becomes of a form whose fields were read.
#[derive(Debug)]
enum Settled {
    /// Its signature does not verify with the root key: s3s answers it.
    Unverified,
    Refused(S3Error),
    /// The fields s3s gets.
    Forward(Vec<Field>),
}

/// Verifies the form's signature, then checks it as AWS does; a form that passes gets the
/// fields s3s should act on, under a policy restating them.
fn settle(prefix: &Prefix, bucket: &str, root: &RootKey, now: OffsetDateTime) -> Settled {
    let pairs = pairs(&prefix.fields);
    // No bucket here takes anonymous writes. s3s would read the whole file into memory before
    // finding that out: an unsigned form is refused before its file is read.
    let signed = ["policy", "x-amz-signature", "signature"]
        .iter()
        .any(|name| field(&pairs, name).is_some());
    if !signed {
        return Settled::Refused(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Access Denied",
        ));
    }
    let Some(signer) = Signer::verify(&pairs, root) else {
        return Settled::Unverified;
    };
    let mut fields = prefix.fields.clone();
    let filename = prefix.filename.as_deref().unwrap_or_default();
    let filename = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    for f in &mut fields {
        f.value = f.value.replace("${filename}", filename);
    }
    let pairs = self::pairs(&fields);
    let checked = match field(&pairs, "key") {
        None => Err(missing_field("key")),
        Some(_) => Policy::parse(field(&pairs, "policy").unwrap_or_default())
            .and_then(|policy| policy.check(&pairs, bucket, now).map(|()| policy))
            .and_then(|policy| named_checksum(&pairs).map(|()| policy)),
    };
    match checked {
        Err(e) => Settled::Refused(e),
        Ok(policy) => {
            fields.retain(|f| {
                !f.name.eq_ignore_ascii_case("success_action_status")
                    || matches!(f.value.as_str(), "200" | "201" | "204")
            });
            restate(&mut fields, &policy, &signer);
            Settled::Forward(fields)
        }
    }
}

fn pairs(fields: &[Field]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|f| (f.name.clone(), f.value.clone()))
        .collect()
}

/// AWS's answer to a form without a field it needs before the file.
fn missing_field(name: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidArgument,
        format!("Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."),
    )
}

/// An `x-amz-checksum-algorithm` field must name an algorithm whose checksum field the form
/// carries (the PUT path checks the value).
fn named_checksum(fields: &[(String, String)]) -> Result<(), S3Error> {
    let Some(name) = field(fields, "x-amz-checksum-algorithm") else {
        return Ok(());
    };
    let Some(algorithm) = Algorithm::from_name(name) else {
        return Err(s3_error!(
            InvalidRequest,
            "Value for x-amz-checksum-algorithm header is invalid."
        ));
    };
    if field(fields, algorithm.header()).is_none() {
        return Err(s3_error!(
            InvalidRequest,
            "x-amz-checksum-algorithm specified, but no corresponding {} field was found.",
            algorithm.header()
        ));
    }
    Ok(())
}

/// Replaces the form's policy with one that names each field s3s will read, with the value it
/// will read (the last of its name), and keeps the original's expiry and size ranges; and
/// signs it.
fn restate(fields: &mut [Field], policy: &Policy, signer: &Signer) {
    let mut named = std::collections::BTreeSet::new();
    let mut conditions = Vec::new();
    for f in fields.iter().rev() {
        let name = f.name.to_ascii_lowercase();
        let signature = matches!(name.as_str(), "policy" | "x-amz-signature" | "signature");
        if !signature && named.insert(name.clone()) {
            conditions.push(serde_json::json!(["eq", format!("${name}"), f.value]));
        }
    }
    for c in &policy.conditions {
        if let Condition::LengthRange { min, max } = c {
            conditions.push(serde_json::json!(["content-length-range", min, max]));
        }
    }
    let mut expiration = Vec::new();
    Timestamp::from(policy.expiration.to_offset(time::UtcOffset::UTC))
        .format(TimestampFormat::DateTime, &mut expiration)
        .expect("a timestamp formats");
    let document = serde_json::json!({
        "expiration": String::from_utf8_lossy(&expiration),
        "conditions": conditions,
    });
    let encoded = B64.encode(document.to_string());
    let signature = signer.sign(&encoded);
    for f in fields {
        if f.name.eq_ignore_ascii_case("policy") {
            f.value.clone_from(&encoded);
        } else if f.name.eq_ignore_ascii_case(signer.field()) {
            f.value.clone_from(&signature);
        }
    }
}

/// The key a form's policy is signed with (no `Debug`: it holds secrets).
enum Signer {
    /// SigV4: the signing key of the credential's date, region and service.
    V4([u8; 32]),
    /// SigV2: the secret itself.
    V2(String),
}

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SigV4's signing key: HMAC-SHA256 of the date, region, service and `aws4_request` in turn,
/// starting from `AWS4` and the secret.
fn v4_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    key
}

impl Signer {
    /// The signer of a form signed with the root key (`x-amz-*` fields for SigV4,
    /// `AWSAccessKeyId` and `signature` for SigV2), when its signature matches its policy.
    fn verify(fields: &[(String, String)], root: &RootKey) -> Option<Self> {
        let get = |name: &str| field(fields, name);
        let policy = get("policy")?;
        let (signer, signature) = match get("x-amz-signature") {
            Some(signature) => {
                let credential: Vec<&str> = get("x-amz-credential")?.split('/').collect();
                let [access_key, date, region, service, "aws4_request"] = credential[..] else {
                    return None;
                };
                let dated = get("x-amz-date")?.get(..8) == Some(date);
                let algorithm = get("x-amz-algorithm")? == "AWS4-HMAC-SHA256";
                if access_key != root.access_key || !dated || !algorithm {
                    return None;
                }
                let key = v4_signing_key(&root.secret, date, region, service);
                (Signer::V4(key), signature)
            }
            None => {
                if get("awsaccesskeyid")? != root.access_key {
                    return None;
                }
                (Signer::V2(root.secret.clone()), get("signature")?)
            }
        };
        signer.matches(policy, signature).then_some(signer)
    }

    /// The field holding the signature.
    fn field(&self) -> &'static str {
        match self {
            Signer::V4(_) => "x-amz-signature",
            Signer::V2(_) => "signature",
        }
    }

    /// Compares in constant time, as a signature check should.
    fn matches(&self, policy: &str, signature: &str) -> bool {
        match self {
            Signer::V4(key) => hex::decode(signature).is_ok_and(|sig| {
                let mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
                mac.chain_update(policy).verify_slice(&sig).is_ok()
            }),
            Signer::V2(secret) => B64.decode(signature).is_ok_and(|sig| {
                let mac = HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
                mac.chain_update(policy).verify_slice(&sig).is_ok()
            }),
        }
    }

    fn sign(&self, policy: &str) -> String {
        match self {
            Signer::V4(key) => hex::encode(hmac_sha256(key, policy.as_bytes())),
            Signer::V2(secret) => crate::auth::v2_signature(secret, policy),
        }
    }
}

/// The object's absolute URL, as AWS gives it in a 201's `Location`: the request's scheme and
/// host, then the bucket (path style) and the key, percent-encoded but for `/`.
fn object_url(parts: &http::request::Parts, target: &Target, fields: &[Field]) -> Option<String> {
    let host = match parts.headers.get(header::HOST) {
        Some(h) => h.to_str().ok()?,
        None => parts.uri.authority()?.as_str(),
    };
    let scheme = parts.uri.scheme_str().unwrap_or("http");
    let key = fields
        .iter()
        .rev()
        .find(|f| f.name.eq_ignore_ascii_case("key"))?;
    let key = utf8_percent_encode(&key.value, KEY_KEEPS);
    Some(if target.path_style {
        format!("{scheme}://{host}/{}/{key}", target.bucket)
    } else {
        format!("{scheme}://{host}/{key}")
    })
}

/// A `PostResponse` with `url` as its `Location` (s3s writes `/bucket/key`).
fn with_location(xml: &str, url: &str) -> Option<String> {
    let start = xml.find("<Location>")? + "<Location>".len();
    let end = start + xml[start..].find("</Location>")?;
    let url = body_check::escape_xml(url);
    Some(format!("{}{url}{}", &xml[..start], &xml[end..]))
}

#[cfg(test)]
mod tests;
