from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A Dagster instance kept across a test's sensor ticks (its key-value store included)."""
    with dg.instance_for_test() as instance:
        yield instance
