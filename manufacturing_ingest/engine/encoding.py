"""Text files in the shape Spark reads them: UTF-8, with ``\\n`` line ends, no byte-order mark,
and for CSV, one header line at the top.

Exporters write other shapes: Excel and PowerShell 5.1 put a UTF-8 BOM before a JSON document,
Windows tools write UTF-16 with a BOM, old Windows clients Windows-1252, old PLCs and Macs end
lines with a bare CR. Spark would read a BOM'd JSON array as fragments, fail on UTF-16, and read
a CR-only file as one line. Excel's CSV exports add their own: a ``sep=,`` first line (which
would become the header), a delimiter at the end of every data line (an empty extra field, so
every row a corrupt record) and, when sheets are pasted together, the header again mid-file
(which the inspection finds in any CSV file).
Such a file gets a normalized copy in the run's staging folder
(``normalized_copy``), which is inspected and read instead; the landed bytes stay what the
ledger's content hash and ``_source_file`` name. A plain UTF-8 file is never copied.

The encoding comes from the file's BOM when it has one, else from the source's ``encoding``
(``MANUFACTURING_ENCODING_<SOURCE>``, default UTF-8); nothing is guessed.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from manufacturing_ingest.engine.inspect import (
    BOMB_FLOOR,
    MAX_EXPANSION,
    MAX_UNCOMPRESSED_BYTES,
    UnreadableFile,
    open_landed,
)

_HEAD = 64 * 1024
_EXCEL_SEP = re.compile(r'"?sep=[,;]"?[,;]*')
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
    excel_sep: bool = False  # CSV: the first line is Excel's "sep=<delimiter>"
    trailing_delimiter: str = ""  # CSV: every data line ends with this delimiter, the header not
    repeated_header: bool = False  # CSV: the header line comes again further down

    @property
    def csv_cleanup(self) -> bool:
        return self.excel_sep or bool(self.trailing_delimiter) or self.repeated_header


def is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def text_shape(path: Path, compression: str | None, declared: str) -> TextShape:
    """The file's encoding (its BOM's, else ``declared``) and line ends, from its first bytes.
    Bytes that cannot be read at all (a broken gzip) tell nothing here: the inspection that
    follows says what is wrong with them."""
    try:
        with open_landed(path, compression) as stream:
            head = stream.read(_HEAD)
    except (EOFError, OSError, zlib.error):
        return TextShape(declared, b"", False)
    encoding, bom = declared, b""
    for mark, name in _BOMS:
        if head.startswith(mark):
            encoding, bom = name, mark
            break
    text = head[len(bom):].decode(encoding, errors="ignore")
    cr_only = "\r" in text and "\n" not in text
    lines = (text.replace("\r", "\n") if cr_only else text).splitlines()
    if len(head) == _HEAD:
        lines = lines[:-1]  # the last one may be cut off
    excel_sep = bool(lines) and _EXCEL_SEP.fullmatch(lines[0].strip()) is not None
    body = lines[1:] if excel_sep else lines
    trailing = ""
    if len(body) > 1:
        header, data = body[0], [line for line in body[1:6] if line.strip()]
        delimiter = ";" if ";" in header and "," not in header else ","
        if data and all(line.endswith(delimiter) for line in data) and not header.endswith(
                delimiter):
            trailing = delimiter
    return TextShape(encoding, bom, cr_only, excel_sep, trailing)


def normalized_copy(path: Path, compression: str | None, file_format: str, declared: str,
                    staging: Path, index: int, repeated_header: bool = False) -> Path | None:
    """A UTF-8, ``\\n``-ended, BOM-free copy of a text file that needs one, in ``staging``;
    None for a file Spark reads as it is (UTF-8, LF or CRLF; a BOM before CSV is fine).
    ``repeated_header``: the inspection found the CSV header again further down."""
    shape = text_shape(path, compression, declared)
    if file_format != "csv":
        shape = TextShape(shape.encoding, shape.bom, shape.cr_only)
    elif repeated_header:
        shape = dataclasses.replace(shape, repeated_header=True)
    if (is_utf8(shape.encoding) and not shape.cr_only and not shape.csv_cleanup
            and not (shape.bom and file_format == "json")):
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
    with open_landed(path, compression) as stream, open(target, "w", encoding="utf-8",
                                                   newline="") as out:
        lines = _ExcelCleanup(out, shape) if shape.csv_cleanup else _Verbatim(out)
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
            lines.write(text.replace("\r", "\n") if shape.cr_only else text)
        try:
            lines.write(decoder.decode(b"", final=True), final=True)
        except UnicodeDecodeError as exc:
            raise UnreadableFile(_not_decodable(shape.encoding, declared, exc)) from exc


class _Verbatim:
    def __init__(self, out):
        self.out = out

    def write(self, text: str, final: bool = False) -> None:
        self.out.write(text)


class _ExcelCleanup:
    """Writes CSV text line by line without Excel's ``sep=`` line, with one trailing delimiter
    taken off each data line, and without repeats of the header line."""

    def __init__(self, out, shape: TextShape):
        self.out = out
        self.shape = shape
        self.pending = ""
        self.seen = 0
        self.header: str | None = None

    def write(self, text: str, final: bool = False) -> None:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()  # the line still running (at the end: after the last \n)
        for line in lines:
            self._line(line)
        if final and self.pending:
            self._line(self.pending)

    def _line(self, line: str) -> None:
        self.seen += 1
        if self.seen == 1 and self.shape.excel_sep:
            return
        bare = line.rstrip("\r")
        if self.header is None:
            self.header = bare
        elif bare == self.header:
            return  # the header again, where sheets were pasted together
        elif self.shape.trailing_delimiter and bare.endswith(self.shape.trailing_delimiter):
            line = bare[:-1] + line[len(bare):]
        self.out.write(line + "\n")


def _not_decodable(encoding: str, declared: str, exc: UnicodeDecodeError) -> str:
    said = "its byte-order mark says" if encoding != declared else "the source's encoding is"
    return (f"not valid {encoding} ({said} so) at byte {exc.start} of a chunk: "
            f"{exc.object[max(0, exc.start - 20):exc.end + 20]!r}")
