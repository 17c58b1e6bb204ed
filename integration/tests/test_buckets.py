"""Bucket operations with boto3 and the aws CLI."""

import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import error_code, status


def test_create_list_head_delete(s3):
    name = "b-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert name in names
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") is None
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert status(e) == 404
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("name", ["ab", "UPPER-case", "a" * 64, "-leading", "bad_underscore", "192.168.1.1", "a..b", "strata"])
def test_invalid_names_are_refused(s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert error_code(e) == "InvalidBucketName"
    assert status(e) == 400


def test_delete_non_empty_bucket_fails_and_keeps_data(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(e) == "BucketNotEmpty"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_missing_bucket_errors(s3):
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert error_code(e) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")
    assert error_code(e) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="no-such-bucket-here")
    assert error_code(e) == "NoSuchBucket"


def test_location_constraint_for_other_region_is_refused(s3):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="b-" + uuid.uuid4().hex[:12], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_code(e) == "InvalidLocationConstraint"


def test_aws_cli_mb_ls_rb(server):
    name = "cli-" + uuid.uuid4().hex[:12]
    server.aws("s3", "mb", f"s3://{name}")
    assert name in server.aws("s3", "ls").stdout.decode()
    server.aws("s3", "rb", f"s3://{name}")
    assert name not in server.aws("s3", "ls").stdout.decode()
