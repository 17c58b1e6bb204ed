use super::*;
use serde_json::json;

const DATE: &str = "20260101";

fn root() -> RootKey {
    RootKey {
        access_key: "AKID".into(),
        secret: "SECRET".into(),
    }
}

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 00:10 UTC)
}

fn field_of(name: &str, value: &str) -> Field {
    Field {
        name: name.into(),
        value: value.into(),
        headers: format!("Content-Disposition: form-data; name=\"{name}\"").into_bytes(),
    }
}

fn v4_signer() -> Signer {
    Signer::V4(v4_signing_key("SECRET", DATE, "us-east-1", "s3"))
}

/// A SigV4 form: `fields`, then the authentication fields, under a policy of `conditions`
/// (plus the authentication fields' own) expiring at `expiration`.
fn v4_form(fields: &[(&str, &str)], conditions: serde_json::Value, expiration: &str) -> Prefix {
    let credential = format!("AKID/{DATE}/us-east-1/s3/aws4_request");
    let auth = [
        ("x-amz-algorithm", "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential", credential),
        ("x-amz-date", format!("{DATE}T000000Z")),
    ];
    let mut conditions = conditions.as_array().cloned().unwrap_or_default();
    conditions.extend(auth.iter().map(|(k, v)| json!({ *k: v })));
    let policy =
        B64.encode(json!({"expiration": expiration, "conditions": conditions}).to_string());
    let signature = v4_signer().sign(&policy);
    let mut all: Vec<Field> = fields.iter().map(|(k, v)| field_of(k, v)).collect();
    all.extend(auth.iter().map(|(k, v)| field_of(k, v)));
    all.push(field_of("Policy", &policy));
    all.push(field_of("X-Amz-Signature", &signature));
    Prefix {
        fields: all,
        filename: Some("C:\\docs\\photo.jpg".into()),
        file_headers: b"Content-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\""
            .to_vec(),
        len: 0,
    }
}

fn settled(prefix: &Prefix) -> Settled {
    settle(prefix, "photos", &root(), now())
}

fn refusal(prefix: &Prefix) -> (String, String) {
    match settled(prefix) {
        Settled::Refused(e) => (
            e.code().as_str().to_owned(),
            e.message().unwrap_or_default().to_owned(),
        ),
        other => panic!("not refused: {other:?}"),
    }
}

const LATER: &str = "2026-01-01T01:00:00.000Z";

#[test]
fn signing_follows_the_aws_vectors() {
    // "Deriving the signing key" in AWS's Signature Version 4 documentation.
    let key = v4_signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20150830",
        "us-east-1",
        "iam",
    );
    assert_eq!(
        hex::encode(key),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
    // HMAC-SHA1 of the pangram under "key", the Wikipedia example, base64-encoded.
    let v2 = Signer::V2("key".into());
    let sig = v2.sign("The quick brown fox jumps over the lazy dog");
    assert_eq!(sig, "3nybhbi3iqa8ino29wqQcBydtNk=");
    assert!(v2.matches("The quick brown fox jumps over the lazy dog", &sig));
    assert!(!v2.matches("The quick brown fox jumps over the lazy cat", &sig));
}

#[test]
fn forms_not_signed_with_the_root_key_are_left_to_s3s() {
    let good = v4_form(
        &[("key", "a")],
        json!([{"bucket": "photos"}, ["eq", "$key", "a"]]),
        LATER,
    );
    assert!(matches!(settled(&good), Settled::Forward(_)));
    let mut tampered = good.fields.clone();
    let sig = tampered.last_mut().unwrap();
    sig.value = sig.value.replace(
        &sig.value[..1],
        if sig.value.starts_with('0') { "1" } else { "0" },
    );
    let mut other_key = good.fields.clone();
    other_key
        .iter_mut()
        .for_each(|f| f.value = f.value.replace("AKID/", "OTHER/"));
    for fields in [tampered, other_key] {
        let form = Prefix {
            fields,
            ..v4_form(&[], json!([]), LATER)
        };
        assert!(matches!(settled(&form), Settled::Unverified));
    }
    // A form with no policy or signature at all is refused before its file is read: no
    // bucket takes anonymous writes, and s3s would hold the file in memory first.
    let unsigned = Prefix {
        fields: good.fields[..1].to_vec(),
        ..v4_form(&[], json!([]), LATER)
    };
    assert!(matches!(settled(&unsigned), Settled::Refused(_)));
}

