with

source as (

    select * from {{ source('nycflights', 'flights') }}

),

renamed as (

    select
        make_date(year, month, day) as departure_date,
        carrier,
        flight as flight_number,
        tailnum as tail_number,
        origin,
        dest as destination,
        sched_dep_time as scheduled_departure_hhmm,
        dep_delay as departure_delay_minutes,
        arr_delay as arrival_delay_minutes,
        air_time as air_time_minutes,
        distance as distance_miles,
        time_hour as scheduled_hour_utc
    from source

)

select * from renamed
