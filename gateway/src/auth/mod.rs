//! Request authentication as AWS answers it. s3s verifies every signature; this module makes
//! the checks AWS makes that s3s makes differently or not at all, before s3s sees a request
//! (`precheck`: mixed or unknown schemes, malformed credentials, the region, missing dates,
//! clock skew and expiry with AWS's codes and messages, and a V2 bucket path completed the
//! way SDKs sign it), and after it explains s3s's bare errors (`explain`: the string to sign
//! and canonical request of a signature mismatch, the access key of an unknown one), so a
//! user can see why a client's signature differs. Secrets never appear in either.
//!
//! Sources: AWS's error responses
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>), Signature V2
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>) and V4
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html>).

mod v2;
mod v4;

pub use v2::signature as v2_signature;

use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use s3s::dto::{Timestamp, TimestampFormat};
use s3s::Body;
use time::{Duration, OffsetDateTime};

/// How far a request's time may be from the server's (AWS: 15 minutes).
const MAX_SKEW: Duration = Duration::minutes(15);
/// The region requests must be signed for.
const REGION: &str = crate::s3::REGION;

/// An authentication error as AWS sends it: code, status, message and the extra elements
/// that explain it.
#[derive(Debug, PartialEq)]
pub struct AuthError {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
    pub extra: Vec<(&'static str, String)>,
}

impl AuthError {
    fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    fn malformed(what: &str) -> Self {
        Self::new(
            "AuthorizationHeaderMalformed",
            StatusCode::BAD_REQUEST,
            format!("The authorization header is malformed; {what}"),
        )
    }

    fn no_date() -> Self {
        Self::new(
            "AccessDenied",
            StatusCode::FORBIDDEN,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    }

    fn expired(expires: OffsetDateTime, now: OffsetDateTime) -> Self {
        Self::new("AccessDenied", StatusCode::FORBIDDEN, "Request has expired")
            .with("Expires", iso(expires))
            .with("ServerTime", iso(now))
    }

    /// The XML error document (the request id is added by the caller, as for every error).
    pub fn xml(&self) -> String {
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>{}</Message>",
            self.code,
            escape(&self.message)
        );
        for (name, value) in &self.extra {
            s.push_str(&format!("<{name}>{}</{name}>", escape(value)));
        }
        s.push_str("</Error>");
        s
    }

    pub fn response(&self) -> Response<Body> {
        let mut resp = Response::new(Body::from(self.xml()));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
        resp
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A time as AWS writes it in error details: `2026-11-30T16:00:00Z`.
fn iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `20130524T000000Z`, the form of `x-amz-date` and `X-Amz-Date`.
fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &f)
        .ok()
        .map(|t| t.assume_utc())
}

/// An HTTP date (the V2 `Date` / `x-amz-date`), or failing that the V4 form.
fn parse_any_date(s: &str) -> Option<OffsetDateTime> {
    Timestamp::parse(TimestampFormat::HttpDate, s)
        .ok()
        .map(OffsetDateTime::from)
        .or_else(|| parse_amz_date(s))
}

/// The root account's key pair.
pub struct RootKey {
    pub access_key: String,
    pub secret: String,
}

/// How a request is signed.
enum Scheme<'a> {
    Anonymous,
    V2Header {
        access_key: &'a str,
        signature: &'a str,
    },
    V4Header(V4Fields<'a>),
    V2Query,
    V4Query,
    Unsupported(&'a str),
}

/// The three components of a V4 `Authorization` header.
struct V4Fields<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn scheme<'a>(headers: &'a HeaderMap, query: &[(String, String)]) -> Result<Scheme<'a>, AuthError> {
    let v4_query = ["X-Amz-Algorithm", "X-Amz-Signature", "X-Amz-Credential"]
        .iter()
        .any(|k| get(query, k).is_some());
    let v2_query =
        !v4_query && (get(query, "Signature").is_some() || get(query, "AWSAccessKeyId").is_some());
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    if let (Some(a), true) = (authorization, v4_query || v2_query) {
        return Err(AuthError::new(
            "InvalidArgument",
            StatusCode::BAD_REQUEST,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        )
        .with("ArgumentName", "Authorization")
        .with("ArgumentValue", a));
    }
    if v4_query {
        return Ok(Scheme::V4Query);
    }
    if v2_query {
        return Ok(Scheme::V2Query);
    }
    let Some(a) = authorization else {
        return Ok(Scheme::Anonymous);
    };
    if let Some(rest) = a.strip_prefix("AWS4-HMAC-SHA256 ") {
        let field = |name: &str| {
            rest.split(',')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        };
        return match (field("Credential"), field("SignedHeaders"), field("Signature")) {
            (Some(credential), Some(signed_headers), Some(signature)) => {
                Ok(Scheme::V4Header(V4Fields {
                    credential,
                    signed_headers,
                    signature,
                }))
            }
            _ => Err(AuthError::malformed(
                "the authorization header requires three components: Credential, SignedHeaders, and Signature.",
            )),
        };
    }
    if let Some((access_key, signature)) = a.strip_prefix("AWS ").and_then(|r| r.rsplit_once(':')) {
        return Ok(Scheme::V2Header {
            access_key: access_key.trim(),
            signature: signature.trim(),
        });
    }
    Ok(Scheme::Unsupported(a))
}

