-- Every started subscription with its plan, customer and the local dates that bound its billing:
-- start, trial end, and the last billed day (termination day; the day before on an upgrade,
-- because the new plan bills the upgrade day).
with subscriptions as (
    select
        s.organization_id as organization_id,
        s.subscription_id as subscription_id,
        s.external_subscription_id as external_subscription_id,
        s.customer_id as customer_id,
        c.external_customer_id as external_customer_id,
        s.plan_id as plan_id,
        s.billing_time as billing_time,
        s.subscription_at as subscription_at,
        s.started_at as started_at,
        s.terminated_at as terminated_at,
        s.trial_ended_at as trial_ended_at,
        s.next_subscription_id as next_subscription_id,
        s.on_termination_invoice as on_termination_invoice,
        p.interval as interval,
        p.amount_cents as plan_amount_cents,
        p.amount_currency as currency,
        p.pay_in_advance as plan_pay_in_advance,
        p.bill_charges_monthly as bill_charges_monthly,
        p.minimum_commitment_amount_cents as minimum_commitment_amount_cents,
        p.minimum_commitment_tax_ids as minimum_commitment_tax_ids,
        p.plan_display_name as plan_display_name,
        p.tax_ids as plan_tax_ids,
        p.plan_version as plan_version,
        c.tax_ids as customer_tax_ids,
        coalesce(c.timezone, nullIf(o.timezone, ''), 'UTC') as timezone
    from {{ ref('stg_warehouse__subscriptions') }} as s
    inner join {{ ref('stg_warehouse__plans') }} as p
        on p.organization_id = s.organization_id and p.plan_id = s.plan_id
    inner join {{ ref('stg_warehouse__customers') }} as c
        on c.organization_id = s.organization_id and c.customer_id = s.customer_id
    left join {{ ref('stg_warehouse__organizations') }} as o
        on o.organization_id = s.organization_id
),

next_starts as (
    select organization_id, subscription_id as next_subscription_id, started_at as next_started_at
    from {{ ref('stg_warehouse__subscriptions') }}
)

select
    subscriptions.*,
    {{ local_date('subscription_at', 'timezone') }} as anchor_date,
    {{ local_date('started_at', 'timezone') }} as start_date,
    if(trial_ended_at is null, null, {{ local_date('assumeNotNull(trial_ended_at)', 'timezone') }}) as trial_end_date,
    if(terminated_at is null, null,
       {{ local_date('assumeNotNull(terminated_at)', 'timezone') }}
       - if(next_starts.next_started_at is not null
            and {{ local_date('assumeNotNull(next_starts.next_started_at)', 'timezone') }}
                = {{ local_date('assumeNotNull(terminated_at)', 'timezone') }}, 1, 0)
    ) as end_date
from subscriptions
left join next_starts
    on next_starts.organization_id = subscriptions.organization_id
    and next_starts.next_subscription_id = subscriptions.next_subscription_id
