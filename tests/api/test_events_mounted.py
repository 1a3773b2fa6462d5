from __future__ import annotations

from lago_python_client.models import Event

from tests.api.conftest import Tenant


def test_events_are_ingested_through_the_billing_api(tenant: Tenant, admin_client: object) -> None:
    tenant.lago.events.create(
        Event(
            transaction_id="tx_1",
            external_subscription_id="sub_1",
            code="api_calls",
            timestamp=1_700_000_000,
            properties={"value": "3"},
        )
    )
    count = admin_client.command(  # type: ignore[attr-defined]
        "SELECT count() FROM events WHERE organization_id = {o:UUID} AND transaction_id = 'tx_1'",
        parameters={"o": tenant.organization_id},
    )
    assert count == 1
