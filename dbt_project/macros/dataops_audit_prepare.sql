{#-
    on-run-start of an audit build: a selected incremental model starts from a copy of its
    published table, so the audit build appends to what readers see instead of rebuilding from
    nothing. Without `dataops_audit` it does nothing.
-#}
{% macro dataops_audit_prepare() %}
    {%- set statements = [] -%}
    {%- if execute and var('dataops_audit', '') -%}
        {%- set suffix = '__audit_' ~ var('dataops_audit') -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model'
            and node.unique_id in selected_resources
            and node.config.materialized == 'incremental' -%}
            {%- set published = adapter.get_relation(
                database=node.database,
                schema=node.schema[:-(suffix | length)],
                identifier=node.alias) -%}
            {%- if published is not none -%}
                {%- set audit = api.Relation.create(database=node.database,
                    schema=node.schema, identifier=node.alias, type='table') -%}
                {#- The relation cache was filled before this hook: tell it about the copy. -#}
                {%- do adapter.cache_added(audit) -%}
                {%- do statements.append('create schema if not exists ' ~ adapter.quote(node.schema)) -%}
                {%- do statements.append('drop table if exists ' ~ audit.include(database=False)) -%}
                {%- do statements.append(
                    'create table ' ~ audit.include(database=False) ~ ' (like ' ~ published.include(database=False)
                    ~ ' including all)') -%}
                {%- do statements.append(
                    'insert into ' ~ audit.include(database=False) ~ ' select * from '
                    ~ published.include(database=False)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ statements | join(';\n') }}
{% endmacro %}
