"""Hostile landing-zone inputs, one function per issue class, each with its expected outcome.

Stdlib + gzip + pyarrow only. Each ``caseNN_*`` function writes its file(s) under ``root`` (the
landing root; it may also create siblings of ``root`` for link targets "outside the landing
zone") and returns a ``HostileCase``. A pytest test typically does::

    case = hostile_corpus.case05_quoted_newlines(lake.landing_root)
    report = lake.ingest(case.source, *case.partitions)
    check(case, report, lake.table(case.source))   # see check_report / file_rows below

Conventions for the expectations:

- ``FileExpect.status``: ``committed`` | ``failed`` | ``ignored`` (reported, never read) |
  ``absent`` (never reported and never read). ``reason`` is a case-insensitive substring of the
  outcome's ``error`` (failed) or ``note`` (ignored / committed).
- ``rows``: exact rows of that file in the table (``_source_file`` = its URI).
- ``must_keep``: strings that must appear among that file's rows, either as a column value
  (cast to string) or inside ``_rescued_data`` — "nothing is lost silently".
- ``rescued``: strings that must appear inside ``_rescued_data`` of that file's rows.
- ``sql``: (predicate, count) pairs over that file's rows; ``{uri}`` is replaced by the URI.
- ``forbidden``: strings that must not appear in any cell of the table.
- ``during``: for class 4, a callable(root) the test must run while the ingest is in flight
  (``during_stage`` says when: ``after_listing`` or ``after_inspection``); ``runs`` is how many
  ingest runs the expectation holds after.
- ``deltars_readable``: the table must load with ``deltalake.DeltaTable(path).to_pyarrow_table()``.
- ``cli``: for class 18, command-line cases (argv, extra env, exit code, stderr substring).
- ``env``: settings the ingest runs with (``Settings.configured``); ``columns`` / ``no_columns``:
  columns the table must have / must not have afterwards.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DAY = "2026-11-20"
SENSOR_DAY = "raw/sensor-data/2026/11/20"
LOGS_DAY = "raw/equipment-logs/2026/11/20"
QM_HOUR = "raw/quality-metrics/2026/11/20/10"
QM_PARTITION = "2026-11-20-10:00"
HEADER = "plant_id,line_id,sensor_id,timestamp,temperature,humidity,pressure,vibration"


def row(sid: str, ts: str = "2026-11-20T10:00:00Z", temp: str = "21.5") -> str:
    return f"P01,P01-L1,{sid},{ts},{temp},40,101.3,2.5\n"


def csv_text(*sids: str) -> str:
    return HEADER + "\n" + "".join(row(s) for s in sids)


def jline(**values) -> str:
    base = {"plant_id": "P01", "sensor_id": "J", "timestamp": "2026-11-20T10:00:00Z",
            "temperature": 20.5}
    return json.dumps({**base, **values}) + "\n"


@dataclass
class FileExpect:
    key: str
    status: str
    rows: int | None = None
    reason: str | None = None
    partition: str | None = None
    must_keep: list[str] = field(default_factory=list)
    rescued: list[str] = field(default_factory=list)
    sql: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class CliExpect:
    argv: list[str]
    env: dict[str, str]
    exit_code: int
    stderr: str  # substring; stderr must also be a single line without "Traceback"


@dataclass
class HostileCase:
    cls: int
    name: str
    source: str
    partitions: list[str]
    files: list[FileExpect]
    table_rows: int | None = None
    forbidden: list[str] = field(default_factory=list)
    during: Callable[[Path], None] | None = None
    during_stage: str | None = None
    runs: int = 1
    deltars_readable: bool = False
    cli: list[CliExpect] = field(default_factory=list)
    note: str = ""
    # Settings the ingest runs with, as environment variables (e.g. the source's schema contract).
    env: dict[str, str] = field(default_factory=dict)
    # Columns the table must have / must not have afterwards.
    columns: list[str] = field(default_factory=list)
    no_columns: list[str] = field(default_factory=list)


def put(root: Path, key: str, data: bytes | str, mtime: datetime | None = None) -> Path:
    path = Path(root) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def _outside(root: Path, name: str) -> Path:
    """A folder next to the landing root (outside it) for link targets."""
    folder = Path(root).resolve().parent / f"outside-{Path(root).name}-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- 1 ------------------------------------------------------------------------------------------

def case01_symlinks(root: Path) -> HostileCase:
    root = Path(root)
    out = _outside(root, "secret")
    (out / "secret.csv").write_text(csv_text("SECRET-OUTSIDE"))
    (out / "day").mkdir(exist_ok=True)
    (out / "day" / "a.csv").write_text(csv_text("SECRET-DIR"))
    put(root, f"{SENSOR_DAY}/good.csv", csv_text("G1"))
    put(root, f"{SENSOR_DAY}/real.csv", csv_text("R1"))
    links = {
        f"{SENSOR_DAY}/passwd.csv": "/etc/passwd",
        f"{SENSOR_DAY}/secret.csv": str(out / "secret.csv"),
        f"{SENSOR_DAY}/relative.csv": os.path.relpath(out / "secret.csv", root / SENSOR_DAY),
        f"{SENSOR_DAY}/dangling.csv": str(out / "does-not-exist.csv"),
        f"{SENSOR_DAY}/alias.csv": "real.csv",  # inside the root: allowed
        f"{SENSOR_DAY}/linkdir": str(out / "day"),  # a linked folder
    }
    for key, target in links.items():
        os.symlink(target, root / key)
    outside = "outside the landing root"
    return HostileCase(
        1, "symlinks", "sensor_data", [DAY],
        [
            FileExpect(f"{SENSOR_DAY}/good.csv", "committed", rows=1),
            FileExpect(f"{SENSOR_DAY}/real.csv", "committed", rows=1),
            FileExpect(f"{SENSOR_DAY}/alias.csv", "committed", rows=1),
            FileExpect(f"{SENSOR_DAY}/passwd.csv", "ignored", reason=outside),
            FileExpect(f"{SENSOR_DAY}/secret.csv", "ignored", reason=outside),
            FileExpect(f"{SENSOR_DAY}/relative.csv", "ignored", reason=outside),
            FileExpect(f"{SENSOR_DAY}/dangling.csv", "ignored", reason="broken"),
            FileExpect(f"{SENSOR_DAY}/linkdir", "ignored", reason=outside),
        ],
        table_rows=3, forbidden=["SECRET-OUTSIDE", "SECRET-DIR", "root:x:0:0"],
    )


# -- 2 ------------------------------------------------------------------------------------------

GLOB_NAMES = {"starA.csv": "STAR-A", "star*.csv": "STAR-STAR", "qX.csv": "Q-X", "q?.csv": "Q-Q",
              "br[1].csv": "BRACKET", "cu{a,b}.csv": "CURLY", "back\\slash.csv": "BACKSLASH",
              "st*r.json": "JSON-STAR"}


def case02_glob_names(root: Path) -> HostileCase:
    files = []
    for name, sid in GLOB_NAMES.items():
        data = jline(sensor_id=sid) if name.endswith(".json") else csv_text(sid)
        put(root, f"{SENSOR_DAY}/{name}", data)
        files.append(FileExpect(f"{SENSOR_DAY}/{name}", "committed", rows=1,
                                sql=[(f"sensor_id = '{sid}'", 1)]))
    return HostileCase(2, "glob_names", "sensor_data", [DAY], files, table_rows=len(GLOB_NAMES))


# -- 3 ------------------------------------------------------------------------------------------

def case03_in_flight_folders(root: Path) -> HostileCase:
    put(root, f"{SENSOR_DAY}/good.csv", csv_text("G1"))
    hidden = [f"{SENSOR_DAY}/_temporary/0/part-00000.csv", f"{SENSOR_DAY}/.staging/x.csv",
              f"{SENSOR_DAY}/_tmp_upload/y.csv", f"{SENSOR_DAY}/.hidden.csv"]
    for key in hidden:
        put(root, key, csv_text("INFLIGHT"))
    return HostileCase(
        3, "in_flight_folders", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/good.csv", "committed", rows=1)]
        + [FileExpect(k, "ignored", reason="in-flight") for k in hidden],
        table_rows=1, forbidden=["INFLIGHT"],
    )


# -- 4 ------------------------------------------------------------------------------------------

def _appender(key: str, *sids: str) -> Callable[[Path], None]:
    def append(root: Path) -> None:
        with open(Path(root) / key, "a") as f:
            f.write("".join(row(s) for s in sids))
    return append


def case04_append_during_ingest(root: Path, stage: str = "after_inspection") -> HostileCase:
    """Run 1 sees the file change and defers it; run 2 ingests all 4 rows once."""
    key = f"{SENSOR_DAY}/growing.csv"
    put(root, key, csv_text("A1", "A2"))
    put(root, f"{SENSOR_DAY}/steady.csv", csv_text("S1"))
    return HostileCase(
        4, f"append_during_ingest_{stage}", "sensor_data", [DAY],
        [FileExpect(key, "committed", rows=4, sql=[("sensor_id in ('A1','A2','A3','A4')", 4)]),
         FileExpect(f"{SENSOR_DAY}/steady.csv", "committed", rows=1)],
        table_rows=5, during=_appender(key, "A3", "A4"), during_stage=stage, runs=2,
        note="after run 1 the growing file is failed with 'changed while it was read'",
    )


# -- 5 ------------------------------------------------------------------------------------------

def case05_quoted_newlines(root: Path) -> HostileCase:
    text = (HEADER + "\n"
            + 'P01,"L1\nsecond line",S1,2026-11-20T10:00:00Z,21.5,40,101.3,2.5\n'
            + 'P01,"L,2 ""quoted""",S2,2026-11-20T10:01:00Z,22.5,41,101.3,2.5\n'
            + 'P01,"L3\r\nthird",S3,2026-11-20T10:02:00Z,23.5,42,101.3,2.5\n')
    put(root, f"{SENSOR_DAY}/multi.csv", text)
    put(root, f"{SENSOR_DAY}/multi.csv.gz", gzip.compress(text.replace("S", "Z").encode()))
    put(root, f"{SENSOR_DAY}/plain.csv", csv_text("P1"))
    checks = [("line_id = 'L1\nsecond line' and temperature = 21.5", 1),
              ("line_id = 'L,2 \"quoted\"' and temperature = 22.5", 1),
              ("line_id = 'L3\r\nthird' and temperature = 23.5", 1),
              ("_rescued_data is null", 3)]
    return HostileCase(
        5, "quoted_newlines", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/multi.csv", "committed", rows=3, sql=checks),
         FileExpect(f"{SENSOR_DAY}/multi.csv.gz", "committed", rows=3, sql=checks),
         FileExpect(f"{SENSOR_DAY}/plain.csv", "committed", rows=1)],
        table_rows=7,
    )


