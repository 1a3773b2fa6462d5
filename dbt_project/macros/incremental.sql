{#- Whether this run rates only the periods that need work (int_rating_periods): fct_fees exists
    and the run is not a --full-refresh. The rating tables then read only the subscriptions of
    those periods (see scoped_events' by_subscription). -#}
{% macro rating_is_incremental() -%}
    {%- set fees = adapter.get_relation(database=this.database, schema=this.schema, identifier='fct_fees') %}
    {{- return(fees is not none and not flags.FULL_REFRESH) -}}
{%- endmacro %}
