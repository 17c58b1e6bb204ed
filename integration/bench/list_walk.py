"""Walks a whole bucket with ListObjectsV2 (1,000 keys a page) and times a 1,000-key page deep
in it. Usage: python list_walk.py ENDPOINT BUCKET (credentials from AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY). Prints keys, keys/s, and the deep page's median and worst latency."""

import statistics
import sys
import time

import boto3
from botocore.config import Config

endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
keys, pages, started, page_times = 0, 0, time.perf_counter(), []
token = None
last_keys = []
while True:
    t = time.perf_counter()
    kw = {"Bucket": bucket, "MaxKeys": 1000}
    if token:
        kw["ContinuationToken"] = token
    out = s3.list_objects_v2(**kw)
    page_times.append(time.perf_counter() - t)
    contents = out.get("Contents", [])
    keys += len(contents)
    pages += 1
    if pages % 100 == 0:
        last_keys.append(contents[-1]["Key"])
    if not out["IsTruncated"]:
        break
    token = out["NextContinuationToken"]
elapsed = time.perf_counter() - started
print(f"walk: {keys} keys in {pages} pages, {elapsed:.1f} s, {keys / elapsed:.0f} keys/s, "
      f"page p50 {statistics.median(page_times) * 1000:.1f} ms, max {max(page_times) * 1000:.1f} ms")
deep = last_keys[int(len(last_keys) * 0.9)] if last_keys else ""
times = []
for _ in range(7):
    t = time.perf_counter()
    out = s3.list_objects_v2(Bucket=bucket, MaxKeys=1000, StartAfter=deep)
    times.append(time.perf_counter() - t)
    assert len(out.get("Contents", [])) > 0
print(f"deep page (start-after {deep!r}): median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
