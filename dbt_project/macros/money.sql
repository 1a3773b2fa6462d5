{#- Exact money arithmetic over Decimal(38, 12).

    Decimal128 x Decimal128 keeps scale 24 and silently overflows above ~1e14 (stack notes), so
    products and quotients are computed in Decimal256 and brought back to Decimal(38, 12): a value
    that still does not fit raises instead of returning a wrong number. -#}

{% macro money(expr) -%}
    toDecimal128({{ expr }}, 12)
{%- endmacro %}

{% macro money_mul(left, right) -%}
    toDecimal128(toDecimal256({{ left }}, 12) * toDecimal256({{ right }}, 12), 12)
{%- endmacro %}

{#- Division by zero yields 0: every caller divides by a count or a size that is 0 only when the
    numerator is irrelevant (no units, no days). -#}
{% macro money_div(numerator, denominator) -%}
    toDecimal128(
        if(toDecimal256({{ denominator }}, 12) = 0, toDecimal256(0, 24),
           toDecimal256({{ numerator }}, 24)
           / if(toDecimal256({{ denominator }}, 12) = 0, toDecimal256(1, 12), toDecimal256({{ denominator }}, 12))),
        12)
{%- endmacro %}

{#- ISO 4217 minor-unit exponent of a currency code; 2 unless listed. -#}
{% macro currency_exponent(currency) -%}
    multiIf(
        {{ currency }} IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF',
                           'UGX', 'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'), 0,
        {{ currency }} IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND'), 3,
        {{ currency }} IN ('CLF', 'UYW'), 4,
        2)
{%- endmacro %}

{#- Round an unrounded amount once, half-up (away from zero, as Ruby's BigDecimal), to the
    currency's minor unit, as Int64 cents. ClickHouse rounds Decimals half away from zero. -#}
{% macro amount_cents(amount, currency) -%}
    multiIf(
        {{ currency_exponent(currency) }} = 0, toInt64(round({{ amount }}, 0)),
        {{ currency_exponent(currency) }} = 3, toInt64(round({{ amount }}, 3) * 1000),
        {{ currency_exponent(currency) }} = 4, toInt64(round({{ amount }}, 4) * 10000),
        toInt64(round({{ amount }}, 2) * 100))
{%- endmacro %}

{#- Minor units (Lago *_cents) back to a unit amount in the currency. -#}
{% macro cents_to_amount(cents, currency) -%}
    toDecimal128(toDecimal256({{ cents }}, 12) / toDecimal256(
        multiIf({{ currency_exponent(currency) }} = 0, 1,
                {{ currency_exponent(currency) }} = 3, 1000,
                {{ currency_exponent(currency) }} = 4, 10000, 100), 0), 12)
{%- endmacro %}
