from __future__ import annotations

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import Customer, Tax
from lago_python_client.models.customer import (
    Address,
    CustomerBillingConfiguration,
    Metadata,
    MetadataList,
)

from tests.api.conftest import Tenant


def test_customer_upsert_get_list_delete(tenant: Tenant) -> None:
    tenant.lago.taxes.create(Tax(name="VAT", code="vat", rate=20.0))
    created = tenant.lago.customers.create(
        Customer(
            external_id="cust_1",
            name="Acme",
            email="billing@acme.test",
            currency="EUR",
            country="fr",
            timezone="Europe/Paris",
            net_payment_term=30,
            tax_codes=["vat"],
            billing_configuration=CustomerBillingConfiguration(
                invoice_grace_period=3, payment_provider="stripe", provider_customer_id="cus_123"
            ),
            shipping_address=Address(city="Lyon", country="FR"),
            metadata=MetadataList(__root__=[Metadata(key="segment", value="smb")]),
        )
    )
    assert created is not None
    assert (created.external_id, created.currency, created.country) == ("cust_1", "EUR", "FR")
    assert created.applicable_timezone == "Europe/Paris"
    assert created.billing_configuration.provider_customer_id == "cus_123"
    assert created.billing_configuration.invoice_grace_period == 3
    assert created.shipping_address.city == "Lyon"
    assert [t.code for t in created.taxes.__root__] == ["vat"]
    assert created.metadata.__root__[0].key == "segment"

    # POST again with the same external_id updates only the fields sent (Lago upsert).
    updated = tenant.lago.customers.create(Customer(external_id="cust_1", name="Acme SAS"))
    assert updated.lago_id == created.lago_id
    assert (updated.name, updated.email, updated.currency) == (
        "Acme SAS",
        "billing@acme.test",
        "EUR",
    )

    tenant.lago.customers.create(Customer(external_id="cust_2", name="Beta", currency="USD"))
    by_currency = tenant.lago.customers.find_all({"currencies[]": "USD"})
    assert [c.external_id for c in by_currency["customers"]] == ["cust_2"]
    searched = tenant.lago.customers.find_all({"search_term": "acme"})
    assert [c.external_id for c in searched["customers"]] == ["cust_1"]
    assert tenant.lago.customers.find_all()["meta"]["total_count"] == 2

    assert tenant.lago.customers.find("cust_1").name == "Acme SAS"
    assert tenant.lago.customers.destroy("cust_1").external_id == "cust_1"
    with pytest.raises(LagoApiError) as missing:
        tenant.lago.customers.find("cust_1")
    assert missing.value.status_code == 404
    assert missing.value.response["code"] == "customer_not_found"


def test_customer_validation_names_each_field(tenant: Tenant) -> None:
    with pytest.raises(LagoApiError) as invalid:
        tenant.lago.customers.create(
            Customer(
                external_id="c",
                currency="EURO",
                timezone="Mars/Olympus",
                country="XX",
                email="not-an-email",
            )
        )
    assert invalid.value.status_code == 422
    assert invalid.value.response["error_details"] == {
        "currency": ["value_is_invalid"],
        "timezone": ["invalid_timezone"],
        "country": ["country_code_invalid"],
        "email": ["invalid_email_format"],
    }
    with pytest.raises(LagoApiError) as unknown_tax:
        tenant.lago.customers.create(Customer(external_id="c", tax_codes=["nope"]))
    assert unknown_tax.value.status_code == 404
    assert unknown_tax.value.response["code"] == "tax_not_found"
    assert tenant.lago.customers.find_all()["customers"] == []


def test_customer_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="shared_id", name="Mine"))
    with pytest.raises(LagoApiError) as hidden:
        other_tenant.lago.customers.find("shared_id")
    assert hidden.value.status_code == 404
    with pytest.raises(LagoApiError) as hidden_delete:
        other_tenant.lago.customers.destroy("shared_id")
    assert hidden_delete.value.status_code == 404
    assert other_tenant.lago.customers.find_all()["customers"] == []
    # The same external id in another organization is another customer.
    theirs = other_tenant.lago.customers.create(Customer(external_id="shared_id", name="Theirs"))
    assert tenant.lago.customers.find("shared_id").name == "Mine"
    assert theirs.lago_id != tenant.lago.customers.find("shared_id").lago_id


def test_a_lookup_by_a_very_long_external_id_is_a_404(tenant: Tenant) -> None:
    # 6,000 characters: clickhouse-connect sends the lookup's value as a form field, not in the
    # URL, and the warehouse reads it there.
    with pytest.raises(LagoApiError) as missing:
        tenant.lago.customers.find("c" * 6_000)
    assert missing.value.status_code == 404
    assert missing.value.response["code"] == "customer_not_found"