# -- 6 ------------------------------------------------------------------------------------------

def case06_metadata_column(root: Path) -> HostileCase:
    forged = "s3://forged/evil.parquet"
    table = pa.table({
        "batch_id": ["B1", "B2"], "metric_name": ["w", "w"], "metric_value": [1.0, 2.0],
        "_metadata": pa.array([{"file_path": forged, "file_name": "x"},
                               {"file_path": None, "file_name": None}]),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf)
    put(root, f"{QM_HOUR}/meta.parquet", buf.getvalue())
    # Same schema as meta.parquet: both in one Spark read, where lineage is a lookup by path.
    buf2 = io.BytesIO()
    pq.write_table(table, buf2)
    put(root, f"{QM_HOUR}/meta2.parquet", buf2.getvalue())
    put(root, f"{QM_HOUR}/plain.parquet", _parquet({"batch_id": ["B3"], "metric_value": [3.0]}))
    return HostileCase(
        6, "metadata_column", "quality_metrics", [QM_PARTITION],
        [FileExpect(f"{QM_HOUR}/meta.parquet", "committed", rows=2,
                    sql=[("_source_file = '{uri}'", 2),
                         ("_partition_hour = timestamp'2026-11-20 10:00:00'", 2)]),
         FileExpect(f"{QM_HOUR}/meta2.parquet", "committed", rows=2,
                    sql=[("_source_file = '{uri}'", 2)]),
         FileExpect(f"{QM_HOUR}/plain.parquet", "committed", rows=1)],
        table_rows=5,
    )


def case06b_metadata_key_in_json(root: Path) -> HostileCase:
    put(root, f"{SENSOR_DAY}/meta.json",
        jline(sensor_id="M1", _metadata={"file_path": "s3://forged/x.json"})
        + jline(sensor_id="M2"))
    put(root, f"{SENSOR_DAY}/other.csv", csv_text("O1"))
    return HostileCase(
        6, "metadata_key_in_json", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/meta.json", "committed", rows=2,
                    sql=[("_source_file = '{uri}'", 2)], must_keep=["s3://forged/x.json"]),
         FileExpect(f"{SENSOR_DAY}/other.csv", "committed", rows=1)],
        table_rows=3,
    )


