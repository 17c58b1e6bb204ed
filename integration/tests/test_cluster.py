"""A 4-node cluster (4 `strata` processes x 2 drives: one erasure set of 8, 4 data + 4 parity,
write quorum 5) on 127.0.0.1, driven with boto3 through different nodes."""

import hashlib
import json
import os
import threading
import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, ReadTimeoutError

from cluster import Cluster


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def md5(b):
    return hashlib.md5(b).hexdigest()


def new_bucket(node, versioned=False):
    name = "c-" + uuid.uuid4().hex[:16]
    s3 = node.client()
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


# Objects up to this size live inline in their metadata records (storage::layout::INLINE_LIMIT).
INLINE_LIMIT = 128 * 1024


def data_dirs(cluster):
    """The data directories (one per stored version with shards) on every drive."""
    return {drive: {p.split("/")[0] for p in files} for drive, files in cluster.shard_files().items()}


def wait_for(check, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_read_and_list_after_write_across_nodes(cluster):
    n1, n2, n3, n4 = cluster.nodes
    bucket = new_bucket(n1)
    bodies = {}
    for i, node in enumerate(cluster.nodes):
        for size in (0, 1000, 300_000, 3 << 20):
            key = f"from-{i + 1}/{size}"
            bodies[key] = os.urandom(size)
            node.client().put_object(Bucket=bucket, Key=key, Body=bodies[key])
            # Read right after the write, through every other node.
            for other in cluster.nodes:
                if other is not node:
                    got = other.client().get_object(Bucket=bucket, Key=key)["Body"].read()
                    assert got == bodies[key], (key, other.number)
    # A multipart upload started on one node, parts sent through two others, completed on a fourth.
    parts = [os.urandom(5 << 20), os.urandom(1 << 20)]
    up = n1.client().create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etags = [n2.client().upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=parts[0])["ETag"],
             n3.client().upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=parts[1])["ETag"]]
    n4.client().complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    bodies["mp"] = b"".join(parts)
    assert n1.client().get_object(Bucket=bucket, Key="mp")["Body"].read() == bodies["mp"]
    ranged = n2.client().get_object(Bucket=bucket, Key="mp", Range="bytes=5242000-5243000")["Body"].read()
    assert ranged == bodies["mp"][5242000:5243001]
    # Every node lists the same keys, sizes and ETags.
    listings = []
    for node in cluster.nodes:
        pages = node.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 5})
        listings.append([(o["Key"], o["Size"], o["ETag"]) for p in pages for o in p.get("Contents", [])])
    assert [k for k, _, _ in listings[0]] == sorted(bodies)
    assert all(listing == listings[0] for listing in listings)
    # A delete through one node is seen through the others at once.
    n3.client().delete_object(Bucket=bucket, Key="from-1/1000")
    for node in cluster.nodes:
        with pytest.raises(ClientError) as e:
            node.client().head_object(Bucket=bucket, Key="from-1/1000")
        assert e.value.response["Error"]["Code"] == "404"


def test_bucket_configuration_is_visible_on_every_node_at_once(cluster):
    n1, n2, n3, n4 = cluster.nodes
    bucket = "conf-" + uuid.uuid4().hex[:12]
    n1.client().create_bucket(Bucket=bucket)
    for node in cluster.nodes:
        node.client().head_bucket(Bucket=bucket)
        assert bucket in [b["Name"] for b in node.client().list_buckets()["Buckets"]]
    # Each node caches bucket records: a change through one node reaches the others' caches
    # before the change is answered.
    for node in cluster.nodes:
        node.client().get_bucket_versioning(Bucket=bucket)
    n2.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for node in cluster.nodes:
        assert node.client().get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled", node.number
    n3.client().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "x"}]})
    for node in cluster.nodes:
        assert node.client().get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "x"}]
    lifecycle = {"Rules": [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 3}}]}
    n4.client().put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle)
    for node in cluster.nodes:
        assert node.client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["ID"] == "r"
    # Versioning on through node 2 means a second PUT through node 1 keeps two versions.
    n1.client().put_object(Bucket=bucket, Key="k", Body=b"1")
    n1.client().put_object(Bucket=bucket, Key="k", Body=b"2")
    assert len(n3.client().list_object_versions(Bucket=bucket)["Versions"]) == 2
    # Concurrent configuration changes through different nodes are all kept (each change
    # reads, changes and writes back the bucket record under the bucket's cluster-wide lock).
    failures = []

    def change(call):
        try:
            call()
        except ClientError as e:
            failures.append(e)

    new_rules = {"Rules": [{"ID": "r2", "Status": "Enabled", "Filter": {"Prefix": "x/"}, "Expiration": {"Days": 9}}]}
    for _ in range(5):
        threads = [
            threading.Thread(target=change, args=(lambda: n1.client().put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration=new_rules),)),
            threading.Thread(target=change, args=(lambda: n2.client().put_bucket_tagging(
                Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "y"}]}),)),
            threading.Thread(target=change, args=(lambda: n3.client().put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}),)),
        ]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert not failures, failures
    for node in cluster.nodes:
        s3 = node.client()
        assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["ID"] == "r2"
        assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "y"}]
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # A bucket deleted through one node is gone on all.
    for v in n1.client().list_object_versions(Bucket=bucket)["Versions"]:
        n1.client().delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    n4.client().delete_bucket(Bucket=bucket)
    for node in cluster.nodes:
        with pytest.raises(ClientError) as e:
            node.client().head_bucket(Bucket=bucket)
        assert e.value.response["Error"]["Code"] == "404"


