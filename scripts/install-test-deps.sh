#!/usr/bin/env bash
# Installs what the integration tests need into .venv (real S3 clients: aws CLI, boto3, and
# pytest). Idempotent: a second run only checks. Versions are pinned to the ones measured on
# this machine kind (../shared/TESTGROUND.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${STRATA_VENV:-.venv}
PACKAGES=(awscli==1.45.11 boto3==1.43.11 botocore==1.43.11 awscrt==0.32.2 pytest==8.4.2 pytest-timeout==2.4.0 requests==2.32.5)
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
echo "test dependencies ready in $VENV"
