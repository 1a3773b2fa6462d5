"""A wallet's ongoing balance through the billing API with the official Lago client: the settled
balance less the customer's draft invoices and current usage, taxes included."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client
from lago_python_client.models import Customer, Event, Subscription, Wallet
from lago_python_client.models.customer import CustomerBillingConfiguration
from lago_python_client.models.wallet import AppliesTo, WalletResponse

from api.services.wallet_refresh import refresh_wallets
from api.services.wallet_usage import UsageReadAhead
from api.services.wallets import present_wallets
from api.storage.catalog import CatalogStore
from orchestration.invoices.billing import bill_day
from tests.conftest import Rater, Warehouse
from tests.rating.conftest import Tenant, new_tenant
from tests.rating.test_usage_api import create_catalog, create_taxes, current_usage_when, send

pytestmark = pytest.mark.usefixtures("rating_views")


def ongoing(wallet: WalletResponse) -> tuple[int, int, str, str]:
    """The wallet's ongoing usage and balance, in cents and in credits."""
    return (
        wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents,
        wallet.credits_ongoing_usage_balance, wallet.credits_ongoing_balance,
    )  # fmt: skip


def test_ongoing_balance_subtracts_draft_invoices_and_current_usage(
    tenant: Tenant, rater: Rater, admin_client: Client
) -> None:
    create_taxes(tenant)
    grace = CustomerBillingConfiguration(invoice_grace_period=30)
    tenant.lago.customers.create(
        Customer(external_id="cust", currency="EUR", billing_configuration=grace)
    )
    # A plan paid in advance from today's anniversary: its whole 10.00 subscription fee is
    # invoiced today, and the 30-day grace period keeps that invoice a draft.
    create_catalog(
        tenant, plan_tax_codes=["vat"], calls_tax_codes=["levy"], pay_in_advance=True,
        billing_time="anniversary",
    )  # fmt: skip
    # Another customer on the same plan, with no grace period: its invoice is finalized at once.
    tenant.lago.subscriptions.create(
        Subscription(external_customer_id="other", plan_code="usage", external_id="other-sub")
    )
    everything = tenant.lago.wallets.create(
        Wallet(external_customer_id="cust", rate_amount="1", currency="EUR", granted_credits="100")
    )
    calls_only = tenant.lago.wallets.create(
        Wallet(
            external_customer_id="cust", rate_amount="3", currency="EUR", granted_credits="50",
            applies_to=AppliesTo(billable_metric_codes=["calls"]),
        )
    )  # fmt: skip
    # Before any event, current usage is the graduated charge's first flat fee (2.00, charged at
    # zero units) with its 12.5% levy.
    assert (everything.ongoing_balance_cents, everything.ongoing_usage_balance_cents) == (
        10_000 - 225,
        225,
    )

    for _ in range(2):
        tenant.lago.events.create(
            Event(
                transaction_id=str(uuid.uuid4()), external_subscription_id="other-sub",
                code="seats", timestamp=int(time.time()), properties={"region": "eu"},
            )
        )  # fmt: skip
    send(tenant, "calls", {"value": 15})
    for region in ("eu", "eu", "us"):
        send(tenant, "seats", {"region": region})
    current_usage_when(tenant, 4)
    rater.run("--no-tests")
    bill_day(admin_client, datetime.now(UTC).date(), now=datetime.now(UTC))
    [draft] = tenant.lago.invoices.find_all({"external_customer_id": "cust"})["invoices"]
    # 10.00 with 8.25% VAT: 1000 + 82.5, rounded half-up once.
    assert (draft.status, draft.fees_amount_cents, draft.taxes_amount_cents) == ("draft", 1000, 83)

    # Current usage (tests/rating/test_usage_api.py): calls 14.50 with 12.5% levy (1.8125),
    # seats 9.00 with 8.25% VAT (0.7425): 2350 + 181 + 74. The draft asks 1083 more.
    wallet = tenant.lago.wallets.find(everything.lago_id)
    assert ongoing(wallet) == (2605 + 1083, 10_000 - 3688, "36.88", "63.12")
    assert (wallet.credits_balance, wallet.balance_cents) == ("100.0", 10_000)

    # Limited to calls: the calls fee with its own tax (14.50 + 1.8125, rounded once), and the
    # draft. At 3.00 a credit: 27.14 / 3 and 122.86 / 3, to 5 decimals.
    assert ongoing(tenant.lago.wallets.find(calls_only.lago_id)) == (
        1631 + 1083,
        15_000 - 2714,
        "9.04667",
        "40.95333",
    )
    listed = tenant.lago.wallets.find_all({"external_customer_id": "cust"})["wallets"]
    assert sorted(w.ongoing_usage_balance_cents for w in listed) == [2714, 3688]

    # Listed with the other customer's wallet, every customer's usage read in one request. Its
    # finalized invoice asks nothing more; its usage: seats 6.00 with 8.25% VAT (0.495) and the
    # calls charge's first flat fee 2.00 with its 12.5% levy (0.25).
    other = tenant.lago.wallets.create(
        Wallet(external_customer_id="other", rate_amount="1", currency="EUR", granted_credits="20")
    )
    assert other.ongoing_usage_balance_cents == 600 + 50 + 200 + 25
    listed = tenant.lago.wallets.find_all()["wallets"]
    assert sorted(w.ongoing_usage_balance_cents for w in listed) == [875, 2714, 3688]


def test_the_hourly_refresh_counts_each_organizations_own_usage(
    admin_client: Client, billing_api: str, warehouse: Warehouse
) -> None:
    """The refresh reads every organization's usage in one request; two organizations with the
    same customer and subscription ids each get their own."""
    tenants = [new_tenant(admin_client, billing_api) for _ in range(2)]
    for tenant in tenants:
        create_catalog(tenant)
    busy, idle = tenants
    send(busy, "calls", {"value": 15})
    current_usage_when(busy, 1)
    wallets = [
        tenant.lago.wallets.create(
            Wallet(
                external_customer_id="cust",
                rate_amount="1",
                currency="EUR",
                granted_credits=credits,
            )
        )
        for tenant, credits in ((busy, "10"), (idle, "1"))
    ]

    refresh = refresh_wallets(CatalogStore(warehouse.client()), datetime.now(UTC))

    # Both depleted, each by its own usage: calls 14.50 against 10.00 of credits, and the
    # graduated charge's first flat fee alone (2.00 at zero units) against 1.00.
    depleted = {
        notice.object_id: (
            notice.payload["ongoing_usage_balance_cents"],
            notice.payload["ongoing_balance_cents"],
        )
        for notice in refresh.depleted
        if notice.organization_id in {tenant.organization_id for tenant in tenants}
    }
    assert depleted == {
        uuid.UUID(wallets[0].lago_id): (1450, 1000 - 1450),
        uuid.UUID(wallets[1].lago_id): (200, 100 - 200),
    }
    # Read a customer per request (the read-ahead splits long lists), the same usage.
    store = CatalogStore(warehouse.client())
    one_by_one = UsageReadAhead.read(store, [(t.organization_id, "cust") for t in tenants], 1)
    assert [
        sum(row.amount_cents for row in one_by_one.rows_of(tenant.organization_id, ["cust"]))
        for tenant in tenants
    ] == [1450, 200]
    # A customer the read-ahead did not ask for (a wallet created since) is read on its own.
    rows = store.select("wallets", idle.organization_id)
    [shown] = present_wallets(store, idle.organization_id, rows, UsageReadAhead(frozenset(), {}))
    assert (shown["ongoing_usage_balance_cents"], shown["ongoing_balance_cents"]) == (200, -100)
