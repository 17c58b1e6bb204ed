"""Cloud tiering end to end against real emulators on 127.0.0.1 (moto for S3, Azurite with the
dev account key and with a SAS, fake-gcs-server and gcp-storage-emulator for GCS), on a server
whose lifecycle day lasts 2 seconds: transitions of empty, inline, large and multipart objects,
their bytes found under the recorded remote key, transparent GET / range / partNumber / copy,
RestoreObject and its expiry, remote deletes through the journal, noncurrent transitions, and
the faults: a tier down during a transition, during a delete, on a read, and kill -9 of Strata
mid-transition."""

import hashlib
import json
import os
import re
import subprocess
import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import BIN, Strata, remove_bucket_if_possible

pytest_plugins = ["emulator_fixtures"]  # the session-wide emulators: moto, azurite, fake_gcs, gcp_emulator

DAY = 2  # seconds in a lifecycle day on the test server
WAIT = 60  # a due transition must be done within this many seconds
MiB = 1 << 20


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("tiering") / "data", env={"STRATA_LIFECYCLE_DAY_SECONDS": str(DAY)}).start()
    yield s
    s.stop()


@pytest.fixture
def s3(node):
    return node.client()


def until(check, timeout=WAIT, what="the condition"):
    started = time.time()
    deadline = started + timeout
    while True:
        value = check()
        if value:
            if os.environ.get("TIERING_TIMES"):
                print(f"{time.time() - started:.1f}s for {what}")
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def admin(node, *args, check=True):
    started = time.time()
    out = subprocess.run([BIN, "admin", "--endpoint", node.endpoint, *args], env=node.env(), capture_output=True, timeout=300)
    if os.environ.get("TIERING_TIMES"):
        print(f"{time.time() - started:.1f}s for admin {' '.join(args[:2])}")
    if check:
        assert out.returncode == 0, out.stderr.decode()
    return out


class Remote:
    """A tier under test: its name in Strata, its emulator and the remote bucket and prefix."""

    def __init__(self, name, emulator, bucket, prefix, add_args):
        self.name, self.emulator, self.bucket, self.prefix, self.add_args = name, emulator, bucket, prefix, add_args

    def keys(self):
        return {k: v for k, v in self.emulator.keys(self.bucket, self.prefix).items()}


def make_remote(kind, emulators):
    bucket = "tier-" + uuid.uuid4().hex[:12]
    prefix = "strata/"
    if kind == "s3":
        em = emulators["moto"]
        em.create_bucket(bucket)
        args = ["--kind", "s3", "--endpoint", em.endpoint, "--bucket", bucket, "--prefix", prefix,
                "--access-key", "testing", "--secret-key", "testing", "--path-style", "--storage-class", "STANDARD_IA"]  # fmt: skip
    elif kind in ("azure-key", "azure-sas"):
        em = emulators["azurite"]
        em.create_bucket(bucket)
        auth = ["--key", em.key] if kind == "azure-key" else ["--sas", em.container_sas(bucket, hours=4)]
        args = ["--kind", "azure", "--endpoint", em.endpoint, "--bucket", bucket, "--prefix", prefix,
                "--account", em.account, "--storage-class", "Cool", *auth]  # fmt: skip
    else:
        em = emulators["fake_gcs" if kind == "gcs-fake" else "gcp_emulator"]
        em.create_bucket(bucket)
        args = ["--kind", "gcs", "--endpoint", em.endpoint, "--bucket", bucket, "--prefix", prefix, "--storage-class", "NEARLINE"]
    name = re.sub(r"[^A-Z0-9]", "", kind.upper()) + "-" + uuid.uuid4().hex[:6].upper()
    return Remote(name, em, bucket, prefix, args)


KINDS = ["s3", "azure-key", "azure-sas", "gcs-fake", "gcs-emulator"]


@pytest.fixture
def emulators(request):
    """The emulators, started lazily: only those a test's kind needs."""

    class Lazy(dict):
        def __missing__(self, name):
            self[name] = request.getfixturevalue(name)
            return self[name]

    return Lazy()


