"""Partitions, spelled once: key ⇄ landing prefix ⇄ Spark value ⇄ Dagster partitions.

A daily partition key is ``2026-01-15``; an hourly one is ``2026-01-15-10:00`` (Dagster's own
hourly format). Their landing prefixes are ``YYYY/MM/DD/`` and ``YYYY/MM/DD/HH/`` under the
source's prefix, and their bronze partition column is a ``date`` (``_partition_date``) or a UTC
``timestamp`` (``_partition_hour``). Everything that turns one of these into another goes
through a ``PartitionScheme``; no other module formats or parses a partition.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

from manufacturing_ingest.errors import ConfigurationError, InvalidPartitionError

if TYPE_CHECKING:
    import dagster as dg

# The first day of every asset's partitions, unless MANUFACTURING_PARTITIONS_START moves it
# (back, to load older history; the Dagster partitions follow).
PARTITIONS_START = date(2025, 1, 1)
PARTITIONS_START_VAR = "MANUFACTURING_PARTITIONS_START"
# YYYY/MM/DD[/HH]/ anywhere below the source prefix (a leading folder may group by plant).
_DATE_PATH = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})(?:/(\d{2}))?/")


class Grain(StrEnum):
    DAILY = "daily"
    HOURLY = "hourly"


@dataclass(frozen=True)
class PartitionScheme:
    """How one grain of partition is named, stored and found."""

    grain: Grain
    key_format: str  # strftime of a partition key (also Dagster's ``fmt``)
    prefix_format: str  # strftime of the landing folder below the source prefix
    column: str  # bronze partition column
    column_type: str  # its Spark SQL type
    step: timedelta

    def start_of(self, when: datetime) -> datetime:
        """The start (UTC) of the partition holding ``when``."""
        when = when.astimezone(UTC)
        if self.grain is Grain.HOURLY:
            return when.replace(minute=0, second=0, microsecond=0)
        return when.replace(hour=0, minute=0, second=0, microsecond=0)

    def key_at(self, when: datetime) -> str:
        """The key of the partition holding ``when``."""
        return self.start_of(when).strftime(self.key_format)

    def parse(self, key: str) -> datetime:
        """The UTC start of partition ``key``; ``InvalidPartitionError`` says the format."""
        try:
            return datetime.strptime(key, self.key_format).replace(tzinfo=UTC)
        except ValueError:
            example = datetime(2026, 1, 15, 10, tzinfo=UTC).strftime(self.key_format)
            raise InvalidPartitionError(
                f"{key!r} is not a {self.grain} partition key (expected e.g. {example})"
            ) from None

    def prefix(self, key: str) -> str:
        """The landing folder of partition ``key``, relative to the source prefix, with ``/``."""
        return self.parse(key).strftime(self.prefix_format) + "/"

    def prefix_at(self, when: datetime) -> str:
        """The landing folder of the partition holding ``when``."""
        return self.start_of(when).strftime(self.prefix_format) + "/"

    def key_from_path(self, relative_key: str) -> str | None:
        """The partition named by ``YYYY/MM/DD[/HH]/`` in a key; None when it names none."""
        match = _DATE_PATH.search(relative_key)
        if not match:
            return None
        year, month, day, hour = match.groups()
        if self.grain is Grain.HOURLY and hour is None:
            return None
        try:
            when = datetime(int(year), int(month), int(day), int(hour or 0), tzinfo=UTC)
        except ValueError:
            return None
        return when.strftime(self.key_format)

    def spark_value(self, key: str) -> date | datetime:
        """The partition column's value for ``key`` (a ``date`` or a UTC ``datetime``)."""
        start = self.parse(key)
        return start if self.grain is Grain.HOURLY else start.date()

    def sql_literal(self, key: str) -> str:
        """``column = '<value>'`` for Delta's ``replaceWhere`` (session time zone is UTC)."""
        value = self.spark_value(key)
        text = f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else f"{value:%Y-%m-%d}"
        return f"{self.column} = '{text}'"

    def keys_between(self, first: str, last: str) -> list[str]:
        """Every key from ``first`` to ``last``, both included."""
        start, end = self.parse(first), self.parse(last)
        keys = []
        while start <= end:
            keys.append(start.strftime(self.key_format))
            start += self.step
        return keys

    def widen(self, first: str, last: str | None = None) -> tuple[str, str]:
        """A range of keys from user input: a day given to an hourly scheme is all its hours."""
        last = last or first
        if self.grain is Grain.HOURLY:
            first = _as_hour(first, 0)
            last = _as_hour(last, 23)
        else:
            first, last = first[:10], last[:10]
        return first, last

    def dagster_partitions(self) -> dg.TimeWindowPartitionsDefinition:
        """The asset's partitions: UTC, from ``partitions_start()`` through the current one."""
        return _dagster_partitions(self.grain, partitions_start())

    def outside_why(self, key: str) -> str:
        """Why ``key``, a well-formed key, is not a partition: before the first or after the
        current one, with what to do."""
        partitions = self.dagster_partitions()
        first = partitions.get_first_partition_key()
        last = partitions.get_last_partition_key()
        if self.parse(key) < self.parse(first):
            return (f"{key} is before the first partition ({first}); set "
                    f"{PARTITIONS_START_VAR}={self.parse(key):%Y-%m-%d} (or earlier) to load "
                    "older history")
        return (f"{key} is after the current partition ({last}): a date folder in the future; "
                "ask the sender to fix it, or move the files under their real date")


def partitions_start() -> date:
    """``MANUFACTURING_PARTITIONS_START`` (``YYYY-MM-DD``), else ``PARTITIONS_START``. Every
    process of a deployment (webserver, daemon, runs) reads the same environment."""
    text = os.environ.get(PARTITIONS_START_VAR, "").strip()
    if not text:
        return PARTITIONS_START
    try:
        start = date.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"{PARTITIONS_START_VAR}={text!r} is not a date "
                                 "(YYYY-MM-DD)") from None
    if start > datetime.now(UTC).date():
        raise ConfigurationError(f"{PARTITIONS_START_VAR}={text} is in the future; the first "
                                 "partition must have begun")
    return start


def _as_hour(text: str, hour: int) -> str:
    if len(text) == 10:  # a day: YYYY-MM-DD
        return f"{text}-{hour:02d}:00"
    return text


DAILY = PartitionScheme(
    grain=Grain.DAILY, key_format="%Y-%m-%d", prefix_format="%Y/%m/%d",
    column="_partition_date", column_type="date", step=timedelta(days=1),
)
HOURLY = PartitionScheme(
    grain=Grain.HOURLY, key_format="%Y-%m-%d-%H:%M", prefix_format="%Y/%m/%d/%H",
    column="_partition_hour", column_type="timestamp", step=timedelta(hours=1),
)
SCHEMES = {Grain.DAILY: DAILY, Grain.HOURLY: HOURLY}


@cache
def _dagster_partitions(grain: Grain, first_day: date) -> dg.TimeWindowPartitionsDefinition:
    import dagster as dg

    scheme = SCHEMES[grain]
    start = datetime.combine(first_day, datetime.min.time()).strftime(scheme.key_format)
    # end_offset=1: the current day (hour) exists while its files are still landing.
    if grain is Grain.HOURLY:
        return dg.HourlyPartitionsDefinition(
            start_date=start, timezone="UTC", end_offset=1, fmt=scheme.key_format
        )
    return dg.DailyPartitionsDefinition(
        start_date=start, timezone="UTC", end_offset=1, fmt=scheme.key_format
    )
