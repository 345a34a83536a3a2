"""Runs the RAG pipeline on taskd, then a query against its index.

    python pipeline.py --server 127.0.0.1:50051 --docs docs --store /tmp/rag-store \\
        --query "How are failed tasks retried?"

1. Submits, in one atomic call, a DAG: a `document_processing` task per
   document of --docs (*.txt, *.md, *.pdf) and a `vector_store_update` task
   that depends on all of them.
2. Watches every task of the DAG, printing status changes and progress as
   they happen, until all have ended; fails if any did not complete.
3. With --query: searches the index here, in this process, and prints the
   top chunks with their document and similarity; then submits one
   `response_quality_evaluation` of --response (default: the top chunk's
   text) and prints its result.

A worker (worker.py) must be serving the three task types. Exit status: 0
on success, 1 if a task failed or time ran out, 2 for a usage problem (no
documents, no worker, taskd unreachable).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import taskd
from taskd import NewTask, Task, TaskStatus

import documents
import embedding
from store import Hit, Store, VectorIndex

TASK_TYPES = ("document_processing", "vector_store_update", "response_quality_evaluation")


class PipelineError(Exception):
    """Ends the run with this message and exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def find_documents(folder: Path) -> List[Path]:
    """The supported documents under `folder`, in path order."""
    if not folder.is_dir():
        raise PipelineError(f"--docs: {folder} is not a directory", 2)
    found = sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in documents.SUPPORTED)
    if not found:
        raise PipelineError(f"--docs: no {', '.join(documents.SUPPORTED)} files in {folder}", 2)
    return found


def check_workers(client: taskd.Client) -> None:
    """Fails early when no worker serves a type, instead of waiting for a
    task that nothing will run."""
    served = {info.task_type for info in client.task_types() if info.handler_available}
    missing = [task_type for task_type in TASK_TYPES if task_type not in served]
    if missing:
        raise PipelineError(
            f"no worker serves {', '.join(missing)}: start one first (python worker.py --server {client.address})", 2
        )


def submit_dag(client: taskd.Client, docs: Sequence[Path], store: Path, chunk_size: int, overlap: int) -> List[Task]:
    """Submits the processing tasks and the index update after them, all or
    none; returns them in that order."""
    batch = [
        NewTask(
            "document_processing",
            {"path": str(doc), "chunk_size": chunk_size, "chunk_overlap": overlap, "store": str(store)},
            name=f"process {doc.name}",
            ref=f"doc-{position}",
        )
        for position, doc in enumerate(docs)
    ]
    batch.append(
        NewTask(
            "vector_store_update",
            {"store": str(store), "documents": [str(doc) for doc in docs]},
            name="update the vector index",
            ref="index",
            depends_on=[task.ref for task in batch],
        )
    )
    return client.submit_many(batch)


def watch_dag(client: taskd.Client, tasks: Sequence[Task], labels: Dict[str, str], deadline: float) -> Dict[str, Task]:
    """Prints each task's status changes and progress (under its label in
    `labels`) until every task has ended; returns them as they ended.
    `TimeoutError` at `deadline` (time.monotonic())."""
    events: "queue.Queue[tuple]" = queue.Queue()
    watches = []

    def pump(task_id: str, watch: taskd.Watch) -> None:
        # One stream per task: each starts with a snapshot, so nothing that
        # happened between the submit and the watch is missed.
        try:
            for event in watch:
                events.put((task_id, event))
        except taskd.TaskdError as error:
            events.put((task_id, error))
        events.put((task_id, None))  # the stream ended

    for task in tasks:
        watch = client.watch(task.id)
        watches.append(watch)
        threading.Thread(target=pump, args=(task.id, watch), daemon=True).start()

    status: Dict[str, TaskStatus] = {}
    progress: Dict[str, int] = {}
    ended: Dict[str, Task] = {}
    try:
        while len(ended) < len(tasks):
            try:
                task_id, event = events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError from None
            if isinstance(event, Exception):
                raise event
            if event is None and task_id in ended:
                continue  # a watch ends after its task did
            # A LAGGED event carries no task, and an early end of a stream
            # none: read where the task is now.
            task = event.task if event is not None and event.task is not None else client.get(task_id)
            if event is None and not task.status.is_terminal:
                raise taskd.Unavailable(f"the watch of task {task_id} ended before the task did")
            if status.get(task_id) != task.status:
                before = status[task_id].name if task_id in status else "submitted"
                why = task.error or task.status_reason
                suffix = f" ({why})" if why and task.status is not TaskStatus.COMPLETED else ""
                print(f"  {labels[task_id]}: {before} -> {task.status.name}{suffix}", flush=True)
                status[task_id] = task.status
            # One line per whole percent, so that a document of thousands of
            # chunks does not print thousands of lines; none once the task
            # has ended (its status line said so).
            if task.progress is not None and not task.status.is_terminal:
                percent = int(task.progress.percent)
                if progress.get(task_id) != percent:
                    progress[task_id] = percent
                    print(f"  {labels[task_id]}: {task.progress.percent:5.1f}% {task.progress.message}", flush=True)
            if task.status.is_terminal:
                ended[task_id] = task
    finally:
        for watch in watches:
            watch.close()
    return ended


def _cancel(client: taskd.Client, task_ids: Sequence[str]) -> None:
    """Cancels those of the tasks that have not ended."""
    for task_id in task_ids:
        try:
            client.cancel(task_id, "the pipeline timed out")
        except taskd.FailedPrecondition:
            pass  # it ended meanwhile


