"""Authentication: wrong keys, presigned URLs, and every payload signing form."""

import base64
import datetime
import hashlib
import os
import time
import zlib

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import error_code, status
from sigv4 import chunked_signed_body, chunked_trailer_body, sign_headers


def test_wrong_secret_is_signature_does_not_match(server, bucket):
    bad = server.client(password="not-the-secret")
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=bucket)
    assert error_code(e) == "SignatureDoesNotMatch"
    assert status(e) == 403


def test_unknown_access_key(server, bucket):
    bad = server.client(user="nobody-here")
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert error_code(e) == "InvalidAccessKeyId"
    assert status(e) == 403


def test_anonymous_request_is_denied_with_xml_and_request_id(server, bucket):
    r = requests.get(f"{server.endpoint}/{bucket}")
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text
    assert "<RequestId>" in r.text
    assert r.headers["x-amz-request-id"]


# boto3 presigns with SigV2 unless told s3v4; both forms are in use.
@pytest.mark.parametrize("version", ["s3", "s3v4"])
def test_presigned_get_and_put(server, bucket, version):
    s3 = server.client(signature_version=version)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert ("X-Amz-Signature=" in put_url) == (version == "s3v4")
    assert requests.put(put_url, data=b"presigned body").status_code == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    r = requests.get(get_url)
    assert r.status_code == 200 and r.content == b"presigned body"
    # One character of the signature changed, so it keeps its form but not its value.
    at = get_url.index("Signature=") + len("Signature=")
    tampered = get_url[:at] + ("1" if get_url[at] == "0" else "0") + get_url[at + 1:]
    assert requests.get(tampered).status_code == 403


@pytest.mark.parametrize("version", ["s3", "s3v4"])
def test_expired_presigned_url(server, bucket, version):
    s3 = server.client(signature_version=version)
    s3.put_object(Bucket=bucket, Key="e", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "e"}, ExpiresIn=1)
    time.sleep(2.5)
    r = requests.get(url)
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text and "expired" in r.text.lower()


def put_raw(server, bucket, key, body, payload_hash, extra=None):
    url = f"{server.endpoint}/{bucket}/{key}"
    headers, *_ = sign_headers("PUT", url, dict(extra or {}, **{"content-length": str(len(body))}), payload_hash, server.user, server.password)
    return requests.put(url, data=body, headers=headers)


def test_signed_payload_and_mismatch(server, s3, bucket):
    body = b"signed payload"
    r = put_raw(server, bucket, "sp", body, hashlib.sha256(body).hexdigest())
    assert r.status_code == 200, r.text
    r = put_raw(server, bucket, "sp2", body, hashlib.sha256(b"other").hexdigest())
    assert r.status_code == 400 and "<Code>XAmzContentSHA256Mismatch</Code>" in r.text, r.text
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="sp2")


def test_unsigned_payload(server, s3, bucket):
    r = put_raw(server, bucket, "up", b"unsigned payload", "UNSIGNED-PAYLOAD")
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"unsigned payload"


def test_streaming_signed_chunks(server, s3, bucket):
    data = os.urandom(200_000)
    url = f"{server.endpoint}/{bucket}/chunked"
    encoded_len = len(chunked_signed_body(data, 64 * 1024, b"k" * 32, "s", "d", "0" * 64))
    headers, key, scope, amz_date, seed = sign_headers(
        "PUT", url,
        {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)), "content-length": str(encoded_len)},
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", server.user, server.password,
    )
    body = chunked_signed_body(data, 64 * 1024, key, scope, amz_date, seed)
    r = requests.put(url, data=body, headers=headers)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == data
    # A chunk signed with the wrong key is refused and nothing is stored.
    bad = chunked_signed_body(data, 64 * 1024, b"x" * 32, scope, amz_date, seed)
    headers2, *_ = sign_headers("PUT", url + "2", {k: v for k, v in headers.items() if k in ("content-encoding", "x-amz-decoded-content-length", "content-length")},
                                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", server.user, server.password)
    r = requests.put(url + "2", data=bad, headers=headers2)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text, r.text
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="chunked2")


def test_streaming_unsigned_trailer_with_checksum(server, s3, bucket):
    data = os.urandom(150_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    url = f"{server.endpoint}/{bucket}/trailer"
    body = chunked_trailer_body(data, 50_000, "x-amz-checksum-crc32", crc)
    headers, *_ = sign_headers(
        "PUT", url,
        {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32",
         "content-length": str(len(body))},
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER", server.user, server.password,
    )
    r = requests.put(url, data=body, headers=headers)
    assert r.status_code == 200, r.text
    h = s3.head_object(Bucket=bucket, Key="trailer", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == crc
    wrong = base64.b64encode(zlib.crc32(b"nope").to_bytes(4, "big")).decode()
    body = chunked_trailer_body(data, 50_000, "x-amz-checksum-crc32", wrong)
    headers, *_ = sign_headers(
        "PUT", url + "-bad",
        {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32",
         "content-length": str(len(body))},
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER", server.user, server.password,
    )
    r = requests.put(url + "-bad", data=body, headers=headers)
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="trailer-bad")


def test_virtual_host_style(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="vh", Body=b"virtual")
    url = f"{server.endpoint}/vh"
    # Sign for the virtual host, then send to 127.0.0.1 with that Host header.
    vhost = f"{bucket}.localhost:{server.port}"
    headers, *_ = sign_headers("GET", f"http://{vhost}/vh", {}, hashlib.sha256(b"").hexdigest(), server.user, server.password)
    r = requests.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert r.content == b"virtual"


def test_clock_skew_is_refused(server, bucket):
    url = f"{server.endpoint}/{bucket}"
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    headers, *_ = sign_headers("GET", url, {}, hashlib.sha256(b"").hexdigest(), server.user, server.password, when=old)
    r = requests.get(url, headers=headers)
    assert r.status_code == 403
    assert "RequestTimeTooSkewed" in r.text
