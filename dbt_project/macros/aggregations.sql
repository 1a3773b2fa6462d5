{#- Aggregations (billing-semantics.md, "Aggregations and charge filters"). -#}

{#- The numeric value of an event for its metric: the metric's field as a Decimal, NULL when the
    property is missing or not a number (sum ignores it). -#}
{% macro event_value(properties, field_name) -%}
    toDecimal128OrNull(trim({{ properties }}[ifNull({{ field_name }}, '')]), 12)
{%- endmacro %}

{#- An event's place in arrival order, (timestamp, ingested_at), as one Int128 that orders as the
    pair does: the milliseconds in the high 64 bits, the microseconds of ingestion (offset to be
    non-negative) in the low ones. argMax and max over a tuple compare each row as a generic
    value; over this number they compare integers (at 10M events, the unique counts' last
    operation alone cost ~2 warehouse CPU-s that way). -#}
{% macro event_order(timestamp, ingested_at) -%}
    (toInt128(toUnixTimestamp64Milli({{ timestamp }})) * toInt128('18446744073709551616')
     + (toInt128(toUnixTimestamp64Micro({{ ingested_at }})) + toInt128('9223372036854775808')))
{%- endmacro %}

{#- Does an event match a charge filter? Every key of the filter must be present in the event with
    one of the filter's values, or with any value when the filter lists __ALL_FILTER_VALUES__. -#}
{% macro filter_matches(filter_values, properties) -%}
    arrayAll(k -> mapContains({{ properties }}, k)
                  AND (has({{ filter_values }}[k], '__ALL_FILTER_VALUES__') OR has({{ filter_values }}[k], {{ properties }}[k])),
             mapKeys({{ filter_values }}))
{%- endmacro %}

{#- The grouped_by key of an event: the listed properties it has (a missing property leaves its
    key out, the null group). -#}
{% macro group_key(grouped_by, properties) -%}
    mapFromArrays(arrayFilter(k -> mapContains({{ properties }}, k), {{ grouped_by }}),
                  arrayMap(k -> {{ properties }}[k], arrayFilter(k -> mapContains({{ properties }}, k), {{ grouped_by }})))
{%- endmacro %}

{#- Metric rounding of aggregated units: round (half away from zero), ceil or floor at a decimal
    precision that may be negative (123.456 at -2 rounds to 100). ClickHouse wants the precision
    as a constant, so the supported precisions (-6..12) are spelled out; `precisions` (see
    pricing_in_use) spells out only those, and a row with another supported one fails. -#}
{% macro round_units(units, rounding_function, rounding_precision, precisions=none) -%}
    {%- set spelled, omitted = [], [] %}
    {%- for precision in range(-6, 13) %}
    {%- do (spelled if precisions is none or precision in precisions else omitted).append(precision) %}
    {%- endfor %}
    {%- set otherwise -%}
        {%- if omitted -%}
        {{ units }} + {{ compiled_out_guard('ifNull(' ~ rounding_precision ~ ', 0)', omitted, 'rounding precision',
                                          rounding_function ~ ' is not null') }}
        {%- else -%}
        {{ units }}
        {%- endif -%}
    {%- endset -%}
    if({{ rounding_function }} is null, {{ units }},
    {%- if spelled %} multiIf(
    {%- for precision in spelled %}
        ifNull({{ rounding_precision }}, 0) = {{ precision }},
            toDecimal128(multiIf({{ rounding_function }} = 'ceil', ceil({{ units }}, {{ precision }}),
                                 {{ rounding_function }} = 'floor', floor({{ units }}, {{ precision }}),
                                 round({{ units }}, {{ precision }})), 12),
    {%- endfor %}
        {{ otherwise }}))
    {%- else %} {{ otherwise }})
    {%- endif %}
{%- endmacro %}

{#- Weighted sum: each event value is a delta applied to a running level (from 0), and the units
    are sum(level x seconds held) / (full period days x 86400); a level is held until the next
    event or the end of the service period, and the denominator is always the full period. -#}
{% macro weighted_sum_units(values, times, service_to, full_days) -%}
    {{ money_div(
        'arraySum(i -> ' ~ money_mul(
            'arrayCumSum(' ~ values ~ ')[i]',
            'toDecimal128(dateDiff(\'millisecond\', ' ~ times ~ '[i], if(i < length(' ~ times ~ '), '
            ~ times ~ '[i + 1], ' ~ service_to ~ ' + toIntervalMillisecond(1))), 12)') ~ ', arrayEnumerate(' ~ values ~ '))',
        'toDecimal128(' ~ full_days ~ ' * 86400000, 12)') }}
{%- endmacro %}

{#- Metric expressions (billing-semantics.md is silent; Lago's `expression`). The billing API
    translates each metric's expression once into ClickHouse SQL (api/services/metric_expressions.py)
    and stores it in billable_metrics.expression_sql; this reads them when dbt runs and compiles
    them in as a multiIf over the metric id. An expression created or changed after the last
    `meterhouse rate run` is seen by the current usage view after the next run. -#}
{% macro metric_expressions() -%}
    {%- set expressions = [] -%}
    {%- if execute -%}
        {#- Named directly rather than with source(), as known_timezones(). -#}
        {%- set found = run_query(
            "select toString(id), expression_sql from `" ~ target.schema ~ "`.billable_metrics final"
            ~ " where is_deleted = 0 and expression_sql is not null order by id") -%}
        {%- for row in found.rows -%}
            {%- do expressions.append((row[0], row[1])) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(expressions) }}
{%- endmacro %}

{#- The result (Nullable(String)) of the event's metric expression, NULL for a metric without one. -#}
{% macro expression_value(metric_id, properties, timestamp, code) -%}
    {%- set expressions = metric_expressions() -%}
    {%- if expressions -%}
    multiIf(
    {%- for metric, sql in expressions %}
        {{ metric_id }} = toUUID('{{ metric }}'),
            {{ sql | replace('__PROPERTIES__', properties) | replace('__TIMESTAMP__', timestamp) | replace('__CODE__', code) }},
    {%- endfor %}
        CAST(NULL AS Nullable(String)))
    {%- else -%}
    CAST(NULL AS Nullable(String))
    {%- endif -%}
{%- endmacro %}

{#- The event's properties as the metric reads them: with an expression, its result replaces the
    field_name property (removed when there is no result), as Lago stores the event. -#}
{% macro metric_properties(expression, field_name, result, properties) -%}
    if(ifNull({{ expression }}, '') = '', {{ properties }},
       mapUpdate(mapFilter((k, v) -> k != ifNull({{ field_name }}, ''), {{ properties }}),
                 mapFromArrays(if(isNull({{ result }}), [], [ifNull({{ field_name }}, '')]),
                               if(isNull({{ result }}), [], [assumeNotNull({{ result }})]))))
{%- endmacro %}

{#- Proration of recurring metrics on prorated charges (Lago): an item counts for the days it is
    present / the days of the full period, both ends included, in the customer's timezone. An
    event of the period is present from its day to the end of the service; one carried from
    earlier periods for every served day. -#}
{% macro days_present(event_date, service_from_date, service_to_date) -%}
    toDecimal128(greatest(dateDiff('day', greatest({{ event_date }}, {{ service_from_date }}), {{ service_to_date }}) + 1, 0), 12)
{%- endmacro %}

{#- Proration of a pay-in-advance event (Lago): the days left in the period from the event on,
    counted as started days of 24 hours up to the period's end, over the days of the full period. -#}
{% macro in_advance_proration(timestamp, period_to, full_days) -%}
    {{ money_div('toDecimal128(intDiv(dateDiff(\'millisecond\', ' ~ timestamp ~ ', ' ~ period_to ~ ') + 86399999, 86400000), 12)', full_days) }}
{%- endmacro %}

{#- Days a unique value is present in the service: its operations (timestamp, is_remove, local
    day) in order, read as Lago does: a remove counts only as the last operation of its day, a
    repeated operation changes nothing, and each add lasts until the next remove, whose day
    counts, or until the end of the service. -#}
{% macro unique_value_days(operations, service_from_date, service_to_date) -%}
    arrayMap(kept ->
        arrayMap(changes ->
            toDecimal128(arraySum(i -> if(changes[i].2, 0,
                greatest(dateDiff('day', greatest(changes[i].3, {{ service_from_date }}),
                                  if(i < length(changes), least(changes[i + 1].3, {{ service_to_date }}), {{ service_to_date }})) + 1, 0)),
                arrayEnumerate(changes)), 12),
            [arrayFilter((op, i) -> op.2 != if(i = 1, true, kept[i - 1].2), kept, arrayEnumerate(kept))])[1],
        [arrayFilter((op, i) -> not op.2 or i = length({{ operations }}) or {{ operations }}[i + 1].3 != op.3,
                     {{ operations }}, arrayEnumerate({{ operations }}))])[1]
{%- endmacro %}

{#- The usage features of the run's charges of one kind (pay_in_advance 0 or 1; the run's copy of
    the catalog, rating_catalog), read when dbt runs, as pricing_in_use reads the charge models:
    a per-run table compiles into its placement and aggregation of every event only what they
    use (charge_events' and charge_usage's `features`). A dict of `aggregations` (the metrics'
    aggregation types), `filters` (a charge has a filter), `grouped_by` (a charge or filter
    groups), `expressions` (a metric has one), `prorated` (a prorated charge), `ordered` (a
    charge that keeps its events in order: percentage, weighted sum, prorated graduated sum),
    `recurring` (a recurring metric) and `field_names` (the metrics' fields, sorted; none when
    there are too many to read one by one); `recurring_only`: the features of the charges of
    recurring metrics only (a renewal's), as their guard checks. none (everything) while dbt
    parses and in unit tests, whose catalog is their fixture rows. -#}
{% macro usage_in_use(pay_in_advance, recurring_only=false) -%}
    {%- if not execute or (model is mapping and model.get('resource_type') == 'unit_test') -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(usage_features_query(pay_in_advance, recurring_only)) -%}
    {%- set row = found.rows[0] -%}
    {#- More field names than this: read the properties map (one tuple element and one branch per
        name would cost more than the map). -#}
    {%- set max_field_names = 16 -%}
    {{ return({'aggregations': row[0].split(',') if row[0] else [],
               'filters': row[1] > 0,
               'grouped_by': row[2] > 0,
               'expressions': row[3] > 0,
               'prorated': row[4] > 0,
               'ordered': row[5] > 0,
               'recurring': row[8] > 0,
               'recurring_only': recurring_only,
               'field_names': none if row[7] > max_field_names else (row[6].split(',') if row[6] else [])}) }}
{%- endmacro %}

{#- Can the arrears usage be aggregated per metric rather than per charge (charge_events'
    by_metric, charge_usage's metric_periods)? Only filters, groups, proration and ordered events
    (percentage, weighted sum, prorated graduated) tell two charges on one metric apart, and the
    per-metric placement reads the properties as a tuple (no expression, few field names). -#}
{% macro usage_by_metric(features) -%}
    {{ return(features is not none and features.field_names is not none
              and not (features.filters or features.grouped_by or features.expressions
                       or features.prorated or features.ordered)) }}
{%- endmacro %}

{#- The run's charges of one kind (recurring_only: of recurring metrics) with what usage_in_use
    reads of them and their metric. -#}
{% macro usage_charges(pay_in_advance, recurring_only=false) -%}
    select organization_id, charge_id, charge_model, grouped_by, prorated, aggregation_type, expression,
        field_name, recurring
    from ({{ rated_charges(pay_in_advance, recurring_only) }})
{%- endmacro %}

{#- The run's charge filters (see usage_charges). -#}
{% macro usage_charge_filters() -%}
    select organization_id, charge_id, grouped_by from {{ rating_catalog('charge_filters') }}
{%- endmacro %}

{#- One row of the usage features of the run's charges of one kind (see usage_in_use). -#}
{% macro usage_features_query(pay_in_advance, recurring_only=false) -%}
    with charges as ({{ usage_charges(pay_in_advance, recurring_only) }}),
    filters as (
        select grouped_by from ({{ usage_charge_filters() }})
        where (organization_id, charge_id) in (select organization_id, charge_id from charges)
    )
    select
        arrayStringConcat(arraySort(groupUniqArray(toString(aggregation_type))), ','),
        (select count() from filters),
        countIf(notEmpty(grouped_by)) + (select countIf(notEmpty(grouped_by)) from filters),
        countIf(ifNull(expression, '') != ''),
        countIf(prorated = 1),
        countIf({{ ordered_events_condition('charge_model', 'aggregation_type', 'prorated') }}),
        arrayStringConcat(arraySort(groupUniqArrayIf(assumeNotNull(field_name), isNotNull(field_name))), ','),
        uniqExactIf(field_name, isNotNull(field_name)),
        countIf(recurring = 1)
    from charges
{%- endmacro %}

{#- Does a charge keep its events in timestamp order (charge_usage's ordered events)? -#}
{% macro ordered_events_condition(charge_model, aggregation_type, prorated) -%}
    ({{ charge_model }} = 'percentage' or {{ aggregation_type }} = 'weighted_sum_agg'
     or ({{ prorated }} = 1 and {{ charge_model }} = 'graduated' and {{ aggregation_type }} = 'sum_agg'))
{%- endmacro %}

{#- A condition that fails the query when the run's charges of one kind use a feature `features`
    compiles out: the run's copy of the catalog replaced after dbt read it (usage_in_use), by
    another run; the next run compiles it in. A scalar subquery over a few catalog rows,
    evaluated once per query, not per event. true without features. -#}
{% macro usage_features_guard(features, pay_in_advance) -%}
    {%- if features is none -%}
    true
    {%- else -%}
    {%- set compiled_out = [] %}
    {%- set filters = usage_charge_filters() %}
    {%- do compiled_out.append("aggregation_type not in ('" ~ (features.aggregations + ['']) | join("', '") ~ "')") %}
    {%- if not features.filters %}
    {%- do compiled_out.append("(organization_id, charge_id) in (select organization_id, charge_id from (" ~ filters ~ "))") %}
    {%- endif %}
    {%- if not features.grouped_by %}
    {%- do compiled_out.append("notEmpty(grouped_by) or (organization_id, charge_id) in (select organization_id, charge_id from ("
                               ~ filters ~ ") where notEmpty(grouped_by))") %}
    {%- endif %}
    {%- if not features.expressions %}
    {%- do compiled_out.append("ifNull(expression, '') != ''") %}
    {%- endif %}
    {#- Recurring metrics: carried into arrears periods and into pay-in-advance renewals. -#}
    {%- if not features.recurring %}
    {%- do compiled_out.append("recurring = 1") %}
    {%- endif %}
    {%- if not features.prorated %}
    {%- do compiled_out.append("prorated = 1") %}
    {%- endif %}
    {%- if features.field_names is not none and not (features.filters or features.grouped_by or features.expressions) %}
    {%- set names = [] %}
    {%- for name in features.field_names + [''] %}{% do names.append(sql_string(name)) %}{% endfor %}
    {%- do compiled_out.append("ifNull(field_name, '') not in (" ~ names | join(', ') ~ ")") %}
    {%- endif %}
    {#- Pay-in-advance charges keep no events in order (their running figures are window
        aggregates): only the arrears path compiles those out. -#}
    {%- if not features.ordered and pay_in_advance == 0 %}
    {%- do compiled_out.append(ordered_events_condition('charge_model', 'aggregation_type', 'prorated')) %}
    {%- endif %}
    (select throwIf(count() > 0, 'a usage feature (aggregation, filter, grouped_by, expression, proration) was added to the catalog during the run: rate again')
     from ({{ usage_charges(pay_in_advance, features.recurring_only) }}) where {{ compiled_out | join(' or ') }}) = 0
    {%- endif -%}
{%- endmacro %}

{#- A ClickHouse string literal. -#}
{% macro sql_string(text) -%}
    '{{ text | replace('\\', '\\\\') | replace("'", "\\'") }}'
{%- endmacro %}
