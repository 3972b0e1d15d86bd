{#-
    Where a model is built.

    Published (what readers query): <target schema>[_<custom schema>], dbt's default.
    Audit (write-audit-publish): with the var `dataops_audit: NAME`, every model goes to
    <published schema>__audit_NAME instead. `dataops-task transform` builds and tests the
    selection there, and only when every model and test passed does it move the relations into
    the published schemas, in one transaction. A failing test leaves the published marts as
    they were, and the audit schema holds the rejected build for inspection.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set published = target.schema if custom_schema_name is none
        else target.schema ~ '_' ~ custom_schema_name | trim -%}
    {%- set audit = var('dataops_audit', '') -%}
    {%- if audit -%}
        {{ published ~ '__audit_' ~ audit }}
    {%- else -%}
        {{ published }}
    {%- endif -%}
{%- endmacro %}
