-- int_rating_open_advance_events holds every version the last run had to append: each version
-- in the events table of a subscription it held before, at or after where it was covered then,
-- ingested after the previous watermark and up to the last one. Returns the missing versions.
with store as (
    select * from {{ ref('int_rating_open_advance_events') }}
),

watermarks as (
    select max(stored_through) as last_through,
        maxIf(stored_through, stored_through < (select max(stored_through) from store)) as previous_through
    from store
),

covered_before as (
    select organization_id, external_subscription_id, max(covered_from) as covered_from
    from store
    where stored_through < (select last_through from watermarks)
    group by organization_id, external_subscription_id
)

select e.organization_id, e.external_subscription_id, e.transaction_id, e.code, e.timestamp, e.ingested_at
from {{ source('warehouse', 'events') }} as e
inner join covered_before as c
    on c.organization_id = e.organization_id and c.external_subscription_id = e.external_subscription_id
where e.timestamp >= c.covered_from
    and e.ingested_at > (select previous_through from watermarks)
    and e.ingested_at <= (select last_through from watermarks)
    and (e.organization_id, e.external_subscription_id, e.transaction_id, e.code, e.timestamp, e.ingested_at) not in (
        select organization_id, external_subscription_id, transaction_id, code, timestamp, ingested_at from store)
