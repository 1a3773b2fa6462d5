"""``meterhouse up`` as a newcomer runs it: in an empty directory, every service started (the
Dagster UI and daemon over the code location among them), the demo loaded through the APIs, an
event sent and seen, then SIGTERM and nothing left running; started again, it keeps its data and
loads no demo."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from meterhouse.supervisor import (
    GENERATED_SECRETS,
    ensure_local_secrets,
    read_env_file,
    reset_local_state,
)
from orchestration.webhooks import load_rsa_private_key
from tests.analytics.browser import Browser
from tests.support.processes import (
    mapped_semaphores,
    meterhouse_command,
    still_linked,
    up_environment,
    up_ports,
)
from warehouse.settings import Settings

# Measured 3.5-4 min on 2 cores shared with other work (load ~12) before the revenue marts were
# built at start; 7 min with them at load ~15.
STARTUP_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 60.0
DEMO_SIZE = {"MH_DEMO_CUSTOMERS": "12", "MH_DEMO_DAYS": "3", "MH_DEMO_EVENTS_PER_DAY": "1500"}
KEPT = ("events", "customers", "subscriptions", "invoices")  # counted before and after a restart


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live (non-zombie) process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat_line[stat_line.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier}
        found |= frontier
    return found


def survivors(pids: set[int], groups: set[int]) -> dict[int, str]:
    table = process_table()
    alive = {pid for pid, (_, group) in table.items() if pid in pids or group in groups}
    return {pid: Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ") for pid in alive}


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    directory: Path
    log: Path
    ports: dict[str, int]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                pytest.fail(f"meterhouse up exited with {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.5)
        pytest.fail(f"no {text!r} within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"


def start_up(directory: Path, ports: dict[str, int], *args: str, **env: str) -> Up:
    log = directory / "up.log"
    process = subprocess.Popen(
        meterhouse_command("up", *args),
        cwd=directory,
        env=up_environment(ports, **env),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Up(process, directory, log, ports)


def force_stop(up: Up) -> None:
    """Last resort after a failed test: kill the supervisor's group and every descendant."""
    for pid in descendants(up.process.pid) | {up.process.pid}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    up.process.wait(timeout=30)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Up]:
    up = start_up(tmp_path, up_ports(), **DEMO_SIZE)
    try:
        yield up
    finally:
        if up.process.poll() is None:
            force_stop(up)


def expected_overview_mrr(analyst_query: Callable[[str], str]) -> str:
    """The Overview's MRR KPI as the page shows it by default: the first currency, on the last
    day of the marts' span."""
    currency = analyst_query(
        "SELECT currency FROM (SELECT DISTINCT currency FROM meterhouse.fct_mrr_monthly"
        " UNION DISTINCT SELECT DISTINCT currency FROM meterhouse.fct_invoices)"
        " ORDER BY currency LIMIT 1"
    )
    mrr = Decimal(
        analyst_query(
            "SELECT sum(mrr) FROM meterhouse.fct_mrr_daily_by_plan WHERE currency = "
            f"'{currency}' AND date = (SELECT max(date) FROM meterhouse.fct_mrr_daily_by_plan "
            f"WHERE currency = '{currency}' AND date <= "
            "(SELECT max(measured_on) FROM meterhouse.fct_mrr_monthly))"
        )
    )
    assert mrr > 0, "the demo has no MRR"
    return f"{mrr:,.2f} {currency}"


def open_overview(url: str, profile: Path) -> list[str]:
    """The Overview in a real browser once its KPIs and charts are drawn: its KPI values."""
    with Browser(profile) as browser:
        browser.open(url)
        browser.wait_for(
            "document.querySelectorAll('[data-testid=\"stMetricValue\"]').length >= 5"
            " && document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2"
            " && !document.querySelector('[data-testid=\"stStatusWidget\"]')",
            timeout=180,
        )
        assert "Traceback" not in browser.text()
        return browser.metric_values()


