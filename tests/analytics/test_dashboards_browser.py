"""The dashboards served as a user serves them (`meterhouse dashboards serve`) and rendered by a
real browser (Debian's chromium, installed from apt when missing): each page is waited for until
its KPIs and charts are drawn, saved as a screenshot under test-output/dashboards/, and its KPI
values are checked against the revenue scenario's hand-computed figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.analytics.browser import Browser
from tests.analytics.conftest import AnalyticsDatabase
from tests.support.processes import REPO_ROOT, ServiceProcess, free_port, meterhouse_command

SCREENSHOTS = REPO_ROOT / "test-output" / "dashboards"

# page url path -> (KPI texts that must appear, charts to wait for)
PAGES: dict[str, tuple[list[str], int]] = {
    "": (["720.00 USD", "8,640.00 USD", "320.00 USD", "970.00 USD", "100.0 %"], 2),
    "revenue": (["1,170.00 USD"], 2),
    "receivables": (["970.00 USD", "650.00 USD"], 1),
    "usage": (["140"], 1),
    "customer_360": (["300.00 USD"], 1),
    "invoices": (["5"], 0),
}


@pytest.fixture(scope="module")
def dashboards_url(
    analytics: AnalyticsDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    with ServiceProcess(
        meterhouse_command("dashboards", "serve", "--port", str(port), "--host", "127.0.0.1"),
        f"http://127.0.0.1:{port}/_stcore/health",
        env=analytics.env,
        log_path=tmp_path_factory.mktemp("dashboards") / "streamlit.log",
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with Browser(tmp_path_factory.mktemp("chromium-profile")) as opened:
        yield opened


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_with_its_kpis(dashboards_url: str, browser: Browser, page: str) -> None:
    kpis, charts = PAGES[page]
    browser.open(f"{dashboards_url}/{page}")
    browser.wait_for(
        "document.querySelectorAll('[data-testid=\"stMetricValue\"]').length > 0"
        f" && document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}"
        " && document.querySelectorAll('[data-testid=\"stDataFrame\"]').length > 0"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stException\"]')"
        + "".join(f" && document.body.innerText.includes({kpi!r})" for kpi in kpis)
    )
    path: Path = SCREENSHOTS / f"{page or 'overview'}.png"
    browser.screenshot(path)
    assert path.stat().st_size > 10_000
    assert "Traceback" not in browser.text()
    metrics = browser.metric_values()
    for kpi in kpis:
        assert kpi in metrics


def test_a_closed_browser_leaves_nothing_behind(tmp_path: Path) -> None:
    """Chromium keeps its singleton socket in a directory of its own under /tmp, linked from the
    profile: every browser the tests start must take it away when closed."""
    with Browser(tmp_path / "profile") as opened:
        opened.open("about:blank")
        socket_directory = (tmp_path / "profile" / "SingletonSocket").readlink().parent
        assert socket_directory.is_dir()
    assert not socket_directory.exists()
