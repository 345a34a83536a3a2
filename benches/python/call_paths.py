"""What one call costs from Python, by the way it is made, side by side in
one process against one server: the SDK as it is, raw grpcio stubs on a
default channel and on one with SingleThreadedUnaryStream (server streams
read on the calling thread), and the REST bridge over one keep-alive
`http.client` connection. For each: GetTask, SubmitTask (durable, a parked
type), and running a no-op to its end (RunTask, or submit + a watch).

Usage: call_paths.py ADDRESS STUBS_DIR [ROUNDS]

The paths alternate in rounds so that all see the same machine; medians of
the per-round p50s are printed, in microseconds.
"""

import http.client
import json
import statistics
import sys
import time

sys.path.insert(0, sys.argv[2])

import grpc  # noqa: E402
import taskd  # noqa: E402

from taskd.v1 import task_service_pb2 as pb  # noqa: E402
from taskd.v1 import task_service_pb2_grpc as rpc  # noqa: E402

PARKED = "document_processing"
CALLS = 300


def p50(call, count=CALLS):
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def grpc_paths(stub, known_id):
    def watch_to_end():
        task = stub.SubmitTask(pb.SubmitTaskRequest(task_type="diag.echo"))
        for event in stub.WatchTask(pb.WatchTaskRequest(task_id=task.id)):
            if event.task.status in (4, 5, 6):
                break

    return {
        "get": lambda: stub.GetTask(pb.GetTaskRequest(task_id=known_id)),
        "submit": lambda: stub.SubmitTask(pb.SubmitTaskRequest(task_type=PARKED)),
        "run": lambda: stub.RunTask(pb.RunTaskRequest(task=pb.SubmitTaskRequest(task_type="diag.echo"))),
        "submit+watch": watch_to_end,
    }


def rest_paths(host, port, known_id):
    connection = http.client.HTTPConnection(host, port)

    def call(method, path, body=None):
        headers = {"content-type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        return json.loads(connection.getresponse().read())

    return {
        "get": lambda: call("GET", f"/api/v1/tasks/{known_id}"),
        "submit": lambda: call("POST", "/api/v1/tasks", b'{"task_type": "%s"}' % PARKED.encode()),
        "run": lambda: call("POST", "/api/v1/tasks/run", b'{"task": {"task_type": "diag.echo"}}'),
    }


def sdk_paths(client, known_id):
    return {
        "get": lambda: client.get(known_id),
        "submit": lambda: client.submit(PARKED),
        "run": lambda: client.run("diag.echo"),
        "submit+watch": lambda: client.submit("diag.echo").wait(),
    }


def main():
    address = sys.argv[1]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    host, port = address.rsplit(":", 1)
    default_stub = rpc.TaskServiceStub(grpc.insecure_channel(address))
    single_threaded = grpc.insecure_channel(
        address, options=[(grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1)]
    )
    single_stub = rpc.TaskServiceStub(single_threaded)
    known_id = default_stub.SubmitTask(pb.SubmitTaskRequest(task_type=PARKED)).id
    paths = {
        "SDK (grpcio)": sdk_paths(taskd.Client(address), known_id),
        "grpcio stub": grpc_paths(default_stub, known_id),
        "grpcio stub, single-threaded streams": grpc_paths(single_stub, known_id),
        "REST, http.client keep-alive": rest_paths(host, int(port), known_id),
    }
    results = {(path, call): [] for path, calls in paths.items() for call in calls}
    for _ in range(rounds):
        for path, calls in paths.items():
            for call, function in calls.items():
                results[(path, call)].append(p50(function))
    print(f"{'p50 of one call, us (median of ' + str(rounds) + ' rounds)':<44} {'get':>7} {'submit':>7} {'run':>7} {'submit+watch':>13}")
    for path, calls in paths.items():
        row = [statistics.median(results[(path, call)]) if call in calls else None for call in ("get", "submit", "run", "submit+watch")]
        cells = " ".join(f"{value:>7.0f}" if value is not None else f"{'-':>7}" for value in row[:3])
        last = f"{row[3]:>13.0f}" if row[3] is not None else f"{'-':>13}"
        print(f"{path:<44} {cells} {last}")


if __name__ == "__main__":
    main()
