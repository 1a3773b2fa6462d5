{{ config(materialized='table', order_by='(organization_id, subscription_id, period_kind, period_from)') }}
-- depends_on: {{ ref('stg_warehouse__billable_metrics') }}
-- The periods this run rates, frozen at the rating instant so every rating model of the run sees
-- the same set: due periods (closed, in-advance subscription periods once billed, and started
-- charge periods for pay-in-advance charges). Once fct_fees exists (and without --full-refresh),
-- only the periods that need work: no fee yet, events ingested since the last run (a new day or
-- late events: the periods holding those events, not the ones between, save the later periods a
-- recurring metric carries a late event into), or billed within the
-- requested rate_from..rate_to range. A subscription period and the charge
-- periods inside it are always rated together (commitment true-ups add them up).
{%- set fees = adapter.get_relation(database=this.database, schema=this.schema, identifier='fct_fees') %}
{%- set incremental = fees is not none and not flags.FULL_REFRESH %}
with due_periods as (
    select *
    from {{ ref('int_billing_periods') }}
    where is_closed
        or (period_kind = 'subscription' and plan_pay_in_advance = 1
            and advance_billing_date <= as_of_date)
        or (period_kind = 'charges' and period_from <= {{ rating_as_of() }})
)
{%- if incremental %},

rated_before as (
    select distinct subscription_id, period_from, fee_type from {{ fees }}
),

-- The hours that received events since the last run, per subscription: a new day touches the
-- open period, a late event its own closed period, and the periods in between stay as rated.
-- (An hour that straddles a local period boundary marks both periods: extra work, never less.)
-- A late event of a recurring metric is carried into every later period, so it marks them too.
late_event_hours as (
    select
        organization_id, external_subscription_id, toStartOfHour(timestamp) as hour_from,
        max((organization_id, code) in (
            select organization_id, billable_metric_code from {{ ref('stg_warehouse__billable_metrics') }} where recurring = 1))
            as is_recurring
    from {{ source('warehouse', 'events') }}
    where ingested_at > (select max(rated_at) from {{ fees }})
    group by organization_id, external_subscription_id, hour_from
),

dirty_periods as (
    select p.subscription_id as subscription_id, p.period_from as period_from, p.period_to as period_to
    from due_periods as p
    left anti join rated_before as r
        on r.subscription_id = p.subscription_id
        and r.period_from = p.period_from
        and r.fee_type = if(p.period_kind = 'subscription', 'subscription', 'charge')
    where p.is_closed or p.period_kind = 'subscription'
    union all
    select p.subscription_id, p.period_from, p.period_to
    from due_periods as p
    inner join late_event_hours as l
        on l.organization_id = p.organization_id and l.external_subscription_id = p.external_subscription_id
    where l.hour_from <= p.period_to and (l.is_recurring or l.hour_from + toIntervalHour(1) > p.period_from)
    {%- if var('rate_from') and var('rate_to') %}
    union all
    select subscription_id, period_from, period_to
    from due_periods
    where if(period_kind = 'charges', service_to_date + 1, period_start_date)
        between toDate('{{ var("rate_from") }}') and toDate('{{ var("rate_to") }}')
    {%- endif %}
)

select p.*
from due_periods as p
where (p.subscription_id, p.period_from) in (
    select q.subscription_id, q.period_from
    from due_periods as q
    inner join dirty_periods as d on d.subscription_id = q.subscription_id
    where q.period_from <= d.period_to and q.period_to >= d.period_from
)
{%- else %}

select * from due_periods
{%- endif %}
