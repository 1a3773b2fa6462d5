"""The sidebar filters every page shares, and the SQL conditions they turn into."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.data import query
from orchestration.invoices.money import from_cents

CONVERTED = "All currencies, converted to USD"
FX_CURRENCY = "USD"


@dataclass(frozen=True)
class Filters:
    organization_id: uuid.UUID
    start: date
    end: date
    currency: str  # a currency code, or CONVERTED
    plans: tuple[str, ...] = ()
    fx_rates: dict[str, Decimal] = field(default_factory=dict)

    @property
    def converting(self) -> bool:
        return self.currency == CONVERTED

    @property
    def display_currency(self) -> str:
        return FX_CURRENCY if self.converting else self.currency

    def where(
        self, *, date_column: str | None = None, plan_column: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """SQL conditions for a mart with organization_id and currency columns."""
        conditions = ["organization_id = {organization_id:UUID}"]
        parameters: dict[str, Any] = {"organization_id": self.organization_id}
        if self.converting:
            conditions.append("currency in {currencies:Array(String)}")
            parameters["currencies"] = sorted(self.fx_rates)
        else:
            conditions.append("currency = {currency:String}")
            parameters["currency"] = self.currency
        if date_column:
            conditions.append(f"{date_column} between {{start:Date}} and {{end:Date}}")
            parameters.update(start=self.start, end=self.end)
        if plan_column and self.plans:
            conditions.append(f"{plan_column} in {{plans:Array(String)}}")
            parameters["plans"] = list(self.plans)
        return " and ".join(conditions), parameters

    def money(
        self, frame: pd.DataFrame, by: list[str], amounts: list[str], *, cents: bool = False
    ) -> pd.DataFrame:
        """Amounts of ``frame`` (one row per currency and ``by``) in the display currency.

        Minor units become major units first; when converting, each currency is multiplied by
        its rate from the FX table before rows of different currencies are added.
        """
        if frame.empty:
            return frame.drop(columns=["currency"], errors="ignore")
        frame = frame.copy()
        for column in amounts:
            converted = [
                self._in_display_currency(value, currency, cents)
                for value, currency in zip(frame[column], frame["currency"], strict=True)
            ]
            frame[column] = pd.Series(converted, index=frame.index, dtype=object)
        frame = frame.drop(columns=["currency"])
        if not by:
            return frame[amounts].sum().to_frame().T
        return frame.groupby(by, as_index=False, sort=True)[amounts].sum()

    def _in_display_currency(self, value: Any, currency: str, cents: bool) -> Decimal:
        amount = from_cents(int(value), currency) if cents else Decimal(value)
        return amount * self.fx_rates[currency] if self.converting else amount

    def format(self, amount: object) -> str:
        """An amount (Decimal, or an integer sum of an empty column) in the display currency."""
        if amount is None:
            return "-"
        return f"{Decimal(str(amount)):,.2f} {self.display_currency}"


def _organizations() -> pd.DataFrame:
    """Every organization with what its filters offer (fct_dashboard_filters): the months with
    MRR (first month, last measured day), its currencies and its plan codes."""
    return query(
        "select o.organization_id as organization_id, o.name as name,"
        " f.first_month as first, f.last_measured_on as last, f.currencies as currencies,"
        " f.plan_codes as plans"
        " from (select organization_id, name from organizations final where is_deleted = 0) as o"
        " left join fct_dashboard_filters as f on f.organization_id = o.organization_id"
        " order by o.name"
    )


def _fx_rates(as_of: date) -> dict[str, Decimal]:
    """The latest rate of each currency valid on ``as_of``, from the whole (small) FX table,
    read once whatever the date range."""
    frame = query("select currency, valid_from, rate_to_usd from fx_rates order by valid_from")
    valid = frame[frame["valid_from"] <= as_of]
    return {
        str(currency): Decimal(str(rate))
        for currency, rate in zip(valid["currency"], valid["rate_to_usd"], strict=True)
    }


def _month_span(first: date, last: date) -> tuple[date, date]:
    """The default date range: the months with MRR, or this month when there is none yet."""
    today = date.today()
    if pd.isna(first) or first.year < 1971:
        return date(today.year, today.month, 1), today
    return first, last


def sidebar_filters() -> Filters | None:
    """Draw the sidebar; None when there is nothing to show yet."""
    organizations = _organizations()
    if organizations.empty:
        st.info("No organization in the warehouse yet.")
        return None
    scopes = organizations.set_index("organization_id")
    organization_id = st.sidebar.selectbox(
        "Organization",
        list(scopes.index),
        format_func=lambda o: scopes.at[o, "name"],
        key="organization",
    )
    scope = scopes.loc[organization_id]
    first, last = _month_span(scope["first"], scope["last"])
    picked = st.sidebar.date_input(
        "Date range", value=(first, last), key="date_range", format="YYYY-MM-DD"
    )
    start, end = (picked[0], picked[-1]) if isinstance(picked, tuple) and picked else (first, last)
    currencies = list(scope["currencies"])
    fx_rates = _fx_rates(end)
    options = currencies + ([CONVERTED] if len(currencies) > 1 else [])
    if not options:
        st.info("No revenue for this organization yet: build the analytics marts first.")
        return None
    currency = st.sidebar.selectbox("Currency", options, key="currency")
    plans = list(scope["plans"])
    chosen = st.sidebar.multiselect("Plans", plans, key="plans", placeholder="All plans")
    filters = Filters(organization_id, start, end, currency, tuple(chosen), fx_rates)
    if filters.converting:
        missing = [c for c in currencies if c not in fx_rates]
        st.sidebar.caption("FX rates used (1 unit = USD):")
        st.sidebar.dataframe(pd.DataFrame(sorted(fx_rates.items()), columns=["currency", "USD"]))
        if missing:
            st.sidebar.warning(f"No FX rate for {', '.join(missing)}: left out of totals.")
    return filters


def download(frame: pd.DataFrame, name: str) -> None:
    """The table, and a CSV download of it."""
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button(
        f"Download {name}.csv",
        frame.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"download_{name}",
    )
