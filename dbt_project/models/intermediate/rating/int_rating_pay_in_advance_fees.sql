{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)') }}
-- One fee per event of a pay-in-advance charge, up to the rating instant.
with started_charge_periods as (
    select * from {{ ref('int_rating_periods') }} where period_kind = 'charges'
)

select * from ({{ pay_in_advance_charge_fees('started_charge_periods', rating_as_of()) }})
