{{ config(materialized='table', order_by='(organization_id, subscription_id, period_from, charge_id)',
          model_query_settings={'enable_materialized_cte': 1}) }}
-- depends_on: {{ rating_catalog_copies() }}
-- depends_on: {{ ref('int_rating_pay_in_advance_periods') }}
-- The deduplicated events of this run's started charge periods for a pay-in-advance charge, up
-- to the rating instant, placed in their period, charge, filter and group
-- (int_rating_pay_in_advance_fees prices them). Only the periods of plans that have such a
-- charge are rated, and only their subscriptions' events are read (the IN set on the events'
-- primary-key prefix, on a full build too), each from its own first period to rate on an
-- incremental run (incremental_events). Only the usage features (aggregation types, filters,
-- groups, expressions, proration) of the pay-in-advance charges in use are compiled in. The
-- re-sent transactions' set is computed once (a materialized CTE, see scoped_events).
-- Kept as a table with the run's start, its rating instant and a fingerprint of the
-- pay-in-advance catalog: the next incremental run takes the earlier events of the subscriptions
-- int_rating_pay_in_advance_periods marks as continued from here instead of reading and
-- placing them again (on a day, the anniversary periods opened last month hold most of the
-- events re-priced, and placing them was most of the pricing's cost).
{%- set incremental = rating_is_incremental() %}
{%- set previous = previous_placed_events() %}
with started_charge_periods as ({{ started_pay_in_advance_periods() }})
{%- if previous %},

previous_run as (
    select any(rated_at) as rated_at from {{ previous }}
),

-- The subscriptions whose earlier events are taken from the previous run (the others are read
-- from the events table whole, as on a run without a previous one), as this run found them.
continued_subscriptions as (
    select distinct organization_id, external_subscription_id
    from {{ ref('int_rating_pay_in_advance_periods') }}
    where rated_at = {{ rating_started_at() }} and continues_placement = 1
),

{{ incremental_events('started_charge_periods', continued='continued_subscriptions',
                      continued_since='(select rated_at from previous_run)') }},

-- The continued subscriptions' events placed by the previous run in the periods rated now, up to
-- this run's rating instant, but those of a transaction with a version read again (ingested
-- since, within the span): its latest version is placed anew.
placed_before as (
    select {{ placed_event_columns() }}
    from {{ previous }}
    -- Sorted by period within a subscription, so the primary key skips the other periods.
    where (organization_id, subscription_id, period_from) in (
            select organization_id, subscription_id, period_from from started_charge_periods)
        and timestamp <= {{ rating_as_of() }}
        and (organization_id, external_subscription_id) in (
            select organization_id, external_subscription_id from continued_subscriptions)
        and (organization_id, external_subscription_id, transaction_id) not in (
            select organization_id, external_subscription_id, transaction_id from events_to_rate)
)
{%- elif incremental %},

{{ incremental_events('started_charge_periods') }}
{%- endif %},

placed as (
    select {{ placed_event_columns() }}
    from ({{ charge_events('started_charge_periods', 1, rating_as_of(),
                           events='events_to_rate' if incremental else none, by_subscription=true,
                           features=usage_in_use(1), materialize_resent=true) }})
    {%- if previous %}
    union all
    select {{ placed_event_columns() }} from placed_before
    {%- endif %}
)

select
    placed.*,
    p.external_subscription_id as external_subscription_id,
    p.period_to as period_to,
    p.timezone as timezone,
    p.plan_id as plan_id,
    p.plan_version as plan_version,
    {{ rating_started_at() }} as rated_at,
    {{ rating_as_of() }} as rated_until,
    {{ pay_in_advance_catalog_fingerprint() }} as catalog_fingerprint
from placed
inner join started_charge_periods as p
    on p.organization_id = placed.organization_id
    and p.subscription_id = placed.subscription_id
    and p.period_from = placed.period_from
