"""Bucket replication end to end: two Strata sites as separate processes on 127.0.0.1 and moto as
a plain S3 target. What replicates (PUT, multipart, overwrite, copy, tags, retention, legal hold,
delete markers, version deletes) with equal bytes, ETags, headers, tags and version ids; filters;
the configuration API and its errors; outages of the target (500 writes converge), kill -9 of the
source with a backlog and a lost queue; active-active without loops; resync; failed entries and
their retry; diff; forged replica headers."""

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import BIN, Strata

pytest_plugins = ["emulator_fixtures"]

WAIT = 60
MiB = 1 << 20
# Failed sends retry after 50 ms, doubling: an entry is FAILED after about 2 s, not minutes.
FAST_RETRY = {"STRATA_REPLICATION_MIN_BACKOFF_MS": "50"}


def new_site(tmp_path_factory, name):
    return Strata(tmp_path_factory.mktemp(name) / "data", env=FAST_RETRY).start()


@pytest.fixture(scope="module")
def site_a(tmp_path_factory):
    s = new_site(tmp_path_factory, "site-a")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def site_b(tmp_path_factory):
    s = new_site(tmp_path_factory, "site-b")
    yield s
    s.stop()


def until(check, timeout=WAIT, what="the condition"):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def admin(site, *args, check=True):
    out = subprocess.run([BIN, "admin", "--endpoint", site.endpoint, *args], env=site.env(), capture_output=True, timeout=300)
    if check:
        assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    return out


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def versioned(s3, bucket, lock=False):
    if lock:
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    else:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def add_target(src, bucket, dst, dst_bucket, *extra):
    out = admin(src, "replicate", "add-target", "--bucket", bucket, "--target", dst.endpoint, "--target-bucket", dst_bucket,
                "--access-key", dst.user, "--secret-key", dst.password, "--path-style", *extra)
    arn = out.stdout.decode().strip()
    assert arn.startswith("arn:strata:replication::") and arn.endswith(":" + dst_bucket), arn
    return arn


def rule(arn, rule_id="all", priority=1, filter=None, delete_markers=True, **extra):
    r = {
        "ID": rule_id,
        "Priority": priority,
        "Status": "Enabled",
        "Filter": filter if filter is not None else {},
        "Destination": {"Bucket": arn},
        "DeleteMarkerReplication": {"Status": "Enabled" if delete_markers else "Disabled"},
    }
    r.update(extra)
    return r


def replicate(s3, bucket, *rules):
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={"Role": "", "Rules": list(rules)})


def status_of(s3, bucket, key, version_id=None):
    kw = {"VersionId": version_id} if version_id else {}
    return s3.head_object(Bucket=bucket, Key=key, **kw).get("ReplicationStatus")


def quietly(call):
    """The call's answer, or None while it fails (a setting that has not arrived yet)."""
    try:
        return call()
    except ClientError:
        return None


def completed(s3, bucket, key, version_id):
    return until(lambda: status_of(s3, bucket, key, version_id) == "COMPLETED", what=f"{key} {version_id} COMPLETED")


def versions(s3, bucket):
    """(key, version id, is delete marker) of every version, sorted."""
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        out += [(v["Key"], v["VersionId"], False) for v in page.get("Versions", [])]
        out += [(m["Key"], m["VersionId"], True) for m in page.get("DeleteMarkers", [])]
    return sorted(out)


def body(s3, bucket, key, version_id=None):
    kw = {"VersionId": version_id} if version_id else {}
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


@pytest.fixture
def pair(site_a, site_b):
    """A versioned, object-lock source bucket on A replicating everything to a like bucket on B."""
    a, b = site_a.client(), site_b.client()
    src, dst = versioned(a, name("src"), lock=True), versioned(b, name("dst"), lock=True)
    arn = add_target(site_a, src, site_b, dst)
    replicate(a, src, rule(arn))
    return a, b, src, dst, arn


