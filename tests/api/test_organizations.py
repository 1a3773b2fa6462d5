from __future__ import annotations

import httpx
import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import Organization, Tax
from lago_python_client.models.organization import OrganizationBillingConfiguration

from tests.api.conftest import Tenant


def test_update_and_read_settings(tenant: Tenant, other_tenant: Tenant, api_url: str) -> None:
    tenant.lago.taxes.create(Tax(name="VAT", code="vat", rate=20.0, applied_to_organization=True))
    updated = tenant.lago.organizations.update(
        Organization(
            default_currency="EUR",
            timezone="Europe/Paris",
            net_payment_term=30,
            document_numbering="per_organization",
            document_number_prefix="ACME",
            webhook_url="https://hooks.acme.test/lago",
            billing_configuration=OrganizationBillingConfiguration(invoice_grace_period=5),
        )
    )
    assert (updated.timezone, updated.net_payment_term, updated.document_numbering) == (
        "Europe/Paris",
        30,
        "per_organization",
    )
    assert updated.billing_configuration.invoice_grace_period == 5
    fetched = httpx.get(
        f"{api_url}/api/v1/organizations", headers={"Authorization": f"Bearer {tenant.api_key}"}
    ).json()["organization"]
    assert fetched["default_currency"] == "EUR" and fetched["webhook_url"].endswith("/lago")
    assert [t["code"] for t in fetched["taxes"]] == ["vat"]
    # The other organization's settings are untouched.
    theirs = httpx.get(
        f"{api_url}/api/v1/organizations",
        headers={"Authorization": f"Bearer {other_tenant.api_key}"},
    ).json()["organization"]
    assert (theirs["timezone"], theirs["net_payment_term"], theirs["taxes"]) == ("UTC", 0, [])


def test_invalid_settings_are_refused(tenant: Tenant) -> None:
    with pytest.raises(LagoApiError) as invalid:
        tenant.lago.organizations.update(
            Organization(default_currency="XYZ", timezone="Nowhere", webhook_url="ftp://x")
        )
    assert invalid.value.response["error_details"] == {
        "default_currency": ["value_is_invalid"],
        "timezone": ["invalid_timezone"],
        "webhook_url": ["url_is_invalid"],
    }
