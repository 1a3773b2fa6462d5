select organization_id, name, default_currency, timezone, tax_codes
from {{ source('warehouse', 'organizations') }} final
where is_deleted = 0