@pytest.fixture
def remote(request, node, emulators):
    r = make_remote(request.param, emulators)
    admin(node, "tier", "add", r.name, *r.add_args)
    yield r


def new_bucket(s3, versioning=None):
    name = "tb-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    return name


def transition_rule(tier, prefix="", days=1, noncurrent=False):
    rule = {"ID": "to-" + tier.lower(), "Status": "Enabled", "Filter": {"Prefix": prefix}}
    if noncurrent:
        rule["NoncurrentVersionTransitions"] = [{"NoncurrentDays": days, "StorageClass": tier}]
    else:
        rule["Transitions"] = [{"Days": days, "StorageClass": tier}]
    return rule


def put_rules(s3, bucket, *rules):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})


def storage_class(s3, bucket, key, **kw):
    return s3.head_object(Bucket=bucket, Key=key, **kw).get("StorageClass", "STANDARD")


def body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def put_multipart(s3, bucket, key, parts):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-parts", Metadata={"kind": "mp"},
                                    Tagging="team=archive")
    done = []
    for i, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=i, Body=data)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": done})


@pytest.mark.parametrize("remote", KINDS, indirect=True)
def test_versions_move_to_the_tier_and_stay_readable(node, s3, remote):
    bucket = new_bucket(s3)
    rng = os.urandom
    objects = {
        "cold/empty": b"",
        "cold/inline": rng(1024),
        "cold/five": rng(5 * MiB),
        "cold/big": rng(100 * MiB),
    }
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="text/x-test", Metadata={"origin": key},
                      Tagging="team=archive")  # fmt: skip
    parts = [rng(5 * MiB), rng(5 * MiB), rng(3 * MiB)]
    put_multipart(s3, bucket, "cold/multi", parts)
    objects["cold/multi"] = b"".join(parts)
    s3.put_object(Bucket=bucket, Key="hot/stays", Body=b"hot")
    heads = {k: s3.head_object(Bucket=bucket, Key=k) for k in objects}
    put_rules(s3, bucket, transition_rule(remote.name, "cold/"))

    for key in objects:
        until(lambda: storage_class(s3, bucket, key) == remote.name, what=f"{key} on {remote.name}")
    assert storage_class(s3, bucket, "hot/stays") == "STANDARD"

    # One remote object per version, holding exactly its bytes.
    remote_keys = remote.keys()
    assert sorted(remote_keys.values()) == sorted(len(d) for d in objects.values()), remote_keys
    by_size = {len(d): d for d in objects.values()}
    for rk, size in remote_keys.items():
        if size in (1024, 5 * MiB):
            assert remote.emulator.read(remote.bucket, rk) == by_size[size]

    for key, data in objects.items():
        h = s3.head_object(Bucket=bucket, Key=key)
        for field in ("ETag", "ContentLength", "ContentType", "Metadata", "LastModified"):
            assert h[field] == heads[key][field], (key, field)
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["StorageClass"] == remote.name
        assert got["TagCount"] == 1
        assert hashlib.md5(got["Body"].read()).digest() == hashlib.md5(data).digest(), key
    # Ranges, also across part boundaries, and partNumber reads of the multipart object.
    multi = objects["cold/multi"]
    for start, end in [(0, 0), (5 * MiB - 10, 5 * MiB + 10), (10 * MiB - 1, 13 * MiB - 1), (12345, 12345 + MiB)]:
        assert body(s3, bucket, "cold/multi", Range=f"bytes={start}-{end}") == multi[start : end + 1]
    assert body(s3, bucket, "cold/multi", PartNumber=2) == parts[1]
    assert s3.head_object(Bucket=bucket, Key="cold/multi", PartNumber=3)["ContentLength"] == len(parts[2])
    big = objects["cold/big"]
    assert body(s3, bucket, "cold/big", Range="bytes=-100") == big[-100:]
    # Conditional reads answer from the metadata.
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="cold/five", IfNoneMatch=heads["cold/five"]["ETag"])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304

    # A copy is a new hot version with its own bytes; the source stays on the tier.
    s3.copy_object(Bucket=bucket, Key="copied/five", CopySource={"Bucket": bucket, "Key": "cold/five"})
    assert storage_class(s3, bucket, "copied/five") == "STANDARD"
    assert body(s3, bucket, "copied/five") == objects["cold/five"]
    up = s3.create_multipart_upload(Bucket=bucket, Key="copied/part")
    s3.upload_part_copy(Bucket=bucket, Key="copied/part", UploadId=up["UploadId"], PartNumber=1,
                        CopySource={"Bucket": bucket, "Key": "cold/multi"}, CopySourceRange="bytes=100-5242979")  # fmt: skip
    s3.abort_multipart_upload(Bucket=bucket, Key="copied/part", UploadId=up["UploadId"])

    # Deleting and overwriting remove the remote objects (through the journal).
    s3.delete_object(Bucket=bucket, Key="cold/inline")
    s3.put_object(Bucket=bucket, Key="cold/five", Body=b"overwritten")
    until(lambda: len(remote.keys()) == len(objects) - 2, what="the remote deletes")
    assert sorted(remote.keys().values()) == sorted([0, 13 * MiB, 100 * MiB])

    # The tier is in use: it cannot be removed, neither while rules name it nor while
    # versions live on it.
    out = admin(node, "tier", "rm", remote.name, check=False)
    assert out.returncode != 0 and f"rules of bucket {bucket} transition to tier".encode() in out.stderr, out.stderr
    s3.delete_bucket_lifecycle(Bucket=bucket)
    out = admin(node, "tier", "rm", remote.name, check=False)
    assert out.returncode != 0 and b"still holds versions" in out.stderr, out.stderr
    remove_bucket_if_possible(s3, bucket)
    until(lambda: not remote.keys(), what="every remote object deleted with its bucket's versions")
    admin(node, "tier", "rm", remote.name)


