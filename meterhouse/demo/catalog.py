"""The demo catalog, as Lago API payloads: taxes, metrics, plans, coupons, customers,
subscriptions, wallets, and the subscription changes (upgrades, downgrades, terminations).

Everything derives from a seeded ``random.Random`` and the window's first day, so a seed gives the
same catalog on every machine. Charges name their metric by code; the loader swaps in the id the
billing API returns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

CURRENCIES = (("USD", 0.6), ("EUR", 0.25), ("GBP", 0.15))
# (country, timezone, tax code or None, currency it usually pays in)
LOCATIONS = (
    ("US", "America/New_York", None, "USD"),
    ("US", "America/Los_Angeles", None, "USD"),
    ("US", "America/Chicago", None, "USD"),
    ("CA", "America/Toronto", None, "USD"),
    ("BR", "America/Sao_Paulo", None, "USD"),
    ("JP", "Asia/Tokyo", None, "USD"),
    ("AU", "Australia/Sydney", "gst_au", "USD"),
    ("FR", "Europe/Paris", "vat_fr", "EUR"),
    ("DE", "Europe/Berlin", "vat_de", "EUR"),
    ("ES", "Europe/Madrid", "vat_es", "EUR"),
    ("GB", "Europe/London", "vat_gb", "GBP"),
    ("IN", "Asia/Kolkata", None, "USD"),
)
TAXES = (
    {"code": "vat_fr", "name": "TVA France", "rate": "20.0"},
    {"code": "vat_de", "name": "MwSt Deutschland", "rate": "19.0"},
    {"code": "vat_es", "name": "IVA España", "rate": "21.0"},
    {"code": "vat_gb", "name": "VAT United Kingdom", "rate": "20.0"},
    {"code": "gst_au", "name": "GST Australia", "rate": "10.0"},
)
REGIONS = ("us-east", "eu-west", "ap-south")
MODELS = ("small", "large")

# One metric per aggregation type (and a recurring and a rounded one).
METRICS: tuple[dict[str, Any], ...] = (
    {
        "code": "api_calls",
        "name": "API calls",
        "aggregation_type": "count_agg",
        "filters": [
            {"key": "region", "values": list(REGIONS)},
            {"key": "method", "values": ["GET", "POST"]},
        ],
    },
    {
        "code": "data_transfer_gb",
        "name": "Data transfer",
        "aggregation_type": "sum_agg",
        "field_name": "gb",
        "rounding_function": "ceil",
        "rounding_precision": 2,
    },
    {
        "code": "peak_connections",
        "name": "Peak connections",
        "aggregation_type": "max_agg",
        "field_name": "connections",
    },
    {
        "code": "active_seats",
        "name": "Active seats",
        "aggregation_type": "unique_count_agg",
        "field_name": "user_id",
        "recurring": True,
    },
    {
        "code": "projects",
        "name": "Projects",
        "aggregation_type": "latest_agg",
        "field_name": "count",
    },
    {
        "code": "storage_gb",
        "name": "Storage",
        "aggregation_type": "weighted_sum_agg",
        "field_name": "gb_delta",
        "weighted_interval": "seconds",
        "recurring": True,
    },
    {
        "code": "compute_hours",
        "name": "Compute hours",
        "aggregation_type": "sum_agg",
        "field_name": "hours",
    },
    {
        "code": "payment_volume",
        "name": "Payment volume",
        "aggregation_type": "sum_agg",
        "field_name": "amount",
    },
    {"code": "support_tickets", "name": "Support tickets", "aggregation_type": "count_agg"},
    {
        "code": "llm_tokens",
        "name": "LLM tokens",
        "aggregation_type": "sum_agg",
        "field_name": "tokens",
        "filters": [{"key": "model", "values": list(MODELS)}],
    },
)
# Relative share of each metric in the event stream; the cheap-to-send ones dominate, as in life.
METRIC_WEIGHTS = {
    "api_calls": 60,
    "data_transfer_gb": 10,
    "peak_connections": 5,
    "active_seats": 8,
    "projects": 1,
    "storage_gb": 2,
    "compute_hours": 6,
    "payment_volume": 4,
    "llm_tokens": 4,
    "support_tickets": 0.5,
}
# Monthly list prices in USD cents; other currencies use the same numbers (a simple price book).
PLAN_TIERS = (("starter", 2_900, 14), ("growth", 29_900, 0), ("scale", 99_000, 30))


@dataclass(frozen=True)
class DemoCustomer:
    external_id: str
    currency: str
    timezone: str
    plan_tier: str
    started: date
    heavy: bool


def _charges(tier: str) -> list[dict[str, Any]]:
    """Every charge model appears in some plan; growth and scale carry the richer ones."""
    api_calls: dict[str, Any] = {
        "billable_metric_code": "api_calls",
        "charge_model": "standard",
        "properties": {"amount": "0.0002"},
        "filters": [
            {
                "values": {"region": ["eu-west"]},
                "properties": {"amount": "0.00025"},
                "invoice_display_name": "API calls (EU)",
            },
            {
                "values": {"region": ["eu-west"], "method": ["POST"]},
                "properties": {"amount": "0.0004"},
                "invoice_display_name": "API writes (EU)",
            },
        ],
    }
    seats = {
        "billable_metric_code": "active_seats",
        "charge_model": "standard",
        "prorated": True,
        "properties": {"amount": "8"},
    }
    transfer = {
        "billable_metric_code": "data_transfer_gb",
        "charge_model": "package",
        "properties": {"amount": "5", "package_size": 100, "free_units": 50},
    }
    if tier == "starter":
        return [api_calls, seats, transfer]
    graduated_calls = {
        "billable_metric_code": "api_calls",
        "charge_model": "graduated",
        "properties": {
            "graduated_ranges": [
                {"from_value": 0, "to_value": 100_000, "per_unit_amount": "0", "flat_amount": "0"},
                {
                    "from_value": 100_001,
                    "to_value": 1_000_000,
                    "per_unit_amount": "0.0001",
                    "flat_amount": "10",
                },
                {
                    "from_value": 1_000_001,
                    "to_value": None,
                    "per_unit_amount": "0.00005",
                    "flat_amount": "0",
                },
            ]
        },
    }
    storage = {
        "billable_metric_code": "storage_gb",
        "charge_model": "volume",
        "properties": {
            "volume_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10", "flat_amount": "0"},
                {
                    "from_value": 101,
                    "to_value": None,
                    "per_unit_amount": "0.08",
                    "flat_amount": "5",
                },
            ]
        },
    }
    connections = {
        "billable_metric_code": "peak_connections",
        "charge_model": "standard",
        "properties": {"amount": "0.5"},
    }
    projects = {
        "billable_metric_code": "projects",
        "charge_model": "standard",
        "properties": {"amount": "3"},
    }
    compute = {
        "billable_metric_code": "compute_hours",
        "charge_model": "standard",
        "min_amount_cents": 1_000,
        "properties": {"amount": "0.12"},
    }
    charges: list[dict[str, Any]] = [
        graduated_calls,
        seats,
        transfer,
        storage,
        connections,
        projects,
        compute,
    ]
    if tier == "scale":
        charges += [
            {
                "billable_metric_code": "payment_volume",
                "charge_model": "percentage",
                "properties": {
                    "rate": "0.5",
                    "fixed_amount": "0.10",
                    "free_units_per_events": 10,
                    "per_transaction_min_amount": "0.05",
                    "per_transaction_max_amount": "20",
                },
            },
            {
                "billable_metric_code": "payment_volume",
                "charge_model": "graduated_percentage",
                "invoice_display_name": "Payment volume (platform fee)",
                "properties": {
                    "graduated_percentage_ranges": [
                        {"from_value": 0, "to_value": 10_000, "rate": "0.2", "flat_amount": "0"},
                        {"from_value": 10_001, "to_value": None, "rate": "0.1", "flat_amount": "1"},
                    ]
                },
            },
            {
                "billable_metric_code": "llm_tokens",
                "charge_model": "dynamic",
                "properties": {"grouped_by": ["model"]},
            },
            {
                # Billed as each ticket arrives: pay in advance suits rare, costly events.
                "billable_metric_code": "support_tickets",
                "charge_model": "standard",
                "pay_in_advance": True,
                "invoiceable": True,
                "invoice_display_name": "Premium support tickets",
                "properties": {"amount": "25"},
            },
        ]
    return charges


def plans() -> list[dict[str, Any]]:
    """Each tier in each currency; scale is yearly with a commitment and usage thresholds."""
    result = []
    for currency, _ in CURRENCIES:
        for tier, amount_cents, trial_days in PLAN_TIERS:
            plan: dict[str, Any] = {
                "code": f"{tier}_{currency.lower()}",
                "name": f"{tier.title()} ({currency})",
                "interval": "yearly" if tier == "scale" else "monthly",
                "amount_cents": amount_cents * (10 if tier == "scale" else 1),
                "amount_currency": currency,
                "trial_period": trial_days,
                "pay_in_advance": tier != "starter",
                "charges": _charges(tier),
            }
            if tier == "scale":
                plan["bill_charges_monthly"] = True
                plan["minimum_commitment"] = {"amount_cents": 1_500_000}
                plan["usage_thresholds"] = [
                    {"threshold_display_name": "First 1k", "amount_cents": 100_000},
                    {
                        "threshold_display_name": "Every 5k",
                        "amount_cents": 500_000,
                        "recurring": True,
                    },
                ]
            result.append(plan)
    return result


def coupons() -> list[dict[str, Any]]:
    return [
        {
            "code": "welcome_10",
            "name": "Welcome 10%",
            "coupon_type": "percentage",
            "percentage_rate": "10",
            "frequency": "once",
            "expiration": "no_expiration",
        },
        {
            "code": "startup_50",
            "name": "Startup credit",
            "coupon_type": "fixed_amount",
            "amount_cents": 5_000,
            "amount_currency": "USD",
            "frequency": "recurring",
            "frequency_duration": 3,
            "expiration": "no_expiration",
        },
        {
            "code": "partner_5",
            "name": "Partner 5%",
            "coupon_type": "percentage",
            "percentage_rate": "5",
            "frequency": "forever",
            "expiration": "no_expiration",
            "applies_to": {"plan_codes": ["growth_usd", "growth_eur", "growth_gbp"]},
        },
    ]


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([value for value, _ in pairs], [weight for _, weight in pairs])[0]


def customers(rng: random.Random, count: int, first_day: date, days: int) -> list[DemoCustomer]:
    """Customers across currencies and timezones; a few heavy ones; start dates spread out."""
    heavy = {0, 1, 2} if count > 10 else {0}
    result = []
    for index in range(count):
        currency = _weighted(rng, CURRENCIES)
        locations = [loc for loc in LOCATIONS if loc[3] == currency]
        _, timezone, _, _ = rng.choice(locations)
        tier = (
            "scale"
            if index in heavy
            else _weighted(rng, (("starter", 0.55), ("growth", 0.35), ("scale", 0.10)))
        )
        # Two thirds were customers before the window; the rest arrive during it.
        offset = -rng.randrange(1, 365) if rng.random() < 0.66 else rng.randrange(0, days)
        result.append(
            DemoCustomer(
                f"cust_{index:05d}",
                currency,
                timezone,
                tier,
                first_day + timedelta(days=offset),
                index in heavy,
            )
        )
    return result


def customer_payload(customer: DemoCustomer, rng: random.Random) -> dict[str, Any]:
    country, _, tax_code, _ = next(loc for loc in LOCATIONS if loc[1] == customer.timezone)
    number = int(customer.external_id.split("_")[1])
    return {
        "external_id": customer.external_id,
        "name": f"Demo Customer {number:03d}",
        "email": f"billing+{number}@customer{number}.example",
        "currency": customer.currency,
        "timezone": customer.timezone,
        "country": country,
        "tax_codes": [tax_code] if tax_code else [],
        "net_payment_term": rng.choice((0, 15, 30)),
        # Most pay by card through Stripe (localstripe locally); the rest are invoiced manually.
        "billing_configuration": (
            {"payment_provider": "stripe", "sync_with_provider": True} if rng.random() < 0.8 else {}
        ),
        "metadata": [
            {
                "key": "segment",
                "value": "enterprise" if customer.heavy else "self-serve",
                "display_in_invoice": False,
            }
        ],
    }


def subscription_payload(customer: DemoCustomer) -> dict[str, Any]:
    return {
        "external_customer_id": customer.external_id,
        "external_id": subscription_id(customer),
        "plan_code": f"{customer.plan_tier}_{customer.currency.lower()}",
        "billing_time": "anniversary" if customer.plan_tier == "scale" else "calendar",
        "subscription_at": f"{customer.started.isoformat()}T00:00:00Z",
    }


def subscription_id(customer: DemoCustomer) -> str:
    return f"sub_{customer.external_id}"


TIER_ORDER = ("starter", "growth", "scale")


def subscription_changes(
    rng: random.Random, demo_customers: list[DemoCustomer]
) -> list[dict[str, Any]]:
    """Upgrades, downgrades and terminations, applied after the subscriptions exist."""
    changes: list[dict[str, Any]] = []
    for customer in demo_customers:
        if customer.heavy:
            continue
        roll = rng.random()
        rank = TIER_ORDER.index(customer.plan_tier)
        if roll < 0.10 and rank < 2:
            kind, tier = "upgrade", TIER_ORDER[rank + 1]
        elif roll < 0.15 and rank > 0:
            kind, tier = "downgrade", TIER_ORDER[rank - 1]
        elif roll < 0.22:
            changes.append({"kind": "termination", "external_id": subscription_id(customer)})
            continue
        else:
            continue
        changes.append(
            {
                "kind": kind,
                "external_customer_id": customer.external_id,
                "external_id": subscription_id(customer),
                "plan_code": f"{tier}_{customer.currency.lower()}",
            }
        )
    return changes


def applied_coupons(rng: random.Random, demo_customers: list[DemoCustomer]) -> list[dict[str, Any]]:
    result = []
    for customer in demo_customers:
        roll = rng.random()
        if roll < 0.08:
            result.append(
                {"external_customer_id": customer.external_id, "coupon_code": "welcome_10"}
            )
        elif roll < 0.12 and customer.currency == "USD":
            result.append(
                {"external_customer_id": customer.external_id, "coupon_code": "startup_50"}
            )
        elif roll < 0.15 and customer.plan_tier == "growth":
            result.append(
                {"external_customer_id": customer.external_id, "coupon_code": "partner_5"}
            )
    return result


def wallets(demo_customers: list[DemoCustomer]) -> list[dict[str, Any]]:
    """Prepaid credits for the first heavy customer."""
    owner = next(customer for customer in demo_customers if customer.heavy)
    return [
        {
            "external_customer_id": owner.external_id,
            "name": "Prepaid credits",
            "currency": owner.currency,
            "rate_amount": "1",
            "paid_credits": "0",
            "granted_credits": "500",
        }
    ]


def build_catalog(
    rng: random.Random, customer_count: int, first_day: date, days: int
) -> tuple[dict[str, Any], list[DemoCustomer]]:
    demo_customers = customers(rng, customer_count, first_day, days)
    catalog = {
        "taxes": [dict(tax) for tax in TAXES],
        "billable_metrics": [dict(metric) for metric in METRICS],
        "plans": plans(),
        "coupons": coupons(),
        "customers": [customer_payload(customer, rng) for customer in demo_customers],
        "subscriptions": [subscription_payload(customer) for customer in demo_customers],
        "applied_coupons": applied_coupons(rng, demo_customers),
        "wallets": wallets(demo_customers),
        "subscription_changes": subscription_changes(rng, demo_customers),
    }
    return catalog, demo_customers
