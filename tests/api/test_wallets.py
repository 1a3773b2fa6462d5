from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from dagster import materialize
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import Customer, Invoice, Wallet, WalletTransaction, WebhookEndpoint
from lago_python_client.models.wallet import RecurringTransactionRule, RecurringTransactionRuleList

from api.services.wallet_refresh import TopUp, due_top_up, refresh_wallets
from api.storage.catalog import CatalogStore
from orchestration.resources import WarehouseResource
from orchestration.wallets.ongoing_balances import wallet_ongoing_balances
from tests.api.conftest import Tenant
from tests.api.test_plans import lago_error
from tests.conftest import Warehouse
from tests.invoicing.stripe_support import WebhookCatcher, webhook_catcher


def test_wallet_credits_and_balance(tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    wallet = tenant.lago.wallets.create(
        Wallet(
            external_customer_id="cust",
            rate_amount="1.5",
            currency="EUR",
            name="Prepaid",
            priority=10,
            paid_credits="20",
            granted_credits="10.5",
        )
    )
    # Granted credits settle at once; purchased ones wait for their invoice to be paid.
    assert (wallet.credits_balance, wallet.balance_cents, wallet.rate_amount) == (
        "10.5",
        1575,
        "1.5",
    )
    assert (wallet.external_customer_id, wallet.priority, wallet.status) == ("cust", 10, "active")
    created = tenant.lago.wallet_transactions.create(
        WalletTransaction(wallet_id=wallet.lago_id, granted_credits="4.5", voided_credits="5")
    )["wallet_transactions"]
    assert [(t.transaction_status, t.status, t.credit_amount) for t in created] == [
        ("granted", "settled", "4.5"),
        ("voided", "settled", "5.0"),
    ]
    assert tenant.lago.wallets.find(wallet.lago_id).credits_balance == "10.0"
    listed = tenant.lago.wallet_transactions.find_all(wallet.lago_id, {"status": "pending"})
    assert [(t.transaction_status, t.amount) for t in listed["wallet_transactions"]] == [
        ("purchased", "30.0")
    ]
    too_much = lago_error(
        lambda: tenant.lago.wallet_transactions.create(
            WalletTransaction(wallet_id=wallet.lago_id, voided_credits="1000")
        )
    )
    assert too_much.response["error_details"] == {"voided_credits": ["insufficient_credits"]}
    renamed = tenant.lago.wallets.update(Wallet(name="Renamed"), wallet.lago_id)
    assert renamed.name == "Renamed"
    assert [
        w.lago_id for w in tenant.lago.wallets.find_all({"external_customer_id": "cust"})["wallets"]
    ] == [wallet.lago_id]
    terminated = tenant.lago.wallets.destroy(wallet.lago_id)
    assert terminated.status == "terminated" and terminated.terminated_at is not None


def test_wallet_validation(tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="usd", currency="USD"))
    invalid = lago_error(
        lambda: tenant.lago.wallets.create(
            Wallet(external_customer_id="usd", rate_amount="0", currency="EUR", paid_credits="-1")
        )
    )
    assert invalid.response["error_details"] == {
        "rate_amount": ["invalid_rate_amount"],
        "currency": ["currencies_does_not_match"],
        "paid_credits": ["invalid_paid_credits"],
    }
    missing = lago_error(
        lambda: tenant.lago.wallets.create(
            Wallet(external_customer_id="nobody", rate_amount="1", currency="EUR")
        )
    )
    assert missing.response["code"] == "customer_not_found"
    assert tenant.lago.wallets.find_all()["wallets"] == []


def test_wallet_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    wallet = tenant.lago.wallets.create(
        Wallet(external_customer_id="cust", rate_amount="1", currency="EUR")
    )
    for call in (
        lambda: other_tenant.lago.wallets.find(wallet.lago_id),
        lambda: other_tenant.lago.wallets.update(Wallet(name="x"), wallet.lago_id),
        lambda: other_tenant.lago.wallets.destroy(wallet.lago_id),
        lambda: other_tenant.lago.wallet_transactions.create(
            WalletTransaction(wallet_id=wallet.lago_id, granted_credits="5")
        ),
        lambda: other_tenant.lago.wallet_transactions.find_all(wallet.lago_id),
    ):
        with pytest.raises(LagoApiError) as hidden:
            call()
        assert hidden.value.status_code == 404
    assert other_tenant.lago.wallets.find_all()["wallets"] == []
    assert tenant.lago.wallets.find(wallet.lago_id).credits_balance == "0.0"


def test_deleting_customer_terminates_wallets(tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="gone", currency="EUR"))
    wallet = tenant.lago.wallets.create(
        Wallet(external_customer_id="gone", rate_amount="1", currency="EUR")
    )
    tenant.lago.customers.destroy("gone")
    assert tenant.lago.wallets.find(wallet.lago_id).status == "terminated"


