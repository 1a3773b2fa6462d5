"""``meterhouse orgs``: create organizations and API keys."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from api.reference import CURRENCIES, is_timezone
from api.schemas.customers import EMAIL
from meterhouse import orgs
from warehouse.client import get_client
from warehouse.settings import get_settings

app = typer.Typer(help="Organizations and their API keys.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Display name of the organization.")],
    currency: Annotated[str, typer.Option(help="Default currency (ISO 4217).")] = "USD",
    timezone: Annotated[str, typer.Option(help="IANA timezone used for billing periods.")] = "UTC",
    email: Annotated[str | None, typer.Option(help="Billing contact email.")] = None,
) -> None:
    """Create an organization and print its API key (shown only this once)."""
    problems = creation_problems(name, currency, timezone, email)
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        raise typer.Exit(2)
    organization, api_key = orgs.create_organization(
        get_client(get_settings()),
        name.strip(),
        default_currency=currency.upper(),
        timezone=timezone,
        email=email,
    )
    typer.echo(f"organization_id: {organization.organization_id}", err=True)
    typer.echo(api_key)


def creation_problems(name: str, currency: str, timezone: str, email: str | None) -> list[str]:
    """What is wrong with a new organization's settings, each naming its argument. Checked as
    the billing API checks them: a timezone the warehouse does not know would fail every rating
    run, not only this organization's."""
    problems = []
    if not name.strip():
        problems.append("NAME must not be empty")
    if currency.upper() not in CURRENCIES:
        problems.append(f"--currency {currency!r} is not an ISO 4217 code")
    if not is_timezone(timezone):
        problems.append(f"--timezone {timezone!r} is not an IANA timezone")
    if email is not None and not EMAIL.match(email):
        problems.append(f"--email {email!r} is not an email address")
    return problems


@app.command("create-key")
def create_key(
    organization_id: Annotated[uuid.UUID, typer.Argument(help="Organization that owns the key.")],
    name: Annotated[str, typer.Option(help="Label of the key.")] = "default",
) -> None:
    """Create another API key for an existing organization and print it."""
    client = get_client(get_settings())
    known = {org.organization_id for org in orgs.list_organizations(client)}
    if organization_id not in known:
        typer.echo(f"no organization {organization_id}", err=True)
        raise typer.Exit(1)
    typer.echo(orgs.create_api_key(client, organization_id, name))


@app.command("list")
def list_organizations() -> None:
    """List organizations: id, name, default currency."""
    for org in orgs.list_organizations(get_client(get_settings())):
        typer.echo(f"{org.organization_id}\t{org.name}\t{org.default_currency}")
