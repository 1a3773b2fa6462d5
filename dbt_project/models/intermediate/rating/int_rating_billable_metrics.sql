{{ config(materialized='table', order_by='(organization_id, billable_metric_id)') }}
-- The billable metrics, copied once per rating run (see rating_catalog).
select * from {{ ref('stg_warehouse__billable_metrics') }}
