"""Issue 8's correctness round: each test pins down an answer where Strata differed from AWS S3
(conditional copies, retried completions, multipart ordering and checksums, Suspended-bucket
version headers, delete-marker reports, object-lock codes, bucket names and re-creation,
empty delimiters, aws-chunked content encoding), asserting status, code and the stored result."""

import concurrent.futures
import hashlib
import base64
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError

from sigv4 import signed

MiB = 1024 * 1024
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def code_of(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def with_headers(s3, operation, headers):
    """Makes the next call of `operation` on client `s3` carry `headers` (boto3 has no
    parameter for conditional headers on every operation)."""

    def add(request, **_):
        for k, v in headers.items():
            request.headers[k] = v

    event = f"before-sign.s3.{operation}"
    s3.meta.events.register(event, add)
    return lambda: s3.meta.events.unregister(event, add)


def copy_with(s3, headers, **kwargs):
    undo = with_headers(s3, "CopyObject", headers)
    try:
        return s3.copy_object(**kwargs)
    finally:
        undo()


# ---- conditional writes on CopyObject -------------------------------------------------------

def test_copy_if_none_match_refuses_an_existing_destination(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"new data")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"old data")
    with pytest.raises(ClientError) as e:
        copy_with(s3, {"If-None-Match": "*"}, Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")
    assert code_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old data"
    # Onto a free key the same copy succeeds.
    copy_with(s3, {"If-None-Match": "*"}, Bucket=bucket, Key="free", CopySource=f"{bucket}/src")
    assert s3.get_object(Bucket=bucket, Key="free")["Body"].read() == b"new data"


def test_copy_if_match_checks_the_destination_etag(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"new data")
    old = s3.put_object(Bucket=bucket, Key="dst", Body=b"old data")["ETag"]
    with pytest.raises(ClientError) as e:
        copy_with(s3, {"If-Match": '"0123456789abcdef0123456789abcdef"'}, Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")
    assert code_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old data"
    with pytest.raises(ClientError) as e:
        copy_with(s3, {"If-Match": old}, Bucket=bucket, Key="absent", CopySource=f"{bucket}/src")
    assert code_of(e) == ("NoSuchKey", 404)
    copy_with(s3, {"If-Match": old}, Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"new data"


def test_copy_if_none_match_with_an_etag_is_not_implemented(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    with pytest.raises(ClientError) as e:
        copy_with(s3, {"If-None-Match": '"abc"'}, Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")
    assert code_of(e) == ("NotImplemented", 501)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="dst")


def race(n, write):
    """Runs `write(i)` for i in 0..n at once; returns the error codes (None for success)."""
    def attempt(i):
        try:
            write(i)
            return None
        except ClientError as e:
            return e.response["Error"]["Code"]
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(attempt, range(n)))


@pytest.mark.parametrize("how", ["put", "copy", "complete"])
def test_concurrent_conditional_writers_have_one_winner(server, bucket, how):
    n = 8
    clients = [server.client() for _ in range(n)]
    part = b"p" * (5 * MiB)
    if how == "copy":
        for i in range(n):
            clients[0].put_object(Bucket=bucket, Key=f"src{i}", Body=f"source {i}".encode())
    uploads = []
    if how == "complete":
        for i in range(n):
            u = clients[0].create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
            etag = clients[0].upload_part(Bucket=bucket, Key="k", UploadId=u, PartNumber=1, Body=part + bytes([i]))["ETag"]
            uploads.append((u, etag))

    def write(i):
        s3 = clients[i]
        if how == "put":
            s3.put_object(Bucket=bucket, Key="k", Body=f"writer {i}".encode(), IfNoneMatch="*")
        elif how == "copy":
            copy_with(s3, {"If-None-Match": "*"}, Bucket=bucket, Key="k", CopySource=f"{bucket}/src{i}")
        else:
            u, etag = uploads[i]
            s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=u, IfNoneMatch="*",
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})

    codes = race(n, write)
    assert codes.count(None) == 1, codes
    assert all(c in (None, "PreconditionFailed") for c in codes), codes
    winner = codes.index(None)
    body = clients[0].get_object(Bucket=bucket, Key="k")["Body"].read()
    expected = {"put": f"writer {winner}".encode(), "copy": f"source {winner}".encode(),
                "complete": part + bytes([winner])}[how]
    assert body == expected


# ---- multipart ------------------------------------------------------------------------------

def test_a_retried_completion_gets_the_same_answer(s3, versioned_bucket):
    b = versioned_bucket
    u = s3.create_multipart_upload(Bucket=b, Key="mp", ChecksumAlgorithm="SHA256")["UploadId"]
    p1 = s3.upload_part(Bucket=b, Key="mp", UploadId=u, PartNumber=1, Body=b"a" * (5 * MiB), ChecksumAlgorithm="SHA256")
    p2 = s3.upload_part(Bucket=b, Key="mp", UploadId=u, PartNumber=2, Body=b"b" * 100, ChecksumAlgorithm="SHA256")
    parts = [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]
    first = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=u, MultipartUpload={"Parts": parts})
    again = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=u, MultipartUpload={"Parts": parts})
    for field in ("ETag", "VersionId", "Location", "Bucket", "Key", "ChecksumSHA256", "ChecksumType"):
        assert again[field] == first[field], field
    assert s3.get_object(Bucket=b, Key="mp")["Body"].read() == b"a" * (5 * MiB) + b"b" * 100
    versions = s3.list_object_versions(Bucket=b, Prefix="mp")["Versions"]
    assert len(versions) == 1  # the retry made no second version
    # Another part list, or an id that never existed, is still NoSuchUpload.
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=u, MultipartUpload={"Parts": parts[:1]})
    assert code_of(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=str(uuid.uuid4()), MultipartUpload={"Parts": parts})
    assert code_of(e) == ("NoSuchUpload", 404)
    # Once the completed version is gone, so is the upload.
    s3.delete_object(Bucket=b, Key="mp", VersionId=first["VersionId"])
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=u, MultipartUpload={"Parts": parts})
    assert code_of(e) == ("NoSuchUpload", 404)


