"""Organizations and API keys: hashed storage, cached lookup, bootstrap key, CLI."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client
from pydantic import SecretStr

from meterhouse.orgs import (
    ApiKeyCache,
    create_api_key,
    create_organization,
    ensure_default_organization,
    hash_api_key,
    organization_for_api_key,
)
from tests.conftest import Warehouse
from tests.support.processes import meterhouse_command
from warehouse.migrate import migrate


def test_keys_are_stored_hashed_and_map_to_their_organization(admin_client: Client) -> None:
    organization, api_key = create_organization(
        admin_client, "acme", default_currency="EUR", timezone="Europe/Paris", tax_codes=["vat"]
    )
    second_key = create_api_key(admin_client, organization.organization_id, "ci")
    stored = admin_client.query(
        "SELECT key_hash, key_prefix FROM api_keys FINAL WHERE organization_id = {org:UUID}",
        parameters={"org": organization.organization_id},
    ).result_rows
    assert {row[0] for row in stored} == {hash_api_key(api_key), hash_api_key(second_key)}
    assert all(api_key not in row and second_key not in row for row in stored)
    cache = ApiKeyCache(ttl_s=60)
    found = organization_for_api_key(admin_client, second_key, cache=cache)
    assert found is not None
    assert found.organization_id == organization.organization_id
    assert (found.default_currency, found.timezone, found.tax_codes) == (
        "EUR", "Europe/Paris", ("vat",),
    )  # fmt: skip
    assert organization_for_api_key(admin_client, "mh_unknown", cache=cache) is None


def test_lookups_are_cached(admin_client: Client, warehouse: Warehouse) -> None:
    organization, api_key = create_organization(admin_client, "cached")
    cache = ApiKeyCache(ttl_s=60)
    assert organization_for_api_key(admin_client, api_key, cache=cache) == organization
    # A client that cannot reach anything: only the cache can answer now.
    unreachable = warehouse.client()
    unreachable.close()
    broken = type(unreachable).__new__(type(unreachable))
    assert organization_for_api_key(broken, api_key, cache=cache) == organization


def test_unknown_organization_settings_are_refused(admin_client: Client) -> None:
    with pytest.raises(ValueError, match="unknown organization settings"):
        create_organization(admin_client, "bad", currency="EUR")


@pytest.fixture
def empty_database(warehouse: Warehouse) -> Iterator[Client]:
    name = f"mh_orgs_{uuid.uuid4().hex[:8]}"
    migrate(warehouse.client(database=""), name)
    yield warehouse.client(database=name)
    warehouse.client(database="").command(f"DROP DATABASE IF EXISTS `{name}`")


def test_bootstrap_key_creates_the_default_organization_once(
    empty_database: Client, warehouse: Warehouse
) -> None:
    settings = warehouse.settings().model_copy(
        update={"bootstrap_api_key": SecretStr("mh_bootstrap_key")}
    )
    created = ensure_default_organization(empty_database, settings)
    assert created is not None and created.name == "default"
    assert ensure_default_organization(empty_database, settings) is None
    found = organization_for_api_key(empty_database, "mh_bootstrap_key", cache=ApiKeyCache())
    assert found is not None and found.organization_id == created.organization_id


def test_cli_creates_an_organization_and_prints_its_key(
    warehouse: Warehouse, admin_client: Client
) -> None:
    completed = subprocess.run(
        meterhouse_command("orgs", "create", "Cli Corp", "--currency", "gbp"),
        env={**os.environ, **warehouse.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    api_key = completed.stdout.strip()
    assert api_key.startswith("mh_")
    found = organization_for_api_key(admin_client, api_key, cache=ApiKeyCache())
    assert found is not None
    assert (found.name, found.default_currency) == ("Cli Corp", "GBP")
    assert str(found.organization_id) in completed.stderr


def test_cli_refuses_bad_settings_naming_each_and_stores_nothing(
    warehouse: Warehouse, admin_client: Client
) -> None:
    count = "SELECT count() FROM organizations"
    before = admin_client.command(count)
    refused = subprocess.run(
        meterhouse_command(
            "orgs", "create", " ", "--currency", "dollars", "--timezone", "Mars/Base",
            "--email", "nobody",
        ),
        env={**os.environ, **warehouse.env},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: NAME must not be empty",
        "error: --currency 'dollars' is not an ISO 4217 code",
        "error: --timezone 'Mars/Base' is not an IANA timezone",
        "error: --email 'nobody' is not an email address",
    ]
    assert admin_client.command(count) == before
