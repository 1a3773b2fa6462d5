{{ config(materialized='table', order_by='(organization_id, charge_id, charge_filter_id)') }}
-- The charge filters with their parsed prices, copied once per rating run (see rating_catalog).
select * from {{ ref('stg_warehouse__charge_filters') }}
