"""One worker protocol, two SDKs: every scenario here runs against a Python
SDK worker (scenario_worker.py) and a Rust SDK worker
(client/examples/scenario_worker.rs), each in its own process, against a
real taskd. The two take the same arguments and print the same lines, so
a scenario is written once: a revoked lease, a timeout, a drain that
outlasts its deadline, a server that stops and comes back, what each kind
of refusal does to the worker, the cancel grace, and a lease lost while
the worker was frozen."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

import taskd
from taskd import AttemptOutcome, TaskStatus
from taskd.v1 import worker_service_pb2 as pb
from taskd.v1 import worker_service_pb2_grpc

from conftest import REPO, Server

#: Every wait in this module is bounded by this many seconds.
WAIT = 30

SDKS = ["python", "rust"]


def _rust_worker() -> str:
    binary = os.environ.get("TASKD_RUST_WORKER") or str(REPO / "target" / "debug" / "examples" / "scenario_worker")
    if not Path(binary).is_file():
        pytest.fail(
            f"no Rust scenario worker at {binary}: `cargo build -p taskd-client --example scenario_worker` "
            "(scripts/test.sh does) or set TASKD_RUST_WORKER"
        )
    return binary


class ScenarioWorker:
    """A worker process of one SDK, and the lines it prints."""

    def __init__(self, sdk: str, address: str, worker_id: str, *options: str):
        if sdk == "python":
            command = [sys.executable, str(Path(__file__).with_name("scenario_worker.py"))]
        else:
            command = [_rust_worker()]
        self.process = subprocess.Popen(
            [*command, address, worker_id, *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, within: float = WAIT) -> str:
        """What follows `prefix` on the next line that starts with it."""
        deadline = time.monotonic() + within
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line starting {prefix!r} within {within}s") from None
            if line is None:
                raise AssertionError(f"the worker exited ({self.process.wait()}) before printing {prefix!r}")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def exit_code(self) -> int:
        return self.process.wait(timeout=WAIT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture()
def start_worker():
    started = []

    def start(sdk: str, address: str, worker_id: str, *options: str) -> ScenarioWorker:
        worker = ScenarioWorker(sdk, address, worker_id, *options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def _attempts_settled(client: taskd.Client, task_id: str, count: int) -> taskd.Task:
    """The task once `count` of its attempts have ended."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        task = client.get(task_id)
        ended = [attempt for attempt in task.attempts if attempt.outcome is not AttemptOutcome.RUNNING]
        if len(ended) >= count:
            return task
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} never had {count} ended attempts")


@pytest.mark.parametrize("sdk", SDKS)
def test_a_revoked_lease_reaches_the_handler(sdk, server, client, start_worker):
    worker = start_worker(sdk, server.address, f"{sdk}-revoke")
    worker.expect("connected")
    task = client.submit("scenario.wait_cancel")
    assert worker.expect("started ") == task.id
    client.cancel(task.id, "not needed")
    assert worker.expect("saw-cancel ") == task.id
    cancelled = client.get(task.id)
    assert cancelled.status is TaskStatus.CANCELLED
    assert cancelled.attempts[0].outcome is AttemptOutcome.CANCELLED


@pytest.mark.parametrize("sdk", SDKS)
def test_an_attempt_that_runs_out_of_time_is_stopped_and_recorded_timed_out(sdk, server, client, start_worker):
    worker = start_worker(sdk, server.address, f"{sdk}-timeout")
    worker.expect("connected")
    task = client.submit("scenario.wait_cancel", timeout=0.5, max_retries=0)
    assert worker.expect("started ") == task.id
    assert worker.expect("saw-cancel ") == task.id
    done = client.wait(task.id, timeout=WAIT)
    assert done.status is TaskStatus.FAILED
    assert done.attempts[0].outcome is AttemptOutcome.TIMED_OUT


@pytest.mark.parametrize("sdk", SDKS)
def test_a_drain_hands_back_what_outlasts_its_deadline(sdk, server, client, start_worker):
    worker = start_worker(sdk, server.address, f"{sdk}-drain", "--drain-timeout", "0.5", "--cancel-grace", "0.2")
    worker.expect("connected")
    task = client.submit("scenario.ignore_cancel", max_retries=3)
    assert worker.expect("started ") == task.id
    worker.signal(signal.SIGTERM)
    worker.expect("stopped")
    assert worker.exit_code() == 0
    handed_back = _attempts_settled(client, task.id, 1)
    assert handed_back.attempts[0].outcome is AttemptOutcome.RELEASED
    assert handed_back.status is TaskStatus.PENDING, "ready for another worker, its retries untouched"
    assert handed_back.retry_count == 0
    client.cancel(task.id)


