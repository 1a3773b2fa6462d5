"""The demo catalog, as Lago API payloads: taxes, metrics, plans, coupons, customers,
subscriptions, wallets, and the subscription changes (upgrades, downgrades, terminations and
resubscriptions) spread over the window, so its history shows MRR moving.

A change in the past is what Lago would have recorded had it been made on that day: the old
subscription ends (``ending_at``) the day before the new one starts (``subscription_at``) under
the same external id, at noon UTC so the local day is the same in every demo timezone. An
upgrade lands on any day (the old plan bills one day less); a downgrade at the end of the old
plan's billing period; a downgrade whose period ends after the window is requested at load time
and waits, pending, as Lago does.

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
    # Premium tickets (billed one by one, in advance) are rare: about one a day per heavy customer.
    "support_tickets": 0.05,
}
# Monthly list prices in USD cents; other currencies use the same numbers (a simple price book).
PLAN_TIERS = (("starter", 2_900, 14), ("growth", 29_900, 0), ("scale", 99_000, 30))


@dataclass(frozen=True)
class SubscriptionSpan:
    """One subscription of a customer's history: its plan tier and the days it is live."""

    tier: str
    start: date
    end: date | None = None  # the last live day; None while it runs
    kind: str = "start"  # how it began: start, upgrade, downgrade or resubscription


@dataclass(frozen=True)
class DemoCustomer:
    external_id: str
    currency: str
    timezone: str
    plan_tier: str  # of the first subscription
    started: date
    heavy: bool
    spans: tuple[SubscriptionSpan, ...] = ()
    # A downgrade requested at load time, pending until the current period ends.
    pending_downgrade: str | None = None

    def live_on(self, day: date) -> bool:
        return any(s.start <= day and (s.end is None or day <= s.end) for s in self.spans)


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
        started = first_day + timedelta(days=offset)
        end_day = first_day + timedelta(days=days)
        spans: tuple[SubscriptionSpan, ...] = (SubscriptionSpan(tier, started),)
        pending = None
        if index not in heavy:  # the heavy customers keep their plan
            spans, pending = history(rng, tier, started, max(started, first_day), end_day)
        customer = DemoCustomer(
            f"cust_{index:05d}", currency, timezone, tier, started, index in heavy, spans, pending
        )
        result.append(customer)
    return result


TIER_ORDER = ("starter", "growth", "scale")


def _billing_time(tier: str) -> str:
    return "anniversary" if tier == "scale" else "calendar"


def _period_ends(tier: str, started: date, after: date, before: date) -> list[date]:
    """First days of the billing periods of ``tier`` starting in (after, before): the 1st of
    each month for the calendar monthly tiers, the anniversaries of ``started`` for scale."""
    if tier == "scale":
        day = 28 if (started.month, started.day) == (2, 29) else started.day
        candidates = [date(year, started.month, day) for year in range(after.year, before.year + 1)]
    else:
        months = (before.year - after.year) * 12 + before.month - after.month
        candidates = [_month_start(after, n) for n in range(1, months + 1)]
    return [day for day in candidates if after < day < before]


def history(
    rng: random.Random, tier: str, started: date, first_live: date, end_day: date
) -> tuple[tuple[SubscriptionSpan, ...], str | None]:
    """A customer's subscriptions over the window, and a downgrade to request at load time.

    ``first_live`` is the first day of the window the customer is live; ``end_day`` the day
    after the window. Changes happen at least a day inside the window, so both sides of each
    are in the history.
    """
    rank = TIER_ORDER.index(tier)
    roll = rng.random()
    latest = end_day - timedelta(days=2)
    # Every subscription lives a whole day at least before it changes or ends.
    if roll < 0.10 and rank < 2:
        if first_live + timedelta(days=2) <= latest:
            day = first_live + timedelta(days=rng.randrange(2, (latest - first_live).days + 1))
            return _change(tier, started, day, TIER_ORDER[rank + 1], "upgrade"), None
    elif roll < 0.16 and rank > 0:
        lower = TIER_ORDER[rank - 1]
        after = first_live + timedelta(days=1)
        takeovers = _period_ends(tier, started, after, end_day - timedelta(days=1))
        if takeovers:
            return _change(tier, started, rng.choice(takeovers), lower, "downgrade"), None
        return (SubscriptionSpan(tier, started),), lower
    elif roll < 0.24:
        # Some come back, after at least one whole calendar month without a subscription:
        # they leave early enough for that (when the window allows it).
        returns = rng.random() < 0.4
        last_end = _month_start(latest, -1) - timedelta(days=1) if returns else latest
        if first_live + timedelta(days=2) <= last_end:
            ended = first_live + timedelta(days=rng.randrange(2, (last_end - first_live).days + 1))
            churned = SubscriptionSpan(tier, started, ended)
            if not returns:
                return (churned,), None
            back = min(_month_start(ended, 2) + timedelta(days=rng.randrange(10)), latest)
            return (churned, SubscriptionSpan(tier, back, kind="resubscription")), None
    return (SubscriptionSpan(tier, started),), None


def _month_start(day: date, months: int) -> date:
    """The first day of the month ``months`` after the month of ``day``."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _change(
    tier: str, started: date, day: date, new_tier: str, kind: str
) -> tuple[SubscriptionSpan, ...]:
    return (
        SubscriptionSpan(tier, started, day - timedelta(days=1)),
        SubscriptionSpan(new_tier, day, kind=kind),
    )


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


def noon_utc(day: date) -> str:
    """Noon UTC of ``day``: the same local day from UTC-11 to UTC+11 (every demo timezone)."""
    return f"{day.isoformat()}T12:00:00Z"


def _span_payload(customer: DemoCustomer, span: SubscriptionSpan) -> dict[str, Any]:
    # A plan change keeps the billing time of the subscription it replaces, as in Lago.
    billing_tier = customer.plan_tier if span.kind in ("upgrade", "downgrade") else span.tier
    payload = {
        "external_customer_id": customer.external_id,
        "external_id": subscription_id(customer),
        "plan_code": f"{span.tier}_{customer.currency.lower()}",
        "billing_time": _billing_time(billing_tier),
        "subscription_at": noon_utc(span.start),
    }
    if span.end is not None:
        # Terminated at the end of its last day's noon: that day is billed, the next is not.
        payload["ending_at"] = noon_utc(span.end)
    return payload


def subscription_payload(customer: DemoCustomer) -> dict[str, Any]:
    """The customer's first subscription (with its end when it ended in the window)."""
    return _span_payload(customer, customer.spans[0])


def subscription_id(customer: DemoCustomer) -> str:
    return f"sub_{customer.external_id}"


def subscription_changes(demo_customers: list[DemoCustomer]) -> list[dict[str, Any]]:
    """What follows each first subscription: the subscription that replaced it in the window
    (upgrade, downgrade, resubscription), or a downgrade requested now. One per customer at
    most, each created after every first subscription exists."""
    changes: list[dict[str, Any]] = []
    for customer in demo_customers:
        for span in customer.spans[1:]:
            changes.append({"kind": span.kind, **_span_payload(customer, span)})
        if customer.pending_downgrade is not None:
            changes.append(
                {
                    "kind": "downgrade",
                    "external_customer_id": customer.external_id,
                    "external_id": subscription_id(customer),
                    "plan_code": f"{customer.pending_downgrade}_{customer.currency.lower()}",
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
        "subscription_changes": subscription_changes(demo_customers),
    }
    return catalog, demo_customers