def test_wallet_metadata_routes(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    wallet = tenant.lago.wallets.create(
        Wallet(external_customer_id="cust", rate_amount="1", currency="EUR")
    )
    assert tenant.lago.wallets.merge_metadata(wallet.lago_id, {"k": "v"}) == {"k": "v"}
    assert tenant.lago.wallets.find(wallet.lago_id).metadata == {"k": "v"}
    assert (
        lago_error(
            lambda: other_tenant.lago.wallets.delete_all_metadata(wallet.lago_id)
        ).status_code
        == 404
    )


def test_recurring_top_up_rules(tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    rule = RecurringTransactionRule(
        trigger="threshold", threshold_credits="5", method="fixed", paid_credits="20"
    )
    wallet = tenant.lago.wallets.create(
        Wallet(
            external_customer_id="cust",
            rate_amount="1",
            currency="EUR",
            recurring_transaction_rules=RecurringTransactionRuleList(__root__=[rule]),
        )
    )
    stored = wallet.recurring_transaction_rules.__root__[0]
    assert (stored.trigger, stored.threshold_credits, stored.paid_credits) == (
        "threshold",
        "5",
        "20",
    )
    assert stored.lago_id is not None
    invalid = lago_error(
        lambda: tenant.lago.wallets.update(
            Wallet(
                recurring_transaction_rules=RecurringTransactionRuleList(
                    __root__=[
                        RecurringTransactionRule(
                            trigger="interval", method="fixed", paid_credits="1"
                        )
                    ]
                )
            ),
            wallet.lago_id,
        )
    )
    assert invalid.response["error_details"] == {
        "recurring_transaction_rules": ["invalid_recurring_rule"]
    }


def webhook_types(catcher: WebhookCatcher, count: int) -> list[tuple[str, str, str]]:
    """(webhook type, source, status) of the wallet transaction webhooks, once ``count`` came."""
    deadline = time.monotonic() + 20
    while True:
        bodies = [json.loads(body) for body, _ in list(catcher.received)]
        sent = sorted(
            (
                b["webhook_type"],
                b["wallet_transaction"]["source"],
                b["wallet_transaction"]["status"],
            )
            for b in bodies
            if b["object_type"] == "wallet_transaction"
        )
        if len(sent) >= count:
            return sent
        assert time.monotonic() < deadline, f"only {sent} after 20 s"
        time.sleep(0.1)


def test_purchased_credits_are_invoiced_and_settle_when_paid(tenant: Tenant) -> None:
    with webhook_catcher() as catcher:
        tenant.lago.webhook_endpoints.create(WebhookEndpoint(webhook_url=catcher.url))
        purchase_settled_after_a_failure(tenant)
        assert webhook_types(catcher, 6) == [
            ("wallet_transaction.created", "manual", "pending"),
            ("wallet_transaction.created", "manual", "pending"),
            ("wallet_transaction.created", "manual", "settled"),
            ("wallet_transaction.payment_failure", "manual", "failed"),
            ("wallet_transaction.updated", "manual", "failed"),
            ("wallet_transaction.updated", "manual", "settled"),
        ]


def purchase_settled_after_a_failure(tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    wallet = tenant.lago.wallets.create(
        Wallet(
            external_customer_id="cust", rate_amount="1.5", currency="EUR", name="Prepaid",
            paid_credits="20", granted_credits="2",
        )
    )  # fmt: skip
    assert wallet.credits_balance == "2.0"
    [purchase] = tenant.lago.wallet_transactions.find_all(
        wallet.lago_id, {"transaction_status": "purchased"}
    )["wallet_transactions"]
    assert purchase.status == "pending" and purchase.lago_invoice_id is not None
    # One credit fee, 20 credits at 1.50, untaxed; issued at once, awaiting its payment.
    invoice = tenant.lago.invoices.find(purchase.lago_invoice_id)
    assert (invoice.invoice_type, invoice.status, invoice.payment_status) == (
        "credit",
        "finalized",
        "pending",
    )
    assert (invoice.fees_amount_cents, invoice.taxes_amount_cents) == (3_000, 0)
    [fee] = invoice.fees.__root__
    assert (fee.item.type, fee.units, fee.amount_cents) == ("credit", "20.0", 3_000)

    # A failed payment leaves the credits out; a later success settles them.
    tenant.lago.invoices.update(Invoice(payment_status="failed"), invoice.lago_id)
    [failed] = tenant.lago.wallet_transactions.find_all(
        wallet.lago_id, {"transaction_status": "purchased"}
    )["wallet_transactions"]
    assert failed.status == "failed"
    assert tenant.lago.wallets.find(wallet.lago_id).credits_balance == "2.0"
    tenant.lago.invoices.update(Invoice(payment_status="succeeded"), invoice.lago_id)
    [settled] = tenant.lago.wallet_transactions.find_all(
        wallet.lago_id, {"transaction_status": "purchased"}
    )["wallet_transactions"]
    assert settled.status == "settled" and settled.settled_at is not None
    paid = tenant.lago.wallets.find(wallet.lago_id)
    assert (paid.credits_balance, paid.balance_cents) == ("22.0", 3_300)

    # A purchase through wallet transactions gets its own invoice.
    [topped_up] = tenant.lago.wallet_transactions.create(
        WalletTransaction(wallet_id=wallet.lago_id, paid_credits="4")
    )["wallet_transactions"]
    assert topped_up.lago_invoice_id not in (None, invoice.lago_id)
    assert tenant.lago.invoices.find(topped_up.lago_invoice_id).fees_amount_cents == 600


def wallet_with_rule(tenant: Tenant, granted: str | None, **rule: str) -> Any:
    """A wallet of customer "cust" at one credit per euro, with one recurring rule."""
    return tenant.lago.wallets.create(
        Wallet(
            external_customer_id="cust", rate_amount="1", currency="EUR", granted_credits=granted,
            recurring_transaction_rules=RecurringTransactionRuleList(
                __root__=[RecurringTransactionRule(**rule)]
            ),
        )
    )  # fmt: skip


def refresh_ongoing_balances(warehouse: Warehouse) -> None:
    """The wallets' ongoing-balance job as its hourly schedule runs it."""
    resource = WarehouseResource(
        url=warehouse.url, user=warehouse.user, password=warehouse.password,
        database=warehouse.database,
    )  # fmt: skip
    assert materialize([wallet_ongoing_balances], resources={"warehouse": resource}).success


def movements(tenant: Tenant, wallet_id: str) -> list[tuple[str, str, str, str]]:
    listed = tenant.lago.wallet_transactions.find_all(wallet_id)["wallet_transactions"]
    return sorted((t.source, t.transaction_status, t.status, t.credit_amount) for t in listed)


def test_recurring_rules_top_up_once_when_due(tenant: Tenant, warehouse: Warehouse) -> None:
    with webhook_catcher() as catcher:
        tenant.lago.webhook_endpoints.create(WebhookEndpoint(webhook_url=catcher.url))
        wallets = recurring_top_ups(tenant, warehouse)
        created = [sent for sent in webhook_types(catcher, 7) if sent[1] != "manual"]
        assert created == [
            ("wallet_transaction.created", "interval", "settled"),
            ("wallet_transaction.created", "threshold", "pending"),
            ("wallet_transaction.created", "threshold", "pending"),
            ("wallet_transaction.created", "threshold", "settled"),
        ]
        # Ongoing balances at zero before the runs: the monthly wallet (topped up by the first
        # run) and the expired rule's, each notified once over the two runs.
        bodies = [json.loads(raw) for raw, _ in list(catcher.received)]
        depleted = [
            body["wallet"]["lago_id"]
            for body in bodies
            if body["webhook_type"] == "wallet.depleted_ongoing_balance"
        ]
        assert sorted(depleted) == sorted([wallets["monthly"], wallets["expired"]])


def recurring_top_ups(tenant: Tenant, warehouse: Warehouse) -> dict[str, str]:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    low = wallet_with_rule(
        tenant, "3", trigger="threshold", threshold_credits="5", paid_credits="20",
        granted_credits="1",
    )  # fmt: skip
    started = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    monthly = wallet_with_rule(
        tenant, None, trigger="interval", interval="monthly", started_at=started,
        granted_credits="2",
    )  # fmt: skip
    targeted = wallet_with_rule(
        tenant, "1", trigger="threshold", threshold_credits="4", method="target",
        target_ongoing_balance="10",
    )  # fmt: skip
    above = wallet_with_rule(
        tenant, "6", trigger="threshold", threshold_credits="5", granted_credits="1"
    )
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expired = wallet_with_rule(
        tenant, None, trigger="threshold", threshold_credits="5", granted_credits="1",
        expiration_at=yesterday,
    )  # fmt: skip

    for _ in range(2):  # the second run finds nothing due
        refresh_ongoing_balances(warehouse)
        # 3 credits <= 5: the fixed top-up, its purchase billed and waiting for the payment.
        assert movements(tenant, low.lago_id) == [
            ("manual", "granted", "settled", "3.0"),
            ("threshold", "granted", "settled", "1.0"),
            ("threshold", "purchased", "pending", "20.0"),
        ]
        # Started 40 days ago: the monthly anniversary 10 days ago is due, once.
        assert movements(tenant, monthly.lago_id) == [("interval", "granted", "settled", "2.0")]
        # 1 credit <= 4: buy what brings it to 10.
        assert movements(tenant, targeted.lago_id)[-1] == (
            "threshold",
            "purchased",
            "pending",
            "9.0",
        )
        assert len(movements(tenant, targeted.lago_id)) == 2
        assert movements(tenant, above.lago_id) == [("manual", "granted", "settled", "6.0")]
        assert movements(tenant, expired.lago_id) == []
    assert tenant.lago.wallets.find(low.lago_id).credits_balance == "4.0"
    [purchase] = tenant.lago.wallet_transactions.find_all(
        low.lago_id, {"transaction_status": "purchased"}
    )["wallet_transactions"]
    assert tenant.lago.invoices.find(purchase.lago_invoice_id).fees_amount_cents == 2_000
    return {"monthly": monthly.lago_id, "expired": expired.lago_id}


def test_the_hourly_refresh_terminates_wallets_past_their_expiration(
    tenant: Tenant, warehouse: Warehouse
) -> None:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    expiry = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)

    def wallet(**fields: Any) -> str:
        created = tenant.lago.wallets.create(
            Wallet(external_customer_id="cust", rate_amount="1", currency="EUR",
                   granted_credits="5", **fields)
        )  # fmt: skip
        return str(created.lago_id)

    expires = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    expiring = wallet(expiration_at=expires)
    lasting = wallet()
    store = CatalogStore(warehouse.client())
    before = refresh_wallets(store, expiry - timedelta(seconds=1))
    after = refresh_wallets(store, expiry)
    assert before.terminated == [] and [str(w["id"]) for w in after.terminated] == [expiring]
    shown = tenant.lago.wallets.find(expiring)
    assert (shown.status, shown.terminated_at) == ("terminated", expires)
    assert tenant.lago.wallets.find(lasting).status == "active"
    assert refresh_wallets(store, expiry + timedelta(hours=1)).terminated == []  # once


def test_purchases_outside_the_paid_top_up_limits_are_refused_unless_ignored(
    tenant: Tenant,
) -> None:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    # 2 EUR a credit, purchases of 10.00 to 50.00 EUR.
    limits = {"paid_top_up_min_amount_cents": 1_000, "paid_top_up_max_amount_cents": 5_000}

    def create(**fields: Any) -> Any:
        return tenant.lago.wallets.create(
            Wallet(external_customer_id="cust", rate_amount="2", currency="EUR", **limits, **fields)
        )

    below = lago_error(lambda: create(paid_credits="4.99"))
    assert below.response["error_details"] == {"paid_credits": ["amount_below_minimum"]}
    wallet = create(paid_credits="4.99", ignore_paid_top_up_limits_on_creation=True)

    def buy(credits: str, **fields: Any) -> Any:
        return tenant.lago.wallet_transactions.create(
            WalletTransaction(wallet_id=wallet.lago_id, paid_credits=credits, **fields)
        )

    above = lago_error(lambda: buy("25.01"))
    assert above.response["error_details"] == {"paid_credits": ["amount_above_maximum"]}
    assert len(buy("25")) == 1 and len(buy("5")) == 1  # 50.00 and 10.00: within the bounds
    assert len(buy("25.01", ignore_paid_top_up_limits=True)) == 1
    assert len(buy("0", granted_credits="1")) == 1  # nothing bought: no bound applies
    purchased = tenant.lago.wallet_transactions.find_all(
        wallet.lago_id, {"transaction_status": "purchased"}
    )["wallet_transactions"]
    assert sorted(t.credit_amount for t in purchased) == ["25.0", "25.01", "4.99", "5.0"]


def test_a_rules_purchase_is_raised_to_the_wallets_minimum_unless_it_ignores_the_limits() -> None:
    wallet = {
        "rate_amount": Decimal("3"), "currency": "EUR", "created_at": datetime(2024, 1, 1),
        "paid_top_up_min_amount_cents": 1_001, "paid_top_up_max_amount_cents": 1_500,
    }  # fmt: skip
    rule = {"trigger": "threshold", "threshold_credits": "5", "paid_credits": "1"}
    now = datetime.now(UTC)
    # 10.01 EUR at 3 EUR a credit: 3.33667 credits, rounded up so the money reaches the minimum.
    assert due_top_up(rule, wallet, Decimal(0), now) == TopUp(
        Decimal("3.33667"), Decimal(0), "threshold", None
    )
    ignoring = {**rule, "ignore_paid_top_up_limits": True}
    assert due_top_up(ignoring, wallet, Decimal(0), now) == TopUp(
        Decimal(1), Decimal(0), "threshold", None
    )
    # The maximum does not cut a rule's purchase.
    large = {**rule, "paid_credits": "600"}
    assert due_top_up(large, wallet, Decimal(0), now) == TopUp(
        Decimal(600), Decimal(0), "threshold", None
    )
