{{ config(materialized='table', order_by='(organization_id, charge_id)') }}
-- The charges with their parsed default prices, copied once per rating run (see rating_catalog).
select * from {{ ref('stg_warehouse__charges') }}
