"""``meterhouse ingest``: run the ingest API."""

from __future__ import annotations

from typing import Annotated

import typer

from meterhouse.serving import serve_app
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
    serve_app(
        "ingestion.main:create_server",
        settings,
        host=host or settings.ingest_host,
        port=port or settings.ingest_port,
        workers=workers or settings.ingest_workers,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )
