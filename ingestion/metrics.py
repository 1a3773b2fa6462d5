"""Prometheus metrics of one ingest process, rendered in the text exposition format.

Each worker process keeps its own figures (the ``pid`` label tells them apart); Prometheus sums
them. Written by hand because the set is small and fixed.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import defaultdict

BATCH_SIZE_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value

    def render(self, name: str, labels: str) -> list[str]:
        lines, cumulative = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
        lines.append(f"{name}_sum{{{labels}}} {self.total}")
        lines.append(f"{name}_count{{{labels}}} {cumulative}")
        return lines


class IngestMetrics:
    def __init__(self) -> None:
        self.accepted: defaultdict[str, int] = defaultdict(int)
        self.rejected: defaultdict[str, int] = defaultdict(int)
        self.duplicates = 0
        self.unavailable = 0
        self.flush_failures = 0
        self.buffered_events = 0
        self.flush_events = Histogram(BATCH_SIZE_BUCKETS)
        self.flush_seconds = Histogram(LATENCY_BUCKETS_S)
        self.bulk_seconds = Histogram(LATENCY_BUCKETS_S)

    def render(self) -> str:
        pid = f'pid="{os.getpid()}"'
        lines = [
            "# HELP meterhouse_ingest_events_accepted_total Events committed to the warehouse.",
            "# TYPE meterhouse_ingest_events_accepted_total counter",
            *(
                f'meterhouse_ingest_events_accepted_total{{{pid},endpoint="{endpoint}"}} {count}'
                for endpoint, count in sorted(self.accepted.items())
            ),
            "# HELP meterhouse_ingest_events_rejected_total Events refused as invalid.",
            "# TYPE meterhouse_ingest_events_rejected_total counter",
            *(
                f'meterhouse_ingest_events_rejected_total{{{pid},endpoint="{endpoint}"}} {count}'
                for endpoint, count in sorted(self.rejected.items())
            ),
            "# HELP meterhouse_ingest_duplicate_events_total Accepted events whose "
            "transaction_id this process had recently seen (stored once).",
            "# TYPE meterhouse_ingest_duplicate_events_total counter",
            f"meterhouse_ingest_duplicate_events_total{{{pid}}} {self.duplicates}",
            "# HELP meterhouse_ingest_unavailable_total Requests answered 503.",
            "# TYPE meterhouse_ingest_unavailable_total counter",
            f"meterhouse_ingest_unavailable_total{{{pid}}} {self.unavailable}",
            "# HELP meterhouse_ingest_flush_failures_total Group-commit INSERTs that failed.",
            "# TYPE meterhouse_ingest_flush_failures_total counter",
            f"meterhouse_ingest_flush_failures_total{{{pid}}} {self.flush_failures}",
            "# HELP meterhouse_ingest_buffered_events Events waiting for a group-commit flush.",
            "# TYPE meterhouse_ingest_buffered_events gauge",
            f"meterhouse_ingest_buffered_events{{{pid}}} {self.buffered_events}",
            "# HELP meterhouse_ingest_flush_events Events per group-commit INSERT.",
            "# TYPE meterhouse_ingest_flush_events histogram",
            *self.flush_events.render("meterhouse_ingest_flush_events", pid),
            "# HELP meterhouse_ingest_flush_seconds Duration of group-commit INSERTs.",
            "# TYPE meterhouse_ingest_flush_seconds histogram",
            *self.flush_seconds.render("meterhouse_ingest_flush_seconds", pid),
            "# HELP meterhouse_ingest_bulk_seconds Duration of bulk NDJSON INSERTs.",
            "# TYPE meterhouse_ingest_bulk_seconds histogram",
            *self.bulk_seconds.render("meterhouse_ingest_bulk_seconds", pid),
        ]
        return "\n".join(lines) + "\n"
