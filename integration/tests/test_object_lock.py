"""Object lock: bucket configuration, retention modes, legal holds, the deletes they refuse,
and a backup-like run whose blocks expire while others stay locked."""

import base64
import datetime
import hashlib
import os
import random
import time
import zlib

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import error_code, status
from sigv4 import sign_headers

MiB = 1024 * 1024
DAY = 86400


def later(seconds):
    """A retain-until date `seconds` from now, in whole seconds (as S3 echoes it back)."""
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)).replace(microsecond=0)


def retention(mode, until):
    return {"Mode": mode, "RetainUntilDate": until}


def put_locked(s3, bucket, key, mode, until, body=b"locked"):
    return s3.put_object(Bucket=bucket, Key=key, Body=body, ObjectLockMode=mode, ObjectLockRetainUntilDate=until)["VersionId"]


def test_lock_bucket_has_versioning_that_cannot_be_suspended(s3, lock_bucket):
    assert s3.get_bucket_versioning(Bucket=lock_bucket)["Status"] == "Enabled"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=lock_bucket, VersioningConfiguration={"Status": "Suspended"})
    assert error_code(e) == "InvalidBucketState"
    assert status(e) == 409
    assert s3.get_bucket_versioning(Bucket=lock_bucket)["Status"] == "Enabled"
    conf = s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"]
    assert conf == {"ObjectLockEnabled": "Enabled"}


def test_plain_bucket_has_no_lock_configuration(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert error_code(e) == "ObjectLockConfigurationNotFoundError"
    assert status(e) == 404


def test_default_retention_configuration_round_trip(s3, lock_bucket):
    days = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration=days)
    assert s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"] == days
    years = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": 2}}}
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration=years)
    assert s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"] == years
    both = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}}}
    with pytest.raises(ClientError) as e:
        s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration=both)
    assert status(e) == 400  # AWS answers MalformedXML; InvalidArgument is as fair
    assert error_code(e) in ("MalformedXML", "InvalidArgument")
    zero = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}}
    with pytest.raises(ClientError) as e:
        s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration=zero)
    assert status(e) == 400  # a period must be positive; the exact code is not pinned down
    assert s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"] == years


def test_put_with_retention_shows_on_head_get_and_retention(s3, lock_bucket):
    until = later(3600)
    vid = put_locked(s3, lock_bucket, "k", "GOVERNANCE", until)
    h = s3.head_object(Bucket=lock_bucket, Key="k")
    assert h["ObjectLockMode"] == "GOVERNANCE"
    assert h["ObjectLockRetainUntilDate"] == until
    g = s3.get_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert g["ObjectLockMode"] == "GOVERNANCE" and g["ObjectLockRetainUntilDate"] == until
    assert g["Body"].read() == b"locked"
    r = s3.get_object_retention(Bucket=lock_bucket, Key="k", VersionId=vid)["Retention"]
    assert r == retention("GOVERNANCE", until)


def test_lock_mode_and_date_go_together(s3, lock_bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=lock_bucket, Key="m", Body=b"x", ObjectLockMode="GOVERNANCE")
    assert error_code(e) == "InvalidArgument"
    assert status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=lock_bucket, Key="d", Body=b"x", ObjectLockRetainUntilDate=later(3600))
    assert error_code(e) == "InvalidArgument"
    assert status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=lock_bucket, Key="p", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=later(-60))
    assert error_code(e) == "InvalidArgument"  # the date must be in the future
    assert status(e) == 400
    for k in ("m", "d", "p"):
        with pytest.raises(ClientError):
            s3.head_object(Bucket=lock_bucket, Key=k)


def test_lock_headers_on_a_plain_bucket_are_invalid_request(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=later(3600))
    assert error_code(e) == "InvalidRequest"
    assert status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")
    assert error_code(e) == "InvalidRequest"
    assert status(e) == 400
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")


