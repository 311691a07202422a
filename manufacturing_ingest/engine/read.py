"""Read a batch of landed files into one DataFrame shaped like the bronze table.

Values are read as text (Parquet keeps its own types), then converted to the table's types; a
value that does not convert is kept verbatim in ``_rescued_data`` instead of turning silently
into null. Columns the table has not seen yet are added as text, the way Auto Loader's
``addNewColumns`` mode does for CSV and JSON.

CSV columns the table holds as doubles take a fast path: Spark's CSV parser reads them as
doubles straight away, and a row it cannot parse that way (wrong type, or a malformed line)
carries its whole line in the corrupt-record column. Only those rows are parsed again from
their line, as text, by the same rules as every other value. Rows that parse, usually all of
them, never pay for the text path.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from manufacturing_ingest.catalog import (
    INGESTED_AT_COLUMN,
    LINEAGE_COLUMNS,
    RESCUED_DATA_COLUMN,
    SOURCE_FILE_COLUMN,
    SchemaContract,
    SourceSpec,
)
from manufacturing_ingest.engine.inspect import MAX_LINE_BYTES, FileInspection
from manufacturing_ingest.engine.ledger import FileState
from manufacturing_ingest.engine.types import (
    catalog_type,
    finite,
    parse_value,
    sanitize_column_name,
    spark_type,
    unique_names,
    valid_text,
)
from manufacturing_ingest.landing import LandedObject

# Spark's corrupt-record column; a name no sanitized data column can take (sanitizing strips
# leading underscores), so a data key "_corrupt_record" stays data. Rescued as "_corrupt_record".
CORRUPT_RECORD = "__corrupt_record"
CORRUPT_RECORD_KEY = "_corrupt_record"
FILE_PATH = "__file_path"
# Columns whose values go to _rescued_data under the name after the prefix (case-colliding or
# duplicate JSON keys).
RESCUE_PREFIX = "__rescue__"
_NO_COLUMNS = "__no_columns"
# Hidden columns of the normalising projections (see _normalise): a retyped field's text, and
# each rescue entry's value and condition.
_TEXT = "__text_"
_RESCUE_VALUE = "__rescue_value_"
_RESCUE_IF = "__rescue_if_"
# What Spark's CSV parser gives for a quoted empty field (""), so that it stays an empty string
# and only an empty unquoted field reads as null: Spark's default makes both null.
QUOTED_EMPTY = "\u0000\u0001quoted-empty\u0001\u0000"
JSON_KEY_COLLISION = "JSON_KEY_COLLISION"


class JsonKeyCollision(Exception):
    """JSON keys of a group differ only by case; read file by file, or rewrite the file."""


@dataclass(frozen=True)
class BatchFile:
    """A landed object ready to read: where its bytes are and what inspection found."""

    obj: LandedObject
    path: Path | str  # a local file, or where Spark reads the object itself (direct reads)
    inspection: FileInspection
    partition_key: str
    # md5:<hex> of its bytes when known (see ledger.py), or the hash being taken meanwhile (a
    # background thread reads the bytes while Spark writes the batch).
    digest: str | Future[str | None] | None = None
    # The committed versions of the same key whose rows this one's replace (Corrections.REPLACE,
    # or a reprocess).
    supersedes: tuple[FileState, ...] = ()

    @property
    def content_hash(self) -> str | None:
        """Its content hash; waits for the background hash if it is still being taken."""
        return self.digest.result() if isinstance(self.digest, Future) else self.digest

    @property
    def superseded_etags(self) -> str | None:
        """The ``supersedes`` column of its ledger events: the ETags it replaces."""
        return ",".join(v.etag for v in self.supersedes) or None


class FailureKind(StrEnum):
    """Whether reading a failed file again can help, and when (the ledger keeps it in the
    ``failed`` event's ``note``)."""

    TRANSIENT = "transient"  # a dropped connection, throttling, a file still being written
    ARCHIVED = "archived"  # the object must be restored first: tried again once a day
    PERMANENT = "permanent"  # its bytes cannot be ingested: not read again until they change

    @classmethod
    def of(cls, note: str | None) -> FailureKind:
        try:
            return cls(note or "transient")
        except ValueError:
            return cls.TRANSIENT


@dataclass(frozen=True)
class FailedFile:
    """A landed object that cannot be ingested as it is, and why (for the ledger and alerts)."""

    obj: LandedObject
    partition_key: str
    error: str
    kind: FailureKind = FailureKind.TRANSIENT


@dataclass(frozen=True)
class RawGroup:
    """One group's DataFrame as Spark read it, and how to get at its rows' text again.

    ``retyped`` are the columns Spark parsed to a table type itself (CSV doubles); for the rows
    it could not parse, ``reparsed`` is the row's line split into text fields (null for rows
    that parsed), with the corrupt-record field set when the line itself is malformed.
    """

    df: DataFrame
    retyped: frozenset[str] = frozenset()
    reparsed: Column | None = None
    # CSV: a quoted empty field reads as QUOTED_EMPTY (see _csv_text).
    quoted_empty: bool = False
    # Parquet: strings and binaries are checked to be UTF-8 text.
    typed: bool = False


@dataclass
class BatchFrame:
    df: DataFrame
    # Columns this batch adds to the table, with their type and the files they first came from.
    new_columns: dict[str, str] = field(default_factory=dict)
    new_column_files: dict[str, list[str]] = field(default_factory=dict)
    # Declared columns no file of the batch had (they read null in these rows).
    missing_columns: list[str] = field(default_factory=list)


def read_batch(
    spark: SparkSession,
    spec: SourceSpec,
    files: list[BatchFile],
    table_types: dict[str, str],
    ingested_at: datetime,
) -> BatchFrame:
    """One DataFrame over ``files`` with the table's columns, new columns, and lineage.

    Columns the table does not have are new columns (``SchemaContract.EVOLVE`` and ``FREEZE``,
    where the caller fails their files) or, with ``RESCUE``, values in ``_rescued_data``."""
    target = dict(spec.columns)
    target.update({k: v for k, v in table_types.items() if k not in LINEAGE_COLUMNS
                   and k != spec.partition_column})
    frames: list[DataFrame] = []
    new_columns: dict[str, str] = {}
    new_column_files: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for group, read in _read_groups(spark, _group_files(files), target):
        raw = read.df
        seen.update(raw.columns)
        by_path = _spark_paths(raw, group)
        for column, data_type in ((f.name, f.dataType) for f in raw.schema.fields):
            if (column in (CORRUPT_RECORD, FILE_PATH) or column in target
                    or column.startswith(RESCUE_PREFIX)
                    or spec.schema_contract is SchemaContract.RESCUE):
                continue
            kind = catalog_type(data_type) if read.typed else "string"
            new_columns.setdefault(column, kind)
            new_column_files[column].extend(f.obj.uri for f in group)
        frames.append(_normalise(read, spec, target, new_columns, by_path, ingested_at))
    columns = list(target) + [c for c in new_columns if c not in target]
    aligned = [_align(frame, columns, target, new_columns, spec) for frame in frames]
    df = aligned[0]
    for frame in aligned[1:]:
        df = df.unionByName(frame)
    missing = [c for c in spec.columns if c not in seen]
    return BatchFrame(df=df, new_columns=new_columns, new_column_files=dict(new_column_files),
                      missing_columns=missing)


def _read_groups(spark: SparkSession, groups: list[list[BatchFile]], target: dict[str, str]):
    for group in groups:
        try:
            yield group, _read_group(spark, group, target)
        except JsonKeyCollision:
            if len(group) == 1:
                raise
            for f in group:  # files that each spell a key one way: fine one by one
                yield [f], _read_group(spark, [f], target)


def _group_files(files: list[BatchFile]) -> list[list[BatchFile]]:
    """Files Spark can read in one pass: same format and, for CSV and Parquet, same layout."""
    groups: dict[tuple, list[BatchFile]] = defaultdict(list)
    for f in files:
        inspection = f.inspection
        groups[(inspection.file_format, inspection.header, inspection.parquet_schema,
                inspection.multiline, inspection.delimiter, inspection.line_sep)].append(f)
    return [groups[key] for key in sorted(groups, key=repr)]


# Table types Spark's CSV parser may produce itself. Its double parsing (Java's parseDouble,
# plus "NaN", "Inf" and "-Inf") accepts nothing a cast from text would refuse, so a value it
# parses is the value the text path would give; anything it refuses goes down the text path.
# Timestamps stay text: the table takes ISO text and epoch numbers, which no CSV format covers.
_CSV_FAST_TYPES = {"double": "DOUBLE"}


def _read_group(spark: SparkSession, group: list[BatchFile], target: dict[str, str]
                ) -> RawGroup:
    fmt = group[0].inspection.file_format
    multiline = "true" if group[0].inspection.multiline else "false"
    paths = [str(f.path) for f in group]
    if fmt == "csv":
        names = unique_names(list(group[0].inspection.header))
        retyped = frozenset(n for n in names if target.get(n) in _CSV_FAST_TYPES)
        # Type names as DDL text: over Spark Connect a StringType object carries an explicit
        # collation into the table's schema (see types.parse_value).
        ddl = ", ".join(f"`{n}` {_CSV_FAST_TYPES[target[n]] if n in retyped else 'STRING'}"
                        for n in [*names, CORRUPT_RECORD])
        options = {
            "mode": "PERMISSIVE",
            "columnNameOfCorruptRecord": CORRUPT_RECORD,
            "escape": '"',  # RFC 4180: a quote inside a quoted field is doubled
            "sep": group[0].inspection.delimiter,
            "emptyValue": QUOTED_EMPTY,
        }
        if group[0].inspection.multiline and group[0].inspection.line_sep:
            # Known line ends keep a CRLF inside a quoted field as written (Spark's detection
            # turns it into LF).
            options["lineSep"] = group[0].inspection.line_sep
        df = (
            spark.read.schema(ddl)
            .options(**options)
            .option("header", "true")
            .option("enforceSchema", "true")
            .option("encoding", "UTF-8")
            # RFC 4180: quoted fields may hold line breaks. Spark's multi-line CSV parser reads a
            # file as one stream, which also measured faster here than its line splitter
            # (one task per file either way for files under the split size).
            .option("multiLine", multiline)
            .csv(paths)
        )
        reparsed = None
        if retyped:
            # The line of a row that did not parse, split again with every field as text.
            text_ddl = ", ".join(f"`{n}` STRING" for n in [*names, CORRUPT_RECORD])
            reparsed = F.from_csv(F.col(CORRUPT_RECORD), text_ddl, options)
        return RawGroup(df.withColumn(FILE_PATH, _file_path(df)), retyped, reparsed,
                        quoted_empty=True)
    if fmt == "json":
        options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD,
                   "primitivesAsString": "true", "encoding": "UTF-8", "multiLine": multiline,
                   # Jackson's default cap is 20 M characters; above it a value turned to null.
                   "maxStringLen": str(MAX_LINE_BYTES)}
        # Infer case-sensitively: keys that differ only by case (or punctuation) would
        # otherwise fail the whole read (COLUMN_ALREADY_EXISTS). Such a file is rewritten with
        # one spelling per key and the others rescued (bronze.dedupe_json_keys); a batch whose
        # files spell a key differently is read file by file. Reading itself stays
        # case-insensitive: Spark resolves scan columns by name again at execution.
        case_sensitive = spark.conf.get("spark.sql.caseSensitive")
        spark.conf.set("spark.sql.caseSensitive", "true")
        try:
            inferred = spark.read.options(**options).json(paths).schema
        finally:
            spark.conf.set("spark.sql.caseSensitive", case_sensitive)
        fields = [f.name for f in inferred.fields if f.name != CORRUPT_RECORD]
        clean = [sanitize_column_name(n) for n in fields if not n.startswith(RESCUE_PREFIX)]
        if len(set(clean)) != len(clean):
            raise JsonKeyCollision(f"{JSON_KEY_COLLISION}: keys that differ only by case or "
                                   f"punctuation in {len(paths)} file(s)")
        # Every value as text: nested objects keep their JSON, numbers their exact digits.
        # A file of only broken lines has no field; Spark refuses a query of only the
        # corrupt-record column, so a placeholder field keeps the lines rescuable.
        schema = T.StructType(
            [T.StructField(n, T.StringType()) for n in fields or [_NO_COLUMNS]]
            + [T.StructField(CORRUPT_RECORD, T.StringType())]
        )
        df = spark.read.options(**options).schema(schema).json(paths)
        return RawGroup(_rename(df, fields or [_NO_COLUMNS], keep=[CORRUPT_RECORD]))
    df = spark.read.parquet(*paths)
    return RawGroup(_rename(df, df.columns, keep=[]), typed=True)


