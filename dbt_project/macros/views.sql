{#- Views are re-created only when their definition changed.

    dbt-clickhouse's view materialization replaces every view on every run, and the warehouse
    analyses the whole query of a view when it is created: for the views rated on read
    (fct_open_period_fees and the like, the rating pipeline inlined) that costs seconds of an
    incremental run that changed nothing in them. This materialization is dbt-clickhouse's (same
    statements, hooks, grants and docs), plus a fingerprint stored as the view's comment: the
    create statement as compiled now (SQL, macros, variables, the timezones and metric
    expressions compiled in) and the columns of every relation it reads (a `select *` view keeps
    the columns it was created with, so a changed upstream table must re-create it). When the
    stored fingerprint matches, the view is left as it is, on --full-refresh too: a view holds no
    rows to recompute, and what it is created from is all in its fingerprint. -#}

{% materialization view, adapter='clickhouse' -%}

  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set grant_config = config.get('grants') -%}
  {%- set create_sql = get_create_view_as_sql(target_relation, sql) -%}
  {%- set fingerprint = 'dbt definition ' ~ local_md5(create_sql ~ view_upstream_columns(create_sql)) -%}

  {%- if existing_relation is not none and view_comment(target_relation) == fingerprint -%}
    {{ log('View ' ~ target_relation.name ~ ' is unchanged, keeping it') }}
    {%- call noop_statement('main', 'unchanged') -%}-- unchanged: kept{%- endcall -%}
    {{ return({'relations': [target_relation]}) }}
  {%- endif -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% if existing_relation is not none %}
    {{ clickhouse__drop_associated_mv_if_it_was_automatically_created(target_relation) }}
    {% if not adapter.supports_atomic_exchange() %}
      {{ drop_relation_if_exists(existing_relation) }}
    {% endif %}
  {% endif %}

  {% call statement('main') -%}
    {{ create_sql }}
    comment '{{ fingerprint }}'
  {%- endcall %}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{%- endmaterialization %}

{#- The columns (name and type, in order) of every relation of this database that a create
    statement names, as one string. -#}
{% macro view_upstream_columns(create_sql) -%}
  {%- set pattern = '`' ~ this.schema ~ '`\\.`([A-Za-z0-9_]+)`' -%}
  {%- set names = modules.re.findall(pattern, create_sql) | reject('equalto', this.identifier) | unique | list -%}
  {%- if not names or not execute -%}{{ return('') }}{%- endif -%}
  {%- set found = run_query(
      "select table, name, type from system.columns where database = '" ~ this.schema ~ "'"
      ~ " and table in ('" ~ names | join("', '") ~ "') order by table, position") -%}
  {%- set columns = [] -%}
  {%- for row in found.rows -%}{%- do columns.append(row | join(' ')) -%}{%- endfor -%}
  {{ return(columns | join(', ')) }}
{%- endmacro %}

{#- The comment stored on a relation ('' when it has none). -#}
{% macro view_comment(relation) -%}
  {%- if not execute -%}{{ return('') }}{%- endif -%}
  {%- set found = run_query(
      "select comment from system.tables where database = '" ~ relation.schema
      ~ "' and name = '" ~ relation.identifier ~ "'") -%}
  {{ return(found.rows[0][0] if found.rows else '') }}
{%- endmacro %}
