"""Versioning: version ids, delete markers, suspended buckets, version listing and paging."""

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import empty_bucket, error_code, status


def put(s3, bucket, key, body):
    return s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]


def listing(s3, bucket, **kw):
    out = s3.list_object_versions(Bucket=bucket, **kw)
    return out.get("Versions", []), out.get("DeleteMarkers", [])


def headers(e):
    return e.value.response["ResponseMetadata"]["HTTPHeaders"]


def set_status(s3, bucket, value):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": value})


def test_new_bucket_has_no_versioning_status(s3, bucket):
    out = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in out
    assert "MFADelete" not in out


def test_enable_then_suspend(s3, bucket):
    set_status(s3, bucket, "Enabled")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    set_status(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_invalid_versioning_status_is_malformed_xml(s3, bucket):
    with pytest.raises(ClientError) as e:
        set_status(s3, bucket, "Sometimes")
    assert error_code(e) == "MalformedXML"
    assert status(e) == 400
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_each_put_gets_a_distinct_version_id(s3, versioned_bucket):
    ids = [put(s3, versioned_bucket, "k", f"body-{i}".encode()) for i in range(3)]
    assert all(v and v != "null" for v in ids)
    assert len(set(ids)) == 3
    for i, v in enumerate(ids):
        got = s3.get_object(Bucket=versioned_bucket, Key="k", VersionId=v)
        assert got["Body"].read() == f"body-{i}".encode()
        assert got["VersionId"] == v
        assert s3.head_object(Bucket=versioned_bucket, Key="k", VersionId=v)["VersionId"] == v
    latest = s3.get_object(Bucket=versioned_bucket, Key="k")
    assert latest["Body"].read() == b"body-2"
    assert latest["VersionId"] == ids[-1]
    assert s3.head_object(Bucket=versioned_bucket, Key="k")["VersionId"] == ids[-1]


def test_objects_written_before_versioning_have_null_version(s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"from before")
    set_status(s3, bucket, "Enabled")
    new = put(s3, bucket, "old", b"after")
    versions, markers = listing(s3, bucket)
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(new, True), ("null", False)]
    assert s3.get_object(Bucket=bucket, Key="old", VersionId="null")["Body"].read() == b"from before"
    assert s3.get_object(Bucket=bucket, Key="old")["Body"].read() == b"after"


def test_delete_without_version_id_writes_a_delete_marker(s3, versioned_bucket):
    b = versioned_bucket
    v1 = put(s3, b, "k", b"data")
    d = s3.delete_object(Bucket=b, Key="k")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    assert marker and marker not in ("null", v1)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k")
    assert error_code(e) == "NoSuchKey"
    assert status(e) == 404
    assert headers(e).get("x-amz-delete-marker") == "true"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=b, Key="k")
    assert status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k", VersionId=marker)
    assert error_code(e) == "MethodNotAllowed"
    assert status(e) == 405
    assert headers(e).get("x-amz-delete-marker") == "true"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=b, Key="k", VersionId=marker)
    assert status(e) == 405
    assert s3.get_object(Bucket=b, Key="k", VersionId=v1)["Body"].read() == b"data"
    versions, markers = listing(s3, b)
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [(marker, True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, False)]


def test_deleting_a_version_by_id_is_permanent(s3, versioned_bucket):
    b = versioned_bucket
    v1 = put(s3, b, "k", b"one")
    v2 = put(s3, b, "k", b"two")
    d = s3.delete_object(Bucket=b, Key="k", VersionId=v2)
    assert d["VersionId"] == v2
    assert not d.get("DeleteMarker")
    got = s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == b"one" and got["VersionId"] == v1
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k", VersionId=v2)
    assert error_code(e) == "NoSuchVersion"
    assert status(e) == 404
    versions, markers = listing(s3, b)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, True)]
    assert markers == []


def test_deleting_the_delete_marker_undeletes(s3, versioned_bucket):
    b = versioned_bucket
    v1 = put(s3, b, "k", b"back again")
    marker = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    d = s3.delete_object(Bucket=b, Key="k", VersionId=marker)
    assert d["DeleteMarker"] is True
    assert d["VersionId"] == marker
    got = s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == b"back again" and got["VersionId"] == v1
    versions, markers = listing(s3, b)
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, True)]


