{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, currency, cohort_month, month)',
) }}
-- Revenue retention per cohort: customers grouped by the first month they had MRR, followed
-- month by month. NRR = cohort MRR / cohort starting MRR (expansion counts); GRR caps each
-- customer at its starting MRR (expansion does not count).
with customer_months as (
    select organization_id, currency, customer_id, month, closing_mrr
    from {{ ref('fct_mrr_movements') }}
),

cohorts as (
    select
        organization_id, currency, customer_id,
        minIf(month, closing_mrr > 0) as cohort_month,
        argMinIf(closing_mrr, month, closing_mrr > 0) as starting_mrr
    from customer_months
    group by organization_id, currency, customer_id
    having countIf(closing_mrr > 0) > 0
)

select
    m.organization_id as organization_id,
    cast(m.currency as LowCardinality(String)) as currency,
    c.cohort_month as cohort_month,
    m.month as month,
    toUInt32(dateDiff('month', c.cohort_month, m.month)) as months_since_start,
    count() as cohort_customers,
    countIf(m.closing_mrr > 0) as retained_customers,
    toDecimal128(sum(c.starting_mrr), 12) as starting_mrr,
    toDecimal128(sum(m.closing_mrr), 12) as mrr,
    toDecimal128(sum(least(m.closing_mrr, c.starting_mrr)), 12) as retained_mrr_capped,
    {{ money_div('mrr', 'starting_mrr') }} as net_revenue_retention,
    {{ money_div('retained_mrr_capped', 'starting_mrr') }} as gross_revenue_retention
from customer_months as m
inner join cohorts as c
    on c.organization_id = m.organization_id and c.currency = m.currency and c.customer_id = m.customer_id
where m.month >= c.cohort_month
group by m.organization_id, m.currency, c.cohort_month, m.month
