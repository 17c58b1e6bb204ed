"""Bad input gets the AWS error and leaves stored data untouched."""

import hashlib
import base64
import os
import socket
import time
import zlib

import requests
import pytest
from botocore.exceptions import ClientError
from conftest import Strata, error_code, status
from sigv4 import sign_headers, signed


def test_bad_requests_leave_data_intact(server, s3, bucket):
    keep = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key="keep", Body=keep)

    body = b"<Delete><Object><Key>keep</Key></Object"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    r = signed(server, "POST", f"/{bucket}?delete", body, {"content-md5": md5, "content-type": "application/xml"})
    assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text, r.text

    up = s3.create_multipart_upload(Bucket=bucket, Key="keep")
    r = signed(server, "POST", f"/{bucket}/keep?uploadId={up['UploadId']}", b"<CompleteMultipartUpload><Part>", {})
    assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text, r.text

    r = signed(server, "PUT", f"/{bucket}/keep?tagging", b"<<<not xml", {})
    assert r.status_code in (400, 501), r.text

    r = signed(server, "GET", "/..%2F..%2Fetc/passwd")
    assert r.status_code == 400 and "<Code>InvalidBucketName</Code>" in r.text, r.text

    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == keep


def test_oversized_headers_are_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"safe")
    try:
        r = requests.get(f"{server.endpoint}/{bucket}/keep", headers={"x-big": "a" * (100 * 1024)})
        assert r.status_code == 431
    except requests.ConnectionError:
        pass  # hyper may close the connection instead of answering
    assert requests.get(server.endpoint + "/health/live").status_code == 200
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"safe"


def test_too_large_single_put_is_refused_before_the_body(server, bucket):
    url = f"{server.endpoint}/{bucket}/huge"
    headers, *_ = sign_headers("PUT", url, {"content-length": str(6 * 1024 ** 3)}, "UNSIGNED-PAYLOAD", server.user, server.password)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = f"PUT /{bucket}/huge HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode() + b"x" * 1000)
        reply = sock.recv(65536).decode(errors="replace")
    assert " 400 " in reply.splitlines()[0], reply
    assert "EntityTooLarge" in reply


def test_bodies_aws_checks_need_content_md5_or_a_checksum(server, s3, bucket, lock_bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"safe")
    body = b"<Delete><Object><Key>keep</Key></Object></Delete>"
    xml = {"content-type": "application/xml"}
    r = signed(server, "POST", f"/{bucket}?delete", body, xml)
    assert r.status_code == 400 and "<Code>InvalidRequest</Code>" in r.text, r.text
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    r = signed(server, "POST", f"/{bucket}?delete", body, dict(xml, **{"content-md5": wrong}))
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text, r.text
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"safe"
    locked = lock_bucket
    s3.put_object(Bucket=locked, Key="keep", Body=b"safe")
    hold = b'<LegalHold xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>ON</Status></LegalHold>'
    r = signed(server, "PUT", f"/{locked}/keep?legal-hold", hold, xml)
    assert r.status_code == 400 and "<Code>InvalidRequest</Code>" in r.text and "Content-MD5" in r.text, r.text
    with pytest.raises(ClientError) as e:  # no status was ever given
        s3.get_object_legal_hold(Bucket=locked, Key="keep")
    assert (error_code(e), status(e)) == ("NoSuchObjectLockConfiguration", 404)
    md5 = base64.b64encode(hashlib.md5(hold).digest()).decode()
    r = signed(server, "PUT", f"/{locked}/keep?legal-hold", hold, dict(xml, **{"content-md5": md5}))
    assert r.status_code == 200, r.text
    s3.put_object_legal_hold(Bucket=locked, Key="keep", LegalHold={"Status": "OFF"})
    crc = lambda data: base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()  # noqa: E731
    r = signed(server, "POST", f"/{bucket}?delete", body, dict(xml, **{"x-amz-checksum-crc32": crc(b"other")}))
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text and "<RequestId>" in r.text, r.text
    r = signed(server, "PUT", f"/{bucket}/keep?tagging", b"<Tagging/>", dict(xml, **{"content-md5": wrong}))
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text, r.text
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"safe"
    r = signed(server, "POST", f"/{bucket}?delete", body, dict(xml, **{"x-amz-checksum-crc32": crc(body)}))
    assert r.status_code == 200 and "<Deleted>" in r.text, r.text


@pytest.fixture
def impatient_server(tmp_path, monkeypatch):
    """A server that gives up on a client after two idle seconds."""
    monkeypatch.setenv("STRATA_IDLE_TIMEOUT", "2")
    s = Strata(tmp_path / "data").start()
    yield s
    s.stop()


def stalled_put(server, path, sent, length):
    """Sends a signed PUT's headers and `sent` of its `length` body bytes, then waits; returns
    what the server answers and how long that took."""
    url = f"{server.endpoint}{path}"
    headers, *_ = sign_headers("PUT", url, {"content-length": str(length)}, "UNSIGNED-PAYLOAD", server.user, server.password)
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        started = time.time()
        sock.sendall(head.encode() + sent)
        reply = sock.recv(65536).decode(errors="replace")
        return reply, time.time() - started


def test_a_stalled_upload_times_out_and_stores_nothing(impatient_server):
    s3 = impatient_server.client()
    s3.create_bucket(Bucket="slow")
    # Small bodies are read whole, large ones block by block: both give up the same way.
    for length in (1000, 5 * 1024 * 1024):
        reply, waited = stalled_put(impatient_server, "/slow/stalled", b"x" * 100, length)
        assert " 400 " in reply.splitlines()[0], reply
        assert "<Code>RequestTimeout</Code>" in reply, reply
        assert 1.5 < waited < 15, waited
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="slow", Key="stalled")
    assert status(e) == 404
    # A client that keeps sending, however slowly, is not cut off.
    url = f"{impatient_server.endpoint}/slow/steady"
    headers, *_ = sign_headers("PUT", url, {"content-length": "6"}, "UNSIGNED-PAYLOAD", impatient_server.user, impatient_server.password)
    with socket.create_connection(("127.0.0.1", impatient_server.port), timeout=20) as sock:
        sock.sendall(b"PUT /slow/steady HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n")
        for byte in b"steady":
            time.sleep(1)
            sock.sendall(bytes([byte]))
        reply = sock.recv(65536).decode(errors="replace")
    assert " 200 " in reply.splitlines()[0], reply
    assert s3.get_object(Bucket="slow", Key="steady")["Body"].read() == b"steady"


def test_stalled_headers_are_cut_off(impatient_server):
    with socket.create_connection(("127.0.0.1", impatient_server.port), timeout=20) as sock:
        started = time.time()
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        try:
            reply = sock.recv(65536)
        except ConnectionResetError:
            reply = b""
        waited = time.time() - started
    assert reply == b"" or b" 408 " in reply.split(b"\r\n")[0], reply
    assert 1.5 < waited < 15, waited
    assert requests.get(impatient_server.endpoint + "/health/live").status_code == 200
