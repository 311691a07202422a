"""Schema drift: the columns a run's commit added to a bronze table, with the table's columns
before and after it."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from manufacturing_ingest.engine.delta import read_table
from manufacturing_ingest.engine.report import IngestReport
from manufacturing_ingest.engine.types import catalog_type


@dataclass(frozen=True)
class SchemaDrift:
    """Columns (name → type) of the table before and after one commit, and the ones it added."""

    added: dict[str, str]
    before: dict[str, str]
    after: dict[str, str]
    delta_version: int


def schema_drift(spark: SparkSession, report: IngestReport) -> SchemaDrift | None:
    """What ``report``'s commit added to its table's columns; None when it added none."""
    if not report.schema_changes or report.delta_version is None:
        return None
    schema = read_table(spark, report.table, report.delta_version).schema
    after = {f.name: catalog_type(f.dataType) for f in schema.fields}
    before = {name: kind for name, kind in after.items() if name not in report.schema_changes}
    return SchemaDrift(dict(report.schema_changes), before, after, report.delta_version)