@pytest.mark.parametrize("sdk", SDKS)
def test_a_worker_outlives_a_server_that_stops_and_comes_back(sdk, start_worker):
    first = Server()
    try:
        worker = start_worker(sdk, first.address, f"{sdk}-steadfast")
        worker.expect("connected")
    finally:
        first.stop()
    # Drained by the stopping server, then UNAVAILABLE while it is away:
    # the worker keeps trying, and does not exit.
    second = Server(listen=first.address, data_dir=first.data_dir)
    try:
        with taskd.Client(second.address, timeout=WAIT) as client:
            task = client.submit("scenario.quick")
            assert worker.expect("started ") == task.id
            assert client.wait(task.id, timeout=WAIT).result == {"sdk": sdk}
        assert worker.process.poll() is None
    finally:
        second.stop()


@pytest.mark.parametrize("sdk", SDKS)
def test_a_refusal_of_the_worker_itself_stops_it_naming_the_status(sdk, server, start_worker):
    worker = start_worker(sdk, server.address, f"{sdk}-no-room", "--capacity", "0")
    assert worker.expect("refused ") == "INVALID_ARGUMENT"
    assert worker.exit_code() == 3


@pytest.mark.parametrize("sdk", SDKS)
def test_a_missing_or_insufficient_token_stops_the_worker(sdk, start_worker):
    tokens = "ops admin admin-token-0123456789abcdef;dash read reader-token-0123456789abcdef"
    secured = Server(env={"TASKD_AUTH_TOKENS": tokens})
    try:
        anonymous = start_worker(sdk, secured.address, f"{sdk}-anonymous")
        assert anonymous.expect("refused ") == "UNAUTHENTICATED"
        assert anonymous.exit_code() == 3
        reader = start_worker(sdk, secured.address, f"{sdk}-reader", "--token", "reader-token-0123456789abcdef")
        assert reader.expect("refused ") == "PERMISSION_DENIED"
        assert reader.exit_code() == 3
    finally:
        secured.stop()


@pytest.mark.parametrize("sdk", SDKS)
def test_a_worker_whose_id_is_taken_keeps_trying_and_takes_over_once_it_is_free(sdk, server, client, start_worker):
    worker_id = f"{sdk}-twin"
    channel = grpc.insecure_channel(server.address)
    requests: queue.Queue = queue.Queue()
    requests.put(
        pb.WorkRequest(hello=pb.WorkerHello(worker_id=worker_id, task_types=["scenario.quick"], capacity=1))
    )
    holder = worker_service_pb2_grpc.WorkerServiceStub(channel).Work(iter(requests.get, None))
    assert next(holder).WhichOneof("message") == "welcome"
    task = client.submit("scenario.quick", max_retries=3, retry_backoff=0.01)
    assert next(holder).WhichOneof("message") == "tasks", "the holder of the id has the task"
    worker = start_worker(sdk, server.address, worker_id)
    # Refused with ALREADY_EXISTS meanwhile; once the holder's stream is
    # gone, the worker connects and runs the task the holder left.
    holder.cancel()
    channel.close()
    assert worker.expect("started ") == task.id
    done = client.wait(task.id, timeout=WAIT)
    assert done.status is TaskStatus.COMPLETED and done.result == {"sdk": sdk}
    assert worker.process.poll() is None


@pytest.mark.parametrize("sdk", SDKS)
def test_a_revoked_handler_gets_its_cancel_grace_and_then_its_slot_back(sdk, server, client, start_worker):
    worker = start_worker(sdk, server.address, f"{sdk}-grace", "--capacity", "1", "--cancel-grace", "0.5")
    worker.expect("connected")
    tidy = client.submit("scenario.cleanup")
    assert worker.expect("started ") == tidy.id
    client.cancel(tidy.id)
    assert worker.expect("cleaned-up ") == tidy.id, "a handler that stops within the grace is not cut short"

    stubborn = client.submit("scenario.ignore_cancel")
    assert worker.expect("started ") == stubborn.id
    client.cancel(stubborn.id)
    quick = client.submit("scenario.quick")
    assert worker.expect("started ") == quick.id, "after the grace the only slot is free again"
    assert client.wait(quick.id, timeout=WAIT).status is TaskStatus.COMPLETED


@pytest.mark.parametrize("sdk", SDKS)
def test_a_lease_lost_while_the_worker_was_frozen_stops_its_handler(sdk, start_worker):
    short_leases = Server("--lease-duration", "1s")
    try:
        with taskd.Client(short_leases.address, timeout=WAIT) as client:
            worker = start_worker(sdk, short_leases.address, f"{sdk}-frozen")
            worker.expect("connected")
            task = client.submit("scenario.wait_cancel", max_retries=3, retry_backoff=0.01)
            assert worker.expect("started ") == task.id
            worker.signal(signal.SIGSTOP)
            try:
                lost = _attempts_settled(client, task.id, 1)
            finally:
                worker.signal(signal.SIGCONT)
            assert lost.attempts[0].outcome is AttemptOutcome.LEASE_EXPIRED
            # Its next renewal is refused: the handler is told to stop.
            assert worker.expect("saw-cancel ") == task.id
            client.cancel(task.id)
    finally:
        short_leases.stop()
