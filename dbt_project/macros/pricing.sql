{#- Lago charge properties (JSON; amounts as decimal strings or numbers) as typed columns, so the
    charge-model macros work on Decimal(38, 12) columns and tier arrays. -#}

{% macro json_decimal(json, key) -%}
    toDecimal128OrZero(trim(BOTH '"' FROM JSONExtractRaw({{ json }}, '{{ key }}')), 12)
{%- endmacro %}

{% macro json_nullable_decimal(json, key) -%}
    toDecimal128OrNull(trim(BOTH '"' FROM JSONExtractRaw({{ json }}, '{{ key }}')), 12)
{%- endmacro %}

{#- The tier list of whichever ranges key the properties carry, as parsed tuples
    (from, to, price, flat) ordered by their lower bound; the price of a graduated_percentage tier
    is its rate. -#}
{% macro json_tiers(json) -%}
    arraySort(r -> r.1, arrayMap(r -> tuple({{ json_decimal('r', 'from_value') }},
                                            {{ json_nullable_decimal('r', 'to_value') }},
                                            if(JSONHas(r, 'rate'), {{ json_decimal('r', 'rate') }},
                                               {{ json_decimal('r', 'per_unit_amount') }}),
                                            {{ json_decimal('r', 'flat_amount') }}),
                                 arrayConcat(JSONExtractArrayRaw({{ json }}, 'graduated_ranges'),
                                             JSONExtractArrayRaw({{ json }}, 'volume_ranges'),
                                             JSONExtractArrayRaw({{ json }}, 'graduated_percentage_ranges'))))
{%- endmacro %}

{#- Price columns of a charge or filter, selected from a subquery that parsed `tiers` once (an
    alias would be expanded at each use). -#}
{% macro pricing_columns(properties) -%}
    {{ json_decimal(properties, 'amount') }} as unit_price,
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
