-- Every fee the last run wrote is stored once in fct_fees: an incremental run deletes the fees
-- of the periods it rates and appends their new ones, so a fee id it wrote must not also be
-- held by a row it kept. Returns the fee ids stored more than once.
with fees as (
    select * from {{ ref('fct_fees') }}
),

written_by_the_last_run as (
    select fee_id from fees where rated_at = (select max(rated_at) from fees)
)

select fee_id, count() as stored
from fees
where fee_id in (select fee_id from written_by_the_last_run)
group by fee_id
having stored > 1
