{{ config(materialized='incremental', incremental_strategy='append', engine='MergeTree()',
          order_by='(organization_id, external_subscription_id, timestamp)',
          pre_hook="{% if is_incremental() %}{{ cut_open_advance_events(this) }}{% endif %}") }}
-- The raw event versions of the open pay-in-advance charge periods, sorted by subscription, so
-- that an incremental run re-prices those periods (int_rating_pay_in_advance_fees) from this
-- compact table instead of the subscriptions' granules of the events table, where each holds a
-- few percent of a granule's rows (incremental_events). Every code, every stored version: the
-- re-sent set and argMax see what the events table gives.
-- Per subscription, every version with a timestamp from its `covered_from` (the latest of its
-- rows) on and ingested up to the store's watermark (the latest `stored_through`, a run's start)
-- is held. Each run appends, for the subscriptions held, the versions ingested since the
-- watermark from where they were covered on (so a subscription without new rows stays covered
-- as before), and fills the subscriptions of this run's open periods not held yet from their
-- open period's start; when a subscription's open period moves on, its new rows carry the new
-- start and the earlier rows are cut (the pre-hook) by the next run. A span beginning before
-- where a subscription is covered reads the events table.
{%- set stored_through -%}
    toDateTime64('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}', 6, 'UTC')
{%- endset %}
with open_spans as (
    select organization_id, external_subscription_id, min(period_from) as open_from
    from {{ ref('int_rating_periods') }}
    where period_kind = 'charges' and not is_closed
        and (organization_id, plan_id) in (
            select organization_id, plan_id from {{ ref('stg_warehouse__charges') }} where pay_in_advance = 1)
    group by organization_id, external_subscription_id
),
{%- if is_incremental() %}

coverage as (
    select organization_id, external_subscription_id, max(covered_from) as covered_from
    from {{ this }}
    group by organization_id, external_subscription_id
),

-- The subscriptions held: read from where they were covered on, covered from their open
-- period's start once it is later.
appended as (
    select c.organization_id as organization_id, c.external_subscription_id as external_subscription_id,
        c.covered_from as read_from, greatest(c.covered_from, o.open_from) as covered_from
    from coverage as c
    left join open_spans as o
        on o.organization_id = c.organization_id and o.external_subscription_id = c.external_subscription_id
),
{%- endif %}

-- The subscriptions of this run's open periods not held yet.
filled as (
    select organization_id, external_subscription_id, open_from as read_from, open_from as covered_from
    from open_spans
    {%- if is_incremental() %}
    where (organization_id, external_subscription_id) not in (
        select organization_id, external_subscription_id from coverage)
    {%- endif %}
)

{%- if is_incremental() %}
{{ open_advance_versions('appended', stored_through,
                         ingested_after='(select max(stored_through) from ' ~ this ~ ')') }}
union all
{%- endif %}
{{ open_advance_versions('filled', stored_through) }}
