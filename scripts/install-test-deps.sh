#!/usr/bin/env bash
# Installs what the integration tests need: into .venv the real S3 clients aws CLI, boto3,
# s3cmd and minio-py plus pytest; rclone from the Debian archive (apt-get, needs root) when it
# is not on PATH yet. Idempotent: a second run only checks. Versions are pinned to the ones
# measured on this machine kind (../shared/TESTGROUND.md); s3fs is left out on purpose, as it
# would force a different botocore than the pinned one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${STRATA_VENV:-.venv}
PACKAGES=(awscli==1.45.11 boto3==1.43.11 botocore==1.43.11 awscrt==0.32.2 pytest==8.4.2 pytest-timeout==2.4.0 requests==2.32.5
          s3cmd==2.4.0 minio==7.2.20)
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "${PACKAGES[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    assert version(name) == want, spec
PY
then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}"
fi
if ! command -v rclone >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq rclone >/dev/null; then
        apt-get update -qq
        apt-get install -y -qq rclone >/dev/null
    fi
fi
echo "test dependencies ready in $VENV ($(rclone version | head -n 1))"
