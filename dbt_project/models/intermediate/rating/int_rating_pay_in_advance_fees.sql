{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)') }}
-- depends_on: {{ rating_catalog_copies() }}
-- depends_on: {{ ref('int_rating_pay_in_advance_periods') }}
-- One fee per event of a pay-in-advance charge, up to the rating instant: the events of this
-- run's started charge periods as int_rating_pay_in_advance_events placed them, priced. Only the
-- charge models and rounding precisions and the usage features (aggregation types, proration)
-- of the pay-in-advance charges in use are compiled in.
with started_charge_periods as ({{ started_pay_in_advance_periods() }})

select * from ({{ pay_in_advance_charge_fees('started_charge_periods', rating_as_of(),
                                         pricing=pricing_in_use(1), features=usage_in_use(1),
                                         placed=ref('int_rating_pay_in_advance_events')) }})
