//! Signature Version 4's canonical request and string to sign, as AWS defines them for S3
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>): shown to
//! a client whose signature did not match, so it can compare them with its own.

use http::HeaderMap;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// Everything but the unreserved characters `A-Z a-z 0-9 - _ . ~` is percent-encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// The canonical request: method, the URI-encoded path (S3 encodes it once, keeping `/`),
/// the sorted, encoded query (without `X-Amz-Signature`), the signed headers with trimmed
/// values, their names, and the payload hash.
pub fn canonical_request(
    method: &str,
    decoded_path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    let path: Vec<String> = decoded_path.split('/').map(encode).collect();
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                v.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        path.join("/"),
        query.join("&"),
    )
}

/// `AWS4-HMAC-SHA256`, the request time, the credential scope and the canonical request's
/// SHA-256.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET example of AWS's "Authenticating Requests: Using the Authorization Header".
    #[test]
    fn aws_get_object_example() {
        let mut h = HeaderMap::new();
        h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        h.insert("range", "bytes=0-9".parse().unwrap());
        h.insert(
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap(),
        );
        h.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        let c = canonical_request(
            "GET",
            "/test.txt",
            &[],
            &h,
            "host;range;x-amz-content-sha256;x-amz-date",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        assert_eq!(
            c,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", &c),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
    }

    #[test]
    fn query_and_path_are_encoded_once_and_sorted() {
        let h = HeaderMap::new();
        let q = [
            ("prefix".to_owned(), "a b/c".to_owned()),
            ("list-type".to_owned(), "2".to_owned()),
            ("X-Amz-Signature".to_owned(), "dropped".to_owned()),
        ];
        let c = canonical_request("GET", "/b/k ey+", &q, &h, "", "UNSIGNED-PAYLOAD");
        assert!(
            c.starts_with("GET\n/b/k%20ey%2B\nlist-type=2&prefix=a%20b%2Fc\n"),
            "{c}"
        );
    }
}
