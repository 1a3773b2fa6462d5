-- Every deduplicated event placed in its charge period and charge, with the charge filter it
-- counts in (the most specific matching filter, the older one on a tie; NULL = the charge's
-- default price) and its grouped_by key. Set-based: one ASOF join finds each event's period.
with charge_periods as (
    select organization_id, external_subscription_id, subscription_id, plan_id, period_from, period_to
    from {{ ref('int_billing_periods') }}
    where period_kind = 'charges'
),

charges as (
    select
        c.organization_id as organization_id,
        c.charge_id as charge_id,
        c.plan_id as plan_id,
        c.grouped_by as grouped_by,
        c.charge_model as charge_model,
        m.billable_metric_code as billable_metric_code,
        m.field_name as field_name,
        m.aggregation_type as aggregation_type
    from {{ ref('stg_charges') }} as c
    inner join {{ ref('stg_billable_metrics') }} as m
        on m.organization_id = c.organization_id and m.billable_metric_id = c.billable_metric_id
),

-- A charge's filters, most specific first, then oldest: the first match wins.
filter_sets as (
    select
        organization_id,
        charge_id,
        arraySort(f -> (-f.3, f.4, f.5),
                  groupArray(tuple(charge_filter_id, filter_values, specificity, created_at, position, grouped_by)))
            as filters
    from {{ ref('stg_charge_filters') }}
    group by organization_id, charge_id
),

placed as (
    select
        e.organization_id as organization_id,
        p.subscription_id as subscription_id,
        p.plan_id as plan_id,
        p.period_from as period_from,
        e.code as code,
        e.transaction_id as transaction_id,
        e.timestamp as timestamp,
        e.ingested_at as ingested_at,
        e.properties as properties,
        e.precise_total_amount_cents as precise_total_amount_cents
    from {{ ref('stg_events') }} as e
    asof inner join charge_periods as p
        on p.organization_id = e.organization_id
        and p.external_subscription_id = e.external_subscription_id
        and e.timestamp >= p.period_from
    where e.timestamp <= p.period_to
)

select
    placed.organization_id as organization_id,
    placed.subscription_id as subscription_id,
    placed.period_from as period_from,
    charges.charge_id as charge_id,
    charges.charge_model as charge_model,
    charges.aggregation_type as aggregation_type,
    arrayFirstIndex(f -> {{ filter_matches('f.2', 'placed.properties') }}, filter_sets.filters) as filter_index,
    -- The nil UUID stands for the default bucket (no filter) so that joins and groups can use it.
    if(filter_index = 0, toUUID('00000000-0000-0000-0000-000000000000'), filter_sets.filters[filter_index].1)
        as charge_filter_id,
    {{ group_key("if(filter_index = 0 or empty(filter_sets.filters[filter_index].6), charges.grouped_by, filter_sets.filters[filter_index].6)", 'placed.properties') }}
        as grouped_by,
    placed.transaction_id as transaction_id,
    placed.timestamp as timestamp,
    placed.ingested_at as ingested_at,
    {{ event_value('placed.properties', 'charges.field_name') }} as value,
    placed.properties[ifNull(charges.field_name, '')] as value_text,
    placed.properties['operation_type'] as operation_type,
    placed.precise_total_amount_cents as precise_total_amount_cents
from placed
inner join charges
    on charges.organization_id = placed.organization_id
    and charges.plan_id = placed.plan_id
    and charges.billable_metric_code = placed.code
left join filter_sets
    on filter_sets.organization_id = charges.organization_id and filter_sets.charge_id = charges.charge_id
