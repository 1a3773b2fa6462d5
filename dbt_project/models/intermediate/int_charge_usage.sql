-- Units per subscription x charge x charge period x filter x group, for every aggregation type,
-- in two set-based passes: the first per distinct value (what unique_count needs: a value counts
-- unless its last operation is `remove`), the second per bucket. Percentage charges also get the
-- running totals of their event values (free allowances, per-transaction min/max).
with per_value as (
    select
        organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
        aggregation_type,
        if(aggregation_type = 'unique_count_agg', value_text, '') as unique_value,
        count() as value_events,
        sum(ifNull(value, toDecimal128(0, 12))) as value_sum,
        max(value) as value_max,
        argMax(value, (timestamp, ingested_at)) as latest_value,
        max((timestamp, ingested_at)) as latest_at,
        argMax(operation_type, (timestamp, ingested_at)) as last_operation,
        sum(ifNull(precise_total_amount_cents, toDecimal128(0, 12))) as precise_cents_sum
    from {{ ref('int_charge_events') }}
    group by organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
        aggregation_type, unique_value
),

per_bucket as (
    select
        organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
        aggregation_type,
        sum(value_events) as events_count,
        toDecimal128(multiIf(
            aggregation_type = 'count_agg', toDecimal128(sum(value_events), 12),
            aggregation_type = 'sum_agg', sum(value_sum),
            aggregation_type = 'max_agg', ifNull(max(value_max), toDecimal128(0, 12)),
            aggregation_type = 'latest_agg', greatest(ifNull(argMax(latest_value, latest_at), toDecimal128(0, 12)), toDecimal128(0, 12)),
            aggregation_type = 'unique_count_agg', toDecimal128(countIf(last_operation != 'remove'), 12),
            toDecimal128(0, 12)), 12) as raw_units,
        sum(precise_cents_sum) as precise_total_amount_cents
    from per_value
    group by organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
        aggregation_type
),

percentage_running_totals as (
    select
        organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
        arrayMap(e -> e.3, arraySort(e -> (e.1, e.2),
                 groupArray(tuple(timestamp, ingested_at, ifNull(value, toDecimal128(0, 12)))))) as event_values,
        arrayCumSum(event_values) as running_totals
    from {{ ref('int_charge_events') }}
    where charge_model = 'percentage'
    group by organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by
)

select
    per_bucket.*,
    percentage_running_totals.event_values as event_values,
    percentage_running_totals.running_totals as running_totals
from per_bucket
left join percentage_running_totals
    using (organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by)
