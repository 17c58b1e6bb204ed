"""Objects: sizes, metadata, ranges, conditional requests, copies, deletes, checksums, keys."""

import base64
import datetime
import hashlib
import os
import zlib

import pytest
from botocore.exceptions import ClientError
from conftest import error_code, status

MiB = 1024 * 1024


@pytest.mark.parametrize("size", [0, 1, 128 * 1024, 128 * 1024 + 1, MiB - 1, MiB, MiB + 1, 5 * MiB])
def test_round_trip_sizes(s3, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ETag"] == put["ETag"]


def test_100_mib_with_boto3_and_aws_cli(server, s3, bucket, tmp_path):
    data = os.urandom(100 * MiB)
    s3.put_object(Bucket=bucket, Key="big-single", Body=data)
    assert hashlib.sha256(s3.get_object(Bucket=bucket, Key="big-single")["Body"].read()).digest() == hashlib.sha256(data).digest()
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    server.aws("s3", "cp", "--only-show-errors", str(src), f"s3://{bucket}/big-cli")
    head = s3.head_object(Bucket=bucket, Key="big-cli")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-13"')  # aws CLI: 8 MiB parts
    dst = tmp_path / "back.bin"
    server.aws("s3", "cp", "--only-show-errors", f"s3://{bucket}/big-cli", str(dst))
    assert dst.read_bytes() == data


def test_metadata_and_headers_round_trip(s3, bucket):
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s3.put_object(
        Bucket=bucket,
        Key="meta",
        Body=b"hello",
        Metadata={"Color": "blue", "x-y": "z w"},
        ContentType="text/plain; charset=utf-8",
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="h.txt"',
        ContentLanguage="en",
        CacheControl="max-age=60",
        Expires=expires,
    )
    h = s3.head_object(Bucket=bucket, Key="meta")
    assert h["Metadata"] == {"color": "blue", "x-y": "z w"}
    assert h["ContentType"] == "text/plain; charset=utf-8"
    assert h["ContentEncoding"] == "identity"
    assert h["ContentDisposition"] == 'attachment; filename="h.txt"'
    assert h["ContentLanguage"] == "en"
    assert h["CacheControl"] == "max-age=60"
    assert h["Expires"] == expires
    g = s3.get_object(Bucket=bucket, Key="meta", ResponseContentType="application/json", ResponseCacheControl="no-store")
    assert g["ContentType"] == "application/json"
    assert g["CacheControl"] == "no-store"
    assert g["Metadata"]["color"] == "blue"


def test_website_redirect_location(s3, bucket):
    s3.put_object(Bucket=bucket, Key="page", Body=b"p", WebsiteRedirectLocation="/other.html")
    assert s3.head_object(Bucket=bucket, Key="page")["WebsiteRedirectLocation"] == "/other.html"
    assert s3.get_object(Bucket=bucket, Key="page")["WebsiteRedirectLocation"] == "/other.html"
    # Each object's own: a copy keeps it only when the request gives it again.
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "page"})
    assert "WebsiteRedirectLocation" not in s3.head_object(Bucket=bucket, Key="copy")
    # Changing only the redirect is a legal copy of an object onto itself.
    s3.copy_object(Bucket=bucket, Key="page", CopySource={"Bucket": bucket, "Key": "page"},
                   WebsiteRedirectLocation="https://example.com/")
    assert s3.head_object(Bucket=bucket, Key="page")["WebsiteRedirectLocation"] == "https://example.com/"
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", WebsiteRedirectLocation="http://example.com/x")
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"m")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.head_object(Bucket=bucket, Key="mp")["WebsiteRedirectLocation"] == "http://example.com/x"
    for bad in ["other.html", "ftp://example.com/", "/" + "a" * 2048]:
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="bad", Body=b"b", WebsiteRedirectLocation=bad)
        assert (error_code(e), status(e)) == ("InvalidRedirectLocation", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_metadata_too_large(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert error_code(e) == "MetadataTooLarge"


@pytest.mark.parametrize(
    "rng,expect",
    [("bytes=0-0", slice(0, 1)), ("bytes=10-19", slice(10, 20)), ("bytes=-7", slice(-7, None)), ("bytes=3000000-", slice(3000000, None)),
     ("bytes=1048570-1048600", slice(1048570, 1048601)), ("bytes=100-99999999", slice(100, None))],
)
def test_ranges(s3, bucket, rng, expect):
    data = os.urandom(3 * MiB + 17)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    got = s3.get_object(Bucket=bucket, Key="r", Range=rng)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == data[expect]
    assert got["ContentRange"].startswith("bytes ") and got["ContentRange"].endswith(f"/{len(data)}")


def test_unsatisfiable_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-20")
    assert error_code(e) == "InvalidRange"
    assert status(e) == 416


def test_conditional_reads(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"data")
    etag = put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"data"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert status(e) == 412
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status(e) == 304
    assert s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"0000"')["Body"].read() == b"data"
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read() == b"data"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert status(e) == 412
    assert s3.head_object(Bucket=bucket, Key="c", IfUnmodifiedSince=future)["ETag"] == etag


def test_conditional_writes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="w", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfNoneMatch="*")
    assert status(e) == 412
    etag = s3.head_object(Bucket=bucket, Key="w")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfMatch='"ffff"')
    assert status(e) == 412
    s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="w")["Body"].read() == b"two"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch=etag)
    assert status(e) == 404