def test_up_serves_everything_loads_the_demo_and_stops_cleanly(running: Up) -> None:
    running.wait_for("Meterhouse is up.", STARTUP_TIMEOUT_S)

    secrets_file = running.directory / ".meterhouse" / "local.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    secrets = read_env_file(secrets_file)
    assert set(GENERATED_SECRETS) <= set(secrets)
    api_key = secrets["MH_BOOTSTRAP_API_KEY"]
    analyst_password = secrets["MH_WAREHOUSE_ANALYST_PASSWORD"]
    assert api_key in running.output() and analyst_password in running.output()
    # The demo's rating and revenue marts ran on the warm rating server `up` started.
    assert running.output().count("rating on the rating server") == 2, running.tail()

    pages = {
        "warehouse": "/ping",
        "ingest": "/health",
        "api": "/health",
        "dagster": "/server_info",
        "dashboards": "/",
        "docs": "/static_index.html",
        "localstripe": "/v1/customers",
    }
    with httpx.Client(timeout=30.0) as http:
        for service, path in pages.items():
            response = http.get(running.url(service, path))
            assert response.status_code < 500, (service, response.status_code, response.text)
            assert str(running.ports[service]) in running.output(), f"{service} not in the table"

        def analyst_query(sql: str) -> str:
            response = http.post(
                running.url("warehouse", "/"),
                params={"user": "analyst", "password": analyst_password},
                content=sql,
            )
            assert response.status_code == 200, response.text
            return response.text.strip()

        # Dagster serves the code location: invoicing, wallets and the dbt assets; its
        # telemetry is off in the instance `up` wrote.
        query = "{ assetNodes { assetKey { path } } }"
        answer = http.post(running.url("dagster", "/graphql"), json={"query": query}, timeout=120)
        keys = {"/".join(node["assetKey"]["path"]) for node in answer.json()["data"]["assetNodes"]}
        assert {
            "invoicing/invoices",
            "invoicing/invoice_payments",
            "wallets/wallet_ongoing_balances",
            "fct_fees",
        } <= keys
        dagster_instance = running.directory / ".meterhouse" / "dagster" / "dagster.yaml"
        assert "enabled: false" in dagster_instance.read_text()

        # The demo went through the APIs: its catalog, its events, and the billing days.
        manifest_events = int(analyst_query("SELECT count() FROM meterhouse.events"))
        assert manifest_events >= 1500 * 3 * 0.5
        assert (
            analyst_query("SELECT count() FROM meterhouse.customers FINAL WHERE is_deleted = 0")
            == "12"
        )
        assert int(analyst_query("SELECT count() FROM meterhouse.invoices")) > 0
        # "Up" means invoiced: no billing day is left to Dagster's late-billing sensor, the
        # subscription fees of customers who started before the usage window included.
        pending_days = analyst_query(
            "SELECT count(DISTINCT billing_date) FROM meterhouse.fct_fees WHERE invoiceable = 1"
            " AND billing_date <= today() + 1 AND (organization_id, fee_id) NOT IN"
            " (SELECT organization_id, id FROM meterhouse.invoice_fees)"
        )
        assert pending_days == "0"
        assert (
            analyst_query(
                "SELECT (SELECT min(billing_date) FROM meterhouse.invoices)"
                " < (SELECT min(toDate(timestamp)) FROM meterhouse.events)"
            )
            == "1"
        )
        # No Stripe key: invoices of Stripe customers went to localstripe, and it knows them.
        pushed = analyst_query(
            "SELECT provider_object_id FROM meterhouse.provider_references FINAL "
            "WHERE provider = 'stripe' AND object_type = 'invoice' AND status != 'failed' "
            "ORDER BY provider_object_id LIMIT 1"
        )
        assert pushed.startswith("in_"), pushed
        stripe_invoice = http.get(
            running.url("localstripe", f"/v1/invoices/{pushed}"),
            headers={"Authorization": "Bearer sk_test_localstripe"},
        )
        assert stripe_invoice.status_code == 200, stripe_invoice.text

        # The first two commands to try: send an event, then see it in current usage.
        auth = {"Authorization": f"Bearer {api_key}"}

        def api_calls_units() -> Decimal:
            usage = http.get(
                running.url("api", "/api/v1/customers/cust_00000/current_usage"),
                params={"external_subscription_id": "sub_cust_00000"},
                headers=auth,
            )
            assert usage.status_code == 200, usage.text
            charges = usage.json()["customer_usage"]["charges_usage"]
            [api_calls] = [c for c in charges if c["billable_metric"]["code"] == "api_calls"]
            return Decimal(api_calls["units"])

        before = api_calls_units()
        event = {
            "transaction_id": "smoke-1",
            "external_subscription_id": "sub_cust_00000",
            "external_customer_id": "cust_00000",
            "code": "api_calls",
            "properties": {"region": "eu-west", "method": "GET"},
        }
        sent = http.post(
            running.url("ingest", "/api/v1/events"), json={"event": event}, headers=auth
        )
        assert sent.status_code == 200, sent.text
        assert api_calls_units() == before + 1
        assert (
            analyst_query("SELECT count() FROM meterhouse.events WHERE transaction_id = 'smoke-1'")
            == "1"
        )

        stored = {table: analyst_query(f"SELECT count() FROM meterhouse.{table}") for table in KEPT}

        # The dashboards, rendered by a browser, show the demo's MRR from the revenue marts.
        mrr = expected_overview_mrr(analyst_query)
    assert mrr in open_overview(running.url("dashboards", "/"), running.directory / "chromium")

    children = descendants(running.process.pid)
    groups = {group for pid, (_, group) in process_table().items() if pid in children}
    semaphores = mapped_semaphores(children)  # Dagster's and the rating server's, at least
    assert semaphores
    assert len(groups) >= len(pages)  # one process group per service

    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=STOP_TIMEOUT_S) == 0, running.tail()
    assert survivors(children, groups) == {}
    assert still_linked(semaphores) == set()  # none left under /dev/shm
    # Nothing a newcomer would take for a problem: no library's warning from start to stop.
    warned = [line for line in running.output().splitlines() if "Warning:" in line]
    assert warned == [], "\n".join(warned)

    # The next `meterhouse up` in the same directory: everything kept, the demo not loaded again.
    restarted = start_up(running.directory, running.ports, **DEMO_SIZE)
    try:
        restarted.wait_for("Meterhouse is up.", STARTUP_TIMEOUT_S)
        assert not re.search(r"^\s*demo \|", restarted.output(), re.MULTILINE), restarted.tail()
        assert read_env_file(secrets_file) == secrets
        with httpx.Client(timeout=30.0) as http:
            for table, count in stored.items():
                answer = http.post(
                    restarted.url("warehouse", "/"),
                    params={"user": "analyst", "password": analyst_password},
                    content=f"SELECT count() FROM meterhouse.{table}",
                )
                assert answer.text.strip() == count, (table, answer.text)
        restarted.process.send_signal(signal.SIGTERM)
        assert restarted.process.wait(timeout=STOP_TIMEOUT_S) == 0, restarted.tail()
    finally:
        if restarted.process.poll() is None:
            force_stop(restarted)


