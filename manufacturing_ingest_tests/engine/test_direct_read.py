"""Direct reads, the cluster's reader: Spark reads each landed object where it is, and the
engine's process fetches only a text file's first bytes or a Parquet file's footer. A broken file
is still found, recorded failed with its reason and retried, while the rest of the batch lands.

On a cluster the objects are ``s3://`` URIs Spark reads through the instance profile; here the
same reader runs on local Spark over a local landing folder (the engine never touches more than
the head or footer of a file either way: ``LandingZone.read_range``).
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine.ingest import BronzeIngestor
from manufacturing_ingest.engine.inspect import HEAD_BYTES
from manufacturing_ingest.generate import GenerateOptions, generate
from manufacturing_ingest.landing import LocalLandingZone
from manufacturing_ingest.settings import ReadMode
from manufacturing_ingest_tests.samples import numbered_sensor_csv

# The whole module runs on Spark Connect too (`make test`'s second pass).
pytestmark = [pytest.mark.spark, pytest.mark.connect]

DAY_PREFIX = "raw/sensor-data/2026/01/15"


class CountingZone(LocalLandingZone):
    """A local landing zone that counts the bytes the engine's process reads of each object."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.bytes_read: dict[str, int] = {}

    def read_range(self, obj, start, length):
        data = super().read_range(obj, start, length)
        self.bytes_read[obj.key] = self.bytes_read.get(obj.key, 0) + len(data)
        return data

    def local_path(self, obj, staging_dir):
        self.bytes_read[obj.key] = self.bytes_read.get(obj.key, 0) + obj.size
        return super().local_path(obj, staging_dir)


def _ingest(lake, zone, *partitions: str):
    ingestor = BronzeIngestor(lake.spark, get_source("sensor_data"), zone, lake.lakehouse,
                              progress=lake.progress.append, read_mode=ReadMode.DIRECT)
    return ingestor.ingest(list(partitions))


def _big_gzip_csv(path: Path, rows: int, scratch: Path) -> None:
    """A gzip CSV file whose compressed size is well past the head the engine fetches."""
    generated = generate(scratch, "sensor_data", date(2026, 1, 15),
                         options=GenerateOptions(files=1, rows_per_file=rows, seed=3))[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(generated.read_bytes(), compresslevel=1))


