#!/usr/bin/env python3
"""Replication benchmarks, each next to a reference measured in the same run. Two Strata sites on
127.0.0.1 (four drive directories each): A replicates a bucket to a bucket on B.

1. throughput of 64 MiB objects and of 4 KiB objects: A's target is paused while `strata-bench`
   writes for 10 s, then resumed and timed until the backlog is empty; next to `strata-bench`
   writing straight to B's bucket with the replicator's concurrency (8);
2. replication lag p50 / p99 under a steady load of 200 x 4 KiB PUT/s for 20 s: from the PUT's
   answer on A to the key's first appearance in B's listing (polled every 10 ms);
3. time to drain a 10,000-object backlog after B was down (it includes up to 3 s for the prober
   to see B back);
4. A's PUT rate (4 KiB, 16 at once, 10 s) into the replicated bucket next to a bucket without
   replication, with B up (replication runs meanwhile, on the same two cores).

Usage: integration/bench/replication.py [big small lag drain rate]   (default: all, in that order)
Needs the release binaries (cargo build --release -p strata-gateway -p strata-bench)."""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "integration" / "tests"))
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
os.environ.setdefault("STRATA_BIN", str(TARGET / "strata"))

from conftest import BIN, Strata  # noqa: E402


def run(*args, env=None):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{args[0]} failed: {out.stderr}")
    return out.stdout


def field(line, name):
    return float(re.search(rf"{re.escape(name)}=([\d.]+)", line).group(1))


def admin(site, *args):
    return run(BIN, "admin", "--endpoint", site.endpoint, *args, env=site.env())


def bench(site, bucket, op, size, seconds, concurrency, prefix):
    env = dict(site.env(), AWS_ACCESS_KEY_ID=site.user, AWS_SECRET_ACCESS_KEY=site.password)
    return run(TARGET / "strata-bench", "--endpoint", site.endpoint, "--bucket", bucket, "--op", op, "--size", size,
               "--duration", seconds, "--concurrency", concurrency, "--prefix", prefix, env=env)  # fmt: skip


def backlog(site, bucket):
    return json.loads(admin(site, "replicate", "status", bucket, "--json"))[0]["backlog"]


def drain_time(site, bucket, timeout=1800):
    started = time.time()
    while backlog(site, bucket) > 0:
        if time.time() - started > timeout:
            raise RuntimeError("the backlog did not drain")
        time.sleep(0.05)
    return time.time() - started


def versioned(s3, bucket):
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def replicated_pair(a, b, name):
    sa, sb = a.client(), b.client()
    versioned(sa, name)
    versioned(sb, name)
    arn = admin(a, "replicate", "add-target", "--bucket", name, "--target", b.endpoint, "--target-bucket", name,
                "--access-key", b.user, "--secret-key", b.password, "--path-style").strip()  # fmt: skip
    sa.put_bucket_replication(Bucket=name, ReplicationConfiguration={"Role": "", "Rules": [{
        "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {}, "Destination": {"Bucket": arn},
        "DeleteMarkerReplication": {"Status": "Enabled"}}]})  # fmt: skip
    return arn


def throughput(a, b, size, label):
    """Replicated MiB/s and objects/s next to direct PUTs to B."""
    bucket = f"tp-{label}"
    arn = replicated_pair(a, b, bucket)
    direct = bench(b, bucket, "put", size, 10, 8, "direct")
    admin(a, "replicate", "pause", arn)
    written = bench(a, bucket, "put", size, 10, 8, "repl")
    objects = field(written, "ops")
    mib = field(written, "MiB/s") * field(written, "duration")
    admin(a, "replicate", "resume", arn)
    secs = drain_time(a, bucket)
    return {
        "what": f"{size} objects",
        "replicated_mibs": mib / secs,
        "replicated_ops": objects / secs,
        "direct_mibs": field(direct, "MiB/s"),
        "direct_ops": field(direct, "ops/s"),
        "objects": objects,
    }


def lag(a, b, rate=200, seconds=20, writers=8):
    bucket = "lag"
    replicated_pair(a, b, bucket)
    acked, seen = {}, {}
    stop = threading.Event()

    def writer(w):
        s3 = a.client()
        body = os.urandom(4096)
        per = rate / writers
        start = time.time()
        i = 0
        while time.time() - start < seconds:
            key = f"w{w}/{i:06d}"
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            acked[key] = time.time()
            i += 1
            pause = start + i / per - time.time()
            if pause > 0:
                time.sleep(pause)

    def poller():
        s3 = b.client()
        floor = {f"w{w}/": "" for w in range(writers)}
        while not stop.is_set() or len(seen) < len(acked):
            for prefix, after in floor.items():
                page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, StartAfter=after or prefix)
                now = time.time()
                for o in page.get("Contents", []):
                    seen.setdefault(o["Key"], now)
                # Keys arrive out of order: list again from the last key all of whose
                # predecessors have been seen.
                n = 0
                while f"{prefix}{n:06d}" in seen:
                    n += 1
                floor[prefix] = f"{prefix}{n - 1:06d}" if n else ""
            if stop.is_set() and time.time() > stop_time[0] + 60:
                break
            time.sleep(0.01)

    stop_time = [0.0]
    p = threading.Thread(target=poller)
    p.start()
    ws = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    stop_time[0] = time.time()
    stop.set()
    p.join()
    lags = sorted(seen[k] - acked[k] for k in acked if k in seen)
    missing = len(acked) - len(lags)
    pct = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] * 1000  # noqa: E731
    return {"puts": len(acked), "rate": len(acked) / seconds, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "max_ms": lags[-1] * 1000, "missing": missing}  # fmt: skip