def test_writes_reach_a_strata_target_with_the_same_versions(pair):
    a, b, src, dst, arn = pair
    data = os.urandom(100_000)
    put = a.put_object(Bucket=src, Key="doc.txt", Body=data, ContentType="text/plain", CacheControl="max-age=9",
                       Metadata={"owner": "ann"}, Tagging="team=blue&env=prod")
    v1 = put["VersionId"]
    assert status_of(a, src, "doc.txt", v1) in ("PENDING", "COMPLETED")
    completed(a, src, "doc.txt", v1)
    h = b.head_object(Bucket=dst, Key="doc.txt", VersionId=v1)
    src_head = a.head_object(Bucket=src, Key="doc.txt", VersionId=v1)
    assert h["ETag"] == put["ETag"] and h["ContentLength"] == len(data)
    assert h["ContentType"] == "text/plain" and h["CacheControl"] == "max-age=9"
    assert h["Metadata"] == {"owner": "ann"}
    assert h["LastModified"] == src_head["LastModified"], "the replica keeps the source's modification time"
    assert h["ReplicationStatus"] == "REPLICA"
    assert body(b, dst, "doc.txt", v1) == data
    tags = b.get_object_tagging(Bucket=dst, Key="doc.txt", VersionId=v1)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "prod"), ("team", "blue")]

    # Multipart: the part layout is kept, so the ETag is the same.
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(123)]
    up = a.create_multipart_upload(Bucket=src, Key="big.bin")
    done = [{"PartNumber": i + 1, "ETag": a.upload_part(Bucket=src, Key="big.bin", UploadId=up["UploadId"], PartNumber=i + 1, Body=p)["ETag"]}
            for i, p in enumerate(parts)]
    mp = a.complete_multipart_upload(Bucket=src, Key="big.bin", UploadId=up["UploadId"], MultipartUpload={"Parts": done})
    completed(a, src, "big.bin", mp["VersionId"])
    assert b.head_object(Bucket=dst, Key="big.bin", VersionId=mp["VersionId"])["ETag"] == mp["ETag"]
    assert mp["ETag"].endswith('-3"')
    assert hashlib.md5(body(b, dst, "big.bin")).hexdigest() == hashlib.md5(b"".join(parts)).hexdigest()

    # Overwrite and copy make new versions there too.
    v2 = a.put_object(Bucket=src, Key="doc.txt", Body=b"second")["VersionId"]
    cp = a.copy_object(Bucket=src, Key="copy.txt", CopySource={"Bucket": src, "Key": "doc.txt", "VersionId": v1})
    completed(a, src, "doc.txt", v2)
    completed(a, src, "copy.txt", cp["VersionId"])
    assert body(b, dst, "doc.txt") == b"second"
    assert body(b, dst, "copy.txt") == data

    # Tags, retention and legal hold change the same replica version, never add one.
    before = versions(b, dst)
    a.put_object_tagging(Bucket=src, Key="doc.txt", VersionId=v1, Tagging={"TagSet": [{"Key": "team", "Value": "red"}]})
    until(lambda: b.get_object_tagging(Bucket=dst, Key="doc.txt", VersionId=v1)["TagSet"] == [{"Key": "team", "Value": "red"}],
          what="the tag change on the replica")
    until_date = "2030-01-01T00:00:00Z"
    a.put_object_retention(Bucket=src, Key="doc.txt", VersionId=v1, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until_date})
    a.put_object_legal_hold(Bucket=src, Key="copy.txt", VersionId=cp["VersionId"], LegalHold={"Status": "ON"})
    until(lambda: (quietly(lambda: b.get_object_retention(Bucket=dst, Key="doc.txt", VersionId=v1)) or {})
          .get("Retention", {}).get("Mode") == "GOVERNANCE", what="retention on the replica")
    until(lambda: (quietly(lambda: b.get_object_legal_hold(Bucket=dst, Key="copy.txt", VersionId=cp["VersionId"])) or {})
          .get("LegalHold", {}).get("Status") == "ON", what="legal hold on the replica")
    completed(a, src, "doc.txt", v1)
    assert versions(b, dst) == before, "metadata changes add no version"

    # A delete marker keeps its version id on the target.
    marker = a.delete_object(Bucket=src, Key="copy.txt")["VersionId"]
    until(lambda: ("copy.txt", marker, True) in versions(b, dst), what="the delete marker on the target")
    a.put_object_legal_hold(Bucket=src, Key="copy.txt", VersionId=cp["VersionId"], LegalHold={"Status": "OFF"})
    until(lambda: versions(a, src) == versions(b, dst), what="both sites to list the same versions")

    # A version delete does not replicate (AWS), unless the target asks for version deletes.
    a.delete_object(Bucket=src, Key="doc.txt", VersionId=v2)
    time.sleep(2)
    assert any(v[1] == v2 for v in versions(b, dst))


