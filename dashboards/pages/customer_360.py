"""Customer 360: one customer's subscriptions, MRR, usage, invoices (with PDF links), payments."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboards.data import query
from dashboards.filters import download, sidebar_filters
from warehouse.settings import Settings

st.title("Customer 360")
filters = sidebar_filters()
if filters is None:
    st.stop()
assert filters is not None

customers = query(
    "select toString(id) as id, external_id, coalesce(name, external_id) as name"
    " from customers final where organization_id = {o:UUID} and is_deleted = 0"
    " order by external_id",
    {"o": filters.organization_id},
)
if customers.empty:
    st.info("No customer yet.")
    st.stop()
labels = dict(zip(customers["id"], customers["external_id"], strict=True))
customer_id = st.selectbox(
    "Customer", list(labels), format_func=lambda i: labels[i], key="customer"
)
parameters = {
    "o": filters.organization_id,
    "c": customer_id,
    "start": filters.start,
    "end": filters.end,
}

st.subheader("Subscriptions")
subscriptions = query(
    "select s.external_id as subscription, p.code as plan, s.status as status,"
    " s.started_at as started_at, s.terminated_at as terminated_at"
    " from subscriptions as s final"
    " left join (select id, code from plans final where organization_id = {o:UUID}) as p"
    " on p.id = s.plan_id"
    " where s.organization_id = {o:UUID} and s.customer_id = {c:UUID} and s.is_deleted = 0"
    " order by s.started_at",
    parameters,
)
download(subscriptions, "customer_subscriptions")

where, money_parameters = filters.where(date_column="date")
mrr = filters.money(
    query(
        f"select date, currency, sum(mrr) as mrr from fct_mrr_daily where {where}"
        " and customer_id = {c:UUID} group by date, currency",
        {**money_parameters, "c": customer_id},
    ),
    ["date"],
    ["mrr"],
)
st.metric("MRR", filters.format(mrr["mrr"].iloc[-1] if not mrr.empty else 0))
st.plotly_chart(px.line(mrr, x="date", y="mrr"), width="stretch", key="customer_mrr")

st.subheader("Usage")
usage = query(
    "select date, billable_metric_code, sum(events_count) as events_count from fct_usage_daily"
    " where organization_id = {o:UUID} and customer_id = {c:UUID}"
    " and date between {start:Date} and {end:Date}"
    " group by date, billable_metric_code order by date",
    parameters,
)
if not usage.empty:
    st.plotly_chart(
        px.bar(usage, x="date", y="events_count", color="billable_metric_code"),
        width="stretch",
        key="customer_usage",
    )

st.subheader("Invoices")
invoices = query(
    "select number, status, payment_status, currency, issuing_date, payment_due_date,"
    " total_amount_cents, paid_amount_cents, outstanding_amount_cents, aging_bucket,"
    " toString(invoice_id) as invoice_id from fct_invoices"
    " where organization_id = {o:UUID} and customer_id = {c:UUID}"
    " and issuing_date between {start:Date} and {end:Date} order by issuing_date desc",
    parameters,
)
pdf_url = Settings().dashboards_invoice_pdf_url
invoices["pdf"] = [pdf_url.format(invoice_id=invoice_id) for invoice_id in invoices["invoice_id"]]
st.dataframe(
    invoices,
    hide_index=True,
    width="stretch",
    column_config={"pdf": st.column_config.LinkColumn("PDF", display_text="PDF")},
)
st.download_button(
    "Download customer_invoices.csv",
    invoices.to_csv(index=False).encode(),
    file_name="customer_invoices.csv",
    key="download_customer_invoices",
)

st.subheader("Payments")
payments = query(
    "select p.provider as provider, p.provider_payment_id as reference, p.status as status,"
    " p.amount_cents as amount_cents, p.currency as currency, p.updated_at as updated_at,"
    " i.number as invoice"
    " from payments as p final"
    " inner join (select invoice_id, number from fct_invoices"
    "             where organization_id = {o:UUID} and customer_id = {c:UUID}) as i"
    " on i.invoice_id = p.invoice_id"
    " where p.organization_id = {o:UUID} order by p.updated_at desc",
    parameters,
)
download(payments, "customer_payments")
