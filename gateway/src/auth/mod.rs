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

mod explain;
mod precheck;
mod v2;
mod v4;

pub use explain::{explain, Sent};
pub use precheck::precheck;

pub use v2::signature as v2_signature;

use crate::body_check::escape_xml as escape;
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
#[cfg(test)]
mod tests;
