-- The toolkit's own warehouse objects: the load audit (one row per committed load) and the
-- registry of CI schemas (`dataops ci dbt` / `dataops ci sweep`).
create schema if not exists dataops;

create table if not exists dataops.load_audit (
    id bigserial primary key,
    pipeline text not null,
    target text not null,
    interval_start timestamptz not null,
    interval_end timestamptz not null,
    batch text not null,
    mode text not null,
    rows bigint not null,
    sha256 text not null,
    started_at timestamptz not null,
    finished_at timestamptz not null default clock_timestamp(),
    duration_ms integer not null
);

create index if not exists load_audit_pipeline_interval
    on dataops.load_audit (pipeline, interval_start);

create table if not exists dataops.ci_schemas (
    schema_name text primary key,
    created_at timestamptz not null default now(),
    git_ref text,
    schemas text[] not null default '{}'
);
