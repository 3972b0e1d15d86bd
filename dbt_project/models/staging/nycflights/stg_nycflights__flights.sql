with

source as (

    select * from {{ source('nycflights', 'flights') }}

),

renamed as (

    select
        carrier as carrier_code,
        flight as flight_number,
        tailnum as tail_number,
        origin as origin_airport_code,
        dest as destination_airport_code,
        time_hour as scheduled_hour_at,
        dep_time as departure_hhmm,
        dep_delay as departure_delay_minutes,
        arr_delay as arrival_delay_minutes,
        air_time as air_time_minutes,
        distance as distance_miles,
        md5(
            carrier || '-' || flight::text || '-' || time_hour::text || '-' || minute::text
        ) as flight_id,
        make_date(year, month, day) as departure_date,
        time_hour + make_interval(mins => minute) as scheduled_departure_at,
        dep_time is null as is_cancelled
    from source

)

select * from renamed
