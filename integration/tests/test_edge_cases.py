"""Edge cases checked against AWS S3's documented (and observed) behaviour: ranges, conditional
reads, copies, bucket names, keys, listings, batch deletes and multipart paging."""

import datetime
import hashlib
import socket
import urllib.parse

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import error_code, status
from sigv4 import sign_headers, signed

MiB = 1024 * 1024


# --- Range -------------------------------------------------------------------------------------

def test_single_ranges_on_a_tiny_object(server, s3, bucket):
    """bytes=0-0, open-ended and over-long suffix ranges work; a start at the size is 416."""
    s3.put_object(Bucket=bucket, Key="five", Body=b"01234")
    for rng, body, crange in [("bytes=0-0", b"0", "bytes 0-0/5"), ("bytes=4-", b"4", "bytes 4-4/5"),
                              ("bytes=-10", b"01234", "bytes 0-4/5"), ("bytes=0-", b"01234", "bytes 0-4/5")]:
        got = s3.get_object(Bucket=bucket, Key="five", Range=rng)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert got["Body"].read() == body and got["ContentRange"] == crange, rng
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="five", Range="bytes=5-")
    assert (error_code(e), status(e)) == ("InvalidRange", 416)


def test_range_on_empty_object_is_unsatisfiable(s3, bucket):
    """S3 answers bytes=0-0 on a 0-byte object with 416 InvalidRange (why s3transfer avoids it)."""
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    for rng in ("bytes=0-0", "bytes=-1", "bytes=0-"):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="empty", Range=rng)
        assert (error_code(e), status(e)) == ("InvalidRange", 416), rng


def presigned_get(s3, bucket, key, rng):
    """A presigned GET whose Range header is not signed (as a browser or media player sends it)."""
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    return requests.get(url, headers={"Range": rng})


def test_multiple_ranges_are_ignored(server, s3, bucket):
    """S3 does not support multi-range GETs: it ignores the Range and returns the whole object, 200."""
    s3.put_object(Bucket=bucket, Key="five", Body=b"01234")
    r = presigned_get(s3, bucket, "five", "bytes=0-1,3-4")
    assert r.status_code == 200, r.text
    assert r.content == b"01234"
    assert "content-range" not in r.headers


@pytest.mark.parametrize("rng", ["bytes=abc", "bytes=3-1"])
def test_invalid_range_is_ignored(server, s3, bucket, rng):
    """A syntactically invalid Range (or last < first) is ignored by S3: 200 with the whole object."""
    s3.put_object(Bucket=bucket, Key="five", Body=b"01234")
    r = presigned_get(s3, bucket, "five", rng)
    assert r.status_code == 200, r.text
    assert r.content == b"01234"


def test_head_with_range_or_part_number_is_206(server, s3, bucket):
    """HeadObject with a satisfiable Range or partNumber is a ranged request: 206 + Content-Range."""
    s3.put_object(Bucket=bucket, Key="five", Body=b"01234")
    h = s3.head_object(Bucket=bucket, Key="five", Range="bytes=1-2")
    assert h["ContentLength"] == 2
    assert h["ResponseMetadata"]["HTTPHeaders"]["content-range"] == "bytes 1-2/5"
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206
    h = s3.head_object(Bucket=bucket, Key="five", PartNumber=1)
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206


# --- Conditional reads -------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["get_object", "head_object"])
def test_conditional_header_combinations(s3, bucket, op):
    """GetObject's and HeadObject's documented combinations: If-Match true beats
    If-Unmodified-Since false (200); If-None-Match false with If-Modified-Since true is 304; a
    failing If-Match is 412."""
    read = getattr(s3, op)
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"data")["ETag"]
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
    assert read(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=past)["ETag"] == etag
    with pytest.raises(ClientError) as e:
        read(Bucket=bucket, Key="c", IfNoneMatch=etag, IfModifiedSince=past)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        read(Bucket=bucket, Key="c", IfMatch='"nope"', IfUnmodifiedSince=future)
    assert status(e) == 412
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfMatch='"nope"')
    assert status(e) == 412
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch="*")["Body"].read() == b"data"


def test_not_modified_carries_etag_and_no_body(server, s3, bucket):
    """A 304 must carry the ETag (RFC 9110 15.4.5; S3 sends ETag and Last-Modified) and no body."""
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"data")["ETag"]
    for method in ("GET", "HEAD"):
        r = signed(server, method, f"/{bucket}/c", extra={"if-none-match": etag})
        assert r.status_code == 304
        assert r.content == b""
        assert r.headers.get("etag") == etag, method
        assert "last-modified" in r.headers, method


# --- CopyObject --------------------------------------------------------------------------------

