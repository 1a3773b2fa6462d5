"""The hourly refresh of wallets' ongoing balances (the wallet_ongoing_balances job), as Lago's:
a wallet past its ``expiration_at`` is terminated, a wallet whose ongoing balance falls to zero
or below is notified once, and the recurring transaction rules that are due top wallets up.

An expired wallet's status becomes ``terminated`` with ``terminated_at`` its ``expiration_at``;
its credits stop paying invoices at its expiry whether or not the job has run (invoices of
billing days that start, in UTC, at or after it; orchestration/invoices/context.py).

A depleted wallet (``ongoing_balance_cents <= 0``) sends ``wallet.depleted_ongoing_balance`` once
per credit it ran through: the notification's revision is the wallet's latest settled inbound
movement, so a wallet topped up and depleted again is notified again.

Recurring transaction rules:

- An ``interval`` rule tops up once per interval (weekly, monthly, quarterly, semiannual,
  yearly) counted from its ``started_at``, else from the wallet's creation: in the first run on
  or after each anniversary, never on the start day itself. The movements of one anniversary
  have fixed ids, so a run repeated, or two runs at once, top up once.
- A ``threshold`` rule tops up when the wallet's ongoing balance in credits, with the purchases
  still waiting for their payment added, is at or below ``threshold_credits``.
- A rule past its ``expiration_at`` does nothing.
- Method ``fixed`` (the default) adds the rule's ``paid_credits`` and ``granted_credits``;
  method ``target`` buys what brings that balance to ``target_ongoing_balance``.

Paid credits are billed on a credit invoice and wait for its payment, as any purchase; granted
credits settle at once. The movements carry the rule's trigger as their ``source``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from api.schemas.charge_models import decimal_amount
from api.schemas.subscriptions import utc
from api.services.periods import period_start
from api.services.wallet_usage import UsageReadAhead
from api.services.wallets import (
    ZERO,
    bill_purchases,
    present_wallets,
    raised_to_minimum_top_up,
    transaction_row,
)
from api.storage.catalog import CatalogStore, Row
from api.storage.lookups import latest_by_ids
from orchestration.invoices.ids import record_id
from orchestration.webhooks import Notification

ACTOR = "wallet_ongoing_balances"


@dataclass(frozen=True)
class TopUp:
    paid: Decimal
    granted: Decimal
    source: str
    anniversary: datetime | None = None  # an interval rule's: fixes the movements' ids


@dataclass
class Refresh:
    movements: list[Row] = field(default_factory=list)  # the top-ups written
    depleted: list[Notification] = field(default_factory=list)
    terminated: list[Row] = field(default_factory=list)  # the wallets that expired


@dataclass(frozen=True)
class OrganizationWallets:
    organization_id: uuid.UUID
    wallets: list[Row]  # active, of customers not deleted
    customers: dict[uuid.UUID, Row]


def refresh_wallets(store: CatalogStore, now: datetime) -> Refresh:
    """Every organization's active wallets, their customers' current usage read in one request
    for all the organizations."""
    organizations = store.client.query(
        "SELECT DISTINCT organization_id FROM wallets FINAL WHERE is_deleted = 0"
        " AND status = 'active'"
    ).result_rows
    refresh = Refresh()
    found = [
        without_expired(store, active_wallets(store, organization_id), now, refresh)
        for (organization_id,) in organizations
    ]
    read_ahead = UsageReadAhead.read(
        store,
        [
            (organization.organization_id, customer["external_id"])
            for organization in found
            for customer in organization.customers.values()
        ],
    )
    for organization in found:
        refresh_organization(store, organization, now, refresh, read_ahead)
    return refresh


def active_wallets(store: CatalogStore, organization_id: uuid.UUID) -> OrganizationWallets:
    wallets = store.select("wallets", organization_id, "status = 'active'")
    customer_ids = [wallet["customer_id"] for wallet in wallets]
    customers = latest_by_ids(store, "customers", organization_id, customer_ids)
    wallets = [wallet for wallet in wallets if wallet["customer_id"] in customers]
    return OrganizationWallets(organization_id, wallets, customers)


def without_expired(
    store: CatalogStore, organization: OrganizationWallets, now: datetime, refresh: Refresh
) -> OrganizationWallets:
    """Terminate the organization's wallets past their expiration; the others, still active."""
    expired = [
        {**wallet, "status": "terminated", "terminated_at": instant(wallet["expiration_at"])}
        for wallet in organization.wallets
        if wallet["expiration_at"] is not None and instant(wallet["expiration_at"]) <= now
    ]
    store.write("wallets", expired, changed_by=ACTOR)
    refresh.terminated += expired
    ended = {wallet["id"] for wallet in expired}
    return OrganizationWallets(
        organization.organization_id,
        [wallet for wallet in organization.wallets if wallet["id"] not in ended],
        organization.customers,
    )


def refresh_organization(
    store: CatalogStore,
    organization: OrganizationWallets,
    now: datetime,
    refresh: Refresh,
    read_ahead: UsageReadAhead,
) -> None:
    organization_id, wallets = organization.organization_id, organization.wallets
    # Presented once, as the API shows them: the ongoing balances and the payload a depletion
    # webhook sends.
    presented = list(
        zip(wallets, present_wallets(store, organization_id, wallets, read_ahead), strict=True)
    )
    depleted = [
        (wallet, shown) for wallet, shown in presented if shown["ongoing_balance_cents"] <= 0
    ]
    refresh.depleted += depletion_notices(store, organization_id, depleted)
    pending = pending_purchases(store, organization_id)
    for wallet, shown in presented:
        expected = Decimal(shown["credits_ongoing_balance"]) + pending.get(wallet["id"], ZERO)
        customer = organization.customers[wallet["customer_id"]]
        refresh.movements += top_up_wallet(store, wallet, customer, expected, now)