#[test]
fn sigv2_forms_verify_too() {
    let policy = B64.encode(
        json!({"expiration": LATER, "conditions": [{"bucket": "photos"}, ["eq", "$key", "a"]]})
            .to_string(),
    );
    let signature = Signer::V2("SECRET".into()).sign(&policy);
    let fields = [
        ("key", "a"),
        ("AWSAccessKeyId", "AKID"),
        ("policy", &policy),
        ("signature", &signature),
    ];
    let form = Prefix {
        fields: fields.iter().map(|(k, v)| field_of(k, v)).collect(),
        ..v4_form(&[], json!([]), LATER)
    };
    let Settled::Forward(forwarded) = settled(&form) else {
        panic!("forwarded");
    };
    let pairs = pairs(&forwarded);
    assert!(matches!(
        Signer::verify(&pairs, &root()),
        Some(Signer::V2(_))
    ));
}

#[test]
fn filename_is_expanded_and_the_restated_policy_names_what_s3s_reads() {
    let form = v4_form(
        &[
            ("key", "uploads/${filename}"),
            ("success_action_status", "abc"),
            ("x-amz-meta-note", "from ${filename}"),
            ("x-ignore-me", "1"),
        ],
        json!([
            {"bucket": "photos"},
            ["starts-with", "$key", "uploads/"],
            ["eq", "$success_action_status", "abc"],
            ["starts-with", "$x-amz-meta-note", ""],
            ["content-length-range", "1", 100],
        ]),
        LATER,
    );
    let Settled::Forward(forwarded) = settled(&form) else {
        panic!("forwarded");
    };
    let pairs = pairs(&forwarded);
    assert_eq!(field(&pairs, "key"), Some("uploads/photo.jpg"));
    assert_eq!(field(&pairs, "x-amz-meta-note"), Some("from photo.jpg"));
    assert_eq!(
        field(&pairs, "success_action_status"),
        None,
        "AWS ignores it"
    );
    assert!(matches!(
        Signer::verify(&pairs, &root()),
        Some(Signer::V4(_))
    ));
    let policy = Policy::parse(field(&pairs, "policy").unwrap()).unwrap();
    assert_eq!(
        policy.expiration,
        time::macros::datetime!(2026-01-01 01:00 UTC)
    );
    let names: Vec<&str> = policy
        .conditions
        .iter()
        .filter_map(|c| match c {
            Condition::Eq { field, .. } => Some(field.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "x-amz-date",
            "x-amz-credential",
            "x-amz-algorithm",
            "x-ignore-me",
            "x-amz-meta-note",
            "key"
        ]
    );
    assert!(policy
        .conditions
        .contains(&Condition::LengthRange { min: 1, max: 100 }));
    assert!(policy.check(&pairs, "photos", now()).is_ok());
}

#[test]
fn valid_statuses_stay() {
    let form = v4_form(
        &[("key", "a"), ("success_action_status", "201")],
        json!([["eq", "$key", "a"], {"success_action_status": "201"}]),
        LATER,
    );
    let Settled::Forward(forwarded) = settled(&form) else {
        panic!("forwarded");
    };
    assert_eq!(
        field(&pairs(&forwarded), "success_action_status"),
        Some("201")
    );
}

#[test]
fn refusals() {
    let form = v4_form(
        &[("key", "a")],
        json!([["eq", "$key", "a"]]),
        "2026-01-01T00:00:00Z",
    );
    assert_eq!(
        refusal(&form),
        (
            "AccessDenied".into(),
            "Invalid according to Policy: Policy expired.".into()
        )
    );
    let form = v4_form(
        &[("key", "a"), ("acl", "private")],
        json!([["eq", "$key", "a"]]),
        LATER,
    );
    assert_eq!(
        refusal(&form),
        (
            "AccessDenied".into(),
            "Invalid according to Policy: Extra input fields: acl".into()
        )
    );
    let form = v4_form(&[], json!([{"bucket": "photos"}]), LATER);
    assert_eq!(refusal(&form).0, "InvalidArgument");
    let form = v4_form(
        &[("key", "a"), ("x-amz-checksum-algorithm", "CRC32")],
        json!([
            ["eq", "$key", "a"],
            ["starts-with", "$x-amz-checksum-algorithm", ""]
        ]),
        LATER,
    );
    assert_eq!(
        refusal(&form),
        (
            "InvalidRequest".into(),
            "x-amz-checksum-algorithm specified, but no corresponding x-amz-checksum-crc32 field was found.".into()
        )
    );
    let form = v4_form(
        &[("key", "a"), ("x-amz-checksum-algorithm", "MD4")],
        json!([
            ["eq", "$key", "a"],
            ["starts-with", "$x-amz-checksum-algorithm", ""]
        ]),
        LATER,
    );
    assert_eq!(refusal(&form).0, "InvalidRequest");
}

fn post(uri: &str, content_type: &str) -> Request<Body> {
    Request::post(uri)
        .header("host", "127.0.0.1:9000")
        .header("content-type", content_type)
        .body(Body::empty())
        .unwrap()
}

#[test]
fn targets_are_buckets_without_a_query() {
    let form = "multipart/form-data; boundary=B";
    let t = Target::of(&post("/photos", form), None).unwrap();
    assert_eq!(
        (t.bucket.as_str(), t.path_style, t.boundary.as_str()),
        ("photos", true, "B")
    );
    assert_eq!(
        Target::of(&post("/photos/", form), None).unwrap().bucket,
        "photos"
    );
    let t = Target::of(&post("/", form), Some("photos")).unwrap();
    assert_eq!((t.bucket.as_str(), t.path_style), ("photos", false));
    assert!(Target::of(&post("/photos/key", form), None).is_none());
    assert!(Target::of(&post("/key", form), Some("photos")).is_none());
    assert!(Target::of(&post("/", form), None).is_none());
    assert!(Target::of(&post("/photos?delete", form), None).is_none());
    assert!(Target::of(&post("/photos", "application/xml"), None).is_none());
}

#[test]
fn locations_are_absolute_urls() {
    let fields = [field_of("key", "dir/a b&c.txt")];
    let parts = post("/photos", "multipart/form-data; boundary=B")
        .into_parts()
        .0;
    let path = Target {
        bucket: "photos".into(),
        path_style: true,
        boundary: "B".into(),
    };
    assert_eq!(
        object_url(&parts, &path, &fields).as_deref(),
        Some("http://127.0.0.1:9000/photos/dir/a%20b%26c.txt")
    );
    let host = Target {
        path_style: false,
        ..path
    };
    assert_eq!(
        object_url(&parts, &host, &fields).as_deref(),
        Some("http://127.0.0.1:9000/dir/a%20b%26c.txt")
    );
    let xml = "<PostResponse><Location>/photos/k</Location><Bucket>photos</Bucket></PostResponse>";
    assert_eq!(
        with_location(xml, "http://h/photos/k").as_deref(),
        Some("<PostResponse><Location>http://h/photos/k</Location><Bucket>photos</Bucket></PostResponse>")
    );
}

async fn read(chunks: &[&[u8]]) -> Fields {
    let items: Vec<Result<Bytes, StdError>> = chunks
        .iter()
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    read_fields(&mut futures::stream::iter(items), "B").await
}

#[tokio::test]
async fn fields_are_read_in_chunks_and_capped() {
    let body: &[u8] = b"--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nDATA\r\n--B--\r\n";
    let Fields::Read(prefix, read_bytes) = read(&[&body[..7], &body[7..60], &body[60..]]).await
    else {
        panic!("read");
    };
    assert_eq!(prefix.fields[0].value, "k");
    assert_eq!(&read_bytes[prefix.len..prefix.len + 4], b"DATA");
    let big = format!(
        "--B\r\nContent-Disposition: form-data; name=\"x-ignore-pad\"\r\n\r\n{}\r\n--B\r\n",
        "p".repeat(MAX_FIELDS)
    );
    assert!(matches!(read(&[big.as_bytes()]).await, Fields::TooLong));
    assert!(matches!(read(&[b"garbage"]).await, Fields::Other(_, None)));
    assert!(matches!(read(&[&body[..20]]).await, Fields::Other(_, None)));
}

#[tokio::test]
async fn bodies_reach_s3s_in_small_pieces() {
    let big = Bytes::from(vec![b'\r'; 2 * MAX_CHUNK + 1]);
    let items: Vec<Result<Bytes, StdError>> = vec![Ok(big.clone()), Ok(Bytes::from_static(b"end"))];
    let body = streamed(futures::stream::iter(items));
    let pieces: Vec<Bytes> = body.map(|r| r.unwrap()).collect().await;
    let sizes: Vec<usize> = pieces.iter().map(Bytes::len).collect();
    assert_eq!(sizes, [MAX_CHUNK, MAX_CHUNK, 1, 3]);
    assert_eq!(pieces.concat(), [&big[..], b"end"].concat());
}
