{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, currency, month)',
) }}
-- Company-level subscription metrics per month and currency (one row per currency; amounts in
-- different currencies are never added). Rates are fractions (0.25 = 25 %), NULL when their
-- denominator is 0:
--   arpu                  closing MRR / paying customers at the end of the month
--   logo_churn_rate       churned customers / paying customers at the start of the month
--   revenue_churn_rate    (churned + contraction MRR) / opening MRR
--   net_revenue_retention (opening + expansion - contraction - churn) / opening MRR
--   gross_revenue_retention (opening - contraction - churn) / opening MRR
with monthly as (
    select
        m.organization_id as organization_id,
        m.currency as currency,
        m.month as month,
        toDecimal128(sum(m.opening_mrr), 12) as opening_mrr,
        toDecimal128(sum(m.new_mrr), 12) as new_mrr,
        toDecimal128(sum(m.reactivation_mrr), 12) as reactivation_mrr,
        toDecimal128(sum(m.expansion_mrr), 12) as expansion_mrr,
        toDecimal128(sum(m.contraction_mrr), 12) as contraction_mrr,
        toDecimal128(sum(m.churned_mrr), 12) as churned_mrr,
        toDecimal128(sum(m.closing_mrr), 12) as mrr,
        countIf(m.opening_mrr > 0) as opening_customers,
        countIf(m.closing_mrr > 0) as paying_customers,
        countIf(m.movement = 'new') as new_customers,
        countIf(m.movement = 'reactivation') as reactivated_customers,
        countIf(m.movement = 'churn') as churned_customers
    from {{ ref('fct_mrr_movements') }} as m
    group by m.organization_id, m.currency, m.month
)

select
    *,
    {{ money_mul('mrr', 12) }} as arr,
    {{ amount_cents('mrr', 'currency') }} as mrr_cents,
    {{ amount_cents('arr', 'currency') }} as arr_cents,
    if(paying_customers = 0, null, {{ money_div('mrr', 'paying_customers') }}) as arpu,
    if(opening_customers = 0, null, {{ money_div('churned_customers', 'opening_customers') }}) as logo_churn_rate,
    if(opening_mrr = 0, null, {{ money_div('churned_mrr + contraction_mrr', 'opening_mrr') }}) as revenue_churn_rate,
    if(opening_mrr = 0, null,
       {{ money_div('opening_mrr + expansion_mrr - contraction_mrr - churned_mrr', 'opening_mrr') }}) as net_revenue_retention,
    if(opening_mrr = 0, null,
       {{ money_div('opening_mrr - contraction_mrr - churned_mrr', 'opening_mrr') }}) as gross_revenue_retention
from monthly
