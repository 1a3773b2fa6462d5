-- The company-level MRR of each month and currency equals the sum of the customer-plan rows of
-- fct_mrr_monthly, and ARR is 12 x MRR. Returns the months that disagree.
with by_customer as (
    select organization_id, currency, month, sum(mrr) as mrr
    from {{ ref('fct_mrr_monthly') }}
    group by organization_id, currency, month
)

select s.organization_id, s.currency, s.month, s.mrr, c.mrr as customer_mrr
from {{ ref('fct_saas_metrics_monthly') }} as s
left join by_customer as c
    on c.organization_id = s.organization_id and c.currency = s.currency and c.month = s.month
where s.mrr != ifNull(c.mrr, toDecimal128(0, 12)) or s.arr != s.mrr * 12
