"""Random JSON never gets a 500, and unique codes stay unique under concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Tenant

CREATE_ENDPOINTS = {
    "customers": (
        "customer",
        ["external_id", "currency", "timezone", "email", "billing_configuration", "tax_codes"],
    ),
    "billable_metrics": (
        "billable_metric",
        [
            "name",
            "code",
            "aggregation_type",
            "field_name",
            "recurring",
            "filters",
            "rounding_precision",
        ],
    ),
    "plans": (
        "plan",
        [
            "name",
            "code",
            "interval",
            "amount_cents",
            "amount_currency",
            "charges",
            "usage_thresholds",
        ],
    ),
    "subscriptions": (
        "subscription",
        [
            "external_customer_id",
            "plan_code",
            "external_id",
            "subscription_at",
            "ending_at",
            "plan_overrides",
        ],
    ),
    "taxes": ("tax", ["name", "code", "rate", "applied_to_organization"]),
    "add_ons": ("add_on", ["name", "code", "amount_cents", "amount_currency", "tax_codes"]),
    "coupons": (
        "coupon",
        [
            "name",
            "code",
            "coupon_type",
            "amount_cents",
            "percentage_rate",
            "frequency",
            "expiration",
            "expiration_at",
            "applies_to",
        ],
    ),
    "applied_coupons": (
        "applied_coupon",
        ["external_customer_id", "coupon_code", "amount_cents", "frequency"],
    ),
    "wallets": (
        "wallet",
        [
            "external_customer_id",
            "rate_amount",
            "currency",
            "paid_credits",
            "granted_credits",
            "applies_to",
            "recurring_transaction_rules",
        ],
    ),
    "wallet_transactions": (
        "wallet_transaction",
        ["wallet_id", "paid_credits", "granted_credits", "voided_credits"],
    ),
    "webhook_endpoints": (
        "webhook_endpoint",
        ["webhook_url", "signature_algo", "name", "event_types"],
    ),
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def envelopes(root: str, fields: list[str], known: list[str]) -> st.SearchStrategy[Any]:
    """Bodies shaped like the resource, with random or known values, and bodies of any shape."""
    values = json_values | st.sampled_from(known)
    shaped = st.fixed_dictionaries({}, optional={name: values for name in fields}).map(
        lambda resource: {root: resource}
    )
    charges = st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "billable_metric_id": st.uuids().map(str) | json_values,
                "charge_model": st.sampled_from(
                    ["standard", "graduated", "package", "volume", "percentage"]
                ),
                "properties": json_values,
                "filters": json_values,
            },
        ),
        max_size=3,
    ).map(
        lambda c: {
            "plan": {
                "name": "p",
                "code": "p",
                "interval": "monthly",
                "amount_cents": 1,
                "amount_currency": "EUR",
                "charges": c,
            }
        }
    )
    return shaped | json_values | charges


def seed_catalog(http: httpx.Client) -> list[str]:
    """Records the random bodies can refer to, so they reach past the lookups."""
    http.post("/api/v1/customers", json={"customer": {"external_id": "c", "currency": "EUR"}})
    http.post(
        "/api/v1/billable_metrics",
        json={"billable_metric": {"name": "m", "code": "m", "aggregation_type": "count_agg"}},
    )
    plan = {
        "name": "p",
        "code": "p",
        "interval": "monthly",
        "amount_cents": 1,
        "amount_currency": "EUR",
    }
    http.post("/api/v1/plans", json={"plan": plan})
    coupon = {
        "name": "k",
        "code": "k",
        "coupon_type": "percentage",
        "percentage_rate": 5,
        "frequency": "forever",
        "expiration": "no_expiration",
    }
    http.post("/api/v1/coupons", json={"coupon": coupon})
    wallet = http.post(
        "/api/v1/wallets",
        json={"wallet": {"external_customer_id": "c", "rate_amount": "1", "currency": "EUR"}},
    ).json()["wallet"]
    return ["c", "m", "p", "k", "EUR", "1", "10.5", "monthly", wallet["lago_id"]]


@pytest.mark.parametrize("resource", sorted(CREATE_ENDPOINTS))
def test_random_bodies_never_get_a_server_error(
    tenant: Tenant, api_url: str, resource: str
) -> None:
    root, fields = CREATE_ENDPOINTS[resource]
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as http:
        known = seed_catalog(http)

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=envelopes(root, fields, known))
        def post(body: Any) -> None:
            response = http.post(f"/api/v1/{resource}", json=body)
            assert response.status_code < 500, (body, response.text)
            if response.status_code >= 400:
                assert response.json()["status"] == response.status_code

        post()
        raw = http.post(
            f"/api/v1/{resource}",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert raw.status_code == 400 and raw.json()["code"] == "bad_request"


# Update routes and the seeded record each one changes ({wallet} is the seeded wallet's id).
UPDATE_ENDPOINTS = {
    "billable_metrics": "/api/v1/billable_metrics/m",
    "plans": "/api/v1/plans/p",
    "subscriptions": "/api/v1/subscriptions/s",
    "taxes": "/api/v1/taxes/t",
    "coupons": "/api/v1/coupons/k",
    "wallets": "/api/v1/wallets/{wallet}",
}


@pytest.mark.parametrize("resource", sorted(UPDATE_ENDPOINTS))
def test_random_updates_never_get_a_server_error(
    tenant: Tenant, api_url: str, resource: str
) -> None:
    root, fields = CREATE_ENDPOINTS[resource]
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as http:
        known = seed_catalog(http)
        http.post("/api/v1/taxes", json={"tax": {"name": "t", "code": "t", "rate": 1}})
        subscription = {"external_customer_id": "c", "plan_code": "p", "external_id": "s"}
        http.post("/api/v1/subscriptions", json={"subscription": subscription})
        path = UPDATE_ENDPOINTS[resource].format(wallet=known[-1])

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=envelopes(root, fields, known))
        def put(body: Any) -> None:
            response = http.put(path, json=body)
            assert response.status_code < 500, (body, response.text)

        put()


def test_concurrent_creates_keep_codes_unique(tenant: Tenant, api_url: str) -> None:
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    body = {"tax": {"name": "VAT", "code": "race", "rate": 20}}

    def create(_: int) -> int:
        return httpx.post(
            f"{api_url}/api/v1/taxes", json=body, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(create, range(8)))
    assert statuses == [200] + [422] * 7
    listed = httpx.get(f"{api_url}/api/v1/taxes", headers=headers).json()
    assert listed["meta"]["total_count"] == 1


def test_concurrent_customer_upserts_make_one_customer(tenant: Tenant, api_url: str) -> None:
    headers = {"Authorization": f"Bearer {tenant.api_key}"}

    def upsert(index: int) -> int:
        body = {"customer": {"external_id": "same", "name": f"name {index}"}}
        return httpx.post(
            f"{api_url}/api/v1/customers", json=body, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(upsert, range(8))) == {200}
    listed = httpx.get(f"{api_url}/api/v1/customers", headers=headers).json()
    assert listed["meta"]["total_count"] == 1


def test_concurrent_subscription_creates_make_one_subscription(
    tenant: Tenant, api_url: str
) -> None:
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as http:
        seed_catalog(http)
    body = {"subscription": {"external_customer_id": "new", "plan_code": "p", "external_id": "one"}}

    def create(_: int) -> str:
        response = httpx.post(
            f"{api_url}/api/v1/subscriptions", json=body, headers=headers, timeout=30
        )
        assert response.status_code == 200, response.text
        return str(response.json()["subscription"]["lago_id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(create, range(8)))
    assert len(ids) == 1
    listed = httpx.get(
        f"{api_url}/api/v1/customers", headers=headers, params={"search_term": "new"}
    ).json()
    assert listed["meta"]["total_count"] == 1
