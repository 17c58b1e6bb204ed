"""More edge cases checked against AWS S3's documented (and observed) behaviour: SigV4 query and
header parameters, object metadata defaults and limits, tags, copies, versions and bucket calls."""

import datetime
import hashlib
import hmac
import os
import urllib.parse
import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import error_code, status
from sigv4 import sign_headers, signed

MiB = 1024 * 1024
EMPTY = hashlib.sha256(b"").hexdigest()


def _q(s):
    return urllib.parse.quote(str(s), safe="-_.~")


def _key(secret, date, region):
    k = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def presign(server, path, expires, region="us-east-1", drop=()):
    """A SigV4 presigned GET URL built by hand, so X-Amz-Expires and the scope can be anything."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz[:8]}/{region}/s3/aws4_request"
    netloc = urllib.parse.urlsplit(server.endpoint).netloc
    params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{server.user}/{scope}", "X-Amz-Date": amz,
              "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host"}
    for name in drop:
        params.pop(name)
    query = "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted(params.items()))
    canonical = "\n".join(["GET", path, query, f"host:{netloc}\n", "host", "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    sig = hmac.new(_key(server.password, amz[:8], region), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{server.endpoint}{path}?{query}&X-Amz-Signature={sig}"


def header_signed_get(server, path, region="us-east-1", content_sha256=EMPTY):
    """A header-signed GET; content_sha256=None leaves x-amz-content-sha256 out entirely."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz[:8]}/{region}/s3/aws4_request"
    headers = {"host": urllib.parse.urlsplit(server.endpoint).netloc, "x-amz-date": amz}
    if content_sha256 is not None:
        headers["x-amz-content-sha256"] = content_sha256
    names = sorted(headers)
    canonical = "\n".join(["GET", path, "", "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names),
                           content_sha256 or EMPTY])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    sig = hmac.new(_key(server.password, amz[:8], region), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={server.user}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    return requests.get(server.endpoint + path, headers=headers)


# --- Auth --------------------------------------------------------------------------------------

def test_presigned_url_with_exactly_a_week_works(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    r = requests.get(presign(server, f"/{bucket}/k", 604800))
    assert r.status_code == 200, r.text
    assert r.content == b"hello"


def test_presigned_url_valid_for_more_than_a_week_is_refused(server, s3, bucket):
    """AWS: 400 AuthorizationQueryParametersError, 'X-Amz-Expires must be less than a week'."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    r = requests.get(presign(server, f"/{bucket}/k", 604801))
    assert r.status_code == 400, r.text
    assert "<Code>AuthorizationQueryParametersError</Code>" in r.text


@pytest.mark.parametrize("expires", ["-5", "abc"])
def test_presigned_url_with_negative_or_non_numeric_expires(server, s3, bucket, expires):
    """AWS: 400 AuthorizationQueryParametersError ('must be non-negative' / 'should be a number')."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    r = requests.get(presign(server, f"/{bucket}/k", expires))
    assert r.status_code == 400, r.text
    assert "<Code>AuthorizationQueryParametersError</Code>" in r.text


def test_presigned_url_without_expires_is_query_parameters_error(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    r = requests.get(presign(server, f"/{bucket}/k", 60, drop=("X-Amz-Expires",)))
    assert r.status_code == 400, r.text
    assert "<Code>AuthorizationQueryParametersError</Code>" in r.text


def test_header_signature_without_content_sha256_is_invalid_request(server, s3, bucket):
    """AWS: 400 InvalidRequest, 'Missing required header for this request: x-amz-content-sha256'."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    r = header_signed_get(server, f"/{bucket}/k", content_sha256=None)
    assert r.status_code == 400, r.text
    assert "<Code>InvalidRequest</Code>" in r.text


def test_content_sha256_that_is_not_a_hash_is_invalid_argument(server, s3, bucket):
    """AWS: 400 InvalidArgument, 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, ... or a valid sha256 value'."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    r = header_signed_get(server, f"/{bucket}/k", content_sha256="not-a-hash")
    assert r.status_code == 400, r.text
    assert "<Code>InvalidArgument</Code>" in r.text and "<RequestId>" in r.text


@pytest.mark.parametrize("minutes", [20, -20])
def test_twenty_minutes_of_skew_is_refused(server, bucket, minutes):
    """S3 allows 15 minutes of skew either way."""
    url = f"{server.endpoint}/{bucket}"
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    headers, *_ = sign_headers("GET", url, {}, EMPTY, server.user, server.password, when=when)
    r = requests.get(url, headers=headers)
    assert r.status_code == 403
    assert "<Code>RequestTimeTooSkewed</Code>" in r.text


def test_ten_minutes_of_skew_is_fine(server, bucket):
    url = f"{server.endpoint}/{bucket}"
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    headers, *_ = sign_headers("GET", url, {}, EMPTY, server.user, server.password, when=when)
    assert requests.get(url, headers=headers).status_code == 200


# --- Object metadata ---------------------------------------------------------------------------

def test_object_without_content_type_is_served_as_binary_octet_stream(server, bucket):
    assert signed(server, "PUT", f"/{bucket}/noct", b"abc").status_code == 200
    for method in ("GET", "HEAD"):
        r = signed(server, method, f"/{bucket}/noct")
        assert r.status_code == 200
        assert r.headers.get("content-type") == "binary/octet-stream", method


def test_metadata_limit_is_the_sum_over_all_entries(s3, bucket):
    """2 KB is measured over every key and value together, not per entry."""
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={f"k{i:02d}": "v" * 100 for i in range(20)})  # 2060
    assert (error_code(e), status(e)) == ("MetadataTooLarge", 400)
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={f"k{i:02d}": "v" * 99 for i in range(20)})  # 2040
    assert len(s3.head_object(Bucket=bucket, Key="m")["Metadata"]) == 20


def test_many_small_metadata_entries_under_2kb_are_accepted(s3, bucket):
    """90 entries of ~4 bytes each are well under both the 2 KB metadata and 8 KB header limits."""
    md = {f"k{i}": "v" for i in range(90)}
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata=md)
    assert s3.head_object(Bucket=bucket, Key="m")["Metadata"] == md


