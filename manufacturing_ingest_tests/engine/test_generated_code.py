"""Bronze's generated code stays small enough for HotSpot to compile.

HotSpot leaves a method over 8,000 bytes of bytecode to the interpreter: a batch whose
whole-stage generated code passes that size reads and writes about twice as slowly, with no
error anywhere (BENCHMARKS.md, "Before and after values kept verbatim"). A new per-row guard
in the normalising projection can do that; this test says so at once, per source and format,
with Spark's own count of the batch's largest generated method. The throughput itself is
measured by ``benchmarks/ingest_throughput.py`` and ``benchmarks/projection_codegen.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from manufacturing_ingest.catalog import CATALOG
from manufacturing_ingest.engine import ingest
from manufacturing_ingest.generate import GenerateOptions, generate

JIT_LIMIT = 8000  # HotSpot's HugeMethodLimit
DAY = date(2026, 1, 15)
CASES = [(name, fmt) for name, spec in CATALOG.items() for fmt in spec.formats]


def _largest_method(spark, df) -> int:
    debug = getattr(spark._jvm.org.apache.spark.sql.execution.debug, "package$")
    stages = debug.__getattr__("MODULE$").codegenStringSeq(df._jdf.queryExecution().executedPlan())
    return max(stages.apply(i)._3().maxMethodCodeSize() for i in range(stages.size()))


@pytest.mark.parametrize(("source", "file_format"), CASES,
                         ids=[f"{s}-{f}" for s, f in CASES])
def test_each_sources_batch_is_generated_as_methods_the_jit_compiles(
        lake, monkeypatch, source, file_format):
    spec = CATALOG[source]
    hour = 3 if spec.partitioning == "hourly" else None
    generate(lake.landing_root, source, DAY, hour,
             GenerateOptions(files=2, rows_per_file=200, file_format=file_format))
    frames = []
    read = ingest.read_setting_aside

    def keep_frame(*args, **kwargs):
        frame, unreadable = read(*args, **kwargs)
        frames.append(frame.df)
        return frame, unreadable

    monkeypatch.setattr(ingest, "read_setting_aside", keep_frame)
    key = spec.partitions.key_at(datetime(DAY.year, DAY.month, DAY.day, hour or 0, tzinfo=UTC))
    report = lake.ingest(source, key)

    assert report.records == 400
    sizes = [_largest_method(lake.spark, df) for df in frames]
    assert sizes and max(sizes) <= JIT_LIMIT, (
        f"{source} {file_format}: the batch's largest generated method is {max(sizes):,} bytes "
        f"of bytecode, over HotSpot's {JIT_LIMIT:,}: every row runs interpreted. Compute what "
        "the projection reads more than once as a hidden column below it (read._normalise)")
