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
    raw payload). `continued` (a CTE of organization and subscription ids) and `continued_since`
    (an instant): those subscriptions' events are read only where ingested after that instant
    (their earlier ones are taken as placed by the previous run, see
    int_rating_pay_in_advance_events). -#}
{% macro incremental_events(periods, continued=none, continued_since=none) -%}
-- Where each subscription's periods to rate begin.
subscription_spans as (
    select organization_id, external_subscription_id, min(period_from) as span_from
    from {{ periods }}
    group by organization_id, external_subscription_id
),

-- The spans whose events are read before the latest span's month whatever their ingestion: the
-- continued subscriptions' are read in a branch of their own.
spans_read_whole as (
    select * from subscription_spans
    {%- if continued %}
    where (organization_id, external_subscription_id) not in (
        select organization_id, external_subscription_id from {{ continued }})
    {%- endif %}
),

-- The bounds of the reads below, each one named scalar: the warehouse analyses a named CTE again
-- at each place that reads it (see scoped_events' scope). The latest span's month, with every
-- rated organization and subscription;
(select tuple(toStartOfMonth(max(span_from)), groupUniqArray(organization_id), groupUniqArray(external_subscription_id))
 from subscription_spans) as latest_spans,

-- the spans read whole: their earliest start, and the organizations and subscriptions of those
-- that begin before the latest span's month;
(select tuple(min(span_from), groupUniqArrayIf(organization_id, span_from < latest_spans.1),
              groupUniqArrayIf(external_subscription_id, span_from < latest_spans.1))
 from spans_read_whole) as early_spans,

-- the earliest span start of each subscription id (over organizations), as two sorted arrays.
(select tuple(groupArray(external_subscription_id), groupArray(span_from))
 from (
     select external_subscription_id, min(span_from) as span_from
     from spans_read_whole
     group by external_subscription_id
     order by external_subscription_id)) as span_starts,

events_to_rate as materialized (
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ source('warehouse', 'events') }}
    where timestamp >= latest_spans.1
        and timestamp <= (select max(period_to) from {{ periods }})
        and organization_id in latest_spans.2
        and external_subscription_id in latest_spans.3
        {%- if continued %}
        and (ingested_at > {{ continued_since }}
            or (organization_id, external_subscription_id) not in (
                select organization_id, external_subscription_id from {{ continued }}))
        {%- endif %}
    union all
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ source('warehouse', 'events') }}
    where timestamp < latest_spans.1
        and timestamp >= early_spans.1
        and organization_id in early_spans.2
        and external_subscription_id in early_spans.3
        and timestamp >= transform(external_subscription_id, span_starts.1, span_starts.2,
            toDateTime64('2299-12-31 00:00:00', 3, 'UTC'))
        {%- if continued %}
        -- A continued subscription sharing its id with one read whole in another organization.
        and (organization_id, external_subscription_id) not in (
            select organization_id, external_subscription_id from {{ continued }})
    union all
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ source('warehouse', 'events') }}
    where ingested_at > {{ continued_since }}
        and timestamp < latest_spans.1
        and timestamp >= (
            select min(span_from) from subscription_spans
            where (organization_id, external_subscription_id) in (
                select organization_id, external_subscription_id from {{ continued }}))
        and (organization_id, external_subscription_id) in (
            select organization_id, external_subscription_id from {{ continued }})
        {%- endif %}
)
{%- endmacro %}

{#- int_rating_pay_in_advance_events as the previous run left it, on an incremental run, when it
    has every column a continuation reads (a table from an earlier version without them is not
    continued from); none otherwise. -#}
{% macro previous_placed_events() -%}
    {%- if not execute or not rating_is_incremental() %}{{ return(none) }}{% endif %}
    {%- set previous = adapter.get_relation(database=this.database, schema=this.schema,
                                            identifier='int_rating_pay_in_advance_events') %}
    {%- if previous is none %}{{ return(none) }}{% endif %}
    {%- set columns = placed_event_names() + ['external_subscription_id', 'period_to', 'timezone', 'plan_id',
                                               'plan_version', 'rated_at', 'rated_until', 'catalog_fingerprint'] %}
    {%- set names = adapter.get_columns_in_relation(previous) | map(attribute='name') | list %}
    {{- return(previous if columns | reject('in', names) | list | length == 0 else none) -}}
{%- endmacro %}

{#- A fingerprint of everything placing a pay-in-advance event reads from the
    catalog (its charges, their filters, the billable metrics): placed events stored under
    another one are placed again. -#}
{% macro pay_in_advance_catalog_fingerprint() -%}
    (
        (select sum(cityHash64(formatRow('TSV', *))) from {{ rating_catalog('charges') }} where pay_in_advance = 1)
        + (select sum(cityHash64(formatRow('TSV', *))) from {{ rating_catalog('charge_filters') }})
        + (select sum(cityHash64(formatRow('TSV', *))) from {{ rating_catalog('billable_metrics') }})
    )
{%- endmacro %}

{#- The run's start, as fct_fees stamps its fees (`rated_at`): an event ingested after it is
    read again by the next incremental run. -#}
{% macro rating_started_at() -%}
    toDateTime64('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}', 6, 'UTC')
{%- endmacro %}

{#- The started charge periods of the plans that have a pay-in-advance charge: the periods whose
    events the pay-in-advance fees are placed in and priced over. Read from
    int_rating_pay_in_advance_periods when the calling model declares it (`depends_on`) and the
    run built it first (it is selected); otherwise (that table's own query, a model run alone)
    filtered out of int_rating_periods, so a model reads the periods its own run rated. -#}
{% macro started_pay_in_advance_periods() -%}
    {%- set table = 'int_rating_pay_in_advance_periods' %}
    {%- if built_first(table) %}
    select * except (continues_placement, rated_at) from {{ ref(table) }}
    {%- else %}
    select *
    from {{ ref('int_rating_periods') }}
    where period_kind = 'charges'
        and (organization_id, plan_id) in (
            select organization_id, plan_id from {{ rating_catalog('charges') }} where pay_in_advance = 1)
    {%- endif %}
{%- endmacro %}

{#- Whether the calling model declares `table` (`depends_on`) and the run built it first (it is
    selected), so that the model reads what this run put in it. -#}
{% macro built_first(table) -%}
    {%- set node = 'model.' ~ project_name ~ '.' ~ table %}
    {{- return(execute and node in model.depends_on.nodes and node in selected_resources) -}}
{%- endmacro %}

{#- Whether this run may rate a renewal: one of its started charge periods renews a plan with a
    recurring pay-in-advance charge. Asked of int_rating_pay_in_advance_periods when the run built
    it first, true otherwise; a run without one (most days) need not analyse the renewal's query,
    ~2-9 s of a thread. -#}
{% macro renewals_due() -%}
    {%- set table = 'int_rating_pay_in_advance_periods' %}
    {%- if not built_first(table) %}{{ return(true) }}{% endif %}
    {%- set found = run_query(
        "select count() from " ~ ref(table) ~ " where is_renewal and (organization_id, plan_id) in ("
        ~ "select organization_id, plan_id from (" ~ rated_charges(1, recurring_only=true) ~ "))") %}
    {{- return(found.rows[0][0] > 0) -}}
{%- endmacro %}