def test_content_encoding_gzip_round_trips_without_decoding(server, s3, bucket):
    import gzip
    blob = gzip.compress(b"hello hello hello")
    s3.put_object(Bucket=bucket, Key="gz", Body=blob, ContentEncoding="gzip", ContentType="text/plain")
    r = signed(server, "HEAD", f"/{bucket}/gz")
    assert r.headers["content-encoding"] == "gzip"
    got = s3.get_object(Bucket=bucket, Key="gz")
    assert got["ContentEncoding"] == "gzip"
    assert got["Body"].read() == blob


def test_unknown_storage_class_is_invalid_storage_class(server, bucket):
    r = signed(server, "PUT", f"/{bucket}/sc", b"x", {"x-amz-storage-class": "BOGUS"})
    assert r.status_code == 400
    assert "<Code>InvalidStorageClass</Code>" in r.text


def test_non_standard_storage_class_shows_on_head_and_list(s3, bucket):
    s3.put_object(Bucket=bucket, Key="rr", Body=b"x", StorageClass="REDUCED_REDUNDANCY")
    s3.put_object(Bucket=bucket, Key="std", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="rr")["StorageClass"] == "REDUCED_REDUNDANCY"
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="std")  # S3 omits the header for STANDARD
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"rr": "REDUCED_REDUNDANCY", "std": "STANDARD"}


