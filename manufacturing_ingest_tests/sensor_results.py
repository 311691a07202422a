"""What tests read from a landing sensor's ``SensorResult``."""

from __future__ import annotations

import dagster as dg

from manufacturing_ingest.orchestration.sensors import (
    NEW_OBJECTS_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
)


def spans(result: dg.SensorResult) -> dict[tuple[str, str], int]:
    """Each requested run's partition range, with the new objects it was asked for."""
    return {(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]): int(r.tags[NEW_OBJECTS_TAG])
            for r in result.run_requests or []}


def skip_message(result: dg.SensorResult) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""
