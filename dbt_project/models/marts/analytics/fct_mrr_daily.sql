{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, customer_id, date, currency, plan_id)',
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
-- Sorted by customer: company-wide trends read fct_mrr_daily_by_plan; Customer 360 reads one customer.
-- Built by adding rows rather than joining them: subscription days and usage days of the same
-- subscription chain are summed together, and usage counts only on days a subscription is live.
with subscriptions as (
    select
        s.organization_id as organization_id,
        s.external_subscription_id as external_subscription_id,
        s.customer_id as customer_id,
        s.external_customer_id as external_customer_id,
        s.plan_id as plan_id,
        p.plan_code as plan_code,
        -- LowCardinality grouping keys make the aggregations below several times slower.
        cast(s.currency as String) as currency,
        greatest(s.start_date, ifNull(s.trial_end_date, s.start_date)) as first_day,
        least(ifNull(s.end_date, toDate({{ rating_as_of() }}, 'UTC')), toDate({{ rating_as_of() }}, 'UTC')) as last_day,
        {{ money_div(money_mul(cents_to_amount('s.plan_amount_cents', 's.currency'),
                               "multiIf(s.interval = 'weekly', 52, 1)"),
                     "multiIf(s.interval = 'weekly', 12, s.interval = 'quarterly', 3, "
                     "s.interval = 'semiannual', 6, s.interval = 'yearly', 12, 1)") }} as subscription_mrr
    from {{ ref('int_subscriptions') }} as s
    left join {{ ref('stg_warehouse__plans') }} as p
        on p.organization_id = s.organization_id and p.plan_id = s.plan_id
),

subscription_days as (
    select
        organization_id, external_subscription_id, currency, customer_id, external_customer_id,
        plan_id, plan_code, subscription_mrr,
        toDate(arrayJoin(range(toUInt32(first_day), toUInt32(last_day) + 1))) as date
    from subscriptions
    where first_day <= last_day
),

usage_periods as (
    select
        f.organization_id as organization_id,
        f.external_subscription_id as external_subscription_id,
        cast(f.currency as String) as currency,
        toDate(f.period_to) as period_end_date,
        sum(f.amount) as usage_amount
    from {{ ref('fct_fees') }} as f
    where f.fee_type != 'subscription'
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

chain_days as (
    select
        organization_id, external_subscription_id, currency, date,
        anyIf(customer_id, is_live) as customer_id,
        anyIf(external_customer_id, is_live) as external_customer_id,
        anyIf(plan_id, is_live) as plan_id,
        anyIf(plan_code, is_live) as plan_code,
        sum(subscription_mrr) as subscription_mrr,
        sum(usage_mrr) as usage_mrr
    from (
        select
            organization_id, external_subscription_id, currency, date, customer_id,
            external_customer_id, plan_id, plan_code, subscription_mrr,
            toDecimal128(0, 12) as usage_mrr, 1 as is_live
        from subscription_days
        union all
        select
            organization_id, external_subscription_id, currency, date,
            toUUID('00000000-0000-0000-0000-000000000000'), '', toUUID('00000000-0000-0000-0000-000000000000'),
            '', toDecimal128(0, 12), usage_mrr, 0
        from usage_days
    )
    group by organization_id, external_subscription_id, currency, date
    having max(is_live) = 1
)

select
    organization_id,
    date,
    cast(currency as LowCardinality(String)) as currency,
    customer_id,
    any(external_customer_id) as external_customer_id,
    plan_id,
    any(plan_code) as plan_code,
    toDecimal128(sum(chain_days.subscription_mrr), 12) as subscription_mrr,
    toDecimal128(sum(chain_days.usage_mrr), 12) as usage_mrr,
    toDecimal128(subscription_mrr + usage_mrr, 12) as mrr,
    {{ money_mul('mrr', 12) }} as arr,
    {{ amount_cents('mrr', 'currency') }} as mrr_cents,
    {{ amount_cents('arr', 'currency') }} as arr_cents
from chain_days
group by organization_id, date, currency, customer_id, plan_id
