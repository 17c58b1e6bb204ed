"""Browser-form uploads (POST Object with a signed POST policy) answer as AWS S3 does.

Sources for AWS's behaviour:
* RESTObjectPOST, sigv4-HTTPPOSTForms, sigv4-HTTPPOSTConstructPolicy (developer guide): form
  fields, `${filename}`, success_action_status / success_action_redirect, checksum fields.
* Wire captures of S3 (LocalStack's AWS-validated recordings, issue-tracker captures):
  "Invalid according to Policy: Extra input fields: <name>", "Invalid according to Policy:
  Policy Condition failed: [...]", "Invalid according to Policy: Policy expired.",
  "Invalid Policy: Invalid 'expiration' value: '<v>'", "Invalid Policy: Invalid JSON.",
  EntityTooLarge/EntityTooSmall (400) for content-length-range, 303 redirects with
  `bucket`, `key`, `etag` (quoted, form-encoded) appended.
* ErrorResponses: BadDigest (400) when a Content-MD5 / checksum does not match the body.
"""

import base64
import datetime
import hashlib
import hmac
import json
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

import pytest
import requests
from sigv4 import REGION, signing_key

FUTURE = object()  # expiration placeholder: one hour from now


def _iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def post_form(server, bucket, fields, conditions, *, data=b"hello form", filename="a.txt",
              version=4, expiration=FUTURE, access_key=None, secret=None, policy_text=None,
              policy_field=None, tamper_signature=False):
    """POSTs a browser form to `bucket`. `fields` (ordered) go before the file; `conditions`
    are the policy's own (the SigV4 auth conditions are added). `policy_text` replaces the
    policy document (the text to base64-encode and sign); `policy_field` replaces the
    `policy` field itself (sent and signed as given)."""
    ak = access_key or server.user
    sk = secret or server.password
    now = datetime.datetime.now(datetime.timezone.utc)
    if expiration is FUTURE:
        expiration = _iso(now + datetime.timedelta(hours=1))
    form = list(fields)
    conditions = list(conditions)
    if version == 4:
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        credential = f"{ak}/{amz_date[:8]}/{REGION}/s3/aws4_request"
        conditions += [{"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-credential": credential},
                       {"x-amz-date": amz_date}]
    doc = policy_text if policy_text is not None else json.dumps(
        {"expiration": expiration, "conditions": conditions})
    policy = policy_field if policy_field is not None else base64.b64encode(doc.encode()).decode()
    if version == 4:
        sig = hmac.new(signing_key(sk, amz_date[:8]), policy.encode(), hashlib.sha256).hexdigest()
        if tamper_signature:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        form += [("x-amz-algorithm", "AWS4-HMAC-SHA256"), ("x-amz-credential", credential),
                 ("x-amz-date", amz_date), ("policy", policy), ("x-amz-signature", sig)]
    else:
        sig = base64.b64encode(hmac.new(sk.encode(), policy.encode(), hashlib.sha1).digest()).decode()
        if tamper_signature:
            sig = ("A" if sig[0] != "A" else "B") + sig[1:]
        form += [("AWSAccessKeyId", ak), ("policy", policy), ("signature", sig)]
    files = [(k, (None, v)) for k, v in form]
    files.append(("file", (filename, data) if filename is not None else (None, data)))
    return requests.post(f"{server.endpoint}/{bucket}", files=files, allow_redirects=False)


def covered(bucket, fields, *extra):
    """Policy conditions that cover every field exactly (plus the bucket and `extra`)."""
    return [{"bucket": bucket}] + [["eq", f"${k}", v] for k, v in fields] + list(extra)


def error_of(r):
    root = ET.fromstring(r.content)
    return r.status_code, root.findtext("Code"), root.findtext("Message")


def xml_fields(r):
    return {el.tag.split("}")[-1]: el.text for el in ET.fromstring(r.content)}


