{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)') }}
-- depends_on: {{ rating_catalog_copies() }}
-- Rated arrears charge fees of this run's closed charge periods, with only the charge models and
-- rounding precisions in use compiled in.
with closed_charge_periods as (
    select * from {{ ref('int_rating_periods') }} where period_kind = 'charges' and is_closed
)

select * from ({{ charge_fees('closed_charge_periods', ref('int_rating_charge_usage'), pricing_in_use(0)) }})