def _file_path(df: DataFrame) -> Column:
    """The file of each row from Spark's hidden ``_metadata``, even when the data has its own
    ``_metadata`` column (which ``F.col("_metadata")`` would resolve to)."""
    return df.metadataColumn("_metadata").getField("file_path")


def _rename(df: DataFrame, names: list[str], keep: list[str]) -> DataFrame:
    """Clean column names, renamed by position (``toDF``: no name resolution, so keys that
    differ only by case cannot be ambiguous), plus the row's file."""
    # Names that differ only by case or punctuation: the one already spelled like its clean
    # name (else the first) is the column; the others are rescued under their own spelling.
    winner: dict[str, str] = {}
    for old in names:
        base = sanitize_column_name(old)
        if old.startswith(RESCUE_PREFIX) or old == _NO_COLUMNS:
            continue
        if base not in winner or old == base:
            winner[base] = old
    new_names = []
    for index, old in enumerate(names):
        base = sanitize_column_name(old)
        if old.startswith(RESCUE_PREFIX):  # written by dedupe_json_keys
            new_names.append(f"{RESCUE_PREFIX}{index}__{old[len(RESCUE_PREFIX):]}")
        elif old == _NO_COLUMNS or winner[base] != old:
            # Indexed, so unique even where case does not count; always null for _NO_COLUMNS.
            new_names.append(f"{RESCUE_PREFIX}{index}__{old}")
        else:
            new_names.append(base)
    file_path = _file_path(df)
    out = df.select([*[F.col(quoted(n)) for n in names], *[F.col(k) for k in keep],
                     file_path.alias(FILE_PATH)])
    return out.toDF(*new_names, *keep, FILE_PATH)


