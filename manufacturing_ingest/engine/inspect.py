"""Check each file before Spark reads it, so one broken file cannot fail a whole batch.

A Spark job over many files dies on the first truncated gzip or unreadable Parquet footer; here
each file is read once on the driver (streaming, constant memory) and either yields what the
reader needs (CSV header, Parquet schema, row-bearing or not) or a clear error for the ledger.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from manufacturing_ingest.catalog import FileFormat

_CHUNK = 8 * 1024 * 1024
_BOM = "\ufeff"


class UnreadableFile(Exception):
    """The file cannot be ingested as it is; the message says why, for the ledger and alerts."""


@dataclass(frozen=True)
class FileInspection:
    """What the reader needs to know about one file."""

    file_format: FileFormat
    has_rows: bool
    header: tuple[str, ...] = ()
    parquet_schema: tuple[tuple[str, str], ...] = ()
    note: str = ""
    # Rows Spark should read from the file, from its line count (None when unknown). Trusted
    # only while a batch's total matches the rows Delta reports written.
    expected_rows: int | None = None


def inspect_file(path: Path, file_format: FileFormat, compression: str | None) -> FileInspection:
    """Validate one local file and describe it; raises ``UnreadableFile`` with the reason."""
    try:
        if file_format == "parquet":
            return _inspect_parquet(path)
        return _inspect_text(path, file_format, compression)
    except FileNotFoundError as exc:
        raise UnreadableFile(f"file disappeared before it was read: {exc}") from exc


def _inspect_parquet(path: Path) -> FileInspection:
    if path.stat().st_size == 0:
        return FileInspection("parquet", has_rows=False, note="empty file")
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except Exception as exc:  # pyarrow raises several types for corrupt footers
        raise UnreadableFile(f"not a readable Parquet file: {exc}") from exc
    return FileInspection(
        "parquet",
        has_rows=meta.num_rows > 0,
        parquet_schema=tuple((f.name, str(f.type)) for f in schema),
        note="" if meta.num_rows else "no rows",
        expected_rows=meta.num_rows,
    )


def _inspect_text(path: Path, file_format: FileFormat, compression: str | None) -> FileInspection:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    first_line = bytearray()
    have_first_line = False
    newlines = 0
    blank_lines = 0
    last_byte = b""
    non_blank_after_first = False
    total = 0
    try:
        with _open(path, compression) as stream:
            while chunk := stream.read(_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    raise UnreadableFile(
                        f"not valid UTF-8 at byte {total + exc.start}: "
                        f"{chunk[max(0, exc.start - 20) : exc.end + 20]!r}"
                    ) from exc
                if not have_first_line:
                    cut = chunk.find(b"\n")
                    if cut < 0:
                        first_line += chunk
                    else:
                        first_line += chunk[:cut]
                        have_first_line = True
                        non_blank_after_first = bool(chunk[cut + 1 :].strip())
                elif not non_blank_after_first and chunk.strip():
                    non_blank_after_first = True
                newlines += chunk.count(b"\n")
                # Blank lines are skipped by Spark; a run across a chunk edge only costs the
                # exact count (the batch total check then falls back to counting in Spark).
                blank_lines += chunk.count(b"\n\n") + chunk.count(b"\n\r\n")
                total += len(chunk)
                last_byte = chunk[-1:]
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"not valid UTF-8: ends inside a multi-byte character ({exc})"
        ) from exc
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UnreadableFile(f"corrupt or truncated gzip: {exc}") from exc
    except OSError as exc:
        raise UnreadableFile(f"cannot read file: {exc}") from exc

    text_first = bytes(first_line).decode("utf-8").lstrip(_BOM).rstrip("\r")
    lines = newlines + (1 if last_byte not in (b"\n", b"") else 0) - blank_lines
    if total == 0:
        return FileInspection(file_format, has_rows=False, note="empty file")
    if file_format == "json":
        has_rows = bool(text_first.strip()) or non_blank_after_first
        return FileInspection(
            "json", has_rows=has_rows, note="" if has_rows else "blank",
            expected_rows=lines,
        )
    header = _parse_header(text_first)
    if not header:
        raise UnreadableFile("CSV file has no header line")
    return FileInspection(
        "csv",
        has_rows=non_blank_after_first,
        header=header,
        note="" if non_blank_after_first else "header only",
        expected_rows=lines - 1,
    )


def _parse_header(line: str) -> tuple[str, ...]:
    row = next(csv.reader(io.StringIO(line)), [])
    return tuple(cell.strip() for cell in row if cell is not None)


def _open(path: Path, compression: str | None):
    if compression == "gzip":
        return gzip.open(path, "rb")
    return open(path, "rb")
