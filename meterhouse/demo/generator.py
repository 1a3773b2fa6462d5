"""``meterhouse demo generate``: deterministic demo files at any scale.

Output directory::

    manifest.json            parameters, window, event files and their counts
    catalog.json             Lago API payloads (see catalog.py)
    events/events-00000.ndjson.gz ...   Lago events, one per line, gzip (what the bulk API takes)

Usage follows the customer's local working hours, dips on weekends, grows over the window, and a
few heavy customers send a large share. The same seed, size and end date give byte-identical
files (gzip written without a timestamp), so the benchmarks can reuse them.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from meterhouse.demo import catalog
from meterhouse.demo.catalog import DemoCustomer

EVENTS_PER_FILE = 100_000
WEEKDAY_FACTOR = (1.0, 1.05, 1.05, 1.0, 0.9, 0.5, 0.4)  # Monday .. Sunday
# Share of a day's traffic per local hour: quiet nights, busy afternoons.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 10, 11, 12, 12, 11, 9, 7, 5, 4, 3, 2, 1)
HEAVY_CUSTOMER_WEIGHT = 60.0
MANIFEST = "manifest.json"
CATALOG = "catalog.json"


@dataclass(frozen=True)
class DemoSize:
    customers: int
    days: int
    events_per_day: int
    seed: int
    end_day: date  # exclusive: usage covers the ``days`` days before it

    @property
    def first_day(self) -> date:
        return self.end_day - timedelta(days=self.days)


def decimal_text(units: int, scale: int) -> str:
    """``units / 10**scale`` as an exact decimal string (no float formatting involved)."""
    whole, fraction = divmod(units, 10**scale)
    return f"{whole}.{fraction:0{scale}d}"


class EventFactory:
    """Properties per metric, drawn from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sequence = 0

    def properties(self, metric: str, customer_index: int) -> tuple[dict[str, Any], str | None]:
        """(properties, precise_total_amount_cents or None) of one event of ``metric``."""
        rng = self.rng
        if metric == "api_calls":
            method = "POST" if rng.random() < 0.3 else "GET"
            return {"region": rng.choice(catalog.REGIONS), "method": method}, None
        if metric == "data_transfer_gb":
            return {"gb": decimal_text(rng.randrange(1, 5_000), 3)}, None
        if metric == "peak_connections":
            return {"connections": rng.randrange(1, 500)}, None
        if metric == "active_seats":
            return {
                "user_id": f"user_{customer_index}_{rng.randrange(5 + customer_index % 40)}"
            }, None
        if metric == "projects":
            return {"count": rng.randrange(1, 40)}, None
        if metric == "storage_gb":
            return {"gb_delta": rng.randrange(-5, 20)}, None
        if metric == "compute_hours":
            return {"hours": decimal_text(rng.randrange(1, 800), 2)}, None
        if metric == "support_tickets":
            return {"priority": "urgent" if rng.random() < 0.2 else "normal"}, None
        if metric == "payment_volume":
            return {"amount": decimal_text(rng.randrange(100, 500_000), 2)}, None
        model = rng.choice(catalog.MODELS)
        tokens = rng.randrange(100, 20_000)
        price_per_thousand_cents = 2 if model == "small" else 15
        return {"model": model, "tokens": tokens}, decimal_text(
            tokens * price_per_thousand_cents, 3
        )

    def event(self, customer: DemoCustomer, index: int, metric: str, at: int) -> bytes:
        self.sequence += 1
        properties, amount = self.properties(metric, index)
        event: dict[str, Any] = {
            "transaction_id": f"demo_{self.sequence:010d}",
            "external_customer_id": customer.external_id,
            "external_subscription_id": catalog.subscription_id(customer),
            "code": metric,
            "timestamp": at,
            "properties": properties,
        }
        if amount is not None:
            event["precise_total_amount_cents"] = amount
        return orjson.dumps(event)


def _utc_offset_hours(timezone: str, day: date) -> int:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(timezone))
    offset = noon.utcoffset()
    return int(offset.total_seconds() // 3600) if offset else 0


def daily_events(
    size: DemoSize, rng: random.Random, customers: list[DemoCustomer]
) -> Iterator[bytes]:
    """Every event of the window, day by day, as NDJSON lines."""
    factory = EventFactory(rng)
    weights = [
        HEAVY_CUSTOMER_WEIGHT if c.heavy else rng.lognormvariate(0.0, 1.0) for c in customers
    ]
    metrics = list(catalog.METRIC_WEIGHTS)
    metric_weights = list(catalog.METRIC_WEIGHTS.values())
    hours = range(24)
    for day_index in range(size.days):
        day = size.first_day + timedelta(days=day_index)
        active = [i for i, c in enumerate(customers) if c.live_on(day)]
        if not active:
            continue
        growth = 0.85 + 0.3 * day_index / size.days
        noise = rng.uniform(0.95, 1.05)
        count = round(size.events_per_day * WEEKDAY_FACTOR[day.weekday()] * growth * noise)
        chosen = rng.choices(active, [weights[i] for i in active], k=count)
        local_hours = rng.choices(hours, HOUR_WEIGHTS, k=count)
        chosen_metrics = rng.choices(metrics, metric_weights, k=count)
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        offsets = {i: _utc_offset_hours(customers[i].timezone, day) for i in set(chosen)}
        timestamps = sorted(
            midnight + ((hour - offsets[i]) % 24) * 3600 + rng.randrange(3600)
            for i, hour in zip(chosen, local_hours, strict=True)
        )
        for i, metric, at in zip(chosen, chosen_metrics, timestamps, strict=True):
            yield factory.event(customers[i], i, metric, at)


def _write_gzip(path: Path, lines: list[bytes]) -> None:
    # mtime=0 and no file name in the header: identical input gives identical bytes.
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1, mtime=0))


def write_events(directory: Path, lines: Iterator[bytes]) -> list[dict[str, Any]]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("events-*.ndjson.gz"):
        stale.unlink()
    files: list[dict[str, Any]] = []
    batch: list[bytes] = []

    def flush() -> None:
        name = f"events-{len(files):05d}.ndjson.gz"
        _write_gzip(directory / name, batch)
        files.append({"path": f"events/{name}", "events": len(batch)})
        batch.clear()

    for line in lines:
        batch.append(line)
        if len(batch) == EVENTS_PER_FILE:
            flush()
    if batch:
        flush()
    return files


def generate(size: DemoSize, output: Path) -> dict[str, Any]:
    """Write the demo files for ``size`` into ``output``; return the manifest."""
    rng = random.Random(size.seed)
    output.mkdir(parents=True, exist_ok=True)
    demo_catalog, customers = catalog.build_catalog(rng, size.customers, size.first_day, size.days)
    (output / CATALOG).write_bytes(orjson.dumps(demo_catalog, option=orjson.OPT_INDENT_2))
    files = write_events(output / "events", daily_events(size, rng, customers))
    manifest = {
        "seed": size.seed,
        "customers": size.customers,
        "days": size.days,
        "events_per_day": size.events_per_day,
        "first_day": size.first_day.isoformat(),
        "end_day": size.end_day.isoformat(),
        "events": sum(f["events"] for f in files),
        "event_files": files,
    }
    (output / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = orjson.loads((directory / MANIFEST).read_bytes())
    return manifest


def read_catalog(directory: Path) -> dict[str, Any]:
    demo_catalog: dict[str, Any] = orjson.loads((directory / CATALOG).read_bytes())
    return demo_catalog
