{#- enable_materialized_cte: int_rating_charge_events computes its re-sent set once. -#}
{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)',
          model_query_settings={'enable_materialized_cte': 1}) }}
{#- Parsed without the catalog (usage_in_use is none then), so the periods the per-metric usage
    is given to charges with, and the run's catalog, are declared here. -#}
{%- if not execute %}
-- depends_on: {{ ref('int_rating_periods') }}
-- depends_on: {{ rating_catalog_copies() }}
{%- endif %}
{%- set features = usage_in_use(0) %}
-- Units per subscription x charge x charge period x filter x group for this run's periods, with
-- only the aggregation figures of the usage features in use compiled in; aggregated per metric
-- and given to the metric's charges when nothing tells them apart (usage_by_metric).
{%- if usage_by_metric(features) %}
with closed_charge_periods as (
    select * from {{ ref('int_rating_periods') }} where period_kind = 'charges' and is_closed
)

select * from ({{ charge_usage(ref('int_rating_charge_events'), features, 'closed_charge_periods') }})
{%- else %}
select * from ({{ charge_usage(ref('int_rating_charge_events'), features) }})
{%- endif %}
