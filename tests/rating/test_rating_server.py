"""The warm rating process (`meterhouse rate serve`): `meterhouse rate run` hands its run to it
when it rates for the same warehouse, project and dbt target, and gets the same fees, output and
exit code as in-process, even when its forked process has to parse the whole project anew; runs
are queued one behind the other; an edited model is rated as edited; a server killed mid-run ends
its client with an error, not a hang; without a server the command rates in its own process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meterhouse.rating import DBT_PROJECT_DIR
from meterhouse.rating_server import SOCKET_NAME, answers
from tests.conftest import Warehouse
from tests.rating.catalog import Catalog
from tests.rating.conftest import fees_of
from tests.rating.test_incremental import by_fee
from tests.support.processes import REPO_ROOT, ServiceProcess, free_port, meterhouse_command

AS_OF = "2024-03-01T00:00:00"
HANDED_OVER = "rating on the rating server"
RUN_TIMEOUT_S = 600


@dataclass
class Rating:
    """A Meterhouse home, dbt target and warehouse, for the server and the commands alike."""

    home: Path
    env: dict[str, str]

    @classmethod
    def at(cls, root: Path, warehouse_env: dict[str, str], **extra: str) -> Rating:
        target = root / "dbt_target"
        env = {
            **os.environ,
            **warehouse_env,
            "MH_HOME": str(root / "home"),
            "DBT_TARGET_PATH": str(target),
            "DBT_LOG_PATH": str(target / "logs"),
            **extra,
        }
        return cls(root / "home", env)

    @property
    def socket(self) -> Path:
        return self.home / SOCKET_NAME

    def command(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            meterhouse_command("rate", "run", "--no-progress", *args),
            env=self.env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        process = self.command(*args)
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


class ServerProcess(ServiceProcess):
    """`meterhouse rate serve` started as `meterhouse up` starts it, stopped with SIGTERM."""

    def __init__(self, rating: Rating, log: Path) -> None:
        super().__init__(
            meterhouse_command("rate", "serve"),
            f"unix:{rating.socket}",
            env=rating.env,
            log_path=log,
            startup_timeout=RUN_TIMEOUT_S,
            ready=lambda: answers(rating.socket),
        )
        self.rating = rating
        self.start()

    def rating_child(self, timeout_s: float = 60) -> int:
        """The pid of the process rating a run, once the server has forked it (a fork runs the
        server's command line; dbt's multiprocessing also starts a resource tracker)."""
        assert self.process is not None
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        deadline = time.monotonic() + timeout_s
        while True:
            for child in children.read_text().split():
                with contextlib.suppress(FileNotFoundError):
                    if Path(f"/proc/{child}/cmdline").read_bytes() == command_line:
                        return int(child)
            assert time.monotonic() < deadline, "the server started no run"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def served(
    warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for the tests that leave it serving (each warm-up imports dbt and parses the
    project: seconds)."""
    root = tmp_path_factory.mktemp("served")
    server = ServerProcess(Rating.at(root, warehouse.env), root / "server.log")
    try:
        yield server
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert not server.rating.socket.exists()  # removed on the way out
    # Each run's forked process unlinks the named semaphores of dbt's locks: none is left for
    # the server's resource tracker to find at its end (it warns of every one it unlinks).
    assert "leaked semaphore" not in server.log_path.read_text()


def catalog_with_usage(warehouse: Warehouse) -> Catalog:
    catalog = Catalog(warehouse.client())
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    seats = catalog.metric("seats", "sum_agg", "n")
    plan = catalog.plan("monthly", amount_cents=1000)
    catalog.charge(plan, calls, "standard", {"amount": "0.5"})
    catalog.charge(plan, seats, "standard", {"amount": "2"}, pay_in_advance=True)
    catalog.subscription("s1", customer, plan, "2024-01-01")
    catalog.events("s1", "calls", [{"timestamp": "2024-01-10"}, {"timestamp": "2024-02-05"}])
    catalog.events("s1", "seats", [{"timestamp": "2024-02-03", "properties": {"n": 3}}])
    return catalog


def test_a_run_through_the_server_rates_the_fees_of_a_run_in_process(
    warehouse: Warehouse, served: ServerProcess, tmp_path: Path
) -> None:
    catalog = catalog_with_usage(warehouse)
    alone = Rating.at(tmp_path / "alone", warehouse.env)  # no server in its home
    in_process = alone.run("--as-of", AS_OF, "--full-refresh", "--no-tests")
    assert in_process.returncode == 0, in_process.stderr
    assert HANDED_OVER not in in_process.stderr
    fees_in_process = fees_of(warehouse.client(), catalog.organization_id)

    # Without its saved parse (a target cleaned by hand), the run's forked process parses the
    # whole project anew, as a new process would.
    target = Path(served.rating.env["DBT_TARGET_PATH"])
    (target / "partial_parse.msgpack").unlink()
    log = target / "logs" / "dbt.log"
    logged_before = len(log.read_text()) if log.exists() else 0  # the warm-up logs nothing
    through_server = served.rating.run("--as-of", AS_OF, "--full-refresh", "--no-tests")
    assert through_server.returncode == 0, through_server.stderr
    assert HANDED_OVER in through_server.stderr
    logged = log.read_text()[logged_before:]
    assert "Unable to do partial parsing because saved manifest not found" in logged
    assert "Done." in through_server.stdout  # dbt's last line, streamed back
    fees_through_server = fees_of(warehouse.client(), catalog.organization_id)

    assert {fee["fee_type"] for fee in fees_in_process} == {"charge", "subscription"}
    assert by_fee(fees_through_server) == by_fee(fees_in_process)


