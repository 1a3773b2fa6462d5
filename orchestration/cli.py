"""``meterhouse bill`` (invoice partitions through the Dagster job) and
``meterhouse orchestration serve`` (the Dagster UI and daemon)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from meterhouse.rating import require_rating_run
from orchestration.home import dagster_home
from warehouse.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST_BILLING_DAY = date(2020, 1, 1)  # the first invoice partition
MAX_DAYS_PER_COMMAND = 3660
DAYS_PER_RUN = 31  # as the assets' backfill policy: one Dagster run per month of billing days
# --pending: days this close share a run. Each day of a run costs Dagster a few events per asset
# (planned, materialized) even with nothing to bill; a run costs about as much as ten such days.
MAX_EMPTY_DAYS_IN_RUN = 7
DEV_SUPERSEDED_FILTER = "ignore:Function `dev_command` is superseded"

app = typer.Typer(help="The Dagster code location: rating and invoicing.", no_args_is_help=True)
bill_app = typer.Typer(help="Materialize invoice partitions (billing days) with the invoicing job.")


def billing_days(day: date | None, first: date | None, last: date | None) -> list[date]:
    if day is not None and (first or last):
        raise typer.BadParameter("give either --date or --from/--to, not both")
    if day is not None:
        first = last = day
    if first is None or last is None:
        raise typer.BadParameter("give --date D, or --from D1 --to D2")
    if last < first:
        raise typer.BadParameter("--to is before --from")
    latest = datetime.now(UTC).date() + timedelta(days=1)
    if first < FIRST_BILLING_DAY or last > latest:
        raise typer.BadParameter(f"billing days run from {FIRST_BILLING_DAY} to {latest}")
    if (last - first).days >= MAX_DAYS_PER_COMMAND:
        raise typer.BadParameter(f"at most {MAX_DAYS_PER_COMMAND} days per command")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def pending_runs() -> list[list[date]]:
    """The days the late_billing_days sensor would request now (fees no invoice holds, drafts
    due), grouped into runs over ranges of days: billing them leaves the sensor nothing to do."""
    from orchestration.invoices.jobs import pending_billing_days
    from orchestration.resources import WarehouseResource

    found = [day for day, _ in pending_billing_days(WarehouseResource(), datetime.now(UTC).date())]
    runs: list[list[date]] = []
    for day in found:
        if runs and (day - runs[-1][-1]).days <= MAX_EMPTY_DAYS_IN_RUN + 1:
            runs[-1] += billing_days(None, runs[-1][-1] + timedelta(days=1), day)
        else:
            runs.append([day])
    return runs


def _materialization_metadata(result: Any) -> dict[str, int]:
    """The counts the invoice assets reported for the run.

    A run over a range of partitions records the same metadata once per partition: count each
    asset once.
    """
    totals: dict[str, int] = {}
    seen = set()
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key in seen:
            continue
        seen.add(materialization.asset_key)
        for key, value in materialization.metadata.items():
            if isinstance(getattr(value, "value", None), int):
                totals[key] = totals.get(key, 0) + value.value
    return totals


@bill_app.callback(invoke_without_command=True)
def bill(
    day: Annotated[
        datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="One billing day")
    ] = None,
    first: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First billing day")
    ] = None,
    last: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last billing day")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Instant deciding which grace periods are over (ISO)")
    ] = None,
    pending: Annotated[
        bool,
        typer.Option(
            "--pending",
            help="Every day the late_billing_days sensor would request now, in runs over their "
            "ranges",
        ),
    ] = False,
) -> None:
    """Invoice billing days: same job and partitions as the schedule, recorded in Dagster."""
    if pending and (day or first or last):
        raise typer.BadParameter("--pending takes no --date, --from or --to")
    days = [] if pending else billing_days(
        day.date() if day else None,
        first.date() if first else None,
        last.date() if last else None,
    )  # fmt: skip
    require_rating_run(get_settings(), "invoices bill the rated fees")
    if pending:
        runs = pending_runs()
        if not runs:
            typer.echo("no billing day pending", err=True)
            return
    else:
        runs = [days[start : start + DAYS_PER_RUN] for start in range(0, len(days), DAYS_PER_RUN)]
    os.environ["DAGSTER_HOME"] = str(dagster_home(get_settings()))
    from dagster import DagsterInstance

    from orchestration.invoices.assets import invoicing_run_config
    from orchestration.invoices.jobs import invoicing_definitions

    job = invoicing_definitions().resolve_job_def("invoicing")
    run_config = invoicing_run_config(as_of)
    console = Console(stderr=True)
    failed = []
    with DagsterInstance.get() as instance, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    ) as progress:  # fmt: skip
        task = progress.add_task("billing", total=sum(len(chunk) for chunk in runs))
        for chunk in runs:
            span = f"{chunk[0]}..{chunk[-1]}" if len(chunk) > 1 else str(chunk[0])
            progress.update(task, description=f"billing {span}")
            result = job.execute_in_process(
                instance=instance,
                run_config=run_config,
                tags={
                    "dagster/asset_partition_range_start": chunk[0].isoformat(),
                    "dagster/asset_partition_range_end": chunk[-1].isoformat(),
                },
                raise_on_error=False,
            )
            counts = _materialization_metadata(result)
            status = "ok" if result.success else "FAILED"
            progress.console.print(
                f"{span} {status}: {counts.get('fees', 0)} fees, "
                f"{counts.get('finalized', 0)} finalized, {counts.get('drafts', 0)} drafts, "
                f"{counts.get('pushed', 0)} pushed, {counts.get('failed', 0)} push failures "
                f"(run {result.run_id})",
                soft_wrap=True,
            )
            if not result.success:
                failed.append(span)
            progress.advance(task, len(chunk))
    if failed:
        console.print(f"failed billing days: {', '.join(failed)}")
        raise typer.Exit(1)


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port of the Dagster UI")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """The Dagster UI with its daemon (schedules, sensors) over this code location."""
    settings = get_settings()
    # `dagster dev` warns on every start that `dg dev` supersedes it; `dg` needs a project
    # layout of its own, and the command is the same.
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), DEV_SUPERSEDED_FILTER]))
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home(settings)), "PYTHONWARNINGS": warnings}
    dagster = str(Path(sys.executable).parent / "dagster")
    os.execve(
        dagster,
        [dagster, "dev", "-h", host, "-p", str(port or settings.dagster_port),
         "-m", "orchestration.definitions", "--working-directory", str(REPO_ROOT)],
        env,
    )  # fmt: skip