def _parquet(columns: dict) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


# -- 7 ------------------------------------------------------------------------------------------

def case07_new_column_type_conflict(root: Path) -> HostileCase:
    put(root, f"{QM_HOUR}/a.parquet", _parquet({"batch_id": ["A"], "new_metric": [1.5]}))
    put(root, f"{QM_HOUR}/b.parquet",
        _parquet({"batch_id": ["B1", "B2"], "new_metric": ["abc", "2.5"]}))
    return HostileCase(
        7, "new_column_type_conflict", "quality_metrics", [QM_PARTITION],
        [FileExpect(f"{QM_HOUR}/a.parquet", "committed", rows=1, must_keep=["1.5"]),
         FileExpect(f"{QM_HOUR}/b.parquet", "committed", rows=2, must_keep=["abc", "2.5"])],
        table_rows=3,
    )


def case07b_new_column_csv_vs_parquet(root: Path) -> HostileCase:
    put(root, f"{QM_HOUR}/a.parquet", _parquet({"batch_id": ["A"], "new_count": [7]}))
    put(root, f"{QM_HOUR}/b.csv", "batch_id,new_count\nB,seven\nC,8\n")
    return HostileCase(
        7, "new_column_csv_vs_parquet", "quality_metrics", [QM_PARTITION],
        [FileExpect(f"{QM_HOUR}/a.parquet", "committed", rows=1, must_keep=["7"]),
         FileExpect(f"{QM_HOUR}/b.csv", "committed", rows=2, must_keep=["seven", "8"])],
        table_rows=3,
    )


# -- 8 ------------------------------------------------------------------------------------------

def case08_nested_parquet(root: Path) -> HostileCase:
    table = pa.table({
        "batch_id": ["N1"],
        "dims": pa.array([{"x": 1.5, "label": "a, b"}]),
        "readings": pa.array([[1.5, 2.0]]),
        "tags": pa.array([[("k", "v")]], type=pa.map_(pa.string(), pa.string())),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf)
    put(root, f"{QM_HOUR}/nested.parquet", buf.getvalue())
    return HostileCase(
        8, "nested_parquet", "quality_metrics", [QM_PARTITION],
        [FileExpect(f"{QM_HOUR}/nested.parquet", "committed", rows=1,
                    sql=[("""from_json(dims, 'x double, label string').label = 'a, b'""", 1),
                         ("""from_json(readings, 'array<double>')[1] = 2.0""", 1),
                         ("""from_json(tags, 'map<string,string>')['k'] = 'v'""", 1)])],
        table_rows=1,
        note="dims/readings/tags are JSON text: json.loads(value) round-trips",
    )


# -- 9 ------------------------------------------------------------------------------------------

def case09_epoch_units(root: Path) -> HostileCase:
    stamps = {"1763632800": "S", "1763632800000": "MS", "1763632800000000": "US",
              "1763632800000000000": "NS", "-99999999999999": "NEG"}
    put(root, f"{SENSOR_DAY}/epochs.csv",
        HEADER + "\n" + "".join(row(sid, ts=ts) for ts, sid in stamps.items()))
    return HostileCase(
        9, "epoch_units", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/epochs.csv", "committed", rows=5,
                    rescued=["1763632800000000", "1763632800000000000", "-99999999999999"],
                    sql=[("timestamp = timestamp'2025-11-20 10:00:00'", 2),
                         ("timestamp is null and _rescued_data is not null", 3)])],
        table_rows=5,
    )


# -- 10 -----------------------------------------------------------------------------------------

