{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, currency, issuing_date, invoice_id)',
) }}
-- One row per invoice in its latest state, with what was paid, credited and refunded on it and
-- what is still owed at the rating instant. Drafts are kept (status = 'draft') but owe nothing.
--   paid_amount_cents         succeeded payments (or the invoice's own paid total, if larger)
--   credited / refunded       credit notes not voided: their credit and refund parts (a refund
--                             that failed at the payment provider gave nothing back)
--   outstanding_amount_cents  finalized and not fully paid: total - paid, never below 0
--   days_overdue / aging_bucket  past payment_due_date at the rating day:
--                             settled | not_due | 1-30 | 31-60 | 61-90 | 90+
with invoices as (
    select *
    from {{ source('invoicing', 'invoices') }} final
),

payments as (
    select
        organization_id, invoice_id,
        sumIf(amount_cents, status = 'succeeded') as paid_cents,
        maxIf(updated_at, status = 'succeeded') as last_paid_at,
        countIf(status = 'succeeded') as succeeded_payments
    from {{ source('invoicing', 'payments') }} final
    group by organization_id, invoice_id
),

credit_notes as (
    select
        organization_id, invoice_id,
        sum(credit_amount_cents) as credited_cents,
        sumIf(refund_amount_cents, ifNull(refund_status, '') != 'failed') as refunded_cents,
        count() as credit_notes_count
    from {{ source('invoicing', 'credit_notes') }} final
    where ifNull(credit_status, '') != 'voided'
    group by organization_id, invoice_id
),

joined as (
    select
        i.organization_id as organization_id,
        i.id as invoice_id,
        i.number as number,
        i.customer_id as customer_id,
        i.external_customer_id as external_customer_id,
        i.invoice_type as invoice_type,
        i.status as status,
        i.payment_status as payment_status,
        i.currency as currency,
        i.billing_date as billing_date,
        i.issuing_date as issuing_date,
        toStartOfMonth(i.issuing_date) as issuing_month,
        i.payment_due_date as payment_due_date,
        i.fees_amount_cents as fees_amount_cents,
        i.coupons_amount_cents as coupons_amount_cents,
        i.taxes_amount_cents as taxes_amount_cents,
        i.sub_total_excluding_taxes_amount_cents as sub_total_excluding_taxes_amount_cents,
        i.credit_notes_amount_cents as credit_notes_amount_cents,
        i.prepaid_credit_amount_cents as prepaid_credit_amount_cents,
        i.total_amount_cents as total_amount_cents,
        greatest(i.total_paid_amount_cents, ifNull(p.paid_cents, 0)) as paid_amount_cents,
        if(ifNull(p.succeeded_payments, 0) > 0, p.last_paid_at, null) as paid_at,
        ifNull(c.credited_cents, 0) as credited_amount_cents,
        ifNull(c.refunded_cents, 0) as refunded_amount_cents,
        ifNull(c.credit_notes_count, 0) as credit_notes_count,
        i.finalized_at as finalized_at,
        i.voided_at as voided_at,
        toDate({{ rating_as_of() }}, 'UTC') as as_of_date
    from invoices as i
    left join payments as p on p.organization_id = i.organization_id and p.invoice_id = i.id
    left join credit_notes as c on c.organization_id = i.organization_id and c.invoice_id = i.id
    settings join_use_nulls = 1
)

select
    *,
    toInt64(if(status = 'finalized' and payment_status != 'succeeded',
               greatest(total_amount_cents - paid_amount_cents, 0), 0)) as outstanding_amount_cents,
    toUInt32(if(outstanding_amount_cents > 0 and payment_due_date < as_of_date,
                dateDiff('day', payment_due_date, as_of_date), 0)) as days_overdue,
    outstanding_amount_cents > 0 and payment_due_date < as_of_date as is_overdue,
    cast(multiIf(
        outstanding_amount_cents = 0, 'settled',
        days_overdue = 0, 'not_due',
        days_overdue <= 30, '1-30',
        days_overdue <= 60, '31-60',
        days_overdue <= 90, '61-90',
        '90+') as LowCardinality(String)) as aging_bucket,
    paid_at is not null and toDate(paid_at) > payment_due_date as paid_late
from joined
