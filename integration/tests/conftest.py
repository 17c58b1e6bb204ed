"""One harness for every integration test: starts real `strata` processes on free ports with
their own data directories, always stops them, and hands out real clients (boto3, aws CLI)."""

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.path.abspath(os.environ.get("STRATA_BIN") or str(ROOT / "target" / "release" / "strata"))
USER = "testadmin"
PASSWORD = "testadmin-secret-key"
AWS = str(pathlib.Path(sys.executable).parent / "aws")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(endpoint, timeout=30, proc=None):
    """Waits until `endpoint` answers /health/ready with 200; fails early if `proc` exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"strata exited with {proc.returncode}")
        try:
            if requests.get(endpoint + "/health/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError("strata did not become ready")


class Strata:
    """A `strata server` process on 127.0.0.1 with `drives` drive directories under `data`."""

    def __init__(self, data, drives=4, user=USER, password=PASSWORD, env=None):
        self.extra_env = dict(env or {})
        self.data = pathlib.Path(data)
        self.drives = drives
        self.user, self.password = user, password
        self.port = None  # chosen by the server on its first start, kept for restarts
        self.proc = None
        self.log = self.data.parent / f"{self.data.name}-server.log"

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def drive_dir(self, i):
        """Drive directory number i (1-based), as `--data` lays them out."""
        return self.data / f"drive{i}"

    def env(self):
        env = dict(os.environ, STRATA_ROOT_USER=self.user, STRATA_ROOT_PASSWORD=self.password, **self.extra_env)
        env.pop("AWS_CA_BUNDLE", None)
        return env

    def start(self, timeout=30):
        log = open(self.log, "ab")
        offset = log.tell()
        self.proc = subprocess.Popen(
            [BIN, "server", "--address", f"127.0.0.1:{self.port or 0}", "--data", str(self.data), "--drives", str(self.drives)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
        )
        try:
            if self.port is None:
                # Port 0: the kernel picks a free port, so no other process can take it
                # between choosing and binding; the server prints the one it got.
                self.port = self._announced_port(offset, timeout)
            wait_ready(self.endpoint, timeout, self.proc)
        except RuntimeError as e:
            raise RuntimeError(f"{e}: {self.log.read_text()[-2000:]}") from None
        return self

    def _announced_port(self, offset, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log, "rb") as f:
                f.seek(offset)
                found = re.search(rb"Strata S3 endpoint: http://127\.0\.0\.1:(\d+)", f.read())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"strata exited with {self.proc.returncode}")
            time.sleep(0.02)
        raise RuntimeError("strata did not announce its endpoint")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def client(self, user=None, password=None, **config):
        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=user or self.user,
            aws_secret_access_key=password or self.password,
            config=cfg,
        )

    def aws(self, *args, check=True, input=None):
        env = dict(self.env(), AWS_ACCESS_KEY_ID=self.user, AWS_SECRET_ACCESS_KEY=self.password, AWS_DEFAULT_REGION="us-east-1")
        out = subprocess.run([AWS, "--endpoint-url", self.endpoint, *args], env=env, capture_output=True, input=input)
        if check and out.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {out.stderr.decode()}")
        return out

    def admin(self, *args):
        out = subprocess.run([BIN, "admin", "--endpoint", self.endpoint, *args], env=self.env(), capture_output=True, timeout=300)
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout.decode()


def remove_bucket_if_possible(s3, name):
    """Empties and removes a bucket a test may have left behind; locked versions keep it."""
    try:
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass


def empty_bucket(s3, name):
    """Deletes every version and delete marker (bypassing GOVERNANCE retention) and aborts uploads;
    versions that stay locked (COMPLIANCE, legal hold) are skipped without error. An unversioned
    bucket's objects are its `null` versions, so this empties any bucket."""
    entries = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            entries.append({"Key": v["Key"], "VersionId": v["VersionId"]})
    for i in range(0, len(entries), 1000):
        s3.delete_objects(Bucket=name, Delete={"Objects": entries[i:i + 1000], "Quiet": True}, BypassGovernanceRetention=True)
    for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("shared") / "data").start()
    yield s
    s.stop()


@pytest.fixture
def s3(server):
    return server.client()


@pytest.fixture
def bucket(s3):
    name = "t-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name)
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def versioned_bucket(s3):
    name = "v-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    empty_bucket(s3, name)
    try:
        s3.delete_bucket(Bucket=name)
    except ClientError as e:
        if e.response["Error"]["Code"] != "BucketNotEmpty":  # COMPLIANCE-locked versions stay
            raise


@pytest.fixture
def lock_bucket(s3):
    """An object-lock bucket. COMPLIANCE-locked versions keep it alive: it is then left behind on purpose."""
    name = "lock-" + uuid.uuid4().hex[:20]
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    remove_bucket_if_possible(s3, name)


@pytest.fixture
def own_server(tmp_path):
    """A server of the test's own, for tests that damage drives or kill the process."""
    s = Strata(tmp_path / "data").start()
    yield s
    s.stop()
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


def error_code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def status(exc_info):
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]
