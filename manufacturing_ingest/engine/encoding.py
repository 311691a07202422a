"""Text files in the shape Spark reads them: UTF-8, with ``\\n`` line ends, no byte-order mark.

Exporters write other shapes: Excel and PowerShell 5.1 put a UTF-8 BOM before a JSON document,
Windows tools write UTF-16 with a BOM, old Windows clients Windows-1252, old PLCs and Macs end
lines with a bare CR. Spark would read a BOM'd JSON array as fragments, fail on UTF-16, and read
a CR-only file as one line. Such a file gets a normalized copy in the run's staging folder
(``normalized_copy``), which is inspected and read instead; the landed bytes stay what the
ledger's content hash and ``_source_file`` name. A plain UTF-8 file is never copied.

The encoding comes from the file's BOM when it has one, else from the source's ``encoding``
(``MANUFACTURING_ENCODING_<SOURCE>``, default UTF-8); nothing is guessed.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

from manufacturing_ingest.engine.inspect import (
    BOMB_FLOOR,
    MAX_EXPANSION,
    MAX_UNCOMPRESSED_BYTES,
    UnreadableFile,
)

_HEAD = 64 * 1024
_CHUNK = 4 * 1024 * 1024
# Longest first: a UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


@dataclass(frozen=True)
class TextShape:
    encoding: str  # a Python codec name
    bom: bytes  # the byte-order mark the file starts with (b"" if none)
    cr_only: bool  # lines end with a bare CR


def is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def text_shape(path: Path, compression: str | None, declared: str) -> TextShape:
    """The file's encoding (its BOM's, else ``declared``) and line ends, from its first bytes.
    Bytes that cannot be read at all (a broken gzip) tell nothing here: the inspection that
    follows says what is wrong with them."""
    try:
        with _open(path, compression) as stream:
            head = stream.read(_HEAD)
    except (EOFError, OSError, zlib.error):
        return TextShape(declared, b"", False)
    encoding, bom = declared, b""
    for mark, name in _BOMS:
        if head.startswith(mark):
            encoding, bom = name, mark
            break
    text = head[len(bom):].decode(encoding, errors="ignore")
    return TextShape(encoding, bom, "\r" in text and "\n" not in text)


def normalized_copy(path: Path, compression: str | None, file_format: str, declared: str,
                    staging: Path, index: int) -> Path | None:
    """A UTF-8, ``\\n``-ended, BOM-free copy of a text file that needs one, in ``staging``;
    None for a file Spark reads as it is (UTF-8, LF or CRLF; a BOM before CSV is fine)."""
    shape = text_shape(path, compression, declared)
    if is_utf8(shape.encoding) and not shape.cr_only and not (shape.bom and file_format == "json"):
        return None
    folder = staging / "text"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"t{index:06d}.{'jsonl' if file_format == 'json' else file_format}"
    try:
        _transcode(path, compression, shape, declared, target)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UnreadableFile(f"corrupt or truncated gzip: {exc}") from exc
    return target


def _transcode(path: Path, compression: str | None, shape: TextShape, declared: str,
               target: Path) -> None:
    decoder = codecs.getincrementaldecoder(shape.encoding)("strict")
    compressed_size = path.stat().st_size
    total = 0
    with _open(path, compression) as stream, open(target, "w", encoding="utf-8",
                                                   newline="") as out:
        stream.read(len(shape.bom))
        while chunk := stream.read(_CHUNK):
            total += len(chunk)
            if total > MAX_UNCOMPRESSED_BYTES or (
                    compression and total > BOMB_FLOOR
                    and total > MAX_EXPANSION * compressed_size):
                raise UnreadableFile("expands beyond the limits when decompressed (see the "
                                     "README, 'Limits'): refused")
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise UnreadableFile(_not_decodable(shape.encoding, declared, exc)) from exc
            out.write(text.replace("\r", "\n") if shape.cr_only else text)
        try:
            out.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            raise UnreadableFile(_not_decodable(shape.encoding, declared, exc)) from exc


def _not_decodable(encoding: str, declared: str, exc: UnicodeDecodeError) -> str:
    said = "its byte-order mark says" if encoding != declared else "the source's encoding is"
    return (f"not valid {encoding} ({said} so) at byte {exc.start} of a chunk: "
            f"{exc.object[max(0, exc.start - 20):exc.end + 20]!r}")


def _open(path: Path, compression: str | None):
    return gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")
