"""Text embeddings for the RAG example, computed locally with no network.

This is a LEXICAL HASHING EMBEDDING, NOT A SEMANTIC MODEL. Each text is
turned into features -- lowercase word unigrams, word bigrams and character
trigrams of each word -- and every feature is hashed (blake2b, so the same
text gives the same vector in every process and on every machine, unlike
Python's randomized `hash()`) to one of `DIMENSIONS` slots with a sign
taken from the hash. The vector is L2-normalized, so the cosine similarity
of two texts grows with the words and word pieces they share. Texts that
say the same thing in different words ("car" and "automobile") are not
close: only a trained model knows that.

It is here so that the example runs anywhere, fast, with numpy alone, and
gives the same answers every time (which its test relies on).

To use a real model instead, replace `embed_many` (and so `embed`) with a
call to it, set `DIMENSIONS` to its output size and `NAME` to its name. For
example, with the `sentence-transformers` package and a model already on
disk:

    from sentence_transformers import SentenceTransformer
    _model = SentenceTransformer("/models/all-MiniLM-L6-v2")
    NAME, DIMENSIONS = "all-MiniLM-L6-v2", 384

    def embed_many(texts):
        return _model.encode(list(texts), normalize_embeddings=True).astype(np.float32)

Vectors of different models are not comparable: the index records `NAME`,
and `vector_store_update` refuses a store built with another one (delete
the store's index files and run it again to rebuild).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Iterator, List, Sequence, Tuple

import numpy as np

#: Identifies the embedding an index was built with; change it with the model.
NAME = "lexical-hash-v1"
#: Length of every vector.
DIMENSIONS = 384

# How much each kind of feature counts. Whole words carry the most meaning;
# bigrams reward shared phrases; trigrams let "retry" and "retries" match.
_UNIGRAM_WEIGHT = 1.0
_BIGRAM_WEIGHT = 0.7
_TRIGRAM_WEIGHT = 0.3

# Words so common that sharing them says nothing about a topic; left out so
# that any two English texts do not look alike just for being English.
STOPWORDS = frozenset(
    """a an and are as at be been but by can do does for from has have how i if in into is it its
    it's me my no not of on or our so than that the their them then there these they this to too us
    was we were what when where which while who why will with you your""".split()
)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def terms(text: str) -> List[str]:
    """The content words of `text`, lowercased, in order, stopwords left out."""
    return [word for word in _WORD.findall(text.lower()) if word not in STOPWORDS]


@lru_cache(maxsize=65536)
def _slot(feature: str) -> Tuple[int, float]:
    """The slot and sign of a feature: 8 bytes of its blake2b digest, the
    low bits picking the slot and the top bit the sign (signed hashing
    keeps collisions from only ever adding up)."""
    value = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
    return value % DIMENSIONS, 1.0 if value >> 63 else -1.0


def _features(text: str) -> Iterator[Tuple[str, float]]:
    words = terms(text)
    for word in words:
        yield "w:" + word, _UNIGRAM_WEIGHT
        padded = f"#{word}#"
        for start in range(len(padded) - 2):
            yield "c:" + padded[start : start + 3], _TRIGRAM_WEIGHT
    for first, second in zip(words, words[1:]):
        yield f"b:{first} {second}", _BIGRAM_WEIGHT


def embed(text: str) -> np.ndarray:
    """The unit vector of `text` (float32, `DIMENSIONS` long); all zeros for
    a text with no content words."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    for feature, weight in _features(text):
        slot, sign = _slot(feature)
        vector[slot] += sign * weight
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def embed_many(texts: Sequence[str]) -> np.ndarray:
    """The vectors of `texts`, one row each: shape (len(texts), DIMENSIONS)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack([embed(text) for text in texts])
