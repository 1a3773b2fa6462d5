{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)') }}
-- The deduplicated events of the closed charge periods of this run, placed in their period,
-- arrears charge, filter and group.
with closed_charge_periods as (
    select * from {{ ref('int_rating_periods') }} where period_kind = 'charges' and is_closed
)

select * from ({{ charge_events('closed_charge_periods') }})
