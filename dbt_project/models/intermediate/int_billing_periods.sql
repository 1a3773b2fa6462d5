-- Every billing period of every subscription up to the one containing the rating instant (or now), in
-- the customer's timezone: one series for the subscription fee (the plan interval) and one for
-- usage charges (monthly on yearly/semiannual plans that bill charges monthly).
--   period_start_date / period_end_date   the full period (local dates, both inclusive)
--   service_from_date / service_to_date   the part the subscription was live in
--   period_from / period_to               the same as UTC instants (to = 23:59:59.999 local)
--   billed_days / full_days               proration of the subscription fee (trial removed)
with series as (
    select
        *,
        period_kind,
        if(period_kind = 'charges' and bill_charges_monthly = 1 and interval in ('yearly', 'semiannual'),
           'monthly', interval) as period_interval,
        {{ local_date(rating_as_of(), 'timezone') }} as as_of_date,
        -- Periods exist up to the rating instant, and at least up to now: current usage reads
        -- the open period of this view whatever instant the last run rated at.
        greatest(as_of_date, {{ local_date('now64(3)', 'timezone') }}) as horizon_date,
        if(end_date is null, horizon_date, least(assumeNotNull(end_date), horizon_date)) as last_date
    from {{ ref('int_subscriptions') }}
    array join ['subscription', 'charges'] as period_kind
),

numbered as (
    select
        *,
        {{ period_series_start('billing_time', 'period_interval', 'anchor_date', 'start_date') }} as series_start,
        arrayJoin(range({{ periods_to_cover('series_start', 'period_interval', 'last_date') }})) as period_number
    from series
),

periods as (
    select
        *,
        {{ nth_period_start('series_start', 'period_interval', 'period_number') }} as period_start_date,
        {{ nth_period_start('series_start', 'period_interval', 'period_number + 1') }} - 1 as period_end_date,
        greatest(period_start_date, start_date) as service_from_date,
        if(end_date is null, period_end_date, least(period_end_date, assumeNotNull(end_date))) as service_to_date
    from numbered
    where {{ nth_period_start('series_start', 'period_interval', 'period_number') }} <= last_date
        and {{ nth_period_start('series_start', 'period_interval', 'period_number + 1') }} > start_date
)

select
    organization_id,
    subscription_id,
    external_subscription_id,
    customer_id,
    external_customer_id,
    plan_id,
    period_kind,
    period_interval,
    billing_time,
    timezone,
    currency,
    plan_amount_cents,
    plan_pay_in_advance,
    minimum_commitment_amount_cents,
    minimum_commitment_tax_ids,
    plan_display_name,
    plan_tax_ids,
    customer_tax_ids,
    plan_version,
    period_start_date,
    period_end_date,
    service_from_date,
    service_to_date,
    {{ local_midnight('service_from_date', 'timezone') }} as period_from,
    {{ local_midnight('service_to_date + 1', 'timezone') }} - toIntervalMillisecond(1) as period_to,
    {{ local_midnight('period_start_date', 'timezone') }} as full_period_from,
    {{ local_midnight('period_end_date + 1', 'timezone') }} as full_period_end,
    {{ days_inclusive('period_start_date', 'period_end_date') }} as full_days,
    {{ days_inclusive('service_from_date', 'service_to_date') }} as service_days,
    if(trial_end_date is null, service_from_date, greatest(service_from_date, assumeNotNull(trial_end_date)))
        as billed_from_date,
    {{ days_inclusive('billed_from_date', 'service_to_date') }} as billed_days,
    {{ days_inclusive('billed_from_date', 'period_end_date') }} as billed_days_in_advance,
    -- An in-advance fee is invoiced when the period starts, or when the trial ends within it.
    if(billed_from_date <= period_end_date, billed_from_date, service_from_date) as advance_billing_date,
    end_date is not null and service_to_date = assumeNotNull(end_date) as is_terminating_period,
    -- Lago's on_termination_invoice = 'skip': the period the subscription ended in gets no
    -- closing invoice.
    is_terminating_period and on_termination_invoice = 'skip' as closing_invoice_skipped,
    -- Every period but the subscription's first: a recurring pay-in-advance charge bills the
    -- units carried into it when it starts.
    period_start_date > start_date as is_renewal,
    as_of_date,
    period_to < {{ rating_as_of() }} as is_closed
from periods
where service_from_date <= service_to_date or plan_pay_in_advance = 1
