"""One backoff policy for everything that retries: Delta conflicts, downloads, replanning."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all, ``base * 2**attempt`` seconds (at most ``cap``) apart."""

    attempts: int
    base: float
    cap: float

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1-based)."""
        return min(self.base * 2**attempt, self.cap)

    def call(
        self,
        fn: Callable[[], T],
        retry_on: Callable[[Exception], bool],
        on_retry: Callable[[int, float, Exception], None] | None = None,
    ) -> T:
        """``fn()``, tried again after the errors ``retry_on`` accepts; the last error is raised."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - the caller decides what is retryable
                if attempt == self.attempts or not retry_on(exc):
                    raise
                pause = self.delay(attempt)
                if on_retry is not None:
                    on_retry(attempt, pause, exc)
                time.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")
