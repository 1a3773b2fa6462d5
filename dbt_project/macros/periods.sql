{#- Billing period arithmetic (billing-semantics.md, "Subscription fee and proration"). -#}

{#- Months per period; weekly plans have none and step by 7 days. -#}
{% macro interval_months(interval) -%}
    multiIf({{ interval }} = 'monthly', 1, {{ interval }} = 'quarterly', 3,
            {{ interval }} = 'semiannual', 6, {{ interval }} = 'yearly', 12, 0)
{%- endmacro %}

{#- First day of the period series: calendar periods start on week, month, quarter, half-year or
    year boundaries; anniversary periods on the subscription day. -#}
{% macro period_series_start(billing_time, interval, anchor_date, start_date) -%}
    if({{ billing_time }} = 'anniversary', {{ anchor_date }},
       multiIf({{ interval }} = 'weekly', toMonday({{ start_date }}),
               {{ interval }} = 'monthly', toStartOfMonth({{ start_date }}),
               {{ interval }} = 'quarterly', toStartOfQuarter({{ start_date }}),
               {{ interval }} = 'semiannual', makeDate(toYear({{ start_date }}), if(toMonth({{ start_date }}) <= 6, 1, 7), 1),
               toStartOfYear({{ start_date }})))
{%- endmacro %}

{#- Start of period n of a series, always counted from the series start so that a 31st
    anniversary lands on the last day of shorter months and returns to the 31st afterwards. -#}
{% macro nth_period_start(series_start, interval, n) -%}
    if({{ interval }} = 'weekly', addDays({{ series_start }}, 7 * ({{ n }})),
       addMonths({{ series_start }}, {{ interval_months(interval) }} * ({{ n }})))
{%- endmacro %}

{#- Number of periods to generate so that the series covers [series_start, last_date]. -#}
{% macro periods_to_cover(series_start, interval, last_date) -%}
    toUInt32(greatest(
        if({{ interval }} = 'weekly', intDiv(dateDiff('day', {{ series_start }}, {{ last_date }}), 7),
           intDiv(dateDiff('month', {{ series_start }}, {{ last_date }}), greatest({{ interval_months(interval) }}, 1))) + 2,
        1))
{%- endmacro %}

{#- Days between two dates, both ends counted (a period ends at 23:59:59 of its last day). -#}
{% macro days_inclusive(from_date, to_date) -%}
    greatest(dateDiff('day', {{ from_date }}, {{ to_date }}) + 1, 0)
{%- endmacro %}


{#- The charge periods containing now of the subscriptions `condition` selects: what the views
    rating on read (current usage, fee estimates, progressive billing) price. -#}
{% macro open_charge_periods(condition) -%}
    select *
    from {{ ref('int_billing_periods') }}
    where period_kind = 'charges'
        and ({{ condition }})
        and period_from <= now64(3, 'UTC')
        and period_to >= now64(3, 'UTC')
{%- endmacro %}
