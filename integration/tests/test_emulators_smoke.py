"""The cloud emulators (emulators.py) and their fixtures (emulator_fixtures.py) work: every
helper against every emulator, raw HTTP / SDK access next to the helpers, auth where the
emulator checks it, and stop/start on the same port. Needs no strata binary."""

import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient

from emulators import Azurite, FakeGcs, GcpStorageEmulator, Moto

pytest_plugins = ["emulator_fixtures"]

ALL = ["moto", "azurite", "fake_gcs", "gcp_emulator"]
RAW = requests.Session()
RAW.trust_env = False


def new_name():
    return "emu-" + uuid.uuid4().hex[:12]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fixture", ALL)
def test_helpers_round_trip(request, fixture):
    emu = request.getfixturevalue(fixture)
    assert emu.running and emu.endpoint.startswith(f"http://127.0.0.1:{emu.port}")
    bucket = new_name()
    emu.create_bucket(bucket)
    assert bucket in emu.buckets()
    big = bytes(range(256)) * 12_000  # ~3 MiB, above single-chunk sizes of the SDKs
    emu.put(bucket, "a/b c+d%.txt", b"hello")
    emu.put(bucket, "a/two", b"")
    emu.put(bucket, "big.bin", big)
    assert emu.keys(bucket) == {"a/b c+d%.txt": 5, "a/two": 0, "big.bin": len(big)}
    assert emu.keys(bucket, "a/") == {"a/b c+d%.txt": 5, "a/two": 0}
    assert emu.keys(bucket, "zzz") == {}
    assert emu.read(bucket, "a/b c+d%.txt") == b"hello"
    assert emu.read(bucket, "big.bin") == big
    assert emu.read(bucket, "a/two") == b""
    assert emu.exists(bucket, "a/two") and not emu.exists(bucket, "a/missing")
    emu.put(bucket, "a/two", b"22")  # overwrite
    assert emu.read(bucket, "a/two") == b"22"
    emu.delete(bucket, "a/two")
    assert not emu.exists(bucket, "a/two")
    assert emu.keys(bucket) == {"a/b c+d%.txt": 5, "big.bin": len(big)}
    emu.delete_bucket(bucket)  # not empty: the helper empties it first
    assert bucket not in emu.buckets()


@pytest.mark.timeout(60)
def test_moto_with_boto3(moto):
    s3 = moto.client()
    bucket = new_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"via boto3")
    assert moto.read(bucket, "k") == b"via boto3"
    moto.put(bucket, "k2", b"via helper")
    assert s3.get_object(Bucket=bucket, Key="k2")["Body"].read() == b"via helper"
    # path-style URL; moto refuses an unsigned (anonymous) GET of a private object
    assert RAW.get(f"{moto.endpoint}/{bucket}/k2").status_code == 403
    assert moto.keys(bucket) == {"k": 9, "k2": 10}
    moto.delete_bucket(bucket)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fixture", ["fake_gcs", "gcp_emulator"])
def test_gcs_raw_json_api(request, fixture):
    gcs = request.getfixturevalue(fixture)
    bucket = new_name()
    r = RAW.post(f"{gcs.endpoint}/storage/v1/b", params={"project": "p"}, json={"name": bucket})
    assert r.status_code == 200, r.text
    r = RAW.post(
        f"{gcs.endpoint}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": "dir/raw.txt"},
        data=b"raw body",
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "dir/raw.txt" and int(r.json()["size"]) == 8
    assert gcs.keys(bucket) == {"dir/raw.txt": 8}
    assert gcs.info(bucket, "dir/raw.txt")["contentType"] == "text/plain"
    assert gcs.info(bucket, "nope") is None
    gcs.put(bucket, "meta", b"m", content_type="text/csv", metadata={"origin": "helper"})
    info = gcs.info(bucket, "meta")
    assert (info["contentType"], info["metadata"], int(info["size"])) == ("text/csv", {"origin": "helper"}, 1)
    gcs.delete(bucket, "meta")
    r = RAW.get(f"{gcs.endpoint}/storage/v1/b/{bucket}/o/dir%2Fraw.txt", params={"alt": "media"})
    assert r.status_code == 200 and r.content == b"raw body"
    assert RAW.delete(f"{gcs.endpoint}/storage/v1/b/{bucket}/o/dir%2Fraw.txt").status_code in (200, 204)
    assert not gcs.exists(bucket, "dir/raw.txt")
    gcs.delete_bucket(bucket)


@pytest.mark.timeout(60)
def test_azurite_auth_and_sas(azurite):
    container = new_name()
    azurite.create_bucket(container)
    azurite.put(container, "dir/blob.txt", b"secret")
    url = azurite.blob_url(container, "dir/blob.txt")
    assert url.startswith(f"{azurite.endpoint}/{container}/")
    # anonymous: refused (private container)
    assert RAW.get(url).status_code in (403, 404)
    # container SAS: read allowed; a read-only SAS cannot write
    sas = azurite.container_sas(container)
    assert not sas.startswith("?") and "sig=" in sas
    r = RAW.get(f"{url}?{sas}")
    assert r.status_code == 200 and r.content == b"secret"
    ro = azurite.container_sas(container, permission="r")
    r = RAW.put(f"{azurite.blob_url(container, 'new')}?{ro}", data=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert r.status_code == 403
    r = RAW.put(f"{azurite.blob_url(container, 'new')}?{sas}", data=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert r.status_code == 201 and azurite.read(container, "new") == b"x"
    # Shared Key is verified: a wrong key is refused
    wrong = BlobServiceClient(azurite.endpoint, credential={"account_name": azurite.account, "account_key": "d3Jvbmc=" * 8})
    with pytest.raises(HttpResponseError) as e:
        wrong.get_container_client(container).get_container_properties()
    assert e.value.status_code == 403
    # connection string works with the SDK as is
    svc = BlobServiceClient.from_connection_string(azurite.connection_string)
    assert svc.get_blob_client(container, "dir/blob.txt").download_blob().readall() == b"secret"
    azurite.delete_bucket(container)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "cls,survives",
    [(Moto, False), (Azurite, True), (FakeGcs, True), (GcpStorageEmulator, True)],
    ids=["moto", "azurite", "fake_gcs", "gcp_emulator"],
)
def test_restart_on_same_port(tmp_path, cls, survives):
    """An outage: stop, endpoint refuses connections, start again on the same port."""
    emu = cls(tmp_path / cls.name)
    try:
        emu.start()
        port, endpoint = emu.port, emu.endpoint
        emu.create_bucket("outage")
        emu.put("outage", "k", b"before")
        emu.stop()
        assert not emu.running
        with pytest.raises(requests.ConnectionError):
            RAW.get(endpoint, timeout=2)
        emu.start()
        assert (emu.port, emu.endpoint) == (port, endpoint)
        if survives:
            assert emu.keys("outage") == {"k": 6} and emu.read("outage", "k") == b"before"
        else:
            assert "outage" not in emu.buckets()
            emu.create_bucket("outage")
        emu.put("outage", "k2", b"after")
        assert emu.read("outage", "k2") == b"after"
        emu.restart()
        assert emu.port == port
    finally:
        emu.stop()
    assert emu.proc is None
