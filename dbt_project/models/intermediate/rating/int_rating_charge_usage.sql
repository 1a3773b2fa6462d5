{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)') }}
-- Units per subscription x charge x charge period x filter x group for this run's periods.
select * from ({{ charge_usage(ref('int_rating_charge_events')) }})
