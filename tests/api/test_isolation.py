"""Every catalog route, called with another organization's identifiers, answers 404.

The routes come from the OpenAPI document, so a new route is covered (or fails here until its
identifiers are known) without anyone remembering to add it.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Tenant

CATALOG_TAGS = {
    "customers",
    "billable_metrics",
    "plans",
    "subscriptions",
    "taxes",
    "add_ons",
    "coupons",
    "wallets",
    "webhook_endpoints",
}


def seed(http: httpx.Client) -> dict[str, str]:
    """One record of each kind; returns the value of each path parameter by route prefix."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = http.post(path, json=body)
        assert response.status_code == 200, response.text
        return dict(next(iter(response.json().values())))

    post("/api/v1/taxes", {"tax": {"name": "t", "code": "t", "rate": 1}})
    post("/api/v1/customers", {"customer": {"external_id": "c", "currency": "EUR"}})
    metric = post(
        "/api/v1/billable_metrics",
        {
            "billable_metric": {
                "name": "m",
                "code": "m",
                "aggregation_type": "count_agg",
                "filters": [{"key": "region", "values": ["eu"]}],
            }
        },
    )
    charge = {
        "code": "ch",
        "billable_metric_id": metric["lago_id"],
        "charge_model": "standard",
        "properties": {"amount": "1"},
        "filters": [{"values": {"region": ["eu"]}, "properties": {"amount": "2"}}],
    }
    plan = post(
        "/api/v1/plans",
        {
            "plan": {
                "name": "p",
                "code": "p",
                "interval": "monthly",
                "amount_cents": 1,
                "amount_currency": "EUR",
                "charges": [charge],
            }
        },
    )
    post(
        "/api/v1/subscriptions",
        {"subscription": {"external_customer_id": "c", "plan_code": "p", "external_id": "s"}},
    )
    post(
        "/api/v1/add_ons",
        {"add_on": {"name": "a", "code": "a", "amount_cents": 1, "amount_currency": "EUR"}},
    )
    post(
        "/api/v1/coupons",
        {
            "coupon": {
                "name": "k",
                "code": "k",
                "coupon_type": "percentage",
                "percentage_rate": 5,
                "frequency": "forever",
                "expiration": "no_expiration",
            }
        },
    )
    applied = post(
        "/api/v1/applied_coupons",
        {"applied_coupon": {"external_customer_id": "c", "coupon_code": "k"}},
    )
    wallet = post(
        "/api/v1/wallets",
        {"wallet": {"external_customer_id": "c", "rate_amount": "1", "currency": "EUR"}},
    )
    endpoint = post(
        "/api/v1/webhook_endpoints", {"webhook_endpoint": {"webhook_url": "https://h.test/x"}}
    )
    return {
        "customers": "c",
        "billable_metrics": "m",
        "plans": "p",
        "charge_code": "ch",
        "filter_id": plan["charges"][0]["filters"][0]["lago_id"],
        "subscriptions": "s",
        "taxes": "t",
        "add_ons": "a",
        "coupons": "k",
        "applied_coupon_id": applied["lago_id"],
        "wallets": wallet["lago_id"],
        "webhook_endpoints": endpoint["lago_id"],
        "name": "any",
    }


def fill(path: str, ids: dict[str, str]) -> str:
    """Substitute each path parameter: by its own name, else by the resource it follows."""
    parts = path.strip("/").split("/")
    for index, part in enumerate(parts):
        if part.startswith("{"):
            name = part[1:-1]
            parts[index] = ids.get(name) or ids[parts[index - 1]]
    return "/" + "/".join(parts)


def body_for(operation: dict[str, Any], components: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = components[content["schema"]["$ref"].split("/")[-1]]
    root = next(iter(schema["properties"]))
    return {root: {"values": {"region": ["eu"]}} if root == "filter" else {}}


def test_every_catalog_route_hides_other_organizations(
    tenant: Tenant, other_tenant: Tenant, api_url: str
) -> None:
    # A wallet's read rates its customer's open periods once a rating run has made the views
    # (seconds on a loaded 2-core machine, over httpx's 5 s default): a longer timeout, as the
    # usage tests take.
    owner = httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {tenant.api_key}"}, timeout=120
    )
    stranger = httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {other_tenant.api_key}"}, timeout=120
    )
    ids = seed(owner)
    document = owner.get("/openapi.json").json()
    components = document["components"]["schemas"]
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not CATALOG_TAGS & set(operation.get("tags", [])):
                continue
            if "{" not in path:
                if method == "get":  # lists: the stranger's are empty
                    listed = stranger.get(path).json()
                    assert all(v == [] for k, v in listed.items() if k != "meta"), (path, listed)
                    checked += 1
                continue
            url = fill(path, ids)
            if method == "get":
                assert owner.get(url).status_code == 200, url
            response = stranger.request(method.upper(), url, json=body_for(operation, components))
            assert response.status_code == 404, (method, url, response.text)
            checked += 1
    assert checked >= 40
    # Nothing the stranger tried changed the owner's records.
    assert owner.get("/api/v1/subscriptions/s").json()["subscription"]["status"] == "active"
    assert owner.get("/api/v1/plans/p").json()["plan"]["charges"][0]["filters"] != []
