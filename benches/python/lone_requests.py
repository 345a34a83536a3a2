"""One request at a time from Python, as an application that submits a task
and waits for the answer before the next: SubmitTask (durable) beside
GetTask, and the batched SubmitTasks rate for scale.

Usage: lone_requests.py ADDRESS STUBS_DIR [ROUNDS]

The stubs are generated from proto/ by grpcio-tools (scripts/bench-python.sh
does it). Calls alternate in rounds so both kinds see the same machine.
"""

import statistics
import sys
import time

sys.path.insert(0, sys.argv[2])

import grpc  # noqa: E402

from taskd.v1 import task_service_pb2 as pb  # noqa: E402
from taskd.v1 import task_service_pb2_grpc as rpc  # noqa: E402

PARKED = "document_processing"  # known from the start, served by nothing built in


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[round((len(ordered) - 1) * fraction)]


def main():
    address = sys.argv[1]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    channel = grpc.insecure_channel(address)
    stub = rpc.TaskServiceStub(channel)
    known = stub.SubmitTask(pb.SubmitTaskRequest(task_type=PARKED))
    gets, submits = [], []
    for _ in range(rounds):
        for _ in range(400):
            started = time.perf_counter()
            stub.GetTask(pb.GetTaskRequest(task_id=known.id))
            gets.append((time.perf_counter() - started) * 1e6)
        for _ in range(400):
            started = time.perf_counter()
            stub.SubmitTask(pb.SubmitTaskRequest(task_type=PARKED))
            submits.append((time.perf_counter() - started) * 1e6)
    batch_started = time.perf_counter()
    batches = 40
    for _ in range(batches):
        stub.SubmitTasks(pb.SubmitTasksRequest(tasks=[pb.SubmitTaskRequest(task_type=PARKED)] * 500))
    batch_rate = batches * 500 / (time.perf_counter() - batch_started)
    print(f"python one at a time: GetTask p50 / p99 (us)              {percentile(gets, 0.5):.0f} / {percentile(gets, 0.99):.0f}")
    print(f"python one at a time: SubmitTask, durable, p50 / p99 (us) {percentile(submits, 0.5):.0f} / {percentile(submits, 0.99):.0f}")
    print(f"python one at a time: submit - GetTask, p50 (us)          {statistics.median(submits) - statistics.median(gets):.0f}")
    print(f"python SubmitTasks x500, one call at a time (tasks/s)     {batch_rate:.0f}")


if __name__ == "__main__":
    main()
