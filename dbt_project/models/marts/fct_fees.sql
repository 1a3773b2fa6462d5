{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    engine='ReplacingMergeTree',
    order_by='(organization_id, subscription_id, billing_date, fee_id)',
    query_settings={'optimize_on_insert': 0},
    pre_hook="{% if is_incremental() %}delete from {{ this }} where (subscription_id, period_from) in (select subscription_id, period_from from {{ ref('int_rating_periods') }}){% endif %}",
) }}
-- depends_on: {{ rating_catalog_copies() }}
-- Every fee due up to the rating instant, one row per fee (zero amounts included, as Lago shows
-- them): subscription fees (in advance or in arrears, prorated by day), charge fees per filter and
-- group (in arrears, or per event for pay-in-advance charges, and at each period's start the
-- renewal of a recurring pay-in-advance charge's carried units), per-charge minimum-spend true-ups
-- and minimum-commitment true-ups. `amount` is unrounded; `amount_cents` is rounded once,
-- half-up, to the currency's minor unit.
--
-- Incremental runs rate only the periods of int_rating_periods (new, late events, --from/--to):
-- the pre-hook removes those periods' fees first (a group or filter bucket may have vanished),
-- then their fees are appended. Every fee of the run belongs to one of those periods (its
-- subscription and period start), so no fee id is stored twice and no second delete by fee id
-- (dbt's delete+insert, through a copy of the new fees) is needed. A full refresh gives the same
-- fee ids.
-- The run's fees are written as they are (optimize_on_insert = 0): the engine would otherwise pass
-- every written block through ReplacingMergeTree's merge to collapse rows sharing the sorting key,
-- and a run writes each fee id once (the data tests check it), so that pass found nothing while
-- costing about as much CPU as writing the fees (4.3M fees: 3.4-3.7 s against 1.7-2.0 s).
with periods as (
    select * from {{ ref('int_rating_periods') }}
),

subscription_fees as (
    select
        organization_id, subscription_id, external_subscription_id, customer_id, external_customer_id,
        plan_id, timezone, currency, plan_tax_ids, customer_tax_ids,
        'subscription' as fee_type,
        toUInt8(0) as is_true_up,
        cast(null as Nullable(UUID)) as charge_id,
        cast(null as Nullable(UUID)) as charge_filter_id,
        cast(null as Nullable(UUID)) as billable_metric_id,
        cast(null as Nullable(String)) as billable_metric_code,
        cast(map() as Map(String, String)) as grouped_by,
        plan_display_name as invoice_display_name,
        plan_pay_in_advance as pay_in_advance,
        toUInt8(1) as invoiceable,
        cast(null as Nullable(String)) as source_transaction_id,
        period_from,
        if(plan_pay_in_advance = 1, full_period_end - toIntervalMillisecond(1), period_to) as period_to,
        if(plan_pay_in_advance = 1, advance_billing_date, service_to_date + 1) as billing_date,
        toDecimal128(1, 12) as units,
        toUInt64(0) as events_count,
        {{ money_div(money_mul(cents_to_amount('plan_amount_cents', 'currency'),
                               'if(plan_pay_in_advance = 1, billed_days_in_advance, billed_days)'),
                     'full_days') }} as amount,
        amount as precise_unit_amount,
        cast([] as Array(UUID)) as charge_tax_ids,
        plan_version,
        cast(null as Nullable(UInt64)) as charge_version,
        cast(null as Nullable(UInt64)) as charge_filter_version,
        cast(null as Nullable(DateTime64(3, 'UTC'))) as first_event_at,
        cast(null as Nullable(DateTime64(3, 'UTC'))) as last_event_at
    from periods
    where period_kind = 'subscription'
        and (plan_pay_in_advance = 1 or is_closed)
),

charge_fees as (
    select
        {{ charge_fee_columns('null') }}
    from {{ ref('int_rating_charge_fees') }}
),

pay_in_advance_fees as (
    select
        {{ charge_fee_columns('source_transaction_id') }}
    from {{ ref('int_rating_pay_in_advance_fees') }}
),

renewal_fees as (
    select
        {{ charge_fee_columns('null') }}
    from {{ ref('int_rating_renewal_fees') }}
),

-- Per-charge minimum spend: min (prorated by the days served) minus the charge's fees over all
-- its filters and groups; it inherits the charge's taxes.
charge_true_ups as (
    select
        m.organization_id as organization_id, m.subscription_id as subscription_id,
        any(m.external_subscription_id) as external_subscription_id, any(m.customer_id) as customer_id,
        any(m.external_customer_id) as external_customer_id, any(m.plan_id) as plan_id,
        any(m.timezone) as timezone, any(m.currency) as currency,
        any(m.plan_tax_ids) as plan_tax_ids, any(m.customer_tax_ids) as customer_tax_ids,
        'charge' as fee_type,
        toUInt8(1) as is_true_up,
        m.charge_id as charge_id,
        cast(null as Nullable(UUID)) as charge_filter_id,
        any(m.billable_metric_id) as billable_metric_id,
        any(m.billable_metric_code) as billable_metric_code,
        cast(map() as Map(String, String)) as grouped_by,
        any(m.invoice_display_name) as invoice_display_name,
        toUInt8(0) as pay_in_advance,
        toUInt8(1) as invoiceable,
        cast(null as Nullable(String)) as source_transaction_id,
        m.period_from as period_from,
        any(m.period_to) as period_to,
        any(m.billing_date) as billing_date,
        toDecimal128(1, 12) as units,
        toUInt64(0) as events_count,
        {{ money_div(money_mul(cents_to_amount('any(m.min_amount_cents)', 'any(m.currency)'), 'any(m.service_days)'), 'any(m.full_days)') }}
            - sum(m.amount) as amount,
        amount as precise_unit_amount,
        any(m.charge_tax_ids) as charge_tax_ids,
        any(m.plan_version) as plan_version,
        any(m.charge_version) as charge_version,
        cast(null as Nullable(UInt64)) as charge_filter_version,
        cast(null as Nullable(DateTime64(3, 'UTC'))) as first_event_at,
        cast(null as Nullable(DateTime64(3, 'UTC'))) as last_event_at
    from charge_fees_with_minimum as m
    group by m.organization_id, m.subscription_id, m.charge_id, m.period_from
    having amount > 0
),

charge_fees_with_minimum as (
    select
        f.organization_id as organization_id,
        f.subscription_id as subscription_id,
        f.external_subscription_id as external_subscription_id,
        f.customer_id as customer_id,
        f.external_customer_id as external_customer_id,
        f.plan_id as plan_id,
        f.timezone as timezone,
        f.currency as currency,
        f.plan_tax_ids as plan_tax_ids,
        f.customer_tax_ids as customer_tax_ids,
        f.charge_id as charge_id,
        f.billable_metric_id as billable_metric_id,
        f.billable_metric_code as billable_metric_code,
        f.invoice_display_name as invoice_display_name,
        f.period_from as period_from,
        f.period_to as period_to,
        f.billing_date as billing_date,
        f.amount as amount,
        f.charge_tax_ids as charge_tax_ids,
        f.plan_version as plan_version,
        f.charge_version as charge_version,
        c.min_amount_cents as min_amount_cents, p.service_days as service_days, p.full_days as full_days
    from charge_fees as f
    inner join {{ rating_catalog('charges') }} as c
        on c.organization_id = f.organization_id and c.charge_id = assumeNotNull(f.charge_id)
    inner join periods as p
        on p.organization_id = f.organization_id and p.subscription_id = f.subscription_id
        and p.period_kind = 'charges' and p.period_from = f.period_from
    where c.min_amount_cents > 0
),

-- Minimum commitment: prorated by day over the billed part of the period, minus the period's
-- subscription and charge fees (charge periods inside the subscription period). Only the fees of
-- subscriptions with a commitment are summed: the join's table would otherwise hold every fee of
-- the run (each pay-in-advance event's), most of it for plans without one.
committed_subscriptions as (
    select subscription_id
    from periods
    where period_kind = 'subscription' and is_closed and minimum_commitment_amount_cents is not null
),

commitment_true_ups as (
    select
        p.organization_id as organization_id, p.subscription_id as subscription_id,
        any(p.external_subscription_id) as external_subscription_id, any(p.customer_id) as customer_id,
        any(p.external_customer_id) as external_customer_id, any(p.plan_id) as plan_id,
        any(p.timezone) as timezone, any(p.currency) as currency,
        any(p.plan_tax_ids) as plan_tax_ids, any(p.customer_tax_ids) as customer_tax_ids,
        'commitment' as fee_type,
        toUInt8(0) as is_true_up,
        cast(null as Nullable(UUID)) as charge_id,
        cast(null as Nullable(UUID)) as charge_filter_id,
        cast(null as Nullable(UUID)) as billable_metric_id,
        cast(null as Nullable(String)) as billable_metric_code,
        cast(map() as Map(String, String)) as grouped_by,
        'Minimum commitment true-up' as invoice_display_name,
        toUInt8(0) as pay_in_advance,
        toUInt8(1) as invoiceable,
        cast(null as Nullable(String)) as source_transaction_id,
        p.period_from as period_from,
        any(p.period_to) as period_to,
        any(p.service_to_date) + 1 as billing_date,
        toDecimal128(1, 12) as units,
        toUInt64(0) as events_count,
        {{ money_div(money_mul(cents_to_amount('any(assumeNotNull(p.minimum_commitment_amount_cents))', 'any(p.currency)'),
                               'any(p.billed_days)'), 'any(p.full_days)') }}
            - sum(ifNull(f.amount, toDecimal128(0, 12))) as amount,
        amount as precise_unit_amount,
        -- The commitment's own taxes first, as a charge's (empty: the plan's, and so on).
        any(p.minimum_commitment_tax_ids) as charge_tax_ids,
        any(p.plan_version) as plan_version,
        cast(null as Nullable(UInt64)) as charge_version,
        cast(null as Nullable(UInt64)) as charge_filter_version,
        cast(null as Nullable(DateTime64(3, 'UTC'))) as first_event_at,
        cast(null as Nullable(DateTime64(3, 'UTC'))) as last_event_at
    from periods as p
    left join (
        select subscription_id, period_from, amount from (
            select subscription_id, period_from, amount from subscription_fees
            union all
            select subscription_id, period_from, amount from charge_fees
            union all
            select subscription_id, period_from, amount from pay_in_advance_fees
            union all
            select subscription_id, period_from, amount from renewal_fees
        )
        where subscription_id in (select subscription_id from committed_subscriptions)
    ) as f
        on f.subscription_id = p.subscription_id
        and f.period_from >= p.period_from and f.period_from <= p.period_to
    where p.period_kind = 'subscription' and p.is_closed and p.minimum_commitment_amount_cents is not null
    group by p.organization_id, p.subscription_id, p.period_from
    having amount > 0
),

rated_fees as (
    select * from subscription_fees
    union all select * from charge_fees
    union all select * from pay_in_advance_fees
    union all select * from renewal_fees
    union all select * from charge_true_ups
    union all select * from commitment_true_ups
),

-- A subscription terminated with on_termination_invoice = 'skip' has no closing invoice: what
-- it owes in arrears for the period it ended in is rated, not invoiced. (Fees paid in advance
-- were invoiced when they fell due.)
skipped_closing_periods as (
    select subscription_id, period_from from periods where closing_invoice_skipped
),

fees as (
    select * replace (
        if(pay_in_advance = 0
               and (subscription_id, period_from) in (select subscription_id, period_from from skipped_closing_periods),
           toUInt8(0), invoiceable) as invoiceable
    )
    from rated_fees
)

select
    *,
    {{ rating_started_at() }} as rated_at
from ({{ fee_rows('fees') }})
