"""What the engine reports while it works: typed events, rendered for people at the edge.

The CLI prints ``event.message()`` (or ``event.to_json()`` with ``--progress json``), the
Dagster asset logs it, and tests and benchmarks hook into ``event.phase``. No caller parses the
message text; rewording a message breaks nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from manufacturing_ingest.printable import printable


class Phase(StrEnum):
    """The steps of one ingest, in the order a run reaches them."""

    LISTED = "listed"  # files landed in the partitions, and how many are markers
    NOTHING_NEW = "nothing_new"  # every landed file is committed already
    CLAIM_ABANDONED = "claim_abandoned"  # an interrupted run's claim never reached bronze
    CLAIM_RECOVERED = "claim_recovered"  # an interrupted run's claim did reach bronze
    INSPECTED = "inspected"  # a share of the files were checked on the driver
    FILE_FAILED = "file_failed"  # one file cannot be ingested; it is retried next run
    CLAIMED = "claimed"  # the batch is claimed in the ledger; the Delta write starts
    SET_ASIDE = "set_aside"  # files Spark cannot read were taken out of the batch
    WRITE_CONFLICT = "write_conflict"  # a concurrent commit won this batch's version
    REPLANNING = "replanning"  # planning again after losing a race
    COMMITTED = "committed"  # the batch is a bronze commit
    SCHEMA_EVOLVED = "schema_evolved"  # the batch added columns to the table
    LEDGER_UPDATED = "ledger_updated"  # the batch's files are recorded committed


_MESSAGES: dict[Phase, str] = {
    Phase.LISTED: "{partitions}: {landed} files landed, {ignored} ignored",
    Phase.NOTHING_NEW: "nothing new to ingest",
    Phase.CLAIM_ABANDONED: "claim {claim_id} never committed; its {files} files will be "
                           "ingested again",
    Phase.CLAIM_RECOVERED: "claim {claim_id} was committed in version {version} by an "
                           "interrupted run; recording it",
    Phase.INSPECTED: "inspected {done}/{total} files",
    Phase.FILE_FAILED: "FAILED {uri}: {error}",
    Phase.CLAIMED: "claimed batch {batch_version} ({files} files, {size}); writing to {table}",
    Phase.SET_ASIDE: "set aside {files} files Spark cannot read; retrying",
    Phase.WRITE_CONFLICT: "concurrent commit for batch {batch_version}: {error}",
    Phase.REPLANNING: "another run committed first; replanning in {pause}s",
    Phase.COMMITTED: "bronze commit version {version} holds batch {batch_version}",
    Phase.SCHEMA_EVOLVED: "schema evolved, new columns {columns}",
    Phase.LEDGER_UPDATED: "ledger updated for batch {batch_version}",
}


@dataclass(frozen=True)
class ProgressEvent:
    source: str
    phase: Phase
    figures: Mapping[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        """One line for people, e.g. ``sensor_data: claimed batch 3 (4 files, 1.2 MB); …``;
        names from the landing zone in it are escaped (``printable``)."""
        return printable(f"{self.source}: {_MESSAGES[self.phase].format(**self.figures)}")

    def to_json(self) -> str:
        """One JSON object per line, for scripts: ``{"source", "phase", …figures}``."""
        return json.dumps({"source": self.source, "phase": self.phase.value, **self.figures},
                          default=str, sort_keys=True)


Progress = Callable[[ProgressEvent], None]


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


# Crash tests only: the phase after whose event the process SIGKILLs itself (see
# ``killing_at``). Unset in any deployment; a value that is not a phase is refused.
FAULT_KILL_VAR = "MANUFACTURING_FAULT_KILL_AT"


def killing_at(progress: Progress) -> Progress:
    """``progress``, or, when ``MANUFACTURING_FAULT_KILL_AT`` names a phase, ``progress`` that
    SIGKILLs this process (with its process group when it leads one: its Spark JVM too, as a
    crashed host would) right after reporting that phase.

    The crash tests' deterministic kill point: ``committed`` kills between the bronze commit and
    the ledger's ``committed`` event, a window of a few milliseconds since the ledger appends are
    in-process, which kills timed from outside no longer hit.
    """
    import os

    name = os.environ.get(FAULT_KILL_VAR, "").strip()
    if not name:
        return progress
    phase = Phase(name)

    def reporting_then_dying(event: ProgressEvent) -> None:
        progress(event)
        if event.phase is phase:
            import signal
            import sys

            sys.stderr.flush()
            if os.getpgrp() == os.getpid():
                os.killpg(os.getpid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)

    return reporting_then_dying
