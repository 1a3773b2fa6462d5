{#- Customer timezones. ClickHouse takes a timezone only as a constant, so conversions expand to a
    multiIf over the timezones in use (customers and organizations, read when dbt runs, plus UTC).
    A timezone added after the last run falls back to UTC until the next `meterhouse rate run`. -#}

{% macro known_timezones() -%}
    {#- Read once per model: every local_date / local_midnight of a model asks, and a query per
        call is a round trip each (dozens per run). -#}
    {%- if execute and model is mapping and model.get('meterhouse_timezones') -%}
        {{ return(model['meterhouse_timezones']) }}
    {%- endif -%}
    {%- set zones = ['UTC'] -%}
    {%- if execute -%}
        {#- Named directly rather than with source(): unit tests render this without sources. -#}
        {%- set database = '`' ~ target.schema ~ '`' -%}
        {%- set found = run_query(
            "select distinct tz from ("
            ~ " select assumeNotNull(timezone) as tz from " ~ database ~ ".customers where timezone is not null"
            ~ " union all select timezone from " ~ database ~ ".organizations)"
            ~ " where tz in (select time_zone from system.time_zones) order by tz") -%}
        {%- for row in found.rows -%}
            {%- if row[0] not in zones -%}{%- do zones.append(row[0]) -%}{%- endif -%}
        {%- endfor -%}
        {%- if model is mapping -%}{%- do model.update({'meterhouse_timezones': zones}) -%}{%- endif -%}
    {%- endif -%}
    {{ return(zones) }}
{%- endmacro %}

{#- The local calendar date of a UTC instant in the row's timezone. -#}
{% macro local_date(instant, timezone) -%}
    multiIf(
    {%- for zone in known_timezones() %}
        {{ timezone }} = '{{ zone }}', toDate({{ instant }}, '{{ zone }}'),
    {%- endfor %}
        toDate({{ instant }}, 'UTC'))
{%- endmacro %}

{#- The UTC instant at which a local date starts (local midnight) in the row's timezone. -#}
{% macro local_midnight(date, timezone) -%}
    multiIf(
    {%- for zone in known_timezones() %}
        {{ timezone }} = '{{ zone }}', toTimeZone(toDateTime64({{ date }}, 3, '{{ zone }}'), 'UTC'),
    {%- endfor %}
        toDateTime64({{ date }}, 3, 'UTC'))
{%- endmacro %}

{#- The instant rating stops at: var rating_as_of (ISO 8601, UTC) or the query's now. In a view,
    now64() is evaluated on every read, which keeps current usage fresh. -#}
{% macro rating_as_of() -%}
    {%- if var('rating_as_of') -%}
        toDateTime64('{{ var("rating_as_of") }}', 3, 'UTC')
    {%- else -%}
        now64(3, 'UTC')
    {%- endif -%}
{%- endmacro %}
