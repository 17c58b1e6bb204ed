//! HTTP details S3 clients rely on that s3s handles otherwise: S3 serves the whole object when
//! the Range header is not one byte range it can parse (s3s refuses such a request), answers
//! a ranged HEAD with 206 (s3s always sends 200 for HEAD), refuses presigned URLs meant to
//! live longer than a week (s3s accepts them), and calls a malformed `x-amz-content-sha256`
//! InvalidArgument (s3s reports a signature mismatch), and sends GetObjectAttributes' ETag
//! without quotes (s3s quotes every ETag).

use http::{header, Method, Request, Response, StatusCode, Uri};
use s3s::{S3Error, S3ErrorCode};

/// The longest a SigV4 presigned URL may be valid, in seconds (seven days).
const MAX_PRESIGN_SECONDS: u64 = 604_800;

/// What S3 refuses before looking at the signature: an `x-amz-content-sha256` that is neither
/// a SHA-256 nor a payload mode it knows, and a presigned URL that is malformed.
pub fn refusal<B>(req: &Request<B>) -> Option<S3Error> {
    payload_hash_error(req).or_else(|| presign_error(req))
}

/// The payload modes `x-amz-content-sha256` may name instead of a hash.
const PAYLOAD_MODES: [&str; 6] = [
    "UNSIGNED-PAYLOAD",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
];

fn payload_hash_error<B>(req: &Request<B>) -> Option<S3Error> {
    let value = req.headers().get("x-amz-content-sha256")?.as_bytes();
    let is_hash = value.len() == 64 && value.iter().all(u8::is_ascii_hexdigit);
    if is_hash || PAYLOAD_MODES.iter().any(|m| m.as_bytes() == value) {
        return None;
    }
    Some(S3Error::with_message(
        S3ErrorCode::InvalidArgument,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
    ))
}

/// The error S3 gives a SigV4 presigned URL whose `X-Amz-Expires` is not a number of seconds
/// up to a week.
fn presign_error<B>(req: &Request<B>) -> Option<S3Error> {
    // One pass without copies: this runs on every request.
    let (mut algorithm, mut expires) = (None, None);
    for (k, v) in form_urlencoded::parse(req.uri().query()?.as_bytes()) {
        if k.eq_ignore_ascii_case("X-Amz-Algorithm") {
            algorithm = Some(v);
        } else if k.eq_ignore_ascii_case("X-Amz-Expires") {
            expires = Some(v);
        }
    }
    if algorithm? != "AWS4-HMAC-SHA256" {
        return None;
    }
    let message = match expires.map(|e| e.parse::<u64>()) {
        Some(Ok(s)) if s <= MAX_PRESIGN_SECONDS => return None,
        Some(Ok(_)) => "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        _ => "X-Amz-Expires should be a number of seconds",
    };
    let code = S3ErrorCode::Custom("AuthorizationQueryParametersError".into());
    let mut e = S3Error::with_message(code, message);
    e.set_status_code(StatusCode::BAD_REQUEST);
    Some(e)
}

/// Drops a Range header that is not a single `bytes=` range in a form S3 understands
/// (`first-last` with first ≤ last, `first-`, `-suffix`): S3 ignores it and sends the whole
/// object, as RFC 9110 allows. A Range the signature covers stays (removing it would break
/// the signature), and s3s refuses it with InvalidArgument.
pub fn drop_unusable_range<B>(req: &mut Request<B>) {
    if !matches!(*req.method(), Method::GET | Method::HEAD) || range_is_signed(req) {
        return;
    }
    let usable = match req.headers().get(header::RANGE) {
        None => return,
        Some(v) => v.to_str().is_ok_and(is_single_byte_range),
    };
    if !usable {
        req.headers_mut().remove(header::RANGE);
    }
}

/// Whether SigV4 signed the Range header (`SignedHeaders` of the Authorization header, or
/// `X-Amz-SignedHeaders` of a presigned URL).
fn range_is_signed<B>(req: &Request<B>) -> bool {
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("SignedHeaders=").nth(1))
        .map(|rest| rest.split([',', ' ']).next().unwrap_or_default().to_owned());
    let from_query = || {
        form_urlencoded::parse(req.uri().query()?.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("X-Amz-SignedHeaders"))
            .map(|(_, v)| v.into_owned())
    };
    from_header
        .or_else(from_query)
        .is_some_and(|list| list.split(';').any(|h| h.eq_ignore_ascii_case("range")))
}

