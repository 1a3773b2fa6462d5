"""Invoices: search by number or customer, filter by status."""

from __future__ import annotations

import streamlit as st

from dashboards.data import query
from dashboards.filters import download, sidebar_filters

st.title("Invoices")
filters = sidebar_filters()
if filters is None:
    st.stop()
assert filters is not None

search = st.text_input("Search (invoice number or customer external id)", key="invoice_search")
statuses = st.multiselect(
    "Status", ["draft", "finalized", "voided"], default=["finalized"], key="invoice_status"
)
payment = st.multiselect(
    "Payment status", ["pending", "succeeded", "failed"], key="invoice_payment_status",
    placeholder="Any payment status",
)  # fmt: skip
where, parameters = filters.where(date_column="issuing_date")
invoices = query(
    "select number, external_customer_id, status, payment_status, currency, issuing_date,"
    " payment_due_date, total_amount_cents, paid_amount_cents, outstanding_amount_cents,"
    " credited_amount_cents, refunded_amount_cents, aging_bucket,"
    " toString(invoice_id) as invoice_id"
    f" from fct_invoices where {where}"
    " and status in {statuses:Array(String)}"
    " and (empty({payment:Array(String)}) or has({payment:Array(String)}, payment_status))"
    " and ({search:String} = '' or positionCaseInsensitive(number, {search:String}) > 0"
    "      or positionCaseInsensitive(external_customer_id, {search:String}) > 0)"
    " order by issuing_date desc, number",
    {**parameters, "statuses": statuses, "payment": payment, "search": search.strip()},
)
st.metric("Invoices", len(invoices))
download(invoices, "invoices")
