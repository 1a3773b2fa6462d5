{#- The current-usage views: the open charge periods of a parameterized view's customers
    (current_usage_periods), rated on read with the rating's macros (current_usage,
    current_pay_in_advance_usage), one row per charge x filter x group (current_usage_rows).

    Most of a request's time is the warehouse's analysis of the inlined macros, not their
    execution. So each view comes twice: whole (fct_current_usage, for any catalog), and
    compiled with only the usage features, charge models and rounding precisions of the catalog
    at the last rating run (`features`: usage_in_use, `pricing`: pricing_in_use), whose guards
    fail the query once the catalog has gained one since (the billing API then reads the whole
    view). The open periods are a materialized CTE (the query must set
    `enable_materialized_cte`; without it they are inlined): a dozen subqueries read them, each
    otherwise analysing int_billing_periods again. The events are read by_subscription: only the
    requested customers' subscriptions, on the events' primary key, so a request costs what its
    own events do rather than the whole warehouse's events of the open periods' months. -#}

{#- The open charge periods a current-usage view rates, from its parameters: the organizations,
    their customers as (organization id, external customer id) pairs, and one subscription of
    theirs or every one (''). One organization is a request's; several are the hourly refresh of
    wallets' ongoing balances, which reads every organization's wallet customers in one query (a
    query's time is mostly its analysis). The organizations' list narrows the periods' reads by
    their leading key before the pairs are checked. -#}
{% macro current_usage_periods() -%}
    {{ open_charge_periods(
        "organization_id in {organization_ids:Array(UUID)}"
        ~ " and has({customers:Array(Tuple(UUID, String))}, (organization_id, external_customer_id))"
        ~ " and ({external_subscription_id:String} = '' or external_subscription_id = {external_subscription_id:String})"
    ) }}
{%- endmacro %}


{#- The rows of the current-usage views (fct_current_usage, fct_current_pay_in_advance_usage),
    one per charge x filter x group of an open period, from `fees`: a relation or CTE of
    rated buckets with charge_fees' columns (is_default_bucket, the tax ids, amount, ...), whose
    `units` column is the usage shown. -#}
{% macro current_usage_rows(fees, units) -%}
select
    f.organization_id as organization_id,
    f.subscription_id as subscription_id,
    f.external_subscription_id as external_subscription_id,
    f.external_customer_id as external_customer_id,
    f.period_from as period_from,
    f.period_to as period_to,
    f.billing_date as billing_date,
    f.currency as currency,
    f.charge_id as charge_id,
    f.charge_model as charge_model,
    f.invoice_display_name as invoice_display_name,
    if(f.is_default_bucket, null, f.charge_filter_id) as charge_filter_id,
    filters.invoice_display_name as filter_display_name,
    filters.filter_values as filter_values,
    f.billable_metric_id as billable_metric_id,
    f.billable_metric_code as billable_metric_code,
    metrics.billable_metric_name as billable_metric_name,
    metrics.aggregation_type as aggregation_type,
    f.grouped_by as grouped_by,
    f.{{ units }} as units,
    f.events_count as events_count,
    f.amount as amount,
    {{ amount_cents('f.amount', 'f.currency') }} as amount_cents,
    {{ fee_tax_codes('organization_taxes') }} as tax_codes
from {{ fees }} as f
left join {{ ref('stg_warehouse__billable_metrics') }} as metrics
    on metrics.organization_id = f.organization_id and metrics.billable_metric_id = f.billable_metric_id
left join {{ ref('stg_warehouse__charge_filters') }} as filters
    on filters.organization_id = f.organization_id and filters.charge_filter_id = f.charge_filter_id
left join ({{ organization_taxes() }}) as organization_taxes
    on organization_taxes.organization_id = f.organization_id
{%- endmacro %}

{#- Current usage of the arrears charges: the open periods' events placed, aggregated and priced
    as fct_fees' are, shown with their full units (as Lago; a prorated charge prices its prorated
    units). -#}
{% macro current_usage(features=none, pricing=none) -%}
    with open_periods as materialized ({{ current_usage_periods() }}),

    open_events as ({{ charge_events('open_periods', features=features, by_subscription=true) }}),

    open_usage as ({{ charge_usage('open_events', features) }}),

    open_fees as ({{ charge_fees('open_periods', 'open_usage', pricing) }})

    {{ current_usage_rows('open_fees', 'full_units') }}
{%- endmacro %}

{#- Current usage of the pay-in-advance charges: what the open period has billed, summed per
    charge x filter x group, every bucket of the plan's charges included (zeros): its events'
    fees, and a recurring charge's renewal at the period's start. The units are the running peak
    the fees were priced on, above the units carried into the period. The renewal is compiled
    with `renewal_features` and `renewal_pricing` (those of the recurring pay-in-advance charges
    alone: usage_in_use and pricing_in_use with recurring_only), and left out for a catalog
    without such charges (the guard of `features` fails the query once one is added). -#}
{% macro current_pay_in_advance_usage(features=none, pricing=none, renewal_features=none, renewal_pricing=none) -%}
    {%- set renews = renewal_features is none or renewal_features.recurring %}
    with open_periods as materialized ({{ current_usage_periods() }}),

    open_period_fees as ({{ pay_in_advance_charge_fees('open_periods', none, by_subscription=true, features=features,
                                                        pricing=pricing) }}),
    {%- if renews %}

    open_period_renewals as ({{ renewal_fees('open_periods', renewal_features, renewal_pricing) }}),
    {%- endif %}

    bucket_usage as (
        select
            organization_id,
            subscription_id,
            period_from,
            charge_id,
            charge_filter_id,
            grouped_by,
            sum(units) as units,
            sum(events_count) as events_count,
            sum(amount) as amount
        from (
            select organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
                units, events_count, amount
            from open_period_fees
            {%- if renews %}
            union all
            -- The carried units, none of the period's events.
            select organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
                units, toUInt64(0), amount
            from open_period_renewals
            {%- endif %}
        )
        group by organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by
    ),

    charges as ({{ rated_charges(1) }}),

    buckets as ({{ charge_buckets('charges') }}),

    -- Every charge x filter bucket of each open period joined to its groups' usage; a bucket
    -- without events keeps one row of zeros and the empty group (join defaults).
    bucket_fees as (
        select
            p.organization_id as organization_id,
            p.subscription_id as subscription_id,
            p.external_subscription_id as external_subscription_id,
            p.external_customer_id as external_customer_id,
            p.period_from as period_from,
            p.period_to as period_to,
            p.service_to_date + 1 as billing_date,
            p.currency as currency,
            p.plan_tax_ids as plan_tax_ids,
            p.customer_tax_ids as customer_tax_ids,
            c.charge_id as charge_id,
            c.charge_model as charge_model,
            c.tax_ids as charge_tax_ids,
            b.charge_filter_id as charge_filter_id,
            b.charge_filter_id = {{ nil_uuid() }} as is_default_bucket,
            coalesce(if(is_default_bucket, null, f.invoice_display_name), c.invoice_display_name, c.billable_metric_code)
                as invoice_display_name,
            c.billable_metric_id as billable_metric_id,
            c.billable_metric_code as billable_metric_code,
            u.grouped_by as grouped_by,
            u.units as units,
            u.events_count as events_count,
            u.amount as amount
        from open_periods as p
        inner join charges as c on c.organization_id = p.organization_id and c.plan_id = p.plan_id
        inner join buckets as b on b.organization_id = c.organization_id and b.charge_id = c.charge_id
        left join bucket_usage as u
            on u.organization_id = p.organization_id
            and u.subscription_id = p.subscription_id
            and u.period_from = p.period_from
            and u.charge_id = c.charge_id
            and u.charge_filter_id = b.charge_filter_id
        left join {{ ref('stg_warehouse__charge_filters') }} as f
            on f.organization_id = b.organization_id and f.charge_filter_id = b.charge_filter_id
    )

    {{ current_usage_rows('bucket_fees', 'units') }}
{%- endmacro %}
