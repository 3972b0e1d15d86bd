{#-
    Written into the build copy of the dbt project by dataops (dataops.core.dbt_project).

    Where a node is built.
    Published (what readers query): what the project's own naming returns: its
    generate_schema_name (renamed in the copy), else dbt's dispatch (an <adapter>__ or default__
    override, else dbt's default <target schema>[_<custom schema>]).
    Audit (write-audit-publish): with the var `dataops_audit: NAME`, every node goes to
    <published schema>__audit_NAME instead. `dataops-task transform` builds and tests the
    selection there, and only when every node and test passed does it move the relations into
    the published schemas, in one transaction.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set published = __PROJECT_NAMING__(custom_schema_name, node) | trim -%}
    {%- set audit = var('dataops_audit', '') -%}
    {%- if audit and not published.endswith('__audit_' ~ audit) -%}
        {{ published ~ '__audit_' ~ audit }}
    {%- else -%}
        {{ published }}
    {%- endif -%}
{%- endmacro %}

{#-
    on-run-start of an audit build: a selected incremental model or snapshot starts from a copy
    of its published table, so the audit build appends to what readers see (and a snapshot keeps
    its history) instead of rebuilding from nothing. Without `dataops_audit` it does nothing.
-#}
{% macro dataops_audit_prepare() %}
    {%- set statements = [] -%}
    {%- if execute and var('dataops_audit', '') -%}
        {%- set suffix = '__audit_' ~ var('dataops_audit') -%}
        {%- for node in graph.nodes.values()
            if node.resource_type in ('model', 'snapshot')
            and node.unique_id in selected_resources
            and node.config.materialized in ('incremental', 'snapshot')
            and node.schema.endswith(suffix) -%}
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

{#-
    Tests of the changed rows only (a test opts in): a data test whose `where` names
    __dataops_changed_from__ and __dataops_changed_to__ gets them as the quoted bounds of the
    intervals loaded since the last publish of its selection (the var `dataops_changed`, set by
    `dataops-task transform`), e.g. where: "departure_date >= __dataops_changed_from__ and
    departure_date < __dataops_changed_to__". Without the var (the first build of a release, CI,
    a plain `dbt build`) such a where is dropped and the test reads every row. Any other where
    goes to the project's own get_where_subquery (renamed in the copy) or dbt's dispatch.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') or '' -%}
    {%- if '__dataops_changed_' not in where -%}
        {%- do return(__PROJECT_WHERE__(relation)) -%}
    {%- endif -%}
    {%- set changed = var('dataops_changed', none) -%}
    {%- if not changed -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- set where = where
        | replace('__dataops_changed_from__', "'" ~ (changed['from'] | replace("'", "")) ~ "'")
        | replace('__dataops_changed_to__', "'" ~ (changed['to'] | replace("'", "")) ~ "'") -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
{%- endmacro %}
