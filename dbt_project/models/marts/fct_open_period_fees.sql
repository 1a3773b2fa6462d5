{{ config(materialized='view') }}
-- The open charge period of every subscription whose plan has usage thresholds, rated on read
-- with the same macros as fct_fees: one row per arrears charge x filter x group, in fct_fees'
-- columns and with the fee id fct_fees will give the fee once the period closes. Progressive
-- billing reads it to find crossed thresholds for all subscriptions in one query.
-- Events timestamped later in the open period count too, as in Lago's current usage.
with open_periods as ({{ open_charge_periods("plan_id in (select plan_id from " ~ ref('stg_warehouse__usage_thresholds') ~ ")") }}),

open_events as ({{ charge_events('open_periods', by_subscription=true) }}),

open_usage as ({{ charge_usage('open_events') }}),

open_fees as (
    select
        {{ charge_fee_columns('null') }}
    from ({{ charge_fees('open_periods', 'open_usage') }})
)

{{ fee_rows('open_fees') }}
