#!/usr/bin/env python3
"""Tiering benchmarks, each against a reference measured in the same run with the same client:

1. transition MiB/s of 64 MiB objects (Strata streams them from its shards to the tier, 4 at
   once) next to direct uploads of the same size to the same emulator with the tier's own client
   (`tier-bench --op put`, 4 at once);
2. GET MiB/s of tiered objects through Strata (`strata-bench --op get`) next to direct reads
   from the emulator with the tier's client (`tier-bench --op get`), one stream each;
3. Strata's peak RSS (VmHWM) while 8 x 256 MiB objects transition at once.

Usage: integration/bench/tiering.py [KIND ...]   (kinds: s3 azure gcs-fake gcs-emulator; default all)
Needs the release binaries (cargo build --release -p strata-gateway -p strata-bench) and the
emulators (scripts/install-test-deps.sh). Prints one line per measurement and a Markdown table."""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "integration" / "tests"))
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
os.environ.setdefault("STRATA_BIN", str(TARGET / "strata"))

from conftest import Strata  # noqa: E402
from emulators import Azurite, FakeGcs, GcpStorageEmulator, Moto  # noqa: E402

COUNT, SIZE_MIB = 8, 64


def run(*args, env=None):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{args[0]} failed: {out.stderr}")
    return out.stdout


def mibs(line):
    return float(re.search(r"MiB/s=([\d.]+)", line).group(1))


def tier_config(kind, em, bucket, name):
    if kind == "s3":
        return {"name": name, "kind": "s3", "endpoint": em.endpoint, "bucket": bucket, "access_key": "testing",
                "secret_key": "testing", "path_style": True}  # fmt: skip
    if kind == "azure":
        return {"name": name, "kind": "azure", "endpoint": em.endpoint, "bucket": bucket, "account": em.account, "key": em.key}
    return {"name": name, "kind": "gcs", "endpoint": em.endpoint, "bucket": bucket}


def wait_tiered(s3, bucket, keys, tier, timeout=900):
    deadline = time.time() + timeout
    pending = set(keys)
    while pending:
        pending = {k for k in pending if s3.head_object(Bucket=bucket, Key=k).get("StorageClass") != tier}
        if time.time() > deadline:
            raise RuntimeError(f"{len(pending)} objects not transitioned")
        time.sleep(0.1)


def peak_rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench(kind, em, work):
    name = re.sub(r"[^A-Z0-9]", "", kind.upper()) + "BENCH"
    remote_bucket = "bench-" + kind.replace("-", "")
    em.create_bucket(remote_bucket)
    cfg = tier_config(kind, em, remote_bucket, name)
    cfg_file = work / f"{kind}.json"
    cfg_file.write_text(json.dumps(cfg))
    direct_put = mibs(run(TARGET / "tier-bench", "--tier", cfg_file, "--op", "put", "--size-mib", SIZE_MIB,
                          "--count", COUNT, "--concurrency", 4))  # fmt: skip
    direct_get = mibs(run(TARGET / "tier-bench", "--tier", cfg_file, "--op", "get", "--size-mib", SIZE_MIB,
                          "--count", 2, "--concurrency", 1))  # fmt: skip

    (work / f"strata-{kind}").mkdir()
    node = Strata(work / f"strata-{kind}" / "data", env={"STRATA_LIFECYCLE_DAY_SECONDS": "1", "STRATA_LOG": "warn"}).start()
    try:
        add = ["tier", "add", name, "--kind", cfg["kind"], "--endpoint", cfg["endpoint"], "--bucket", remote_bucket,
               "--prefix", "strata/"]  # fmt: skip
        if kind == "s3":
            add += ["--access-key", "testing", "--secret-key", "testing", "--path-style"]
        elif kind == "azure":
            add += ["--account", em.account, "--key", em.key]
        node.admin(*add)
        s3 = node.client()
        env = dict(node.env(), AWS_ACCESS_KEY_ID=node.user, AWS_SECRET_ACCESS_KEY=node.password)
        bench_args = ["--endpoint", node.endpoint, "--bucket", "strata-bench", "--size", f"{SIZE_MIB}MiB", "--objects", COUNT,
                      "--prefix", "t", "--concurrency", 1]  # fmt: skip
        s3.create_bucket(Bucket="strata-bench")
        run(TARGET / "strata-bench", "--op", "get", "--duration", 1, *bench_args, env=env)  # writes t/pre/0..COUNT-1
        keys = [f"t/pre/{i}" for i in range(COUNT)]
        started = time.time()
        s3.put_bucket_lifecycle_configuration(
            Bucket="strata-bench",
            LifecycleConfiguration={"Rules": [{"ID": "t", "Status": "Enabled", "Filter": {"Prefix": "t/"},
                                               "Transitions": [{"Days": 1, "StorageClass": name}]}]},  # fmt: skip
        )
        wait_tiered(s3, "strata-bench", keys, name)
        transition = COUNT * SIZE_MIB / (time.time() - started)
        tiered_get = mibs(run(TARGET / "strata-bench", "--op", "get", "--no-prefill", "--duration", 10, *bench_args, env=env))

        # Peak RSS: 8 x 256 MiB transitioning at once (4 workers), measured as the high-water mark.
        big = [f"big/{i}" for i in range(8)]
        chunk = os.urandom(1 << 20) * 256
        for k in big:
            s3.put_object(Bucket="strata-bench", Key=k, Body=chunk)
        rss_before = peak_rss_mib(node.proc.pid)
        s3.put_bucket_lifecycle_configuration(
            Bucket="strata-bench",
            LifecycleConfiguration={"Rules": [{"ID": "big", "Status": "Enabled", "Filter": {"Prefix": "big/"},
                                               "Transitions": [{"Days": 1, "StorageClass": name}]}]},  # fmt: skip
        )
        wait_tiered(s3, "strata-bench", big, name)
        rss = peak_rss_mib(node.proc.pid)
    finally:
        node.stop()
    rows = [
        (kind, f"transition {COUNT} x {SIZE_MIB} MiB (4 at once)", transition, direct_put),
        (kind, "GET of a tiered 64 MiB object (1 stream)", tiered_get, direct_get),
    ]
    for r in rows:
        print(f"{r[0]}: {r[1]}: Strata {r[2]:.1f} MiB/s, direct {r[3]:.1f} MiB/s, ratio {r[2] / r[3]:.2f}", flush=True)
    print(f"{kind}: peak RSS {rss:.0f} MiB while 8 x 256 MiB transitioned (before: {rss_before:.0f} MiB)", flush=True)
    return rows, rss


def main():
    kinds = sys.argv[1:] or ["s3", "azure", "gcs-fake", "gcs-emulator"]
    classes = {"s3": Moto, "azure": Azurite, "gcs-fake": FakeGcs, "gcs-emulator": GcpStorageEmulator}
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for kind in kinds:
            em = classes[kind](work / kind)
            em.start()
            try:
                rows, rss = bench(kind, em, work)
                table.append((rows, rss))
            finally:
                em.stop()
    print("\n| tier | measurement | Strata MiB/s | direct MiB/s | ratio | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for rows, rss in table:
        for i, (kind, what, ours, direct) in enumerate(rows):
            print(f"| {kind} | {what} | {ours:.1f} | {direct:.1f} | {ours / direct:.2f} | {f'{rss:.0f} MiB' if i == 0 else ''} |")


if __name__ == "__main__":
    main()