def test_unknown_version_id_is_no_such_version(s3, versioned_bucket):
    b = versioned_bucket
    put(s3, b, "a", b"a")
    other = put(s3, b, "b", b"b")  # a well-formed id, but of another key
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="a", VersionId=other)
    assert error_code(e) == "NoSuchVersion"
    assert status(e) == 404
    gone = put(s3, b, "a", b"a2")
    s3.delete_object(Bucket=b, Key="a", VersionId=gone)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="a", VersionId=gone)
    assert error_code(e) == "NoSuchVersion"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=b, Key="a", VersionId=gone)
    assert status(e) == 404


def test_malformed_version_id_is_invalid_argument(s3, versioned_bucket):
    put(s3, versioned_bucket, "k", b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=versioned_bucket, Key="k", VersionId="not-a-version")
    assert error_code(e) == "InvalidArgument"
    assert status(e) == 400


def test_suspended_puts_replace_the_null_version(s3, versioned_bucket):
    b = versioned_bucket
    v1 = put(s3, b, "k", b"versioned")
    set_status(s3, b, "Suspended")
    s3.put_object(Bucket=b, Key="k", Body=b"null one")
    s3.put_object(Bucket=b, Key="k", Body=b"null two")
    versions, _ = listing(s3, b)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [("null", True), (v1, False)]
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"null two"
    assert s3.get_object(Bucket=b, Key="k", VersionId="null")["Body"].read() == b"null two"
    assert s3.get_object(Bucket=b, Key="k", VersionId=v1)["Body"].read() == b"versioned"


def test_suspended_delete_writes_a_null_delete_marker(s3, versioned_bucket):
    b = versioned_bucket
    v1 = put(s3, b, "k", b"versioned")
    set_status(s3, b, "Suspended")
    s3.put_object(Bucket=b, Key="k", Body=b"null data")
    d = s3.delete_object(Bucket=b, Key="k")
    assert d["DeleteMarker"] is True
    assert d["VersionId"] == "null"
    versions, markers = listing(s3, b)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [("null", True)]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k")
    assert error_code(e) == "NoSuchKey"
    assert s3.get_object(Bucket=b, Key="k", VersionId=v1)["Body"].read() == b"versioned"


def test_enabled_suspended_enabled_keeps_every_version(s3, versioned_bucket):
    b = versioned_bucket
    a1 = put(s3, b, "k", b"a1")
    a2 = put(s3, b, "k", b"a2")
    set_status(s3, b, "Suspended")
    s3.put_object(Bucket=b, Key="k", Body=b"n")
    set_status(s3, b, "Enabled")
    a3 = put(s3, b, "k", b"a3")
    assert a3 not in (a1, a2, "null")
    versions, _ = listing(s3, b)
    assert [v["VersionId"] for v in versions] == [a3, "null", a2, a1]
    assert [v["IsLatest"] for v in versions] == [True, False, False, False]
    for vid, body in ((a1, b"a1"), (a2, b"a2"), ("null", b"n"), (a3, b"a3")):
        assert s3.get_object(Bucket=b, Key="k", VersionId=vid)["Body"].read() == body


def test_version_listing_order_and_is_latest(s3, versioned_bucket):
    b = versioned_bucket
    ids = {"c": [put(s3, b, "c", b"c%d" % i) for i in range(3)], "a": [put(s3, b, "a", b"a%d" % i) for i in range(2)]}
    ids["b"] = [put(s3, b, "b", b"b0")]
    marker = s3.delete_object(Bucket=b, Key="b")["VersionId"]
    versions, markers = listing(s3, b)
    assert [v["Key"] for v in versions] == ["a", "a", "b", "c", "c", "c"]
    for key in "abc":
        assert [v["VersionId"] for v in versions if v["Key"] == key] == ids[key][::-1]
    assert [(m["Key"], m["VersionId"]) for m in markers] == [("b", marker)]
    latest = [(e["Key"], e["VersionId"]) for e in versions + markers if e["IsLatest"]]
    assert sorted(latest) == [("a", ids["a"][-1]), ("b", marker), ("c", ids["c"][-1])]
    for v in versions:
        assert v["Size"] == 2 and v["ETag"].startswith('"') and v["LastModified"]