def test_uploads_of_one_key_are_listed_oldest_first(s3, bucket):
    ids = []
    for _ in range(4):
        ids.append(s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"])
        time.sleep(0.02)
    s3.create_multipart_upload(Bucket=bucket, Key="j")
    listed = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"] if u["Key"] == "k"]
    assert listed == ids
    # Paging one at a time walks the same order.
    seen, kw = [], {}
    while True:
        page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1, **kw)
        seen += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        kw = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
    assert [i for k, i in seen if k == "k"] == ids
    assert [k for k, _ in seen] == ["j", "k", "k", "k", "k"]


def test_a_part_with_another_checksum_algorithm_is_refused(s3, bucket):
    u = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=u, PartNumber=1, Body=b"data", ChecksumAlgorithm="CRC32")
    assert code_of(e) == ("InvalidRequest", 400)
    assert "Checksum Type mismatch" in e.value.response["Error"]["Message"]
    assert s3.list_parts(Bucket=bucket, Key="k", UploadId=u).get("Parts", []) == []
    ok = s3.upload_part(Bucket=bucket, Key="k", UploadId=u, PartNumber=1, Body=b"data", ChecksumAlgorithm="SHA256")
    assert ok["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    assert "ChecksumCRC32" not in ok


def test_checksum_type_in_every_multipart_answer(s3, bucket):
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")
    u = created["UploadId"]
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == ("SHA256", "COMPOSITE")
    bodies = [b"a" * (5 * MiB), b"tail"]
    parts = []
    for i, body in enumerate(bodies, 1):
        r = s3.upload_part(Bucket=bucket, Key="k", UploadId=u, PartNumber=i, Body=body, ChecksumAlgorithm="SHA256")
        assert r["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
        parts.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=u)
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == ("SHA256", "COMPOSITE")
    upload = [x for x in s3.list_multipart_uploads(Bucket=bucket)["Uploads"] if x["UploadId"] == u][0]
    assert (upload["ChecksumAlgorithm"], upload["ChecksumType"]) == ("SHA256", "COMPOSITE")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=u, MultipartUpload={"Parts": parts})
    assert done["ChecksumType"] == "COMPOSITE" and done["ChecksumSHA256"].endswith("-2")
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (done["ChecksumSHA256"], "COMPOSITE")
    for i, body in enumerate(bodies, 1):
        for r in (s3.head_object(Bucket=bucket, Key="k", PartNumber=i, ChecksumMode="ENABLED"),
                  s3.get_object(Bucket=bucket, Key="k", PartNumber=i, ChecksumMode="ENABLED")):
            assert r["ChecksumSHA256"] == parts[i - 1]["ChecksumSHA256"]
            assert r["ChecksumType"] == "COMPOSITE"
            assert r["ContentLength"] == len(body)
    # Without checksum mode, no checksum.
    assert "ChecksumSHA256" not in s3.head_object(Bucket=bucket, Key="k", PartNumber=1)
    attrs = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"]["ChecksumType"] == "COMPOSITE"


