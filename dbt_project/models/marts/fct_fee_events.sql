{{ config(materialized='view') }}
-- The events one charge fee was rated from, placed again with the rating macros (same dedup,
-- period, filter and group rules). A parameterized view:
--   SELECT * FROM fct_fee_events(fee_id = ...)
-- Events ingested after the fee was rated (rated_at) are left out: they wait for the next run.
-- A pay-in-advance fee lists its one event; a fee of a recurring metric also the earlier events
-- carried into its period, and a recurring pay-in-advance charge's renewal only those. The
-- charge's kind is the catalog's: an invoiceable renewal is stored as not paid in advance.
-- Subscription fees and true-ups list nothing.
with fee as (
    select f.*, c.pay_in_advance as charge_in_advance
    from (
        select * from {{ ref('fct_fees') }} final
        where fee_id = {fee_id:UUID} and fee_type = 'charge' and is_true_up = 0
    ) as f
    left join {{ ref('stg_warehouse__charges') }} as c
        on c.organization_id = f.organization_id and c.charge_id = assumeNotNull(f.charge_id)
),

fee_periods as (
    select *
    from {{ ref('int_billing_periods') }}
    where period_kind = 'charges'
        and (organization_id, subscription_id, period_from) in (
            select organization_id, subscription_id, period_from from fee)
),

placed as ({{ charge_events('fee_periods', '(select any(charge_in_advance) from fee)', carry_recurring=true) }})

select
    fee.fee_id as fee_id,
    placed.organization_id as organization_id,
    placed.subscription_id as subscription_id,
    placed.transaction_id as transaction_id,
    placed.timestamp as timestamp,
    placed.ingested_at as ingested_at,
    placed.value as value,
    placed.value_text as value_text,
    placed.charge_filter_id as charge_filter_id,
    placed.grouped_by as grouped_by
from placed
inner join fee
    on fee.organization_id = placed.organization_id
    and fee.subscription_id = placed.subscription_id
    and fee.period_from = placed.period_from
    and fee.charge_id = placed.charge_id
where placed.charge_filter_id = ifNull(fee.charge_filter_id, {{ nil_uuid() }})
    and placed.grouped_by = fee.grouped_by
    and placed.ingested_at <= fee.rated_at
    and multiIf(fee.source_transaction_id is not null, placed.transaction_id = fee.source_transaction_id,
                fee.charge_in_advance = 1, placed.timestamp < fee.period_from,
                true)
