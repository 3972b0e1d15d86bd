-- The raw tables the pipelines load into, as the load task expects them: the spec's
-- columns, then the batch id and data interval every row carries. Append targets are
-- partitioned by data interval (one partition per interval, swapped in by the load);
-- merge targets have a unique index on their key.
create schema if not exists raw;

create table raw.airlines (
    carrier text,
    name text,
    _dataops_batch text not null,
    _dataops_interval_start timestamptz not null
);
create unique index airlines_dataops_key on raw.airlines (carrier);

create table raw.airports (
    faa text,
    name text,
    lat double precision,
    lon double precision,
    alt integer,
    tz numeric,
    dst text,
    tzone text,
    _dataops_batch text not null,
    _dataops_interval_start timestamptz not null
);
create unique index airports_dataops_key on raw.airports (faa);

create table raw.flights (
    year integer,
    month integer,
    day integer,
    dep_time integer,
    sched_dep_time integer,
    dep_delay integer,
    arr_time integer,
    sched_arr_time integer,
    arr_delay integer,
    carrier text,
    flight integer,
    tailnum text,
    origin text,
    dest text,
    air_time integer,
    distance integer,
    hour integer,
    minute integer,
    time_hour timestamptz,
    _dataops_batch text not null,
    _dataops_interval_start timestamptz not null
);

create table raw.planes (
    tailnum text,
    year integer,
    type text,
    manufacturer text,
    model text,
    engines integer,
    seats integer,
    speed integer,
    engine text,
    _dataops_batch text not null,
    _dataops_interval_start timestamptz not null
);
create unique index planes_dataops_key on raw.planes (tailnum);

create table raw.weather (
    origin text,
    year integer,
    month integer,
    day integer,
    hour integer,
    temp double precision,
    dewp double precision,
    humid double precision,
    wind_dir integer,
    wind_speed double precision,
    wind_gust double precision,
    precip double precision,
    pressure double precision,
    visib double precision,
    time_hour timestamptz,
    _dataops_batch text not null,
    _dataops_interval_start timestamptz not null
) partition by list (_dataops_interval_start);

-- verify
select count(*) = 5 from information_schema.tables where table_schema = 'raw';
