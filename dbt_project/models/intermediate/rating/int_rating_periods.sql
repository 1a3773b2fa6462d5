{{ config(materialized='table', order_by='(organization_id, subscription_id, period_kind, period_from)') }}
-- depends_on: {{ ref('stg_warehouse__billable_metrics') }}
-- depends_on: {{ ref('stg_warehouse__charges') }}
-- The periods this run rates, frozen at the rating instant so every rating model of the run sees
-- the same set: due periods (closed, in-advance subscription periods once billed, and started
-- charge periods for pay-in-advance charges). Once fct_fees exists (and without --full-refresh),
-- only the periods that need work: no fee yet, events ingested since the last run (a new day or
-- late events: the periods holding those events, not the ones between, save the later periods a
-- recurring metric carries a late event into), or billed within the
-- requested rate_from..rate_to range. A subscription period and the charge
-- periods inside it are always rated together (commitment true-ups add them up).
-- The recurring metrics and the renewing plans come from the live views, not the run's copies
-- (rating_catalog reads the views in a model that does not declare the copies): the run's first
-- table is built beside the copies rather than after them (~0.45 s each on a day).
{%- set fees = adapter.get_relation(database=this.database, schema=this.schema, identifier='fct_fees') %}
{%- set incremental = rating_is_incremental() %}
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

-- The plans with a recurring pay-in-advance charge: each period after a subscription's first
-- renews its carried units when it starts, so a started one is due without an event.
renewing_plans as (
    select organization_id, plan_id from ({{ rated_charges(1, recurring_only=true) }})
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

-- The late hours of each subscription in one row, joined once onto its periods.
late_hours_by_subscription as (
    select organization_id, external_subscription_id, groupArray((hour_from, is_recurring)) as late_hours
    from late_event_hours
    group by organization_id, external_subscription_id
),

-- Periods that need work: no fee yet (closed, subscription or renewing periods), or an event
-- ingested since the last run in one of their hours (or, recurring, before their end), or billed
-- within rate_from..rate_to.
flagged_periods as (
    select
        p.*,
        ((p.is_closed or p.period_kind = 'subscription'
                or (p.is_renewal and (p.organization_id, p.plan_id) in (select organization_id, plan_id from renewing_plans)))
            and (p.subscription_id, p.period_from, if(p.period_kind = 'subscription', 'subscription', 'charge'))
                not in (select subscription_id, period_from, fee_type from rated_before))
        or arrayExists(
            late -> late.1 <= p.period_to and (late.2 or late.1 + toIntervalHour(1) > p.period_from),
            l.late_hours)
        {%- if var('rate_from') and var('rate_to') %}
        or if(p.period_kind = 'charges', p.service_to_date + 1, p.period_start_date)
            between toDate('{{ var("rate_from") }}') and toDate('{{ var("rate_to") }}')
        {%- endif %}
            as needs_rating
    from due_periods as p
    left join late_hours_by_subscription as l
        on l.organization_id = p.organization_id and l.external_subscription_id = p.external_subscription_id
),

-- Every period of the subscription overlapping one that needs work is rated with it, and so is
-- every period starting at the same instant as one of those (fct_fees replaces the fees of a
-- subscription and period start).
overlapping_periods as (
    select
        *,
        arrayExists(
            span -> period_from <= span.2 and period_to >= span.1,
            groupArrayIf((period_from, period_to), needs_rating) over (partition by subscription_id))
            as overlaps_work
    from flagged_periods
),

rated_periods as (
    select *, max(overlaps_work) over (partition by subscription_id, period_from) as is_rated
    from overlapping_periods
)

-- One pass over the billing periods (a view that computes every period of every subscription):
-- window functions rather than joins of due_periods with itself.
select * except (needs_rating, overlaps_work, is_rated)
from rated_periods
where is_rated
{%- else %}

select * from due_periods
{%- endif %}
