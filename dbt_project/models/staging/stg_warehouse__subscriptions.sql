select
    organization_id,
    id as subscription_id,
    external_id as external_subscription_id,
    customer_id,
    plan_id,
    billing_time,
    status,
    subscription_at,
    assumeNotNull(started_at) as started_at,
    terminated_at,
    trial_ended_at,
    previous_subscription_id,
    next_subscription_id,
    on_termination_invoice
from {{ source('warehouse', 'subscriptions') }} final
where is_deleted = 0 and started_at is not null and status in ('active', 'terminated')
