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
import json
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from manufacturing_ingest.catalog import FileFormat

_CHUNK = 8 * 1024 * 1024
_BOM = "\ufeff"

# Limits a file must stay within; past one the file fails with the reason, the batch goes on.
MAX_LINE_BYTES = 64 * 1024 * 1024  # also Spark's JSON maxStringLen (Jackson's default: 20 M)
MAX_UNCOMPRESSED_BYTES = 16 * 1024 * 1024 * 1024
MAX_EXPANSION = 100  # gzip ratio, checked once past BOMB_FLOOR uncompressed bytes
BOMB_FLOOR = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
MAX_COLUMNS = 1000
MAX_COLUMN_NAME = 255


class UnreadableFile(Exception):
    """The file cannot be ingested as it is; the message says why, for the ledger and alerts.
    ``transient``: reading it again may work (an I/O error), unlike bytes that cannot be
    ingested, which stay so until they change."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


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
    # Read with Spark's multiLine: a CSV file that does not mix line endings, or a JSON
    # document that is one array.
    multiline: bool = False
    delimiter: str = ","
    # JSON lines: the keys of the first line's object, when it is one (else empty: unknown).
    json_keys: tuple[str, ...] = ()
    # CSV read whole: its line end when every line has the same ("\n" or "\r\n"), else "".
    line_sep: str = ""
    # CSV read whole: its header line comes again further down (sheets pasted together).
    repeated_header: bool = False
    # JSON lines read whole: an object has the empty key "" (Spark's reader drops such keys).
    empty_json_keys: bool = False

    def columns(self) -> tuple[str, ...]:
        """The column names the file's first record shows (empty when it does not tell)."""
        if self.file_format == "csv":
            return self.header
        if self.file_format == "parquet":
            return tuple(name for name, _ in self.parquet_schema)
        return self.json_keys


def encoding_hint(data: bytes) -> str:
    """What a file that is not valid UTF-8 probably is, and the setting that reads it."""
    sample = data[:4096]
    if sample.count(b"\x00") > len(sample) // 4:
        return ("; it looks like UTF-16 without a byte-order mark: set "
                "MANUFACTURING_ENCODING_<SOURCE>=utf-16-le (or utf-16-be)")
    return ("; if it is an 8-bit Windows or ISO export, set MANUFACTURING_ENCODING_<SOURCE> "
            "(e.g. cp1252 or latin-1)")


