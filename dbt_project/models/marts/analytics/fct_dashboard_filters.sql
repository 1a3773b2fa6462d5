{{ config(materialized='table', engine='MergeTree', order_by='organization_id') }}
-- What the dashboards' sidebar offers for each organization, one row each, so every page starts
-- with one small read instead of scanning the MRR and invoice marts: the months with MRR (first
-- month, last measured day), the currencies of its MRR or invoices, its plan codes.
with mrr as (
    select
        organization_id,
        min(month) as first_month,
        max(measured_on) as last_measured_on,
        groupUniqArray(cast(currency as String)) as currencies,
        arraySort(groupUniqArray(plan_code)) as plan_codes
    from {{ ref('fct_mrr_monthly') }}
    group by organization_id
),

invoices as (
    select organization_id, groupUniqArray(cast(currency as String)) as currencies
    from {{ ref('fct_invoices') }}
    group by organization_id
)

select
    organization_id,
    m.first_month as first_month,
    m.last_measured_on as last_measured_on,
    arraySort(arrayDistinct(arrayConcat(m.currencies, i.currencies))) as currencies,
    m.plan_codes as plan_codes
from mrr as m
full outer join invoices as i using (organization_id)
