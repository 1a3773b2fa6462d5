{{ config(materialized='view') }}
-- Current usage of some customers' subscriptions, fresh to the last ingested event without a
-- dbt run: the open charge period (the one containing now) rated with the same macros as
-- fct_fees, one row per arrears charge x filter x group (zero rows included). A parameterized
-- view, for one subscription or for every subscription of the customers (subscription ''):
--   SELECT * FROM fct_current_usage(organization_id = ..., external_customer_ids = [...],
--                                   external_subscription_id = ...)
-- Most of a request's time is the analysis of the inlined macros, so many customers in one
-- request cost about what one does (wallets' ongoing balances read a page of customers).
-- Events timestamped later in the open period count too, as in Lago, and recurring metrics carry
-- every earlier event of the subscription. Each row carries the tax codes its fee would be
-- invoiced with (the charge's, else the plan's, else the customer's, else the organization's).
with open_periods as ({{ open_charge_periods(
    "organization_id = {organization_id:UUID}"
    ~ " and has({external_customer_ids:Array(String)}, external_customer_id)"
    ~ " and ({external_subscription_id:String} = '' or external_subscription_id = {external_subscription_id:String})"
) }}),

open_events as ({{ charge_events('open_periods') }}),

open_usage as ({{ charge_usage('open_events') }}),

open_fees as ({{ charge_fees('open_periods', 'open_usage') }})

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
    -- As Lago, current usage shows the full units; a prorated charge prices its prorated units.
    f.full_units as units,
    f.events_count as events_count,
    f.amount as amount,
    {{ amount_cents('f.amount', 'f.currency') }} as amount_cents,
    {{ fee_tax_codes('organization_taxes') }} as tax_codes
from open_fees as f
left join {{ ref('stg_warehouse__billable_metrics') }} as metrics
    on metrics.organization_id = f.organization_id and metrics.billable_metric_id = f.billable_metric_id
left join {{ ref('stg_warehouse__charge_filters') }} as filters
    on filters.organization_id = f.organization_id and filters.charge_filter_id = f.charge_filter_id
left join ({{ organization_taxes() }}) as organization_taxes
    on organization_taxes.organization_id = f.organization_id
