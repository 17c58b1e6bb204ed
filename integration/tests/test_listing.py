"""ListObjectsV2 and ListObjects (V1): prefixes, delimiters, paging, markers, URL encoding."""

import pytest
from botocore.exceptions import ClientError
from conftest import error_code

KEYS = sorted(
    ["a/1", "a/2", "a/b/1", "a/b/2", "a/c/1", "b", "b/1", "c/d/e/f", "top", "é/1", "z z", "plus+key"]
    + [f"many/{i:04d}" for i in range(250)]
)


@pytest.fixture
def filled(s3, bucket):
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def all_v2(s3, bucket, **kw):
    keys, prefixes, pages = [], [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        pages += 1
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes, pages


def test_full_listing_is_sorted_by_utf8_bytes(s3, filled):
    keys, _, _ = all_v2(s3, filled)
    assert keys == sorted(KEYS, key=lambda k: k.encode())


def test_paging_with_small_pages(s3, filled):
    keys, _, pages = all_v2(s3, filled, PaginationConfig={"PageSize": 7})
    assert keys == sorted(KEYS, key=lambda k: k.encode())
    assert pages == -(-len(KEYS) // 7)


def test_delimiter_rolls_up_prefixes(s3, filled):
    out = s3.list_objects_v2(Bucket=filled, Delimiter="/")
    assert [o["Key"] for o in out["Contents"]] == ["b", "plus+key", "top", "z z"]
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["a/", "b/", "c/", "many/", "é/"]
    assert out["KeyCount"] == 9
    out = s3.list_objects_v2(Bucket=filled, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in out["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["a/b/", "a/c/"]


def test_delimiter_paging_counts_prefixes(s3, filled):
    keys, prefixes, pages = all_v2(s3, filled, Delimiter="/", PaginationConfig={"PageSize": 2})
    assert keys == ["b", "plus+key", "top", "z z"]
    assert prefixes == ["a/", "b/", "c/", "many/", "é/"]
    assert pages == 5


def test_start_after_and_max_keys(s3, filled):
    out = s3.list_objects_v2(Bucket=filled, StartAfter="many/0100", MaxKeys=3)
    assert [o["Key"] for o in out["Contents"]] == ["many/0101", "many/0102", "many/0103"]
    assert out["IsTruncated"] is True
    nxt = s3.list_objects_v2(Bucket=filled, ContinuationToken=out["NextContinuationToken"], MaxKeys=2)
    assert [o["Key"] for o in nxt["Contents"]] == ["many/0104", "many/0105"]
    assert s3.list_objects_v2(Bucket=filled, MaxKeys=0)["KeyCount"] == 0


def test_prefix_without_matches(s3, filled):
    out = s3.list_objects_v2(Bucket=filled, Prefix="nothing-here")
    assert out["KeyCount"] == 0 and out["IsTruncated"] is False


def test_url_encoding(s3, filled):
    out = s3.list_objects_v2(Bucket=filled, Prefix="z", EncodingType="url")
    # botocore decodes only when it chose the encoding itself; asked explicitly, it shows the
    # encoded values as S3 sends them.
    assert [o["Key"] for o in out["Contents"]] == ["z%20z"]
    out = s3.list_objects_v2(Bucket=filled, Prefix="é", EncodingType="url")
    assert [o["Key"] for o in out["Contents"]] == ["%C3%A9/1"]
    out = s3.list_objects_v2(Bucket=filled, Prefix="plus")
    assert [o["Key"] for o in out["Contents"]] == ["plus+key"]


def test_v1_marker_paging_and_next_marker(s3, filled):
    seen, marker = [], ""
    while True:
        out = s3.list_objects(Bucket=filled, Marker=marker, MaxKeys=50)
        seen += [o["Key"] for o in out.get("Contents", [])]
        if not out["IsTruncated"]:
            break
        marker = seen[-1]
    assert seen == sorted(KEYS, key=lambda k: k.encode())
    out = s3.list_objects(Bucket=filled, Delimiter="/", MaxKeys=2)
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["a/"]
    assert out["IsTruncated"] and out["NextMarker"] == "b"
    out = s3.list_objects(Bucket=filled, Delimiter="/", Marker="a/", MaxKeys=2)
    assert [o["Key"] for o in out.get("Contents", [])] == ["b"]
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["b/"]


def test_bad_continuation_token(s3, filled):
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=filled, ContinuationToken="!!!")
    assert error_code(e) == "InvalidArgument"


def test_aws_cli_recursive_listing(server, filled):
    out = server.aws("s3", "ls", f"s3://{filled}/a/", "--recursive").stdout.decode()
    assert [line.split()[-1] for line in out.strip().splitlines()] == ["a/1", "a/2", "a/b/1", "a/b/2", "a/c/1"]