/// The parts of a V4 credential `AKID/YYYYMMDD/REGION/SERVICE/aws4_request`, checked as AWS
/// checks them; `in_query` picks the wording of a presigned URL's errors.
fn check_credential(credential: &str, in_query: bool) -> Result<(&str, &str), AuthError> {
    let (malformed, region_error): (fn(String) -> AuthError, _) = if in_query {
        (
            |m| {
                AuthError::new(
                    "AuthorizationQueryParametersError",
                    StatusCode::BAD_REQUEST,
                    format!("Error parsing the X-Amz-Credential parameter; {m}"),
                )
            },
            "AuthorizationQueryParametersError",
        )
    } else {
        (|m| AuthError::malformed(&m), "AuthorizationHeaderMalformed")
    };
    let parts: Vec<&str> = credential.rsplitn(5, '/').collect();
    let [terminal, service, region, date, access_key] = parts[..] else {
        return Err(malformed(
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".".into(),
        ));
    };
    if region != REGION {
        let mut e = malformed(format!(
            "the region '{region}' is wrong; expecting '{REGION}'"
        ));
        e.code = region_error;
        return Err(e.with("Region", REGION));
    }
    if service != "s3" {
        return Err(malformed(format!(
            "incorrect service '{service}'. This endpoint belongs to 's3'."
        )));
    }
    if terminal != "aws4_request" {
        return Err(malformed(format!(
            "incorrect terminal '{terminal}'. This endpoint uses 'aws4_request'."
        )));
    }
    Ok((access_key, date))
}

fn check_skew(
    request_time: OffsetDateTime,
    raw: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    if (request_time - now).abs() <= MAX_SKEW {
        return Ok(());
    }
    Err(AuthError::new(
        "RequestTimeTooSkewed",
        StatusCode::FORBIDDEN,
        "The difference between the request time and the current time is too large.",
    )
    .with("RequestTime", raw)
    .with("ServerTime", iso(now))
    .with(
        "MaxAllowedSkewMilliseconds",
        MAX_SKEW.whole_milliseconds().to_string(),
    ))
}

