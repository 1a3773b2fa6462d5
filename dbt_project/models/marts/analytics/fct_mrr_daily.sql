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
-- Computed per span of days rather than per day: a subscription chain's MRR only changes where
-- one of its subscriptions starts or stops, or one of its usage periods ends, so the chain's
-- days are cut into spans at those dates, each span is valued once (its live subscriptions, the
-- latest usage period ended by its first day), the spans of one customer and plan are cut again
-- where any of them starts or stops and summed, and only the finished rows are spread over
-- their days. The same figures as valuing every day (a subscription live that day gives the
-- plan; usage counts only on days a subscription of the chain is live), with the aggregations
-- over a few rows per subscription instead of one per subscription per day.
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

-- Where a chain's MRR may change: a subscription's first day and the day after its last (the
-- rating day at the latest), the day a usage period ends (its usage counts from then until the
-- next one ends). The last boundary starts no span: no subscription of the chain is live then.
chain_boundaries as (
    select organization_id, external_subscription_id, currency, arrayJoin([first_day, last_day + 1]) as boundary
    from subscriptions
    where first_day <= last_day
    union distinct
    select organization_id, external_subscription_id, currency, period_end_date
    from usage_periods
),

chain_spans as (
    select
        organization_id, external_subscription_id, currency, boundary as first_date,
        leadInFrame(boundary, 1, boundary) over (
            partition by organization_id, external_subscription_id, currency
            order by boundary
            rows between current row and unbounded following
        ) - 1 as last_date
    from chain_boundaries
),

-- Every span in which a subscription of the chain is live, with the live subscriptions'
-- customer, plan and MRR (the span lies within each of them: their bounds are boundaries).
live_chain_spans as (
    select
        c.organization_id as organization_id,
        c.external_subscription_id as external_subscription_id,
        c.currency as currency,
        c.first_date as first_date,
        c.last_date as last_date,
        any(s.customer_id) as customer_id,
        any(s.external_customer_id) as external_customer_id,
        any(s.plan_id) as plan_id,
        any(s.plan_code) as plan_code,
        sum(s.subscription_mrr) as subscription_mrr
    from chain_spans as c
    inner join subscriptions as s
        on s.organization_id = c.organization_id
        and s.external_subscription_id = c.external_subscription_id
        and s.currency = c.currency
    where c.first_date <= c.last_date and s.first_day <= c.first_date and c.first_date <= s.last_day
    group by organization_id, external_subscription_id, currency, first_date, last_date
),

-- The usage of the latest period ended on or before the span's first day.
valued_chain_spans as (
    select
        c.*,
        ifNull(u.usage_amount, toDecimal128(0, 12)) as usage_mrr
    from live_chain_spans as c
    asof left join usage_periods as u
        on u.organization_id = c.organization_id
        and u.external_subscription_id = c.external_subscription_id
        and u.currency = c.currency
        and u.period_end_date <= c.first_date
    settings join_use_nulls = 1
),

-- The spans of one customer and plan, cut wherever one of its chains' spans starts or stops.
customer_boundaries as (
    select organization_id, currency, customer_id, plan_id, arrayJoin([first_date, last_date + 1]) as boundary
    from valued_chain_spans
    group by organization_id, currency, customer_id, plan_id, boundary
),

customer_spans as (
    select
        organization_id, currency, customer_id, plan_id, boundary as first_date,
        leadInFrame(boundary, 1, boundary) over (
            partition by organization_id, currency, customer_id, plan_id
            order by boundary
            rows between current row and unbounded following
        ) - 1 as last_date
    from customer_boundaries
),

summed_spans as (
    select
        s.organization_id as organization_id,
        s.currency as currency,
        s.customer_id as customer_id,
        s.plan_id as plan_id,
        s.first_date as first_date,
        s.last_date as last_date,
        any(c.external_customer_id) as external_customer_id,
        any(c.plan_code) as plan_code,
        toDecimal128(sum(c.subscription_mrr), 12) as subscription_mrr,
        toDecimal128(sum(c.usage_mrr), 12) as usage_mrr,
        toDecimal128(subscription_mrr + usage_mrr, 12) as mrr,
        {{ money_mul('mrr', 12) }} as arr,
        {{ amount_cents('mrr', 'currency') }} as mrr_cents,
        {{ amount_cents('arr', 'currency') }} as arr_cents
    from customer_spans as s
    inner join valued_chain_spans as c
        on c.organization_id = s.organization_id and c.currency = s.currency
        and c.customer_id = s.customer_id and c.plan_id = s.plan_id
    where s.first_date <= s.last_date and c.first_date <= s.first_date and s.first_date <= c.last_date
    group by organization_id, currency, customer_id, plan_id, first_date, last_date
)

select
    organization_id,
    toDate(arrayJoin(range(toUInt32(first_date), toUInt32(last_date) + 1))) as date,
    cast(currency as LowCardinality(String)) as currency,
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
from summed_spans