def test_version_deletes_replicate_when_the_target_asks(site_a, site_b):
    a, b = site_a.client(), site_b.client()
    src, dst = versioned(a, name("src")), versioned(b, name("dst"))
    arn = add_target(site_a, src, site_b, dst, "--version-deletes")
    replicate(a, src, rule(arn))
    v = a.put_object(Bucket=src, Key="k", Body=b"x")["VersionId"]
    completed(a, src, "k", v)
    a.delete_object(Bucket=src, Key="k", VersionId=v)
    until(lambda: versions(b, dst) == [], what="the version delete on the target")


def test_plain_s3_target_gets_equal_objects_and_metadata(site_a, moto):
    a = site_a.client()
    m = moto.client()
    src, dst = versioned(a, name("src")), name("moto")
    m.create_bucket(Bucket=dst)
    m.put_bucket_versioning(Bucket=dst, VersioningConfiguration={"Status": "Enabled"})
    out = admin(site_a, "replicate", "add-target", "--bucket", src, "--target", moto.endpoint, "--target-bucket", dst,
                "--access-key", "testing", "--secret-key", "testing", "--path-style")
    arn = out.stdout.decode().strip()
    replicate(a, src, rule(arn))
    data = os.urandom(300_000)
    put = a.put_object(Bucket=src, Key="o", Body=data, ContentType="application/x-test", Metadata={"m": "1"}, Tagging="a=1")
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    up = a.create_multipart_upload(Bucket=src, Key="mp")
    done = [{"PartNumber": i + 1, "ETag": a.upload_part(Bucket=src, Key="mp", UploadId=up["UploadId"], PartNumber=i + 1, Body=p)["ETag"]}
            for i, p in enumerate(parts)]
    mp = a.complete_multipart_upload(Bucket=src, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done})
    completed(a, src, "o", put["VersionId"])
    completed(a, src, "mp", mp["VersionId"])
    h = m.head_object(Bucket=dst, Key="o")
    assert h["ETag"] == put["ETag"] and h["ContentType"] == "application/x-test" and h["Metadata"] == {"m": "1"}
    assert m.get_object(Bucket=dst, Key="o")["Body"].read() == data
    assert m.head_object(Bucket=dst, Key="mp")["ETag"] == mp["ETag"]
    # A tag change reaches the same moto version (its own id, remembered by the source).
    remote_versions = [v["VersionId"] for v in m.list_object_versions(Bucket=dst, Prefix="o")["Versions"] if v["Key"] == "o"]
    assert len(remote_versions) == 1
    a.put_object_tagging(Bucket=src, Key="o", VersionId=put["VersionId"], Tagging={"TagSet": [{"Key": "a", "Value": "2"}]})
    until(lambda: m.get_object_tagging(Bucket=dst, Key="o")["TagSet"] == [{"Key": "a", "Value": "2"}], what="moto's tags")
    assert len([v for v in m.list_object_versions(Bucket=dst, Prefix="o")["Versions"] if v["Key"] == "o"]) == 1
    a.delete_object(Bucket=src, Key="o")
    until(lambda: any(d["Key"] == "o" and d["IsLatest"] for d in m.list_object_versions(Bucket=dst).get("DeleteMarkers", [])),
          what="the delete marker on moto")
    assert admin(site_a, "replicate", "diff", src, check=False).returncode == 0


def test_filters_by_prefix_and_tag(site_a, site_b):
    a, b = site_a.client(), site_b.client()
    src, dst = versioned(a, name("src")), versioned(b, name("dst"))
    arn = add_target(site_a, src, site_b, dst)
    replicate(a, src,
              rule(arn, "logs", 1, {"Prefix": "logs/"}),
              rule(arn, "tagged", 2, {"Tag": {"Key": "replicate", "Value": "yes"}}, delete_markers=False))
    v_logs = a.put_object(Bucket=src, Key="logs/1", Body=b"l")["VersionId"]
    v_tag = a.put_object(Bucket=src, Key="other/t", Body=b"t", Tagging="replicate=yes")["VersionId"]
    v_no = a.put_object(Bucket=src, Key="other/n", Body=b"n", Tagging="replicate=no")["VersionId"]
    completed(a, src, "logs/1", v_logs)
    completed(a, src, "other/t", v_tag)
    assert status_of(a, src, "other/n", v_no) is None, "a version no rule covers has no status"
    assert sorted(k for k, _, _ in versions(b, dst)) == ["logs/1", "other/t"]