def test_concurrent_writers_of_one_key_through_two_nodes_leave_one_whole_object(cluster):
    n1, n2, n3, _ = cluster.nodes
    bucket = new_bucket(n1, versioned=True)
    written = {}
    errors = []

    def writer(node, tag):
        s3 = node.client()
        for i in range(15):
            body = (f"{tag}-{i}-".encode() * 40000)[: 700_000 + i]
            try:
                vid = s3.put_object(Bucket=bucket, Key="contended", Body=body)["VersionId"]
                written[vid] = md5(body)
            except ClientError as e:
                errors.append(e)

    threads = [threading.Thread(target=writer, args=(n, t)) for n, t in ((n1, "a"), (n2, "b"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    versions = n3.client().list_object_versions(Bucket=bucket, Prefix="contended")["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted(written)
    for v in versions:
        body = n3.client().get_object(Bucket=bucket, Key="contended", VersionId=v["VersionId"])["Body"].read()
        assert md5(body) == written[v["VersionId"]] == v["ETag"].strip('"')
    # Exactly one version is current, and the current object is one writer's whole body.
    assert sum(v["IsLatest"] for v in versions) == 1
    latest = next(v for v in versions if v["IsLatest"])
    current = n1.client().get_object(Bucket=bucket, Key="contended")
    assert current["VersionId"] == latest["VersionId"]
    assert md5(current["Body"].read()) == written[latest["VersionId"]]


def test_kill9_of_a_node_during_writes_loses_no_acknowledged_object_then_it_heals(cluster):
    n1, n2, n3, n4 = cluster.nodes
    bucket = new_bucket(n1)
    acknowledged = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(node, tag):
        s3 = node.client(read_timeout=20)
        i = 0
        while not stop.is_set():
            size = (1000, 200_000, 2 << 20)[i % 3]
            key = f"{tag}/{i}"
            body = os.urandom(size)
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                with lock:
                    acknowledged[key] = md5(body)
            except (ClientError, BotoConnectionError, ReadTimeoutError):
                pass  # not acknowledged: may or may not exist
            i += 1

    threads = [threading.Thread(target=writer, args=(n, f"w{n.number}")) for n in (n1, n2, n3, n4)]
    [t.start() for t in threads]
    time.sleep(1.5)
    n3.kill9()
    time.sleep(2.5)
    stop.set()
    [t.join() for t in threads]
    with lock:
        after_kill = dict(acknowledged)
    assert len(after_kill) > 20
    for node in (n1, n2, n4):
        s3 = node.client()
        for key, digest in after_kill.items():
            assert md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == digest, (key, node.number)
    # Writes go on with one node down.
    n1.client().put_object(Bucket=bucket, Key="while-down", Body=os.urandom(1 << 20))
    # The node comes back and is healed: every drive holds a shard of every object too big
    # to live inline in its record (a healed copy gets a directory of its own name).
    n3.start().wait_ready()
    n1.admin("heal")
    listed = [o for p in n1.client().get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p["Contents"]]
    with_shards = sum(1 for o in listed if o["Size"] > INLINE_LIMIT)
    assert with_shards > 10
    assert {drive: len(present) for drive, present in data_dirs(cluster).items()} == {
        (n, d): with_shards for n in range(1, 5) for d in (1, 2)}
    for key, digest in list(after_kill.items())[::7]:
        assert md5(n3.client().get_object(Bucket=bucket, Key=key)["Body"].read()) == digest


def test_two_nodes_down_reads_go_on_and_writes_are_refused_quickly(cluster):
    n1, n2, n3, n4 = cluster.nodes
    bucket = new_bucket(n1)
    body = os.urandom(3 << 20)
    n1.client().put_object(Bucket=bucket, Key="kept", Body=body)
    n2.client().put_object(Bucket=bucket, Key="overwritten", Body=b"old")
    n3.kill9()
    n4.kill9()
    for node in (n1, n2):
        assert node.client().get_object(Bucket=bucket, Key="kept")["Body"].read() == body
        assert [o["Key"] for o in node.client().list_objects_v2(Bucket=bucket)["Contents"]] == ["kept", "overwritten"]
    wait_for(lambda: n1.status("/health/cluster") == 503 and n2.status("/health/ready") == 503, 10,
             "health to report the lost write quorum")
    for node in (n1, n2):
        started = time.time()
        with pytest.raises(ClientError) as e:
            node.client().put_object(Bucket=bucket, Key="overwritten", Body=os.urandom(1 << 20))
        assert time.time() - started < 5
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert e.value.response["Error"]["Code"] == "SlowDown"
        assert "unwritable" in e.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as e:
            node.client().create_bucket(Bucket="c-" + uuid.uuid4().hex[:12])
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # No torn object: the refused overwrite left the old one.
    assert n2.client().get_object(Bucket=bucket, Key="overwritten")["Body"].read() == b"old"
    n3.start()
    n4.start()
    n3.wait_ready()
    n4.wait_ready()
    n1.client().put_object(Bucket=bucket, Key="overwritten", Body=b"new")
    assert n4.client().get_object(Bucket=bucket, Key="overwritten")["Body"].read() == b"new"


def test_a_wiped_drive_on_a_live_node_is_formatted_and_healed(cluster):
    n1, n2, _, _ = cluster.nodes
    bucket = new_bucket(n1)
    bodies = {f"k{i}": os.urandom(400_000) for i in range(6)}
    for k, b in bodies.items():
        n1.client().put_object(Bucket=bucket, Key=k, Body=b)
    before = data_dirs(cluster)[(2, 1)]
    assert len(before) == len(bodies)
    cluster.wipe_drive(2, 1)
    # The node's drive check (every 5 s) finds the lost format, re-creates the drive and heals it.
    wait_for(lambda: len(data_dirs(cluster)[(2, 1)]) == len(bodies), 60, "the wiped drive to be healed")
    assert (n2.drive_dir(1) / ".strata" / "format.json").exists()
    for k, b in bodies.items():
        assert n2.client().get_object(Bucket=bucket, Key=k)["Body"].read() == b


def test_a_node_with_another_secret_or_topology_is_refused_with_the_difference(cluster):
    n1, _, _, n4 = cluster.nodes
    n4.stop()
    n4.start(env={"STRATA_CLUSTER_SECRET": "another-secret-value"})
    wait_for(lambda: "different cluster secrets" in n4.log.read_text(), 20, "the refusal of the other secret")
    assert n4.status("/health/ready") == 503
    n4.stop()
    # The same nodes with other drive paths on the last one: another topology.
    n4.start(args=[a.replace("/d{1...2}", "/e{1...2}") if i == 3 else a for i, a in enumerate(cluster.args())])
    wait_for(lambda: "another topology" in n4.log.read_text(), 20, "the refusal of the other topology")
    assert n4.status("/health/ready") == 503
    n4.stop()
    n4.start().wait_ready()
    # Node 1 probes its peers once a second: it sees node 4 back within that.
    wait_for(lambda: [n["online"] for n in json.loads(n1.admin("info"))["nodes"]] == [True] * 4, 10,
             "node 1 to see node 4 again")
    info = json.loads(n1.admin("info"))
    assert len(info["drives"]) == 8 and all(d["online"] for d in info["drives"])
    metrics = requests.get(n1.endpoint + "/metrics", timeout=5).text
    assert f'strata_peer_online{{peer="{n4.address}"}} 1' in metrics
    assert "strata_peer_rpc_calls_total" in metrics


def roles(node):
    return {n["node"]: n.get("raft_role") for n in json.loads(node.admin("info"))["nodes"]}


def test_the_control_plane_elects_a_new_leader_when_its_leader_dies(cluster):
    n1 = cluster.nodes[0]
    # Node 1 sees its peers' roles as of their last probe (once a second): a node that has not
    # heard of the group yet reports itself a learner until it does.
    wait_for(lambda: sorted(roles(n1).values()) == ["follower"] * 3 + ["leader"], 15,
             "one leader and three followers")
    first = roles(n1)
    leader = next(n for n in cluster.nodes if first[n.address] == "leader")
    others = [n for n in cluster.nodes if n is not leader]
    bucket = new_bucket(others[0])
    leader.kill9()
    # The others elect a leader among themselves; configuration changes go on through any of
    # them (a change asked for during the election waits for it, within seconds).
    started = time.time()
    others[1].client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert time.time() - started < 15
    for node in others:
        assert node.client().get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # Each node's own view of itself: exactly one of the three leads.
    wait_for(lambda: [roles(n)[n.address] for n in others].count("leader") == 1, 15, "one new leader")
    assert roles(others[0])[leader.address] is None, "a node that does not answer has no known role"
    # The old leader comes back as a follower with the change it missed.
    leader.start().wait_ready()
    wait_for(lambda: roles(leader)[leader.address] == "follower", 15, "the old leader to follow")
    assert leader.client().get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
