"""Dates for tests that name "today" or "yesterday" while the code under test reads its own clock.

The landing sensors list date prefixes relative to their own UTC now. A test that lands a file
under yesterday's folder at 23:59 and lets a sensor tick at 00:01 sees a folder two days old,
outside the listing's lookback: the test would fail for the calendar, not for the code. The suite
runs for half an hour, so a CI run that starts before midnight UTC meets this. A test asks for
"now" through ``clear_of_midnight`` with the time it needs, and waits out midnight first when it
is closer than that.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def clear_of_midnight(needed: timedelta = timedelta(minutes=2)) -> datetime:
    """UTC now, at least ``needed`` before the next midnight UTC (sleeping past it if need be)."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if midnight - now < needed:
        time.sleep((midnight - now).total_seconds() + 1)
        now = datetime.now(UTC)
    return now
