{#- A table model is created and filled by one statement, CREATE TABLE ... AS SELECT.

    dbt-clickhouse creates the table empty from the model's query (`create table ... empty as
    (...)`), then fills it with `insert into ... <query>`: the warehouse analyses the query twice,
    and for the rating tables, whose queries inline the pricing macros and compute their `IN` sets
    and scalar subqueries while being analysed, that is a second or more of every run, full or
    incremental, for nothing. Temporary tables, enforced contracts, projections and indexes keep
    dbt-clickhouse's two steps. -#}
{% macro clickhouse__create_table_as(temporary, relation, sql) -%}
    {%- set has_contract = config.get('contract').enforced %}
    {%- if temporary or has_contract or config.get('projections') or config.get('indexes') -%}
        {{ dbt.clickhouse__create_table_as(temporary, relation, sql) }}
    {%- else -%}
        {%- set sql_header = config.get('sql_header', none) -%}
        {{ sql_header if sql_header is not none }}
        create table {{ relation }}
        {{ on_cluster_clause(relation) }}
        {{ engine_clause() }}
        {{ order_cols(label="order by") }}
        {{ primary_key_clause(label="primary key") }}
        {{ partition_cols(label="partition by") }}
        {{ ttl_config(label="ttl") }}
        {{ adapter.get_model_settings(model, config.get('engine', default='MergeTree')) }}
        as
        {{ sql }}
        {{ query_settings_clause() }}
    {%- endif %}
{%- endmacro %}

{#- The project's `query_settings`, plus the model's own `model_query_settings` (a model's
    `query_settings` would replace the project's rather than add to them). -#}
{% macro query_settings_clause() -%}
    {%- set settings = {} %}
    {%- do settings.update(config.get('query_settings') or {}) %}
    {%- do settings.update(config.get('model_query_settings') or {}) %}
    {%- if settings %}
        settings
        {%- for name, value in settings.items() %}
        {{ name }} = {{ value if value is number else "'" ~ value ~ "'" }}{{ ',' if not loop.last }}
        {%- endfor %}
    {%- endif %}
{%- endmacro %}