def test_target_outage_loses_nothing_and_does_not_slow_writes(site_a, tmp_path_factory):
    target = new_site(tmp_path_factory, "outage-target")
    try:
        a, b = site_a.client(), target.client()
        src, dst = versioned(a, name("src")), versioned(b, name("dst"))
        plain = versioned(a, name("plain"))
        arn = add_target(site_a, src, target, dst)
        replicate(a, src, rule(arn))
        target.stop()
        # Writes to the replicated bucket while its target is down, interleaved with writes to a
        # bucket without replication: every one is acknowledged and neither kind waits for the
        # target (count of writes done in alternating windows, not a time limit).
        counts = {src: 0, plain: 0}
        written = {}
        for window in range(4):
            b_ = src if window % 2 == 0 else plain
            end = time.time() + 0.5
            while time.time() < end:
                key = f"k{counts[b_]:04d}-{window}"
                r = a.put_object(Bucket=b_, Key=key, Body=key.encode())
                if b_ == src:
                    written[key] = r["VersionId"]
                counts[b_] += 1
        assert counts[src] >= 0.5 * counts[plain], counts
        while len(written) < 500:
            key = f"more{len(written):04d}"
            written[key] = a.put_object(Bucket=src, Key=key, Body=key.encode())["VersionId"]
        status = json.loads(admin(site_a, "replicate", "status", src, "--json").stdout)
        assert status[0]["backlog"] >= 1 and status[0]["online"] is False
        target.start()
        until(lambda: json.loads(admin(site_a, "replicate", "status", src, "--json").stdout)[0]["backlog"] == 0,
              timeout=120, what="the backlog to drain")
        on_target = {(k, v) for k, v, _ in versions(b, dst)}
        assert on_target == set(written.items()), "every acknowledged write reached the target, once"
        for key, v in list(written.items())[::50]:
            assert status_of(a, src, key, v) == "COMPLETED"
    finally:
        target.stop()


def test_kill9_with_a_backlog_and_a_lost_queue_still_converges(tmp_path_factory, site_b):
    source = new_site(tmp_path_factory, "kill-source")
    try:
        a, b = source.client(), site_b.client()
        src, dst = versioned(a, name("src")), versioned(b, name("dst"))
        arn = add_target(source, src, site_b, dst)
        replicate(a, src, rule(arn))
        admin(source, "replicate", "pause", arn)
        written = {f"k{i:03d}": a.put_object(Bucket=src, Key=f"k{i:03d}", Body=os.urandom(2000))["VersionId"] for i in range(100)}
        assert status_of(a, src, "k000", written["k000"]) == "PENDING"
        source.kill9()
        source.start()
        admin(source, "replicate", "resume", arn)
        until(lambda: len(versions(b, dst)) == 100, what="the backlog after kill -9")
        # Lose the queue itself while versions still say PENDING: the start-up scan rebuilds it.
        admin(source, "replicate", "pause", arn)
        more = {f"m{i:03d}": a.put_object(Bucket=src, Key=f"m{i:03d}", Body=b"m")["VersionId"] for i in range(30)}
        source.kill9()
        state = source.data / "drive1" / ".strata-node"
        queue_files = list(state.glob("replication.db*")) if state.exists() else []
        assert queue_files, f"no replication queue found under {state}"
        for f in queue_files:
            f.unlink()
        source.start()
        admin(source, "replicate", "resume", arn)
        until(lambda: len(versions(b, dst)) == 130, what="versions the rebuilt queue lacked")
        for key, v in more.items():
            completed(a, src, key, v)
    finally:
        source.stop()


def test_active_active_converges_without_loops(site_a, site_b):
    a, b = site_a.client(), site_b.client()
    ba, bb = versioned(a, name("aa")), versioned(b, name("aa"))
    to_b = add_target(site_a, ba, site_b, bb)
    to_a = add_target(site_b, bb, site_a, ba)
    replicate(a, ba, rule(to_b))
    replicate(b, bb, rule(to_a))
    threads = []
    for s3, bucket, side in ((a, ba, "a"), (b, bb, "b")):
        def write(s3=s3, bucket=bucket, side=side):
            for i in range(20):
                s3.put_object(Bucket=bucket, Key=f"shared{i % 5}", Body=f"{side}{i}".encode())
                s3.put_object(Bucket=bucket, Key=f"{side}-only{i}", Body=b"x")
        threads.append(threading.Thread(target=write))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    until(lambda: versions(a, ba) == versions(b, bb) and len(versions(a, ba)) == 80, what="both sites to agree")
    time.sleep(3)
    assert len(versions(a, ba)) == 80 and versions(a, ba) == versions(b, bb), "no replica was sent back"
    for key in ("shared0", "shared3"):
        assert body(a, ba, key) == body(b, bb, key), "both sites see the same current version"
    assert a.head_object(Bucket=ba, Key="b-only0")["ReplicationStatus"] == "REPLICA"


