-- Lago's dedup rule: one event per (organization, subscription, transaction_id); a re-sent
-- transaction_id replaces the earlier version (latest ingested_at wins), merged or not.
select
    e.organization_id as organization_id,
    e.external_subscription_id as external_subscription_id,
    e.transaction_id as transaction_id,
    argMax(e.external_customer_id, e.ingested_at) as external_customer_id,
    argMax(e.code, e.ingested_at) as code,
    argMax(e.timestamp, e.ingested_at) as timestamp,
    argMax(e.properties, e.ingested_at) as properties,
    argMax(e.precise_total_amount_cents, e.ingested_at) as precise_total_amount_cents,
    max(e.ingested_at) as ingested_at
from {{ source('warehouse', 'events') }} as e
group by e.organization_id, e.external_subscription_id, e.transaction_id
