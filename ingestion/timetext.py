"""Millisecond timestamps as text, fast: events of one batch share few distinct seconds."""

from __future__ import annotations

import time
from functools import lru_cache


@lru_cache(maxsize=65_536)
def _second_text(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def datetime_text(millis: int) -> str:
    """``2024-01-02 03:04:05.678`` (UTC), as the warehouse reads DateTime64 values."""
    return f"{_second_text(millis // 1000)}.{millis % 1000:03d}"


def iso_text(millis: int) -> str:
    """``2024-01-02T03:04:05.678Z``, as Lago's API writes timestamps."""
    second = _second_text(millis // 1000)
    return f"{second[:10]}T{second[11:]}.{millis % 1000:03d}Z"


@lru_cache(maxsize=65_536)
def iso_seconds_text(seconds: int) -> str:
    """``iso_text`` of a whole second (unix timestamps of Lago events are), cached."""
    return iso_text(seconds * 1000)
