"""More real S3 clients (s3cmd, minio-py, rclone), one scenario each: make a bucket, upload a
multipart file and a key with a space and unicode, list, download, delete, remove the bucket."""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import error_code, remove_bucket_if_possible

MiB = 1024 * 1024
PART = 5 * MiB  # every client is told to use 5 MiB parts: 17 MiB -> 4 parts
BIG_KEY = "big.bin"
SMALL_KEY = "dir/hello wörld.txt"
VENV_BIN = pathlib.Path(sys.executable).parent


def run(cmd, env, timeout=300):
    out = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stderr.decode(errors='replace')}"
    return out.stdout.decode()


def client_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env["LANG"] = "C.UTF-8"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class S3cmd:
    name = "s3cmd"

    def __init__(self, server, tmp):
        self.cfg = tmp / "s3cfg"
        host = f"127.0.0.1:{server.port}"
        self.cfg.write_text(
            "[default]\n"
            f"access_key = {server.user}\n"
            f"secret_key = {server.password}\n"
            f"host_base = {host}\n"
            f"host_bucket = {host}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            "bucket_location = us-east-1\n"
            "multipart_chunk_size_mb = 5\n"
            "progress_meter = False\n"
        )
        self.env = dict(client_env(), HOME=str(tmp))

    def s3cmd(self, *args):
        return run([VENV_BIN / "s3cmd", "-c", str(self.cfg), *args], self.env)

    def mb(self, bucket):
        self.s3cmd("mb", f"s3://{bucket}")

    def put(self, bucket, key, path):
        self.s3cmd("put", str(path), f"s3://{bucket}/{key}")

    def ls(self, bucket):
        found = {}
        prefix = f"s3://{bucket}/"
        for line in self.s3cmd("ls", "-r", f"s3://{bucket}").splitlines():
            _date, _time, size, uri = line.split(None, 3)
            assert uri.startswith(prefix), line
            found[uri[len(prefix):]] = int(size)
        return found

    def get(self, bucket, key, path):
        self.s3cmd("get", f"s3://{bucket}/{key}", str(path))

    def rm(self, bucket, key):
        self.s3cmd("del", f"s3://{bucket}/{key}")

    def rb(self, bucket):
        self.s3cmd("rb", f"s3://{bucket}")


class MinioPy:
    name = "minio-py"

    def __init__(self, server, tmp):
        from minio import Minio

        self.mc = Minio(f"127.0.0.1:{server.port}", access_key=server.user, secret_key=server.password, secure=False, region="us-east-1")
        self.etags = {}

    def mb(self, bucket):
        self.mc.make_bucket(bucket)
        assert self.mc.bucket_exists(bucket)

    def put(self, bucket, key, path):
        self.etags[key] = self.mc.fput_object(bucket, key, str(path), part_size=PART).etag

    def ls(self, bucket):
        return {o.object_name: o.size for o in self.mc.list_objects(bucket, recursive=True)}

    def get(self, bucket, key, path):
        self.mc.fget_object(bucket, key, str(path))

    def rm(self, bucket, key):
        self.mc.remove_object(bucket, key)

    def rb(self, bucket):
        self.mc.remove_bucket(bucket)


