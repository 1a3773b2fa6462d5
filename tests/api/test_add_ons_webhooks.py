from __future__ import annotations

import base64

import httpx
import jwt
import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import AddOn, Tax, WebhookEndpoint

from orchestration.webhooks import jwt_signature, load_rsa_private_key
from tests.api.conftest import WEBHOOK_RSA_PRIVATE_KEY, Tenant


def test_add_on_lifecycle(tenant: Tenant) -> None:
    tenant.lago.taxes.create(Tax(name="VAT", code="vat", rate=20.0))
    created = tenant.lago.add_ons.create(
        AddOn(
            name="Setup",
            code="setup",
            amount_cents=50_000,
            amount_currency="EUR",
            tax_codes=["vat"],
        )
    )
    assert (created.code, created.amount_cents, created.taxes.__root__[0].code) == (
        "setup",
        50_000,
        "vat",
    )
    updated = tenant.lago.add_ons.update(AddOn(amount_cents=40_000), "setup")
    assert (updated.amount_cents, updated.name) == (40_000, "Setup")
    assert tenant.lago.add_ons.find("setup").amount_cents == 40_000
    assert [a.code for a in tenant.lago.add_ons.find_all()["add_ons"]] == ["setup"]
    with pytest.raises(LagoApiError) as duplicate:
        tenant.lago.add_ons.create(
            AddOn(name="S", code="setup", amount_cents=1, amount_currency="EUR")
        )
    assert duplicate.value.response["error_details"] == {"code": ["value_already_exist"]}
    with pytest.raises(LagoApiError) as invalid:
        tenant.lago.add_ons.create(AddOn(code="x", amount_currency="EURO"))
    assert invalid.value.response["error_details"] == {
        "name": ["value_is_mandatory"],
        "amount_cents": ["value_is_mandatory"],
        "amount_currency": ["value_is_invalid"],
    }
    tenant.lago.add_ons.destroy("setup")
    assert tenant.lago.add_ons.find_all()["add_ons"] == []


def test_add_on_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.add_ons.create(
        AddOn(name="Setup", code="mine", amount_cents=1, amount_currency="EUR")
    )
    for call in (
        lambda: other_tenant.lago.add_ons.find("mine"),
        lambda: other_tenant.lago.add_ons.update(AddOn(amount_cents=2), "mine"),
        lambda: other_tenant.lago.add_ons.destroy("mine"),
    ):
        with pytest.raises(LagoApiError) as hidden:
            call()
        assert hidden.value.status_code == 404
    assert other_tenant.lago.add_ons.find_all()["add_ons"] == []


def test_webhook_endpoint_lifecycle_and_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    created = tenant.lago.webhook_endpoints.create(
        WebhookEndpoint(
            webhook_url="https://hooks.test/a",
            signature_algo="hmac",
            event_types=["invoice.created"],
        )
    )
    assert (created.signature_algo, created.event_types) == ("hmac", ["invoice.created"])
    assert created.lago_organization_id == tenant.organization_id
    updated = tenant.lago.webhook_endpoints.update(
        WebhookEndpoint(webhook_url="https://hooks.test/b"), created.lago_id
    )
    assert updated.webhook_url == "https://hooks.test/b"
    with pytest.raises(LagoApiError) as invalid:
        tenant.lago.webhook_endpoints.create(WebhookEndpoint(webhook_url="not a url"))
    assert invalid.value.response["error_details"] == {"webhook_url": ["url_is_invalid"]}
    with pytest.raises(LagoApiError) as duplicate:
        tenant.lago.webhook_endpoints.create(WebhookEndpoint(webhook_url="https://hooks.test/b"))
    assert duplicate.value.response["error_details"] == {"webhook_url": ["value_already_exist"]}
    for call in (
        lambda: other_tenant.lago.webhook_endpoints.find(created.lago_id),
        lambda: other_tenant.lago.webhook_endpoints.update(
            WebhookEndpoint(name="x"), created.lago_id
        ),
        lambda: other_tenant.lago.webhook_endpoints.destroy(created.lago_id),
    ):
        with pytest.raises(LagoApiError) as hidden:
            call()
        assert hidden.value.status_code == 404
    assert other_tenant.lago.webhook_endpoints.find_all()["webhook_endpoints"] == []
    assert tenant.lago.webhook_endpoints.destroy(created.lago_id).lago_id == created.lago_id
    assert tenant.lago.webhook_endpoints.find_all()["webhook_endpoints"] == []


def test_webhook_signatures_verify_with_the_public_key_the_client_fetches(
    tenant: Tenant, api_url: str
) -> None:
    # A jwt endpoint is Lago's default.
    created = tenant.lago.webhook_endpoints.create(WebhookEndpoint(webhook_url="https://h.test"))
    assert created.signature_algo == "jwt"
    public_key = tenant.lago.webhooks.public_key()  # the PEM, as a receiver fetches it
    body = b'{"webhook_type": "invoice.created", "object_type": "invoice", "invoice": {}}'
    signed = jwt_signature(load_rsa_private_key(WEBHOOK_RSA_PRIVATE_KEY), "meterhouse", body)
    claims = jwt.decode(signed, public_key, algorithms=["RS256"], issuer="meterhouse")
    assert claims["data"] == body.decode()
    plain = httpx.get(
        f"{api_url}/api/v1/webhooks/public_key",
        headers={"Authorization": f"Bearer {tenant.api_key}"},
    )
    assert plain.status_code == 200, plain.text
    assert base64.b64decode(plain.text) == public_key
    assert httpx.get(f"{api_url}/api/v1/webhooks/json_public_key").status_code == 401
