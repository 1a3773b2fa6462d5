{{ config(materialized='table', order_by='(organization_id, subscription_id, period_from)') }}
-- depends_on: {{ rating_catalog_copies() }}
-- The started charge periods of this run for the plans with a pay-in-advance charge (the periods
-- whose events int_rating_pay_in_advance_events places and int_rating_pay_in_advance_fees
-- prices), each marked with whether its subscription's earlier events are taken as the previous
-- run placed them (int_rating_pay_in_advance_events as it left it): every period of the
-- subscription rated now that the previous run placed events in is shaped alike, the
-- pay-in-advance catalog is the same, and no event of the subscription stored by then lies at or
-- past its rating instant (so the previous run placed every earlier event of the periods it
-- rated, and a period it placed none in holds none, if it begins at or after that instant; one
-- that begins before it may not have been rated then, and its subscription is read whole). No
-- subscription continues on a full run or without a previous table.
-- A table of its own, stamped with the run's start: the two pay-in-advance queries name these
-- periods at every IN set and scalar subquery of theirs, and the warehouse evaluated the filter of
-- int_rating_periods by the catalog's plans again at each one; the placement's scalar subqueries
-- evaluated the continued set again at each one too, materialized CTE or not.
{%- set previous = previous_placed_events() %}
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

continued_subscriptions as (
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
)
{%- endif %}

select
    *,
    {%- if previous %}
    toUInt8((organization_id, external_subscription_id) in (
        select organization_id, external_subscription_id from continued_subscriptions))
    {%- else %}
    toUInt8(0)
    {%- endif %} as continues_placement,
    {{ rating_started_at() }} as rated_at
from started_charge_periods
