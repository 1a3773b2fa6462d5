{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, date, currency, customer_id, plan_id)',
) }}
-- MRR per day, customer and plan, in the plan's currency (never converted).
--   subscription_mrr  the plan amount of every subscription live that day (after its trial),
--                     normalized to a month: weekly x 52/12, quarterly / 3, semiannual / 6,
--                     yearly / 12.
--   usage_mrr         usage fees of the latest closed usage period: the charge, true-up and
--                     commitment fees of the subscription (along its upgrade chain, same external
--                     id) for the last charge period that ended on or before the day, counted
--                     while the subscription is live.
-- Days run from the subscription's start to its last billed day or the rating instant.
with subscriptions as (
    select
        organization_id, subscription_id, external_subscription_id, customer_id,
        external_customer_id, plan_id, currency, interval, plan_amount_cents,
        greatest(start_date, ifNull(trial_end_date, start_date)) as first_day,
        least(ifNull(end_date, toDate({{ rating_as_of() }}, 'UTC')), toDate({{ rating_as_of() }}, 'UTC')) as last_day
    from {{ ref('int_subscriptions') }}
),

subscription_days as (
    select
        organization_id, subscription_id, external_subscription_id, customer_id,
        external_customer_id, plan_id, currency,
        toDate(arrayJoin(range(toUInt32(first_day), toUInt32(last_day) + 1))) as date,
        {{ money_div(money_mul(cents_to_amount('plan_amount_cents', 'currency'),
                               "multiIf(interval = 'weekly', 52, 1)"),
                     "multiIf(interval = 'weekly', 12, interval = 'quarterly', 3, "
                     "interval = 'semiannual', 6, interval = 'yearly', 12, 1)") }} as subscription_mrr
    from subscriptions
    where first_day <= last_day
),

usage_periods as (
    select
        organization_id, external_subscription_id, currency, toDate(period_to) as period_end_date,
        sum(amount) as usage_amount
    from {{ ref('fct_fees') }}
    where fee_type != 'subscription'
    group by organization_id, external_subscription_id, currency, period_end_date
),

-- The usage of a closed period counts from the day it ends until the next period of the same
-- subscription chain ends (or up to the rating day).
usage_days as (
    select
        organization_id, external_subscription_id, currency,
        toDate(arrayJoin(range(toUInt32(period_end_date), toUInt32(next_period_end_date)))) as date,
        usage_amount as usage_mrr
    from (
        select
            *,
            leadInFrame(period_end_date, 1, toDate({{ rating_as_of() }}, 'UTC') + 1) over (
                partition by organization_id, external_subscription_id, currency
                order by period_end_date
                rows between current row and unbounded following
            ) as next_period_end_date
        from usage_periods
    )
),

subscription_mrr as (
    select
        d.organization_id as organization_id,
        d.date as date,
        d.currency as currency,
        d.customer_id as customer_id,
        d.external_customer_id as external_customer_id,
        d.plan_id as plan_id,
        d.subscription_mrr as subscription_mrr,
        ifNull(u.usage_mrr, toDecimal128(0, 12)) as usage_mrr
    from subscription_days as d
    left join usage_days as u
        on u.organization_id = d.organization_id
        and u.external_subscription_id = d.external_subscription_id
        and u.currency = d.currency
        and u.date = d.date
    settings join_use_nulls = 1
)

select
    m.organization_id as organization_id,
    m.date as date,
    cast(m.currency as LowCardinality(String)) as currency,
    m.customer_id as customer_id,
    any(m.external_customer_id) as external_customer_id,
    m.plan_id as plan_id,
    any(p.plan_code) as plan_code,
    toDecimal128(sum(m.subscription_mrr), 12) as subscription_mrr,
    toDecimal128(sum(m.usage_mrr), 12) as usage_mrr,
    toDecimal128(subscription_mrr + usage_mrr, 12) as mrr,
    {{ money_mul('mrr', 12) }} as arr,
    {{ amount_cents('mrr', 'm.currency') }} as mrr_cents,
    {{ amount_cents('arr', 'm.currency') }} as arr_cents
from subscription_mrr as m
left join {{ ref('stg_plans') }} as p
    on p.organization_id = m.organization_id and p.plan_id = m.plan_id
group by m.organization_id, m.date, m.currency, m.customer_id, m.plan_id