def test_a_taken_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    ports = up_ports()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["api"]))
        blocker.listen()
        up = start_up(tmp_path, ports, "--no-demo")
        try:
            code = up.process.wait(timeout=60)
        finally:
            if up.process.poll() is None:
                force_stop(up)
    assert code == 1
    assert f"{ports['api']} (billing-api)" in up.output()
    assert "starting:" not in up.output()


def test_secrets_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / ".meterhouse" / "local.env"
    first = ensure_local_secrets(path)
    assert set(first) >= set(GENERATED_SECRETS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_local_secrets(path) == first == read_env_file(path)
    assert first["MH_BOOTSTRAP_API_KEY"].startswith("mh_")
    assert load_rsa_private_key(first["MH_WEBHOOK_RSA_PRIVATE_KEY"]).key_size == 2048


def test_reset_asks_first_and_keeps_the_data_when_refused(tmp_path: Path) -> None:
    data = tmp_path / ".meterhouse" / "data"
    data.mkdir(parents=True)
    (data / "marker").write_text("kept")
    result = subprocess.run(
        meterhouse_command("up", "--reset", "--no-demo"),
        cwd=tmp_path,
        env=up_environment(up_ports()),
        input=b"n\n",
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert b"Delete the local warehouse data" in result.stdout
    assert (data / "marker").read_text() == "kept"


def test_reset_wipes_local_state_but_keeps_the_secrets(tmp_path: Path) -> None:
    home = tmp_path / ".meterhouse"
    secrets_file = home / "local.env"
    kept = ensure_local_secrets(secrets_file)
    for name in ("data", "demo", "dagster", "dbt-docs"):
        (home / name).mkdir(parents=True)
        (home / name / "file").write_text("x")
    settings = Settings(_env_file=None, home=home, warehouse_data_dir=home / "data")
    reset_local_state(settings)
    assert sorted(p.name for p in home.iterdir()) == ["local.env"]
    assert read_env_file(secrets_file) == kept


def test_a_failing_service_stops_everything_with_a_clear_message(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "data-is-a-file"
    not_a_directory.write_text("")
    up = start_up(tmp_path, up_ports(), "--no-demo", MH_WAREHOUSE_DATA_DIR=str(not_a_directory))
    try:
        code = up.process.wait(timeout=120)
    finally:
        if up.process.poll() is None:
            force_stop(up)
    assert code == 1
    assert "error: warehouse exited with code" in up.output(), up.tail()
    # Nothing after the failed service was started: no line carries the ingest service's prefix.
    assert not re.search(r"^\s*ingest \|", up.output(), re.MULTILINE), up.tail()
