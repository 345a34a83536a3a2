"""Workers in Python serving task types of their own, against a real taskd:
sync and asyncio handlers, progress, cancellation reaching the handler, a
worker killed mid-task, a lost lease refused, draining on SIGTERM."""

import asyncio
import signal
import threading
import time

import grpc
import pytest

import taskd
from taskd import TaskStatus
from taskd.v1 import worker_service_pb2 as pb
from taskd.v1 import worker_service_pb2_grpc

from conftest import InThread, read_line, spawn_worker


def test_a_sync_handler_serves_a_new_type_and_reports_progress(server, client):
    worker = taskd.Worker(server.address, worker_id="py-sync", capacity=2)
    seen_progress = threading.Event()

    @worker.task("py.thumbnails")
    def thumbnails(run: taskd.TaskRun):
        run.progress(50, "resizing")
        seen_progress.wait(timeout=10)
        if "width" not in run.params:
            raise taskd.PermanentFailure("params.width: required")
        return {"width": run.params["width"] // 2, "attempt": run.attempt}

    running = InThread(worker, client)
    try:
        task = client.submit("py.thumbnails", {"width": 640})
        with client.watch(task.id) as events:
            for event in events:
                progress = event.task.progress
                if progress is not None and progress.message == "resizing":
                    assert progress.percent == 50
                    seen_progress.set()
                if event.task.status.is_terminal:
                    break
        done = client.get(task.id)
        assert done.status is TaskStatus.COMPLETED
        assert done.result == {"width": 320, "attempt": 1}
        assert done.attempts[0].worker == "py-sync"

        bad = client.submit("py.thumbnails")
        failed = client.wait(bad.id, timeout=30)
        assert failed.status is TaskStatus.FAILED
        assert failed.error == "params.width: required"
        assert len(failed.attempts) == 1, "a permanent failure is not retried"
        (info,) = [info for info in client.workers() if info.worker_id == "py-sync"]
        assert info.task_types == ["py.thumbnails"] and info.capacity == 2
        assert info.labels["sdk"].startswith("python/")
    finally:
        running.stop()


def test_an_async_handler_runs_on_the_event_loop_and_its_exceptions_are_failures(server, client):
    worker = taskd.Worker(server.address, worker_id="py-async", capacity=4)

    @worker.task("py.evaluate")
    async def evaluate(run: taskd.TaskRun):
        await asyncio.sleep(0.01)
        if run.params.get("explode"):
            raise RuntimeError("model unavailable")
        return {"score": 0.9}

    running = InThread(worker, client)
    try:
        good = client.submit("py.evaluate")
        bad = client.submit("py.evaluate", {"explode": True}, max_retries=1, retry_backoff=0.01)
        assert client.wait(good.id, timeout=30).result == {"score": 0.9}
        failed = client.wait(bad.id, timeout=30)
        assert failed.status is TaskStatus.FAILED
        assert failed.error == "RuntimeError: model unavailable"
        assert len(failed.attempts) == 2, "an ordinary exception is retried"
    finally:
        running.stop()


def test_cancelling_a_running_task_reaches_sync_and_async_handlers(server, client):
    worker = taskd.Worker(server.address, worker_id="py-cancel", capacity=2, cancel_grace=0.2)
    sync_started, sync_saw_cancel = threading.Event(), threading.Event()
    async_started, async_saw_cancel = threading.Event(), threading.Event()

    @worker.task("py.sync-long")
    def sync_long(run: taskd.TaskRun):
        sync_started.set()
        if run.wait_cancelled(timeout=30):
            sync_saw_cancel.set()
        return None

    @worker.task("py.async-long")
    async def async_long(run: taskd.TaskRun):
        async_started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            async_saw_cancel.set()
            raise

    running = InThread(worker, client)
    try:
        sync_task = client.submit("py.sync-long")
        async_task = client.submit("py.async-long")
        assert sync_started.wait(10) and async_started.wait(10)
        client.cancel(sync_task.id, "user pressed stop")
        client.cancel(async_task.id, "user pressed stop")
        assert sync_saw_cancel.wait(5), "the sync handler saw the cancel"
        assert async_saw_cancel.wait(5), "the async handler was cancelled"
        for task_id in (sync_task.id, async_task.id):
            after = client.get(task_id)
            assert after.status is TaskStatus.CANCELLED
            assert after.attempts[0].outcome is taskd.AttemptOutcome.CANCELLED
    finally:
        running.stop()


def test_a_worker_killed_mid_task_loses_it_and_another_worker_finishes_it(server, client):
    doomed = spawn_worker(server.address, "py-doomed", "hang")
    try:
        assert read_line(doomed, "connected") == ""
        task = client.submit("py.hang", retry_backoff=0.01, max_retries=2)
        assert read_line(doomed, "started ") == task.id
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            doomed.kill()

    survivor = taskd.Worker(server.address, worker_id="py-survivor")
    survivor.handle("py.hang", lambda run: {"finished_on_attempt": run.attempt})
    running = InThread(survivor, client)
    try:
        done = client.wait(task.id, timeout=30)
        assert done.status is TaskStatus.COMPLETED
        first, second = done.attempts
        assert first.outcome is taskd.AttemptOutcome.INTERRUPTED
        assert first.worker == "py-doomed" and "worker py-doomed" in first.error
        assert second.worker == "py-survivor"
        assert done.result == {"finished_on_attempt": 2}
    finally:
        running.stop()


def test_a_report_under_a_lost_lease_is_refused(server, client):
    channel = grpc.insecure_channel(server.address)
    stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
    requests = [pb.WorkRequest(hello=pb.WorkerHello(worker_id="py-raw", task_types=["py.raw"], capacity=1))]
    release = threading.Event()

    def outgoing():
        yield from requests
        release.wait(30)

    stream = stub.Work(outgoing())
    assert next(stream).WhichOneof("message") == "welcome"
    task = client.submit("py.raw")
    assigned = next(stream)
    lease = assigned.tasks.tasks[0].lease
    client.cancel(task.id)
    assert next(stream).WhichOneof("message") == "revoked"
    with pytest.raises(grpc.RpcError) as refused:
        stub.FinishAttempt(pb.FinishAttemptRequest(result=pb.AttemptResult(lease=lease, released="too late")))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = taskd.errors.from_rpc_error(refused.value)
    assert isinstance(error, taskd.LeaseLost)
    assert client.get(task.id).status is TaskStatus.CANCELLED
    release.set()
    stream.cancel()
    channel.close()


def test_sigterm_drains_a_worker_process_whose_running_task_completes(server, client):
    worker = spawn_worker(server.address, "py-drained", "finish-slowly")
    try:
        assert read_line(worker, "connected") == ""
        task = client.submit("py.slow")
        assert read_line(worker, "started ") == task.id
        worker.send_signal(signal.SIGTERM)
        assert read_line(worker, "stopped") == ""
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    done = client.get(task.id)
    assert done.status is TaskStatus.COMPLETED, done.status_reason
    assert done.result == {"finished_by": "py-drained"}
    assert all(info.worker_id != "py-drained" for info in client.workers())


def test_a_worker_says_what_it_does_when_logging_is_not_configured():
    """No logging configured: a line each for connecting, being connected,
    losing the server and stopping, on stderr."""
    from conftest import Server

    own = Server()
    worker = spawn_worker(own.address, "py-chatty", "finish-slowly")
    try:
        assert read_line(worker, "connected") == ""
        own.stop()  # the server goes away under the worker
        lost = ""
        deadline = time.monotonic() + 30
        while "lost" not in lost and time.monotonic() < deadline:
            lost = worker.stderr.readline()
        worker.send_signal(signal.SIGTERM)
        _, rest = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
        own.stop()
    said = lost + rest
    assert worker.returncode == 0, said
    assert "lost" in lost and own.address in lost and "reconnecting" in lost, said
    assert "py-chatty stopped" in said, said


def test_a_worker_banner_names_it_its_server_and_its_types(server):
    worker = spawn_worker(server.address, "py-banner", "finish-slowly")
    try:
        assert read_line(worker, "connected") == ""
        worker.send_signal(signal.SIGTERM)
        _, said = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    lines = said.splitlines()
    assert any(
        line.startswith("taskd worker: py-banner connected to") and server.address in line and "py.slow" in line
        for line in lines
    ), said
    assert all(line.startswith("taskd worker: ") for line in lines), said