def test_copy_with_replace_sets_or_drops_cache_control(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", CacheControl="max-age=1", ContentType="text/a")
    s3.copy_object(Bucket=bucket, Key="new", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE",
                   CacheControl="no-cache")
    h = s3.head_object(Bucket=bucket, Key="new")
    assert h["CacheControl"] == "no-cache"
    assert h.get("ContentType") != "text/a"  # REPLACE does not carry over headers that were not given
    s3.copy_object(Bucket=bucket, Key="none", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE")
    assert "CacheControl" not in s3.head_object(Bucket=bucket, Key="none")
    s3.copy_object(Bucket=bucket, Key="kept", CopySource={"Bucket": bucket, "Key": "src"}, CacheControl="ignored")
    h = s3.head_object(Bucket=bucket, Key="kept")  # COPY (the default) ignores new headers
    assert (h["CacheControl"], h["ContentType"]) == ("max-age=1", "text/a")


# --- Copy --------------------------------------------------------------------------------------

def test_copy_of_a_multipart_object_gets_a_plain_md5_etag(s3, bucket):
    data = os.urandom(6 * MiB)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts = []
    for n, chunk in ((1, data[:5 * MiB]), (2, data[5 * MiB:])):
        parts.append({"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=n, Body=chunk)["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": parts})
    assert s3.head_object(Bucket=bucket, Key="mp")["ETag"].endswith('-2"')
    out = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"})
    assert out["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.head_object(Bucket=bucket, Key="copy")["ETag"] == out["CopyObjectResult"]["ETag"]


def test_copy_result_xml_has_etag_and_last_modified(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"hello")
    r = signed(server, "PUT", f"/{bucket}/dst", extra={"x-amz-copy-source": f"/{bucket}/src"})
    assert r.status_code == 200, r.text
    assert "<CopyObjectResult" in r.text
    assert f"<ETag>\"{hashlib.md5(b'hello').hexdigest()}\"</ETag>" in r.text.replace("&quot;", '"')
    assert "<LastModified>" in r.text and "Z</LastModified>" in r.text


def test_copy_source_if_match_wins_over_if_unmodified_since(s3, bucket):
    """Documented: if-match true and if-unmodified-since false -> the copy goes ahead (200)."""
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"x")["ETag"]
    s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch=etag,
                   CopySourceIfUnmodifiedSince=datetime.datetime(2000, 1, 1))
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"x"


def test_copy_source_if_none_match_fails_despite_if_modified_since(s3, bucket):
    """Documented: if-none-match false and if-modified-since true -> 412."""
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"x")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfNoneMatch=etag,
                       CopySourceIfModifiedSince=datetime.datetime(2000, 1, 1))
    assert (error_code(e), status(e)) == ("PreconditionFailed", 412)


# --- Versions ----------------------------------------------------------------------------------

def test_empty_version_id_is_invalid_argument(server, s3, versioned_bucket):
    s3.put_object(Bucket=versioned_bucket, Key="k", Body=b"x")
    r = signed(server, "GET", f"/{versioned_bucket}/k?versionId=")
    assert r.status_code == 400
    assert "<Code>InvalidArgument</Code>" in r.text


def test_version_listing_with_max_keys_1_pages_through_three_versions_and_a_marker(s3, versioned_bucket):
    b = versioned_bucket
    ids = [s3.put_object(Bucket=b, Key="k", Body=str(i).encode())["VersionId"] for i in range(3)]
    marker = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    seen, kw = [], {}
    while True:
        out = s3.list_object_versions(Bucket=b, MaxKeys=1, **kw)
        page = out.get("Versions", []) + out.get("DeleteMarkers", [])
        assert len(page) == 1 and out["MaxKeys"] == 1
        seen.append(page[0]["VersionId"])
        if not out["IsTruncated"]:
            assert "NextKeyMarker" not in out
            break
        kw = {"KeyMarker": out["NextKeyMarker"], "VersionIdMarker": out["NextVersionIdMarker"]}
    assert seen == [marker] + ids[::-1]


# --- Tags --------------------------------------------------------------------------------------

def test_aws_prefixed_tag_keys_are_refused(s3, bucket):
    """AWS: 400 InvalidTag, 'Your TagKey cannot be prefixed with aws:'."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "aws:owner", "Value": "me"}]})
    assert (error_code(e), status(e)) == ("InvalidTag", 400)
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


def test_tagging_header_is_url_decoded(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a%20b=c%26d&e=f%3Dg&empty=")
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]}
    assert tags == {"a b": "c&d", "e": "f=g", "empty": ""}


# --- Buckets -----------------------------------------------------------------------------------

def test_head_bucket_has_no_body_and_names_the_region(server, bucket):
    r = signed(server, "HEAD", f"/{bucket}")
    assert r.status_code == 200
    assert r.headers.get("x-amz-bucket-region") == "us-east-1"
    r = signed(server, "HEAD", "/no-such-bucket-" + uuid.uuid4().hex[:8])
    assert r.status_code == 404
    assert r.content == b""


def test_bucket_location_for_us_east_1_is_empty(server, bucket):
    r = signed(server, "GET", f"/{bucket}?location")
    assert r.status_code == 200
    assert "<LocationConstraint" in r.text
    assert "us-east-1" not in r.text


def test_list_buckets_prefix_and_max_buckets(s3):
    tag = uuid.uuid4().hex[:8]
    names = [f"lb-{tag}-{i}" for i in range(3)]
    for n in names + [f"lc-{tag}"]:
        s3.create_bucket(Bucket=n)
    try:
        out = s3.list_buckets(Prefix=f"lb-{tag}-")
        assert [b["Name"] for b in out["Buckets"]] == names
        assert out["Prefix"] == f"lb-{tag}-"
        got, kw = [], {}
        while True:
            out = s3.list_buckets(Prefix=f"lb-{tag}-", MaxBuckets=1, **kw)
            assert len(out["Buckets"]) == 1
            got += [b["Name"] for b in out["Buckets"]]
            if "ContinuationToken" not in out:
                break
            kw = {"ContinuationToken": out["ContinuationToken"]}
        assert got == names
    finally:
        for n in names + [f"lc-{tag}"]:
            s3.delete_bucket(Bucket=n)
