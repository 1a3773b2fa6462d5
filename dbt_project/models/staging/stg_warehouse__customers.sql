select
    organization_id,
    id as customer_id,
    external_id as external_customer_id,
    currency,
    timezone,
    tax_ids
from {{ source('warehouse', 'customers') }} final
where is_deleted = 0
