{#- enable_materialized_cte: the events' re-sent set is computed once. -#}
{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)',
          model_query_settings={'enable_materialized_cte': 1}) }}
-- depends_on: {{ rating_catalog_copies() }}
-- depends_on: {{ ref('int_rating_pay_in_advance_periods') }}
-- depends_on: {{ ref('int_rating_charge_fees') }}
-- The renewal fees of recurring pay-in-advance charges at the start of this run's started charge
-- periods (macro `renewal_fees`): the units carried into each period priced whole, billed on its
-- first day. The period's own events are billed one by one (int_rating_pay_in_advance_fees).
{%- set features = usage_in_use(1, recurring_only=true) %}
{%- if (features is none or features.recurring) and renewals_due() %}
with started_charge_periods as ({{ started_pay_in_advance_periods() }})

select * from ({{ renewal_fees('started_charge_periods', features, pricing_in_use(1, recurring_only=true),
                                materialize_resent=true) }})
{%- else %}
-- No recurring pay-in-advance charge in the run's catalog, or none of its periods renews one
-- (`renewals_due`), so nothing renews: no row, in the columns of the arrears charge fees
-- (charge_fees' too), without analysing the renewal's query (most of its cost on a day: ~1-2 s
-- of a thread).
select * from {{ ref('int_rating_charge_fees') }} where false
{%- endif %}
