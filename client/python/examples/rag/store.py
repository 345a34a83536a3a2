"""The example's on-disk store: chunk files, and the vector index over them.

    <store>/chunks/<doc-id>.json   one document's chunks (document_processing writes it)
    <store>/index.usearch          the usearch index, key -> vector (vector_store_update)
    <store>/index.json             its sidecar: key -> document, chunk number, text; and
                                   per document the fingerprint of the chunks indexed
    <store>/.lock                  held exclusively by writers of the index, shared by readers

The chunk files are the source of truth; the index is derived from them.
Every file is written under a temporary name and renamed into place, so a
reader never sees half of one. Should the index and its sidecar ever
disagree (a crash between their two renames), the index is rebuilt from
the chunk files rather than trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
from usearch.index import Index

import embedding

log = logging.getLogger("rag.store")


class StoreError(ValueError):
    """A store that cannot be used as it is: trying again would not help."""


def document_id(path: Path) -> str:
    """A file-name-safe id for the document at `path`: its readable stem
    plus a hash of its absolute path, so two `notes.md` in different folders
    do not overwrite each other's chunks."""
    stem = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")[:48] or "document"
    digest = hashlib.blake2b(str(path.resolve()).encode("utf-8"), digest_size=4).hexdigest()
    return f"{stem}-{digest}"