class Rclone:
    name = "rclone"

    def __init__(self, server, tmp):
        self.env = dict(
            client_env(),  # also drops AWS_CA_BUNDLE: rclone 1.60 fails on http endpoints with it
            HOME=str(tmp),
            RCLONE_CONFIG=str(tmp / "rclone.conf"),
            RCLONE_CONFIG_GW_TYPE="s3",
            RCLONE_CONFIG_GW_PROVIDER="Other",
            RCLONE_CONFIG_GW_ENV_AUTH="false",
            RCLONE_CONFIG_GW_ACCESS_KEY_ID=server.user,
            RCLONE_CONFIG_GW_SECRET_ACCESS_KEY=server.password,
            RCLONE_CONFIG_GW_ENDPOINT=server.endpoint,
            RCLONE_CONFIG_GW_REGION="us-east-1",
            RCLONE_CONFIG_GW_FORCE_PATH_STYLE="true",
            RCLONE_CONFIG_GW_UPLOAD_CUTOFF="5M",
            RCLONE_CONFIG_GW_CHUNK_SIZE="5M",
        )

    def rclone(self, *args):
        return run([shutil.which("rclone") or "rclone", "--retries", "1", "--low-level-retries", "1", *args], self.env)

    def mb(self, bucket):
        self.rclone("mkdir", f"gw:{bucket}")

    def put(self, bucket, key, path):
        self.rclone("copyto", str(path), f"gw:{bucket}/{key}")

    def ls(self, bucket):
        return {e["Path"]: e["Size"] for e in json.loads(self.rclone("lsjson", "-R", "--files-only", f"gw:{bucket}"))}

    def get(self, bucket, key, path):
        self.rclone("copyto", f"gw:{bucket}/{key}", str(path))

    def rm(self, bucket, key):
        self.rclone("deletefile", f"gw:{bucket}/{key}")

    def rb(self, bucket):
        self.rclone("rmdir", f"gw:{bucket}")


def multipart_etag(data, part):
    digests = [hashlib.md5(data[i:i + part]).digest() for i in range(0, len(data), part)]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


@pytest.fixture
def fresh_name(s3):
    """A bucket name for the client to create; removed with boto3 if the test left it behind."""
    name = "c-" + uuid.uuid4().hex[:20]
    yield name
    remove_bucket_if_possible(s3, name)


@pytest.mark.parametrize("client_cls", [S3cmd, MinioPy, Rclone], ids=lambda c: c.name)
def test_client_round_trip(server, s3, fresh_name, tmp_path, client_cls):
    if client_cls is Rclone and shutil.which("rclone") is None:
        pytest.fail("rclone is not installed: run scripts/install-test-deps.sh")
    client = client_cls(server, tmp_path)
    bucket = fresh_name
    big = os.urandom(17 * MiB)
    small = "héllo wörld ✓\n".encode()
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "small.txt").write_bytes(small)

    client.mb(bucket)
    s3.head_bucket(Bucket=bucket)
    client.put(bucket, BIG_KEY, tmp_path / "big.bin")
    client.put(bucket, SMALL_KEY, tmp_path / "small.txt")

    assert client.ls(bucket) == {BIG_KEY: len(big), SMALL_KEY: len(small)}

    client.get(bucket, BIG_KEY, tmp_path / "big.back")
    client.get(bucket, SMALL_KEY, tmp_path / "small.back")
    assert (tmp_path / "big.back").read_bytes() == big
    assert (tmp_path / "small.back").read_bytes() == small

    head_big = s3.head_object(Bucket=bucket, Key=BIG_KEY)
    assert head_big["ContentLength"] == len(big)
    assert head_big["ETag"] == multipart_etag(big, PART)
    assert head_big["ETag"].endswith('-4"')
    head_small = s3.head_object(Bucket=bucket, Key=SMALL_KEY)
    assert head_small["ContentLength"] == len(small)
    assert head_small["ETag"] == f'"{hashlib.md5(small).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key=SMALL_KEY)["Body"].read() == small
    if isinstance(client, MinioPy):
        assert client.etags == {BIG_KEY: head_big["ETag"].strip('"'), SMALL_KEY: head_small["ETag"].strip('"')}

    client.rm(bucket, BIG_KEY)
    client.rm(bucket, SMALL_KEY)
    assert client.ls(bucket) == {}
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    client.rb(bucket)

    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=bucket)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=bucket)
    assert error_code(e) == "NoSuchBucket"


def test_boto3_writes_after_an_empty_put_on_the_same_connection(s3, bucket):
    # botocore sends `Expect: 100-continue` with every PUT; an empty one is answered without a
    # 100 Continue, which botocore keeps as connection state and then misreads the next
    # expecting request's answer: 60 s stalls, unless the server closes after that answer.
    import time

    for i, size in enumerate([0, 1024, 0, 700_000, 0, 1]):
        started = time.time()
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=os.urandom(size))
        assert time.time() - started < 5, f"PUT {i} of {size} bytes stalled"
        assert s3.head_object(Bucket=bucket, Key=f"k{i}")["ContentLength"] == size
