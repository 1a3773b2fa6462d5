-- Every key in fct_usage_daily_by_property is one its metric (organization and code) declares
-- in its filters: rows returned here are keys no metric declared, or rows of no metric at all.
with declared_keys as (
    select organization_id, billable_metric_code, arrayJoin(mapKeys(filters)) as property_key
    from {{ ref('stg_warehouse__billable_metrics') }}
)

select p.organization_id, p.billable_metric_code, p.property_key
from {{ ref('fct_usage_daily_by_property') }} as p
where (p.organization_id, toString(p.billable_metric_code), p.property_key)
    not in (select organization_id, billable_metric_code, property_key from declared_keys)
