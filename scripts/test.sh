#!/usr/bin/env bash
# The whole test suite, as CI runs it: test tools, formatting, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-tools.sh
# PostgreSQL for the store's conformance suite and the cluster tests:
# TASKD_TEST_POSTGRES, else the one at 127.0.0.1:5432, else a throwaway
# cluster of our own (scripts/test-postgres.sh), stopped when this ends.
if [ -z "${TASKD_TEST_POSTGRES:-}" ] && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  postgres_dir=$(mktemp -d)
  trap 'scripts/test-postgres.sh stop "$postgres_dir"; rm -rf "$postgres_dir"' EXIT
  TASKD_TEST_POSTGRES=$(scripts/test-postgres.sh start "$postgres_dir")
  export TASKD_TEST_POSTGRES
  echo "PostgreSQL for the tests: a throwaway cluster at $TASKD_TEST_POSTGRES"
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# nextest runs each test in its own process under a deadline
# (.config/nextest.toml); doctests run apart, as nextest does not run them.
cargo nextest run --workspace --no-tests=warn
cargo test --workspace --doc
# The Python SDK against the binary the tests just built: built from proto/
# as a user's `pip install ./client/python` would, then its pytest suite
# (whose worker scenarios also drive the Rust SDK's scenario worker).
cargo build -p taskd-client --example scenario_worker
.tools/sdk-venv/bin/pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps \
  --force-reinstall ./client/python
TASKD_BIN="$PWD/target/debug/taskd" .tools/sdk-venv/bin/python -m pytest -q -p no:cacheprovider client/python/tests
