"""Network partitions: 4 nodes, each in its own network namespace. The nodes talk over veth
pairs joined by a bridge (the cluster network); the test reaches each node over a second veth
pair of its own (the client network), so cutting a node's cluster link leaves it reachable to
clients: the minority side of the partition is still asked, and must refuse."""

import os
import subprocess
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from cluster import Cluster
from test_cluster import INLINE_LIMIT, data_dirs, md5, wait_for

SUBNET = "10.231.0"  # the cluster network; client links are 10.232.N.0/30


def sh(*cmd, ns=None):
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    subprocess.run(full, check=True, capture_output=True)


class NetnsCluster(Cluster):
    """A cluster whose node N listens on SUBNET.N:9000 inside namespace PREFIXnN."""

    def __init__(self, root, nodes=4):
        self.prefix = "st" + uuid.uuid4().hex[:4]
        super().__init__(root, nodes=nodes, hosts=[f"{SUBNET}.{i + 1}" for i in range(nodes)])
        self.bridge = f"{self.prefix}br"

    def ns(self, node):
        return f"{self.prefix}n{node.number}"

    def cluster_link(self, node):
        return f"{self.prefix}c{node.number}"

    def wrap(self, node, cmd):
        return ["ip", "netns", "exec", self.ns(node), *cmd]

    def build_network(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "link", "set", self.bridge, "up")
        for n in self.nodes:
            ns, i = self.ns(n), n.number
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            # Cluster network: the node's eth0 on the bridge.
            sh("ip", "link", "add", self.cluster_link(n), "type", "veth", "peer", "name", f"{self.prefix}e{i}")
            sh("ip", "link", "set", f"{self.prefix}e{i}", "netns", ns)
            sh("ip", "link", "set", f"{self.prefix}e{i}", "name", "eth0", ns=ns)
            sh("ip", "addr", "add", f"{SUBNET}.{i}/24", "dev", "eth0", ns=ns)
            sh("ip", "link", "set", "eth0", "up", ns=ns)
            sh("ip", "link", "set", self.cluster_link(n), "master", self.bridge)
            sh("ip", "link", "set", self.cluster_link(n), "up")
            # Client network: a point-to-point link from here, and a route to the node's address.
            sh("ip", "link", "add", f"{self.prefix}h{i}", "type", "veth", "peer", "name", f"{self.prefix}k{i}")
            sh("ip", "link", "set", f"{self.prefix}k{i}", "netns", ns)
            sh("ip", "link", "set", f"{self.prefix}k{i}", "name", "eth1", ns=ns)
            sh("ip", "addr", "add", f"10.232.{i}.2/30", "dev", "eth1", ns=ns)
            sh("ip", "link", "set", "eth1", "up", ns=ns)
            sh("ip", "addr", "add", f"10.232.{i}.1/30", "dev", f"{self.prefix}h{i}")
            sh("ip", "link", "set", f"{self.prefix}h{i}", "up")
            sh("ip", "route", "add", f"{SUBNET}.{i}/32", "via", f"10.232.{i}.2", "dev", f"{self.prefix}h{i}")

    def tear_down_network(self):
        for n in self.nodes:
            subprocess.run(["ip", "netns", "del", self.ns(n)], capture_output=True)
            subprocess.run(["ip", "link", "del", f"{self.prefix}h{n.number}"], capture_output=True)
            subprocess.run(["ip", "link", "del", self.cluster_link(n)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def cut(self, node):
        sh("ip", "link", "set", self.cluster_link(node), "down")

    def mend(self, node):
        sh("ip", "link", "set", self.cluster_link(node), "up")


@pytest.fixture
def netns_cluster(tmp_path):
    assert os.geteuid() == 0, "partition tests need root for network namespaces"
    c = NetnsCluster(tmp_path)
    try:
        c.build_network()
        c.start()
        yield c
    finally:
        c.stop()
        c.tear_down_network()


def test_a_partitioned_minority_refuses_writes_the_majority_goes_on_and_all_agree_after(netns_cluster):
    c = netns_cluster
    n1, n2, n3, n4 = c.nodes
    bucket = "part-" + uuid.uuid4().hex[:12]
    n1.client().create_bucket(Bucket=bucket)
    before = {f"before/{i}": os.urandom((1000, 300_000)[i % 2]) for i in range(6)}
    for k, b in before.items():
        n2.client().put_object(Bucket=bucket, Key=k, Body=b)

    c.cut(n1)
    # The minority (node 1 alone) learns within seconds that it lost its peers, and refuses
    # writes quickly and cleanly while clients can still reach it.
    wait_for(lambda: n1.status("/health/cluster") == 503, 15, "node 1 to see the partition")
    started = time.time()
    with pytest.raises(ClientError) as e:
        n1.client().put_object(Bucket=bucket, Key="minority", Body=os.urandom(500_000))
    assert time.time() - started < 5
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    with pytest.raises(ClientError) as e:
        n1.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    # The majority goes on: writes, overwrites, deletes and configuration changes.
    wait_for(lambda: n2.status("/health/cluster") == 200, 15, "the majority to settle")
    during = {}
    for i in range(12):
        node = (n2, n3, n4)[i % 3]
        key = f"during/{i}"
        during[key] = os.urandom((2000, 400_000, 1 << 20)[i % 3])
        node.client().put_object(Bucket=bucket, Key=key, Body=during[key])
    n3.client().delete_object(Bucket=bucket, Key="before/0")
    del before["before/0"]
    n4.client().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "side", "Value": "majority"}]})
    for node in (n2, n3, n4):
        assert node.client().get_object(Bucket=bucket, Key="during/1")["Body"].read() == during["during/1"]

    c.mend(n1)
    wait_for(lambda: all(n.status("/health/cluster") == 200 for n in c.nodes), 30, "the partition to heal")
    # After the link returns every node agrees, and nothing acknowledged was lost.
    expected = {**before, **during}
    for node in c.nodes:
        s3 = node.client()
        keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])]
        assert keys == sorted(expected), node.number
        for k, b in expected.items():
            assert md5(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) == md5(b), (k, node.number)
        assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "side", "Value": "majority"}]
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=bucket, Key="minority")
        assert e.value.response["Error"]["Code"] == "404"
    # Node 1's drives missed the majority's writes; a heal gives them their shards.
    n2.admin("heal")
    with_shards = sum(1 for b in expected.values() if len(b) > INLINE_LIMIT)
    assert {d: len(v) for d, v in data_dirs(c).items()} == {(n, d): with_shards for n in range(1, 5) for d in (1, 2)}
