"""S3 lifecycle end to end: the configuration API with AWS's errors, every expiration action
carried out by the scanner on a server whose lifecycle day lasts 2 seconds
(STRATA_LIFECYCLE_DAY_SECONDS), object lock winning over rules, filters, the x-amz-expiration
and abort headers, a kill -9 in the middle of a scan, and the admin preview / explain / status."""

import datetime
import hashlib
import base64
import json
import re
import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import Strata, remove_bucket_if_possible
from sigv4 import signed

DAY = 2  # seconds in a lifecycle day on the test server
WAIT = 30  # an action due after a few days must be done within this many seconds


@pytest.fixture(scope="module")
def lc(tmp_path_factory):
    s = Strata(tmp_path_factory.mktemp("lc") / "data", env={"STRATA_LIFECYCLE_DAY_SECONDS": str(DAY)}).start()
    yield s
    s.stop()


@pytest.fixture
def s3(lc):
    return lc.client()


def new_bucket(s3, versioning=None, lock=False):
    name = "lc-" + uuid.uuid4().hex[:16]
    if lock:
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    else:
        s3.create_bucket(Bucket=name)
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    return name


@pytest.fixture
def bucket(s3):
    name = new_bucket(s3)
    yield name
    remove_bucket_if_possible(s3, name)


@pytest.fixture
def versioned(s3):
    name = new_bucket(s3, "Enabled")
    yield name
    remove_bucket_if_possible(s3, name)


def rule(rule_id, **kw):
    r = {"ID": rule_id, "Status": "Enabled", "Filter": kw.pop("Filter", {"Prefix": ""})}
    r.update(kw)
    return r


def put_rules(s3, bucket, *rules):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})


def until(check, timeout=WAIT, what="the lifecycle action"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def versions(s3, bucket, prefix=""):
    r = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return r.get("Versions", []), r.get("DeleteMarkers", [])


def code_of(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


# ---- the configuration API -------------------------------------------------------------------

def test_configuration_round_trip_keeps_every_shape(s3, bucket):
    # The legacy form (Prefix in the rule) cannot be mixed with Filter rules, as AWS refuses.
    put_rules(s3, bucket, {"ID": "legacy", "Status": "Enabled", "Prefix": "old/", "Expiration": {"Days": 3}})
    legacy = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert legacy["Prefix"] == "old/" and "Filter" not in legacy
    with pytest.raises(ClientError) as e:
        put_rules(s3, bucket, {"ID": "legacy", "Status": "Enabled", "Prefix": "old/", "Expiration": {"Days": 3}},
                  rule("new", Expiration={"Days": 3}))
    assert code_of(e) == ("InvalidRequest", 400)
    rules = [
        rule("prefix", Filter={"Prefix": "logs/"}, Expiration={"Days": 30},
             NoncurrentVersionExpiration={"NoncurrentDays": 5, "NewerNoncurrentVersions": 2}),
        rule("tag", Filter={"Tag": {"Key": "class", "Value": "tmp"}}, Expiration={"Date": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)}),
        rule("and", Filter={"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}], "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 1000}},
             Expiration={"Days": 1}),
        rule("size", Filter={"ObjectSizeGreaterThan": 100}, Expiration={"Days": 7}),
        rule("markers", Expiration={"ExpiredObjectDeleteMarker": True}),
        rule("uploads", Filter={"Prefix": "up/"}, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 2}),
        rule("off", Expiration={"Days": 9}) | {"Status": "Disabled"},
    ]
    put_rules(s3, bucket, *rules)
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["ID"] for r in got] == [r["ID"] for r in rules]
    by_id = {r["ID"]: r for r in got}
    assert by_id["prefix"]["Filter"] == {"Prefix": "logs/"}
    assert by_id["prefix"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 5, "NewerNoncurrentVersions": 2}
    assert by_id["tag"]["Filter"] == {"Tag": {"Key": "class", "Value": "tmp"}}
    assert by_id["tag"]["Expiration"]["Date"].year == 2030
    assert by_id["and"]["Filter"]["And"] == {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}],
                                             "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 1000}
    assert by_id["size"]["Filter"] == {"ObjectSizeGreaterThan": 100}
    assert by_id["markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    assert by_id["uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert by_id["off"]["Status"] == "Disabled"
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code_of(e) == ("NoSuchLifecycleConfiguration", 404)


@pytest.mark.parametrize("rules,code", [
    ([rule("r", Expiration={"Days": 0})], "InvalidArgument"),
    ([rule("r", Expiration={"Days": -1})], "InvalidArgument"),
    ([rule("r", Expiration={"Date": datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.timezone.utc)})], "InvalidArgument"),
    ([rule("r", Expiration={"Days": 1, "Date": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)})], "InvalidArgument"),
    ([rule("r", Expiration={"Days": 1, "ExpiredObjectDeleteMarker": True})], "InvalidArgument"),
    ([rule("r", Filter={"Tag": {"Key": "k", "Value": "v"}}, Expiration={"ExpiredObjectDeleteMarker": True})], "InvalidRequest"),
    ([rule("r", Expiration={"Days": 1}), rule("r", Expiration={"Days": 2})], "InvalidArgument"),
    ([rule("x" * 256, Expiration={"Days": 1})], "InvalidArgument"),
    ([rule("r", NoncurrentVersionExpiration={"NoncurrentDays": 0})], "InvalidArgument"),
    ([rule("r", Transitions=[{"Days": 1, "StorageClass": "GLACIER"}])], "InvalidStorageClass"),
    ([rule("r", Filter={"Tag": {"Key": "k", "Value": "v"}}, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1})], "InvalidRequest"),
    ([rule("r", Filter={"And": {"ObjectSizeGreaterThan": 100, "ObjectSizeLessThan": 10}}, Expiration={"Days": 1})], "InvalidArgument"),
    ([rule("r")], None),  # a rule without an action
])
def test_invalid_configurations_are_refused_and_change_nothing(s3, bucket, rules, code):
    put_rules(s3, bucket, rule("kept", Expiration={"Days": 5}))
    with pytest.raises(ClientError) as e:
        put_rules(s3, bucket, *rules)
    got, status = code_of(e)
    assert status == 400
    if code:
        assert got == code, e.value.response["Error"]
    else:
        assert got in ("MalformedXML", "InvalidRequest", "InvalidArgument")
    assert [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]] == ["kept"]


