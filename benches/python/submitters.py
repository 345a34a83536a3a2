"""Submitting from Python through the SDK, side by side in one process:
one `Client.submit` at a time, the buffered submitter fed by 32 threads
that each submit one task at a time (what an application's request
handlers do), and `submit_many` batches of 500 for scale; then one task
alone, as an application sees it: a no-op `diag.echo` submitted and its
result awaited (`wait`, a watch), or polled every millisecond.

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


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[round((len(ordered) - 1) * fraction)]


def lone_latencies(client: taskd.Client, count: int = 400) -> dict:
    """Microseconds: a submit alone; submit then wait for the result; submit
    then poll every millisecond until the result is seen."""
    submits, waited, polled, ran = [], [], [], []
    for index in range(count):
        started = time.perf_counter()
        client.submit(PARKED, {"n": index})
        submits.append((time.perf_counter() - started) * 1e6)
    for _ in range(count):
        started = time.perf_counter()
        task = client.submit("diag.echo")
        client.wait(task.id, timeout=10)
        waited.append((time.perf_counter() - started) * 1e6)
    for _ in range(count):
        started = time.perf_counter()
        client.run("diag.echo")
        ran.append((time.perf_counter() - started) * 1e6)
    for _ in range(count):
        started = time.perf_counter()
        task = client.submit("diag.echo")
        while task.status is not taskd.TaskStatus.COMPLETED:
            time.sleep(0.001)
            task = client.get(task.id)
        polled.append((time.perf_counter() - started) * 1e6)
    return {"submit": submits, "wait": waited, "run": ran, "poll": polled}


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
    lone = lone_latencies(client)
    for key, label in [
        ("submit", "python SDK: one submit alone, p50 / p99 (us)"),
        ("wait", "python SDK: submit + wait for a no-op, p50 / p99 (us)"),
        ("run", "python SDK: run a no-op (one call), p50 / p99 (us)"),
        ("poll", "python SDK: submit + 1 ms polls until seen, p50 / p99 (us)"),
    ]:
        print(f"{label:<56} {percentile(lone[key], 0.5):.0f} / {percentile(lone[key], 0.99):.0f}")


if __name__ == "__main__":
    main()