def test_copy_zero_byte_and_unicode_source(server, s3, bucket):
    """A 0-byte object copies with the empty MD5; a URL-encoded unicode source key resolves."""
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    out = s3.copy_object(Bucket=bucket, Key="empty-copy", CopySource={"Bucket": bucket, "Key": "empty"})
    assert out["CopyObjectResult"]["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert s3.head_object(Bucket=bucket, Key="empty-copy")["ContentLength"] == 0
    key = "ünï cødé/鍵+%.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"uni")
    r = signed(server, "PUT", f"/{bucket}/uc", extra={"x-amz-copy-source": f"/{bucket}/{urllib.parse.quote(key)}"})
    assert r.status_code == 200 and "<CopyObjectResult" in r.text, r.text
    assert s3.get_object(Bucket=bucket, Key="uc")["Body"].read() == b"uni"


def test_self_copy_with_only_new_metadata_header_is_still_illegal(server, s3, bucket):
    """x-amz-meta-* without MetadataDirective=REPLACE does not change anything: still illegal."""
    s3.put_object(Bucket=bucket, Key="s", Body=b"x")
    r = signed(server, "PUT", f"/{bucket}/s", extra={"x-amz-copy-source": f"{bucket}/s", "x-amz-meta-new": "1"})
    assert r.status_code == 400 and "<Code>InvalidRequest</Code>" in r.text, r.text


def test_copy_source_version_null_in_unversioned_bucket(server, s3, bucket):
    """Objects in an unversioned bucket have the version ID "null"; it is valid in a copy source."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"abc")
    assert s3.get_object(Bucket=bucket, Key="src", VersionId="null")["Body"].read() == b"abc"
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": "null"})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"abc"


def test_unknown_metadata_directive_is_refused(server, s3, bucket):
    """S3 refuses an x-amz-metadata-directive other than COPY/REPLACE with 400 InvalidArgument."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"abc")
    r = signed(server, "PUT", f"/{bucket}/dst", extra={"x-amz-copy-source": f"{bucket}/src", "x-amz-metadata-directive": "BOGUS"})
    assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text, r.text


# --- Bucket names and keys ---------------------------------------------------------------------

def test_63_char_bucket_name_is_fine(s3):
    """63 characters is the maximum length and is accepted."""
    name = "e" + "0" * 61 + "e"
    s3.create_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize("name", ["xn--abc", "sthree-abc", "amzn-s3-demo-bucket1", "abc-s3alias", "abc--ol-s3", "abc.mrap"])
def test_reserved_bucket_name_prefixes_and_suffixes(s3, name):
    """General purpose bucket naming rules reserve the prefixes xn--, sthree-, amzn-s3-demo- and
    the suffixes -s3alias, --ol-s3 and .mrap."""
    try:
        s3.create_bucket(Bucket=name)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidBucketName"
        return
    s3.delete_bucket(Bucket=name)
    pytest.fail(f"bucket {name} was created")


def test_key_length_counts_utf8_bytes(s3, bucket):
    """The 1024 limit is on UTF-8 bytes: 512 two-byte characters fit, 513 do not."""
    s3.put_object(Bucket=bucket, Key="é" * 512, Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="é" * 513, Body=b"x")
    assert error_code(e) == "KeyTooLongError"


@pytest.mark.parametrize("key", [" trailing space ", "/leading", "ctrl\x01char", "dir/"])
def test_more_unusual_keys(s3, bucket, key):
    """Control characters, leading slashes and trailing spaces are kept exactly."""
    s3.put_object(Bucket=bucket, Key=key, Body=b"v")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]


# --- PutObject wire details --------------------------------------------------------------------

