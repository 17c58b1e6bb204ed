"""Multipart uploads: numbering rules, ETags, completion errors, listing, copies, abort."""

import hashlib
import os

import pytest
from botocore.exceptions import ClientError
from conftest import error_code, status

MiB = 1024 * 1024


def md5_of_parts(parts):
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def test_complete_gives_md5_n_etag_and_exact_bytes(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 3), os.urandom(1234)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="application/x-mp", Metadata={"k": "v"})
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=p)
        assert r["ETag"] == f'"{hashlib.md5(p).hexdigest()}"'
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    out = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done})
    assert out["ETag"] == f'"{md5_of_parts(parts)}"'
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "application/x-mp" and got["Metadata"] == {"k": "v"}
    part2 = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert part2["PartsCount"] == 3 and part2["Body"].read() == parts[1]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_part_numbers_1_to_10000(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="n")
    for bad in (0, 10001):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="n", UploadId=up["UploadId"], PartNumber=bad, Body=b"x")
        assert error_code(e) == "InvalidArgument"
    a = s3.upload_part(Bucket=bucket, Key="n", UploadId=up["UploadId"], PartNumber=1, Body=b"a" * (5 * MiB))
    z = s3.upload_part(Bucket=bucket, Key="n", UploadId=up["UploadId"], PartNumber=10000, Body=b"z")
    parts = [{"PartNumber": 1, "ETag": a["ETag"]}, {"PartNumber": 10000, "ETag": z["ETag"]}]
    s3.complete_multipart_upload(Bucket=bucket, Key="n", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="n", Range="bytes=-2")["Body"].read() == b"az"


def test_completion_errors(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="e")
    uid = up["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="e", UploadId=uid, PartNumber=1, Body=b"tiny")
    last = s3.upload_part(Bucket=bucket, Key="e", UploadId=uid, PartNumber=2, Body=b"end")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": small["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}]})
    assert error_code(e) == "EntityTooSmall"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": last["ETag"]}, {"PartNumber": 1, "ETag": small["ETag"]}]})
    assert error_code(e) == "InvalidPartOrder"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 3, "ETag": last["ETag"]}]})
    assert error_code(e) == "InvalidPart"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]})
    assert error_code(e) == "InvalidPart"
    # A single small part is allowed (it is the last one).
    s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 2, "ETag": last["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == b"end"


def test_unknown_upload(s3, bucket):
    for uid in ("not-a-uuid", "6f1c1b6e-4b53-4d5e-9d1f-2a8f3e7c9b10"):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="x", UploadId=uid, PartNumber=1, Body=b"x")
        assert error_code(e) == "NoSuchUpload" and status(e) == 404


def test_upload_for_other_key_is_not_found(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="right")
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="wrong", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    assert error_code(e) == "NoSuchUpload"


def test_reuploading_a_part_replaces_it(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="r")
    s3.upload_part(Bucket=bucket, Key="r", UploadId=up["UploadId"], PartNumber=1, Body=b"first")
    second = s3.upload_part(Bucket=bucket, Key="r", UploadId=up["UploadId"], PartNumber=1, Body=b"second")
    parts = s3.list_parts(Bucket=bucket, Key="r", UploadId=up["UploadId"])["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, second["ETag"], 6)]
    s3.complete_multipart_upload(Bucket=bucket, Key="r", UploadId=up["UploadId"], MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": second["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="r")["Body"].read() == b"second"


def test_list_parts_paging_and_list_uploads(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="lp")
    for n in range(1, 8):
        s3.upload_part(Bucket=bucket, Key="lp", UploadId=up["UploadId"], PartNumber=n, Body=bytes([n]))
    first = s3.list_parts(Bucket=bucket, Key="lp", UploadId=up["UploadId"], MaxParts=3)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2, 3] and first["IsTruncated"]
    rest = s3.list_parts(Bucket=bucket, Key="lp", UploadId=up["UploadId"], PartNumberMarker=first["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in rest["Parts"]] == [4, 5, 6, 7] and not rest["IsTruncated"]
    other = s3.create_multipart_upload(Bucket=bucket, Key="dir/other")
    ups = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [("dir/other", other["UploadId"]), ("lp", up["UploadId"])]
    rolled = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["dir/"]
    s3.abort_multipart_upload(Bucket=bucket, Key="lp", UploadId=up["UploadId"])
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="lp", UploadId=up["UploadId"])
    assert error_code(e) == "NoSuchUpload"
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == ["dir/other"]


def test_upload_part_copy_with_range(s3, bucket):
    src = os.urandom(7 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    up = s3.create_multipart_upload(Bucket=bucket, Key="pc")
    p1 = s3.upload_part_copy(Bucket=bucket, Key="pc", UploadId=up["UploadId"], PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    p2 = s3.upload_part_copy(Bucket=bucket, Key="pc", UploadId=up["UploadId"], PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes={6 * MiB}-{7 * MiB - 1}")
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="pc", UploadId=up["UploadId"], PartNumber=3,
                            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{7 * MiB}")
    assert error_code(e) == "InvalidRange"
    s3.complete_multipart_upload(Bucket=bucket, Key="pc", UploadId=up["UploadId"], MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="pc")["Body"].read() == src[: 5 * MiB] + src[6 * MiB:]


def test_multipart_checksums_are_composite(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="ck", ChecksumAlgorithm="SHA256")
    parts, done = [os.urandom(5 * MiB), b"tail"], []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="ck", UploadId=up["UploadId"], PartNumber=i, Body=p, ChecksumAlgorithm="SHA256")
        assert r["ChecksumSHA256"]
        done.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    out = s3.complete_multipart_upload(Bucket=bucket, Key="ck", UploadId=up["UploadId"], MultipartUpload={"Parts": done})
    assert out["ChecksumSHA256"].endswith("-2")
    h = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == out["ChecksumSHA256"]


def test_abort_then_complete_fails(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="ab")
    r = s3.upload_part(Bucket=bucket, Key="ab", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=up["UploadId"])
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="ab", UploadId=up["UploadId"], MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": r["ETag"]}]})
    assert error_code(e) == "NoSuchUpload"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="ab")


def test_abort_after_complete_is_no_such_upload_and_keeps_the_object(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="done")
    r = s3.upload_part(Bucket=bucket, Key="done", UploadId=up["UploadId"], PartNumber=1, Body=b"kept")
    s3.complete_multipart_upload(Bucket=bucket, Key="done", UploadId=up["UploadId"], MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r["ETag"]}]})
    with pytest.raises(ClientError) as e:
        s3.abort_multipart_upload(Bucket=bucket, Key="done", UploadId=up["UploadId"])
    assert (error_code(e), status(e)) == ("NoSuchUpload", 404)
    assert s3.get_object(Bucket=bucket, Key="done")["Body"].read() == b"kept"


