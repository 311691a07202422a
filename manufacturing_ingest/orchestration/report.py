"""What the CLI's ``quality`` and ``alerts test`` commands read and send, as plain values.

``latest_check_results`` reads the Dagster instance (``DAGSTER_HOME``) the runs wrote to;
``send_test_alerts`` resolves the alert resource exactly as the daemon does (secrets through
``dg.EnvVar``) and sends one test alert through every configured sink.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from manufacturing_ingest.alerting import DeliveryReport, send_test_alert
from manufacturing_ingest.catalog import SourceSpec
from manufacturing_ingest.errors import ConfigurationError
from manufacturing_ingest.orchestration.dagster_internals import latest_completed_check
from manufacturing_ingest.orchestration.names import (
    ASSET_CHECKS,
    PARTITION_CHECKS,
    bronze_check_key,
)
from manufacturing_ingest.orchestration.resources import AlertSinksResource, alert_sinks_resource
from manufacturing_ingest.orchestration.runs import partition_keys
from manufacturing_ingest.settings import Settings

__all__ = ["CheckResult", "latest_check_results", "persistent_instance", "send_test_alerts"]


@dataclass(frozen=True)
class CheckResult:
    """The latest result of one check on one partition (``partition`` None: the whole asset)."""

    check: str
    partition: str | None
    passed: bool
    severity: str  # "ERROR" / "WARN"
    description: str
    metadata: dict[str, Any]
    run_id: str
    at: datetime


def persistent_instance() -> dg.DagsterInstance:
    """The instance under ``DAGSTER_HOME``, where runs launched from the UI or the CLI write."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home:
        raise ConfigurationError(
            "check results live in the Dagster instance: set DAGSTER_HOME to its folder "
            "(`make dev` uses .dagster_home); runs of `manufacturing-ingest ingest` are kept "
            "there too when DAGSTER_HOME is set")
    if not os.path.isdir(home):
        raise ConfigurationError(f"DAGSTER_HOME={home} is not a folder; create it or point it "
                                 "at the instance `dagster dev` uses")
    return dg.DagsterInstance.get()


def latest_check_results(instance: dg.DagsterInstance, spec: SourceSpec,
                         first: str, last: str | None = None) -> list[CheckResult]:
    """The latest result of every check of ``spec`` on the partitions ``first`` … ``last``
    (a day of an hourly source is its 24 hours), then the asset-wide checks."""
    keys = partition_keys(spec, *spec.partitions.widen(first, last))
    wanted = [(name, key) for key in keys for name in PARTITION_CHECKS]
    wanted += [(name, None) for name in ASSET_CHECKS]
    results = []
    for name, partition in wanted:
        # Completed executions only: not one still running.
        latest = latest_completed_check(instance, bronze_check_key(spec, name), partition)
        if latest is None:
            continue  # never evaluated
        record, evaluation = latest
        results.append(CheckResult(
            check=name,
            partition=partition,
            passed=evaluation.passed,
            severity=evaluation.severity.value,
            description=evaluation.description or "",
            metadata={k: v.value for k, v in evaluation.metadata.items()},
            run_id=record.run_id,
            at=datetime.fromtimestamp(record.create_timestamp, UTC),
        ))
    return results


def send_test_alerts(settings: Settings) -> tuple[AlertSinksResource, DeliveryReport]:
    """One test alert through every sink ``settings`` configures (the log line included)."""
    resource = alert_sinks_resource(settings.alerts).process_config_and_initialize()
    return resource, send_test_alert(resource.sinks(), datetime.now(UTC))