fn is_single_byte_range(value: &str) -> bool {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return false;
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return false;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => number(suffix).is_some(),
        (first, "") => number(first).is_some(),
        (first, last) => matches!((number(first), number(last)), (Some(f), Some(l)) if f <= l),
    }
}

/// A HEAD that answered with a Content-Range served part of the object: 206, as for GET.
pub fn ranged_head_is_partial<B>(method: &Method, resp: &mut Response<B>) {
    if *method == Method::HEAD
        && resp.status() == StatusCode::OK
        && resp.headers().contains_key(header::CONTENT_RANGE)
    {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
}

/// The internal header through which a handler picks its answer's status where s3s always
/// answers 200 (RestoreObject's 202 Accepted).
pub const STATUS_HEADER: &str = "x-strata-status";

/// Applies (and removes) a status a handler chose through [`STATUS_HEADER`].
pub fn chosen_status<B>(resp: &mut Response<B>) {
    let Some(value) = resp.headers_mut().remove(STATUS_HEADER) else {
        return;
    };
    if let Some(status) = value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|v| StatusCode::from_u16(v).ok())
    {
        *resp.status_mut() = status;
    }
}

/// Whether a request asks for `100 Continue` but has no body, so none is sent (hyper sends it
/// only when a body is read) and the answer comes without it. botocore takes such an answer
/// as an early final response and keeps that state for the connection's next request that
/// also expects 100 Continue, misreading its answer (a 60 s stall); closing the connection
/// after the answer resets it.
pub fn expects_continue_without_body(headers: &http::HeaderMap) -> bool {
    let expects = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let empty = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    expects && empty
}

/// Whether a request is GetObjectAttributes (`GET …?attributes`).
pub fn is_object_attributes(method: &Method, uri: &Uri) -> bool {
    *method == Method::GET && crate::query::has(uri.query(), "attributes")
}

