#!/usr/bin/env python
"""The size of bronze's generated code per source and format, and its read speed.

HotSpot leaves a method over 8,000 bytes of bytecode to the interpreter, so a batch whose
whole-stage generated code passes that size runs about twice as slow (BENCHMARKS.md, "Before
and after values kept verbatim"). For each source and landing format, sample files are
generated into a scratch folder, the engine plans and reads them as a bronze batch would, and
the largest generated method of the batch's plan is reported (Spark's own
``codegenStringSeq``). With ``--time``, the batch (``--files`` files of ``--rows`` rows) is also
read into Spark's ``noop`` sink ``--repeats`` times, with Spark's default
``spark.sql.codegen.hugeMethodLimit`` and with the engine's (8000), medians printed.

    python benchmarks/projection_codegen.py [--time] [--files 12] [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from manufacturing_ingest.catalog import CATALOG
from manufacturing_ingest.engine import ingest
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.lakehouse import Lakehouse
from manufacturing_ingest.engine.spark import get_spark_session
from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest.landing import LocalLandingZone
from manufacturing_ingest.settings import Settings

JIT_LIMIT = 8000  # HotSpot's HugeMethodLimit, bytes of bytecode
DAY = date(2026, 1, 15)


class _Captured(Exception):
    """Stops the ingest once the batch's frame is built: nothing is written."""


def batch_frame(spark, source: str, file_format: str, folder: Path, files: int, rows: int):
    """The DataFrame bronze would write for one batch of generated files."""
    spec = CATALOG[source]
    hour = 3 if spec.partitioning == "hourly" else None
    landing = folder / "landing"
    generate(landing, source, DAY, hour, GenerateOptions(
        files=files, rows_per_file=rows, file_format=file_format))
    key = spec.partitions.key_at(datetime(DAY.year, DAY.month, DAY.day, hour or 0, tzinfo=UTC))
    captured = []
    original = ingest.read_setting_aside

    def capture(*args, **kwargs):
        frame, unreadable = original(*args, **kwargs)
        captured.append(frame.df)
        raise _Captured

    ingest.read_setting_aside = capture
    try:
        ingestor = BronzeIngestor(spark, spec, LocalLandingZone(landing),
                                  Lakehouse(str(folder / "lakehouse")))
        ingestor.ingest([key])
    except _Captured:
        pass
    finally:
        ingest.read_setting_aside = original
    return captured[0]


def largest_method(spark, df) -> int:
    debug = getattr(spark._jvm.org.apache.spark.sql.execution.debug, "package$")
    stages = debug.__getattr__("MODULE$").codegenStringSeq(df._jdf.queryExecution().executedPlan())
    return max(stages.apply(i)._3().maxMethodCodeSize() for i in range(stages.size()))


def noop_seconds(spark, df, limit: str, repeats: int) -> float:
    spark.conf.set("spark.sql.codegen.hugeMethodLimit", limit)
    df.write.format("noop").mode("overwrite").save()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", action="store_true", help="also time reads into noop")
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spark = get_spark_session(Settings.from_env().spark, app_name="projection_codegen")
    engine_limit = spark.conf.get("spark.sql.codegen.hugeMethodLimit")
    print(f"{'source':<16} {'format':<8} {'largest method, bytes':>22}  JIT"
          + ("   noop s (65535 / 8000)" if args.time else ""))
    for source, spec in CATALOG.items():
        for file_format in spec.formats:
            with tempfile.TemporaryDirectory(prefix="projection_codegen_") as folder:
                files, rows = (args.files, args.rows) if args.time else (2, 1000)
                df = batch_frame(spark, source, file_format, Path(folder), files, rows)
                size = largest_method(spark, df)
                line = (f"{source:<16} {file_format:<8} {size:>22,}  "
                        f"{'yes' if size <= JIT_LIMIT else 'NO '}")
                if args.time:
                    default = noop_seconds(spark, df, "65535", args.repeats)
                    engine = noop_seconds(spark, df, engine_limit, args.repeats)
                    line += f"   {default:.2f} / {engine:.2f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
