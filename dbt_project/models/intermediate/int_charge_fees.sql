-- One rated fee per subscription x charge x charge period x filter (default bucket included) x
-- group, priced with the filter's price or the charge's default price. Buckets without usage
-- still get a fee (Lago shows zero fees, and graduated/volume flat fees apply at 0 units).
with charge_periods as (
    select *
    from {{ ref('int_billing_periods') }}
    where period_kind = 'charges'
),

charges as (
    select
        c.*,
        m.billable_metric_code as billable_metric_code,
        m.billable_metric_code as metric_name,
        m.rounding_function as rounding_function,
        m.rounding_precision as rounding_precision
    from {{ ref('stg_charges') }} as c
    inner join {{ ref('stg_billable_metrics') }} as m
        on m.organization_id = c.organization_id and m.billable_metric_id = c.billable_metric_id
    where c.pay_in_advance = 0
),

-- The default bucket (nil id) and every filter of each charge.
buckets as (
    select organization_id, charge_id, toUUID('00000000-0000-0000-0000-000000000000') as charge_filter_id
    from charges
    union all
    select organization_id, charge_id, charge_filter_id
    from {{ ref('stg_charge_filters') }}
),

usage as (
    select * from {{ ref('int_charge_usage') }}
),

scaffold as (
    select
        p.organization_id as organization_id,
        p.subscription_id as subscription_id,
        p.period_from as period_from,
        c.charge_id as charge_id,
        b.charge_filter_id as charge_filter_id
    from charge_periods as p
    inner join charges as c on c.organization_id = p.organization_id and c.plan_id = p.plan_id
    inner join buckets as b on b.organization_id = c.organization_id and b.charge_id = c.charge_id
),

-- Usage buckets, plus one empty bucket for each charge x filter that saw no event this period.
rated_buckets as (
    select
        organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
        events_count, raw_units, precise_total_amount_cents, event_values, running_totals
    from usage
    union all
    select
        scaffold.organization_id, scaffold.subscription_id, scaffold.period_from, scaffold.charge_id,
        scaffold.charge_filter_id, map() as grouped_by, toUInt64(0) as events_count,
        toDecimal128(0, 12) as raw_units, toDecimal128(0, 12) as precise_total_amount_cents,
        [] as event_values, [] as running_totals
    from scaffold
    left anti join usage
        on usage.organization_id = scaffold.organization_id
        and usage.subscription_id = scaffold.subscription_id
        and usage.period_from = scaffold.period_from
        and usage.charge_id = scaffold.charge_id
        and usage.charge_filter_id = scaffold.charge_filter_id
),

priced as (
    select
        p.organization_id as organization_id,
        p.subscription_id as subscription_id,
        p.external_subscription_id as external_subscription_id,
        p.customer_id as customer_id,
        p.external_customer_id as external_customer_id,
        p.plan_id as plan_id,
        p.period_from as period_from,
        p.period_to as period_to,
        p.service_to_date + 1 as billing_date,
        p.timezone as timezone,
        p.currency as currency,
        p.is_closed as is_closed,
        p.service_days as service_days,
        p.full_days as full_days,
        p.plan_tax_ids as plan_tax_ids,
        p.customer_tax_ids as customer_tax_ids,
        c.charge_id as charge_id,
        r.charge_filter_id as charge_filter_id,
        r.charge_filter_id = toUUID('00000000-0000-0000-0000-000000000000') as is_default_bucket,
        c.billable_metric_id as billable_metric_id,
        c.billable_metric_code as billable_metric_code,
        r.grouped_by as grouped_by,
        coalesce(if(is_default_bucket, null, f.invoice_display_name), c.invoice_display_name, c.metric_name)
            as invoice_display_name,
        c.pay_in_advance as pay_in_advance,
        c.invoiceable as invoiceable,
        c.min_amount_cents as min_amount_cents,
        c.tax_ids as charge_tax_ids,
        c.charge_model as charge_model,
        r.events_count as events_count,
        {{ round_units('r.raw_units', 'c.rounding_function', 'c.rounding_precision') }} as units,
        units as full_units,
        r.precise_total_amount_cents as precise_total_amount_cents,
        r.event_values as event_values,
        r.running_totals as running_totals,
        {%- for column in ['unit_price', 'tiers_from', 'tiers_to', 'tiers_price', 'tiers_flat', 'package_size',
                           'free_units', 'rate', 'fixed_amount', 'free_units_per_events', 'free_units_per_total',
                           'per_transaction_min_amount', 'per_transaction_max_amount'] %}
        if(is_default_bucket, c.{{ column }}, f.{{ column }}) as {{ column }},
        {%- endfor %}
        {{ charge_amount() }} as amount
    from rated_buckets as r
    inner join charge_periods as p
        on p.organization_id = r.organization_id
        and p.subscription_id = r.subscription_id
        and p.period_from = r.period_from
    inner join charges as c on c.organization_id = r.organization_id and c.charge_id = r.charge_id
    left join {{ ref('stg_charge_filters') }} as f
        on f.organization_id = r.organization_id and f.charge_filter_id = r.charge_filter_id
)

select
    * except (event_values, running_totals),
    if(units = 0, toDecimal128(0, 12), {{ money_div('amount', 'units') }}) as precise_unit_amount
from priced
