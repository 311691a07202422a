"""What one ingest did, file by file; the Dagster layer turns it into materialization metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from manufacturing_ingest.engine.delta import TableRef


class Outcome(StrEnum):
    COMMITTED = "committed"  # its rows are in bronze (0 rows for an empty file)
    FAILED = "failed"  # not readable; recorded in the ledger and retried next run
    SKIPPED = "skipped"  # committed by an earlier run
    # failed before in a way reading it again now cannot fix (see ``FailureKind``): not read
    HELD = "held"
    IGNORED = "ignored"  # a marker or in-flight file, never data


class IngestMode(StrEnum):
    """How a batch was written; recorded in the ledger's claims and the commit's metadata."""

    INCREMENTAL = "incremental"  # appends the files not yet committed
    REPROCESS = "reprocess"  # rebuilds one partition (``replaceWhere``)
    AUTOLOADER = "autoloader"  # Databricks Auto Loader streams (see autoloader.py)


@dataclass(frozen=True)
class FileOutcome:
    uri: str
    partition_key: str
    status: Outcome
    rows: int = 0
    size: int = 0
    error: str | None = None
    note: str | None = None
    empty: bool = False


def _counted(status: Outcome) -> property:
    """A read-only count of the outcomes with ``status``."""
    return property(lambda report: sum(o.status is status for o in report.outcomes))


@dataclass
class IngestReport:
    """What one ingest did; ``files_*`` figures are counted from ``outcomes``."""

    source: str
    partition_keys: list[str]
    mode: IngestMode
    table: TableRef
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    write_seconds: float = 0.0
    delta_version: int | None = None
    claim_id: str | None = None
    ingested_at: datetime | None = None  # the commit's _ingested_at: with the partitions, its rows
    batch_version: int | None = None
    landing_to_commit_seconds_max: float | None = None
    landing_to_commit_seconds_median: float | None = None
    schema_changes: dict[str, str] = field(default_factory=dict)
    columns_missing_in_files: list[str] = field(default_factory=list)
    attempts: int = 1

    files_processed = _counted(Outcome.COMMITTED)
    files_failed = _counted(Outcome.FAILED)
    files_skipped = _counted(Outcome.SKIPPED)
    files_held = _counted(Outcome.HELD)
    files_ignored = _counted(Outcome.IGNORED)

    @property
    def table_path(self) -> str:
        """The table as text: its path, or its catalog name."""
        return str(self.table)

    @property
    def files_empty(self) -> int:
        return sum(o.status is Outcome.COMMITTED and o.empty for o in self.outcomes)

    @property
    def records(self) -> int:
        return sum(o.rows for o in self.outcomes if o.status is Outcome.COMMITTED)

    def records_by_partition(self) -> dict[str, int]:
        """Committed rows per partition key, for the partitions that received any."""
        rows: dict[str, int] = {}
        for o in self.outcomes:
            if o.status is Outcome.COMMITTED:
                rows[o.partition_key] = rows.get(o.partition_key, 0) + o.rows
        return dict(sorted(rows.items()))

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.outcomes if o.status is Outcome.COMMITTED)

    @property
    def records_per_second(self) -> float:
        """End to end: listing, inspection, the write and the bookkeeping."""
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status is Outcome.FAILED]