def case10_far_timestamps(root: Path) -> HostileCase:
    put(root, f"{SENSOR_DAY}/far.csv", HEADER + "\n" + row("Y2300", ts="2300-01-01T00:00:00Z")
        + row("Y1500", ts="1500-01-01T00:00:00Z") + row("Y9999", ts="9999-12-31T23:59:59Z"))
    return HostileCase(
        10, "far_timestamps", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/far.csv", "committed", rows=3,
                    sql=[("year(timestamp) in (1500, 2300, 9999)", 3)])],
        table_rows=3, deltars_readable=True,
    )


# -- 11 -----------------------------------------------------------------------------------------

def case11_huge_json_string(root: Path, chars: int = 21_000_000) -> HostileCase:
    big = {"event_id": "E1", "timestamp": "2026-11-20T10:00:00Z", "message": "x" * chars}
    put(root, f"{LOGS_DAY}/big.jsonl",
        json.dumps(big) + "\n" + json.dumps({"event_id": "E2", "message": "small"}) + "\n")
    return HostileCase(
        11, "huge_json_string", "equipment_logs", [DAY],
        [FileExpect(f"{LOGS_DAY}/big.jsonl", "committed", rows=2,
                    sql=[(f"event_id = 'E1' and length(message) = {chars}", 1),
                         ("_rescued_data is null", 2)])],
        table_rows=2,
        note="a line longer than the line limit (64 MiB) fails with 'longer than' instead",
    )


# -- 12 -----------------------------------------------------------------------------------------

def case12_reserved_keys_in_json(root: Path) -> HostileCase:
    put(root, f"{SENSOR_DAY}/reserved.json",
        jline(sensor_id="C1", _corrupt_record="mine-corrupt")
        + jline(sensor_id="C2", _rescued_data="mine-rescued")
        + jline(sensor_id="C3", _source_file="s3://spoofed/file.json", _ingested_at="x")
        + '{"sensor_id": "C4", "temperature": 2\n')
    return HostileCase(
        12, "reserved_keys_in_json", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/reserved.json", "committed", rows=4,
                    must_keep=["mine-corrupt", "mine-rescued", "s3://spoofed/file.json"],
                    rescued=['{"sensor_id": "C4", "temperature": 2'],
                    sql=[("_source_file = '{uri}'", 4)])],
        table_rows=4,
    )


# -- 13 -----------------------------------------------------------------------------------------

def case13_huge_header(root: Path) -> HostileCase:
    put(root, f"{SENSOR_DAY}/longname.csv", HEADER + ",x" + "y" * 200_000 + "\n" + row("L1"))
    put(root, f"{SENSOR_DAY}/wide.csv",
        HEADER + "," + ",".join(f"c{i}" for i in range(25_000)) + "\n" + row("W1"))
    put(root, f"{SENSOR_DAY}/good.csv", csv_text("G1"))
    return HostileCase(
        13, "huge_header", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/longname.csv", "failed", reason="column name"),
         FileExpect(f"{SENSOR_DAY}/wide.csv", "failed", reason="columns"),
         FileExpect(f"{SENSOR_DAY}/good.csv", "committed", rows=1)],
        table_rows=1,
    )


# -- 14 -----------------------------------------------------------------------------------------

def _gzip_stream(path: Path, unit: bytes, total: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = unit * (8 * 1024 * 1024 // len(unit))
    with gzip.open(path, "wb", compresslevel=1) as f:
        written = 0
        while written < total:
            part = chunk[: total - written]
            f.write(part)
            written += len(part)


def case14_decompression_bombs(root: Path, size: int = 1 << 30) -> HostileCase:
    root = Path(root)
    _gzip_stream(root / f"{SENSOR_DAY}/zeros.csv.gz", b"\0", size)
    _gzip_stream(root / f"{SENSOR_DAY}/zeros.json.gz", b"\0", size)
    _gzip_stream(root / f"{SENSOR_DAY}/blank.csv.gz", b"\n", size)
    put(root, f"{SENSOR_DAY}/good.csv", csv_text("G1", "G2"))
    return HostileCase(
        14, "decompression_bombs", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/zeros.csv.gz", "failed", reason="line longer than"),
         FileExpect(f"{SENSOR_DAY}/zeros.json.gz", "failed", reason="line longer than"),
         FileExpect(f"{SENSOR_DAY}/blank.csv.gz", "failed", reason="expands"),
         FileExpect(f"{SENSOR_DAY}/good.csv", "committed", rows=2)],
        table_rows=2, note="peak RSS (python + JVM) must stay < 2 GB above the same run without "
                           "the bombs",
    )


# -- 15 -----------------------------------------------------------------------------------------

def case15_json_key_collisions(root: Path) -> HostileCase:
    put(root, f"{SENSOR_DAY}/dup.json",
        '{"sensor_id": "D1", "temperature": 1.25, "temperature": 2.75}\n' + jline(sensor_id="D2"))
    put(root, f"{SENSOR_DAY}/case.json",
        jline(sensor_id="K1", temperature=None, Temperature=5.5)
        + jline(sensor_id="K2", temperature=6.5))
    put(root, f"{SENSOR_DAY}/both.json",
        '{"sensor_id": "B1", "Temperature": 7.5, "temperature": 8.5}\n')
    put(root, f"{SENSOR_DAY}/allbad.json", "not json\n{broken\n")
    put(root, f"{SENSOR_DAY}/upper.json", jline(sensor_id="U1", TEMPERATURE=9.5))
    return HostileCase(
        15, "json_key_collisions", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/dup.json", "committed", rows=2,
                    must_keep=["1.25", "2.75"], rescued=["2.75"]),
         FileExpect(f"{SENSOR_DAY}/case.json", "committed", rows=2, must_keep=["5.5", "6.5"]),
         FileExpect(f"{SENSOR_DAY}/both.json", "committed", rows=1, must_keep=["7.5", "8.5"]),
         FileExpect(f"{SENSOR_DAY}/allbad.json", "committed", rows=2,
                    rescued=["not json", "{broken"]),
         FileExpect(f"{SENSOR_DAY}/upper.json", "committed", rows=1, must_keep=["9.5"])],
        table_rows=8,
    )


