"""Reading documents and splitting them into overlapping chunks.

Text and Markdown files are read as UTF-8; PDFs through `pypdf`, page by
page. Chunks are character windows of about `size` characters, each
starting `overlap` characters before the previous one ended, so that a
sentence cut at a boundary is still whole in one of the two chunks. A
window ends at the best break before its limit -- a paragraph, else a
sentence, else a line, else a space -- so chunks rarely cut a word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List

#: The kinds of document the example reads, by file extension.
SUPPORTED = (".txt", ".md", ".markdown", ".pdf")


class DocumentError(ValueError):
    """A document that cannot be read as asked: reading it again would not
    help."""


@dataclass(frozen=True)
class Chunk:
    """A piece of a document's text: `text` is `document[start:end]`,
    stripped of surrounding whitespace."""

    number: int
    start: int
    end: int
    text: str


def read_text(path: Path) -> str:
    """The text of the document at `path`, with runs of spaces collapsed and
    paragraphs separated by one blank line."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise DocumentError(f"{path}: unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED)}")
    if not path.exists():
        raise DocumentError(f"{path}: no such file")
    if not path.is_file():
        raise DocumentError(f"{path}: not a regular file")
    try:
        if suffix == ".pdf":
            raw = _read_pdf(path)
        else:
            raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DocumentError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise DocumentError(f"{path}: cannot be read ({error.strerror or error})") from None
    text = normalize(raw)
    if not text:
        raise DocumentError(f"{path}: has no text" + (" (a scanned PDF needs OCR first)" if suffix == ".pdf" else ""))
    return text


def _read_pdf(path: Path) -> str:
    # Imported here so that text-only use does not need pypdf installed.
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
    except PdfReadError as error:
        raise DocumentError(f"{path}: not a readable PDF ({error})") from None
    return "\n\n".join(pages)


def normalize(text: str) -> str:
    """Unix line ends, no trailing spaces, runs of spaces and tabs made one,
    and at most one blank line between paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# Where a chunk may end, best first: after a paragraph, a sentence, a line
# (in hard-wrapped text and PDFs a line end is often mid-sentence), a word.
# The last match before the window's limit wins.
_BREAKS = (re.compile(r"\n\n"), re.compile(r"[.!?][\"')\]]?\s"), re.compile(r"\n"), re.compile(r"\s"))


def split(text: str, size: int, overlap: int) -> List[Chunk]:
    """`text` as chunks of at most `size` characters, overlapping by about
    `overlap` characters. Needs 0 <= overlap < size."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need 0 <= overlap < size, got size={size}, overlap={overlap}")
    chunks: List[Chunk] = []
    start = 0
    while start < len(text):
        limit = min(start + size, len(text))
        # A break no earlier than this keeps chunks at least half full and
        # guarantees that the next chunk starts after this one did.
        earliest = start + max(size // 2, overlap + 1)
        end = limit if limit == len(text) else _best_break(text, earliest, limit)
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            chunks.append(Chunk(len(chunks), start + lead, start + lead + len(stripped), stripped))
        if end >= len(text):
            break
        start = _word_start(text, max(end - overlap, start + 1), end)
    return chunks


def _best_break(text: str, earliest: int, limit: int) -> int:
    """The end of the best break within text[earliest:limit], or `limit`
    when there is none (one very long word)."""
    for pattern in _BREAKS:
        best = None
        for match in pattern.finditer(text, earliest, limit):
            best = match.end()
        if best is not None:
            return best
    return limit


def _word_start(text: str, position: int, end: int) -> int:
    """`position`, moved forward to the start of a word if it falls inside
    one, but never to `end` or beyond (the overlap would be lost)."""
    if position == 0 or text[position - 1].isspace():
        return position
    space = re.compile(r"\s+").search(text, position, end)
    return space.end() if space is not None and space.end() < end else position
