"""The catalog's quality rules compiled to Spark: one boolean column per rule, true when failing.

Every rule of a source becomes a ``CompiledRule`` whose ``fails`` expression is never null (a
null value passes a range; ``required`` is the rule that catches nulls), so one aggregation can
sum them all at once. Rules that need other rows (duplicates) and the schema itself are handled
in ``evaluate.py`` and ``models.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

from manufacturing_ingest.catalog import INGESTED_AT_COLUMN, RESCUED_DATA_COLUMN, SourceSpec

TYPES_RULE = "types"
REQUIRED_RULE = "required"
FUTURE_RULE = "event_time_not_future"
WINDOW_RULE = "event_time_in_partition"
DUPLICATES_RULE = "duplicates"

_MICROS = 1_000_000


@dataclass(frozen=True)
class CompiledRule:
    """A row rule as a Spark expression; ``fails`` is true on a failing row and never null."""

    name: str
    description: str
    columns: tuple[str, ...]  # shown in failing examples
    fails: Column


def _any(conditions: list[Column]) -> Column:
    return reduce(lambda a, b: a | b, conditions)


def _never_null(condition: Column) -> Column:
    return F.coalesce(condition, F.lit(False))


def row_rules(spec: SourceSpec, table_columns: set[str]) -> list[CompiledRule]:
    """The source's row rules over the columns the table has (rules on missing ones are left
    out: the schema check reports the column)."""
    rules = spec.quality
    compiled: list[CompiledRule] = []
    if RESCUED_DATA_COLUMN in table_columns:
        compiled.append(CompiledRule(
            TYPES_RULE, "values that did not parse to their column type (in _rescued_data)",
            (RESCUED_DATA_COLUMN,), F.col(RESCUED_DATA_COLUMN).isNotNull(),
        ))
    required = [c for c in rules.required if c in table_columns]
    if required:
        compiled.append(CompiledRule(
            REQUIRED_RULE, f"null in a required column ({', '.join(required)})",
            tuple(required), _any([F.col(c).isNull() for c in required]),
        ))
    for value_range in rules.ranges:
        if value_range.column not in table_columns:
            continue
        value = F.col(value_range.column)
        outside = []
        if value_range.minimum is not None:
            outside.append(value < F.lit(value_range.minimum))
        if value_range.maximum is not None:
            outside.append(value > F.lit(value_range.maximum))
        if outside:
            compiled.append(CompiledRule(
                value_range.name,
                f"{value_range.column} outside [{_bound(value_range.minimum)}, "
                f"{_bound(value_range.maximum)}]",
                (value_range.column,), _never_null(_any(outside)),
            ))
    for allowed in rules.allowed:
        if allowed.column not in table_columns:
            continue
        compiled.append(CompiledRule(
            allowed.name, f"{allowed.column} not one of {', '.join(allowed.values)}",
            (allowed.column,),
            _never_null(~F.col(allowed.column).isin(list(allowed.values))),
        ))
    for condition in rules.conditions:
        if not set(condition.columns) <= table_columns:
            continue
        compiled.append(CompiledRule(
            condition.name, condition.description, condition.columns,
            _never_null(~F.expr(condition.sql)),
        ))
    compiled += _event_time_rules(spec, table_columns)
    return compiled


def _event_time_rules(spec: SourceSpec, table_columns: set[str]) -> list[CompiledRule]:
    column = spec.event_time_column
    if column not in table_columns:
        return []
    bounds = spec.quality.event_time
    # Whole microseconds since the epoch: plain integer arithmetic, inside whole-stage codegen.
    event = F.unix_micros(F.col(column))
    ingested = F.unix_micros(F.col(INGESTED_AT_COLUMN))
    window_start = F.unix_micros(F.col(spec.partition_column).cast("timestamp"))
    step = int(spec.partitions.step.total_seconds() * _MICROS)
    late = int(bounds.late_tolerance.total_seconds() * _MICROS)
    early = int(bounds.early_tolerance.total_seconds() * _MICROS)
    future = int(bounds.future_tolerance.total_seconds() * _MICROS)
    return [
        CompiledRule(
            FUTURE_RULE,
            f"{column} more than {bounds.future_tolerance} after the row was ingested",
            (column, INGESTED_AT_COLUMN), _never_null(event > ingested + F.lit(future)),
        ),
        CompiledRule(
            WINDOW_RULE,
            f"{column} outside its partition's window (from {bounds.late_tolerance} before "
            f"its start to {bounds.early_tolerance} after its end)",
            (column, spec.partition_column),
            _never_null((event < window_start - F.lit(late))
                        | (event >= window_start + F.lit(step + early))),
        ),
    ]


def _bound(value: float | None) -> str:
    return "…" if value is None else f"{value:g}"

