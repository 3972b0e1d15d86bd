with

source as (

    select * from {{ source('nycflights', 'weather') }}

),

renamed as (

    select
        origin as airport_code,
        time_hour as observed_hour_at,
        temp as temperature_f,
        wind_speed as wind_speed_mph,
        wind_gust as wind_gust_mph,
        precip as precipitation_inches,
        visib as visibility_miles,
        origin || '-' || time_hour::text as weather_observation_id
    from source

)

select * from renamed
