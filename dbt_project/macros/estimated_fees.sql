{#- The query of the fee estimate (fct_estimated_fees): the fees one event would produce on the
    pay-in-advance charges of a subscription if it were ingested now. Whole, or compiled with only
    the usage features (`features`: usage_in_use(1)) and charge models and rounding precisions
    (`pricing`: pricing_in_use(1)) of the catalog at the run, as the current-usage views are (see
    current_usage.sql). The open periods are a materialized CTE (the query must set
    `enable_materialized_cte`). -#}
{% macro estimated_fees(features=none, pricing=none) -%}
    with open_periods as materialized ({{ open_charge_periods("organization_id = {organization_id:UUID} and external_subscription_id = {external_subscription_id:String}") }}),

    events_with_estimate as (
        select
            organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
            precise_total_amount_cents, ingested_at
        from {{ source('warehouse', 'events') }}
        where organization_id = {organization_id:UUID}
            and external_subscription_id = {external_subscription_id:String}
        union all
        select
            {organization_id:UUID},
            {external_subscription_id:String},
            {transaction_id:String},
            cast({code:String} as LowCardinality(String)),
            now64(3, 'UTC'),
            mapFromArrays({property_keys:Array(String)}, {property_values:Array(String)}),
            toDecimal128OrNull({precise_total_amount_cents:String}, 12),
            now64(6, 'UTC')
    ),

    estimated as ({{ pay_in_advance_charge_fees('open_periods', none, 'events_with_estimate', features=features, pricing=pricing) }}),

    organization_taxes as ({{ organization_taxes() }})

    select
        estimated.organization_id as organization_id,
        estimated.subscription_id as subscription_id,
        estimated.external_subscription_id as external_subscription_id,
        estimated.customer_id as customer_id,
        estimated.external_customer_id as external_customer_id,
        estimated.period_from as period_from,
        estimated.period_to as period_to,
        estimated.currency as currency,
        estimated.charge_id as charge_id,
        if(estimated.is_default_bucket, null, estimated.charge_filter_id) as charge_filter_id,
        estimated.billable_metric_id as billable_metric_id,
        estimated.billable_metric_code as billable_metric_code,
        estimated.invoice_display_name as invoice_display_name,
        estimated.grouped_by as grouped_by,
        estimated.invoiceable as invoiceable,
        estimated.units as units,
        estimated.events_count as events_count,
        estimated.amount as amount,
        {{ amount_cents('estimated.amount', 'estimated.currency') }} as amount_cents,
        estimated.precise_unit_amount as precise_unit_amount,
        {{ fee_tax_codes('organization_taxes') }} as tax_codes
    from estimated
    left join organization_taxes on organization_taxes.organization_id = estimated.organization_id
    where estimated.source_transaction_id = {transaction_id:String}
{%- endmacro %}
