{% snapshot plans_snapshot %}
{{ config(unique_key='plan_code', strategy='check', check_cols=['amount_cents']) }}
select * from {{ ref('plans_view') }}
{% endsnapshot %}
