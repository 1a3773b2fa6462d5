{{ config(materialized='view') }}
select plan_code, amount_cents, currency from {{ ref('plans_seed') }}
