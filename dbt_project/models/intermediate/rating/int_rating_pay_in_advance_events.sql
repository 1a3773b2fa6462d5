{{ config(materialized='table', order_by='(organization_id, subscription_id, period_from, charge_id)',
          model_query_settings={'enable_materialized_cte': 1}) }}
-- The deduplicated events of this run's started charge periods for a pay-in-advance charge, up
-- to the rating instant, placed in their period, charge, filter and group
-- (int_rating_pay_in_advance_fees prices them). Only the periods of plans that have such a
-- charge are rated, and only their subscriptions' events are read (the IN set on the events'
-- primary-key prefix, on a full build too), each from its own first period to rate on an
-- incremental run (incremental_events). Only the usage features (aggregation types, filters,
-- groups, expressions, proration) of the pay-in-advance charges in use are compiled in. The
-- re-sent transactions' set is computed once (a materialized CTE, see scoped_events).
-- Kept as a table with the run's start, its rating instant and a fingerprint of the
-- pay-in-advance catalog: the next incremental run takes a subscription's earlier events from
-- here instead of reading and placing them again (on a day, the anniversary periods opened last
-- month hold most of the events re-priced, and placing them was most of the pricing's cost).
{%- set incremental = rating_is_incremental() %}
{%- set previous = previous_run_table(placed_event_names() + [
        'external_subscription_id', 'period_to', 'timezone', 'plan_id', 'plan_version',
        'rated_at', 'rated_until', 'catalog_fingerprint']) if incremental else none %}
with started_charge_periods as ({{ started_pay_in_advance_periods() }})
{%- if previous %},

previous_run as (
    select any(rated_at) as rated_at, any(rated_until) as rated_until, any(catalog_fingerprint) as catalog_fingerprint
    from {{ previous }}
),

-- The periods the previous run placed events in, with what placing an event in them depends on.
previous_periods as (
    select
        subscription_id, period_from,
        any((period_to, timezone, plan_id, plan_version, service_from_date, service_to_date, full_days)) as shape
    from {{ previous }}
    group by subscription_id, period_from
),

-- The subscriptions whose earlier events are taken from the previous run: every period of theirs
-- rated now that the previous run placed events in is shaped alike, the pay-in-advance catalog
-- is the same, and no event of theirs stored by then lies at or past its rating instant (so the
-- previous run placed every earlier event of the periods it rated, and a period it placed none
-- in holds none, if it begins at or after that instant; one that begins before it may not have
-- been rated then, and its subscription is read whole). The others are read from the events
-- table whole, as on a run without a previous one. Materialized: the events' read and the
-- previous events' filter both use it.
continued_subscriptions as materialized (
    select p.organization_id as organization_id, p.external_subscription_id as external_subscription_id
    from started_charge_periods as p
    left join (select *, 1 as found from previous_periods) as q
        on q.subscription_id = p.subscription_id and q.period_from = p.period_from
    group by p.organization_id, p.external_subscription_id
    having min(if(q.found = 1,
                  q.shape = (p.period_to, p.timezone, p.plan_id, p.plan_version,
                             p.service_from_date, p.service_to_date, p.full_days),
                  p.period_from >= (select rated_until from previous_run))) = 1
        and (select catalog_fingerprint from previous_run) = {{ pay_in_advance_catalog_fingerprint() }}
        and (p.organization_id, p.external_subscription_id) not in (
            select organization_id, external_subscription_id
            from {{ source('warehouse', 'events') }}
            where timestamp >= (select rated_until from previous_run)
                and timestamp <= {{ rating_as_of() }}
                and ingested_at <= (select rated_at from previous_run)
                and external_subscription_id in (select external_subscription_id from started_charge_periods))
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