def test_a_truncated_gzip_past_the_head_fails_alone_and_is_retried(lake, tmp_path):
    zone = CountingZone(lake.landing_root)
    big = lake.landing_root / DAY_PREFIX / "big.csv.gz"
    _big_gzip_csv(big, 300_000, tmp_path / "scratch")
    whole = big.read_bytes()
    assert len(whole) > 2 * HEAD_BYTES
    broken = lake.landing_root / DAY_PREFIX / "broken.csv.gz"
    broken.write_bytes(whole[: len(whole) * 3 // 4])  # cut off mid-stream: no gzip trailer
    lake.put(f"{DAY_PREFIX}/small.csv", numbered_sensor_csv("small", 40))

    first = _ingest(lake, zone, "2026-01-15")

    assert first.files_processed == 2 and first.files_failed == 1
    (failure,) = first.failures
    assert failure.uri.endswith("broken.csv.gz")
    assert "Spark could not read the file" in failure.error
    rows = DeltaTable(lake.table_path("sensor_data")).to_pandas()
    per_file = rows.groupby("_source_file").size()
    assert per_file[big.as_uri()] == 300_000 and per_file[
        (lake.landing_root / DAY_PREFIX / "small.csv").as_uri()] == 40
    assert len(per_file) == 2
    # The process fetched the head of each big file (once per attempt: the broken file made
    # two), never its body.
    assert first.attempts == 2
    assert zone.bytes_read[f"{DAY_PREFIX}/big.csv.gz"] <= 2 * HEAD_BYTES < len(whole) / 2
    assert zone.bytes_read[f"{DAY_PREFIX}/broken.csv.gz"] <= 2 * HEAD_BYTES

    # Its bytes cannot be ingested: the next run holds it (no second failure, no second
    # alert) instead of reading it again; re-sent whole, it lands.
    again = _ingest(lake, zone, "2026-01-15")
    assert (again.files_failed, again.files_held, again.files_skipped) == (0, 1, 2)
    broken.write_bytes(whole)
    fixed = _ingest(lake, zone, "2026-01-15")
    assert (fixed.files_processed, fixed.files_failed) == (1, 0)
    assert fixed.records == 300_000


def test_broken_files_the_head_or_footer_shows_fail_before_spark_reads(lake, tmp_path):
    hour = "raw/quality-metrics/2026/01/15/10"
    zone = LocalLandingZone(lake.landing_root)
    header = "batch_id,line_id,product_id,measured_at,metric_name,metric_value,passed\n"
    lake.put(f"{hour}/good.csv", header + "".join(
        f"B{i},L1,P1,2026-01-15T10:0{i}:00Z,width,{i}.5,true\n" for i in range(6)))
    lake.put(f"{hour}/latin1.csv", (header + "B9,Lé,P1,2026-01-15T10:09:00Z,w,1,true\n")
             .encode("latin-1"))
    lake.put(f"{hour}/footer.parquet", b"PAR1 not really parquet, no footer")
    good_parquet = lake.landing_root / hour / "good.parquet"
    pq.write_table(pa.table({"batch_id": [f"Q{i}" for i in range(5)], "line_id": ["L1"] * 5,
                             "metric_name": ["depth"] * 5, "metric_value": [1.5] * 5}),
                   good_parquet)

    ingestor = BronzeIngestor(lake.spark, get_source("quality_metrics"), zone, lake.lakehouse,
                              read_mode=ReadMode.DIRECT)
    report = ingestor.ingest(["2026-01-15-10:00"])

    errors = {Path(f.uri).name: f.error for f in report.failures}
    assert set(errors) == {"latin1.csv", "footer.parquet"}, errors
    assert "not valid UTF-8" in errors["latin1.csv"]
    assert "not a readable Parquet file" in errors["footer.parquet"]
    rows = DeltaTable(lake.table_path("quality_metrics")).to_pandas()
    assert sorted(rows.groupby("_source_file").size().items()) == sorted({
        (lake.landing_root / hour / "good.csv").as_uri(): 6, good_parquet.as_uri(): 5,
    }.items())


def test_direct_and_staged_reads_land_the_same_rows(lake, spark, tmp_path):
    """Same files, read both ways into two lakehouses: the same rows, values and rescue."""
    from manufacturing_ingest.engine.lakehouse import Lakehouse

    generate(lake.landing_root, "sensor_data", date(2026, 1, 15),
             options=GenerateOptions(files=2, rows_per_file=3000, anomaly_rate=0.05, seed=11))
    generate(lake.landing_root, "sensor_data", date(2026, 1, 15),
             options=GenerateOptions(files=2, rows_per_file=500, file_format="json",
                                     compress=True, extra_columns=True, seed=12))
    big = lake.landing_root / DAY_PREFIX / "big.csv.gz"
    _big_gzip_csv(big, 60_000, tmp_path / "scratch")
    zone = LocalLandingZone(lake.landing_root)
    results = []
    for mode in (ReadMode.STAGED, ReadMode.DIRECT):
        lakehouse = Lakehouse(str(tmp_path / f"lake-{mode.value}"))
        report = BronzeIngestor(spark, get_source("sensor_data"), zone, lakehouse,
                                read_mode=mode).ingest(["2026-01-15"])
        assert report.files_failed == 0
        frame = DeltaTable(lakehouse.table_path(get_source("sensor_data"))).to_pandas()
        frame = frame.drop(columns=["_ingested_at"])
        frame = frame[sorted(frame.columns)].astype(str)  # rows in one order, whole
        frame = frame.sort_values(list(frame.columns)).reset_index(drop=True)
        results.append((report.files_processed, frame))
    (staged_files, staged), (direct_files, direct) = results
    assert staged_files == direct_files == 5
    assert len(direct) == 3000 * 2 + 500 * 2 + 60_000
    assert (direct["_rescued_data"] != "None").sum() > 0  # anomalies were rescued both ways
    assert staged.equals(direct)
