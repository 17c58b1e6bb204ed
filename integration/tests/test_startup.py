"""Start-up: the embedded default, configuration errors that name the key, admin info."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests
from conftest import BIN, Strata, free_port, wait_ready
from sigv4 import sign_headers


def test_default_layout_is_four_drives_under_data(tmp_path):
    port = free_port()
    proc = subprocess.Popen([BIN, "server", "--address", f"127.0.0.1:{port}"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        banner = proc.stdout.readline().decode() + proc.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}" in banner and "2 data + 2 parity" in banner
        wait_ready(f"http://127.0.0.1:{port}", 30, proc)
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["drive1", "drive2", "drive3", "drive4"]
    finally:
        proc.terminate()
        rest = proc.stdout.read().decode()  # the buffered reader already holds some lines
        proc.wait(10)
    assert "secret key: strataadmin" in banner + rest  # default credentials are printed


def run_with_config(tmp_path, text):
    cfg = tmp_path / "strata.toml"
    cfg.write_text(text)
    return subprocess.run([BIN, "server", "--config", str(cfg)], capture_output=True, timeout=20)


def test_bad_configs_stop_start_up_naming_the_key(tmp_path):
    for text, key in [
        ('adress = "127.0.0.1:1"\n', "adress"),
        ('address = "not an address"\n', "address"),
        ('drives = ["/tmp/a", "/tmp/b", "/tmp/c", "/tmp/d"]\nparity = 3\n', "parity"),
        ('root_password = "short"\n', "root_password"),
        ('drives = ["/tmp/a", "/tmp/a"]\n', "drives"),
    ]:
        out = run_with_config(tmp_path, text)
        assert out.returncode != 0, text
        err = out.stderr.decode()
        assert key in err and "strata:" in err, (text, err)
        assert "panicked" not in err and "backtrace" not in err.lower()


def test_config_file_drives_and_admin_info(tmp_path):
    port = free_port()
    drives = [str(tmp_path / f"disk{i}") for i in range(6)]
    cfg = tmp_path / "six.toml"
    cfg.write_text(f'address = "127.0.0.1:{port}"\ndrives = {json.dumps(drives)}\nparity = 2\n'
                   'root_user = "fileuser"\nroot_password = "file-secret"\n')
    proc = subprocess.Popen([BIN, "server", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}", 30, proc)
        s = Strata(tmp_path / "unused", user="fileuser", password="file-secret")
        s.port = port
        info = json.loads(s.admin("info"))
        assert (info["data_shards"], info["parity_shards"], info["sets"]) == (4, 2, 1)
        assert [d["drive"] for d in info["drives"]] == drives and all(d["online"] for d in info["drives"])
        s3 = s.client()
        s3.create_bucket(Bucket="from-config")
        s3.put_object(Bucket="from-config", Key="k", Body=b"six drives")
        assert s3.get_object(Bucket="from-config", Key="k")["Body"].read() == b"six drives"
    finally:
        proc.terminate()
        proc.wait(10)


def test_stopping_finishes_requests_in_flight(own_server):
    """SIGTERM stops new connections but lets an upload in progress finish and be kept."""
    s3 = own_server.client()
    s3.create_bucket(Bucket="drain")
    body = os.urandom(1000)
    url = f"{own_server.endpoint}/drain/k"
    headers, *_ = sign_headers("PUT", url, {"content-length": str(len(body))}, "UNSIGNED-PAYLOAD",
                               own_server.user, own_server.password)
    with socket.create_connection(("127.0.0.1", own_server.port), timeout=20) as sock:
        sock.sendall(b"PUT /drain/k HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
                     + b"\r\n" + body[:500])
        time.sleep(0.5)
        own_server.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline:  # until the node stops taking connections
            try:
                requests.get(own_server.endpoint + "/health/live", timeout=2)
                time.sleep(0.1)
            except requests.ConnectionError:
                break
        with pytest.raises(requests.ConnectionError):
            requests.get(own_server.endpoint + "/health/live", timeout=2)
        sock.sendall(body[500:])
        reply = sock.recv(65536).decode(errors="replace")
    assert " 200 " in reply.splitlines()[0], reply
    assert own_server.proc.wait(10) == 0
    own_server.proc = None
    own_server.start()
    assert own_server.client().get_object(Bucket="drain", Key="k")["Body"].read() == body