def test_lock_headers_need_content_md5_or_a_checksum(server, s3, lock_bucket):
    body = b"raw locked body"
    lock = {"x-amz-object-lock-mode": "GOVERNANCE",
            "x-amz-object-lock-retain-until-date": later(3600).strftime("%Y-%m-%dT%H:%M:%SZ")}
    md5 = {"content-md5": base64.b64encode(hashlib.md5(body).digest()).decode()}
    crc = {"x-amz-checksum-crc32": base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()}

    def raw_put(key, hdrs):
        url = f"{server.endpoint}/{lock_bucket}/{key}"
        hdrs = dict(hdrs, **{"content-length": str(len(body))})
        signed, *_ = sign_headers("PUT", url, hdrs, hashlib.sha256(body).hexdigest(), server.user, server.password)
        return requests.put(url, data=body, headers=signed)

    for key, hdrs in (("retention", lock), ("hold", {"x-amz-object-lock-legal-hold": "ON"})):
        r = raw_put(key, hdrs)
        assert r.status_code == 400, r.text
        assert "<Code>InvalidRequest</Code>" in r.text
        with pytest.raises(ClientError):
            s3.head_object(Bucket=lock_bucket, Key=key)
    assert raw_put("plain", {}).status_code == 200  # no lock parameters: the signed sha256 is enough
    r = raw_put("md5", dict(lock, **md5))
    assert r.status_code == 200, r.text
    r = raw_put("crc", dict(lock, **crc))
    assert r.status_code == 200, r.text
    assert s3.head_object(Bucket=lock_bucket, Key="crc")["ObjectLockMode"] == "GOVERNANCE"


def test_default_retention_applies_to_plain_puts(s3, lock_bucket):
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    before = later(DAY)
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")["VersionId"]
    h = s3.head_object(Bucket=lock_bucket, Key="k")
    assert h["ObjectLockMode"] == "GOVERNANCE"
    assert before - datetime.timedelta(seconds=60) <= h["ObjectLockRetainUntilDate"] <= later(DAY) + datetime.timedelta(seconds=60)
    assert s3.get_object_retention(Bucket=lock_bucket, Key="k", VersionId=vid)["Retention"]["Mode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert error_code(e) == "AccessDenied"


def test_delete_markers_are_never_locked(s3, lock_bucket):
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=lock_bucket, Key="k")["VersionId"]
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=marker)
    assert s3.get_object(Bucket=lock_bucket, Key="k")["Body"].read() == b"x"


def test_governance_version_needs_bypass_to_delete(s3, lock_bucket):
    vid = put_locked(s3, lock_bucket, "g", "GOVERNANCE", later(3600))
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=lock_bucket, Key="g", VersionId=vid)
    assert error_code(e) == "AccessDenied"
    assert status(e) == 403
    assert s3.get_object(Bucket=lock_bucket, Key="g", VersionId=vid)["Body"].read() == b"locked"
    s3.delete_object(Bucket=lock_bucket, Key="g", VersionId=vid, BypassGovernanceRetention=True)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=lock_bucket, Key="g", VersionId=vid)
    assert error_code(e) == "NoSuchVersion"


def test_compliance_version_cannot_be_deleted_even_with_bypass(s3, lock_bucket):
    vid = put_locked(s3, lock_bucket, "c", "COMPLIANCE", later(DAY))
    for bypass in (False, True):
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=lock_bucket, Key="c", VersionId=vid, BypassGovernanceRetention=bypass)
        assert error_code(e) == "AccessDenied"
        assert status(e) == 403
    assert s3.get_object(Bucket=lock_bucket, Key="c", VersionId=vid)["Body"].read() == b"locked"


def test_delete_without_version_id_on_a_locked_key_writes_a_marker(s3, lock_bucket):
    vid = put_locked(s3, lock_bucket, "k", "COMPLIANCE", later(DAY))
    d = s3.delete_object(Bucket=lock_bucket, Key="k")
    assert d["DeleteMarker"] is True
    assert d["VersionId"] != vid
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=lock_bucket, Key="k")
    assert error_code(e) == "NoSuchKey"
    assert s3.get_object(Bucket=lock_bucket, Key="k", VersionId=vid)["Body"].read() == b"locked"


def test_compliance_retention_can_only_be_extended(s3, lock_bucket):
    until = later(DAY)
    vid = put_locked(s3, lock_bucket, "c", "COMPLIANCE", until)
    longer = until + datetime.timedelta(days=1)
    s3.put_object_retention(Bucket=lock_bucket, Key="c", VersionId=vid, Retention=retention("COMPLIANCE", longer))
    assert s3.get_object_retention(Bucket=lock_bucket, Key="c", VersionId=vid)["Retention"] == retention("COMPLIANCE", longer)
    for r in (retention("COMPLIANCE", until), retention("GOVERNANCE", longer + datetime.timedelta(days=1))):
        for bypass in (False, True):
            with pytest.raises(ClientError) as e:
                s3.put_object_retention(Bucket=lock_bucket, Key="c", VersionId=vid, Retention=r, BypassGovernanceRetention=bypass)
            assert error_code(e) == "AccessDenied"
            assert status(e) == 403
    assert s3.get_object_retention(Bucket=lock_bucket, Key="c", VersionId=vid)["Retention"] == retention("COMPLIANCE", longer)
    assert s3.head_object(Bucket=lock_bucket, Key="c", VersionId=vid)["ObjectLockRetainUntilDate"] == longer


