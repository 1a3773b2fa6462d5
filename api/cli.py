"""``meterhouse api ...``: the billing API process."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

app = typer.Typer(help="Billing API (Lago-compatible).", no_args_is_help=True)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the billing API (OpenAPI docs at /docs)."""
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )
