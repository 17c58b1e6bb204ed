"""Erasure coding under damage: degraded reads, bitrot, heal on read, `strata admin heal`, and
wiped drives rebuilt at start-up (EC 2+2 on four drive directories); full drives."""

import hashlib
import json
import os
import shutil
import time

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import error_code, status

MiB = 1024 * 1024


def put_set(s3, bucket):
    """A mix of layouts: inline, single-part with a partial last block, multipart."""
    objects = {"inline": os.urandom(1000), "single": os.urandom(5 * MiB + 123), "empty": b""}
    for k, v in objects.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    parts = [os.urandom(5 * MiB), os.urandom(3 * MiB + 7)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="multi")
    done = [{"PartNumber": i, "ETag": s3.upload_part(Bucket=bucket, Key="multi", UploadId=up["UploadId"], PartNumber=i, Body=p)["ETag"]}
            for i, p in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=up["UploadId"], MultipartUpload={"Parts": done})
    objects["multi"] = b"".join(parts)
    return objects


def assert_all_read_back(s3, bucket, objects):
    for k, v in objects.items():
        got = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(v).digest(), k
        if len(v) > 10:
            assert s3.get_object(Bucket=bucket, Key=k, Range="bytes=5-9")["Body"].read() == v[5:10]


def wipe(path):
    # The server's drive check may notice the wipe halfway and re-create what is removed.
    for child in path.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def shard_files(drive):
    return sorted(p for p in (drive / "data").rglob("part.*"))


def heal_report(server):
    report = json.loads(server.admin("heal"))
    assert report["failures"] == [], report
    return report


def test_two_wiped_drives_read_back_and_heal(own_server):
    s3 = own_server.client()
    s3.create_bucket(Bucket="heal-me")
    objects = put_set(s3, "heal-me")
    before = [len(shard_files(own_server.drive_dir(i))) for i in range(1, 5)]
    assert before[0] > 0 and len(set(before)) == 1

    wipe(own_server.drive_dir(1))
    wipe(own_server.drive_dir(2))
    assert_all_read_back(s3, "heal-me", objects)
    report = heal_report(own_server)
    after = [len(shard_files(own_server.drive_dir(i))) for i in range(1, 5)]
    assert after == before, (report, own_server.log.read_text()[-3000:])

    # Proof the wiped drives were rebuilt: lose the other two and read everything again.
    own_server.stop()
    shutil.rmtree(own_server.drive_dir(3))
    shutil.rmtree(own_server.drive_dir(4))
    own_server.start()
    s3 = own_server.client()
    assert "heal-me" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="heal-me")["Contents"]) == sorted(objects)
    assert_all_read_back(s3, "heal-me", objects)
    heal_report(own_server)
    assert [len(shard_files(own_server.drive_dir(i))) for i in range(1, 5)] == before