def test_governance_retention_shortening_needs_bypass(s3, lock_bucket):
    until = later(7200)
    vid = put_locked(s3, lock_bucket, "g", "GOVERNANCE", until)
    shorter = until - datetime.timedelta(seconds=3600)
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(Bucket=lock_bucket, Key="g", VersionId=vid, Retention=retention("GOVERNANCE", shorter))
    assert error_code(e) == "AccessDenied"
    assert status(e) == 403
    assert s3.get_object_retention(Bucket=lock_bucket, Key="g", VersionId=vid)["Retention"] == retention("GOVERNANCE", until)
    s3.put_object_retention(Bucket=lock_bucket, Key="g", VersionId=vid, Retention=retention("GOVERNANCE", shorter),
                            BypassGovernanceRetention=True)
    assert s3.get_object_retention(Bucket=lock_bucket, Key="g", VersionId=vid)["Retention"] == retention("GOVERNANCE", shorter)
    s3.put_object_retention(Bucket=lock_bucket, Key="g", VersionId=vid, Retention=retention("GOVERNANCE", until))
    assert s3.get_object_retention(Bucket=lock_bucket, Key="g", VersionId=vid)["Retention"] == retention("GOVERNANCE", until)


def test_retention_of_an_unlocked_version_is_not_found(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="plain", Body=b"x")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object_retention(Bucket=lock_bucket, Key="plain", VersionId=vid)
    assert error_code(e) == "NoSuchObjectLockConfiguration"
    assert status(e) == 404
    h = s3.head_object(Bucket=lock_bucket, Key="plain")
    assert "ObjectLockMode" not in h and "ObjectLockRetainUntilDate" not in h
    s3.put_object_retention(Bucket=lock_bucket, Key="plain", VersionId=vid, Retention=retention("GOVERNANCE", later(3600)))
    assert s3.get_object_retention(Bucket=lock_bucket, Key="plain", VersionId=vid)["Retention"]["Mode"] == "GOVERNANCE"


def test_legal_hold_blocks_delete_until_released(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="h", Body=b"held")["VersionId"]
    with pytest.raises(ClientError) as e:  # as S3: no status until one is given
        s3.get_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid)
    assert (error_code(e), status(e)) == ("NoSuchObjectLockConfiguration", 404)
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid, LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid)["LegalHold"] == {"Status": "ON"}
    assert s3.head_object(Bucket=lock_bucket, Key="h")["ObjectLockLegalHoldStatus"] == "ON"
    for bypass in (False, True):
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=lock_bucket, Key="h", VersionId=vid, BypassGovernanceRetention=bypass)
        assert error_code(e) == "AccessDenied"
        assert status(e) == 403
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid)["LegalHold"] == {"Status": "OFF"}
    s3.delete_object(Bucket=lock_bucket, Key="h", VersionId=vid)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=lock_bucket, Key="h", VersionId=vid)
    assert error_code(e) == "NoSuchVersion"


def test_legal_hold_header_on_put(s3, lock_bucket):
    off = s3.put_object(Bucket=lock_bucket, Key="off", Body=b"x", ObjectLockLegalHoldStatus="OFF")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="off", VersionId=off)["LegalHold"] == {"Status": "OFF"}
    vid = s3.put_object(Bucket=lock_bucket, Key="h", Body=b"x", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid)["LegalHold"] == {"Status": "ON"}
    assert s3.get_object(Bucket=lock_bucket, Key="h")["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=lock_bucket, Key="h", VersionId=vid)
    assert error_code(e) == "AccessDenied"
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="h", VersionId=vid, LegalHold={"Status": "OFF"})