/// Checks a request's authentication form before s3s verifies its signature, answering as
/// AWS does where s3s would answer otherwise. `virtual_bucket` is the bucket the Host header
/// names (virtual-host style). A V2-signed request for a whole bucket in path style, `/b`,
/// whose signature covers `/b/` (botocore signs a bucket that way, as AWS's canonical resource
/// names it) gets the path `/b/`, which names the same bucket, so s3s's check agrees.
pub fn precheck<B>(
    req: &mut Request<B>,
    root: &RootKey,
    virtual_bucket: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    let query = query_pairs(req.uri());
    let headers = req.headers();
    match scheme(headers, &query)? {
        Scheme::Anonymous => Ok(()),
        Scheme::Unsupported(value) => Err(AuthError::new(
            "InvalidArgument",
            StatusCode::BAD_REQUEST,
            "Unsupported Authorization Type",
        )
        .with("ArgumentName", "Authorization")
        .with("ArgumentValue", value)),
        Scheme::V4Header(f) => {
            let (_, scope_date) = check_credential(f.credential, false)?;
            let raw = header(headers, "x-amz-date").or_else(|| header(headers, "date"));
            let time = raw
                .and_then(parse_any_date)
                .ok_or_else(AuthError::no_date)?;
            let raw = raw.unwrap_or_default();
            if header(headers, "x-amz-date").is_some_and(|d| !d.starts_with(scope_date)) {
                return Err(AuthError::malformed(
                    "Invalid credential date. Date is not the same as X-Amz-Date.",
                ));
            }
            check_skew(time, raw, now)?;
            if !headers.contains_key("x-amz-content-sha256") {
                return Err(AuthError::new(
                    "InvalidRequest",
                    StatusCode::BAD_REQUEST,
                    "Missing required header for this request: x-amz-content-sha256",
                ));
            }
            Ok(())
        }
        Scheme::V4Query => {
            const FIELDS: [&str; 6] = [
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Signature",
                "X-Amz-Date",
                "X-Amz-SignedHeaders",
                "X-Amz-Expires",
            ];
            if FIELDS.iter().any(|f| get(&query, f).is_none()) {
                return Err(AuthError::new(
                    "AuthorizationQueryParametersError",
                    StatusCode::BAD_REQUEST,
                    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
                ));
            }
            check_credential(get(&query, "X-Amz-Credential").unwrap_or_default(), true)?;
            let raw = get(&query, "X-Amz-Date").unwrap_or_default();
            let signed_at = parse_amz_date(raw).ok_or_else(|| {
                AuthError::new(
                    "AuthorizationQueryParametersError",
                    StatusCode::BAD_REQUEST,
                    "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
                )
            })?;
            if signed_at - now > MAX_SKEW {
                return Err(AuthError::new(
                    "AccessDenied",
                    StatusCode::FORBIDDEN,
                    "Request is not valid yet",
                ));
            }
            // A malformed X-Amz-Expires has its own error (http_fixups), given before this.
            if let Some(secs) = get(&query, "X-Amz-Expires").and_then(|e| e.parse::<i64>().ok()) {
                let expires = signed_at + Duration::seconds(secs);
                if expires < now {
                    return Err(
                        AuthError::expired(expires, now).with("X-Amz-Expires", secs.to_string())
                    );
                }
            }
            Ok(())
        }
        Scheme::V2Query => {
            let (Some(_), Some(expires), Some(_)) = (
                get(&query, "Signature"),
                get(&query, "Expires"),
                get(&query, "AWSAccessKeyId"),
            ) else {
                return Err(AuthError::new(
                    "AccessDenied",
                    StatusCode::FORBIDDEN,
                    "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
                ));
            };
            let expires = expires
                .parse::<i64>()
                .ok()
                .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
                .ok_or_else(|| {
                    AuthError::new(
                        "AccessDenied",
                        StatusCode::FORBIDDEN,
                        "Invalid date (should be seconds since epoch)",
                    )
                })?;
            if expires < now {
                return Err(AuthError::expired(expires, now));
            }
            complete_v2_bucket_path(req, root, virtual_bucket);
            Ok(())
        }
        Scheme::V2Header { .. } => {
            let raw = header(headers, "x-amz-date").or_else(|| header(headers, "date"));
            let time = raw
                .and_then(parse_any_date)
                .ok_or_else(AuthError::no_date)?;
            check_skew(time, raw.unwrap_or_default(), now)?;
            complete_v2_bucket_path(req, root, virtual_bucket);
            Ok(())
        }
    }
}

/// The V2 canonical resource of a request: the bucket-qualified path, `/bucket/` for a whole
/// bucket in path style (AWS's and botocore's form).
fn v2_resource(path: &str, virtual_bucket: Option<&str>) -> String {
    match virtual_bucket {
        Some(b) => format!("/{b}{path}"),
        None if path.len() > 1 && !path[1..].contains('/') => format!("{path}/"),
        None => path.to_owned(),
    }
}

/// The access key, signature provided and string to sign of a V2-signed request.
fn v2_claim(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    virtual_bucket: Option<&str>,
) -> Option<(String, String, String)> {
    let query = query_pairs(uri);
    let resource = v2_resource(uri.path(), virtual_bucket);
    match scheme(headers, &query).ok()? {
        Scheme::V2Header {
            access_key,
            signature,
        } => Some((
            access_key.to_owned(),
            signature.to_owned(),
            v2::string_to_sign(method.as_str(), &resource, &query, headers, None),
        )),
        Scheme::V2Query => Some((
            get(&query, "AWSAccessKeyId")?.to_owned(),
            get(&query, "Signature")?.to_owned(),
            v2::string_to_sign(
                method.as_str(),
                &resource,
                &query,
                headers,
                get(&query, "Expires"),
            ),
        )),
        _ => None,
    }
}

fn complete_v2_bucket_path<B>(req: &mut Request<B>, root: &RootKey, virtual_bucket: Option<&str>) {
    let path = req.uri().path();
    if virtual_bucket.is_some() || path.len() < 2 || path[1..].contains('/') {
        return;
    }
    let Some((access_key, provided, string_to_sign)) =
        v2_claim(req.method(), req.uri(), req.headers(), None)
    else {
        return;
    };
    if access_key != root.access_key || !v2::verifies(&root.secret, &string_to_sign, &provided) {
        return;
    }
    let completed = match req.uri().query() {
        Some(q) => format!("{path}/?{q}"),
        None => format!("{path}/"),
    };
    if let Ok(uri) = completed.parse() {
        *req.uri_mut() = uri;
    }
}

/// What `explain` needs of a request, kept before s3s takes it.
pub struct Sent {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    virtual_bucket: Option<String>,
}

impl Sent {
    pub fn of<B>(req: &Request<B>, virtual_bucket: Option<&str>) -> Self {
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
            virtual_bucket: virtual_bucket.map(str::to_owned),
        }
    }
}