def test_version_listing_prefix_and_delimiter(s3, versioned_bucket):
    b = versioned_bucket
    for key in ("dir/a", "dir/b", "dir/sub/c", "top"):
        put(s3, b, key, b"1")
        put(s3, b, key, b"2")
    versions, _ = listing(s3, b, Prefix="dir/")
    assert [v["Key"] for v in versions] == ["dir/a", "dir/a", "dir/b", "dir/b", "dir/sub/c", "dir/sub/c"]
    out = s3.list_object_versions(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["dir/"]
    assert [v["Key"] for v in out["Versions"]] == ["top", "top"]
    out = s3.list_object_versions(Bucket=b, Prefix="dir/", Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["dir/sub/"]
    assert [v["Key"] for v in out["Versions"]] == ["dir/a", "dir/a", "dir/b", "dir/b"]
    assert listing(s3, b, Prefix="nothing/") == ([], [])


def list_all_pages(s3, bucket, max_keys, between_pages=None):
    """Pages through list_object_versions by hand; returns the (key, version id) entries seen and the page count."""
    seen, kw, pages = [], {}, 0
    while True:
        out = s3.list_object_versions(Bucket=bucket, MaxKeys=max_keys, **kw)
        pages += 1
        entries = out.get("Versions", []) + out.get("DeleteMarkers", [])
        assert len(entries) <= max_keys
        seen += [(e["Key"], e["VersionId"]) for e in entries]
        if not out["IsTruncated"]:
            return seen, pages
        assert out["NextKeyMarker"] and out["NextVersionIdMarker"]
        kw = {"KeyMarker": out["NextKeyMarker"], "VersionIdMarker": out["NextVersionIdMarker"]}
        if between_pages:
            between_pages(seen, kw)
        assert pages < 50


def test_version_listing_pages_return_every_version_once(s3, versioned_bucket):
    b = versioned_bucket
    expected = []
    for key in ("k1", "k2", "k3"):
        expected += [(key, put(s3, b, key, b"%d" % i)) for i in range(4)]
    expected.append(("k2", s3.delete_object(Bucket=b, Key="k2")["VersionId"]))
    first = s3.list_object_versions(Bucket=b, MaxKeys=5)
    assert first["IsTruncated"] is True
    assert first["MaxKeys"] == 5
    assert len(first.get("Versions", []) + first.get("DeleteMarkers", [])) == 5
    seen, pages = list_all_pages(s3, b, 5)
    assert pages == 3
    assert len(seen) == len(set(seen)) == 13
    assert set(seen) == set(expected)


def test_version_listing_pages_while_versions_are_deleted(s3, versioned_bucket):
    b = versioned_bucket
    expected = []
    for key in ("k1", "k2", "k3", "k4"):
        expected += [(key, put(s3, b, key, b"%d" % i)) for i in range(3)]
    deleted = set()

    def delete_some(seen, kw):
        marker = (kw["KeyMarker"], kw["VersionIdMarker"])
        behind = [e for e in seen if e != marker and e not in deleted]
        ahead = [e for e in expected if e not in seen and e not in deleted]
        for key, vid in behind[:1] + ahead[-1:]:
            s3.delete_object(Bucket=b, Key=key, VersionId=vid)
            deleted.add((key, vid))

    seen, _ = list_all_pages(s3, b, 4, delete_some)
    assert deleted
    assert len(seen) == len(set(seen))
    assert set(seen) <= set(expected)
    never_deleted = set(expected) - deleted
    assert never_deleted <= set(seen)


def test_version_listing_survives_deleting_the_marker_version(s3, versioned_bucket):
    # AWS does not document a vanished version-id-marker; we require paging to carry on without error.
    b = versioned_bucket
    expected = []
    for key in ("k1", "k2"):
        expected += [(key, put(s3, b, key, b"%d" % i)) for i in range(3)]

    deleted = set()

    def delete_marker_version(seen, kw):
        s3.delete_object(Bucket=b, Key=kw["KeyMarker"], VersionId=kw["VersionIdMarker"])
        deleted.add((kw["KeyMarker"], kw["VersionIdMarker"]))

    seen, _ = list_all_pages(s3, b, 2, delete_marker_version)
    assert deleted
    assert len(seen) == len(set(seen))
    assert set(seen) == set(expected)
    remaining = s3.list_object_versions(Bucket=b).get("Versions", [])
    assert {(v["Key"], v["VersionId"]) for v in remaining} == set(expected) - deleted


def test_list_objects_hides_keys_whose_latest_is_a_delete_marker(s3, versioned_bucket):
    b = versioned_bucket
    put(s3, b, "keep", b"1")
    put(s3, b, "keep", b"2")
    put(s3, b, "gone", b"1")
    s3.delete_object(Bucket=b, Key="gone")
    put(s3, b, "back", b"1")
    s3.delete_object(Bucket=b, Key="back")
    put(s3, b, "back", b"2")
    out = s3.list_objects_v2(Bucket=b)
    assert [o["Key"] for o in out["Contents"]] == ["back", "keep"]
    assert out["KeyCount"] == 2
    assert [o["Key"] for o in s3.list_objects(Bucket=b)["Contents"]] == ["back", "keep"]
    assert s3.list_objects_v2(Bucket=b, Prefix="gone").get("Contents", []) == []


def test_delete_objects_with_version_ids(s3, versioned_bucket):
    b = versioned_bucket
    k1a = put(s3, b, "k1", b"a")
    k1b = put(s3, b, "k1", b"b")
    k2a = put(s3, b, "k2", b"a")
    out = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k1", "VersionId": k1a}, {"Key": "k2", "VersionId": k2a}]})
    assert not out.get("Errors")
    assert sorted((d["Key"], d["VersionId"]) for d in out["Deleted"]) == [("k1", k1a), ("k2", k2a)]
    assert not any(d.get("DeleteMarker") for d in out["Deleted"])
    versions, markers = listing(s3, b)
    assert [(v["Key"], v["VersionId"]) for v in versions] == [("k1", k1b)]
    assert markers == []


def test_delete_objects_without_version_id_writes_delete_markers(s3, versioned_bucket):
    b = versioned_bucket
    v1 = put(s3, b, "k", b"data")
    out = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k"}]})
    (d,) = out["Deleted"]
    assert d["Key"] == "k"
    assert d["DeleteMarker"] is True
    marker = d["DeleteMarkerVersionId"]
    assert marker and marker not in ("null", v1)
    _, markers = listing(s3, b)
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [(marker, True)]
    out = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k", "VersionId": marker}]})
    (d,) = out["Deleted"]
    assert d["VersionId"] == marker
    assert d["DeleteMarker"] is True
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"data"


def test_copy_of_an_old_version(s3, versioned_bucket):
    b = versioned_bucket
    old = put(s3, b, "src", b"old bytes")
    new = put(s3, b, "src", b"new bytes")
    out = s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src", "VersionId": old})
    assert out["CopySourceVersionId"] == old
    assert out["VersionId"] not in (None, "null", old, new)
    got = s3.get_object(Bucket=b, Key="dst")
    assert got["Body"].read() == b"old bytes"
    assert got["VersionId"] == out["VersionId"]
    latest = s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"})
    assert latest["CopySourceVersionId"] == new
    assert s3.get_object(Bucket=b, Key="dst")["Body"].read() == b"new bytes"
    assert s3.get_object(Bucket=b, Key="dst", VersionId=out["VersionId"])["Body"].read() == b"old bytes"


def test_multipart_complete_creates_a_version(s3, versioned_bucket):
    b = versioned_bucket
    before = put(s3, b, "mp", b"single put")
    up = s3.create_multipart_upload(Bucket=b, Key="mp")
    part = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"multipart body")
    done = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    vid = done["VersionId"]
    assert vid not in (None, "null", before)
    versions, _ = listing(s3, b)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(vid, True), (before, False)]
    assert s3.get_object(Bucket=b, Key="mp", VersionId=vid)["Body"].read() == b"multipart body"
    assert s3.get_object(Bucket=b, Key="mp", VersionId=before)["Body"].read() == b"single put"