def test_dbts_exit_code_and_error_pass_through_the_server(tmp_path: Path) -> None:
    unreachable = {
        "WAREHOUSE_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "MH_WAREHOUSE_PASSWORD": "unused",
    }
    # Parsing needs no warehouse: the server warms up, the run fails on connecting.
    server = ServerProcess(Rating.at(tmp_path, unreachable), tmp_path / "server.log")
    try:
        result = server.rating.run("--no-tests")
    finally:
        server.stop()
    assert HANDED_OVER in result.stderr
    assert result.returncode == 2  # dbt's code for "dbt itself failed"
    assert "Connection refused" in result.stderr
    assert "Done." not in result.stdout


def test_a_second_run_waits_for_the_first(warehouse: Warehouse, served: ServerProcess) -> None:
    catalog_with_usage(warehouse)
    first = served.rating.command("--as-of", AS_OF, "--no-tests")
    first_child = served.rating_child()
    os.kill(first_child, signal.SIGSTOP)  # holds the first run until the second has arrived
    try:
        second = served.rating.command("--as-of", AS_OF, "--no-tests")
        assert second.stderr is not None
        assert HANDED_OVER in second.stderr.readline()
        assert "waiting for 1 run(s) before this one" in second.stderr.readline()
    finally:
        os.kill(first_child, signal.SIGCONT)
    first_stdout, first_stderr = first.communicate(timeout=RUN_TIMEOUT_S)
    second_stdout, second_stderr = second.communicate(timeout=RUN_TIMEOUT_S)
    assert first.returncode == 0, first_stderr
    assert second.returncode == 0, second_stderr
    assert "waiting" not in first_stderr
    assert "Done." in first_stdout and "Done." in second_stdout


def test_a_model_edited_while_the_server_runs_is_rated_as_edited(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    rating = Rating.at(tmp_path, warehouse.env, MH_DBT_PROJECT_DIR=str(project))
    server = ServerProcess(rating, tmp_path / "server.log")
    try:
        assert rating.run("--as-of", AS_OF, "--no-tests").returncode == 0
        before = view_comment(warehouse, "fct_fee_events")
        assert rating.run("--as-of", AS_OF, "--no-tests").returncode == 0
        assert view_comment(warehouse, "fct_fee_events") == before  # nothing changed: kept
        model = project / "models" / "marts" / "fct_fee_events.sql"
        model.write_text(model.read_text().replace("with fee as", "-- edited\nwith fee as", 1))
        edited = rating.run("--as-of", AS_OF, "--no-tests")
        assert HANDED_OVER in edited.stderr
        assert edited.returncode == 0, edited.stderr
        # The view's comment fingerprints its SQL as compiled by this run: the edited one.
        assert view_comment(warehouse, "fct_fee_events") != before
    finally:
        server.stop()


def view_comment(warehouse: Warehouse, name: str) -> str:
    return str(
        warehouse.client().command(
            "SELECT comment FROM system.tables "
            "WHERE database = currentDatabase() AND name = {n:String}",
            parameters={"n": name},
        )
    )


def test_a_server_killed_mid_run_ends_its_client_with_an_error(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    catalog_with_usage(warehouse)
    server = ServerProcess(Rating.at(tmp_path, warehouse.env), tmp_path / "server.log")
    try:
        run = server.rating.command("--as-of", AS_OF, "--no-tests")
        child = server.rating_child()
        server.process.kill()
        _, stderr = run.communicate(timeout=60)  # no hang
    finally:
        server.stop()
    assert HANDED_OVER in stderr
    assert run.returncode == 2
    assert "stopped before the run ended" in stderr
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists():  # the run does not outlive its server
        assert time.monotonic() < deadline, "the run outlived its server"
        time.sleep(0.1)


def test_without_a_server_the_command_rates_in_its_own_process(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    catalog = catalog_with_usage(warehouse)
    rating = Rating.at(tmp_path, warehouse.env)
    # A socket left by a server that is gone: nothing listens on it.
    rating.home.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(rating.socket))
    result = rating.run("--as-of", AS_OF, "--no-tests")
    assert result.returncode == 0, result.stderr
    assert HANDED_OVER not in result.stderr
    assert fees_of(warehouse.client(), catalog.organization_id)


def test_a_second_server_on_the_same_home_is_refused(served: ServerProcess) -> None:
    second = subprocess.run(
        meterhouse_command("rate", "serve"),
        env=served.rating.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1
    assert "already listens" in second.stderr
    assert answers(served.rating.socket)  # the first one still serves
