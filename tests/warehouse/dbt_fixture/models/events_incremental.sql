{{ config(materialized='incremental', unique_key='n', order_by='n', incremental_strategy='delete+insert') }}
select number as n, number * 2 as doubled
from numbers({{ var('rows', 5) }})
{% if is_incremental() %}
where n >= (select max(n) from {{ this }}) - 1
{% endif %}
