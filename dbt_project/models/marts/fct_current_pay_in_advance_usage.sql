{{ config(materialized='view') }}
-- Current usage of the pay-in-advance charges of some customers' subscriptions: fct_current_usage's
-- rows and parameters, for the charges it leaves out. A pay-in-advance charge bills each event
-- as it arrives, so its usage so far is what the open period has billed: the period's
-- pay-in-advance fees, priced by the rating's own macro, summed per charge x filter x group.
-- The units are the running peak the fees were priced on (decreases are not refunded), as Lago
-- shows them, and the fees add up to the price of that peak, Lago's amount: each is the rise
-- of the price from the previous peak to the new one (volume, whose price can fall, is not
-- allowed in advance). Every charge and filter of the plan gets a row, zero rows included.
-- A separate view: the billing API reads it only for plans with such charges, beside
-- fct_current_usage, since each inlined pricing costs a request about a second of analysis.
with open_periods as ({{ current_usage_periods() }}),

open_period_fees as ({{ pay_in_advance_charge_fees('open_periods', none) }}),

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
    from open_period_fees
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
