"""The demo generator: deterministic files, a catalog covering the billing features, and usage
shaped like real traffic (weekly seasonality, heavy customers)."""

from __future__ import annotations

import gzip
import subprocess
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from meterhouse.demo.generator import DemoSize, generate, read_catalog, read_manifest
from tests.support.processes import meterhouse_command

END_DAY = "2026-03-02"  # a Monday: the window's weekdays are known


def generate_with_cli(output: Path, seed: int) -> None:
    subprocess.run(
        meterhouse_command(
            "demo", "generate", "--output", str(output), "--customers", "25", "--days", "14",
            "--events-per-day", "3000", "--seed", str(seed), "--end-date", END_DAY,
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip


def file_bytes(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def read_events(directory: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for entry in read_manifest(directory)["event_files"]:
        with gzip.open(directory / entry["path"]) as file:
            events.extend(orjson.loads(line) for line in file)
    return events


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("demo") / "seed7"
    generate_with_cli(output, seed=7)
    return output


def test_same_seed_gives_the_same_files(demo: Path, tmp_path: Path) -> None:
    generate_with_cli(tmp_path / "again", seed=7)
    assert file_bytes(tmp_path / "again") == file_bytes(demo)


def test_another_seed_gives_other_data(demo: Path, tmp_path: Path) -> None:
    generate_with_cli(tmp_path / "other", seed=8)
    other = file_bytes(tmp_path / "other")
    assert other["catalog.json"] != file_bytes(demo)["catalog.json"]
    assert read_events(tmp_path / "other") != read_events(demo)


def test_manifest_counts_every_event_of_the_window(demo: Path) -> None:
    manifest = read_manifest(demo)
    events = read_events(demo)
    assert manifest["events"] == len(events) > 14 * 3000 * 0.5
    assert manifest["first_day"] == "2026-02-16" and manifest["end_day"] == END_DAY
    window_start = datetime(2026, 2, 16, tzinfo=UTC).timestamp()
    window_end = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    assert all(window_start <= e["timestamp"] < window_end for e in events)
    assert len({e["transaction_id"] for e in events}) == len(events)


def test_catalog_covers_every_aggregation_and_charge_model(demo: Path) -> None:
    catalog = read_catalog(demo)
    aggregations = {m["aggregation_type"] for m in catalog["billable_metrics"]}
    assert aggregations >= {
        "count_agg", "sum_agg", "max_agg", "unique_count_agg", "latest_agg", "weighted_sum_agg",
    }  # fmt: skip
    charges = [c for plan in catalog["plans"] for c in plan["charges"]]
    assert {c["charge_model"] for c in charges} == {
        "standard", "graduated", "graduated_percentage", "package", "percentage", "volume",
        "dynamic",
    }  # fmt: skip
    assert any(c.get("filters") for c in charges)
    assert {p["amount_currency"] for p in catalog["plans"]} == {"USD", "EUR", "GBP"}
    assert len(catalog["customers"]) == 25
    assert len({c["timezone"] for c in catalog["customers"]}) >= 3
    assert {s["external_customer_id"] for s in catalog["subscriptions"]} == {
        c["external_id"] for c in catalog["customers"]
    }
    assert catalog["coupons"] and catalog["wallets"] and catalog["taxes"]


def test_usage_has_weekly_seasonality_and_heavy_customers(tmp_path: Path) -> None:
    # Bigger than the CLI fixture so the shares are stable; in-process for speed.
    size = DemoSize(customers=60, days=28, events_per_day=4000, seed=3, end_day=date(2026, 3, 2))
    directory = tmp_path / "demo"
    generate(size, directory)
    events = read_events(directory)
    per_weekday = Counter(datetime.fromtimestamp(e["timestamp"], UTC).weekday() for e in events)
    weekday_mean = sum(per_weekday[d] for d in range(5)) / 5
    weekend_mean = (per_weekday[5] + per_weekday[6]) / 2
    assert weekend_mean < 0.7 * weekday_mean
    per_customer = Counter(e["external_customer_id"] for e in events).most_common()
    top_three = sum(count for _, count in per_customer[:3])
    assert top_three > 0.25 * len(events)  # 3 of 60 customers send over a quarter
    assert {e["code"] for e in events} == {
        m["code"] for m in read_catalog(directory)["billable_metrics"]
    }
