#!/usr/bin/env bash
# The whole test suite, as CI runs it: test tools, formatting, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# nextest runs each test in its own process under a deadline
# (.config/nextest.toml); doctests run apart, as nextest does not run them.
cargo nextest run --workspace --no-tests=warn
cargo test --workspace --doc
# The Python SDK against the binary the tests just built: built from proto/
# as a user's `pip install ./client/python` would, then its pytest suite.
.tools/sdk-venv/bin/pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps \
  --force-reinstall ./client/python
TASKD_BIN="$PWD/target/debug/taskd" .tools/sdk-venv/bin/python -m pytest -q -p no:cacheprovider client/python/tests
