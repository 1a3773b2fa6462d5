"""CPU seconds of a process, read from /proc: unlike wall time, they barely move when other work
shares the cores, so the benchmarks compare runs by them."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None, *, with_children: bool = False) -> float:
    """User + system CPU seconds of a process so far (0 when unknown); ``with_children`` adds
    those of the children it has waited for (a server that forks a process per request)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS
