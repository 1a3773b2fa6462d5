"""Outgoing webhooks: Lago's shape, JWT or HMAC signature, retries with backoff, a delivery log,
and no second delivery on re-runs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from uuid import uuid4

import jwt
import pytest
from clickhouse_connect.driver.client import Client
from dagster import DagsterInstance, materialize

from orchestration.invoices.assets import invoice_webhooks, invoices, invoicing_run_config
from orchestration.webhooks import (
    Notification,
    WebhookSender,
    configured_rsa_private_key,
    load_rsa_private_key,
    new_rsa_private_key,
    organization_key,
    public_key_pem,
    signature,
)
from tests.conftest import Warehouse
from tests.invoicing.catalog import T0, Catalog, fresh_database, insert, warehouse_resource
from tests.invoicing.stripe_support import WebhookCatcher, webhook_catcher
from warehouse.settings import Settings

SECRET = "webhook-signing-secret"
DAY = date(2024, 4, 1)


@pytest.fixture
def catcher() -> Iterator[WebhookCatcher]:
    with webhook_catcher() as caught:
        yield caught


def add_endpoint(
    catalog: Catalog, url: str, event_types: list[str] | None = None, signature_algo: str = "hmac"
) -> None:
    insert(catalog.client, "webhook_endpoints", {
        "organization_id": catalog.organization_id, "id": uuid4(), "webhook_url": url,
        "signature_algo": signature_algo, "event_types": event_types or [], "created_at": T0,
        "updated_at": T0, "version": 1,
    })  # fmt: skip


def organization_with_endpoint(
    warehouse: Warehouse, url: str, signature_algo: str
) -> tuple[Client, Catalog]:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    add_endpoint(catalog, url, signature_algo=signature_algo)
    return client, catalog


def deliveries(client: Client) -> list[tuple[str, int, str]]:
    return [
        (row[0], row[1], row[2])
        for row in client.query(
            "SELECT webhook_type, attempt, status FROM webhook_deliveries ORDER BY created_at"
        ).result_rows
    ]


def test_signed_retried_logged_and_sent_once(warehouse: Warehouse, catcher: WebhookCatcher) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    add_endpoint(catalog, catcher.url)
    add_endpoint(catalog, catcher.url + "/other", ["credit_note.created"])  # not interested
    catcher.statuses = [500]
    sleeps: list[float] = []
    sender = WebhookSender(client, signing_secret=SECRET, attempts=3, sleep=sleeps.append)
    note = Notification(catalog.organization_id, "invoice.created", "invoice", uuid4(), {"a": 1})
    assert sender.send([note]) == {"succeeded": 1, "failed": 0, "skipped": 0}
    assert sleeps == [0.5]
    assert deliveries(client) == [
        ("invoice.created", 1, "failed"),
        ("invoice.created", 2, "succeeded"),
    ]
    body = catcher.received[-1][0]
    assert json.loads(body) == {
        "webhook_type": "invoice.created",
        "object_type": "invoice",
        "invoice": {"a": 1},
    }
    key = organization_key(SECRET, catalog.organization_id)
    expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
    assert catcher.headers[-1]["X-Lago-Signature"] == expected
    assert sender.send([note]) == {"succeeded": 0, "failed": 0, "skipped": 1}
    assert len(catcher.received) == 2


def test_jwt_endpoints_get_lagos_rs256_jwt_of_the_body(
    warehouse: Warehouse, catcher: WebhookCatcher
) -> None:
    client, catalog = organization_with_endpoint(warehouse, catcher.url, "jwt")
    add_endpoint(catalog, catcher.url + "/hmac")
    catcher.statuses = [500]
    key = load_rsa_private_key(new_rsa_private_key())
    sender = WebhookSender(
        client, signing_secret=SECRET, rsa_private_key=key, jwt_issuer="https://billing.test",
        sleep=lambda _: None,
    )  # fmt: skip
    note = Notification(catalog.organization_id, "invoice.created", "invoice", uuid4(), {"a": 1})
    assert sender.send([note]) == {"succeeded": 2, "failed": 0, "skipped": 0}
    by_algorithm = {
        headers["X-Lago-Signature-Algorithm"]: (body, headers)
        for (body, _), headers in zip(catcher.received, catcher.headers, strict=True)
    }
    body, headers = by_algorithm["jwt"]
    # As Lago's documentation verifies it: the public key, RS256, the issuer; the body in `data`.
    claims = jwt.decode(
        headers["X-Lago-Signature"], public_key_pem(key), algorithms=["RS256"],
        issuer="https://billing.test",
    )  # fmt: skip
    assert claims["data"] == body.decode()
    other_key = load_rsa_private_key(new_rsa_private_key())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(headers["X-Lago-Signature"], public_key_pem(other_key), algorithms=["RS256"])
    hmac_body, hmac_headers = by_algorithm["hmac"]
    expected = signature(organization_key(SECRET, catalog.organization_id), hmac_body)
    assert hmac_headers["X-Lago-Signature"] == expected
    # A failed attempt and its retry carry the same unique key; each endpoint its own.
    unique_keys = [headers["X-Lago-Unique-Key"] for headers in catcher.headers]
    assert len(unique_keys) == 3 and len(set(unique_keys)) == 2


def test_a_key_that_is_not_an_rsa_private_key_names_its_setting() -> None:
    for wrong in ("not base64 at all!", base64.b64encode(b"-----BEGIN NOTHING-----").decode()):
        with pytest.raises(ValueError, match="MH_WEBHOOK_RSA_PRIVATE_KEY is not an RSA"):
            configured_rsa_private_key(Settings(_env_file=None, webhook_rsa_private_key=wrong))


def test_without_the_algorithms_key_a_webhook_goes_unsigned(
    warehouse: Warehouse, catcher: WebhookCatcher
) -> None:
    client, catalog = organization_with_endpoint(warehouse, catcher.url, "jwt")
    sender = WebhookSender(client, signing_secret=SECRET, sleep=lambda _: None)
    note = Notification(catalog.organization_id, "invoice.created", "invoice", uuid4(), {})
    assert sender.send([note])["succeeded"] == 1
    assert "X-Lago-Signature" not in catcher.headers[-1]


def test_unreachable_endpoint_is_logged_as_failed(warehouse: Warehouse) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization(webhook_url="http://127.0.0.1:9/unreachable")
    sender = WebhookSender(client, signing_secret=None, attempts=2, sleep=lambda _: None)
    note = Notification(catalog.organization_id, "invoice.created", "invoice", uuid4(), {})
    assert sender.send([note])["failed"] == 1
    assert [status for _, _, status in deliveries(client)] == ["failed", "failed"]


def test_invoice_partition_sends_created_and_finalized(
    warehouse: Warehouse, catcher: WebhookCatcher
) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    add_endpoint(catalog, catcher.url)
    catalog.fee(catalog.customer("acme"), 1_000, DAY)
    resources = {"warehouse": warehouse_resource(warehouse, client)}
    for _ in range(2):  # the re-run sends nothing new
        assert materialize(
            [invoices, invoice_webhooks],
            partition_key=DAY.isoformat(),
            resources=resources,
            instance=DagsterInstance.ephemeral(),
            run_config=invoicing_run_config(datetime(2024, 4, 1, 6, tzinfo=UTC).isoformat()),
        ).success
    types = sorted(json.loads(body)["webhook_type"] for body, _ in catcher.received)
    assert types == ["invoice.created", "invoice.finalized"]
    payload = json.loads(catcher.received[0][0])["invoice"]
    assert payload["total_amount_cents"] == 1_000 and payload["fees"][0]["amount_cents"] == 1_000
