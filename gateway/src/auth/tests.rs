use super::*;

const KEY: &str = "strataadmin";
const SECRET: &str = "strataadmin-secret";

fn root() -> RootKey {
    RootKey {
        access_key: KEY.into(),
        secret: SECRET.into(),
    }
}

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-11-30 12:00:00 UTC)
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

fn check(req: &mut Request<()>) -> Result<(), AuthError> {
    precheck(req, &root(), None, now())
}

fn v4_header(credential: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-amz-date, Signature=abc"
    )
}

#[test]
fn anonymous_requests_pass() {
    assert_eq!(check(&mut request("GET", "/b/k", &[])), Ok(()));
}

#[test]
fn only_one_mechanism_and_known_schemes() {
    let mut r = request(
        "GET",
        "/b/k?AWSAccessKeyId=a&Signature=s&Expires=1",
        &[("authorization", "AWS a:b")],
    );
    let e = check(&mut r).unwrap_err();
    assert_eq!(
        (e.code, e.status),
        ("InvalidArgument", StatusCode::BAD_REQUEST)
    );
    assert!(e.message.starts_with("Only one auth mechanism allowed"));
    let e = check(&mut request(
        "GET",
        "/b",
        &[("authorization", "Bearer abc")],
    ))
    .unwrap_err();
    assert_eq!(e.message, "Unsupported Authorization Type");
    assert_eq!(
        e.extra,
        vec![
            ("ArgumentName", "Authorization".into()),
            ("ArgumentValue", "Bearer abc".into())
        ]
    );
}

#[test]
fn v4_credentials_are_checked_as_aws_does() {
    let date = [
        ("x-amz-date", "20261130T120000Z"),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ];
    let with = |cred: &str| {
        let a = v4_header(cred);
        let mut h = date.to_vec();
        h.push(("authorization", a.as_str()));
        check(&mut request("GET", "/b", &h))
    };
    assert_eq!(with("k/20261130/us-east-1/s3/aws4_request"), Ok(()));
    let e = with("k/20261130/us-west-2/s3/aws4_request").unwrap_err();
    assert_eq!(e.code, "AuthorizationHeaderMalformed");
    assert_eq!(e.message, "The authorization header is malformed; the region 'us-west-2' is wrong; expecting 'us-east-1'");
    assert_eq!(e.extra, vec![("Region", "us-east-1".into())]);
    assert!(with("k/20261130/us-east-1/aws4_request")
        .unwrap_err()
        .message
        .contains("Credential is mal-formed"));
    assert!(with("k/20261130/us-east-1/ec2/aws4_request")
        .unwrap_err()
        .message
        .contains("incorrect service 'ec2'"));
    assert!(with("k/20261129/us-east-1/s3/aws4_request")
        .unwrap_err()
        .message
        .contains("Invalid credential date"));
    let e = check(&mut request(
        "GET",
        "/b",
        &[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=k/20261130/us-east-1/s3/aws4_request",
        )],
    ))
    .unwrap_err();
    assert!(e.message.contains("three components"), "{}", e.message);
}