def test_copy_reports_its_checksum_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"data", ChecksumAlgorithm="CRC32")
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")["CopyObjectResult"]
    assert r["ChecksumType"] == "FULL_OBJECT" and "ChecksumCRC32" in r


# ---- versioning and deletes -----------------------------------------------------------------

def test_writes_into_a_suspended_bucket_name_no_version(s3, versioned_bucket):
    b = versioned_bucket
    s3.put_object(Bucket=b, Key="src", Body=b"source")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    assert "VersionId" not in s3.put_object(Bucket=b, Key="p", Body=b"x")
    assert "VersionId" not in s3.copy_object(Bucket=b, Key="c", CopySource=f"{b}/src")
    u = s3.create_multipart_upload(Bucket=b, Key="m")["UploadId"]
    e = s3.upload_part(Bucket=b, Key="m", UploadId=u, PartNumber=1, Body=b"m")["ETag"]
    done = s3.complete_multipart_upload(Bucket=b, Key="m", UploadId=u, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert "VersionId" not in done
    post = s3.generate_presigned_post(b, "f")
    r = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"form")})
    assert r.status_code == 204, r.text
    assert "x-amz-version-id" not in r.headers
    for key in ("p", "c", "m", "f"):
        assert s3.head_object(Bucket=b, Key=key)["VersionId"] == "null"
        assert s3.get_object(Bucket=b, Key=key, VersionId="null")["VersionId"] == "null"
    # Enabled again: writes name their new version.
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert s3.put_object(Bucket=b, Key="p", Body=b"y")["VersionId"] != "null"


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
def test_delete_objects_reports_a_removed_delete_marker(s3, versioned_bucket, status):
    b = versioned_bucket
    s3.put_object(Bucket=b, Key="dm", Body=b"x")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": status})
    marker = s3.delete_object(Bucket=b, Key="dm")
    assert marker["DeleteMarker"] is True
    mid = marker["VersionId"]
    assert (mid == "null") == (status == "Suspended")
    out = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "dm", "VersionId": mid}]})
    assert out["Deleted"] == [{"Key": "dm", "VersionId": mid, "DeleteMarker": True, "DeleteMarkerVersionId": mid}]
    assert "DeleteMarkers" not in s3.list_object_versions(Bucket=b, Prefix="dm")


# ---- object lock ----------------------------------------------------------------------------

@pytest.mark.parametrize("retention,code", [
    ({"Mode": "GOVERNANCE", "Days": 0}, "InvalidRetentionPeriod"),
    ({"Mode": "GOVERNANCE", "Days": -1}, "InvalidRetentionPeriod"),
    ({"Mode": "COMPLIANCE", "Years": 0}, "InvalidRetentionPeriod"),
    ({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, "MalformedXML"),
    ({"Mode": "GOVERNANCE"}, "MalformedXML"),
])
def test_default_retention_errors(s3, lock_bucket, retention, code):
    with pytest.raises(ClientError) as e:
        s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}})
    assert code_of(e) == (code, 400)
    assert "Rule" not in s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"]


