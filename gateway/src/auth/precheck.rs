//! The checks AWS makes before verifying a signature that s3s makes differently or not at
//! all, and the SigV2 bucket path completed the way SDKs sign it.

use super::*;

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
