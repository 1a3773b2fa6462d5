{#- Whether this run rates only the periods that need work (int_rating_periods): fct_fees exists
    and the run is not a --full-refresh. The rating tables then read only the subscriptions of
    those periods (see scoped_events' by_subscription). -#}
{% macro rating_is_incremental() -%}
    {%- set fees = adapter.get_relation(database=this.database, schema=this.schema, identifier='fct_fees') %}
    {{- return(fees is not none and not flags.FULL_REFRESH) -}}
{%- endmacro %}

{#- The CTEs that read, once, the events an incremental run's rating query needs for `periods`
    (a CTE of the periods to rate), ending with `events_to_rate`, to pass to charge_events as its
    `events` (the query must set `enable_materialized_cte`). MATERIALIZED: scoped_events reads its
    events three times, for the re-sent set, the single-version events and the re-sent ones, and
    re-reading the stored events each time decompressed the properties of every event of the
    subscriptions' granules again. From the latest span's month on, every rated subscription's
    events; before it, only those of the subscriptions whose periods begin earlier (on a day, the
    anniversary periods opened in March and the closed periods with late events), each from its
    own span's start, rather than every rated subscription's from the earliest span of all. Every
    event at or after its own subscription's first rated period is still read, so the fees are the
    same: an event before it finds no period to be placed in, and an earlier version of a re-sent
    id only counted within its own subscription's span. Not for recurring metrics, whose earlier
    events are carried into the periods. Only the columns scoped_events reads are held (not the
    raw payload).
    With `store` (int_rating_open_advance_events), a subscription whose span begins where the
    store covers it is read from the store instead: it holds every version of its events from
    there on, up to this run's start, which is what the events table gives for the span (a
    version the events table merged away is an older copy of the same row: the latest version
    wins either way). The other subscriptions (a late event's closed period, a subscription the
    store does not cover) read the events table as above. -#}
{% macro incremental_events(periods, store=none) -%}
-- Where each subscription's periods to rate begin.
subscription_spans as (
    select organization_id, external_subscription_id, min(period_from) as span_from
    from {{ periods }}
    group by organization_id, external_subscription_id
),
{%- if store %}

-- The spans the store covers, read from it. Both kinds materialized: each is read by
-- several scalar and IN subqueries, which otherwise each re-ran the join to the store's coverage
-- as the query was analysed (~0.5 warehouse CPU-s a query).
stored_spans as materialized (
    select s.organization_id as organization_id, s.external_subscription_id as external_subscription_id,
        s.span_from as span_from
    from subscription_spans as s
    inner join (
        select organization_id, external_subscription_id, max(covered_from) as covered_from
        from {{ store }}
        group by organization_id, external_subscription_id
    ) as coverage
        on coverage.organization_id = s.organization_id
        and coverage.external_subscription_id = s.external_subscription_id
    where s.span_from >= coverage.covered_from
),

-- The others, read from the events table.
unstored_spans as materialized (
    select * from subscription_spans
    where (organization_id, external_subscription_id) not in (
        select organization_id, external_subscription_id from stored_spans)
),

{{ span_starts('stored_span_starts', 'stored_spans') }},
{%- set spans = 'unstored_spans' %}
{%- else %}
{%- set spans = 'subscription_spans' %}
{%- endif %}

{{ span_starts('span_starts', spans) }},

events_to_rate as materialized (
    {%- if store %}
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ store }}
    where organization_id in (select organization_id from stored_spans)
        and external_subscription_id in (select external_subscription_id from stored_spans)
        and timestamp <= (select max(period_to) from {{ periods }})
        and timestamp >= {{ span_start_of('stored_span_starts') }}
    union all
    {%- endif %}
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ source('warehouse', 'events') }}
    where timestamp >= (select toStartOfMonth(max(span_from)) from {{ spans }})
        and timestamp <= (select max(period_to) from {{ periods }})
        and organization_id in (select organization_id from {{ spans }})
        and external_subscription_id in (select external_subscription_id from {{ spans }})
    union all
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ source('warehouse', 'events') }}
    where timestamp < (select toStartOfMonth(max(span_from)) from {{ spans }})
        and timestamp >= (select min(span_from) from {{ spans }})
        and organization_id in (
            select organization_id from {{ spans }}
            where span_from < (select toStartOfMonth(max(span_from)) from {{ spans }}))
        and external_subscription_id in (
            select external_subscription_id from {{ spans }}
            where span_from < (select toStartOfMonth(max(span_from)) from {{ spans }}))
        and timestamp >= {{ span_start_of('span_starts') }}
)
{%- endmacro %}