def test_resync_and_existing_object_replication(site_a, site_b):
    a, b = site_a.client(), site_b.client()
    src, dst = versioned(a, name("src")), versioned(b, name("dst"))
    before = {f"old{i}": a.put_object(Bucket=src, Key=f"old{i}", Body=b"o")["VersionId"] for i in range(10)}
    arn = add_target(site_a, src, site_b, dst)
    replicate(a, src, rule(arn))
    new = a.put_object(Bucket=src, Key="new", Body=b"n")["VersionId"]
    completed(a, src, "new", new)
    assert [k for k, _, _ in versions(b, dst)] == ["new"], "existing objects wait for resync"
    assert admin(site_a, "replicate", "diff", src, check=False).returncode == 1
    out = admin(site_a, "replicate", "resync", src)
    assert "10 queued" in out.stdout.decode(), out.stdout.decode()
    until(lambda: len(versions(b, dst)) == 11, what="the resync")
    for k, v in before.items():
        completed(a, src, k, v)
    assert admin(site_a, "replicate", "diff", src).returncode == 0

    # ExistingObjectReplication Enabled: versions already there go without a resync.
    src2, dst2 = versioned(a, name("src")), versioned(b, name("dst"))
    for i in range(5):
        a.put_object(Bucket=src2, Key=f"e{i}", Body=b"e")
    arn2 = add_target(site_a, src2, site_b, dst2)
    replicate(a, src2, rule(arn2, ExistingObjectReplication={"Status": "Enabled"}))
    until(lambda: len(versions(b, dst2)) == 5, what="existing objects")


def test_failed_entries_are_listed_and_retried(site_a, site_b):
    a, b = site_a.client(), site_b.client()
    src = versioned(a, name("src"))
    dst = name("later")  # the target bucket does not exist yet: every send fails
    out = admin(site_a, "replicate", "add-target", "--bucket", src, "--target", site_b.endpoint, "--target-bucket", dst,
                "--access-key", site_b.user, "--secret-key", site_b.password, "--path-style", "--no-check")
    arn = out.stdout.decode().strip()
    replicate(a, src, rule(arn))
    keys = {f"f{i}": a.put_object(Bucket=src, Key=f"f{i}", Body=b"f")["VersionId"] for i in range(3)}
    until(lambda: all(status_of(a, src, k, v) == "FAILED" for k, v in keys.items()), what="FAILED")
    failed = json.loads(admin(site_a, "replicate", "failed", "ls", "--json").stdout)
    mine = [e for e in failed if e["bucket"] == src]
    assert len(mine) == 3 and all("NoSuchBucket" in e["last_error"] for e in mine), mine
    status = json.loads(admin(site_a, "replicate", "status", src, "--json").stdout)[0]
    assert status["failed"] == 3 and "NoSuchBucket" in status["last_error"]
    versioned(b, dst)
    admin(site_a, "replicate", "failed", "retry", "--all")
    for k, v in keys.items():
        completed(a, src, k, v)
    assert json.loads(admin(site_a, "replicate", "failed", "ls", "--json").stdout) == [] or \
        not [e for e in json.loads(admin(site_a, "replicate", "failed", "ls", "--json").stdout) if e["bucket"] == src]


def test_credentials_that_stop_working_show_as_failed(site_a, site_b):
    a, b = site_a.client(), site_b.client()
    src, dst = versioned(a, name("src")), versioned(b, name("dst"))
    arn = add_target(site_a, src, site_b, dst)
    replicate(a, src, rule(arn))
    admin(site_a, "replicate", "edit", arn, "--secret-key", "wrong-secret")
    v = a.put_object(Bucket=src, Key="k", Body=b"k")["VersionId"]
    until(lambda: status_of(a, src, "k", v) == "FAILED", what="FAILED with bad credentials")
    status = json.loads(admin(site_a, "replicate", "status", src, "--json").stdout)[0]
    assert "SignatureDoesNotMatch" in status["last_error"], status
    assert "wrong-secret" not in admin(site_a, "replicate", "ls", "--json").stdout.decode()
    admin(site_a, "replicate", "edit", arn, "--secret-key", site_b.password)
    completed(a, src, "k", v)


