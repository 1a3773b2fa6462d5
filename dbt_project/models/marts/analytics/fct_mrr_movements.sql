{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, currency, month, customer_id)',
) }}
-- MRR movements per month, customer and currency. Every customer gets a row for every month
-- from its first month with a subscription to the rating month, so a churned customer shows its
-- churn and later its reactivation. Movements, all >= 0:
--   new           0 -> positive, first time the customer has MRR
--   reactivation  0 -> positive, the customer had MRR in an earlier month
--   expansion     positive -> larger positive (upgrades, more usage)
--   contraction   positive -> smaller positive
--   churn         positive -> 0 (the opening MRR lost)
-- Invariant (dbt test): opening + new + reactivation + expansion - contraction - churn = closing.
with customer_months as (
    select organization_id, currency, customer_id, month, sum(mrr) as closing_mrr
    from {{ ref('fct_mrr_monthly') }}
    group by organization_id, currency, customer_id, month
),

customer_spans as (
    select organization_id, currency, customer_id, min(month) as first_month
    from customer_months
    group by organization_id, currency, customer_id
),

month_grid as (
    select
        organization_id, currency, customer_id,
        addMonths(first_month, arrayJoin(range(toUInt32(
            dateDiff('month', first_month, toStartOfMonth(toDate({{ rating_as_of() }}, 'UTC'))) + 1
        )))) as month
    from customer_spans
),

filled as (
    select
        g.organization_id as organization_id,
        g.currency as currency,
        g.customer_id as customer_id,
        g.month as month,
        ifNull(m.closing_mrr, toDecimal128(0, 12)) as closing_mrr
    from month_grid as g
    left join customer_months as m
        on m.organization_id = g.organization_id and m.currency = g.currency
        and m.customer_id = g.customer_id and m.month = g.month
    settings join_use_nulls = 1
),

with_opening as (
    select
        *,
        toDecimal128(lagInFrame(closing_mrr, 1, toDecimal128(0, 12)) over customer_history, 12) as opening_mrr,
        max(closing_mrr > 0) over (
            partition by organization_id, currency, customer_id order by month
            rows between unbounded preceding and 1 preceding
        ) as had_mrr_before
    from filled
    window customer_history as (
        partition by organization_id, currency, customer_id order by month
        rows between unbounded preceding and current row
    )
)

select
    w.organization_id as organization_id,
    cast(w.currency as LowCardinality(String)) as currency,
    w.month as month,
    w.customer_id as customer_id,
    c.external_customer_id as external_customer_id,
    w.opening_mrr as opening_mrr,
    toDecimal128(if(w.opening_mrr = 0 and w.closing_mrr > 0 and w.had_mrr_before = 0, w.closing_mrr, 0), 12) as new_mrr,
    toDecimal128(if(w.opening_mrr = 0 and w.closing_mrr > 0 and w.had_mrr_before = 1, w.closing_mrr, 0), 12) as reactivation_mrr,
    toDecimal128(if(w.opening_mrr > 0 and w.closing_mrr > w.opening_mrr, w.closing_mrr - w.opening_mrr, 0), 12) as expansion_mrr,
    toDecimal128(if(w.opening_mrr > 0 and w.closing_mrr > 0 and w.closing_mrr < w.opening_mrr,
                    w.opening_mrr - w.closing_mrr, 0), 12) as contraction_mrr,
    toDecimal128(if(w.opening_mrr > 0 and w.closing_mrr = 0, w.opening_mrr, 0), 12) as churned_mrr,
    w.closing_mrr as closing_mrr,
    {{ amount_cents('w.closing_mrr', 'w.currency') }} as closing_mrr_cents,
    cast(multiIf(
        w.opening_mrr = 0 and w.closing_mrr > 0 and w.had_mrr_before = 0, 'new',
        w.opening_mrr = 0 and w.closing_mrr > 0, 'reactivation',
        w.opening_mrr > 0 and w.closing_mrr = 0, 'churn',
        w.closing_mrr > w.opening_mrr, 'expansion',
        w.closing_mrr < w.opening_mrr, 'contraction',
        w.closing_mrr = 0, 'inactive',
        'unchanged') as LowCardinality(String)) as movement
from with_opening as w
left join {{ ref('stg_warehouse__customers') }} as c
    on c.organization_id = w.organization_id and c.customer_id = w.customer_id
