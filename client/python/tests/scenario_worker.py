"""The Python SDK's worker, driven by the worker scenario suite
(test_worker_scenarios.py), which runs every scenario against this and
against the Rust SDK's twin (client/examples/scenario_worker.rs). Same
arguments, same output:

    python scenario_worker.py ADDRESS WORKER_ID [--capacity N] [--drain-timeout S]
                              [--cancel-grace S] [--token T]

See the Rust twin for what it serves and prints."""

import argparse
import asyncio
import sys
import threading
import time

import taskd

parser = argparse.ArgumentParser()
parser.add_argument("address")
parser.add_argument("worker_id")
parser.add_argument("--capacity", type=int, default=1)
parser.add_argument("--drain-timeout", type=float, default=30.0)
parser.add_argument("--cancel-grace", type=float, default=5.0)
parser.add_argument("--token", default=None)
args = parser.parse_args()

worker = taskd.Worker(
    args.address,
    worker_id=args.worker_id,
    capacity=args.capacity,
    drain_timeout=args.drain_timeout,
    cancel_grace=args.cancel_grace,
    token=args.token,
)


@worker.task("scenario.quick")
def quick(run: taskd.TaskRun):
    print(f"started {run.id}", flush=True)
    return {"sdk": "python"}


@worker.task("scenario.wait_cancel")
async def wait_cancel(run: taskd.TaskRun):
    print(f"started {run.id}", flush=True)
    while not run.cancelled:
        await asyncio.sleep(0.01)
    print(f"saw-cancel {run.id}", flush=True)


@worker.task("scenario.cleanup")
async def cleanup(run: taskd.TaskRun):
    print(f"started {run.id}", flush=True)
    while not run.cancelled:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    print(f"cleaned-up {run.id}", flush=True)


@worker.task("scenario.ignore_cancel")
async def ignore_cancel(run: taskd.TaskRun):
    print(f"started {run.id}", flush=True)
    await asyncio.sleep(60)


def announce_when_connected():
    client = taskd.Client(args.address, token=args.token)
    while True:
        try:
            if any(info.worker_id == args.worker_id for info in client.workers()):
                print("connected", flush=True)
                return
        except taskd.TaskdError:
            pass
        time.sleep(0.01)


threading.Thread(target=announce_when_connected, daemon=True).start()
try:
    worker.run()
except taskd.TaskdError as refused:
    print(f"refused {refused.code.name}", flush=True)
    sys.exit(3)
print("stopped", flush=True)
