{#- Incremental builds of the marts that read raw events: each build re-aggregates only the UTC
    days that received events since the previous build, so a daily build reads one day of events
    instead of the whole history. -#}

{#- The (organization_id, date) days that got events ingested after the newest event already
    aggregated in `relation`, less a margin for inserts that were still in flight when that build
    read the events (an event's ingested_at is taken before its insert commits). -#}
{% macro days_with_new_events(relation, margin='interval 1 hour') -%}
    select distinct organization_id, toDate(timestamp, 'UTC') as date
    from {{ source('warehouse', 'events') }}
    where ingested_at > (select max(last_ingested_at) from {{ relation }}) - {{ margin }}
{%- endmacro %}

{#- The condition on `events` (aliased `alias`) that keeps the days to re-aggregate: every day on
    a full build, the days of days_with_new_events on an incremental one. The timestamp bound is
    a constant, so the monthly partitions before the first changed day are never read. -#}
{% macro events_to_aggregate(alias='e') -%}
    {%- if is_incremental() %}
    {{ alias }}.timestamp >= (select toDateTime64(min(date), 3, 'UTC') from changed_days)
    and ({{ alias }}.organization_id, toDate({{ alias }}.timestamp, 'UTC')) in (select organization_id, date from changed_days)
    {%- else %}
    1
    {%- endif %}
{%- endmacro %}

{#- Whether a billable metric has a numeric field (field_name) to sum, read when the model runs:
    when none has, fct_usage_daily_by_subscription compiles its sum out (a constant 0) and reads
    no event properties. Reads the rows stg_warehouse__billable_metrics shows from its source
    table (the view may not exist yet when a fresh project is compiled). True while dbt parses
    and in unit tests (every branch compiled). -#}
{% macro billable_metrics_have_fields() -%}
    {%- if not execute or is_unit_test() -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set found = run_query(
        "select count() from " ~ source('warehouse', 'billable_metrics')
        ~ " final where is_deleted = 0 and ifNull(field_name, '') != ''") -%}
    {{ return(found.rows[0][0] > 0) }}
{%- endmacro %}

{#- Whether the model is compiled for a dbt unit test, where each source is a CTE of fixture rows
    (no duplicates to merge): FINAL and PREWHERE do not apply to a CTE. -#}
{% macro is_unit_test() -%}
    {{ return(model is mapping and model.get('resource_type') == 'unit_test') }}
{%- endmacro %}

{#- Billable metrics numbered for a lookup per event, found by a hash of organization and code
    (a number groups faster than a UUID and a code). In a tuple built from
    stg_warehouse__billable_metrics: metric_lookup_keys() as its first three elements (hash,
    organization, code), then the model's own, and metric_lookup_check() to fail the build when
    two metrics share a hash. -#}
{% macro metric_lookup_keys() -%}
    groupArray(cityHash64(organization_id, billable_metric_code)),
            groupArray(organization_id),
            groupArray(billable_metric_code)
{%- endmacro %}

{% macro metric_lookup_check() -%}
    throwIf(
                uniqExact(cityHash64(organization_id, billable_metric_code)) != count(),
                'two billable metrics share a metric lookup hash'
            )
{%- endmacro %}

{#- An event's metric number in `lookup` (0: none); of_metric keeps it only for the metric's own
    organization and code, so a hash that meets a metric's by chance is left out. -#}
{% macro metric_number(lookup, alias='e') -%}
    transform(
            cityHash64({{ alias }}.organization_id, {{ alias }}.code), {{ lookup }}.1,
            arrayEnumerate({{ lookup }}.1), 0
        )
{%- endmacro %}

{% macro of_metric(lookup, number='metric_index', alias='e') -%}
    {{ number }} != 0
        and {{ alias }}.organization_id = {{ lookup }}.2[{{ number }}]
        and {{ alias }}.code = {{ lookup }}.3[{{ number }}]
{%- endmacro %}
