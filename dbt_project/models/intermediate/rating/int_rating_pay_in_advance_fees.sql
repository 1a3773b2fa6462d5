{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)',
          model_query_settings={'enable_materialized_cte': 1}) }}
-- One fee per event of a pay-in-advance charge, up to the rating instant. Only the periods of
-- plans that have such a charge are rated, and only their subscriptions' events are read (the
-- IN set on the events' primary-key prefix, on a full build too): the events of the other
-- subscriptions are never read, hashed or deduplicated here, nor, on an incremental run, those
-- of the subscriptions without a period to rate (the others are read once, each from its own
-- first period to rate: incremental_events). Only the charge models and rounding precisions
-- and the usage features (aggregation types, filters, groups, expressions, proration) of the
-- pay-in-advance charges in use are compiled in. The re-sent transactions' set is computed once
-- (a materialized CTE, see scoped_events).
{%- set incremental = rating_is_incremental() %}
with started_charge_periods as (
    select *
    from {{ ref('int_rating_periods') }}
    where period_kind = 'charges'
        and (organization_id, plan_id) in (
            select organization_id, plan_id from {{ ref('stg_warehouse__charges') }} where pay_in_advance = 1)
)
{%- if incremental %},

{{ incremental_events('started_charge_periods') }}
{%- endif %}

select * from ({{ pay_in_advance_charge_fees('started_charge_periods', rating_as_of(),
                                         events='events_to_rate' if incremental else none, by_subscription=true,
                                         pricing=pricing_in_use(1), features=usage_in_use(1),
                                         materialize_resent=true) }})
