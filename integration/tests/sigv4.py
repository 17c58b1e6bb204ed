"""A small SigV4 signer for tests that need exact control over the signed form: header
signatures with any payload hash, and aws-chunked bodies with chunk signatures or trailers.
(boto3 and the aws CLI pick their own forms; these requests pin each form down.)"""

import datetime
import hashlib
import hmac
import urllib.parse

REGION, SERVICE = "us-east-1", "s3"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date):
    k = _hmac(("AWS4" + secret).encode(), date)
    for part in (REGION, SERVICE, "aws4_request"):
        k = _hmac(k, part)
    return k


def sign_headers(method, url, headers, payload_hash, access_key, secret, when=None):
    """Returns headers (with Authorization) for a header-signed request."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    u = urllib.parse.urlsplit(url)
    headers = {k.lower(): v for k, v in headers.items()}
    headers.update({"host": u.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
    names = sorted(headers)
    query = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in sorted(query)
    )
    canonical = "\n".join([
        method,
        urllib.parse.quote(urllib.parse.unquote(u.path), safe="/-_.~"),
        canonical_query,
        "".join(f"{n}:{str(headers[n]).strip()}\n" for n in names),
        ";".join(names),
        payload_hash,
    ])
    scope = f"{date}/{REGION}/{SERVICE}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(secret, date)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers, key, scope, amz_date, signature


def chunked_signed_body(data, chunk_size, key, scope, amz_date, seed_signature):
    """aws-chunked body with a signature per chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)."""
    out, prev = b"", seed_signature
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for c in chunks:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256, hashlib.sha256(c).hexdigest()])
        prev = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out += f"{len(c):x};chunk-signature={prev}\r\n".encode() + c + b"\r\n"
    return out


def chunked_trailer_body(data, chunk_size, trailer_name, trailer_value):
    """aws-chunked body without signatures, ending in a trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""
    out = b""
    for i in range(0, len(data), chunk_size):
        c = data[i:i + chunk_size]
        out += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    return out + f"0\r\n{trailer_name}:{trailer_value}\r\n\r\n".encode()


def signed(server, method, path, body=b"", extra=None):
    """Sends a request to the test server signed with SigV4 in the Authorization header."""
    import requests
    url = f"{server.endpoint}{path}"
    headers, *_ = sign_headers(method, url, extra or {}, hashlib.sha256(body).hexdigest(), server.user, server.password)
    return requests.request(method, url, data=body, headers=headers)
