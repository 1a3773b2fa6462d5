-- A filter's own price; `values` keys must all match an event, __ALL_FILTER_VALUES__ meaning any
-- value of that key. Specificity is the number of keys: the most specific matching filter wins.
select
    organization_id,
    id as charge_filter_id,
    charge_id,
    position,
    invoice_display_name,
    grouped_by,
    `values` as filter_values,
    length(mapKeys(`values`)) as specificity,
    created_at,
    version as charge_filter_version,
    {{ pricing_columns('properties') }}
from (
    select *, {{ json_tiers('properties') }} as tiers
    from {{ source('warehouse', 'charge_filters') }} final
    where is_deleted = 0
)
