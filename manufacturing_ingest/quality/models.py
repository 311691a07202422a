"""Pandera ``DataFrameModel``s of the bronze tables, generated from the catalog (one per source).

A model declares every bronze column with its Spark type (the source's columns, the lineage
columns and the partition column) and carries the rules Pandera can express per column: value
ranges (``ge``/``le``) and allowed values (``isin``). New columns are allowed (``strict=False``):
schema evolution is the ``schema_drift`` check's business, not an error.

The ``quality`` check validates the model at ``SCHEMA_ONLY`` depth, which reads the DataFrame's
schema and runs no Spark job; the rows are counted by ``evaluate.py`` (see there why). Validating
at full depth (``validate(df, depth="SCHEMA_AND_DATA")``) runs Pandera's own value checks, one
Spark job each, which is handy for ad hoc use on a small frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.pyspark as pa
from pandera.config import ValidationDepth, config_context
from pyspark.sql import DataFrame

from manufacturing_ingest.catalog import (
    INGESTED_AT_COLUMN,
    RESCUED_DATA_COLUMN,
    SOURCE_FILE_COLUMN,
    SourceSpec,
)
from manufacturing_ingest.engine.types import SPARK_TYPES


@dataclass(frozen=True)
class SchemaProblem:
    """One thing wrong with a table's columns: a missing column or a wrong type."""

    column: str
    problem: str  # Pandera's reason code, e.g. COLUMN_NOT_IN_DATAFRAME, WRONG_DATATYPE
    detail: str


def bronze_columns(spec: SourceSpec) -> dict[str, str]:
    """Every column a bronze row of ``spec`` has, with its catalog type."""
    return {
        **spec.columns,
        SOURCE_FILE_COLUMN: "string",
        INGESTED_AT_COLUMN: "timestamp",
        RESCUED_DATA_COLUMN: "string",
        spec.partition_column: spec.partitions.column_type,
    }


def bronze_model(spec: SourceSpec) -> type[pa.DataFrameModel]:
    """A ``DataFrameModel`` of ``spec``'s bronze table, built from its catalog entry."""
    ranges = {r.column: r for r in spec.quality.ranges}
    allowed = {a.column: a for a in spec.quality.allowed}
    annotations: dict[str, object] = {}
    fields: dict[str, object] = {}
    for index, (column, kind) in enumerate(bronze_columns(spec).items()):
        checks: dict[str, object] = {}
        if column in ranges:
            if ranges[column].minimum is not None:
                checks["ge"] = ranges[column].minimum
            if ranges[column].maximum is not None:
                checks["le"] = ranges[column].maximum
        if column in allowed:
            checks["isin"] = list(allowed[column].values)
        # Pandera ignores attributes starting with "_": lineage columns go in by alias.
        attribute = column if not column.startswith("_") else f"column_{index}"
        annotations[attribute] = SPARK_TYPES[kind]
        fields[attribute] = pa.Field(alias=column, nullable=True, **checks)

    class Config:
        strict = False
        coerce = False

    name = "".join(part.title() for part in spec.name.split("_")) + "Bronze"
    return type(name, (pa.DataFrameModel,), {
        "__annotations__": annotations, "__module__": __name__, "Config": Config,
        "__doc__": f"Bronze rows of {spec.table_name}.", **fields,
    })


def schema_problems(spec: SourceSpec, df: DataFrame) -> list[SchemaProblem]:
    """Columns of ``df`` missing or of the wrong type for ``spec`` (Pandera, schema only)."""
    with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
        validated = bronze_model(spec).validate(df)
    # Pandera on PySpark does not raise: its findings hang on the validated frame.
    errors = dict(validated.pandera.errors or {})
    problems = []
    for by_reason in errors.values():
        for reason, entries in by_reason.items():
            for entry in entries:
                column = str(entry.get("column", ""))
                # Pandera's message for a missing column quotes a row of data: say it plainly.
                detail = (f"column {column!r} is not in the table"
                          if reason == "COLUMN_NOT_IN_DATAFRAME" else str(entry.get("error", "")))
                problems.append(SchemaProblem(column=column, problem=str(reason), detail=detail))
    return problems
