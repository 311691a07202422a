"""Shared fixtures: one real local Spark session with Delta, and throwaway landing/lakehouse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from manufacturing_ingest.catalog import get_source
from manufacturing_ingest.engine.bronze import BronzeIngestor, IngestReport, Lakehouse
from manufacturing_ingest.landing import LocalLandingZone
from manufacturing_ingest.settings import Settings


@pytest.fixture(scope="session")
def spark():
    from manufacturing_ingest.engine.spark import get_spark_session

    os.environ.setdefault("MANUFACTURING_SPARK_MASTER", "local[2]")
    os.environ.setdefault("MANUFACTURING_SPARK_DRIVER_MEMORY", "2g")
    session = get_spark_session(Settings.from_env(), app_name="manufacturing_ingest_tests")
    yield session
    session.stop()


class Lake:
    """A landing folder and a lakehouse folder, with the ingest call tests make."""

    def __init__(self, root: Path, spark):
        self.root = root
        self.landing_root = root / "landing"
        self.landing_root.mkdir(parents=True, exist_ok=True)
        self.zone = LocalLandingZone(self.landing_root)
        self.lakehouse = Lakehouse(str(root / "lakehouse"))
        self.spark = spark
        self.progress: list[str] = []

    def ingest(self, source: str, *partitions: str, reprocess: bool = False) -> IngestReport:
        ingestor = BronzeIngestor(self.spark, get_source(source), self.zone, self.lakehouse,
                                  progress=self.progress.append)
        return ingestor.ingest(list(partitions), reprocess=reprocess)

    def table_path(self, source: str) -> str:
        return self.lakehouse.table_path(get_source(source))

    def table(self, source: str):
        return self.spark.read.format("delta").load(self.table_path(source))

    def put(self, key: str, data: bytes | str, mtime: float | None = None) -> Path:
        path = self.landing_root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path


@pytest.fixture
def lake(tmp_path, spark) -> Lake:
    return Lake(tmp_path, spark)
