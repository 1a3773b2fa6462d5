"""``meterhouse api ...``: the billing API process."""

from __future__ import annotations

from typing import Annotated

import typer

from api.services.subscriptions import apply_due_transitions
from api.storage.catalog import CatalogStore
from meterhouse.orgs import list_organizations
from meterhouse.serving import serve_app
from warehouse.client import get_client
from warehouse.settings import get_settings

app = typer.Typer(help="Billing API (Lago-compatible).", no_args_is_help=True)


@app.command()
def serve(
    port: Annotated[
        int | None, typer.Option(help="TCP port (default MH_BILLING_API_PORT).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(help="Worker processes (see README: uniqueness).")] = 1,
) -> None:
    """Serve the billing API (OpenAPI docs at /docs)."""
    settings = get_settings()
    serve_app(
        "api.main:create_app",
        settings,
        host=host,
        port=port or settings.billing_api_port,
        workers=workers,
        log_level="info",
    )


@app.command("apply-transitions")
def apply_transitions() -> None:
    """Write due subscription transitions (pending starts, downgrades, ending_at) for every
    organization; the API also applies them on each subscription request."""
    client = get_client(autogenerate_session_id=False)
    store = CatalogStore(client)
    organizations = list_organizations(client)
    for organization in organizations:
        apply_due_transitions(store, organization.organization_id)
    typer.echo(f"checked {len(organizations)} organizations")
