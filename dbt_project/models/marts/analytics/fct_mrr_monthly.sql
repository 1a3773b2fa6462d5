{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, month, currency, customer_id, plan_id)',
) }}
-- MRR per month, customer and plan: the daily MRR on the month's last day, or on the rating
-- day for the month in progress.
select
    organization_id,
    toStartOfMonth(date) as month,
    date as measured_on,
    currency,
    customer_id,
    external_customer_id,
    plan_id,
    plan_code,
    subscription_mrr,
    usage_mrr,
    mrr,
    arr,
    mrr_cents,
    arr_cents
from {{ ref('fct_mrr_daily') }}
where date = least(toLastDayOfMonth(date), toDate({{ rating_as_of() }}, 'UTC'))
