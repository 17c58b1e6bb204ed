"""Version listing and bulk version deletes in a big versioned bucket. Usage:
python versions_walk.py ENDPOINT BUCKET (credentials from AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY). Walks the bucket with ListObjectVersions (1,000 entries a page),
then at 10 %, 50 % and 90 % depth times a 1,000-entry page (KeyMarker) and a DeleteObjects of
the 1,000 versions that page lists. Prints versions, versions/s and the page/delete times."""

import statistics
import sys
import time

import boto3
from botocore.config import Config

endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
versions, pages, started, page_times, markers = 0, 0, time.perf_counter(), [], []
kw = {"Bucket": bucket, "MaxKeys": 1000}
while True:
    t = time.perf_counter()
    out = s3.list_object_versions(**kw)
    page_times.append(time.perf_counter() - t)
    versions += len(out.get("Versions", [])) + len(out.get("DeleteMarkers", []))
    pages += 1
    if pages % 20 == 0:
        markers.append((out["NextKeyMarker"], out["NextVersionIdMarker"]))
    if not out["IsTruncated"]:
        break
    kw.update(KeyMarker=out["NextKeyMarker"], VersionIdMarker=out["NextVersionIdMarker"])
elapsed = time.perf_counter() - started
print(f"walk: {versions} versions in {pages} pages, {elapsed:.1f} s, {versions / elapsed:.0f} versions/s, "
      f"page p50 {statistics.median(page_times) * 1000:.1f} ms, max {max(page_times) * 1000:.1f} ms")
for depth in (0.1, 0.5, 0.9):
    key, vid = markers[int(len(markers) * depth)]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        out = s3.list_object_versions(Bucket=bucket, MaxKeys=1000, KeyMarker=key, VersionIdMarker=vid)
        times.append(time.perf_counter() - t)
    batch = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in out.get("Versions", []) + out.get("DeleteMarkers", [])]
    t = time.perf_counter()
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    delete_s = time.perf_counter() - t
    assert not res.get("Errors"), res.get("Errors")[:3]
    print(f"{int(depth * 100)} % deep (key marker {key!r}): page median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms; DeleteObjects of {len(batch)} versions {delete_s * 1000:.0f} ms")
