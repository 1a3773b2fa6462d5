{#- The rating pipeline as macros over a set of periods, so the same SQL rates every closed
    period (int_* views), only the periods an incremental run must redo (fct_fees), and the open
    periods (current usage views). `periods` names a relation or CTE with the columns of
    int_billing_periods (charge periods only). -#}

{% macro nil_uuid() -%}toUUID('00000000-0000-0000-0000-000000000000'){%- endmacro %}

{#- The catalog relation the rating reads (`name`: charges, charge_filters or billable_metrics):
    the run's copy, int_rating_<name>, in a model that declares it as a parent (the models a
    rating run builds, with `depends_on`; their unit tests give the copies as inputs), the live
    staging view otherwise (the views rated on read, and while dbt parses). The copies are tables
    of a few rows made at the run's start: the warehouse analyses a view again at each
    reference, and the catalog views (FINAL, JSON prices parsed) made up about a third of the
    rating queries' planning. The whole run also reads one catalog. -#}
{% macro rating_catalog(name) -%}
    {%- set copy = 'int_rating_' ~ name %}
    {%- set reads_copy = execute and ('model.' ~ project_name ~ '.' ~ copy) in model.depends_on.nodes %}
    {{- return(ref(copy) if reads_copy else ref('stg_warehouse__' ~ name)) -}}
{%- endmacro %}

{#- The run's copies of the catalog, for a per-run model's `depends_on` comment (rating_catalog
    reads a copy only in a model that declares it). -#}
{% macro rating_catalog_copies() -%}
    {%- for name in ['charges', 'charge_filters', 'billable_metrics'] -%}
        {{ ref('int_rating_' ~ name) }}{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- Deduplicated events within the periods' time span, for the caller to place in the periods
    (charge_events): an event outside its own subscription's periods, or of a subscription without
    one, finds no period there and drops out. A correction that moves an event's timestamp out of
    its subscription's span is seen by the next full run. `events` names a relation or CTE with the columns of
    the events table to read instead of it (the fee estimate adds an unstored event). With
    carry_recurring, the events of recurring metrics are read from the subscription's first event
    on, since every earlier event still counts. `code_filter` (a condition on organization_id
    and code) keeps only the events whose latest version meets it.
    Most transaction ids arrive once: their only row is the latest, so it passes as it is, and
    `code_filter` applies to it as the events are read, before any join: the other metrics'
    events are never joined or hashed. Only the ids whose hash is seen more than once in its
    subscription, among the stored events within all the periods' span and whatever their code,
    pick their latest version with argMax, and `code_filter` applies to that version (a
    transaction re-sent under another code counts where its latest version says). A hash
    collision or a version outside the span only sends a few more ids through argMax: the result
    is the same. (An argMax over every event costs several times all the rest: its state copies
    the properties map of each event.)
    A single-version event is not joined to its subscription's span: the placement in a period
    bounds it the same way, so that join only repeated the placement's work for every event (0.5-1
    warehouse CPU-s per 10M events). A re-sent id is: its latest version within its own
    subscription's span wins, as before.
    With by_subscription, only the periods' subscriptions are read: `IN` sets on the events'
    primary-key prefix, so a run over some subscriptions' periods (an incremental run, the
    pay-in-advance charges' plans, a view rated on read) skips the other subscriptions' granules
    and rows instead of reading, hashing and joining every event of the periods' months.
    With materialize_resent (the query must set `enable_materialized_cte`), the re-sent set is
    computed once, as `resent_name`: otherwise the warehouse builds it twice, once for each
    branch's `IN` (each a `GROUP BY` of every event's hash in the span, run as the query is
    analysed). -#}
{% macro scoped_events(periods, until=none, events=none, carry_recurring=false, code_filter=none, by_subscription=false,
                       materialize_resent=false, resent_name='resent_transactions') -%}
    {%- set source_events = events or source('warehouse', 'events') %}
    {#- The time span of every period together: a run over a few open periods (an incremental
        day) reads only their months' partitions, not the whole history, before any join. With
        by_subscription, also the periods' organizations and subscriptions: two one-column sets
        on the events' primary-key prefix rather than one set of (organization, subscription)
        tuples, since the key prunes granules with either and a row is checked against the sets
        before it is joined, where a tuple set costs several times more per row. The placement in
        a period (and, for a re-sent id, the join to the spans below) keeps only the periods' own
        pairs.
        The four figures are one scalar, named once in the query's WITH: the warehouse analyses a
        named CTE again at each place that reads it (with the CTEs it reads in turn), so four
        subqueries in each of the three reads below cost twelve analyses of the periods, where
        this costs one per read. -#}
    {%- set scope = resent_name ~ '_scope' %}
    {%- set within_all_periods -%}
        timestamp <= {{ scope }}.2
        and (timestamp >= {{ scope }}.1
            {%- if carry_recurring %}
             or (organization_id, code) in (
                 select organization_id, billable_metric_code from {{ rating_catalog('billable_metrics') }} where recurring = 1)
            {%- endif %})
        {%- if by_subscription %}
        and organization_id in {{ scope }}.3
        and external_subscription_id in {{ scope }}.4
        {%- endif %}
    {%- endset %}
    {%- set transaction_hash = 'cityHash64(organization_id, external_subscription_id, transaction_id)' %}
    {#- The versions of a re-sent id within its own subscription's span (and the rating instant). -#}
    {%- set within_subscription_span -%}
        inner join spans
            on spans.organization_id = e.organization_id
            and spans.external_subscription_id = e.external_subscription_id
        where e.timestamp <= spans.span_to
            and (e.timestamp >= spans.span_from
                {%- if carry_recurring %}
                 or (e.organization_id, e.code) in (
                     select organization_id, billable_metric_code from {{ rating_catalog('billable_metrics') }} where recurring = 1)
                {%- endif %})
            {%- if until %}
            and e.timestamp <= {{ until }}
            {%- endif %}
    {%- endset %}
    with
    (select tuple(min(period_from), max(period_to)
                  {%- if by_subscription %}, groupUniqArray(organization_id), groupUniqArray(external_subscription_id){% endif %})
     from {{ periods }}) as {{ scope }},
    spans as (
        select organization_id, external_subscription_id, min(period_from) as span_from, max(period_to) as span_to
        from {{ periods }}
        group by organization_id, external_subscription_id
    ),
    {#- The hashes seen more than once, found per subscription: each subscription's hashes sorted,
        then those equal to the one before (a leading 0 hash only sends its id through argMax).
        The events are stored sorted by subscription, so each hash is appended to the small array
        of the subscription just read; one hash table of every event's hash (`group by hash
        having count() > 1`) grows with the events and misses the cache on nearly every row (100M
        generated keys of 10,000 subscriptions: 16.9 warehouse CPU-s against 8.6 for the sorted
        arrays; 10M bench events: ~1 either way). -#}
    {{ resent_name }} as {{ 'materialized ' if materialize_resent }}(
        select arrayJoin(arrayFilter((hash, previous) -> hash = previous, hashes, arrayPushFront(arrayPopBack(hashes), 0)))
            as transaction_hash
        from (
            select arraySort(groupArray({{ transaction_hash }})) as hashes
            from {{ source_events }}
            where {{ within_all_periods }}
            group by organization_id, external_subscription_id
        )
    )
    select
        e.organization_id as organization_id, e.external_subscription_id as external_subscription_id,
        e.transaction_id as transaction_id, e.code as code, e.timestamp as timestamp,
        e.properties as properties, e.precise_total_amount_cents as precise_total_amount_cents,
        e.ingested_at as ingested_at
    from (
        select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
            precise_total_amount_cents, ingested_at
        from {{ source_events }}
        where {{ within_all_periods }}
            and {{ transaction_hash }} not in {{ resent_name }}
            {%- if code_filter %}
            and {{ code_filter }}
            {%- endif %}
            {%- if until %}
            and timestamp <= {{ until }}
            {%- endif %}
    ) as e
    union all
    select * from (
        select
            organization_id, external_subscription_id, transaction_id,
            latest.1 as code, latest.2 as timestamp, latest.3 as properties,
            latest.4 as precise_total_amount_cents, latest.5 as ingested_at
        from (
            select
                e.organization_id as organization_id,
                e.external_subscription_id as external_subscription_id,
                e.transaction_id as transaction_id,
                argMax(tuple(e.code, e.timestamp, e.properties, e.precise_total_amount_cents, e.ingested_at), e.ingested_at)
                    as latest
            from (
                select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
                    precise_total_amount_cents, ingested_at
                from {{ source_events }}
                where {{ within_all_periods }} and {{ transaction_hash }} in {{ resent_name }}
            ) as e
            {{ within_subscription_span }}
            group by organization_id, external_subscription_id, transaction_id
        )
    )
    {%- if code_filter %}
    where {{ code_filter }}
    {%- endif %}
{%- endmacro %}

{#- Charges with their metric; pay_in_advance selects arrears (0) or in-advance (1) charges,
    recurring_only those of recurring metrics (the charges a pay-in-advance renewal bills). -#}
{% macro rated_charges(pay_in_advance, recurring_only=false) -%}
    select
        c.*,
        m.billable_metric_code as billable_metric_code,
        m.field_name as field_name,
        m.aggregation_type as aggregation_type,
        m.rounding_function as rounding_function,
        m.rounding_precision as rounding_precision,
        m.recurring as recurring,
        m.expression as expression
    from {{ rating_catalog('charges') }} as c
    inner join {{ rating_catalog('billable_metrics') }} as m
        on m.organization_id = c.organization_id and m.billable_metric_id = c.billable_metric_id
    where c.pay_in_advance = {{ pay_in_advance }}
        {%- if recurring_only %}
        and m.recurring = 1
        {%- endif %}
{%- endmacro %}

{#- A metric field's position among the properties read as a tuple (`field_names`, the
    read keys), 1-based; 0 when the field is none or not read. -#}
{% macro field_position(field_names, field_name) -%}
    {%- if field_names -%}
    toUInt8(indexOf([{% for key in field_names %}{{ sql_string(key) }}{{ ', ' if not loop.last }}{% endfor %}], ifNull({{ field_name }}, '')))
    {%- else -%}
    toUInt8(0)
    {%- endif -%}
{%- endmacro %}

{#- The text of the field at `position` (field_position) in the `properties` tuple; '' at 0. -#}
{% macro field_text(field_names, position, properties) -%}
    {%- if field_names -%}
    multiIf(
        {%- for key in field_names %}
        {{ position }} = {{ loop.index }}, {{ properties }}.{{ loop.index }},
        {%- endfor %}
        '')
    {%- else -%}
    ''
    {%- endif -%}
{%- endmacro %}

{#- Every event placed in its charge period (one ASOF join) and charge, with the charge filter it
    counts in (the most specific matching filter, the older one on a tie; the nil UUID = the
    charge's default price) and its grouped_by key. Arrears charges of recurring metrics also see
    every earlier event of the subscription in each period, and a metric's
    expression replaces the event's field_name property with its result before anything reads
    it, as Lago stores it (no result, e.g. a missing property: the property is removed).
    carry_recurring defaults to arrears charges; a caller whose pay_in_advance is an SQL
    expression says whether to carry. `events`, `by_subscription`, `materialize_resent`: see
    scoped_events.
    `features` (usage_in_use): compile in only the recurring metrics' carrying, filters, groups
    and expressions the catalog uses; without filters, groups or expressions an event's
    properties map is read for its value and operation only (and not carried past its
    placement). none compiles in everything.
    `by_metric` (arrears usage only, where usage_by_metric(features) holds): an event is placed
    once in its period and metric rather than once per charge of the plan on that metric, with
    no charge fields (see charge_usage's metric_periods). `recurring_only`: only the charges of
    recurring metrics (a renewal's; `features`, if any, are theirs: usage_in_use's
    recurring_only). -#}
{% macro charge_events(periods, pay_in_advance=0, until=none, events=none, carry_recurring=none, by_subscription=false, features=none, by_metric=false,
                       materialize_resent=false, recurring_only=false) -%}
    {%- set carry_recurring = (pay_in_advance == 0) if carry_recurring is none else carry_recurring %}
    {#- Without a recurring metric, no event is carried and none is read before the periods. -#}
    {%- set carry_recurring = carry_recurring and (features is none or features.recurring) %}
    {%- set uses_filters = features is none or features.filters %}
    {%- set uses_groups = features is none or features.grouped_by %}
    {%- set uses_expressions = features is none or features.expressions %}
    {%- set reads_operations = features is none or 'unique_count_agg' in features.aggregations %}
    {#- Without filters, groups or expressions an event is read for its metric's field and its
        operation only: those properties (as a tuple, one element per key in use) rather than
        the whole map go through the placement join (the map costs several times the tuple). -#}
    {%- set read_keys = none %}
    {%- if not (uses_filters or uses_groups or uses_expressions) and features.field_names is not none %}
    {%- set read_keys = features.field_names + (['operation_type'] if reads_operations else []) %}
    {%- endif %}
    {#- The charge fields each event carries after its placement, by name (tuple positions). -#}
    {%- set charge_fields = ['charge_id', 'charge_model', 'aggregation_type', 'field_name', 'prorated'] %}
    {%- if uses_groups %}{% do charge_fields.append('grouped_by') %}{% endif %}
    {%- if uses_expressions %}{% do charge_fields.extend(['expression', 'billable_metric_id']) %}{% endif %}
    {%- if uses_filters %}{% do charge_fields.append('filters') %}{% endif %}
    {%- set field = {} %}
    {%- for name in charge_fields %}{% do field.update({name: 'charge.' ~ loop.index}) %}{% endfor %}
    with charges as ({{ rated_charges(pay_in_advance, recurring_only) }}),
    -- The charged metric codes and organizations, one scalar for the events' code filter (see
    -- scoped_events' scope: a named CTE is analysed again at each place that reads it).
    (select tuple(groupUniqArray(billable_metric_code), groupUniqArray(organization_id)) from charges) as charged_codes,
    {%- if uses_filters %}
    filter_sets as (
        select
            organization_id,
            charge_id,
            arraySort(f -> (-f.3, f.4, f.5),
                      groupArray(tuple(charge_filter_id, filter_values, specificity, created_at, position, grouped_by)))
                as filters
        from {{ rating_catalog('charge_filters') }}
        group by organization_id, charge_id
    ),
    {%- endif %}
    -- Every period with, per metric code, the charges of its plan on that metric and their
    -- filters (a few rows per period, joined on the catalog side): the events meet this one small
    -- table in the join that places them, keyed by their code too, instead of a second join per
    -- event to find their charges. A plan may price one metric with several charges: the event
    -- then counts once in each (arrayJoin).
    period_charges as (
        select
            p.organization_id as organization_id,
            p.external_subscription_id as external_subscription_id,
            p.subscription_id as subscription_id,
            p.period_from as period_from,
            p.period_to as period_to,
            p.service_from_date as service_from_date,
            p.service_to_date as service_to_date,
            p.full_days as full_days,
            p.timezone as timezone,
            charges.billable_metric_code as code,
            {%- if by_metric %}
            -- The metric's field (its position among the read properties, 0: none) and the
            -- aggregation figures it needs, as small numbers: nothing per charge.
            {{ field_position(features.field_names, 'any(charges.field_name)') }} as field_index,
            toUInt8(any(charges.aggregation_type) = 'unique_count_agg') as is_unique_count,
            toUInt8(any(charges.aggregation_type) = 'latest_agg') as is_latest
            {%- else %}
            groupArray(tuple(
                {%- for name in charge_fields %}
                {{ 'filter_sets.filters' if name == 'filters' else 'charges.' ~ name }}{{ ',' if not loop.last }}
                {%- endfor %}))
                as code_charges
            {%- endif %}
        from {{ periods }} as p
        inner join charges on charges.organization_id = p.organization_id and charges.plan_id = p.plan_id
        {%- if uses_filters %}
        left join filter_sets
            on filter_sets.organization_id = charges.organization_id and filter_sets.charge_id = charges.charge_id
        {%- endif %}
        where {{ usage_features_guard(features, pay_in_advance) }}
        group by organization_id, external_subscription_id, subscription_id, period_from, period_to,
            service_from_date, service_to_date, full_days, timezone, code
    ),
    placed as (
        {%- for carried in ([false, true] if carry_recurring else [false]) %}
        {%- if carried %}
        union all
        {%- endif %}
        select
            e.organization_id as organization_id,
            p.subscription_id as subscription_id,
            p.period_from as period_from,
            p.service_from_date as service_from_date,
            p.service_to_date as service_to_date,
            p.full_days as full_days,
            {{ local_date('e.timestamp', 'p.timezone') }} as event_date,
            e.code as code,
            e.transaction_id as transaction_id,
            e.timestamp as timestamp,
            e.ingested_at as ingested_at,
            {%- if read_keys is none %}
            e.properties as event_properties,
            {%- elif read_keys %}
            tuple({% for key in read_keys %}e.properties[{{ sql_string(key) }}]{{ ', ' if not loop.last }}{% endfor %}) as event_properties,
            {%- endif %}
            e.precise_total_amount_cents as precise_total_amount_cents,
            {%- if by_metric %}
            p.field_index as field_index,
            p.is_unique_count as is_unique_count,
            p.is_latest as is_latest
            {%- else %}
            p.code_charges as code_charges
            {%- endif %}
        -- Only the events of metrics with a charge of this kind, and in each branch only its
        -- own (recurring metrics or the others), so no event is deduplicated twice.
        {#- Two one-column sets rather than one set of (organization, code) tuples, which costs
            several times more per event read (at 10M events ~1 warehouse CPU-s of the arrears
            query): a code charged only in another organization passes, and the placement, keyed
            by organization and code, drops it. The recurring split stays exact (tuples). #}
        {%- set code_filter -%}
            code in charged_codes.1 and organization_id in charged_codes.2
            {%- if carry_recurring %}
            and (organization_id, code) {{ '' if carried else 'not ' }}in (
                select organization_id, billable_metric_code from {{ rating_catalog('billable_metrics') }} where recurring = 1)
            {%- endif %}
        {%- endset %}
        from ({{ scoped_events(periods, until, events, carry_recurring, code_filter, by_subscription, materialize_resent,
                               'resent_carried_transactions' if carried else 'resent_transactions') }}) as e
        {%- if carried %}
        -- Recurring metrics: an event counts in its own period and in every later one.
        inner join period_charges as p
            on p.organization_id = e.organization_id
            and p.external_subscription_id = e.external_subscription_id
            and p.code = e.code
        where e.timestamp <= p.period_to
        {%- else %}
        asof inner join period_charges as p
            on p.organization_id = e.organization_id
            and p.external_subscription_id = e.external_subscription_id
            and p.code = e.code
            and e.timestamp >= p.period_from
        where e.timestamp <= p.period_to
        {%- endif %}
        {%- endfor %}
    )
    {%- if by_metric %}
    select
        organization_id, subscription_id, period_from, code, is_unique_count, is_latest,
        transaction_id, timestamp, ingested_at,
        {{ field_text(features.field_names, 'field_index', 'event_properties') }} as value_text,
        toDecimal128OrNull(trim(value_text), 12) as value,
        {%- if reads_operations %}
        event_properties.{{ read_keys | length }} as operation_type,
        {%- else %}
        '' as operation_type,
        {%- endif %}
        precise_total_amount_cents
    from placed
    {%- else %},
    valued as (
        select
            organization_id, subscription_id, period_from, service_from_date, service_to_date,
            full_days, event_date, transaction_id, timestamp, ingested_at, precise_total_amount_cents,
            arrayJoin(code_charges) as charge,
            {%- for name in charge_fields %}
            {{ field[name] }} as {{ {'grouped_by': 'charge_grouped_by', 'expression': 'metric_expression'}.get(name, name) }},
            {%- endfor %}
            {%- if uses_expressions %}
            {{ metric_properties('metric_expression', 'field_name',
                                 expression_value('billable_metric_id', 'event_properties', 'timestamp', 'code'),
                                 'event_properties') }} as properties
            {%- elif read_keys is none or read_keys %}
            event_properties as properties
            {%- else %}
            tuple() as properties
            {%- endif %}
        from placed
    )
    select
        valued.organization_id as organization_id,
        valued.subscription_id as subscription_id,
        valued.period_from as period_from,
        valued.charge_id as charge_id,
        valued.charge_model as charge_model,
        valued.aggregation_type as aggregation_type,
        {%- if uses_filters %}
        arrayFirstIndex(f -> {{ filter_matches('f.2', 'valued.properties') }}, valued.filters) as filter_index,
        if(filter_index = 0, {{ nil_uuid() }}, valued.filters[filter_index].1) as charge_filter_id,
        {%- else %}
        toUInt32(0) as filter_index,
        {{ nil_uuid() }} as charge_filter_id,
        {%- endif %}
        {%- if uses_groups and uses_filters %}
        {{ group_key("if(filter_index = 0 or empty(valued.filters[filter_index].6), valued.charge_grouped_by, valued.filters[filter_index].6)", 'valued.properties') }}
            as grouped_by,
        {%- elif uses_groups %}
        {{ group_key('valued.charge_grouped_by', 'valued.properties') }} as grouped_by,
        {%- else %}
        cast(map() as Map(String, String)) as grouped_by,
        {%- endif %}
        valued.transaction_id as transaction_id,
        valued.timestamp as timestamp,
        valued.ingested_at as ingested_at,
        {%- if read_keys is none %}
        {{ event_value('valued.properties', 'valued.field_name') }} as value,
        valued.properties[ifNull(valued.field_name, '')] as value_text,
        {%- else %}
        {{ field_text(features.field_names, field_position(features.field_names, 'valued.field_name'), 'valued.properties') }}
            as value_text,
        toDecimal128OrNull(trim(value_text), 12) as value,
        {%- endif %}
        {%- if reads_operations and read_keys is not none %}
        valued.properties.{{ read_keys | length }} as operation_type,
        {%- elif reads_operations %}
        valued.properties['operation_type'] as operation_type,
        {%- else %}
        '' as operation_type,
        {%- endif %}
        valued.precise_total_amount_cents as precise_total_amount_cents,
        valued.prorated as prorated,
        valued.event_date as event_date,
        valued.service_from_date as service_from_date,
        valued.service_to_date as service_to_date,
        valued.full_days as full_days
    from valued
    {%- endif %}
{%- endmacro %}

{#- A bucket's units by its aggregation type, from `figures`: per aggregation type in use, the
    SQL of its figure (count_agg and sum_agg always; sum_agg also serves custom_agg). A type
    without a figure gives 0 (compiled out: not in use). -#}
{% macro units_by_aggregation(aggregation_type, figures) -%}
    toDecimal128(multiIf(
        {{ aggregation_type }} = 'count_agg', toDecimal128({{ figures['count_agg'] }}, 12),
        {{ aggregation_type }} in ('sum_agg', 'custom_agg'), {{ figures['sum_agg'] }},
        {%- for type in ['max_agg', 'latest_agg', 'unique_count_agg'] if type in figures %}
        {{ aggregation_type }} = '{{ type }}', toDecimal128({{ figures[type] }}, 12),
        {%- endfor %}
        toDecimal128(0, 12)), 12)
{%- endmacro %}

{#- Units per subscription x charge x period x filter x group, in two set-based passes: per
    distinct value (unique_count: a value counts unless its last operation is `remove`), then per
    bucket. Percentage charges also get their event values and running totals in timestamp order.
    Recurring metrics aggregate the events carried from earlier periods too: a weighted sum starts
    from their level at the period start. Prorated charges (sum and unique_count) also get the
    prorated units, Σ value x days present / days of the full period rounded up to 5 decimals,
    and, for graduated prices, the segments (full value, days present) in event order.
    `features` (usage_in_use): aggregate only the figures of the aggregation types, groups,
    prorations and ordered events in use (the others are typed constants); none: every one.
    `metric_periods` (a relation or CTE of the charge periods, where usage_by_metric(features)
    holds): the events are placed per metric (charge_events' by_metric) and aggregated per period
    and metric, and each arrears charge of the period's plan on that metric gets the metric's
    usage (without filters, groups, proration or ordered events, every charge on a metric has
    the same). `pay_in_advance`: the kind of the charges whose events these are (the features'
    guard checks the charges of that kind). With `renewal`, only what a pay-in-advance renewal
    prices (charge_fees' `renewal`): the whole units of a sum or a unique count, the only
    aggregations of a recurring metric allowed in advance (the billing API refuses max, latest
    and weighted sums there), without prorated figures or ordered events. -#}
{% macro charge_usage(events, features=none, metric_periods=none, pay_in_advance=0, renewal=false) -%}
    {%- if metric_periods is not none %}
    {{ return(metric_usage(events, features, metric_periods)) }}
    {%- endif %}
    {%- set every = features is none %}
    {%- set aggregations = none if every else features.aggregations %}
    {%- set uses = {
        'unique_count': every or 'unique_count_agg' in aggregations,
        'latest': (every or 'latest_agg' in aggregations) and not renewal,
        'max': (every or 'max_agg' in aggregations) and not renewal,
        'groups': every or features.grouped_by,
        'prorated': (every or features.prorated) and not renewal,
        'ordered': (every or features.ordered) and not renewal,
    } %}
    {%- set zero = 'toDecimal128(0, 12)' %}
    {%- set no_events = "cast([] as Array(Tuple(DateTime64(3, 'UTC'), DateTime64(6, 'UTC'), Decimal(38, 12), Decimal(38, 12))))" %}
    {%- set group_columns -%}
        organization_id, subscription_id, period_from, charge_id, charge_filter_id
        {%- if uses.groups %}, grouped_by{% endif %}, aggregation_type
    {%- endset %}
    with per_value as (
        select
            {{ group_columns }},
            {%- if uses.unique_count %}
            if(aggregation_type = 'unique_count_agg', value_text, '') as unique_value,
            {%- endif %}
            {%- if uses.prorated %}
            any(prorated) as is_prorated,
            any(full_days) as period_days,
            {%- endif %}
            count() as value_events,
            sum(ifNull(value, {{ zero }})) as value_sum,
            {%- if uses.max %}
            max(value) as value_max,
            {%- endif %}
            -- Each figure below is read for one aggregation type or proration only, so it is
            -- aggregated (-If) only over the events of those charges: a state per event of every
            -- other charge would be computed for nothing.
            {%- if uses.latest %}
            argMaxIf(value, {{ event_order('timestamp', 'ingested_at') }}, aggregation_type = 'latest_agg') as latest_value,
            maxIf({{ event_order('timestamp', 'ingested_at') }}, aggregation_type = 'latest_agg') as latest_at,
            {%- endif %}
            {%- if uses.unique_count %}
            argMaxIf(operation_type = 'remove', {{ event_order('timestamp', 'ingested_at') }}, aggregation_type = 'unique_count_agg')
                as last_removed,
            {%- endif %}
            sum(ifNull(precise_total_amount_cents, {{ zero }})) as precise_cents_sum,
            min(timestamp) as first_at,
            max(timestamp) as last_at,
            -- Percentage charges, weighted sums and prorated graduated prices (one row per bucket
            -- here) keep their events in timestamp order: free allowances, per-transaction
            -- min/max, levels over time (a carried event weighs from the period start), tiers.
            {%- if uses.ordered %}
            arraySort(e -> (e.1, e.2),
                      groupArrayIf(tuple(greatest(timestamp, period_from), ingested_at, ifNull(value, {{ zero }}),
                                         {{ days_present('event_date', 'service_from_date', 'service_to_date') }}),
                                   {{ ordered_events_condition('charge_model', 'aggregation_type', 'prorated') }}))
                as ordered_events,
            {%- else %}
            {{ no_events }} as ordered_events,
            {%- endif %}
            arrayMap(e -> e.3, ordered_events) as ordered_values,
            arrayMap(e -> e.1, ordered_events) as ordered_times,
            {%- if uses.prorated %}
            multiIf(
                is_prorated = 0, {{ zero }},
                aggregation_type = 'unique_count_agg',
                    {{ unique_value_days(
                        "arraySort(o -> (o.1, o.4), groupArrayIf(tuple(timestamp, operation_type = 'remove', event_date, ingested_at), prorated = 1))",
                        'any(service_from_date)', 'any(service_to_date)') }},
                sumIf({{ money_mul('ifNull(value, ' ~ zero ~ ')', days_present('event_date', 'service_from_date', 'service_to_date')) }},
                      prorated = 1))
                as value_days
            {%- else %}
            {{ zero }} as value_days
            {%- endif %}
        from {{ events }}
        {%- if not every %}
        where {{ usage_features_guard(features, pay_in_advance) }}
        {%- endif %}
        group by {{ group_columns }}
            {%- if uses.unique_count %}, unique_value{% endif %}
    )
    select
        organization_id, subscription_id, period_from, charge_id, charge_filter_id,
        {%- if uses.groups %}
        grouped_by,
        {%- else %}
        cast(map() as Map(String, String)) as grouped_by,
        {%- endif %}
        sum(value_events) as events_count,
        {%- set figures = {'count_agg': 'sum(value_events)', 'sum_agg': 'sum(value_sum)'} %}
        {%- if uses.max %}{% do figures.update({'max_agg': 'ifNull(max(value_max), ' ~ zero ~ ')'}) %}{% endif %}
        {%- if uses.latest %}{% do figures.update({'latest_agg': 'greatest(ifNull(argMax(latest_value, latest_at), ' ~ zero ~ '), ' ~ zero ~ ')'}) %}{% endif %}
        {%- if uses.unique_count %}{% do figures.update({'unique_count_agg': 'countIf(last_removed = 0)'}) %}{% endif %}
        {{ units_by_aggregation('aggregation_type', figures) }} as raw_units,
        {%- if uses.prorated %}
        if(any(is_prorated) = 1 and aggregation_type in ('sum_agg', 'unique_count_agg'),
           toDecimal128(ceil({{ money_div('sum(value_days)', 'any(period_days)') }}, 5), 12),
           raw_units) as prorated_units,
        -- (full value, days present) per event, or per unique value in order of arrival.
        if(aggregation_type = 'unique_count_agg',
           arrayMap(v -> (toDecimal128(1, 12), v.2),
                    arraySort(v -> v.1, groupArrayIf((first_at, value_days), is_prorated = 1 and value_days > 0))),
           arrayMap(e -> (e.3, e.4), any(ordered_events))) as prorated_segments,
        {%- else %}
        raw_units as prorated_units,
        cast([] as Array(Tuple(Decimal(38, 12), Decimal(38, 12)))) as prorated_segments,
        {%- endif %}
        sum(precise_cents_sum) as precise_total_amount_cents,
        any(ordered_values) as event_values,
        arrayCumSum(event_values) as running_totals,
        any(ordered_times) as event_times,
        min(first_at) as first_event_at,
        max(last_at) as last_event_at
    from per_value
    group by {{ group_columns }}
{%- endmacro %}

{#- charge_usage over events placed per metric (charge_events' by_metric): units per period and
    metric in the same two passes (per distinct value of a unique count, then per metric), then
    one row per arrears charge of the period's plan on the metric, in charge_usage's columns. -#}
{% macro metric_usage(events, features, metric_periods) -%}
    {%- set zero = 'toDecimal128(0, 12)' %}
    {%- set aggregations = features.aggregations %}
    {%- set group_columns = 'organization_id, subscription_id, period_from, code' %}
    with per_value as (
        select
            {{ group_columns }},
            {%- if 'unique_count_agg' in aggregations %}
            if(is_unique_count = 1, value_text, '') as unique_value,
            argMaxIf(operation_type = 'remove', {{ event_order('timestamp', 'ingested_at') }}, is_unique_count = 1) as last_removed,
            {%- endif %}
            count() as value_events,
            sum(ifNull(value, {{ zero }})) as value_sum,
            {%- if 'max_agg' in aggregations %}
            max(value) as value_max,
            {%- endif %}
            {%- if 'latest_agg' in aggregations %}
            argMaxIf(value, {{ event_order('timestamp', 'ingested_at') }}, is_latest = 1) as latest_value,
            maxIf({{ event_order('timestamp', 'ingested_at') }}, is_latest = 1) as latest_at,
            {%- endif %}
            sum(ifNull(precise_total_amount_cents, {{ zero }})) as precise_cents_sum,
            min(timestamp) as first_at,
            max(timestamp) as last_at
        from {{ events }}
        where {{ usage_features_guard(features, 0) }}
        group by {{ group_columns }}
            {%- if 'unique_count_agg' in aggregations %}, unique_value{% endif %}
    ),
    per_metric as (
        select
            {{ group_columns }},
            sum(value_events) as events_count,
            sum(value_sum) as value_sum,
            {%- if 'max_agg' in aggregations %}
            ifNull(max(value_max), {{ zero }}) as value_max,
            {%- endif %}
            {%- if 'latest_agg' in aggregations %}
            greatest(ifNull(argMax(latest_value, latest_at), {{ zero }}), {{ zero }}) as latest_value,
            {%- endif %}
            {%- if 'unique_count_agg' in aggregations %}
            countIf(last_removed = 0) as unique_count,
            {%- endif %}
            sum(precise_cents_sum) as precise_total_amount_cents,
            min(first_at) as first_event_at,
            max(last_at) as last_event_at
        from per_value
        group by {{ group_columns }}
    ),
    charges as ({{ rated_charges(0) }})
    select
        u.organization_id as organization_id,
        u.subscription_id as subscription_id,
        u.period_from as period_from,
        c.charge_id as charge_id,
        {{ nil_uuid() }} as charge_filter_id,
        cast(map() as Map(String, String)) as grouped_by,
        u.events_count as events_count,
        {%- set figures = {'count_agg': 'u.events_count', 'sum_agg': 'u.value_sum'} %}
        {%- for type, column in [('max_agg', 'value_max'), ('latest_agg', 'latest_value'), ('unique_count_agg', 'unique_count')]
              if type in aggregations %}{% do figures.update({type: 'u.' ~ column}) %}{% endfor %}
        {{ units_by_aggregation('c.aggregation_type', figures) }} as raw_units,
        raw_units as prorated_units,
        cast([] as Array(Tuple(Decimal(38, 12), Decimal(38, 12)))) as prorated_segments,
        u.precise_total_amount_cents as precise_total_amount_cents,
        cast([] as Array(Decimal(38, 12))) as event_values,
        arrayCumSum(event_values) as running_totals,
        cast([] as Array(DateTime64(3, 'UTC'))) as event_times,
        u.first_event_at as first_event_at,
        u.last_event_at as last_event_at
    from per_metric as u
    inner join {{ metric_periods }} as p
        on p.organization_id = u.organization_id
        and p.subscription_id = u.subscription_id
        and p.period_from = u.period_from
    inner join charges as c
        on c.organization_id = p.organization_id
        and c.plan_id = p.plan_id
        and c.billable_metric_code = u.code
{%- endmacro %}

{#- The price columns of a bucket: the filter's own price, or the charge's default price. -#}
{% macro bucket_price_columns(is_default, charge, filter) -%}
    {%- for column in ['unit_price', 'tiers_from', 'tiers_to', 'tiers_price', 'tiers_flat', 'package_size',
                       'free_units', 'rate', 'fixed_amount', 'free_units_per_events', 'free_units_per_total',
                       'per_transaction_min_amount', 'per_transaction_max_amount'] %}
    if({{ is_default }}, {{ charge }}.{{ column }}, {{ filter }}.{{ column }}) as {{ column }},
    {%- endfor %}
{%- endmacro %}

{#- The price buckets of `charges` (a relation or CTE of rated_charges): each charge's default
    price (the nil filter id) and each of its filters. -#}
{% macro charge_buckets(charges) -%}
    select organization_id, charge_id, {{ nil_uuid() }} as charge_filter_id from {{ charges }}
    union all
    select organization_id, charge_id, charge_filter_id from {{ rating_catalog('charge_filters') }}
{%- endmacro %}

{#- One rated fee per subscription x arrears charge x period x filter (default bucket included) x
    group. Buckets without usage still get a fee (Lago shows zero fees; graduated and volume flat
    fees apply at 0 units). `pricing` (pricing_in_use): compile in only the charge models and
    rounding precisions it lists; none compiles in every one.
    With `renewal`, the fees are the renewals of the recurring pay-in-advance charges instead:
    `usage` holds the units carried into each period, priced whole (not prorated: they are there
    for the whole period) and billed on the period's first day; Lago puts an invoiceable one on
    that day's invoice as a fee not paid in advance, and keeps the others off invoices as fees
    paid in advance. -#}
{% macro charge_fees(periods, usage, pricing=none, renewal=false) -%}
    {%- set pricing = pricing or {} %}
    {%- set prorated = 'toUInt8(0)' if renewal else 'c.prorated' %}
    with charges as ({{ rated_charges(1 if renewal else 0, recurring_only=renewal) }}),
    buckets as ({{ charge_buckets('charges') }}),
    -- Every charge x filter bucket of every period, joined to its usage groups; a bucket without
    -- usage keeps one row with zero units and the empty group (join defaults).
    rated_buckets as (
        select
            p.organization_id as organization_id,
            p.subscription_id as subscription_id,
            p.external_subscription_id as external_subscription_id,
            p.customer_id as customer_id,
            p.external_customer_id as external_customer_id,
            p.plan_id as plan_id,
            p.period_from as period_from,
            p.period_to as period_to,
            {{ 'p.service_from_date' if renewal else 'p.service_to_date + 1' }} as billing_date,
            p.timezone as timezone,
            p.currency as currency,
            p.is_closed as is_closed,
            p.service_days as service_days,
            p.full_days as full_days,
            p.plan_tax_ids as plan_tax_ids,
            p.customer_tax_ids as customer_tax_ids,
            p.plan_version as plan_version,
            c.charge_id as bucket_charge_id,
            b.charge_filter_id as bucket_filter_id,
            u.grouped_by as grouped_by,
            u.events_count as events_count,
            u.raw_units as raw_units,
            u.prorated_units as prorated_units,
            u.prorated_segments as prorated_segments,
            u.precise_total_amount_cents as precise_total_amount_cents,
            u.event_values as event_values,
            u.running_totals as running_totals,
            u.event_times as event_times,
            u.first_event_at as first_event_at,
            u.last_event_at as last_event_at
        from {{ periods }} as p
        inner join charges as c on c.organization_id = p.organization_id and c.plan_id = p.plan_id
        inner join buckets as b on b.organization_id = c.organization_id and b.charge_id = c.charge_id
        left join {{ usage }} as u
            on u.organization_id = p.organization_id
            and u.subscription_id = p.subscription_id
            and u.period_from = p.period_from
            and u.charge_id = c.charge_id
            and u.charge_filter_id = b.charge_filter_id
    ),
    priced as (
        select
            r.organization_id as organization_id,
            r.subscription_id as subscription_id,
            r.external_subscription_id as external_subscription_id,
            r.customer_id as customer_id,
            r.external_customer_id as external_customer_id,
            r.plan_id as plan_id,
            r.period_from as period_from,
            r.period_to as period_to,
            r.billing_date as billing_date,
            r.timezone as timezone,
            r.currency as currency,
            r.is_closed as is_closed,
            r.service_days as service_days,
            r.full_days as full_days,
            r.plan_tax_ids as plan_tax_ids,
            r.customer_tax_ids as customer_tax_ids,
            r.plan_version as plan_version,
            c.charge_id as charge_id,
            r.bucket_filter_id as charge_filter_id,
            r.bucket_filter_id = {{ nil_uuid() }} as is_default_bucket,
            c.billable_metric_id as billable_metric_id,
            c.billable_metric_code as billable_metric_code,
            r.grouped_by as grouped_by,
            coalesce(if(is_default_bucket, null, f.invoice_display_name), c.invoice_display_name, c.billable_metric_code)
                as invoice_display_name,
            {{ 'toUInt8(c.invoiceable = 0)' if renewal else 'c.pay_in_advance' }} as pay_in_advance,
            c.invoiceable as invoiceable,
            c.min_amount_cents as min_amount_cents,
            c.tax_ids as charge_tax_ids,
            c.charge_model as charge_model,
            r.events_count as events_count,
            -- Which events and which prices: the bucket's event span (none when unused) and the
            -- catalog versions the fee was priced with.
            if(r.events_count = 0, null, r.first_event_at) as first_event_at,
            if(r.events_count = 0, null, r.last_event_at) as last_event_at,
            c.charge_version as charge_version,
            if(is_default_bucket, null, f.charge_filter_version) as charge_filter_version,
            if(c.aggregation_type = 'weighted_sum_agg',
               {{ weighted_sum_units('r.event_values', 'r.event_times', 'r.period_to', 'r.full_days') }},
               r.raw_units) as measured_full_units,
            -- A prorated charge prices its prorated units (volume picks its tier by the full ones).
            if({{ prorated }} = 1, r.prorated_units, measured_full_units) as measured_units,
            {{ prorated }} as prorated,
            r.prorated_segments as prorated_segments,
            c.rounding_function as rounding_function,
            c.rounding_precision as rounding_precision,
            r.precise_total_amount_cents as precise_total_amount_cents,
            r.event_values as event_values,
            r.running_totals as running_totals,
            {{ bucket_price_columns('is_default_bucket', 'c', 'f') }}
            r.event_times as event_times
        from rated_buckets as r
        inner join charges as c on c.organization_id = r.organization_id and c.charge_id = r.bucket_charge_id
        left join {{ rating_catalog('charge_filters') }} as f
            on f.organization_id = r.organization_id and f.charge_filter_id = r.bucket_filter_id
    ),
    -- Units, then amounts, each at its own query level: the price expressions refer to `units`
    -- many times, and an alias would be expanded at every reference.
    rounded as (
        select
            *,
            {{ round_units('measured_units', 'rounding_function', 'rounding_precision', pricing.get('precisions')) }} as units,
            {{ round_units('measured_full_units', 'rounding_function', 'rounding_precision', pricing.get('precisions')) }} as full_units
        from priced
    ),
    amounts as (
        select *, {{ charge_amount(prorated_segments='prorated_segments', models=pricing.get('models')) }} as amount
        from rounded
    )
    select
        * except (event_values, running_totals, event_times, measured_units, measured_full_units,
                  rounding_function, rounding_precision, prorated_segments),
        if(units = 0, toDecimal128(0, 12), {{ money_div('amount', 'units') }}) as precise_unit_amount
    from amounts
{%- endmacro %}


{#- The columns of an event placed in its period and charge (charge_events' output), in one
    order, for a union or a table of placed events: their names, and as a select list. -#}
{% macro placed_event_names() -%}
    {{ return(['organization_id', 'subscription_id', 'period_from', 'charge_id', 'charge_model', 'aggregation_type',
               'filter_index', 'charge_filter_id', 'grouped_by', 'transaction_id', 'timestamp', 'ingested_at',
               'value_text', 'value', 'operation_type', 'precise_total_amount_cents', 'prorated', 'event_date',
               'service_from_date', 'service_to_date', 'full_days']) }}
{%- endmacro %}

{% macro placed_event_columns() -%}
    {{ placed_event_names() | join(', ') }}
{%- endmacro %}


{#- Pay-in-advance charges: every event is billed at once for cost(after) - cost(before), where
    "before" is the running maximum of the units, so decreases are not refunded and climbing back
    to an earlier peak is free; cost(0) is 0, so a tier's flat fee is billed by the event that
    enters the tier. Events with the same timestamp are priced in ingestion order (then by
    transaction id, so every run orders them alike), and a unique count charges each distinct
    value once per period.
    Every running figure is a window aggregate whose frame starts at the bucket's first event:
    one aggregate state per bucket, a few scalars per event. Nothing copies the earlier events
    into each row, so memory stays bounded however many events a bucket holds.
    `events`, `by_subscription`, `materialize_resent`: see scoped_events; `pricing`: see
    charge_fees. `features`
    (usage_in_use(1)): place the events with only the filters, groups and fields in use (see
    charge_events), run only the window aggregates of the aggregation types in use (the sum is
    every other type's) and prorate only if a charge is prorated; none: everything.
    `placed`: a relation of the events already placed in `periods` (placed_event_columns, placed
    with `features`), priced instead of placing them here; the guard of `features` still fails the
    query when the catalog's charges use another. -#}
{% macro pay_in_advance_charge_fees(periods, until, events=none, by_subscription=false, pricing=none, features=none,
                                    materialize_resent=false, placed=none) -%}
    {%- set pricing = pricing or {} %}
    {%- set uses_prorated = features is none or features.prorated %}
    {#- The running units of each aggregation type but the sum, the default. -#}
    {%- set running_units = [] %}
    {%- for aggregation_type, units in [
            ('count_agg', 'toDecimal128(row_number() over bucket, 12)'),
            ('unique_count_agg', 'toDecimal128(uniqExact(value_text) over bucket, 12)'),
            ('max_agg', 'ifNull(max(value) over bucket, toDecimal128(0, 12))')] %}
    {%- if features is none or aggregation_type in features.aggregations %}
    {%- do running_units.append("aggregation_type = '" ~ aggregation_type ~ "', " ~ units) %}
    {%- endif %}
    {%- endfor %}
    with events as (
        {%- if placed %}
        select {{ placed_event_columns() }} from {{ placed }} where {{ usage_features_guard(features, 1) }}
        {%- else %}
        {{ charge_events(periods, 1, until, events, by_subscription=by_subscription, features=features,
                         materialize_resent=materialize_resent) }}
        {%- endif %}
    ),
    charges as ({{ rated_charges(1) }}),
    cumulative as (
        select
            organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by,
            transaction_id, timestamp, ingested_at, value_or_zero,
            ifNull(precise_total_amount_cents, toDecimal128(0, 12)) as precise_cents,
            row_number() over bucket as position,
            {%- if running_units %}
            toDecimal128(multiIf(
                {%- for units in running_units %}
                {{ units }},
                {%- endfor %}
                sum(value_or_zero) over bucket), 12) as units_after,
            {%- else %}
            toDecimal128(sum(value_or_zero) over bucket, 12) as units_after,
            {%- endif %}
            sum(value_or_zero) over bucket as total_after,
            sum(precise_cents) over bucket as precise_after
        from (select *, ifNull(value, toDecimal128(0, 12)) as value_or_zero from events)
        window bucket as (
            partition by organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by
            order by timestamp, ingested_at, transaction_id rows between unbounded preceding and current row)
    ),
    priced as (
        select
            p.organization_id as organization_id,
            p.subscription_id as subscription_id,
            p.external_subscription_id as external_subscription_id,
            p.customer_id as customer_id,
            p.external_customer_id as external_customer_id,
            p.plan_id as plan_id,
            p.period_from as period_from,
            p.period_to as period_to,
            {{ local_date('r.timestamp', 'p.timezone') }} as billing_date,
            p.timezone as timezone,
            p.currency as currency,
            p.plan_tax_ids as plan_tax_ids,
            p.customer_tax_ids as customer_tax_ids,
            p.plan_version as plan_version,
            c.charge_id as charge_id,
            r.charge_filter_id as charge_filter_id,
            r.charge_filter_id = {{ nil_uuid() }} as is_default_bucket,
            c.billable_metric_id as billable_metric_id,
            c.billable_metric_code as billable_metric_code,
            r.grouped_by as grouped_by,
            coalesce(if(is_default_bucket, null, f.invoice_display_name), c.invoice_display_name, c.billable_metric_code)
                as invoice_display_name,
            c.pay_in_advance as pay_in_advance,
            c.invoiceable as invoiceable,
            c.tax_ids as charge_tax_ids,
            c.charge_model as charge_model,
            r.transaction_id as source_transaction_id,
            cast(r.timestamp as Nullable(DateTime64(3, 'UTC'))) as first_event_at,
            first_event_at as last_event_at,
            c.charge_version as charge_version,
            if(is_default_bucket, null, f.charge_filter_version) as charge_filter_version,
            r.timestamp as timestamp,
            r.ingested_at as ingested_at,
            r.units_after as measured_after,
            c.rounding_function as rounding_function,
            c.rounding_precision as rounding_precision,
            r.value_or_zero as value_or_zero,
            r.total_after as total_after,
            r.precise_after as precise_after,
            r.precise_after - r.precise_cents as precise_before,
            {{ bucket_price_columns('is_default_bucket', 'c', 'f') }}
            r.position as position,
            -- Prorated (standard) charges bill an increase for the days left in the period.
            {%- if uses_prorated %}
            c.prorated as prorated,
            {{ in_advance_proration('r.timestamp', 'p.period_to', 'p.full_days') }} as proration
            {%- else %}
            toUInt8(0) as prorated,
            toDecimal128(1, 12) as proration
            {%- endif %}
        from cumulative as r
        inner join {{ periods }} as p
            on p.organization_id = r.organization_id
            and p.subscription_id = r.subscription_id
            and p.period_from = r.period_from
        inner join charges as c on c.organization_id = r.organization_id and c.charge_id = r.charge_id
        left join {{ rating_catalog('charge_filters') }} as f
            on f.organization_id = r.organization_id and f.charge_filter_id = r.charge_filter_id
    ),
    -- The running figures that need the price: the peak before each event, and the percentage
    -- model's allowances and per-transaction amounts (see charge_amount).
    transactions as (
        select
            *,
            {{ percentage_transaction_amount('value_or_zero', 'total_after - value_or_zero', 'position',
                'free_units_per_events', 'free_units_per_total', 'rate', 'fixed_amount',
                'per_transaction_min_amount', 'per_transaction_max_amount') }} as transaction_amount,
            toUInt64(total_after < free_units_per_total) as is_below_free_total
        from priced
    ),
    running as (
        select
            *,
            ifNull(max(measured_after) over preceding_events, toDecimal128(0, 12)) as measured_before,
            sum(transaction_amount) over bucket as transactions_after,
            sum(if(position <= free_units_per_events, value_or_zero, toDecimal128(0, 12))) over bucket
                as total_after_free_events,
            sum(is_below_free_total) over bucket as below_free_total_after
        from transactions
        window
            bucket as (
                partition by organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by
                order by timestamp, ingested_at, source_transaction_id rows between unbounded preceding and current row),
            preceding_events as (
                partition by organization_id, subscription_id, period_from, charge_id, charge_filter_id, grouped_by
                order by timestamp, ingested_at, source_transaction_id rows between unbounded preceding and 1 preceding)
    ),
    -- Units, then costs, each at its own query level (see charge_fees).
    rounded as (
        select
            *,
            {{ round_units('measured_after', 'rounding_function', 'rounding_precision', pricing.get('precisions')) }} as units_after,
            {{ round_units('measured_before', 'rounding_function', 'rounding_precision', pricing.get('precisions')) }} as units_before
        from running
    ),
    costs as (
        select
            *,
            {{ charge_amount('units_after', 'units_after', 'position', precise_total_amount_cents='precise_after',
                             models=pricing.get('models'),
                             percentage_running={
                                 'events': 'position',
                                 'last_total': 'total_after',
                                 'total_after_free_events': 'total_after_free_events',
                                 'events_below_free_total': 'below_free_total_after',
                                 'transactions_amount': 'transactions_after'}) }}
                as cost_after,
            if(units_before = 0, toDecimal128(0, 12),
               {{ charge_amount('units_before', 'units_before', 'position - 1', precise_total_amount_cents='precise_before',
                                models=pricing.get('models'),
                                percentage_running={
                                    'events': 'position - 1',
                                    'last_total': 'total_after - value_or_zero',
                                    'total_after_free_events': 'total_after_free_events',
                                    'events_below_free_total': 'below_free_total_after - is_below_free_total',
                                    'transactions_amount': 'transactions_after - transaction_amount'}) }})
                as cost_before
        from rounded
    )
    select
        * except (timestamp, ingested_at, value_or_zero, total_after, transaction_amount, is_below_free_total,
                  transactions_after, total_after_free_events, below_free_total_after, cost_after, cost_before,
                  precise_after, precise_before, measured_after, measured_before, rounding_function,
                  rounding_precision, position, prorated, proration),
        toUInt64(1) as events_count,
        if(prorated = 1,
           toDecimal128(ceil({{ money_mul('greatest(units_after - units_before, toDecimal128(0, 12))', 'proration') }}, 5), 12),
           greatest(units_after - units_before, toDecimal128(0, 12))) as units,
        if(prorated = 1, {{ standard_amount('units', 'unit_price') }},
           greatest(cost_after - cost_before, toDecimal128(0, 12))) as amount,
        if(units <= 0, toDecimal128(0, 12), {{ money_div('amount', 'units') }}) as precise_unit_amount
    from costs
{%- endmacro %}

{#- The renewals of the recurring pay-in-advance charges, as Lago bills them when a period starts:
    for each of `periods` (started charge periods) after its subscription's first (is_renewal),
    the units carried into it (every earlier event of the subscription's recurring metric, none
    of the period's own) priced whole by the charge model, one fee per filter and group, in
    charge_fees' columns (see its `renewal`). A subscription's first period renews nothing: an
    upgraded or downgraded plan keeps what the previous plan billed until its next period.
    `features` (usage_in_use(1, recurring_only=true)), `pricing` (pricing_in_use(1,
    recurring_only=true)): those of the recurring pay-in-advance charges only, so a catalog
    without any compiles in next to nothing. `materialize_resent`: see charge_events. -#}
{% macro renewal_fees(periods, features=none, pricing=none, materialize_resent=false) -%}
    with renewed_periods as (
        select *
        from {{ periods }}
        where is_renewal
            and (organization_id, plan_id) in (
                select organization_id, plan_id from ({{ rated_charges(1, recurring_only=true) }}))
    ),

    -- Each period ending where it starts, so that only the events before it are placed in it:
    -- the recurring metrics' carried events, none of the period itself.
    carried_into_periods as (
        select * replace (period_from - toIntervalMillisecond(1) as period_to)
        from renewed_periods
    ),

    carried_events as (
        {{ charge_events('carried_into_periods', pay_in_advance=1, carry_recurring=true, by_subscription=true,
                         features=features, materialize_resent=materialize_resent, recurring_only=true) }}
    ),

    carried_usage as ({{ charge_usage('carried_events', features, pay_in_advance=1, renewal=true) }})

    select * from ({{ charge_fees('renewed_periods', 'carried_usage', pricing, renewal=true) }})
{%- endmacro %}
