"""Writes docs/gardening.pdf, the sample PDF, from the text below.

    python make_sample_pdf.py [OUTPUT]

A minimal one-page PDF 1.4 written by hand -- a catalog, a page, the
standard Helvetica font and one content stream -- so that it needs no
library and comes out byte for byte the same every time. pypdf extracts
its text, which is what the example needs from it.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import List

TITLE = "Growing tomatoes in a small garden"

PARAGRAPHS = [
    "Tomatoes need at least six hours of direct sun a day and warm soil. Plant "
    "seedlings outdoors after the last frost, when night temperatures stay above "
    "ten degrees, and set them deeper than they grew in the pot: roots form along "
    "the buried stem and make the plant sturdier.",
    "Good soil is loose, rich in organic matter and drains well. Dig in a few "
    "centimetres of garden compost or well-rotted manure before planting, and "
    "keep the pH slightly acidic, between six and seven. A layer of mulch, such "
    "as straw or shredded leaves, keeps the soil moist, stops weeds and prevents "
    "soil from splashing onto the leaves.",
    "Water deeply and regularly at the base of the plant rather than on the "
    "foliage: uneven watering causes cracked fruit and blossom end rot. In hot "
    "weather that can mean watering every morning. Feed with a tomato fertiliser "
    "rich in potassium once the first flowers open.",
    "Indeterminate varieties grow tall and need stakes or cages. Pinch out the "
    "side shoots that sprout between the main stem and the leaf branches, so "
    "that the plant puts its energy into fruit. Harvest when the fruit is fully "
    "coloured and slightly soft, and rotate the bed each year to keep blight "
    "and other soil diseases away.",
]

# Letter-size page, one-inch margins, 11-point Helvetica.
_WIDTH, _HEIGHT, _MARGIN = 612, 792, 72
_FONT_SIZE, _LEADING, _COLUMNS = 11, 15, 90


def _escape(text: str) -> str:
    """A PDF literal string's body: backslash and parentheses escaped."""
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content() -> bytes:
    """The page's content stream: the title, then the paragraphs, wrapped,
    with an empty line between them."""
    lines: List[str] = [
        "BT",
        f"/F1 {_FONT_SIZE + 5} Tf",
        f"{_MARGIN} {_HEIGHT - _MARGIN} Td",
        f"({_escape(TITLE)}) Tj",
        f"/F1 {_FONT_SIZE} Tf",
        f"{_LEADING} TL",
        "T* T*",
    ]
    for paragraph in PARAGRAPHS:
        for line in textwrap.wrap(paragraph, _COLUMNS):
            lines.append(f"({_escape(line)}) Tj T*")
        lines.append("T*")
    lines.append("ET")
    return "\n".join(lines).encode("latin-1")


def build() -> bytes:
    """The whole PDF file."""
    content = _content()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_WIDTH} {_HEIGHT}] "
            "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
        ).encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        f"<< /Title ({_escape(TITLE)}) /Producer (make_sample_pdf.py) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    # The cross-reference table: where each object starts, 20 bytes a line.
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("docs") / "gardening.pdf"
    output.write_bytes(build())
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