def inspect_file(path: Path, file_format: FileFormat, compression: str | None) -> FileInspection:
    """Validate one local file and describe it; raises ``UnreadableFile`` with the reason."""
    try:
        if file_format == "parquet":
            return _inspect_parquet(path)
        return _inspect_text(path, file_format, compression)
    except FileNotFoundError as exc:
        raise UnreadableFile(f"file disappeared before it was read: {exc}",
                             transient=True) from exc


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
    crlf_newlines = 0
    blank_lines = 0
    last_byte = b""
    non_blank_after_first = False
    total = 0
    line_bytes = 0  # length of the line running into the next chunk
    first_byte = b""
    header_again: tuple[bytes, ...] = ()  # the header line as a later line would repeat it
    repeated_header = False
    empty_json_keys = False
    carry = b""  # the end of the previous chunk, for a repeated header across chunks
    compressed_size = path.stat().st_size
    try:
        with open_landed(path, compression) as stream:
            while chunk := stream.read(_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    hint = ("; it looks gzip-compressed: name it .gz"
                            if total == 0 and chunk[:2] == b"\x1f\x8b" else
                            encoding_hint(chunk))
                    raise UnreadableFile(
                        f"not valid UTF-8 at byte {total + exc.start}{hint}: "
                        f"{chunk[max(0, exc.start - 20) : exc.end + 20]!r}"
                    ) from exc
                cut = chunk.find(b"\n")
                if cut < 0:
                    line_bytes += len(chunk)
                else:
                    line_bytes += cut
                    if line_bytes <= MAX_LINE_BYTES:
                        line_bytes = len(chunk) - chunk.rfind(b"\n") - 1
                if line_bytes > MAX_LINE_BYTES:  # lines inside one chunk are shorter
                    raise UnreadableFile(f"has a line longer than {MAX_LINE_BYTES >> 20} MiB "
                                         f"(the limit); {'de' if compression else ''}"
                                         f"compressed bytes read so far: {total + len(chunk)}")
                if not have_first_line:
                    room = MAX_HEADER_BYTES + 1 - len(first_line)
                    if cut < 0:
                        first_line += chunk[:room]
                    else:
                        first_line += chunk[: min(cut, room)]
                        have_first_line = True
                        non_blank_after_first = bool(chunk[cut + 1 :].strip())
                elif not non_blank_after_first and chunk.strip():
                    non_blank_after_first = True
                if have_first_line and file_format == "csv" and not repeated_header:
                    if not header_again:
                        core = bytes(first_line).removeprefix(codecs.BOM_UTF8).rstrip(b"\r")
                        header_again = (b"\n" + core + b"\n", b"\n" + core + b"\r\n")
                    # Each needle starts at a line break, so the first line itself never matches.
                    window = carry + chunk
                    repeated_header = any(n in window for n in header_again)
                    carry = chunk[-len(header_again[1]):]
                if file_format == "json" and not empty_json_keys:
                    # Two quotes then a colon: only an empty key (a quote in a string is escaped).
                    window = carry[-2:] + chunk
                    empty_json_keys = b'"":' in window or b'"" :' in window
                    carry = chunk
                if not first_byte:
                    first_byte = chunk.lstrip()[:1]
                newlines += chunk.count(b"\n")
                crlf_newlines += chunk.count(b"\r\n")
                # Blank lines are skipped by Spark; a run across a chunk edge only costs the
                # exact count (the batch total check then falls back to counting in Spark).
                blank_lines += chunk.count(b"\n\n") + chunk.count(b"\n\r\n")
                total += len(chunk)
                last_byte = chunk[-1:]
                if total > MAX_UNCOMPRESSED_BYTES:
                    raise UnreadableFile(f"larger than {MAX_UNCOMPRESSED_BYTES >> 30} GiB "
                                         "uncompressed (the limit)")
                if compression and total > BOMB_FLOOR and total > MAX_EXPANSION * compressed_size:
                    raise UnreadableFile(f"expands more than {MAX_EXPANSION}x when decompressed "
                                         f"({compressed_size} bytes to over {total}): refused "
                                         "as a likely decompression bomb")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"not valid UTF-8: ends inside a multi-byte character ({exc})"
        ) from exc
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UnreadableFile(f"corrupt or truncated gzip: {exc}") from exc
    except OSError as exc:
        raise UnreadableFile(f"cannot read file: {exc}", transient=True) from exc

    lines = newlines + (1 if last_byte not in (b"\n", b"") else 0) - blank_lines
    if total == 0:
        return FileInspection(file_format, has_rows=False, note="empty file")
    if file_format == "json":
        has_rows = bool(bytes(first_line).strip()) or non_blank_after_first
        array = first_byte == b"["  # a (pretty-printed) JSON array: one row per element
        # One pretty-printed object (PowerShell's ConvertTo-Json): its first line opens it.
        head = bytes(first_line).strip()
        array = array or (head.startswith(b"{") and head.endswith((b"{", b"[", b",")))
        return FileInspection(
            "json", has_rows=has_rows, note="" if has_rows else "blank",
            expected_rows=None if array else lines, multiline=array,
            json_keys=() if array else _object_keys(bytes(first_line)),
            empty_json_keys=empty_json_keys,
        )
    if len(first_line) > MAX_HEADER_BYTES:
        raise UnreadableFile(f"CSV header line longer than {MAX_HEADER_BYTES >> 10} KiB "
                             "(the limit for a column name list)")
    header, delimiter = _csv_header(bytes(first_line).decode("utf-8").lstrip(_BOM))
    return FileInspection(
        "csv",
        has_rows=non_blank_after_first,
        header=header,
        note="" if non_blank_after_first else "header only",
        # Quoted line breaks make fewer rows than lines; the batch total then tells (see
        # accounting.rows_from_inspection) and rows are counted in Spark instead.
        expected_rows=lines - 1,
        multiline=_read_multiline(path, compression, crlf_newlines, newlines),
        delimiter=delimiter,
        line_sep=("\r\n" if crlf_newlines == newlines else "\n" if crlf_newlines == 0 else ""
                  ) if newlines else "",
        repeated_header=repeated_header,
    )


def _object_keys(line: bytes) -> tuple[str, ...]:
    """The keys of a JSON object on one line; empty when the line is not one."""
    try:
        value = json.loads(line)
    except ValueError:
        return ()
    return tuple(value) if isinstance(value, dict) else ()


def _csv_header(first_line: str) -> tuple[tuple[str, ...], str]:
    """The column names and delimiter (``,`` or ``;``) of a CSV file's first line, checked."""
    first_line = first_line.rstrip("\r")
    header = _parse_header(first_line)
    delimiter = ","
    if len(header) == 1 and ";" in header[0]:
        delimiter, header = ";", _parse_header(first_line, ";")
    if not header:
        raise UnreadableFile("CSV file has no header line")
    if len(header) > MAX_COLUMNS:
        raise UnreadableFile(f"CSV header has {len(header)} columns; the limit is {MAX_COLUMNS}")
    longest = max(header, key=len)
    if len(longest) > MAX_COLUMN_NAME:
        raise UnreadableFile(f"CSV header has a column name of {len(longest)} characters; the "
                             f"limit is {MAX_COLUMN_NAME}: {longest[:40]!r}…")
    return header, delimiter


def _read_multiline(path: Path, compression: str | None, crlf: int, newlines: int) -> bool:
    """Whether Spark's multi-line CSV parser should read the file.

    It follows RFC 4180 (quoted fields may hold line breaks) but takes the first line's ending
    for the whole file, so a file that mixes LF and CRLF is read line by line instead (any mix
    is fine there) — unless a quoted field holds the CRLF, which only a second look at the
    quotes can tell; only such rare files pay for it.
    """
    if crlf in (0, newlines):
        return True
    return _has_quoted_line_break(path, compression)


