"""Submitting from Python through the SDK, side by side in one process:
one `Client.submit` at a time, the buffered submitter fed by 32 threads
that each submit one task at a time (what an application's request
handlers do), and `submit_many` batches of 500 for scale.

Usage: submitters.py ADDRESS [SECONDS] [ROUNDS]

Run by scripts/bench-python.sh against a release taskd. The phases
alternate over rounds and medians are printed, the machine being shared.
"""

import statistics
import sys
import threading
import time

import taskd

PARKED = "document_processing"  # known from the start, served by nothing here


def one_at_a_time(client: taskd.Client, seconds: float) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.submit(PARKED, {"n": done})
        done += 1
    return done / (time.perf_counter() - started)


def buffered(client: taskd.Client, seconds: float, threads: int = 32) -> float:
    submitter = client.submitter()
    counts = [0] * threads
    stop = threading.Event()

    def submit_until_stopped(index: int) -> None:
        while not stop.is_set():
            submitter.submit(PARKED, {"n": counts[index]})
            counts[index] += 1

    workers = [threading.Thread(target=submit_until_stopped, args=(index,)) for index in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    submitter.close()
    return sum(counts) / elapsed


def batches(client: taskd.Client, seconds: float, size: int = 500) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.submit_many([taskd.NewTask(PARKED, {"n": index}) for index in range(size)])
        done += size
    return done / (time.perf_counter() - started)


def main() -> None:
    address = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    client = taskd.Client(address)
    results = {"one": [], "buffered": [], "batches": []}
    for _ in range(rounds):
        results["one"].append(one_at_a_time(client, seconds))
        results["buffered"].append(buffered(client, seconds))
        results["batches"].append(batches(client, seconds))

    def row(label: str, key: str, note: str = "") -> None:
        values = results[key]
        shown = ", ".join(f"{value:.0f}" for value in values)
        print(f"{label:<56} {statistics.median(values):.0f}   (rounds {shown}){note}")

    row("python SDK: Client.submit, one at a time (tasks/s)", "one")
    row("python SDK: buffered submitter, 32 threads (tasks/s)", "buffered", "; target >= 15000")
    row("python SDK: submit_many x500 (tasks/s)", "batches")


if __name__ == "__main__":
    main()
