{{ config(materialized='ephemeral') }}
-- depends_on: {{ rating_catalog_copies() }}
-- The deduplicated events of the closed charge periods of this run, placed in their period,
-- arrears charge, filter and group. Ephemeral: streamed straight into the usage aggregation
-- rather than written out event by event. An incremental run reads only the events of the
-- subscriptions it rates. Only the filters, groups and expressions in use are compiled in; when
-- nothing tells two charges on one metric apart, each event is placed once in its period and
-- metric (usage_by_metric), and int_rating_charge_usage gives the metric's usage to its charges.
-- The re-sent transactions' set is computed once, a materialized CTE (the setting is
-- int_rating_charge_usage's, into which this model is inlined). Without recurring metrics, an
-- incremental run reads the events once, each subscription's from its own first closed period
-- to rate (incremental_events): on a day, the late events' periods and the anniversary periods
-- that just closed, rather than every rated subscription's events from the earliest of them.
{%- set features = usage_in_use(0) %}
{%- set incremental = rating_is_incremental() %}
{%- set reads_once = incremental and features is not none and not features.recurring %}
with closed_charge_periods as (
    select * from {{ ref('int_rating_periods') }} where period_kind = 'charges' and is_closed
)
{%- if reads_once %},

{{ incremental_events('closed_charge_periods') }}
{%- endif %}

select * from ({{ charge_events('closed_charge_periods', events='events_to_rate' if reads_once else none,
                                by_subscription=incremental, features=features,
                                by_metric=usage_by_metric(features), materialize_resent=true) }})
