"""The RAG example (examples/rag) end to end on a real taskd: its worker in
a process of its own, its pipeline script run as a user runs it, on the
sample documents it ships."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import taskd
from taskd import TaskStatus

for _module in ("numpy", "usearch", "pypdf"):
    pytest.importorskip(
        _module, reason=f"the RAG example needs {_module}: pip install -r client/python/examples/rag/requirements.txt"
    )

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rag"
DOCS = EXAMPLE / "docs"
sys.path.insert(0, str(EXAMPLE))

import documents  # noqa: E402  (the example's modules, from EXAMPLE)
import embedding  # noqa: E402
import worker as example_worker  # noqa: E402
from store import Store, VectorIndex  # noqa: E402

WORKER_ID = "rag-example"
QUERY = "How does an HNSW approximate nearest neighbour index search?"
UNRELATED = "The stock market closed higher on Friday after strong quarterly earnings from the banks."


@pytest.fixture(scope="module")
def rag_worker(server, tmp_path_factory):
    """examples/rag/worker.py in a process of its own, started in another
    directory than the documents (paths must not depend on it)."""
    home = tmp_path_factory.mktemp("rag-worker")
    log = open(home / "worker.log", "w+")
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "worker.py"), "--server", server.address, "--worker-id", WORKER_ID],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with taskd.Client(server.address, timeout=10) as client:
            deadline = time.monotonic() + 30
            while not any(info.worker_id == WORKER_ID for info in client.workers()):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise AssertionError(f"the example worker did not connect:\n{log.read()}")
                time.sleep(0.02)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def run_pipeline(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "pipeline.py"), "--server", server.address, "--timeout", "30", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def built(server, rag_worker, tmp_path_factory):
    """One run of the pipeline on the sample documents, with a query: its
    process, its summary and its store."""
    work = tmp_path_factory.mktemp("rag")
    store, summary = work / "store", work / "summary.json"
    ran = run_pipeline(
        server, "--docs", str(DOCS), "--store", str(store), "--query", QUERY, "--summary", str(summary)
    )
    assert ran.returncode == 0, f"stdout:\n{ran.stdout}\nstderr:\n{ran.stderr}"
    return ran, json.loads(summary.read_text()), store


def expected_chunks(document: Path) -> int:
    return len(documents.split(documents.read_text(document), 800, 200))


def test_every_document_is_processed_and_every_chunk_indexed(built):
    ran, summary, store = built
    samples = sorted(DOCS.iterdir())
    assert {path.suffix for path in samples} == {".txt", ".md", ".pdf"}
    processed = {Path(result["document"]).name: result for result in summary["documents"]}
    assert sorted(processed) == [path.name for path in samples]
    for path in samples:
        result = processed[path.name]
        assert result["chunks"] == expected_chunks(path) > 0, path.name
        assert result["characters"] > 0
        chunk_file = json.loads(Store(store).chunk_path(result["doc_id"]).read_text())
        assert len(chunk_file["chunks"]) == result["chunks"]

    total = sum(result["chunks"] for result in processed.values())
    assert summary["index"] == {"indexed": total, "total": total, "documents": len(samples)}
    index = VectorIndex.open(Store(store))
    assert len(index) == len(index.index) == total
    assert {Path(entry["document"]).name for entry in index.entries.values()} == set(processed)
    pdf_text = " ".join(e["text"] for e in index.entries.values() if e["document"].endswith(".pdf"))
    assert "blossom end rot" in pdf_text, "pypdf extracted the sample PDF's text"

    # It said what happened as it happened. (Which statuses and progress it
    # saw on the way depends on timing: a watch may start after a quick
    # task has ended, and taskd may skip a report made just before the end.)
    for label in [f"document_processing {name}" for name in processed] + ["vector_store_update"]:
        assert re.search(rf"^  {re.escape(label)}: \w+ -> COMPLETED$", ran.stdout, re.MULTILINE), label


def test_the_handlers_report_progress_per_chunk_and_per_batch(tmp_path):
    class Run:
        """What a handler uses of a taskd.TaskRun."""

        def __init__(self, params):
            self.params, self.cancelled, self.reports = params, False, []

        def progress(self, percent, message=""):
            self.reports.append((round(percent), message))

    document = DOCS / "task-queues.txt"
    run = Run({"path": str(document), "chunk_size": 800, "chunk_overlap": 200, "store": str(tmp_path)})
    chunks = expected_chunks(document)
    assert 1 < chunks <= example_worker.BATCH
    assert example_worker.process_document(run)["chunks"] == chunks
    assert run.reports == [(round(100 * n / chunks), f"chunk {n}/{chunks}") for n in range(1, chunks + 1)]

    run = Run({"store": str(tmp_path)})
    assert example_worker.update_vector_store(run) == {"indexed": chunks, "total": chunks, "documents": 1}
    assert run.reports == [(100, f"embedded {chunks}/{chunks} chunks")]


def test_a_query_finds_a_chunk_of_the_right_document_first(built):
    _, summary, store = built
    assert Path(summary["hits"][0]["document"]).name == "vector-search.md"
    assert summary["hits"][0]["similarity"] >= summary["hits"][-1]["similarity"]
    index = VectorIndex.open(Store(store))
    for query, document in [
        ("How many times is a failed task retried, and with what backoff?", "task-queues.txt"),
        ("How often should I water tomato plants in hot weather?", "gardening.pdf"),
        ("What does cosine similarity between embeddings measure?", "vector-search.md"),
    ]:
        (top,) = index.search(embedding.embed(query), 1)
        assert Path(top.document).name == document, query


def test_a_grounded_response_scores_higher_than_an_unrelated_one(built, client):
    _, summary, store = built
    grounded = summary["evaluation"]  # the pipeline's: of the top chunk's own text
    assert summary["response"] == summary["hits"][0]["text"]
    task = client.submit(
        "response_quality_evaluation", {"store": str(store), "query": QUERY, "response": UNRELATED, "k": 4}
    )
    done = client.wait(task.id, timeout=30)
    assert done.status is TaskStatus.COMPLETED, done.error
    unrelated = done.result
    for result in (grounded, unrelated):
        assert 0.0 <= result["score"] <= 1.0 and len(result["sources"]) == 4
    assert grounded["score"] > 0.9 and unrelated["score"] < 0.3
    assert grounded["grounding"] > unrelated["grounding"] and grounded["relevance"] > unrelated["relevance"]
    assert "stock" in unrelated["unsupported_terms"]


def test_running_the_pipeline_again_indexes_nothing_twice(built, server, tmp_path):
    _, summary, store = built
    again = run_pipeline(server, "--docs", str(DOCS), "--store", str(store), "--summary", str(tmp_path / "again.json"))
    assert again.returncode == 0, again.stderr
    total = summary["index"]["total"]
    assert json.loads((tmp_path / "again.json").read_text())["index"] == {"indexed": 0, "total": total, "documents": 3}
    assert len(VectorIndex.open(Store(store))) == total


def test_an_unreadable_document_fails_the_pipeline_naming_it(server, rag_worker, tmp_path, client):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Notes\n\nA short note about compost and mulch.\n")
    (docs / "broken.pdf").write_bytes(b"this is not a PDF")
    ran = run_pipeline(server, "--docs", str(docs), "--store", str(tmp_path / "store"))
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "document_processing broken.pdf" in ran.stderr and "ended FAILED" in ran.stderr
    assert "params.path: " in ran.stderr and "broken.pdf: not a readable PDF" in ran.stderr
    assert "vector_store_update" in ran.stderr, "the update after it cannot run, and says so"

    (failed,) = [
        task for task in client.iter_tasks(TaskStatus.FAILED, "document_processing")
        if task.params.get("path", "").endswith("broken.pdf")
    ]
    assert len(failed.attempts) == 1, "a permanent failure is not retried"


def test_the_worker_refuses_bad_params_naming_them(built, client):
    _, _, store = built
    for task_type, params, message in [
        ("document_processing", {"store": str(store)}, "params.path: required"),
        ("document_processing", {"path": str(DOCS / "nope.txt"), "store": str(store)}, "nope.txt: no such file"),
        ("document_processing", {"path": str(DOCS / "a.docx"), "store": str(store)}, "unsupported file type '.docx'"),
        ("vector_store_update", {"store": str(store), "documents": "all"}, "params.documents: must be a list"),
        ("response_quality_evaluation", {"store": str(store), "query": QUERY, "response": "x", "k": 0}, "params.k:"),
    ]:
        task = client.submit(task_type, params, max_retries=3)
        done = client.wait(task.id, timeout=30)
        assert done.status is TaskStatus.FAILED and message in done.error, (task_type, done.error)
        assert len(done.attempts) == 1, "a permanent failure is not retried"