def quoted(name: str) -> str:
    """``name`` as a Spark column reference, whatever its characters (a JSON key may hold
    backticks, dots, or nothing at all)."""
    return "`" + name.replace("`", "``") + "`"


def _spark_paths(raw: DataFrame, group: list[BatchFile]) -> dict[str, BatchFile]:
    """Batch files by the exact URI Spark reports in ``_metadata.file_path``."""
    return {spark_uri(str(f.path)): f for f in group}


# What java.net.URI leaves as it is in a path (Hadoop's Path builds Spark's file URIs with it):
# letters, digits, its "mark" and "punct" characters, and the path separators.
_URI_PATH_KEEP = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    "-_.!~*'()" ":@&=+$," ";/"
)


def _escaped(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def spark_uri(location: str) -> str:
    """The URI Spark reports in ``_metadata.file_path`` for a file it was given as ``location``.

    ``/a/b c.csv`` → ``file:/a/b%20c.csv``; ``s3://bucket/a b.csv`` → ``s3://bucket/a%20b.csv``.
    Hadoop's ``Path`` builds it with java.net.URI, worked out here without the JVM (out of reach on
    Spark Connect and shared clusters): other ASCII characters of the path are percent-encoded
    as UTF-8, non-ASCII ones stay as they are unless they are spaces or control characters.
    """
    scheme, separator, rest = location.partition("://")
    if not separator:
        return "file:" + _quoted_path(location)
    authority, _, path = rest.partition("/")
    return f"{scheme}://{authority}" + _quoted_path("/" + path)


def _quoted_path(path: str) -> str:
    out = []
    for char in path:
        if char in _URI_PATH_KEEP:
            out.append(char)
        elif ord(char) <= 0x9F or unicodedata.category(char) in _SPACES:
            out.append(_escaped(char))
        else:
            out.append(char)
    return "".join(out)


_SPACES = ("Zs", "Zl", "Zp")  # Java's Character.isSpaceChar


def _local_path(file_uri: Column) -> Column:
    """``file:/a/b%20c.csv`` → ``/a/b c.csv``: the fallback match when the URI forms differ.
    On Databricks, Spark names a volume's file ``dbfs:/Volumes/…``; that is ``/Volumes/…`` too."""
    path = F.regexp_replace(file_uri, r"^(file|dbfs):(//)?", "")
    return F.url_decode(F.regexp_replace(path, r"\+", "%2B"))


def _normalise(
    read: RawGroup,
    spec: SourceSpec,
    target: dict[str, str],
    new_columns: dict[str, str],
    by_path: dict[str, BatchFile],
    ingested_at: datetime,
) -> DataFrame:
    """The group's rows in the table's columns, in up to three stacked projections.

    Every expression here must stay inside whole-stage codegen: no higher-order functions
    (map_filter and friends fall back to interpreted evaluation and cost 3-5x per row). And the
    batch's generated code must stay under HotSpot's 8,000-bytecode limit for JIT compilation,
    or it runs interpreted, about twice as slow (a source too wide for that falls back to
    Spark's split code instead; see ``spark.sql.codegen.hugeMethodLimit`` in engine/spark.py).
    Within one projection, Spark generates an expression again for every branch of a
    condition that reads it, so what the value guards read several times (a retyped field's
    text, a rescue condition) is computed once, as a hidden column of the projection below
    the one that reads it; Spark does not merge projections where that would repeat a
    non-trivial expression. For a sensor_data CSV file: 6.7 KB of bytecode, against 38 KB
    in one projection.
    """
    raw = read.df
    source_types = {f.name: f.dataType for f in raw.schema.fields}
    texts = {name: f"{_TEXT}{i}" for i, name in enumerate(sorted(read.retyped))}
    if texts:
        # The text of a retyped field in a row the fast path could not parse (null otherwise).
        raw = raw.select("*", *[_csv_text(read.reparsed.getField(name), target[name]).alias(alias)
                                for name, alias in texts.items()])
    selected: list[Column] = []
    rescued: list[tuple[str, Column, Column]] = []  # name, raw value, "did not convert"
    corrupt = F.col(CORRUPT_RECORD)
    for name, kind in target.items():
        if name in source_types:
            value, rescue = _convert(read, name, source_types[name], kind, texts.get(name))
            selected.append(value.alias(name))
            rescued += rescue
    for name, kind in new_columns.items():
        if name in source_types and name not in target:
            # A new column typed by an earlier group of the batch: values of this group that do
            # not convert are rescued too.
            value, rescue = _convert(read, name, source_types[name], kind)
            selected.append(value.alias(name))
            rescued += rescue
    for name in source_types:
        if name.startswith(RESCUE_PREFIX):
            value = F.col(quoted(name)).cast("string")
            rescued.append((name[len(RESCUE_PREFIX):].split("__", 1)[1], value,
                            value.isNotNull()))
        elif (spec.schema_contract is SchemaContract.RESCUE and name not in target
              and name not in (CORRUPT_RECORD, FILE_PATH)):
            # Not a column of the table: its values are kept in _rescued_data under its name.
            value, rescue = _convert(read, name, source_types[name], "string")
            rescued += [*rescue, (name, value, value.isNotNull())]
    if CORRUPT_RECORD in source_types:
        # A row that only failed the fast path's types is not a malformed line: its line is
        # rescued only when splitting it as text finds it malformed too.
        malformed = (corrupt.isNotNull() if read.reparsed is None
                     else read.reparsed.getField(CORRUPT_RECORD).isNotNull())
        rescued.append((CORRUPT_RECORD_KEY, corrupt, malformed))

    hidden: list[Column] = []
    entries: list[tuple[str, Column, Column]] = []
    for i, (name, value, condition) in enumerate(rescued):
        hidden += [value.alias(f"{_RESCUE_VALUE}{i}"), condition.alias(f"{_RESCUE_IF}{i}")]
        entries.append((name, F.col(f"{_RESCUE_VALUE}{i}"), F.col(f"{_RESCUE_IF}{i}")))
    converted = raw.select(*selected, *hidden, F.col(FILE_PATH))
    file_path = F.col(FILE_PATH)
    uris = {p: f.obj.uri for p, f in by_path.items()}
    values = {p: spec.partitions.spark_value(f.partition_key) for p, f in by_path.items()}
    return converted.select(
        *[F.col(quoted(name)) for name in converted.columns[:len(selected)]],
        _lookup(file_path, uris).alias(SOURCE_FILE_COLUMN),
        F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT_COLUMN),
        _rescued(entries).alias(RESCUED_DATA_COLUMN),
        _lookup(file_path, values).cast(spec.partitions.column_type).alias(spec.partition_column),
    )


