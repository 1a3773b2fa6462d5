"""The demo generator: deterministic files, a catalog covering the billing features, and usage
shaped like real traffic (weekly seasonality, heavy customers)."""

from __future__ import annotations

import gzip
import random
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from meterhouse.demo.catalog import build_catalog
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
    # A customer sends usage only on the days one of its subscriptions is live.
    live = {s["external_customer_id"]: s for s in read_catalog(directory)["subscriptions"]}
    ended = {c: s["ending_at"][:10] for c, s in live.items() if "ending_at" in s}
    assert ended
    changes = {c["external_customer_id"] for c in read_catalog(directory)["subscription_changes"]}
    for event in events:
        day = datetime.fromtimestamp(event["timestamp"], UTC).date().isoformat()
        customer = event["external_customer_id"]
        assert day >= live[customer]["subscription_at"][:10]
        if customer in ended and customer not in changes:
            assert day <= ended[customer]


def noon(day: date) -> str:
    return f"{day.isoformat()}T12:00:00Z"


def test_history_changes_plans_churns_and_comes_back_within_the_window() -> None:
    first_day, days = date(2026, 1, 1), 90
    catalog, _ = build_catalog(random.Random(42), 200, first_day, days)
    firsts = {s["external_id"]: s for s in catalog["subscriptions"]}
    assert all(s["ending_at"] > s["subscription_at"] for s in firsts.values() if "ending_at" in s)
    tiers = ("starter", "growth", "scale")
    changes = catalog["subscription_changes"]
    assert {c["kind"] for c in changes} == {"upgrade", "downgrade", "resubscription"}
    assert len({c["external_id"] for c in changes}) == len(changes)  # one change per customer
    for change in changes:
        before = firsts[change["external_id"]]
        old_tier, new_tier = (tiers.index(p["plan_code"][:-4]) for p in (before, change))
        if "subscription_at" not in change:
            # Requested at load time: a downgrade whose period ends after the window.
            assert change["kind"] == "downgrade" and new_tier == old_tier - 1
            assert "ending_at" not in before
            continue
        start = date.fromisoformat(change["subscription_at"][:10])
        assert first_day < start < first_day + timedelta(days=days)
        assert change["subscription_at"] == noon(start)
        if change["kind"] == "resubscription":
            # Back on the same plan after a whole calendar month without one.
            ended = date.fromisoformat(before["ending_at"][:10])
            assert (
                new_tier == old_tier
                and (start.year * 12 + start.month) - (ended.year * 12 + ended.month) >= 2
            )
            continue
        # The old plan's last day is the day before the new one's first (Lago's upgrade and
        # downgrade billing); the billing time stays the one of the replaced subscription.
        assert before["ending_at"] == noon(start - timedelta(days=1))
        assert change["billing_time"] == before["billing_time"]
        if change["kind"] == "upgrade":
            assert new_tier == old_tier + 1
        else:
            assert new_tier == old_tier - 1
            # At the end of the old plan's period: a month start, or scale's anniversary.
            anchor = before["subscription_at"][5:10]
            assert start.day == 1 if old_tier < 2 else start.isoformat()[5:10] == anchor
    churned = [
        s for s in catalog["subscriptions"]
        if "ending_at" in s and s["external_id"] not in {c["external_id"] for c in changes}
    ]  # fmt: skip
    assert len(churned) >= 5
