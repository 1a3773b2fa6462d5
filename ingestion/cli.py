"""``meterhouse ingest``: run the ingest API."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from meterhouse.orgs import ensure_default_organization
from warehouse.client import get_client
from warehouse.settings import get_settings

app = typer.Typer(help="Event ingestion API.", no_args_is_help=True)


@app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default from settings).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MH_INGEST_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default MH_INGEST_WORKERS).")
    ] = None,
) -> None:
    """Serve the Lago-compatible, CloudEvents and bulk ingest endpoints."""
    settings = get_settings()
    if settings.bootstrap_api_key is not None:
        # Once, before the workers start, so they do not race to create it.
        created = ensure_default_organization(get_client(settings), settings)
        if created is not None:
            typer.echo(f"created organization {created.organization_id} (default)", err=True)
    uvicorn.run(
        "ingestion.main:create_app",
        factory=True,
        host=host or settings.ingest_host,
        port=port or settings.ingest_port,
        workers=workers or settings.ingest_workers,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )
