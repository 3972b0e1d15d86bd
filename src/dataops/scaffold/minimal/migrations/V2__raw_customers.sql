-- The raw table the customers pipeline merges into: the spec's columns, then the batch id and
-- data interval every row carries, and a unique index on the merge key.
create schema if not exists raw;

create table raw.customers (
    customer_id integer,
    name text,
    country text,
    signed_up_at timestamptz,
    _dataops_batch text not null,
    _dataops_interval_start timestamptz not null
);
create unique index customers_dataops_key on raw.customers (customer_id);
