"""Rating: run the dbt project (dbt_project/) that turns events and the catalog into fees.

``meterhouse rate run`` builds the rating lineage (staging, billing periods, rated usage,
``fct_fees``) and its data tests with ``dbt build``, showing dbt's progress node by node. dbt
reads its profile from the environment, which this module derives from the one settings object,
so dbt always talks to the warehouse every other process uses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from warehouse.settings import Settings, get_settings

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
# fct_fees and everything it needs, the current-usage and fee-estimate views the billing API
# reads, the view that lists the events of a fee, and the views invoicing rates on read (open
# periods with usage thresholds, new pay-in-advance events).
RATING_SELECTOR = (
    "+fct_fees",
    "+fct_current_usage",
    "+fct_estimated_fees",
    "fct_fee_events",
    "+fct_open_period_fees",
    "+fct_pay_in_advance_fees_since",
)
# The revenue marts (dashboards, analysts) over the rated fees and the invoicing records, and the
# exchange rates the dashboards convert with. Their rating parents are left as they are.
ANALYTICS_SELECTOR = ("path:seeds/analytics", "path:models/marts/analytics")

# dbt's per-node log lines: "12 of 30 START sql table model db.fct_fees ..." / "... OK created ..."
_NODE_LINE = re.compile(r"\b(\d+) of (\d+) (START|OK|ERROR|FAIL|PASS|WARN|SKIP)\b\s*(.*)")


def dbt_executable() -> str:
    """The dbt of this environment (next to the running Python), else the one on PATH."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def dbt_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that dbt_project/profiles.yml reads, from the settings."""
    return {
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

    def dbt_args(self) -> list[str]:
        args = ["build", "--select", *self.select]
        if not self.run_tests:
            args += ["--resource-type", "model", "--resource-type", "seed"]
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


def stream_dbt(args: Sequence[str], settings: Settings) -> Generator[str, None, int]:
    """Run dbt with ``args`` in the project directory and yield its output line by line; the
    generator's return value (StopIteration.value) is dbt's exit code."""
    command = [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR)]
    environment = {**os.environ, **dbt_environment(settings)}
    with subprocess.Popen(
        command,
        cwd=DBT_PROJECT_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            yield line.rstrip("\n")
        return process.wait()


def run_dbt(
    args: Sequence[str], settings: Settings, *, progress: Progress | None = None
) -> DbtResult:
    """Run dbt to completion, advancing ``progress`` (if given) as nodes finish."""
    result = DbtResult(returncode=1)
    task = progress.add_task("dbt", total=None) if progress else None
    lines = stream_dbt(args, settings)
    while True:
        try:
            line = next(lines)
        except StopIteration as done:
            result.returncode = int(done.value)
            return result
        result.output.append(line)
        event = parse_node_line(line)
        if progress is None or task is None or event is None:
            continue
        if event.status == "START":
            progress.update(task, total=event.total, description=event.description[:60])
        else:
            progress.update(task, completed=event.index, total=event.total)


def rate(request: RatingRequest, settings: Settings, *, show_progress: bool = True) -> DbtResult:
    """Build the rating lineage for ``request``; dbt's output is kept in the result."""
    if not show_progress:
        return run_dbt(request.dbt_args(), settings)
    columns = (
        TextColumn("[bold]{task.description:<60}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        return run_dbt(request.dbt_args(), settings, progress=progress)


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
    request = RatingRequest(as_of=as_of, select=ANALYTICS_SELECTOR, run_tests=tests)
    _run_or_exit(request, progress)
