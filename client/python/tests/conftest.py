"""A real taskd for every test module: the binary the Rust build made, on
an ephemeral port and a fresh data dir, reached over TCP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Mapping, Optional

import pytest

import taskd

REPO = Path(__file__).resolve().parents[3]


def taskd_binary() -> str:
    binary = os.environ.get("TASKD_BIN") or str(REPO / "target" / "debug" / "taskd")
    if not Path(binary).is_file():
        pytest.exit(f"no taskd binary at {binary}: run `cargo build --bin taskd` or set TASKD_BIN", returncode=2)
    return binary


class Server:
    """A running taskd process."""

    def __init__(
        self,
        *extra_args: str,
        env: Optional[Mapping[str, str]] = None,
        listen: str = "127.0.0.1:0",
        data_dir: Optional[str] = None,
    ):
        """`env` adds to (or overrides) this process's environment:
        TASKD_AUTH_TOKENS, say. `listen` and `data_dir` bring a stopped
        server back where it was."""
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="taskd-pytest-")
        self.process = subprocess.Popen(
            # No nightly purge firing into a test that counts tasks.
            [
                taskd_binary(),
                "serve",
                "--listen",
                listen,
                "--data-dir",
                self.data_dir,
                "--set",
                "retention.enabled=false",
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TASKD_LOG": os.environ.get("TASKD_LOG", "warn"), **(env or {})},
        )
        self.address = None
        self.output = []
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith("taskd listening on "):
                self.address = line.split()[-1]
                break
        if self.address is None:
            raise RuntimeError("taskd did not start:\n" + "".join(self.output))
        # Keep reading, so that a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain_output, daemon=True).start()

    def _drain_output(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def server():
    running = Server()
    yield running
    running.stop()


@pytest.fixture()
def client(server):
    with taskd.Client(server.address, timeout=30) as connected:
        yield connected


def spawn_worker(address: str, worker_id: str, *behaviour: str) -> subprocess.Popen:
    """A worker in its own process (tests/worker_process.py)."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("worker_process.py")), address, worker_id, *behaviour],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(process: subprocess.Popen, prefix: str) -> str:
    """The next line the process prints that starts with `prefix`."""
    for line in process.stdout:
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise AssertionError(f"the process ended before printing {prefix!r}: {process.stderr.read()}")


class InThread:
    """A worker running in a thread of this process, started once `client`
    lists it (so `client` needs the read scope where tokens are on)."""

    def __init__(self, worker: taskd.Worker, client: taskd.Client, *, timeout: float = 30.0):
        self.worker = worker
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not any(info.worker_id == worker.worker_id for info in client.workers()):
            if not self.thread.is_alive():
                raise AssertionError(f"the worker stopped: {self.error!r}")
            if time.monotonic() > deadline:
                worker.stop()
                raise AssertionError(f"the worker did not connect within {timeout}s")
            threading.Event().wait(0.01)

    def _run(self):
        try:
            self.worker.run(handle_signals=False)
        except BaseException as error:  # surfaced by stop()
            self.error = error

    def stop(self):
        self.worker.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the worker drained and returned"
        if self.error is not None:
            raise self.error
