#!/usr/bin/env bash
# From Python, against the release binary on a fresh data dir:
# - one-at-a-time SubmitTask and GetTask over raw grpcio stubs, beside an
#   fdatasync of the same disk (grpcio and grpcio-tools from PyPI into
#   .tools/bench-venv);
# - the SDK (client/python, installed into .tools/sdk-venv, which
#   scripts/setup-test-tools.sh makes): one submit at a time, the buffered
#   submitter with 32 threads, submit_many batches, one task alone (submit,
#   wait, run, polls);
# - one call by each way of making it (the SDK, raw grpcio stubs with and
#   without single-threaded streams, REST over http.client keep-alive).
# The Python worker's figures are in `cargo bench --bench throughput`.
# TASKD_BIN runs another build (say, an older release) instead;
# TASKD_BENCH_FLAGS adds flags (say, --synchronous normal).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .tools/bench-venv/bin/python ] || ! .tools/bench-venv/bin/python -c "import grpc, grpc_tools" 2>/dev/null; then
  python3 -m venv .tools/bench-venv
  .tools/bench-venv/bin/pip install --quiet --disable-pip-version-check grpcio grpcio-tools
fi
binary=${TASKD_BIN:-target/release/taskd}
if [ -z "${TASKD_BIN:-}" ]; then
  cargo build --release --quiet --bin taskd
fi

work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/stubs" "$work/data"
.tools/bench-venv/bin/python -m grpc_tools.protoc -I proto \
  --python_out="$work/stubs" --grpc_python_out="$work/stubs" proto/taskd/v1/*.proto

# shellcheck disable=SC2086 # the flags are words
# The batch phases queue millions of tasks nothing runs: past the default
# queue depth they would be shed, which is not what this measures.
TASKD_LOG=warn TASKD_MONITOR_INTERVAL=1s "$binary" serve --listen 127.0.0.1:0 \
  --set engine.limits.max_queue_depth=1000000000 ${TASKD_BENCH_FLAGS:-} \
  --data-dir "$work/data" > "$work/out" &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.05; done
address=$(sed -n 's/^taskd listening on //p' "$work/out")

.tools/bench-venv/bin/python benches/python/lone_requests.py "$address" "$work/stubs"
if [ ! -x .tools/sdk-venv/bin/python ]; then
  scripts/setup-test-tools.sh >/dev/null
fi
.tools/sdk-venv/bin/pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps \
  --force-reinstall ./client/python
.tools/sdk-venv/bin/python benches/python/submitters.py "$address"
.tools/sdk-venv/bin/python benches/python/call_paths.py "$address" "$work/stubs"
python3 - "$work/data" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
times = []
for _ in range(2000):
    os.write(fd, b"x" * 4096)
    started = time.perf_counter()
    os.fdatasync(fd)
    times.append((time.perf_counter() - started) * 1e6)
os.close(fd)
times.sort()
print(f"fdatasync of the data dir p50 / p99 (us)                 {times[len(times) // 2]:.0f} / {times[int(len(times) * 0.99)]:.0f}")
PY