def drain_after_outage(a, b, count=10_000):
    bucket = "outage"
    replicated_pair(a, b, bucket)
    b.stop()
    s3 = a.client()
    body = os.urandom(4096)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"o/{i:05d}", Body=body), range(count)))
    b.start()
    secs = drain_time(a, bucket)
    return {"objects": count, "seconds": secs, "ops": count / secs}


def put_rate(a, b):
    """PUT rates into the replicated bucket (target paused: the write path's own cost; target
    up: replication running on the same cores) and into a like bucket without a rule, in
    alternating rounds so that neither gains from running first."""
    arn = replicated_pair(a, b, "rate-on")
    versioned(a.client(), "rate-off")  # the same kind of bucket, without a replication rule
    rates = {"off": [], "queued": [], "on": []}
    for round_ in range(2):
        rates["off"].append(field(bench(a, "rate-off", "put", "4KiB", 10, 16, f"r{round_}"), "ops/s"))
        admin(a, "replicate", "pause", arn)
        rates["queued"].append(field(bench(a, "rate-on", "put", "4KiB", 10, 16, f"p{round_}"), "ops/s"))
        admin(a, "replicate", "resume", arn)
        drain_time(a, "rate-on")
        rates["on"].append(field(bench(a, "rate-on", "put", "4KiB", 10, 16, f"o{round_}"), "ops/s"))
        drain_time(a, "rate-on")
    return {k: sum(v) / len(v) for k, v in rates.items()}


def main():
    which = set(sys.argv[1:]) or {"big", "small", "lag", "drain", "rate"}
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        env = {"STRATA_LOG": "warn"}
        for site in ("a", "b"):
            (work / site).mkdir()
        a = Strata(work / "a" / "data", env=env).start()
        b = Strata(work / "b" / "data", env=env).start()
        try:
            rows, lg, dr, pr = {}, None, None, None
            for label, size in (("big", "64MiB"), ("small", "4KiB")):
                if label in which:
                    t = throughput(a, b, size, label)
                    print(f"throughput {t['what']}: replicated {t['replicated_mibs']:.1f} MiB/s {t['replicated_ops']:.1f} obj/s, "
                          f"direct {t['direct_mibs']:.1f} MiB/s {t['direct_ops']:.1f} obj/s ({t['objects']:.0f} objects)", flush=True)  # fmt: skip
                    rows[label] = t
            if "lag" in which:
                lg = lag(a, b)
                print(f"lag at {lg['rate']:.0f} PUT/s: p50 {lg['p50_ms']:.0f} ms, p99 {lg['p99_ms']:.0f} ms, max {lg['max_ms']:.0f} ms, "
                      f"{lg['missing']} never seen", flush=True)  # fmt: skip
            if "drain" in which:
                dr = drain_after_outage(a, b)
                print(f"drain of {dr['objects']} after an outage: {dr['seconds']:.1f} s ({dr['ops']:.0f} obj/s)", flush=True)
            if "rate" in which:
                pr = put_rate(a, b)
                print(f"source PUT 4 KiB: replication on {pr['on']:.0f}/s, off {pr['off']:.0f}/s, ratio {pr['on'] / pr['off']:.2f}; "
                      f"target paused {pr['queued']:.0f}/s, ratio {pr['queued'] / pr['off']:.2f}", flush=True)  # fmt: skip
        finally:
            a.stop()
            b.stop()
    print("\n| measurement | replication | reference | ratio |")
    print("| --- | --- | --- | --- |")
    if "big" in rows:
        big = rows["big"]
        print(f"| 64 MiB objects | {big['replicated_mibs']:.1f} MiB/s | direct PUT {big['direct_mibs']:.1f} MiB/s | {big['replicated_mibs'] / big['direct_mibs']:.2f} |")
    if "small" in rows:
        small = rows["small"]
        print(f"| 4 KiB objects | {small['replicated_ops']:.0f} obj/s | direct PUT {small['direct_ops']:.0f} obj/s | {small['replicated_ops'] / small['direct_ops']:.2f} |")
    if lg:
        print(f"| lag at {lg['rate']:.0f} x 4 KiB PUT/s | p50 {lg['p50_ms']:.0f} ms, p99 {lg['p99_ms']:.0f} ms | goal p99 < 1000 ms | |")
    if dr:
        print(f"| drain 10,000 x 4 KiB after an outage | {dr['seconds']:.1f} s ({dr['ops']:.0f} obj/s) | | |")
    if pr:
        print(f"| source PUT 4 KiB, replicating meanwhile | {pr['on']:.0f}/s | replication off {pr['off']:.0f}/s | {pr['on'] / pr['off']:.2f} |")
        print(f"| source PUT 4 KiB, target paused (queueing only) | {pr['queued']:.0f}/s | replication off {pr['off']:.0f}/s | {pr['queued'] / pr['off']:.2f} |")

if __name__ == "__main__":
    main()