def test_expect_100_continue_and_short_body(server, s3, bucket):
    """Expect: 100-continue gets a 100 before the body; a body shorter than Content-Length is not stored."""
    body = b"hello world"
    h, *_ = sign_headers("PUT", f"{server.endpoint}/{bucket}/exp", {"content-length": str(len(body)), "expect": "100-continue"},
                         hashlib.sha256(body).hexdigest(), server.user, server.password)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((f"PUT /{bucket}/exp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode())
        assert sock.recv(1000).startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        assert sock.recv(4000).startswith(b"HTTP/1.1 200")
    assert s3.get_object(Bucket=bucket, Key="exp")["Body"].read() == body
    h, *_ = sign_headers("PUT", f"{server.endpoint}/{bucket}/short", {"content-length": "20"}, "UNSIGNED-PAYLOAD",
                         server.user, server.password)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((f"PUT /{bucket}/short HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode() + body)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(4000)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="short")
    assert status(e) == 404


def test_empty_body_with_content_md5(server, bucket):
    """A 0-byte PUT with the Content-MD5 of the empty string succeeds."""
    r = signed(server, "PUT", f"/{bucket}/e", extra={"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg=="})
    assert r.status_code == 200 and r.headers["etag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


# --- Listing -----------------------------------------------------------------------------------

def test_list_v2_edges(s3, bucket):
    """StartAfter beyond all keys, delimiter without prefix, fetch-owner, KeyCount with prefixes."""
    for k in ["a/1", "a/2", "b", "c/d"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    out = s3.list_objects_v2(Bucket=bucket, StartAfter="zzz")
    assert out["KeyCount"] == 0 and "Contents" not in out and out["IsTruncated"] is False
    out = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in out["Contents"]] == ["b"]
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["a/", "c/"]
    assert out["KeyCount"] == 3
    out = s3.list_objects_v2(Bucket=bucket, FetchOwner=True, MaxKeys=1)
    assert "Owner" in out["Contents"][0]
    assert "Owner" not in s3.list_objects_v2(Bucket=bucket)["Contents"][0]


def test_list_v1_next_marker_only_with_delimiter(s3, bucket):
    """V1 returns NextMarker only when a delimiter is given."""
    for k in ["a", "b", "c"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    out = s3.list_objects(Bucket=bucket, MaxKeys=1)
    assert out["IsTruncated"] and "NextMarker" not in out
    out = s3.list_objects(Bucket=bucket, MaxKeys=1, Delimiter="/")
    assert out["IsTruncated"] and out["NextMarker"] == "a"


def test_unknown_encoding_type_is_refused(server, bucket):
    """S3 refuses encoding-type values other than "url": 400 InvalidArgument."""
    r = signed(server, "GET", f"/{bucket}?list-type=2&encoding-type=bogus")
    assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text, r.text


# --- DeleteObjects -----------------------------------------------------------------------------

def test_delete_objects_quiet_with_missing_key(s3, bucket):
    """Quiet mode lists only errors; a missing key is not an error. Verbose mode reports it Deleted."""
    s3.put_object(Bucket=bucket, Key="x", Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "x"}, {"Key": "nope"}], "Quiet": True})
    assert out.get("Deleted", []) == [] and out.get("Errors", []) == []
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "nope2"}]})
    assert [d["Key"] for d in out["Deleted"]] == ["nope2"]


# --- Multipart ---------------------------------------------------------------------------------

@pytest.mark.parametrize("part", [0, 10001])
def test_upload_part_number_out_of_range(s3, bucket, part):
    """Part numbers must be 1..10000."""
    up = s3.create_multipart_upload(Bucket=bucket, Key="p")
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="p", UploadId=up["UploadId"], PartNumber=part, Body=b"x")
    assert (error_code(e), status(e)) == ("InvalidArgument", 400)


def test_list_parts_marker_at_last_part(s3, bucket):
    """A part-number-marker at the last part gives an empty, untruncated page."""
    up = s3.create_multipart_upload(Bucket=bucket, Key="lp")
    for n in (1, 2, 3):
        s3.upload_part(Bucket=bucket, Key="lp", UploadId=up["UploadId"], PartNumber=n, Body=b"x")
    out = s3.list_parts(Bucket=bucket, Key="lp", UploadId=up["UploadId"], PartNumberMarker=3)
    assert out.get("Parts", []) == [] and out["IsTruncated"] is False
    out = s3.list_parts(Bucket=bucket, Key="lp", UploadId=up["UploadId"], MaxParts=2, PartNumberMarker=1)
    assert [p["PartNumber"] for p in out["Parts"]] == [2, 3]


def test_complete_with_duplicate_part_numbers_is_refused(s3, bucket):
    """Listing the same part twice is not ascending order: InvalidPartOrder."""
    up = s3.create_multipart_upload(Bucket=bucket, Key="d")
    p1 = s3.upload_part(Bucket=bucket, Key="d", UploadId=up["UploadId"], PartNumber=1, Body=b"a" * (5 * MiB))
    p2 = s3.upload_part(Bucket=bucket, Key="d", UploadId=up["UploadId"], PartNumber=2, Body=b"b")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="d", UploadId=up["UploadId"], MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
    assert error_code(e) == "InvalidPartOrder"


# a key's uploads by initiation time but filters upload-id-marker by comparing IDs lexically.
def test_list_multipart_uploads_paging_with_many_uploads_per_key(s3, bucket):
    """Paging through ListMultipartUploads with NextKeyMarker/NextUploadIdMarker sees every upload once."""
    expected = set()
    for k in ["a", "b", "b", "b", "b", "b", "c"]:
        expected.add((k, s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]))
    full = [(u["Key"], u["UploadId"]) for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]]
    assert set(full) == expected
    seen = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1}):
        seen += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        assert len(seen) <= len(expected)
    assert seen == full


def test_list_multipart_uploads_prefix_and_delimiter(s3, bucket):
    """prefix + delimiter roll up deeper keys into CommonPrefixes."""
    s3.create_multipart_upload(Bucket=bucket, Key="c/d/e")
    s3.create_multipart_upload(Bucket=bucket, Key="c/f")
    out = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/", Delimiter="/")
    assert [u["Key"] for u in out.get("Uploads", [])] == ["c/f"]
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["c/d/"]
