#!/usr/bin/env bash
# The whole test suite, as CI runs it: test tools, formatting, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
