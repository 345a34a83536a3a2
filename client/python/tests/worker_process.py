"""A worker in a process of its own, for tests that kill or signal it.

    python worker_process.py ADDRESS WORKER_ID BEHAVIOUR

BEHAVIOUR is `hang` (tasks of type py.hang run until the process dies) or
`finish-slowly` (py.slow tasks take 0.5s). It prints `started TASK_ID` when
a handler starts and `connected` once its types are served."""

import sys
import threading
import time

import taskd

address, worker_id, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
worker = taskd.Worker(address, worker_id=worker_id, capacity=2, drain_timeout=20)


def started(run: taskd.TaskRun) -> None:
    print(f"started {run.id}", flush=True)


if behaviour == "hang":

    @worker.task("py.hang")
    def hang(run: taskd.TaskRun):
        started(run)
        threading.Event().wait()

elif behaviour == "finish-slowly":

    @worker.task("py.slow")
    def slow(run: taskd.TaskRun):
        started(run)
        time.sleep(0.5)
        return {"finished_by": worker_id}


def announce_when_connected():
    client = taskd.Client(address)
    while not any(info.worker_id == worker_id for info in client.workers()):
        time.sleep(0.01)
    print("connected", flush=True)


threading.Thread(target=announce_when_connected, daemon=True).start()
worker.run()
print("stopped", flush=True)