# -- 16 -----------------------------------------------------------------------------------------

def case16_colons(root: Path) -> HostileCase:
    keys = {f"{SENSOR_DAY}/sensor_2026-11-20T10:00:00.csv": "COLON-CSV",
            f"{SENSOR_DAY}/a:b.json": "COLON-JSON",
            f"{SENSOR_DAY}/run:7/x.csv": "COLON-DIR",
            f"{SENSOR_DAY}/100%25 done.csv": "PERCENT"}
    files = []
    for key, sid in keys.items():
        put(root, key, jline(sensor_id=sid) if key.endswith(".json") else csv_text(sid))
        files.append(FileExpect(key, "committed", rows=1, sql=[(f"sensor_id = '{sid}'", 1)]))
    return HostileCase(16, "colons", "sensor_data", [DAY], files, table_rows=len(keys))


# -- 17 -----------------------------------------------------------------------------------------

def case17_misfiled_dates(root: Path) -> HostileCase:
    t_day = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    put(root, "raw/sensor-data/2026/02/30/a.csv", csv_text("FEB30"), mtime=t_day)
    put(root, "raw/sensor-data/2026/11/20.csv", csv_text("DAYFILE"), mtime=t_day)
    put(root, "raw/sensor-data/2026/13/01/m.csv", csv_text("MONTH13"), mtime=t_day)
    put(root, f"{SENSOR_DAY}/ok.csv", csv_text("OK"))
    note = "LastModified"
    return HostileCase(
        17, "misfiled_dates", "sensor_data", [DAY],
        [FileExpect("raw/sensor-data/2026/02/30/a.csv", "committed", rows=1, partition=DAY,
                    reason=note),
         FileExpect("raw/sensor-data/2026/11/20.csv", "committed", rows=1, partition=DAY,
                    reason=note),
         FileExpect("raw/sensor-data/2026/13/01/m.csv", "committed", rows=1, partition=DAY,
                    reason=note),
         FileExpect(f"{SENSOR_DAY}/ok.csv", "committed", rows=1, partition=DAY)],
        table_rows=4,
        note="also: scan_landing (sensor) must report these objects with their fallback "
             "partition",
    )


def case17b_misfiled_hours(root: Path) -> HostileCase:
    t_hour = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    q = "batch_id,metric_name,metric_value\n{b},w,1.0\n"
    put(root, "raw/quality-metrics/2026/11/20/day-level.csv", q.format(b="DAYLVL"), mtime=t_hour)
    put(root, "raw/quality-metrics/2026/11/20/24/h.csv", q.format(b="HOUR24"), mtime=t_hour)
    put(root, f"{QM_HOUR}/ok.csv", q.format(b="OK"))
    return HostileCase(
        17, "misfiled_hours", "quality_metrics", [QM_PARTITION],
        [FileExpect("raw/quality-metrics/2026/11/20/day-level.csv", "committed", rows=1,
                    partition=QM_PARTITION, reason="LastModified"),
         FileExpect("raw/quality-metrics/2026/11/20/24/h.csv", "committed", rows=1,
                    partition=QM_PARTITION, reason="LastModified"),
         FileExpect(f"{QM_HOUR}/ok.csv", "committed", rows=1, partition=QM_PARTITION)],
        table_rows=3,
    )


# -- 18 -----------------------------------------------------------------------------------------

def case18_cli(root: Path) -> HostileCase:
    """CLI misuse; ``root`` is a scratch folder (landing = root/landing)."""
    root = Path(root)
    landing = root / "landing"
    put(landing, f"{SENSOR_DAY}/good.csv", csv_text("G1"))
    (root / "lake_is_a_file").write_text("not a folder")
    # sysfs refuses new folders to every user, root included (CI runs as root, which may
    # write into any 0555 folder of an ordinary file system).
    ro = Path("/sys/manufacturing-ingest-lakehouse")
    env = {"MANUFACTURING_LANDING_URL": str(landing),
           "MANUFACTURING_LAKEHOUSE_URL": str(root / "lake")}
    ing = ["ingest", "--source", "sensor_data", "--partition"]
    return HostileCase(
        18, "cli", "sensor_data", [DAY], [],
        cli=[
            CliExpect(ing + [DAY, "--to", "2026-11-10"], env, 2, "before"),
            CliExpect(ing + ["9999-12-31"], env, 2, "9999-12-31"),
            CliExpect(ing + ["2026-13-45"], env, 2, "2026-13-45"),
            CliExpect(ing + [DAY], {**env, "MANUFACTURING_LAKEHOUSE_URL":
                                    str(root / "lake_is_a_file")}, 2, "not a folder"),
            CliExpect(ing + [DAY], {**env, "MANUFACTURING_LAKEHOUSE_URL": str(ro)}, 2,
                      "not writable"),
            CliExpect(ing + [DAY], {**env, "MANUFACTURING_LANDING_URL": str(root / "nope")}, 2,
                      "does not exist"),
            CliExpect(ing + [DAY], {**env, "MANUFACTURING_LAKEHOUSE_URL":
                                    str(landing / "lake")}, 2, "inside the landing"),
        ],
    )


