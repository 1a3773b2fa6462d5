{{ config(materialized='view') }}
-- Pay-in-advance charge fees of the charge periods that received events ingested after an
-- instant, rated on read with the same macros as fct_fees (same columns, same fee ids), so they
-- can be invoiced as their events arrive instead of after the next rating run. A parameterized
-- view: SELECT * FROM fct_pay_in_advance_fees_since(ingested_after = '2024-01-01 00:00:00.000')
-- Every fee of such a period is returned (earlier events' too): pricing an event needs the
-- period's running peak, and invoicing skips fees an issued invoice already holds.
with new_event_spans as (
    select organization_id, external_subscription_id, min(timestamp) as first_at, max(timestamp) as last_at
    from {{ source('warehouse', 'events') }}
    where ingested_at > {ingested_after:DateTime64(3, 'UTC')}
    group by organization_id, external_subscription_id
),

touched_periods as (
    select p.*
    from {{ ref('int_billing_periods') }} as p
    inner join new_event_spans as s
        on s.organization_id = p.organization_id and s.external_subscription_id = p.external_subscription_id
    where p.period_kind = 'charges'
        and p.period_from <= now64(3, 'UTC')
        and s.first_at <= p.period_to and s.last_at >= p.period_from
        and p.plan_id in (select plan_id from {{ ref('stg_warehouse__charges') }} where pay_in_advance = 1)
),

pay_in_advance_fees as (
    select
        {{ charge_fee_columns('source_transaction_id') }}
    from ({{ pay_in_advance_charge_fees('touched_periods', "now64(3, 'UTC')", by_subscription=true) }})
)

{{ fee_rows('pay_in_advance_fees') }}
