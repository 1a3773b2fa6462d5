"""Wallets: /api/v1/wallets (by lago_id); credits: /api/v1/wallet_transactions and
/api/v1/wallets/{id}/wallet_transactions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query

from api.deps import Caller, CurrentCaller, Store
from api.errors import FieldErrors, NotFound
from api.pagination import Page
from api.reference import CURRENCIES
from api.routers.invoices import AppSettings, notify_later
from api.routers.metadata import metadata_router
from api.schemas.charge_models import decimal_amount
from api.schemas.wallets import (
    WalletEnvelope,
    WalletTransactionEnvelope,
    present_transaction,
)
from api.services.wallets import (
    apply_wallet_fields,
    balances,
    bill_purchases,
    check_paid_top_up_limits,
    credits,
    present_wallets,
    transaction_notifications,
    transaction_row,
)
from api.storage.catalog import CatalogStore, Row, new_row, utc_now
from api.storage.invoices import InvoiceRecords
from api.storage.lookups import find_by, find_by_id
from warehouse.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["wallets"])


def wallet_defaults() -> dict[str, Any]:
    return {
        "name": None,
        "code": None,
        "priority": 50,
        "status": "active",
        "expiration_at": None,
        "terminated_at": None,
        "applies_to_fee_types": [],
        "applies_to_billable_metric_ids": [],
        "invoice_requires_successful_payment": 0,
        "paid_top_up_min_amount_cents": None,
        "paid_top_up_max_amount_cents": None,
        "recurring_transaction_rules": "[]",
        "metadata": "{}",
    }


def find_wallet(store: CatalogStore, caller: Caller, lago_id: str) -> Row:
    return find_by_id(store, "wallets", caller.organization_id, lago_id, resource="wallet")


def present(store: CatalogStore, caller: Caller, row: Row) -> dict[str, Any]:
    return present_wallets(store, caller.organization_id, [row])[0]


def notify_created(
    background: BackgroundTasks, settings: Settings, store: CatalogStore, movements: list[Row]
) -> None:
    notifications = transaction_notifications(movements, "wallet_transaction.created")
    notify_later(background, settings, InvoiceRecords(store.client), notifications)


@router.post("/wallets")
def create_wallet(
    envelope: WalletEnvelope,
    store: Store,
    caller: CurrentCaller,
    settings: AppSettings,
    background: BackgroundTasks,
) -> dict[str, Any]:
    body = envelope.wallet
    errors = FieldErrors()
    for field in ("external_customer_id", "rate_amount", "currency"):
        if getattr(body, field) is None:
            errors.add(field, "value_is_mandatory")
    errors.raise_if_any()
    org = caller.organization_id
    customer = find_by(
        store, "customers", org, "external_id", body.external_customer_id, resource="customer"
    )
    rate = decimal_amount(body.rate_amount)
    if rate is None or rate == 0:
        errors.add("rate_amount", "invalid_rate_amount")
    if body.currency not in CURRENCIES:
        errors.add("currency", "value_is_invalid")
    elif customer["currency"] not in (None, body.currency):
        errors.add("currency", "currencies_does_not_match")
    paid = credits(body.paid_credits, "paid_credits", errors)
    granted = credits(body.granted_credits, "granted_credits", errors)
    row = new_row(
        org,
        **wallet_defaults(),
        customer_id=customer["id"],
        currency=body.currency,
        rate_amount=rate,
    )
    apply_wallet_fields(store, caller, row, body, errors)
    check_paid_top_up_limits(row, paid, errors, ignored=body.ignore_paid_top_up_limits_on_creation)
    errors.raise_if_any()
    movements = [
        transaction_row(org, row, amount, kind, name=body.transaction_name)
        for amount, kind in ((granted, "granted"), (paid, "purchased"))
        if amount > 0
    ]
    # Movements first: until the wallet row exists, nothing refers to them.
    store.write("wallet_transactions", movements, changed_by=caller.actor)
    store.write("wallets", [row], changed_by=caller.actor)
    if customer["currency"] is None:
        store.write("customers", [{**customer, "currency": body.currency}], changed_by=caller.actor)
    bill_purchases(store, row, customer, movements, caller.actor)
    notify_created(background, settings, store, movements)
    return {"wallet": present(store, caller, row)}


@router.put("/wallets/{lago_id}")
def update_wallet(
    lago_id: str, envelope: WalletEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    row = find_wallet(store, caller, lago_id)
    errors = FieldErrors()
    apply_wallet_fields(store, caller, row, envelope.wallet, errors)
    errors.raise_if_any()
    store.write("wallets", [row], changed_by=caller.actor)
    return {"wallet": present(store, caller, row)}


@router.get("/wallets/{lago_id}")
def get_wallet(lago_id: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {"wallet": present(store, caller, find_wallet(store, caller, lago_id))}


@router.delete("/wallets/{lago_id}")
def terminate_wallet(lago_id: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = find_wallet(store, caller, lago_id)
    if row["status"] != "terminated":
        row = {**row, "status": "terminated", "terminated_at": utc_now()}
        store.write("wallets", [row], changed_by=caller.actor)
    return {"wallet": present(store, caller, row)}


@router.get("/wallets")
def list_wallets(
    page: Page,
    store: Store,
    caller: CurrentCaller,
    external_customer_id: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    org = caller.organization_id
    where, parameters = "", {}
    if external_customer_id is not None:
        customer = find_by(
            store, "customers", org, "external_id", external_customer_id, resource="customer"
        )
        where, parameters = "customer_id = {c:UUID}", {"c": customer["id"]}
    rows = store.select("wallets", org, where, parameters, limit=page.per_page, offset=page.offset)
    total = store.count("wallets", org, where, parameters)
    return {
        "wallets": present_wallets(store, caller.organization_id, rows),
        "meta": page.meta(total),
    }


@router.post("/wallet_transactions")
def create_transactions(
    envelope: WalletTransactionEnvelope,
    store: Store,
    caller: CurrentCaller,
    settings: AppSettings,
    background: BackgroundTasks,
) -> dict[str, Any]:
    body = envelope.wallet_transaction
    errors = FieldErrors()
    if body.wallet_id is None:
        errors.add("wallet_id", "value_is_mandatory")
        errors.raise_if_any()
    org = caller.organization_id
    wallet = find_wallet(store, caller, str(body.wallet_id))
    if wallet["status"] != "active":
        raise NotFound("wallet")
    paid = credits(body.paid_credits, "paid_credits", errors)
    granted = credits(body.granted_credits, "granted_credits", errors)
    voided = credits(body.voided_credits, "voided_credits", errors)
    check_paid_top_up_limits(wallet, paid, errors, ignored=body.ignore_paid_top_up_limits)
    errors.raise_if_any()
    with store.locks.hold(org, f"wallet:{wallet['id']}"):
        balance = balances(store, org, [wallet["id"]]).get(wallet["id"], (0, 0))[0]
        if voided > balance:
            errors.add("voided_credits", "insufficient_credits")
            errors.raise_if_any()
        movements = [
            transaction_row(org, wallet, amount, kind, name=body.name, metadata=body.metadata)
            for amount, kind in ((paid, "purchased"), (granted, "granted"), (voided, "voided"))
            if amount > 0
        ]
        store.write("wallet_transactions", movements, changed_by=caller.actor)
    customer = find_by_id(store, "customers", org, str(wallet["customer_id"]), resource="customer")
    bill_purchases(store, wallet, customer, movements, caller.actor)
    notify_created(background, settings, store, movements)
    return {"wallet_transactions": [present_transaction(m) for m in movements]}


@router.get("/wallets/{lago_id}/wallet_transactions")
def list_transactions(
    lago_id: str,
    page: Page,
    store: Store,
    caller: CurrentCaller,
    status: Literal["pending", "settled", "failed"] | None = None,
    transaction_type: Literal["inbound", "outbound"] | None = None,
    transaction_status: Literal["purchased", "granted", "voided", "invoiced"] | None = None,
) -> dict[str, Any]:
    wallet = find_wallet(store, caller, lago_id)
    conditions = ["wallet_id = {w:UUID}"]
    parameters: dict[str, Any] = {"w": wallet["id"]}
    for column, value in (
        ("status", status),
        ("transaction_type", transaction_type),
        ("transaction_status", transaction_status),
    ):
        if value is not None:
            conditions.append(f"{column} = {{{column}:String}}")
            parameters[column] = value
    where = " AND ".join(conditions)
    org = caller.organization_id
    rows = store.select(
        "wallet_transactions", org, where, parameters, limit=page.per_page, offset=page.offset
    )
    total = store.count("wallet_transactions", org, where, parameters)
    return {"wallet_transactions": [present_transaction(r) for r in rows], "meta": page.meta(total)}


router.include_router(metadata_router("wallets", find_wallet), prefix="/wallets")
