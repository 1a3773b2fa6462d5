{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, issuing_month, currency, invoice_id, fee_id)',
) }}
-- Fees of finalized invoices (the lines of the computation the invoice was frozen with), with
-- the plan and metric they came from, for revenue by plan, metric and customer. Amounts are the
-- fee's own rounded amount, before coupons and taxes (Lago's invoiced usage), less what
-- progressive-billing invoices already billed of it: usage billed progressively counts once, on
-- the progressive invoice's line.
select
    f.organization_id as organization_id,
    f.invoice_id as invoice_id,
    f.id as fee_id,
    i.issuing_date as issuing_date,
    i.issuing_month as issuing_month,
    i.customer_id as customer_id,
    i.external_customer_id as external_customer_id,
    cast(f.fee_type as LowCardinality(String)) as fee_type,
    f.subscription_id as subscription_id,
    f.external_subscription_id as external_subscription_id,
    f.plan_id as plan_id,
    p.plan_code as plan_code,
    f.billable_metric_id as billable_metric_id,
    f.billable_metric_code as billable_metric_code,
    f.invoice_display_name as invoice_display_name,
    f.period_from as period_from,
    f.period_to as period_to,
    cast(f.currency as LowCardinality(String)) as currency,
    f.units as units,
    f.amount_cents - f.progressive_billing_credit_amount_cents as amount_cents,
    f.progressive_billing_credit_amount_cents as progressive_billing_credit_amount_cents,
    toInt64(round(f.precise_coupons_amount_cents)) as coupons_amount_cents,
    toInt64(round(f.precise_taxes_amount_cents)) as taxes_amount_cents
from {{ source('invoicing', 'invoice_fees') }} as f final
inner join {{ ref('fct_invoices') }} as i
    on i.organization_id = f.organization_id and i.invoice_id = f.invoice_id
    and i.status = 'finalized'
inner join (
    select organization_id, id, fees_version from {{ source('invoicing', 'invoices') }} final
) as v
    on v.organization_id = f.organization_id and v.id = f.invoice_id and v.fees_version = f.fees_version
left join {{ ref('stg_warehouse__plans') }} as p
    on p.organization_id = f.organization_id and p.plan_id = f.plan_id
settings join_use_nulls = 1