@pytest.mark.parametrize("remote", KINDS, indirect=True)
def test_restore_makes_a_temporary_copy_that_expires(node, s3, remote):
    bucket = new_bucket(s3)
    data = os.urandom(3 * MiB)
    s3.put_object(Bucket=bucket, Key="r/obj", Body=data)
    s3.put_object(Bucket=bucket, Key="hot", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.restore_object(Bucket=bucket, Key="hot", RestoreRequest={"Days": 1})
    assert e.value.response["Error"]["Code"] == "InvalidObjectState"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    put_rules(s3, bucket, transition_rule(remote.name, "r/"))
    until(lambda: storage_class(s3, bucket, "r/obj") == remote.name, what="the transition")
    assert "Restore" not in s3.head_object(Bucket=bucket, Key="r/obj")

    r = s3.restore_object(Bucket=bucket, Key="r/obj", RestoreRequest={"Days": 2, "GlacierJobParameters": {"Tier": "Bulk"}})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
    restored = until(lambda: 'ongoing-request="false"' in s3.head_object(Bucket=bucket, Key="r/obj").get("Restore", ""),
                     what="the restored copy")  # fmt: skip
    assert restored
    h = s3.head_object(Bucket=bucket, Key="r/obj")
    assert re.fullmatch(r'ongoing-request="false", expiry-date="\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT"', h["Restore"]), h["Restore"]
    assert h["StorageClass"] == remote.name, "the version stays on its tier"
    # The restored copy is read locally: it serves even with the tier's bytes gone.
    for rk in remote.keys():
        remote.emulator.delete(remote.bucket, rk)
    assert body(s3, bucket, "r/obj") == data
    # Restoring again extends the copy (200).
    r = s3.restore_object(Bucket=bucket, Key="r/obj", RestoreRequest={"Days": 3})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    # After its days the copy goes; reads need the tier again (whose bytes this test removed).
    until(lambda: "Restore" not in s3.head_object(Bucket=bucket, Key="r/obj"), timeout=30, what="the copy's expiry")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r/obj")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert remote.name in e.value.response["Error"]["Message"]
    remove_bucket_if_possible(s3, bucket)


@pytest.mark.parametrize("remote", KINDS, indirect=True)
def test_noncurrent_versions_transition(node, s3, remote):
    bucket = new_bucket(s3, "Enabled")
    old = s3.put_object(Bucket=bucket, Key="doc", Body=b"first")["VersionId"]
    new = s3.put_object(Bucket=bucket, Key="doc", Body=b"second")["VersionId"]
    put_rules(s3, bucket, transition_rule(remote.name, noncurrent=True))
    until(lambda: storage_class(s3, bucket, "doc", VersionId=old) == remote.name, what="the noncurrent transition")
    explained = admin(node, "lifecycle", "explain", bucket, "doc", "--version-id", old).stdout.decode()
    assert f"data: on tier {remote.name} since" in explained, explained
    time.sleep(2 * DAY)
    assert storage_class(s3, bucket, "doc", VersionId=new) == "STANDARD"
    assert body(s3, bucket, "doc", VersionId=old) == b"first"
    listed = {v["VersionId"]: v["StorageClass"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert listed == {old: remote.name, new: "STANDARD"}
    # A delete marker leaves the tiered version and its remote object in place.
    s3.delete_object(Bucket=bucket, Key="doc")
    time.sleep(1)
    assert len(remote.keys()) == 1
    s3.delete_object(Bucket=bucket, Key="doc", VersionId=old)
    until(lambda: not remote.keys(), what="the remote delete of a deleted version")
    remove_bucket_if_possible(s3, bucket)


def code_of(e):
    return e.value.response["Error"]["Code"]


def test_lifecycle_refuses_unknown_tiers_and_admin_masks_secrets(node, s3, emulators):
    bucket = new_bucket(s3)
    with pytest.raises(ClientError) as e:
        put_rules(s3, bucket, transition_rule("NOSUCHTIER"))
    assert code_of(e) == "InvalidStorageClass"
    r = make_remote("azure-key", emulators)
    # Wrong credentials are refused at add time (the probe fails), and nothing is stored.
    bad = [a if a != r.emulator.key else "d3Jvbmcta2V5" for a in r.add_args]
    out = admin(node, "tier", "add", r.name, *bad, check=False)
    assert out.returncode != 0 and b"does not work" in out.stderr, out.stderr
    assert r.name not in admin(node, "tier", "ls").stdout.decode()
    admin(node, "tier", "add", r.name, *r.add_args)
    listing = admin(node, "tier", "ls", "--json").stdout.decode()
    assert r.emulator.key not in listing and "********" in listing
    assert r.emulator.key not in node.log.read_text()
    admin(node, "tier", "check", r.name)
    # edit rotates credentials: a wrong key makes check fail, the right one makes it pass.
    admin(node, "tier", "edit", r.name, "--key", "d3Jvbmcta2V5")
    assert admin(node, "tier", "check", r.name, check=False).returncode != 0
    admin(node, "tier", "edit", r.name, "--key", r.emulator.key)
    admin(node, "tier", "check", r.name)
    put_rules(s3, bucket, transition_rule(r.name))
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["Transitions"][0]["StorageClass"] == r.name
    metrics = requests.get(node.endpoint + "/metrics").text
    assert f'strata_tier_reachable{{tier="{r.name}"}} 1' in metrics
    remove_bucket_if_possible(s3, bucket)
    admin(node, "tier", "rm", r.name)


def test_tier_down_delays_transitions_deletes_and_reads_only(node, s3, emulators):
    r = make_remote("azure-key", emulators)
    admin(node, "tier", "add", r.name, *r.add_args)
    az = r.emulator
    bucket = new_bucket(s3)
    data = os.urandom(2 * MiB)
    s3.put_object(Bucket=bucket, Key="a", Body=data)
    s3.put_object(Bucket=bucket, Key="b", Body=b"bee")
    az.stop()
    try:
        put_rules(s3, bucket, transition_rule(r.name))
        # The transition fails and is retried; the object stays whole and readable meanwhile.
        explained = until(
            lambda: "failed" in admin(node, "lifecycle", "explain", bucket, "a").stdout.decode(),
            what="the failed transition in explain",
        )
        assert explained
        text = admin(node, "lifecycle", "explain", bucket, "a").stdout.decode()
        assert r.name in text and "next attempt" in text, text
        assert storage_class(s3, bucket, "a") == "STANDARD"
        assert body(s3, bucket, "a") == data
    finally:
        az.start()
    until(lambda: storage_class(s3, bucket, "a") == r.name and storage_class(s3, bucket, "b") == r.name,
          what="the transitions after the tier came back")  # fmt: skip
    assert body(s3, bucket, "a") == data

    az.stop()
    try:
        # Reads fail with a clear 503 naming the tier; HEAD, listing and DELETE do not need it.
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="a")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert r.name in e.value.response["Error"]["Message"]
        assert s3.head_object(Bucket=bucket, Key="a")["ContentLength"] == len(data)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a", "b"]
        started = time.time()
        s3.delete_object(Bucket=bucket, Key="b")
        assert time.time() - started < 2
        info = until(lambda: "pending delete" in (t := admin(node, "tier", "info", r.name).stdout.decode()) and t,
                     what="the pending remote delete")  # fmt: skip
        assert f"({bucket}/b)" in info, info
    finally:
        az.start()
    until(lambda: len(r.keys()) == 1, what="the journal drained after the tier came back")
    assert body(s3, bucket, "a") == data
    remove_bucket_if_possible(s3, bucket)
    until(lambda: not r.keys(), what="the last remote delete")
    # The orphans of the failed attempts wait out their grace before the tier can go.
    until(lambda: admin(node, "tier", "rm", r.name, check=False).returncode == 0, what="tier rm")


def test_drain_brings_versions_back_then_rm_works(node, s3, emulators):
    r = make_remote("gcs-fake", emulators)
    admin(node, "tier", "add", r.name, *r.add_args)
    bucket = new_bucket(s3)
    datas = {f"k{i}": os.urandom(i * 700_000) for i in range(4)}
    for k, d in datas.items():
        s3.put_object(Bucket=bucket, Key=k, Body=d)
    put_multipart(s3, bucket, "mp", [os.urandom(5 * MiB), os.urandom(MiB)])
    put_rules(s3, bucket, transition_rule(r.name))
    for k in [*datas, "mp"]:
        until(lambda: storage_class(s3, bucket, k) == r.name, what="the transitions")
    etag = s3.head_object(Bucket=bucket, Key="mp")["ETag"]
    out = admin(node, "tier", "drain", r.name)
    assert "5 of 5 versions recalled, 0 failed" in out.stdout.decode(), out.stdout
    # The rule still names the tier, but a drained tier takes no new versions.
    time.sleep(3 * DAY)
    for k, d in datas.items():
        assert storage_class(s3, bucket, k) == "STANDARD"
        assert body(s3, bucket, k) == d
    assert s3.head_object(Bucket=bucket, Key="mp")["ETag"] == etag
    until(lambda: not r.keys(), what="the recalled versions' remote objects deleted")
    assert admin(node, "tier", "rm", r.name, check=False).returncode != 0, "rules still name it"
    s3.delete_bucket_lifecycle(Bucket=bucket)
    admin(node, "tier", "rm", r.name)
    assert r.name not in admin(node, "tier", "ls").stdout.decode()
    remove_bucket_if_possible(s3, bucket)


def test_kill_9_mid_transition_leaves_every_version_readable_and_no_orphan(tmp_path, emulators):
    # moto, whose unfinished multipart uploads are no objects, as on S3. (fake-gcs-server may
    # finalise a resumable upload cut off mid-chunk, after the orphan's delete has run, which
    # real GCS never does.)
    r = make_remote("s3", emulators)
    node = Strata(tmp_path / "data", env={"STRATA_LIFECYCLE_DAY_SECONDS": str(DAY)}).start()
    try:
        admin(node, "tier", "add", r.name, *r.add_args)
        s3 = node.client()
        bucket = new_bucket(s3)
        datas = {f"o{i}": os.urandom(40 * MiB) for i in range(3)}
        for k, d in datas.items():
            s3.put_object(Bucket=bucket, Key=k, Body=d)
        put_rules(s3, bucket, transition_rule(r.name))
        # Kill as soon as the first upload reached the tier (an upload in flight or a commit
        # just done).
        until(lambda: r.keys(), what="an upload to start")
        node.kill9()
        node.start()
        s3 = node.client()
        for k, d in datas.items():
            assert body(s3, bucket, k) == d
        for k in datas:
            until(lambda: storage_class(s3, bucket, k) == r.name, what="the transitions after the restart")
        # Every remote object belongs to a version: the orphans of the cut-off uploads are gone.
        until(lambda: len(r.keys()) == len(datas), what=f"the orphans deleted ({r.keys()})", timeout=90)
        for k, d in datas.items():
            assert body(s3, bucket, k) == d
    finally:
        node.stop()


def test_tier_stopped_mid_transition_loses_nothing(node, s3, tmp_path):
    from emulators import Moto

    moto = Moto(tmp_path / "moto").start()
    try:
        remote_bucket = "mid-" + uuid.uuid4().hex[:8]
        moto.create_bucket(remote_bucket)
        name = "MID-" + uuid.uuid4().hex[:6].upper()
        admin(node, "tier", "add", name, "--kind", "s3", "--endpoint", moto.endpoint, "--bucket", remote_bucket,
              "--access-key", "testing", "--secret-key", "testing", "--path-style")  # fmt: skip
        bucket = new_bucket(s3)
        data = os.urandom(120 * MiB)
        s3.put_object(Bucket=bucket, Key="big", Body=data)
        put_rules(s3, bucket, transition_rule(name))
        # Cut the tier off while the upload is under way (its multipart upload has parts).
        mc = moto.client()
        until(lambda: mc.list_multipart_uploads(Bucket=remote_bucket).get("Uploads"), what="the upload to start")
        moto.stop()
        time.sleep(2)
        assert storage_class(s3, bucket, "big") == "STANDARD"
        assert hashlib.md5(body(s3, bucket, "big")).digest() == hashlib.md5(data).digest()
        # moto keeps nothing across a restart: the tier's bucket is made again, empty.
        moto.start()
        moto.create_bucket(remote_bucket)
        until(lambda: storage_class(s3, bucket, "big") == name, timeout=90, what="the transition after the tier came back")
        assert list(moto.keys(remote_bucket).values()) == [len(data)]
        assert hashlib.md5(body(s3, bucket, "big")).digest() == hashlib.md5(data).digest()
        remove_bucket_if_possible(s3, bucket)
        until(lambda: not moto.keys(remote_bucket), what="the remote delete")
        until(lambda: admin(node, "tier", "rm", name, check=False).returncode == 0, what="tier rm")
    finally:
        moto.stop()


@pytest.mark.parametrize("remote", ["s3"], indirect=True)
def test_minimum_object_size_header_keeps_small_objects_hot(node, s3, remote):
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="small", Body=os.urandom(1024))
    s3.put_object(Bucket=bucket, Key="large", Body=os.urandom(200 * 1024))
    r = s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [transition_rule(remote.name)]},
        TransitionDefaultMinimumObjectSize="all_storage_classes_128K",
    )  # fmt: skip
    assert r["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    until(lambda: storage_class(s3, bucket, "large") == remote.name, what="the large object's transition")
    time.sleep(2 * DAY)
    assert storage_class(s3, bucket, "small") == "STANDARD"
    # Without the header (Strata's default, varies_by_storage_class) small objects move too.
    r = s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [transition_rule(remote.name)]})
    assert r["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    until(lambda: storage_class(s3, bucket, "small") == remote.name, what="the small object's transition")
    remove_bucket_if_possible(s3, bucket)