def test_flipped_bytes_are_detected_and_repaired(own_server):
    s3 = own_server.client()
    s3.create_bucket(Bucket="bitrot")
    data = os.urandom(3 * MiB + 5)
    s3.put_object(Bucket="bitrot", Key="obj", Body=data)
    victims = []
    for i in (1, 3):
        (shard,) = shard_files(own_server.drive_dir(i))
        original = shard.read_bytes()
        damaged = bytearray(original)
        for offset in (20, len(damaged) // 2, len(damaged) - 1):
            damaged[offset] ^= 0xFF
        shard.write_bytes(bytes(damaged))
        victims.append((shard, original))
    assert s3.get_object(Bucket="bitrot", Key="obj")["Body"].read() == data
    heal_report(own_server)
    for shard, original in victims:
        (healed,) = shard_files(shard.parents[2].parent)
        assert healed.read_bytes() == original
    assert s3.get_object(Bucket="bitrot", Key="obj")["Body"].read() == data


def metric(server, name):
    """The value of an unlabelled or fully labelled metric line, 0 when absent."""
    for line in requests.get(server.endpoint + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0


def test_a_read_that_finds_damage_heals_it_in_the_background(own_server):
    s3 = own_server.client()
    s3.create_bucket(Bucket="onread")
    data = os.urandom(3 * MiB)  # three blocks
    s3.put_object(Bucket="onread", Key="obj", Body=data)
    # Block i is damaged on drive i + 1 only, so every block still has three good shards; and
    # of any three drives one holds a data shard, which the read uses and finds bad.
    victims = []
    for block in range(3):
        (shard,) = shard_files(own_server.drive_dir(block + 1))
        original = shard.read_bytes()
        offset = block * (len(original) // 3) + len(original) // 6
        shard.write_bytes(original[:offset] + bytes([original[offset] ^ 0xFF]) + original[offset + 1:])
        victims.append((block + 1, original))
    healed = 'strata_heal_queue_heals_total{result="healed"}'
    assert metric(own_server, healed) == 0
    assert s3.get_object(Bucket="onread", Key="obj")["Body"].read() == data
    deadline = time.time() + 20
    while metric(own_server, healed) < 1 and time.time() < deadline:
        time.sleep(0.1)
    assert metric(own_server, healed) == 1
    assert metric(own_server, "strata_heal_queue_pending") == 0
    for drive, original in victims:
        (repaired,) = shard_files(own_server.drive_dir(drive))
        assert repaired.read_bytes() == original, f"drive {drive}"


def test_reads_fail_cleanly_beyond_parity(own_server):
    s3 = own_server.client()
    s3.create_bucket(Bucket="toolost")
    s3.put_object(Bucket="toolost", Key="obj", Body=os.urandom(2 * MiB))
    for i in (1, 2, 3):
        for shard in shard_files(own_server.drive_dir(i)):
            shard.unlink()
    from botocore.exceptions import ClientError

    with pytest.raises((ClientError, Exception)):
        s3.get_object(Bucket="toolost", Key="obj")["Body"].read()


def test_foreign_drive_is_refused(tmp_path):
    from conftest import Strata

    a = Strata(tmp_path / "a").start()
    a.stop()
    b = Strata(tmp_path / "b").start()
    b.stop()
    shutil.rmtree(a.drive_dir(2))
    shutil.copytree(b.drive_dir(2), a.drive_dir(2))
    with pytest.raises(RuntimeError) as e:
        a.start(timeout=10)
    assert "belongs to deployment" in str(e.value)
    # Misplaced: swap two drives of the same deployment.
    c = Strata(tmp_path / "c").start()
    c.stop()
    os.rename(c.drive_dir(1), tmp_path / "swap")
    os.rename(c.drive_dir(2), c.drive_dir(1))
    os.rename(tmp_path / "swap", c.drive_dir(2))
    with pytest.raises(RuntimeError) as e:
        c.start(timeout=10)
    assert "refusing to start" in str(e.value)
    time.sleep(0)


def test_writes_stop_cleanly_above_the_free_space_reserve(own_server, monkeypatch):
    s3 = own_server.client()
    s3.create_bucket(Bucket="full")
    s3.put_object(Bucket="full", Key="kept", Body=b"before")
    s3.put_object(Bucket="full", Key="gone", Body=b"x" * 300_000)
    info = json.loads(own_server.admin("info"))
    assert all(0 < d["free_bytes"] <= d["total_bytes"] for d in info["drives"])
    assert metric(own_server, f'strata_drive_free_bytes{{drive="{own_server.drive_dir(1)}"}}') > 0

    # A reserve larger than any drive: as if every drive were full.
    own_server.stop()
    monkeypatch.setenv("STRATA_MIN_FREE", str(10 ** 18))
    own_server.start()
    s3 = own_server.client()
    up = s3.create_multipart_upload(Bucket="full", Key="mp")
    writes = [
        lambda: s3.put_object(Bucket="full", Key="new", Body=b"small"),
        lambda: s3.put_object(Bucket="full", Key="new", Body=os.urandom(2 * MiB)),
        lambda: s3.copy_object(Bucket="full", Key="new", CopySource={"Bucket": "full", "Key": "kept"}),
        lambda: s3.upload_part(Bucket="full", Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p"),
    ]
    for write in writes:
        with pytest.raises(ClientError) as e:
            write()
        assert (error_code(e), status(e)) == ("XStrataStorageFull", 507)
    # Reads, deletes and settings go on, and make room.
    assert s3.get_object(Bucket="full", Key="kept")["Body"].read() == b"before"
    s3.delete_object(Bucket="full", Key="gone")
    s3.put_object_tagging(Bucket="full", Key="kept", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    s3.abort_multipart_upload(Bucket="full", Key="mp", UploadId=up["UploadId"])
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="full")["Contents"]] == ["kept"]
    assert staging_is_empty(own_server)


def staging_is_empty(server):
    return all(not any((server.drive_dir(i) / ".strata" / "tmp").iterdir()) for i in range(1, 5))
