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
    from {{ ref('stg_taxes') }}
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
