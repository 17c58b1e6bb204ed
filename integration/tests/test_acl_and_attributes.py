"""ACLs as S3 has them with ACLs disabled (the owner has full control; only that can be set),
and GetObjectAttributes."""

import base64
import hashlib

import pytest
from botocore.exceptions import ClientError
from conftest import error_code, status

MiB = 1024 * 1024
ALL_USERS = 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'


def owner_only(acl):
    """Whether an ACL answer gives the owner full control and nobody anything else."""
    grants = acl["Grants"]
    return (len(grants) == 1 and grants[0]["Permission"] == "FULL_CONTROL"
            and grants[0]["Grantee"]["Type"] == "CanonicalUser" and grants[0]["Grantee"]["ID"] == acl["Owner"]["ID"])


def test_acls_read_as_owner_full_control(s3, bucket):
    assert owner_only(s3.get_bucket_acl(Bucket=bucket))
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    acl = s3.get_object_acl(Bucket=bucket, Key="k")
    assert owner_only(acl)
    assert acl["Owner"]["ID"] == s3.list_buckets()["Owner"]["ID"]
    with pytest.raises(ClientError) as e:
        s3.get_object_acl(Bucket=bucket, Key="missing")
    assert (error_code(e), status(e)) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_acl(Bucket=bucket + "-none")
    assert error_code(e) == "NoSuchBucket"


def test_only_owner_full_control_can_be_set(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="private")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_object_acl(Bucket=bucket, Key="k", ACL="private")
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    owner = s3.get_bucket_acl(Bucket=bucket)
    s3.put_object_acl(Bucket=bucket, Key="k", AccessControlPolicy={"Grants": owner["Grants"], "Owner": owner["Owner"]})
    s3.put_object_acl(Bucket=bucket, Key="k", GrantFullControl=f'id="{owner["Owner"]["ID"]}"')

    refused = [
        lambda: s3.put_object(Bucket=bucket, Key="pub", Body=b"x", ACL="public-read"),
        lambda: s3.put_object(Bucket=bucket, Key="pub", Body=b"x", GrantRead=ALL_USERS),
        lambda: s3.copy_object(Bucket=bucket, Key="pub", CopySource={"Bucket": bucket, "Key": "k"}, ACL="public-read"),
        lambda: s3.create_multipart_upload(Bucket=bucket, Key="pub", ACL="authenticated-read"),
        lambda: s3.put_object_acl(Bucket=bucket, Key="k", ACL="public-read"),
        lambda: s3.put_object_acl(Bucket=bucket, Key="k", GrantFullControl='id="someone-else"'),
        lambda: s3.put_object_acl(Bucket=bucket, Key="k", AccessControlPolicy={
            "Grants": owner["Grants"] + [{"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                          "Permission": "READ"}],
            "Owner": owner["Owner"]}),
        lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write"),
    ]
    for call in refused:
        with pytest.raises(ClientError) as e:
            call()
        assert (error_code(e), status(e)) == ("AccessControlListNotSupported", 400)
    # Nothing was written by a refused request, and the ACLs are unchanged.
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="pub")
    assert owner_only(s3.get_object_acl(Bucket=bucket, Key="k"))
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_public_bucket_cannot_be_created(s3):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="acl-public-bucket", ACL="public-read")
    assert (error_code(e), status(e)) == ("InvalidBucketAclWithObjectOwnership", 400)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="acl-public-bucket")
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="acl-public-bucket", ObjectOwnership="ObjectWriter")
    assert (error_code(e), status(e)) == ("NotImplemented", 501)
    s3.create_bucket(Bucket="acl-private-bucket", ACL="private", ObjectOwnership="BucketOwnerEnforced")
    s3.delete_bucket(Bucket="acl-private-bucket")


def test_object_attributes_of_a_single_put(s3, bucket):
    data = b"attributes" * 100
    s3.put_object(Bucket=bucket, Key="one", Body=data, ChecksumAlgorithm="SHA256")
    out = s3.get_object_attributes(Bucket=bucket, Key="one",
                                   ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
    assert out["ETag"] == hashlib.md5(data).hexdigest()  # the one answer where S3 leaves out the quotes
    assert out["Checksum"]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert out["Checksum"]["ChecksumType"] == "FULL_OBJECT"
    assert out["ObjectSize"] == len(data)
    assert out["StorageClass"] == "STANDARD"
    assert "ObjectParts" not in out  # written in one PUT
    assert out["LastModified"] == s3.head_object(Bucket=bucket, Key="one")["LastModified"]
    only_size = s3.get_object_attributes(Bucket=bucket, Key="one", ObjectAttributes=["ObjectSize"])
    assert only_size["ObjectSize"] == len(data)
    assert "ETag" not in only_size and "Checksum" not in only_size and "StorageClass" not in only_size
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert (error_code(e), status(e)) == ("NoSuchKey", 404)


def test_object_attributes_page_through_parts(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="SHA256")
    bodies = [bytes([i]) * (5 * MiB) for i in range(1, 4)] + [b"tail"]
    parts = []
    for n, body in enumerate(bodies, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=body, ChecksumAlgorithm="SHA256")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    first = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts", "Checksum"], MaxParts=3)
    # The composite checksum shows without its "-4" part count here.
    assert first["Checksum"]["ChecksumSHA256"] == done["ChecksumSHA256"].split("-")[0]
    op = first["ObjectParts"]
    assert op["TotalPartsCount"] == 4 and op["IsTruncated"] is True and op["NextPartNumberMarker"] == 3
    assert [(p["PartNumber"], p["Size"]) for p in op["Parts"]] == [(1, 5 * MiB), (2, 5 * MiB), (3, 5 * MiB)]
    assert [p["ChecksumSHA256"] for p in op["Parts"]] == [p["ChecksumSHA256"] for p in parts[:3]]
    rest = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=3, PartNumberMarker=3)
    op = rest["ObjectParts"]
    assert op["IsTruncated"] is False and [(p["PartNumber"], p["Size"]) for p in op["Parts"]] == [(4, 4)]
    # A page of none resumes where it started rather than sending a pager round in circles.
    none = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=0, PartNumberMarker=2)
    assert none["ObjectParts"]["NextPartNumberMarker"] == 2 and none["ObjectParts"].get("Parts", []) == []


def test_object_attributes_of_versions(s3, versioned_bucket):
    b = versioned_bucket
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"first")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"second!")["VersionId"]
    old = s3.get_object_attributes(Bucket=b, Key="k", VersionId=v1, ObjectAttributes=["ObjectSize"])
    assert (old["ObjectSize"], old["VersionId"]) == (5, v1)
    assert s3.get_object_attributes(Bucket=b, Key="k", ObjectAttributes=["ObjectSize"])["VersionId"] == v2
    s3.delete_object(Bucket=b, Key="k")
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=b, Key="k", ObjectAttributes=["ObjectSize"])
    assert status(e) == 404