def _convert(read: RawGroup, name: str, source_type: T.DataType, kind: str,
             text_column: str | None = None) -> tuple[Column, list[tuple[str, Column, Column]]]:
    """Column ``name`` of a group as the catalog type ``kind``, and the rescue entries for the
    values that do not convert (each: name, value as written, whether it did not convert).
    ``text_column``: for a retyped column, the hidden column with its text (see _normalise)."""
    value = F.col(quoted(name))
    if text_column is not None:
        # Parsed by Spark where the row parsed; else from the row's text, as any text is. An
        # infinite double (beyond the type's range, "1e400", or "Infinity") is rescued: the
        # fast path no longer has its text, so it is rescued as Spark read it.
        fast = F.col(CORRUPT_RECORD).isNull()
        text = F.col(text_column)
        # The text is a column of its own here, so reading it twice costs nothing.
        parsed = text.try_cast(kind)
        from_text = F.when(finite(parsed), parsed)
        converted = F.when(fast & finite(value), value).otherwise(from_text)
        written = F.when(fast, value.cast("string")).otherwise(text)
        failed = F.when(fast, ~finite(value)).otherwise(text.isNotNull() & from_text.isNull())
        return converted, [(name, written, failed)]
    if read.quoted_empty and kind == "string":
        value = _csv_text(value, kind)
    if read.typed and kind == "string" and isinstance(source_type, (T.StringType, T.BinaryType)):
        # Bytes that are not UTF-8 would make the table unreadable for Arrow and pandas.
        text = valid_text(value)
        return (F.when(text, value.cast("string")),
                [(name, F.concat(F.lit("base64:"), F.base64(value.cast("binary"))),
                  value.isNotNull() & ~text)])
    parsed = parse_value(value, source_type, kind)
    if kind != "string" and source_type != spark_type(kind):
        failed = value.isNotNull() & parsed.isNull()
        if read.quoted_empty:  # a quoted empty field parses to null: no value, not a failure
            failed = failed & (value != F.lit(QUOTED_EMPTY))
        return parsed, [(name, value.cast("string"), failed)]
    return parsed, []


