select organization_id, id as tax_id, code as tax_code, rate, applied_to_organization
from {{ source('warehouse', 'taxes') }} final
where is_deleted = 0
