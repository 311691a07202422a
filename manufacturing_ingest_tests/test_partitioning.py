"""Partition keys, landing prefixes, Spark values and Dagster partitions agree with each other."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from manufacturing_ingest.catalog import CATALOG
from manufacturing_ingest.errors import InvalidPartitionError
from manufacturing_ingest.partitioning import DAILY, HOURLY


@pytest.mark.parametrize("scheme, key, prefix, value, literal", [
    (DAILY, "2026-01-15", "2026/01/15/", date(2026, 1, 15), "_partition_date = '2026-01-15'"),
    (HOURLY, "2026-01-15-07:00", "2026/01/15/07/", datetime(2026, 1, 15, 7, tzinfo=UTC),
     "_partition_hour = '2026-01-15 07:00:00'"),
])
def test_one_key_maps_to_its_prefix_spark_value_and_replace_where(scheme, key, prefix, value,
                                                                    literal):
    assert scheme.prefix(key) == prefix
    assert scheme.key_from_path(f"plant-7/{prefix}part-1.csv") == key
    assert scheme.spark_value(key) == value
    assert scheme.sql_literal(key) == literal
    assert scheme.key_at(datetime(2026, 1, 15, 7, 59, 59, tzinfo=UTC)) == key


def test_the_dagster_partitions_use_the_same_keys():
    for spec in CATALOG.values():
        partitions = spec.partitions.dagster_partitions()
        first = partitions.get_first_partition_key()
        assert spec.partitions.parse(first) == datetime(2025, 1, 1, tzinfo=UTC)
        key = spec.partitions.key_at(datetime(2026, 1, 15, 7, 30, tzinfo=UTC))
        assert partitions.has_partition_key(key)
        window = partitions.time_window_for_partition_key(key)
        assert window.start == spec.partitions.parse(key)


def test_a_day_given_to_an_hourly_source_means_all_its_hours():
    first, last = HOURLY.widen("2026-01-15")
    assert (first, last) == ("2026-01-15-00:00", "2026-01-15-23:00")
    assert len(HOURLY.keys_between(first, last)) == 24
    assert DAILY.widen("2026-01-15-07:00", "2026-01-16") == ("2026-01-15", "2026-01-16")
    assert DAILY.keys_between("2026-01-30", "2026-02-02") == [
        "2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"]


@pytest.mark.parametrize("path", [
    "2026/01/15/a.csv",  # no hour folder: an hourly partition cannot come from it
    "2026/02/30/07/a.csv",  # no such day
    "a.csv",
])
def test_paths_without_a_valid_hour_name_no_hourly_partition(path):
    assert HOURLY.key_from_path(path) is None


def test_a_malformed_key_says_what_a_key_looks_like():
    with pytest.raises(InvalidPartitionError, match=r"expected e.g. 2026-01-15-10:00"):
        HOURLY.parse("2026-01-15T10")
