{{ config(materialized='table', order_by='currency') }}
select currency, count() as plans, sum(amount_cents) as total_cents
from {{ ref('plans_view') }}
group by currency
