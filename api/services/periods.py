"""Billing period boundaries of a subscription, in UTC, for what the API shows.

Rating computes periods itself (dbt); the API only needs them to show the current period and
when a pending downgrade takes over. Calendar periods start on week (Monday), month, quarter,
half-year or year boundaries; anniversary periods start on the subscription day, a 31st falling
on the last day of shorter months.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

MONTHS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "yearly": 12}


def _add_months(moment: datetime, months: int, anchor_day: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(anchor_day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_start(interval: str, billing_time: str, anchor: datetime, at: datetime) -> datetime:
    """Start of the period containing ``at`` (midnight UTC)."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    anchor_day = anchor.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "weekly":
        offset = (
            (day.weekday() - anchor_day.weekday()) % 7
            if billing_time == "anniversary"
            else day.weekday()
        )
        return day - timedelta(days=offset)
    months = MONTHS[interval]
    if billing_time == "calendar":
        month = (day.month - 1) // months * months + 1
        return day.replace(month=month, day=1)
    elapsed = (day.year - anchor_day.year) * 12 + day.month - anchor_day.month
    start = _add_months(anchor_day, elapsed - elapsed % months, anchor_day.day)
    if start > day:
        start = _add_months(anchor_day, elapsed - elapsed % months - months, anchor_day.day)
    return start


def next_period_start(interval: str, billing_time: str, anchor: datetime, at: datetime) -> datetime:
    start = period_start(interval, billing_time, anchor, at)
    if interval == "weekly":
        return start + timedelta(days=7)
    anchor_day = anchor.astimezone(UTC).day if billing_time == "anniversary" else 1
    return _add_months(start, MONTHS[interval], anchor_day)


def current_period(
    interval: str, billing_time: str, anchor: datetime, at: datetime
) -> tuple[datetime, datetime]:
    """(start, end) of the period containing ``at``; the end is the last second (23:59:59)."""
    start = period_start(interval, billing_time, anchor, at)
    return start, next_period_start(interval, billing_time, anchor, at) - timedelta(seconds=1)
