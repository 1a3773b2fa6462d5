"""Rating: run the dbt project (dbt_project/) that turns events and the catalog into fees.

``meterhouse rate run`` builds the rating lineage (staging, billing periods, rated usage,
``fct_fees``) and its data tests with ``dbt build``, showing dbt's progress node by node. dbt
reads its profile from the environment, which this module derives from the one settings object,
so dbt always talks to the warehouse every other process uses. dbt runs inside this process
(dbt's programmatic runner): an incremental run pays for one interpreter and, thanks to partial
parsing, for no parse of the project. When a rating server (``meterhouse rate serve``,
``meterhouse/rating_server.py``) rates for the same warehouse, project and dbt target, the run is
handed to it instead and skips dbt's imports and warm-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from warehouse.settings import Settings, get_settings

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt_common.events.base_types import EventMsg

# The dbt project that rates: the one beside this package, or another checkout of it
# (MH_DBT_PROJECT_DIR, e.g. a copy whose models are being edited).
DBT_PROJECT_DIR = Path(
    os.environ.get("MH_DBT_PROJECT_DIR") or Path(__file__).resolve().parent.parent / "dbt_project"
).resolve()
# fct_fees and everything it needs, the current-usage (arrears and pay-in-advance charges) and
# fee-estimate views the billing API reads (each whole and compiled for the catalog in use), the
# view that lists the events of a fee, and the views invoicing rates on read (open periods with
# usage thresholds, new pay-in-advance events).
RATING_SELECTOR = (
    "+fct_fees",
    "+fct_current_usage",
    "+fct_current_pay_in_advance_usage",
    "+fct_current_usage_in_use",
    "+fct_current_pay_in_advance_usage_in_use",
    "+fct_estimated_fees",
    "+fct_estimated_fees_in_use",
    "fct_fee_events",
    "+fct_open_period_fees",
    "+fct_pay_in_advance_fees_since",
)
# The revenue marts (dashboards, analysts) over the rated fees and the invoicing records, and the
# exchange rates the dashboards convert with. Their rating parents are left as they are.
ANALYTICS_SELECTOR = ("path:seeds/analytics", "path:models/marts/analytics")

# dbt's per-node log lines: "12 of 30 START sql table model db.fct_fees ..." / "... OK created ..."
_NODE_LINE = re.compile(r"\b(\d+) of (\d+) (START|OK|ERROR|FAIL|PASS|WARN|SKIP)\b\s*(.*)")


def dbt_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that dbt_project/profiles.yml reads, from the settings, and dbt's
    flags.

    dbt's static parser is off: it parses models on a thread pool (dbt_extractor's), which the
    rating server's warm-up would start and a run's forked process would not inherit, so a run
    that has to parse the project anew (its saved parse no longer applies) would wait on it
    forever. This project's full parse takes as long without it (7-9 s either way)."""
    return {
        "DBT_STATIC_PARSER": "false",
        "WAREHOUSE_URL": settings.warehouse_url,
        "MH_WAREHOUSE_USER": settings.warehouse_user,
        "MH_WAREHOUSE_PASSWORD": settings.effective_warehouse_password(),
        "MH_WAREHOUSE_DATABASE": settings.warehouse_database,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
    }


@dataclass(frozen=True)
class RatingRequest:
    """What to rate: fees billed within [rate_from, rate_to], as of an instant (default now)."""

    rate_from: date | None = None
    rate_to: date | None = None
    as_of: datetime | None = None
    full_refresh: bool = False
    select: tuple[str, ...] = RATING_SELECTOR
    run_tests: bool = True

    def dbt_vars(self) -> dict[str, str]:
        variables: dict[str, str] = {}
        if self.as_of is not None:
            variables["rating_as_of"] = self.as_of.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        if self.rate_from is not None and self.rate_to is not None:
            variables["rate_from"] = self.rate_from.isoformat()
            variables["rate_to"] = self.rate_to.isoformat()
        return variables

    def dbt_args(self, *, unit_tests: bool = True) -> list[str]:
        """dbt's arguments; ``unit_tests=False`` runs the data tests but not the unit tests."""
        args = ["build", "--select", *self.select]
        if not self.run_tests:
            args += ["--resource-type", "model", "--resource-type", "seed"]
        elif not unit_tests:
            args += ["--exclude-resource-type", "unit_test"]
        variables = self.dbt_vars()
        if variables:
            args += ["--vars", json.dumps(variables)]
        if self.full_refresh:
            args.append("--full-refresh")
        return args


@dataclass
class NodeEvent:
    index: int
    total: int
    status: str
    description: str


@dataclass
class DbtResult:
    returncode: int
    output: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output[-lines:])


def parse_node_line(line: str) -> NodeEvent | None:
    match = _NODE_LINE.search(line)
    if not match:
        return None
    index, total, status, description = match.groups()
    return NodeEvent(int(index), int(total), status, description.strip(" ."))


