//! Signature Version 2's string to sign and signature, as AWS defines them
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>): to
//! complete a bucket path the way SDKs sign it and to show a client what was expected.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha1::Sha1;

/// The sub-resources and response overrides the canonical resource keeps, sorted (the list
/// of the V2 specification, as SDKs and s3s use it).
const SUB_RESOURCES: [&str; 35] = [
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// The string a V2 signature signs. `resource` is the bucket-qualified path (`/bucket/key`,
/// `/bucket/` for a whole bucket); `query` the decoded query pairs; `expires` the presigned
/// URL's `Expires` (header auth signs the Date header instead).
pub fn string_to_sign(
    method: &str,
    resource: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    expires: Option<&str>,
) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    // "If you include the x-amz-date header, use the empty string for the Date."
    let date = match expires {
        Some(e) => e,
        None if headers.contains_key("x-amz-date") => "",
        None => header("date"),
    };
    let mut s = format!(
        "{method}\n{}\n{}\n{date}\n",
        header("content-md5"),
        header("content-type")
    );
    let mut amz: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in headers {
        let name = name.as_str();
        if !name.starts_with("x-amz-") {
            continue;
        }
        let value = value.to_str().unwrap_or_default().trim();
        match amz.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values.push(value),
            None => amz.push((name.to_owned(), vec![value])),
        }
    }
    amz.sort();
    for (name, values) in amz {
        s.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    s.push_str(resource);
    let mut first = true;
    for sub in SUB_RESOURCES {
        if let Some((_, v)) = query.iter().find(|(k, _)| k == sub) {
            s.push(if first { '?' } else { '&' });
            first = false;
            s.push_str(sub);
            if !v.is_empty() {
                s.push('=');
                s.push_str(v);
            }
        }
    }
    s
}

/// Base64 of HMAC-SHA1 over the string to sign.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Whether `provided` (base64) is the signature of `string_to_sign`, compared in constant
/// time.
pub fn verifies(secret: &str, string_to_sign: &str, provided: &str) -> bool {
    B64.decode(provided).is_ok_and(|sig| {
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(string_to_sign.as_bytes());
        mac.verify_slice(&sig).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_resources_are_sorted() {
        assert!(SUB_RESOURCES.windows(2).all(|w| w[0] < w[1]));
    }

    /// The examples of AWS's RESTAuthentication page.
    #[test]
    fn aws_examples() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let mut h = HeaderMap::new();
        h.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let s = string_to_sign("GET", "/awsexamplebucket1/photos/puppy.jpg", &[], &h, None);
        assert_eq!(
            s,
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        assert_eq!(signature(secret, &s), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");

        let mut h = HeaderMap::new();
        h.insert("date", "Tue, 27 Mar 2007 19:44:46 +0000".parse().unwrap());
        let query = [("acl".to_owned(), String::new())];
        let s = string_to_sign("GET", "/awsexamplebucket1/", &query, &h, None);
        assert_eq!(
            s,
            "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/awsexamplebucket1/?acl"
        );
        assert_eq!(signature(secret, &s), "82ZHiFIjc+WbcwFKGUVEQspPn+0=");
        assert!(verifies(secret, &s, "82ZHiFIjc+WbcwFKGUVEQspPn+0="));
        assert!(!verifies(secret, &s, "82ZHiFIjc+WbcwFKGUVEQspPn+1="));
        assert!(!verifies(secret, &s, "not base64"));
    }

    #[test]
    fn amz_headers_are_sorted_and_joined_and_x_amz_date_empties_the_date() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-meta-b", "2".parse().unwrap());
        h.append("x-amz-meta-a", " 1 ".parse().unwrap());
        h.append("x-amz-meta-a", "3".parse().unwrap());
        h.insert(
            "x-amz-date",
            "Tue, 27 Mar 2007 21:06:08 +0000".parse().unwrap(),
        );
        h.insert("date", "ignored".parse().unwrap());
        let query = [
            ("uploads".to_owned(), String::new()),
            ("prefix".to_owned(), "x".to_owned()),
            ("acl".to_owned(), String::new()),
        ];
        let s = string_to_sign("PUT", "/b/", &query, &h, None);
        assert_eq!(
            s,
            "PUT\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:06:08 +0000\nx-amz-meta-a:1,3\nx-amz-meta-b:2\n/b/?acl&uploads"
        );
    }
}
