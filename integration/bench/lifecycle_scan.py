#!/usr/bin/env python3
"""Lifecycle scanner throughput on a filled bucket (see BENCHMARKS.md).

Usage: lifecycle_scan.py URL BUCKET scan|expire
  scan    puts a rule that matches every version but is due in 100 years, which starts a scan
          of the bucket; prints versions judged per second.
  expire  puts a rule whose Date is in the past: every current version is due at once; prints
          expirations applied per second (start the server with a high STRATA_LIFECYCLE_RATE).

Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; the scan report is read with
`strata admin lifecycle status --json` (STRATA_BIN, default target/release/strata)."""

import datetime
import json
import os
import subprocess
import sys
import time

import boto3
from botocore.config import Config


def status(endpoint, bucket):
    binary = os.environ.get("STRATA_BIN", "target/release/strata")
    env = dict(os.environ,
               STRATA_ROOT_USER=os.environ["AWS_ACCESS_KEY_ID"],
               STRATA_ROOT_PASSWORD=os.environ["AWS_SECRET_ACCESS_KEY"])
    out = subprocess.run([binary, "admin", "--endpoint", endpoint, "lifecycle", "status", "--json"],
                         env=env, capture_output=True, check=True)
    scans = json.loads(out.stdout)["scans"]
    return next((s for s in scans if s["bucket"] == bucket), None)


def main():
    endpoint, bucket, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    if mode == "scan":
        expiration = {"Days": 36500}
    else:
        expiration = {"Date": datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)}
    put_at = time.time_ns()
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": f"bench-{mode}", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": expiration}]})
    while True:
        s = status(endpoint, bucket)
        if s and s["started_ns"] >= put_at and s["finished_ns"]:
            break
        time.sleep(0.2)
    seconds = (s["finished_ns"] - s["started_ns"]) / 1e9
    print(json.dumps(s))
    print(f"{s['versions_scanned']} versions judged in {seconds:.1f} s: "
          f"{s['versions_scanned'] / seconds:,.0f} versions/s; "
          f"{s['actions_done']} actions done ({s['actions_done'] / seconds:,.0f}/s), "
          f"{s['actions_failed']} failed")
    s3.delete_bucket_lifecycle(Bucket=bucket)


if __name__ == "__main__":
    main()