{#- A CTE `name`: the earliest span start of each subscription id of `spans` (over organizations),
    as two sorted arrays, for span_start_of. -#}
{% macro span_starts(name, spans) -%}
{{ name }} as (
    select groupArray(external_subscription_id) as subscription_ids, groupArray(span_from) as span_froms
    from (
        select external_subscription_id, min(span_from) as span_from
        from {{ spans }}
        group by external_subscription_id
        order by external_subscription_id)
)
{%- endmacro %}

{#- The span start of the row's subscription id, from a span_starts CTE (none: far in the future). -#}
{% macro span_start_of(starts) -%}
transform(external_subscription_id, (select subscription_ids from {{ starts }}), (select span_froms from {{ starts }}),
    toDateTime64('2299-12-31 00:00:00', 3, 'UTC'))
{%- endmacro %}

{#- The event versions of int_rating_open_advance_events for `targets` (a CTE of subscriptions
    with the timestamp to read from and the `covered_from` to write), ingested up to
    `stored_through` and, with `ingested_after`, after it. The one-column sets and the earliest
    start prune the events' granules; the join keeps each subscription's own rows from its own
    start. -#}
{% macro open_advance_versions(targets, stored_through, ingested_after=none) -%}
select e.organization_id as organization_id, e.external_subscription_id as external_subscription_id,
    e.transaction_id as transaction_id, e.code as code, e.timestamp as timestamp, e.properties as properties,
    e.precise_total_amount_cents as precise_total_amount_cents, e.ingested_at as ingested_at,
    t.covered_from as covered_from, {{ stored_through }} as stored_through
from (
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ source('warehouse', 'events') }}
    where timestamp >= (select min(read_from) from {{ targets }})
        and organization_id in (select organization_id from {{ targets }})
        and external_subscription_id in (select external_subscription_id from {{ targets }})
        and ingested_at <= {{ stored_through }}
        {%- if ingested_after %}
        and ingested_at > {{ ingested_after }}
        {%- endif %}
) as e
inner join {{ targets }} as t
    on t.organization_id = e.organization_id and t.external_subscription_id = e.external_subscription_id
where e.timestamp >= t.read_from
{%- endmacro %}

{#- The pre-hook of int_rating_open_advance_events: the rows of a subscription before where it is
    covered now (its open period moved on), which no read takes any more. -#}
{% macro cut_open_advance_events(store) -%}
delete from {{ store }}
where external_subscription_id in (
        select external_subscription_id from {{ store }}
        group by organization_id, external_subscription_id
        having min(timestamp) < max(covered_from))
    and timestamp < transform(concat(toString(organization_id), external_subscription_id),
        (select groupArray(subscription_key) from (
            select concat(toString(organization_id), external_subscription_id) as subscription_key
            from {{ store }} group by organization_id, external_subscription_id order by subscription_key)),
        (select groupArray(covered_from) from (
            select concat(toString(organization_id), external_subscription_id) as subscription_key,
                max(covered_from) as covered_from
            from {{ store }} group by organization_id, external_subscription_id order by subscription_key)),
        toDateTime64('1970-01-01 00:00:00', 3, 'UTC'))
{%- endmacro %}