def test_too_many_rules_and_malformed_xml(lc, s3, bucket):
    many = [rule(f"r{i}", Expiration={"Days": 1}) for i in range(1001)]
    with pytest.raises(ClientError) as e:
        put_rules(s3, bucket, *many)
    assert code_of(e)[1] == 400
    put_rules(s3, bucket, *many[:1000])
    assert len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]) == 1000
    body = b"<LifecycleConfiguration><Rule><ID>x</Rule></LifecycleConfiguration>"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    r = signed(lc, "PUT", f"/{bucket}?lifecycle", body, {"content-md5": md5})
    assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text, r.text
    assert "not well-formed" in r.text, r.text  # never a bare code (clients print "Unknown")
    good = b"<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>"
    r = signed(lc, "PUT", f"/{bucket}?lifecycle", good)
    assert r.status_code == 400 and "Content-MD5" in r.text, r.text  # AWS requires an integrity header
    assert len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]) == 1000


# ---- actions carried out ---------------------------------------------------------------------

def test_current_versions_expire_in_an_unversioned_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="tmp/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="keep/b", Body=b"b")
    put_rules(s3, bucket, rule("tmp", Filter={"Prefix": "tmp/"}, Expiration={"Days": 1}))
    until(lambda: "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="tmp/"))
    vs, markers = versions(s3, bucket)
    assert [v["Key"] for v in vs] == ["keep/b"] and markers == []


def test_current_versions_get_a_lifecycle_delete_marker_when_versioned(lc, s3, versioned):
    v1 = s3.put_object(Bucket=versioned, Key="k", Body=b"x")["VersionId"]
    put_rules(s3, versioned, rule("exp", Expiration={"Days": 1}))
    until(lambda: versions(s3, versioned)[1])
    vs, markers = versions(s3, versioned)
    assert [v["VersionId"] for v in vs] == [v1] and not vs[0]["IsLatest"]
    assert len(markers) == 1 and markers[0]["IsLatest"]
    out = lc.admin("lifecycle", "explain", versioned, "k", "--version-id", v1)
    assert "expired by lifecycle" in out, out


def test_suspended_bucket_gets_a_null_delete_marker(s3):
    b = new_bucket(s3, "Enabled")
    try:
        old = s3.put_object(Bucket=b, Key="k", Body=b"old")["VersionId"]
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
        s3.put_object(Bucket=b, Key="k", Body=b"null version")
        put_rules(s3, b, rule("exp", Expiration={"Days": 1}))
        until(lambda: versions(s3, b)[1])
        vs, markers = versions(s3, b)
        assert [m["VersionId"] for m in markers] == ["null"]
        # The null marker replaced the null version; the Enabled-era version stays.
        assert [v["VersionId"] for v in vs] == [old]
    finally:
        remove_bucket_if_possible(s3, b)


def test_noncurrent_versions_expire_keeping_the_newest(lc, s3, versioned):
    ids = [s3.put_object(Bucket=versioned, Key="k", Body=str(i).encode())["VersionId"] for i in range(4)]
    put_rules(s3, versioned, rule("nc", NoncurrentVersionExpiration={"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}))
    until(lambda: len(versions(s3, versioned)[0]) == 2)
    time.sleep(2 * DAY)  # nothing more goes
    vs, markers = versions(s3, versioned)
    assert [v["VersionId"] for v in vs] == [ids[3], ids[2]] and markers == []
    kept = lc.admin("lifecycle", "explain", versioned, "k", "--version-id", ids[2])
    assert "kept: one of the 1 newest noncurrent versions" in kept, kept


def test_expired_delete_markers_are_removed(s3, versioned):
    v = s3.put_object(Bucket=versioned, Key="gone", Body=b"x")["VersionId"]
    s3.delete_object(Bucket=versioned, Key="gone")
    s3.put_object(Bucket=versioned, Key="other", Body=b"y")
    s3.delete_object(Bucket=versioned, Key="other")  # a marker with a version below: not expired
    put_rules(s3, versioned, rule("eodm", Expiration={"ExpiredObjectDeleteMarker": True}))
    s3.delete_object(Bucket=versioned, Key="gone", VersionId=v)  # now the marker is alone
    until(lambda: [m["Key"] for m in versions(s3, versioned)[1]] == ["other"])
    assert [x["Key"] for x in versions(s3, versioned)[0]] == ["other"]


def test_incomplete_uploads_are_aborted(s3, bucket):
    put_rules(s3, bucket, rule("mpu", Filter={"Prefix": "up/"}, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}))
    created = s3.create_multipart_upload(Bucket=bucket, Key="up/x")
    assert created["AbortRuleId"] == "mpu"
    assert created["AbortDate"] > datetime.datetime.now(datetime.timezone.utc)
    kept = s3.create_multipart_upload(Bucket=bucket, Key="other")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="up/x", UploadId=created["UploadId"], PartNumber=1, Body=b"p")
    assert part["ResponseMetadata"]["HTTPHeaders"]["x-amz-abort-rule-id"] == "mpu"
    until(lambda: [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [kept])


def test_object_lock_keeps_a_version_past_its_rule(lc, s3):
    b = new_bucket(s3, lock=True)
    try:
        until_date = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        locked = s3.put_object(Bucket=b, Key="k", Body=b"locked", ObjectLockMode="GOVERNANCE",
                               ObjectLockRetainUntilDate=until_date)["VersionId"]
        held = s3.put_object(Bucket=b, Key="k", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
        free = s3.put_object(Bucket=b, Key="k", Body=b"free")["VersionId"]
        s3.put_object(Bucket=b, Key="k", Body=b"current")
        put_rules(s3, b, rule("nc", NoncurrentVersionExpiration={"NoncurrentDays": 1}))
        until(lambda: free not in [v["VersionId"] for v in versions(s3, b)[0]])
        time.sleep(2 * DAY)
        left = [v["VersionId"] for v in versions(s3, b)[0]]
        assert locked in left and held in left and len(left) == 3
        assert "blocked by object lock" in lc.admin("lifecycle", "explain", b, "k", "--version-id", locked)
        assert "blocked by legal hold" in lc.admin("lifecycle", "explain", b, "k", "--version-id", held)
        assert 'result="blocked"} ' in requests.get(lc.endpoint + "/metrics").text
        s3.put_object_legal_hold(Bucket=b, Key="k", VersionId=held, LegalHold={"Status": "OFF"})
        until(lambda: held not in [v["VersionId"] for v in versions(s3, b)[0]])
    finally:
        remove_bucket_if_possible(s3, b)


def test_size_and_tag_filters_are_honoured(s3, bucket):
    s3.put_object(Bucket=bucket, Key="small", Body=b"x" * 10)
    s3.put_object(Bucket=bucket, Key="big", Body=b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"x" * 10, Tagging="class=tmp")
    s3.put_object(Bucket=bucket, Key="other-tag", Body=b"x" * 10, Tagging="class=keep")
    put_rules(s3, bucket,
              rule("big", Filter={"ObjectSizeGreaterThan": 500}, Expiration={"Days": 1}),
              rule("tmp", Filter={"Tag": {"Key": "class", "Value": "tmp"}}, Expiration={"Days": 1}))
    until(lambda: sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])) == ["other-tag", "small"])
    time.sleep(2 * DAY)
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == ["other-tag", "small"]


# ---- headers ---------------------------------------------------------------------------------

def expiry(header):
    m = re.fullmatch(r'expiry-date="([^"]+)", rule-id="([^"]+)"', header)
    assert m, header
    return datetime.datetime.strptime(m.group(1), "%a, %d %b %Y %H:%M:%S GMT"), m.group(2)


def test_x_amz_expiration_on_writes_and_reads(s3, bucket):
    put_rules(s3, bucket,
              rule("later", Filter={"Prefix": "e/"}, Expiration={"Days": 1000}),
              rule("sooner", Filter={"Prefix": "e/"}, Expiration={"Days": 500}))
    put = s3.put_object(Bucket=bucket, Key="e/k", Body=b"x")
    when, rule_id = expiry(put["Expiration"])
    assert rule_id == "sooner"  # the earliest rule
    for r in (s3.head_object(Bucket=bucket, Key="e/k"), s3.get_object(Bucket=bucket, Key="e/k")):
        assert expiry(r["Expiration"]) == (when, "sooner")
    copied = s3.copy_object(Bucket=bucket, Key="e/copy", CopySource=f"{bucket}/e/k")
    assert expiry(copied["Expiration"])[1] == "sooner"
    u = s3.create_multipart_upload(Bucket=bucket, Key="e/mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="e/mp", UploadId=u, PartNumber=1, Body=b"p")["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="e/mp", UploadId=u, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert expiry(done["Expiration"])[1] == "sooner"
    # With a 2-second day, 500 days are 1000 s, rounded up to the next "midnight".
    ahead = (when.replace(tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 990 <= ahead <= 1005, ahead
    assert "Expiration" not in s3.put_object(Bucket=bucket, Key="elsewhere", Body=b"x")
    # A rule id is sent URL-encoded, as AWS does: quotes and commas cannot break the header.
    put_rules(s3, bucket, rule('odd "id", ü', Filter={"Prefix": "o/"}, Expiration={"Days": 5}))
    raw = s3.put_object(Bucket=bucket, Key="o/k", Body=b"x")["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]
    assert raw.endswith('rule-id="odd%20%22id%22%2C%20%C3%BC"'), raw


# ---- crash in the middle of a scan -----------------------------------------------------------

def test_kill_9_mid_scan_converges(tmp_path):
    s = Strata(tmp_path / "data", env={"STRATA_LIFECYCLE_DAY_SECONDS": str(DAY), "STRATA_LIFECYCLE_RATE": "100"}).start()
    try:
        s3 = s.client()
        b = new_bucket(s3)
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: s3.put_object(Bucket=b, Key=f"tmp/{i:04d}", Body=b"x"), range(600)))
            list(pool.map(lambda i: s3.put_object(Bucket=b, Key=f"keep/{i:04d}", Body=b"y"), range(100)))
        put_rules(s3, b, rule("tmp", Filter={"Prefix": "tmp/"}, Expiration={"Days": 1}))
        # At 100 actions a second the scan needs about 6 s: cut it off once it has started.
        until(lambda: len(s3.list_objects_v2(Bucket=b, Prefix="tmp/").get("Contents", [])) < 500, what="the scan's start")
        s.kill9()
        s.start()
        s3 = s.client()
        until(lambda: "Contents" not in s3.list_objects_v2(Bucket=b, Prefix="tmp/"), timeout=60)
        keep = s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix="keep/")
        assert sum(len(p.get("Contents", [])) for p in keep) == 100
        status = json.loads(s.admin("lifecycle", "status", "--json"))
        scan = [x for x in status["scans"] if x["bucket"] == b][0]
        assert scan["actions_failed"] == 0
    finally:
        s.stop()


# ---- admin: preview, explain, status, metrics -------------------------------------------------

def test_preview_explain_status_and_metrics(lc, s3, bucket, tmp_path):
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"logs/{i}", Body=b"x" * 100)
    s3.put_object(Bucket=bucket, Key="data/1", Body=b"y" * 50)
    conf = {"Rules": [rule("logs", Filter={"Prefix": "logs/"}, Expiration={"Days": 3}),
                      rule("never", Filter={"Prefix": "nothing/"}, Expiration={"Days": 1})]}
    f = tmp_path / "lifecycle.json"
    f.write_text(json.dumps(conf))
    out = json.loads(lc.admin("lifecycle", "preview", bucket, "--file", str(f), "--days", "10", "--json"))
    logs = [r for r in out["rules"] if r["rule_id"] == "logs"][0]
    assert sum(d["versions"] for d in logs["days"]) == 3
    assert sum(d["bytes"] for d in logs["days"]) == 300
    assert all(d["action"] == "expire_current" and 3 <= d["day"] <= 4 for d in logs["days"]), logs
    assert sorted(k for d in logs["days"] for k in d["sample"]) == ["logs/0", "logs/1", "logs/2"]
    assert [r for r in out["rules"] if r["rule_id"] == "never"][0]["days"] == []
    text = lc.admin("lifecycle", "preview", bucket, "--file", str(f), "--days", "10")
    assert "rule logs:" in text and "expire_current 3 versions, 300 bytes" in text, text
    # Nothing was applied by the preview.
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    # Explain on a configuration that is applied: one rule applies, one does not, and why.
    xml_rules = conf["Rules"] + [rule("tagged", Filter={"Tag": {"Key": "t", "Value": "v"}}, Expiration={"Days": 1})]
    put_rules(s3, bucket, *[dict(r, Expiration={"Days": 1000}) for r in xml_rules])
    e = json.loads(lc.admin("lifecycle", "explain", bucket, "logs/1", "--json"))
    verdicts = {r["rule_id"]: r for r in e["rules"]}
    assert verdicts["logs"]["applies"] and verdicts["logs"]["actions"][0]["state"] == "not due"
    assert verdicts["logs"]["actions"][0]["due"].endswith("Z")
    assert "prefix 'nothing/'" in verdicts["never"]["reason"]
    assert "tag t=v" in verdicts["tagged"]["reason"]
    text = lc.admin("lifecycle", "explain", bucket, "logs/1")
    assert "rule never: does not apply" in text and "not due" in text, text
    until(lambda: any(x["bucket"] == bucket and x["finished_ns"] for x in json.loads(lc.admin("lifecycle", "status", "--json"))["scans"]))
    assert bucket in lc.admin("lifecycle", "status")
    metrics = requests.get(lc.endpoint + "/metrics").text
    for name in ("strata_lifecycle_versions_scanned_total", "strata_lifecycle_scan_duration_seconds",
                 "strata_lifecycle_oldest_due_action_age_seconds"):
        assert name in metrics, name


def test_aws_cli_sets_rules_that_act_and_can_be_set_again(lc, s3, tmp_path):
    """The acceptance path: rules set with `aws s3api put-bucket-lifecycle-configuration`; a
    rule removed and set again unchanged acts again."""
    b = new_bucket(s3)
    try:
        conf = tmp_path / "lc.json"
        conf.write_text(json.dumps({"Rules": [rule("cli", Expiration={"Days": 1})]}))
        for round in range(2):
            s3.put_object(Bucket=b, Key=f"k{round}", Body=b"x")
            lc.aws("s3api", "put-bucket-lifecycle-configuration", "--bucket", b,
                   "--lifecycle-configuration", f"file://{conf}")
            until(lambda: "Contents" not in s3.list_objects_v2(Bucket=b))
            got = json.loads(lc.aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", b).stdout)
            assert got["Rules"][0]["ID"] == "cli"
            lc.aws("s3api", "delete-bucket-lifecycle", "--bucket", b)
    finally:
        remove_bucket_if_possible(s3, b)