@contextmanager
def dbt_process_environment(settings: Settings) -> Iterator[None]:
    """dbt reads its profile and flags from the process environment and its relative paths
    (logs) from the working directory: set both for the run, then put them back."""
    saved = dict(os.environ)
    working_directory = Path.cwd()
    os.environ.update(dbt_environment(settings))
    os.chdir(DBT_PROJECT_DIR)
    try:
        yield
    finally:
        os.chdir(working_directory)
        os.environ.clear()
        os.environ.update(saved)


def invoke_dbt(args: Sequence[str], settings: Settings, on_line: Callable[[str], None]) -> int:
    """Run dbt in this process and pass each of its log lines (info and above) to ``on_line``;
    returns dbt's exit code (0 ok, 1 a node failed, 2 dbt itself failed).

    The project is parsed first without the run's variables, so dbt's partial parsing
    (target/partial_parse.msgpack) stays valid from one run to the next: variables given on the
    command line invalidate it whenever they change, and the rating instant changes every run.
    The variables only enter the SQL that the build compiles, never a config or a ref, so the
    build reuses that manifest and compiles its nodes with the run's variables."""

    # dbt takes seconds to import: only a run that calls it pays for that.
    from dbt.artifacts.schemas.run import RunExecutionResult
    from dbt.cli.main import dbtRunner
    from dbt.contracts.graph.manifest import Manifest

    def forward(message: EventMsg) -> None:
        text = str(getattr(message.info, "msg", ""))  # dbt's events have it; its Protocol not
        if message.info.level in ("info", "warn", "error") and text:
            on_line(text)

    project = [
        "--project-dir", str(DBT_PROJECT_DIR), "--log-level", "none", "--log-level-file", "debug"
    ]  # fmt: skip
    with dbt_process_environment(settings):
        # No manifest.json (nothing reads this target's, and writing it costs a second of CPU);
        # run_results.json, the record of what the run did, is written below.
        parsed = dbtRunner(callbacks=[forward]).invoke(["parse", "--no-write-json", *project])
        if not isinstance(parsed.result, Manifest):
            return _exit_code(parsed, on_line)
        runner = dbtRunner(manifest=parsed.result, callbacks=[forward])
        built = runner.invoke([*args, "--no-write-json", *project])
        if isinstance(built.result, RunExecutionResult):
            built.result.write(str(dbt_target_path() / "run_results.json"))
        return _exit_code(built, on_line)


def _exit_code(result: dbtRunnerResult, on_line: Callable[[str], None]) -> int:
    if result.success:
        return 0
    if result.exception is not None:
        on_line(f"dbt failed: {result.exception}")
        return 2
    return 1


def collect_output(result: DbtResult, progress: Progress | None = None) -> Callable[[str], None]:
    """A receiver of dbt's log lines that keeps them in ``result`` and advances ``progress``
    (if given) as nodes finish."""
    task = progress.add_task("dbt", total=None) if progress else None

    def on_line(line: str) -> None:
        result.output.append(line)
        event = parse_node_line(line)
        if progress is None or task is None or event is None:
            return
        if event.status == "START":
            progress.update(task, total=event.total, description=event.description[:60])
        else:
            progress.update(task, completed=event.index, total=event.total)

    return on_line


def dbt_target_path() -> Path:
    """dbt's target directory (DBT_TARGET_PATH, relative to the project, else its `target`)."""
    return DBT_PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target")