def ingest(
    client: taskd.Client, docs: Sequence[Path], store: Path, args: argparse.Namespace, deadline: float
) -> Dict[str, Any]:
    """Steps 1 and 2: the DAG, submitted and watched to its end."""
    tasks = submit_dag(client, docs, store, args.chunk_size, args.chunk_overlap)
    labels = {task.id: f"document_processing {doc.name}" for task, doc in zip(tasks, docs)}
    labels[tasks[-1].id] = "vector_store_update"
    print(f"submitted {len(tasks)} tasks: {len(docs)} document_processing, then vector_store_update", flush=True)
    try:
        ended = watch_dag(client, tasks, labels, deadline)
    except TimeoutError:
        _cancel(client, [task.id for task in tasks])
        raise PipelineError(
            f"the DAG did not finish within --timeout {args.timeout:g}s; cancelled what was left"
        ) from None

    failed = [ended[task.id] for task in tasks if ended[task.id].status is not TaskStatus.COMPLETED]
    if failed:
        lines = [
            f"  {labels[task.id]} ({task.id}) ended {task.status.name}: {task.error or task.status_reason}"
            for task in failed
        ]
        raise PipelineError("the pipeline failed:\n" + "\n".join(lines))
    processed = [ended[task.id].result for task in tasks[:-1]]
    update = ended[tasks[-1].id].result
    for result in processed:
        print(f"processed {result['document']}: {result['chunks']} chunks, {result['characters']} characters")
    print(f"index: {update['indexed']} chunks added, {update['total']} in all")
    return {
        "tasks": [task.id for task in tasks],
        "documents": processed,
        "index": update,
    }


def search(store: Path, query: str, k: int) -> List[Hit]:
    """Step 3a: the query, run here against the index on disk."""
    vector = embedding.embed(query)
    if not vector.any():
        raise PipelineError("--query: has no words to search by", 2)
    on_disk = Store(store)
    with on_disk.locked(exclusive=False):
        index = VectorIndex.open(on_disk)
    hits = index.search(vector, k)
    if not hits:
        raise PipelineError(f"the index in {store} is empty")
    return hits


def evaluate(client: taskd.Client, store: Path, query: str, response: str, k: int, deadline: float) -> Dict[str, Any]:
    """Step 3b: one response_quality_evaluation task, waited for."""
    task = client.submit(
        "response_quality_evaluation",
        {"store": str(store), "query": query, "response": response, "k": k},
        name="evaluate a response",
    )
    try:
        done = client.wait(task.id, timeout=max(0.1, deadline - time.monotonic()))
    except TimeoutError:
        _cancel(client, [task.id])
        raise PipelineError("the evaluation did not finish within --timeout; cancelled it") from None
    if done.status is not TaskStatus.COMPLETED:
        why = done.error or done.status_reason
        raise PipelineError(f"response_quality_evaluation ({done.id}) ended {done.status.name}: {why}")
    return done.result


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """The whole pipeline; returns its summary."""
    deadline = time.monotonic() + args.timeout
    docs = [path.resolve() for path in find_documents(Path(args.docs))]
    # Absolute paths: the worker may run in another directory.
    store = Path(args.store).expanduser().resolve()
    with taskd.Client(args.server, timeout=30) as client:
        check_workers(client)
        summary = ingest(client, docs, store, args, deadline)
        if args.query is None:
            return summary
        hits = search(store, args.query, args.k)
        print(f"\ntop {len(hits)} chunks for {args.query!r}:")
        for rank, hit in enumerate(hits, 1):
            snippet = " ".join(hit.text.split())
            snippet = snippet if len(snippet) <= 160 else snippet[:157] + "..."
            print(f"  {rank}. {hit.similarity:.3f}  {Path(hit.document).name} #{hit.chunk}: {snippet}")
        response = args.response if args.response is not None else hits[0].text
        result = evaluate(client, store, args.query, response, args.k, deadline)
        print(
            f"\nevaluation of the response: score {result['score']:.3f} "
            f"(grounding {result['grounding']:.3f}, relevance {result['relevance']:.3f})"
        )
        summary.update(hits=[hit.to_json() for hit in hits], response=response, evaluation=result)
        return summary


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051", help="taskd's address (default: %(default)s)")
    parser.add_argument(
        "--docs", default=str(Path(__file__).with_name("docs")), help="folder of documents (default: the samples)"
    )
    parser.add_argument("--store", required=True, help="directory of the chunks and the index (created if missing)")
    parser.add_argument("--query", help="a question to search the index for once it is built")
    parser.add_argument("--response", help="the response to evaluate for --query (default: the top chunk's text)")
    parser.add_argument("-k", type=int, default=4, help="chunks to retrieve (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=800, help="characters per chunk (default: %(default)s)")
    parser.add_argument(
        "--chunk-overlap", type=int, default=200, help="characters neighbours share (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds the whole run may take (default: %(default)s)"
    )
    parser.add_argument("--summary", help="also write the run's results to this JSON file")
    args = parser.parse_args(argv)
    if not 0 <= args.chunk_overlap < args.chunk_size:
        parser.error("need 0 <= --chunk-overlap < --chunk-size")
    if args.k < 1 or args.timeout <= 0:
        parser.error("-k and --timeout must be positive")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.status
    except taskd.TaskdError as error:
        print(f"error: taskd at {args.server} refused or did not answer: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: tasks already submitted go on in taskd", file=sys.stderr)
        return 130
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