def test_bucket_with_only_delete_markers_is_not_empty(s3):
    name = "v-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name)
    try:
        set_status(s3, name, "Enabled")
        v1 = put(s3, name, "k", b"x")
        with pytest.raises(ClientError) as e:
            s3.delete_bucket(Bucket=name)
        assert error_code(e) == "BucketNotEmpty"
        assert status(e) == 409
        marker = s3.delete_object(Bucket=name, Key="k")["VersionId"]
        s3.delete_object(Bucket=name, Key="k", VersionId=v1)
        assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
        with pytest.raises(ClientError) as e:
            s3.delete_bucket(Bucket=name)
        assert error_code(e) == "BucketNotEmpty"
        assert status(e) == 409
        s3.delete_object(Bucket=name, Key="k", VersionId=marker)
        s3.delete_bucket(Bucket=name)
    finally:
        try:
            empty_bucket(s3, name)
            s3.delete_bucket(Bucket=name)
        except ClientError:
            pass


def test_aws_cli_list_object_versions(server, s3, versioned_bucket):
    b = versioned_bucket
    ids = {put(s3, b, "cli/k", b"1"), put(s3, b, "cli/k", b"2")}
    marker = s3.delete_object(Bucket=b, Key="cli/k")["VersionId"]
    out = json.loads(server.aws("s3api", "list-object-versions", "--bucket", b).stdout)
    assert {v["VersionId"] for v in out["Versions"]} == ids
    assert [m["VersionId"] for m in out["DeleteMarkers"]] == [marker]
    assert all(v["Key"] == "cli/k" for v in out["Versions"])