fn hex_bytes(s: &str) -> String {
    s.bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rewrites an error document s3s gave without explanation: a signature mismatch gets AWS's
/// message, the access key, the signature provided, and the string to sign (and for V4 the
/// canonical request) as this server computed them, as text and bytes; an unknown access
/// key is named; a payload hash mismatch names the hash the client claimed. `None` leaves the
/// document as it is.
pub fn explain(sent: &Sent, body: &str) -> Option<String> {
    let code = body.split_once("<Code>")?.1.split_once("</Code>")?.0;
    let message = body
        .split_once("<Message>")
        .and_then(|(_, r)| r.split_once("</Message>"))
        .map(|(m, _)| m)
        .unwrap_or_default();
    let query = query_pairs(&sent.uri);
    let e = match code {
        // A chunk signature mismatch already says what failed.
        "SignatureDoesNotMatch" if message.is_empty() => signature_mismatch(sent, &query)?,
        "InvalidAccessKeyId" => AuthError::new(
            "InvalidAccessKeyId",
            StatusCode::FORBIDDEN,
            "The AWS Access Key Id you provided does not exist in our records.",
        )
        .with("AWSAccessKeyId", access_key_of(sent, &query)?),
        "XAmzContentSHA256Mismatch" => AuthError::new(
            "XAmzContentSHA256Mismatch",
            StatusCode::BAD_REQUEST,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
        .with(
            "ClientComputedContentSHA256",
            header(&sent.headers, "x-amz-content-sha256")?,
        ),
        _ => return None,
    };
    Some(e.xml())
}

fn access_key_of(sent: &Sent, query: &[(String, String)]) -> Option<String> {
    match scheme(&sent.headers, query).ok()? {
        Scheme::V2Header { access_key, .. } => Some(access_key.to_owned()),
        Scheme::V2Query => get(query, "AWSAccessKeyId").map(str::to_owned),
        Scheme::V4Header(f) => f.credential.split('/').next().map(str::to_owned),
        Scheme::V4Query => get(query, "X-Amz-Credential")?
            .split('/')
            .next()
            .map(str::to_owned),
        _ => None,
    }
}

fn signature_mismatch(sent: &Sent, query: &[(String, String)]) -> Option<AuthError> {
    let e = AuthError::new(
        "SignatureDoesNotMatch",
        StatusCode::FORBIDDEN,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    );
    if let Some((access_key, provided, string_to_sign)) = v2_claim(
        &sent.method,
        &sent.uri,
        &sent.headers,
        sent.virtual_bucket.as_deref(),
    ) {
        return Some(
            e.with("AWSAccessKeyId", access_key)
                .with("StringToSign", string_to_sign.clone())
                .with("SignatureProvided", provided)
                .with("StringToSignBytes", hex_bytes(&string_to_sign)),
        );
    }
    let (access_key, signed_headers, provided, scope, amz_date, payload) =
        match scheme(&sent.headers, query).ok()? {
            Scheme::V4Header(f) => {
                let (key, scope) = f.credential.split_once('/')?;
                (
                    key.to_owned(),
                    f.signed_headers.to_owned(),
                    f.signature.to_owned(),
                    scope.to_owned(),
                    header(&sent.headers, "x-amz-date")?.to_owned(),
                    header(&sent.headers, "x-amz-content-sha256")?.to_owned(),
                )
            }
            Scheme::V4Query => {
                let (key, scope) = get(query, "X-Amz-Credential")?.split_once('/')?;
                (
                    key.to_owned(),
                    get(query, "X-Amz-SignedHeaders")?.to_owned(),
                    get(query, "X-Amz-Signature")?.to_owned(),
                    scope.to_owned(),
                    get(query, "X-Amz-Date")?.to_owned(),
                    get(query, "X-Amz-Content-Sha256")
                        .unwrap_or("UNSIGNED-PAYLOAD")
                        .to_owned(),
                )
            }
            _ => return None,
        };
    let path = percent_encoding::percent_decode_str(sent.uri.path()).decode_utf8_lossy();
    let canonical = v4::canonical_request(
        sent.method.as_str(),
        &path,
        query,
        &sent.headers,
        &signed_headers,
        &payload,
    );
    let string_to_sign = v4::string_to_sign(&amz_date, &scope, &canonical);
    Some(
        e.with("AWSAccessKeyId", access_key)
            .with("StringToSign", string_to_sign.clone())
            .with("SignatureProvided", provided)
            .with("StringToSignBytes", hex_bytes(&string_to_sign))
            .with("CanonicalRequest", canonical.clone())
            .with("CanonicalRequestBytes", hex_bytes(&canonical)),
    )
}

#[cfg(test)]
mod tests;
