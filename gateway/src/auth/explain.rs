//! After s3s: its bare signature errors rewritten as AWS explains them.

use super::*;

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