def test_missing_key(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_code(e) == "NoSuchKey"
    assert status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status(e) == 404


@pytest.mark.parametrize(
    "key",
    ["ünïcødé/ключ/鍵.txt", "with space", "plus+sign", "percent%20literal", "../../etc/passwd", "a/../b", "./dot", "a//b",
     "emoji-😀", "tab\there", "x" * 1024, "?query&amp=1#frag", "back\\slash"],
)
def test_unusual_keys_round_trip(server, s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert key in keys
    # Keys never become paths: nothing named after the key exists anywhere on disk.
    leaf = key.rsplit("/", 1)[-1]
    if len(leaf) > 3 and "/" not in leaf:
        for p in server.data.parent.rglob("*"):
            assert p.name != leaf
    s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=key)


def test_key_too_long(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_code(e) == "KeyTooLongError"


def test_delete_is_idempotent(s3, bucket):
    s3.put_object(Bucket=bucket, Key="d", Body=b"x")
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_objects_quiet_and_verbose(s3, bucket):
    keys = [f"k{i:04d}" for i in range(1000)]
    for k in keys[:20]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert len(out["Deleted"]) == 1000
    assert "Errors" not in out or out["Errors"] == []
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.put_object(Bucket=bucket, Key="q", Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q"}], "Quiet": True})
    assert out.get("Deleted", []) == []
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert error_code(e) == "MalformedXML"


def test_copy_object_metadata_directives(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", Metadata={"a": "1"}, ContentType="text/plain")
    out = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert out["CopyObjectResult"]["ETag"] == s3.head_object(Bucket=bucket, Key="src")["ETag"]
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert h["Metadata"] == {"a": "1"} and h["ContentType"] == "text/plain"
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="application/x-test")
    h = s3.head_object(Bucket=bucket, Key="dst2")
    assert h["Metadata"] == {"b": "2"} and h["ContentType"] == "application/x-test"
    assert s3.get_object(Bucket=bucket, Key="dst2")["Body"].read() == b"copy me"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_code(e) == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE", Metadata={"c": "3"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"c": "3"}


def test_conditional_copy(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"x" * 10)["ETag"]
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch='"bad"')
    assert status(e) == 412
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfNoneMatch=etag)
    assert status(e) == 412
    s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"x" * 10
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "missing"})
    assert error_code(e) == "NoSuchKey"


def test_large_copy_streams_all_bytes(s3, bucket):
    data = os.urandom(9 * MiB + 5)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    s3.copy_object(Bucket=bucket, Key="big-copy", CopySource={"Bucket": bucket, "Key": "big"})
    assert s3.get_object(Bucket=bucket, Key="big-copy")["Body"].read() == data


def b64(d):
    return base64.b64encode(d).decode()


def test_content_md5_is_verified(s3, bucket):
    s3.put_object(Bucket=bucket, Key="m", Body=b"abc", ContentMD5=b64(hashlib.md5(b"abc").digest()))
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m2", Body=b"abc", ContentMD5=b64(hashlib.md5(b"abd").digest()))
    assert error_code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m3", Body=b"abc", ContentMD5="not-md5")
    assert error_code(e) == "InvalidDigest"
    for k in ("m2", "m3"):
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key=k)


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_flexible_checksums_stored_and_returned(s3, bucket, algorithm):
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="ck", Body=data, ChecksumAlgorithm=algorithm)
    field = f"Checksum{algorithm}"
    assert put[field]
    h = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert h[field] == put[field]
    g = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert g["Body"].read() == data
    assert field not in s3.head_object(Bucket=bucket, Key="ck")


def test_wrong_checksum_is_refused(s3, bucket):
    wrong = b64(zlib.crc32(b"other").to_bytes(4, "big"))
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"content", ChecksumCRC32=wrong)
    assert error_code(e) == "BadDigest"
    right = b64(zlib.crc32(b"content").to_bytes(4, "big"))
    assert s3.put_object(Bucket=bucket, Key="good", Body=b"content", ChecksumCRC32=right)["ChecksumCRC32"] == right
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_overwrite_replaces_data(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=os.urandom(3 * MiB))
    s3.put_object(Bucket=bucket, Key="o", Body=b"small now")
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"small now"
    s3.put_object(Bucket=bucket, Key="o", Body=b"z" * (2 * MiB))
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"z" * (2 * MiB)
