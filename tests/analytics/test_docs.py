"""`meterhouse docs serve` generates the dbt docs and serves them as static pages."""

from __future__ import annotations

import httpx
import pytest

from tests.analytics.conftest import AnalyticsDatabase
from tests.support.processes import ServiceProcess, free_port, meterhouse_command


def test_docs_site_documents_the_analytics_marts(
    analytics: AnalyticsDatabase, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    root = tmp_path_factory.mktemp("docs")
    with ServiceProcess(
        meterhouse_command("docs", "serve", "--port", str(port), "--target", str(root / "site")),
        f"http://127.0.0.1:{port}/static_index.html",
        env=analytics.env,
        log_path=root / "docs.log",
        startup_timeout=600,
    ):
        page = httpx.get(f"http://127.0.0.1:{port}/static_index.html", timeout=30)
        assert page.status_code == 200
        for documented in ("fct_mrr_movements", "opening + new + reactivation", "fx_rates"):
            assert documented in page.text
