#!/usr/bin/env bash
# Runs every test: formatting and lints, Rust unit tests, then the integration tests against
# real `strata` processes with real clients (aws CLI, boto3). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo build --release"
cargo build --release --quiet -p strata-gateway
echo "== cargo test (unit)"
cargo test --workspace --quiet
echo "== integration tests"
STRATA_BIN="${CARGO_TARGET_DIR:-target}/release/strata" .venv/bin/python -m pytest integration/tests -q -p no:cacheprovider "$@"
