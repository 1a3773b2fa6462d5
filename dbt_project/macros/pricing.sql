{#- Lago charge properties (JSON; amounts as decimal strings or numbers) as typed columns, so the
    charge-model macros work on Decimal(38, 12) columns and tier arrays. -#}

{% macro json_decimal(json, key) -%}
    toDecimal128OrZero(trim(BOTH '"' FROM JSONExtractRaw({{ json }}, '{{ key }}')), 12)
{%- endmacro %}

{% macro json_nullable_decimal(json, key) -%}
    toDecimal128OrNull(trim(BOTH '"' FROM JSONExtractRaw({{ json }}, '{{ key }}')), 12)
{%- endmacro %}

{% macro json_tiers(json, ranges_key, price_key) -%}
    arraySort(r -> r.1, arrayMap(r -> tuple({{ json_decimal('r', 'from_value') }},
                                            {{ json_nullable_decimal('r', 'to_value') }},
                                            {{ json_decimal('r', price_key) }},
                                            {{ json_decimal('r', 'flat_amount') }}),
                                 JSONExtractArrayRaw({{ json }}, '{{ ranges_key }}')))
{%- endmacro %}

{% macro pricing_columns(properties) -%}
    {{ json_decimal(properties, 'amount') }} as unit_price,
    arrayConcat({{ json_tiers(properties, 'graduated_ranges', 'per_unit_amount') }},
                {{ json_tiers(properties, 'volume_ranges', 'per_unit_amount') }},
                {{ json_tiers(properties, 'graduated_percentage_ranges', 'rate') }}) as tiers,
    arrayMap(t -> t.1, tiers) as tiers_from,
    arrayMap(t -> t.2, tiers) as tiers_to,
    arrayMap(t -> t.3, tiers) as tiers_price,
    arrayMap(t -> t.4, tiers) as tiers_flat,
    {{ json_decimal(properties, 'package_size') }} as package_size,
    {{ json_decimal(properties, 'free_units') }} as free_units,
    {{ json_decimal(properties, 'rate') }} as rate,
    {{ json_decimal(properties, 'fixed_amount') }} as fixed_amount,
    toUInt64({{ json_decimal(properties, 'free_units_per_events') }}) as free_units_per_events,
    {{ json_decimal(properties, 'free_units_per_total_aggregation') }} as free_units_per_total,
    {{ json_nullable_decimal(properties, 'per_transaction_min_amount') }} as per_transaction_min_amount,
    {{ json_nullable_decimal(properties, 'per_transaction_max_amount') }} as per_transaction_max_amount
{%- endmacro %}