def test_target_registry_and_configuration_errors(site_a, site_b):
    a, b = site_a.client(), site_b.client()
    src, dst = versioned(a, name("src")), versioned(b, name("dst"))
    unversioned = name("plain")
    b.create_bucket(Bucket=unversioned)
    refused = admin(site_a, "replicate", "add-target", "--bucket", src, "--target", site_b.endpoint, "--target-bucket",
                    unversioned, "--access-key", site_b.user, "--secret-key", site_b.password, "--path-style", check=False)
    assert refused.returncode != 0 and "versioning" in refused.stderr.decode()
    arn = add_target(site_a, src, site_b, dst)
    listed = admin(site_a, "replicate", "ls", "--json").stdout.decode()
    assert arn in listed and site_b.password not in listed

    def code(rules, bucket=src):
        with pytest.raises(ClientError) as e:
            a.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={"Role": "", "Rules": rules})
        return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]

    unv = name("unv")
    a.create_bucket(Bucket=unv)
    assert code([rule(arn)], unv) == ("InvalidRequest", 400)
    assert code([rule("arn:strata:replication::nope:x")]) == ("InvalidRequest", 400)
    assert code([rule(arn, filter={"Tag": {"Key": "a", "Value": "b"}})]) == ("InvalidRequest", 400)
    assert code([rule(arn, "x", 1), rule(arn, "y", 1, {"Prefix": "p"})]) == ("InvalidRequest", 400)
    no_priority = rule(arn)
    del no_priority["Priority"]
    assert code([no_priority]) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        a.get_bucket_replication(Bucket=src)
    assert e.value.response["Error"]["Code"] == "ReplicationConfigurationNotFoundError"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    replicate(a, src, rule(arn, filter={"And": {"Prefix": "p/", "Tags": [{"Key": "k", "Value": "v"}]}}, delete_markers=False))
    got = a.get_bucket_replication(Bucket=src)["ReplicationConfiguration"]["Rules"][0]
    assert got["Filter"]["And"]["Prefix"] == "p/" and got["Destination"]["Bucket"] == arn and got["Priority"] == 1
    with pytest.raises(ClientError) as e:
        a.put_bucket_versioning(Bucket=src, VersioningConfiguration={"Status": "Suspended"})
    assert e.value.response["Error"]["Code"] == "InvalidBucketState"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    rm = admin(site_a, "replicate", "rm", arn, check=False)
    assert rm.returncode != 0 and src in rm.stderr.decode()
    # Malformed XML gets MalformedXML.
    signed = site_a.client()
    with pytest.raises(ClientError) as e:
        signed.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": "", "Rules": [{"Status": "Enabled", "Destination": {"Bucket": arn}}]})
    assert e.value.response["Error"]["Code"] == "MalformedXML"
    assert a.delete_bucket_replication(Bucket=src)["ResponseMetadata"]["HTTPStatusCode"] == 204
    admin(site_a, "replicate", "rm", arn)
    assert arn not in admin(site_a, "replicate", "ls").stdout.decode()
    metrics = requests.get(site_a.endpoint + "/metrics").text
    assert "strata_replication_backlog" in metrics


def test_forged_replica_headers_are_refused(site_a):
    a = site_a.client()
    bucket = versioned(a, name("forge"))
    # Headers added after signing (outside SignedHeaders), as a proxy or a presigned URL's holder could.
    def add_headers(request, **_):
        request.headers["x-strata-replica-version-id"] = str(uuid.uuid4())
        request.headers["x-strata-replica-mtime"] = "1000000000000000000"
    a.meta.events.register("before-send.s3.PutObject", add_headers)
    with pytest.raises(ClientError) as e:
        a.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    anonymous = requests.put(f"{site_a.endpoint}/{bucket}/k", data=b"x",
                             headers={"x-strata-replica-version-id": "null", "x-strata-replica-mtime": "1"})
    assert anonymous.status_code == 403


def test_bandwidth_limit_paces_a_target(site_a, site_b):
    a, b = site_a.client(), site_b.client()
    src, dst = versioned(a, name("src")), versioned(b, name("dst"))
    arn = add_target(site_a, src, site_b, dst, "--bandwidth", "200000")  # 200 kB/s
    replicate(a, src, rule(arn))
    started = time.time()
    v = a.put_object(Bucket=src, Key="paced", Body=os.urandom(800_000))["VersionId"]
    time.sleep(1.5)
    assert status_of(a, src, "paced", v) == "PENDING", "800 kB at 200 kB/s take about 4 s"
    completed(a, src, "paced", v)
    assert time.time() - started >= 3
    listed = json.loads(admin(site_a, "replicate", "ls", "--json").stdout)
    assert [t["bandwidth"] for t in listed if t["arn"] == arn] == [200000]
