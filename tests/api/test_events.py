"""GET /api/v1/events/{transaction_id} through the official Lago client: the stored event,
deduplicated as the rating reads it, scoped to the caller's organization."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import BillableMetric, Event, Plan, Subscription

from tests.api.conftest import Tenant, unique

# Characters a path segment cannot carry as they are: space, slash, ?, #, %, + and non-ASCII.
AWKWARD_ID = "order 42/ä?x=1#frag%20+"


def send(tenant: Tenant, transaction_id: str, **fields: Any) -> None:
    event = {"external_subscription_id": "sub_ev", "code": "calls", **fields}
    tenant.lago.events.create(Event(transaction_id=transaction_id, **event))


def not_found(tenant: Tenant, transaction_id: str) -> LagoApiError:
    with pytest.raises(LagoApiError) as raised:
        tenant.lago.events.find(quote(transaction_id, safe=""))
    return raised.value


def test_find_returns_the_latest_ingested_version_in_lagos_shape(tenant: Tenant) -> None:
    metric = tenant.lago.billable_metrics.create(
        BillableMetric(name="Calls", code="calls", aggregation_type="sum_agg", field_name="n")
    )
    assert metric is not None
    tenant.lago.plans.create(
        Plan(name="P", code="p_ev", interval="monthly", amount_cents=0, amount_currency="EUR")
    )
    subscription = tenant.lago.subscriptions.create(
        Subscription(external_customer_id="cust_ev", plan_code="p_ev", external_id="sub_ev")
    )
    assert subscription is not None

    send(tenant, AWKWARD_ID, timestamp=1_700_000_000, properties={"n": 1})
    # A correction: same transaction_id, another timestamp and properties; the latest wins.
    send(
        tenant,
        AWKWARD_ID,
        timestamp="2024-03-17T10:00:00.250Z",
        properties={"n": 7, "region": "eu", "nested": {"a": [1, 2]}},
        precise_total_amount_cents="1234.5",
    )

    # The client puts the id in the path as given: the caller percent-encodes it.
    found = tenant.lago.events.find(quote(AWKWARD_ID, safe=""))
    assert found.transaction_id == AWKWARD_ID
    assert found.code == "calls"
    assert found.external_subscription_id == "sub_ev"
    assert found.timestamp == "2024-03-17T10:00:00.250Z"
    # Properties come back as sent (numbers stay numbers, objects stay objects).
    assert found.properties == {"n": 7, "region": "eu", "nested": {"a": [1, 2]}}
    assert found.precise_total_amount_cents == "1234.5"
    assert found.lago_subscription_id == subscription.lago_id
    assert found.lago_customer_id == subscription.lago_customer_id
    assert found.created_at is not None and found.created_at.endswith("Z")

    # The same lago_id the ingest route answered with (uuid5 over the dedup key).
    created = tenant.lago.events.create(
        Event(transaction_id=AWKWARD_ID, external_subscription_id="sub_ev", code="calls",
              timestamp="2024-03-17T10:00:00.250Z",
              properties={"n": 7, "region": "eu", "nested": {"a": [1, 2]}})
    )  # fmt: skip
    assert created is not None
    assert tenant.lago.events.find(quote(AWKWARD_ID, safe="")).lago_id == created.lago_id


def test_event_without_a_subscription_has_no_lago_ids(tenant: Tenant) -> None:
    transaction_id = unique("tx")
    send(tenant, transaction_id, properties={})
    found = tenant.lago.events.find(transaction_id)
    assert (found.lago_subscription_id, found.lago_customer_id) == (None, None)
    assert found.properties == {}
    assert found.precise_total_amount_cents is None


def test_unknown_event_is_lagos_404(tenant: Tenant, api_url: str) -> None:
    error = not_found(tenant, "never sent / at all")
    assert error.status_code == 404
    response = httpx.get(
        f"{api_url}/api/v1/events/{quote('never sent / at all', safe='')}",
        headers={"Authorization": f"Bearer {tenant.api_key}"},
    )
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "Not Found", "code": "event_not_found"}


def test_another_organization_cannot_see_an_event(tenant: Tenant, other_tenant: Tenant) -> None:
    transaction_id = unique("private")
    send(tenant, transaction_id, properties={"n": 1})
    assert tenant.lago.events.find(transaction_id).transaction_id == transaction_id
    assert not_found(other_tenant, transaction_id).status_code == 404


def test_finding_an_event_needs_an_api_key(api_url: str) -> None:
    response = httpx.get(f"{api_url}/api/v1/events/anything")
    assert response.status_code == 401


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # not JSON: httpx refuses to send them
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
estimate_bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            name: json_values
            for name in (
                "code",
                "external_subscription_id",
                "properties",
                "transaction_id",
                "precise_total_amount_cents",
                "timestamp",
            )
        },  # fmt: skip
    ).map(lambda event: {"event": event})
    | json_values
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=estimate_bodies, transaction_id=st.text(min_size=1, max_size=30))
@example(body={"event": {}}, transaction_id=".")
@example(body={"event": {}}, transaction_id="..")
def test_random_requests_never_fail_the_server(
    tenant: Tenant, api_url: str, body: Any, transaction_id: str
) -> None:
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    estimate = httpx.post(f"{api_url}/api/v1/events/estimate_fees", json=body, headers=headers)
    assert estimate.status_code in (400, 404, 422), estimate.text
    assert estimate.json()["status"] == estimate.status_code
    # Dots encoded too: a client resolves a literal "." or ".." segment before sending.
    path = quote(transaction_id.encode("utf-8", "surrogatepass"), safe="").replace(".", "%2E")
    found = httpx.get(f"{api_url}/api/v1/events/{path}", headers=headers)
    assert found.status_code == 404, found.text