# -- 19: file names (not UTF-8, control and bidi characters) -----------------------------------

HOSTILE_NAMES = {"evil\x1b[2J.csv": "ESC", "two\ncommitted 40 1 forged.csv": "NL",
                 "invoice\u202egpj.csv": "RTL", "tab\there.csv": "TAB", "Prüf µm.csv": "UNI"}


def case19_file_names(root: Path) -> HostileCase:
    """Names as Windows clients, scripts and careless uploads make them: every UTF-8 name lands
    under its exact URI; a Latin-1 name (not UTF-8) fails once with what to do, listed by its
    escaped spelling, and does not stop the rest."""
    files = []
    for name, sid in HOSTILE_NAMES.items():
        put(root, f"{SENSOR_DAY}/{name}", csv_text(sid))
        files.append(FileExpect(f"{SENSOR_DAY}/{name}", "committed", rows=1,
                                sql=[(f"sensor_id = '{sid}'", 1)]))
    folder = os.fsencode(Path(root) / SENSOR_DAY)
    with open(os.path.join(folder, b"Pr\xfcfprotokoll.csv"), "wb") as out:
        out.write(csv_text("LATIN1").encode())
    files.append(FileExpect(f"{SENSOR_DAY}/Pr\\xfcfprotokoll.csv", "failed",
                            reason="file name is not valid UTF-8"))
    return HostileCase(19, "file_names", "sensor_data", [DAY], files,
                       table_rows=len(HOSTILE_NAMES), forbidden=["LATIN1"])


# -- 20: header names in other scripts ---------------------------------------------------------

def case20_header_scripts(root: Path) -> HostileCase:
    """A Japanese plant's export with its columns in two orders, and a German gauge's µm beside
    m: each name keeps its own column (none collapses to ``unnamed`` or onto another)."""
    base = "plant_id,line_id,sensor_id,timestamp"
    put(root, f"{SENSOR_DAY}/jp-a.csv",
        f"{base},温度,湿度\nP09,L1,JPA,2026-11-20T10:00:00Z,21.5,40.5\n")
    put(root, f"{SENSOR_DAY}/jp-b.csv",
        f"{base},湿度,温度\nP09,L1,JPB,2026-11-20T10:05:00Z,41.5,22.5\n")
    put(root, f"{SENSOR_DAY}/de.csv",
        f"{base},Dicke µm,Dicke (m)\nP10,L1,DE,2026-11-20T10:00:00Z,120,0.00012\n")
    return HostileCase(
        20, "header_scripts", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/jp-a.csv", "committed", rows=1,
                    sql=[("`温度` = '21.5' and `湿度` = '40.5'", 1)]),
         FileExpect(f"{SENSOR_DAY}/jp-b.csv", "committed", rows=1,
                    sql=[("`温度` = '22.5' and `湿度` = '41.5'", 1)]),
         FileExpect(f"{SENSOR_DAY}/de.csv", "committed", rows=1,
                    sql=[("`dicke_µm` = '120' and `dicke_m` = '0.00012'", 1)])],
        table_rows=3, forbidden=[], deltars_readable=True,
    )


# -- 21: files that are not the source's (headerless, foreign) ------------------------------------

def case21_foreign_files(root: Path) -> HostileCase:
    """A PLC's headerless export, another system's CSV and JSON under the source's prefix: none
    shares a column with sensor_data, so each fails with that reason and adds nothing (no rows,
    no columns named after data values); the good file beside them lands."""
    put(root, f"{SENSOR_DAY}/plc-headerless.csv", row("PLC1") + row("PLC2"))
    put(root, f"{SENSOR_DAY}/addresses.csv",
        "first,last,address,city,zip\nJohn,Doe,120 any st.,Anytown,08123\n")
    put(root, f"{SENSOR_DAY}/orders.json", '{"order": "ORD-1", "qty": 3}\n')
    put(root, f"{SENSOR_DAY}/good.csv", csv_text("G1"))
    return HostileCase(
        21, "foreign_files", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/plc-headerless.csv", "failed",
                    reason="shares no column with sensor_data"),
         FileExpect(f"{SENSOR_DAY}/addresses.csv", "failed", reason="shares no column"),
         FileExpect(f"{SENSOR_DAY}/orders.json", "failed", reason="shares no column"),
         FileExpect(f"{SENSOR_DAY}/good.csv", "committed", rows=1)],
        table_rows=1, forbidden=["PLC1", "PLC2", "Anytown", "ORD-1"],
    )


# -- 22: the schema contract -------------------------------------------------------------------

EXTRA_HEADER = HEADER + ",operator"


def _schema_files(root: Path) -> None:
    put(root, f"{SENSOR_DAY}/good.csv", csv_text("G1"))
    put(root, f"{SENSOR_DAY}/extra.csv", EXTRA_HEADER + "\n" + row("EX1").rstrip() + ",Anna\n")
    # The new key only on the second line: the first line's keys do not tell.
    put(root, f"{SENSOR_DAY}/extra.json", jline(sensor_id="EJ1") + jline(sensor_id="EJ2",
                                                                          shift="night"))
    put(root, f"{SENSOR_DAY}/plc-headerless.csv", row("PLC1") + row("PLC2"))


