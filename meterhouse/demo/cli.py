"""``meterhouse demo``: generate the demo files, and load them through the public APIs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from meterhouse.demo.generator import DemoSize, generate
from meterhouse.demo.loader import DemoLoadError, load_demo
from warehouse.settings import get_settings

app = typer.Typer(help="Demo data: a deterministic organization with a few months of usage.")


def today_utc() -> date:
    return datetime.now(UTC).date()


@app.command("generate")
def generate_command(
    output: Annotated[Path, typer.Option(help="Directory to write.")] = Path(".meterhouse/demo"),
    customers: Annotated[int | None, typer.Option(min=1, help="Customers.")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Days of usage.")] = None,
    events_per_day: Annotated[int | None, typer.Option(min=0, help="Events per day.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    end_date: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Day after the last day of usage (UTC today)."),
    ] = None,
) -> None:
    """Write catalog.json, manifest.json and gzip NDJSON event files: same inputs, same bytes."""
    settings = get_settings()
    size = DemoSize(
        customers=customers or settings.demo_customers,
        days=days or settings.demo_days,
        events_per_day=settings.demo_events_per_day if events_per_day is None else events_per_day,
        seed=settings.demo_seed if seed is None else seed,
        end_day=end_date.date() if end_date else today_utc(),
    )
    manifest = generate(size, output)
    typer.echo(
        f"wrote {manifest['events']:,} events in {len(manifest['event_files'])} files and a "
        f"catalog of {size.customers} customers to {output} "
        f"({manifest['first_day']} to {manifest['end_day']}, seed {size.seed})"
    )


@app.command("load")
def load_command(
    api_key: Annotated[
        str | None, typer.Option(help="API key (default: MH_BOOTSTRAP_API_KEY, local.env).")
    ] = None,
    directory: Annotated[Path, typer.Option(help="Generated demo.")] = Path(".meterhouse/demo"),
    api_url: Annotated[str | None, typer.Option(help="Billing API base URL.")] = None,
    ingest_url: Annotated[str | None, typer.Option(help="Ingest API base URL.")] = None,
) -> None:
    """Send a generated demo through the billing API (catalog) and the ingest API (events)."""
    settings = get_settings()
    key = api_key or (settings.bootstrap_api_key and settings.bootstrap_api_key.get_secret_value())
    if not key:
        raise typer.BadParameter("no API key: pass --api-key", param_hint="--api-key")
    try:
        report = load_demo(
            directory,
            api_url=api_url or f"http://127.0.0.1:{settings.billing_api_port}",
            ingest_url=ingest_url or f"http://{settings.ingest_host}:{settings.ingest_port}",
            api_key=key,
        )
    except DemoLoadError as exc:
        typer.echo(f"demo load failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    for resource, count in report.loaded.items():
        typer.echo(f"loaded {count} {resource}")
    typer.echo(f"catalog loaded in {report.catalog_seconds:.1f} s")
    if report.skipped:
        typer.echo(f"not served by the billing API yet: {', '.join(report.skipped)}")
    rate = report.events / report.events_seconds if report.events_seconds else 0.0
    typer.echo(f"sent {report.events:,} events in {report.events_seconds:.1f} s ({rate:,.0f}/s)")
