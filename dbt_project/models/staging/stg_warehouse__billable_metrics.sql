select
    organization_id,
    id as billable_metric_id,
    code as billable_metric_code,
    name as billable_metric_name,
    aggregation_type,
    field_name,
    expression,
    recurring,
    rounding_function,
    rounding_precision,
    filters
from {{ source('warehouse', 'billable_metrics') }} final
where is_deleted = 0
