"""Send the demo files through the public APIs, as a customer would.

The catalog goes to the billing API with the official Lago client, then the events go to the
ingest API's bulk endpoint, one gzip file per request (sent as generated, without re-encoding),
with a progress bar. Resources the billing API does not serve yet (no route in its OpenAPI
document) are skipped and reported, so the demo grows with the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from lago_python_client.client import Client as LagoClient
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    AppliedCoupon,
    BillableMetric,
    Coupon,
    Customer,
    Plan,
    Subscription,
    Tax,
    Wallet,
)
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from meterhouse.demo.generator import read_catalog, read_manifest

# Resource -> the billing API path that must exist to load it.
RESOURCE_PATHS = {
    "taxes": "/api/v1/taxes",
    "billable_metrics": "/api/v1/billable_metrics",
    "plans": "/api/v1/plans",
    "coupons": "/api/v1/coupons",
    "customers": "/api/v1/customers",
    "subscriptions": "/api/v1/subscriptions",
    "applied_coupons": "/api/v1/applied_coupons",
    "wallets": "/api/v1/wallets",
    "subscription_changes": "/api/v1/subscriptions",
}
CATALOG_REQUESTS_IN_FLIGHT = 4
# The client's default of 10 s is shorter than a cold billing API's first answers on 2 busy cores.
CATALOG_REQUEST_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
EVENT_UPLOADS_IN_FLIGHT = 2  # one file parsing in the engine while the next one is sent


class DemoLoadError(RuntimeError):
    """An API refused part of the demo: the message names the resource and the answer."""


@dataclass
class LoadReport:
    loaded: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # resources the billing API lacks
    catalog_seconds: float = 0.0
    events: int = 0
    events_seconds: float = 0.0


def served_paths(api_url: str) -> set[str] | None:
    """Paths in the billing API's OpenAPI document, or None when it publishes none."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/openapi.json", timeout=10.0)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return set(response.json().get("paths", {}))


class CatalogLoader:
    def __init__(self, api_url: str, api_key: str) -> None:
        # Any: the client's mixins are typed against a protocol its own classes do not satisfy.
        self.lago: Any = LagoClient(api_key=api_key, api_url=api_url.rstrip("/") + "/")
        self.paths = served_paths(api_url)
        self.metric_ids: dict[str, str] = {}
        self.report = LoadReport()

    def serves(self, resource: str) -> bool:
        return self.paths is None or RESOURCE_PATHS[resource] in self.paths

    def load(self, catalog: dict[str, Any]) -> LoadReport:
        lago, timeout = self.lago, CATALOG_REQUEST_TIMEOUT
        steps: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
            ("taxes", lambda p: lago.taxes.create(Tax(**p), timeout)),
            ("billable_metrics", self._create_metric),
            ("plans", self._create_plan),
            ("coupons", lambda p: lago.coupons.create(Coupon(**p), timeout)),
            ("customers", lambda p: lago.customers.create(Customer(**p), timeout)),
            ("subscriptions", lambda p: lago.subscriptions.create(Subscription(**p), timeout)),
            ("applied_coupons", lambda p: lago.applied_coupons.create(AppliedCoupon(**p), timeout)),
            ("wallets", lambda p: lago.wallets.create(Wallet(**p), timeout)),
            ("subscription_changes", self._apply_change),
        ]
        for resource, create in steps:
            if not self.serves(resource):
                self.report.skipped.append(resource)
                continue
            self._create_all(resource, catalog.get(resource, []), create)
        if self.serves("subscriptions"):
            # Reading subscriptions applies their due transitions: the past ending_at of those
            # that were not replaced becomes their termination before anything is rated.
            self.lago.subscriptions.find_all({"per_page": 1}, CATALOG_REQUEST_TIMEOUT)
        return self.report

    def _create_all(
        self, resource: str, payloads: Iterable[dict[str, Any]], create: Callable[..., object]
    ) -> None:
        def create_one(payload: dict[str, Any]) -> None:
            try:
                create(payload)
            except LagoApiError as exc:
                raise DemoLoadError(
                    f"billing API refused {resource} {payload.get('code') or payload}: "
                    f"HTTP {exc.status_code} {exc.response}"
                ) from exc

        # Each payload of one resource stands alone (a customer has one subscription change at
        # most), so they go out concurrently; resources still load in dependency order.
        with ThreadPoolExecutor(CATALOG_REQUESTS_IN_FLIGHT) as pool:
            self.report.loaded[resource] = len(list(pool.map(create_one, payloads)))

    def _create_metric(self, payload: dict[str, Any]) -> None:
        created = self.lago.billable_metrics.create(
            BillableMetric(**payload), CATALOG_REQUEST_TIMEOUT
        )
        assert created is not None
        self.metric_ids[payload["code"]] = created.lago_id

    def _create_plan(self, payload: dict[str, Any]) -> None:
        charges = [
            {
                **{k: v for k, v in charge.items() if k != "billable_metric_code"},
                "billable_metric_id": self.metric_ids[charge["billable_metric_code"]],
            }
            for charge in payload["charges"]
        ]
        self.lago.plans.create(Plan(**{**payload, "charges": charges}), CATALOG_REQUEST_TIMEOUT)

    def _apply_change(self, change: dict[str, Any]) -> None:
        # A past change starts the next subscription under the same external id once the old
        # one has ended; a change requested now re-posts the subscription, as Lago does.
        fields = {k: v for k, v in change.items() if k != "kind"}
        self.lago.subscriptions.create(Subscription(**fields), CATALOG_REQUEST_TIMEOUT)


def _upload(client: httpx.Client, url: str, api_key: str, path: Path) -> int:
    response = client.post(
        url,
        content=path.read_bytes(),
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        },
    )
    if response.status_code != 200:
        raise DemoLoadError(
            f"ingest API refused {path.name}: HTTP {response.status_code} {response.text[:500]}"
        )
    accepted: int = response.json()["accepted"]
    return accepted


def load_events(
    ingest_url: str, api_key: str, directory: Path, *, show_progress: bool = True
) -> tuple[int, float]:
    """Send every event file to the bulk endpoint; return (events accepted, seconds)."""
    manifest = read_manifest(directory)
    url = f"{ingest_url.rstrip('/')}/api/v1/events/bulk"
    started = time.perf_counter()
    accepted = 0
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not show_progress,
    )
    with (
        progress,
        httpx.Client(timeout=httpx.Timeout(600.0, connect=10.0)) as client,
        ThreadPoolExecutor(EVENT_UPLOADS_IN_FLIGHT) as pool,
    ):
        task = progress.add_task("events", total=manifest["events"])
        paths = [directory / entry["path"] for entry in manifest["event_files"]]
        for count in pool.map(lambda p: _upload(client, url, api_key, p), paths):
            accepted += count
            progress.advance(task, count)
    return accepted, time.perf_counter() - started


def load_demo(
    directory: Path, *, api_url: str, ingest_url: str, api_key: str, show_progress: bool = True
) -> LoadReport:
    # One after the other: sent at once, the catalog's requests waited behind the bulk inserts
    # on 2 busy cores past the client's 10 s timeout, for no gain in total time.
    started = time.perf_counter()
    report = CatalogLoader(api_url, api_key).load(read_catalog(directory))
    report.catalog_seconds = time.perf_counter() - started
    report.events, report.events_seconds = load_events(
        ingest_url, api_key, directory, show_progress=show_progress
    )
    return report
