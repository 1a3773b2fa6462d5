"""Retries with exponential backoff for provider calls; safe because every call is idempotent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def with_retries(
    call: Callable[[], T],
    *,
    retryable: tuple[type[BaseException], ...],
    attempts: int = 4,
    base_delay_s: float = 0.25,
    max_delay_s: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on a retryable error wait 0.25 s, 0.5 s, 1 s, ... and try again."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except retryable:
            if attempt == attempts:
                raise
            sleep(min(base_delay_s * 2 ** (attempt - 1), max_delay_s))
    raise AssertionError("unreachable: the loop returns or raises")