def unit_tests_fingerprint(request: RatingRequest, settings: Settings) -> str:
    """What decides the outcome of the dbt unit tests of a run: they price fixed rows with the
    project's SQL, so their result only changes with the project's files, the dbt, adapter and
    embedded engine versions, the warehouse they run in and the models selected."""
    digest = hashlib.sha256()
    for folder in ("models", "macros", "tests", "seeds"):
        for path in sorted((DBT_PROJECT_DIR / folder).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode())
                digest.update(path.read_bytes())
    digest.update((DBT_PROJECT_DIR / "dbt_project.yml").read_bytes())
    for package in ("dbt-core", "dbt-clickhouse", "chdb"):
        try:
            digest.update(f"{package}=={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(package.encode())
    digest.update(f"{settings.warehouse_url}/{settings.warehouse_database}".encode())
    digest.update(" ".join(request.select).encode())
    return digest.hexdigest()


def _unit_tests_record() -> Path:
    return dbt_target_path() / "unit_tests_passed"


def unit_tests_needed(request: RatingRequest, settings: Settings) -> bool:
    """Whether this run must run the unit tests: always with --full-refresh, otherwise unless a
    run of the same project, versions and warehouse already passed them. An incremental run
    still runs every data test (on what it rated, see fct_fees.yml); re-running unit tests whose
    inputs did not change costs seconds of every run and can only give the same answer."""
    if not request.run_tests:
        return False
    if request.full_refresh:
        return True
    record = _unit_tests_record()
    return not record.exists() or record.read_text() != unit_tests_fingerprint(request, settings)


def _record_unit_tests_passed(request: RatingRequest, settings: Settings) -> None:
    record = _unit_tests_record()
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(unit_tests_fingerprint(request, settings))


def rate_with_dbt(
    request: RatingRequest, settings: Settings, on_line: Callable[[str], None]
) -> int:
    """Rate ``request`` with dbt in this process (``meterhouse rate run`` without a server, or
    the server's child for one run); dbt's exit code."""
    unit_tests = unit_tests_needed(request, settings)
    code = invoke_dbt(request.dbt_args(unit_tests=unit_tests), settings, on_line)
    if code == 0 and unit_tests:
        _record_unit_tests_passed(request, settings)
    return code


@contextmanager
def progress_display(show: bool) -> Iterator[Progress | None]:
    """dbt's progress node by node on stderr, or None when not shown."""
    if not show:
        yield None
        return
    columns = (
        TextColumn("[bold]{task.description:<60}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield progress


def rate(request: RatingRequest, settings: Settings, *, show_progress: bool = True) -> DbtResult:
    """Build the rating lineage for ``request``; dbt's output is kept in the result. The run is
    handed to the rating server (``meterhouse rate serve``) when one rates for this warehouse,
    project and dbt target, else dbt runs in this process."""
    from meterhouse import rating_server  # the socket client; dbt is imported by a run only

    result = DbtResult(returncode=1)
    with progress_display(show_progress) as progress:
        on_line = collect_output(result, progress)
        server = rating_server.connect(settings)
        if server is not None:
            typer.echo(f"rating on the rating server (pid {server.pid}, {server.path})", err=True)
            result.returncode = server.rate(request, on_line)
        else:
            result.returncode = rate_with_dbt(request, settings, on_line)
    return result


app = typer.Typer(help="Rating: events and catalog to fees (dbt).", no_args_is_help=True)


@app.command("run")
def run_command(
    rate_from: Annotated[
        datetime | None,
        typer.Option("--from", help="First billing date to (re)rate.", formats=["%Y-%m-%d"]),
    ] = None,
    rate_to: Annotated[
        datetime | None,
        typer.Option("--to", help="Last billing date to (re)rate.", formats=["%Y-%m-%d"]),
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(help="Rate as of this UTC instant instead of now (ISO 8601)."),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild every fee from scratch.")
    ] = False,
    tests: Annotated[bool, typer.Option(help="Run the dbt data and unit tests too.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress display.")] = True,
) -> None:
    """Rate usage into fct_fees: new periods, late events, and the billing dates in --from..--to."""
    if (rate_from is None) != (rate_to is None):
        raise typer.BadParameter("--from and --to go together")
    if rate_from and rate_to and rate_from > rate_to:
        raise typer.BadParameter("--from must not be after --to")
    request = RatingRequest(
        rate_from=rate_from.date() if rate_from else None,
        rate_to=rate_to.date() if rate_to else None,
        as_of=as_of,
        full_refresh=full_refresh,
        run_tests=tests,
    )
    _run_or_exit(request, progress)


def _run_or_exit(request: RatingRequest, progress: bool) -> None:
    result = rate(request, get_settings(), show_progress=progress)
    if not result.ok:
        typer.echo(result.tail(), err=True)
        raise typer.Exit(result.returncode)
    typer.echo(next((line for line in reversed(result.output) if "Done." in line), "done"))


@app.command("analytics")
def analytics_command(
    as_of: Annotated[
        datetime | None,
        typer.Option(help="Compute as of this UTC instant instead of now (ISO 8601)."),
    ] = None,
    tests: Annotated[bool, typer.Option(help="Run the marts' dbt data tests too.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress display.")] = True,
) -> None:
    """Build the revenue marts (MRR, movements, invoices, revenue, usage) that the dashboards
    and analysts read, from the rated fees and the invoices: after `meterhouse bill`."""
    require_rating_run(get_settings(), "the revenue marts read the rated fees")
    request = RatingRequest(as_of=as_of, select=ANALYTICS_SELECTOR, run_tests=tests)
    _run_or_exit(request, progress)


def require_rating_run(settings: Settings, why: str) -> None:
    """Exit with a message naming `meterhouse rate run` unless a rating run has built fct_fees
    (and with it the views that read the catalog) in the configured database."""
    # Imported here: `rate run`, whose start is on every run's path, needs no client.
    from warehouse.client import get_client, has_table

    if not has_table(get_client(settings), "fct_fees"):
        typer.echo(
            f"error: no rating run yet in database {settings.warehouse_database}: {why}, "
            "run `meterhouse rate run` first",
            err=True,
        )
        raise typer.Exit(1)


@app.command("serve")
def serve_command() -> None:
    """Keep a rating process warm (dbt imported, the project parsed) on a unix socket under the
    Meterhouse home: `rate run` and `rate analytics` for the same warehouse hand their runs to
    it, one at a time, and start in a fraction of the time. `meterhouse up` starts it."""
    from meterhouse import rating_server

    try:
        rating_server.serve(get_settings())
    except rating_server.RatingServerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