#[test]
fn dates_and_skew() {
    let a = v4_header("k/20261130/us-east-1/s3/aws4_request");
    let e = check(&mut request(
        "GET",
        "/b",
        &[
            ("authorization", &a),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ],
    ))
    .unwrap_err();
    assert_eq!((e.code, e.status), ("AccessDenied", StatusCode::FORBIDDEN));
    let e = check(&mut request(
        "GET",
        "/b",
        &[
            ("authorization", &a),
            ("x-amz-date", "20261130T100000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ],
    ))
    .unwrap_err();
    assert_eq!(e.code, "RequestTimeTooSkewed");
    assert_eq!(
        e.extra,
        vec![
            ("RequestTime", "20261130T100000Z".into()),
            ("ServerTime", "2026-11-30T12:00:00Z".into()),
            ("MaxAllowedSkewMilliseconds", "900000".into())
        ]
    );
    // 14 minutes off is within the window.
    assert_eq!(
        check(&mut request(
            "GET",
            "/b",
            &[
                ("authorization", &a),
                ("x-amz-date", "20261130T121400Z"),
                ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            ]
        )),
        Ok(())
    );
    let e = check(&mut request(
        "GET",
        "/b",
        &[("authorization", &a), ("x-amz-date", "20261130T120000Z")],
    ))
    .unwrap_err();
    assert_eq!(
        e.message,
        "Missing required header for this request: x-amz-content-sha256"
    );
    // V2 signs the Date header; one an hour old is a replay.
    let e = check(&mut request(
        "GET",
        "/b/k",
        &[
            ("authorization", "AWS k:s"),
            ("date", "Mon, 30 Nov 2026 11:00:00 GMT"),
        ],
    ))
    .unwrap_err();
    assert_eq!(e.code, "RequestTimeTooSkewed");
    let e = check(&mut request("GET", "/b/k", &[("authorization", "AWS k:s")])).unwrap_err();
    assert_eq!(
        e.message,
        "AWS authentication requires a valid Date or x-amz-date header"
    );
}

#[test]
fn presigned_urls_expire_and_must_be_whole() {
    let url = |date: &str, expires: &str| {
        format!("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=k%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature=abc")
    };
    assert_eq!(
        check(&mut request("GET", &url("20261130T115000Z", "3600"), &[])),
        Ok(())
    );
    let e = check(&mut request("GET", &url("20261130T115000Z", "60"), &[])).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        ("AccessDenied", "Request has expired")
    );
    assert_eq!(
        e.extra,
        vec![
            ("Expires", "2026-11-30T11:51:00Z".into()),
            ("ServerTime", "2026-11-30T12:00:00Z".into()),
            ("X-Amz-Expires", "60".into())
        ]
    );
    let e = check(&mut request("GET", &url("20261130T130000Z", "60"), &[])).unwrap_err();
    assert_eq!(e.message, "Request is not valid yet");
    let e = check(&mut request(
        "GET",
        "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=x",
        &[],
    ))
    .unwrap_err();
    assert_eq!(e.code, "AuthorizationQueryParametersError");
    let e = check(&mut request(
        "GET",
        "/b/k?AWSAccessKeyId=k&Signature=s",
        &[],
    ))
    .unwrap_err();
    assert_eq!((e.code, e.status), ("AccessDenied", StatusCode::FORBIDDEN));
    let expired = now().unix_timestamp() - 1;
    let e = check(&mut request(
        "GET",
        &format!("/b/k?AWSAccessKeyId=k&Signature=s&Expires={expired}"),
        &[],
    ))
    .unwrap_err();
    assert_eq!(e.message, "Request has expired");
}

#[test]
fn a_v2_bucket_path_is_completed_only_when_the_signature_covers_it() {
    let date = "Mon, 30 Nov 2026 12:00:00 GMT";
    let mut h = HeaderMap::new();
    h.insert("date", date.parse().unwrap());
    let good = v2::signature(
        SECRET,
        &v2::string_to_sign(
            "GET",
            "/b/",
            &[("versioning".into(), String::new())],
            &h,
            None,
        ),
    );
    let auth = format!("AWS {KEY}:{good}");
    let mut r = request(
        "GET",
        "/b?versioning",
        &[("authorization", &auth), ("date", date)],
    );
    assert_eq!(check(&mut r), Ok(()));
    assert_eq!(r.uri().to_string(), "/b/?versioning");
    // A signature over `/b` (or a wrong one) leaves the path alone for s3s to judge.
    let plain = v2::signature(
        SECRET,
        &v2::string_to_sign(
            "GET",
            "/b",
            &[("versioning".into(), String::new())],
            &h,
            None,
        ),
    );
    let auth = format!("AWS {KEY}:{plain}");
    let mut r = request(
        "GET",
        "/b?versioning",
        &[("authorization", &auth), ("date", date)],
    );
    assert_eq!(check(&mut r), Ok(()));
    assert_eq!(r.uri().to_string(), "/b?versioning");
    // Virtual-host style: `/b` is a key, never completed.
    let auth = format!("AWS {KEY}:{good}");
    let mut r = request(
        "GET",
        "/b?versioning",
        &[("authorization", &auth), ("date", date)],
    );
    assert_eq!(precheck(&mut r, &root(), Some("bucket"), now()), Ok(()));
    assert_eq!(r.uri().to_string(), "/b?versioning");
}

#[test]
fn mismatches_are_explained_without_the_secret() {
    let r = request(
        "GET",
        "/b/k?list-type=2",
        &[
            ("authorization", "AWS4-HMAC-SHA256 Credential=k/20261130/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"),
            ("host", "127.0.0.1:9000"),
            ("x-amz-date", "20261130T120000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ],
    );
    let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code></Error>";
    let xml = explain(&Sent::of(&r, None), body).unwrap();
    assert!(
        xml.contains("<Message>The request signature we calculated does not match"),
        "{xml}"
    );
    assert!(xml.contains("<AWSAccessKeyId>k</AWSAccessKeyId>"));
    assert!(xml.contains("<SignatureProvided>abc</SignatureProvided>"));
    assert!(xml.contains("<CanonicalRequest>GET\n/b/k\nlist-type=2\nhost:127.0.0.1:9000\nx-amz-date:20261130T120000Z\n\nhost;x-amz-date\nUNSIGNED-PAYLOAD</CanonicalRequest>"), "{xml}");
    assert!(xml.contains(
        "<StringToSign>AWS4-HMAC-SHA256\n20261130T120000Z\n20261130/us-east-1/s3/aws4_request\n"
    ));
    assert!(!xml.contains(SECRET));
    // A message already given (a chunk signature) is kept.
    let chunk = "<Error><Code>SignatureDoesNotMatch</Code><Message>chunk</Message></Error>";
    assert_eq!(explain(&Sent::of(&r, None), chunk), None);
    let unknown = "<Error><Code>InvalidAccessKeyId</Code><Message>x</Message></Error>";
    assert!(explain(&Sent::of(&r, None), unknown)
        .unwrap()
        .contains("<AWSAccessKeyId>k</AWSAccessKeyId>"));
}
