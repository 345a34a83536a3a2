"""A Python SDK worker serving `bench.noop` with an asyncio handler that
answers with the wall-clock time it started, for `cargo bench --bench
throughput` (its `workers` phase starts this script and reads the figures).

Usage: noop_worker.py ADDRESS CAPACITY. It stops when its stdin closes.
"""

import sys
import threading
import time

import taskd


def main() -> None:
    address, capacity = sys.argv[1], int(sys.argv[2])
    worker = taskd.Worker(address, capacity=capacity)

    @worker.task("bench.noop")
    async def noop(run: taskd.TaskRun) -> dict:
        return {"started_at_ns": time.time_ns()}

    def stop_when_parent_closes_stdin() -> None:
        sys.stdin.read()
        worker.stop()

    threading.Thread(target=stop_when_parent_closes_stdin, daemon=True).start()
    worker.run(handle_signals=False)


if __name__ == "__main__":
    main()
