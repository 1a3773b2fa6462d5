{#- Charge models (billing-semantics.md, "Charge models"): each macro is one SQL expression that
    returns the unrounded Decimal(38, 12) amount of one fee from its units and its price.

    Tiers are parallel arrays, ordered by their lower bound:
      tiers_from Array(Decimal(38, 12)), tiers_to Array(Nullable(Decimal(38, 12))) (NULL = no upper
      bound), tiers_price Array(Decimal(38, 12)) (per unit, or a percentage rate for
      graduated_percentage), tiers_flat Array(Decimal(38, 12)). -#}

{% macro standard_amount(units, unit_price) -%}
    {{ money_mul(units, unit_price) }}
{%- endmacro %}

{#- Tiers are adjacent when each starts exactly where the previous one ends (0-0.1, 0.1-1, 1-inf):
    units are then counted half-open and the "+1" between integer tiers is dropped. -#}
{% macro tiers_adjacent(tiers_from, tiers_to) -%}
    (length({{ tiers_from }}) >= 2
     AND arrayAll(i -> {{ tiers_from }}[i] = ifNull({{ tiers_to }}[i - 1], toDecimal128(0, 12)),
                  arraySlice(arrayEnumerate({{ tiers_from }}), 2)))
{%- endmacro %}

{#- A tier is entered when it is the first one or the units exceed the previous tier's upper
    bound (the walk through the tiers stops at the tier that contains the units). -#}
{% macro tier_entered(units, tiers_to, i) -%}
    ({{ i }} = 1 OR (isNotNull({{ tiers_to }}[{{ i }} - 1]) AND {{ units }} > assumeNotNull({{ tiers_to }}[{{ i }} - 1])))
{%- endmacro %}

{#- Units that fall in tier i: the first tier (from 0) holds min(units, to), a later one
    min(units, to) - from + 1, or min(units, to) - from when the tiers are adjacent. -#}
{% macro tier_units(units, tiers_from, tiers_to, i, adjacent) -%}
    if({{ tier_entered(units, tiers_to, i) }},
       greatest(
           if(isNotNull({{ tiers_to }}[{{ i }}]) AND {{ units }} >= assumeNotNull({{ tiers_to }}[{{ i }}]),
              assumeNotNull({{ tiers_to }}[{{ i }}]), {{ money(units) }})
           - {{ tiers_from }}[{{ i }}]
           + if({{ tiers_from }}[{{ i }}] = 0 OR {{ adjacent }}, toDecimal128(0, 12), toDecimal128(1, 12)),
           toDecimal128(0, 12)),
       toDecimal128(0, 12))
{%- endmacro %}

{#- Graduated: every entered tier bills its units at its price plus its flat fee once; at 0 units
    the first tier's flat fee is still due (a zero-priced stub tier makes that 0). -#}
{% macro graduated_amount(units, tiers_from, tiers_to, tiers_price, tiers_flat) -%}
    if({{ units }} = 0,
       ifNull({{ tiers_flat }}[1], toDecimal128(0, 12)),
       arrayMap(adjacent -> arraySum(i -> if({{ tier_entered(units, tiers_to, 'i') }},
                        {{ money_mul(tier_units(units, tiers_from, tiers_to, 'i', 'adjacent'), tiers_price ~ '[i]') }}
                        + {{ tiers_flat }}[i],
                        toDecimal128(0, 12)),
                arrayEnumerate({{ tiers_from }})), [{{ tiers_adjacent(tiers_from, tiers_to) }}])[1])
{%- endmacro %}

{#- Graduated percentage: tiers counted as in graduated, each entered tier costs
    units_in_tier * rate / 100 + its flat fee; zero usage pays the first tier's flat fee. -#}
{% macro graduated_percentage_amount(units, tiers_from, tiers_to, tiers_rate, tiers_flat) -%}
    if({{ units }} = 0,
       ifNull({{ tiers_flat }}[1], toDecimal128(0, 12)),
       arrayMap(adjacent -> arraySum(i -> if({{ tier_entered(units, tiers_to, 'i') }},
                        {{ money_div(money_mul(tier_units(units, tiers_from, tiers_to, 'i', 'adjacent'), tiers_rate ~ '[i]'), 100) }}
                        + {{ tiers_flat }}[i],
                        toDecimal128(0, 12)),
                arrayEnumerate({{ tiers_from }})), [{{ tiers_adjacent(tiers_from, tiers_to) }}])[1])
{%- endmacro %}

{#- Volume: the one tier with from <= ceil(full_units) and full_units <= to prices all units
    (the prorated units on a prorated charge, chosen by the full units) plus its flat fee. -#}
{% macro volume_tier_index(full_units, tiers_from, tiers_to) -%}
    arrayFirstIndex(i -> {{ tiers_from }}[i] <= ceil({{ full_units }})
                         AND (isNull({{ tiers_to }}[i]) OR {{ full_units }} <= assumeNotNull({{ tiers_to }}[i])),
                    arrayEnumerate({{ tiers_from }}))
{%- endmacro %}

{% macro volume_amount(units, full_units, tiers_from, tiers_to, tiers_price, tiers_flat) -%}
    {#- The matching tier is bound once through a one-element arrayMap; no match prices 0. -#}
    arrayMap(tier -> if(tier = 0, toDecimal128(0, 12),
                        {{ money_mul(units, tiers_price ~ '[tier]') }} + {{ tiers_flat }}[tier]),
             [{{ volume_tier_index(full_units, tiers_from, tiers_to) }}])[1]
{%- endmacro %}

{#- Prorated graduated (Lago's walk through the events): the full values, summed in event
    order, decide the tier each part of an event falls in, and that part is priced at the event's
    proration, days present / full_days. An event from cumulated full units a to b covers
    (a, b] and tier i covers (to of tier i-1, to of tier i]; a negative event takes its part back.
    Flat fees are those of the tiers reached by the highest cumulated units; nothing is due when
    the units end below 0. segments: Array(Tuple(full value, days present)). -#}
{% macro prorated_graduated_amount(segments, full_days, tiers_from, tiers_to, tiers_price, tiers_flat) -%}
    arrayMap(ends -> multiIf(
        empty({{ segments }}), ifNull({{ tiers_flat }}[1], toDecimal128(0, 12)),
        arrayElement(ends, -1) < 0, toDecimal128(0, 12),
        greatest(
            {{ money_div(
                'arraySum(i -> arraySum(k -> ' ~ money_mul(money_mul(
                    'greatest(if(isNull(' ~ tiers_to ~ '[k]), greatest(ends[i], ends[i] - ' ~ segments ~ '[i].1), '
                    ~ 'least(greatest(ends[i], ends[i] - ' ~ segments ~ '[i].1), assumeNotNull(' ~ tiers_to ~ '[k])))'
                    ~ ' - greatest(least(ends[i], ends[i] - ' ~ segments ~ '[i].1), '
                    ~ 'if(k = 1, toDecimal128(0, 12), ifNull(' ~ tiers_to ~ '[k - 1], toDecimal128(0, 12)))), toDecimal128(0, 12))'
                    ~ ' * if(' ~ segments ~ '[i].1 < 0, -1, 1)',
                    tiers_price ~ '[k]'), segments ~ '[i].2')
                ~ ', arrayEnumerate(' ~ tiers_from ~ ')), arrayEnumerate(' ~ segments ~ '))',
                full_days) }},
            toDecimal128(0, 12))
        + arraySum(k -> if({{ tier_entered('arrayMax(ends)', tiers_to, 'k') }}, {{ tiers_flat }}[k], toDecimal128(0, 12)),
                   arrayEnumerate({{ tiers_from }}))),
        [arrayCumSum(arrayMap(s -> s.1, {{ segments }}))])[1]
{%- endmacro %}

{#- Package: ceil(max(units - free_units, 0) / package_size) * package_price; a started package
    is a whole package. -#}
{% macro package_amount(units, free_units, package_size, package_price) -%}
    {{ money_mul('ceil(' ~ money_div('greatest(' ~ money(units) ~ ' - ' ~ money(free_units) ~ ', toDecimal128(0, 12))', package_size) ~ ')', package_price) }}
{%- endmacro %}

{#- Percentage over a period's aggregate: (units - free_value) * rate / 100 plus the fixed fee of
    every paid event. free_value and free_events come from the running totals of the events (see
    percentage_free_value / percentage_free_events). Nothing is due at 0 units, nor when every
    event is free. -#}
{% macro percentage_amount(units, events_count, free_value, free_events, rate, fixed_amount) -%}
    if({{ free_value }} > {{ units }}, toDecimal128(0, 12),
       {{ money_div(money_mul(money(units) ~ ' - ' ~ money(free_value), rate), 100) }})
    + if({{ units }} = 0 OR {{ free_events }} >= {{ events_count }}, toDecimal128(0, 12),
         {{ money_mul('toDecimal128(' ~ events_count ~ ' - ' ~ free_events ~ ', 12)', fixed_amount) }})
{%- endmacro %}

{#- Free events: the smaller of the configured count and the number of events whose running total
    stays strictly below the free amount (`events_below_free_total`), ignoring a criterion that is
    0. -#}
{% macro percentage_free_events(events_below_free_total, free_units_per_events) -%}
    multiIf(toUInt64({{ free_units_per_events }}) = 0, toUInt64({{ events_below_free_total }}),
            {{ events_below_free_total }} = 0, toUInt64({{ free_units_per_events }}),
            least(toUInt64({{ free_units_per_events }}), toUInt64({{ events_below_free_total }})))
{%- endmacro %}

{#- Free value: the running total after the free events (`total_after_free_events`) when fewer
    free events than events are configured, else the last running total capped by the free
    amount. Without any free allowance the running totals are not consulted (0). -#}
{% macro percentage_free_value(events_count, total_after_free_events, last_total, free_units_per_events, free_units_per_total) -%}
    multiIf(
        {{ free_units_per_events }} = 0 AND {{ free_units_per_total }} = 0, toDecimal128(0, 12),
        {{ events_count }} = 0, toDecimal128(0, 12),
        {{ free_units_per_events }} > 0 AND {{ free_units_per_events }} < {{ events_count }},
            {{ money(total_after_free_events) }},
        {{ free_units_per_total }} = 0, {{ money(last_total) }},
        least({{ money(last_total) }}, {{ money(free_units_per_total) }}))
{%- endmacro %}

{#- Per-transaction min/max (percentage): one event's amount, given its value, the running total
    before it and its position. With a free amount, events whose running total stays below it are
    free and the event that crosses it pays on the part above; without one, the first
    free_units_per_events events are free. A paid event costs value * rate / 100 + fixed fee,
    clamped to [min, max] (NULL = no bound). Free events are never raised to the minimum. -#}
{% macro percentage_transaction_amount(value, total_before, position, free_units_per_events, free_units_per_total, rate, fixed_amount, min_amount, max_amount) -%}
    if(
        ({{ free_units_per_total }} > 0 AND {{ total_before }} + {{ value }} < {{ free_units_per_total }})
        OR ({{ free_units_per_total }} = 0 AND {{ position }} <= {{ free_units_per_events }}),
        toDecimal128(0, 12),
        {{ clamp_transaction(
            money_div(money_mul(
                'if(' ~ free_units_per_total ~ ' > 0 AND ' ~ total_before ~ ' < ' ~ free_units_per_total ~ ', '
                ~ total_before ~ ' + ' ~ value ~ ' - ' ~ free_units_per_total ~ ', ' ~ money(value) ~ ')',
                rate), 100) ~ ' + ' ~ fixed_amount,
            min_amount, max_amount) }})
{%- endmacro %}

{% macro clamp_transaction(amount, min_amount, max_amount) -%}
    multiIf(isNotNull({{ min_amount }}) AND ({{ amount }}) < assumeNotNull({{ min_amount }}), assumeNotNull({{ min_amount }}),
            isNotNull({{ max_amount }}) AND ({{ amount }}) > assumeNotNull({{ max_amount }}), assumeNotNull({{ max_amount }}),
            {{ money(amount) }})
{%- endmacro %}

{#- Dynamic: the events carry their own price; the sum of precise_total_amount_cents / 100
    (0 at 0 units). -#}
{% macro dynamic_amount(units, precise_total_amount_cents_sum) -%}
    if({{ units }} = 0, toDecimal128(0, 12), {{ money_div(precise_total_amount_cents_sum, 100) }})
{%- endmacro %}

{#- The unrounded amount of one charge fee, dispatched on charge_model, over a row that carries
    the price columns of stg_warehouse__charges / stg_warehouse__charge_filters. The usage comes as expressions: units,
    full_units (volume tier choice on prorated charges), events_count, event_values and
    running_totals (percentage allowances, in timestamp order), the events' summed
    precise_total_amount_cents (dynamic) and, on prorated graduated charges, prorated_segments.
    Used by the fee models and by current usage, so both price usage the same way.
    `percentage_running` replaces the event arrays of the percentage model by running figures
    (pay-in-advance fees price each event from window aggregates, not from a copy of every
    earlier event): a dict of SQL expressions `events` (events so far), `last_total` (running
    total), `total_after_free_events` (running total at the configured free events),
    `events_below_free_total` (events whose running total is below the free amount) and
    `transactions_amount` (sum of the per-transaction amounts so far). `models` (none: all) lists
    the charge models compiled in; a row of another known model fails (compiled_out_guard). -#}
{% macro charge_amount(units='units', full_units='full_units', events_count='events_count',
                       event_values='event_values', running_totals='running_totals',
                       precise_total_amount_cents='precise_total_amount_cents',
                       percentage_running=none, prorated_segments=none, models=none) -%}
    {%- set running = percentage_running or {
        'events': 'length(' ~ running_totals ~ ')',
        'last_total': 'arrayElement(' ~ running_totals ~ ', -1)',
        'total_after_free_events': running_totals ~ '[toUInt64(free_units_per_events)]',
        'events_below_free_total': 'arrayCount(t -> t < free_units_per_total, ' ~ running_totals ~ ')',
        'transactions_amount': 'arraySum(i -> ' ~ percentage_transaction_amount(
            event_values ~ '[i]', running_totals ~ '[i] - ' ~ event_values ~ '[i]', 'i',
            'free_units_per_events', 'free_units_per_total', 'rate', 'fixed_amount',
            'per_transaction_min_amount', 'per_transaction_max_amount') ~ ', arrayEnumerate(' ~ event_values ~ '))',
    } %}
    {%- set branches = {
        'standard': ["charge_model = 'standard'", standard_amount(units, 'unit_price')],
        'graduated': ["charge_model = 'graduated'", graduated_amount(units, 'tiers_from', 'tiers_to', 'tiers_price', 'tiers_flat')],
        'graduated_percentage': ["charge_model = 'graduated_percentage'", graduated_percentage_amount(units, 'tiers_from', 'tiers_to', 'tiers_price', 'tiers_flat')],
        'volume': ["charge_model = 'volume'", volume_amount(units, full_units, 'tiers_from', 'tiers_to', 'tiers_price', 'tiers_flat')],
        'package': ["charge_model = 'package'", package_amount(units, 'free_units', 'package_size', 'unit_price')],
        'percentage': [
            "charge_model = 'percentage' and (isNotNull(per_transaction_min_amount) or isNotNull(per_transaction_max_amount))",
            running.transactions_amount,
            "charge_model = 'percentage'",
            percentage_amount(
                units, events_count,
                percentage_free_value(running.events, running.total_after_free_events, running.last_total,
                                      'free_units_per_events', 'free_units_per_total'),
                percentage_free_events(running.events_below_free_total, 'free_units_per_events'),
                'rate', 'fixed_amount')],
        'dynamic': ["charge_model = 'dynamic'", dynamic_amount(units, precise_total_amount_cents)],
    } %}
    {%- if prorated_segments %}
    {%- do branches['graduated'].insert(0, prorated_graduated_amount(prorated_segments, 'full_days', 'tiers_from', 'tiers_to', 'tiers_price', 'tiers_flat')) %}
    {%- do branches['graduated'].insert(0, "charge_model = 'graduated' and prorated = 1") %}
    {%- endif %}
    {%- set compiled, omitted = [], [] %}
    {%- for model in branches %}
    {%- if models is none or model in models %}
    {%- do compiled.extend(branches[model]) %}
    {%- else %}
    {%- do omitted.append("'" ~ model ~ "'") %}
    {%- endif %}
    {%- endfor %}
    {%- set otherwise = compiled_out_guard('charge_model', omitted, 'charge model') %}
    {%- if compiled -%}
    multiIf(
        {%- for condition_or_amount in compiled %}
        {{ condition_or_amount }},
        {%- endfor %}
        {{ otherwise }})
    {%- else -%}
    {{ otherwise }}
    {%- endif %}
{%- endmacro %}

{#- The catalog in use, read when dbt runs: the charge models and the metric rounding precisions of
    the run's charges of one kind (pay_in_advance 0 or 1, recurring_only: of recurring metrics;
    the run's copy of the catalog, rating_catalog). A per-run table compiles in only these (see
    charge_amount's `models`, round_units' `precisions`): the warehouse analyses every branch
    of the inlined pricing whether a row needs it or not. Views rated on read keep every model,
    since the catalog changes after they are created. none (every branch) while dbt parses, and
    in unit tests, whose catalog is their fixture rows, not the tables read here. -#}
{% macro pricing_in_use(pay_in_advance, recurring_only=false) -%}
    {%- if not execute or (model is mapping and model.get('resource_type') == 'unit_test') -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set charges = "(" ~ rated_charges(pay_in_advance, recurring_only) ~ ")" -%}
    {%- set models = run_query("select distinct charge_model from " ~ charges ~ " order by charge_model") -%}
    {%- set precisions = run_query(
        "select distinct ifNull(rounding_precision, 0) as precision from " ~ rating_catalog('billable_metrics')
        ~ " where rounding_function is not null"
        ~ " and billable_metric_id in (select billable_metric_id from " ~ charges ~ ") order by precision") -%}
    {{ return({'models': models.rows | map(attribute=0) | list,
               'precisions': precisions.rows | map(attribute=0) | map('int') | list}) }}
{%- endmacro %}

{#- The fallback of a dispatch compiled for the catalog in use: 0 (the dispatch's default), but a
    row whose `column` is one of the `omitted` values (SQL literals; added to the catalog after the run read
    it) fails the query rather than being priced 0; the next run compiles it in. The guard is
    evaluated on every row (no short-circuit to rely on), so `applies` restricts it to the rows
    the fallback is for. -#}
{% macro compiled_out_guard(column, omitted, what, applies='true') -%}
    {%- if omitted -%}
    toDecimal128(throwIf({{ applies }} and {{ column }} in ({{ omitted | join(', ') }}),
                         'a {{ what }} was added to the catalog during the run: rate again'), 12)
    {%- else -%}
    toDecimal128(0, 12)
    {%- endif -%}
{%- endmacro %}