def test_governance_to_compliance_needs_the_bypass(s3, lock_bucket):
    import datetime
    b = lock_bucket
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    v = s3.put_object(Bucket=b, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(Bucket=b, Key="k", VersionId=v, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
    assert code_of(e) == ("AccessDenied", 403)
    assert s3.get_object_retention(Bucket=b, Key="k", VersionId=v)["Retention"]["Mode"] == "GOVERNANCE"
    # Extending GOVERNANCE needs no bypass; changing the mode with it is allowed.
    later = until + datetime.timedelta(hours=1)
    s3.put_object_retention(Bucket=b, Key="k", VersionId=v, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later})
    s3.put_object_retention(Bucket=b, Key="k", VersionId=v, BypassGovernanceRetention=True,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later})
    assert s3.get_object_retention(Bucket=b, Key="k", VersionId=v)["Retention"]["Mode"] == "COMPLIANCE"


# ---- buckets, listing, headers --------------------------------------------------------------

def test_creating_an_owned_bucket_again_in_us_east_1_changes_nothing(s3, bucket):
    s3.put_object(Bucket=bucket, Key="kept", Body=b"still here")
    s3.create_bucket(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"still here"
    # With object lock asked for, still nothing changes.
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    with pytest.raises(ClientError) as e:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert code_of(e) == ("ObjectLockConfigurationNotFoundError", 404)


@pytest.mark.parametrize("name", [
    "ab",                      # shorter than 3
    "a" * 64,                  # longer than 63
    "My-Bucket",               # upper case
    "my_bucket",               # underscore
    "-bucket", "bucket-",      # must begin and end with a letter or digit
    ".bucket", "bucket.",
    "my..bucket",              # adjacent periods
    "my-.bucket", "my.-bucket",  # dash next to a dot
    "192.168.5.4",             # formatted as an IP address
    "192.168.05.004",
    "xn--bucket",              # reserved prefixes
    "sthree-bucket",
    "sthree-configurator-b",
    "amzn-s3-demo-bucket",
    "bucket-s3alias",          # reserved suffixes
    "bucket--ol-s3",
    "bucket.mrap",
    "bucket--x-s3",
    "bucket--table-s3",
])
def test_bucket_naming_rules(server, s3, name):
    r = signed(server, "PUT", f"/{name}")
    assert r.status_code == 400, (name, r.status_code, r.text)
    assert "<Code>InvalidBucketName</Code>" in r.text, r.text
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_valid_names_near_the_rules_are_accepted(server, s3):
    for name in ["abc", "a" * 63, "my.bucket-1", "1.2.3", f"n{uuid.uuid4().hex[:8]}.x-y"]:
        r = signed(server, "PUT", f"/{name}")
        assert r.status_code == 200, (name, r.text)
        s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize("query", ["list-type=2&delimiter=", "delimiter=", "versions&delimiter=", "uploads&delimiter="])
def test_an_empty_delimiter_is_no_delimiter(server, s3, bucket, query):
    for k in ("a/1", "a/2", "b"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    s3.create_multipart_upload(Bucket=bucket, Key="a/3")
    r = signed(server, "GET", f"/{bucket}?{query}")
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    assert root.find(f"{NS}Delimiter") is None, r.text
    assert root.find(f"{NS}CommonPrefixes") is None, r.text
    keys = [k.text for k in root.iter(f"{NS}Key")]
    assert "a/1" in keys or "a/3" in keys


@pytest.mark.parametrize("sent,stored", [("gzip, aws-chunked", "gzip"), ("aws-chunked", None), ("gzip", "gzip")])
def test_aws_chunked_is_not_kept_as_content_encoding(s3, bucket, sent, stored):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", ContentEncoding=sent)
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head.get("ContentEncoding") == stored
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    u = s3.create_multipart_upload(Bucket=bucket, Key="m", ContentEncoding=sent)["UploadId"]
    e = s3.upload_part(Bucket=bucket, Key="m", UploadId=u, PartNumber=1, Body=b"m")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=u, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert s3.head_object(Bucket=bucket, Key="m").get("ContentEncoding") == stored
