"""A multi-node Strata deployment for tests: `nodes` `strata server` processes, each with its
own drives, started with the same MinIO-style topology arguments and cluster secret."""

import os
import pathlib
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import requests
from botocore.config import Config

import random
import socket

from conftest import BIN, PASSWORD, USER

SECRET = "test-cluster-secret"


def cluster_port():
    """A free port below Linux's ephemeral range (32768+): a node restarted on its port must
    not find it taken by some outgoing connection meanwhile, as a kernel-chosen port can be."""
    while True:
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


class Node:
    """One `strata server` of a cluster, reachable at `host:port`."""

    def __init__(self, cluster, number, host, port):
        self.cluster, self.number, self.host, self.port = cluster, number, host, port
        self.proc = None
        self.log = cluster.root / f"node{number}.log"

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def endpoint(self):
        return f"http://{self.address}"

    def drive_dir(self, d):
        """This node's drive number d (1-based)."""
        return self.cluster.root / f"n{self.number}" / f"d{d}"

    def start(self, env=None, args=None):
        log = open(self.log, "ab")
        cmd = [BIN, "server", "--address", self.address, *(args or self.cluster.args())]
        cmd = self.cluster.wrap(self, cmd)
        environment = dict(os.environ, STRATA_ROOT_USER=USER, STRATA_ROOT_PASSWORD=PASSWORD,
                           STRATA_CLUSTER_SECRET=SECRET)
        environment.update(self.cluster.env)
        environment.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=environment)
        return self

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"node {self.number} exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            if self.status("/health/ready") == 200:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"node {self.number} did not become ready: {self.log.read_text()[-3000:]}")

    def status(self, path):
        try:
            return requests.get(self.endpoint + path, timeout=2).status_code
        except requests.RequestException:
            return None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, **config):
        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                     connect_timeout=5, read_timeout=config.pop("read_timeout", 30), **config)
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=USER, aws_secret_access_key=PASSWORD, config=cfg)

    def admin(self, *args):
        env = dict(os.environ, STRATA_ROOT_USER=USER, STRATA_ROOT_PASSWORD=PASSWORD)
        out = subprocess.run([BIN, "admin", "--endpoint", self.endpoint, *args], env=env,
                             capture_output=True, timeout=300)
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout.decode()


class Cluster:
    """`nodes` nodes x `drives` drives on 127.0.0.1 (or on the hosts `hosts` gives)."""

    def __init__(self, root, nodes=4, drives=2, hosts=None, env=None):
        self.root = pathlib.Path(root)
        self.drives = drives
        self.env = dict(env or {})
        hosts = hosts or ["127.0.0.1"] * nodes
        self.nodes = [Node(self, i + 1, hosts[i], 9000 if hosts[i] != "127.0.0.1" else cluster_port())
                      for i in range(nodes)]

    def args(self):
        """The topology: one argument per node, `http://HOST:PORT/ROOT/nN/d{1...D}`."""
        return [f"http://{n.address}{self.root}/n{n.number}/d{{1...{self.drives}}}" for n in self.nodes]

    def wrap(self, node, cmd):
        """How a node's command runs (network namespaces wrap it in `ip netns exec`)."""
        return cmd

    def start(self, timeout=60):
        for n in self.nodes:
            n.start()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.wait_ready(timeout), self.nodes))
        return self

    def stop(self):
        for n in self.nodes:
            n.stop()

    def shard_files(self):
        """Every committed shard file on every drive of every node, by node and drive."""
        out = {}
        for n in self.nodes:
            for d in range(1, self.drives + 1):
                data = n.drive_dir(d) / "data"
                out[(n.number, d)] = sorted(p.parent.name + "/" + p.name for p in data.rglob("part.*")) if data.exists() else []
        return out

    def wipe_drive(self, node, d):
        """Removes everything on one drive (a replaced disk), keeping its mount point."""
        path = self.nodes[node - 1].drive_dir(d)
        for child in path.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
