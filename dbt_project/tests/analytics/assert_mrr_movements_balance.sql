-- MRR movements invariant: per customer, currency and month,
-- opening + new + reactivation + expansion - contraction - churn = closing,
-- and each month opens with the previous month's closing. Returns the rows that break it.
with movements as (
    select
        *,
        lagInFrame(closing_mrr, 1, toDecimal128(0, 12)) over (
            partition by organization_id, currency, customer_id order by month
            rows between unbounded preceding and current row
        ) as previous_closing_mrr
    from {{ ref('fct_mrr_movements') }}
)

select *
from movements
where opening_mrr + new_mrr + reactivation_mrr + expansion_mrr - contraction_mrr - churned_mrr != closing_mrr
    or opening_mrr != previous_closing_mrr
