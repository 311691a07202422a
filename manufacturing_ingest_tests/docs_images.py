"""The README's screenshots (``docs/images/``): made by the demo's browser test
(``ui/test_demo_ui.py``) from what ``make demo`` recorded, and stamped so a stale one is caught.

Each image carries, in a PNG ``tEXt`` chunk, the stamp of what made it: the installed Dagster's
version and a digest of the code of the browser test and its helpers (their syntax trees without
docstrings: rewording a docstring or a comment changes no picture). ``test_docs_images.py`` (a
unit test, in ``make check``) fails when an image the README shows was made by another Dagster
or another version of those steps, or when an image is missing or unused. ``make docs-images``
runs the browser test with ``MANUFACTURING_UPDATE_DOCS_IMAGES=1``, which writes the images anew;
without it the test leaves the working tree alone (its screenshots go to ``test-artifacts/ui/``).
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import struct
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS_IMAGES = REPO / "docs" / "images"
UPDATE_VAR = "MANUFACTURING_UPDATE_DOCS_IMAGES"
STAMP_KEY = b"manufacturing_ingest"
# What makes the images: the steps, the browser's settings, the deployment they open.
MADE_BY = ("manufacturing_ingest_tests/ui/test_demo_ui.py",
           "manufacturing_ingest_tests/ui/browser.py",
           "manufacturing_ingest_tests/live_ui.py")
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def current_stamp() -> str:
    """``dagster <version>; steps <digest of MADE_BY's code>``."""
    import dagster as dg

    digest = hashlib.sha256()
    for name in MADE_BY:
        digest.update(name.encode() + b"\0" + _code_of((REPO / name).read_text()).encode())
    return f"dagster {dg.__version__}; steps {digest.hexdigest()[:16]}"


def _code_of(source: str) -> str:
    """The module's syntax tree without docstrings (comments are not in it either)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def updating() -> bool:
    return os.environ.get(UPDATE_VAR, "").strip() not in ("", "0")


def publish(screenshot: Path, name: str) -> Path | None:
    """Copy ``screenshot`` to ``docs/images/<name>.png`` with the current stamp, when asked to
    (``MANUFACTURING_UPDATE_DOCS_IMAGES=1``); None otherwise."""
    if not updating():
        return None
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    target = DOCS_IMAGES / f"{name}.png"
    target.write_bytes(with_stamp(screenshot.read_bytes(), current_stamp()))
    return target


def with_stamp(png: bytes, stamp: str) -> bytes:
    """``png`` with one ``tEXt`` chunk ``STAMP_KEY`` = ``stamp`` right after its header."""
    ours = STAMP_KEY + b"\0"
    chunks = [(kind, data) for kind, data in _chunks(png)
              if not (kind == b"tEXt" and data.startswith(ours))]
    chunks.insert(1, (b"tEXt", ours + stamp.encode("latin-1")))
    return _SIGNATURE + b"".join(_chunk(kind, data) for kind, data in chunks)


def read_stamp(png: bytes) -> str | None:
    for kind, data in _chunks(png):
        if kind == b"tEXt" and data.startswith(STAMP_KEY + b"\0"):
            return data[len(STAMP_KEY) + 1:].decode("latin-1")
    return None


def size_of(png: bytes) -> tuple[int, int]:
    """(width, height) from the header."""
    kind, data = _chunks(png)[0]
    assert kind == b"IHDR", kind
    return struct.unpack(">II", data[:8])


def referenced_images(readme: str) -> set[str]:
    """The ``docs/images/*.png`` a Markdown text shows."""
    return set(re.findall(r"!\[[^\]]*\]\((docs/images/[\w.-]+\.png)\)", readme))


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    if not png.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    chunks, offset = [], len(_SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind = png[offset + 4:offset + 8]
        chunks.append((kind, png[offset + 8:offset + 8 + length]))
        offset += 12 + length
    return chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
