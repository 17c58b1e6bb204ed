"""Health probes and Prometheus metrics."""

import requests


def test_probes(server):
    assert requests.get(server.endpoint + "/health/live").status_code == 200
    assert requests.get(server.endpoint + "/health/ready").status_code == 200


def test_metrics_count_requests_bytes_and_drives(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="m", Body=b"x" * 1234)
    s3.get_object(Bucket=bucket, Key="m")["Body"].read()
    try:
        s3.get_object(Bucket=bucket, Key="absent")
    except s3.exceptions.NoSuchKey:
        pass
    text = requests.get(server.endpoint + "/metrics").text
    assert 'strata_s3_requests_total{api="PutObject",status="200"}' in text
    assert 'strata_s3_requests_total{api="GetObject",status="404"}' in text
    assert "strata_s3_request_duration_seconds_bucket" in text
    sent = [line for line in text.splitlines() if line.startswith("strata_s3_sent_bytes_total")]
    assert sent and float(sent[0].split()[-1]) >= 1234
    drives = [line for line in text.splitlines() if line.startswith("strata_drive_online{")]
    assert len(drives) == 4 and all(line.endswith(" 1") for line in drives)


def test_signed_requests_to_probe_paths_are_s3_calls(server, s3):
    # A bucket called "health" stays reachable for signed requests.
    s3.create_bucket(Bucket="health")
    s3.put_object(Bucket="health", Key="live", Body=b"bucket data")
    assert s3.get_object(Bucket="health", Key="live")["Body"].read() == b"bucket data"
    assert requests.get(server.endpoint + "/health/live").text == "OK\n"
    s3.delete_object(Bucket="health", Key="live")
    s3.delete_bucket(Bucket="health")
