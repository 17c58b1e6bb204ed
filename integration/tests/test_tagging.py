"""Object and bucket tagging: headers, per-version tags, copies, multipart, limits."""

import pytest
from botocore.exceptions import ClientError
from conftest import error_code, status


def tags_of(s3, bucket, key, **kw):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"]}


def tag_set(d):
    return {"TagSet": [{"Key": k, "Value": v} for k, v in d.items()]}


def test_tagging_header_on_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=two%20words&eq=x%3Dy&empty=")
    assert tags_of(s3, bucket, "t") == {"a": "1", "b": "two words", "eq": "x=y", "empty": ""}
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 4
    assert s3.head_object(Bucket=bucket, Key="t")["TagCount"] == 4


def test_untagged_object_has_empty_tag_set_and_no_count(s3, bucket):
    s3.put_object(Bucket=bucket, Key="u", Body=b"x")
    assert s3.get_object_tagging(Bucket=bucket, Key="u")["TagSet"] == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="u")
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="u")


def test_put_get_delete_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="old=1")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"ключ": "значение", "k:/+-=._@": "v w"}))
    assert tags_of(s3, bucket, "k") == {"ключ": "значение", "k:/+-=._@": "v w"}  # a put replaces the whole set
    assert s3.head_object(Bucket=bucket, Key="k")["TagCount"] == 2
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    out = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="k")


def test_overwrite_without_tagging_drops_tags(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="a=1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"2")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


def test_tagging_is_per_version(s3, versioned_bucket):
    b = versioned_bucket
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"2", Tagging="gen=two")["VersionId"]
    out = s3.put_object_tagging(Bucket=b, Key="k", VersionId=v1, Tagging=tag_set({"gen": "one", "old": "yes"}))
    assert out["VersionId"] == v1
    got = s3.get_object_tagging(Bucket=b, Key="k", VersionId=v1)
    assert got["VersionId"] == v1
    assert {t["Key"]: t["Value"] for t in got["TagSet"]} == {"gen": "one", "old": "yes"}
    latest = s3.get_object_tagging(Bucket=b, Key="k")
    assert latest["VersionId"] == v2
    assert {t["Key"]: t["Value"] for t in latest["TagSet"]} == {"gen": "two"}
    assert s3.head_object(Bucket=b, Key="k", VersionId=v1)["TagCount"] == 2
    assert s3.head_object(Bucket=b, Key="k")["TagCount"] == 1
    out = s3.delete_object_tagging(Bucket=b, Key="k", VersionId=v1)
    assert out["VersionId"] == v1
    assert tags_of(s3, b, "k", VersionId=v1) == {}
    assert tags_of(s3, b, "k", VersionId=v2) == {"gen": "two"}
    assert s3.put_object_tagging(Bucket=b, Key="k", Tagging=tag_set({"gen": "2"}))["VersionId"] == v2
    assert tags_of(s3, b, "k", VersionId=v1) == {}


def test_copy_keeps_or_replaces_tags(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1&b=2")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    assert tags_of(s3, bucket, "copied") == {"a": "1", "b": "2"}
    s3.copy_object(Bucket=bucket, Key="explicit", CopySource={"Bucket": bucket, "Key": "src"}, TaggingDirective="COPY")
    assert tags_of(s3, bucket, "explicit") == {"a": "1", "b": "2"}
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="x=y")
    assert tags_of(s3, bucket, "replaced") == {"x": "y"}
    s3.copy_object(Bucket=bucket, Key="cleared", CopySource={"Bucket": bucket, "Key": "src"}, TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "cleared") == {}
    assert tags_of(s3, bucket, "src") == {"a": "1", "b": "2"}


def test_multipart_upload_tagging(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="k=v&team=storage")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"only part")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert tags_of(s3, bucket, "mp") == {"k": "v", "team": "storage"}
    assert s3.head_object(Bucket=bucket, Key="mp")["TagCount"] == 2


def test_eleven_tags_are_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=1")
    eleven = {f"k{i}": "v" for i in range(11)}
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(eleven))
    assert status(e) == 400
    assert error_code(e) in ("InvalidTag", "BadRequest")  # AWS has been seen answering BadRequest here
    assert tags_of(s3, bucket, "k") == {"keep": "1"}
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging="&".join(f"{k}={v}" for k, v in eleven.items()))
    assert status(e) == 400
    assert error_code(e) in ("InvalidTag", "BadRequest")  # as above
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="h")


@pytest.mark.parametrize("tags", [{"k" * 129: "v"}, {"k": "v" * 257}])
def test_bad_tag_is_invalid_tag(s3, bucket, tags):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(tags))
    assert error_code(e) == "InvalidTag"
    assert status(e) == 400
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


def test_too_long_tag_in_header_is_invalid_tag(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="k=" + "v" * 257)
    assert error_code(e) == "InvalidTag"
    assert status(e) == 400
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")


def test_tag_limits_at_the_edge_are_accepted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    edge = {f"t{i}": str(i) for i in range(8)}
    edge["K" * 128] = "short"
    edge["long"] = "V" * 256
    assert len(edge) == 10
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(edge))
    assert tags_of(s3, bucket, "k") == edge
    assert s3.head_object(Bucket=bucket, Key="k")["TagCount"] == 10


def test_duplicate_tag_keys_are_invalid_tag(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    dup = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=dup)
    assert error_code(e) == "InvalidTag"
    assert status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging="a=1&a=2")
    assert status(e) == 400  # AWS refuses a repeated key in the header too; the code is not pinned down


def test_bucket_tagging(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e) == "NoSuchTagSet"
    assert status(e) == 404
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"env": "test", "team": "storage"}))
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert {t["Key"]: t["Value"] for t in got} == {"env": "test", "team": "storage"}
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"only": "one"}))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "only", "Value": "one"}]
    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e) == "NoSuchTagSet"
    assert status(e) == 404


def test_object_tagging_on_a_missing_key(s3, bucket):
    for call in (lambda: s3.get_object_tagging(Bucket=bucket, Key="absent"),
                 lambda: s3.put_object_tagging(Bucket=bucket, Key="absent", Tagging=tag_set({"a": "1"})),
                 lambda: s3.delete_object_tagging(Bucket=bucket, Key="absent")):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "NoSuchKey"
        assert status(e) == 404