/// GetObjectAttributes is the one answer whose `<ETag>` S3 sends without quotes.
pub fn unquoted_etag(xml: &str) -> Option<String> {
    let start = xml.find("<ETag>\"")? + "<ETag>".len();
    let end = start + xml[start..].find("</ETag>")?;
    let unquoted = xml[start..end].trim_matches('"');
    Some(format!("{}{unquoted}{}", &xml[..start], &xml[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_etag_loses_its_quotes() {
        let xml = "<GetObjectAttributesResponse><ETag>\"abc-2\"</ETag><ObjectSize>3</ObjectSize></GetObjectAttributesResponse>";
        assert_eq!(
            unquoted_etag(xml).unwrap(),
            "<GetObjectAttributesResponse><ETag>abc-2</ETag><ObjectSize>3</ObjectSize></GetObjectAttributesResponse>"
        );
        assert_eq!(unquoted_etag("<GetObjectAttributesResponse/>"), None);
        let get = Method::GET;
        assert!(is_object_attributes(
            &get,
            &"/b/k?attributes".parse().unwrap()
        ));
        assert!(is_object_attributes(
            &get,
            &"/k?versionId=1&attributes=".parse().unwrap()
        ));
        assert!(!is_object_attributes(&get, &"/b/k?acl".parse().unwrap()));
        assert!(!is_object_attributes(
            &Method::PUT,
            &"/b/k?attributes".parse().unwrap()
        ));
    }

    #[test]
    fn single_byte_ranges_are_kept_and_the_rest_dropped() {
        for ok in [
            "bytes=0-0",
            "bytes=5-",
            "bytes=-3",
            "bytes=1-2",
            " bytes=0-10 ",
        ] {
            assert!(is_single_byte_range(ok), "{ok}");
        }
        for bad in [
            "bytes=0-1,3-4",
            "bytes=abc",
            "bytes=3-1",
            "items=0-1",
            "bytes=-",
            "bytes=1",
        ] {
            assert!(!is_single_byte_range(bad), "{bad}");
        }
        let mut req = Request::get("/b/k")
            .header("range", "bytes=0-1,3-4")
            .body(())
            .unwrap();
        drop_unusable_range(&mut req);
        assert!(req.headers().get("range").is_none());
        let mut req = Request::get("/b/k")
            .header("range", "bytes=0-1")
            .body(())
            .unwrap();
        drop_unusable_range(&mut req);
        assert!(req.headers().get("range").is_some());
        let auth =
            "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host;range;x-amz-date, Signature=c";
        let signed = Request::get("/b/k")
            .header("authorization", auth)
            .header("range", "bytes=abc");
        let mut req = signed.body(()).unwrap();
        drop_unusable_range(&mut req);
        assert!(req.headers().get("range").is_some(), "a signed Range stays");
        let presigned = "/b/k?X-Amz-SignedHeaders=host&X-Amz-Signature=c";
        let mut req = Request::get(presigned)
            .header("range", "bytes=abc")
            .body(())
            .unwrap();
        drop_unusable_range(&mut req);
        assert!(req.headers().get("range").is_none());
    }

    #[test]
    fn presigned_urls_live_at_most_a_week() {
        let url = |expires: &str| {
            let q = format!("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={expires}");
            Request::get(q).body(()).unwrap()
        };
        assert!(presign_error(&url("604800")).is_none());
        for bad in ["604801", "-5", "abc"] {
            let e = presign_error(&url(bad)).expect(bad);
            assert_eq!(e.code().as_str(), "AuthorizationQueryParametersError");
        }
        let no_expiry = Request::get("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256").body(());
        assert!(presign_error(&no_expiry.unwrap()).is_some());
        assert!(presign_error(&Request::get("/b/k?uploads").body(()).unwrap()).is_none());
    }

    #[test]
    fn a_payload_hash_is_a_sha256_or_a_known_mode() {
        let with = |v: &str| {
            let req = Request::put("/b/k").header("x-amz-content-sha256", v);
            refusal(&req.body(()).unwrap())
        };
        assert!(with(&"ab".repeat(32)).is_none());
        assert!(with("UNSIGNED-PAYLOAD").is_none());
        assert!(with("STREAMING-UNSIGNED-PAYLOAD-TRAILER").is_none());
        let e = with("not-a-hash").expect("refused");
        assert_eq!(e.code(), &S3ErrorCode::InvalidArgument);
        assert!(with(&"zz".repeat(32)).is_some());
    }

    #[test]
    fn a_ranged_head_is_206() {
        let mut resp = Response::builder()
            .header("content-range", "bytes 1-2/5")
            .body(())
            .unwrap();
        ranged_head_is_partial(&Method::HEAD, &mut resp);
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        let mut resp = Response::new(());
        ranged_head_is_partial(&Method::HEAD, &mut resp);
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

/// AWS's message for an error s3s raises without one (its XML parser's MalformedXML), so a
/// client prints more than "Unknown".
pub fn with_default_message(xml: &str) -> Option<String> {
    const MALFORMED: &str =
        "The XML you provided was not well-formed or did not validate against our published schema";
    if !xml.contains("<Code>MalformedXML</Code>") {
        return None;
    }
    let message = format!("<Message>{MALFORMED}</Message>");
    if xml.contains("<Message></Message>") {
        return Some(xml.replacen("<Message></Message>", &message, 1));
    }
    if xml.contains("<Message/>") {
        return Some(xml.replacen("<Message/>", &message, 1));
    }
    (!xml.contains("<Message>")).then(|| xml.replacen("</Code>", &format!("</Code>{message}"), 1))
}

#[cfg(test)]
mod default_message_tests {
    use super::*;

    #[test]
    fn malformed_xml_gets_aws_message() {
        let bare = "<Error><Code>MalformedXML</Code></Error>";
        let with = with_default_message(bare).unwrap();
        assert!(
            with.contains("<Message>The XML you provided was not well-formed"),
            "{with}"
        );
        let given = "<Error><Code>MalformedXML</Code><Message>why</Message></Error>";
        assert_eq!(with_default_message(given), None);
        assert_eq!(
            with_default_message("<Error><Code>NoSuchKey</Code></Error>"),
            None
        );
    }
}
