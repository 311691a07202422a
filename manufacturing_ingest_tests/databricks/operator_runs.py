"""What an operator's command against the workspace stand-in left behind, for the tests to read."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from manufacturing_ingest_tests.databricks.standin import Request


@dataclass
class OperatorRun:
    """One command (``dagster asset materialize``, ``manufacturing-ingest ingest``, …), the
    requests the workspace received meanwhile, and the Dagster instance it recorded its run in."""

    process: subprocess.CompletedProcess
    requests: list[Request]
    instance: dg.DagsterInstance
    lakehouse: Path

    @property
    def run(self) -> dg.DagsterRun:
        (run,) = self.instance.get_runs()
        return run

    def events(self, event_type: dg.DagsterEventType) -> list[dg.DagsterEvent]:
        return [entry.dagster_event for entry in self.instance.all_logs(self.run.run_id)
                if entry.dagster_event and entry.dagster_event.event_type == event_type]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]
