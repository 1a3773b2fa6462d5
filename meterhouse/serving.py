"""Startup shared by the API processes (``meterhouse api serve``, ``meterhouse ingest serve``)."""

from __future__ import annotations

import contextlib
from typing import Any

import typer
import uvicorn
from clickhouse_connect.driver.exceptions import OperationalError

from meterhouse.orgs import ensure_default_organization
from warehouse.client import get_client
from warehouse.settings import Settings

# uvicorn kills a worker process that has not answered its supervisor within this time. Its
# default (5 s) is shorter than a worker's start (imports, then the app's startup) on a busy
# 2-core machine: the workers were killed and restarted in a loop for minutes.
WORKER_HEALTHCHECK_TIMEOUT_S = 60


def serve_app(
    app_factory: str,
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    **uvicorn_options: Any,
) -> None:
    """Create the default organization when a bootstrap key is set, then serve the app that
    ``app_factory`` (``"module:function"``) builds with uvicorn.

    A warehouse that does not answer yet does not stop the services (they answer 503 until it
    does), but one without their database does: that takes `meterhouse warehouse migrate`, and
    the command says so (meterhouse/cli.py) rather than every request failing."""
    if settings.bootstrap_api_key is not None:
        # Once, before the workers start, so they do not race to create it.
        created = ensure_default_organization(get_client(settings), settings)
        if created is not None:
            typer.echo(f"created organization {created.organization_id} (default)", err=True)
    else:
        with contextlib.suppress(OperationalError):
            get_client(settings).close()  # connecting selects the database
    uvicorn.run(
        app_factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
        **uvicorn_options,
    )