def case22_schema_rescue(root: Path) -> HostileCase:
    """``MANUFACTURING_SCHEMA_SENSOR_DATA=rescue``: the table keeps its columns; a file's new
    columns land in ``_rescued_data`` under their names; a headerless file still fails."""
    _schema_files(root)
    return HostileCase(
        22, "schema_rescue", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/good.csv", "committed", rows=1),
         FileExpect(f"{SENSOR_DAY}/extra.csv", "committed", rows=1, rescued=["Anna"],
                    sql=[("_rescued_data like '%\"operator\":\"Anna\"%'", 1)]),
         FileExpect(f"{SENSOR_DAY}/extra.json", "committed", rows=2, rescued=["night"],
                    sql=[("sensor_id = 'EJ2' and _rescued_data like '%\"shift\"%'", 1)]),
         FileExpect(f"{SENSOR_DAY}/plc-headerless.csv", "failed",
                    reason="shares no column with sensor_data")],
        table_rows=4, forbidden=["PLC1"], env={"MANUFACTURING_SCHEMA_SENSOR_DATA": "rescue"},
        no_columns=["operator", "shift"],
    )


def case22b_schema_freeze(root: Path) -> HostileCase:
    """``MANUFACTURING_SCHEMA_SENSOR_DATA=freeze``: a file with new columns fails, naming them
    and what to do, and adds nothing; the good file beside it lands."""
    _schema_files(root)
    return HostileCase(
        22, "schema_freeze", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/good.csv", "committed", rows=1),
         FileExpect(f"{SENSOR_DAY}/extra.csv", "failed",
                    reason="does not have: operator (schema contract: freeze)"),
         FileExpect(f"{SENSOR_DAY}/extra.json", "failed", reason="does not have: shift"),
         FileExpect(f"{SENSOR_DAY}/plc-headerless.csv", "failed",
                    reason="shares no column with sensor_data")],
        table_rows=1, forbidden=["Anna", "EJ1", "PLC1"],
        env={"MANUFACTURING_SCHEMA_SENSOR_DATA": "freeze"}, no_columns=["operator", "shift"],
    )


# -- 23: values kept verbatim or rescued ---------------------------------------------------------

def _invalid_utf8_parquet() -> bytes:
    """String columns holding bytes that are not UTF-8, as old loggers write them (a binary
    column written with a string logical type)."""
    table = pa.table({"batch_id": ["PQ1", "PQ2"], "metric_name": ["width", "width"],
                      "measured_at": ["2026-11-20T10:00:00Z"] * 2,
                      "inspector_id": pa.array([b"ok", b"Pr\xfcfung"], pa.binary()),
                      "label": pa.array([b"ok", b"Pr\xfcfung"], pa.binary())})
    # The same buffers under a string type: Arrow does not check them, Parquet stores them.
    schema = pa.schema([(f.name, pa.string() if f.type == pa.binary() else f.type)
                        for f in table.schema])
    unchecked = pa.Table.from_arrays(
        [pa.Array.from_buffers(pa.string(), len(c), c.chunk(0).buffers())
         if c.type == pa.binary() else c for c in table.columns], schema=schema)
    out = io.BytesIO()
    pq.write_table(unchecked, out)
    return out.getvalue()


def case23_values(root: Path) -> HostileCase:
    """Values as exporters write them: a quoted empty text stays an empty string (an unquoted
    one is null); a CRLF inside a quoted field stays CRLF; ISO years outside 0001-9999 and
    numbers beyond a double's range are rescued, not stored (no reader could load them); Parquet
    text that is not UTF-8 is rescued as base64 so the table stays readable; JSON keys with
    backticks, dots or nothing at all land."""
    base = "plant_id,line_id,sensor_id,timestamp,temperature"
    put(root, f"{SENSOR_DAY}/quoted-empty.csv",
        f'{base}\n"P01","","QE1","2026-11-20T10:00:00Z","21.5"\nP01,,QE2,2026-11-20T10:00:00Z,\n'
        f'"P01","L1","QE3","2026-11-20T10:00:00Z",""\n')
    put(root, f"{SENSOR_DAY}/crlf-in-quotes.csv",
        f'{base},comment\r\nP01,L1,CR1,2026-11-20T10:00:00Z,21.5,"first\r\nsecond"\r\n'
        f'P01,L1,CR2,2026-11-20T10:00:00Z,21.5,plain\r\n')
    put(root, f"{SENSOR_DAY}/years.csv",
        f"{base}\nP01,L1,Y1,-2026-11-20T10:00:00,21.5\nP01,L1,Y2,+12026-11-20T10:00:00,21.5\n"
        f"P01,L1,Y3,2026-11-20T10:00:00Z,21.5\n")
    put(root, f"{SENSOR_DAY}/overflow.csv",
        f"{base}\nP01,L1,OV1,2026-11-20T10:00:00Z,1e400\nP01,L1,OV2,2026-11-20T10:00:00Z,-1e400\n"
        f"P01,L1,OV3,2026-11-20T10:00:00Z,1e300\n")
    put(root, f"{SENSOR_DAY}/overflow.json",
        '{"plant_id": "P01", "sensor_id": "OJ1", "timestamp": "2026-11-20T10:00:00Z", '
        '"temperature": 1e400}\n')
    put(root, f"{SENSOR_DAY}/odd-keys.json",
        '{"plant_id": "P01", "sensor_id": "KEY1", "timestamp": "2026-11-20T10:00:00Z", '
        '"a`b": "tick", "": "nameless", "x.y": "dotted", "nested": {"": 2}}\n')
    return HostileCase(
        23, "values", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/quoted-empty.csv", "committed", rows=3,
                    sql=[("sensor_id = 'QE1' and line_id = ''", 1),
                         ("sensor_id = 'QE2' and line_id is null", 1),
                         ("temperature is null and _rescued_data is null", 2)]),
         FileExpect(f"{SENSOR_DAY}/crlf-in-quotes.csv", "committed", rows=2,
                    sql=[("comment = 'first\r\nsecond'", 1), ("comment = 'plain'", 1)]),
         FileExpect(f"{SENSOR_DAY}/years.csv", "committed", rows=3,
                    rescued=["-2026-11-20T10:00:00", "+12026-11-20T10:00:00"],
                    sql=[("timestamp is null", 2), ("year(timestamp) = 2026", 1)]),
         FileExpect(f"{SENSOR_DAY}/overflow.csv", "committed", rows=3,
                    sql=[("temperature is null and _rescued_data like '%temperature%'", 2),
                         ("temperature = 1e300", 1)]),
         # Spark's JSON parser has read the number as a double by then: rescued as it says.
         FileExpect(f"{SENSOR_DAY}/overflow.json", "committed", rows=1, rescued=["Infinity"],
                    sql=[("temperature is null", 1)]),
         FileExpect(f"{SENSOR_DAY}/odd-keys.json", "committed", rows=1,
                    must_keep=["tick", "nameless", "dotted", '{"":2}'],
                    sql=[("""_rescued_data = '{"":"nameless"}'""", 1)])],
        table_rows=13, deltars_readable=True, columns=["comment"],
    )


