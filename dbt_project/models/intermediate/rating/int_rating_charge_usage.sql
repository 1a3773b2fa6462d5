{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)') }}
-- Units per subscription x charge x charge period x filter x group for this run's periods, with
-- only the aggregation figures of the usage features in use compiled in.
select * from ({{ charge_usage(ref('int_rating_charge_events'), usage_in_use(0)) }})