def quoted_md5(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def keys_in(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def stored(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# ---- 1. success_action_status -------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 2])
def test_default_status_is_204_empty(server, s3, bucket, version):
    fields = [("key", "default.txt")]
    r = post_form(server, bucket, fields, covered(bucket, fields), version=version)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert stored(s3, bucket, "default.txt") == b"hello form"


def test_status_200_is_empty(server, s3, bucket):
    fields = [("key", "s200.txt"), ("success_action_status", "200")]
    r = post_form(server, bucket, fields, covered(bucket, fields))
    assert r.status_code == 200, r.text
    assert r.content == b""
    assert stored(s3, bucket, "s200.txt") == b"hello form"


def test_status_201_returns_post_response(server, s3, bucket):
    fields = [("key", "s201.txt"), ("success_action_status", "201")]
    r = post_form(server, bucket, fields, covered(bucket, fields))
    assert r.status_code == 201, r.text
    body = xml_fields(r)
    assert ET.fromstring(r.content).tag.split("}")[-1] == "PostResponse"
    assert body["Bucket"] == bucket
    assert body["Key"] == "s201.txt"
    # AWS: the ETag element is quoted, Location is the object's absolute URL.
    assert body["ETag"] == quoted_md5(b"hello form"), body
    assert body["Location"] == f"{server.endpoint}/{bucket}/s201.txt", body
    assert stored(s3, bucket, "s201.txt") == b"hello form"


@pytest.mark.parametrize("value", ["404", "abc"])
def test_invalid_status_is_ignored_as_204(server, s3, bucket, value):
    fields = [("key", f"inv-{value}.txt"), ("success_action_status", value)]
    r = post_form(server, bucket, fields, covered(bucket, fields))
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert stored(s3, bucket, f"inv-{value}.txt") == b"hello form"


def test_204_carries_etag_header(server, s3, bucket):
    fields = [("key", "hdr.txt")]
    r = post_form(server, bucket, fields, covered(bucket, fields))
    assert r.status_code == 204, r.text
    assert r.headers.get("ETag") == quoted_md5(b"hello form"), dict(r.headers)
    assert stored(s3, bucket, "hdr.txt") == b"hello form"


def test_versioned_bucket_returns_version_id(server, s3, versioned_bucket):
    b = versioned_bucket
    fields = [("key", "v.txt")]
    r = post_form(server, b, fields, covered(b, fields))
    assert r.status_code == 204, r.text
    versions = s3.list_object_versions(Bucket=b)["Versions"]
    assert len(versions) == 1 and versions[0]["VersionId"] != "null"
    assert r.headers.get("x-amz-version-id") == versions[0]["VersionId"], dict(r.headers)


# ---- 2. success_action_redirect / redirect ------------------------------------------------

@pytest.mark.parametrize("field", ["success_action_redirect", "redirect"])
def test_redirect_is_303_with_bucket_key_etag(server, s3, bucket, field):
    target = "http://example.com/done?from=form"
    fields = [("key", "dir/red irect.txt"), (field, target)]
    r = post_form(server, bucket, fields, covered(bucket, fields))
    assert r.status_code == 303, r.text
    etag = quoted_md5(b"hello form")
    expected = target + "&" + urllib.parse.urlencode({"bucket": bucket, "key": "dir/red irect.txt", "etag": etag})
    assert r.headers["Location"] == expected
    assert stored(s3, bucket, "dir/red irect.txt") == b"hello form"


# ---- 3. ${filename} -------------------------------------------------------------------------

def test_filename_variable_in_key(server, s3, bucket):
    fields = [("key", "uploads/${filename}")]
    conditions = [{"bucket": bucket}, ["starts-with", "$key", "uploads/"]]
    r = post_form(server, bucket, fields, conditions, filename="photo.jpg", data=b"jpeg bytes")
    assert r.status_code == 204, r.text
    assert keys_in(s3, bucket) == ["uploads/photo.jpg"]
    assert stored(s3, bucket, "uploads/photo.jpg") == b"jpeg bytes"


# ---- 4. policy conditions -----------------------------------------------------------------

def test_field_without_condition_is_extra_input(server, s3, bucket):
    fields = [("key", "extra.txt"), ("x-amz-meta-color", "red")]
    r = post_form(server, bucket, fields, covered(bucket, fields[:1]))
    assert error_of(r) == (403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-color")
    assert keys_in(s3, bucket) == []


def test_exempt_fields_need_no_condition(server, s3, bucket):
    fields = [("key", "exempt.txt"), ("x-ignore-tracking", "1")]
    r = post_form(server, bucket, fields, covered(bucket, fields[:1]))
    assert r.status_code == 204, r.text
    assert stored(s3, bucket, "exempt.txt") == b"hello form"


def test_eq_condition_failed(server, s3, bucket):
    fields = [("key", "other.txt")]
    r = post_form(server, bucket, fields, [{"bucket": bucket}, ["eq", "$key", "x"]])
    assert error_of(r) == (403, "AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "x"]')
    assert keys_in(s3, bucket) == []


def test_starts_with_condition_failed(server, s3, bucket):
    fields = [("key", "elsewhere/a.txt")]
    r = post_form(server, bucket, fields, [{"bucket": bucket}, ["starts-with", "$key", "uploads/"]])
    assert error_of(r) == (
        403, "AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "uploads/"]')
    assert keys_in(s3, bucket) == []


def test_content_length_range_too_large(server, s3, bucket):
    fields = [("key", "big.txt")]
    r = post_form(server, bucket, fields, covered(bucket, fields, ["content-length-range", 1, 5]), data=b"123456")
    status, code, message = error_of(r)
    assert (status, code) == (400, "EntityTooLarge"), r.text
    assert message.startswith("Your proposed upload exceeds the maximum allowed"), message
    assert keys_in(s3, bucket) == []


def test_files_over_the_form_limit_are_refused(server, s3, bucket):
    # s3s holds a form's file in memory before the handler runs, so Strata caps form uploads
    # at 64 MiB (POST_OBJECT_MAX_FILE); one byte more is EntityTooLarge and stores nothing.
    fields = [("key", "huge.bin")]
    limit = 64 * 1024 * 1024
    r = post_form(server, bucket, fields, covered(bucket, fields), data=b"\0" * (limit + 1))
    status, code, _ = error_of(r)
    assert (status, code) == (400, "EntityTooLarge"), r.text
    assert keys_in(s3, bucket) == []
    r = post_form(server, bucket, fields, covered(bucket, fields), data=b"\1" * limit)
    assert r.status_code == 204, r.text
    assert s3.head_object(Bucket=bucket, Key="huge.bin")["ContentLength"] == limit


def test_content_length_range_too_small(server, s3, bucket):
    fields = [("key", "small.txt")]
    r = post_form(server, bucket, fields, covered(bucket, fields, ["content-length-range", 5, 10]), data=b"1")
    status, code, message = error_of(r)
    assert (status, code) == (400, "EntityTooSmall"), r.text
    assert message.startswith("Your proposed upload is smaller than the minimum allowed"), message
    assert keys_in(s3, bucket) == []


def test_content_length_range_bounds_are_inclusive(server, s3, bucket):
    fields = [("key", "edge.txt")]
    r = post_form(server, bucket, fields, covered(bucket, fields, ["content-length-range", 5, 10]), data=b"12345")
    assert r.status_code == 204, r.text
    assert stored(s3, bucket, "edge.txt") == b"12345"


# ---- 5. expiration, malformed policies, other bucket --------------------------------------

@pytest.mark.parametrize("version", [4, 2])
def test_expired_policy(server, s3, bucket, version):
    fields = [("key", "late.txt")]
    past = _iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10))
    r = post_form(server, bucket, fields, covered(bucket, fields), expiration=past, version=version)
    assert error_of(r) == (403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    assert keys_in(s3, bucket) == []


def test_malformed_expiration(server, s3, bucket):
    fields = [("key", "when.txt")]
    r = post_form(server, bucket, fields, covered(bucket, fields), expiration="2030-01-01 00:00:00 UTC")
    assert error_of(r) == (400, "InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value: '2030-01-01 00:00:00 UTC'")
    assert keys_in(s3, bucket) == []


def test_policy_not_json(server, s3, bucket):
    r = post_form(server, bucket, [("key", "json.txt")], [], version=2, policy_text="{not json")
    assert error_of(r) == (400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    assert keys_in(s3, bucket) == []


def test_policy_not_base64(server, s3, bucket):
    r = post_form(server, bucket, [("key", "b64.txt")], [], version=2, policy_field="%%% not base64 %%%")
    status, code, _ = error_of(r)
    assert (status, code) == (400, "InvalidPolicyDocument"), r.text
    assert keys_in(s3, bucket) == []


def test_policy_for_another_bucket(server, s3, bucket):
    fields = [("key", "wrong.txt")]
    conditions = [{"bucket": "some-other-bucket"}, ["eq", "$key", "wrong.txt"]]
    r = post_form(server, bucket, fields, conditions)
    assert error_of(r) == (
        403, "AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "some-other-bucket"]')
    assert keys_in(s3, bucket) == []


# ---- 6. credentials and signature -----------------------------------------------------------

@pytest.mark.parametrize("version", [4, 2])
def test_unknown_access_key(server, s3, bucket, version):
    fields = [("key", "ak.txt")]
    r = post_form(server, bucket, fields, covered(bucket, fields), version=version, access_key="NOSUCHKEY")
    status, code, _ = error_of(r)
    assert (status, code) == (403, "InvalidAccessKeyId"), r.text
    assert keys_in(s3, bucket) == []


@pytest.mark.parametrize("version", [4, 2])
def test_bad_signature(server, s3, bucket, version):
    fields = [("key", "sig.txt")]
    r = post_form(server, bucket, fields, covered(bucket, fields), version=version, tamper_signature=True)
    status, code, _ = error_of(r)
    assert (status, code) == (403, "SignatureDoesNotMatch"), r.text
    assert keys_in(s3, bucket) == []


# ---- 7. Content-Type ------------------------------------------------------------------------

def test_missing_content_type_is_binary_octet_stream(server, s3, bucket):
    fields = [("key", "noct.bin")]
    r = post_form(server, bucket, fields, covered(bucket, fields))
    assert r.status_code == 204, r.text
    got = s3.get_object(Bucket=bucket, Key="noct.bin")
    assert got["ContentType"] == "binary/octet-stream"
    assert got["Body"].read() == b"hello form"


def test_content_type_field_is_stored(server, s3, bucket):
    fields = [("key", "page.html"), ("Content-Type", "text/html; charset=utf-8")]
    r = post_form(server, bucket, fields, covered(bucket, fields), data=b"<p>hi</p>")
    assert r.status_code == 204, r.text
    got = s3.get_object(Bucket=bucket, Key="page.html")
    assert got["ContentType"] == "text/html; charset=utf-8"
    assert got["Body"].read() == b"<p>hi</p>"
    assert s3.head_object(Bucket=bucket, Key="page.html")["ContentType"] == "text/html; charset=utf-8"


# ---- 8. checksums and Content-MD5 ----------------------------------------------------------

@pytest.mark.parametrize("algorithm,value_of,field", [
    ("CRC32", crc32_b64, "ChecksumCRC32"),
    ("SHA256", sha256_b64, "ChecksumSHA256"),
])
def test_checksum_fields_are_stored(server, s3, bucket, algorithm, value_of, field):
    data = b"checksummed form body"
    key = f"sum-{algorithm}.txt"
    fields = [("key", key), ("x-amz-checksum-algorithm", algorithm),
              (f"x-amz-checksum-{algorithm.lower()}", value_of(data))]
    r = post_form(server, bucket, fields, covered(bucket, fields), data=data)
    assert r.status_code == 204, r.text
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got.get(field) == value_of(data), {k: v for k, v in got.items() if k.startswith("Checksum")}


def test_wrong_checksum_is_bad_digest(server, s3, bucket):
    data = b"checksummed form body"
    fields = [("key", "badsum.txt"), ("x-amz-checksum-algorithm", "CRC32"),
              ("x-amz-checksum-crc32", crc32_b64(b"something else"))]
    r = post_form(server, bucket, fields, covered(bucket, fields), data=data)
    status, code, _ = error_of(r)
    assert (status, code) == (400, "BadDigest"), r.text
    assert keys_in(s3, bucket) == []


def test_checksum_algorithm_without_value_is_refused(server, s3, bucket):
    fields = [("key", "novalue.txt"), ("x-amz-checksum-algorithm", "CRC32")]
    r = post_form(server, bucket, fields, covered(bucket, fields))
    assert r.status_code == 400, r.text
    assert keys_in(s3, bucket) == []


def test_wrong_content_md5_is_bad_digest(server, s3, bucket):
    md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    fields = [("key", "badmd5.txt"), ("Content-MD5", md5)]
    r = post_form(server, bucket, fields, covered(bucket, fields))
    status, code, _ = error_of(r)
    assert (status, code) == (400, "BadDigest"), r.text
    assert keys_in(s3, bucket) == []


# ---- anonymous forms and conditional writes ---------------------------------------------------

def test_an_unsigned_form_is_refused_before_its_file_is_read(server, s3, bucket):
    r = requests.post(f"{server.endpoint}/{bucket}", allow_redirects=False,
                      files=[("key", (None, "anon.txt")), ("file", ("a.txt", b"x" * 1000))])
    status, code, _ = error_of(r)
    assert (status, code) == (403, "AccessDenied"), r.text
    assert keys_in(s3, bucket) == []


@pytest.mark.parametrize("name", ["If-None-Match", "if-none-match"])
def test_if_none_match_field_refuses_an_existing_key(server, s3, bucket, name):
    s3.put_object(Bucket=bucket, Key="taken", Body=b"first")
    fields = [("key", "taken"), (name, "*")]
    r = post_form(server, bucket, fields, covered(bucket, fields), data=b"second")
    status, code, _ = error_of(r)
    assert (status, code) == (412, "PreconditionFailed"), r.text
    assert stored(s3, bucket, "taken") == b"first"
    fields = [("key", "free"), (name, "*")]
    r = post_form(server, bucket, fields, covered(bucket, fields), data=b"new")
    assert r.status_code == 204, r.text
    assert stored(s3, bucket, "free") == b"new"