def depletion_notices(
    store: CatalogStore, organization_id: uuid.UUID, depleted: list[tuple[Row, dict[str, Any]]]
) -> list[Notification]:
    """``wallet.depleted_ongoing_balance`` of each depleted wallet (with its payload), revised by
    the wallet's latest credit: sent once per credit the wallet ran through."""
    if not depleted:
        return []
    latest_credits = latest_credit_ids(store, organization_id)
    return [
        Notification(
            organization_id,
            "wallet.depleted_ongoing_balance",
            "wallet",
            wallet["id"],
            payload,
            revision=str(latest_credits.get(wallet["id"], "")),
        )  # fmt: skip
        for wallet, payload in depleted
    ]


def top_up_wallet(
    store: CatalogStore, wallet: Row, customer: Row, expected: Decimal, now: datetime
) -> list[Row]:
    """The wallet's rules that are due, given the balance expected once its pending purchases
    are paid; the movements written."""
    written: list[Row] = []
    for rule in json.loads(wallet["recurring_transaction_rules"]):
        top_up = due_top_up(rule, wallet, expected, now)
        if top_up is None:
            continue
        movements = top_up_movements(store, wallet["organization_id"], wallet, rule, top_up)
        store.write("wallet_transactions", movements, changed_by=ACTOR)
        bill_purchases(store, wallet, customer, movements, ACTOR)
        expected += top_up.paid + top_up.granted
        written += movements
    return written


def latest_credit_ids(
    store: CatalogStore, organization_id: uuid.UUID
) -> dict[uuid.UUID, uuid.UUID]:
    """Each wallet's latest settled inbound movement: what a depletion is counted from."""
    result = store.client.query(
        "SELECT wallet_id, argMax(id, settled_at) FROM wallet_transactions FINAL"
        " WHERE organization_id = {org:UUID} AND is_deleted = 0 AND status = 'settled'"
        " AND transaction_type = 'inbound' GROUP BY wallet_id",
        parameters={"org": organization_id},
    )
    return {wallet_id: movement_id for wallet_id, movement_id in result.result_rows}


def due_top_up(rule: dict[str, Any], wallet: Row, expected: Decimal, now: datetime) -> TopUp | None:
    """What the rule adds now, given the balance expected once pending purchases are paid."""
    trigger = rule.get("trigger")
    anniversary = None
    if rule.get("expiration_at") and instant(rule["expiration_at"]) <= now:
        return None
    if trigger == "threshold":
        threshold = decimal_amount(rule.get("threshold_credits"))
        if threshold is None or expected > threshold:
            return None
    elif trigger == "interval" and rule.get("interval"):
        anchor = instant(rule.get("started_at") or wallet["created_at"])
        anniversary = period_start(rule["interval"], "anniversary", anchor, now)
        if anniversary.date() <= anchor.date():
            return None
    else:
        return None
    if rule.get("method") == "target":
        target = decimal_amount(rule.get("target_ongoing_balance"))
        if target is None or target <= expected:
            return None
        paid, granted = target - expected, ZERO
    else:
        paid = decimal_amount(rule.get("paid_credits")) or ZERO
        granted = decimal_amount(rule.get("granted_credits")) or ZERO
    if not rule.get("ignore_paid_top_up_limits"):
        paid = raised_to_minimum_top_up(wallet, paid)
    if paid <= 0 and granted <= 0:
        return None
    return TopUp(paid, granted, trigger, anniversary)


def instant(moment: str | datetime) -> datetime:
    """A rule's stored instant (ISO text) or a row's, as an aware UTC datetime."""
    parsed = utc(datetime.fromisoformat(moment) if isinstance(moment, str) else moment)
    assert parsed is not None
    return parsed


def top_up_movements(
    store: CatalogStore,
    organization_id: uuid.UUID,
    wallet: Row,
    rule: dict[str, Any],
    top_up: TopUp,
) -> list[Row]:
    movements = []
    for amount, kind in ((top_up.paid, "purchased"), (top_up.granted, "granted")):
        if amount <= 0:
            continue
        fixed_id = None
        if top_up.anniversary is not None:
            key = (wallet["id"], rule.get("lago_id"), top_up.anniversary.date(), kind)
            fixed_id = record_id("wallet-top-up", *key)
            if store.first(
                "wallet_transactions", organization_id, "id = {id:UUID}", {"id": fixed_id}
            ):
                continue  # this anniversary's top-up is already written
        movements.append(
            transaction_row(
                organization_id, wallet, amount, kind, source=top_up.source, transaction_id=fixed_id
            )
        )
    return movements


def pending_purchases(store: CatalogStore, organization_id: uuid.UUID) -> dict[uuid.UUID, Decimal]:
    """Credits bought and not paid yet, per wallet: a threshold does not buy them twice."""
    result = store.client.query(
        "SELECT wallet_id, sum(credit_amount) FROM wallet_transactions FINAL"
        " WHERE organization_id = {org:UUID} AND is_deleted = 0"
        " AND transaction_status = 'purchased' AND status = 'pending' GROUP BY wallet_id",
        parameters={"org": organization_id},
    )
    return {wallet_id: Decimal(credits) for wallet_id, credits in result.result_rows}
