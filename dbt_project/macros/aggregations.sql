{#- Aggregations (billing-semantics.md, "Aggregations and charge filters"). -#}

{#- The numeric value of an event for its metric: the metric's field as a Decimal, NULL when the
    property is missing or not a number (sum ignores it). -#}
{% macro event_value(properties, field_name) -%}
    toDecimal128OrNull(trim({{ properties }}[ifNull({{ field_name }}, '')]), 12)
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
    as a constant, so the supported precisions (-6..12) are spelled out. -#}
{% macro round_units(units, rounding_function, rounding_precision) -%}
    if({{ rounding_function }} is null, {{ units }}, multiIf(
    {%- for precision in range(-6, 13) %}
        ifNull({{ rounding_precision }}, 0) = {{ precision }},
            toDecimal128(multiIf({{ rounding_function }} = 'ceil', ceil({{ units }}, {{ precision }}),
                                 {{ rounding_function }} = 'floor', floor({{ units }}, {{ precision }}),
                                 round({{ units }}, {{ precision }})), 12),
    {%- endfor %}
        {{ units }}))
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