def _csv_text(value: Column, kind: str) -> Column:
    """A CSV field's text: a quoted empty field is an empty string in a text column and null
    (no value, nothing to rescue) in a typed one, like an unquoted empty field."""
    if kind == "string":
        return F.when(value == F.lit(QUOTED_EMPTY), F.lit("")).otherwise(value)
    return F.nullif(value, F.lit(QUOTED_EMPTY))


def _lookup(file_uri: Column, mapping: dict[str, object]) -> Column:
    """The value for the row's file: a literal for one file, else a map lookup by file URI."""
    if len(set(mapping.values())) == 1:
        return F.lit(next(iter(mapping.values())))
    by_uri = F.create_map(*[F.lit(v) for item in sorted(mapping.items()) for v in item])
    by_local = F.create_map(*[F.lit(v) for path, value in sorted(mapping.items())
                              for v in (_decoded_local(path), value)])
    return F.coalesce(F.element_at(by_uri, file_uri),
                      F.element_at(by_local, _local_path(file_uri)))


def _decoded_local(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


def _rescued(entries: list[tuple[str, Column, Column]]) -> Column:
    """JSON of the values that did not convert, e.g. ``{"temperature": "N/A"}``; else null."""
    if not entries:
        return F.lit(None).cast("string")
    any_rescued = entries[0][2]
    for _, _, condition in entries[1:]:
        any_rescued = any_rescued | condition
    # to_json leaves out null fields, so only the rescued values appear.
    record = F.struct(*[F.when(condition, value).alias(name)
                        for name, value, condition in entries])
    return F.when(any_rescued, F.to_json(record))


def _align(
    df: DataFrame,
    columns: list[str],
    target: dict[str, str],
    new_columns: dict[str, str],
    spec: SourceSpec,
) -> DataFrame:
    """Same columns in the same order for every group; missing ones are typed nulls."""
    present = set(df.columns)
    out = []
    for name in columns:
        kind = target.get(name) or new_columns[name]
        out.append(F.col(f"`{name}`") if name in present
                   else F.lit(None).cast(kind).alias(name))  # by name: see parse_value
    out += [F.col(c) for c in (*LINEAGE_COLUMNS, spec.partition_column)]
    return df.select(out)

