{#- The columns of a charge fee, in the order every branch of fct_fees' union has them, taken
    from a model of rated charge fees (int_rating_charge_fees, int_rating_pay_in_advance_fees).
    `source_transaction_id` is the SQL expression of the event a fee was charged for, or null. -#}
{% macro charge_fee_columns(source_transaction_id) -%}
        organization_id, subscription_id, external_subscription_id, customer_id, external_customer_id,
        plan_id, timezone, currency, plan_tax_ids, customer_tax_ids,
        'charge' as fee_type,
        toUInt8(0) as is_true_up,
        cast(charge_id as Nullable(UUID)) as charge_id,
        if(is_default_bucket, null, charge_filter_id) as charge_filter_id,
        cast(billable_metric_id as Nullable(UUID)) as billable_metric_id,
        cast(billable_metric_code as Nullable(String)) as billable_metric_code,
        grouped_by,
        invoice_display_name,
        pay_in_advance,
        invoiceable,
        cast({{ source_transaction_id }} as Nullable(String)) as source_transaction_id,
        period_from,
        period_to,
        billing_date,
        units,
        events_count,
        amount,
        precise_unit_amount,
        charge_tax_ids,
        plan_version,
        cast(charge_version as Nullable(UInt64)) as charge_version,
        charge_filter_version,
        first_event_at,
        last_event_at
{%- endmacro %}

{#- Per organization: tax code by tax id, and the codes applied to the whole organization. -#}
{% macro organization_taxes() -%}
    select
        organization_id,
        mapFromArrays(groupArray(tax_id), groupArray(tax_code)) as code_by_id,
        arraySort(groupArrayIf(tax_code, applied_to_organization = 1)) as organization_codes
    from {{ ref('stg_warehouse__taxes') }}
    group by organization_id
{%- endmacro %}

{#- The tax codes of a fee: the charge's taxes, else the plan's, else the customer's, else the
    organization's defaults. `taxes` names a relation of organization_taxes() joined to the fee. -#}
{% macro fee_tax_codes(taxes) -%}
    if(empty(multiIf(notEmpty(charge_tax_ids), charge_tax_ids, notEmpty(plan_tax_ids), plan_tax_ids, customer_tax_ids)),
       {{ taxes }}.organization_codes,
       arrayMap(tax_id -> {{ taxes }}.code_by_id[tax_id],
                multiIf(notEmpty(charge_tax_ids), charge_tax_ids, notEmpty(plan_tax_ids), plan_tax_ids, customer_tax_ids)))
{%- endmacro %}

{#- The fee contract (fct_fees' columns but rated_at) over a relation or CTE whose rows have the
    columns of fct_fees' union branches. The fee id is UUIDv5 over the fee's natural key, so a fee
    rated on read (open periods, new pay-in-advance events) has the id fct_fees gives it later.
    Union branches widen some columns to Nullable; every one of them is set on every fee. -#}
{% macro fee_rows(fees) -%}
select
    fees.organization_id as organization_id,
    assumeNotNull({{ uuid5("concat_ws('|', toString(fees.organization_id), fee_type, toString(is_true_up), "
                           "toString(subscription_id), ifNull(toString(charge_id), ''), ifNull(toString(charge_filter_id), ''), "
                           "toString(grouped_by), toString(period_from), ifNull(source_transaction_id, ''))") }}) as fee_id,
    cast(fee_type as LowCardinality(String)) as fee_type,
    is_true_up,
    customer_id,
    external_customer_id,
    subscription_id,
    external_subscription_id,
    plan_id,
    charge_id,
    charge_filter_id,
    billable_metric_id,
    billable_metric_code,
    grouped_by,
    invoice_display_name,
    pay_in_advance,
    invoiceable,
    source_transaction_id,
    assumeNotNull(fees.period_from) as period_from,
    assumeNotNull(fees.period_to) as period_to,
    assumeNotNull(fees.billing_date) as billing_date,
    timezone,
    cast(currency as LowCardinality(String)) as currency,
    units,
    events_count,
    first_event_at,
    last_event_at,
    assumeNotNull(plan_version) as plan_version,
    charge_version,
    charge_filter_version,
    toDecimal128(assumeNotNull(fees.precise_unit_amount), 12) as precise_unit_amount,
    toDecimal128(assumeNotNull(fees.amount), 12) as amount,
    {{ amount_cents('toDecimal128(assumeNotNull(fees.amount), 12)', 'currency') }} as amount_cents,
    {{ fee_tax_codes('organization_taxes') }} as tax_codes
from {{ fees }} as fees
left join ({{ organization_taxes() }}) as organization_taxes
    on organization_taxes.organization_id = fees.organization_id
{%- endmacro %}