def test_conditional_complete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="exists", Body=b"old")
    up = s3.create_multipart_upload(Bucket=bucket, Key="exists")
    r = s3.upload_part(Bucket=bucket, Key="exists", UploadId=up["UploadId"], PartNumber=1, Body=b"new")
    parts = {"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]}
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="exists", UploadId=up["UploadId"], MultipartUpload=parts, IfNoneMatch="*")
    assert status(e) == 412
    assert s3.get_object(Bucket=bucket, Key="exists")["Body"].read() == b"old"
    s3.complete_multipart_upload(Bucket=bucket, Key="exists", UploadId=up["UploadId"], MultipartUpload=parts)
    assert s3.get_object(Bucket=bucket, Key="exists")["Body"].read() == b"new"


def crc_b64(algorithm, data):
    """The base64 CRC S3 sends, computed here (zlib, or awscrt which botocore uses)."""
    import base64
    import zlib
    from awscrt import checksums
    value, width = {
        "CRC32": (zlib.crc32(data), 4),
        "CRC32C": (checksums.crc32c(data), 4),
        "CRC64NVME": (checksums.crc64nvme(data), 8),
    }[algorithm]
    return base64.b64encode(value.to_bytes(width, "big")).decode()


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_checksum_is_the_crc_of_the_whole_object(s3, bucket, algorithm):
    key = f"full-{algorithm}"
    # CRC64NVME is FULL_OBJECT without being asked; the others are asked for it.
    extra = {} if algorithm == "CRC64NVME" else {"ChecksumType": "FULL_OBJECT"}
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, **extra)
    assert up["ChecksumType"] == "FULL_OBJECT"
    field = f"Checksum{algorithm}"
    parts, done = [os.urandom(5 * MiB), os.urandom(5 * MiB + 3), b"tail"], []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=i, Body=p, ChecksumAlgorithm=algorithm)
        assert r[field] == crc_b64(algorithm, p)
        done.append({"PartNumber": i, "ETag": r["ETag"], field: r[field]})
    whole = crc_b64(algorithm, b"".join(parts))
    out = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": done},
        ChecksumType="FULL_OBJECT", MpuObjectSize=sum(len(p) for p in parts), **{field: whole})
    assert (out[field], out["ChecksumType"]) == (whole, "FULL_OBJECT")
    h = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert (h[field], h["ChecksumType"]) == (whole, "FULL_OBJECT")
    g = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert g["Body"].read() == b"".join(parts)


def test_full_object_completion_errors(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT")
    assert error_code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE")
    assert error_code(e) == "InvalidRequest"
    up = s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    r = s3.upload_part(Bucket=bucket, Key="x", UploadId=up["UploadId"], PartNumber=1, Body=b"abc", ChecksumAlgorithm="CRC32")
    part = {"PartNumber": 1, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]}
    complete = lambda **kw: s3.complete_multipart_upload(  # noqa: E731
        Bucket=bucket, Key="x", UploadId=up["UploadId"], MultipartUpload={"Parts": [part]}, **kw)
    with pytest.raises(ClientError) as e:
        complete(ChecksumCRC32=crc_b64("CRC32", b"abd"))
    assert (error_code(e), status(e)) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        complete(ChecksumType="COMPOSITE")
    assert error_code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        complete(MpuObjectSize=4)
    assert error_code(e) == "InvalidRequest"
    bad_part = dict(part, ChecksumCRC32=crc_b64("CRC32", b"abd"))
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="x", UploadId=up["UploadId"], MultipartUpload={"Parts": [bad_part]})
    assert error_code(e) == "InvalidPart"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="x")
    assert status(e) == 404, "no failed completion leaves an object behind"
    out = complete(ChecksumCRC32=crc_b64("CRC32", b"abc"))
    assert out["ChecksumCRC32"] == crc_b64("CRC32", b"abc")