def case23b_parquet_bytes(root: Path) -> HostileCase:
    """Parquet text that is not UTF-8 is rescued as base64, so the table stays readable by
    Arrow and pandas; valid text beside it lands as it is."""
    put(root, f"{QM_HOUR}/bytes.parquet", _invalid_utf8_parquet())
    return HostileCase(
        23, "parquet_bytes", "quality_metrics", [QM_PARTITION],
        [FileExpect(f"{QM_HOUR}/bytes.parquet", "committed", rows=2,
                    rescued=["base64:UHL8ZnVuZw=="],
                    sql=[("inspector_id = 'ok' and label = 'ok'", 1),
                         ("inspector_id is null and label is null", 1),
                         ("""_rescued_data like '%"label":"base64:UHL8ZnVuZw=="%'""", 1)])],
        table_rows=2, deltars_readable=True, columns=["label"],
    )


def case24_repeated_header(root: Path) -> HostileCase:
    """Files pasted together with the header again mid-file (plain UTF-8, LF and CRLF): the
    repeats are not rows."""
    put(root, f"{SENSOR_DAY}/pasted.csv", csv_text("RP1") + csv_text("RP2") + csv_text("RP3"))
    put(root, f"{SENSOR_DAY}/pasted-crlf.csv",
        (csv_text("RC1") + csv_text("RC2")).replace("\n", "\r\n"))
    return HostileCase(
        10, "repeated_header", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/pasted.csv", "committed", rows=3,
                    sql=[("_rescued_data is null and temperature = 21.5", 3)]),
         FileExpect(f"{SENSOR_DAY}/pasted-crlf.csv", "committed", rows=2,
                    sql=[("_rescued_data is null", 2)])],
        table_rows=5, forbidden=["plant_id"],
    )


# -- rough edges --------------------------------------------------------------------------------

def case_rough_edges(root: Path) -> HostileCase:
    put(root, f"{SENSOR_DAY}/really_gzip.csv", gzip.compress(csv_text("GZ").encode()))
    put(root, f"{SENSOR_DAY}/array.json",
        json.dumps([{"sensor_id": "ARR1", "temperature": 1.5},
                    {"sensor_id": "ARR2", "temperature": 2.5}], indent=2))
    put(root, f"{SENSOR_DAY}/semicolon.csv",
        HEADER.replace(",", ";") + "\n" + row("SEMI").replace(",", ";"))
    put(root, f"{SENSOR_DAY}/good.csv", csv_text("G1"))
    return HostileCase(
        0, "rough_edges", "sensor_data", [DAY],
        [FileExpect(f"{SENSOR_DAY}/really_gzip.csv", "failed", reason="gzip"),
         FileExpect(f"{SENSOR_DAY}/array.json", "committed", rows=2,
                    sql=[("sensor_id in ('ARR1', 'ARR2')", 2)]),
         FileExpect(f"{SENSOR_DAY}/semicolon.csv", "committed", rows=1,
                    sql=[("sensor_id = 'SEMI' and temperature = 21.5", 1)]),
         FileExpect(f"{SENSOR_DAY}/good.csv", "committed", rows=1)],
        table_rows=4,
    )


ALL_CASES = [
    case01_symlinks, case02_glob_names, case03_in_flight_folders, case04_append_during_ingest,
    case05_quoted_newlines, case06_metadata_column, case06b_metadata_key_in_json,
    case07_new_column_type_conflict, case07b_new_column_csv_vs_parquet, case08_nested_parquet,
    case09_epoch_units, case10_far_timestamps, case11_huge_json_string,
    case12_reserved_keys_in_json, case13_huge_header, case14_decompression_bombs,
    case15_json_key_collisions, case16_colons, case17_misfiled_dates, case17b_misfiled_hours,
    case19_file_names, case20_header_scripts, case21_foreign_files, case22_schema_rescue,
    case22b_schema_freeze, case23_values, case23b_parquet_bytes, case24_repeated_header,
    case_rough_edges,
]
# case18_cli is separate: it runs the console script, not the ingestor.