def test_delete_objects_reports_each_locked_version(s3, lock_bucket):
    b = lock_bucket
    unlocked = [("free", s3.put_object(Bucket=b, Key="free", Body=b"1")["VersionId"]),
                ("free", s3.put_object(Bucket=b, Key="free", Body=b"2")["VersionId"])]
    locked = [("gov", put_locked(s3, b, "gov", "GOVERNANCE", later(3600))),
              ("gov", put_locked(s3, b, "gov", "GOVERNANCE", later(3600))),
              ("held", s3.put_object(Bucket=b, Key="held", Body=b"h", ObjectLockLegalHoldStatus="ON")["VersionId"])]
    objects = [{"Key": k, "VersionId": v} for k, v in unlocked + locked]
    out = s3.delete_objects(Bucket=b, Delete={"Objects": objects})
    assert sorted((d["Key"], d["VersionId"]) for d in out["Deleted"]) == sorted(unlocked)
    assert sorted((x["Key"], x["VersionId"]) for x in out["Errors"]) == sorted(locked)
    assert {x["Code"] for x in out["Errors"]} == {"AccessDenied"}
    for k, v in locked:
        assert s3.head_object(Bucket=b, Key=k, VersionId=v)["VersionId"] == v
    out = s3.delete_objects(Bucket=b, Delete={"Objects": objects[2:4]}, BypassGovernanceRetention=True)
    assert sorted((d["Key"], d["VersionId"]) for d in out["Deleted"]) == sorted(locked[:2])
    s3.put_object_legal_hold(Bucket=b, Key="held", VersionId=locked[2][1], LegalHold={"Status": "OFF"})


def test_multipart_upload_with_retention(s3, lock_bucket):
    until = later(3600)
    up = s3.create_multipart_upload(Bucket=lock_bucket, Key="mp", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    parts = [os.urandom(5 * MiB), b"tail"]
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=lock_bucket, Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=p)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    vid = s3.complete_multipart_upload(Bucket=lock_bucket, Key="mp", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": done})["VersionId"]
    h = s3.head_object(Bucket=lock_bucket, Key="mp", VersionId=vid)
    assert h["ObjectLockMode"] == "GOVERNANCE" and h["ObjectLockRetainUntilDate"] == until
    assert s3.get_object_retention(Bucket=lock_bucket, Key="mp", VersionId=vid)["Retention"] == retention("GOVERNANCE", until)
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=lock_bucket, Key="mp", VersionId=vid)
    assert error_code(e) == "AccessDenied"
    assert status(e) == 403
    assert s3.get_object(Bucket=lock_bucket, Key="mp")["Body"].read() == b"".join(parts)


def test_backup_run_with_expiring_and_kept_compliance_blocks(s3, lock_bucket):
    b = lock_bucket
    rnd = random.Random(20240601)
    blocks = {}  # key -> [version id, data, retain-until]
    for i in range(12):
        data = rnd.randbytes(rnd.randint(1 * MiB, 4 * MiB))
        # Ten seconds: the date must still lie ahead when a slow machine sends the PUT.
        until = later(10) if i % 2 == 0 else later(DAY)
        key = f"backup/blocks/{i:04d}"
        vid = s3.put_object(Bucket=b, Key=key, Body=data, ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)["VersionId"]
        blocks[key] = [vid, data, until]
    extended = "backup/blocks/0010"
    blocks[extended][2] = later(DAY)
    s3.put_object_retention(Bucket=b, Key=extended, VersionId=blocks[extended][0], Retention=retention("COMPLIANCE", blocks[extended][2]))
    expired = {k for k, (_, _, until) in blocks.items() if until < later(3600)}
    kept = set(blocks) - expired
    assert len(expired) == 5 and len(kept) == 7
    wait = max(blocks[k][2] for k in expired) - datetime.datetime.now(datetime.timezone.utc)
    time.sleep(max(0.0, wait.total_seconds()) + 1)

    for key, (vid, data, _) in blocks.items():
        assert s3.get_object(Bucket=b, Key=key, VersionId=vid)["Body"].read() == data, key
    out = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k, "VersionId": v[0]} for k, v in blocks.items()]})
    assert sorted((d["Key"], d["VersionId"]) for d in out.get("Deleted", [])) == sorted((k, blocks[k][0]) for k in expired)
    errors = out.get("Errors", [])
    assert sorted((x["Key"], x["VersionId"]) for x in errors) == sorted((k, blocks[k][0]) for k in kept)
    assert all(x["Code"] == "AccessDenied" for x in errors)
    for key in expired:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=b, Key=key, VersionId=blocks[key][0])
        assert error_code(e) == "NoSuchVersion"
        assert status(e) == 404
    for key in kept:
        vid, data, until = blocks[key]
        got = s3.get_object(Bucket=b, Key=key, VersionId=vid)
        assert got["Body"].read() == data
        assert got["ObjectLockMode"] == "COMPLIANCE" and got["ObjectLockRetainUntilDate"] == until