def write_json_atomically(path: Path, value: Any) -> None:
    """Writes `value` to `path` so that readers see the old file or the new
    one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False) as out:
        json.dump(value, out, ensure_ascii=False, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(out.name, path)


class Store:
    """A store directory; see the module docs for its layout."""

    def __init__(self, root: Path):
        self.root = root
        self.chunks_dir = root / "chunks"
        self.index_path = root / "index.usearch"
        self.sidecar_path = root / "index.json"

    def chunk_path(self, doc_id: str) -> Path:
        return self.chunks_dir / f"{doc_id}.json"

    def chunk_paths(self) -> List[Path]:
        """Every chunk file, in name order."""
        return sorted(self.chunks_dir.glob("*.json")) if self.chunks_dir.is_dir() else []

    def save_chunks(self, record: Dict[str, Any]) -> Path:
        path = self.chunk_path(record["doc_id"])
        write_json_atomically(path, record)
        return path

    @staticmethod
    def load_chunks(path: Path) -> Dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StoreError(f"{path}: not a readable chunk file ({error})") from None

    @contextmanager
    def locked(self, *, exclusive: bool) -> Iterator[None]:
        """Holds the store's lock: exclusive to change the index, shared to
        read it. (fcntl locks: POSIX systems only.)"""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Hit:
    """A chunk found by a search; `similarity` is the cosine similarity."""

    key: int
    similarity: float
    document: str
    chunk: int
    text: str

    def to_json(self) -> Dict[str, Any]:
        return {
            "key": self.key,
            "document": self.document,
            "chunk": self.chunk,
            "similarity": round(self.similarity, 4),
            "text": self.text,
        }


class VectorIndex:
    """The usearch index of a store and its sidecar, in memory. Change it
    under the store's exclusive lock, then `save`."""

    def __init__(self) -> None:
        self.index = Index(ndim=embedding.DIMENSIONS, metric="cos", dtype="f32")
        #: doc id -> {"document": path, "fingerprint": of the chunks indexed}
        self.documents: Dict[str, Dict[str, str]] = {}
        #: key -> {"doc_id", "document", "chunk", "text"}
        self.entries: Dict[int, Dict[str, Any]] = {}
        self.next_key = 1

    @classmethod
    def open(cls, store: Store) -> "VectorIndex":
        """The store's index, or an empty one when it has none yet (or had
        one that cannot be trusted: then it is rebuilt)."""
        opened = cls()
        if not store.sidecar_path.exists():
            return opened
        try:
            sidecar = json.loads(store.sidecar_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            log.warning("%s is unreadable (%s); the index will be rebuilt", store.sidecar_path, error)
            return opened
        if sidecar.get("embedding") != embedding.NAME or sidecar.get("dimensions") != embedding.DIMENSIONS:
            raise StoreError(
                f"{store.root} was indexed with embedding {sidecar.get('embedding')!r} "
                f"({sidecar.get('dimensions')} dimensions), not {embedding.NAME!r} ({embedding.DIMENSIONS}); "
                f"delete {store.index_path.name} and {store.sidecar_path.name} to rebuild it"
            )
        try:
            index = Index.restore(str(store.index_path))
        except ValueError as error:
            log.warning("%s is unreadable (%s); the index will be rebuilt", store.index_path, error)
            return opened
        entries = {int(key): entry for key, entry in sidecar["entries"].items()}
        keys = np.fromiter(entries, dtype=np.uint64, count=len(entries))
        if index is None or len(index) != len(entries) or not bool(np.all(index.contains(keys))):
            log.warning("%s and %s disagree; the index will be rebuilt", store.index_path, store.sidecar_path)
            return opened
        opened.index = index
        opened.entries = entries
        opened.documents = sidecar["documents"]
        opened.next_key = int(sidecar["next_key"])
        return opened

    def __len__(self) -> int:
        return len(self.entries)

    def fingerprint(self, doc_id: str) -> Optional[str]:
        """The fingerprint of the document's chunks as indexed, if it is."""
        indexed = self.documents.get(doc_id)
        return indexed["fingerprint"] if indexed else None

    def remove_document(self, doc_id: str) -> int:
        """Drops the document's chunks (before indexing a new version);
        returns how many there were."""
        keys = [key for key, entry in self.entries.items() if entry["doc_id"] == doc_id]
        if keys:
            self.index.remove(np.array(keys, dtype=np.uint64))
        for key in keys:
            del self.entries[key]
        self.documents.pop(doc_id, None)
        return len(keys)

    def add(self, chunks: Sequence[Dict[str, Any]], vectors: np.ndarray) -> List[int]:
        """Adds chunks ({"doc_id", "document", "chunk", "text"}) with their
        vectors, under new keys; returns the keys."""
        keys = list(range(self.next_key, self.next_key + len(chunks)))
        if keys:
            self.index.add(np.array(keys, dtype=np.uint64), vectors)
        self.next_key += len(keys)
        for key, chunk in zip(keys, chunks):
            self.entries[key] = dict(chunk)
        return keys

    def mark_indexed(self, doc_id: str, document: str, fingerprint: str) -> None:
        """Records that the document's chunks with this fingerprint are in."""
        self.documents[doc_id] = {"document": document, "fingerprint": fingerprint}

    def search(self, vector: np.ndarray, k: int) -> List[Hit]:
        """The `k` chunks most similar to `vector`, most similar first."""
        if not self.entries or k <= 0:
            return []
        matches = self.index.search(vector, min(k, len(self.entries)))
        hits = []
        for key, distance in zip(matches.keys, matches.distances):
            entry = self.entries[int(key)]
            # usearch's cos metric is a distance: 1 - cosine similarity.
            similarity = 1.0 - float(distance)
            hits.append(Hit(int(key), similarity, entry["document"], int(entry["chunk"]), entry["text"]))
        return hits

    def vectors(self, keys: Sequence[int]) -> np.ndarray:
        """The stored vectors of `keys`, one row each."""
        if not keys:
            return np.zeros((0, embedding.DIMENSIONS), dtype=np.float32)
        found = self.index.get(np.array(keys, dtype=np.uint64))
        return np.stack(found) if isinstance(found, tuple) else np.atleast_2d(found)

    def save(self, store: Store) -> None:
        """Writes the index, then its sidecar, each atomically."""
        store.root.mkdir(parents=True, exist_ok=True)
        temporary = store.index_path.with_suffix(".usearch.tmp")
        self.index.save(str(temporary))
        os.replace(temporary, store.index_path)
        write_json_atomically(
            store.sidecar_path,
            {
                "embedding": embedding.NAME,
                "dimensions": embedding.DIMENSIONS,
                "next_key": self.next_key,
                "documents": self.documents,
                "entries": {str(key): entry for key, entry in self.entries.items()},
            },
        )
