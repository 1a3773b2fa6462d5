-- Progressive billing thresholds of plans (a subscription's overrides live on its child plan).
select organization_id, id as usage_threshold_id, plan_id, threshold_display_name, amount_cents, recurring
from {{ source('warehouse', 'usage_thresholds') }} final
where is_deleted = 0
