"""A taskd worker that serves the RAG pipeline's three task types.

    python worker.py --server 127.0.0.1:50051 [--capacity 4]

- `document_processing` {"path", "chunk_size": 800, "chunk_overlap": 200,
  "store"}: reads a .txt, .md or .pdf document, splits it into overlapping
  chunks and writes them to <store>/chunks/<doc-id>.json.
- `vector_store_update` {"store", "documents": [paths] (default: every
  chunk file)}: embeds the chunks not indexed yet and adds them to the
  usearch index <store>/index.usearch; running it again adds nothing.
- `response_quality_evaluation` {"store", "query", "response", "k": 4}:
  retrieves the k chunks nearest the query and scores how well the
  response is grounded in them.

Relative paths are taken from the worker's working directory. Bad params
and unreadable documents fail the task at once (`PermanentFailure`, naming
the param): no retry could fix them. Anything else raised -- a full disk,
say -- is an ordinary failure, retried per the task's policy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import taskd
from taskd import PermanentFailure

import documents
import embedding
from store import Store, StoreError, VectorIndex, document_id

log = logging.getLogger("rag.worker")

#: Chunks embedded and added between two progress reports.
BATCH = 16


# Params, checked up front so that a mistake names the param at fault.


def _string(params: Dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PermanentFailure(f"params.{name}: required, a non-empty string (got {value!r})")
    return value


def _integer(params: Dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    # JSON has no integers of its own: 800.0 arrives as 800, but true is not 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PermanentFailure(f"params.{name}: must be a whole number from {low} to {high} (got {value!r})")
    return value


def _store(params: Dict[str, Any]) -> Store:
    return Store(Path(_string(params, "store")).expanduser().resolve())


def _open_index(store: Store) -> VectorIndex:
    try:
        return VectorIndex.open(store)
    except StoreError as error:
        raise PermanentFailure(f"params.store: {error}") from None


# The handlers. Each runs in the worker's thread pool; each stops early,
# without saving anything, once its task is cancelled.


def process_document(run: taskd.TaskRun) -> Optional[Dict[str, Any]]:
    """document_processing: a document -> its chunk file."""
    params = run.params
    path = Path(_string(params, "path")).expanduser().resolve()
    size = _integer(params, "chunk_size", 800, 50, 100_000)
    overlap = _integer(params, "chunk_overlap", min(200, size // 4), 0, size - 1)
    store = _store(params)
    try:
        text = documents.read_text(path)
    except documents.DocumentError as error:
        raise PermanentFailure(f"params.path: {error}") from None

    chunks = documents.split(text, size, overlap)
    records = []
    for chunk in chunks:
        if run.cancelled:
            return None
        records.append({"number": chunk.number, "start": chunk.start, "end": chunk.end, "text": chunk.text})
        run.progress(100.0 * (chunk.number + 1) / len(chunks), f"chunk {chunk.number + 1}/{len(chunks)}")

    # What vector_store_update compares to know whether the indexed chunks
    # of this document are still the current ones.
    fingerprint = hashlib.sha256(
        json.dumps([size, overlap, [record["text"] for record in records]]).encode("utf-8")
    ).hexdigest()
    doc_id = document_id(path)
    store.save_chunks(
        {
            "doc_id": doc_id,
            "document": str(path),
            "fingerprint": fingerprint,
            "chunk_size": size,
            "chunk_overlap": overlap,
            "characters": len(text),
            "chunks": records,
        }
    )
    log.info("%s: %d chunks of %d characters -> %s", path, len(records), len(text), store.chunk_path(doc_id))
    return {"document": str(path), "doc_id": doc_id, "chunks": len(records), "characters": len(text)}


def _chunk_files(store: Store, listed: Any) -> List[Path]:
    """The chunk files to index: those of the listed documents, or all."""
    if listed is None:
        paths = store.chunk_paths()
        if not paths:
            raise PermanentFailure(f"params.store: {store.root} has no chunks; run document_processing first")
        return paths
    if not isinstance(listed, list) or not all(isinstance(item, str) and item for item in listed):
        raise PermanentFailure(f"params.documents: must be a list of document paths (got {listed!r})")
    paths = []
    for position, document in enumerate(listed):
        path = store.chunk_path(document_id(Path(document).expanduser().resolve()))
        if not path.is_file():
            raise PermanentFailure(
                f"params.documents[{position}]: no chunks for {document} in {store.root}; "
                "run document_processing on it first"
            )
        paths.append(path)
    return paths


def update_vector_store(run: taskd.TaskRun) -> Optional[Dict[str, Any]]:
    """vector_store_update: chunk files -> the usearch index, idempotently."""
    params = run.params
    store = _store(params)
    chunk_files = _chunk_files(store, params.get("documents"))
    # One writer at a time: two updates of one store would both add the
    # same new chunks under different keys.
    with store.locked(exclusive=True):
        index = _open_index(store)
        changed = []
        for path in chunk_files:
            try:
                record = Store.load_chunks(path)
            except StoreError as error:
                raise PermanentFailure(f"params.store: {error}") from None
            if index.fingerprint(record["doc_id"]) != record["fingerprint"]:
                changed.append(record)
        pending = [
            {
                "doc_id": record["doc_id"],
                "document": record["document"],
                "chunk": chunk["number"],
                "text": chunk["text"],
            }
            for record in changed
            for chunk in record["chunks"]
        ]
        if not pending:
            run.progress(100.0, "the index is up to date")
            return {"indexed": 0, "total": len(index), "documents": len(index.documents)}

        for record in changed:
            # A document processed again (edited, or split differently)
            # replaces its old chunks rather than adding to them.
            index.remove_document(record["doc_id"])
        for start in range(0, len(pending), BATCH):
            if run.cancelled:
                return None  # nothing saved: the next update does it all
            batch = pending[start : start + BATCH]
            index.add(batch, embedding.embed_many([chunk["text"] for chunk in batch]))
            done = start + len(batch)
            run.progress(100.0 * done / len(pending), f"embedded {done}/{len(pending)} chunks")
        for record in changed:
            index.mark_indexed(record["doc_id"], record["document"], record["fingerprint"])
        index.save(store)
    log.info("%s: indexed %d chunks, %d in all", store.root, len(pending), len(index))
    return {"indexed": len(pending), "total": len(index), "documents": len(index.documents)}


def evaluate_response(run: taskd.TaskRun) -> Dict[str, Any]:
    """response_quality_evaluation: how well a response is grounded in the
    chunks retrieved for its query.

    - relevance: the highest cosine similarity between the response and a
      retrieved chunk (clipped at 0): is it close to what the store says?
    - grounding: the share of the response's distinct content words found in
      the retrieved text: does it say things the sources do not?
    - score: their mean, in [0, 1].
    """
    params = run.params
    store = _store(params)
    query = _string(params, "query")
    response = _string(params, "response")
    k = _integer(params, "k", 4, 1, 100)
    query_vector = embedding.embed(query)
    if not query_vector.any():
        raise PermanentFailure("params.query: has no words to search by")
    response_vector = embedding.embed(response)
    if not response_vector.any():
        raise PermanentFailure("params.response: has no words to score")

    with store.locked(exclusive=False):
        index = _open_index(store)
        if not len(index):
            raise PermanentFailure(f"params.store: no index in {store.root}; run vector_store_update first")
        hits = index.search(query_vector, k)
        vectors = index.vectors([hit.key for hit in hits])

    similarities = np.clip(vectors @ response_vector, 0.0, 1.0)
    relevance = float(similarities.max())
    response_terms = set(embedding.terms(response))
    retrieved_terms = set(embedding.terms(" ".join(hit.text for hit in hits)))
    grounding = len(response_terms & retrieved_terms) / len(response_terms)
    return {
        "score": round((relevance + grounding) / 2, 4),
        "grounding": round(grounding, 4),
        "relevance": round(relevance, 4),
        "mean_similarity": round(float(similarities.mean()), 4),
        "unsupported_terms": sorted(response_terms - retrieved_terms)[:20],
        "sources": [hit.to_json() for hit in hits],
    }


HANDLERS = {
    "document_processing": process_document,
    "vector_store_update": update_vector_store,
    "response_quality_evaluation": evaluate_response,
}


def build_worker(server: str, *, capacity: int = 4, worker_id: str = "") -> taskd.Worker:
    """A worker serving the three task types."""
    worker = taskd.Worker(server, worker_id=worker_id, capacity=capacity, labels={"example": "rag"})
    for task_type, handler in HANDLERS.items():
        worker.handle(task_type, handler)
    return worker


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051", help="taskd's address (default: %(default)s)")
    parser.add_argument("--capacity", type=int, default=4, help="tasks run at once (default: %(default)s)")
    parser.add_argument("--worker-id", default="", help="how taskd names this worker (default: host-pid)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = build_worker(args.server, capacity=args.capacity, worker_id=args.worker_id)
    log.info("serving %s for taskd at %s; Ctrl-C to stop", ", ".join(HANDLERS), worker.address)
    worker.run()  # until SIGINT or SIGTERM, then drains
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