def _has_quoted_line_break(path: Path, compression: str | None) -> bool:
    """Whether a line break falls inside a quoted field (RFC 4180 quote parity), streaming."""
    inside = 0  # 1 while inside a quoted field at the end of the bytes seen so far
    with open_landed(path, compression) as stream:
        while chunk := stream.read(_CHUNK):
            data = np.frombuffer(chunk, dtype=np.uint8)
            quotes = np.flatnonzero(data == ord('"'))
            breaks = np.flatnonzero(data == ord("\n"))
            # Quotes before each line break, plus the state carried in: odd means inside.
            if ((np.searchsorted(quotes, breaks) + inside) & 1).any():
                return True
            inside = (inside + quotes.size) & 1
    return False


def _parse_header(line: str, delimiter: str = ",") -> tuple[str, ...]:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_HEADER_BYTES + 1))
    try:
        row = next(csv.reader(io.StringIO(line), delimiter=delimiter), [])
    except csv.Error as exc:
        raise UnreadableFile(f"CSV header line cannot be parsed: {exc}") from exc
    return tuple(cell.strip() for cell in row if cell is not None)


def open_landed(path: Path, compression: str | None):
    """A landed file's bytes as a binary stream, decompressed when it is gzip."""
    if compression == "gzip":
        return gzip.open(path, "rb")
    return open(path, "rb")


# Direct reads (Spark reads the landed object itself, as on a cluster): the driver fetches only
# the first bytes of a text file and the footer of a Parquet file.
HEAD_BYTES = MAX_HEADER_BYTES + 64 * 1024
PARQUET_TAIL_BYTES = 1024 * 1024


class _Tail(io.RawIOBase):
    """The last bytes of a file of ``size`` bytes, at their offsets: enough for a Parquet footer."""

    def __init__(self, tail: bytes, size: int):
        self._tail, self._size, self._pos = tail, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        start = self._pos - (self._size - len(self._tail))
        if start < 0:
            raise OSError("Parquet footer larger than the bytes fetched")
        data = self._tail[start : start + len(buffer)]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def inspect_bytes(data: bytes, file_format: FileFormat, compression: str | None
                  ) -> FileInspection:
    """``inspect_file`` of a whole small file held in memory."""
    with tempfile.TemporaryDirectory(prefix="manufacturing_ingest_inspect_") as folder:
        path = Path(folder) / "file"
        path.write_bytes(data)
        return inspect_file(path, file_format, compression)


def inspect_parquet_tail(tail: bytes, size: int) -> FileInspection:
    """``_inspect_parquet`` from the file's last bytes only (schema and row count are there)."""
    if size == 0:
        return FileInspection("parquet", has_rows=False, note="empty file")
    try:
        meta = pq.read_metadata(_Tail(tail, size))
        schema = meta.schema.to_arrow_schema()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for corrupt footers
        raise UnreadableFile(f"not a readable Parquet file: {exc}") from exc
    return FileInspection(
        "parquet", has_rows=meta.num_rows > 0,
        parquet_schema=tuple((f.name, str(f.type)) for f in schema),
        note="" if meta.num_rows else "no rows", expected_rows=meta.num_rows,
    )


def inspect_text_head(head: bytes, file_format: FileFormat, compression: str | None
                      ) -> FileInspection:
    """What a file's first bytes tell about a text file too big to fetch whole.

    The header, the delimiter, whether a JSON file is one array, and that the start is UTF-8
    (gzip: decompressed). Row counts are left to Spark, and a CSV file is read with the
    multi-line parser (RFC 4180). What the head cannot show (a truncated gzip, a broken byte
    further in) fails Spark's read, which then names the file (``isolation.find_unreadable``).
    """
    text = head
    if compression == "gzip":
        try:
            text = zlib.decompressobj(wbits=31).decompress(head, HEAD_BYTES)
        except zlib.error as exc:
            raise UnreadableFile(f"corrupt or truncated gzip: {exc}") from exc
    try:
        decoded = codecs.getincrementaldecoder("utf-8")("strict").decode(text)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not valid UTF-8 at byte {exc.start}: "
                             f"{text[max(0, exc.start - 20) : exc.end + 20]!r}") from exc
    decoded = decoded.lstrip(_BOM)
    if file_format == "json":
        return FileInspection("json", has_rows=True, multiline=decoded.lstrip()[:1] == "[")
    first_line, newline, _ = decoded.partition("\n")
    if not newline and len(first_line.encode()) > MAX_HEADER_BYTES:
        raise UnreadableFile(f"CSV header line longer than {MAX_HEADER_BYTES >> 10} KiB "
                             "(the limit for a column name list)")
    header, delimiter = _csv_header(first_line)
    return FileInspection("csv", has_rows=True, header=header, multiline=True,
                          delimiter=delimiter)
